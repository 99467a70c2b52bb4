"""JoyTag: architecture (released size, keys), positions, loader format, preprocessing, focal loss, training, tagger."""
from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import acg2vec_lab  # noqa: F401  (environment defaults first)
from acg2vec_lab.config import PROFILES, load_config
from acg2vec_lab.models.joytag.config import SWMODEL20_STEM, JoyTagConfig
from acg2vec_lab.models.joytag.loader import load_folder, save_folder
from acg2vec_lab.models.joytag.loss import focal_loss, tag_loss
from acg2vec_lab.models.joytag.model import (
    JoyTagViT,
    build_model,
    count_parameters,
    expected_parameters,
    sincos_2d_positions,
)
from acg2vec_lab.models.joytag.preprocess import CLIP_MEAN, CLIP_STD, pad_to_square, preprocess

TINY = dict(n_tags=7, image_size=32, num_blocks=2, patch_size=16, d_model=16, mlp_dim=32, num_heads=2,
            stochdepth_rate=0.0, use_sine=True, loss_type="focal2",
            cnn_stem="conv:c=4;ln;relu;conv:c=8;ln;relu;conv:c=8;ln;relu;conv:c=16;ln;relu;conv:c=16,s=1,k=1,p=0")


def test_released_configuration_size_and_keys():
    cfg = load_config("joytag", "full")
    assert (cfg.n_tags, cfg.image_size, cfg.cnn_stem) == (5813, 448, SWMODEL20_STEM)
    with torch.device("meta"):  # no 370 MB allocation; shapes and counts are exact
        model = build_model(cfg)
    assert count_parameters(model) == 91_491_509
    keys = list(model.state_dict())
    assert len(keys) == 190 and not list(model.buffers())
    assert {"patch_embeddings.conv.12.weight", "patch_embeddings.conv.10.norm.bias", "blocks.11.qkv_proj.weight",
            "blocks.0.skip_init1.skip", "blocks.0.mlp.linear2.bias", "norm.weight", "head.bias"} <= set(keys)
    assert tuple(model.state_dict()["blocks.0.qkv_proj.weight"].shape) == (2304, 768)
    # 5001 tags would give a different count (the README's "5000+" cannot mean 5001)
    assert expected_parameters(5001, 768, 3072, 12, SWMODEL20_STEM) == 90_867_081


@pytest.mark.parametrize("profile", PROFILES)
def test_count_from_config_matches_module(profile):
    cfg = load_config("joytag", profile)
    with torch.device("meta"):
        model = build_model(cfg)
    assert count_parameters(model) == expected_parameters(cfg.n_tags, cfg.d_model, cfg.mlp_dim, cfg.num_blocks, cfg.cnn_stem)
    assert model.image_size % cfg.patch_size == 0


def test_token_grid_and_output_shapes():
    model = JoyTagViT(**TINY).eval()
    x = torch.randn(2, 3, 32, 48)  # non-square: 2x3 tokens
    assert model.tokens(x).shape == (2, 6, 16)
    assert model(x).shape == (2, 7) and model.embed(x).shape == (2, 16)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(1, 3, 30, 32))


def test_sincos_positions_layout():
    pos = sincos_2d_positions(grid_w=3, grid_h=2, dim=8)
    assert pos.shape == (6, 8)
    omega = 1.0 / 10000 ** (torch.arange(2) / 1)
    # token 4 is row 1, column 1 (row-major); token 2 is row 0, column 2
    assert torch.allclose(pos[2], torch.cat([(2 * omega).sin(), (2 * omega).cos(), torch.zeros(2), torch.ones(2)]))
    assert torch.allclose(pos[4, 4:], torch.cat([omega.sin(), omega.cos()]))
    with pytest.raises(ValueError):
        sincos_2d_positions(2, 2, 6)


