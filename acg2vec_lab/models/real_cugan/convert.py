"""PyTorch state dict -> TF port weights, plus the parity ledger and the ACG2vec (3,2,1,0) layout.

* Conv2d (O, I, kh, kw) -> Conv2D (kh, kw, I, O): :func:`acg2vec_lab.port.layout.oihw_to_hwio`.
* ConvTranspose2d (I, O, kh, kw) -> Conv2DTranspose (kh, kw, O, I): :func:`iohw_to_hwoi`; no flip.
* ACG2vec's cugan_tf exported kernels as ``transpose(w, (3, 2, 1, 0))`` of the torch kernels, i.e.
  the right layout with kh and kw swapped; its model therefore computes T(f(T(x))).
  :func:`acg2vec_export_variables` writes that layout (positional, torch key order) and
  :func:`state_dict_from_acg2vec_variables` reads it back correctly.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from acg2vec_lab.port import layout
from acg2vec_lab.port.transposed import crop as tconv_crop


def _np(v: Any) -> np.ndarray:
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


def weight_transform(kind: str) -> str:
    return {"conv": "oihw_to_hwio (2,3,1,0)", "deconv": "iohw_to_hwoi (2,3,1,0), no flip"}[kind]


def load_into_tf(tf_model, state_dict: dict) -> None:
    """Copy an upstream-keyed state dict (``pro`` key ignored) into a :class:`TFUpCunet`."""
    tf_model.build()
    sd = {k: _np(v) for k, v in state_dict.items() if k != "pro"}
    used = set()
    for key, layer in tf_model.layers.items():
        kind = tf_model.kinds[key][0]
        w = sd[f"{key}.weight"]
        kernel = layout.oihw_to_hwio(w) if kind == "conv" else layout.iohw_to_hwoi(w)
        expect = tuple(layer.kernel.shape)
        if kernel.shape != expect:
            raise ValueError(f"{key}: converted kernel {kernel.shape} != Keras {expect}")
        layer.set_weights([kernel, sd[f"{key}.bias"]])
        used |= {f"{key}.weight", f"{key}.bias"}
    extra = sorted(set(sd) - used)
    if extra:
        raise ValueError(f"state dict keys not used by the TF model: {extra}")


def tf_from_torch(torch_model):
    """A TF port with the weights of a PyTorch :class:`UpCunet`."""
    from acg2vec_lab.models.real_cugan.tf_model import TFUpCunet

    c = torch_model.unet1.conv2.seblock
    reduction = (c.conv1.in_channels // c.conv1.out_channels) if c is not None else 8
    m = TFUpCunet(torch_model.scale, torch_model.base, torch_model.se, reduction)
    load_into_tf(m, torch_model.state_dict())
    return m


# --- ACG2vec's exported layout ------------------------------------------------------------------

def acg2vec_export_variables(state_dict: dict) -> list[np.ndarray]:
    """What ACG2vec's cugan_tf stored: variables by POSITION in torch key order, every 4-D kernel
    transposed with (3, 2, 1, 0) (kh/kw swapped vs the correct HWIO/HWOI), biases as is."""
    out = []
    for k, v in state_dict.items():
        if k == "pro":
            continue
        a = _np(v)
        out.append(layout.reversed_axes(a) if a.ndim == 4 else a.copy())
    return out


def state_dict_from_acg2vec_variables(variables: list, template: dict) -> dict:
    """Read ACG2vec-layout variables back into an upstream-keyed state dict.

    ``template`` gives the key order and shapes (e.g. ``UpCunet(...).state_dict()``); each kernel is
    recovered with the full reversal (3, 2, 1, 0) -- not the usual HWIO->OIHW (3, 2, 0, 1)."""
    import torch

    keys = [k for k in template if k != "pro"]
    if len(keys) != len(variables):
        raise ValueError(f"{len(variables)} variables for {len(keys)} state-dict keys")
    sd = {}
    for k, v in zip(keys, variables):
        a = np.asarray(v)
        if a.ndim == 4:
            a = layout.reversed_axes(a)
        if tuple(a.shape) != tuple(template[k].shape):
            raise ValueError(f"{k}: variable gives {a.shape}, expected {tuple(template[k].shape)}")
        sd[k] = torch.from_numpy(np.ascontiguousarray(a))
    return sd


def load_into_tf_acg2vec_bug(tf_model, state_dict: dict) -> None:
    """Reproduce ACG2vec's port: kernels permuted with (3, 2, 1, 0) instead of (2, 3, 1, 0)."""
    tf_model.build()
    sd = {k: _np(v) for k, v in state_dict.items() if k != "pro"}
    for key, layer in tf_model.layers.items():
        layer.set_weights([layout.reversed_axes(sd[f"{key}.weight"]), sd[f"{key}.bias"]])


