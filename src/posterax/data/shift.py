"""Dataset shift for image benchmarks: corrupted test sets at five intensities (the protocol of
Ovadia et al. 2019, "Can you trust your model's uncertainty?"), and out-of-distribution inputs.

- digits (8x8): rotation, Gaussian pixel noise and pixel dropout, applied to the test images;
- MNIST-1D: test sets generated with more noise, shear or translation than the training data
  (the ``mnist1d`` package's own transforms with larger settings), put on the training data's
  scale.

Intensity 0 is the clean test set; 1..5 grow from mild to beyond anything seen in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posterax.data.images import mnist1d

INTENSITIES = (1, 2, 3, 4, 5)

# Per kind, the corruption's size at intensities 1..5.
DIGITS_SHIFTS: dict[str, tuple[float, ...]] = {
    "rotation": (15.0, 30.0, 45.0, 60.0, 90.0),  # degrees, either way
    "noise": (0.1, 0.2, 0.35, 0.5, 0.75),  # sd of added N(0, sd^2) noise (pixels in [0, 1])
    "pixel_dropout": (0.1, 0.2, 0.35, 0.5, 0.7),  # share of pixels set to 0
}
# Multipliers of the MNIST-1D generator's training settings.
MNIST1D_SHIFTS: dict[str, tuple[float, ...]] = {
    "noise": (1.5, 2.0, 3.0, 4.0, 6.0),  # corr_noise_scale (0.25) and iid_noise_scale (0.02)
    "shear": (1.5, 2.0, 2.5, 3.0, 4.0),  # shear_scale (0.75)
    "translation": (1.25, 1.5, 2.0, 2.5, 3.0),  # max_translation (48)
}
_MNIST1D_DEFAULTS = {
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 0.02,
    "shear_scale": 0.75,
    "max_translation": 48,
}


def _check_shift(kind: Any, intensity: Any, table: dict, where: str) -> float:
    if kind not in table:
        raise ValueError(
            f"The 'kind' parameter of {where} must be one of {', '.join(map(repr, table))}. "
            f"Got {kind!r}."
        )
    if isinstance(intensity, bool) or intensity not in INTENSITIES:
        raise ValueError(
            f"The 'intensity' parameter of {where} must be an int from 1 to 5 (0 is the clean "
            f"test set: no shift). Got {intensity!r}."
        )
    return table[kind][int(intensity) - 1]


def shift_digits(X: Any, kind: str, intensity: int, seed: int = 0) -> np.ndarray:
    """Corrupted copies of 8x8 digit images ``X`` ``(N, 8, 8, 1)`` in [0, 1].

    Parameters
    ----------
    X : array (N, 8, 8, 1)
    kind : {"rotation", "noise", "pixel_dropout"}
        Rotation by +-angle (a random sign per image, bilinear, zeros outside), Gaussian noise
        (clipped to [0, 1]), or a random share of pixels set to 0.
    intensity : int in 1..5
        See :data:`DIGITS_SHIFTS` for the sizes.
    seed : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.full((100, 8, 8, 1), 0.5, dtype=np.float32)
    >>> dropped = shift_digits(X, "pixel_dropout", 5)  # 70% of the pixels set to 0
    >>> round(float(np.mean(dropped == 0)), 2)
    0.7
    """
    size = _check_shift(kind, intensity, DIGITS_SHIFTS, "shift_digits")
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 4 or X.shape[1:] != (8, 8, 1):
        raise ValueError(
            f"The 'X' parameter of shift_digits must be digit images of shape (N, 8, 8, 1). Got "
            f"shape {X.shape}. Use px.data.digits() for them."
        )
    rng = np.random.default_rng(seed)
    if kind == "rotation":
        from scipy.ndimage import rotate

        signs = rng.choice([-1.0, 1.0], size=X.shape[0])
        out = [
            rotate(image, sign * size, axes=(0, 1), reshape=False, order=1, mode="constant")
            for image, sign in zip(X, signs, strict=True)
        ]
        return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)
    if kind == "noise":
        return np.clip(X + rng.normal(scale=size, size=X.shape), 0.0, 1.0).astype(np.float32)
    keep = rng.uniform(size=X.shape) >= size
    return (X * keep).astype(np.float32)


def shift_mnist1d(
    kind: str,
    intensity: int,
    standardize: tuple[float, float],
    num_samples: int = 1000,
    seed: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """A shifted MNIST-1D test set ``(X (num_samples, 40, 1), y)``, generated with a larger
    noise, shear or translation than the training data and put on the training data's scale.

    Parameters
    ----------
    kind : {"noise", "shear", "translation"}
    intensity : int in 1..5
        Multiplies the generator's training setting (:data:`MNIST1D_SHIFTS`).
    standardize : (mean, sd)
        The raw training data's mean and sd (the clean set's scaling).
    num_samples : int
    seed : int
        A seed other than the training data's.
    """
    factor = _check_shift(kind, intensity, MNIST1D_SHIFTS, "shift_mnist1d")
    names = {
        "noise": ("corr_noise_scale", "iid_noise_scale"),
        "shear": ("shear_scale",),
        "translation": ("max_translation",),
    }[kind]
    overrides: dict[str, Any] = {name: _MNIST1D_DEFAULTS[name] * factor for name in names}
    if kind == "translation":
        overrides["max_translation"] = round(overrides["max_translation"])
    split = mnist1d(
        num_samples=num_samples, seed=seed, test_fraction=0.5, standardize=standardize, **overrides
    )
    return np.concatenate([split.X_train, split.X_test]), np.concatenate(
        [split.y_train, split.y_test]
    )


def shuffled_sequences(X: Any, seed: int = 0) -> np.ndarray:
    """Out-of-distribution sequences: each of ``X`` ``(N, L, C)`` with its time steps in a
    random order (the values seen in training, in an order never seen)."""
    X = np.asarray(X, dtype=np.float32)
    rng = np.random.default_rng(seed)
    return np.stack([x[rng.permutation(x.shape[0])] for x in X])


def noise_images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Out-of-distribution images: uniform [0, 1] pixels, ``shape`` ``(N, ...)``."""
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


__all__ = [
    "DIGITS_SHIFTS",
    "INTENSITIES",
    "MNIST1D_SHIFTS",
    "noise_images",
    "shift_digits",
    "shift_mnist1d",
    "shuffled_sequences",
]
