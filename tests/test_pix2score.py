"""Pix2Score: deployed size, trunk builder, base64 SavedModel vs notebook preprocessing, PCGrad, re-binning, metrics."""
from __future__ import annotations

import collections
import io

import numpy as np
import pytest
import tensorflow as tf  # noqa: E402
from PIL import Image

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.config import PROFILES, load_config  # noqa: E402
from acg2vec_lab.data.labels import BOOKMARK_EDGES, to_bins  # noqa: E402
from acg2vec_lab.models.pix2score import rebin  # noqa: E402
from acg2vec_lab.models.pix2score.config import Pix2ScoreConfig  # noqa: E402
from acg2vec_lab.models.pix2score.model import HEAD_NAMES, build_pix2score, pcgrad_combine, resnet_v2_trunk  # noqa: E402

TINY = Pix2ScoreConfig(trunk="resnet_v2", input_size=32, blocks=(2, 2), filters=(8, 16), stem_filters=8,
                       epochs=1, batch_size=8, lr=1e-3)


def test_deployed_size_and_heads():
    model = build_pix2score(load_config("pix2score", "full"))
    assert model.count_params() == 42_698_275
    assert model.input_shape == (None, 224, 224, 3)
    assert [o.shape[-1] for o in model.outputs] == [15, 15, 5]
    assert [model.get_layer(n).activation.__name__ for n in HEAD_NAMES] == ["softmax"] * 3
    trunk = model.layers[1]
    assert trunk.count_params() == 42_626_560 and trunk.layers[-1].name == "avg_pool"
    # this package's ResNet-V2 builder at (3, 4, 23, 3) is the same network as keras.applications
    mine = resnet_v2_trunk(224, (3, 4, 23, 3), (64, 128, 256, 512))
    assert mine.count_params() == trunk.count_params()
    sig = lambda m: [(type(l).__name__, l.name if type(l).__name__ != "MaxPooling2D" else "") for l in m.layers[1:]]  # noqa: E731
    assert sig(mine) == sig(trunk)  # keras leaves the shortcut pools unnamed


@pytest.mark.parametrize("profile", PROFILES[:2])
def test_replicas_keep_every_layer_type(profile):
    cfg = load_config("pix2score", profile)
    trunk = build_pix2score(cfg).layers[1]
    kinds = collections.Counter(type(l).__name__ for l in trunk.layers)
    assert {"Conv2D", "BatchNormalization", "Activation", "ZeroPadding2D", "MaxPooling2D", "Add",
            "GlobalAveragePooling2D"} <= set(kinds)
    names = [l.name for l in trunk.layers]
    assert any(n.endswith("_0_conv") for n in names) and any(n.endswith("_0_pool") for n in names)


def _image_b64(w, h, fmt, seed):
    from acg2vec_lab.models.pix2score.serving import encode_b64

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, fmt)
    return encode_b64(buf.getvalue()), buf.getvalue()


def test_served_savedmodel_matches_notebook_preprocessing(tmp_path):
    from acg2vec_lab.models.pix2score.serving import export_b64_savedmodel, load_served, predict_b64, preprocess_b64

    tf.keras.utils.set_random_seed(0)
    model = build_pix2score(TINY)
    items = [_image_b64(37, 53, "PNG", 0), _image_b64(64, 20, "JPEG", 1), _image_b64(32, 32, "PNG", 2)]
    b64 = [s for s, _ in items]
    assert any("-" in s or "_" in s for s in b64) and all("=" not in s for s in b64)  # URL-safe, unpadded
    # the preprocessing is decode -> bilinear stretch -> /255
    x = preprocess_b64(b64, 32).numpy()
    ref = tf.image.resize(np.asarray(Image.open(io.BytesIO(items[0][1])).convert("RGB"), np.float32), (32, 32)).numpy() / 255
    assert x.shape == (3, 32, 32, 3) and np.allclose(x[0], ref, atol=1e-6) and 0 <= x.min() and x.max() <= 1
    local = predict_b64(model, b64)
    served = load_served(export_b64_savedmodel(model, tmp_path / "pix2score_base64_input" / "1"))
    out = served(b64_input_bytes=tf.constant(b64))
    assert set(out) == set(HEAD_NAMES)
    for name in HEAD_NAMES:
        assert out[name].shape == local[name].shape
        np.testing.assert_allclose(out[name].numpy(), local[name], atol=1e-5)
        np.testing.assert_allclose(out[name].numpy().sum(1), 1.0, atol=1e-5)


