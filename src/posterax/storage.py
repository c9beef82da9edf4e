"""Array files that are safe to load: no pickle, written atomically, corruption detected.

One ``.npz`` file holds named arrays plus JSON metadata (stored as a ``uint8`` array under the
reserved name :data:`META_ENTRY`). The metadata carries a SHA-256 over every array's name, dtype,
shape and bytes and over the user's metadata, so a file that is truncated, damaged or edited is
refused with a :class:`CorruptFileError` instead of being loaded as a wrong model or state.

* Loading never executes code: ``np.load(..., allow_pickle=False)`` and ``json``; object arrays
  are refused when writing.
* Writing is atomic: a temporary file in the same directory is written, flushed and fsynced, then
  renamed over the target with ``os.replace``. A crash leaves either the old file or the new
  one, never a mix; the temporary file is removed on any error.
* Dtypes NumPy cannot store natively (``bfloat16``, ``float8_*`` from ``ml_dtypes``) are stored
  as unsigned integers of the same width and restored by name.

This module imports only the standard library and NumPy (no posterax layer), so every layer can
use it. The per-array digests (:func:`digest_array`, :func:`digest_arrays`, :func:`digest_json`)
are also used by the model files of :mod:`posterax.estimators.persistence`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "posterax-arrays"
FORMAT_VERSION = 1
META_ENTRY = "__posterax_meta__"
"""Reserved array name holding the JSON envelope (metadata and checksum)."""

_FIXES = {
    "checkpoint": (
        "Delete it (or choose another checkpoint_dir) and rerun without resume=True; the run "
        "starts over and writes a new checkpoint."
    ),
    "model": "Re-save the model from its source.",
}


class CorruptFileError(ValueError):
    """A stored file is truncated, damaged or fails its checksum; it was not loaded."""


# ----------------------------------------------------------------------------------- digests
def _contiguous_bytes(array: np.ndarray) -> np.ndarray:
    """The array's bytes in C order as a flat ``uint8`` view (no copy when contiguous)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def digest_array(array: Any) -> str:
    """SHA-256 (hex) of one array's dtype, shape and bytes.

    Parameters
    ----------
    array : array_like
        Any array NumPy can convert; object arrays are refused.

    Returns
    -------
    str
        64 hexadecimal characters; equal arrays of equal dtype and shape give equal digests.

    Examples
    --------
    >>> import numpy as np
    >>> digest_array(np.arange(3)) == digest_array(np.array([0, 1, 2]))
    True
    >>> digest_array(np.arange(3)) == digest_array(np.arange(3.0))
    False
    """
    arr = np.asarray(array)
    if arr.dtype.hasobject:
        raise TypeError(
            "digest_array: object arrays have no stable bytes; convert them to a numeric or "
            "string dtype first."
        )
    h = hashlib.sha256()
    h.update(json.dumps([str(arr.dtype), arr.dtype.str, list(arr.shape)]).encode())
    h.update(b"\0")
    h.update(_contiguous_bytes(arr))
    return h.hexdigest()


