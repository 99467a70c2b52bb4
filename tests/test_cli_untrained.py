"""No silent fallbacks: a command whose model has no trained weights refuses to print its outputs.

Every test points ``ACG2VEC_CACHE`` at an empty folder, so no checkpoint written by a notebook run on
this machine can make a model "trained" behind the test's back. Refusal is exit code 2 with a message
naming the notebook and profile that train the checkpoint; ``--allow-untrained`` runs the model and
labels the JSON ``"untrained": true`` with a warning; a trained checkpoint is labelled untrained false.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from acg2vec_lab.cli import main


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "imgs" / "a.png"
    path.parent.mkdir()
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((48, 40)).save(path)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_refused(code, out, err, model, notebook, profile="smoke"):
    assert code == 2 and out == ""  # nothing that could be mistaken for a prediction
    assert f"{model} has no trained weights in profile {profile}" in err
    assert f"notebook {notebook}" in err and f"acg2vec-lab run --only {notebook[:2]} --profile {profile}" in err
    assert "--allow-untrained" in err


def test_score_refuses_random_weights_then_labels_them_when_allowed(empty_cache, image, capsys):
    assert_refused(*run(capsys, "score", image, "--profile", "smoke"), "pix2score", "04_pix2score")
    code, out, err = run(capsys, "score", image, "--profile", "smoke", "--allow-untrained")
    doc = json.loads(out)
    assert code == 0 and doc["untrained"] is True and doc["warning"].startswith("UNTRAINED")
    assert doc["weights"].startswith("random init") and "UNTRAINED" in err
    assert len(doc["results"][0]["bookmarkPredict"]) == 15
    code, out, _ = run(capsys, "score", image, "--profile", "smoke", "--allow-untrained", "--compact")
    line = json.loads(out.splitlines()[0])
    assert code == 0 and line["untrained"] is True and line["image"] == str(image)


def test_score_loads_the_registry_run_and_says_it_is_synthetic(empty_cache, image, capsys):
    """The run notebook 04 makes (``ensure_trained`` on the profile's synthetic set) is what ``score`` loads."""
    from types import SimpleNamespace

    from acg2vec_lab import models

    rng = np.random.default_rng(0)
    spec = models.get("pix2score")
    cfg = spec.config("smoke")
    x = rng.integers(0, 255, (16, cfg.input_size, cfg.input_size, 3), dtype=np.uint8)
    y = {"bookmark_predict": rng.integers(0, 15, 16), "view_predict": rng.integers(0, 15, 16),
         "sanity_predict": rng.integers(0, 5, 16)}
    toy = SimpleNamespace(x={"train": x, "val": x[:8]}, y={"train": y, "val": {k: v[:8] for k, v in y.items()}})
    trained = spec.ensure_trained(cfg, profile="smoke", data=toy)
    assert trained.trained_now and trained.weights_label.startswith("trained on SYNTHETIC data: pix2score-")
    code, out, err = run(capsys, "score", image, "--profile", "smoke")
    doc = json.loads(out)
    assert code == 0 and doc["untrained"] is False and "warning" not in doc and "UNTRAINED" not in err
    assert doc["weights"] == trained.weights_label


def test_score_refuses_a_checkpoint_trained_on_other_data(empty_cache, image, capsys):
    """A run of another synthetic set, and the per-variant folder notebook 04 used to write (data not
    recorded), are refused; the message names what the old folder was trained on."""
    import keras

    from acg2vec_lab import models
    from acg2vec_lab.models.pix2score import train as p2s
    from acg2vec_lab.models.pix2score.model import build_pix2score
    from acg2vec_lab.paths import checkpoint_dir

    keras.utils.set_random_seed(0)
    spec = models.get("pix2score")
    cfg = spec.config("smoke")
    model = build_pix2score(cfg)
    older = spec.run(cfg, "synthetic:synthetic-danbooru-tiny-seed0-0123456789abcdef")
    p2s.save_checkpoint(model, cfg, older.folder, run=older)
    p2s.save_checkpoint(model, cfg, checkpoint_dir("pix2score", "tiny"))  # an explicit save: data "unknown"
    code, out, err = run(capsys, "score", image, "--profile", "smoke")
    assert_refused(code, out, err, "pix2score", "04_pix2score")
    assert "trained on unrecorded data" in err and "(data unknown)" in err and "it is not used" in err


def test_embed_image_refuses_untrained_illust2vec_and_lists_it(empty_cache, image, capsys):
    assert_refused(*run(capsys, "embed-image", "--model", "illust2vec", "--profile", "smoke", image),
                   "illust2vec", "02_tagging_and_thresholds")
    code, out, _ = run(capsys, "embed-image", "--list", "--profile", "smoke")
    listed = {e["name"]: e for e in json.loads(out)}
    assert code == 0 and listed["illust2vec"]["untrained"] is True and listed["efficientnet_lite0"]["untrained"] is False
    code, out, _ = run(capsys, "embed-image", "--model", "illust2vec", "--profile", "smoke", "--allow-untrained", image)
    doc = json.loads(out)
    assert code == 0 and doc["untrained"] is True and len(doc["vectors"]) == 1
    assert len(doc["vectors"][0]["vector"]) == doc["dim"]


def test_embed_text_refuses_untrained_dclip_text(empty_cache, capsys):
    assert_refused(*run(capsys, "embed-text", "--model", "dclip_text", "--profile", "smoke", "1girl"),
                   "dclip_text", "08_dclip")


def test_real_or_chance_embedders_are_not_refused(empty_cache, image, capsys):
    """The refusal is for random-init models only: real weights and the explicit chance baseline run."""
    code, out, _ = run(capsys, "embed-image", "--model", "chance", "--profile", "smoke", image)
    assert code == 0 and json.loads(out)["untrained"] is False


def test_search_build_and_query_refuse_untrained_dclip(empty_cache, image, tmp_path, capsys):
    folder = image.parent
    ix = tmp_path / "ix"
    assert_refused(*run(capsys, "search", "build", "--images", folder, "--model", "dclip_image", "--out", ix,
                        "--profile", "smoke"), "dclip_image", "08_dclip")
    assert not ix.exists()
    code, out, _ = run(capsys, "search", "build", "--images", folder, "--model", "dclip_image", "--out", ix,
                       "--profile", "smoke", "--allow-untrained")
    assert code == 0 and json.loads(out)["untrained"] is True
    assert_refused(*run(capsys, "search", "query", ix, "--text", "1girl"), "dclip_text", "08_dclip")
    code, out, _ = run(capsys, "search", "query", ix, "--text", "1girl", "--allow-untrained", "-k", "1")
    doc = json.loads(out)
    assert code == 0 and doc["untrained"] is True and doc["results"][0]["path"] == str(image)


def test_search_query_refuses_an_index_built_with_other_weights(empty_cache, image, tmp_path, capsys):
    ix = tmp_path / "ix"
    code, _, _ = run(capsys, "search", "build", "--images", image.parent, "--model", "chance", "--out", ix,
                     "--profile", "smoke")
    assert code == 0
    meta = json.loads((ix / "index.json").read_text())
    meta["info"]["weights"] = "trained: some/old/checkpoint"
    (ix / "index.json").write_text(json.dumps(meta))
    code, out, err = run(capsys, "search", "query", ix, "--image", image)
    assert code == 2 and out == "" and "rebuild the index" in err


@pytest.mark.parametrize("model, notebook", [("deepdanbooru", "02_tagging_and_thresholds"), ("joytag", "05_joytag")])
def test_tag_without_a_checkpoint_says_how_to_train_one(empty_cache, image, model, notebook, capsys):
    code, out, err = run(capsys, "tag", image, "--model", model, "--profile", "smoke", "--no-progress")
    assert code == 2 and out == "" and not (image.parent / "a.txt").exists()
    assert f"notebook {notebook}" in err and f"--only {notebook[:2]} --profile smoke" in err
