"""Known-answer tests of the ranking tables: notebook 10's index comparison, the leave-one-out character retrieval
of notebooks 03 (deepix) and 05 (JoyTag), on hand-built data whose answers are worked out in the comments."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from acg2vec_lab.data.danbooru import Post, Tag
from acg2vec_lab.retrieval.metrics import leave_one_out, same_character_relevance

A, B = "ayanami_rei", "souryuu_asuka_langley"  # A sorts first


def _post(i: int, chars: tuple[str, ...], bookmarks: int) -> Post:
    tags = [Tag("1girl", 0)] + [Tag(c, 4) for c in chars]
    return Post(id=i, md5=f"{i:032x}", file_ext="png", rating="g", tags=tags, pixiv={"bookmark_count": bookmarks})


# Five posts on the unit circle (angles in degrees); neighbours by angle, no ties:
#   p0 {A}    0   -> p1 (10), p3 (30), p2 (65), p4 (75)
#   p1 {A}   10   -> p0 (10), p3 (20), p2 (55), p4 (65)
#   p2 {B}   65   -> p4 (10), p3 (35), p1 (55), p0 (65)
#   p3 {A,B} 30   -> p1 (20), p0 (30), p2 (35), p4 (45)
#   p4 {}    75   (no character: relevant to nothing, its query is not scored)
ANGLES = [0, 10, 65, 30, 75]
CHARS = [(A,), (A,), (B,), (A, B), ()]
BOOKMARKS = [5, 40, 45, 5, 500]  # bins 0, 2, 2, 0, 10 of BOOKMARK_EDGES
POSTS = [_post(i, c, b) for i, (c, b) in enumerate(zip(CHARS, BOOKMARKS))]
EMB = np.stack([np.cos(np.radians(ANGLES)), np.sin(np.radians(ANGLES))], 1).astype(np.float32)


def test_same_character_means_any_shared_character():
    rel = same_character_relevance(POSTS)
    expected = np.array([[1, 1, 0, 1, 0],
                         [1, 1, 0, 1, 0],
                         [0, 0, 1, 1, 0],  # the solo B picture and the A+B picture share B
                         [1, 1, 1, 1, 0],
                         [0, 0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(rel, expected)


def test_deepix_retrieval_metrics_hand_computed():
    from acg2vec_lab.models.deepix.experiment import retrieval_metrics

    got = retrieval_metrics(EMB, POSTS, ks=(1, 2))
    ch = got["character"]
    # relevant ranks: p0 {1, 2}, p1 {1, 2}, p2 {2}, p3 {1, 2, 3}; p4 has no relevant post.
    # (The old "alphabetically first character" rule gave p3 only A, left p2 unscored and recall@1 1/2.)
    assert ch["n_queries"] == 4 and ch["n_queries_without_relevant"] == 1
    assert ch["recall@1"] == pytest.approx((1 / 2 + 1 / 2 + 0 + 1 / 3) / 4)
    assert ch["recall@2"] == pytest.approx((1 + 1 + 1 + 2 / 3) / 4)
    assert ch["precision@2"] == pytest.approx((1 + 1 + 1 / 2 + 1) / 4)
    assert ch["MRR"] == pytest.approx((1 + 1 + 1 / 2 + 1) / 4)
    assert ch["median_rank"] == 1.0
    assert ch["chance_recall@1"] == pytest.approx(1 / 4) and ch["chance_recall@2"] == pytest.approx(2 / 4)
    bm = got["bookmark_bin"]
    # same bin: p0-p3 (bin 0) and p1-p2 (bin 2); the partner's rank: p0 2, p1 3, p2 3, p3 2
    assert bm["n_queries"] == 4
    assert bm["recall@1"] == 0.0 and bm["recall@2"] == pytest.approx(0.5)
    assert bm["MRR"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 3 + 1 / 2) / 4)
    assert bm["median_rank"] == pytest.approx(2.5)


def test_joytag_character_retrieval_uses_the_same_definition():
    from acg2vec_lab.models.deepix.experiment import retrieval_metrics
    from acg2vec_lab.models.joytag.experiment import character_retrieval

    dataset = SimpleNamespace(load_image=lambda post: post.id)  # the "image" is the post's id
    scaled = EMB * np.array([[1.0], [3.0], [0.5], [2.0], [1.0]], dtype=np.float32)  # the wrapper normalises

    def embed(images):
        return scaled[np.asarray(images)]

    got = character_retrieval(embed, dataset, POSTS)
    want = retrieval_metrics(EMB, POSTS, ks=(1, 5))["character"]
    assert got["recall@1"] == pytest.approx((1 / 2 + 1 / 2 + 0 + 1 / 3) / 4)
    assert got == pytest.approx(want, nan_ok=True)


def test_leave_one_out_refuses_a_relevance_of_another_size():
    with pytest.raises(ValueError, match="expected \\(5, 5\\)"):
        leave_one_out(EMB, np.ones((4, 4), dtype=bool))


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two tight clusters (around e1 and e2) of 100 points each; 5 points of each lean towards e3.

    Queries ``e3 + 0.1 e1`` and ``e3 + 0.1 e2`` (cosine): their exact top 10 are the 10 leaning points
    (cosine ~0.83 / ~0.76, the rest ~0.1 or ~0). An IVF index with the two clusters as its lists puts each
    leaning point in its own cluster's list and sends each query to one list (the one its 0.1 leans to), so
    with ``nprobe=1`` it finds 5 of the 10 (recall@10 = 0.5) and with ``nprobe=2`` all of them (1.0).
    """
    rng = np.random.default_rng(seed)
    d = 8
    e = np.eye(d, dtype=np.float64)

    def cloud(centre: np.ndarray, n: int) -> np.ndarray:
        noise = np.zeros((n, d))
        noise[:, 3:] = 0.02 * rng.normal(size=(n, d - 3))
        return centre + noise

    x = np.concatenate([cloud(e[0], 95), cloud(e[0] + 1.2 * e[2], 5), cloud(e[1], 95), cloud(e[1] + 1.2 * e[2], 5)])
    queries = np.stack([e[2] + 0.1 * e[0], e[2] + 0.1 * e[1]])
    return x.astype(np.float32), queries.astype(np.float32)


