"""Dataset shift and OOD inputs for the image benchmarks: each corruption does what it says,
grows with the intensity, and is reproducible."""

import numpy as np
import pytest

from posterax.data.shift import (
    DIGITS_SHIFTS,
    noise_images,
    shift_digits,
    shift_mnist1d,
    shuffled_sequences,
)


def _digits(n=40):
    rng = np.random.default_rng(0)
    X = np.zeros((n, 8, 8, 1), np.float32)
    X[:, 2:6, 3:5] = rng.uniform(0.5, 1.0, size=(n, 4, 2, 1))  # a vertical bar
    return X


def test_pixel_dropout_zeroes_the_stated_share():
    X = np.full((200, 8, 8, 1), 0.5, np.float32)
    for k, share in enumerate(DIGITS_SHIFTS["pixel_dropout"], start=1):
        dropped = shift_digits(X, "pixel_dropout", k, seed=k)
        assert abs(np.mean(dropped == 0) - share) < 0.01
        assert set(np.unique(dropped)) <= {0.0, 0.5}


def test_noise_has_the_stated_sd_before_clipping():
    X = np.full((400, 8, 8, 1), 0.5, np.float32)
    sd = DIGITS_SHIFTS["noise"][0]  # 0.1: clipping at 0 and 1 is 5 sd away
    noisy = shift_digits(X, "noise", 1, seed=0)
    assert abs(np.std(noisy - X) - sd) < 0.005


def test_rotation_by_90_degrees_turns_a_vertical_bar_horizontal():
    X = _digits()
    turned = shift_digits(X, "rotation", 5, seed=0)  # +-90 degrees
    rows, cols = np.nonzero(turned[0, :, :, 0] > 0.25)
    assert np.ptp(cols) > np.ptp(rows)  # wider than tall
    mild = shift_digits(X, "rotation", 1, seed=0)
    assert np.abs(mild - X).mean() < np.abs(turned - X).mean()


def test_corruptions_are_reproducible_and_leave_the_input_alone():
    X = _digits()
    before = X.copy()
    for kind in DIGITS_SHIFTS:
        a, b = shift_digits(X, kind, 3, seed=7), shift_digits(X, kind, 3, seed=7)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(X, before)


def test_mnist1d_shift_grows_with_intensity():
    spread = [
        shift_mnist1d("noise", k, (0.0, 1.0), num_samples=100, seed=5)[0].std() for k in (1, 5)
    ]
    assert spread[1] > 1.5 * spread[0]
    X, y = shift_mnist1d("shear", 2, (0.0, 1.0), num_samples=60)
    assert X.shape == (60, 40, 1) and y.shape == (60,) and set(np.unique(y)) <= set(range(10))


def test_shuffled_sequences_keep_the_values_in_a_new_order():
    X = np.arange(3 * 40, dtype=np.float32).reshape(3, 40, 1)
    S = shuffled_sequences(X, seed=0)
    for x, s in zip(X, S, strict=True):
        np.testing.assert_array_equal(np.sort(s.ravel()), x.ravel())
        assert not np.array_equal(s, x)
    images = noise_images((5, 8, 8, 1), seed=0)
    assert images.shape == (5, 8, 8, 1) and 0 <= images.min() and images.max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "blur", "intensity": 1}, r"'kind' parameter of shift_digits.*'rotation'.*'blur'"),
        ({"kind": "noise", "intensity": 0}, r"'intensity'.*from 1 to 5 \(0 is the clean"),
        ({"kind": "noise", "intensity": 6}, r"'intensity'.*Got 6"),
    ],
)
def test_bad_shift_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shift_digits(_digits(2), **kwargs)


def test_images_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"shape \(N, 8, 8, 1\).*Got shape \(2, 64\)"):
        shift_digits(np.zeros((2, 64)), "noise", 1)
