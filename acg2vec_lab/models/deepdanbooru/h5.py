"""Keras files of DeepDanbooru models: the legacy Keras 2 ``.h5`` (read with h5py by topology, any
Keras version) and ``.keras`` archives (``safe_mode=True``). Both are checked against the built-in
layer allow-list before anything reads them (:func:`acg2vec_lab.io_safety.check_keras_config`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io_safety import (
    UnsafeModelFile,
    check_keras_config,
    keras_file_config,
    parse_json_text,
)
from acg2vec_lab.models.deepdanbooru.canonical import (
    BN_NAMES,
    LoadError,
    _units,
    keras_canonical,
    set_keras_canonical,
)
from acg2vec_lab.models.deepdanbooru.tf_model import Topology, config_from_topology, topology

# ---------------------------------------------------------------------------------------------
# legacy h5
# ---------------------------------------------------------------------------------------------

def _attr_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


HDF5_OBJECT_HEADER_LIMIT = 64512  # bytes; larger attribute arrays are split into name0, name1, ... (as Keras does)


def _read_attr_list(group, name: str) -> list[str] | None:
    """A list attribute, whole or in Keras' chunks ``name0``, ``name1``, ...; None if absent."""
    if name in group.attrs:
        return [_attr_str(v) for v in group.attrs[name]]
    if f"{name}0" not in group.attrs:
        return None
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out += [_attr_str(v) for v in group.attrs[f"{name}{i}"]]
        i += 1
    return out


def _write_attr_list(group, name: str, values: list[str]) -> None:
    data = np.array([v.encode("utf-8") for v in values], dtype="S") if values else np.array([], dtype="S1")
    chunks = 1
    while data.nbytes / chunks > HDF5_OBJECT_HEADER_LIMIT:
        chunks += 1
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, part in enumerate(np.array_split(data, chunks)):
            group.attrs[f"{name}{i}"] = part


@dataclasses.dataclass
class H5Contents:
    topology: Topology
    weights: dict[str, dict[str, Any]]
    keras_version: str
    stored_dtype: str
    model_config: dict


