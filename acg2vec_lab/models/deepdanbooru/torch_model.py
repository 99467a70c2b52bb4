"""The DeepDanbooru ResNet in PyTorch, numerically equivalent to :mod:`.tf_model`.

* Input NHWC float in [0, 1] like the released PyTorch ports (permuted to NCHW inside ``forward``).
* TF "same" padding is computed from the actual input size in every conv and the max-pool
  (:func:`acg2vec_lab.port.padding.pad_same`), so odd sizes (asymmetric padding) match TensorFlow.
* ``folded=False``: conv (no bias) + ``BatchNorm2d(eps=1e-3)`` like Keras; ``folded=True``: BN folded
  into the conv (bias on every conv but the head), the layout of TorchDeepDanbooru.

Weights move between frameworks through a *canonical* dict keyed by block position, never by
layer names: ``stem``, ``b<i>.c1``/``c2``/``c3`` (main path), ``b<i>.sc`` (projection shortcut),
``head``; each value is ``{"kernel": HWIO array, "bias": array|None, "bn": {gamma, beta,
moving_mean, moving_variance}|None}`` (``head`` of resnet_152: a Dense ``kernel`` (in, out) + bias).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
from acg2vec_lab.port.bn import KERAS_BN_EPSILON, fold_bn, unfolded_bn
from acg2vec_lab.port.layout import hwio_to_oihw as _hwio_to_oihw
from acg2vec_lab.port.layout import oihw_to_hwio as _oihw_to_hwio
from acg2vec_lab.port.padding import pad_same, torch_pad_arg

BN_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")


class ConvBN(nn.Module):
    """TF-"same" conv followed by BN (unfused) or with the BN folded into a bias."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, folded: bool = False, bn: bool = True):
        super().__init__()
        self.kernel, self.stride, self.folded = kernel, stride, folded
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=0, bias=folded and bn)
        self.bn = nn.BatchNorm2d(cout, eps=KERAS_BN_EPSILON, momentum=0.01) if (bn and not folded) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(pad_same(x, self.kernel, self.stride))
        return self.bn(x) if self.bn is not None else x

    # canonical weights ---------------------------------------------------------------------
    def load_canonical(self, w: dict[str, Any], name: str) -> None:
        kernel = np.asarray(w["kernel"], dtype=np.float32)
        expected = (self.kernel, self.kernel, self.conv.in_channels, self.conv.out_channels)
        if kernel.shape != expected:
            raise ValueError(f"{name}: kernel shape {kernel.shape} (HWIO), expected {expected}")
        bn, bias = w.get("bn"), w.get("bias")
        has_bn = self.bn is not None or self.conv.bias is not None
        if bn is not None:
            for k in BN_NAMES:
                if np.shape(bn[k]) != (expected[3],):
                    raise ValueError(f"{name}: BN {k} shape {np.shape(bn[k])}, expected ({expected[3]},)")
        if not has_bn:
            if bn is not None or bias is not None:
                raise ValueError(f"{name}: this conv has no BN/bias but the weights carry one")
            self.conv.weight.data = torch.from_numpy(_hwio_to_oihw(kernel))
            return
        if bn is None and bias is None:
            raise ValueError(f"{name}: missing BatchNorm parameters (or folded bias)")
        if self.folded:
            oihw = _hwio_to_oihw(kernel)
            if bn is not None:
                oihw, bias = fold_bn(oihw, bn["gamma"], bn["beta"], bn["moving_mean"], bn["moving_variance"],
                                     bias=bias, layout="oihw")
            self.conv.weight.data = torch.from_numpy(np.asarray(oihw, np.float32))
            self.conv.bias.data = torch.from_numpy(np.asarray(bias, np.float32))
        else:
            if bn is None:  # folded source into an unfused model: BN = identity scale + shift
                bn = unfolded_bn(bias)
            elif bias is not None:
                raise ValueError(f"{name}: conv bias before BN is not part of DeepDanbooru")
            self.conv.weight.data = torch.from_numpy(_hwio_to_oihw(kernel))
            self.bn.weight.data = torch.from_numpy(np.asarray(bn["gamma"], np.float32))
            self.bn.bias.data = torch.from_numpy(np.asarray(bn["beta"], np.float32))
            self.bn.running_mean.data = torch.from_numpy(np.asarray(bn["moving_mean"], np.float32))
            self.bn.running_var.data = torch.from_numpy(np.asarray(bn["moving_variance"], np.float32))

    def canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kernel": _oihw_to_hwio(self.conv.weight.detach().numpy()), "bias": None, "bn": None}
        if self.conv.bias is not None:
            out["bias"] = self.conv.bias.detach().numpy().copy()
        if self.bn is not None:
            out["bn"] = {"gamma": self.bn.weight.detach().numpy().copy(), "beta": self.bn.bias.detach().numpy().copy(),
                         "moving_mean": self.bn.running_mean.numpy().copy(),
                         "moving_variance": self.bn.running_var.numpy().copy()}
        return out


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 with a projection (conv-BN) or identity shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, projection: bool, folded: bool):
        super().__init__()
        mid = cout // 4
        self.c1 = ConvBN(cin, mid, 1, 1, folded)
        self.c2 = ConvBN(mid, mid, 3, stride, folded)
        self.c3 = ConvBN(mid, cout, 1, 1, folded)
        self.sc = ConvBN(cin, cout, 1, stride, folded) if projection else None
        if not projection and (cin != cout or stride != 1):
            raise ValueError(f"identity block needs cin == cout and stride 1 (got {cin}->{cout}, stride {stride})")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(pre_relu_sum, relu_output)``."""
        m = self.c3(F.relu(self.c2(F.relu(self.c1(x)))))
        s = self.sc(x) if self.sc is not None else x
        pre = m + s
        return pre, F.relu(pre)


class DeepDanbooruTorch(nn.Module):
    """PyTorch DeepDanbooru for a :class:`DeepDanbooruConfig` (same blocks, same order as Keras)."""

    def __init__(self, cfg: DeepDanbooruConfig, n_tags: int | None = None, folded: bool = False):
        super().__init__()
        self.cfg, self.folded = cfg, folded
        fs, rs = cfg.stages()
        stem = cfg.stem_width()
        self.stem = ConvBN(3, stem, 7, 2, folded)
        blocks, cin = [], stem
        self.block_stage: list[int] = []
        for i, (f, r) in enumerate(zip(fs, rs)):
            blocks.append(Bottleneck(cin, f, 2 if i > 0 else 1, True, folded))
            self.block_stage.append(i)
            for _ in range(r):
                blocks.append(Bottleneck(f, f, 1, False, folded))
                self.block_stage.append(i)
            cin = f
        self.blocks = nn.ModuleList(blocks)
        self.n_tags = n_tags or cfg.n_tags
        self.head_kind = cfg.head_kind()
        if self.head_kind == "conv_gap":
            self.head = nn.Conv2d(cin, self.n_tags, 1, bias=False)
        else:
            self.head = nn.Linear(cin, self.n_tags)
        self.tags: list[str] | None = None

    def features(self, x: torch.Tensor, cuts: dict[str, tuple[int, bool]] | None = None):
        """Trunk output (NCHW) and the requested cut tensors ``{name: (block_index, pre_relu)}``."""
        x = F.relu(self.stem(x))
        x = F.max_pool2d(pad_same(x, 3, 2, value=float("-inf")), 3, 2)
        found = {}
        for i, block in enumerate(self.blocks):
            pre, x = block(x)
            for name, (bi, pre_relu) in (cuts or {}).items():
                if bi == i:
                    found[name] = pre if pre_relu else x
        return x, found

    def trace(self, x: torch.Tensor) -> list[tuple[str, str, torch.Tensor]]:
        """Every stage of the forward pass on NHWC ``x``: ``(name, torch spec, NCHW tensor)`` rows for
        the stem ReLU, the max-pool, each block's output and the probabilities (for parity ledgers)."""
        x = x.permute(0, 3, 1, 2)
        h, w = int(x.shape[2]), int(x.shape[3])
        rows = []
        x = F.relu(self.stem(x))
        rows.append(("stem", f"pad{torch_pad_arg(h, w, 7, 2)} conv7x7/2+{'bias' if self.folded else 'BN'}+relu", x))
        pad = torch_pad_arg(int(x.shape[2]), int(x.shape[3]), 3, 2)
        x = F.max_pool2d(pad_same(x, 3, 2, value=float("-inf")), 3, 2)
        rows.append(("maxpool", f"pad{pad} -inf, maxpool3x3/2", x))
        for i, block in enumerate(self.blocks):
            pad = torch_pad_arg(int(x.shape[2]), int(x.shape[3]), 3, block.c2.stride)
            _, x = block(x)
            kind = f"projection s{block.c2.stride}" if block.sc is not None else "identity"
            rows.append((f"block{i} (stage {self.block_stage[i]})", f"{kind}, 3x3 pad{pad}", x))
        rows.append(("probs", "1x1 conv, mean(H,W), sigmoid", self.head_forward(x)))
        return rows

    def head_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_kind == "conv_gap":
            return torch.sigmoid(self.head(x).mean(dim=(2, 3)))
        x = F.avg_pool2d(x, 7)  # Keras AveragePooling2D(7), "valid"
        x = x.permute(0, 2, 3, 1).flatten(1)  # Keras Flatten is NHWC order
        return torch.sigmoid(self.head(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: NHWC float in [0, 1] -> sigmoid tag probabilities (N, n_tags)."""
        trunk, _ = self.features(x.permute(0, 3, 1, 2))
        return self.head_forward(trunk)

    def forward_with_embedding(self, x: torch.Tensor, block: int, pre_relu: bool, l2: bool = False):
        """Tags and the GAP embedding of block ``block`` (pre- or post-ReLU) in one pass (NHWC input)."""
        trunk, found = self.features(x.permute(0, 3, 1, 2), {"cut": (block, pre_relu)})
        emb = found["cut"].mean(dim=(2, 3))
        if l2:
            emb = F.normalize(emb, dim=1)
        return self.head_forward(trunk), emb

    # canonical weights ---------------------------------------------------------------------
    def units(self) -> dict[str, ConvBN]:
        out = {"stem": self.stem}
        for i, b in enumerate(self.blocks):
            out[f"b{i}.c1"], out[f"b{i}.c2"], out[f"b{i}.c3"] = b.c1, b.c2, b.c3
            if b.sc is not None:
                out[f"b{i}.sc"] = b.sc
        return out

    def load_canonical(self, weights: dict[str, dict[str, Any]]) -> DeepDanbooruTorch:
        """Load a canonical weight dict (see module doc); errors name the missing/mismatched unit."""
        units = self.units()
        missing = [k for k in list(units) + ["head"] if k not in weights]
        if missing:
            raise KeyError(f"weights lack layer(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        extra = sorted(set(weights) - set(units) - {"head"})
        if extra:
            raise KeyError(f"weights carry layer(s) this architecture does not have: {extra[:5]}")
        for name, unit in units.items():
            unit.load_canonical(weights[name], name)
        head = weights["head"]
        k = np.asarray(head["kernel"], np.float32)
        if self.head_kind == "conv_gap":
            expected = (1, 1, self.head.in_channels, self.head.out_channels)
            if k.shape != expected:
                raise ValueError(f"head: kernel shape {k.shape} (HWIO), expected {expected}")
            self.head.weight.data = torch.from_numpy(_hwio_to_oihw(k))
        else:
            expected = (self.head.in_features, self.head.out_features)
            if k.shape != expected:
                raise ValueError(f"head: Dense kernel shape {k.shape}, expected {expected}")
            self.head.weight.data = torch.from_numpy(np.ascontiguousarray(k.T))
            self.head.bias.data = torch.from_numpy(np.asarray(head["bias"], np.float32))
        return self

    def canonical(self) -> dict[str, dict[str, Any]]:
        out = {name: unit.canonical() for name, unit in self.units().items()}
        if self.head_kind == "conv_gap":
            out["head"] = {"kernel": _oihw_to_hwio(self.head.weight.detach().numpy()), "bias": None, "bn": None}
        else:
            out["head"] = {"kernel": self.head.weight.detach().numpy().T.copy(),
                           "bias": self.head.bias.detach().numpy().copy(), "bn": None}
        return out


def build_torch_model(cfg: DeepDanbooruConfig, n_tags: int | None = None, folded: bool = False) -> DeepDanbooruTorch:
    """An eval-mode PyTorch DeepDanbooru for ``cfg``."""
    return DeepDanbooruTorch(cfg, n_tags=n_tags, folded=folded).eval()
