"""The JoyTag vision transformer (models.md section 7), written from the spec with the original's state-dict names.

Layout: input ``(N, 3, H, W)`` float32, CLIP-normalised RGB, NCHW. CNN stem (or a patch conv) ->
``(N, d_model, H/p, W/p)`` -> tokens row-major ``(N, H/p * W/p, d_model)`` + fixed 2-D sin-cos
positions -> pre-norm blocks with LayerScale -> LayerNorm -> mean over tokens -> ``head``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def sincos_2d_positions(grid_w: int, grid_h: int, dim: int, dtype: torch.dtype = torch.float32,
                        device: Any = None, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine positions, ``(grid_h * grid_w, dim)``, tokens row-major.

    Frequencies ``w_i = temperature ** -(i / (dim/4 - 1))`` for ``i < dim/4``; each row is
    ``[sin(x w), cos(x w), sin(y w), cos(y w)]`` with x the column and y the row of the token.
    """
    if dim % 4:
        raise ValueError(f"d_model {dim} must be divisible by 4 for 2-D sin-cos positions")
    quarter = dim // 4
    rows, cols = torch.meshgrid(torch.arange(grid_h, device=device), torch.arange(grid_w, device=device), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(quarter, device=device) / max(quarter - 1, 1))
    xs = cols.reshape(-1, 1).float() * omega[None]
    ys = rows.reshape(-1, 1).float() * omega[None]
    return torch.cat([xs.sin(), xs.cos(), ys.sin(), ys.cos()], dim=1).to(dtype)


