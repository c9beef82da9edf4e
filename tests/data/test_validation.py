"""The shared argument checks name the parameter, the rule, what was received and the fix."""

import math

import numpy as np
import pytest

from posterax.data.validation import (
    check_classification_target,
    check_fraction,
    check_positive_float,
)


@pytest.mark.parametrize("value", [0.5, np.float32(0.25), 1e-9])
def test_a_share_inside_the_open_interval_is_returned_as_a_float(value):
    got = check_fraction(value, name="share", where="f")
    assert type(got) is float and got == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, math.nan, math.inf])
def test_a_share_outside_the_open_interval_is_refused(value):
    with pytest.raises(ValueError, match=r"'share' parameter of f must be in \(0, 1\)\. Got"):
        check_fraction(value, name="share", where="f")


def test_zero_allowed_admits_zero_but_not_one():
    assert check_fraction(0, name="rate", where="f", zero_allowed=True) == 0.0
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        check_fraction(1.0, name="rate", where="f", zero_allowed=True)


def test_a_percentage_gets_a_hint_and_other_values_an_example():
    with pytest.raises(ValueError, match=r"Got 10\. Did you mean 0\.1\?"):
        check_fraction(10, name="share", where="f")
    with pytest.raises(ValueError, match=r"Pass e\.g\. share=0\.3\."):
        check_fraction(-2, name="share", where="f", example=0.3)


@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_a_share_that_is_not_a_number_is_a_type_error_saying_what_it_is_of(value):
    with pytest.raises(TypeError, match=r"'share' .* float in \(0, 1\) \(rows held out\)\. Got"):
        check_fraction(value, name="share", where="f", meaning="rows held out")


def test_class_labels_are_refused_with_the_rule_they_break():
    assert list(check_classification_target(["a", "b", "a"], n_samples=3, where="f")) == [
        "a",
        "b",
        "a",
    ]
    with pytest.warns(UserWarning, match=r"column-vector y"):
        assert check_classification_target(np.array([[0], [1]]), n_samples=2, where="f").ndim == 1
    with pytest.raises(ValueError, match=r"one label per row of X.*for 3 sample"):
        check_classification_target([0, 1], n_samples=3, where="f")
    with pytest.raises(ValueError, match=r"not whole numbers.*continuous"):
        check_classification_target([0.5, 1.0], n_samples=2, where="f")
    with pytest.raises(ValueError, match=r"at least 2 classes\. Got 1 class"):
        check_classification_target([3, 3], n_samples=2, where="f")
    with pytest.raises(ValueError, match=r"'y' parameter of f is required"):
        check_classification_target(None, n_samples=2, where="f")


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf, True, "1", None])
def test_a_positive_float_refuses_zero_negatives_non_finite_and_non_numbers(value):
    with pytest.raises(ValueError, match=r"'rate' parameter of f must be a finite float > 0\. Got"):
        check_positive_float(value, name="rate", where="f")


def test_a_positive_float_may_allow_zero_and_name_other_values():
    assert check_positive_float(0, name="m", where="f", zero_allowed=True) == 0.0
    assert check_positive_float(np.float32(2.5), name="m", where="f") == 2.5
    with pytest.raises(ValueError, match=r"must be 'auto' or a finite float >= 0\. Got -1\."):
        check_positive_float(-1, name="m", where="f", zero_allowed=True, also="'auto' or ")
