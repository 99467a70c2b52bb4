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
# variant, the loaders for released file formats (on files this package writes, and on a project written
# and scored by the original `deepdanbooru` package itself), the original's preprocessing reproduced
# and compared with a Pillow/white-composite alternative on real art, and the PyTorch re-implementation
# checked against TensorFlow layer by layer, including an odd input size where "same" padding is
# asymmetric. The networks carry random weights (no trained tagger is involved); see the README's
# notebook map for measured runtimes.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks the deepdanbooru config used for the loader and parity demos
SEED = 0  # seeds random, numpy, torch and tensorflow
ODD_SIZE = (67, 53)  # (height, width) where TF "same" padding is asymmetric, for the parity check
BATCH = 2  # images per parity batch
BUILD_SPEC_VARIANTS = False  # True: also build v1/v2/v4/resnet_152 in Keras to confirm the formula (about a minute)

# %%
import acg2vec_lab  # first: its environment defaults (oneDNN off, offline hubs) must precede keras and torch

# isort: split
import inspect
import time

import keras
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown

from acg2vec_lab import load_config, record, runtime, save_fig, viz

# seeds keras / TF and torch too (imported above); random weights, random inputs: the Ren'Py art rows say "real"
versions = runtime.setup_notebook(SEED, data="none")
pd.Series(versions, name="version").to_frame()

# %%
from acg2vec_lab.models.deepdanbooru import loaders as L
from acg2vec_lab.models.deepdanbooru import tf_model as T
from acg2vec_lab.models.deepdanbooru.config import EMBEDDING_CUTS, VARIANTS, DeepDanbooruConfig
from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec, describe_cut
from acg2vec_lab.paths import run_dir

pd.DataFrame([{"variant": k, "filter_sizes": v[0], "repeat_sizes": v[1], "head": v[2]} for k, v in VARIANTS.items()])

# %% [markdown]
# ## 1. The building blocks
#
# Every conv is `Conv2D(padding="same", use_bias=False)`, every BN has Keras' defaults
# (`epsilon=1e-3, momentum=0.99`). A projection block puts the stride on the 3x3 conv, starts its third BN at gamma = 0
# (so a fresh block is just its shortcut) and creates the 1x1 shortcut *after* the main path, which
# decides the Keras name suffixes. The source shown is the tested package code.

# %%
Markdown("```python\n" + inspect.getsource(T.conv_bn) + "\n" + inspect.getsource(T.projection_block)
         + "\n" + inspect.getsource(T.bottleneck_block) + "```")

# %% [markdown]
# ## 2. resnet_custom_v3 at 512 px: the stage table
#
# Built symbolically (no forward pass; kernels zero-initialised to save drawing the random normals). This is the first model of the session, so Keras gives it the same auto-names as the
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
# The same table as a figure: what each stage hands on, read off the built graph. The channels never shrink
# while the feature map halves; the axis is logarithmic (base two), so each halving or doubling is one equal step.

# %%
stage_sizes = {f"stage {r.stage} ({r.blocks} blocks)": {"output channels": r.out_ch, "bottleneck channels": r.mid_ch,
                                                         "feature-map side (px)": int(r.spatial.split("x")[0])}
               for r in stage_table.itertuples()}
fig = viz.grouped_bars(stage_sizes, f"resnet_custom_v3 at {full_cfg.image_size} px: output of each stage (built graph)",
                       "size (log2 axis)", log2=True)
