"""The model contract, for every trainable model in the registry (``acg2vec_lab.models``).

Per model, on a tiny config and a tiny synthetic set: fit (1-2 steps) into a keyed run -> the run
``exists()`` -> fitting the finished run again resumes it to the same state without training ->
``load`` gives the same weights and outputs -> ``ensure_trained`` loads it -> the folder refuses a
changed config or changed data with a clear message -> two seeds give two different trained
weights and one seed twice gives the same.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from acg2vec_lab import models
from acg2vec_lab.train.run import Run, RunMismatch

# Tiny configs: 1-2 optimiser steps on a handful of images; ``change`` is a config edit for the refusal check.
TINY = {
    "deepdanbooru": dict(variant="tiny", overrides=dict(epochs=1, steps_per_epoch=1, batch_size=4, max_train=8,
                                                       max_eval=4, minimum_tag_count=1, max_tags=8, workers=1,
                                                       bn_check=False), change=dict(learning_rate=0.01)),
    "deepix": dict(variant="tiny", overrides=dict(epochs=1, steps_per_epoch=1, batch_size=4, max_train=8,
                                                 stack_filters=4, stack_blocks=1), change=dict(head_lr=0.5)),
    "pix2score": dict(variant="tiny", overrides=dict(epochs=1, batch_size=8, max_train=8, recalibrate_bn=False),
                      change=dict(lr=0.01)),
    "joytag": dict(variant="tiny", overrides=dict(epochs=1, batch_size=8, max_train=8, n_tags=8), change=dict(lr=0.01)),
    "dclip": dict(variant="tiny", overrides=dict(steps=1, batch_size=4, max_train=6, max_eval=4, checkpoint_every=1),
                  change=dict(lr=0.01)),
    "acgvoc2vec": dict(variant="tiny", overrides=dict(architecture="e5", max_seq_length=16, batch_size=4, max_steps=1,
                                                     max_train=None, checkpoint_every=1, keep_checkpoints=1, lr=5e-3),
                       change=dict(lr=0.01)),
}
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz") + ["attack", "titan"]


def test_every_trainable_model_has_a_tiny_config():
    assert sorted(TINY) == sorted(models.names(trainable=True))
    for name in models.names():
        spec = models.get(name)
        assert spec.name == name and callable(spec.load) and callable(spec.find)
        if spec.trainable:
            assert dataclasses.is_dataclass(spec.schema) and "seed" in {f.name for f in dataclasses.fields(spec.schema)}
    with pytest.raises(KeyError, match="registered"):
        models.get("nope")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """An isolated cache (runs land there), a 48-image synthetic set and a tiny local BERT base."""
    root = tmp_path_factory.mktemp("contract")
    old = os.environ.get("ACG2VEC_CACHE")
    os.environ["ACG2VEC_CACHE"] = str(root / "cache")
    from acg2vec_lab.data import synthetic_dataset

    yield {"dataset": synthetic_dataset("smoke", root=root / "data", n_images=48), "root": root,
           "bert": _tiny_bert(root / "bert")}
    if old is None:
        os.environ.pop("ACG2VEC_CACHE", None)
    else:
        os.environ["ACG2VEC_CACHE"] = old


def _tiny_bert(path):
    import torch
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers import models as tok_models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0), add_pooling_layer=False).save_pretrained(path)
    tok = Tokenizer(tok_models.WordPiece({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(path)
    return str(path)


def _pairs() -> pd.DataFrame:
    rows = []
    for a, w in enumerate("abcdefgh"):
        rows.append((a, "title_title", "ja", f"{w} {w} titan", "en", f"{w} attack", "train"))
    return pd.DataFrame(rows, columns=["anime_id", "kind", "lang_a", "text_a", "lang_b", "text_b", "split"])


def _weights(model) -> list[np.ndarray]:
    if hasattr(model, "get_weights"):  # Keras
        return [np.asarray(w) for w in model.get_weights()]
    return [v.detach().cpu().numpy().copy() for v in model.state_dict().values()]


def _outputs(name: str, model) -> np.ndarray:
    """One forward pass on a fixed probe input, flattened."""
    rng = np.random.default_rng(0)
    if name in ("deepdanbooru", "deepix", "pix2score"):
        x = rng.random((2, *model.input_shape[1:]), dtype=np.float32)
        out = model(x, training=False)
        return np.concatenate([np.asarray(o).ravel() for o in (out if isinstance(out, (list, tuple)) else [out])])
    import torch

    with torch.no_grad():
        if name == "joytag":
            return model(torch.from_numpy(rng.random((2, 3, model.image_size, model.image_size), dtype=np.float32))).numpy().ravel()
        if name == "dclip":
            return model.encode_image(torch.from_numpy(rng.standard_normal((2, 3, 64, 64)).astype(np.float32))).numpy().ravel()
    return np.asarray(model.encode(["a a titan", "b attack"], convert_to_numpy=True)).ravel()


def _model_of(result):
    return result.model if hasattr(result, "model") else result["model"]


def _same(a: list[np.ndarray], b: list[np.ndarray], atol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y, atol=atol) for x, y in zip(a, b))


@pytest.mark.parametrize("name", sorted(TINY))
def test_model_contract(name, env):
    spec = models.get(name)
    tiny = TINY[name]
    overrides = dict(tiny["overrides"])
    if name == "acgvoc2vec":
        overrides["base"] = env["bert"]
        source = _pairs()
    else:
        source = env["dataset"]
    if name == "deepix":  # its base tagger: the tagger's own contract runs (same config, data, seeds)
        spec.base_overrides = TINY["deepdanbooru"]["overrides"]
    try:
        _contract(name, spec, tiny, overrides, source, env)
    finally:
        spec.__dict__.pop("base_overrides", None)


def _contract(name, spec, tiny, overrides, source, env):
    cfg = spec.config(tiny["variant"], seed=0, **overrides)
    fp = spec.source_fingerprint(source, cfg)

    # fit one step into the keyed run -> exists()
    run = spec.run(cfg, fp)
    assert not run.exists() and run.weights_label.startswith("random init")
    data = spec.prepare(cfg, source)
    trained = _model_of(spec.fit(cfg, data, run))
    assert run.exists() and run.weights_label.startswith("trained on ")
    manifest = run.manifest()
    assert manifest["complete"] and manifest["seed"] == 0 and manifest["data"] == fp
    assert isinstance(manifest["history"], list) and all(isinstance(r, dict) for r in manifest["history"])
    w0, out0 = _weights(trained), _outputs(name, trained)

    # resume: the finished run is continued to the same state (nothing trains, history unchanged)
    again = spec.run(cfg, fp)
    assert again.folder == run.folder
    resumed = _model_of(spec.fit(cfg, data, again))
    assert _same(_weights(resumed), w0) and again.manifest()["history"] == manifest["history"]

    # load gives the same weights and outputs; ensure_trained finds the run instead of training
    loaded = spec.load(run)
    assert _same(_weights(loaded), w0)
    np.testing.assert_allclose(_outputs(name, loaded), out0, atol=1e-5)
    ensured = spec.ensure_trained(cfg, dataset=source)
    assert not ensured.trained_now and ensured.run.folder == run.folder

    # a changed config or changed data is refused in that folder, and gets a folder of its own
    other = dataclasses.replace(cfg, **tiny["change"])
    with pytest.raises(RunMismatch, match="another config"):
        spec.run(other, fp, folder=run.folder)
    with pytest.raises(RunMismatch, match="other data"):
        spec.run(cfg, fp + "-changed", folder=run.folder)
    assert spec.run(other, fp, write=False).folder != run.folder
    assert not spec.run(other, fp, write=False).exists()

    # seeds: another seed trains other weights; the same seed again trains the same weights
    cfg1 = spec.config(tiny["variant"], seed=1, **overrides)
    run1 = spec.run(cfg1, spec.source_fingerprint(source, cfg1))
    assert run1.folder != run.folder
    w1 = _weights(_model_of(spec.fit(cfg1, spec.prepare(cfg1, source), run1)))
    assert not _same(w1, w0, atol=1e-4)
    rerun = Run.fresh(name, cfg, fp, env["root"] / f"again-{name}")
    w0b = _weights(_model_of(spec.fit(cfg, spec.prepare(cfg, source), rerun)))
    assert _same(w0b, w0, atol=1e-5)


@pytest.mark.parametrize("name", ["pix2score", "joytag", "dclip"])
def test_find_takes_only_the_run_of_the_profiles_data(name, tmp_path, monkeypatch):
    """A finished run on other data (an older synthetic set) and a per-variant folder of the notebooks' old
    explicit saves (data not recorded) are never found, and ``require`` names what the old folder holds;
    the run keyed by the profile's synthetic data is found, labelled SYNTHETIC."""
    from acg2vec_lab.paths import checkpoint_dir
    from acg2vec_lab.train.run import synthetic_fingerprint

    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path))
    spec = models.get(name)
    cfg = spec.config("smoke")
    spec.run(cfg, "synthetic:synthetic-danbooru-tiny-seed0-0123456789abcdef").save([], 1, complete=True)
    Run.fresh(name, cfg, "unknown", checkpoint_dir(name, "tiny")).save([], 1, complete=True)
    assert spec.find("smoke") is None
    assert "trained on unrecorded data" in spec.stale("smoke") and "data unknown" in spec.stale("smoke")
    if spec.has_tagger:
        with pytest.raises(FileNotFoundError, match=r"tiny holds a run trained on unrecorded data.*\(data unknown\)"):
            spec.require("smoke")
    run = spec.run(cfg, synthetic_fingerprint("smoke"))
    run.save([], 1, complete=True)
    found = spec.find("smoke")
    assert found.folder == run.folder and found.label == f"trained on SYNTHETIC data: {run.id}"
    assert spec.find("smoke", seed=1) is None  # another seed is another run