# --- parity ledger --------------------------------------------------------------------------------

def _torch_trace(torch_model, x_nchw) -> dict:
    import torch

    acts = {}
    hooks = [mod.register_forward_hook(lambda m, i, o, name=name: acts.__setitem__(name, o.detach().numpy()))
             for name, mod in torch_model.named_modules()
             if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            out = torch_model(x_nchw)
    finally:
        for h in hooks:
            h.remove()
    acts["<output>"] = out.numpy()
    return acts


def _tf_trace(tf_model, x_nhwc) -> dict:
    import tensorflow as tf

    acts = {}
    orig = tf_model._apply

    def spy(key, x):
        y = tf_model.layers[key](x)  # raw Keras output (before the transposed-conv crop)
        kind, k, s, p = tf_model.kinds[key]
        if kind == "deconv" and p:
            y = y[:, p:-p, p:-p, :]
        acts[key] = y.numpy()
        return y

    tf_model._apply = spy
    try:
        out = tf_model.forward(tf.convert_to_tensor(x_nhwc, tf.float32))
    finally:
        tf_model._apply = orig
    acts["<output>"] = out.numpy()
    return acts


def parity_ledger(torch_model, tf_model, x_nchw) -> Any:
    """Run both models eagerly on the same input and tabulate every layer (the notebook's table).

    Argument order, as every ``parity_ledger`` here: the original first (Real-CUGAN is PyTorch), then
    the port, then the input in the original's layout (NCHW)."""
    from acg2vec_lab.port.ledger import make_ledger, max_abs_diff, rel_diff

    ta = _torch_trace(torch_model, x_nchw)
    fa = _tf_trace(tf_model, _np(x_nchw).transpose(0, 2, 3, 1))
    rows = []
    for key, layer in tf_model.layers.items():
        kind, k, s, p = tf_model.kinds[key]
        mod = torch_model.get_submodule(key)
        cfg = layer.get_config()
        tspec = (f"{type(mod).__name__}({mod.in_channels},{mod.out_channels},k={mod.kernel_size[0]},"
                 f"s={mod.stride[0]},p={mod.padding[0]})")
        fspec = f"{type(layer).__name__}({cfg['filters']},k={k},s={s},padding='valid')"
        crop_txt = f"[{tconv_crop(k, s, p)[0]}:-{tconv_crop(k, s, p)[1]}] per side" if (kind == "deconv" and p) else "-"
        rows.append({"layer": key, "torch": tspec, "tf": fspec, "weight_transform": weight_transform(kind),
                     "crop": crop_txt, "output_shape": tuple(fa[key].shape),
                     "max_abs_diff": max_abs_diff(ta[key], fa[key]), "rel_diff": rel_diff(ta[key], fa[key])})
    rows.append({"layer": "<output>", "torch": type(torch_model).__name__, "tf": type(tf_model).__name__,
                 "weight_transform": "-", "crop": f"[:{torch_model.scale}h0, :{torch_model.scale}w0]",
                 "output_shape": tuple(fa["<output>"].shape),
                 "max_abs_diff": max_abs_diff(ta["<output>"], fa["<output>"]),
                 "rel_diff": rel_diff(ta["<output>"], fa["<output>"])})
    return make_ledger(rows)
