"""Figures of the acgvoc2vec notebook: training loss and a UMAP of titles by language and by work."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def loss_curve(history: Sequence[float], title: str = "MNRL loss") -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(history) + 1), history, marker="." if len(history) < 30 else None)
    ax.set(xlabel="step", ylabel="loss", title=title)
    return fig


def umap_titles(vectors: np.ndarray, langs: Sequence[str], works: Sequence[int], seed: int = 0,
                title: str = "titles") -> tuple[Any, np.ndarray]:
    """2-D UMAP (cosine) of title vectors; left coloured by language, right by work."""
    import matplotlib.pyplot as plt

    from acg2vec_lab.viz import import_umap

    umap = import_umap()
    n = len(vectors)
    xy = umap.UMAP(n_neighbors=min(15, max(2, n - 1)), metric="cosine", random_state=seed,
                   init="random" if n < 10 else "spectral").fit_transform(vectors)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    langs = np.asarray(langs)
    for lang in sorted(set(langs)):
        m = langs == lang
        axes[0].scatter(xy[m, 0], xy[m, 1], s=10, label=f"{lang} ({m.sum()})")
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"{title}: by language")
    codes = np.unique(np.asarray(works), return_inverse=True)[1]
    axes[1].scatter(xy[:, 0], xy[:, 1], s=10, c=codes, cmap="tab20")
    axes[1].set_title(f"{title}: by work ({codes.max() + 1} works)")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    return fig, xy


def same_work_neighbour_rate(xy_or_vecs: np.ndarray, works: Sequence[int]) -> float:
    """Share of points whose nearest other point belongs to the same work (a number for the map)."""
    v = np.asarray(xy_or_vecs, np.float64)
    d = ((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    works = np.asarray(works)
    return float((works[d.argmin(1)] == works).mean())
