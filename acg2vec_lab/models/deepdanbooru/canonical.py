"""The canonical weight dict every DeepDanbooru format meets in, and the Keras side of it.

Keys ``stem``, ``b<i>.c1``, ``b<i>.c2``, ``b<i>.c3``, ``b<i>.sc``, ``head`` (by block position in the
topology, never by Keras layer-name suffixes, which shift between sessions); :class:`LoadError` is the
one error every DeepDanbooru loader raises for a file it refuses.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from acg2vec_lab.models.deepdanbooru.tf_model import Topology, topology

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
