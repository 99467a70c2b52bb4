"""Figures shared by every notebook: one style, one palette, UMAP maps, loss curves, image grids and recall curves.

Every helper creates its figure explicitly and returns it; save it with
:func:`acg2vec_lab.record.save_fig`. Colours come from :data:`PALETTE` by the sorted label order, so
the same character has the same colour on every model's map. The one UMAP map is :func:`umap_map`,
the one loss plot :func:`loss_curves`, the one image grid :func:`image_grid` (the retrieval gallery
and the notebooks' before/after strips are grids of it).
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
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
    ``n_neighbors`` is capped at ``N - 1``; under 10 points the layout starts from a random init (the
    spectral one needs more points than that). numba's compile cache lives in ``$NUMBA_CACHE_DIR`` (set
    by :mod:`acg2vec_lab`), so repeated runs reuse the compiled code.
    """
    x = np.asarray(x, dtype=np.float32)
    if pca and pca < x.shape[1] and pca < len(x):
        from sklearn.decomposition import PCA

        x = PCA(n_components=pca, random_state=seed).fit_transform(x).astype(np.float32)
    umap = import_umap()
    reducer = umap.UMAP(n_neighbors=max(2, min(n_neighbors, len(x) - 1)), min_dist=min_dist, random_state=seed,
                        metric=metric, n_components=2, init="random" if len(x) < 10 else "spectral")
    return reducer.fit_transform(x)


def umap_map(x: np.ndarray, colourings: Mapping[str, Sequence[Any]], model: str, n_neighbors: int = 15,
             min_dist: float = 0.1, seed: int = 0, pca: int | None = None, metric: str = "cosine",
             colors: Mapping[str, Mapping[Any, str]] | None = None) -> tuple[Any, np.ndarray]:
    """The workbook's UMAP map: embed ``x`` (:func:`umap_embed`) and draw one panel per colouring
    (:func:`map_panels`: fixed palette, no ticks, title with model, n_neighbors, min_dist and seed).

    Args:
        x: ``(N, D)`` vectors.
        colourings: panel name -> one label per row of ``x`` (e.g. ``{"character": [...], "series": [...]}``).
        model: what the vectors are, first in the title.
        colors: per colouring, a fixed label -> colour map shared by every model's map (default
            :func:`label_colors` of that colouring's labels).

    Returns:
        ``(figure, (N, 2) coordinates)``.
    """
    coords = umap_embed(x, n_neighbors, min_dist, seed, pca=pca, metric=metric)
    return map_panels(coords, colourings, model, n_neighbors, min_dist, seed, colors), coords


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


def rows_of(items: Sequence[Any], ncols: int) -> list[list[Any]]:
    """A flat list cut into rows of ``ncols`` (the last row may be shorter), for :func:`image_grid`."""
    if ncols < 1:
        raise ValueError(f"rows_of: ncols must be >= 1, got {ncols}")
    return [list(items[i:i + ncols]) for i in range(0, len(items), ncols)]


def _per_row(value: Any, n_rows: int, what: str) -> list[Any]:
    """One value for every row, or a sequence of one per row (strings count as one value)."""
    if value is None or isinstance(value, (str, int, float, np.generic)):
        return [value] * n_rows
    values = list(value)
    if len(values) != n_rows:
        raise ValueError(f"image_grid: {what} has {len(values)} entries for {n_rows} rows")
    return values


