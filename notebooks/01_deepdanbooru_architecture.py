# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (acg2vec-lab)
#     language: python
#     name: acg2vec-lab
# ---

# %% [markdown]
# # 01 · DeepDanbooru architecture: stages, cut points, loaders and TF/PyTorch parity
#
# DeepDanbooru's `resnet_custom_v3` (the released tagger ACG2vec builds on) rebuilt in Keras from the
# specification: its stage table at 512 px, where the two illust2vec cut points `activation_96` and
# `add_43` sit and why Keras layer names cannot be used to find them, parameter counts of every
# variant, the loaders for released file formats demonstrated on files written here, and the PyTorch
# re-implementation checked against TensorFlow layer by layer, including an odd input size where "same"
# padding is asymmetric. About a minute on two idle cores in the smoke and cpu profiles, two under load (two symbolic builds of the full v3 with
# no forward pass, then the profile's config for the loader and parity demos).

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks the deepdanbooru config used for the loader and parity demos
SEED = 0  # seeds random, numpy, torch and tensorflow
ODD_SIZE = (67, 53)  # (height, width) where TF "same" padding is asymmetric, for the parity check
BATCH = 2  # images per parity batch
BUILD_SPEC_VARIANTS = False  # True: also build v1/v2/v4/resnet_152 in Keras to confirm the formula (about a minute)

# %%
import inspect
import time

import numpy as np
import pandas as pd
from IPython.display import Markdown

import acg2vec_lab
from acg2vec_lab import load_config, record, runtime

versions = runtime.setup_notebook(SEED)
pd.Series(versions, name="version").to_frame()

# %%
import keras
import torch

from acg2vec_lab.models.deepdanbooru import loaders as L
from acg2vec_lab.models.deepdanbooru import tf_model as T
from acg2vec_lab.models.deepdanbooru.config import EMBEDDING_CUTS, VARIANTS, DeepDanbooruConfig
from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec, describe_cut
from acg2vec_lab.paths import run_dir

runtime.seed_everything(SEED)  # tensorflow and torch are imported now
pd.DataFrame([{"variant": k, "filter_sizes": v[0], "repeat_sizes": v[1], "head": v[2]} for k, v in VARIANTS.items()])

# %% [markdown]
# ## 1. The building blocks
#
# Every conv is `Conv2D(padding="same", use_bias=False)`, every BN has Keras' defaults (epsilon 1e-3,
# momentum 0.99). A projection block puts the stride on the 3x3 conv, starts its third BN at gamma = 0
# (so a fresh block is just its shortcut) and creates the 1x1 shortcut *after* the main path, which
# decides the Keras name suffixes. The source shown is the tested package code.

# %%
Markdown("```python\n" + inspect.getsource(T.conv_bn) + "\n" + inspect.getsource(T.projection_block)
         + "\n" + inspect.getsource(T.bottleneck_block) + "```")

# %% [markdown]
# ## 2. resnet_custom_v3 at 512 px: the stage table
#
# Built symbolically (no forward pass; kernels zero-initialised to save the seconds of drawing 161 M
# normals). This is the first model of the session, so Keras gives it the same auto-names as the
# released file. The table is computed from the built graph: stage i has 1 projection block plus
# `repeat_sizes[i]` identity blocks; stage 0 keeps the 128x128 of the stem + max-pool, each later stage
# halves it.

# %%
keras.backend.clear_session()
full_cfg = load_config("deepdanbooru", variant="full")  # the released network: resnet_custom_v3, 512 px, 9176 tags
t0 = time.perf_counter()
v3 = T.build_model(full_cfg, init="zeros")
v3_build_s = time.perf_counter() - t0
v3_top = T.topology(v3)
stage_table = pd.DataFrame(T.stage_table(v3))
print(f"built in {v3_build_s:.1f} s; layer types: {T.layer_type_counts(v3)}")
stage_table

# %% [markdown]
# ## 3. Where `activation_96` and `add_43` sit
#
# Global block *b* (0-based) owns `add_b`, and its post-add ReLU is `activation_{3b+3}` (the stem ReLU is
# `activation`, each block has two inner ReLUs). So the README's `activation_96` is the ReLU output of
# block 31, the stride-2 projection block opening stage 3; the original code's `add_43` is the pre-ReLU
# sum of block 43, the 13th block of the same stage. Both are 16x16x1024; GAP gives 1024 numbers.
# Here they are found by block position, and the names are read off afterwards.

# %%
cuts = pd.DataFrame([describe_cut(v3, c) for c in EMBEDDING_CUTS])
cuts["backbone_params"] = [T.count_params(keras.Model(v3.input, v3.get_layer(n).output))["total"] for n in cuts["layer"]]
cuts

