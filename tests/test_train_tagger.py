"""Tagger training: vocabulary, focal loss, LR list, checkpoint + resume on the smoke synthetic set."""
from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.models.deepdanbooru.train import build_vocabulary, lr_for_epoch, multi_hot
from acg2vec_lab.train.config import TaggerTrainConfig


def _post(tags, rating="g"):
    Tag = types.SimpleNamespace
    return types.SimpleNamespace(tags=[Tag(name=n, category=c) for n, c in tags], rating=rating)


def test_vocabulary_order_and_targets():
    posts = [_post([("smile", 0), ("hat", 0), ("miku", 4)]), _post([("smile", 0), ("miku", 4), ("rare", 0)], "s"),
             _post([("smile", 0), ("artistx", 1)], "q")]
    tags, cats = build_vocabulary(posts, minimum_tag_count=2)
    assert tags == ["smile", "miku", "rating:general", "rating:sensitive", "rating:questionable"]
    assert cats == [0, 4, 9, 9, 9]
    y = multi_hot(posts, tags)
    assert y.tolist()[1] == [1, 1, 0, 1, 0]


def test_lr_list_and_focal_loss():
    cfg = TaggerTrainConfig(learning_rate=0.1, learning_rates=({"used_epoch": 0, "learning_rate": 0.01},
                                                               {"used_epoch": 3, "learning_rate": 0.001}))
    assert [lr_for_epoch(cfg, e) for e in (0, 2, 3, 9)] == [0.01, 0.01, 0.001, 0.001]
    with pytest.raises(ValueError):
        TaggerTrainConfig(optimizer="lion")
    from acg2vec_lab.models.deepdanbooru.train import focal_loss

    y = np.array([[1.0, 0.0]], np.float32)
    p = np.array([[0.9, 0.2]], np.float32)
    want = np.mean([-0.25 * 0.1 ** 2 * np.log(0.9), -0.75 * 0.2 ** 2 * np.log(0.8)])
    assert float(focal_loss()(y, p)[0]) == pytest.approx(want, rel=1e-5)


@pytest.mark.slow
def test_train_checkpoint_and_resume(tmp_path):
    from acg2vec_lab.config import load_config
    from acg2vec_lab.data import synthetic_dataset
    from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model, train_tagger
    from acg2vec_lab.tagging.categories import load_tags_json

    cfg = dataclasses.replace(load_config("deepdanbooru_train", "smoke"), epochs=2, steps_per_epoch=2,
                              max_train=48, max_eval=16)
    ds = synthetic_dataset("smoke")
    r1 = train_tagger(cfg=cfg, dataset=ds, checkpoint=tmp_path, epochs=1)
    assert r1.state["epochs_done"] == 1 and r1.resumed_from_epoch == 0
    for f in ("model.weights.h5", "tags.json", "train_state.json", "optimizer.npz"):
        assert (tmp_path / f).exists()
    r2 = train_tagger(cfg=cfg, dataset=ds, checkpoint=tmp_path)
    assert r2.resumed_from_epoch == 1 and r2.state["epochs_done"] == 2 and len(r2.state["history"]) == 2
    model, tags, cats, _ = load_trained_tagger_model(checkpoint=tmp_path)
    assert tags == r2.tags and load_tags_json(tmp_path / "tags.json")[1] == cats
    x = np.random.default_rng(0).random((2, *model.input_shape[1:])).astype("float32")
    assert np.allclose(model(x, training=False), r2.model(x, training=False), atol=1e-6)
    assert json.loads((tmp_path / "train_state.json").read_text())["bn_events"] == []
