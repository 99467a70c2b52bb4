"""Retrieval metrics against plain-Python brute-force references on random cases (hypothesis)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acg2vec_lab.retrieval import metrics as M


# -- brute-force references (one query at a time, straight from the definitions) -------------------
def ref_ranking(scores, exclude_row):
    """Gallery positions sorted by score descending, ties by position, excluded ones dropped."""
    items = [(-s, j) for j, s in enumerate(scores) if not exclude_row[j]]
    return [j for _, j in sorted(items)]


def ref_metrics(scores, rel_row, exclude_row, k):
    order = ref_ranking(scores, exclude_row)
    rel = [0 if exclude_row[j] else rel_row[j] for j in range(len(rel_row))]
    n_rel = sum(1 for r in rel if r > 0)
    if n_rel == 0:
        return None
    top = order[:k]
    hits = [1 if rel[j] > 0 else 0 for j in top]
    recall = sum(hits) / n_rel
    precision = sum(hits) / k
    ap = 0.0
    for i in range(len(top)):
        if hits[i]:
            ap += sum(hits[: i + 1]) / (i + 1)
    ap /= min(k, n_rel)
    dcg = sum(rel[j] / math.log2(i + 2) for i, j in enumerate(top))
    ideal = sorted(rel, reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    ndcg = dcg / idcg
    first = next(i + 1 for i, j in enumerate(order) if rel[j] > 0)
    return {"recall": recall, "precision": precision, "ap": ap, "ndcg": ndcg, "rr": 1.0 / first, "first": first}


@st.composite
def cases(draw):
    nq = draw(st.integers(1, 5))
    n = draw(st.integers(1, 12))
    # few distinct values -> many ties
    scores = draw(st.lists(st.lists(st.integers(-3, 3), min_size=n, max_size=n), min_size=nq, max_size=nq))
    rel = draw(st.lists(st.lists(st.sampled_from([0, 0, 1, 2]), min_size=n, max_size=n), min_size=nq, max_size=nq))
    excl = draw(st.lists(st.lists(st.sampled_from([False, False, False, True]), min_size=n, max_size=n),
                         min_size=nq, max_size=nq))
    k = draw(st.integers(1, n + 4))  # k can exceed the gallery
    return np.array(scores, float), np.array(rel, float), np.array(excl, bool), k


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_metrics_match_brute_force(case):
    scores, rel, excl, k = case
    ranked = M.rank_by_scores(scores, k, exclude=excl)
    assert ranked.shape == (len(scores), k)
    relx = np.where(excl, 0, rel)
    rec = M.recall_at_k(ranked, relx, k)
    prec = M.precision_at_k(ranked, relx, k)
    ap = M.average_precision_at_k(ranked, relx, k)
    nd = M.ndcg_at_k(ranked, relx, k)
    rr = M.reciprocal_rank_at_k(M.rank_by_scores(scores, None, exclude=excl), relx)
    first = M.first_relevant_rank(scores, rel, exclude=excl)
    for i in range(len(scores)):
        ref = ref_metrics(scores[i], rel[i], excl[i], k)
        # ranking itself: same order, -1 padding after the non-excluded items
        order = ref_ranking(scores[i], excl[i])[:k]
        assert ranked[i, : len(order)].tolist() == order
        assert (ranked[i, len(order):] == -1).all()
        if ref is None:
            assert all(np.isnan(v[i]) for v in (rec, prec, ap, nd, rr, first))
            continue
        assert rec[i] == pytest.approx(ref["recall"])
        assert prec[i] == pytest.approx(ref["precision"])
        assert ap[i] == pytest.approx(ref["ap"])
        assert nd[i] == pytest.approx(ref["ndcg"])
        assert rr[i] == pytest.approx(ref["rr"])
        assert first[i] == ref["first"]


@settings(max_examples=100, deadline=None)
@given(cases())
def test_evaluate_means_skip_queries_without_relevant(case):
    scores, rel, excl, k = case
    out = M.evaluate(scores, rel, ks=(k,), exclude=excl)
    refs = [ref_metrics(scores[i], rel[i], excl[i], k) for i in range(len(scores))]
    scored = [r for r in refs if r is not None]
    assert out["n_queries"] == len(scored)
    assert out["n_queries_without_relevant"] == len(refs) - len(scored)
    if scored:
        assert out[f"recall@{k}"] == pytest.approx(np.mean([r["recall"] for r in scored]))
        assert out[f"mAP@{k}"] == pytest.approx(np.mean([r["ap"] for r in scored]))
        assert out["MRR"] == pytest.approx(np.mean([r["rr"] for r in scored]))
        assert out["median_rank"] == pytest.approx(np.median([r["first"] for r in scored]))
    else:
        assert math.isnan(out[f"recall@{k}"]) and math.isnan(out["MRR"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=4), min_size=1, max_size=6),
       st.floats(0.0, 1.0))
def test_jaccard_relevance_matches_sets(tags, thr):
    rel = M.relevance_jaccard(tags, tags, thr)
    for i, a in enumerate(tags):
        for j, b in enumerate(tags):
            a_, b_ = set(a), set(b)
            jac = len(a_ & b_) / len(a_ | b_) if a_ | b_ else 0.0
            if abs(jac - thr) > 1e-6:  # exactly-at-threshold cases depend on float rounding
                assert rel[i, j] == (jac >= thr and jac > 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", "z"])), min_size=1, max_size=8))
def test_identity_relevance(labels):
    rel = M.relevance_identity(labels, labels)
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            assert rel[i, j] == (a is not None and a == b)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 10), st.integers(0, 10**6))
def test_ann_recall_brute_force(nq, k, seed):
    rng = np.random.default_rng(seed)
    exact = rng.integers(-1, 15, size=(nq, k))
    approx = rng.integers(-1, 15, size=(nq, k))
    vals = []
    for a, e in zip(approx, exact):
        t = {int(v) for v in e if v >= 0}
        if t:
            vals.append(len(t & {int(v) for v in a if v >= 0}) / len(t))
    got = M.ann_recall(approx, exact)
    assert (math.isnan(got) and not vals) or got == pytest.approx(np.mean(vals))


def test_known_small_case():
    # gallery of 4, one query; relevant items at positions 1 and 3; scores rank 3,1,0,2
    scores = np.array([[0.2, 0.5, 0.1, 0.9]])
    rel = np.array([[0, 1, 0, 1]])
    out = M.evaluate(scores, rel, ks=(1, 2, 10))
    assert out["recall@1"] == 0.5 and out["recall@2"] == 1.0 and out["precision@10"] == 0.2
    assert out["mAP@2"] == 1.0 and out["MRR"] == 1.0 and out["median_rank"] == 1.0
    # chance: expected recall@k of a random order is k / n
    assert M.chance_recall(rel, [1, 2, 8]).tolist() == [0.25, 0.5, 1.0]