# %% [markdown]
# ## 4. Why the names cannot be trusted
#
# Keras numbers auto-named layers per session. Building the same network a second time (as
# DeepDanbooru's own `train_project` does for the float32 copy under mixed precision) shifts every
# suffix; a file saved from that copy has other names for the same layers. Locating by topology gives
# the same blocks both times.

# %%
v3_again = T.build_model(full_cfg, init="zeros")
again_top = T.topology(v3_again)
shift = pd.DataFrame([{"cut": c, "block": T.cut_block(v3_top, c).index,
                       "first build": T.cut_layer_name(v3_top, c), "second build": T.cut_layer_name(again_top, c),
                       "block found by position (2nd)": T.cut_block(again_top, c).index} for c in EMBEDDING_CUTS])
suffix_shift = int(again_top.blocks[0].add.rsplit("_", 1)[1])  # block 0 was "add", now "add_<shift>"
del v3_again, again_top
shift

# %% [markdown]
# ## 5. Parameter counts per variant
#
# From the architecture formula (`analytic_param_counts`, no build) and, where the model is built in
# this notebook, from Keras. Totals include the BN moving statistics (non-trainable). The spec variants
# use 1000 tags (v3 also at its released 9176) and the input size the specification lists (512, and
# 224 for resnet_152, whose Dense head depends on it).

# %%
rows = []
spec = [(name, 1000, 224 if name == "resnet_152" else 512) for name in VARIANTS] + [("resnet_custom_v3", 9176, 512)]
for name, n_tags, size in spec:
    cfg = DeepDanbooruConfig(variant=name, n_tags=n_tags, image_size=size)
    built = None
    if (name, n_tags) == ("resnet_custom_v3", 9176):
        built = T.count_params(v3)["total"]
    elif BUILD_SPEC_VARIANTS:
        built = T.count_params(T.build_model(cfg, init="zeros"))["total"]
    rows.append({"model": f"{name} ({n_tags} tags, {size} px)", **T.analytic_param_counts(cfg), "keras_built_total": built})
for variant in ("tiny", "small", "full"):
    cfg = load_config("deepdanbooru", variant=variant)
    built = T.count_params(T.build_model(cfg, init="zeros"))["total"] if variant != "full" else T.count_params(v3)["total"]
    rows.append({"model": f"config {variant}: {cfg.variant} {cfg.stages() if cfg.variant == 'custom' else ''} "
                          f"({cfg.n_tags} tags, {cfg.image_size} px)", **T.analytic_param_counts(cfg), "keras_built_total": built})
params = pd.DataFrame(rows)
v3_total = T.count_params(v3)["total"]
del v3
keras.backend.clear_session()
params

# %% [markdown]
# ## 6. Loaders on files written here
#
# The profile's config (tiny in smoke, small in cpu) is given random BN statistics and a rescaled head
# so every path matters and the sigmoids are not saturated. It is written as (a) a DeepDanbooru
# project folder with a legacy Keras 2 `.h5` (float32 and float16), and (b) a TorchDeepDanbooru-style
# state dict (BN folded into the convs, bias on all but the head conv, a `tags` key, the shortcut
# numbered before the main path except in stage 3). Each is read back by topology and compared with
# the model that wrote it.

# %%
cfg = load_config("deepdanbooru", PROFILE)
rng = np.random.default_rng(SEED)
model = T.build_model(cfg)
T.make_nontrivial(model, rng.uniform(0, 1, (4, cfg.image_size, cfg.image_size, 3)), seed=SEED)
x = rng.uniform(0, 1, (BATCH, cfg.image_size, cfg.image_size, 3)).astype("float32")
reference = np.asarray(model(x, training=False))
tags = [f"general_{i}" for i in range(cfg.n_tags - 4)] + ["some_character", "rating:safe", "rating:questionable", "rating:explicit"]
categories = [{"name": "General", "start_index": 0}, {"name": "Character", "start_index": cfg.n_tags - 4},
              {"name": "System", "start_index": cfg.n_tags - 3}]
files = run_dir() / "01_deepdanbooru_files"
loader_rows = []
for dtype in ("float32", "float16"):
    folder = L.write_project(files / f"project_{dtype}", model, tags, categories, name="resnet_custom", dtype=dtype)
    proj = L.load_project(folder)
    loader_rows.append({"file": proj.model_file.name, "format": f"legacy Keras 2 h5, {dtype}",
                        "MB": round(proj.model_file.stat().st_size / 1e6, 2), "tags": len(proj.tags),
                        "max_abs_diff": float(np.abs(np.asarray(proj.model(x, training=False)) - reference).max())})
state = L.write_port_state_dict(L.keras_canonical(model), cfg, tags=tags)
torch.save(state, files / "model-port.pt")
port = L.load_port_into_torch(files / "model-port.pt", cfg=cfg)
with torch.no_grad():
    port_out = port(torch.from_numpy(x)).numpy()