def test_layerscale_defaults_to_cait_rule():
    model = JoyTagViT(**TINY)
    assert torch.allclose(model.blocks[0].skip_init1.skip, torch.full((16,), 0.1))
    model = JoyTagViT(**{**TINY, "layerscale_init": 1e-3})
    assert torch.allclose(model.blocks[1].skip_init2.skip, torch.full((16,), 1e-3))


def test_loader_reads_released_format(tmp_path):
    torch.manual_seed(0)
    src = JoyTagViT(**TINY).eval()
    state = {k: v.clone() for k, v in src.state_dict().items()}
    # an old checkpoint: head has n_tags + 9 rows (3 rating + 6 score); extra training-only kwargs
    state["head.weight"] = torch.cat([state["head.weight"], torch.randn(9, 16)])
    state["head.bias"] = torch.cat([state["head.bias"], torch.randn(9)])
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"class": "ViT", **TINY, "use_amp": True, "ml_decoder_head": False}))
    (tmp_path / "top_tags.txt").write_text("\n".join(f"t{i}" for i in range(7)) + "\n\n")
    loaded = load_folder(tmp_path)
    assert loaded.trimmed_head and loaded.dropped_keys == ["ml_decoder_head", "use_amp"]
    assert loaded.tags == [f"t{i}" for i in range(7)]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), src(x), atol=1e-6)


def test_loader_roundtrip_and_errors(tmp_path):
    torch.manual_seed(1)
    model = JoyTagViT(**TINY).eval()
    save_folder(tmp_path / "a", model, TINY, [f"x{i}" for i in range(7)])
    again = load_folder(tmp_path / "a")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again.model(x), model(x))
    (tmp_path / "a" / "top_tags.txt").write_text("only\ntwo\n")
    with pytest.raises(ValueError, match="2 tags but config n_tags is 7"):
        load_folder(tmp_path / "a")
    save_folder(tmp_path / "b", JoyTagViT(**{**TINY, "d_model": 32, "mlp_dim": 32,
                                             "cnn_stem": TINY["cnn_stem"].replace("c=16", "c=32")}), TINY, ["a"] * 7)
    (tmp_path / "b" / "config.json").write_text(json.dumps({"class": "ViT", **TINY}))
    with pytest.raises(ValueError, match="shape"):
        load_folder(tmp_path / "b")


def test_preprocess_pads_white_centred_and_normalises():
    img = Image.new("RGB", (20, 10), (0, 0, 0))  # wide: pad 5 rows on top, 5 below
    sq = pad_to_square(img)
    a = np.asarray(sq)
    assert sq.size == (20, 20) and (a[:5] == 255).all() and (a[15:] == 255).all() and (a[5:15] == 0).all()
    tall = np.asarray(pad_to_square(Image.new("RGB", (5, 8), (10, 20, 30))))
    assert (tall[:, :1] == 255).all() and (tall[:, 1:6] == (10, 20, 30)).all() and (tall[:, 6:] == 255).all()
    x = preprocess(img, 20)  # already the target size: no resize
    assert x.shape == (3, 20, 20) and x.dtype == np.float32
    assert np.allclose(x[:, 0, 0], (1 - np.array(CLIP_MEAN)) / np.array(CLIP_STD), atol=1e-6)
    assert np.allclose(x[:, 10, 10], -np.array(CLIP_MEAN) / np.array(CLIP_STD), atol=1e-6)
    y = preprocess(Image.new("RGB", (37, 53), (128, 0, 255)), 32)
    assert y.shape == (3, 32, 32)
    ref = np.asarray(pad_to_square(Image.new("RGB", (37, 53), (128, 0, 255))).resize((32, 32), Image.BICUBIC), np.float32)
    assert np.allclose(y.transpose(1, 2, 0), (ref / 255 - CLIP_MEAN) / CLIP_STD, atol=1e-5)