def image_grid(images: Sequence[Sequence[Any]], titles: Sequence[Sequence[str]] | None = None,
               captions: Sequence[Sequence[str]] | None = None,
               frames: Sequence[Sequence[str | None]] | None = None, row_labels: Sequence[str] | None = None,
               cmap: str | Sequence[str | None] | None = None, vmin: float | Sequence[float | None] | None = None,
               vmax: float | Sequence[float | None] | None = None, interpolation: str | None = None,
               cell: tuple[float, float] = (2.0, 2.0), title_size: float = 7, suptitle: str = "") -> Any:
    """Rows of images, the one image grid of the workbook (galleries, before/after strips, post grids).

    Args:
        images: per row, its images (PIL, ``(H, W, 3)`` uint8 or float in [0, 1], or ``(H, W)`` with
            ``cmap``); a row shorter than the longest, or a ``None`` cell, leaves the cell empty (no axes).
        titles: per row, a title per image (same nesting as ``images``).
        captions: per row, text under each image (small monospace, e.g. a post's tags).
        frames: per row, a colour per image for a thick frame (``None``: no frame).
        row_labels: one label per row, left of its first image.
        cmap / vmin / vmax: for single-channel images; one value, or one per row.
        interpolation: ``imshow`` interpolation (``"nearest"`` for pixel-exact zooms).
        cell: ``(width, height)`` inches per cell.
    Returns:
        the figure; its axes are row-major, one per cell.
    """
    import matplotlib.pyplot as plt

    rows = len(images)
    ncols = max((len(r) for r in images), default=0)
    if rows == 0 or ncols == 0:
        raise ValueError("image_grid: no images")
    cmaps, vmins, vmaxs = _per_row(cmap, rows, "cmap"), _per_row(vmin, rows, "vmin"), _per_row(vmax, rows, "vmax")
    fig, axes = plt.subplots(rows, ncols, figsize=(cell[0] * ncols, cell[1] * rows), squeeze=False)
    for i in range(rows):
        for j in range(ncols):
            ax = axes[i, j]
            image = images[i][j] if j < len(images[i]) else None
            if image is None:
                ax.axis("off")
                continue
            ax.imshow(image, cmap=cmaps[i], vmin=vmins[i], vmax=vmaxs[i], interpolation=interpolation)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            colour = frames[i][j] if frames is not None and j < len(frames[i]) else None
            for side in ax.spines.values():
                side.set_visible(colour is not None)
                if colour is not None:
                    side.set_color(colour)
                    side.set_linewidth(3)
            if titles is not None and j < len(titles[i]) and titles[i][j]:
                ax.set_title(titles[i][j], fontsize=title_size)
            if captions is not None and j < len(captions[i]) and captions[i][j]:
                ax.text(0.0, -0.03, captions[i][j], transform=ax.transAxes, va="top", ha="left", fontsize=6.5,
                        family="monospace")
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def retrieval_gallery(query_images: Sequence[Any], results: Sequence[Sequence[Any]],
                      relevant: Sequence[Sequence[bool]] | None = None, titles: Sequence[Sequence[str]] | None = None,
                      query_titles: Sequence[str] | None = None, thumb: float = 1.5, suptitle: str = "") -> Any:
    """Rows of query -> top-k images (an :func:`image_grid`); the query has a black frame, a green
    frame marks relevant hits, a red one the others.

    Args:
        query_images: one PIL image per row.
        results: per row, the top-k PIL images.
        relevant: per row, a bool per hit (``None``: no frames on the hits).
        titles: per row, a short caption per hit (e.g. score and label).
    """
    rows = len(query_images)
    return image_grid(
        [[query_images[i], *results[i]] for i in range(rows)],
        titles=[[query_titles[i] if query_titles else "query", *(titles[i] if titles else [])] for i in range(rows)],
        frames=[["black", *((RELEVANT if hit else NOT_RELEVANT) for hit in relevant[i])] if relevant is not None
                else ["black"] for i in range(rows)],
        cell=(thumb, thumb * 1.15), title_size=6, suptitle=suptitle)


def loss_curves(curves: Mapping[str, Sequence[float]] | Sequence[float], title: str = "training loss",
                ylabel: str = "loss", xlabel: str = "step", ax: Any = None) -> Any:
    """Loss against step (or epoch), one line per named curve; the one loss plot of the workbook.

    Args:
        curves: name -> values, or one unnamed sequence (no legend then).
        ax: draw into this axes (e.g. one panel of train and one of validation loss); default a new figure.
    Returns:
        the figure.
    """
    import matplotlib.pyplot as plt

    named = dict(curves) if isinstance(curves, Mapping) else {"": list(curves)}
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
    else:
        fig = ax.figure
    for i, (name, values) in enumerate(named.items()):
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) < 30 else None, label=name or None,
                color=PALETTE[i % len(PALETTE)])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if any(named):
        ax.legend(fontsize=8)
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


def grouped_bars(values: Mapping[str, Mapping[str, float]], title: str, ylabel: str,
                 chance: Mapping[str, float] | None = None, log2: bool = False, annotate: bool = True,
                 colors: Mapping[str, str] | None = None) -> Any:
    """Grouped bar chart: one group of bars per key of ``values``, one bar per series inside it.

    Args:
        values: group -> series -> value (e.g. relevance -> embedding -> recall@10, or stage ->
            quantity -> size); a series missing from a group leaves a gap.
        chance: group -> chance level, drawn as a dashed grey line across that group's bars.
        log2: a base-2 log y axis (sizes that halve or double).
        annotate: write each value above its bar.
        colors: series -> colour (default :func:`model_colors` of the series names).
    Returns:
        the figure.
    """
    import matplotlib.pyplot as plt

    groups = list(values)
    series = list(dict.fromkeys(name for g in groups for name in values[g]))
    if not groups or not series:
        raise ValueError("grouped_bars: no values")
    colors = colors or model_colors(series)
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups) * max(1, len(series)) ** 0.5 + 2), 3.6))
    for k, name in enumerate(series):
        xs = [i - 0.4 + width * (k + 0.5) for i, g in enumerate(groups) if name in values[g]]
        ys = [float(values[g][name]) for g in groups if name in values[g]]
        bars = ax.bar(xs, ys, width * 0.95, label=name, color=colors.get(name))
        if annotate:
            ax.bar_label(bars, labels=[f"{y:.0f}" if y.is_integer() else f"{y:.3g}" for y in ys], fontsize=6, padding=1)
    for i, g in enumerate(groups):
        if chance is not None and g in chance:
            ax.plot([i - 0.45, i + 0.45], [chance[g]] * 2, ls="--", color="grey",
                    label="chance" if i == min(j for j, h in enumerate(groups) if h in chance) else None)
    if log2:
        ax.set_yscale("log", base=2)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set(ylabel=ylabel, title=title)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
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
