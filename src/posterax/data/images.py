"""Image and sequence data sets for CNNs, generated or loaded offline.

:func:`digits` is scikit-learn's 8x8 handwritten digits (bundled with scikit-learn) as
``(N, 8, 8, 1)`` images in [0, 1] with a fixed stratified train/test split. :func:`mnist1d` is
MNIST-1D (Greydanus & Kobak, 2024): ten 1-D digit templates padded, scaled, translated, sheared
and corrupted with correlated and i.i.d. noise, generated with the ``mnist1d`` package's own
transforms (nothing is downloaded). Its knobs (noise, translation, shear) generate shifted test
sets for dataset-shift benchmarks.

Published MNIST-1D test accuracies (default data, 4,000 train / 1,000 test): logistic regression
32%, MLP 68%, CNN 94%, GRU 91%.
"""

from __future__ import annotations

import math
import numbers
import random
from typing import Any, NamedTuple

import numpy as np

from posterax.data.validation import _describe, check_fraction


class ImageSplit(NamedTuple):
    """Train and test arrays: ``X`` float32 ``(N, ...)`` (channels last), ``y`` int64 ``(N,)``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _check_seed(seed: Any, where: str) -> int:
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= int(seed) < 2**32
    ):
        raise ValueError(
            f"The 'seed' parameter of {where} must be an int in [0, 2**32). Got "
            f"{_describe(seed)}. Pass e.g. seed=0."
        )
    return int(seed)


def _check_fraction(value: Any, name: str, where: str, n_samples: int, n_classes: int) -> int:
    """The number of test rows, ``ceil(value * n_samples)`` as in scikit-learn's
    ``train_test_split``, for a share ``value`` in (0, 1) that leaves at least ``n_classes``
    rows on each side of the split."""
    share = check_fraction(
        value, name=name, where=where, meaning="the share of samples held out for testing"
    )
    n_test = math.ceil(share * n_samples)
    if min(n_test, n_samples - n_test) < n_classes:
        raise ValueError(
            f"The '{name}' parameter of {where} must leave at least {n_classes} samples (one per "
            f"class) in both the train and the test set. Got {name}={value}, which splits "
            f"{n_samples} samples into {n_samples - n_test} train and {n_test} test. Pass a "
            "share nearer 0.5."
        )
    return n_test


def digits(test_size: float = 0.25, seed: int = 0) -> ImageSplit:
    """scikit-learn's 8x8 handwritten digits as images, with a fixed stratified split.

    1,797 grey-scale images of the digits 0-9 (about 180 per class), pixel values 0..16
    divided by 16. The split is ``sklearn.model_selection.train_test_split(...,
    stratify=y, random_state=seed)``: every class keeps its share in both sets.

    Parameters
    ----------
    test_size : float
        Share of the images in the test set, in (0, 1).
    seed : int
        Seed of the split (the images themselves are fixed).

    Returns
    -------
    ImageSplit
        ``X_train`` ``(n_train, 8, 8, 1)`` and ``X_test`` ``(n_test, 8, 8, 1)`` float32 in
        [0, 1]; ``y_train``, ``y_test`` int64 labels 0-9.

    Examples
    --------
    >>> import posterax as px
    >>> split = px.data.digits()
    >>> split.X_train.shape, split.X_test.shape, split.X_train.dtype
    ((1347, 8, 8, 1), (450, 8, 8, 1), dtype('float32'))
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    where = "px.data.digits"
    seed = _check_seed(seed, where)
    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    labels = data.target.astype(np.int64)
    n_test = _check_fraction(test_size, "test_size", where, len(labels), 10)
    X_train, X_test, y_train, y_test = train_test_split(
        images, labels, test_size=n_test, stratify=labels, random_state=seed
    )
    return ImageSplit(X_train, y_train, X_test, y_test)


