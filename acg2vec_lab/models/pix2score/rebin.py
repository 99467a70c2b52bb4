"""Quantile re-binning against class imbalance (the README's "Clickhouse quantile" fix), with before/after histograms.

Fixed hand-picked edges leave most samples in a few bins; edges at the empirical quantiles of the
training values give (close to) equally filled bins. Ties can merge quantiles, so the tool returns
only strictly increasing edges and reports how many bins survive.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.data.labels import bin_labels, to_bins


def quantile_edges(values: Sequence[float] | np.ndarray, n_bins: int) -> np.ndarray:
    """Inner edges at the ``k / n_bins`` quantiles (k = 1 .. n_bins-1) of ``values``, de-duplicated.

    Returns at most ``n_bins - 1`` strictly increasing edges (fewer when many values tie), in the
    ``[e_{i-1}, e_i)`` convention of :func:`acg2vec_lab.data.labels.to_bins`.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or n_bins < 2:
        raise ValueError("need at least one value and n_bins >= 2")
    qs = np.quantile(v, np.arange(1, n_bins) / n_bins, method="higher")  # an edge is an observed value
    edges = np.unique(qs)
    return edges[edges > v.min()]  # an edge at the minimum would leave bin 0 empty


def class_histogram(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts per bin, length ``len(edges) + 1``."""
    return np.bincount(to_bins(values, edges), minlength=len(edges) + 1)


def imbalance(counts: Sequence[int] | np.ndarray) -> dict[str, float]:
    """How uneven a class histogram is: normalised entropy (1 = uniform), share of the largest bin, empty bins."""
    c = np.asarray(counts, dtype=np.float64)
    p = c / max(c.sum(), 1)
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum() / np.log(len(c))) if len(c) > 1 else 1.0
    return {"norm_entropy": entropy, "largest_share": float(p.max()), "empty_bins": int((c == 0).sum())}


def rebin_report(values: Sequence[float] | np.ndarray, edges: Sequence[float], n_bins: int | None = None) -> dict[str, Any]:
    """Fixed ``edges`` vs quantile edges with the same number of bins: edges, counts and imbalance of both."""
    n_bins = n_bins or len(edges) + 1
    new = quantile_edges(values, n_bins)
    before, after = class_histogram(values, edges), class_histogram(values, new)
    return {"edges_before": list(map(float, edges)), "edges_after": new.tolist(),
            "counts_before": before, "counts_after": after,
            "labels_before": bin_labels(edges), "labels_after": bin_labels(new),
            "imbalance_before": imbalance(before), "imbalance_after": imbalance(after)}


def plot_rebin(report: dict[str, Any], title: str = "") -> Any:
    """Side-by-side bar charts of the class histogram before and after re-binning; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
    for ax, key, name in ((axes[0], "before", "fixed edges"), (axes[1], "after", "quantile edges")):
        counts, labels = report[f"counts_{key}"], report[f"labels_{key}"]
        ax.bar(range(len(counts)), counts, color="#4c72b0" if key == "before" else "#dd8452")
        ax.set_xticks(range(len(counts)), labels, rotation=70, fontsize=7)
        imb = report[f"imbalance_{key}"]
        ax.set_title(f"{title} {name}: entropy {imb['norm_entropy']:.2f}, largest {imb['largest_share']:.0%}", fontsize=9)
    axes[0].set_ylabel("samples")
    fig.tight_layout()
    return fig
