"""Figures of the DCLIP notebook: loss curves and a text -> image search strip."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def loss_curves(histories: dict[str, Sequence[float]]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, h in histories.items():
        ax.plot(np.arange(1, len(h) + 1), h, label=name)
    ax.set(xlabel="step", ylabel="symmetric contrastive loss", title="DCLIP training")
    ax.legend(fontsize=8)
    return fig


def search_strip(queries: Sequence[str], images: Sequence[Any], sims: np.ndarray, k: int = 5) -> Any:
    """One row per text query: its ``k`` best images with their cosine."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(queries), k, figsize=(1.8 * k, 2.0 * len(queries)), squeeze=False)
    for r, q in enumerate(queries):
        top = np.argsort(-sims[r])[:k]
        for c, j in enumerate(top):
            ax = axes[r, c]
            ax.imshow(images[j])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{sims[r, j]:.2f}", fontsize=8)
        axes[r, 0].set_ylabel(q[:28], fontsize=8)
    fig.tight_layout()
    return fig
