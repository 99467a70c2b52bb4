"""DCLIP evaluation on held-out images: cross-modal recall@k and zero-shot tag prediction.

* text -> image / image -> text: each held-out post's first caption is its text; the hit is the
  post's own image (own caption). Exact ranks, ties counted against the query.
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
    """Recall@k both ways for aligned (N, D) L2-normalised image and text vectors."""
    sims = img @ txt.T
    diag = np.diag(sims)
    r_t2i = (sims >= diag[None, :]).sum(0)  # for text j: images scoring >= its own image
    r_i2t = (sims >= diag[:, None]).sum(1)
    out = {"n": int(len(diag))}
    for k in ks:
        out[f"t2i_recall@{k}"] = float((r_t2i <= k).mean())
        out[f"i2t_recall@{k}"] = float((r_i2t <= k).mean())
    out["t2i_mrr"] = float((1 / r_t2i).mean())
    out["i2t_mrr"] = float((1 / r_i2t).mean())
    out["chance@1"] = 1.0 / len(diag)
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
    """Mean average precision over the columns that have at least one positive."""
    from sklearn.metrics import average_precision_score

    cols = [j for j in range(y.shape[1]) if y[:, j].any()]
    return float(np.mean([average_precision_score(y[:, j], scores[:, j]) for j in cols])) if cols else float("nan")


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
