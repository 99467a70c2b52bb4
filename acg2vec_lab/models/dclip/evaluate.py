"""DCLIP evaluation on held-out images: cross-modal recall@k and zero-shot tag prediction.

* text -> image / image -> text: each held-out post's first caption is its text; the hit is the
  post's own image (own caption): identity relevance, one relevant item per query. Ranked and scored
  by :mod:`acg2vec_lab.retrieval.metrics` (the package's one ranking rule): ties are broken by gallery
  position (a stable sort), so a model whose scores all tie scores exactly chance (recall@k = k/N on
  average) rather than 0, and two posts with the same caption share the rank they tie for instead of
  both taking the worse one.
* zero-shot tags: each general tag seen at least ``min_count`` times in the train split becomes a
  caption-style prompt (:func:`captions.prompt_for_tag`); an image's score for a tag is the cosine
  between them. Reported: macro average precision over tags with a positive in the split, and the
  same for a frequency baseline (every image gets the tag's train frequency as its score, so each
  tag's AP equals its prevalence) - the tagger comparison when no trained tagger is at hand.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.models.dclip.captions import GENERAL, build_captions, prompt_for_tag


def cross_modal_recall(img: np.ndarray, txt: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k and MRR both ways for aligned ``(N, D)`` L2-normalised image and text vectors.

    Row ``i`` of ``img`` and of ``txt`` belong to the same post; that pair is the only relevant one.
    Returns ``n``, ``t2i_recall@k`` / ``i2t_recall@k`` for each k, ``t2i_mrr`` / ``i2t_mrr``, and the
    expected recall of a random ranking, ``chance@k`` (= min(k, N) / N).
    """
    from acg2vec_lab.retrieval import metrics as RM

    img, txt = np.asarray(img, np.float64), np.asarray(txt, np.float64)
    if img.shape != txt.shape or img.ndim != 2:
        raise ValueError(f"cross_modal_recall needs aligned (N, D) image and text vectors, got {img.shape} and {txt.shape}")
    sims = img @ txt.T  # (images, texts)
    n = len(sims)
    rel = RM.relevance_identity(range(n), range(n))  # post i's text <-> post i's image
    t2i = RM.evaluate(sims.T, rel, ks)  # queries: texts, gallery: images
    i2t = RM.evaluate(sims, rel, ks)
    out: dict[str, float] = {"n": int(n)}
    for k in ks:
        out[f"t2i_recall@{k}"] = t2i[f"recall@{k}"]
        out[f"i2t_recall@{k}"] = i2t[f"recall@{k}"]
    out["t2i_mrr"] = t2i["MRR"]
    out["i2t_mrr"] = i2t["MRR"]
    for k, c in zip(ks, RM.chance_recall(rel, ks)):
        out[f"chance@{k}"] = float(c)
    return out


def eval_captions(posts: Sequence[Any], version: str = "code") -> list[str]:
    """One caption per post (the first; for > 20 general tags the first-half caption)."""
    return [build_captions(p.tags, version)[0] for p in posts]


def zero_shot_labels(train_posts: Sequence[Any], test_posts: Sequence[Any], min_count: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(tags, train frequency, test label matrix (N, T)) for general tags seen >= ``min_count`` times."""
    counts = Counter(t.name for p in train_posts for t in p.tags if t.category == GENERAL)
    tags = sorted([t for t, c in counts.items() if c >= min_count], key=lambda t: -counts[t])
    freq = np.array([counts[t] / len(train_posts) for t in tags], np.float32)
    col = {t: j for j, t in enumerate(tags)}
    y = np.zeros((len(test_posts), len(tags)), np.int8)
    for i, p in enumerate(test_posts):
        for t in p.tags:
            if t.name in col:
                y[i, col[t.name]] = 1
    return tags, freq, y


def macro_ap(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean average precision over the columns that have at least one positive: the package's one AP
    (:func:`acg2vec_lab.tagging.metrics.mean_average_precision`, ties grouped as scikit-learn does)."""
    from acg2vec_lab.tagging.metrics import mean_average_precision

    return mean_average_precision(y, scores)


def zero_shot(img: np.ndarray, tag_vecs: np.ndarray, y: np.ndarray, freq: np.ndarray, k: int = 5) -> dict[str, float]:
    """Zero-shot tag scores vs the frequency baseline: macro AP and precision@k per image."""
    scores = img @ tag_vecs.T
    base = np.broadcast_to(freq, scores.shape)
    top = np.argsort(-scores, axis=1)[:, :k]
    top_base = np.argsort(-freq)[:k]
    return {"zero_shot_mAP": macro_ap(y, scores), "frequency_mAP": macro_ap(y, np.asarray(base)),
            f"zero_shot_P@{k}": float(np.mean([y[i, top[i]].mean() for i in range(len(y))])),
            f"frequency_P@{k}": float(y[:, top_base].mean()), "tags": int(y.shape[1]),
            "tags_with_positives": int((y.sum(0) > 0).sum())}


def tag_prompts(tags: Sequence[str]) -> list[str]:
    return [prompt_for_tag(t) for t in tags]