def digest_arrays(arrays: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over every array's name, dtype, shape and bytes (order-independent).

    Examples
    --------
    >>> import numpy as np
    >>> a = digest_arrays({"w": np.ones(2), "b": np.zeros(1)})
    >>> a == digest_arrays({"b": np.zeros(1), "w": np.ones(2)})
    True
    >>> a == digest_arrays({"w": np.ones(2), "c": np.zeros(1)})
    False
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(json.dumps([name, digest_array(arrays[name])]).encode())
        h.update(b"\n")
    return h.hexdigest()


def digest_json(value: Any) -> str:
    """SHA-256 (hex) of a JSON-able value in canonical form (sorted keys, tuples as lists).

    A value and the same value read back from its JSON text give the same digest.

    Examples
    --------
    >>> import json
    >>> meta = {"b": (1, 2.5), "a": None}
    >>> digest_json(meta) == digest_json(json.loads(json.dumps(meta)))
    True
    """
    plain = json.loads(json.dumps(value))  # as read back: tuples -> lists, keys -> str
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a written file (or a directory's entries) to disk; best effort for directories.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = file.write_text("hello")
    >>> fsync_path(file); fsync_path(file.parent)
    """
    is_dir = os.path.isdir(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if is_dir:  # some platforms (Windows) cannot open directories
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not is_dir:
            raise
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------- write
def _is_extended(dtype: np.dtype) -> bool:
    """A dtype from ``ml_dtypes`` (bfloat16, float8, int4): kind 'V' but not a plain void."""
    return dtype.kind == "V" and not isinstance(dtype, np.dtypes.VoidDType)


def _prepare(arrays: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Checked NumPy arrays ready for ``.npy`` and the names of the extended dtypes stored."""
    if not isinstance(arrays, Mapping):
        raise TypeError(
            f"write_arrays: 'arrays' must be a dict of name -> array, got {type(arrays).__name__}."
        )
    stored: dict[str, np.ndarray] = {}
    extended: dict[str, str] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"write_arrays: array names must be non-empty strings, got {name!r}.")
        if name == META_ENTRY:
            raise ValueError(f"write_arrays: the array name {META_ENTRY!r} is reserved.")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(
                f"write_arrays: the array {name!r} has dtype object, which can only be stored "
                "with pickle (refused: loading it could execute code). Convert it to a numeric "
                "or fixed-width string dtype first."
            )
        if _is_extended(arr.dtype):
            extended[name] = arr.dtype.name
            arr = np.ascontiguousarray(arr).view(np.dtype(f"u{arr.dtype.itemsize}"))
        stored[name] = arr
    return stored, extended


def _write_npz(file: Any, entries: dict[str, np.ndarray]) -> None:
    """What ``np.savez`` does, without pickle and without keyword-name clashes."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in entries.items():
            with zf.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def write_arrays(
    path: str | os.PathLike[str], arrays: Mapping[str, Any], meta: dict[str, Any]
) -> None:
    """Write ``arrays`` and the JSON-able ``meta`` to one ``.npz`` file, atomically.

    The file is first written to a temporary file next to ``path`` (flushed and fsynced), then
    renamed over ``path``: an existing file is replaced only once the new one is complete, and
    the temporary file is removed if anything fails. Missing parent directories are created.

    Parameters
    ----------
    path : str or path-like
        The file to write (conventionally ending in ``.npz``).
    arrays : dict of str -> array_like
        Named arrays; object arrays are refused (``TypeError`` naming the array).
    meta : dict
        JSON-serialisable metadata, returned unchanged (tuples as lists) by :func:`read_arrays`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.npz"
    >>> write_arrays(path, {"w": np.arange(3.0)}, {"step": 10})
    >>> arrays, meta = read_arrays(path, what="state")
    >>> arrays["w"], meta
    (array([0., 1., 2.]), {'step': 10})
    """
    if not isinstance(meta, dict):
        raise TypeError(f"write_arrays: 'meta' must be a dict, got {type(meta).__name__}.")
    stored, extended = _prepare(arrays)
    try:
        meta_json = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as err:
        raise TypeError(f"write_arrays: 'meta' must be JSON-serialisable ({err}).") from None
    body = {"meta": meta_json, "dtypes": extended}
    envelope = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "sha256": _checksum(stored, body),
        **body,
    }
    entries = {META_ENTRY: np.frombuffer(json.dumps(envelope).encode(), dtype=np.uint8)}
    entries.update(stored)

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    # 0o666 and the umask give the permissions of an ordinary new file (mkstemp would give 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        file = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        tmp.unlink()
        raise
    try:
        with file:
            _write_npz(file, entries)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_path(target.parent)


def _checksum(stored: dict[str, np.ndarray], body: dict[str, Any]) -> str:
    return hashlib.sha256(f"{digest_arrays(stored)}:{digest_json(body)}".encode()).hexdigest()


# -------------------------------------------------------------------------------------- read
def read_arrays(
    path: str | os.PathLike[str], *, what: str, fix: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`write_arrays`, verifying its checksum.

    Parameters
    ----------
    path : str or path-like
        The file to read.
    what : str
        What the file is, for messages: ``"checkpoint"``, ``"model"``, ...
    fix : str, optional
        The advice that ends a :class:`CorruptFileError`; default: one that fits ``what``
        (for ``"checkpoint"``: delete it and rerun without ``resume=True``).

    Returns
    -------
    arrays : dict of str -> numpy.ndarray
        The arrays as written (same names, dtypes, shapes and values).
    meta : dict
        The metadata as written (after a JSON round trip).

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path``.
    CorruptFileError
        The file is truncated, not an archive, misses its metadata, or fails its checksum.
    ValueError
        The file was written by a newer posterax file format.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.npz"
    >>> write_arrays(path, {"x": np.ones(2, dtype=np.float32)}, {"note": "hi"})
    >>> _ = path.write_bytes(path.read_bytes()[:-10])  # truncate it
    >>> try:
    ...     read_arrays(path, what="checkpoint")
    ... except CorruptFileError as err:
    ...     print(str(err).split(" is ")[1].split(",")[0])
    truncated or damaged
    """
    file = Path(path)
    advice = fix or _FIXES.get(what, f"Delete it and write the {what} again.")

    def corrupt(problem: str) -> CorruptFileError:
        return CorruptFileError(f"The {what} file {str(file)!r} is {problem}. {advice}")

    if not file.exists():
        raise FileNotFoundError(f"No {what} file at {str(file)!r}.")
    if file.is_dir():
        raise IsADirectoryError(f"The {what} path {str(file)!r} is a directory, not a file.")
    with open(file, "rb") as handle:  # an unreadable file (permissions) raises as it is
        raw, stored = _load_npz(handle, corrupt)
    envelope = _parse_envelope(raw, corrupt)
    if envelope["version"] > FORMAT_VERSION:
        raise ValueError(
            f"The {what} file {str(file)!r} was written in posterax array format version "
            f"{envelope['version']}; this posterax reads versions up to {FORMAT_VERSION}. "
            "Upgrade posterax (pip install -U posterax) to read it."
        )
    body = {"meta": envelope["meta"], "dtypes": envelope["dtypes"]}
    if _checksum(stored, body) != envelope["sha256"]:
        raise corrupt("damaged: its contents fail the SHA-256 check recorded when it was written")
    arrays = dict(stored)
    for name, dtype_name in envelope["dtypes"].items():
        if name not in arrays:
            raise corrupt(f"missing the array {name!r} named in its metadata")
        try:
            dtype = np.dtype(dtype_name)
        except TypeError:
            raise ValueError(
                f"The {what} file {str(file)!r} stores the array {name!r} as {dtype_name}, a "
                "dtype NumPy does not know yet: import ml_dtypes (or jax) before reading it."
            ) from None
        arrays[name] = arrays[name].view(dtype)
    return arrays, envelope["meta"]


def _load_npz(handle: Any, corrupt: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The metadata entry and the arrays of an open ``.npz`` file; any parse failure is
    reported through ``corrupt`` (the bytes are untrusted)."""
    try:
        data = np.load(handle, allow_pickle=False)
    except Exception as err:
        raise corrupt(
            f"truncated or damaged, not a readable .npz archive ({_brief(err)})"
        ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise corrupt("not an .npz archive written by posterax (it holds a single array)")
    try:
        with data:
            if META_ENTRY not in data.files:
                raise corrupt(f"missing its metadata entry {META_ENTRY!r}")
            raw = data[META_ENTRY]
            stored = {name: data[name] for name in data.files if name != META_ENTRY}
    except CorruptFileError:
        raise
    except Exception as err:
        raise corrupt(f"truncated or damaged ({_brief(err)})") from None
    return raw, stored


def _brief(err: BaseException) -> str:
    text = str(err)
    text = text if len(text) <= 200 else text[:200] + "..."
    return f"{type(err).__name__}: {text}"


def _parse_envelope(raw: np.ndarray, corrupt: Any) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise corrupt(f"damaged: its metadata entry {META_ENTRY!r} is not UTF-8 JSON bytes")
    try:
        envelope = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise corrupt(f"damaged: its metadata is not valid JSON ({_brief(err)})") from None
    valid = (
        isinstance(envelope, dict)
        and envelope.get("format") == FORMAT_NAME
        and isinstance(envelope.get("version"), int)
        and isinstance(envelope.get("sha256"), str)
        and isinstance(envelope.get("meta"), dict)
        and isinstance(envelope.get("dtypes"), dict)
    )
    if not valid:
        raise corrupt("damaged: its metadata lacks the format, version, checksum or meta fields")
    return envelope


__all__ = [
    "FORMAT_VERSION",
    "META_ENTRY",
    "CorruptFileError",
    "digest_array",
    "digest_arrays",
    "digest_json",
    "fsync_path",
    "read_arrays",
    "write_arrays",
]
