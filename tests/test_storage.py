"""posterax.storage: atomic, checksummed, pickle-free array files; and a static audit that no
file posterax loads can execute code (no pickle imports, no ``np.load`` without
``allow_pickle=False``)."""

import ast
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from posterax import storage
from posterax.storage import CorruptFileError, read_arrays, write_arrays

SRC = Path(__file__).resolve().parents[1] / "src" / "posterax"


def _arrays():
    return {
        "w": np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4),
        "steps": np.arange(5, dtype=np.int64),
        "mask": np.array([True, False]),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3)),
        "labels": np.array(["ant", "bee"]),
        "big_endian": np.arange(3, dtype=">f8"),
        "half": np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16),
        "posterior/draws/net/0/w": np.ones((2, 2)),
        "file": np.ones(1),  # a name that would clash with np.savez's own argument
    }


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "state.npz"
    write_arrays(path, _arrays(), {"step": 7, "fingerprint": {"seed": 0, "hidden": (5,)}})
    return path


def test_round_trip_keeps_names_dtypes_shapes_values_and_meta(written):
    arrays, meta = read_arrays(written, what="checkpoint")
    expected = _arrays()
    assert arrays.keys() == expected.keys()
    for name, value in expected.items():
        assert arrays[name].dtype == value.dtype, name
        assert arrays[name].shape == value.shape, name
        np.testing.assert_array_equal(arrays[name], value, err_msg=name)
    assert meta == {"step": 7, "fingerprint": {"seed": 0, "hidden": [5]}}


def test_no_pickle_in_the_file(written):
    with np.load(written, allow_pickle=False) as data:  # would raise on any pickled entry
        assert all(data[k].dtype != object for k in data.files)
        assert storage.META_ENTRY in data.files


@pytest.mark.parametrize(
    ("arrays", "meta", "error", "match"),
    [
        ({"labels": np.array(["a", 1], dtype=object)}, {}, TypeError, "'labels' has dtype object"),
        ({storage.META_ENTRY: np.ones(1)}, {}, ValueError, "reserved"),
        ({"": np.ones(1)}, {}, TypeError, "non-empty strings"),
        ({"x": np.ones(1)}, {"bad": object()}, TypeError, "JSON-serialisable"),
        ({"x": np.ones(1)}, ["not", "a", "dict"], TypeError, "'meta' must be a dict"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, arrays, meta, error, match):
    with pytest.raises(error, match=match):
        write_arrays(tmp_path / "x.npz", arrays, meta)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No checkpoint file at '.*nope\.npz'"):
        read_arrays(tmp_path / "nope.npz", what="checkpoint")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_arrays(tmp_path, what="model")


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.02, 0.5, 0.9, 0.999])
def test_truncated_file_is_a_clear_error(written, fraction):
    data = written.read_bytes()
    written.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CorruptFileError) as info:
        read_arrays(written, what="checkpoint")
    message = str(info.value)
    assert str(written) in message and "truncated or damaged" in message
    assert "rerun without resume=True" in message
    assert isinstance(info.value, ValueError)


def test_flipped_byte_in_array_data_is_detected(written):
    data = bytearray(written.read_bytes())
    needle = np.linspace(-1.0, 1.0, 12, dtype=np.float32)[5:8].tobytes()
    at = bytes(data).find(needle)
    assert at > 0 and bytes(data).count(needle) == 1
    data[at + 1] ^= 0x01
    written.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="state.npz' is .*damaged"):
        read_arrays(written, what="model")


