"""faiss index interface, planner and exact-search conventions on small clustered data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from acg2vec_lab.retrieval.index import INDEX_KINDS, IndexSpec, VectorIndex, build_index, default_nlist, exact_search
from acg2vec_lab.retrieval.metrics import ann_recall
from acg2vec_lab.retrieval.planner import build_planned, memory_plan, plan_index


def clustered(n=3000, d=32, centres=30, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.normal(size=(n, d))
    return x.astype(np.float32)


def test_default_nlist_is_four_sqrt_n_clamped():
    assert default_nlist(1_000_000) == 4000
    assert default_nlist(6_000_000) == round(4 * 6_000_000 ** 0.5)
    assert default_nlist(100) == 2  # at least 39 training points per list


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_flat_matches_numpy_exact_search(metric):
    x = clustered(500, 16)
    q = x[:7] + 0.01
    idx = build_index(x, IndexSpec("flat", metric), ids=np.arange(500) + 1000)
    ids, scores = idx.search(q, 5)
    ref_pos, ref_scores = exact_search(x, q, 5, metric)
    assert (ids == ref_pos + 1000).all()
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_every_kind_add_remove_search_save_load(kind, tmp_path):
    x = clustered()
    ids = np.arange(len(x)) * 7 + 3
    meta = pd.DataFrame({"name": [f"item{i}" for i in range(len(x))]})
    idx = build_index(x, IndexSpec(kind, "cosine", nprobe=8, pq_m=16), ids=ids, metadata=meta)
    assert len(idx) == len(x)
    # single query -> (1, k); batched -> (nq, k); the query itself is found first (recall is real)
    one_ids, one_scores = idx.search(x[0], 3)
    assert one_ids.shape == (1, 3) and one_scores.shape == (1, 3)
    got, _ = idx.search(x[:50], 10)
    truth, _ = exact_search(x, x[:50], 10, "cosine")
    rec = ann_recall(got, ids[truth], 10)
    assert rec > (0.99 if kind in ("flat", "hnsw", "ivf_flat") else 0.6), rec
    # removal: the removed item never comes back
    assert idx.remove([ids[0], 999_999_999]) == 1
    assert ids[0] not in idx.search(x[0], 10)[0]
    # metadata joined to results
    table = idx.query(x[1:3], 4)
    assert list(table.columns[:4]) == ["query", "rank", "id", "score"] and "name" in table
    row = table[(table["query"] == 0) & (table["id"] == ids[1])]
    assert len(row) == 1 and row["name"].iloc[0] == "item1"
    # save / load round trip gives the same answers, removal included
    idx.save(tmp_path / "ix")
    idx.save(tmp_path / "ix")  # overwriting is atomic and leaves no temp folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]
    back = VectorIndex.load(tmp_path / "ix")
    a, _ = idx.search(x[:20], 5)
    b, _ = back.search(x[:20], 5)
    assert (a == b).all() and len(back) == len(x) - 1
    assert back.query(x[1], 1)["name"].iloc[0] == "item1"


def test_k_larger_than_gallery_pads_and_duplicate_ids_rejected():
    x = clustered(20, 8)
    idx = build_index(x, "flat")
    ids, scores = idx.search(x[:2], 30)
    assert ids.shape == (2, 30) and (ids[:, 20:] == -1).all() and np.isnan(scores[:, 20:]).all()
    assert (np.sort(ids[:, :20], 1) == np.arange(20)).all()
    with pytest.raises(ValueError, match="duplicate"):
        idx.add(x[:1], ids=[3])
    empty = VectorIndex(8)
    assert (empty.search(x[0], 4)[0] == -1).all()


def test_l2_scores_are_squared_distances_ascending():
    x = clustered(300, 8)
    idx = build_index(x, IndexSpec("flat", "l2"))
    ids, scores = idx.search(x[5], 4)
    d2 = ((x - x[5]) ** 2).sum(1)
    np.testing.assert_allclose(scores[0], np.sort(d2)[:4], rtol=1e-4, atol=1e-4)
    assert (np.diff(scores[0]) >= 0).all()


def test_planner_rules_and_measured_recall():
    gb = 1e9
    assert plan_index(50_000, 1024, 24 * gb).spec.kind == "flat"
    assert plan_index(1_000_000, 1024, 24 * gb).spec.kind == "hnsw"
    p = plan_index(6_000_000, 1024, 24 * gb)
    assert p.spec.kind == "ivf_sq8" and p.spec.nlist == round(4 * 6_000_000 ** 0.5) and p.estimated_bytes < 24 * gb
    assert plan_index(60_000_000, 1024, 24 * gb).spec.kind == "ivf_pq"
    plan6m = memory_plan(6_000_000, 1024, int(24 * gb))
    assert not plan6m.set_index("index").loc["flat", "fits"] and plan6m.set_index("index").loc["ivf_sq8", "fits"]
    # an IVF plan forced on small data: tuning raises nprobe until the measured recall meets the target
    x = clustered(4000, 32)
    forced = plan_index(4000, 32, 10**9, exact_max=0, hnsw_max=0)
    assert forced.spec.kind == "ivf_flat"
    forced.spec.nprobe = 1
    index, report = build_planned(x, 10**9, plan=forced, target_recall=0.95, n_queries=100)
    assert 0.0 <= report["recall@10"] <= 1.0
    assert report["target_met"] and report["recall@10"] >= 0.95
    assert report["tuning"][0][1] == 1 and index.spec.nprobe > 1
