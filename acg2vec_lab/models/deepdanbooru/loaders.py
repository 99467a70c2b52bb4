"""Read (and, for tests, write) the files DeepDanbooru models are released in, by topology.

* **Project folder** (``project.json``, ``model-<name>.keras`` or ``model-<name>.h5``, ``tags.txt``,
  optional ``categories.json``): :func:`load_project`.
* **Legacy Keras 2 h5** (root attrs ``keras_version``/``backend``/``model_config``; group
  ``model_weights`` with ``layer_names`` and per-layer ``weight_names`` such as ``conv2d/kernel:0``;
  float32 or float16): :func:`read_legacy_h5` walks the graph stored in ``model_config`` to find each
  conv/BN's block position (:func:`tf_model.topology`) and reads its datasets with h5py. Layer name
  suffixes are never used to decide where a weight goes (they shift between Keras sessions).
* **TorchDeepDanbooru state dict** (``n_Conv_0`` ... ``n_Conv_<k>`` with BN folded, bias on all but
  the last, a ``tags`` key): :func:`read_port_state_dict` parses the conv sequence by shapes (the
  port numbers a projection block's shortcut before its main path in most stages but after it in
  v3's stage 3, so numbering alone does not say which conv is which).

Everything meets in the canonical weight dict of :mod:`.torch_model` (keys ``stem``, ``b<i>.c1``,
``b<i>.c2``, ``b<i>.c3``, ``b<i>.sc``, ``head``).

Nothing in a file runs: a Keras file's architecture is checked against the built-in layer allow-list
(:func:`acg2vec_lab.io_safety.check_keras_config`: a ``Lambda`` or custom layer is refused, naming the
file and the layer) before Keras or our reader touches it, ``.keras`` files load with
``safe_mode=True``, and torch files with ``weights_only=True`` (:func:`safe_torch_load`).
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io_safety import (
    UnsafeModelFile,
    check_keras_config,
    keras_file_config,
    parse_json_text,
    read_json_file,
)
from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
from acg2vec_lab.models.deepdanbooru.tf_model import Topology, config_from_topology, topology

BN_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")


class LoadError(ValueError):
    """A file that does not hold the expected DeepDanbooru weights; the message names the layer."""


# ---------------------------------------------------------------------------------------------
# canonical <-> Keras model
# ---------------------------------------------------------------------------------------------

def _units(top: Topology) -> dict[str, tuple[str, str | None]]:
    """canonical key -> (conv layer name, bn layer name or None)."""
    out: dict[str, tuple[str, str | None]] = {"stem": (top.stem_conv, top.stem_bn)}
    for b in top.blocks:
        for j in range(3):
            out[f"b{b.index}.c{j + 1}"] = (b.convs[j], b.bns[j])
        if b.is_projection:
            out[f"b{b.index}.sc"] = (b.shortcut_conv, b.shortcut_bn)
    out["head"] = (top.head, None)
    return out


def keras_canonical(model) -> dict[str, dict[str, Any]]:
    """The canonical weight dict of a Keras DeepDanbooru model (located by topology)."""
    top = topology(model)
    out = {}
    for key, (conv, bn) in _units(top).items():
        ws = model.get_layer(conv).get_weights()
        unit: dict[str, Any] = {"kernel": ws[0], "bias": ws[1] if len(ws) > 1 else None, "bn": None}
        if bn is not None:
            unit["bn"] = dict(zip(BN_NAMES, model.get_layer(bn).get_weights()))
        out[key] = unit
    return out


def set_keras_canonical(model, weights: dict[str, dict[str, Any]], source: Topology | None = None) -> Any:
    """Write a canonical weight dict into a Keras model; shape mismatches name the unit and layer
    (the source file's layer names too when its ``source`` topology is given)."""
    top = topology(model)
    units = _units(top)
    missing = [k for k in units if k not in weights]
    if missing:
        raise LoadError(f"weights lack layer(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    extra = sorted(set(weights) - set(units))
    if extra:
        raise LoadError(f"weights carry layer(s) the model does not have: {extra[:5]}")
    src = _units(source) if source is not None else {}
    for key, (conv, bn) in units.items():
        w = weights[key]
        layer = model.get_layer(conv)
        if key in src:
            conv = f"{src[key][0]}' in the file, '{conv}"
            bn = None if bn is None else (f"{src[key][1]}' in the file, '{bn}" if src[key][1] else bn)
        new = [np.asarray(w["kernel"], np.float32)]
        if key == "head" and top.head_kind == "dense":
            new.append(np.asarray(w["bias"], np.float32))
        elif w.get("bias") is not None:
            raise LoadError(f"{key} ({conv}): weights carry a conv bias (BN folded?); the Keras model keeps BN unfolded")
        _check_shapes(key, conv, layer.get_weights(), new)
        layer.set_weights(new)
        if bn is not None:
            if w.get("bn") is None:
                raise LoadError(f"{key} ({bn}): missing BatchNormalization parameters")
            bl = model.get_layer(units[key][1])
            vals = [np.asarray(w["bn"][k], np.float32) for k in BN_NAMES]
            _check_shapes(key, bn, bl.get_weights(), vals)
            bl.set_weights(vals)
    return model


def _check_shapes(key: str, layer: str, old: list, new: list) -> None:
    if len(old) != len(new):
        raise LoadError(f"{key} (layer '{layer}'): {len(new)} weight arrays, expected {len(old)}")
    for o, n in zip(old, new):
        if tuple(o.shape) != tuple(n.shape):
            raise LoadError(f"{key} (layer '{layer}'): weight shape {tuple(n.shape)}, expected {tuple(o.shape)}")


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


# ---------------------------------------------------------------------------------------------
# project folder
# ---------------------------------------------------------------------------------------------

def read_tags(path: str | Path) -> list[str]:
    """``tags.txt``: one tag per line, blank lines ignored (DeepDanbooru ``load_tags``); a file that
    is not UTF-8 text is a :class:`LoadError` naming it and the line."""
    from acg2vec_lab.tagging.categories import read_tags_txt

    return read_tags_txt(path, LoadError)


def read_categories(path: str | Path) -> list[dict[str, Any]]:
    """``categories.json``: ``[{"name": str, "start_index": int}]``; anything else is a
    :class:`LoadError` naming the file and the entry."""
    from acg2vec_lab.tagging.categories import read_categories_json

    return read_categories_json(path, LoadError)


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def read_project_json(path: str | Path) -> dict[str, Any]:
    """A DeepDanbooru ``project.json``: a JSON object whose ``model`` (when given) is a plain name
    (it becomes part of the file name ``model-<name>.h5``, so no path separators or ``..``) and whose
    ``image_width`` / ``image_height`` (when given) are positive integers. Anything else is a
    :class:`LoadError` naming the file and the key."""
    path = Path(path)
    project = read_json_file(path, LoadError, "DeepDanbooru project.json", expect=dict)
    name = project.get("model", "resnet_custom_v2")
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise LoadError(f"{path}: 'model' must be a plain model name (letters, digits, '_', '-', '.'), got {name!r:.80}")
    for key in ("image_width", "image_height"):
        value = project.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise LoadError(f"{path}: {key!r} must be a positive integer, got {value!r:.80}")
    return project


def tag_categories(tags: list[str], categories: list[dict] | None) -> list[str]:
    """Category name per tag from ``categories.json`` start indices; without it, ``rating:*`` = System."""
    if categories:
        starts = sorted((int(c["start_index"]), c["name"]) for c in categories)
        out = []
        for i in range(len(tags)):
            name = starts[0][1]
            for s, n in starts:
                if i >= s:
                    name = n
            out.append(name)
        return out
    return ["System" if t.startswith("rating:") else "General" for t in tags]


@dataclasses.dataclass
class DeepDanbooruProject:
    path: Path
    model: Any  # Keras model
    config: DeepDanbooruConfig
    tags: list[str]
    categories: list[str]  # one per tag
    project: dict
    model_file: Path


def load_project(folder: str | Path) -> DeepDanbooruProject:
    """A DeepDanbooru project folder: ``project.json`` names the model; ``.keras`` preferred over ``.h5``."""
    folder = Path(folder)
    pj = folder / "project.json"
    project = read_project_json(pj) if pj.is_file() else {}
    name = project.get("model", "resnet_custom_v2")
    candidates = [folder / f"model-{name}.keras", folder / f"model-{name}.h5"]
    model_file = next((c for c in candidates if c.is_file()), None)
    if model_file is None:
        found = sorted(p.name for p in folder.glob("model-*"))
        raise LoadError(f"{folder}: no {candidates[0].name} or {candidates[1].name} (model files there: {found})")
    size = project.get("image_width")
    if model_file.suffix == ".h5":
        model, cfg = load_h5_model(model_file, image_size=size)
    else:
        model, cfg = load_keras_file(model_file, image_size=size)
    tags_path = folder / "tags.txt"
    if not tags_path.is_file():
        raise LoadError(f"{folder}: no tags.txt")
    tags = read_tags(tags_path)
    if len(tags) != cfg.n_tags:
        raise LoadError(f"{folder}: tags.txt has {len(tags)} tags but the model's head has {cfg.n_tags} outputs")
    cats_path = folder / "categories.json"
    cats = read_categories(cats_path) if cats_path.is_file() else None
    return DeepDanbooruProject(folder, model, cfg, tags, tag_categories(tags, cats), project, model_file)


# ---------------------------------------------------------------------------------------------
# TorchDeepDanbooru state dict (BN folded)
# ---------------------------------------------------------------------------------------------

def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; a file that needs more than
    tensors and plain containers (a pickle carrying code or custom classes) is refused with a
    :class:`LoadError` naming the file, before anything in it runs."""
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoadError(f"{path}: refused to load: the file holds pickled objects other than tensors and "
                        f"plain containers, which could run code (torch.load weights_only=True: {first})") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise LoadError(f"{path}: not a readable torch file ({type(exc).__name__}: {exc})") from exc


_PORT_KEY = re.compile(r"^n_Conv_(\d+)\.(weight|bias)$")


def port_conv_mapping(shapes: dict[int, tuple[int, ...]], cfg: DeepDanbooruConfig | None = None,
                      has_bias: dict[int, bool] | None = None) -> tuple[DeepDanbooruConfig, dict[str, int]]:
    """Assign the port's convs (``{index: OIHW weight shape}``) to canonical units by topology.

    The convs are taken in numeric order and assigned block by block following the architecture
    (``cfg``; default: the named variant whose conv count, stem and head widths fit, e.g.
    resnet_custom_v3 for the released 179-conv file). Inside a projection block the four convs are told
    apart by shape (the shortcut is the 1x1 C->O conv, whether numbered before or after the main path),
    because the port's numbering puts it first in most stages and last in v3's stage 3. From the weights
    alone the split is ambiguous when a stage keeps its width (a C->C shortcut could close one block or
    open the next), hence the architecture is needed; a custom network must pass ``cfg``.

    Returns ``(config with n_tags set, {canonical key: conv index})``.
    """
    from acg2vec_lab.models.deepdanbooru.config import VARIANTS

    if not shapes:
        raise LoadError("state dict has no n_Conv_<i> weights")
    idx = sorted(shapes)
    if idx != list(range(len(idx))):
        missing = sorted(set(range(max(idx) + 1)) - set(idx))
        raise LoadError(f"state dict lacks n_Conv layer(s) {[f'n_Conv_{i}' for i in missing[:5]]}")
    for i in idx:
        if len(shapes[i]) != 4 or shapes[i][2] != shapes[i][3]:
            raise LoadError(f"n_Conv_{i}: weight has shape {tuple(shapes[i])}, expected 4-d OIHW with a square kernel")
    head = len(idx) - 1
    n_tags = int(shapes[head][0])
    if cfg is None:
        for name, (fs, rs, kind) in VARIANTS.items():
            if kind == "conv_gap" and len(idx) == 1 + sum(3 * (1 + r) + 1 for r in rs) + 1 \
                    and shapes[0][0] == fs[0] // 4 and shapes[head][1] == fs[-1]:
                cfg = DeepDanbooruConfig(variant=name, n_tags=n_tags)
                break
        else:
            raise LoadError(f"{len(idx)} convs match no named DeepDanbooru variant; pass cfg= for a custom network")
    else:
        cfg = dataclasses.replace(cfg, n_tags=n_tags)
    fs, rs = cfg.stages()
    expected_convs = 1 + sum(3 * (1 + r) + 1 for r in rs) + 1
    if len(idx) != expected_convs:
        raise LoadError(f"state dict has {len(idx)} convs (n_Conv_0..{head}); {cfg.variant} needs {expected_convs}")

    def shape(i):  # (out, in, k)
        w = shapes[i]
        return int(w[0]), int(w[1]), int(w[2])

    def check(i, want, what):
        if shape(i) != want:
            raise LoadError(f"n_Conv_{i} ({what}): shape (out,in,k) {shape(i)}, expected {want}")
        if has_bias is not None and not has_bias[i] and what != "head":
            raise LoadError(f"n_Conv_{i} ({what}): missing the folded-BN bias")

    stem = cfg.stem_width()
    check(0, (stem, 3, 7), "stem")
    mapping = {"stem": 0}
    channels, pos, b = stem, 1, 0
    for f, r in zip(fs, rs):
        mid = f // 4
        main_shapes = [(mid, channels, 1), (mid, mid, 3), (f, mid, 1)]
        sc_shape = (f, channels, 1)
        if shape(pos) == sc_shape and shape(pos + 1) == main_shapes[0]:
            order = {"sc": pos, "c1": pos + 1, "c2": pos + 2, "c3": pos + 3}
        else:
            order = {"c1": pos, "c2": pos + 1, "c3": pos + 2, "sc": pos + 3}
        for name, want in zip(("c1", "c2", "c3", "sc"), main_shapes + [sc_shape]):
            check(order[name], want, f"b{b}.{name}")
            mapping[f"b{b}.{name}"] = order[name]
        pos, b, channels = pos + 4, b + 1, f
        for _ in range(r):
            for j, (name, want) in enumerate(zip(("c1", "c2", "c3"), [(mid, f, 1), (mid, mid, 3), (f, mid, 1)])):
                check(pos + j, want, f"b{b}.{name}")
                mapping[f"b{b}.{name}"] = pos + j
            pos, b = pos + 3, b + 1
    check(head, (n_tags, channels, 1), "head")
    if has_bias is not None and has_bias[head]:
        raise LoadError(f"n_Conv_{head} (head): the head conv should have no bias")
    mapping["head"] = head
    return cfg, mapping


def read_port_state_dict(state: dict | str | Path, cfg: DeepDanbooruConfig | None = None):
    """Parse a TorchDeepDanbooru state dict into ``(config, canonical folded weights, tags)``.

    Keys must be ``n_Conv_<i>.weight`` / ``n_Conv_<i>.bias`` plus an optional ``tags`` list; the convs
    are assigned to blocks by :func:`port_conv_mapping` (topology + shapes, never numbering alone).
    A file is read with ``torch.load(weights_only=True)`` (:func:`safe_torch_load`): tensors, the
    ``tags`` list of strings and plain containers load; a pickle that would run code is refused.
    """
    if not isinstance(state, dict):
        state = safe_torch_load(state)
    state = dict(state)
    tags = state.pop("tags", None)
    convs: dict[int, dict[str, Any]] = {}
    for key, value in state.items():
        m = _PORT_KEY.match(key)
        if not m:
            raise LoadError(f"unexpected key {key!r} in the state dict (expected n_Conv_<i>.weight/bias and 'tags')")
        convs.setdefault(int(m.group(1)), {})[m.group(2)] = value
    for i, c in convs.items():
        if "weight" not in c:
            raise LoadError(f"n_Conv_{i}: no weight")
    shapes = {i: tuple(c["weight"].shape) for i, c in convs.items()}
    cfg, mapping = port_conv_mapping(shapes, cfg, has_bias={i: "bias" in c for i, c in convs.items()})

    def arr(v):
        v = v.detach().cpu().float().numpy() if hasattr(v, "detach") else v
        return np.asarray(v, np.float32)

    weights = {}
    for key, i in mapping.items():
        c = convs[i]
        weights[key] = {"kernel": np.ascontiguousarray(np.transpose(arr(c["weight"]), (2, 3, 1, 0))),
                        "bias": arr(c["bias"]) if "bias" in c else None, "bn": None}
    if tags is not None and len(tags) != cfg.n_tags:
        raise LoadError(f"'tags' has {len(tags)} entries but the head n_Conv_{mapping['head']} has {cfg.n_tags} outputs")
    return cfg, weights, tags


def load_port_into_torch(state: dict | str | Path, cfg: DeepDanbooruConfig | None = None, folded: bool = False):
    """A :class:`DeepDanbooruTorch` holding a TorchDeepDanbooru state dict (``.tags`` set)."""
    from acg2vec_lab.models.deepdanbooru.torch_model import build_torch_model

    cfg, weights, tags = read_port_state_dict(state, cfg)
    model = build_torch_model(cfg, folded=folded)
    model.load_canonical(weights)
    model.tags = tags
    return model


def write_port_state_dict(weights: dict[str, dict[str, Any]], cfg: DeepDanbooruConfig, tags: list[str] | None = None,
                          shortcut_after_stages: tuple[int, ...] = (3,)) -> dict[str, Any]:
    """A TorchDeepDanbooru-style state dict from canonical weights: BN folded, ``n_Conv_<i>`` numbered
    shortcut-first except in ``shortcut_after_stages`` (the port's ONNX order: after, in stage 3)."""
    import torch

    from acg2vec_lab.port.bn import fold_bn

    def folded(u):
        k = np.transpose(np.asarray(u["kernel"], np.float64), (3, 2, 0, 1))
        if u.get("bn") is None:
            return k.astype(np.float32), (None if u.get("bias") is None else np.asarray(u["bias"], np.float32))
        bn = u["bn"]
        return fold_bn(k, bn["gamma"], bn["beta"], bn["moving_mean"], bn["moving_variance"], bias=u.get("bias"))

    order = ["stem"]
    fs, rs = cfg.stages()
    b = 0
    for s, r in enumerate(rs):
        main = [f"b{b}.c1", f"b{b}.c2", f"b{b}.c3"]
        order += main + [f"b{b}.sc"] if s in shortcut_after_stages else [f"b{b}.sc"] + main
        b += 1
        for _ in range(r):
            order += [f"b{b}.c1", f"b{b}.c2", f"b{b}.c3"]
            b += 1
    out: dict[str, Any] = {}
    for i, key in enumerate(order):
        w, bias = folded(weights[key])
        out[f"n_Conv_{i}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        out[f"n_Conv_{i}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    head = np.transpose(np.asarray(weights["head"]["kernel"], np.float32), (3, 2, 0, 1))
    out[f"n_Conv_{len(order)}.weight"] = torch.from_numpy(np.ascontiguousarray(head))
    if tags is not None:
        out["tags"] = list(tags)
    return out


# ---------------------------------------------------------------------------------------------
# framework bridges
# ---------------------------------------------------------------------------------------------

def keras_to_torch(model, folded: bool = False):
    """A PyTorch model with the Keras model's weights (architecture from the Keras graph)."""
    from acg2vec_lab.models.deepdanbooru.torch_model import build_torch_model

    cfg = config_from_topology(topology(model))
    return build_torch_model(cfg, folded=folded).load_canonical(keras_canonical(model))


def parity_ledger(model, torch_model, x):
    """Per-stage TF vs PyTorch comparison on NHWC ``x`` (stem, max-pool, every block, probabilities),
    as a :func:`acg2vec_lab.port.ledger.make_ledger` table with max |diff| per row."""
    import keras
    import torch

    from acg2vec_lab.port.ledger import make_ledger, max_abs_diff, rel_diff

    top = topology(model)
    names = [top.stem_relu, top.pool] + [b.relu for b in top.blocks] + [top.output]
    tf_outs = keras.Model(model.input, [model.get_layer(n).output for n in names])(x, training=False)
    with torch.no_grad():
        rows_t = torch_model.trace(torch.from_numpy(np.asarray(x, np.float32)))
    transform = "hwio_to_oihw + BN folded (eps 1e-3)" if torch_model.folded else "hwio_to_oihw; BN eps 1e-3"
    rows = []
    for name, (label, spec, t), tf_out in zip(names, rows_t, tf_outs):
        t = t.numpy()
        a = np.asarray(tf_out)
        rows.append({"layer": label, "torch": spec, "tf": f"{name} ({top.layer_classes[name]}, padding same)",
                     "weight_transform": transform, "crop": "-", "output_shape": tuple(a.shape),
                     "max_abs_diff": max_abs_diff(t, a), "rel_diff": rel_diff(t, a)})
    return make_ledger(rows)


def write_project(folder: str | Path, model, tags: list[str], categories: list[dict] | None = None,
                  name: str = "resnet_custom_v3", dtype: str = "float32") -> Path:
    """Write a DeepDanbooru project folder the way a release looks: ``project.json``,
    ``model-<name>.h5`` (legacy Keras 2 layout, ``dtype``), ``tags.txt`` and ``categories.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = model.input_shape[1:3]
    project = {"image_width": w, "image_height": h, "model": name, "minibatch_size": 32, "epoch_count": 10,
               "loss": "binary_crossentropy", "optimizer": "adam", "learning_rate": 0.001, "mixed_precision": False}
    (folder / "project.json").write_text(json.dumps(project, indent=2), encoding="utf-8")
    (folder / "tags.txt").write_text("\n".join(tags) + "\n", encoding="utf-8")
    if categories is not None:
        (folder / "categories.json").write_text(json.dumps(categories, indent=2), encoding="utf-8")
    write_legacy_h5(model, folder / f"model-{name}.h5", dtype=dtype)
    return folder
