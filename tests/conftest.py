import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import posterax as px


@pytest.fixture(scope="session")
def seed_data():
    X, y, true_coef = px.data.seed_regression()
    return X, y, true_coef


@pytest.fixture(scope="session")
def multi_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = 1.5 + X @ np.array([2.0, -1.0, 0.5]) + rng.normal(scale=0.7, size=60)
    return X, y


# The runnable examples are imported by tests that check them.
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


# XLA maps about six memory regions per compiled program and Linux allows 65,530 per process
# (vm.max_map_count): a test run compiles thousands of programs, and past the limit the
# compiler segfaults. Between modules, free the compiled programs once the count is high.
_MAPS = Path("/proc/self/maps")
_MAX_MAPS_BEFORE_CLEARING = 30_000


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs_when_maps_run_short():
    yield
    if _MAPS.exists() and sum(1 for _ in _MAPS.open()) > _MAX_MAPS_BEFORE_CLEARING:
        import gc

        import jax

        jax.clear_caches()
        gc.collect()