# MNIST-1D's generation settings that mnist1d() passes through (its defaults in brackets):
# template_len [12], padding [[36, 60]], scale_coeff [0.4], max_translation [48],
# corr_noise_scale [0.25], iid_noise_scale [0.02], shear_scale [0.75], shuffle_seq [False],
# final_seq_length [40].
_SCALES = ("scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale")
_COUNTS = {"template_len": 2, "max_translation": 1, "final_seq_length": 2}  # the minimum
_DEFAULT_COUNTS = {"template_len": 12, "max_translation": 48, "final_seq_length": 40}
MNIST1D_SETTINGS = (*_SCALES, *_COUNTS, "padding", "shuffle_seq")


def _check_mnist1d_settings(overrides: dict[str, Any], where: str) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in MNIST1D_SETTINGS:
            raise TypeError(
                f"{where} got an unexpected setting {name!r}. The MNIST-1D settings it passes "
                f"through are {', '.join(MNIST1D_SETTINGS)}; the size, seed and split are "
                "num_samples, seed and test_fraction."
            )
        if name in _SCALES:
            ok = (
                isinstance(value, numbers.Real)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0
            )
            rule, example = "a finite float >= 0", f"{name}=0.5"
        elif name in _COUNTS:
            ok = (
                isinstance(value, numbers.Integral)
                and not isinstance(value, bool)
                and value >= _COUNTS[name]
            )
            rule, example = f"an int >= {_COUNTS[name]}", f"{name}={_DEFAULT_COUNTS[name]}"
        elif name == "padding":
            ok = (
                isinstance(value, tuple | list)
                and len(value) == 2
                and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
                and 0 <= value[0] <= value[1]
            )
            rule, example = "a pair of ints (low, high) with 0 <= low <= high", "padding=(36, 60)"
        else:  # shuffle_seq
            ok = isinstance(value, bool | np.bool_)
            rule, example = "True or False", "shuffle_seq=True"
        if not ok:
            raise ValueError(
                f"The '{name}' parameter of {where} must be {rule}. Got {_describe(value)}. "
                f"Pass e.g. {example}."
            )
        checked[name] = list(value) if name == "padding" else value
    return checked


def _generate_mnist1d(args: Any) -> tuple[np.ndarray, np.ndarray]:
    """Un-standardised sequences ``(N, L)`` and labels, drawn exactly as
    ``mnist1d.data.make_dataset(args)`` draws them (same templates, transforms, random draws
    and shuffles), before its final standardisation. The global NumPy and ``random`` states,
    which the package seeds, are restored afterwards."""
    try:
        from mnist1d.data import get_templates
        from mnist1d.transform import transform
        from mnist1d.utils import set_seed
    except ImportError as error:  # pragma: no cover - a dependency of posterax
        raise ImportError(
            "px.data.mnist1d needs the 'mnist1d' package: pip install mnist1d==0.0.2.post1."
        ) from error
    # mnist1d draws from the legacy global NumPy RNG: seed it as the package does, restore it after.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        templates = get_templates()
        set_seed(args.seed)
        per_class = args.num_samples // len(templates["y"])
        xs, ys = [], []
        for label in range(len(templates["y"])):
            for _ in range(per_class):
                x, _t = transform(templates["x"][label], templates["t"], args)
                xs.append(x)
                ys.append(templates["y"][label])
        order = np.random.permutation(len(ys))  # noqa: NPY002
        X, y = np.stack(xs)[order], np.stack(ys)[order]
        if args.shuffle_seq:
            X = X[..., np.random.permutation(args.final_seq_length)]  # noqa: NPY002
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return X, y


