"""The optimisation-based network methods on the issue's reference problems, and their
bad-input errors. (Shapes, determinism and save/load for every method: see
test_network_conformance.py.)"""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import posterax as px
from flat_settings import flat_estimator
from posterax.data.uci import find_uci_dir, load_uci_split
from posterax.inference import TrainingDivergedWarning
from posterax.methods import method_from_settings

TRAINED = ["map", "vi", "vi_lowrank", "mc_dropout", "ensemble"]


@pytest.fixture(scope="module")
def seed_1d():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (100, 1))
    return X, np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=100)


@pytest.mark.parametrize(
    "method", ["ensemble", "laplace", pytest.param("mc_dropout", marks=pytest.mark.slow)]
)
def test_uncertainty_grows_outside_the_training_range(method, seed_1d):
    X, y = seed_1d
    if method == "laplace":  # the approximation itself: by default ("auto") the 10 held-out
        method = px.methods.Laplace(tune="marglik")  # rows of this split prefer the MAP's
    reg = px.BayesianRegressor(method=method, network=(50,), random_state=0, progress_bar=False)
    reg.fit(X, y)
    inside = reg.predict(np.linspace(-2.5, 2.5, 50)[:, None], return_std=True)[1]
    far = np.r_[np.linspace(-6, -4.2, 10), np.linspace(4.2, 6, 10)][:, None]
    outside = reg.predict(far, return_std=True)[1]
    assert outside.mean() > 1.2 * inside.mean()


@pytest.mark.parametrize(
    "method",
    # The seed cases of their issues run by default; the rest with the slow tests (each method's
    # contract is checked on every run by test_network_conformance.py).
    ["mala", "laplace"]
    + [pytest.param(m, marks=pytest.mark.slow) for m in (*TRAINED, "swag")]
    + [pytest.param(m, marks=pytest.mark.slow) for m in ("sgld", "sghmc", "csgmcmc", "psgld")],
)
def test_iris_accuracy(method):
    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=30, stratify=y, random_state=42)
    if method == "psgld":
        method = px.methods.SGLD(preconditioner="rmsprop")
    clf = px.BayesianClassifier(method, random_state=0, progress_bar=False).fit(Xtr, ytr)
    accuracy = np.mean(clf.predict(Xte) == yte)
    assert accuracy >= 0.93, f"{method}: test accuracy {accuracy:.3f}"


@pytest.mark.skipif(find_uci_dir() is None, reason="UCI data directory (../shared/data/uci) absent")
@pytest.mark.parametrize(
    "method",
    [
        "map",
        pytest.param("mc_dropout", marks=pytest.mark.slow),
        pytest.param("ensemble", marks=pytest.mark.slow),
        pytest.param("swag", marks=pytest.mark.slow),
        pytest.param("vi", marks=pytest.mark.slow),
        pytest.param("vi_lowrank", marks=pytest.mark.slow),
    ],
)
def test_boston_first_split(method):
    """Published MC-dropout level: RMSE about 2.9, test log-likelihood about -2.40."""
    d = load_uci_split("bostonHousing", 0)
    reg = px.BayesianRegressor(
        method=method_from_settings(method, dict(validation_fraction=0.1), ignore_unknown=True),
        network=(50,),
        random_state=0,
        progress_bar=False,
    ).fit(d.X_train, d.y_train)
    pred = reg.predict_samples(d.X_test)
    mean = np.asarray(pred.mean).mean(axis=0)
    rmse = np.sqrt(np.mean((mean - d.y_test) ** 2))
    log_p = norm.logpdf(d.y_test, np.asarray(pred.mean), np.asarray(pred.scale))
    test_ll = np.mean(logsumexp(log_p, axis=0) - np.log(log_p.shape[0]))
    assert rmse < 3.6 and test_ll > -2.8, f"{method}: RMSE {rmse:.3f}, LL {test_ll:.3f}"