def test_focal_loss_and_multiplier():
    torch.manual_seed(0)
    logits, y = torch.randn(4, 10) * 3, (torch.rand(4, 10) > 0.7).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert torch.allclose(focal_loss(logits, y, gamma=0.0), bce)
    assert focal_loss(logits, y) < bce
    assert torch.allclose(tag_loss(logits, y, "focal2"), 256 * tag_loss(logits, y, "focal"))
    # confident correct predictions are down-weighted far more than confident wrong ones
    easy = focal_loss(torch.tensor([[4.0]]), torch.tensor([[1.0]]))
    hard = focal_loss(torch.tensor([[-4.0]]), torch.tensor([[1.0]]))
    assert hard / easy > 1000
    with pytest.raises(ValueError):
        tag_loss(logits, y, "nope")


class _Post:
    def __init__(self, i, tags):
        from acg2vec_lab.data.danbooru import Tag

        self.id, self.tags = i, [Tag(t, 4 if t.startswith("c_") else 0) for t in tags]


def test_top_tags_and_training_learns_a_colour_tag(tmp_path, monkeypatch):
    from acg2vec_lab.models.joytag import train as jt

    posts = [_Post(i, ["red" if i % 2 else "blue", "c_x"] + (["rare"] if i == 0 else [])) for i in range(48)]
    tags, cats = jt.top_tags(posts, 2)
    assert sorted(tags) == ["blue", "c_x"] or sorted(tags) == ["c_x", "red"]
    tags, cats = ["red", "blue", "c_x"], [0, 0, 4]
    y = jt.tag_targets(posts, tags)
    assert y.sum(0).tolist() == [24, 24, 48]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(np.full((24, 20, 3), (220, 20, 20) if i % 2 else (20, 20, 220), np.uint8)
                              + rng.integers(0, 20, (24, 20, 3), dtype=np.uint8)) for i in range(48)]
    x = np.stack([preprocess(im, 32) for im in images])
    cfg = JoyTagConfig(**{**TINY, "n_tags": 99}, epochs=12, batch_size=16, lr=3e-3)
    model, hist = jt.train(cfg, x, y, seed=0)
    assert model.n_tags == 3  # n_tags follows the vocabulary that was selected
    assert hist["loss"][-1] < hist["loss"][0]
    probs = jt.predict_probs(model, x)
    assert ((probs[:, 0] > 0.5) == (y[:, 0] > 0)).mean() > 0.9
    # the smoke profile's registry run (its folder's config.json rebuilds this network) is a Tagger
    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path))
    from acg2vec_lab import models
    from acg2vec_lab.models import load_tagger
    from acg2vec_lab.tagging.base import Tagger
    from acg2vec_lab.train.run import synthetic_fingerprint

    with pytest.raises(FileNotFoundError, match="notebook 05"):
        load_tagger("joytag", "smoke")
    spec = models.get("joytag")
    smoke_run = spec.run(spec.config("smoke"), synthetic_fingerprint("smoke"))
    jt.save_checkpoint(smoke_run.folder, model, cfg, tags, cats, run=smoke_run)
    tagger = load_tagger("joytag", "smoke")
    assert isinstance(tagger, Tagger) and tagger.categories == [0, 0, 4]
    assert tagger.source == smoke_run.weights_label and tagger.source.startswith("trained on SYNTHETIC data: ")
    batch = np.stack([tagger.preprocess(im) for im in images[:4]])
    assert np.allclose(tagger.predict(batch), probs[:4], atol=1e-5)


