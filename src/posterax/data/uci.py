"""The UCI regression splits of Hernández-Lobato & Adams (2015), read at run time from a
directory laid out like ``../shared/data/uci`` (``<set>/data.txt``, ``index_*.txt``).

The data are never shipped with posterax: pass ``data_dir`` or set ``POSTERAX_UCI_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

DEFAULT_DIRS = ("../shared/data/uci", "../../shared/data/uci")


class UCISplit(NamedTuple):
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def find_uci_dir(data_dir: Any = None) -> Path | None:
    """``data_dir``, else ``$POSTERAX_UCI_DIR``, else the first default that exists."""
    candidates = [data_dir] if data_dir is not None else []
    if os.environ.get("POSTERAX_UCI_DIR"):
        candidates.append(os.environ["POSTERAX_UCI_DIR"])
    if data_dir is None:
        candidates.extend(DEFAULT_DIRS)
    for candidate in candidates:
        if candidate is not None and Path(candidate).is_dir():
            return Path(candidate)
    return None


def load_uci_split(name: str, split: int = 0, data_dir: Any = None) -> UCISplit:
    """Train/test arrays of split ``split`` of the UCI set ``name`` (e.g. ``"bostonHousing"``).

    Raises
    ------
    FileNotFoundError
        The data directory or the set's files are missing (the message says where it looked).
    """
    root = find_uci_dir(data_dir)
    folder = None if root is None else root / name
    if folder is None or not (folder / "data.txt").is_file():
        looked = data_dir if data_dir is not None else ", ".join(DEFAULT_DIRS)
        raise FileNotFoundError(
            f"load_uci_split: no UCI set {name!r} found (looked in {looked}). Pass data_dir= "
            "a directory holding <set>/data.txt and index_*.txt, or set POSTERAX_UCI_DIR."
        )
    data = np.loadtxt(folder / "data.txt")
    features = np.loadtxt(folder / "index_features.txt", dtype=int, ndmin=1)
    target = int(np.loadtxt(folder / "index_target.txt", dtype=int))
    train = np.loadtxt(folder / f"index_train_{split}.txt", dtype=int)
    test = np.loadtxt(folder / f"index_test_{split}.txt", dtype=int)
    return UCISplit(
        data[train][:, features], data[train, target], data[test][:, features], data[test, target]
    )


__all__ = ["UCISplit", "find_uci_dir", "load_uci_split"]