save_fig(fig, "stage_sizes")
viz.show(fig)

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
# ## 6. Loaders: on files written here, and on a project written by the original code
#
# The profile's config (tiny in smoke, small in cpu) is given random BN statistics and a rescaled head
# so every path matters and the sigmoids are not saturated. It is written by this package as (a) a
# DeepDanbooru project folder with a legacy Keras 2 `.h5` (float32 and float16), and (b) a
# TorchDeepDanbooru-style state dict (BN folded into the convs, bias on all but the head conv, a `tags`
# key, the shortcut numbered before the main path except in stage 3). Each is read back by topology
# and compared with the model that wrote it: a round trip, which a misread format shared by our
# writer and our reader would pass.
#
# So (c) the **original** `deepdanbooru` package (1.0.4, under the legacy Keras 2 `tf_keras` with
# `TF_USE_LEGACY_KERAS=1`, in a subprocess: `tests/independent/deepdanbooru_original.py`) builds the
# same architecture with its own `resnet_original_bottleneck_model` + `conv_gap` head, gives its BNs
# random statistics, saves the project with its own h5 writer, reloads it and scores three images with
# its own `evaluate_image` (its `load_image_for_evaluate` decoding and resizing). Our `load_project`
# reads that folder and our `"deepdanbooru"` preprocessing reads the same files; the row compares the
# scores. The images are Ren'Py art: a background JPEG, the same pixels re-saved here as an RGB PNG,
# and an RGBA character sprite. (`tests/test_loaders_independent.py` also checks the full
# `create_resnet_custom_v3`, a hand-folded port `.pt`, JoyTag safetensors and a Real-CUGAN `.pth` built
# from hand-written key lists.)

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
OURS = "acg2vec_lab writer (round trip)"
for dtype in ("float32", "float16"):
    folder = L.write_project(files / f"project_{dtype}", model, tags, categories, name="resnet_custom", dtype=dtype)
    proj = L.load_project(folder)
    loader_rows.append({"file": proj.model_file.name, "format": f"legacy Keras 2 h5, {dtype}", "written by": OURS,
                        "independent": False, "compared with": "the writer's model, random inputs",
                        "MB": round(proj.model_file.stat().st_size / 1e6, 2), "tags": len(proj.tags),
                        "max_abs_diff": float(np.abs(np.asarray(proj.model(x, training=False)) - reference).max())})
state = L.write_port_state_dict(L.keras_canonical(model), cfg, tags=tags)
torch.save(state, files / "model-port.pt")
port = L.load_port_into_torch(files / "model-port.pt", cfg=cfg)
with torch.no_grad():
    port_out = port(torch.from_numpy(x)).numpy()
loader_rows.append({"file": "model-port.pt", "format": "TorchDeepDanbooru state dict (BN folded)", "written by": OURS,
                    "independent": False, "compared with": "the writer's model, random inputs",
                    "MB": round((files / "model-port.pt").stat().st_size / 1e6, 2), "tags": len(port.tags),
                    "max_abs_diff": float(np.abs(port_out - reference).max())})

# (c) the original package writes and scores a project; our loader and preprocessing read the same files
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image
from acg2vec_lab.models.real_cugan.weights import renpy_image_paths
from acg2vec_lab.paths import PROJECT_DIR

art = renpy_image_paths()
bg_jpeg = next(p for p in art if p.suffix == ".jpg")
sprite = next(p for p in art if p.suffix == ".png")
bg_png = files / "bg_rgb.png"
Image.open(bg_jpeg).convert("RGB").save(bg_png)  # the JPEG's Pillow-decoded pixels, lossless, no alpha
art_files = {"JPEG background": bg_jpeg, "RGB PNG (same pixels)": bg_png, "RGBA sprite": sprite}
fs, rs = cfg.stages()
out_dir = files / "original"
proc = subprocess.run([sys.executable, str(PROJECT_DIR / "tests" / "independent" / "deepdanbooru_original.py"),
                       "--out", str(out_dir), "--height", str(cfg.image_size), "--width", str(cfg.image_size),
                       "--filters", ",".join(map(str, fs)), "--repeats", ",".join(map(str, rs)), "--tags", str(cfg.n_tags),
                       "--seed", str(SEED), *map(str, art_files.values())],
                      env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"},
                      capture_output=True, text=True, timeout=900)
