"""A small data set in the UCI benchmark's directory layout, for the benchmark's tests."""

import numpy as np


def write_tiny_uci(root, n_splits: int):
    """``root/tiny``: 60 rows, 3 features + target (noise 0.3), ``n_splits`` fixed 50/10
    splits; returns ``root``."""
    folder = root / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -0.5, 0.2]) + 0.3 * rng.normal(size=60)
    np.savetxt(folder / "data.txt", np.column_stack([X, y]))
    np.savetxt(folder / "index_features.txt", [0, 1, 2], fmt="%d")
    np.savetxt(folder / "index_target.txt", [3], fmt="%d")
    (folder / "n_splits.txt").write_text(f"{n_splits}\n")
    for k in range(n_splits):
        order = np.random.default_rng(k).permutation(60)
        np.savetxt(folder / f"index_train_{k}.txt", order[:50], fmt="%d")
        np.savetxt(folder / f"index_test_{k}.txt", order[50:], fmt="%d")
    return root
