"""The image data sets: scikit-learn's 8x8 digits and MNIST-1D generated offline."""

import numpy as np
import pytest
from mnist1d.data import get_dataset_args, make_dataset

import posterax as px


def test_digits_shapes_dtypes_and_pixel_range():
    split = px.data.digits()
    assert split.X_train.shape == (1347, 8, 8, 1) and split.X_test.shape == (450, 8, 8, 1)
    assert split.X_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.y_train.shape == (1347,) and split.y_test.shape == (450,)
    X = np.concatenate([split.X_train, split.X_test])
    assert X.min() == 0.0 and X.max() == 1.0
    # Every image once: the split drops and duplicates nothing.
    from sklearn.datasets import load_digits

    raw = load_digits().images.reshape(-1, 64) / 16.0
    assert sorted(map(bytes, np.round(raw * 16).astype(np.uint8))) == sorted(
        map(bytes, np.round(X.reshape(-1, 64) * 16).astype(np.uint8))
    )


def test_digits_split_is_stratified():
    split = px.data.digits(test_size=0.3, seed=4)
    y = np.concatenate([split.y_train, split.y_test])
    expected = np.bincount(y) * len(split.y_test) / len(y)
    assert np.abs(np.bincount(split.y_test, minlength=10) - expected).max() <= 1.0


def test_digits_same_seed_same_split_other_seed_another():
    a, b, c = px.data.digits(seed=1), px.data.digits(seed=1), px.data.digits(seed=2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.y_test, c.y_test)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_size": 25}, r"'test_size' parameter of px.data.digits must be in \(0, 1\).*0.25"),
        ({"test_size": 0.001}, r"'test_size' .* at least 10 samples .* 1795 train and 2 test"),
        ({"test_size": "a"}, r"'test_size' .* float in \(0, 1\).* Got 'a'"),
        ({"seed": -1}, r"'seed' parameter of px.data.digits must be an int .* Got -1"),
        ({"seed": 1.5}, r"'seed' .* Got 1.5"),
    ],
)
def test_digits_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        px.data.digits(**kwargs)


def test_mnist1d_shapes_dtypes_and_standardisation():
    split = px.data.mnist1d(num_samples=200, seed=3)
    assert split.X_train.shape == (160, 40, 1) and split.X_test.shape == (40, 40, 1)
    assert split.X_train.dtype == np.float32 and split.y_test.dtype == np.int64
    X = np.concatenate([split.X_train, split.X_test])
    assert abs(X.mean()) < 1e-5 and abs(X.std() - 1.0) < 1e-5
    assert np.array_equal(np.bincount(np.concatenate([split.y_train, split.y_test])), [20] * 10)


def test_mnist1d_is_the_packages_make_dataset():
    args = get_dataset_args()
    args.num_samples, args.seed, args.shuffle_seq = 300, 7, True
    reference = make_dataset(args)
    split = px.data.mnist1d(num_samples=300, seed=7, shuffle_seq=True)
    np.testing.assert_allclose(split.X_train[..., 0], reference["x"], atol=1e-6)
    np.testing.assert_allclose(split.X_test[..., 0], reference["x_test"], atol=1e-6)
    np.testing.assert_array_equal(split.y_train, reference["y"])
    np.testing.assert_array_equal(split.y_test, reference["y_test"])


def test_mnist1d_deterministic_per_seed_and_leaves_global_rng_alone():
    before = np.random.get_state()  # noqa: NPY002 - mnist1d seeds NumPy's global RNG
    a = px.data.mnist1d(num_samples=100, seed=5)
    after = np.random.get_state()  # noqa: NPY002 - restored as it was
    assert np.array_equal(after[1], before[1]) and after[2:] == before[2:]
    b = px.data.mnist1d(num_samples=100, seed=5)
    c = px.data.mnist1d(num_samples=100, seed=6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.X_train, c.X_train)


def test_mnist1d_settings_and_standardize_for_shifted_test_sets():
    raw = px.data.mnist1d(num_samples=100, standardize=False)
    values = np.concatenate([raw.X_train, raw.X_test]).astype(np.float64)
    mean, sd = float(values.mean()), float(values.std())
    standard = px.data.mnist1d(num_samples=100)
    np.testing.assert_allclose(standard.X_train, (raw.X_train - mean) / sd, atol=1e-5)
    np.testing.assert_allclose(
        px.data.mnist1d(num_samples=100, standardize=(mean, sd)).X_test, standard.X_test, atol=1e-5
    )
    noisy = px.data.mnist1d(num_samples=100, standardize=False, iid_noise_scale=0.5)
    np.testing.assert_array_equal(noisy.y_train, raw.y_train)  # same draws, more noise
    assert np.std(noisy.X_train - raw.X_train) > 0.3
    short = px.data.mnist1d(num_samples=100, final_seq_length=30, max_translation=5)
    assert short.X_train.shape == (80, 30, 1)
    split = px.data.mnist1d(num_samples=100, test_fraction=0.35)
    assert (len(split.y_train), len(split.y_test)) == (65, 35)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_samples": 105}, ValueError, r"'num_samples' .* multiple of 10.* Got 105"),
        ({"num_samples": 10}, ValueError, r"'num_samples' .* int >= 20"),
        ({"test_fraction": 20}, ValueError, r"'test_fraction' .* in \(0, 1\).*0.2\?"),
        ({"num_samples": 100, "test_fraction": 0.05}, ValueError, r"at least 10 .* 95 train and 5"),
        ({"seed": "x"}, ValueError, r"'seed' parameter of px.data.mnist1d"),
        ({"noise": 1.0}, TypeError, r"unexpected setting 'noise'.*iid_noise_scale"),
        ({"num_samples": 100, "iid_noise_scale": -1.0}, ValueError, r"'iid_noise_scale' .*>= 0"),
        ({"num_samples": 100, "max_translation": 0}, ValueError, r"'max_translation' .*>= 1"),
        ({"num_samples": 100, "padding": (5, 1)}, ValueError, r"'padding' .* low <= high"),
        ({"num_samples": 100, "shuffle_seq": 1}, ValueError, r"'shuffle_seq' .* True or False"),
        ({"num_samples": 100, "standardize": (0.0, 0.0)}, ValueError, r"'standardize' .* sd > 0"),
    ],
)
def test_mnist1d_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        px.data.mnist1d(**kwargs)
