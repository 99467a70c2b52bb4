"""DeepDanbooru's ResNets in Keras 3, layer for layer as in ``models.md`` section 1.

* every conv: ``Conv2D(padding="same", use_bias=False, kernel_initializer="he_normal")``;
  ``conv_bn`` adds ``BatchNormalization()`` with Keras defaults (epsilon 1e-3, momentum 0.99);
* projection block: 1x1 conv_bn_relu(mid) -> 3x3 conv_bn_relu(mid, stride on the 3x3) ->
  1x1 conv_bn(out, gamma init zeros); the 1x1 conv_bn shortcut is created AFTER the main path;
  ``Add([main, shortcut])`` -> ReLU. Identity block: the same with ``Add([main, x])``;
* stem: 7x7/2 conv_bn_relu -> MaxPool 3x3/2 "same"; stage 0 opens with stride 1, the others 2;
* head (v1-v4): 1x1 conv (no bias) -> GlobalAveragePooling2D -> sigmoid (float32);
  resnet_152: AveragePooling2D(7, name="ap_final") -> Flatten -> Dense -> sigmoid.

Layers are left to Keras auto-naming (``conv2d_5``, ``add_43``...) exactly like the original code, so
a model built first in a fresh session carries the released file's names. Names shift when another
model was built before in the same session, therefore nothing here looks layers up by name:
:func:`topology` walks the graph and returns the blocks in order.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from acg2vec_lab.models.deepdanbooru.config import VARIANTS, DeepDanbooruConfig

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


def _layers():
    import keras

    return keras.layers


_INIT = {"kernel": "he_normal"}  # swapped to "zeros" by build_model(init="zeros") while building


def conv(x, filters, kernel, strides=1):
    L = _layers()
    return L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                    kernel_initializer=_INIT["kernel"])(x)


def conv_bn(x, filters, kernel, strides=1, bn_gamma_initializer="ones"):
    L = _layers()
    x = conv(x, filters, kernel, strides)
    return L.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, gamma_initializer=bn_gamma_initializer)(x)


def conv_bn_relu(x, filters, kernel, strides=1):
    return _layers().Activation("relu")(conv_bn(x, filters, kernel, strides))


def bottleneck_block(x, out_filters, mid_filters):
    """Identity bottleneck: 1x1 -> 3x3 -> 1x1 (zero-gamma BN), ``Add([main, x])`` -> ReLU."""
    L = _layers()
    c = conv_bn_relu(x, mid_filters, 1)
    c = conv_bn_relu(c, mid_filters, 3)
    c = conv_bn(c, out_filters, 1, bn_gamma_initializer="zeros")
    return L.Activation("relu")(L.Add()([c, x]))


def projection_block(x, out_filters, mid_filters, stride):
    """Projection bottleneck: stride on the 3x3; the 1x1 conv_bn shortcut is created after the main path."""
    L = _layers()
    c = conv_bn_relu(x, mid_filters, 1)
    c = conv_bn_relu(c, mid_filters, 3, strides=stride)
    c = conv_bn(c, out_filters, 1, bn_gamma_initializer="zeros")
    s = conv_bn(x, out_filters, 1, strides=stride)
    return L.Activation("relu")(L.Add()([c, s]))


def trunk(x, filter_sizes, repeat_sizes, stem_filters=None):
    """Stem + stages (``resnet_original_bottleneck_model`` with ``final_pool=False``)."""
    L = _layers()
    x = conv_bn_relu(x, stem_filters or filter_sizes[0] // 4, 7, strides=2)
    x = L.MaxPool2D((3, 3), strides=(2, 2), padding="same")(x)
    for i, (f, r) in enumerate(zip(filter_sizes, repeat_sizes)):
        x = projection_block(x, f, f // 4, stride=2 if i > 0 else 1)
        for _ in range(r):
            x = bottleneck_block(x, f, f // 4)
    return x


def build_model(cfg: DeepDanbooruConfig, image_size: int | None = None, n_tags: int | None = None,
                input_shape: tuple | None = None, init: str = "he_normal"):
    """The Keras tagger for ``cfg`` (input NHWC float32 in [0, 1], output sigmoid probabilities).

    Args:
        cfg: architecture config.
        image_size / n_tags: override ``cfg.image_size`` / ``cfg.n_tags``.
        input_shape: full ``(H, W, 3)`` input shape instead of a square; ``(None, None, 3)`` for any size
            (``conv_gap`` head only).
        init: conv kernel initializer, DeepDanbooru's ``"he_normal"``; loaders pass ``"zeros"``
            (the weights are overwritten anyway, and drawing 161 M normals costs seconds at full size).
    """

    previous, _INIT["kernel"] = _INIT["kernel"], init
    try:
        return _build(cfg, image_size, n_tags, input_shape)
    finally:
        _INIT["kernel"] = previous


def _build(cfg, image_size, n_tags, input_shape):
    import keras

    fs, rs = cfg.stages()
    size = image_size or cfg.image_size
    shape = tuple(input_shape) if input_shape is not None else (size, size, 3)
    inputs = keras.Input(shape=shape)
    x = trunk(inputs, fs, rs, cfg.stem_width())
    L = keras.layers
    n = n_tags or cfg.n_tags
    if cfg.head_kind() == "conv_gap":
        x = conv(x, n, 1)
        x = L.GlobalAveragePooling2D()(x)
    else:
        x = L.AveragePooling2D((7, 7), name="ap_final")(x)
        x = L.Flatten()(x)
        x = L.Dense(n)(x)
    outputs = L.Activation("sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=cfg.variant)


def _named(variant: str, n_tags: int, image_size: int):
    return build_model(DeepDanbooruConfig(variant=variant, n_tags=n_tags, image_size=image_size))


def resnet_custom_v1(n_tags: int = 1000, image_size: int = 512):
    return _named("resnet_custom_v1", n_tags, image_size)


def resnet_custom_v2(n_tags: int = 1000, image_size: int = 512):
    return _named("resnet_custom_v2", n_tags, image_size)


def resnet_custom_v3(n_tags: int = 9176, image_size: int = 512):
    return _named("resnet_custom_v3", n_tags, image_size)


def resnet_custom_v4(n_tags: int = 1000, image_size: int = 512):
    return _named("resnet_custom_v4", n_tags, image_size)


def resnet_152(n_tags: int = 1000, image_size: int = 224):
    return _named("resnet_152", n_tags, image_size)


BUILDERS = {name: globals()[name] for name in VARIANTS}


# ----------------------------------------------------------------------------------------------
# Topology: the network's blocks in graph order, from a Keras config (Keras 2 or Keras 3 format)
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Block:
    """One bottleneck block, by layer name. ``convs``/``bns``: main path 1x1, 3x3, 1x1."""

    index: int
    stage: int
    convs: list[str]
    bns: list[str]
    add: str
    relu: str
    shortcut_conv: str | None = None
    shortcut_bn: str | None = None
    stride: int = 1
    relus: list[str] = dataclasses.field(default_factory=list)  # the two inner ReLUs

    @property
    def is_projection(self) -> bool:
        return self.shortcut_conv is not None


@dataclasses.dataclass
class Topology:
    """Layer names of a DeepDanbooru network in graph order (independent of their suffixes)."""

    input: str
    input_shape: tuple
    stem_conv: str
    stem_bn: str
    stem_relu: str
    pool: str
    blocks: list[Block]
    head_kind: str  # "conv_gap" | "dense"
    head: str  # the 1x1 conv or the Dense layer
    output: str
    filter_sizes: tuple[int, ...]
    repeat_sizes: tuple[int, ...]
    stem_filters: int
    n_tags: int
    layer_classes: dict[str, str]

    def weight_layers(self) -> list[str]:
        """Every layer with weights, canonical order: stem conv, bn; per block c1,b1,c2,b2,c3,b3,[sc, sc_bn]; head."""
        out = [self.stem_conv, self.stem_bn]
        for b in self.blocks:
            for c, n in zip(b.convs, b.bns):
                out += [c, n]
            if b.is_projection:
                out += [b.shortcut_conv, b.shortcut_bn]
        return out + [self.head]

    def stage_blocks(self) -> list[list[Block]]:
        stages: list[list[Block]] = [[] for _ in self.filter_sizes]
        for b in self.blocks:
            stages[b.stage].append(b)
        return stages


class TopologyError(ValueError):
    """A graph that is not a DeepDanbooru ResNet; the message names the layer where it broke."""


def _inbound_names(node: Any) -> list[str]:
    """Input layer names of one inbound node, Keras 2 (nested lists) or Keras 3 (args/kwargs dict)."""
    names: list[str] = []

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("class_name") == "__keras_tensor__":
                names.append(obj["config"]["keras_history"][0])
            else:
                for v in obj.values():
                    walk(v)
        elif isinstance(obj, (list, tuple)):
            # Keras 2: [name, node_index, tensor_index, kwargs]
            if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int) and isinstance(obj[2], int):
                names.append(obj[0])
            else:
                for v in obj:
                    walk(v)

    walk(node)
    return names


def topology(model_or_config: Any) -> Topology:
    """Walk a DeepDanbooru graph and return its :class:`Topology`.

    Accepts a Keras model, its ``get_config()`` dict, or the ``model_config`` JSON dict of a saved file
    (``{"class_name": "Functional", "config": {...}}``, Keras 2 or 3 inbound-node format).
    """
    if hasattr(model_or_config, "get_config") and not isinstance(model_or_config, dict):
        cfg = model_or_config.get_config()
    else:
        cfg = model_or_config
    if "config" in cfg and "layers" in cfg["config"]:
        cfg = cfg["config"]
    layers = cfg["layers"]
    cls = {layer["name"]: layer["class_name"] for layer in layers}
    conf = {layer["name"]: layer.get("config", {}) for layer in layers}
    inputs = {layer["name"]: _inbound_names(layer.get("inbound_nodes", [])) for layer in layers}
    consumers: dict[str, list[str]] = {n: [] for n in cls}
    for name, ins in inputs.items():
        for i in ins:
            consumers.setdefault(i, []).append(name)

    def one_input(name: str) -> str:
        ins = inputs[name]
        if len(ins) != 1:
            raise TopologyError(f"layer {name!r} ({cls[name]}) has {len(ins)} inputs, expected 1")
        return ins[0]

    def expect(name: str, *kinds: str) -> str:
        if cls.get(name) not in kinds:
            raise TopologyError(f"layer {name!r} is {cls.get(name)}, expected {'/'.join(kinds)}")
        return name

    def is_relu(name: str) -> bool:
        if cls.get(name) == "ReLU":
            return True
        return cls.get(name) == "Activation" and conf[name].get("activation") == "relu"

    def strides_of(name: str) -> int:
        s = conf[name].get("strides", 1)
        return int(s[0] if isinstance(s, (list, tuple)) else s)

    def filters_of(name: str) -> int:
        return int(conf[name].get("filters") or conf[name].get("units"))

    input_layers = [n for n, c in cls.items() if c == "InputLayer"]
    if len(input_layers) != 1:
        raise TopologyError(f"expected one InputLayer, found {input_layers}")
    inp = input_layers[0]
    ic = conf[inp]
    shape = ic.get("batch_shape") or ic.get("batch_input_shape") or [None, *ic.get("shape", [None, None, 3])]
    input_shape = tuple(shape[1:])

    stem_conv = expect(_single_consumer(consumers, inp, cls), "Conv2D")
    stem_bn = expect(_single_consumer(consumers, stem_conv, cls), "BatchNormalization")
    stem_relu = _single_consumer(consumers, stem_bn, cls)
    if not is_relu(stem_relu):
        raise TopologyError(f"layer {stem_relu!r} after the stem BN is not a ReLU")
    pool = expect(_single_consumer(consumers, stem_relu, cls), "MaxPooling2D")

    def trace_branch(start: str) -> list[str]:
        """Walk back from an Add input to the block input; returns [block_input, layers...] forward order."""
        chain = []
        cur = start
        while cls.get(cur) in ("Conv2D", "BatchNormalization") or (is_relu(cur) and cls[one_input(cur)] != "Add"):
            chain.append(cur)
            cur = one_input(cur)
        return [cur] + chain[::-1]

    blocks: list[Block] = []
    x = pool
    channels = filters_of(stem_conv)
    filter_sizes: list[int] = []
    repeat_sizes: list[int] = []
    while True:
        nexts = consumers.get(x, [])
        # the block's Add is reachable from x through its main path; find it via the first conv consumer
        convs_here = [c for c in nexts if cls[c] == "Conv2D"]
        if not convs_here:
            break
        add = None
        for c in convs_here:
            cur = c
            for _ in range(12):
                cs = consumers.get(cur, [])
                if not cs:
                    break
                cur = cs[0]
                if cls[cur] == "Add":
                    add = cur
                    break
            if add:
                break
        if add is None:  # no block follows: x feeds the head
            break
        ins = inputs[add]
        if len(ins) != 2:
            raise TopologyError(f"Add layer {add!r} has {len(ins)} inputs, expected 2")
        branches = [trace_branch(i) for i in ins]
        for br in branches:
            if br[0] != x:
                raise TopologyError(f"Add layer {add!r}: branch {br[1:] or br} does not start at block input {x!r}")
        main = max(branches, key=len)
        short = min(branches, key=len)
        body = main[1:]
        kinds = [cls[n] if not is_relu(n) else "ReLU" for n in body]
        if kinds != ["Conv2D", "BatchNormalization", "ReLU"] * 2 + ["Conv2D", "BatchNormalization"]:
            raise TopologyError(f"block ending in {add!r}: main path {body} is not conv-bn-relu x2, conv-bn")
        relu = [c for c in consumers.get(add, []) if is_relu(c)]
        if len(relu) != 1:
            raise TopologyError(f"Add layer {add!r} is not followed by one ReLU")
        b = Block(index=len(blocks), stage=-1, convs=[body[0], body[3], body[6]], bns=[body[1], body[4], body[7]],
                  add=add, relu=relu[0], relus=[body[2], body[5]])
        sc = short[1:]
        if sc:
            if [cls[n] for n in sc] != ["Conv2D", "BatchNormalization"]:
                raise TopologyError(f"block ending in {add!r}: shortcut {sc} is not conv-bn")
            b.shortcut_conv, b.shortcut_bn = sc
            b.stride = strides_of(body[3]) * strides_of(body[0])
            filter_sizes.append(filters_of(body[6]))
            repeat_sizes.append(0)
        else:
            if not filter_sizes:
                raise TopologyError(f"block ending in {add!r}: the first block must be a projection block")
            repeat_sizes[-1] += 1
        b.stage = len(filter_sizes) - 1
        blocks.append(b)
        channels = filters_of(body[6])
        x = relu[0]
    if not blocks:
        raise TopologyError(f"no bottleneck block after {pool!r}")
    # head
    nxt = _single_consumer(consumers, x, cls)
    if cls[nxt] == "Conv2D":
        head_kind, head = "conv_gap", nxt
        gap = expect(_single_consumer(consumers, head, cls), "GlobalAveragePooling2D")
        out = _single_consumer(consumers, gap, cls)
    elif cls[nxt] == "AveragePooling2D":
        flat = expect(_single_consumer(consumers, nxt, cls), "Flatten")
        head_kind, head = "dense", expect(_single_consumer(consumers, flat, cls), "Dense")
        out = _single_consumer(consumers, head, cls)
    else:
        raise TopologyError(f"layer {nxt!r} ({cls[nxt]}) after the last block is not a known head")
    if not (cls[out] == "Activation" and conf[out].get("activation") == "sigmoid"):
        raise TopologyError(f"layer {out!r} after the head is not a sigmoid Activation")
    del channels
    return Topology(input=inp, input_shape=input_shape, stem_conv=stem_conv, stem_bn=stem_bn, stem_relu=stem_relu,
                    pool=pool, blocks=blocks, head_kind=head_kind, head=head, output=out,
                    filter_sizes=tuple(filter_sizes), repeat_sizes=tuple(repeat_sizes),
                    stem_filters=filters_of(stem_conv), n_tags=filters_of(head), layer_classes=cls)


def _single_consumer(consumers: dict[str, list[str]], name: str, cls: dict[str, str]) -> str:
    cs = consumers.get(name, [])
    if len(cs) != 1:
        raise TopologyError(f"layer {name!r} ({cls.get(name)}) feeds {len(cs)} layers {cs}, expected 1")
    return cs[0]


def config_from_topology(top: Topology, **fields: Any) -> DeepDanbooruConfig:
    """A :class:`DeepDanbooruConfig` that rebuilds the network ``top`` describes (named variant if it is one)."""
    fs, rs = tuple(top.filter_sizes), tuple(top.repeat_sizes)
    size = top.input_shape[0] if top.input_shape and top.input_shape[0] else fields.pop("image_size", 512)
    fields.setdefault("image_size", int(size))
    for name, (vfs, vrs, head) in VARIANTS.items():
        if (vfs, vrs, head) == (fs, rs, top.head_kind) and top.stem_filters == fs[0] // 4:
            return DeepDanbooruConfig(variant=name, n_tags=top.n_tags, **fields)
    return DeepDanbooruConfig(variant="custom", filter_sizes=fs, repeat_sizes=rs, stem_filters=top.stem_filters,
                              head=top.head_kind, n_tags=top.n_tags, **fields)


# ----------------------------------------------------------------------------------------------
# Cut points for illust2vec, defined by block position
# ----------------------------------------------------------------------------------------------

def cut_stage(n_stages: int) -> int:
    """The stage holding the illust2vec cut: stage 3 (the 4th, 16x16 at 512 in v3), else the last."""
    return 3 if n_stages > 3 else n_stages - 1


def cut_block(top: Topology, cut: str) -> Block:
    """The block whose output is the illust2vec cut.

    * ``activation_96``: the first (projection, stride-2) block of stage 3; its post-add ReLU output.
      In v3 this is global block 31 (``activation_96`` in a fresh session).
    * ``add_43``: the block ``round(12 * n / 20)`` of stage 3 (n = blocks in that stage), clipped to
      ``[min(1, n - 1), n - 1]``; its pre-ReLU sum. In v3 (n = 20) that is the 13th block of stage 3 =
      global block 43 (``add_43``); in a tiny stage of 3 blocks it is the 2nd.
    """
    stages = top.stage_blocks()
    stage = stages[cut_stage(len(stages))]
    if cut == "activation_96":
        return stage[0]
    if cut == "add_43":
        n = len(stage)
        k = min(max(round(12 * n / 20), min(1, n - 1)), n - 1)
        return stage[k]
    raise ValueError(f"unknown cut {cut!r}; choose activation_96 or add_43")


def cut_layer_name(top: Topology, cut: str) -> str:
    """The Keras layer (in this model's own naming) whose output is the cut tensor."""
    b = cut_block(top, cut)
    return b.relu if cut == "activation_96" else b.add


def stage_table(model) -> list[dict[str, Any]]:
    """Per stage: blocks, output channels, bottleneck width, first stride, output spatial size, names."""
    top = topology(model)
    rows = []
    for s, blocks in enumerate(top.stage_blocks()):
        out_shape = model.get_layer(blocks[-1].relu).output.shape
        rows.append({
            "stage": s, "blocks": len(blocks), "global_blocks": f"{blocks[0].index}-{blocks[-1].index}",
            "out_ch": top.filter_sizes[s], "mid_ch": top.filter_sizes[s] // 4, "first_stride": blocks[0].stride,
            "spatial": f"{out_shape[1]}x{out_shape[2]}", "adds": f"{blocks[0].add} .. {blocks[-1].add}",
            "relus": f"{blocks[0].relu} .. {blocks[-1].relu}",
        })
    return rows


def analytic_param_counts(cfg: DeepDanbooruConfig, n_tags: int | None = None,
                          image_size: int | None = None) -> dict[str, int]:
    """Parameter counts from the architecture formula, without building anything.

    conv k x k: k*k*cin*cout (no bias); BN: gamma + beta trainable, moving mean + variance not;
    head: 1x1 conv cin*n_tags, or (resnet_152) Dense over the flattened ``AveragePooling2D(7)`` output.
    """
    import math

    fs, rs = cfg.stages()
    n = n_tags or cfg.n_tags
    s = cfg.stem_width()
    conv_w = 7 * 7 * 3 * s
    bn = [s]
    cin = s
    for f, r in zip(fs, rs):
        mid = f // 4
        for j in range(1 + r):
            c = cin if j == 0 else f
            conv_w += c * mid + 9 * mid * mid + mid * f
            bn += [mid, mid, f]
            if j == 0:
                conv_w += c * f
                bn.append(f)
        cin = f
    if cfg.head_kind() == "conv_gap":
        head = cin * n
    else:
        side = image_size or cfg.image_size
        side = math.ceil(math.ceil(side / 2) / 2)  # stem, max-pool
        for _ in fs[1:]:
            side = math.ceil(side / 2)
        pooled = side // 7
        head = pooled * pooled * cin * n + n
    trainable = conv_w + 2 * sum(bn) + head
    return {"total": trainable + 2 * sum(bn), "trainable": trainable, "non_trainable": 2 * sum(bn)}


def count_params(model) -> dict[str, int]:
    """Total, trainable and non-trainable (BN moving statistics) parameter counts."""
    import numpy as np

    tr = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    nt = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"total": tr + nt, "trainable": tr, "non_trainable": nt}


def layer_type_counts(model) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(type(layer).__name__ for layer in model.layers))


def make_nontrivial(model, sample, seed: int = 0, logit_std: float = 2.0):
    """Give a freshly built model weights that exercise every path (for parity tests and demos).

    A fresh model has zero-gamma third BNs (every block starts as its shortcut) and BN statistics
    0/1; this draws gamma, beta, moving mean and variance at random, then rescales the head so the
    logits on ``sample`` (NHWC batch) have standard deviation ``logit_std`` (sigmoids not saturated).
    """
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.3, 0.8, g.shape).astype(np.float32),
                               rng.normal(0, 0.1, b.shape).astype(np.float32),
                               rng.normal(0, 0.1, m.shape).astype(np.float32),
                               rng.uniform(0.5, 1.5, v.shape).astype(np.float32)])
    top = topology(model)
    head = model.get_layer(top.head)
    pre = keras.Model(model.input, model.get_layer(top.output).input)
    logits = np.asarray(pre(np.asarray(sample, np.float32), training=False))
    std = float(logits.std()) or 1.0
    ws = head.get_weights()
    head.set_weights([w * (logit_std / std) for w in ws])
    return model
