"""Conformal risk control and learn-then-test: the same thresholds, valid sets and prediction sets
as MAPIE 1.6 on the same data, model and grid; risk control over 200 repetitions (mean test
false-negative rate <= alpha, precision held with probability >= 1 - delta); CRC with the
miscoverage loss reduces to split conformal; clear errors for bad input."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.tree import DecisionTreeClassifier

from posterax.conformal.ltt import control_fwer, hoeffding_bentkus_p_values, learn_then_test
from posterax.conformal.quantile import conformal_quantile
from posterax.conformal.risk import (
    MultiLabelRiskController,
    conformal_risk_control,
    false_discovery_rate,
    false_negative_rate,
)

GRID = np.arange(0.0, 1.0, 0.01)


class Oracle:
    """A 'model' whose inputs are the label probabilities themselves."""

    def predict_proba(self, X):
        return np.asarray(X)


def _oracle_data(n, seed, n_labels=20):
    """Label probabilities near 0 or 1 and labels drawn from them (the oracle is calibrated)."""
    rng = np.random.default_rng(seed)
    probs = rng.beta(0.15, 0.25, size=(n, n_labels))
    return probs, rng.uniform(size=probs.shape) < probs


@pytest.fixture(scope="module")
def multilabel():
    X, y = make_multilabel_classification(
        n_samples=1600,
        n_features=10,
        n_classes=5,
        n_labels=2,
        allow_unlabeled=False,
        random_state=0,
    )
    model = MultiOutputClassifier(LogisticRegression(max_iter=1000)).fit(X[:600], y[:600])
    return model, (X[600:1200], y[600:1200]), X[1200:]


# ----------------------------------------------------------------------------------------------
# Against MAPIE 1.6


def test_crc_recall_matches_mapie(multilabel):
    risk_control = pytest.importorskip("mapie.risk_control")
    model, (X_cal, y_cal), X_test = multilabel
    targets = [0.7, 0.8, 0.9, 0.95]
    mapie = risk_control.MultiLabelClassificationController(
        model.predict_proba, risk="recall", method="crc", target_level=targets
    ).calibrate(X_cal, y_cal)
    mapie_sets = mapie.predict(X_test)
    for i, target in enumerate(targets):
        ours = MultiLabelRiskController(model, loss="fnr", alpha=1 - target)
        sets = ours.conformalize(X_cal, y_cal).predict_set(X_test)
        assert ours.method_ == "crc"
        assert abs(ours.threshold_ - mapie.best_predict_param[i]) < 1e-6, target
        np.testing.assert_allclose(ours.risk_, mapie.r_hat, atol=1e-10)
        np.testing.assert_allclose(ours.upper_bound_, mapie.r_hat_plus, atol=1e-10)
        np.testing.assert_array_equal(sets, mapie_sets[:, :, i])
    assert len(set(mapie.best_predict_param.tolist())) == len(targets)  # four distinct choices


@pytest.mark.parametrize("confidence", [0.9, 0.8])
def test_ltt_precision_matches_mapie(multilabel, confidence):
    risk_control = pytest.importorskip("mapie.risk_control")
    model, (X_cal, y_cal), X_test = multilabel
    targets = [0.65, 0.7, 0.75, 0.8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAPIE warns where no threshold is valid
        mapie = risk_control.MultiLabelClassificationController(
            model.predict_proba,
            risk="precision",
            method="ltt",
            target_level=targets,
            confidence_level=confidence,
        ).calibrate(X_cal, y_cal)
    mapie_sets = mapie.predict(X_test)
    compared = 0
    for i, target in enumerate(targets):
        ours = MultiLabelRiskController(model, loss="fdr", alpha=1 - target, delta=1 - confidence)
        if len(mapie.valid_predict_params[i]) == 0:  # MAPIE: nan threshold, empty sets
            with pytest.raises(ValueError, match="no threshold is certified"):
                ours.conformalize(X_cal, y_cal)
            continue
        sets = ours.conformalize(X_cal, y_cal).predict_set(X_test)
        assert ours.method_ == "ltt"
        assert abs(ours.threshold_ - mapie.best_predict_param[i]) < 1e-6, target
        np.testing.assert_allclose(ours.valid_thresholds_, mapie.valid_predict_params[i], atol=1e-6)
        np.testing.assert_allclose(ours.risk_, mapie.r_hat, atol=1e-10)
        np.testing.assert_array_equal(sets, mapie_sets[:, :, i])
        assert 0 < len(mapie.valid_predict_params[i]) < len(GRID)
        compared += 1
    assert compared >= 2


def test_ltt_on_probability_array_matches_mapie():
    """predict_proba giving an (N, L) array; the oracle data; a non-monotone precision curve."""
    risk_control = pytest.importorskip("mapie.risk_control")
    probs, labels = _oracle_data(1500, 7, n_labels=8)
    keep = labels.any(axis=1)  # MAPIE needs at least one label per example
    probs, labels = probs[keep], labels[keep].astype(int)
    cal, test = slice(0, 700), slice(700, None)
    for target in (0.8, 0.85):
        mapie = risk_control.MultiLabelClassificationController(
            Oracle().predict_proba, risk="precision", target_level=target, confidence_level=0.9
        ).calibrate(probs[cal], labels[cal])
        ours = MultiLabelRiskController(Oracle(), loss="fdr", alpha=1 - target, delta=0.1)
        ours.conformalize(probs[cal], labels[cal])
        np.testing.assert_allclose(ours.valid_thresholds_, mapie.valid_predict_params[0], atol=1e-6)
        assert abs(ours.threshold_ - mapie.best_predict_param[0]) < 1e-6
        np.testing.assert_array_equal(
            ours.predict_set(probs[test]), mapie.predict(probs[test])[..., 0]
        )


def test_p_values_and_fwer_procedures_match_mapie():
    pytest.importorskip("mapie.risk_control")
    from mapie.risk_control import control_fwer as mapie_fwer
    from mapie.risk_control.methods import compute_hoeffding_bentkus_p_value

    rng = np.random.default_rng(3)
    risk = np.concatenate([rng.uniform(0.0, 0.3, 60), [0.0, 0.1, 0.2, 0.5]])
    for n, alpha in [(50, 0.1), (400, 0.2), (2000, 0.05)]:
        for binary in (False, True):
            ours = hoeffding_bentkus_p_values(risk, n, alpha, binary=binary)
            theirs = compute_hoeffding_bentkus_p_value(risk, n, alpha, binary=binary)[:, 0]
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    p = np.concatenate([10.0 ** rng.uniform(-6, 0, 40), [1e-4, 1e-4, 0.002]])  # with ties
    for delta in (0.05, 0.2):
        for ours_name, theirs_name in [("bonferroni", "bonferroni"), ("holm", "bonferroni_holm")]:
            expected = np.zeros(p.size, bool)
            expected[mapie_fwer(p, delta, fwer_method=theirs_name)] = True
            np.testing.assert_array_equal(control_fwer(p, delta, ours_name), expected)
        # MAPIE's fixed sequence starts at index 0; ours at the last lambda (lowest loss).
        decreasing = np.sort(p)[::-1]
        expected = np.zeros(p.size, bool)
        expected[mapie_fwer(decreasing[::-1], delta, fwer_method="fixed_sequence")] = True
        np.testing.assert_array_equal(
            control_fwer(decreasing, delta, "fixed_sequence"), expected[::-1]
        )
        assert 0 < expected.sum() < p.size


# ----------------------------------------------------------------------------------------------
# Exact reductions and hand-computed cases


def test_crc_with_miscoverage_loss_is_split_conformal():
    """With L_i(lambda) = 1{score_i > lambda}, CRC picks conformal_quantile(scores, alpha)."""
    rng = np.random.default_rng(0)
    for n, alpha in [(99, 0.1), (250, 0.05), (37, 0.2)]:
        scores = rng.exponential(size=n)
        lambdas = np.sort(scores)
        losses = (scores[:, None] > lambdas[None, :]).astype(float)
        out = conformal_risk_control(losses, lambdas, alpha)
        assert out.lambda_hat == float(conformal_quantile(scores, alpha)), (n, alpha)


def test_custom_loss_missing_any_label():
    """A user loss: 1 if the set misses any true label. CRC then picks the largest threshold t
    with #{i : min true-label prob_i <= t} + 1 <= alpha (n + 1), counted here directly."""
    probs, labels = _oracle_data(3000, 1, n_labels=4)
    keep = labels.any(axis=1)
    probs, labels = probs[keep], labels[keep]
    cal, test = slice(0, 1000), slice(1000, None)

    def miss_any(y_true, sets):
        return (y_true & ~sets).any(axis=1).astype(float)

    alpha = 0.1
    grid = np.linspace(0.0, 0.5, 501)
    ours = MultiLabelRiskController(Oracle(), loss=miss_any, alpha=alpha, thresholds=grid)
    ours.conformalize(probs[cal], labels[cal])
    weakest = np.where(labels[cal], probs[cal], np.inf).min(axis=1)
    counts = (weakest[:, None] <= grid[None, :]).sum(axis=0)
    expected = grid[counts + 1 <= alpha * (1000 + 1)].max()
    assert ours.threshold_ == expected
    sets = ours.predict_set(probs[test])
    covered = ~(labels[test] & ~sets).any(axis=1)
    assert abs(covered.mean() - (1 - alpha)) < 0.02


