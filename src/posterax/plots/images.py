"""Images beside what each method says about them: the predicted class, its probability and the
predictive entropy, so "a network that knows when it doesn't know" can be seen at a glance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _entropy(probs: np.ndarray) -> np.ndarray:
    return -np.sum(probs * np.log(np.clip(probs, 1e-12, 1.0)), axis=-1)


def plot_image_predictions(
    images: Any,
    probs: Mapping[str, Any],
    *,
    groups: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """One column per image (grey scale; sequences as line plots), and under it, per method,
    the predicted class, its probability and the predictive entropy ``H`` in nats.

    Parameters
    ----------
    images : array (N, H, W), (N, H, W, 1) or (N, L, 1)
        At most 16. 1-D sequences (``(N, L)`` or ``(N, L, 1)``) are drawn as lines.
    probs : mapping ``{method name: (N, K) class probabilities}``
    groups : sequence of N str, optional
        A label per image (e.g. "test", "OOD digit", "noise") shown above it.
    class_names : sequence of K str, optional
    title : str, optional

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).uniform(size=(3, 8, 8, 1))
    >>> probs = {"map": np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])}
    >>> fig = plot_image_predictions(images, probs, groups=["a", "b", "c"])
    >>> len(fig.axes)
    3
    """
    images = np.asarray(images, dtype=float)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 3 and images.shape[-1] == 1:  # sequences (N, L, 1)
        images = images[..., 0]
    if images.ndim not in (2, 3) or not 1 <= images.shape[0] <= 16:
        raise ValueError(
            "The 'images' parameter of plot_image_predictions must be 1 to 16 grey-scale "
            f"images (N, H, W[, 1]) or sequences (N, L[, 1]). Got shape {np.shape(images)}. "
            "Select a few, e.g. images[:8]."
        )
    n = images.shape[0]
    tables = {name: np.asarray(p, dtype=float) for name, p in probs.items()}
    for name, p in tables.items():
        if p.ndim != 2 or p.shape[0] != n:
            raise ValueError(
                f"The 'probs' parameter of plot_image_predictions must map each method to "
                f"(N, K) probabilities for the {n} images. Got shape {p.shape} for {name!r}."
            )
    if groups is not None and len(groups) != n:
        raise ValueError(
            f"The 'groups' parameter of plot_image_predictions must give one label per image "
            f"({n}). Got {len(groups)}."
        )
    fig, axes = plt.subplots(1, n, figsize=(1.45 * n + 0.4, 2.0 + 0.16 * len(tables)))
    axes = np.atleast_1d(axes)
    for i, ax in enumerate(axes):
        if images.ndim == 3:
            ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=max(1.0, images.max()))
        else:
            ax.plot(images[i], color="#333333", lw=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if groups is not None:
            ax.set_title(groups[i], fontsize=8)
        lines = []
        for name, p in tables.items():
            k = int(np.argmax(p[i]))
            label = class_names[k] if class_names is not None else str(k)
            lines.append(f"{name}: {label} {p[i, k]:.0%} H={_entropy(p[i]):.2f}")
        ax.set_xlabel("\n".join(lines), fontsize=6.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["plot_image_predictions"]
