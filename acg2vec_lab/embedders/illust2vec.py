"""illust2vec: the GAP of a DeepDanbooru trunk layer (``embedding_cut`` of the profile's config).

Weights: the tagger trained here for the profile (the registry's ``models.get("deepdanbooru").find``:
its finished run) when present, else a randomly initialised network (labelled "random init"). Preprocessing is ACG2vec's serving path:
bilinear stretch to the model's square input, /255 (:func:`acg2vec_lab.models.deepdanbooru.preprocess.stretch`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.embedders import Embedder
from acg2vec_lab.models.deepdanbooru.train import TAGS_FILE, WEIGHTS_FILE  # noqa: F401  (re-exported for callers)


def make_embedders(profile: str, seed: int | None = None) -> list[Embedder]:
    """One embedder, ``illust2vec`` (no model is built until ``encode`` is first called)."""
    from acg2vec_lab import models
    from acg2vec_lab.config import load_config
    from acg2vec_lab.models.deepdanbooru.illust2vec import embedding_dim

    cfg = load_config("deepdanbooru", profile)
    found = models.get("deepdanbooru").find(profile, seed)
    trained = found is not None
    state: dict[str, Any] = {}
    dim = embedding_dim(cfg)

    def model():
        if "model" not in state:
            from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec

            if trained:
                from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model

                tagger = load_trained_tagger_model(profile, checkpoint=found.folder)[0]
            else:
                import keras

                from acg2vec_lab.models.deepdanbooru.tf_model import build_model

                keras.utils.set_random_seed(0)
                tagger = build_model(cfg)
            state["model"] = build_illust2vec(tagger, cfg.embedding_cut, cfg.l2_normalize)
        return state["model"]

    def encode(inputs: Sequence[Any]) -> np.ndarray:
        from acg2vec_lab.data.images import load_image
        from acg2vec_lab.models.deepdanbooru.preprocess import stretch

        m = model()
        size = tuple(int(s) for s in m.input_shape[1:3])
        out = []
        for i in range(0, len(inputs), 16):
            chunk = [x.convert("RGB") if hasattr(x, "convert") else load_image(x) for x in inputs[i:i + 16]]
            batch = np.stack([stretch(im, size) for im in chunk]).astype(np.float32)
            out.append(np.asarray(m(batch, training=False)[1]))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)

    weights = found.label if trained else "random init"
    return [Embedder(name="illust2vec", modality="image", dim=dim, weights=weights, encode=encode,
                     framework="tensorflow")]
