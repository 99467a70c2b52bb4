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
# # 05 · JoyTag: the ViT tagger with a CNN stem
#
# JoyTag (fpgaminer/joytag) is a ViT-B/16 multi-label tagger at 448 px whose patch embedding is a small CNN; its
# README reports F1 0.578 at threshold 0.4 over 5000+ tags. This notebook builds the released configuration
# (checking 91,491,509 parameters and the 190 state-dict keys without allocating it), shows the preprocessing and the
# focal loss with its x256 multiplier, trains the profile's replica on the SYNTHETIC Danbooru-format set, evaluates
# it with the same metric code and test split as the DeepDanbooru tagger (F1 at 0.4 and at the threshold where
# precision equals recall, mAP) in one table, saves it in the released folder format (so `acg2vec-lab tag --model
# joytag` works) and measures its pooled trunk output as an image embedding. About 1-2 min in `smoke`, under 10 min
# in `cpu`.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks the data size and the model variant
SEED = 0  # seed for initialisation and data order
THRESHOLD = 0.4  # the threshold JoyTag's README reports F1 at
PREVIEW_INDEX = 0  # which test image the preprocessing and tag examples show

# %%
import acg2vec_lab
from acg2vec_lab import load_config, record, runtime, save_fig
from acg2vec_lab.config import variant_for

versions = runtime.setup_notebook(SEED)
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

runtime.seed_everything(SEED)
cfg = load_config("joytag", PROFILE)
{k: versions[k] for k in ("python", "torch", "numpy")} | {"variant": variant_for(PROFILE)}

# %% [markdown]
# ## 1. The released configuration
#
# `config.json` of the released model is not in the repository; the training default `SWModel20` (12 blocks, width
# 768, MLP 3072, 12 heads, CNN stem `conv 64-128-256-512` with channel LayerNorm + ReLU, then a 1x1 conv to 768)
# with the 5813 tags of `top_tags.txt` gives the README's 91.5 M. Built on PyTorch's `meta` device: exact shapes and
# counts, no memory.

# %%
from acg2vec_lab.models.joytag.model import build_model, count_parameters, expected_parameters

full_cfg = load_config("joytag", "full")
with torch.device("meta"):
    released = build_model(full_cfg)
keys = list(released.state_dict())
parts = {"CNN stem": released.patch_embeddings, "12 blocks": released.blocks, "final norm": released.norm, "head": released.head}
full_params = count_parameters(released)
table = pd.DataFrame([{"part": k, "params": count_parameters(m)} for k, m in parts.items()] +
                     [{"part": "total", "params": full_params}])
grid = full_cfg.image_size // full_cfg.patch_size
{"tokens": f"{grid}x{grid} = {grid * grid}", "state-dict keys": len(keys), "buffers": len(list(released.buffers()))}, table

# %%
import inspect

from acg2vec_lab.models.joytag import model as jt_model

print(inspect.getsource(jt_model.ViTBlock.forward))
print(inspect.getsource(jt_model.JoyTagViT.forward))

# %% [markdown]
# ## 2. Preprocessing
#
# Pad to a square with **white**, the image centred; resize to the model size with **bicubic** (inference; the
# training code used bilinear); /255; CLIP mean/std; NCHW. A test image cut to a tall strip shows the padding.

# %%
from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.models.joytag.preprocess import CLIP_MEAN, CLIP_STD, preprocess