def test_compare_indexes_recall_against_exact_is_known():
    pytest.importorskip("faiss")
    from acg2vec_lab.retrieval.bench import compare_indexes
    from acg2vec_lab.retrieval.index import IndexSpec, exact_search

    x, q = _planted()
    leaning = {*range(95, 100), *range(195, 200)}
    ids, _ = exact_search(x, q, 10)
    assert all(set(row.tolist()) == leaning for row in ids)  # the planted truth holds
    specs = [IndexSpec("flat", "cosine"), IndexSpec("ivf_flat", "cosine", nlist=2)]
    table = compare_indexes(x, q, specs, sweeps={"ivf_flat": [1, 2]}, k=10, single=2, repeats=1)
    assert table["index"].tolist() == ["flat", "ivf_flat (nlist=2)", "ivf_flat (nlist=2)"]
    assert table["knob"].tolist() == ["exact", "nprobe=1", "nprobe=2"]
    assert table["recall_at_10"].tolist() == [1.0, 0.5, 1.0]  # exact vs itself; one list of two; both lists
    assert table["speedup_vs_exact"].iloc[0] == 1.0
    assert (table[["build_s", "memory_mb", "single_qps", "batched_qps"]] > 0).all().all()


def test_compare_indexes_needs_the_exact_reference_first():
    pytest.importorskip("faiss")
    from acg2vec_lab.retrieval.bench import compare_indexes
    from acg2vec_lab.retrieval.index import IndexSpec

    x, q = _planted()
    with pytest.raises(ValueError, match="first spec must be flat"):
        compare_indexes(x, q, [IndexSpec("hnsw", "cosine")], single=2, repeats=1)

