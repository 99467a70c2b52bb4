"""JoyTag's pooled trunk output (mean of the final-LayerNorm tokens, ``d_model``-d) as an image embedder."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.embedders import Embedder


def make_embedders(profile: str, seed: int | None = None) -> list[Embedder]:
    """One embedder, ``joytag``: the profile's finished run (registry ``find``) if present, else random init."""
    from acg2vec_lab import models
    from acg2vec_lab.config import load_config

    cfg = load_config("joytag", profile)
    found = models.get("joytag").find(profile, seed)
    trained = found is not None
    state: dict[str, Any] = {}

    def encode(inputs: Sequence[Any]) -> np.ndarray:
        import torch

        from acg2vec_lab.data.images import load_image
        from acg2vec_lab.models.joytag.preprocess import preprocess

        if "model" not in state:
            if trained:
                state["model"] = models.get("joytag").load_folder(found.folder)
            else:
                from acg2vec_lab.models.joytag.model import build_model

                torch.manual_seed(0)
                state["model"] = build_model(cfg).eval()
            from acg2vec_lab.device import torch_device

            state["model"] = state["model"].to(torch_device())
        model = state["model"]
        dev = next(model.parameters()).device
        out = []
        with torch.no_grad():
            for i in range(0, len(inputs), 16):
                chunk = [load_image(x) if not hasattr(x, "convert") else x.convert("RGB") for x in inputs[i:i + 16]]
                batch = torch.from_numpy(np.stack([preprocess(im, model.image_size) for im in chunk]))
                out.append(model.embed(batch.to(dev)).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, cfg.d_model), np.float32)

    weights = found.label if trained else "random init"
    return [Embedder(name="joytag", modality="image", dim=cfg.d_model, weights=weights, encode=encode)]
