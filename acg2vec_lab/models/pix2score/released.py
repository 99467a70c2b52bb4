"""Released Pix2Score (``deepix_v4``) weights, read as plain arrays: no code from the file runs.

The format is told from the bytes on disk (never from the file name alone):

=========================  ===========================================================================
format                     what is read
=========================  ===========================================================================
Keras 2 weights h5         ``model.save_weights`` of ``pure_resnet`` (upstream ``train.py`` writes
                           ``model_weight_history/deepix_v4/{epoch:08d}.h5``): groups ``resnet101v2``
                           (542 arrays), ``bookmark_predict``, ``view_predict``, ``sanity_predict``;
                           a full-model h5 (``model.save``) is read from its ``model_weights`` group,
                           its ``model_config`` is never deserialised
TF-Serving SavedModel      the ``pix2score_base64_input`` export (``saved_model.pb`` + ``variables/``;
                           signature ``b64_input_bytes`` -> ``pix2score``, ``pix2score_1``,
                           ``pix2score_2``): the variables are read from the checkpoint by the names
                           of its object graph; the graph itself is never loaded nor run
=========================  ===========================================================================

Either way the arrays go into this package's own :func:`~acg2vec_lab.models.pix2score.model.build_pix2score`
at the deployed size (``configs/pix2score/full.json``: ``keras.applications.ResNet101V2`` at 224) after
every name and shape is checked (:func:`assign_released`): a file of another model (a DeepDanbooru h5,
a truncated download) is a :class:`Pix2ScoreWeightsError` naming the file and the first mismatch.
Preprocessing is the export's (:mod:`acg2vec_lab.models.pix2score.serving`: decode, bilinear stretch to
224x224, ``/ 255``), so ``score --weights`` prints what the deployed service returned.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.models.released import WeightsError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
TRUNK = "resnet101v2"  # the nested keras.applications model's name, as saved by upstream pure_resnet
#: The TF-Serving export's output names, in head order (bookmark, view, sanity).
SERVING_OUTPUTS = ("pix2score", "pix2score_1", "pix2score_2")
EXPECTED = ("a Pix2Score deepix_v4 weights file (Keras 2 save_weights .h5 of pure_resnet, e.g. 00000200.h5) or "
            "its TF-Serving SavedModel folder (saved_model.pb + variables/, outputs pix2score, pix2score_1, "
            "pix2score_2)")


class Pix2ScoreWeightsError(WeightsError):
    """``score --weights`` names something that is not released Pix2Score weights; names the file."""


@dataclasses.dataclass(frozen=True)
class ReleasedWeights:
    """The arrays of a released file keyed ``"<layer>/<weight>"`` (``"conv1_conv/kernel"``), and where they came from."""

    path: Path
    format: str
    arrays: dict[str, np.ndarray]


def detect_format(path: str | os.PathLike) -> str:
    """``"h5"`` or ``"savedmodel"`` from what is on disk; :class:`Pix2ScoreWeightsError` otherwise."""
    raw = Path(path)
    if not raw.exists():
        raise Pix2ScoreWeightsError(f"--weights {raw}: no such file or folder; expected {EXPECTED}")
    if raw.is_dir() or raw.name == "saved_model.pb":
        folder = raw if raw.is_dir() else raw.parent
        if not (folder / "saved_model.pb").is_file():
            raise Pix2ScoreWeightsError(f"--weights {folder}: a folder without saved_model.pb; expected {EXPECTED}")
        if not (folder / "variables" / "variables.index").is_file():
            raise Pix2ScoreWeightsError(f"--weights {folder}: a SavedModel without variables/variables.index "
                                        "(the weights); copy the whole export folder")
        return "savedmodel"
    try:
        with open(raw, "rb") as f:
            magic = f.read(8)
    except OSError as exc:
        raise Pix2ScoreWeightsError(f"--weights {raw}: cannot read the file ({exc.strerror or exc})") from exc
    if magic != HDF5_MAGIC:
        raise Pix2ScoreWeightsError(f"--weights {raw}: not an HDF5 file (first bytes {magic!r}) nor a SavedModel "
                                    f"folder; expected {EXPECTED}")
    return "h5"


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_h5_weights(path: str | os.PathLike) -> ReleasedWeights:
    """The arrays of a Keras 2 weights h5 (``layer_names`` / ``weight_names`` attributes), read with h5py only.

    A weight ``conv1_conv/kernel:0`` of group ``resnet101v2`` becomes key ``conv1_conv/kernel``. Raises
    :class:`Pix2ScoreWeightsError` naming the file for an unreadable or truncated file, a file without
    Keras layer groups, or a name stored twice.
    """
    import h5py

    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f  # model.save h5: weights in that group
            if "layer_names" not in root.attrs:
                raise Pix2ScoreWeightsError(f"--weights {path}: an HDF5 file without Keras layer groups (no "
                                            f"'layer_names' attribute); expected {EXPECTED}")
            version = _text(f.attrs.get("keras_version", root.attrs.get("keras_version", "?")))
            for layer in map(_text, root.attrs["layer_names"]):
                group = root[layer]
                for name in map(_text, group.attrs.get("weight_names", [])):
                    key = name.removesuffix(":0")
                    if key in arrays:
                        raise Pix2ScoreWeightsError(f"--weights {path}: weight {key!r} is stored twice "
                                                    f"(again in layer group {layer!r})")
                    arrays[key] = np.asarray(group[name])
    except (OSError, KeyError) as exc:  # h5py: truncated / corrupt file (OSError), a listed name absent (KeyError)
        raise Pix2ScoreWeightsError(f"--weights {path}: not a readable Keras weights h5 ({exc})") from exc
    return ReleasedWeights(path, f"Keras {version} weights h5", arrays)


def read_savedmodel_weights(folder: str | os.PathLike) -> ReleasedWeights:
    """The variables of a TF-Serving SavedModel, read from ``variables/`` by their object-graph names.

    ``saved_model.pb`` is parsed as a protobuf only to check the serving signature (its outputs
    :data:`SERVING_OUTPUTS`, or the plain model's head names); no graph is imported or run. Each
    variable's name is the ``full_name`` the checkpoint's own object graph records
    (``conv1_conv/kernel``). Raises :class:`Pix2ScoreWeightsError` naming the folder.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2, trackable_object_graph_pb2

    from acg2vec_lab.models.pix2score.model import HEAD_NAMES

    folder = Path(folder)
    if folder.name == "saved_model.pb":
        folder = folder.parent
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((folder / "saved_model.pb").read_bytes())
    except DecodeError as exc:
        raise Pix2ScoreWeightsError(f"--weights {folder}: saved_model.pb is not a SavedModel protobuf ({exc})") from exc
    outputs = [sorted(g.signature_def["serving_default"].outputs) for g in proto.meta_graphs
               if "serving_default" in g.signature_def]
    if not outputs or outputs[0] not in (sorted(SERVING_OUTPUTS), sorted(HEAD_NAMES)):
        got = ", ".join(outputs[0]) if outputs else "no serving_default signature"
        raise Pix2ScoreWeightsError(f"--weights {folder}: not the Pix2Score export (outputs: {got}; expected "
                                    f"{', '.join(SERVING_OUTPUTS)})")
    try:
        reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        arrays: dict[str, np.ndarray] = {}
        for node in graph.nodes:
            for attr in node.attributes:
                if attr.name == "VARIABLE_VALUE":
                    arrays[attr.full_name.removesuffix(":0")] = np.asarray(reader.get_tensor(attr.checkpoint_key))
    except (tf.errors.OpError, DecodeError, ValueError) as exc:
        raise Pix2ScoreWeightsError(f"--weights {folder}: cannot read variables/ ({exc})") from exc
    return ReleasedWeights(folder, f"TF-Serving SavedModel ({', '.join(outputs[0])})", arrays)


def read_released(path: str | os.PathLike) -> ReleasedWeights:
    """The arrays of released Pix2Score weights at ``path``, whichever of the two formats it is."""
    fmt = detect_format(path)
    return read_h5_weights(path) if fmt == "h5" else read_savedmodel_weights(path)


def model_weights(model: Any) -> dict[str, Any]:
    """Our model's variables keyed as the released files key them: ``"<layer>/<weight>"``, nested trunk flattened."""
    out: dict[str, Any] = {}
    for top in model.layers:
        for layer in getattr(top, "layers", None) or [top]:  # the trunk is a nested model: its layers' own names
            for var in layer.weights:
                out[f"{layer.name}/{var.name}"] = var
    return out


def assign_released(model: Any, released: ReleasedWeights) -> int:
    """Copy every released array into ``model`` after checking names, shapes and finiteness; returns the count.

    The first weight of the model (in layer order) that the file lacks or holds with another shape,
    else the first array of the file the model has no place for, else the first non-finite array,
    raises :class:`Pix2ScoreWeightsError` naming the file; nothing is assigned unless all pass.
    """
    targets = model_weights(model)
    have = released.arrays
    where = f"--weights {released.path} ({released.format})"
    for key, var in targets.items():
        want = tuple(var.shape)
        if key not in have:
            shown = ", ".join(sorted({k.split("/")[0] for k in have})[:6]) or "nothing"
            raise Pix2ScoreWeightsError(f"{where}: not the deepix_v4 Pix2Score weights: weight {key!r} {want} is "
                                        f"missing (the file holds layers {shown} ...); expected {EXPECTED}")
        if tuple(have[key].shape) != want:
            raise Pix2ScoreWeightsError(f"{where}: weight {key!r} has shape {tuple(have[key].shape)}, the deepix_v4 "
                                        f"model needs {want}")
    extra = [k for k in have if k not in targets]
    if extra:
        raise Pix2ScoreWeightsError(f"{where}: {len(extra)} weights the deepix_v4 model has no place for, first "
                                    f"{extra[0]!r}; expected {EXPECTED}")
    for key in targets:
        if not np.all(np.isfinite(have[key])):  # the upstream run's BN moving statistics went NaN (models.md 3.2)
            raise Pix2ScoreWeightsError(f"{where}: weight {key!r} holds NaN or infinite values")
    for key, var in targets.items():
        var.assign(have[key].astype(np.float32))
    return len(targets)


def load_released(path: str | os.PathLike) -> tuple[Any, str]:
    """Released Pix2Score weights in this package's deepix_v4 model; returns ``(model, weights label)``.

    The model is :func:`~acg2vec_lab.models.pix2score.model.build_pix2score` of the ``full`` config
    (ResNet101V2, input ``(N, 224, 224, 3)`` float32 RGB in [0, 1], NHWC; outputs bookmark 15, view 15,
    sanity 5 softmax), to be fed by :func:`~acg2vec_lab.models.pix2score.serving.predict_b64`.
    """
    released = read_released(path)  # read and check the file before building a 42.7M-parameter model
    from acg2vec_lab.config import load_config
    from acg2vec_lab.models.pix2score.model import build_pix2score

    model = build_pix2score(load_config("pix2score", variant="full"))
    assign_released(model, released)
    return model, f"released: {released.path} ({released.format})"
