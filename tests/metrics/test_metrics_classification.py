"""Classification, calibration-error, selective-prediction and OOD metrics vs references."""

import jax
import numpy as np
import pytest
from sklearn import metrics as skm

from posterax.base import PredictiveSamples
from posterax.metrics import (
    accuracy,
    adaptive_calibration_error,
    aupr,
    aurc,
    auroc,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    fpr_at_tpr,
    log_loss,
    maximum_calibration_error,
    ood_detection_metrics,
    reliability_bins,
    risk_coverage_curve,
)


@pytest.fixture
def probs():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4) * 0.7, size=300)
    y = np.array([rng.choice(4, p=row) for row in p])
    return y, p


def test_accuracy_log_loss_brier_match_sklearn(probs):
    y, p = probs
    assert float(accuracy(y, p)) == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    assert float(log_loss(y, p)) == pytest.approx(skm.log_loss(y, p), rel=1e-5)
    assert float(brier_score(y, p)) == pytest.approx(
        skm.brier_score_loss(y, p, scale_by_half=False), rel=1e-5
    )
    # binary: a 1-D positive-class probability
    yb, pb = (y > 1).astype(int), p[:, 2:].sum(1)
    assert float(log_loss(yb, pb)) == pytest.approx(skm.log_loss(yb, pb), rel=1e-5)
    assert float(brier_score(yb, pb)) == pytest.approx(2 * skm.brier_score_loss(yb, pb), rel=1e-5)


def test_predictive_samples_average_probabilities_stably():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 40, 3)) * 3
    y = rng.integers(0, 3, 40)
    mean_p = np.mean(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), axis=0)
    pred = PredictiveSamples.classification(logits)
    assert float(log_loss(y, pred)) == pytest.approx(skm.log_loss(y, mean_p), rel=1e-5)
    assert float(accuracy(y, pred)) == pytest.approx(skm.accuracy_score(y, mean_p.argmax(1)))
    # a label with probability ~exp(-1000): float32 softmax gives 0, the log-sum-exp does not
    extreme = PredictiveSamples.classification(np.array([[[0.0, 1000.0]]], np.float32))
    assert float(log_loss([0], extreme)) == pytest.approx(1000.0, rel=1e-4)


def _ece_reference(y, p, n_bins):
    """A plain loop over equal-width bins, written independently of the library."""
    conf, pred = p.max(1), p.argmax(1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        if inside.any():
            total += inside.mean() * abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
    return total


def test_ece_hand_computed_and_reference(probs):
    # bins of width 0.25: {0.6, 0.7} and {0.9, 0.95}; accuracies 1/2 and 1
    y = np.array([0, 1, 0, 0])
    p1 = np.array([0.6, 0.7, 0.9, 0.95])
    p = np.stack([p1, 1 - p1], 1)
    expected = 0.5 * abs(0.5 - 0.65) + 0.5 * abs(1.0 - 0.925)
    assert float(expected_calibration_error(y, p, n_bins=4)) == pytest.approx(expected)
    assert float(maximum_calibration_error(y, p, n_bins=4)) == pytest.approx(0.15)
    yy, pp = probs
    for n_bins in (1, 10, 15):
        ref = _ece_reference(yy, pp, n_bins)
        assert float(expected_calibration_error(yy, pp, n_bins=n_bins)) == pytest.approx(
            ref, rel=1e-5
        )


def test_equal_mass_bins_and_reliability_bins(probs):
    y, p = probs
    bins = reliability_bins(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_array_equal(np.asarray(bins.count), np.full(10, 30.0))
    conf = np.sort(p.max(1))
    np.testing.assert_allclose(bins.confidence, conf.reshape(10, 30).mean(1), rtol=1e-5)
    uniform = reliability_bins(y, p, n_bins=15)
    assert float(np.sum(uniform.count)) == 300
    filled = np.asarray(uniform.count) > 0
    ece = np.nansum(
        np.asarray(uniform.count)[filled]
        / 300
        * np.abs(np.asarray(uniform.accuracy)[filled] - np.asarray(uniform.confidence)[filled])
    )
    assert float(expected_calibration_error(y, p)) == pytest.approx(ece, rel=1e-5)
    # equal-mass ECE equals the same formula over the sorted groups
    order = np.argsort(p.max(1), kind="stable")
    c, hit = p.max(1)[order], (p.argmax(1) == y)[order]
    ref = np.mean([abs(hit[i : i + 30].mean() - c[i : i + 30].mean()) for i in range(0, 300, 30)])
    got = expected_calibration_error(y, p, n_bins=10, strategy="quantile")
    assert float(got) == pytest.approx(ref, rel=1e-5)


def test_classwise_and_adaptive_reference(probs):
    y, p = probs
    n, k = p.shape
    cw = 0.0
    for c in range(k):
        pc, hit = p[:, c], (y == c).astype(float)
        idx = np.minimum((pc * 15).astype(int), 14)
        cw += sum(abs(hit[idx == b].sum() - pc[idx == b].sum()) for b in range(15)) / n
    assert float(classwise_calibration_error(y, p)) == pytest.approx(cw / k, rel=1e-5)
    gaps = []
    for c in range(k):
        order = np.argsort(p[:, c], kind="stable")
        pc, hit = p[order, c], (y[order] == c).astype(float)
        gaps += [abs(hit[i : i + 20].mean() - pc[i : i + 20].mean()) for i in range(0, n, 20)]
    assert float(adaptive_calibration_error(y, p, n_bins=15)) == pytest.approx(
        np.mean(gaps), rel=1e-5
    )


def test_calibrated_predictions_have_small_ece():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), size=20000)
    y = (rng.uniform(size=(20000, 1)) > p.cumsum(1)).sum(1)  # y ~ Categorical(p)
    assert float(expected_calibration_error(y, p)) < 0.02
    assert float(classwise_calibration_error(y, p)) < 0.02
    over = np.exp(3 * np.log(p))
    over /= over.sum(1, keepdims=True)  # sharpened: over-confident
    assert float(expected_calibration_error(y, over)) > 0.1


