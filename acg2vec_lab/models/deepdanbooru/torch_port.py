"""The TorchDeepDanbooru port's ``.pt`` state dict (``n_Conv_0`` ... with BN folded, a ``tags`` key),
read with ``weights_only=True``, parsed by shapes into the canonical dict; Keras -> torch and the
parity ledger between them.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.models.deepdanbooru.canonical import (
    LoadError,
    keras_canonical,
)
from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
from acg2vec_lab.models.deepdanbooru.tf_model import config_from_topology, topology
from acg2vec_lab.port import layout

# ---------------------------------------------------------------------------------------------
# TorchDeepDanbooru state dict (BN folded)
# ---------------------------------------------------------------------------------------------

def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; a file that needs more than
    tensors and plain containers (a pickle carrying code or custom classes) is refused with a
    :class:`LoadError` naming the file, before anything in it runs."""
    from acg2vec_lab.train.run import load_torch_state

    try:
        return load_torch_state(path)
    except ValueError as exc:  # the DeepDanbooru loaders' one error class
        raise LoadError(str(exc)) from exc.__cause__


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
        weights[key] = {"kernel": layout.oihw_to_hwio(arr(c["weight"])),
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
        k = layout.hwio_to_oihw(np.asarray(u["kernel"], np.float64))
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
    head = layout.hwio_to_oihw(np.asarray(weights["head"]["kernel"], np.float32))
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
    as a :func:`acg2vec_lab.port.ledger.make_ledger` table with max |diff| per row.

    Argument order, as every ``parity_ledger`` here: the original first (DeepDanbooru is Keras), then
    the port, then the input in the original's layout."""
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
