"""ONNX export of the DeepDanbooru and JoyTag taggers: the exported graph computes the framework model's
probabilities at any batch size, a wrong export is refused before anything is written, the int8 form is
really quantised and stays close, and ``tag --weights FOLDER --precision int8`` runs it.

The framework models are random-init tiny models (the export is a property of the graph, not of training).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tiny_taggers import deepdanbooru, joytag, joytag_folder

from acg2vec_lab.models import onnx_export as OX


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = {}
    for name, make in (("deepdanbooru", deepdanbooru), ("joytag", joytag)):
        tagger = make()
        folder = tmp_path_factory.mktemp("onnx") / name
        out[name] = (tagger, folder, OX.export_tagger(tagger, folder, int8=True))
    return out


@pytest.mark.parametrize("name", ["deepdanbooru", "joytag"])
def test_export_matches_the_framework_model_at_any_batch(exported, name):
    tagger, folder, meta = exported[name]
    assert meta["format"] == OX.FORMAT and meta["tagger"] == name and meta["n_tags"] == len(tagger.tags)
    assert max(meta["parity_vs_framework"].values()) < OX.PARITY_ATOL
    onnx_tagger = OX.OnnxTagger(folder)
    assert onnx_tagger.tags == tagger.tags and onnx_tagger.categories == tagger.categories
    assert onnx_tagger.input_size == tagger.input_size
    for n in (2, 5):  # neither is a batch size the export probed: the batch dimension is dynamic
        x = OX.probe(meta["input_shape"], n, meta["layout"], seed=10 + n)
        np.testing.assert_allclose(onnx_tagger.predict(x), tagger.predict(x), atol=1e-4)
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8))
    np.testing.assert_array_equal(onnx_tagger.preprocess(im), tagger.preprocess(im))  # the tagger's own preprocessing


@pytest.mark.parametrize("name", ["deepdanbooru", "joytag"])
def test_int8_is_quantised_and_close(exported, name):
    import onnx

    tagger, folder, meta = exported[name]
    graph = onnx.load(str(folder / OX.INT8_FILE)).graph
    ops = {n.op_type for n in graph.node}
    assert ops & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}, ops
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)
    x = OX.probe(meta["input_shape"], 6, meta["layout"], seed=3)
    fp32, int8 = OX.OnnxTagger(folder).predict(x), OX.OnnxTagger(folder, "int8").predict(x)
    cost = OX.compare(fp32, int8, k=3)
    assert 0 < cost["max_abs_diff"] < 0.05, cost  # quantised (not the fp32 graph again), and close to it
    assert cost["top3_overlap"] >= 0.8, cost


def test_static_int8_from_calibration_images(exported, tmp_path):
    """With calibration images the int8 file is static QDQ (activation ranges fixed, no per-batch
    DynamicQuantizeLinear), says so in export.json, and stays close to fp32."""
    import onnx

    tagger, _, meta = exported["deepdanbooru"]
    calib = OX.probe(meta["input_shape"], 8, meta["layout"], seed=99)
    folder = tmp_path / "static"
    got = OX.export_tagger(tagger, folder, int8=True, calibration=calib)
    assert "static" in got["int8"]["activations"] and "8 calibration images" in got["int8"]["activations"]
    ops = {n.op_type for n in onnx.load(str(folder / OX.INT8_FILE)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "DynamicQuantizeLinear" not in ops, ops
    x = OX.probe(meta["input_shape"], 6, meta["layout"], seed=4)
    cost = OX.compare(OX.OnnxTagger(folder).predict(x), OX.OnnxTagger(folder, "int8").predict(x), k=3)
    # random tiny weights are touchy (measured 0.061); quantising every tensor collapsed every output to
    # one value (0.48, top-3 overlap 0.33): that is what these bounds catch
    assert 0 < cost["max_abs_diff"] < 0.1 and cost["top3_overlap"] >= 0.8, cost
    with pytest.raises(ValueError, match="no images"):
        OX.quantize_int8(folder / OX.MODEL_FILE, tmp_path / "x.onnx", calibration=calib[:0])


def test_a_wrong_export_is_refused_and_nothing_written(tmp_path, monkeypatch):
    import torch

    tagger = joytag()
    module, layout, shape = OX._torch_module(tagger)

    class Flipped(torch.nn.Module):  # a layout mistake: the image upside down
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, x):
            return self.inner(torch.flip(x, dims=[2]))

    monkeypatch.setattr(OX, "_torch_module", lambda t: (Flipped().eval(), layout, shape))
    with pytest.raises(OX.ExportError, match="differs from the model"):
        OX.export_tagger(tagger, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_compare_counts_changed_top_k():
    a = np.array([[0.9, 0.8, 0.1, 0.0], [0.9, 0.8, 0.1, 0.0]])
    b = np.array([[0.9, 0.8, 0.1, 0.0], [0.9, 0.1, 0.8, 0.0]])
    got = OX.compare(a, b, k=2)
    assert got["top2_unchanged"] == 0.5 and got["top2_overlap"] == 0.75
    assert got["max_abs_diff"] == pytest.approx(0.7)


def test_bad_folders_are_named(exported, tmp_path):
    import shutil

    from acg2vec_lab.models.released import detect_tagger

    _, folder, _ = exported["joytag"]
    assert detect_tagger(folder).model == "onnx_export"
    cut = tmp_path / "cut"
    shutil.copytree(folder, cut)
    data = (cut / OX.MODEL_FILE).read_bytes()
    (cut / OX.MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.onnx: onnxruntime cannot load"):
        OX.OnnxTagger(cut)
    (cut / OX.META_FILE).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="export.json: format"):
        OX.OnnxTagger(cut)
    shutil.copy(folder / OX.META_FILE, cut / OX.META_FILE)
    (cut / OX.TAGS_FILE).write_text("name,category\nonly,0\n")
    with pytest.raises(ValueError, match="1 tags, export.json says the model has 7"):
        OX.OnnxTagger(cut)
    (cut / OX.INT8_FILE).unlink()
    shutil.copy(folder / OX.TAGS_FILE, cut / OX.TAGS_FILE)
    with pytest.raises(FileNotFoundError, match="export with --int8"):
        OX.OnnxTagger(cut, "int8")


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "acg2vec_lab.cli", *argv, "--no-progress"], capture_output=True,
                          text=True, timeout=300)


def test_cli_export_then_tag_int8(tmp_path):
    """``export-onnx`` from a JoyTag folder in the released format (written with safetensors here), then
    ``tag --weights OUT --precision int8``: the tags of the int8 graph, one bad image skipped and reported."""
    src = joytag_folder(tmp_path / "joytag")
    out = tmp_path / "onnx-jt"
    p = _cli("export-onnx", str(out), "--weights", str(src), "--int8")
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout)["tagger"] == "joytag" and (out / OX.INT8_FILE).is_file()
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 30 + i, 3), 40 * i, np.uint8)).save(images / f"{i}.png")
    (images / "bad.png").write_bytes(b"not a png")
    p = _cli("tag", str(images), "--weights", str(out), "--precision", "int8", "--format", "json",
             "--general-threshold", "0.0")
    assert p.returncode == 1, p.stderr[-3000:]  # one bad file: reported, the rest tagged
    summary = json.loads(p.stdout)
    assert summary["failed"] == 1 and summary["tagged"] == 3 and "bad.png" in json.dumps(summary["errors"])
    assert summary["model"] == "joytag" and "int8" in summary["weights"]
    # threshold 0: every general tag of the int8 model is written for every image
    written = json.loads((images / "0.png.json").read_text())
    assert {f"j{i}" for i in range(7)} <= set(json.dumps(written).replace('"', " ").split())
    p = _cli("tag", str(images), "--weights", str(src), "--precision", "int8")
    assert p.returncode == 2 and "export-onnx" in p.stderr


def test_cli_static_int8_with_calibration_images(tmp_path):
    """``export-onnx --int8 --calibration DIR``: static int8 from that folder's images (a bad one skipped and
    named), recorded in export.json; ``--calibration`` without ``--int8`` is refused."""
    src = joytag_folder(tmp_path / "joytag")
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (36, 30, 3), dtype=np.uint8)).save(calib / f"{i}.png")
    (calib / "bad.png").write_bytes(b"nope")
    out = tmp_path / "onnx"
    p = _cli("export-onnx", str(out), "--weights", str(src), "--int8", "--calibration", str(calib),
             "--calibrate-method", "percentile")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "skipped" in p.stderr and "bad.png" in p.stderr
    meta = json.loads((out / OX.META_FILE).read_text())
    assert "static" in meta["int8"]["activations"] and "5 calibration images (percentile)" in meta["int8"]["activations"]
    p = _cli("export-onnx", str(tmp_path / "x"), "--weights", str(src), "--calibration", str(calib))
    assert p.returncode == 2 and "add --int8" in p.stderr