class _Args:
    """The attribute view of the settings that ``mnist1d``'s transforms read."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)


def _check_standardize(standardize: Any, where: str) -> tuple[float, float] | None:
    """``None`` for True/False; the ``(mean, sd)`` pair otherwise."""
    if isinstance(standardize, bool | np.bool_):
        return None
    ok = (
        isinstance(standardize, tuple | list)
        and len(standardize) == 2
        and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in standardize
        )
        and standardize[1] > 0
    )
    if not ok:
        raise ValueError(
            f"The 'standardize' parameter of {where} must be True, False or a pair (mean, sd) "
            f"of finite floats with sd > 0. Got {_describe(standardize)}. Pass e.g. "
            "standardize=(mean, sd) of the raw training data (standardize=False)."
        )
    return float(standardize[0]), float(standardize[1])


def mnist1d(
    num_samples: int = 5000,
    seed: int = 42,
    test_fraction: float = 0.2,
    *,
    standardize: bool | tuple[float, float] = True,
    **settings: Any,
) -> ImageSplit:
    """MNIST-1D, generated offline from the ``mnist1d`` package's templates and transforms.

    With the defaults this is the data of ``mnist1d.data.make_dataset(get_dataset_args())``
    (the published MNIST-1D setting): 5,000 sequences of length 40, 500 per digit, shuffled,
    standardised with the mean and sd of all 5,000, the first 4,000 for training and the last
    1,000 for testing (not stratified: each test class holds about 100). Generation is
    deterministic given ``seed`` and takes about 1 s per 5,000 samples on one CPU core; the
    global NumPy random state is left as it was.

    Parameters
    ----------
    num_samples : int
        Total number of sequences, a multiple of 10 (``num_samples / 10`` per digit).
    seed : int
        Seed of the generation (templates' transforms, noise, shuffling).
    test_fraction : float
        Share of the sequences held out for testing, in (0, 1); the test set is the last
        ``ceil(test_fraction * num_samples)`` after shuffling.
    standardize : bool or (mean, sd)
        ``True``: subtract the mean and divide by the sd of all generated values (as
        ``make_dataset`` does). ``False``: the raw values. ``(mean, sd)``: those constants;
        use the raw training data's to put a shifted test set on the training set's scale.
    **settings
        MNIST-1D generation settings, for shifted data: ``corr_noise_scale`` (0.25),
        ``iid_noise_scale`` (0.02), ``max_translation`` (48), ``shear_scale`` (0.75),
        ``scale_coeff`` (0.4), ``padding`` ((36, 60)), ``template_len`` (12),
        ``final_seq_length`` (40), ``shuffle_seq`` (False).

    Returns
    -------
    ImageSplit
        ``X_train`` ``(n_train, L, 1)``, ``X_test`` ``(n_test, L, 1)`` float32 (``L`` =
        ``final_seq_length``, one channel); ``y_train``, ``y_test`` int64 labels 0-9.

    Examples
    --------
    >>> import numpy as np
    >>> import posterax as px
    >>> split = px.data.mnist1d(num_samples=100)
    >>> split.X_train.shape, split.X_test.shape, split.y_train.dtype
    ((80, 40, 1), (20, 40, 1), dtype('int64'))

    A test set with twice the training noise, on the training data's scale:

    >>> raw = px.data.mnist1d(num_samples=100, standardize=False)
    >>> values = np.concatenate([raw.X_train, raw.X_test])
    >>> scale = (float(values.mean()), float(values.std()))
    >>> shifted = px.data.mnist1d(num_samples=100, seed=1, standardize=scale,
    ...                           corr_noise_scale=0.5, iid_noise_scale=0.04)
    >>> shifted.X_test.shape
    (20, 40, 1)
    """
    from mnist1d.data import get_dataset_args

    where = "px.data.mnist1d"
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, numbers.Integral)
        or num_samples < 20
        or num_samples % 10
    ):
        raise ValueError(
            f"The 'num_samples' parameter of {where} must be an int >= 20 and a multiple of 10 "
            f"(the same number of sequences for each of the 10 digits). Got "
            f"{_describe(num_samples)}. Pass e.g. num_samples=5000."
        )
    seed = _check_seed(seed, where)
    n_test = _check_fraction(test_fraction, "test_fraction", where, int(num_samples), 10)
    scale = _check_standardize(standardize, where)
    args = get_dataset_args(as_dict=True)
    args.update(_check_mnist1d_settings(settings, where))
    args.update(num_samples=int(num_samples), seed=seed)
    args.pop("url")  # never downloaded
    X, y = _generate_mnist1d(_Args(args))
    if scale is None and standardize:
        X = (X - X.mean()) / X.std()
    elif scale is not None:
        X = (X - scale[0]) / scale[1]
    X = X.astype(np.float32)[..., None]
    y = y.astype(np.int64)
    n_train = len(y) - n_test
    return ImageSplit(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


__all__ = ["MNIST1D_SETTINGS", "ImageSplit", "digits", "mnist1d"]