def test_losses_by_hand():
    y = np.array([[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 1]], bool)
    sets = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    np.testing.assert_allclose(false_negative_rate(y, sets), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(false_discovery_rate(y, sets), [2 / 3, 1.0, 0.25])
    assert false_negative_rate(np.zeros((1, 3), bool), np.zeros((1, 3), bool)).tolist() == [0.0]


def test_learn_then_test_by_hand():
    """Risk 1 - lambda, n = 2000: the valid lambdas are those whose risk is far enough below
    alpha for the Bonferroni level, and the fixed sequence certifies at least as many."""
    lambdas = np.linspace(0.0, 1.0, 21)
    u = (np.arange(2000) + 0.5) / 2000  # a uniform grid: risk exactly 1 - lambda
    losses = (u[:, None] > lambdas[None, :]).astype(float)
    out = learn_then_test(losses, lambdas, alpha=0.3, delta=0.1, fwer="bonferroni")
    np.testing.assert_allclose(out.risk, 1 - lambdas, atol=1e-12)
    # risk 0.25 at lambda 0.75: z = 0.05 / sqrt(0.3 * 0.7 / 2000) = 4.9 sd below alpha: valid;
    # risk 0.3 at lambda 0.7 is not below alpha at all.
    assert out.lambda_hat == pytest.approx(0.75)
    np.testing.assert_allclose(out.valid_lambdas, lambdas[15:])
    assert out.p_values[14] >= 1.0 - 1e-12
    seq = learn_then_test(losses, lambdas, alpha=0.3, delta=0.1, fwer="fixed_sequence")
    assert set(seq.valid_lambdas.tolist()) >= set(out.valid_lambdas.tolist())
    none = learn_then_test(losses[:, :10], lambdas[:10], alpha=0.3, delta=0.1)
    assert none.index == -1 and np.isnan(none.lambda_hat) and none.valid_lambdas.size == 0


def test_fixed_sequence_for_precision_stops_at_once_where_the_smallest_sets_are_empty():
    """One true label per example, probability in (0.4, 0.95); the others below 0.35. Sets
    {p > t} are exactly right for t in [0.35, 0.4) and empty above 0.95, where "fdr" is 1:
    fixed-sequence testing starts there (the smallest sets) and certifies nothing, Holm
    certifies the thresholds in between (as the docstring says)."""
    rng = np.random.default_rng(0)
    labels = np.eye(3, dtype=bool)[rng.integers(0, 3, 600)]
    probs = np.where(
        labels, rng.uniform(0.4, 0.95, labels.shape), rng.uniform(0, 0.35, labels.shape)
    )
    holm = MultiLabelRiskController(Oracle(), "fdr", alpha=0.1, fwer="holm")
    valid = holm.conformalize(probs, labels).valid_thresholds_
    assert valid.min() <= 0.35 < 0.4 <= valid.max() < 0.95
    fixed = MultiLabelRiskController(Oracle(), "fdr", alpha=0.1, fwer="fixed_sequence")
    with pytest.raises(
        ValueError,
        match=r"'fixed_sequence' starts at threshold 0.99 .*risk 1 .*"
        r"Use fwer='holm'",
    ):
        fixed.conformalize(probs, labels)


def test_multioutput_labels_seen_with_one_class_in_training():
    """A label never (always) present in the training data: its estimator's classes_ is [0]
    ([1]) and predict_proba gives one column, P(class 0) (P(class 1)); the column of class 1
    is the probability, 0 when there is none."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, np.zeros(400), np.ones(400)]).astype(int)
    model = MultiOutputClassifier(DecisionTreeClassifier(max_depth=3, random_state=0))
    model.fit(X[:200], y[:200])
    assert [len(c) for c in model.classes_] == [2, 2, 1, 1]
    sets = MultiLabelRiskController(model, "fnr", alpha=0.2).conformalize(X[200:300], y[200:300])
    chosen = sets.predict_set(X[300:])
    assert not chosen[:, 2].any() and chosen[:, 3].all()  # never / always present
    y_bad = np.where(y == 1, 2, 0)  # labels {0, 2}: not indicators
    bad = MultiOutputClassifier(DecisionTreeClassifier(max_depth=1)).fit(X[:200], y_bad[:200])
    with pytest.raises(ValueError, match=r"label 0 has classes \[0, 2\]; .*must be 0/1"):
        MultiLabelRiskController(bad).conformalize(X[200:300], y[200:300])


# ----------------------------------------------------------------------------------------------
# Guarantees over 200 repetitions


def test_risk_guarantees_over_repetitions():
    probs_test, labels_test = _oracle_data(60_000, 12345)
    fnr = np.array([false_negative_rate(labels_test, probs_test > t).mean() for t in GRID])
    fdr = np.array([false_discovery_rate(labels_test, probs_test > t).mean() for t in GRID])
    n, alpha_fnr, alpha_fdr, delta = 500, 0.1, 0.15, 0.1
    crc_risk, naive_risk = [], []
    held = {"holm": [], "fixed_sequence": []}
    for rep in range(200):
        probs, labels = _oracle_data(n, rep)
        crc = MultiLabelRiskController(Oracle(), "fnr", alpha=alpha_fnr).conformalize(probs, labels)
        crc_risk.append(fnr[np.flatnonzero(GRID == crc.threshold_)[0]])
        for fwer in held:
            ltt = MultiLabelRiskController(
                Oracle(), "fdr", alpha=alpha_fdr, delta=delta, fwer=fwer
            ).conformalize(probs, labels)
            valid = np.isin(GRID, ltt.valid_thresholds_)
            held[fwer].append(fdr[valid].max() <= alpha_fdr)  # every certified threshold at once
        # The plug-in choice the guarantee is about: empirical precision >= 1 - alpha.
        naive_risk.append(fdr[np.argmax(ltt.risk_ <= alpha_fdr)])
    crc_risk = np.array(crc_risk)
    se = crc_risk.std() / np.sqrt(200)
    jump = np.abs(np.diff(fnr[5:40])).max()  # grid coarseness near the chosen thresholds
    assert crc_risk.mean() <= alpha_fnr + 3 * se, crc_risk.mean()
    assert crc_risk.mean() >= alpha_fnr - 2 / (n + 1) - jump - 3 * se, crc_risk.mean()
    floor = 1 - delta - 3 * np.sqrt(delta * (1 - delta) / 200)
    for fwer, hits in held.items():
        assert np.mean(hits) >= floor, (fwer, np.mean(hits))
    assert np.mean(np.array(naive_risk) <= alpha_fdr) < floor  # the check has power


# ----------------------------------------------------------------------------------------------
# Bad input


def test_non_monotone_loss_is_refused_for_crc():
    losses = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]] * 20)
    with pytest.raises(ValueError, match="learn-then-test.*does not need monotonicity"):
        conformal_risk_control(losses, [0.0, 0.5, 1.0], alpha=0.5)
    probs, labels = _oracle_data(300, 0, n_labels=5)
    with pytest.raises(ValueError, match="method='ltt'"):
        MultiLabelRiskController(Oracle(), "fdr", method="crc").conformalize(probs, labels)
    with pytest.raises(ValueError, match="Example .* rises .* learn-then-test"):
        MultiLabelRiskController(
            Oracle(), false_discovery_rate, method="crc", alpha=0.3
        ).conformalize(probs, labels)
    ltt = MultiLabelRiskController(Oracle(), false_discovery_rate, method="ltt", alpha=0.3)
    assert ltt.conformalize(probs, labels).valid_thresholds_.size > 0


def test_alpha_too_small_for_n_names_the_smallest_n():
    losses = np.zeros((9, 3))
    with pytest.raises(ValueError, match=r"at least n = 19"):
        conformal_risk_control(losses, [0.0, 0.5, 1.0], alpha=0.05)
    with pytest.raises(ValueError, match=r"at least n = 39"):
        conformal_risk_control(np.zeros((30, 3)), [0.0, 0.5, 1.0], alpha=0.05, bound=2.0)
    assert conformal_risk_control(np.zeros((19, 3)), [0.0, 0.5, 1.0], alpha=0.05).index == 0


def test_no_lambda_reaches_alpha():
    losses = np.full((100, 3), 0.5)
    with pytest.raises(ValueError, match="Extend the grid"):
        conformal_risk_control(losses, [0.0, 0.5, 1.0], alpha=0.1)
    probs, labels = _oracle_data(300, 0, n_labels=5)
    with pytest.raises(ValueError, match="larger alpha or a better model"):
        MultiLabelRiskController(Oracle(), "fdr", alpha=0.01).conformalize(probs, labels)


def test_shapes_and_ranges():
    with pytest.raises(ValueError, match=r"shape \(n, m\).*\(n, 4\).*Got shape \(10, 3\)"):
        conformal_risk_control(np.zeros((10, 3)), np.arange(4.0), 0.2)
    with pytest.raises(ValueError, match="strictly increasing"):
        learn_then_test(np.zeros((10, 3)), [0.0, 0.5, 0.4], 0.2, 0.1)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\].*'bound'"):
        conformal_risk_control(np.full((10, 2), 2.0), [0.0, 1.0], 0.5)
    with pytest.raises(TypeError, match=r"'bound' .*Got '1' of type str\. Pass a number"):
        conformal_risk_control(np.zeros((10, 2)), [0.0, 1.0], 0.5, bound="1")
    nan_losses = np.zeros((10, 2))
    nan_losses[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"'losses' .* finite\. Got 1 NaN .*index \(3, 1\)\. "):
        learn_then_test(nan_losses, [0.0, 1.0], 0.5, 0.1)
    with pytest.raises(ValueError, match=r"'lambdas' .* finite\. .*inf at index 1\. "):
        learn_then_test(np.zeros((10, 2)), [0.0, np.inf], 0.5, 0.1)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        learn_then_test(np.full((10, 2), -0.5), [0.0, 1.0], 0.5, 0.1)
    with pytest.raises(ValueError, match="'delta'.*Did you mean 0.1"):
        learn_then_test(np.zeros((10, 2)), [0.0, 1.0], 0.5, 10)
    with pytest.raises(ValueError, match="'fwer'"):
        learn_then_test(np.zeros((10, 2)), [0.0, 1.0], 0.5, 0.1, fwer="bh")

    probs, labels = _oracle_data(200, 0, n_labels=5)
    ctl = MultiLabelRiskController(Oracle(), "fnr", alpha=0.2)
    with pytest.raises(ValueError, match=r"'y'.*shape of predict_proba.*\(200, 5\).*\(200, 4\)"):
        ctl.conformalize(probs, labels[:, :4])
    with pytest.raises(ValueError, match="0/1"):
        ctl.conformalize(probs, labels * 2)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        ctl.conformalize(probs * 3 - 1, labels)
    with pytest.raises(ValueError, match="'thresholds'.*strictly increasing"):
        MultiLabelRiskController(Oracle(), thresholds=[0.5, 0.1]).conformalize(probs, labels)
    with pytest.raises(ValueError, match=r"one loss per example, shape \(200,\)"):
        MultiLabelRiskController(Oracle(), loss=lambda y, s: (y & s).mean()).conformalize(
            probs, labels
        )

    def precision(y, sets):  # no guard: an empty set divides by zero
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - (y & sets).sum(axis=1) / sets.sum(axis=1)

    with pytest.raises(ValueError, match=r"must return finite losses\. Got \d+ NaN .*Guard"):
        MultiLabelRiskController(Oracle(), loss=precision, method="ltt").conformalize(probs, labels)
    ctl.conformalize(probs, labels)
    with pytest.raises(ValueError, match="conformalized with 5"):
        ctl.predict_set(probs[:, :3])


def test_workflow_with_fit_and_estimator_outputs(multilabel):
    model, (X_cal, y_cal), X_test = multilabel
    ctl = MultiLabelRiskController(
        MultiOutputClassifier(LogisticRegression(max_iter=1000)), alpha=0.1, prefit=False
    )
    ctl.fit(X_cal[:300], y_cal[:300]).conformalize(X_cal[300:], y_cal[300:])
    sets = ctl.predict_set(X_test)
    assert sets.shape == (X_test.shape[0], 5) and sets.dtype == bool
    stacked = np.stack([p for p in model.predict_proba(X_test)], axis=1)  # (N, L, 2)

    class ThreeD:
        def predict_proba(self, X):
            return np.stack([p for p in model.predict_proba(X)], axis=1)

    a = MultiLabelRiskController(model, alpha=0.1).conformalize(X_cal, y_cal)
    b = MultiLabelRiskController(ThreeD(), alpha=0.1).conformalize(X_cal, y_cal)
    assert a.threshold_ == b.threshold_
    np.testing.assert_array_equal(a.predict_set(X_test), stacked[..., 1] > a.threshold_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MultiLabelRiskController(model).get_params()["loss"] == "fnr"
