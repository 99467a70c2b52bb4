"""SmilingWolf's WD14 / wd-v3 ONNX taggers as a :class:`~acg2vec_lab.tagging.base.Tagger`.

The released format is a folder (a Hugging Face snapshot of ``SmilingWolf/wd-*-tagger-v3`` or the older
``wd-v1-4-*-tagger-v2``) holding:

* ``model.onnx``: input NHWC float32 ``(batch, S, S, 3)`` (``S`` = 448 for the released models, read
  from the model), **BGR**, values 0-255, no normalisation, dynamic batch; output ``(batch, n_tags)``
  sigmoid probabilities (the released graphs end in the sigmoid);
* ``selected_tags.csv``: ``tag_id,name,category,count``, one row per output column; category 9 =
  rating, 0 = general, 4 = character.

Preprocessing follows the wd-tagger Space: the image (RGBA) is composited on white, padded to a
centred white square, resized with PIL bicubic to ``S`` (only when the square is not already ``S``),
flipped RGB -> BGR, float32. The rating tags (``general``, ``sensitive``, ``questionable``,
``explicit``) are named ``rating:<name>`` here (the package's spelling, :mod:`~acg2vec_lab.tagging.categories`);
:attr:`WD14Tagger.csv_names` keeps the file's spelling.

Thresholds: the package's defaults (general 0.35, character 0.85) are the Space's. MCut
(:func:`mcut_threshold`, the midpoint of the largest gap between the sorted probabilities) is per
image: :func:`mcut_policy` turns one image's probabilities into a
:class:`~acg2vec_lab.tagging.thresholds.ThresholdPolicy` (general: the MCut of the general tags,
character: ``max(0.15, MCut)`` of the character tags). The Space keeps ``p > threshold`` where
:func:`~acg2vec_lab.tagging.thresholds.select_tags` keeps ``p >= threshold``; an MCut threshold lies
strictly between two distinct probabilities, so the two agree unless every probability is equal.

:meth:`WD14Tagger.embed` returns the pooled features that feed the final dense layer (what imgutils
calls the WD14 embedding; L2-normalise them before indexing): the input tensor of the last
``MatMul``/``Gemm`` before the output is added as an extra graph output, in memory (the user's
``model.onnx`` is never written).

onnxruntime and onnx are imported inside the functions that need them.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.tagging.categories import CATEGORY_RATING
from acg2vec_lab.tagging.thresholds import (  # noqa: F401  (MCut re-exported)
    MCUT_CHARACTER_FLOOR,
    ThresholdPolicy,
    mcut_policy,
    mcut_threshold,
)

MODEL_FILE = "model.onnx"
TAGS_FILE = "selected_tags.csv"
CSV_COLUMNS = ("tag_id", "name", "category", "count")
DEFAULT_GENERAL_THRESHOLD = 0.35
DEFAULT_CHARACTER_THRESHOLD = 0.85

_PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "gpu": "CUDAExecutionProvider"}


# ------------------------------------------------------------------------------------------ files

@dataclasses.dataclass(frozen=True)
class SelectedTags:
    """``selected_tags.csv``: ``tags`` (package spelling), ``categories``, ``csv_names`` (the file's)."""

    tags: list[str]
    categories: list[int]
    csv_names: list[str]


def read_selected_tags(path: str | os.PathLike) -> SelectedTags:
    """Read ``selected_tags.csv``; a missing column or a bad row is a ``ValueError`` naming the file and line.

    Every row needs the four columns ``tag_id,name,category,count``, a non-empty name and an integer
    category. Rating rows (category 9) get the ``rating:`` prefix unless they already have it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (a WD14 folder holds {MODEL_FILE} and {TAGS_FILE})")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: empty file; expected the header {','.join(CSV_COLUMNS)}")
    header = [h.strip() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} in the header {','.join(header)!r}; "
                         f"expected {','.join(CSV_COLUMNS)}")
    col = {c: header.index(c) for c in CSV_COLUMNS}
    tags, cats, names = [], [], []
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line}: {len(row)} fields, the header has {len(header)} ({row!r})")
        name = row[col["name"]].strip()
        if not name:
            raise ValueError(f"{path}: line {line}: empty tag name")
        try:
            cat = int(row[col["category"]])
        except ValueError:
            raise ValueError(f"{path}: line {line}: category {row[col['category']]!r} is not an integer") from None
        names.append(name)
        cats.append(cat)
        tags.append(f"rating:{name}" if cat == CATEGORY_RATING and not name.startswith("rating:") else name)
    if not tags:
        raise ValueError(f"{path}: no tag rows")
    return SelectedTags(tags, cats, names)


def is_wd14_folder(path: str | os.PathLike) -> bool:
    """True for a folder holding ``selected_tags.csv`` (the WD14 tag file; the model must be ``model.onnx``
    beside it), or for a ``model.onnx`` file with a ``selected_tags.csv`` beside it. Cheap: nothing is read."""
    p = Path(path)
    if p.is_file():
        return p.suffix == ".onnx" and (p.parent / TAGS_FILE).is_file()
    return p.is_dir() and (p / TAGS_FILE).is_file()


# ------------------------------------------------------------------------------------ preprocessing

def wd14_preprocess(image: Any, size: int) -> np.ndarray:
    """One PIL image (any mode) -> ``(size, size, 3)`` float32 BGR in [0, 255], as the wd-tagger Space.

    Alpha is composited on white, the image padded to a centred white square (left/top pad =
    ``(side - w) // 2``), resized with bicubic when the side is not ``size``, then RGB -> BGR.
    """
    from PIL import Image

    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    rgb = canvas.convert("RGB")
    w, h = rgb.size
    side = max(w, h)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(rgb, ((side - w) // 2, (side - h) // 2))
    if side != size:
        square = square.resize((size, size), Image.BICUBIC)
    arr = np.asarray(square, dtype=np.float32)
    return np.ascontiguousarray(arr[:, :, ::-1])


# MCut lives in acg2vec_lab.tagging.thresholds (any tagger can use it); re-exported here.


# ------------------------------------------------------------------------------------------- graph

def _constant_tensors(graph: Any) -> set[str]:
    """Initializers and outputs of nodes fed only by constants (a Cast / DequantizeLinear of weights)."""
    const = {t.name for t in graph.initializer}
    for node in graph.node:  # ONNX graphs are topologically sorted
        inputs = [i for i in node.input if i]
        if node.op_type == "Constant" or (inputs and all(i in const for i in inputs)):
            const.update(o for o in node.output if o)
    return const


def find_embedding_tensor(graph: Any, output_name: str) -> str:
    """The input tensor of the last ``MatMul``/``Gemm`` before ``output_name`` in an ONNX ``GraphProto``.

    Walks back from the output (breadth first) to the nearest ``MatMul``/``Gemm`` and returns its
    non-constant operand (the pooled features; the other one is the dense layer's weight).
    """
    producer = {o: n for n in graph.node for o in n.output if o}
    const = _constant_tensors(graph)
    seen: set[str] = set()
    queue = deque([output_name])
    while queue:
        name = queue.popleft()
        if name in seen or name in const:
            continue
        seen.add(name)
        node = producer.get(name)
        if node is None:
            continue
        if node.op_type in ("MatMul", "Gemm"):
            data = [i for i in node.input[:2] if i and i not in const]
            if data:
                return data[0]
        queue.extend(i for i in node.input if i)
    raise ValueError(f"no MatMul/Gemm (the final dense layer) found before the output {output_name!r}")


def _providers(requested: Any, available: Sequence[str]) -> list[Any]:
    """``None`` -> CPU; names (``"cpu"``/``"cuda"`` aliases allowed) or ``(name, options)`` pairs, each available."""
    if requested is None:
        return ["CPUExecutionProvider"]
    def is_pair(item: Any) -> bool:  # ("CUDAExecutionProvider", {"device_id": 0})
        return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict)

    if isinstance(requested, str) or is_pair(requested):
        requested = [requested]
    out = []
    for item in requested:
        name, opts = (item[0], item[1]) if is_pair(item) else (item, None)
        name = _PROVIDER_ALIASES.get(str(name).lower(), str(name))
        if name not in available:
            hint = " (install onnxruntime-gpu in place of onnxruntime, with CUDA and cuDNN)" if "CUDA" in name else ""
            raise ValueError(f"onnxruntime execution provider {name} is not available{hint}; "
                             f"available: {', '.join(available)}")
        out.append((name, opts) if opts is not None else name)
    return out


def providers_for_device(device: str | None, available: Sequence[str] | None = None) -> list[Any]:
    """The ``providers`` of :func:`load_wd14_tagger` for a device request (the commands' ``--device``).

    ``cpu`` -> CPU; ``cuda`` / ``gpu`` / ``cuda:N`` -> CUDA on device N (loading then fails when this
    onnxruntime has no CUDA provider); ``auto`` / ``None`` -> CUDA when onnxruntime offers it, else CPU.
    """
    from acg2vec_lab.device import DeviceError, normalise

    try:  # the package's one spelling of device requests (gpu -> cuda, cuda:N)
        name = normalise(device or "auto")
    except DeviceError as exc:
        raise ValueError(str(exc)) from None
    base, _, index = name.partition(":")
    if base == "auto":
        if available is None:
            import onnxruntime as ort

            available = ort.get_available_providers()
        base = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if base == "cpu":
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)})]


# ------------------------------------------------------------------------------------------ tagger

class WD14Tagger:
    """A WD14 / wd-v3 ONNX model with its tag list.

    ``preprocess`` gives ``(S, S, 3)`` BGR 0-255 float32; ``predict`` ``(N, n_tags)`` probabilities;
    ``embed`` ``(N, D)`` pooled features; ``predict_and_embed`` both from one pass.

    Args:
        session: an ``onnxruntime.InferenceSession`` of ``model_path``.
        tags, categories: vocabulary (index = output column) and category codes.
        model_path: the ``model.onnx`` (re-read by onnx for the embedding output).
        csv_names: the tag names as ``selected_tags.csv`` spells them (default: ``tags``).
        providers: the execution providers the session was created with (the embedding session too).
        source: the weights label shown in reports.
    """

    name = "wd14"
    framework = "onnxruntime"

    def __init__(self, session: Any, tags: Sequence[str], categories: Sequence[int], model_path: str | os.PathLike,
                 csv_names: Sequence[str] | None = None, providers: Sequence[Any] | None = None,
                 source: str = "", sess_options: Any = None) -> None:
        self.model_path = Path(model_path)
        inp = session.get_inputs()
        if len(inp) != 1:
            raise ValueError(f"{self.model_path}: {len(inp)} inputs, a WD14 model has one")
        shape = list(inp[0].shape)
        if (len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2]
                or inp[0].type != "tensor(float)"):
            raise ValueError(f"{self.model_path}: input {inp[0].name!r} is {inp[0].type} of shape {shape}; a WD14 "
                             f"model takes NHWC float32 (batch, S, S, 3) with a fixed square size S")
        outs = session.get_outputs()
        width = outs[0].shape[-1] if outs[0].shape else None
        if isinstance(width, int) and width != len(tags):
            raise ValueError(f"{self.model_path}: the model has {width} outputs but {self.model_path.parent / TAGS_FILE} "
                             f"lists {len(tags)} tags")
        if len(categories) != len(tags):
            raise ValueError(f"{len(categories)} categories for {len(tags)} tags")
        self._session = session
        self._sess_options = sess_options
        self._input_name = inp[0].name
        self._output_name = outs[0].name
        self._embedding_name: str | None = None
        self.tags = list(tags)
        self.categories = [int(c) for c in categories]
        self.csv_names = list(csv_names) if csv_names is not None else list(self.tags)
        self.input_size = (int(shape[1]), int(shape[2]))
        self.providers = list(providers) if providers is not None else list(session.get_providers())
        self.source = source

    # -------------------------------------------------------------- Tagger protocol
    def preprocess(self, image: Any) -> np.ndarray:
        """PIL image -> ``(S, S, 3)`` float32 BGR 0-255 (white composite and square pad, bicubic)."""
        return wd14_preprocess(image, self.input_size[0])

    def _check_batch(self, batch: Any) -> np.ndarray:
        x = np.asarray(batch, dtype=np.float32)
        s = self.input_size[0]
        if x.ndim != 4 or x.shape[1:] != (s, s, 3):
            hint = " (NCHW? this model takes NHWC)" if x.ndim == 4 and x.shape[1] == 3 else ""
            raise ValueError(f"{self.model_path}: input batch of shape {x.shape}{hint}; expected NHWC "
                             f"(N, {s}, {s}, 3) from preprocess()")
        return np.ascontiguousarray(x)

    def _run(self, names: list[str], batch: Any) -> list[np.ndarray]:
        if self._session is None:
            raise RuntimeError(f"{self.model_path}: the tagger was unloaded")
        return self._session.run(names, {self._input_name: self._check_batch(batch)})

    def _checked_probs(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim != 2 or probs.shape[1] != len(self.tags):
            raise ValueError(f"{self.model_path}: the model returned shape {probs.shape} but "
                             f"{self.model_path.parent / TAGS_FILE} lists {len(self.tags)} tags")
        return probs

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` float32 BGR 0-255 -> ``(N, n_tags)`` probabilities; any N."""
        return self._checked_probs(self._run([self._output_name], batch)[0])

    # -------------------------------------------------------------- embedding
    @property
    def embedding_tensor(self) -> str:
        """The name of the graph tensor :meth:`embed` returns (found on first use)."""
        self._ensure_embedding()
        return self._embedding_name

    def _ensure_embedding(self) -> None:
        """Re-create the session with the dense layer's input as an extra output (once, in memory)."""
        if self._embedding_name is not None:
            return
        if self._session is None:
            raise RuntimeError(f"{self.model_path}: the tagger was unloaded")
        import onnx
        import onnxruntime as ort

        try:
            model = onnx.load(str(self.model_path))
        except Exception as exc:
            raise ValueError(f"{self.model_path}: onnx cannot read the model ({type(exc).__name__}: {exc})") from exc
        try:
            name = find_embedding_tensor(model.graph, self._output_name)
        except ValueError as exc:
            raise ValueError(f"{self.model_path}: {exc}; no embedding to return") from exc
        if name not in {o.name for o in model.graph.output}:
            model.graph.output.append(onnx.ValueInfoProto(name=name))  # type and shape inferred by onnxruntime
        session = ort.InferenceSession(model.SerializeToString(), sess_options=self._sess_options,
                                       providers=self.providers)
        del model
        self._session, self._embedding_name = session, name

    def predict_and_embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities (N, n_tags), embeddings (N, D))`` from one pass."""
        self._ensure_embedding()
        probs, emb = self._run([self._output_name, self._embedding_name], batch)
        return self._checked_probs(probs), np.asarray(emb, dtype=np.float32).reshape(len(probs), -1)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` preprocessed images -> ``(N, D)`` float32 features before the final dense layer
        (not normalised; L2-normalise them for cosine search)."""
        self._ensure_embedding()
        emb = self._run([self._embedding_name], batch)[0]
        return np.asarray(emb, dtype=np.float32).reshape(len(emb), -1)

    # -------------------------------------------------------------- helpers
    def ratings(self, probs: Any) -> dict[str, float]:
        """The rating block of one image's probabilities, ``{tag: score}`` (the Space's rating dict)."""
        p = np.asarray(probs, dtype=np.float64)
        return {t: float(p[i]) for i, (t, c) in enumerate(zip(self.tags, self.categories)) if c == CATEGORY_RATING}

    def rating(self, probs: Any) -> str | None:
        """The arg-max rating tag of one image (``None`` when the model has no rating tags)."""
        r = self.ratings(probs)
        return max(r, key=r.get) if r else None

    @staticmethod
    def default_policy(**overrides: Any) -> ThresholdPolicy:
        """The Space's thresholds: general 0.35, character 0.85."""
        return ThresholdPolicy(general=DEFAULT_GENERAL_THRESHOLD, character=DEFAULT_CHARACTER_THRESHOLD, **overrides)

    def unload(self) -> None:
        """Drop the onnxruntime session so its memory can be released."""
        self._session = None

    def __repr__(self) -> str:
        return f"<WD14Tagger {self.model_path} {len(self.tags)} tags {self.input_size} {self.providers}>"


def load_wd14_tagger(folder: str | os.PathLike, providers: Any = None, source: str | None = None,
                     threads: int | None = None) -> WD14Tagger:
    """A WD14 / wd-v3 tagger from its folder (``model.onnx`` + ``selected_tags.csv``).

    Args:
        folder: the model folder, or its ``model.onnx`` (``selected_tags.csv`` beside it).
        providers: onnxruntime execution providers; ``None`` = ``["CPUExecutionProvider"]``. ``"cuda"``
            (or ``"CUDAExecutionProvider"``) asks for the GPU: when this onnxruntime has no CUDA
            provider, or the session could not enable it, that is an error (never a silent CPU fallback).
        source: the weights label shown in reports (default ``released: <model.onnx>``).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).
    """
    p = Path(folder)
    if p.is_file() and p.suffix == ".onnx":
        model_path, folder = p, p.parent
    else:
        folder = p
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (a WD14 folder holds {MODEL_FILE} and {TAGS_FILE})")
        model_path = folder / MODEL_FILE
    tags_path = folder / TAGS_FILE
    for f in (model_path, tags_path):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (a WD14 folder holds {MODEL_FILE} and {TAGS_FILE})")
    selected = read_selected_tags(tags_path)
    if model_path.stat().st_size == 0:
        raise ValueError(f"{model_path}: empty file (an interrupted download?)")

    import onnxruntime as ort

    wanted = _providers(providers, ort.get_available_providers())
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    try:
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=wanted)
    except Exception as exc:
        hint = " (truncated or corrupt file? download it again)" if "protobuf" in str(exc).lower() else ""
        raise ValueError(f"{model_path}: onnxruntime cannot load the model{hint}: {type(exc).__name__}: {exc}") from exc
    got = session.get_providers()
    lost = [w[0] if isinstance(w, tuple) else w for w in wanted]
    lost = [w for w in lost if w not in got]
    if lost:
        raise ValueError(f"{model_path}: onnxruntime could not enable {', '.join(lost)} (the session runs on "
                         f"{', '.join(got)}); check the CUDA/cuDNN libraries onnxruntime-gpu needs")
    return WD14Tagger(session, selected.tags, selected.categories, model_path, csv_names=selected.csv_names,
                      providers=wanted, source=source or f"released: {model_path}", sess_options=options)


__all__ = ["WD14Tagger", "SelectedTags", "load_wd14_tagger", "read_selected_tags", "is_wd14_folder",
           "wd14_preprocess", "mcut_threshold", "mcut_policy", "find_embedding_tensor", "providers_for_device",
           "MODEL_FILE", "TAGS_FILE"]
