"""Named axis permutations between PyTorch (NCHW, OIHW / IOHW kernels) and TensorFlow (NHWC, HWIO /
HWOI kernels). Each checks its input rank (and expected shape if given) so a wrong permutation fails
loudly instead of silently computing something else."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _check(x: Any, rank: int, name: str, expect: Sequence[int] | None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != rank:
        raise ValueError(f"{name}: expected a rank-{rank} array, got shape {a.shape}")
    if expect is not None and tuple(a.shape) != tuple(expect):
        raise ValueError(f"{name}: expected shape {tuple(expect)}, got {a.shape}")
    return a


def oihw_to_hwio(w: Any, expect: Sequence[int] | None = None) -> np.ndarray:
    """Conv2d (out, in, kh, kw) -> Keras Conv2D (kh, kw, in, out): transpose (2, 3, 1, 0); no flip."""
    return np.ascontiguousarray(_check(w, 4, "oihw_to_hwio", expect).transpose(2, 3, 1, 0))


def hwio_to_oihw(w: Any, expect: Sequence[int] | None = None) -> np.ndarray:
    """Keras Conv2D (kh, kw, in, out) -> Conv2d (out, in, kh, kw): transpose (3, 2, 0, 1)."""
    return np.ascontiguousarray(_check(w, 4, "hwio_to_oihw", expect).transpose(3, 2, 0, 1))


def iohw_to_hwoi(w: Any, expect: Sequence[int] | None = None) -> np.ndarray:
    """ConvTranspose2d (in, out, kh, kw) -> Keras Conv2DTranspose (kh, kw, out, in): the same
    transpose (2, 3, 1, 0); no kernel flip (both frameworks scatter with the kernel as stored)."""
    return np.ascontiguousarray(_check(w, 4, "iohw_to_hwoi", expect).transpose(2, 3, 1, 0))


def hwoi_to_iohw(w: Any, expect: Sequence[int] | None = None) -> np.ndarray:
    """Keras Conv2DTranspose (kh, kw, out, in) -> ConvTranspose2d (in, out, kh, kw)."""
    return np.ascontiguousarray(_check(w, 4, "hwoi_to_iohw", expect).transpose(3, 2, 0, 1))


def reversed_axes(w: Any, expect: Sequence[int] | None = None) -> np.ndarray:
    """Full axis reversal (3, 2, 1, 0): what ACG2vec's cugan_tf used. It is its own inverse and turns
    (O, I, kh, kw) into (kw, kh, I, O), i.e. HWIO with H and W swapped."""
    return np.ascontiguousarray(_check(w, 4, "reversed_axes", expect).transpose(3, 2, 1, 0))


def nchw_to_nhwc(x: Any) -> np.ndarray:
    return np.ascontiguousarray(_check(x, 4, "nchw_to_nhwc", None).transpose(0, 2, 3, 1))


def nhwc_to_nchw(x: Any) -> np.ndarray:
    return np.ascontiguousarray(_check(x, 4, "nhwc_to_nchw", None).transpose(0, 3, 1, 2))


def torch_reflect_pad_to_tf(pad: Sequence[int]) -> list[list[int]]:
    """torch ``F.pad`` tuple (left, right, top, bottom) on NCHW -> ``tf.pad`` paddings on NHWC.
    torch lists the LAST axis (W) first; TF lists axes in order (N, H, W, C)."""
    if len(pad) != 4:
        raise ValueError(f"expected (left, right, top, bottom), got {pad}")
    left, right, top, bottom = pad
    return [[0, 0], [top, bottom], [left, right], [0, 0]]