def test_resume_refuses_other_data_through_the_legacy_entry_points(env, tmp_path):
    """The trainers' own ``ckpt_dir`` arguments follow the same rule (DCLIP as the example)."""
    import torch

    from acg2vec_lab.models.dclip import train as T

    cfg = models.get("dclip").config("tiny", steps=1, batch_size=2, checkpoint_every=1)
    images = torch.zeros(2, 3, 64, 64)
    T.train(cfg, images, [0, 1], ["1girl", "red background"], ckpt_dir=tmp_path)
    with pytest.raises(RunMismatch, match="other data"):
        T.train(cfg, images + 1, [0, 1], ["1girl", "red background"], ckpt_dir=tmp_path)
    with pytest.raises(RunMismatch, match="another config"):
        T.train(dataclasses.replace(cfg, lr=0.5), images, [0, 1], ["1girl", "red background"], ckpt_dir=tmp_path)


def test_seed_everything_imports_and_seeds_the_frameworks_it_is_asked_to():
    import torch

    from acg2vec_lab.runtime import seed_everything

    seed_everything(3, frameworks=("torch",))
    a = torch.rand(4)
    seed_everything(3, frameworks=("torch",))
    assert torch.equal(a, torch.rand(4))
    seed_everything(4, frameworks=("torch",))
    assert not torch.equal(a, torch.rand(4))
    with pytest.raises(ValueError, match="unknown framework"):
        seed_everything(0, frameworks=("jax",))


