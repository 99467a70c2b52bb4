"""DCLIP (and acgvoc2vec) evaluation: the one ranking rule of ``acg2vec_lab.retrieval.metrics``, on known
rankings with ties, and zero-shot tags against the frequency prior on a hand-computed case."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from acg2vec_lab.models.dclip.evaluate import cross_modal_recall, macro_ap, zero_shot


def test_cross_modal_recall_perfect_and_swapped():
    eye = np.eye(3)
    r = cross_modal_recall(eye, eye, ks=(1, 2))
    assert r["n"] == 3 and r["t2i_recall@1"] == r["i2t_recall@1"] == 1.0 and r["t2i_mrr"] == r["i2t_mrr"] == 1.0
    assert r["chance@1"] == pytest.approx(1 / 3) and r["chance@2"] == pytest.approx(2 / 3)
    # every text is closest to the other post's image: rank 2 for every query, both ways
    s = cross_modal_recall(np.eye(2), np.eye(2)[::-1], ks=(1, 2))
    assert s["t2i_recall@1"] == s["i2t_recall@1"] == 0.0 and s["t2i_recall@2"] == 1.0
    assert s["t2i_mrr"] == s["i2t_mrr"] == pytest.approx(0.5)


def test_cross_modal_recall_breaks_ties_by_gallery_position():
    img = np.eye(3)
    txt = np.full((3, 3), 1 / np.sqrt(3))  # every text scores every image the same
    r = cross_modal_recall(img, txt, ks=(1, 2, 3))
    # query j's own item sits at gallery position j, so its rank is j + 1: exactly chance on average
    assert r["t2i_recall@1"] == pytest.approx(1 / 3) and r["t2i_recall@2"] == pytest.approx(2 / 3)
    assert r["t2i_recall@3"] == 1.0 and r["t2i_mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert r["i2t_recall@1"] == pytest.approx(1 / 3) and r["i2t_mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    for k in (1, 2, 3):
        assert r[f"t2i_recall@{k}"] == pytest.approx(r[f"chance@{k}"])
    # a partial tie: text 0 scores images 0 and 1 equally (own image first by position), text 1 the same pair
    img2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    txt2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = cross_modal_recall(img2, txt2, ks=(1,))
    assert t["t2i_recall@1"] == pytest.approx(2 / 3) and t["t2i_mrr"] == pytest.approx((1 + 1 / 2 + 1) / 3)


def test_cross_modal_recall_rejects_unaligned_vectors():
    with pytest.raises(ValueError, match="aligned"):
        cross_modal_recall(np.eye(3), np.eye(2))


def test_zero_shot_against_the_frequency_prior():
    img = np.eye(4)[:2]  # image 0 points at tag 0, image 1 at tag 1
    tag_vecs = np.eye(4)
    y = np.array([[1, 0, 0, 0], [0, 1, 1, 0]])  # tag 3 has no positive: left out of mAP
    freq = np.array([0.1, 0.5, 0.9, 0.05])
    z = zero_shot(img, tag_vecs, y, freq, k=1)
    assert z["zero_shot_P@1"] == 1.0  # each image's best tag is true
    assert z["frequency_P@1"] == 0.5  # the prior proposes tag 2 for both; only image 1 has it
    # AP per tag with a positive: 1, 1, and 0.5 for tag 2 (both images tie at 0); the prior's AP is prevalence
    assert z["zero_shot_mAP"] == pytest.approx((1 + 1 + 0.5) / 3) and z["frequency_mAP"] == pytest.approx(0.5)
    assert z["tags"] == 4 and z["tags_with_positives"] == 3
    assert np.isnan(macro_ap(np.zeros((2, 2), int), np.ones((2, 2))))


def test_acgvoc2vec_ranks_use_the_same_rule():
    from acg2vec_lab.models.acgvoc2vec import evaluate as E

    q = np.eye(3, dtype=np.float32)
    g = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float32)
    assert E.ranks(q, g, np.array([0, 2, 1])).tolist() == [1, 1, 1]
    assert E.ranks(q, g, np.array([1, 1, 1])).tolist() == [2, 3, 1]  # ties by gallery position
    m = E.retrieval_metrics(q, g, np.array([1, 1, 1]), ks=(1, 2))
    assert m["recall@1"] == pytest.approx(1 / 3) and m["recall@2"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3) and m["n_queries"] == 3


def test_acgvoc2vec_blind_encoder_scores_chance():
    from acg2vec_lab.models.acgvoc2vec import evaluate as E

    rows = [(a, "title_title", "ja", f"ja-{a}", "zh-Hans", f"zh-{a}", "test") for a in range(20)]
    pairs = pd.DataFrame(rows, columns=["anime_id", "kind", "lang_a", "text_a", "lang_b", "text_b", "split"])
    anime = E.held_out_anime(pairs, "test")
    blind = E.cross_lingual(lambda t: np.ones((len(t), 4), np.float32) / 2, pairs, anime, directions=[("ja", "zh-Hans")])
    row = blind.iloc[0]
    for k in (1, 5, 10):
        assert row[f"recall@{k}"] == pytest.approx(row[f"chance@{k}"]) == pytest.approx(k / 20)