def _rewrite(path, change):
    """Rewrite a valid archive with ``change(members)`` applied: CRCs stay valid, so only the
    SHA-256 can tell."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)


def _npy(array):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_consistent_rewrite_of_an_array_fails_the_checksum(written):
    _rewrite(written, lambda m: m.update({"steps.npy": _npy(np.array([0, 1, 2, 3, 99]))}))
    with pytest.raises(CorruptFileError, match="fail the SHA-256 check"):
        read_arrays(written, what="checkpoint")


def test_consistent_rewrite_of_the_meta_fails_the_checksum(written):
    def bump_step(members):
        envelope = json.loads(np.load(io.BytesIO(members[f"{storage.META_ENTRY}.npy"])).tobytes())
        envelope["meta"]["step"] = 8
        raw = np.frombuffer(json.dumps(envelope).encode(), dtype=np.uint8)
        members[f"{storage.META_ENTRY}.npy"] = _npy(raw)

    _rewrite(written, bump_step)
    with pytest.raises(CorruptFileError, match="fail the SHA-256 check"):
        read_arrays(written, what="checkpoint")


def test_removed_or_added_array_fails_the_checksum(written, tmp_path):
    _rewrite(written, lambda m: m.pop("mask.npy"))
    with pytest.raises(CorruptFileError, match="SHA-256"):
        read_arrays(written, what="checkpoint")
    other = tmp_path / "other.npz"
    write_arrays(other, {"a": np.ones(2)}, {})
    _rewrite(other, lambda m: m.update({"b.npy": _npy(np.zeros(1))}))
    with pytest.raises(CorruptFileError, match="SHA-256"):
        read_arrays(other, what="checkpoint")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_bytes(os.urandom(300)), "not a readable .npz archive"),
        (lambda p: p.write_bytes(b""), "not a readable .npz archive"),
        (lambda p: np.save(p.open("wb"), np.ones(3)), "holds a single array"),
        (lambda p: np.savez(p.open("wb"), a=np.ones(3)), "missing its metadata entry"),
        (
            lambda p: np.savez(p.open("wb"), **{storage.META_ENTRY: np.frombuffer(b"{x", "u1")}),
            "not valid JSON",
        ),
        (
            lambda p: np.savez(p.open("wb"), **{storage.META_ENTRY: np.ones(2)}),
            "not UTF-8 JSON bytes",
        ),
        (
            lambda p: np.savez(p.open("wb"), **{storage.META_ENTRY: np.frombuffer(b"[]", "u1")}),
            "lacks the format",
        ),
    ],
)
def test_garbage_files_are_clear_errors(tmp_path, make, match):
    path = tmp_path / "checkpoint.npz"
    make(path)
    with pytest.raises(CorruptFileError, match=match):
        read_arrays(path, what="checkpoint")


def test_pickled_npy_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.npz"
    payload = np.array([{"boom": 1}], dtype=object)
    np.savez(path, **{storage.META_ENTRY: np.frombuffer(b"{}", "u1"), "x": payload})
    with pytest.raises(CorruptFileError, match="damaged"):
        read_arrays(path, what="model")


def test_newer_version_asks_for_an_upgrade(written):
    def bump_version(members):
        envelope = json.loads(np.load(io.BytesIO(members[f"{storage.META_ENTRY}.npy"])).tobytes())
        envelope["version"] = storage.FORMAT_VERSION + 1
        raw = np.frombuffer(json.dumps(envelope).encode(), dtype=np.uint8)
        members[f"{storage.META_ENTRY}.npy"] = _npy(raw)

    _rewrite(written, bump_version)
    with pytest.raises(ValueError, match="reads versions up to 1. Upgrade posterax") as info:
        read_arrays(written, what="checkpoint")
    assert not isinstance(info.value, CorruptFileError)


def test_fix_advice_follows_what(written):
    written.write_bytes(b"junk")
    for what, fix, advice in [
        ("model", None, "Re-save the model from its source."),
        ("cache", None, "Delete it and write the cache again."),
        ("model", "Call 911.", "Call 911."),
    ]:
        with pytest.raises(CorruptFileError) as info:
            read_arrays(written, what=what, fix=fix)
        assert str(info.value).startswith(f"The {what} file ") and str(info.value).endswith(advice)


def _temp_files(directory):
    return [p for p in Path(directory).iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("fail_in", ["write", "replace", "interrupt"])
def test_failed_write_keeps_the_previous_file_and_removes_the_temporary(
    written, monkeypatch, fail_in
):
    before = written.read_bytes()

    def half_write(file, entries):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt if fail_in == "interrupt" else OSError("disk full")

    def no_replace(src, dst):
        raise OSError("rename failed")

    if fail_in == "replace":
        monkeypatch.setattr(storage.os, "replace", no_replace)
    else:
        monkeypatch.setattr(storage, "_write_npz", half_write)
    with pytest.raises(KeyboardInterrupt if fail_in == "interrupt" else OSError):
        write_arrays(written, {"w": np.zeros(3)}, {"step": 8})
    monkeypatch.undo()
    assert written.read_bytes() == before
    assert read_arrays(written, what="checkpoint")[1]["step"] == 7
    assert _temp_files(written.parent) == []


def test_replace_is_the_last_step(tmp_path, monkeypatch):
    """The target appears only through os.replace of a complete, fsynced temporary file."""
    seen = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(storage.os, "fsync", lambda fd: seen.append("fsync") or real_fsync(fd))

    def replace(src, dst):
        seen.append("replace")
        assert Path(src).parent == Path(dst).parent and Path(src).name.endswith(".tmp")
        assert read_arrays(src, what="checkpoint")[1] == {"step": 1}  # complete already
        assert not Path(dst).exists()
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace)
    write_arrays(tmp_path / "sub" / "c.npz", {"w": np.ones(2)}, {"step": 1})
    assert seen[:2] == ["fsync", "replace"]
    assert _temp_files(tmp_path / "sub") == []


def test_new_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_arrays(tmp_path / "p.npz", {"w": np.ones(1)}, {})
    finally:
        os.umask(old)
    assert (tmp_path / "p.npz").stat().st_mode & 0o777 == 0o644


def test_digests_see_dtype_shape_bytes_and_names():
    a = np.arange(6, dtype=np.float32)
    base = storage.digest_array(a)
    assert storage.digest_array(a.copy()) == base
    assert storage.digest_array(a.reshape(2, 3)) != base
    assert storage.digest_array(a.astype(np.float64)) != base
    assert storage.digest_array(a.astype(">f4")) != base
    flipped = a.copy()
    flipped[3] = np.nextafter(flipped[3], np.float32(10))
    assert storage.digest_array(flipped) != base
    assert storage.digest_array(a[::2]) == storage.digest_array(np.ascontiguousarray(a[::2]))
    assert storage.digest_arrays({"a": a}) != storage.digest_arrays({"b": a})
    meta = {2: "x", 10: ("y",), "n": float("nan")}
    assert storage.digest_json(meta) == storage.digest_json(json.loads(json.dumps(meta)))
    assert storage.digest_json({"a": 1}) != storage.digest_json({"a": 1.5})


def test_storage_imports_only_the_standard_library_and_numpy():
    tree = ast.parse((SRC / "storage.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    third_party = {r for r in roots if r not in sys.stdlib_module_names and r != "__future__"}
    assert third_party == {"numpy"}


# ---------------------------------------------------------------------- static audit: no pickle
_PICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
_NUMPY_MODULES = ("numpy", "jax.numpy")


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def audit(source, filename="<src>"):
    """Problems that could make loading a file execute code, and the number of NumPy loads."""
    tree = ast.parse(source, filename)
    aliases, problems, loads = {}, [], 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _PICKLERS:
                    problems.append(f"{filename}:{node.lineno}: import {alias.name}")
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in _PICKLERS:
                problems.append(f"{filename}:{node.lineno}: from {node.module} import")
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg == "allow_pickle" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                problems.append(f"{filename}:{node.lineno}: allow_pickle={ast.unparse(kw.value)}")
        name = _dotted(node.func)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        full = aliases.get(head, head) + (f".{rest}" if rest else "")
        if full in ("__import__", "importlib.import_module") and any(
            isinstance(a, ast.Constant) and str(a.value).split(".")[0] in _PICKLERS
            for a in node.args
        ):
            problems.append(f"{filename}:{node.lineno}: dynamic import of a pickler")
        if full in {f"{m}.load" for m in _NUMPY_MODULES}:
            loads += 1
            safe = any(
                kw.arg == "allow_pickle"
                and isinstance(kw.value, ast.Constant)
                and kw.value.value is False
                for kw in node.keywords
            )
            if not safe:
                problems.append(f"{filename}:{node.lineno}: {name}(...) without allow_pickle=False")
    return problems, loads


@pytest.mark.parametrize(
    "bad",
    [
        "import pickle",
        "import cloudpickle as cp",
        "from joblib import load",
        "from pickle import loads as l",
        "import numpy as np\nnp.load('x.npz')",
        "import numpy\nnumpy.load('x.npz', allow_pickle=True)",
        "import jax.numpy as jnp\njnp.load('x')",
        "import jax\njax.numpy.load('x')",
        "from numpy import load\nload('x')",
        "from numpy import load as ld\nld('x', allow_pickle=flag)",
        "import numpy as np\nnp.savez('x', a=1, allow_pickle=True)",
        "__import__('pickle')",
        "import importlib\nimportlib.import_module('dill')",
    ],
)
def test_audit_catches_unsafe_loading(bad):
    problems, _ = audit(bad)
    assert problems, bad


def test_audit_passes_safe_loading():
    good = (
        "import numpy as np\nimport json\n"
        "np.load('x.npz', allow_pickle=False)\njson.loads('{}')\nnp.loadtxt('x.txt')\n"
        "'''docstrings may say pickle'''\n"
    )
    assert audit(good) == ([], 1)


def test_no_source_file_can_unpickle():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the scan sees the whole package
    problems, loads = [], 0
    for file in files:
        found, n = audit(file.read_text(), str(file.relative_to(SRC)))
        problems += found
        loads += n
    assert problems == []
    assert loads >= 2  # persistence.py and storage.py load .npz files: the audit sees them
