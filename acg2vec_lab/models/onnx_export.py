"""ONNX export of the taggers (DeepDanbooru, JoyTag) with a dynamic batch, their int8 form, and the folder
that ``acg2vec-lab tag --weights`` reads back.

Users of both originals have long asked for ONNX files: onnxruntime runs them without TensorFlow or
PyTorch, on CPUs (with int8 VNNI kernels) and on GPUs. The export goes through PyTorch's exporter:

* **DeepDanbooru** (Keras): the weights move into the PyTorch port
  (:func:`~acg2vec_lab.models.deepdanbooru.torch_port.keras_to_torch`, checked stage by stage in notebook
  01), whose ``forward`` takes the Keras layout, so the ONNX file takes what
  :meth:`DeepDanbooruTagger.predict` takes, NHWC float32 in [0, 1], and returns its sigmoid probabilities;
* **JoyTag** (PyTorch): the model and a final sigmoid; NCHW, CLIP-normalised, as :class:`JoyTagTagger`.

The batch dimension is dynamic (``batch``); the spatial size is fixed at export (both models run at one
size). Before anything is written, the export is run by onnxruntime at two batch sizes on a seeded probe and
compared with the framework model; a difference above :data:`PARITY_ATOL` is an :class:`ExportError`. The
figures go in ``export.json``. The exporter is PyTorch's TorchScript-based one (``dynamo=False``): the
torch.export-based default needs ``onnxscript``, which this project does not install.

int8 (:func:`quantize_int8`): weights int8 per output channel; activations static (ranges from
calibration images: the fast path for the convolutional DeepDanbooru) or dynamic (no data; fine for
JoyTag's MatMuls, slow for convolutions); ``--precision int8`` picks it. What it costs is measured, not
assumed: :func:`compare` gives max |prob diff| and top-k agreement against fp32
(``benchmarks/onnx_precision.py`` prints them with the speed).

The folder (each file written atomically):

================  ===============================================================================
``model.onnx``     input ``images`` (batch dynamic), output ``probs`` ``(batch, n_tags)``
``model.int8.onnx`` (optional) the int8 form of ``model.onnx``
``tags.csv``       ``name,category``: one row per output column
``export.json``    ``format``, the tagger kind, its preprocessing, input layout and size, opset, source,
                   parity figures
================  ===============================================================================
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io import write_bytes, write_json, write_text

FORMAT = "acg2vec-lab-onnx-tagger/1"
MODEL_FILE, INT8_FILE, TAGS_FILE, META_FILE = "model.onnx", "model.int8.onnx", "tags.csv", "export.json"
PARITY_ATOL = 1e-4
OPSET = 17
PRECISIONS = ("fp32", "int8")


class ExportError(RuntimeError):
    """The exported graph does not compute what the framework model computes."""


def _torch_module(tagger: Any) -> tuple[Any, str, tuple[int, ...]]:
    """``(torch module giving probabilities, layout, one input's shape)`` for a DeepDanbooru or JoyTag tagger."""
    import torch

    if tagger.name == "deepdanbooru":
        h, w = tagger.input_size
        if tagger.framework == "torch":  # a TorchDeepDanbooru file: already the PyTorch model
            return tagger.model.eval(), "NHWC", (h, w, 3)
        from acg2vec_lab.models.deepdanbooru.torch_port import keras_to_torch

        return keras_to_torch(tagger.model).eval(), "NHWC", (h, w, 3)
    if tagger.name == "joytag":
        model = tagger.model

        class WithSigmoid(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.sigmoid(self.model(x))

        h, w = tagger.input_size
        return WithSigmoid().eval(), "NCHW", (3, h, w)
    raise ValueError(f"ONNX export covers the DeepDanbooru and JoyTag taggers, not {tagger.name!r}")


def _session(model: bytes | str | os.PathLike, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=options, providers=["CPUExecutionProvider"])


def probe(shape: Sequence[int], n: int, layout: str, seed: int = 0) -> np.ndarray:
    """A seeded probe batch in the model's input range: [0, 1] (DeepDanbooru) or CLIP-normalised (JoyTag)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    return x if layout == "NHWC" else (x - 0.45) / 0.27


def export_tagger(tagger: Any, folder: str | os.PathLike, int8: bool = False, opset: int = OPSET,
                  probe_batches: Sequence[int] = (1, 3), calibration: np.ndarray | None = None,
                  calibrate_method: str = "minmax") -> dict[str, Any]:
    """Export a DeepDanbooru or JoyTag tagger into ``folder`` (see the module doc); returns ``export.json``.
    ``int8``: also ``model.int8.onnx``, static with ``calibration`` images, dynamic without
    (:func:`quantize_int8`).

    Raises :class:`ExportError` (nothing written) when onnxruntime's output on the probe differs from the
    framework tagger's ``predict`` by more than :data:`PARITY_ATOL` at any of ``probe_batches``.
    """
    import torch

    module, layout, shape = _torch_module(tagger)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks, constant for a fixed size
        torch.onnx.export(module, (torch.from_numpy(probe(shape, 1, layout)),), buf, dynamo=False,
                          input_names=["images"], output_names=["probs"], opset_version=opset,
                          dynamic_axes={"images": {0: "batch"}, "probs": {0: "batch"}})
    data = _inline_identities(buf.getvalue())
    session = _session(data)
    parity = {}
    for n in probe_batches:
        x = probe(shape, n, layout, seed=n)
        got = session.run(["probs"], {"images": x})[0]
        want = np.asarray(tagger.predict(x), np.float32)
        if got.shape != want.shape:
            raise ExportError(f"{tagger.name}: the ONNX graph gives {got.shape} at batch {n}, the model {want.shape}")
        parity[f"batch{n}_max_abs_diff"] = float(np.max(np.abs(got - want)))
        if parity[f"batch{n}_max_abs_diff"] > PARITY_ATOL:
            raise ExportError(f"{tagger.name}: the ONNX graph differs from the model by "
                              f"{parity[f'batch{n}_max_abs_diff']:.3g} at batch {n} (allowed {PARITY_ATOL})")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "tagger": tagger.name, "layout": layout, "input_shape": list(shape),
            "preprocess": _preprocess_spec(tagger), "opset": opset, "source": getattr(tagger, "source", ""),
            "n_tags": len(tagger.tags), "parity_vs_framework": parity, "torch": torch.__version__}
    write_bytes(folder / MODEL_FILE, data)
    rows = io.StringIO()
    w = csv.writer(rows, lineterminator="\n")
    w.writerow(["name", "category"])
    w.writerows(zip(tagger.tags, tagger.categories))
    write_text(folder / TAGS_FILE, rows.getvalue())
    if int8:
        quantize_int8(folder / MODEL_FILE, folder / INT8_FILE, calibration, calibrate_method=calibrate_method)
        meta["int8"] = {"file": INT8_FILE, "weights": "int8 per output channel",
                        "activations": (f"uint8, static: ranges from {len(calibration)} calibration images "
                                        f"({calibrate_method})"
                                        if calibration is not None else "uint8, dynamic (per batch at run time)")}
    write_json(folder / META_FILE, meta)  # last: a folder without it is an interrupted export
    return meta


def _inline_identities(data: bytes) -> bytes:
    """The exporter shares equal weight tensors through ``Identity`` nodes; onnxruntime's quantiser wants
    every Conv / MatMul weight to be an initializer, so each shared one gets its own copy."""
    import onnx

    model = onnx.load_from_string(data)
    inits = {i.name: i for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits and node.output[0] not in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            model.graph.initializer.append(copy)
            inits[copy.name] = copy
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _preprocess_spec(tagger: Any) -> dict[str, Any]:
    if tagger.name == "deepdanbooru":
        return {"kind": "deepdanbooru", "mode": tagger.preprocess_mode}
    return {"kind": "joytag"}


CALIBRATE_METHODS = ("minmax", "percentile")


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, calibration: np.ndarray | None = None,
                  batch_size: int = 8, calibrate_method: str = "minmax") -> Path:
    """onnxruntime int8 quantisation of ``src`` into ``dst`` (atomically), int8 weights per output channel:

    * ``calibration`` given (preprocessed images, the model's input layout): **static** QDQ quantisation,
      activation ranges (uint8) fixed from those images by min/max; the convolutions then run as int8
      kernels (u8 x s8, VNNI / AVX2). Use images the model will not be evaluated on (a train split).
      ``calibrate_method``: how a range is read from the calibration activations (``minmax``: their
      extremes; ``percentile``: the 99.999th percentile), see ``benchmarks/onnx_precision.py`` for what
      each costs. (onnxruntime's entropy method gave minmax's figures to six digits here, unexplained, so
      it is not offered.)
    * ``calibration=None``: **dynamic** quantisation, activations quantised per batch at run time; no data
      needed, but onnxruntime's dynamic ``ConvInteger`` is slow on CPU (a convolutional network can run
      slower than fp32: ``benchmarks/onnx_precision.py``); it suits MatMul-heavy models (JoyTag's ViT)."""
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    class _Reader(CalibrationDataReader):
        def __init__(self, x: np.ndarray) -> None:
            self.batches = iter([x[i:i + batch_size] for i in range(0, len(x), batch_size)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            b = next(self.batches, None)
            return None if b is None else {"images": np.ascontiguousarray(b, dtype=np.float32)}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # one warning per int64 shape tensor it rightly leaves alone
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "int8.onnx"
            # int8 weights and uint8 activations: the u8 x s8 products VNNI (and AVX2) kernels compute
            if calibration is None:
                quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True)
            else:
                if len(calibration) == 0:
                    raise ValueError("int8 calibration: no images")
                if calibrate_method not in CALIBRATE_METHODS:
                    raise ValueError(f"calibrate_method {calibrate_method!r}: choose {', '.join(CALIBRATE_METHODS)}")
                # only the weight ops: quantising every tensor (the Adds, the pooled logits before the
                # sigmoid) collapsed the tiny DeepDanbooru's outputs to one value; Conv-only runs as fast
                # (onnxruntime fuses Q/DQ + Conv + Relu into QLinearConv)
                quantize_static(str(src), str(out), _Reader(np.asarray(calibration)), quant_format=QuantFormat.QDQ,
                                per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                                op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                                calibrate_method={"minmax": CalibrationMethod.MinMax,
                                                  "percentile": CalibrationMethod.Percentile}[calibrate_method])
            return write_bytes(dst, out.read_bytes())
    finally:
        root.setLevel(level)


def compare(reference: np.ndarray, other: np.ndarray, k: int = 10) -> dict[str, float]:
    """What a lower precision costs against fp32 on the same images: max |prob diff|, the share of images
    whose top-``k`` tags (as a set) are unchanged, and the mean overlap of the top-``k`` sets."""
    a, b = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    k = min(k, a.shape[1])
    ta, tb = np.argsort(-a, axis=1, kind="stable")[:, :k], np.argsort(-b, axis=1, kind="stable")[:, :k]
    overlap = np.array([len(set(x) & set(y)) / k for x, y in zip(ta, tb)])
    return {"max_abs_diff": float(np.max(np.abs(a - b))), f"top{k}_unchanged": float(np.mean(overlap == 1.0)),
            f"top{k}_overlap": float(overlap.mean())}


# ------------------------------------------------------------------------------------------ reading back

def is_export_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / META_FILE).is_file() and (p / MODEL_FILE).is_file()


class OnnxTagger:
    """An exported folder as a :class:`~acg2vec_lab.tagging.base.Tagger`: onnxruntime runs ``model.onnx``
    (or ``model.int8.onnx``), the preprocessing is the original tagger's, named in ``export.json``."""

    framework = "onnxruntime"
    providers = ("CPUExecutionProvider",)

    def __init__(self, folder: str | os.PathLike, precision: str = "fp32", threads: int | None = None,
                 source: str | None = None) -> None:
        folder = Path(folder)
        meta_path = folder / META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{meta_path}: not a readable export.json ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: choose {', '.join(PRECISIONS)}")
        model_path = folder / (INT8_FILE if precision == "int8" else MODEL_FILE)
        if not model_path.is_file():
            hint = " (export with --int8 to write it)" if precision == "int8" else ""
            raise FileNotFoundError(f"{model_path}: missing{hint}")
        self.tags, self.categories = _read_tags(folder / TAGS_FILE, int(meta.get("n_tags", -1)))
        try:
            self.session = _session(model_path, threads)
        except Exception as exc:
            raise ValueError(f"{model_path}: onnxruntime cannot load the model (truncated or corrupt file?): "
                             f"{type(exc).__name__}: {exc}") from exc
        self.meta, self.precision, self.model_path = meta, precision, model_path
        self.name = str(meta["tagger"])
        self.layout = meta["layout"]
        shape = meta["input_shape"]
        self.input_size = (int(shape[0]), int(shape[1])) if self.layout == "NHWC" else (int(shape[1]), int(shape[2]))
        self.source = source or f"exported ONNX ({precision}): {folder}"
        self.preprocess_mode = meta["preprocess"].get("mode", "deepdanbooru")

    def to(self, device: str) -> OnnxTagger:
        if str(device).startswith("cuda"):
            raise ValueError("the exported-ONNX tagger runs on onnxruntime's CPU provider here")
        return self

    def preprocess(self, image: Any) -> np.ndarray:
        if self.meta["preprocess"]["kind"] == "deepdanbooru":
            from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image

            return preprocess_image(image, self.input_size, self.preprocess_mode)
        from acg2vec_lab.models.joytag.preprocess import preprocess

        return preprocess(image, self.input_size[0])

    def loader(self, path: Any) -> Any:
        """A file as :meth:`preprocess` wants it (DeepDanbooru's exact mode: the encoded bytes)."""
        if self.meta["preprocess"]["kind"] == "deepdanbooru":
            from acg2vec_lab.models.deepdanbooru.tagger import load_for_mode

            return load_for_mode(path, self.preprocess_mode)
        from acg2vec_lab.data import load_image

        return load_image(path)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, len(self.tags)), np.float32)
        return np.asarray(self.session.run(["probs"], {"images": x})[0], np.float32)

    def unload(self) -> None:
        self.session = None


def _read_tags(path: Path, n_tags: int) -> tuple[list[str], list[int]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the tag list ({exc})") from exc
    try:
        tags, cats = [r["name"] for r in rows], [int(r["category"]) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: expected the columns name,category with integer categories ({exc})") from exc
    if n_tags >= 0 and len(tags) != n_tags:
        raise ValueError(f"{path}: {len(tags)} tags, export.json says the model has {n_tags} outputs")
    return tags, cats


__all__ = ["export_tagger", "quantize_int8", "compare", "probe", "OnnxTagger", "is_export_folder", "ExportError",
           "FORMAT", "MODEL_FILE", "INT8_FILE", "TAGS_FILE", "META_FILE", "PRECISIONS"]
