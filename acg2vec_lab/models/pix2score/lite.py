"""EfficientNet-Lite0 (real ImageNet weights, PyTorch) as an alternative Pix2Score trunk.

The trunk is frozen: its pooled 1280-d features (224x224, RGB scaled to [-1, 1], NCHW) feed the same
three softmax heads as Pix2Score (one linear layer + softmax each, cross-entropy, equal weights),
trained in torch on the same labels and split as the from-scratch ResNet. The network comes from the
package's one EfficientNet-Lite0 loader, :func:`acg2vec_lab.embedders.efficientnet_lite0.load_model`
(the real image-embedding baseline), here under the name ``load_lite0``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from acg2vec_lab.embedders.efficientnet_lite0 import load_model as load_lite0

__all__ = ["LITE_SIZE", "lite_features", "load_lite0", "train_heads"]

LITE_SIZE = 224


def lite_features(model: Any, images: np.ndarray, batch_size: int = 32, size: int = LITE_SIZE) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 RGB (NHWC) -> ``(N, 1280)`` float32 pooled features (resized to ``size``, [-1, 1], NCHW)."""
    import torch
    import torch.nn.functional as F

    feats = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            x = x.to(next(model.parameters()).device)  # the loader puts the network on the package's device
            feats.append(model.extract_features(x).mean(dim=(2, 3)).float().cpu().numpy())
    return np.concatenate(feats).astype(np.float32)


def train_heads(features: np.ndarray, labels: dict[str, np.ndarray], n_classes: dict[str, int], epochs: int = 50,
                lr: float = 1e-2, seed: int = 0, batch_size: int = 64) -> Any:
    """Three linear softmax heads on frozen features (Adam, summed cross-entropy); returns ``predict(features) -> probs``."""
    import torch

    torch.manual_seed(seed)
    mean, std = features.mean(0, keepdims=True), features.std(0, keepdims=True) + 1e-6
    x = torch.from_numpy((features - mean) / std)
    ys = {h: torch.from_numpy(np.asarray(v, dtype=np.int64)) for h, v in labels.items()}
    heads = torch.nn.ModuleDict({h: torch.nn.Linear(x.shape[1], k) for h, k in n_classes.items()})
    opt = torch.optim.Adam(heads.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = sum(torch.nn.functional.cross_entropy(heads[h](x[idx]), ys[h][idx]) for h in heads)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def predict(feats: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            z = torch.from_numpy((feats - mean) / std)
            return {h: torch.softmax(heads[h](z), dim=1).numpy() for h in heads}

    return predict
