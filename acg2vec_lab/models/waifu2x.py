"""waifu2x UpConv7 (anime style, RGB) in PyTorch, loading the real Chainer ``.npz`` weights from the
``waifu2x`` asset (assets.md section 3): six 3x3 valid convs with LeakyReLU 0.1, then a stride-2
ConvTranspose k4 p3 without bias; the input is replicate-padded by 7, so H -> 2H exactly."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (3, 16, 32, 64, 128, 256, 256)


class UpConv7(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, 1, 0) for a, b in zip(WIDTHS[:-1], WIDTHS[1:]))
        self.conv7 = nn.ConvTranspose2d(256, 3, 4, 2, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (7, 7, 7, 7), mode="replicate")
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
        return self.conv7(x)


def model_path(noise: int | None = None) -> Path:
    """UpConv7 anime-style weights: scale only (noise None) or noise level 0-3 + scale."""
    from acg2vec_lab.models.real_cugan.weights import asset

    name = "anime_style_scale_rgb.npz" if noise is None else f"anime_style_noise{noise}_scale_rgb.npz"
    return asset("waifu2x") / "waifu2x" / "models" / "upconv7" / name


def load_npz(path: str | Path) -> UpConv7:
    """Chainer keys ``conv{i}/W`` (out, in, 3, 3), ``conv{i}/b``; ``conv7/W`` is a Deconvolution2D
    kernel (in, out, 4, 4) = PyTorch ConvTranspose2d layout."""
    z = np.load(path, allow_pickle=False)
    m = UpConv7()
    sd = {}
    for i in range(6):
        sd[f"convs.{i}.weight"] = torch.from_numpy(z[f"conv{i + 1}/W"].astype(np.float32))
        sd[f"convs.{i}.bias"] = torch.from_numpy(z[f"conv{i + 1}/b"].astype(np.float32))
    sd["conv7.weight"] = torch.from_numpy(z["conv7/W"].astype(np.float32))
    m.load_state_dict(sd, strict=True)
    return m.eval()


@torch.no_grad()
def upscale_image(model: UpConv7, img: Any) -> np.ndarray:
    """uint8 HxWx3 RGB -> uint8 2Hx2Wx3."""
    x = torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)[None]
    y = model(x)[0].permute(1, 2, 0).numpy()
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)
