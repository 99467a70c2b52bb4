"""Real-CUGAN UpCunet 2x/3x/4x in PyTorch (NCHW, RGB), written from the spec in models.md section 6.

Module and parameter names follow the upstream state-dict keys (``unet1.conv1.conv.0.weight``,
``unet2.conv2.seblock.conv1.bias``, ``conv_final.weight`` ...), so official ``.pth`` files load with
``strict=True``. Widths are parameterised by ``base`` (32 upstream) for the tiny test replica.

The network works in "network range": x/255 for normal weights, x/(255/0.7)+0.15 for "pro" weights
(:func:`to_network_range` / :func:`from_network_range`). ``forward`` returns float output; quantise with
:func:`from_network_range`.

SE hooks for tiling: every SE block takes its global mean from ``ctx.means[i]`` when given (``i`` =
0..3 in execution order: unet1.conv2, unet2.conv2, unet2.conv3, unet2.conv4) and, when
``ctx.stop_at == i``, stops the forward and returns the pre-SE feature map (see ``tiling.py``).
Alpha multiplies the SE-scaled conv4 output (the reference's non-tiled meaning) in every path.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from acg2vec_lab.models.real_cugan import tiling
from acg2vec_lab.models.real_cugan.geometry import (  # noqa: F401  (re-exported for callers)
    GEOMETRY,
    SE_NAMES,
    SECtx,
    StopAtSE,
    from_network_range_float,
    next_se,
    quantize,
    to_network_range,
)

_next_se = next_se


class SEBlock(nn.Module):
    def __init__(self, channels: int, reduction: int = 8, bias: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1, 1, 0, bias=bias)
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1, 1, 0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.float().mean(dim=(2, 3), keepdim=True).to(x.dtype)
        return self.forward_mean(x, mean)

    def forward_mean(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        z = torch.sigmoid(self.conv2(F.relu(self.conv1(mean))))
        return x * z


class UNetConv(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, se: bool, reduction: int = 8):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, mid, 3, 1, 0), nn.LeakyReLU(0.1),
            nn.Conv2d(mid, cout, 3, 1, 0), nn.LeakyReLU(0.1),
        )
        self.seblock = SEBlock(cout, reduction, bias=True) if se else None

    def forward(self, x: torch.Tensor, ctx: SECtx | None = None) -> torch.Tensor:
        x = self.conv(x)
        if self.seblock is not None:
            mean = _next_se(ctx, x)
            x = self.seblock(x) if mean is None else self.seblock.forward_mean(x, mean)
        return x


def crop(x: torch.Tensor, a: int) -> torch.Tensor:
    """``F.pad(x, (-a, -a, -a, -a))`` written as the slice it is."""
    return x[:, :, a:-a, a:-a] if a else x


class UNet1(nn.Module):
    """H -> 2H-32 (k4 s2 p3 bottom) or, with ``x3``, H -> 3H-44 (k5 s3 p2 bottom)."""

    def __init__(self, cin: int, cout: int, base: int = 32, se: bool = True, reduction: int = 8, x3: bool = False):
        super().__init__()
        c1, c2 = base, 2 * base
        self.conv1 = UNetConv(cin, c1, c2, se=False, reduction=reduction)
        self.conv1_down = nn.Conv2d(c2, c2, 2, 2, 0)
        self.conv2 = UNetConv(c2, 2 * c2, c2, se=se, reduction=reduction)
        self.conv2_up = nn.ConvTranspose2d(c2, c2, 2, 2, 0)
        self.conv3 = nn.Conv2d(c2, c2, 3, 1, 0)
        self.conv_bottom = nn.ConvTranspose2d(c2, cout, 5, 3, 2) if x3 else nn.ConvTranspose2d(c2, cout, 4, 2, 3)

    def forward(self, x: torch.Tensor, ctx: SECtx | None = None) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = F.leaky_relu(self.conv1_down(x1), 0.1)
        x2 = self.conv2(x2, ctx)
        x2 = F.leaky_relu(self.conv2_up(x2), 0.1)
        x3 = F.leaky_relu(self.conv3(crop(x1, 4) + x2), 0.1)
        return self.conv_bottom(x3)


class UNet2(nn.Module):
    """H -> H-40 (H must be a multiple of 4 for the skips to line up)."""

    def __init__(self, cin: int, cout: int, base: int = 32, se: bool = True, reduction: int = 8):
        super().__init__()
        c1, c2, c4, c8 = base, 2 * base, 4 * base, 8 * base
        self.conv1 = UNetConv(cin, c1, c2, se=False, reduction=reduction)
        self.conv1_down = nn.Conv2d(c2, c2, 2, 2, 0)
        self.conv2 = UNetConv(c2, c2, c4, se=se, reduction=reduction)
        self.conv2_down = nn.Conv2d(c4, c4, 2, 2, 0)
        self.conv3 = UNetConv(c4, c8, c4, se=se, reduction=reduction)
        self.conv3_up = nn.ConvTranspose2d(c4, c4, 2, 2, 0)
        self.conv4 = UNetConv(c4, c2, c2, se=se, reduction=reduction)
        self.conv4_up = nn.ConvTranspose2d(c2, c2, 2, 2, 0)
        self.conv5 = nn.Conv2d(c2, c2, 3, 1, 0)
        self.conv_bottom = nn.Conv2d(c2, cout, 3, 1, 0)

    def forward(self, x: torch.Tensor, alpha: float = 1.0, ctx: SECtx | None = None) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = F.leaky_relu(self.conv1_down(x1), 0.1)
        x2 = self.conv2(x2, ctx)
        x3 = F.leaky_relu(self.conv2_down(x2), 0.1)
        x3 = self.conv3(x3, ctx)
        x3 = F.leaky_relu(self.conv3_up(x3), 0.1)
        x4 = self.conv4(crop(x2, 4) + x3, ctx) * alpha  # alpha on the SE-scaled conv4 output
        x4 = F.leaky_relu(self.conv4_up(x4), 0.1)
        x5 = F.leaky_relu(self.conv5(crop(x1, 16) + x4), 0.1)
        return self.conv_bottom(x5)


def reflect_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect padding (edge not repeated) that also works when a pad exceeds the image side:
    pads in rounds of at most ``side - 1`` (upstream crashes there)."""
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        t, b = min(top, h - 1), min(bottom, h - 1)
        l, r = min(left, w - 1), min(right, w - 1)
        x = F.pad(x, (l, r, t, b), mode="reflect")  # torch order: (W_left, W_right, H_top, H_bottom)
        top, bottom, left, right = top - t, bottom - b, left - l, right - r
    return x


