"""Checkpoints of a running sampler or trainer: one pytree and a step count in one file.

:class:`CheckpointStore` writes ``<checkpoint_dir>/checkpoint.npz`` through
:func:`posterax.storage.write_arrays` (atomic, checksummed, no pickle) and reads it back into the
structure of a *template* pytree supplied by the caller: the tree structure (treedef) is never
stored, only the leaves in flattening order, with their key paths, dtypes and shapes, which are
checked against the template on load. Typed PRNG keys (``jax.random.key``) are stored as their
key data and rewrapped with the same implementation.

A *fingerprint* (a dict of JSON-able values: settings, seed, :func:`data_digest` of the data,
...) is stored with each checkpoint; :meth:`CheckpointStore.load` refuses a checkpoint whose
fingerprint differs from the current one, so a run never resumes from another run's state.

The store never deletes a checkpoint on its own: after a finished run the caller decides whether
to keep it (then ``fit(..., resume=True)`` can pick up the final state) or to call
:meth:`CheckpointStore.clear`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import operator
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax import storage

FORMAT_NAME = "posterax-checkpoint"
FORMAT_VERSION = 1
FILENAME = "checkpoint.npz"
_FIX_FINGERPRINT = (
    "Pass another checkpoint_dir for this run, or fit with resume=False to start over (the "
    "old checkpoint is then overwritten)."
)


def data_digest(*arrays: Any) -> str:
    """SHA-256 (hex) of the arrays' dtypes, shapes and bytes, for a checkpoint fingerprint.

    ``None`` is allowed (e.g. no targets) and differs from any array. Object arrays (such as
    string labels in an object array) are digested through the ``repr`` of their elements.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.ones((3, 2)), np.arange(3)
    >>> data_digest(X, y) == data_digest(X.copy(), y.copy())
    True
    >>> data_digest(X, y) == data_digest(X, y + 1)
    False
    """
    h = hashlib.sha256()
    for array in arrays:
        if array is None:
            h.update(b"none\n")
            continue
        arr = np.asarray(array)
        if arr.dtype.hasobject:
            text = "\0".join(repr(v) for v in arr.ravel().tolist())
            h.update(f"object{list(arr.shape)}:".encode())
            h.update(hashlib.sha256(text.encode()).digest())
        else:
            h.update(storage.digest_array(arr).encode())
        h.update(b"\n")
    return h.hexdigest()


def _is_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _is_python_scalar(leaf: Any) -> bool:
    return isinstance(leaf, bool | int | float | complex)


def _describe(leaf: Any) -> tuple[str, tuple[int, ...]]:
    """``(dtype name, shape)`` of a leaf (a typed key's dtype reads ``key<impl>``)."""
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return str(leaf.dtype), tuple(leaf.shape)
    arr = np.asarray(leaf)
    return str(arr.dtype), arr.shape


def _json_roundtrip(value: Any, where: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{where}: the checkpoint fingerprint must hold only JSON values (str, int, float, "
            f"bool, None, lists, dicts); {err}. Use data_digest(...) for arrays."
        ) from None


def _as_weak(x: jax.Array) -> jax.Array:
    """``x`` as a weakly typed array, as the template leaf was (keeps type promotion and jit
    cache keys of a resumed run equal to an uninterrupted one). Falls back to ``x``."""
    try:
        from jax._src.lax.lax import _convert_element_type

        return _convert_element_type(x, weak_type=True)
    except (ImportError, TypeError, AttributeError):  # pragma: no cover - jax internals moved
        return x


class CheckpointStore:
    """Save and load one pytree checkpoint in ``directory``, guarded by a fingerprint.

    Parameters
    ----------
    directory : str or path-like
        The ``checkpoint_dir``; created on the first :meth:`save`. An existing *file* at this
        path is refused with a ``ValueError`` naming ``'checkpoint_dir'``.
    fingerprint : dict
        JSON-able values that identify the run (settings, seed, :func:`data_digest` of the
        data). A stored checkpoint with a different fingerprint is refused on :meth:`load`.
    where : str
        Who is asking, for messages (e.g. ``"BayesianRegressor.fit"``).

    Examples
    --------
    >>> import tempfile, jax, jax.numpy as jnp
    >>> store = CheckpointStore(tempfile.mkdtemp(), {"seed": 0}, where="example")
    >>> state = {"x": jnp.zeros(3), "key": jax.random.key(0)}
    >>> store.load(state) is None  # nothing saved yet
    True
    >>> store.save(100, {"x": jnp.ones(3), "key": jax.random.key(1)})
    >>> step, restored = store.load(state)
    >>> step, restored["x"].tolist(), restored["key"].dtype
    (100, [1.0, 1.0, 1.0], key<fry>)
    """

    def __init__(self, directory: Any, fingerprint: dict[str, Any], *, where: str):
        self.where = where
        if not isinstance(directory, str | os.PathLike) or not os.fspath(directory):
            raise TypeError(
                f"{where}: the 'checkpoint_dir' parameter must be a directory path (str or "
                f"pathlib.Path). Got {directory!r}."
            )
        self.directory = Path(directory)
        self._check_directory()
        if not isinstance(fingerprint, dict):
            raise TypeError(
                f"{where}: the checkpoint fingerprint must be a dict, got "
                f"{type(fingerprint).__name__}."
            )
        self.fingerprint: dict[str, Any] = _json_roundtrip(fingerprint, where)

    @property
    def path(self) -> Path:
        """The checkpoint file, ``<directory>/checkpoint.npz``."""
        return self.directory / FILENAME

    def exists(self) -> bool:
        """Whether a checkpoint file is present (it may still be refused by :meth:`load`)."""
        return self.path.is_file()

    def _check_directory(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(
                f"{self.where}: the 'checkpoint_dir' parameter must be a directory, but "
                f"{str(self.directory)!r} is an existing file. Pass a directory path (it is "
                "created if missing)."
            )

    # ------------------------------------------------------------------------------ save
    def save(self, step: int, tree: Any) -> None:
        """Write ``tree`` (a pytree of arrays and PRNG keys) as the checkpoint of ``step``.

        Atomic: the previous checkpoint stays intact until the new one is complete.
        """
        try:
            step = operator.index(step)
        except TypeError:
            raise TypeError(
                f"{self.where}: checkpoint step must be an int, got {step!r}."
            ) from None
        if step < 0:
            raise ValueError(f"{self.where}: checkpoint step must be >= 0, got {step}.")
        arrays: dict[str, np.ndarray] = {}
        leaves_meta = []
        for i, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0]):
            name = jax.tree_util.keystr(path)
            impl = None
            if _is_key(leaf):
                impl = str(jax.random.key_impl(leaf))
                value = np.asarray(jax.random.key_data(leaf))
            else:
                try:
                    value = np.asarray(leaf)
                except Exception as err:
                    raise TypeError(
                        f"{self.where}: the checkpoint leaf {name or '<root>'} "
                        f"({type(leaf).__name__}) is not an array ({err})."
                    ) from None
            if value.dtype.hasobject:
                raise TypeError(
                    f"{self.where}: the checkpoint leaf {name or '<root>'} is not a numeric "
                    f"array ({type(leaf).__name__}); a checkpoint stores arrays only."
                )
            dtype, shape = _describe(leaf)
            arrays[f"leaf_{i:05d}"] = value
            leaves_meta.append({"path": name, "dtype": dtype, "shape": list(shape), "key": impl})
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "step": step,
            "fingerprint": self.fingerprint,
            "leaves": leaves_meta,
        }
        self._check_directory()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ValueError(
                f"{self.where}: the 'checkpoint_dir' parameter {str(self.directory)!r} cannot be "
                "created: a part of the path is an existing file. Pass a directory path."
            ) from None
        storage.write_arrays(self.path, arrays, meta)

    # ------------------------------------------------------------------------------ load
    def load(self, template: Any) -> tuple[int, Any] | None:
        """The stored ``(step, tree)`` in the structure of ``template``, or ``None`` if no
        checkpoint exists.

        ``template`` is a pytree of the same structure as the saved one (arrays,
        ``jax.ShapeDtypeStruct`` or Python scalars as leaves); each leaf comes back as the
        template's kind: a JAX array (placed with the template leaf's sharding), a NumPy array,
        or a Python scalar.

        Raises
        ------
        posterax.storage.CorruptFileError
            The checkpoint file is truncated or damaged.
        ValueError
            The checkpoint belongs to another run (fingerprint differs) or does not match the
            template (number of leaves, key paths, dtypes or shapes).
        """
        self._check_directory()
        if not self.path.exists():
            return None
        try:
            arrays, meta = storage.read_arrays(self.path, what="checkpoint")
        except storage.CorruptFileError as err:
            raise storage.CorruptFileError(f"{self.where}: {err}") from None
        step, leaves_meta = self._check_meta(meta)
        self._check_fingerprint(meta["fingerprint"])
        leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
        self._check_template(leaves, leaves_meta)
        restored = []
        for i, ((_, like), spec) in enumerate(zip(leaves, leaves_meta, strict=True)):
            value = arrays.get(f"leaf_{i:05d}")
            if value is None:
                raise self._not_ours(f"it lacks the array of leaf {i}")
            restored.append(self._restore_leaf(value, like, spec))
        return step, jax.tree_util.tree_unflatten(treedef, restored)

    def _not_ours(self, problem: str) -> ValueError:
        return ValueError(
            f"{self.where}: {str(self.path)!r} is not a posterax checkpoint this version can "
            f"read ({problem}). Delete it or pass another checkpoint_dir."
        )

    def _check_meta(self, meta: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        if meta.get("format") != FORMAT_NAME:
            raise self._not_ours(f"format {meta.get('format')!r}")
        version = meta.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(
                f"{self.where}: {str(self.path)!r} was written in checkpoint format version "
                f"{version!r}; this posterax reads versions up to {FORMAT_VERSION}. Upgrade "
                "posterax, or pass another checkpoint_dir."
            )
        step, leaves, fingerprint = meta.get("step"), meta.get("leaves"), meta.get("fingerprint")
        well_formed = (
            isinstance(step, int)
            and isinstance(fingerprint, dict)
            and isinstance(leaves, list)
            and all(
                isinstance(s, dict) and {"path", "dtype", "shape", "key"} <= s.keys()
                for s in leaves
            )
        )
        if not well_formed:
            raise self._not_ours("malformed step, fingerprint or leaf list")
        return step, leaves

    def _check_fingerprint(self, stored: dict[str, Any]) -> None:
        current = self.fingerprint
        if stored == current:
            return
        lines = []
        for key in sorted(stored.keys() | current.keys(), key=str):
            if key not in current:
                lines.append(f"{key!r} only in the checkpoint")
            elif key not in stored:
                lines.append(f"{key!r} only in this run")
            elif stored[key] != current[key]:
                lines.append(
                    f"{key!r}: checkpoint {_short(stored[key])}, this run {_short(current[key])}"
                )
        raise ValueError(
            f"{self.where}: the checkpoint in {str(self.directory)!r} belongs to a different run "
            f"(different settings, data or seed): {'; '.join(lines)}. {_FIX_FINGERPRINT}"
        )

    def _check_template(self, leaves: list[Any], specs: list[dict[str, Any]]) -> None:
        if len(leaves) != len(specs):
            raise ValueError(
                f"{self.where}: the checkpoint in {str(self.directory)!r} holds {len(specs)} "
                f"arrays but the state to restore has {len(leaves)}: it was written by another "
                f"method or posterax version. {_FIX_FINGERPRINT}"
            )
        problems = []
        for (path, like), spec in zip(leaves, specs, strict=True):
            name = jax.tree_util.keystr(path)
            dtype, shape = _describe(like)
            if name != spec["path"]:
                problems.append(
                    f"leaf {spec['path'] or '<root>'} where {name or '<root>'} is expected"
                )
            elif _is_python_scalar(like):  # any dtype converts to the template's type
                if spec["shape"] != [] or spec["key"] is not None:
                    problems.append(
                        f"{name or '<root>'}: {spec['dtype']}{tuple(spec['shape'])} in the "
                        f"checkpoint, a Python {type(like).__name__} expected"
                    )
            elif dtype != spec["dtype"] or list(shape) != spec["shape"]:
                problems.append(
                    f"{name or '<root>'}: {spec['dtype']}{tuple(spec['shape'])} in the "
                    f"checkpoint, {dtype}{shape} expected"
                )
        if problems:
            shown = "; ".join(problems[:5]) + (
                f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
            )
            raise ValueError(
                f"{self.where}: the checkpoint in {str(self.directory)!r} does not match the "
                f"state to restore ({shown}). {_FIX_FINGERPRINT}"
            )

    def _restore_leaf(self, value: np.ndarray, like: Any, spec: dict[str, Any]) -> Any:
        if spec["key"] is not None:
            try:
                key = jax.random.wrap_key_data(jnp.asarray(value), impl=spec["key"])
            except Exception as err:
                raise self._not_ours(f"PRNG key implementation {spec['key']!r}: {err}") from None
            return _place(key, like)
        if _is_python_scalar(like):
            return type(like)(value.item())
        if isinstance(like, np.generic):
            return value[()]
        if isinstance(like, jax.Array | jax.ShapeDtypeStruct):
            out = _place(value, like)
            return _as_weak(out) if getattr(like, "weak_type", False) else out
        return value

    # ----------------------------------------------------------------------------- clear
    def clear(self) -> None:
        """Remove the checkpoint file and leftovers of interrupted writes (the directory and
        any other files in it stay)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.directory.is_dir():
            for stale in self.directory.glob(f".{FILENAME}.*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.directory)!r}, where={self.where!r})"


def _place(x: Any, like: Any) -> jax.Array:
    """``x`` as a JAX array with the template leaf's sharding (default placement if none)."""
    sharding = getattr(like, "sharding", None)
    return jax.device_put(x, sharding) if sharding is not None else jnp.asarray(x)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["FILENAME", "CheckpointStore", "data_digest"]
