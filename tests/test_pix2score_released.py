"""Released Pix2Score weights through ``score --weights`` (issue 16), proven on files this package did not write.

``tests/independent/pix2score_original.py`` (run in a subprocess under ``TF_USE_LEGACY_KERAS=1``
with tf_keras, nothing from ``acg2vec_lab`` imported) builds upstream's ``pure_resnet`` (deepix_v4:
ResNet101V2 + three softmax heads) with random weights from a seed, saves ``00000200.h5`` with
Keras 2 ``save_weights``, writes the TF-Serving SavedModel wrapper, and predicts a few images with
its own preprocessing (``tf.io.decode_image``, bilinear resize to 224, ``/ 255``). Our loader and
``acg2vec-lab score --weights`` must give the same probabilities (PNG inputs: max |diff| <= 1e-5,
printed); wrong files (an original-written DeepDanbooru h5, a truncated copy, a wrong shape, NaN
statistics, random bytes) are errors naming the file and the first mismatch.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import acg2vec_lab  # noqa: F401  (before tensorflow)

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "independent" / "pix2score_original.py"
DD_WRITER = ROOT / "tests" / "independent" / "deepdanbooru_original.py"
HEADS = (("bookmark", "bookmark_predict", "bookmarkPredict"), ("view", "view_predict", "viewPredict"),
         ("sanity", "sanity_predict", "sanityPredict"))
TOL = 1e-5


def _legacy_env() -> dict[str, str]:
    return {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}


def _write_images(folder: Path) -> dict[str, Path]:
    """Two PNGs of other sizes and aspect ratios than 224x224 (the bilinear stretch is exercised) and
    a JPEG of the first (decoded by Pillow on our side, by TensorFlow on the original's)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:61, 0:97]
    smooth = np.stack([xx * 2.5, yy * 4.0, (xx + yy) * 1.6], -1)
    wide = np.clip(smooth + rng.normal(0, 25, smooth.shape), 0, 255).astype(np.uint8)
    tall = np.clip(rng.normal(128, 60, (301, 179, 3)), 0, 255).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"wide_png": folder / "wide.png", "tall_png": folder / "tall.png", "wide_jpeg": folder / "wide.jpg"}
    Image.fromarray(wide).save(paths["wide_png"])
    Image.fromarray(tall).save(paths["tall_png"])
    Image.fromarray(wide).save(paths["wide_jpeg"], quality=85)
    return paths


@pytest.fixture(scope="session")
def original(tmp_path_factory):
    """The original-written files and predictions, once per session (about a minute on 2 cores)."""
    base = tmp_path_factory.mktemp("pix2score_original")
    images = _write_images(base / "images")
    out = base / "out"
    proc = subprocess.run([sys.executable, str(WRITER), "--out", str(out), "--savedmodel", *map(str, images.values())],
                          env=_legacy_env(), capture_output=True, text=True, timeout=900, cwd=str(base))
    assert proc.returncode == 0, f"original pix2score writer failed:\n{proc.stderr[-3000:]}"
    meta = json.loads((out / "original.json").read_text())
    with np.load(out / "original.npz", allow_pickle=False) as z:
        meta["probs"] = {k: z[k] for k, _, _ in HEADS}
        meta["inputs"] = z["inputs"]
    meta["paths"] = images
    return meta


@pytest.fixture(scope="session")
def released_model(original):
    from acg2vec_lab.models.pix2score.released import load_released

    return load_released(original["weights"])


def _predict(model, paths):
    from acg2vec_lab.models.pix2score.api import image_file_b64
    from acg2vec_lab.models.pix2score.serving import predict_b64

    return predict_b64(model, [image_file_b64(p) for p in paths])


def _max_diff(ours: dict, original: dict, rows: list[int]) -> float:
    return max(float(np.abs(ours[head] - original[key][rows]).max()) for key, head, _ in HEADS)


@pytest.mark.slow
def test_original_file_is_keras2_weights_only(original):
    """The h5 really is tf_keras' weights-only layout of pure_resnet (no model config to read)."""
    assert original["keras_module"].startswith("tf_keras")
    assert original["params"] == 42_698_275
    assert original["layer_names"] == ["input", "resnet101v2", "bookmark_predict", "view_predict", "sanity_predict"]
    with h5py.File(original["weights"]) as f:
        assert "model_config" not in f.attrs and "layer_names" in f.attrs
        assert len(f["resnet101v2"].attrs["weight_names"]) == 542


