"""Parity ledger: one row per ported layer (torch spec, TF spec, weight transform, crop, output shape,
max |diff|), built from paired PyTorch / TF activations. The notebook and the tests use this code."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

COLUMNS = ["layer", "torch", "tf", "weight_transform", "crop", "output_shape", "max_abs_diff", "rel_diff"]


def max_abs_diff(torch_nchw: Any, tf_nhwc: Any) -> float:
    a = np.asarray(torch_nchw)
    b = np.asarray(tf_nhwc)
    if a.ndim == 4:
        a = a.transpose(0, 2, 3, 1)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch torch(NHWC view) {a.shape} vs tf {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def rel_diff(torch_nchw: Any, tf_nhwc: Any) -> float:
    """max |diff| / max |torch activation| (float32 rounding scales with the activation size)."""
    scale = float(np.max(np.abs(np.asarray(torch_nchw)))) if np.asarray(torch_nchw).size else 0.0
    return max_abs_diff(torch_nchw, tf_nhwc) / scale if scale else 0.0


def make_ledger(rows: Iterable[dict]):
    """DataFrame with :data:`COLUMNS` (extra keys are kept after them)."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
