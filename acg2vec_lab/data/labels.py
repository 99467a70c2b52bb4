"""Pixiv score bins used by Pix2Score / deepix (ACG2vec), and a helper to bin raw counts.

Each list holds the inner edges; with ``k`` edges there are ``k + 1`` bins and bin ``i`` covers
``[edges[i-1], edges[i])`` (bin 0 is everything below the first edge, the last bin everything at or
above the last edge). So 14 bookmark edges give 15 bins, 14 view edges 15 bins, 4 sanity edges 5 bins.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BOOKMARK_EDGES: tuple[int, ...] = (10, 30, 50, 70, 100, 130, 170, 220, 300, 400, 550, 800, 1300, 2700)
VIEW_EDGES: tuple[int, ...] = (500, 700, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6500, 8500, 12000, 19000, 35000)
SANITY_EDGES: tuple[int, ...] = (2, 4, 6, 7)

N_BOOKMARK_BINS = len(BOOKMARK_EDGES) + 1
N_VIEW_BINS = len(VIEW_EDGES) + 1
N_SANITY_BINS = len(SANITY_EDGES) + 1


def to_bins(values: Sequence[float] | np.ndarray | float, edges: Sequence[float]) -> np.ndarray:
    """Bin index of every value: ``i`` such that ``edges[i-1] <= value < edges[i]``.

    Returns an ``int64`` array of the input's shape (a 0-d array for a scalar). NaN is rejected.
    """
    arr = np.asarray(values, dtype=np.float64)
    if np.isnan(arr).any():
        raise ValueError("to_bins: values contain NaN")
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or (len(e) > 1 and np.any(np.diff(e) <= 0)):
        raise ValueError(f"to_bins: edges must be a strictly increasing 1-d list, got {list(edges)}")
    return np.searchsorted(e, arr, side="right").astype(np.int64)


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Human-readable names of the bins, e.g. ``['<10', '10-30', ..., '>=2700']``."""
    e = list(edges)
    out = [f"<{e[0]:g}"]
    out += [f"{a:g}-{b:g}" for a, b in zip(e[:-1], e[1:])]
    out.append(f">={e[-1]:g}")
    return out