def _small(**kwargs):
    settings = {"hidden": (4,), "num_epochs": 3, "progress_bar": False, **kwargs}
    return flat_estimator(px.BayesianRegressor, **settings)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "ensemble", "n_members": 0}, ValueError, r"'num_members'.*int >= 1.*Got 0"),
        (
            {"method": "mc_dropout", "dropout_rate": 1.0},
            ValueError,
            r"'dropout_rate'.*\[0, 1\).*1\.0",
        ),
        ({"method": "mc_dropout", "dropout_rate": -0.1}, ValueError, r"'dropout_rate'.*\[0, 1\)"),
        ({"method": "vi_lowrank", "rank": 0}, ValueError, r"'rank'.*int >= 1"),
        ({"method": "map", "learning_rate": 0}, ValueError, r"'learning_rate'.*> 0"),
        (
            {"method": "map", "num_epochs": "many"},
            ValueError,
            r"'num_epochs'.*'auto' or an int >= 1.*'many'",
        ),
        (
            {"method": "map", "validation_fraction": 1.5},
            ValueError,
            r"'validation_fraction'.*\(0, 1\)",
        ),
        ({"method": "map", "optimizer": "adam"}, TypeError, r"'optimizer'.*optax.*type str"),
        ({"method": "map", "prior": "cauchy"}, ValueError, r"'prior'.*'normal', 'laplace'.*cauchy"),
        ({"method": "map", "likelihood": "poisson"}, ValueError, r"'likelihood'.*'homoscedastic'"),
        ({"method": "map", "activation": "sigmoid"}, ValueError, r"'activation'.*'auto'"),
        ({"method": "sgld", "step_size": -1.0}, ValueError, r"'step_size'.*float > 0 or None"),
        ({"method": "sghmc", "thinning": 0}, ValueError, r"'thinning'.*int >= 1"),
        (
            {"method": "sghmc", "preconditioner": "rmsprop"},
            ValueError,
            r"'preconditioner'.*'sgld' or 'csgmcmc'.*Use preconditioner=None",
        ),
        ({"method": "sgld", "preconditioner": "adam"}, ValueError, r"'preconditioner'.*None or"),
        (
            {"method": "csgmcmc", "num_samples": 10, "num_cycles": 3},
            ValueError,
            r"'num_samples'.*multiple of num_cycles=3.*Got num_samples=10",
        ),
        ({"method": "csgmcmc", "num_cycles": 0}, ValueError, r"'num_cycles'.*int >= 1"),
        (
            {"method": "csgmcmc", "num_warmup": 10, "num_samples": 8, "num_cycles": 4},
            ValueError,
            r"'num_warmup'.*multiple of num_cycles=4.*Got num_warmup=10",
        ),
        ({"method": "swag", "num_collections": 1}, ValueError, r"'num_collections'.*int >= 2"),
        (
            {"method": "laplace", "hessian_structure": "kfac"},
            ValueError,
            r"'structure' parameter of px.methods.Laplace.*'kron', 'diag', 'full', 'lowrank'.*kfac",
        ),
        ({"method": "laplace", "subset_of_weights": "first"}, ValueError, r"'subset' parameter"),
        ({"method": "laplace", "pred_type": "mc"}, ValueError, r"'pred_type'.*'glm', 'nn'"),
        ({"method": "swag", "swa_learning_rate": 0.0}, ValueError, r"'swa_learning_rate'.*> 0"),
        (
            {"method": "nuts", "likelihood": "heteroscedastic"},
            ValueError,
            r"'likelihood'.*nuts.*homoscedastic.*Use method='map'",
        ),
    ],
)
def test_bad_settings_name_the_parameter(kwargs, error, match, seed_1d):
    X, y = seed_1d
    with pytest.raises(error, match=match):
        _small(**kwargs).fit(X, y)


def test_batch_size_larger_than_the_data_is_clipped_with_a_warning(seed_1d):
    X, y = seed_1d
    with pytest.warns(UserWarning, match=r"'batch_size'.*\(500\).*larger.*batch_size=100"):
        reg = _small(method="map", batch_size=500, validation_fraction=None).fit(X, y)
    assert reg.predict(X).shape == (100,)
    # With early stopping ("auto": 10% of 100 rows held out) the batch is the 90 rows left.
    with pytest.warns(UserWarning, match=r"'batch_size'.*\(500\).*larger.*batch_size=90"):
        _small(method="map", batch_size=500).fit(X, y)


def test_validation_fraction_auto_holds_out_a_tenth_from_100_rows(seed_1d):
    X, y = seed_1d
    assert _small(method="map").fit(X, y).posterior_.info["val_history"] is not None
    few = _small(method="map").fit(X[:99], y[:99]).posterior_.info
    assert few["val_history"] is None
    with pytest.raises(ValueError, match=r"'validation_fraction'.*'auto', None or a float.*'al'"):
        _small(method="map", validation_fraction="al").fit(X, y)


def test_diverging_training_warns_and_keeps_finite_parameters(seed_1d):
    X, y = seed_1d
    with pytest.warns(
        TrainingDivergedWarning, match=r"stopped at epoch \d+.*smaller learning_rate"
    ):
        reg = px.BayesianRegressor(
            method=px.methods.MAP(training=px.methods.Training(learning_rate=1e12, num_epochs=50)),
            network=(8,),
            progress_bar=False,
        ).fit(X * 1e6, y)
    leaves = [np.asarray(v) for layer in reg.posterior_.draws["net"] for v in layer.values()]
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves)
    assert reg.posterior_.info["diverged_at_epoch"] is not None
