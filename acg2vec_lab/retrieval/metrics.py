"""Retrieval metrics: recall/precision/mAP/nDCG@k, MRR, median rank, relevance rules, ANN recall.

Relevance rules: :func:`relevance_identity` (same label), :func:`relevance_shared` (a shared label),
:func:`relevance_jaccard` (tag-set overlap), and :func:`same_character_relevance`, the one
"same character" of the leave-one-out evaluations (:func:`leave_one_out`).

Conventions (the property tests in ``tests/test_metrics.py`` check these against brute force):

* A ranking is ``ranked`` ``(nq, k)`` of gallery positions, best first; ``-1`` pads a list shorter
  than ``k`` (``k`` larger than the gallery) and is never relevant.
* Relevance is a ``(nq, n_gallery)`` matrix: boolean, or non-negative gains for nDCG.
* Rankings from scores (:func:`rank_by_scores`) break ties by gallery position (stable sort), the
  same rule as :func:`acg2vec_lab.retrieval.index.exact_search`. Excluded pairs (e.g. a query
  against itself) are dropped from the ranking and are not relevant.
* A query with no relevant item in the gallery gets NaN for every metric and is left out of the
  means; :func:`evaluate` reports how many queries were scored.
* recall@k = hits in top k / relevant in gallery. precision@k = hits / k (the requested k, also when
  the gallery is smaller). AP@k = sum over hit ranks i <= k of precision@i, divided by
  min(k, relevant in gallery). nDCG@k = DCG of the top k (gain / log2(rank + 1)) over the ideal DCG
  of the best possible top k. RR@k = 1 / rank of the first hit within k, else 0 (MRR is its mean).
  Median rank = median over queries of the rank of the first relevant item in the full ranking.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from acg2vec_lab.tagging.categories import CATEGORY_CHARACTER


# -- relevance ------------------------------------------------------------------------------------
def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32; a zero row stays zero (norms floored at 1e-12).

    The one normalisation of the package: embedders, evaluators, indexes and ``embed-*`` use it.
    """
    x = np.asarray(x, dtype=np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def relevance_identity(query_labels: Sequence[Any], gallery_labels: Sequence[Any]) -> np.ndarray:
    """``(nq, n)`` bool: same label. ``None`` (or NaN) labels are never relevant to anything."""
    q = list(query_labels)
    g = list(gallery_labels)

    def valid(v: Any) -> bool:
        return v is not None and not (isinstance(v, float) and np.isnan(v))

    codes: dict[Any, int] = {}
    qc = np.array([codes.setdefault(v, len(codes)) if valid(v) else -1 for v in q], dtype=np.int64)
    gc = np.array([codes.setdefault(v, len(codes)) if valid(v) else -2 for v in g], dtype=np.int64)
    return qc[:, None] == gc[None, :]


def jaccard_matrix(query_tags: Sequence[Iterable[str]], gallery_tags: Sequence[Iterable[str]]) -> np.ndarray:
    """``(nq, n)`` Jaccard similarity |A & B| / |A | B| of tag sets (0 when both are empty)."""
    qs = [set(t) for t in query_tags]
    gs = [set(t) for t in gallery_tags]
    vocab = {t: i for i, t in enumerate(sorted(set().union(*qs, *gs)))}
    qm = np.zeros((len(qs), len(vocab)), dtype=np.float32)
    gm = np.zeros((len(gs), len(vocab)), dtype=np.float32)
    for m, sets in ((qm, qs), (gm, gs)):
        for i, s in enumerate(sets):
            m[i, [vocab[t] for t in s]] = 1.0
    inter = qm @ gm.T
    union = qm.sum(1)[:, None] + gm.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def relevance_shared(query_sets: Sequence[Iterable[Any]], gallery_sets: Sequence[Iterable[Any]]) -> np.ndarray:
    """``(nq, n)`` bool: the two label sets share at least one label (an empty set is never relevant)."""
    return jaccard_matrix(query_sets, gallery_sets) > 0


def same_character_relevance(posts: Sequence[Any]) -> np.ndarray:
    """``(n, n)`` bool: posts ``i`` and ``j`` share at least one character tag (category 4).

    The package's one "same character" rule (deepix's and JoyTag's leave-one-out retrieval both use it).
    *Any* shared character rather than one "main" character per post: a picture of two or three girls
    shows each of them, so it is a right answer to a query of any one of them. Reducing a post to one
    name (e.g. the alphabetically first, the rule deepix used before) would call a picture of A and B
    irrelevant to a solo picture of B although B is in both, and would make the score depend on how the
    characters happen to be spelled. A post without a character tag is relevant to nothing (its query is
    left out of the means, see :func:`evaluate`). The diagonal is True for a post with a character:
    leave-one-out callers exclude it (:func:`leave_one_out` does).

    Args:
        posts: objects with ``tag_names(category) -> list[str]`` (:class:`~acg2vec_lab.data.danbooru.Post`).
    """
    chars = [p.tag_names(CATEGORY_CHARACTER) for p in posts]
    return relevance_shared(chars, chars)


def relevance_jaccard(query_tags: Sequence[Iterable[str]], gallery_tags: Sequence[Iterable[str]],
                      threshold: float = 0.5) -> np.ndarray:
    """``(nq, n)`` bool: tag-set Jaccard >= ``threshold`` (empty tag sets are never relevant)."""
    jac = jaccard_matrix(query_tags, gallery_tags)
    return (jac >= threshold) & (jac > 0)


# -- rankings -------------------------------------------------------------------------------------
def rank_by_scores(scores: np.ndarray, k: int | None = None, higher_is_better: bool = True,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """Top-``k`` gallery positions ``(nq, k)`` from a score matrix ``(nq, n)``; ties by position.

    ``exclude`` ``(nq, n)`` bool removes pairs (e.g. self-matches); lists are padded with -1.
    """
    s = np.asarray(scores, dtype=np.float64)
    s = -s if higher_is_better else s.copy()
    nq, n = s.shape
    if exclude is not None:
        s[np.asarray(exclude, dtype=bool)] = np.inf
    k = n if k is None else k
    order = np.argsort(s, axis=1, kind="stable")[:, : min(k, n)]
    valid = np.isfinite(np.take_along_axis(s, order, 1))
    order = np.where(valid, order, -1)
    out = np.full((nq, k), -1, dtype=np.int64)
    out[:, : order.shape[1]] = order
    # excluded items sort last; compacting keeps real items first and -1 at the tail
    return out


def _hits(ranked: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """Gains of the ranked items ``(nq, k)``; padding (-1) gains 0."""
    ranked = np.asarray(ranked, dtype=np.int64)
    rel = np.asarray(relevance)
    safe = np.where(ranked >= 0, ranked, 0)
    gains = np.take_along_axis(rel.astype(np.float64), safe, 1)
    return np.where(ranked >= 0, gains, 0.0)


def _n_relevant(relevance: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    rel = np.asarray(relevance) > 0
    if exclude is not None:
        rel = rel & ~np.asarray(exclude, dtype=bool)
    return rel.sum(1)


def _nan_where_none(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    return np.where(n_rel > 0, values, np.nan)


def recall_at_k(ranked: np.ndarray, relevance: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-query recall@k ``(nq,)``; NaN for queries without a relevant item."""
    hits = (_hits(ranked, relevance)[:, :k] > 0).sum(1)
    n_rel = _n_relevant(relevance, exclude)
    return _nan_where_none(hits / np.maximum(n_rel, 1), n_rel)


def precision_at_k(ranked: np.ndarray, relevance: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-query precision@k (hits / k) ``(nq,)``; NaN for queries without a relevant item."""
    hits = (_hits(ranked, relevance)[:, :k] > 0).sum(1)
    return _nan_where_none(hits / k, _n_relevant(relevance, exclude))


def average_precision_at_k(ranked: np.ndarray, relevance: np.ndarray, k: int,
                           exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-query AP@k, normalised by min(k, relevant in gallery); NaN without a relevant item."""
    hit = (_hits(ranked, relevance)[:, :k] > 0).astype(np.float64)
    prec = np.cumsum(hit, 1) / np.arange(1, hit.shape[1] + 1)
    n_rel = _n_relevant(relevance, exclude)
    ap = (prec * hit).sum(1) / np.maximum(np.minimum(n_rel, k), 1)
    return _nan_where_none(ap, n_rel)


def ndcg_at_k(ranked: np.ndarray, relevance: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-query nDCG@k with gains from ``relevance`` (bool -> 0/1); NaN without a relevant item."""
    gains = _hits(ranked, relevance)[:, :k]
    disc = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2))
    dcg = (gains * disc).sum(1)
    rel = np.asarray(relevance, dtype=np.float64).copy()
    if exclude is not None:
        rel[np.asarray(exclude, dtype=bool)] = 0.0
    ideal = -np.sort(-rel, axis=1)[:, :k]
    idcg = (ideal * (1.0 / np.log2(np.arange(2, ideal.shape[1] + 2)))).sum(1)
    n_rel = _n_relevant(relevance, exclude)
    return _nan_where_none(dcg / np.where(idcg > 0, idcg, 1.0), n_rel)


def reciprocal_rank_at_k(ranked: np.ndarray, relevance: np.ndarray, k: int | None = None,
                         exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-query 1 / rank of the first hit within ``k`` (0 if none); NaN without a relevant item."""
    hit = _hits(ranked, relevance) > 0
    if k is not None:
        hit = hit[:, :k]
    first = np.where(hit.any(1), hit.argmax(1) + 1, 0)
    rr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    return _nan_where_none(rr, _n_relevant(relevance, exclude))


def first_relevant_rank(scores: np.ndarray, relevance: np.ndarray, higher_is_better: bool = True,
                        exclude: np.ndarray | None = None) -> np.ndarray:
    """Per-query 1-based rank of the first relevant item in the full ranking; NaN without one."""
    ranked = rank_by_scores(scores, None, higher_is_better, exclude)
    hit = _hits(ranked, relevance) > 0
    n_rel = _n_relevant(relevance, exclude)
    return _nan_where_none(hit.argmax(1) + 1.0, n_rel)


def ann_recall(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int | None = None) -> float:
    """Mean over queries of |approx top-k & exact top-k| / |exact top-k| (ids; -1 ignored)."""
    a = np.asarray(approx_ids)
    e = np.asarray(exact_ids)
    if k is not None:
        a, e = a[:, :k], e[:, :k]
    vals = []
    for ai, ei in zip(a, e):
        truth = set(ei[ei >= 0].tolist())
        if truth:
            vals.append(len(truth & set(ai[ai >= 0].tolist())) / len(truth))
    return float(np.mean(vals)) if vals else float("nan")


def evaluate(scores: np.ndarray, relevance: np.ndarray, ks: Sequence[int] = (1, 5, 10),
             higher_is_better: bool = True, exclude: np.ndarray | None = None) -> dict[str, float]:
    """Every metric from a full score matrix ``(nq, n)``: means over queries with a relevant item.

    Returns keys ``recall@k``, ``precision@k``, ``mAP@k``, ``nDCG@k`` for each k, ``MRR``,
    ``median_rank``, ``n_queries`` (scored) and ``n_queries_without_relevant``.
    """
    rel = np.asarray(relevance)
    if exclude is not None:
        rel = np.where(np.asarray(exclude, dtype=bool), 0, rel)
    kmax = max(ks)
    ranked = rank_by_scores(scores, kmax, higher_is_better, exclude)
    n_rel = _n_relevant(rel)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = _mean(recall_at_k(ranked, rel, k))
        out[f"precision@{k}"] = _mean(precision_at_k(ranked, rel, k))
        out[f"mAP@{k}"] = _mean(average_precision_at_k(ranked, rel, k))
        out[f"nDCG@{k}"] = _mean(ndcg_at_k(ranked, rel, k))
    out["MRR"] = _mean(reciprocal_rank_at_k(rank_by_scores(scores, None, higher_is_better, exclude), rel))
    ranks = first_relevant_rank(scores, rel, higher_is_better, exclude)
    out["median_rank"] = float(np.nanmedian(ranks)) if np.isfinite(ranks).any() else float("nan")
    out["n_queries"] = int((n_rel > 0).sum())
    out["n_queries_without_relevant"] = int((n_rel == 0).sum())
    return out


def leave_one_out(emb: np.ndarray, relevance: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Each row of ``emb`` queries all the others by inner product: :func:`evaluate` without self-matches,
    plus ``chance_recall@k`` (:func:`chance_recall`) for each k.

    Args:
        emb: ``(N, d)`` embeddings; L2-normalised rows make the inner product the cosine similarity.
        relevance: ``(N, N)`` bool or gains, e.g. :func:`same_character_relevance` of the N posts.
        ks: the cut-offs.
    """
    emb, relevance = np.asarray(emb), np.asarray(relevance)
    if relevance.shape != (len(emb), len(emb)):
        raise ValueError(f"relevance has shape {relevance.shape}, expected {(len(emb), len(emb))} for {len(emb)} embeddings")
    exclude = np.eye(len(emb), dtype=bool)
    out: dict[str, float] = evaluate(emb @ emb.T, relevance, ks, exclude=exclude)
    out.update({f"chance_recall@{k}": float(c) for k, c in zip(ks, chance_recall(relevance, ks, exclude))})
    return out


def recall_curve(scores: np.ndarray, relevance: np.ndarray, ks: Sequence[int], higher_is_better: bool = True,
                 exclude: np.ndarray | None = None) -> np.ndarray:
    """Mean recall@k for each k in ``ks`` (for :func:`acg2vec_lab.viz.recall_curves`)."""
    ranked = rank_by_scores(scores, max(ks), higher_is_better, exclude)
    rel = np.asarray(relevance) if exclude is None else np.where(exclude, 0, relevance)
    return np.array([_mean(recall_at_k(ranked, rel, k)) for k in ks])


def chance_recall(relevance: np.ndarray, ks: Sequence[int], exclude: np.ndarray | None = None) -> np.ndarray:
    """Expected recall@k of a random ranking: k / (gallery size) per query, capped at 1, averaged."""
    rel = np.asarray(relevance) > 0
    n = np.full(rel.shape[0], rel.shape[1], dtype=np.float64)
    if exclude is not None:
        ex = np.asarray(exclude, dtype=bool)
        n = n - ex.sum(1)
        rel = rel & ~ex
    keep = rel.sum(1) > 0
    return np.array([float(np.mean(np.minimum(k / n[keep], 1.0))) if keep.any() else float("nan") for k in ks])


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
