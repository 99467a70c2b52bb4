"""illust2vec: one forward pass gives tags and the embedding; cut points by block position; embedder."""
from __future__ import annotations

import numpy as np
import pytest

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.config import load_config
from acg2vec_lab.models.deepdanbooru import loaders as L
from acg2vec_lab.models.deepdanbooru import tf_model as T
from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec, describe_cut, embedding_dim
from acg2vec_lab.models.deepix.model import trunk_embeddings, trunk_model


@pytest.fixture(scope="module")
def tiny():
    cfg = load_config("deepdanbooru", "smoke")
    model = T.build_model(cfg)
    rng = np.random.default_rng(0)
    T.make_nontrivial(model, rng.uniform(0, 1, (4, 64, 64, 3)), seed=2)
    return cfg, model


def _x(n=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 64, 64, 3)).astype(np.float32)


@pytest.mark.parametrize("cut", ["activation_96", "add_43"])
def test_two_outputs_match_tagger_and_cut(tiny, cut):
    import keras

    cfg, model = tiny
    both = build_illust2vec(model, cut)
    tags, emb = (np.asarray(a) for a in both(_x(), training=False))
    np.testing.assert_allclose(tags, np.asarray(model(_x(), training=False)), atol=1e-6)
    assert emb.shape == (3, embedding_dim(cfg)) == (3, 64)
    info = describe_cut(model, cut)
    feat = keras.Model(model.input, model.get_layer(info["layer"]).output)(_x(), training=False)
    np.testing.assert_allclose(emb, np.asarray(feat).mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    # the embedding-only path (trunk sub-model, then the mean over positions) gives the same vectors
    np.testing.assert_allclose(trunk_embeddings(trunk_model(model, cut), _x(), l2_normalize=False), emb, atol=1e-6)
    # the stage-3 placement of the tiny network
    assert info["stage"] == 3 and info["shape"][-1] == 64
    if cut == "activation_96":
        assert info["block_in_stage"] == 0 and info["projection"] and not info["pre_relu"]
        assert emb.min() >= 0  # post-ReLU
    else:
        assert info["block_in_stage"] == 2 and not info["projection"] and info["pre_relu"]
    # a single forward pass: the two-output model shares every layer with the tagger
    assert len(both.layers) == len(model.layers) + 2


def test_cuts_differ_and_l2(tiny):
    _, model = tiny
    a = np.asarray(build_illust2vec(model, "activation_96")(_x(), training=False)[1])
    b = np.asarray(build_illust2vec(model, "add_43")(_x(), training=False)[1])
    assert np.abs(a - b).max() > 1e-3
    n = np.asarray(build_illust2vec(model, "add_43", l2_normalize=True)(_x(), training=False)[1])
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(n, b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-5)


def test_torch_embedding_matches(tiny):
    import torch

    _, model = tiny
    tm = L.keras_to_torch(model)
    top = T.topology(model)
    for cut in ("activation_96", "add_43"):
        tags_ref, emb_ref = (np.asarray(a) for a in build_illust2vec(model, cut)(_x(), training=False))
        with torch.no_grad():
            tags, emb = tm.forward_with_embedding(torch.from_numpy(_x()), T.cut_block(top, cut).index,
                                                  pre_relu=cut == "add_43")
        assert np.abs(tags.numpy() - tags_ref).max() <= 1e-4
        assert np.abs(emb.numpy() - emb_ref).max() <= 1e-4


def test_cut_rule_for_stage_lengths():
    """add_43's generalisation: block round(12 n / 20) of stage 3, at least the 2nd, at most the last."""
    from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig

    for repeats, want in ((0, 0), (1, 1), (2, 2), (3, 2), (19, 12)):
        cfg = DeepDanbooruConfig(variant="custom", filter_sizes=(8, 8, 8, 8), repeat_sizes=(0, 0, 0, repeats),
                                 n_tags=3, image_size=32)
        top = T.topology(T.build_model(cfg))
        stage = top.stage_blocks()[3]
        assert stage.index(T.cut_block(top, "add_43")) == want
        assert T.cut_block(top, "activation_96") is stage[0]


def test_embedder_random_init(tmp_path, monkeypatch):
    from PIL import Image

    from acg2vec_lab.embedders import illust2vec as E

    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path))
    (emb,) = E.make_embedders("smoke")
    assert emb.name == "illust2vec" and emb.modality == "image" and emb.dim == 64 and emb.weights == "random init"
    imgs = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (50 + i, 40, 3), dtype=np.uint8))
            for i in range(3)]
    path = tmp_path / "a.png"
    imgs[0].save(path)
    out = emb.encode(imgs + [path])
    assert out.shape == (4, 64) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out[0], out[3], atol=1e-5)  # a path and the same image agree
    assert emb.encode([]).shape == (0, 64)


def test_embedder_uses_trained_checkpoint(tmp_path, monkeypatch, tiny):
    pytest.importorskip("acg2vec_lab.models.deepdanbooru.train")
    from acg2vec_lab.embedders import illust2vec as E
    from acg2vec_lab.paths import checkpoint_dir
    from acg2vec_lab.tagging.categories import save_tags_json

    cfg, model = tiny
    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path))
    folder = checkpoint_dir("deepdanbooru", "tiny")
    model.save_weights(folder / E.WEIGHTS_FILE)
    save_tags_json(folder / E.TAGS_FILE, [f"t{i}" for i in range(cfg.n_tags)], [0] * cfg.n_tags)
    (emb,) = E.make_embedders("smoke")
    assert emb.weights == f"trained: {folder}"
    x = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    from PIL import Image

    out = emb.encode([Image.fromarray(x)])
    ref = np.asarray(build_illust2vec(model, cfg.embedding_cut)(x[None].astype(np.float32) / 255, training=False)[1])
    np.testing.assert_allclose(out, ref, atol=1e-4)