def test_risk_coverage_and_aurc():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.3, 0.2, 0.9])  # confidences .9 .7 .8 .9; correct: T T F T
    p = np.stack([1 - p1, p1], 1)
    cov, risk = risk_coverage_curve(y, p)
    # ties at 0.9 answered together: coverage 2/4 with 0 errors, then .8 (wrong), then .7
    np.testing.assert_allclose(cov, [0.5, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 0.0, 1 / 3, 1 / 4])
    assert float(aurc(y, p)) == pytest.approx((0 + 0 + 1 / 3 + 1 / 4) / 4)
    # a custom confidence that ranks the error last reaches the minimum
    assert float(aurc(y, p, confidence=[4.0, 3.0, 1.0, 2.0])) == pytest.approx(0.25 / 4)


def test_aurc_is_invariant_to_the_order_of_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    p = rng.dirichlet(np.ones(3), 200).round(1)  # many ties
    p /= p.sum(1, keepdims=True)
    perm = rng.permutation(200)
    assert float(aurc(y, p)) == pytest.approx(float(aurc(y[perm], p[perm])), rel=1e-6)


@pytest.mark.parametrize("ties", [False, True])
def test_ood_metrics_match_sklearn(ties):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    score = rng.normal(size=500) + y
    if ties:
        score = np.round(score, 1)
    assert float(auroc(y, score)) == pytest.approx(skm.roc_auc_score(y, score), rel=1e-5)
    assert float(aupr(y, score)) == pytest.approx(skm.average_precision_score(y, score), rel=1e-5)
    fpr, tpr, _ = skm.roc_curve(y, score)
    expected = fpr[np.searchsorted(tpr, 0.95, side="left")]
    assert float(fpr_at_tpr(y, score)) == pytest.approx(expected, rel=1e-5)
    m = ood_detection_metrics(score[y == 0], score[y == 1])
    assert float(m["auroc"]) == pytest.approx(skm.roc_auc_score(y, score), rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_jit(dtype, probs):
    y, p = probs
    with jax.enable_x64(dtype == np.float64):
        p = p.astype(dtype)
        for fn in (log_loss, brier_score, expected_calibration_error):
            assert fn(y, p).dtype == dtype
        assert float(jax.jit(expected_calibration_error)(y, p)) == pytest.approx(
            float(expected_calibration_error(y, p)), rel=1e-6
        )
        assert float(jax.jit(auroc)((y == 0).astype(int), p[:, 0])) == pytest.approx(
            skm.roc_auc_score(y == 0, p[:, 0]), rel=1e-5
        )


def test_errors_name_parameter_value_and_fix(probs):
    y, p = probs
    with pytest.raises(ValueError, match=r"'y_true' parameter of log_loss .* \[0, 4\).* \[0, 7\]"):
        log_loss(np.append(y[:-1], 7), p)
    with pytest.raises(ValueError, match="'y_prob' parameter of accuracy must hold probabilities"):
        accuracy(y, p * 3)
    with pytest.raises(ValueError, match="'n_bins' parameter .* must be >= 1. Got 0"):
        expected_calibration_error(y, p, n_bins=0)
    with pytest.raises(ValueError, match="'strategy' .* 'uniform', 'quantile'"):
        expected_calibration_error(y, p, strategy="equal")
    with pytest.raises(ValueError, match="both classes"):
        auroc(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="'tpr' parameter of fpr_at_tpr .* Did you mean 0.95"):
        fpr_at_tpr(y > 1, p[:, 0], tpr=95)