def test_pcgrad_projection():
    v = [tf.Variable(tf.zeros(2))]
    g1, g2 = tf.constant([1.0, 0.0]), tf.constant([-1.0, 1.0])  # conflicting: g1 . g2 = -1
    (out,) = pcgrad_combine([[g1], [g2]], v)
    # g1 -> g1 - (-1/2) g2 = (0.5, 0.5); g2 -> g2 - (-1/1) g1 = (0, 1); sum (0.5, 1.5)
    np.testing.assert_allclose(out.numpy(), [0.5, 1.5], atol=1e-6)
    (same,) = pcgrad_combine([[g1], [tf.constant([1.0, 2.0])]], v)  # no conflict: plain sum
    np.testing.assert_allclose(same.numpy(), [2.0, 2.0], atol=1e-6)
    # with three tasks each projected gradient no longer conflicts with the one it was projected on last
    a = pcgrad_combine([[g1], [None], [g2]], v)[0]  # a missing gradient counts as zero
    np.testing.assert_allclose(a.numpy(), [0.5, 1.5], atol=1e-6)


def _toy_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = {"bookmark_predict": rng.integers(0, 15, n), "view_predict": rng.integers(0, 15, n),
         "sanity_predict": rng.integers(0, 5, n)}
    return x, y


def test_training_plain_and_pcgrad_checkpoint_and_score_cli(tmp_path, monkeypatch, capsys):
    from acg2vec_lab.models.pix2score import train as p2s

    x, y = _toy_data()
    plain, h1 = p2s.train(TINY, x, y, x[:8], {k: v[:8] for k, v in y.items()}, seed=0, pcgrad=False)
    pc, h2 = p2s.train(TINY, x, y, seed=0, pcgrad=True)
    assert np.isfinite(h1["loss"]).all() and np.isfinite(h2["loss"]).all() and "val_loss" in h1
    n_bn = sum(type(l).__name__ == "BatchNormalization" for l in plain.layers[1].layers)
    assert h1["bn_layers_recalibrated"] == n_bn > 0 and h1["bn_recalibration_batches"] == 3
    assert np.isfinite(h1["val_mean_accuracy_recalibrated"])  # quality is gated in test_gates_scores_text
    w1, w2 = plain.get_weights(), pc.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(w1, w2))  # the combination rule changes the update
    cos = p2s.gradient_cosines(plain, x[:8], {k: v[:8] for k, v in y.items()})
    assert cos.shape == (3, 3) and np.allclose(np.diag(cos), 1, atol=1e-4)
    p2s.save_checkpoint(plain, TINY, tmp_path / "ck", {"seed": 0})
    again, cfg, meta = p2s.load_checkpoint(tmp_path / "ck")
    assert cfg == TINY and meta["seed"] == 0
    a, b = p2s.predict(plain, x[:4]), p2s.predict(again, x[:4])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6)
    # `acg2vec-lab score` uses the trained checkpoint of the profile's variant and the API's keys
    import json

    from acg2vec_lab import models
    from acg2vec_lab.cli import main
    from acg2vec_lab.models.pix2score.api import image_file_b64
    from acg2vec_lab.models.pix2score.serving import predict_b64
    from acg2vec_lab.train.run import synthetic_fingerprint

    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path / "cache"))
    spec = models.get("pix2score")  # the smoke profile's run; its folder's config.json rebuilds the TINY network
    smoke_run = spec.run(spec.config("smoke"), synthetic_fingerprint("smoke"))
    p2s.save_checkpoint(plain, TINY, smoke_run.folder, run=smoke_run)
    Image.fromarray(x[0]).save(tmp_path / "a.png")
    capsys.readouterr()
    assert main(["score", str(tmp_path / "a.png"), "--profile", "smoke"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["weights"] == smoke_run.weights_label and "SYNTHETIC" in doc["weights"]
    (res,) = doc["results"]
    assert len(res["bookmarkPredict"]) == 15 and len(res["viewPredict"]) == 15 and len(res["sanityPredict"]) == 5
    ref = predict_b64(plain, [image_file_b64(tmp_path / "a.png")])
    np.testing.assert_allclose(res["sanityPredict"], ref["sanity_predict"][0], atol=1e-5)
    best = res["argmax"]["bookmarkPredict"]
    assert best["bin"] == int(ref["bookmark_predict"][0].argmax()) and "-" in best["label"]
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["score", str(tmp_path / "bad.png")]) == 2


def test_readme_bin_labels():
    from acg2vec_lab.models.pix2score.api import readme_bin_labels

    labels = readme_bin_labels(BOOKMARK_EDGES)
    assert len(labels) == 15 and labels[0] == "0-10" and labels[1] == "10-30" and labels[-1] == "2700-∞"


def test_head_metrics():
    from acg2vec_lab.models.pix2score.train import head_metrics

    y = {"sanity_predict": np.array([0, 0, 1, 2, 2])}
    probs = {"sanity_predict": np.eye(5)[[0, 1, 1, 2, 0]]}
    m = head_metrics(y, probs)["sanity_predict"]
    assert m["accuracy"] == pytest.approx(0.6) and m["majority_accuracy"] == pytest.approx(0.4)
    assert m["confusion"].shape == (5, 5) and m["confusion"][0, 1] == 1 and m["confusion"].sum() == 5
    assert m["macro_f1"] == pytest.approx(np.mean([0.5, 2 / 3, 2 / 3]))


def test_quantile_rebinning_balances_classes():
    rng = np.random.default_rng(0)
    values = np.round(np.exp(rng.normal(3.5, 1.0, 5000)))  # most bookmarks fall in the first few fixed bins
    rep = rebin.rebin_report(values, BOOKMARK_EDGES)
    assert len(rep["counts_after"]) == len(rep["edges_after"]) + 1 <= 15
    assert np.all(np.diff(rep["edges_after"]) > 0) and rep["counts_after"].sum() == 5000
    assert rep["imbalance_after"]["norm_entropy"] > rep["imbalance_before"]["norm_entropy"]
    assert rep["imbalance_after"]["largest_share"] < rep["imbalance_before"]["largest_share"]
    assert rep["imbalance_after"]["empty_bins"] == 0
    # heavy ties: quantiles merge, edges stay strictly increasing and every bin is populated
    tied = np.array([1] * 80 + [2] * 10 + [3] * 10)
    edges = rebin.quantile_edges(tied, 10)
    assert edges.tolist() == [2.0, 3.0] and rebin.class_histogram(tied, edges).tolist() == [80, 10, 10]
    assert (to_bins(values, rep["edges_after"]) < 15).all()


def test_nan_guard_stops_the_multitask_step_and_restores_weights():
    from acg2vec_lab.models.pix2score import train as p2s
    from acg2vec_lab.train.guards import NaNGuard

    x, y = _toy_data(16)
    xf = x.astype(np.float32)
    xf[8:] = np.nan  # half the images poison the loss of whichever batch they land in
    guard = NaNGuard(snapshot_every=1, verbose=False)
    cfg = Pix2ScoreConfig(**{**TINY.__dict__, "epochs": 2})
    model, hist = p2s.train(cfg, xf.astype(np.float32), y, seed=0, callbacks=[guard])
    assert guard.triggered and len(guard.events) == 1 and guard.events[0]["loss"] == "nan"
    assert len(hist["loss"]) == 1  # stopped in the first epoch
    assert all(np.isfinite(w).all() for w in model.get_weights())  # rolled back to the last finite snapshot
