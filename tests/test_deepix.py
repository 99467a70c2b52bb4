"""deepix: trunk cut by block position, ResNet-V2 stack + 15/15/5 heads, two optimizers over a true partition."""
from __future__ import annotations

import dataclasses

import numpy as np

import acg2vec_lab  # noqa: F401  (before tensorflow)


def test_deepix_shapes_partition_and_differential_learning_rates():
    import keras

    from acg2vec_lab.config import load_config
    from acg2vec_lab.models.deepdanbooru.train import build_tagger_model
    from acg2vec_lab.models.deepix.model import DifferentialTrainer, build_deepix, split_variables

    keras.utils.set_random_seed(0)
    cfg = load_config("deepix", variant="tiny")
    tagger = build_tagger_model("tiny", 8)
    model = build_deepix(tagger, cfg)
    assert [o.shape[-1] for o in model.outputs] == [15, 15, 5]
    trunk = model.get_layer("deepix_trunk")
    assert trunk.output.shape[1:] == (2, 2, 64)  # tiny at 64 px: stage 3 = 64/32 = 2x2x64 (16x16x1024 in v3 at 512)
    t, o = split_variables(model)
    assert {id(v) for v in t}.isdisjoint({id(v) for v in o}) and len(t) + len(o) == len(model.trainable_variables)
    assert len(t) == len(trunk.trainable_variables)
    tr = DifferentialTrainer(model, cfg)
    before_t = [v.numpy().copy() for v in t]
    before_o = [v.numpy().copy() for v in o]
    rng = np.random.default_rng(0)
    x = rng.random((8, 64, 64, 3)).astype("float32")
    tg = {h: np.eye(n, dtype="float32")[rng.integers(0, n, 8)] for h, n in (("bookmark", 15), ("view", 15), ("sanity", 5))}
    hist = tr.fit(x, tg, epochs=1, batch_size=8)
    assert np.isfinite(hist[0]["loss"])
    dt = max(np.abs(v.numpy() - b).max() for v, b in zip(t, before_t))
    do = max(np.abs(v.numpy() - b).max() for v, b in zip(o, before_o))
    # baseline: the same model, data and step with one learning rate for both groups (the heads'). The first
    # optimiser step moves each variable in proportion to its group's rate, so the trunk must move
    # trunk_lr / head_lr times as far as in the baseline and the heads exactly as far (equal rates fail this)
    keras.utils.set_random_seed(0)
    same = build_deepix(build_tagger_model("tiny", 8), cfg)
    bt, bo = split_variables(same)
    base_t, base_o = [v.numpy().copy() for v in bt], [v.numpy().copy() for v in bo]
    assert all(np.array_equal(a, b) for a, b in zip(base_t, before_t))  # the same start
    DifferentialTrainer(same, dataclasses.replace(cfg, trunk_lr=cfg.head_lr)).fit(x, tg, epochs=1, batch_size=8)
    dt_same = max(np.abs(v.numpy() - b).max() for v, b in zip(bt, base_t))
    do_same = max(np.abs(v.numpy() - b).max() for v, b in zip(bo, base_o))
    np.testing.assert_allclose(dt / dt_same, cfg.trunk_lr / cfg.head_lr, rtol=0.1)
    np.testing.assert_allclose(do, do_same, rtol=1e-3)
    # the tagger shares the trunk's weights: fine-tuning changes the tagger too (as in ACG2vec)
    assert any(not np.array_equal(a, b) for a, b in zip(before_t, [v.numpy() for v in trunk.trainable_variables]))
