"""What notebook 05 runs, as functions: data, the tagger comparison table on one split, character retrieval."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def evaluate_probs(y: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    """F1 at ``threshold``, the P=R point and mAP, all from :mod:`acg2vec_lab.tagging.metrics`."""
    from acg2vec_lab.tagging import metrics as tm

    at = tm.f1_at(y, probs, threshold)
    pr = tm.precision_equals_recall(y, probs)
    return {"micro_f1@th": at["micro_f1"], "macro_f1@th": at["macro_f1"], "precision@th": at["micro_precision"],
            "recall@th": at["micro_recall"], "threshold_p_eq_r": pr["threshold"], "f1@p_eq_r": pr["f1"],
            "mAP": tm.mean_average_precision(y, probs)}


def tagger_probs(tagger: Any, dataset: Any, posts: Sequence[Any], batch_size: int = 16) -> np.ndarray:
    """Any :class:`~acg2vec_lab.tagging.base.Tagger` on ``posts`` through its own ``preprocess``; ``(N, n_tags)``."""
    out = []
    for i in range(0, len(posts), batch_size):
        batch = np.stack([tagger.preprocess(dataset.load_image(p)) for p in posts[i:i + batch_size]])
        out.append(tagger.predict(batch))
    return np.concatenate(out)


def comparison_table(dataset: Any, posts: Sequence[Any], taggers: dict[str, Any], threshold: float = 0.4) -> tuple[Any, list[str]]:
    """One row per tagger on the same posts, scored on the tags every tagger outputs (rating pseudo-tags excluded).

    Returns (DataFrame, common tags). Each row also carries the tagger's weights source.
    """
    import pandas as pd

    from acg2vec_lab.models.joytag.train import tag_targets

    common = sorted(set.intersection(*[{t for t in tg.tags if not t.startswith("rating:")} for tg in taggers.values()]))
    y = tag_targets(posts, common)
    rows = []
    for name, tg in taggers.items():
        cols = [tg.tags.index(t) for t in common]
        probs = tagger_probs(tg, dataset, posts)[:, cols]
        rows.append({"model": name, "weights": getattr(tg, "source", ""), "n_tags_scored": len(common),
                     "n_images": len(posts), **evaluate_probs(y, probs, threshold)})
    return pd.DataFrame(rows), common


def character_retrieval(embed: Any, dataset: Any, posts: Sequence[Any]) -> dict[str, float]:
    """Leave-one-out retrieval of images sharing a character tag, cosine similarity of ``embed(images)``."""
    from acg2vec_lab.retrieval.metrics import chance_recall, evaluate

    chars = [tuple(sorted(p.tag_names(4))) for p in posts]
    v = embed([dataset.load_image(p) for p in posts])
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    scores = v @ v.T
    rel = np.array([[bool(set(a) & set(b)) for b in chars] for a in chars], dtype=np.int64)
    eye = np.eye(len(posts), dtype=bool)
    out = evaluate(scores, rel, ks=(1, 5), exclude=eye)
    out["chance_recall@5"] = float(chance_recall(rel, [5], exclude=eye)[0])
    return out


def model_embedder(model: Any) -> Any:
    """``encode(images) -> (N, d_model)`` pooled trunk output of an in-memory JoyTag model (PIL images in)."""
    import torch

    from acg2vec_lab.models.joytag.preprocess import preprocess

    def encode(images: Sequence[Any]) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(np.stack([preprocess(im, model.image_size) for im in images]))
            return model.eval().embed(x).numpy()

    return encode


def deepdanbooru_if_trained(profile: str) -> tuple[Any, str]:
    """The DeepDanbooru tagger trained for ``profile`` (notebook 02) if its checkpoint exists, else ``None``; with a note."""
    from acg2vec_lab.config import variant_for
    from acg2vec_lab.paths import checkpoint_dir
    from acg2vec_lab.train.tagger import TAGS_FILE, WEIGHTS_FILE

    folder = checkpoint_dir("deepdanbooru", variant_for(profile))
    if not ((folder / WEIGHTS_FILE).exists() and (folder / TAGS_FILE).exists()):
        return None, (f"DeepDanbooru not compared: no trained checkpoint in {folder} "
                      f"(notebook 02 trains it; run it first in the same profile)")
    from acg2vec_lab.tagging.base import load_tagger

    return load_tagger("deepdanbooru", profile), f"DeepDanbooru: checkpoint {folder} trained by notebook 02"