dataset = synthetic_dataset(PROFILE)
test_posts = dataset.split("test")
img = dataset.load_image(test_posts[PREVIEW_INDEX])
strip = img.crop((0, 0, img.width // 2, img.height))
x = preprocess(strip, cfg.image_size)
shown = np.clip(x.transpose(1, 2, 0) * CLIP_STD + CLIP_MEAN, 0, 1)
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(strip); axes[0].set_title(f"input {strip.size[0]}x{strip.size[1]}")
axes[1].imshow(shown); axes[1].set_title(f"model input {x.shape} (un-normalised)")
for ax in axes: ax.set_axis_off()
save_fig(fig, "preprocess")
fig

# %% [markdown]
# ## 3. Focal loss and the loss multiplier
#
# `focal2` = binary focal loss (gamma 2) x 256. With thousands of mostly-negative tags the mean focal loss is tiny;
# the README calls the multiplier essential for fp16 training (the gradient scaler could not cope otherwise). The
# values for an untrained replica on one batch:

# %%
from acg2vec_lab.models.joytag import train as jt
from acg2vec_lab.models.joytag.loss import tag_loss

train_posts = dataset.split("train")
if cfg.max_train:
    train_posts = train_posts[:cfg.max_train]
tags, categories = jt.top_tags(train_posts, cfg.n_tags)
x_train, y_train = jt.load_images(dataset, train_posts, cfg.image_size), jt.tag_targets(train_posts, tags)
x_test, y_test = jt.load_images(dataset, test_posts, cfg.image_size), jt.tag_targets(test_posts, tags)
torch.manual_seed(SEED)
with torch.no_grad():
    logits = build_model(cfg).eval()(torch.from_numpy(x_train[:16]))[:, :len(tags)]
target = torch.from_numpy(y_train[:16])
{"tags (top of train)": len(tags), "config n_tags": cfg.n_tags, "train": x_train.shape, "test": x_test.shape,
 "positives per image": float(y_train.sum(1).mean())} | {k: float(tag_loss(logits, target, k)) for k in ("ce", "focal", "focal2")}

# %% [markdown]
# ## 4. Training
#
# AdamW (the README's LAMB is not in torch; it says AdamW also works) with cosine decay, weight decay 0.05,
# gradient clipping 1.0, `focal2`, a horizontal flip. The output width is the number of tags kept above.

# %%
import time

t0 = time.time()
model, hist = jt.train(cfg, x_train, y_train, seed=SEED, log=print)
train_seconds = time.time() - t0
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, len(hist["loss"]) + 1), hist["loss"], marker="o")
ax.set_xlabel("epoch"); ax.set_ylabel("focal2 loss (x256)"); ax.set_title(f"JoyTag {variant_for(PROFILE)} training")
save_fig(fig, "loss")
{"seconds": round(train_seconds, 1), "params": count_parameters(model), "loss first/last": (hist["loss"][0], hist["loss"][-1])}

# %% [markdown]
# ## 5. Save in the released format, load back as a Tagger
#
# `config.json` (`class` + constructor arguments) + `model.safetensors` + `top_tags.txt` (+ `categories.json`),
# in `checkpoint_dir("joytag", variant)`. `load_joytag_tagger(PROFILE)` reads it through the same loader that
# reads the released folder; the tagger's predictions must equal the in-memory model's.

# %%
from acg2vec_lab.models.joytag.tagger import load_joytag_tagger
from acg2vec_lab.paths import checkpoint_dir
from acg2vec_lab.tagging.base import Tagger

ckpt = jt.save_checkpoint(checkpoint_dir("joytag", variant_for(PROFILE)), model, cfg, tags, categories,
                          {"trained_on": f"synthetic_dataset({PROFILE!r}) train split", "seed": SEED})
joytag = load_joytag_tagger(PROFILE)
probs_test = jt.predict_probs(model, x_test)
reload_diff = float(np.abs(joytag.predict(x_test[:8]) - probs_test[:8]).max())
{"folder": str(ckpt), "files": sorted(p.name for p in ckpt.iterdir()), "is Tagger": isinstance(joytag, Tagger),
 "max |reloaded - in memory|": reload_diff}

# %% [markdown]
# ## 6. Evaluation on the test split, beside DeepDanbooru
#
# Both taggers go through `comparison_table`: each with its own preprocessing, on the same `synthetic_dataset(PROFILE)
# .split("test")` posts, scored by `acg2vec_lab.tagging.metrics` on the tags both output (rating pseudo-tags
# excluded). JoyTag's own vocabulary is scored first, beside a baseline that ignores the pixels and predicts each
# tag's train frequency (frequent tags such as `1girl` make F1 look good on their own).

