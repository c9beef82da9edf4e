"""Selective prediction: the chosen threshold is the largest meeting the target risk (checked by
brute force), holds on fresh data, and the confidence-bound variant holds with probability
1 - delta."""

import numpy as np
import pytest

import posterax as px
from posterax.uncertainty import fit_abstention, prediction_errors


def _synthetic(rng, n):
    # Error probability equals the uncertainty: the risk of answering u <= t is t / 2.
    u = rng.uniform(size=n)
    return u, (rng.uniform(size=n) < u).astype(float)


def test_threshold_is_largest_meeting_the_target_by_brute_force():
    rng = np.random.default_rng(0)
    u, e = _synthetic(rng, 300)
    u = np.round(u, 2)  # ties: answered together
    rule = fit_abstention(u, e, target_risk=0.2)
    feasible = [t for t in np.unique(u) if e[u <= t].mean() <= 0.2]
    assert rule.threshold == max(feasible)
    assert rule.coverage == pytest.approx(np.mean(u <= rule.threshold))
    assert rule.risk == pytest.approx(e[u <= rule.threshold].mean())
    np.testing.assert_array_equal(rule.abstain(u), u > rule.threshold)


def test_rule_meets_the_target_on_fresh_data():
    rng = np.random.default_rng(1)
    rule = fit_abstention(*_synthetic(rng, 4000), target_risk=0.2)
    # Ideal threshold 0.4 (risk t / 2); a calibration set of 4000 pins it to a few hundredths.
    assert rule.threshold == pytest.approx(0.4, abs=0.06)
    fresh = rule.evaluate(*_synthetic(rng, 20000))
    # Taking the last crossing of a noisy risk curve overshoots a little (sd ~0.01 at ~1600
    # answered points): allow 3 sd above the target, and a rule not needlessly cautious.
    assert 0.17 <= fresh["risk"] <= 0.2 + 0.03
    assert fresh["coverage"] == pytest.approx(rule.threshold, abs=0.02)


def test_confidence_bound_holds_with_probability_one_minus_delta():
    rng = np.random.default_rng(2)
    delta, target, trials = 0.1, 0.2, 200
    violations, thresholds = 0, []
    for _ in range(trials):
        rule = fit_abstention(*_synthetic(rng, 2000), target_risk=target, delta=delta)
        thresholds.append(rule.threshold)
        violations += rule.threshold / 2 > target  # true risk of the chosen rule
    # Binomial(200, 0.1) exceeds 30 with probability < 0.02; in practice the bound is loose.
    # (The empirical rule, without delta, violates in about half of the trials.)
    assert violations <= 30
    # ...but not vacuous: it still answers a good share of points (ideal threshold 0.4).
    assert np.median(thresholds) > 0.25


def test_prediction_errors_and_digits_selective_risk(digits_ood):
    clf = digits_ood["clf"]
    cal = clf.predict_samples(digits_ood["X_cal"])
    unc = px.uncertainty.decompose(cal).total
    errors = prediction_errors(cal, digits_ood["y_cal"])
    assert errors.mean() == pytest.approx(
        np.mean(clf.predict(digits_ood["X_cal"]) != digits_ood["y_cal"])
    )
    # Mix in OOD digits (always wrong: their labels are unseen classes) so abstention matters.
    pred_out = clf.predict_samples(digits_ood["X_out"][:100])
    u_all = np.r_[np.asarray(unc), np.asarray(px.uncertainty.decompose(pred_out).total)]
    e_all = np.r_[errors, np.ones(100)]
    rule = fit_abstention(u_all, e_all, target_risk=0.05)
    assert rule.risk <= 0.05 and rule.coverage > 0.5


def test_bad_input_names_parameter_and_fix():
    with pytest.raises(
        ValueError, match=r"'target_risk' parameter of fit_abstention.*Did you mean 0.05"
    ):
        fit_abstention([0.1, 0.2], [0, 1], target_risk=5)
    with pytest.raises(
        ValueError, match=r"'errors' parameter of fit_abstention must hold losses in \[0, 1\]"
    ):
        fit_abstention([0.1, 0.2], [0, 2], target_risk=0.1)
    with pytest.raises(ValueError, match=r"one entry per point. Got 2 and 3"):
        fit_abstention([0.1, 0.2], [0, 1, 0], target_risk=0.1)
    with pytest.raises(TypeError, match=r"'pred' parameter of prediction_errors must be a Predict"):
        prediction_errors(np.zeros((2, 3)), [0, 1])
    with pytest.warns(RuntimeWarning, match="abstains on everything"):
        rule = fit_abstention([0.1, 0.2], [1, 1], target_risk=0.1)
    assert rule.abstain([0.0]).tolist() == [True]
