"""Figures shared by every notebook: one style, one palette, UMAP maps, retrieval galleries and recall curves.

Every helper creates its figure explicitly and returns it; save it with
:func:`acg2vec_lab.record.save_fig`. Colours come from :data:`PALETTE` by the sorted label order, so
the same character has the same colour on every model's map.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

# 20 distinguishable colours (Tableau 20 order, hex), then grey for "other"/None.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
OTHER = "#b0b0b0"
RELEVANT = "#2ca02c"
NOT_RELEVANT = "#d62728"


def style() -> None:
    """The workbook's matplotlib style (call once per notebook): clean axes, readable sizes, no seaborn."""
    import matplotlib

    matplotlib.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 110, "figure.figsize": (6.4, 4.4), "font.size": 10,
        "axes.titlesize": 10, "axes.labelsize": 10, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.25, "legend.frameon": False, "legend.fontsize": 8,
        "image.cmap": "viridis", "axes.prop_cycle": matplotlib.cycler(color=list(PALETTE[:10])),
    })


def label_colors(labels: Sequence[Any], max_labels: int = len(PALETTE)) -> dict[Any, str]:
    """A fixed label -> colour map: the ``max_labels`` most frequent labels (ties by name) get palette
    colours in sorted-name order; the rest and ``None`` are grey. Same labels -> same colours everywhere."""
    from collections import Counter

    counts = Counter(label for label in labels if label is not None)
    top = sorted(counts, key=lambda v: (-counts[v], str(v)))[:max_labels]
    return {label: PALETTE[i] for i, label in enumerate(sorted(top, key=str))}


def import_umap() -> Any:
    """Import ``umap`` without its parametric module (which pulls in TensorFlow and torch, ~8 s).

    ``umap/__init__.py`` imports ``ParametricUMAP`` inside ``try/except ImportError``; a ``None``
    entry in ``sys.modules`` makes that import fail fast, so only the core UMAP loads.
    """
    if "umap" in sys.modules:
        return sys.modules["umap"]
    blocked = "umap.parametric_umap"
    had = blocked in sys.modules
    sys.modules.setdefault(blocked, None)  # type: ignore[arg-type]
    try:
        return importlib.import_module("umap")
    finally:
        if not had and sys.modules.get(blocked, 0) is None:
            del sys.modules[blocked]


def umap_embed(x: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0,
               pca: int | None = None, metric: str = "cosine") -> np.ndarray:
    """``(N, D)`` -> ``(N, 2)`` UMAP coordinates, seeded (``random_state`` makes UMAP single-threaded).

    ``pca``: optional PCA pre-projection to that many dimensions (faster, less noisy neighbours).
    numba's compile cache lives in ``$NUMBA_CACHE_DIR`` (set by :mod:`acg2vec_lab`), so repeated runs
    reuse the compiled code.
    """
    x = np.asarray(x, dtype=np.float32)
    if pca and pca < x.shape[1] and pca < len(x):
        from sklearn.decomposition import PCA

        x = PCA(n_components=pca, random_state=seed).fit_transform(x).astype(np.float32)
    umap = import_umap()
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist, random_state=seed,
                        metric=metric, n_components=2)
    return reducer.fit_transform(x)


def scatter_map(coords: np.ndarray, labels: Sequence[Any], title: str, colors: dict[Any, str] | None = None,
                ax: Any = None, legend: int = 12, size: float = 12.0) -> Any:
    """Scatter of 2-D coordinates coloured by label (unlisted labels grey), no ticks; returns the figure."""
    import matplotlib.pyplot as plt

    colors = colors if colors is not None else label_colors(labels)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    labels = list(labels)
    cols = [colors.get(label, OTHER) for label in labels]
    ax.scatter(coords[:, 0], coords[:, 1], c=cols, s=size, linewidths=0, alpha=0.85)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.set_title(title)
    shown = [label for label in colors if label in set(labels)][:legend]
    for label in shown:
        ax.scatter([], [], c=colors[label], s=20, label=str(label))
    if shown:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    return fig


def map_title(model: str, n_neighbors: int, min_dist: float, seed: int, colour_by: str = "") -> str:
    """The standard UMAP title: model, n_neighbors, min_dist, seed (and what the colour shows)."""
    extra = f", colour: {colour_by}" if colour_by else ""
    return f"{model}  (UMAP n_neighbors={n_neighbors}, min_dist={min_dist}, seed={seed}{extra})"


def score_bins(values: Sequence[float], edges: Sequence[float]) -> list[str]:
    """Numeric scores -> bin labels ``"[a, b)"`` (for colouring a map by score bin)."""
    edges = list(edges)
    idx = np.searchsorted(edges, np.asarray(values, dtype=float), side="right")
    names = [f"< {edges[0]:g}"] + [f"[{a:g}, {b:g})" for a, b in zip(edges[:-1], edges[1:])] + [f">= {edges[-1]:g}"]
    return [names[i] for i in idx]


