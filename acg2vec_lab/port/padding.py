"""TensorFlow "same" padding arithmetic, for PyTorch re-implementations of TF/Keras networks.

TF pads ``total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` along each spatial axis and
puts ``total // 2`` before and the rest after, so stride-2 layers on even sizes pad one more pixel at
the bottom/right (e.g. 7x7/2 on 512 -> (2, 3); 3x3/2 on 256 -> (0, 1)). PyTorch's symmetric
``padding=`` cannot express that; :func:`pad_same` applies it explicitly for the actual input size.
"""
from __future__ import annotations

import math
from typing import Any


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """``(before, after)`` padding TF "same" uses for one axis of length ``size``."""
    if size < 1 or kernel < 1 or stride < 1 or dilation < 1:
        raise ValueError(f"invalid size/kernel/stride/dilation {size}/{kernel}/{stride}/{dilation}")
    eff = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def torch_pad_arg(height: int, width: int, kernel: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                  dilation: int = 1) -> tuple[int, int, int, int]:
    """The ``F.pad`` argument ``(left, right, top, bottom)`` for an NCHW tensor of ``height x width``."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    top, bottom = same_padding(height, kh, sh, dilation)
    left, right = same_padding(width, kw, sw, dilation)
    return left, right, top, bottom


def pad_same(x: Any, kernel: int | tuple[int, int], stride: int | tuple[int, int] = 1, value: float = 0.0,
             dilation: int = 1) -> Any:
    """Pad an NCHW torch tensor as TF "same" would before a ``kernel``/``stride`` conv or pool.

    Use ``value=float("-inf")`` before a max-pool (TF ignores padded cells in the max).
    """
    import torch.nn.functional as F

    pad = torch_pad_arg(int(x.shape[-2]), int(x.shape[-1]), kernel, stride, dilation)
    if not any(pad):
        return x
    return F.pad(x, pad, mode="constant", value=value)