def test_tag_loads_the_registry_run_and_refuses_other_data(tmp_path, monkeypatch, capsys):
    """``ensure_trained`` on the profile's synthetic set makes the run ``tag --model joytag`` and the embedder
    load, labelled SYNTHETIC; the same config trained on other data (a researcher's folder) is not loaded,
    nor is the per-variant folder notebook 05 used to write, and the refusal names what that folder holds."""
    from acg2vec_lab import models
    from acg2vec_lab.cli import main
    from acg2vec_lab.embedders.joytag import make_embedders
    from acg2vec_lab.models.joytag import train as jt
    from acg2vec_lab.paths import checkpoint_dir

    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path / "cache"))
    spec = models.get("joytag")
    cfg = spec.config("smoke")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, cfg.image_size, cfg.image_size)).astype(np.float32)
    y = (rng.random((16, 4)) < 0.5).astype(np.float32)
    toy = jt.JoyTagData(x, y, ["red", "blue", "solo", "c_x"], [0, 0, 0, 4], "toy")
    elsewhere = spec.ensure_trained(cfg, dataset=SimpleNamespace(root=tmp_path / "own-folder", posts=[]), data=toy)
    jt.save_checkpoint(checkpoint_dir("joytag", "tiny"), elsewhere.model, cfg, toy.tags, toy.categories)
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "a.png")
    capsys.readouterr()
    assert main(["tag", str(folder), "--model", "joytag", "--profile", "smoke", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "notebook 05" in err and "trained on unrecorded data" in err and "(data unknown)" in err
    assert make_embedders("smoke")[0].weights == "random init"
    trained = spec.ensure_trained(cfg, profile="smoke", data=toy)
    assert trained.trained_now and trained.run.folder != elsewhere.run.folder
    assert spec.find("smoke").folder == trained.run.folder
    assert make_embedders("smoke")[0].weights == trained.weights_label
    assert main(["tag", str(folder), "--model", "joytag", "--profile", "smoke", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["weights"] == trained.weights_label and "SYNTHETIC" in out["weights"]


def test_embedder_is_lazy_and_honest(tmp_path, monkeypatch):
    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path))
    from acg2vec_lab.embedders.joytag import make_embedders

    (emb,) = make_embedders("smoke")
    assert emb.weights == "random init" and emb.dim == load_config("joytag", "smoke").d_model
    vecs = emb.encode([Image.new("RGB", (30, 50), (200, 10, 10)), Image.new("RGB", (64, 64), (0, 0, 0))])
    assert vecs.shape == (2, emb.dim) and np.isfinite(vecs).all() and not np.allclose(vecs[0], vecs[1])


def test_every_config_is_valid():
    for profile in PROFILES:
        cfg = load_config("joytag", profile)
        assert cfg.d_model % cfg.num_heads == 0 and cfg.d_model % 4 == 0
        assert dataclasses.asdict(cfg)["loss_type"] == "focal2"


class _FakeTagger:
    """A Tagger whose 'model' reads the answer off a per-image id pixel (tests the comparison plumbing only)."""

    def __init__(self, tags, table, source):
        self.tags, self.table, self.source = tags, table, source
        self.categories, self.input_size, self.name = [0] * len(tags), (4, 4), "fake"

    def preprocess(self, image):
        return np.asarray(image, np.float32)[0, 0, :1]

    def predict(self, batch):
        return self.table[batch[:, 0].astype(int)]


class _FakeDataset:
    def load_image(self, post):
        return Image.new("RGB", (4, 4), (post.id, 0, 0))


def test_comparison_table_scores_common_tags_on_the_same_posts():
    from acg2vec_lab.models.joytag.experiment import comparison_table

    posts = [_Post(0, ["a", "b"]), _Post(1, ["b"]), _Post(2, ["a"])]
    perfect = _FakeTagger(["a", "b", "only_here"], np.array([[1, 1, 0], [0, 1, 0], [1, 0, 0]], np.float32), "x")
    wrong = _FakeTagger(["rating:safe", "b", "a"], np.array([[1, 0, 0], [1, 0, 1], [1, 1, 0]], np.float32), "y")
    table, common = comparison_table(_FakeDataset(), posts, {"p": perfect, "w": wrong}, threshold=0.4)
    assert common == ["a", "b"]
    rows = table.set_index("model")
    assert rows.loc["p", "micro_f1@th"] == 1.0 and rows.loc["w", "micro_f1@th"] == 0.0
    assert rows.loc["p", "mAP"] == 1.0 and rows.loc["p", "n_images"] == 3 and rows.loc["w", "weights"] == "y"