class UpCunet(nn.Module):
    """Common wrapper: pad, unet1, unet2 (+ skip), crop. ``scale`` in {2, 3, 4}."""

    def __init__(self, scale: int = 2, base: int = 32, se: bool = True, reduction: int = 8):
        super().__init__()
        if scale not in GEOMETRY:
            raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
        self.scale, self.base, self.se = scale, base, se
        if scale == 2:
            self.unet1 = UNet1(3, 3, base, se, reduction)
            self.unet2 = UNet2(3, 3, base, se, reduction)
        elif scale == 3:
            self.unet1 = UNet1(3, 3, base, se, reduction, x3=True)
            self.unet2 = UNet2(3, 3, base, se, reduction)
        else:
            self.unet1 = UNet1(3, 2 * base, base, se, reduction)
            self.unet2 = UNet2(2 * base, 2 * base, base, se, reduction)
            self.conv_final = nn.Conv2d(2 * base, 12, 3, 1, 0)
            self.ps = nn.PixelShuffle(2)

    def padding(self, h0: int, w0: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) reflect padding of the whole-image path."""
        m, k = GEOMETRY[self.scale]
        ph, pw = ((h0 - 1) // k + 1) * k, ((w0 - 1) // k + 1) * k
        return m, m + ph - h0, m, m + pw - w0

    def core(self, xp: torch.Tensor, alpha: float = 1.0, ctx: SECtx | None = None) -> torch.Tensor:
        """The network on an already padded input of side ``c + 2*margin`` -> ``scale*c`` pixels."""
        y = self.unet1(xp, ctx)
        out = self.unet2(y, alpha, ctx) + crop(y, 20)
        if self.scale == 4:
            out = self.ps(crop(self.conv_final(out), 1))
            m = GEOMETRY[4][0]
            out = out + F.interpolate(xp[:, :, m:-m, m:-m], scale_factor=4, mode="nearest")
        return out

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        h0, w0 = x.shape[-2:]
        xp = reflect_pad(x, *self.padding(h0, w0))
        return self.core(xp, alpha)[:, :, : self.scale * h0, : self.scale * w0]


def UpCunet2x(base: int = 32, se: bool = True, reduction: int = 8) -> UpCunet:  # noqa: N802 (upstream name)
    return UpCunet(2, base, se, reduction)


def UpCunet3x(base: int = 32, se: bool = True, reduction: int = 8) -> UpCunet:  # noqa: N802
    return UpCunet(3, base, se, reduction)


def UpCunet4x(base: int = 32, se: bool = True, reduction: int = 8) -> UpCunet:  # noqa: N802
    return UpCunet(4, base, se, reduction)


# --- loading --------------------------------------------------------------------------------------

def model_for_state_dict(sd: dict, base: int | None = None) -> tuple[UpCunet, bool]:
    """Build the UpCunet that matches a state dict's keys/shapes; returns (model, pro)."""
    pro = "pro" in sd
    if "conv_final.weight" in sd:
        scale = 4
    elif tuple(sd["unet1.conv_bottom.weight"].shape[-2:]) == (5, 5):
        scale = 3
    else:
        scale = 2
    base = base or int(sd["unet1.conv1.conv.0.weight"].shape[0])
    se = "unet1.conv2.seblock.conv1.weight" in sd
    reduction = 8
    if se:
        c = sd["unet1.conv2.seblock.conv1.weight"]
        reduction = int(c.shape[1] // c.shape[0])
    return UpCunet(scale, base, se, reduction), pro


def load_state_dict(model: UpCunet, sd: dict) -> bool:
    """Load an upstream-keyed state dict strictly; the optional ``pro`` key is removed first.
    Returns whether the weights are "pro" weights."""
    sd = dict(sd)
    pro = sd.pop("pro", None) is not None
    model.load_state_dict({k: torch.as_tensor(v) for k, v in sd.items()}, strict=True)
    return pro


def load_pth(path: str, base: int | None = None) -> tuple[UpCunet, bool]:
    """Read an official ``.pth`` (plain torch.save'd state dict, optional ``pro`` key) with
    ``torch.load(weights_only=True)``: a pickle that would run code is refused with a ``ValueError``
    naming the file; keys and shapes must be exactly upstream's (``strict=True``)."""
    import pickle

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: refused to load: the file holds pickled objects other than tensors and plain "
                         f"containers, which could run code (torch.load weights_only=True)") from exc
    if not isinstance(sd, dict) or "unet1.conv_bottom.weight" not in sd:
        raise ValueError(f"{path}: not a Real-CUGAN state dict (no 'unet1.conv_bottom.weight' key)")
    model, _ = model_for_state_dict(sd, base)
    pro = load_state_dict(model, sd)
    return model.eval(), pro


@torch.no_grad()
def upscale_image(model: UpCunet, img: Any, pro: bool = False, alpha: float = 1.0, tile: str = "none",
                  tile_size: int = 128) -> Any:
    """uint8 HxWx3 (numpy) -> uint8 (scale*H)x(scale*W)x3 with the PyTorch reference."""
    import numpy as np

    x = torch.from_numpy(np.ascontiguousarray(to_network_range(np.asarray(img), pro))).permute(2, 0, 1)[None]
    y = tiling.torch_upscale(model, x, alpha=alpha, mode=tile, tile=tile_size)
    return quantize(from_network_range_float(y[0].permute(1, 2, 0), pro)).numpy()