@pytest.mark.slow
def test_h5_loader_matches_original(original, released_model):
    """load_released(00000200.h5) + the export's preprocessing == the original's predictions."""
    from acg2vec_lab.models.pix2score.api import image_file_b64
    from acg2vec_lab.models.pix2score.serving import preprocess_b64

    model, label = released_model
    assert label.startswith("released: ") and "weights h5" in label and str(original["weights"]) in label
    assert model.count_params() == original["params"]
    names = list(original["paths"])
    png = [i for i, n in enumerate(names) if n.endswith("png")]
    x = preprocess_b64([image_file_b64(original["paths"][names[i]]) for i in png]).numpy()
    d_in = float(np.abs(x - original["inputs"][png]).max())
    d_png = _max_diff(_predict(model, [original["paths"][names[i]] for i in png]), original["probs"], png)
    # the outputs differ between images far more than the tolerance: the comparison means something
    spread = float(np.abs(original["probs"]["bookmark"][png[0]] - original["probs"]["bookmark"][png[1]]).max())
    jpeg = names.index("wide_jpeg")
    x_jpeg = preprocess_b64([image_file_b64(original["paths"]["wide_jpeg"])]).numpy()
    levels = float(np.abs(x_jpeg - original["inputs"][[jpeg]]).max() * 255)
    d_jpeg = _max_diff(_predict(model, [original["paths"]["wide_jpeg"]]), original["probs"], [jpeg])
    print(f"\nPix2Score h5 vs original: PNG input max|diff| {d_in:.1e}, prob max|diff| {d_png:.1e} "
          f"(between-image spread {spread:.1e}); JPEG (Pillow vs TF decoder): input {levels:.2f} levels, "
          f"prob max|diff| {d_jpeg:.1e}")
    assert d_in <= 1e-6 and d_png <= TOL and spread > 100 * TOL
    assert levels <= 8 and d_jpeg <= 1e-3


@pytest.mark.slow
def test_savedmodel_loader_matches_original(original):
    """The TF-Serving folder (outputs pix2score, pix2score_1, pix2score_2) read without running its graph."""
    from acg2vec_lab.models.pix2score.released import load_released

    model, label = load_released(original["savedmodel"])
    assert "TF-Serving SavedModel (pix2score, pix2score_1, pix2score_2)" in label
    names = list(original["paths"])
    png = [i for i, n in enumerate(names) if n.endswith("png")]
    d = _max_diff(_predict(model, [original["paths"][names[i]] for i in png]), original["probs"], png)
    print(f"\nPix2Score SavedModel vs original: PNG prob max|diff| {d:.1e}")
    assert d <= TOL


@pytest.mark.slow
def test_score_cli_weights(original, tmp_path, capsys):
    """``score IMAGES --weights 00000200.h5``: the original's probabilities, README bin labels, a bad image
    skipped and reported (exit 1) while the others are scored."""
    from acg2vec_lab.cli import main
    from acg2vec_lab.models.pix2score.api import EDGES, readme_bin_labels

    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    paths = original["paths"]
    capsys.readouterr()
    code = main(["score", str(paths["wide_png"]), str(bad), str(paths["tall_png"]), "--weights", original["weights"]])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 1 and doc["untrained"] is False and doc["weights"].startswith("released: ")
    assert [s["image"] for s in doc["skipped"]] == [str(bad)] and "bad.png" in doc["skipped"][0]["error"]
    assert "bad.png" in captured.err
    names = list(paths)
    diffs = []
    for res, key in zip(doc["results"], ("wide_png", "tall_png")):
        assert res["image"] == str(paths[key])
        row = names.index(key)
        for orig_key, head, api_key in HEADS:
            want = original["probs"][orig_key][row]
            diffs.append(float(np.abs(np.asarray(res[api_key]) - want).max()))
            best = res["argmax"][api_key]
            assert best["bin"] == int(want.argmax()) and best["label"] == readme_bin_labels(EDGES[head])[best["bin"]]
    print(f"\nscore --weights vs original (6-decimal JSON): max|diff| {max(diffs):.1e}")
    assert max(diffs) <= TOL


