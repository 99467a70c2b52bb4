"""The before/after experiment of notebook 03: illust2vec from the untuned vs the deepix-tuned trunk."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.data.labels import BOOKMARK_EDGES, to_bins


def main_character(post: Any) -> str | None:
    chars = sorted(t.name for t in post.tags if t.category == 4)
    return chars[0] if chars else None


def retrieval_metrics(emb: np.ndarray, posts: Sequence[Any], ks: Sequence[int] = (1, 5, 10)) -> dict[str, dict[str, float]]:
    """Leave-one-out retrieval on ``posts`` (each image queries all others, cosine / inner product).

    Relevance: ``character`` = same (alphabetically first) character tag; ``bookmark_bin`` = same bookmark bin
    (the label deepix is tuned on). Uses :func:`acg2vec_lab.retrieval.metrics.evaluate`.
    """
    from acg2vec_lab.retrieval.metrics import chance_recall, evaluate, relevance_identity

    scores = emb @ emb.T
    exclude = np.eye(len(posts), dtype=bool)
    rels = {
        "character": relevance_identity([main_character(p) for p in posts], [main_character(p) for p in posts]),
        "bookmark_bin": relevance_identity(*(2 * [list(to_bins([p.pixiv["bookmark_count"] for p in posts], BOOKMARK_EDGES))])),
    }
    out = {}
    for name, rel in rels.items():
        m = evaluate(scores, rel, ks, exclude=exclude)
        m.update({f"chance_recall@{k}": float(c) for k, c in zip(ks, chance_recall(rel, ks, exclude))})
        out[name] = m
    return out