def test_seed_override_reaches_every_trainable_config_and_the_run_key():
    for name in models.names(trainable=True):
        spec = models.get(name)
        a, b = spec.config("tiny", seed=1), spec.config("tiny", seed=2)
        assert (a.seed, b.seed) == (1, 2)
        assert spec.run(a, "synthetic:x", write=False).folder != spec.run(b, "synthetic:x", write=False).folder
    with pytest.raises(ValueError, match="released weights"):
        models.get("real_cugan").config("tiny", seed=1)


def test_taggers_and_embedders_come_from_the_registry(tmp_path, monkeypatch):
    """An empty cache: no run is found, embedders are labelled random init, taggers refuse clearly."""
    from acg2vec_lab.models import load_tagger

    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path))
    for name in ("deepdanbooru", "joytag", "dclip"):
        assert models.get(name).find("smoke") is None
        assert all(e.weights.startswith("random init") for e in models.get(name).embedders("smoke"))
    with pytest.raises(FileNotFoundError, match="ensure_trained"):
        load_tagger("joytag", "smoke")
    with pytest.raises(ValueError, match="unknown tagger 'dclip'; choose deepdanbooru, joytag"):
        load_tagger("dclip", "smoke")


def test_config_fields_are_spelled_one_way():
    """Every schema caps its data with ``max_train`` / ``max_eval``; an old spelling says what it became."""
    from acg2vec_lab.config import RENAMED, ConfigError, load_config

    for name in models.names(trainable=True):
        fields = {f.name for f in dataclasses.fields(models.get(name).schema)}
        assert not fields & set(RENAMED), (name, fields & set(RENAMED))
        assert "max_train" in fields, (name, sorted(fields))
    with pytest.raises(ConfigError, match=r"renamed.*'train_limit': 'max_train'"):
        load_config("dclip", variant="tiny", train_limit=3)


# An absurd learning rate: the first step moves every weight by about lr (Adam), so a later step's loss is inf/NaN.
BOOM = {"deepdanbooru": dict(learning_rate=1e30, steps_per_epoch=3), "deepix": dict(head_lr=1e30, trunk_lr=1e30,
        steps_per_epoch=3), "pix2score": dict(lr=1e30, batch_size=2), "joytag": dict(lr=1e30, batch_size=2),
        "dclip": dict(lr=1e30, steps=4), "acgvoc2vec": dict(lr=1e30, max_steps=6, epochs=3)}


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_nonfinite_loss_stops_training_before_the_weights_and_saves_no_run(name, env):
    """One policy (``acg2vec_lab.train.guards``): every trainer raises NonFiniteLoss naming itself and the
    step, and the run is never saved as finished (deepix used to save the NaN-updated weights as complete)."""
    from acg2vec_lab.train.guards import NonFiniteLoss

    spec = models.get(name)
    assert sorted(BOOM) == sorted(TINY)
    overrides = {**TINY[name]["overrides"], **BOOM[name]}
    source = env["dataset"]
    if name == "acgvoc2vec":
        overrides["base"], source = env["bert"], _pairs()
    if name == "deepix":
        spec.base_overrides = TINY["deepdanbooru"]["overrides"]
    try:
        cfg = spec.config(TINY[name]["variant"], seed=0, **overrides)
        run = Run.fresh(name, cfg, spec.source_fingerprint(source, cfg), env["root"] / f"boom-{name}")
        with pytest.raises(NonFiniteLoss, match=rf"^{name}: non-finite loss .* the weights were not updated"):
            spec.fit(cfg, spec.prepare(cfg, source), run)
        assert not run.exists()
    finally:
        spec.__dict__.pop("base_overrides", None)