@pytest.mark.slow
def test_wrong_h5_files_are_refused(original, tmp_path):
    """A DeepDanbooru h5 written by the original package, a truncated copy, a wrong shape and NaN statistics
    each give an error naming the file and what is wrong."""
    from acg2vec_lab.models.pix2score.released import Pix2ScoreWeightsError, load_released

    dd_out = tmp_path / "dd"
    img = original["paths"]["wide_png"]
    proc = subprocess.run([sys.executable, str(DD_WRITER), "--out", str(dd_out), "--filters", "8,8,8", "--height", "32",
                           "--width", "32", "--tags", "4", str(img)], env=_legacy_env(), capture_output=True,
                          text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    dd_h5 = json.loads((dd_out / "original.json").read_text())["model_file"]
    with pytest.raises(Pix2ScoreWeightsError, match=r"not the deepix_v4 Pix2Score weights: weight 'conv1_conv/kernel'"
                       r" \(7, 7, 3, 64\) is missing") as info:
        load_released(dd_h5)
    assert dd_h5 in str(info.value)

    src = Path(original["weights"])
    truncated = tmp_path / "truncated.h5"
    with open(src, "rb") as f:
        truncated.write_bytes(f.read(src.stat().st_size // 2))
    with pytest.raises(Pix2ScoreWeightsError, match="not a readable Keras weights h5") as info:
        load_released(truncated)
    assert str(truncated) in str(info.value)

    wrong = tmp_path / "wrong_shape.h5"
    shutil.copyfile(src, wrong)
    with h5py.File(wrong, "r+") as f:
        del f["sanity_predict/sanity_predict/kernel:0"]
        f["sanity_predict/sanity_predict"].create_dataset("kernel:0", data=np.zeros((2048, 10), np.float32))
    with pytest.raises(Pix2ScoreWeightsError, match=r"'sanity_predict/kernel' has shape \(2048, 10\).*\(2048, 5\)"):
        load_released(wrong)

    nan = tmp_path / "nan_stats.h5"
    shutil.copyfile(src, nan)
    with h5py.File(nan, "r+") as f:
        f["resnet101v2/post_bn/moving_variance:0"][3] = np.nan
    with pytest.raises(Pix2ScoreWeightsError, match=r"'post_bn/moving_variance' holds NaN") as info:
        load_released(nan)
    assert str(nan) in str(info.value)


def test_not_a_weights_file_is_refused(tmp_path, capsys):
    """Random bytes, a folder without saved_model.pb, a missing path and another model's SavedModel (written
    by ``tf.saved_model.save``): errors naming the path (``score`` exits 2 before reading any image)."""
    import tensorflow as tf

    from acg2vec_lab.cli import main
    from acg2vec_lab.models.pix2score.released import Pix2ScoreWeightsError, detect_format, load_released

    other = tf.Module()
    other.w = tf.Variable(tf.ones((3, 2)))
    other.serve = tf.function(lambda x: {"logits": tf.matmul(x, other.w)},
                              input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    tf.saved_model.save(other, str(tmp_path / "other"), signatures={"serving_default": other.serve})
    with pytest.raises(Pix2ScoreWeightsError, match=r"other: not the Pix2Score export \(outputs: logits"):
        load_released(tmp_path / "other")

    junk = tmp_path / "00000200.h5"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(Pix2ScoreWeightsError, match="not an HDF5 file"):
        detect_format(junk)
    (tmp_path / "folder").mkdir()
    with pytest.raises(Pix2ScoreWeightsError, match="without saved_model.pb"):
        detect_format(tmp_path / "folder")
    with pytest.raises(Pix2ScoreWeightsError, match="no such file"):
        detect_format(tmp_path / "missing.h5")
    capsys.readouterr()
    assert main(["score", str(tmp_path / "never_read.png"), "--weights", str(junk)]) == 2
    err = capsys.readouterr().err
    assert str(junk) in err and "not an HDF5 file" in err