assert proc.returncode == 0, proc.stderr[-3000:]
original_meta = json.loads((out_dir / "original.json").read_text())
with np.load(out_dir / "original.npz", allow_pickle=False) as z:
    original_scores, original_inputs = z["scores"], z["inputs"]
orig_proj = L.load_project(original_meta["project"])
size = (cfg.image_size, cfg.image_size)
prep_rows = []
for i, (kind, path) in enumerate(art_files.items()):
    row = {"image": f"{kind}: {path.name}"}
    for mode in ("deepdanbooru", "deepdanbooru-white"):
        xi = preprocess_image(path, size, mode)
        row[f"{mode}: input max|diff| (levels)"] = float(np.abs(xi - original_inputs[i]).max() * 255)
        row[f"{mode}: pixels differing"] = float((np.abs(xi - original_inputs[i]) * 255 > 0.5).mean())
        row[f"{mode}: score max|diff|"] = float(np.abs(np.asarray(orig_proj.model(xi[None], training=False))[0]
                                                       - original_scores[i]).max())
    prep_rows.append(row)
prep_table = pd.DataFrame(prep_rows)
loader_rows.append({"file": Path(original_meta["model_file"]).name, "format": "legacy Keras 2 h5 (tf_keras model.save)",
                    "written by": f"original deepdanbooru 1.0.4 + {original_meta['keras_module'].split('.')[0]} "
                                  f"(TF {original_meta['tensorflow']})", "independent": True,
                    "compared with": "the original's evaluate_image scores on the 3 art files",
                    "MB": round(Path(original_meta["model_file"]).stat().st_size / 1e6, 2), "tags": len(orig_proj.tags),
                    "max_abs_diff": float(prep_table["deepdanbooru: score max|diff|"].max())})
loaders_table = pd.DataFrame(loader_rows)
loaders_table

# %% [markdown]
# ### The original's preprocessing, and the white-composite alternative
#
# The `"deepdanbooru"` mode reproduces `load_image_for_evaluate`: TensorFlow decodes the file
# (`tf.io.decode_png(channels=3)`, which also reads JPEG and **drops the alpha channel** of an RGBA
# PNG), AREA-resizes it into the box keeping the aspect ratio, re-centres it with an edge-replicating
# bilinear warp, divides by 255. The `"deepdanbooru-white"` mode keeps that geometry but decodes with
# Pillow and composites transparency on white, as this package's image loader does. Measured against
# the arrays and scores the original produced for the same three files:

# %%
prep_table

# %% [markdown]
# The port's conv numbering, as it is in the file:

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
# ## 9. Headline numbers and checks

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
record("loaders/original_project_score_max_abs_diff", float(loaders_table.loc[3, "max_abs_diff"]), data="real")
prep = prep_table.set_index("image")
for i, kind in enumerate(art_files):
    key = kind.split(" (")[0].lower().replace(" ", "_")
    for mode in ("deepdanbooru", "deepdanbooru-white"):
        record(f"preprocess/{mode}/{key}/input_max_levels", prep.iloc[i][f"{mode}: input max|diff| (levels)"], data="real")
        record(f"preprocess/{mode}/{key}/score_max_abs_diff", prep.iloc[i][f"{mode}: score max|diff|"], data="real")
# facts of the architecture, exact (not tolerances)
assert v3_total == 161_272_768, v3_total  # models.md 1.3, built with TF 2.15 there
assert (params["total"] == params["keras_built_total"]).where(params["keras_built_total"].notna(), True).all()
assert list(cuts["shape"]) == [(16, 16, 1024), (16, 16, 1024)]

# %% [markdown]
# ## What this shows

# %%
from acg2vec_lab import gates