# %%
from acg2vec_lab.models.joytag.experiment import comparison_table, deepdanbooru_if_trained, evaluate_probs

own = evaluate_probs(y_test, probs_test, THRESHOLD)
deepdanbooru, dd_note = deepdanbooru_if_trained(PROFILE)
taggers = {"joytag": joytag} | ({"deepdanbooru": deepdanbooru} if deepdanbooru is not None else {})
comparison, common = comparison_table(dataset, test_posts, taggers, THRESHOLD)
prior = evaluate_probs(y_test, np.tile(y_train.mean(0), (len(y_test), 1)), THRESHOLD)  # no pixels: train tag frequency
print(dd_note)
pd.DataFrame([{"model": "joytag (own vocabulary)", "n_tags_scored": len(tags), **own},
              {"model": "tag-frequency prior (baseline)", "n_tags_scored": len(tags), **prior}]).round(3)

# %%
comparison.round(3)

# %%
shown_tags = sorted(((float(p), t) for t, p in zip(tags, probs_test[PREVIEW_INDEX]) if p >= THRESHOLD), reverse=True)[:12]
truth = set(test_posts[PREVIEW_INDEX].tag_names())
pd.DataFrame([{"tag": t, "prob": round(p, 3), "in truth": t in truth} for p, t in shown_tags])

# %% [markdown]
# ## 7. The pooled trunk output as an embedding
#
# The `joytag` embedder (`acg2vec_lab/embedders/joytag.py`) returns the mean of the final-LayerNorm tokens
# (`d_model`-d) and joins the retrieval notebooks. Here: leave-one-out retrieval of test images that share a
# character tag, trained checkpoint vs the same architecture at random init.

# %%
import dataclasses

from acg2vec_lab.embedders import get
from acg2vec_lab.models.joytag.experiment import character_retrieval, model_embedder

emb = get("joytag", PROFILE)
torch.manual_seed(SEED)
random_model = build_model(dataclasses.replace(cfg, n_tags=len(tags)))
retrieval = pd.DataFrame({emb.weights: character_retrieval(emb.encode, dataset, test_posts),
                          "random init": character_retrieval(model_embedder(random_model), dataset, test_posts)}).T
retrieval[["recall@1", "recall@5", "chance_recall@5", "MRR", "n_queries"]].round(3)

# %% [markdown]
# ## 8. Headline numbers

# %%
record("joytag/params_full", full_params)
record("joytag/state_dict_keys", len(keys))
record("joytag/params_replica", count_parameters(model))
record("joytag/n_tags_trained", len(tags))
record("joytag/micro_f1@0.4", own["micro_f1@th"])
record("joytag/f1@p_eq_r", own["f1@p_eq_r"])
record("joytag/threshold_p_eq_r", own["threshold_p_eq_r"])
record("joytag/mAP", own["mAP"])
record("joytag/prior_micro_f1@0.4", prior["micro_f1@th"])
record("joytag/prior_mAP", prior["mAP"])
record("joytag/train_loss_last", hist["loss"][-1])
record("joytag/embed_recall@1", retrieval.iloc[0]["recall@1"])
record("joytag/embed_recall@1_random", retrieval.iloc[1]["recall@1"])
record("joytag/deepdanbooru_compared", "deepdanbooru" in taggers)
if "deepdanbooru" in taggers:
    dd = comparison.set_index("model").loc["deepdanbooru"]
    record("joytag/deepdanbooru_micro_f1@0.4", dd["micro_f1@th"])
    record("joytag/deepdanbooru_mAP", dd["mAP"])
assert full_params == 91_491_509 and len(keys) == 190
assert reload_diff < 1e-5
assert np.isfinite(hist["loss"]).all() and hist["loss"][-1] < hist["loss"][0]
assert 0 <= own["micro_f1@th"] <= 1 and 0 <= own["mAP"] <= 1
comparison.round(3)
