"""DCLIP image and text vectors in one joint space (``space="dclip"``): the profile's finished run
(registry ``find``) if present, else random init (no real CLIP weights are reachable here)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.embedders import Embedder


def make_embedders(profile: str, seed: int | None = None) -> list[Embedder]:
    from acg2vec_lab import models
    from acg2vec_lab.config import load_config

    cfg = load_config("dclip", profile)
    found = models.get("dclip").find(profile, seed)
    trained = found is not None
    dim = int((cfg.model_cfg or {}).get("embed_dim") or 768)
    state: dict[str, Any] = {}

    def load() -> None:
        if "model" in state:
            return
        import torch

        from acg2vec_lab.models.dclip import model as M
        from acg2vec_lab.models.dclip import train as T

        if trained:
            state["model"], state["tokenize"] = T.load_trained(cfg, found.folder)
        else:
            torch.manual_seed(cfg.seed)
            state["model"], state["tokenize"] = M.build_model(cfg).eval(), M.Tokenize(cfg)
        from acg2vec_lab.device import torch_device

        state["model"] = state["model"].to(torch_device())
        state["transform"] = M.image_transform(state["model"])

    def encode_image(inputs: Sequence[Any]) -> np.ndarray:
        import torch

        from acg2vec_lab.data.images import load_image
        from acg2vec_lab.models.dclip import model as M

        load()
        if len(inputs) == 0:
            return np.zeros((0, dim), np.float32)
        ims = [x.convert("RGB") if hasattr(x, "convert") else load_image(x) for x in inputs]
        batch = torch.stack([state["transform"](im) for im in ims])
        return M.encode_images(state["model"], batch).astype(np.float32)

    def encode_text(texts: Sequence[str]) -> np.ndarray:
        from acg2vec_lab.models.dclip import model as M

        load()
        if len(texts) == 0:
            return np.zeros((0, dim), np.float32)
        return M.encode_texts(state["model"], state["tokenize"], [str(t) for t in texts]).astype(np.float32)

    weights = found.label if trained else "random init"
    return [Embedder(name="dclip_image", modality="image", dim=dim, weights=weights, encode=encode_image, space="dclip"),
            Embedder(name="dclip_text", modality="text", dim=dim, weights=weights, encode=encode_text, space="dclip")]