def retrieval_gallery(query_images: Sequence[Any], results: Sequence[Sequence[Any]],
                      relevant: Sequence[Sequence[bool]] | None = None, titles: Sequence[Sequence[str]] | None = None,
                      query_titles: Sequence[str] | None = None, thumb: float = 1.5, suptitle: str = "") -> Any:
    """Rows of query -> top-k images; a green frame marks relevant hits, a red one the others.

    Args:
        query_images: one PIL image per row.
        results: per row, the top-k PIL images.
        relevant: per row, a bool per hit (``None``: no frames).
        titles: per row, a short caption per hit (e.g. score and label).
    """
    import matplotlib.pyplot as plt

    rows = len(query_images)
    k = max((len(r) for r in results), default=0)
    fig, axes = plt.subplots(rows, k + 1, figsize=(thumb * (k + 1), thumb * rows * 1.15), squeeze=False)
    for i in range(rows):
        for j in range(k + 1):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if j == 0:
                ax.imshow(query_images[i])
                ax.set_title(query_titles[i] if query_titles else "query", fontsize=7)
                for s in ax.spines.values():
                    s.set_visible(True)
                    s.set_color("black")
                    s.set_linewidth(2)
                continue
            if j - 1 >= len(results[i]):
                ax.axis("off")
                continue
            ax.imshow(results[i][j - 1])
            if titles:
                ax.set_title(titles[i][j - 1], fontsize=6)
            for s in ax.spines.values():
                s.set_visible(relevant is not None)
                if relevant is not None:
                    s.set_color(RELEVANT if relevant[i][j - 1] else NOT_RELEVANT)
                    s.set_linewidth(3)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def recall_curves(ks: Sequence[int], curves: dict[str, Sequence[float]], chance: Sequence[float] | None = None,
                  title: str = "recall@k", colors: dict[str, str] | None = None) -> Any:
    """recall@k against k, one line per model, with the chance line (dashed grey)."""
    import matplotlib.pyplot as plt

    colors = colors or {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(curves)}
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(ks, values, marker="o", ms=3, label=name, color=colors.get(name))
    if chance is not None:
        ax.plot(ks, chance, ls="--", color="grey", label="chance")
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.set_xscale("log")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return fig


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per model name, stable across figures (sorted names -> palette order)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(names))}


def map_panels(coords: np.ndarray, colourings: dict[str, Sequence[Any]], model: str, n_neighbors: int,
               min_dist: float, seed: int, colors: dict[str, dict[Any, str]] | None = None) -> Any:
    """One row of maps of the same coordinates, one panel per colouring (e.g. character, series, score bin).

    ``colors``: per colouring, a fixed label -> colour map (computed once from the data, shared by all
    models); default :func:`label_colors` of the labels.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(colourings), figsize=(5.2 * len(colourings), 4.2), squeeze=False)
    for ax, (what, labels) in zip(axes[0], colourings.items()):
        cmap = (colors or {}).get(what) or label_colors(labels)
        scatter_map(coords, labels, f"colour: {what}", colors=cmap, ax=ax, legend=16, size=10)
    fig.suptitle(map_title(model, n_neighbors, min_dist, seed), fontsize=10)
    fig.tight_layout()
    return fig


def bin_colors(edges: Sequence[float], cmap: str = "viridis") -> dict[str, str]:
    """Ordered colours for the labels of :func:`score_bins` (low -> high along a sequential colormap)."""
    import matplotlib

    names = [f"< {edges[0]:g}"] + [f"[{a:g}, {b:g})" for a, b in zip(edges[:-1], edges[1:])] + [f">= {edges[-1]:g}"]
    cm = matplotlib.colormaps[cmap]
    return {name: matplotlib.colors.to_hex(cm(i / max(len(names) - 1, 1))) for i, name in enumerate(names)}


def similarity_heatmap(sim: np.ndarray, names: Sequence[str], title: str, vmin: float = -0.2,
                       vmax: float = 1.0) -> Any:
    """An ``(n, n)`` similarity matrix as a labelled heatmap with a colour bar (e.g. cosine of a few images)."""
    import matplotlib.pyplot as plt

    sim = np.asarray(sim)
    if sim.shape != (len(names), len(names)):
        raise ValueError(f"similarity matrix {sim.shape} does not match {len(names)} names")
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(sim, vmin=vmin, vmax=vmax, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.grid(False)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title)
    return fig


def show(fig: Any) -> None:
    """Display ``fig`` inline now and close it, so every figure appears exactly once: the inline backend
    would otherwise draw open figures again at the end of the cell, and a returned figure a third time
    (so this returns None, and can be a cell's last line)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
