"""Where the benchmarks keep their results: one JSON file per grid cell, written atomically and
counted as finished only when it was made with the same settings (so runs resume), and the
mean ± standard error the summaries report."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: Path, text: str) -> None:
    """Write to a unique temporary file in the same folder, flush it to disk, then rename:
    readers see the old file or the whole new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finished(path: Path, settings: dict[str, Any]) -> bool:
    """A result on disk counts only if it was made with the same settings."""
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("settings") == settings
    except (json.JSONDecodeError, OSError):
        return False  # a damaged file is redone


def jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(settings))  # tuples -> lists, as they read back


def mean_se(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    se = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else float("nan")
    return float(arr.mean()), se


__all__ = ["finished", "jsonable", "mean_se", "write_atomic"]
