"""The Milvus backend, run embedded (milvus-lite, a local .db file), against faiss exact search."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from acg2vec_lab.retrieval.index import IndexSpec, build_index, default_nlist
from acg2vec_lab.retrieval.metrics import ann_recall

pytest.importorskip("pymilvus")


@pytest.fixture()
def milvus_uri(tmp_path):
    return str(tmp_path / "vectors.db")


def test_milvus_lite_flat_matches_faiss_and_round_trips(milvus_uri, tmp_path):
    from acg2vec_lab.retrieval.milvus import MilvusIndex

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    meta = pd.DataFrame({"character": [f"c{i % 5}" for i in range(300)], "score": np.arange(300)})
    ids = np.arange(300) * 2 + 10
    m = MilvusIndex(16, IndexSpec("flat", "l2"), uri=milvus_uri, collection="t", overwrite=True)
    m.add(x, ids=ids, metadata=meta)
    assert len(m) == 300
    f = build_index(x, IndexSpec("flat", "l2"), ids=ids)
    got, gs = m.search(x[:10] + 0.01, 5)
    ref, rs = f.search(x[:10] + 0.01, 5)
    assert (got == ref).all()
    np.testing.assert_allclose(gs, rs, rtol=1e-3, atol=1e-3)  # both report squared L2
    table = m.query(x[3], 2)
    assert table["id"].iloc[0] == ids[3] and table["character"].iloc[0] == "c3" and table["meta_score"].iloc[0] == 3
    with pytest.raises(ValueError, match="duplicate"):
        m.add(x[:1], ids=[ids[0]])
    assert m.remove([ids[3], 123456]) == 1
    assert ids[3] not in m.search(x[3], 5)[0]
    big_k = m.search(x[0], 400)[0]
    assert (big_k[0, :299] >= 0).all() and (big_k[0, 299:] == -1).all()  # k > collection: padded
    m.save(tmp_path / "mx")
    m.close()
    from acg2vec_lab.retrieval.milvus import MilvusIndex as M2

    back = M2.load(tmp_path / "mx")
    again = back.search(x[:10] + 0.01, 5)[0]
    assert len(back) == 299 and (again[again != ids[3]] >= 0).all() and ids[3] not in again
    back.close()


def test_milvus_lite_ivf_sq8_recall(milvus_uri):
    from acg2vec_lab.retrieval.milvus import MilvusIndex

    rng = np.random.default_rng(1)
    c = rng.normal(size=(20, 32))
    x = (c[rng.integers(0, 20, 2000)] + 0.3 * rng.normal(size=(2000, 32))).astype(np.float32)
    m = MilvusIndex(32, IndexSpec("ivf_sq8", "cosine", nprobe=16), uri=milvus_uri, collection="sq8",
                    expected_n=len(x), overwrite=True)
    assert m.spec.nlist == default_nlist(2000)  # 4 sqrt(N), at most N // 39
    m.add(x)
    exact = build_index(x, IndexSpec("flat", "cosine"))
    got, _ = m.search(x[:50], 10)
    ref, _ = exact.search(x[:50], 10)
    assert ann_recall(got, ref, 10) > 0.8
    m.close()
