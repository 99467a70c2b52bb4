"""Real-CUGAN geometry shared by the PyTorch reference, the TF port and tiling: no framework imported.

The reflect margin and alignment of each scale, the SE-block order and the per-forward SE control
(:class:`SECtx`, :class:`StopAtSE`), the padding / SE-map arithmetic of tiled inference and the value
ranges ("network range": x/255, or x/(255/0.7)+0.15 for "pro" weights). ``torch_model``, ``tf_model``
and ``tiling`` all import from here, so none of them needs another's framework.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# reflect margin and alignment (input pixels) of each scale: (margin, multiple)
GEOMETRY = {2: (18, 2), 3: (14, 4), 4: (19, 2)}
SE_NAMES = ("unet1.conv2", "unet2.conv2", "unet2.conv3", "unet2.conv4")
MODES = ("none", "cache", "exact")
N_SE = 4


@dataclasses.dataclass
class SECtx:
    """Per-forward SE control: externally supplied means, an optional stop point, a counter."""

    means: dict = dataclasses.field(default_factory=dict)
    stop_at: int | None = None
    i: int = 0


class StopAtSE(Exception):
    def __init__(self, features: Any):
        super().__init__("stopped at SE block")
        self.features = features


def next_se(ctx: SECtx | None, x: Any) -> Any:
    """Book-keeping shared by every SE block: the supplied mean (or None), or stop here."""
    if ctx is None:
        return None
    idx = ctx.i
    ctx.i += 1
    if ctx.stop_at == idx:
        raise StopAtSE(x)
    return ctx.means.get(idx)


def to_network_range(img_uint8: Any, pro: bool) -> Any:
    """uint8 pixels -> network input (x/255, or x/(255/0.7)+0.15 for pro weights). Works on numpy/torch."""
    x = img_uint8.astype("float32") if hasattr(img_uint8, "astype") else img_uint8.float()
    return x / (255.0 / 0.7) + 0.15 if pro else x / 255.0


def from_network_range_float(y: Any, pro: bool) -> Any:
    """Network output -> float pixel scale 0..255 (not rounded)."""
    return (y - 0.15) * (255.0 / 0.7) if pro else y * 255.0


def quantize(y255: Any) -> Any:
    """round + clamp to uint8: numpy arrays here, tensors through their own ``round``/``clamp``."""
    if isinstance(y255, np.ndarray) or np.isscalar(y255):
        return np.clip(np.round(y255), 0, 255).astype(np.uint8)
    import torch  # a torch tensor was handed in, so torch is already imported

    return y255.round().clamp(0, 255).to(torch.uint8)


def np_reflect_pad(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """NHWC reflect pad (edge not repeated), in rounds of at most side-1 (same rule as torch_model)."""
    while top or bottom or left or right:
        h, w = x.shape[1:3]
        t, b, l, r = min(top, h - 1), min(bottom, h - 1), min(left, w - 1), min(right, w - 1)
        x = np.pad(x, [(0, 0), (t, b), (l, r), (0, 0)], mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - l, right - r
    return x


def padding(scale: int, h0: int, w0: int) -> tuple[int, int, int, int, int, int]:
    m, k = GEOMETRY[scale]
    ph, pw = ((h0 - 1) // k + 1) * k, ((w0 - 1) // k + 1) * k
    return m, m + ph - h0, m, m + pw - w0, ph, pw


def se_size(scale: int, n: int, i: int) -> int:
    """Side of SE block i's feature map for a padded input side n (valid-conv arithmetic)."""
    s0 = (n - 4) // 2 - 4
    if i == 0:
        return s0
    u = (4 * s0 - 8) if scale != 3 else (6 * s0 - 8)  # unet1 output side
    s1 = (u - 4) // 2 - 4
    if i == 1:
        return s1
    s2 = s1 // 2 - 4
    return s2 if i == 2 else 2 * s2 - 4


def tile_starts(n: int, tile: int) -> list[int]:
    return list(range(0, n, tile))
