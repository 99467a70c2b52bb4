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


def search_strip(queries: Sequence[str], images: Sequence[Any], sims: np.ndarray, k: int = 5,
                 relevant: np.ndarray | None = None) -> Any:
    """One row per text query: its ``k`` best images (ties by position) with their cosine.

    ``sims``: ``(n_queries, n_images)``. ``relevant`` (same shape, bool), when given, frames each returned
    image green when it is a correct answer (red when not) and puts hits / base rate in the row label.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(queries), k, figsize=(1.8 * k, 2.0 * len(queries)), squeeze=False)
    for r, q in enumerate(queries):
        top = np.argsort(-sims[r], kind="stable")[:k]
        for c, j in enumerate(top):
            ax = axes[r, c]
            ax.imshow(images[j])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{sims[r, j]:.2f}", fontsize=8)
            if relevant is not None:
                for side in ax.spines.values():
                    side.set_visible(True)
                    side.set_edgecolor("#2ca02c" if relevant[r, j] else "#d62728")
                    side.set_linewidth(3)
        label = q[:28]
        if relevant is not None:
            label += f"\nhits {int(relevant[r, top].sum())}/{k}, base rate {relevant[r].mean():.2f}"
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for save_fig's SYNTHETIC stamp
    return fig