def cait_layerscale_init(depth: int) -> float:
    """The CaiT rule the original uses when ``layerscale_init`` is not given."""
    return 0.1 if depth <= 18 else (1e-5 if depth <= 24 else 1e-6)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of an NCHW map (key ``norm``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def parse_stem(spec: str) -> list[tuple[str, dict[str, int]]]:
    """``"conv:c=64;ln;relu;conv:c=768,s=1,k=1,p=0"`` -> ``[("conv", {"c": 64}), ("ln", {}), ...]``."""
    layers = []
    for item in spec.split(";"):
        kind, _, opts = item.partition(":")
        options = {}
        for opt in filter(None, opts.split(",")):
            key, _, value = opt.partition("=")
            options[key] = int(value)
        if kind not in ("conv", "ln", "bn", "relu", "gelu"):
            raise ValueError(f"unknown CNN stem layer {kind!r} in {spec!r}")
        layers.append((kind, options))
    return layers


class CNNStem(nn.Module):
    """The convolutional stem: ``conv`` (default k3 s2 p1, bias), ``ln`` (channel LayerNorm), ``bn``, ``relu``, ``gelu``."""

    def __init__(self, spec: str, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for kind, o in parse_stem(spec):
            if kind == "conv":
                layers.append(nn.Conv2d(channels, o["c"], kernel_size=o.get("k", 3), stride=o.get("s", 2),
                                        padding=o.get("p", 1), bias=True))
                channels = o["c"]
            elif kind == "ln":
                layers.append(ChannelLayerNorm(channels))
            elif kind == "bn":
                layers.append(nn.BatchNorm2d(channels))
            elif kind == "relu":
                layers.append(nn.ReLU())
            else:
                layers.append(nn.GELU())
        self.conv = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class LayerScale(nn.Module):
    """Per-channel residual scale (key ``skip``), initialised to a small constant."""

    def __init__(self, channels: int, init: float) -> None:
        super().__init__()
        self.skip = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.skip


class DropPath(nn.Module):
    """Stochastic depth per sample (training only), rescaled by the keep probability."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate <= 0:
            return x
        keep = 1.0 - self.rate
        mask = torch.floor(keep + torch.rand((x.shape[0], 1, 1), device=x.device, dtype=x.dtype))
        return x / keep * mask


class MLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.gelu(self.linear1(x)))  # exact (erf) GELU


class ViTBlock(nn.Module):
    """Pre-norm block: x + LS1(attn(LN1 x)); x + LS2(mlp(LN2 x)); fused qkv projection (q|k|v)."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, layerscale_init: float, drop_path: float) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.skip_init1 = LayerScale(d_model, layerscale_init)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, d_ff)
        self.skip_init2 = LayerScale(d_model, layerscale_init)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv_proj(self.norm1(x)).split(d, dim=-1)
        heads = lambda z: z.view(n, t, self.num_heads, d // self.num_heads).transpose(1, 2)  # noqa: E731
        att = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
        att = self.out_proj(att.transpose(1, 2).reshape(n, t, d))
        x = x + self.drop_path(self.skip_init1(att))
        return x + self.drop_path(self.skip_init2(self.mlp(self.norm2(x))))


class JoyTagViT(nn.Module):
    """JoyTag's ``ViT`` (constructor arguments and state-dict keys as the original's).

    ``forward(images)`` takes ``(N, 3, H, W)`` CLIP-normalised RGB (H, W divisible by ``patch_size``)
    and returns ``(N, n_tags)`` logits; :meth:`embed` returns the pooled ``(N, d_model)`` trunk output.
    """

    def __init__(self, n_tags: int, image_size: int, num_blocks: int, patch_size: int, d_model: int, mlp_dim: int,
                 num_heads: int, stochdepth_rate: float = 0.0, use_sine: bool = True, loss_type: str = "focal2",
                 layerscale_init: float | None = None, head_mean_after: bool = False, cnn_stem: str | None = None,
                 patch_dropout: float = 0.0) -> None:
        super().__init__()
        if not use_sine:
            raise NotImplementedError("only the fixed sin-cos positions of the released model are implemented")
        if patch_dropout:
            raise NotImplementedError("patch dropout (training-only, 0 in the released model) is not implemented")
        self.n_tags, self.image_size, self.patch_size = n_tags, image_size, patch_size
        self.d_model, self.loss_type, self.head_mean_after = d_model, loss_type, head_mean_after
        scale = cait_layerscale_init(num_blocks) if layerscale_init is None else layerscale_init
        if cnn_stem is None:
            self.patch_embeddings: nn.Module = nn.Conv2d(3, d_model, patch_size, stride=patch_size, bias=True)
        else:
            self.patch_embeddings = CNNStem(cnn_stem)
            if self.patch_embeddings.out_channels != d_model:
                raise ValueError(f"CNN stem ends with {self.patch_embeddings.out_channels} channels, d_model is {d_model}")
        self.blocks = nn.ModuleList(ViTBlock(d_model, num_heads, mlp_dim, scale, stochdepth_rate) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_tags)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> normalised token features ``(N, H/p * W/p, d_model)``."""
        _, _, h, w = images.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input {h}x{w} is not divisible by the patch size {self.patch_size}")
        x = self.patch_embeddings(images)
        if x.shape[-2:] != (h // self.patch_size, w // self.patch_size):
            raise ValueError(f"stem gives a {tuple(x.shape[-2:])} grid for {h}x{w}; expected /{self.patch_size}")
        x = x.flatten(2).transpose(1, 2)
        x = x + sincos_2d_positions(w // self.patch_size, h // self.patch_size, self.d_model, x.dtype, x.device)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled trunk output ``(N, d_model)``: the mean of the normalised tokens."""
        return self.tokens(images).mean(dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.tokens(images)
        if self.head_mean_after:
            return self.head(x).mean(dim=1)
        return self.head(x.mean(dim=1))


def build_model(cfg: Any) -> JoyTagViT:
    """A :class:`JoyTagViT` from a :class:`~acg2vec_lab.models.joytag.config.JoyTagConfig` (or a kwargs dict)."""
    kwargs = cfg.vit_kwargs() if hasattr(cfg, "vit_kwargs") else dict(cfg)
    return JoyTagViT(**kwargs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def expected_parameters(n_tags: int, d_model: int, mlp_dim: int, num_blocks: int, stem: str | None,
                        patch_size: int = 16) -> int:
    """Parameter count from the config alone (no allocation); tests check it against the module."""
    total = 0
    if stem is None:
        total += 3 * d_model * patch_size * patch_size + d_model
    else:
        ch = 3
        for kind, o in parse_stem(stem):
            if kind == "conv":
                k = o.get("k", 3)
                total += ch * o["c"] * k * k + o["c"]
                ch = o["c"]
            elif kind in ("ln", "bn"):
                total += 2 * ch
    block = 2 * d_model + (3 * d_model * d_model + 3 * d_model) + (d_model * d_model + d_model) + d_model
    block += 2 * d_model + (d_model * mlp_dim + mlp_dim) + (mlp_dim * d_model + d_model) + d_model
    return total + num_blocks * block + 2 * d_model + d_model * n_tags + n_tags

