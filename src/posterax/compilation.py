"""Keep compiled programs on disk, so a new Python process skips XLA compilation.

Within one process the NUTS driver already reuses its compiled program across fits. Across
processes (a script run again, a CLI call, a notebook restart) JAX's persistent compilation cache
does the same: the seed linear regression's first NUTS fit drops from about 4.3 s to 1.5 s on
2 CPU cores once the cache is warm. It is opt-in for library users (it changes JAX's global
configuration); the ``posterax`` command line turns it on unless ``--no-compile-cache``.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

ENV_VAR = "POSTERAX_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$POSTERAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/posterax/jax``, else ``~/.cache/...``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "posterax" / "jax"


def enable_compilation_cache(
    path: str | os.PathLike[str] | None = None, min_compile_seconds: float = 0.5
) -> Path:
    """Turn on JAX's persistent compilation cache in ``path`` and return the directory.

    Call it before the first fit of the process: JAX reads the setting when it first compiles.
    Programs that compile faster than ``min_compile_seconds`` are not stored.

    Examples
    --------
    >>> import tempfile, posterax as px
    >>> path = px.enable_compilation_cache(tempfile.mkdtemp())  # doctest: +SKIP
    """
    directory = Path(path) if path is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return directory


__all__ = ["default_cache_dir", "enable_compilation_cache"]