PARITY_TOL = 1e-4  # the parity level for a loader: far above float32 noise (~1e-7), far below one JPEG level's effect
F16_TOL = 0.05  # a float16 export rounds every weight to 11 significant bits; the error grows with depth, so loose
sprite_row = prep.iloc[2]
jpeg_row = prep.iloc[0]
checks = [
    gates.Gate("loaders/h5_float32_roundtrip_max_abs_diff", float(loaders_table.loc[0, "max_abs_diff"]), 1e-7, 0.0,
               higher_is_better=False, why="same float32 weights: bit-exact expected"),
    gates.Gate("loaders/h5_float16_max_abs_diff", float(loaders_table.loc[1, "max_abs_diff"]), F16_TOL, 0.0,
               higher_is_better=False, why="float16 weight rounding"),
    gates.Gate("loaders/port_state_dict_max_abs_diff", float(loaders_table.loc[2, "max_abs_diff"]), PARITY_TOL, 0.0,
               higher_is_better=False, why="BN folding in float64, conv order by topology"),
    gates.Gate("loaders/original_project_vs_original_scores", float(loaders_table.loc[3, "max_abs_diff"]), PARITY_TOL, 0.0,
               higher_is_better=False, why="file and scores from the original deepdanbooru code"),
    gates.Gate("preprocess/deepdanbooru_mode_vs_original_input_levels",
               float(prep_table["deepdanbooru: input max|diff| (levels)"].max()), 1e-3, 0.0, higher_is_better=False,
               why="TensorFlow decode + AREA + edge warp, as the original"),
    gates.Gate("parity/tf_vs_torch_max_abs_diff", float(parity["max_abs_diff (all stages)"].max()), PARITY_TOL, 0.0,
               higher_is_better=False, why="every stage, config and odd size, BN unfused and folded"),
]
Markdown(f"""
**Loaders.** The h5 written here reads back bit-exactly in float32
(max |diff| {loaders_table.loc[0, 'max_abs_diff']:.1e}) and within float16 rounding in float16
({loaders_table.loc[1, 'max_abs_diff']:.1e}); the port state dict reproduces the Keras model to
{loaders_table.loc[2, 'max_abs_diff']:.1e}. Those are round trips through our own writer. The decisive row
is the project **written and scored by the original `deepdanbooru` code**: our loader plus the
`"deepdanbooru"` preprocessing reproduce its scores to {loaders_table.loc[3, 'max_abs_diff']:.1e} on the three
art files (tolerance {PARITY_TOL:g}), so the h5 layout, the topology mapping and the preprocessing are
read as the original means them, not only as we write them.

**Preprocessing.** Decoding with TensorFlow as the original does gives the original's input arrays to
{prep_table['deepdanbooru: input max|diff| (levels)'].max():.2g} levels. The Pillow + white-composite mode differs
by up to {jpeg_row['deepdanbooru-white: input max|diff| (levels)']:.0f} levels on
{jpeg_row['deepdanbooru-white: pixels differing']:.0%} of the JPEG's pixels (the two JPEG decoders disagree),
moving the scores by {jpeg_row['deepdanbooru-white: score max|diff|']:.1e}, and on the RGBA sprite by
{sprite_row['deepdanbooru-white: input max|diff| (levels)']:.0f} levels
({sprite_row['deepdanbooru-white: score max|diff|']:.1e} in score), because the original drops alpha and shows
the network whatever colour the transparent pixels store, where the white composite shows white. On
the lossless RGB PNG both modes agree ({prep.iloc[1]['deepdanbooru-white: score max|diff|']:.1e}). The networks
here are random, so the score differences say how much the input changes, not which tags flip.

**PyTorch.** TF and PyTorch agree to {float(parity['max_abs_diff (all stages)'].max()):.1e} over every stage,
at the config size and the odd {ODD_SIZE[0]}x{ODD_SIZE[1]}, with BN unfused and folded.

**Try next.** Score the released `deepdanbooru-v3-20211112` project (not redistributable here) through
both preprocessing modes on transparent sprites and compare the tag lists; decide per use whether the
white composite (what a person sees) or the original's alpha drop (what the model was run on) is wanted.
""")

# %%
gates.table(checks)

# %%
passed = gates.check_all(checks)
print(f"{len(passed)} checks passed")
