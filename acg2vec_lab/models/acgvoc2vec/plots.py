"""The number under the acgvoc2vec title map (the map and the loss curve are :mod:`acg2vec_lab.viz`'s)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def same_work_neighbour_rate(xy_or_vecs: np.ndarray, works: Sequence[int]) -> float:
    """Share of points whose nearest other point belongs to the same work (a number for the map)."""
    v = np.asarray(xy_or_vecs, np.float64)
    d = ((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    works = np.asarray(works)
    return float((works[d.argmin(1)] == works).mean())