loader_rows.append({"file": "model-port.pt", "format": "TorchDeepDanbooru state dict (BN folded)",
                    "MB": round((files / "model-port.pt").stat().st_size / 1e6, 2), "tags": len(port.tags),
                    "max_abs_diff": float(np.abs(port_out - reference).max())})
loaders_table = pd.DataFrame(loader_rows)
loaders_table

# %% [markdown]
# The float16 file differs by the rounding of its weights (a mixed-precision export loses the
# same), the float32 file reproduces the writer exactly. The port's conv numbering, as it is in the
# file:

# %%
_, mapping = L.port_conv_mapping({int(k.split("_")[2].split(".")[0]): tuple(v.shape) for k, v in state.items() if k.endswith(".weight")}, cfg)
top = T.topology(model)
pd.DataFrame([{"stage": s, "projection block": b[0].index, "main path n_Conv": [mapping[f"b{b[0].index}.c{j}"] for j in (1, 2, 3)],
               "shortcut n_Conv": mapping[f"b{b[0].index}.sc"]} for s, b in enumerate(top.stage_blocks())])

# %% [markdown]
# ## 7. TensorFlow vs PyTorch
#
# The PyTorch model takes NHWC input like the ports, computes TF "same" padding from the actual size
# in every conv and the max-pool (`-inf` padding there), and keeps BN unfused (eps 1e-3) or folds it.
# The ledger compares every stage's output; at the odd size the stride-2 layers pad (0, 1) on one axis
# and (1, 1) on the other.

# %%
flex = T.build_model(cfg, input_shape=(None, None, 3), init="zeros")
L.set_keras_canonical(flex, L.keras_canonical(model))
x_odd = rng.uniform(0, 1, (BATCH, *ODD_SIZE, 3)).astype("float32")
parity_rows, ledgers = [], {}
for folded in (False, True):
    tmodel = L.keras_to_torch(flex, folded=folded)
    for name, xx in (("config size", x), ("odd size", x_odd)):
        ledgers[(folded, name)] = L.parity_ledger(flex, tmodel, xx)
        parity_rows.append({"torch BN": "folded" if folded else "unfused", "input": f"{xx.shape[1]}x{xx.shape[2]}",
                            "max_abs_diff (all stages)": ledgers[(folded, name)]["max_abs_diff"].max(),
                            "max_abs_diff (probabilities)": ledgers[(folded, name)]["max_abs_diff"].iloc[-1]})
parity = pd.DataFrame(parity_rows)
parity

# %%
ledgers[(False, "odd size")]

# %% [markdown]
# ## 8. illust2vec from the same pass
#
# One Keras model with two outputs shares every layer with the tagger: the probabilities and the GAP of
# the cut (stage width: 1024 for v3). `benchmarks/bench_deepdanbooru.py` times tags-only against
# tags + embedding.

# %%
both = build_illust2vec(model, cfg.embedding_cut, cfg.l2_normalize)
probs, emb = (np.asarray(a) for a in both(x, training=False))
cut_info = describe_cut(model, cfg.embedding_cut)
pd.DataFrame([{"output": "tags", "shape": probs.shape, "note": f"max |diff| to the tagger alone {np.abs(probs - reference).max():.1e}"},
              {"output": "embedding", "shape": emb.shape,
               "note": f"GAP of {cut_info['layer']} = block {cut_info['global_block']} (stage {cut_info['stage']}, "
                       f"block {cut_info['block_in_stage']} in stage), min {emb.min():.3f}"}])

# %% [markdown]
# ## 9. Headline numbers

# %%
record("params/resnet_custom_v3_512_9176", v3_total)
record("params/config_total", int(T.count_params(model)["total"]), profile=PROFILE)
record("cut/activation_96_block", int(cuts.loc[0, "global_block"]))
record("cut/add_43_block", int(cuts.loc[1, "global_block"]))
record("names/suffix_shift_second_build", suffix_shift)
record("loaders/h5_float32_max_abs_diff", float(loaders_table.loc[0, "max_abs_diff"]))
record("loaders/h5_float16_max_abs_diff", float(loaders_table.loc[1, "max_abs_diff"]))
record("loaders/port_state_dict_max_abs_diff", float(loaders_table.loc[2, "max_abs_diff"]))
record("parity/tf_vs_torch_max_abs_diff", float(parity["max_abs_diff (all stages)"].max()))
assert v3_total == 161_272_768
assert (params["total"] == params["keras_built_total"]).where(params["keras_built_total"].notna(), True).all()
assert list(cuts["shape"]) == [(16, 16, 1024), (16, 16, 1024)]
assert float(parity["max_abs_diff (all stages)"].max()) <= 1e-4
assert loaders_table.loc[0, "max_abs_diff"] == 0.0 and loaders_table.loc[2, "max_abs_diff"] <= 1e-4
assert np.isfinite(loaders_table["max_abs_diff"]).all() and loaders_table.loc[1, "max_abs_diff"] < 0.05