def read_legacy_h5(path: str | Path) -> H5Contents:
    """Read a legacy-format Keras h5 DeepDanbooru model with h5py (float16 is cast to float32)."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise LoadError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        if "model_config" not in f.attrs:
            raise LoadError(f"{path}: no 'model_config' attribute (not a full legacy Keras model file)")
        config = parse_json_text(_attr_str(f.attrs["model_config"]), path, LoadError, "model_config", expect=dict)
        try:
            check_keras_config(config, path)  # a Lambda / custom layer is refused before anything else
        except UnsafeModelFile as exc:
            raise LoadError(str(exc)) from exc
        group = f["model_weights"] if "model_weights" in f else f
        layer_names = _read_attr_list(group, "layer_names")
        if layer_names is None:
            raise LoadError(f"{path}: no 'layer_names' attribute in model_weights")
        try:
            top = topology(config)
        except ValueError as exc:
            raise LoadError(f"{path}: {exc}") from exc
        dtypes = set()

        def layer_weights(layer: str) -> dict[str, np.ndarray]:
            if layer not in layer_names or layer not in group:
                raise LoadError(f"{path}: layer {layer!r} has no weights in the file (model_weights/{layer} missing)")
            g = group[layer]
            names = _read_attr_list(g, "weight_names") or []
            out = {}
            for n in names:
                short = n.split("/")[-1].split(":")[0]
                ds = g[n]
                dtypes.add(str(ds.dtype))
                out[short] = np.asarray(ds[()], dtype=np.float32)
            return out

        weights: dict[str, dict[str, Any]] = {}
        for key, (conv, bn) in _units(top).items():
            cw = layer_weights(conv)
            if "kernel" not in cw:
                raise LoadError(f"{path}: layer {conv!r} ({key}) has no kernel; weight names {sorted(cw)}")
            unit: dict[str, Any] = {"kernel": cw["kernel"], "bias": cw.get("bias"), "bn": None}
            if bn is not None:
                bw = layer_weights(bn)
                lacking = [k for k in BN_NAMES if k not in bw]
                if lacking:
                    raise LoadError(f"{path}: BatchNormalization layer {bn!r} ({key}) lacks {lacking}")
                unit["bn"] = {k: bw[k] for k in BN_NAMES}
            weights[key] = unit
        version = _attr_str(f.attrs.get("keras_version", "unknown"))
    return H5Contents(top, weights, version, ",".join(sorted(dtypes)), config)


def _keras2_layer_config(layer_cfg: dict) -> dict:
    """A Keras-2-style entry (nested-list inbound nodes, ``batch_input_shape``) from a Keras 3 one."""
    from acg2vec_lab.models.deepdanbooru.tf_model import _inbound_names

    conf = dict(layer_cfg["config"])
    if layer_cfg["class_name"] == "InputLayer":
        conf["batch_input_shape"] = conf.pop("batch_shape")
    if isinstance(conf.get("dtype"), dict):
        conf["dtype"] = conf["dtype"].get("config", {}).get("name", "float32")
    nodes = [[[n, 0, 0, {}] for n in _inbound_names(node)] for node in layer_cfg.get("inbound_nodes", [])]
    return {"class_name": layer_cfg["class_name"], "config": conf, "name": layer_cfg["name"], "inbound_nodes": nodes}


def write_legacy_h5(model, path: str | Path, dtype: str = "float32", layer_order: list[str] | None = None,
                    keras_version: str = "2.10.0") -> Path:
    """Write ``model`` in the Keras 2 legacy h5 layout (what DeepDanbooru releases look like).

    Root attrs ``keras_version``, ``backend``, ``model_config`` (Keras 2 JSON); group ``model_weights``
    with ``layer_names`` (``layer_order`` or the model's order) and per layer ``weight_names`` like
    ``conv2d/kernel:0``, datasets stored as ``dtype`` (``float16`` mimics a mixed-precision export).
    """
    import h5py

    path = Path(path)
    cfg = model.get_config()
    k2 = {"class_name": "Functional", "config": {
        "name": cfg.get("name", "model"),
        "layers": [_keras2_layer_config(lc) for lc in cfg["layers"]],
        "input_layers": cfg.get("input_layers"), "output_layers": cfg.get("output_layers")}}
    names = layer_order or [layer.name for layer in model.layers]
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = keras_version
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(k2)  # variable-length string: no 64 KB header limit
        g = f.create_group("model_weights")
        _write_attr_list(g, "layer_names", names)
        g.attrs["backend"] = "tensorflow"
        g.attrs["keras_version"] = keras_version
        for name in names:
            layer = model.get_layer(name)
            lg = g.create_group(name)
            wnames = []
            for var in layer.weights:
                short = var.path.split("/")[-1]
                wn = f"{name}/{short}:0"
                lg.create_dataset(wn, data=np.asarray(var.numpy()).astype(dtype))
                wnames.append(wn)
            _write_attr_list(lg, "weight_names", wnames)
    return path


def load_h5_model(path: str | Path, image_size: int | None = None):
    """Our Keras model rebuilt from a legacy h5 (architecture inferred from the graph) with its weights.

    The input size is ``image_size`` if given, else the file's; a file saved with a flexible
    ``(None, None, 3)`` input gives a flexible model (``cfg.image_size`` then defaults to 512).
    """
    from acg2vec_lab.models.deepdanbooru.tf_model import build_model

    contents = read_legacy_h5(path)
    kwargs = {"image_size": image_size} if image_size else {}
    cfg = config_from_topology(contents.topology, **kwargs)
    flexible = not image_size and not (contents.topology.input_shape and contents.topology.input_shape[0])
    model = build_model(cfg, init="zeros", input_shape=(None, None, 3) if flexible else None)
    set_keras_canonical(model, contents.weights, source=contents.topology)
    return model, cfg


def load_keras_file(path: str | Path, image_size: int | None = None):
    """Our Keras model from a Keras 3 ``.keras`` file (read by Keras, weights mapped by topology).

    The file's architecture is checked first (:func:`acg2vec_lab.io_safety.check_keras_config`: a
    ``Lambda`` or non-built-in layer is refused with a :class:`LoadError` naming the file and the
    layer), then Keras reads it with ``safe_mode=True``; any Keras failure is a :class:`LoadError`
    naming the file.
    """
    import keras

    from acg2vec_lab.models.deepdanbooru.tf_model import build_model

    path = Path(path)
    try:
        check_keras_config(keras_file_config(path), path)
    except UnsafeModelFile as exc:
        raise LoadError(str(exc)) from exc
    try:
        src = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except (ValueError, TypeError, KeyError, AttributeError, OSError) as exc:
        raise LoadError(f"{path}: Keras could not load the model safely ({type(exc).__name__}: {exc})") from exc
    top = topology(src)
    kwargs = {"image_size": image_size} if image_size else {}
    cfg = config_from_topology(top, **kwargs)
    model = build_model(cfg, init="zeros")
    set_keras_canonical(model, keras_canonical(src))
    return model, cfg
