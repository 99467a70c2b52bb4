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
# README reports F1 at threshold `0.4` over 5000+ tags. This notebook builds the released configuration (checking
# 91,491,509 parameters and the 190 state-dict keys without allocating it), shows the preprocessing and the focal
# loss with its x256 multiplier, trains the profile's replica on the **SYNTHETIC** Danbooru-format set, evaluates it
# with the same metric code and test split as the DeepDanbooru tagger of notebook 02 (F1 at `0.4` and at the
# threshold where precision equals recall, mAP) beside the tag-prior baseline, saves it in the released folder format
# (so `acg2vec-lab tag --model joytag` works) and measures its pooled trunk output as an image embedding. The last
# cell gates JoyTag against the tag prior. Measured runtimes: the README's notebook map.
#
# **Your own data.** With `DATA` set to a folder (a Danbooru2021-format subset or a DeepDanbooru project), JoyTag and
# the DeepDanbooru tagger it is compared with are trained on that data, the run gets a folder of its own, keyed by
# the data's fingerprint (the synthetic one, which `acg2vec-lab tag --model joytag` loads, is left alone), and every
# number says `real: <folder>` where it says SYNTHETIC here.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks the data size and the model variant
SEED = 0  # seed for initialisation and data order
DATA = None  # None: the SYNTHETIC set; or a Danbooru2021-format folder / DeepDanbooru project (open_dataset)
THRESHOLD = 0.4  # the threshold JoyTag's README reports F1 at
PREVIEW_INDEX = 0  # which test image the preprocessing and tag examples show
ARENA_BOOTSTRAP = 200  # bootstrap resamples of the test images for the arena's 95 % intervals

# %%
import acg2vec_lab
from acg2vec_lab import gates, load_config, models, record, runtime, save_fig
from acg2vec_lab.config import variant_for
from acg2vec_lab.data.source import data_source_of

versions = runtime.setup_notebook(SEED, data=data_source_of(DATA))
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

runtime.seed_everything(SEED)
cfg = models.get("joytag").config(PROFILE, seed=SEED)  # the registry's config: SEED is part of the run's key
{k: versions[k] for k in ("python", "torch", "numpy")} | {"variant": variant_for(PROFILE)}

# %% [markdown]
# ## 1. The released configuration
#
# `config.json` of the released model is not in the repository; the training default `SWModel20` (12 blocks, width
# 768, MLP 3072, 12 heads, CNN stem `conv 64-128-256-512` with channel LayerNorm + ReLU, then a 1x1 conv to 768)
# with the 5813 tags of `top_tags.txt` gives the README's parameter count. Built on PyTorch's `meta` device: exact shapes and
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
from acg2vec_lab.data import open_dataset
from acg2vec_lab.data.source import headline_label, stamp_figure
from acg2vec_lab.models.joytag.preprocess import CLIP_MEAN, CLIP_STD, preprocess

dataset = open_dataset(DATA, PROFILE)
DATA_LABEL = headline_label(dataset)  # "SYNTHETIC", or "real: <folder>"
test_posts = dataset.split("test")
img = dataset.load_image(test_posts[PREVIEW_INDEX])
strip = img.crop((0, 0, img.width // 2, img.height))
x = preprocess(strip, cfg.image_size)
shown = np.clip(x.transpose(1, 2, 0) * CLIP_STD + CLIP_MEAN, 0, 1)
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(strip); axes[0].set_title(f"input {strip.size[0]}x{strip.size[1]}")
axes[1].imshow(shown); axes[1].set_title(f"model input {x.shape} (un-normalised)")
for ax in axes: ax.set_axis_off()
save_fig(stamp_figure(fig, dataset), "preprocess")
fig

# %% [markdown]
# ## 3. Focal loss and the loss multiplier
#
# `focal2` = binary focal loss (gamma 2) x 256. With thousands of mostly-negative tags the mean focal loss is tiny;
# the README calls the multiplier essential for fp16 training (the gradient scaler could not cope otherwise). The
# values below are the three losses of an untrained replica on one batch of training images.

# %%
from acg2vec_lab.models.joytag import train as jt
from acg2vec_lab.models.joytag.loss import tag_loss

train_data = jt.JoyTagData.from_dataset(dataset, cfg)  # the train split (capped at cfg.max_train), its top tags
tags, categories, x_train, y_train = train_data.tags, train_data.categories, train_data.x, train_data.y
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
# AdamW (the README's LAMB is not in torch; it says AdamW also works) with cosine decay, the config's weight decay
# (`cfg.weight_decay`) and gradient clipping (`cfg.grad_clip`), `focal2`, a horizontal flip. The output width is the
# number of tags kept above. The figure is the mean training loss per epoch.
#
# The model is the registry's run (`acg2vec_lab.models.get("joytag").ensure_trained`), in a folder keyed by (config,
# data fingerprint, seed, code version): a rerun on the same config, data and seed loads it instead of training, with
# the history recorded when it was trained. It is the run `acg2vec-lab tag --model joytag` and the `joytag` embedder
# load (section 5).

# %%
from acg2vec_lab.train.run import history_columns

trained = models.get("joytag").ensure_trained(cfg, dataset=dataset, data=train_data)
model = trained.info["result"]["model"] if trained.trained_now else trained.model  # the in-memory model when trained now
hist = history_columns(trained.run.manifest()["history"])
train_seconds = float(np.sum(hist["seconds"]))
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, len(hist["loss"]) + 1), hist["loss"], marker="o")
ax.set_xlabel("epoch"); ax.set_ylabel("focal2 loss (x256)"); ax.set_title(f"JoyTag {variant_for(PROFILE)} training")
save_fig(stamp_figure(fig, dataset), "loss")
{"weights": trained.weights_label, "trained now": trained.trained_now, "train seconds": round(train_seconds, 1),
 "params": count_parameters(model), "loss first/last": (hist["loss"][0], hist["loss"][-1])}

# %% [markdown]
# ## 5. The run folder: the released format, loaded back as a Tagger
#
# The run folder holds `config.json` (`class` + constructor arguments) + `model.safetensors` + `top_tags.txt`
# (+ `categories.json`), the released JoyTag folder format, beside the run's `identity.json` and `manifest.json`.
# `ensure_trained` reads it back through `load_joytag_tagger`, the loader that reads the released folder; the
# tagger's predictions must equal the in-memory model's (when the run was loaded rather than trained now, both
# come from the folder). `acg2vec-lab tag --model joytag` loads the run of the profile's SYNTHETIC set and seed 0,
# labelled with the data it was trained on; a run on your own data has another data fingerprint and so a folder of
# its own, and never replaces it.

# %%
from acg2vec_lab.tagging.base import Tagger

joytag = trained.info["tagger"]
probs_test = jt.predict_probs(model, x_test)
reload_diff = float(np.abs(joytag.predict(x_test[:8]) - probs_test[:8]).max())
tagged_by_cli = models.get("joytag").find(PROFILE, seed=SEED)  # what `tag --model joytag` loads for this seed
if dataset.is_synthetic:
    assert tagged_by_cli is not None and tagged_by_cli.folder == trained.run.folder, tagged_by_cli
{"folder": str(trained.run.folder), "files": sorted(p.name for p in trained.run.folder.iterdir()),
 "is Tagger": isinstance(joytag, Tagger), "source": joytag.source,
 "tag --model joytag loads": tagged_by_cli.label if tagged_by_cli else "no synthetic run for this profile",
 "max |reloaded - in memory|": reload_diff}

# %% [markdown]
# ## 6. Evaluation on the test split, beside the tag prior and DeepDanbooru
#
# JoyTag's own vocabulary is scored first, beside the **tag prior**: a baseline that ignores the pixels and gives
# every image each tag's train frequency, thresholded at the same `0.4` (frequent tags such as `1girl` make F1 look
# good on their own; its mAP is the mean test prevalence, what a ranking knowing nothing of the image gets).
# Then both taggers go through `comparison_table`: each with its own preprocessing, on the same
# `open_dataset(DATA, PROFILE).split("test")` posts, scored by `acg2vec_lab.tagging.metrics` on the tags both output
# (rating pseudo-tags excluded). The DeepDanbooru tagger is notebook 02's run on the same data, loaded or trained here
# by `train_tagger(PROFILE, dataset=dataset)`, so this comparison always runs. The two need not have the same training budget (in `cpu`
# they do not): the budget table counts each one's training images, epochs and image presentations from the two
# configs, and the findings say whether they match.

# %%
from acg2vec_lab.models.deepdanbooru.tagger import DeepDanbooruTagger
from acg2vec_lab.models.deepdanbooru.train import train_tagger
from acg2vec_lab.models.joytag.experiment import (
    comparison_table,
    evaluate_probs,
    prior_gates,
    tagger_probs,
    training_budgets,
)
from acg2vec_lab.tagging import metrics as M

own = evaluate_probs(y_test, probs_test, THRESHOLD)
prior = evaluate_probs(y_test, M.prior_probs(y_train, len(y_test)), THRESHOLD)  # no pixels: train tag frequency
dd_result = train_tagger(PROFILE, dataset=dataset)  # notebook 02's run on this data (loaded, or trained now)
deepdanbooru = DeepDanbooruTagger(dd_result.model, dd_result.tags, dd_result.categories,
                                  source=f"trained: {dd_result.checkpoint}")
budgets = training_budgets(PROFILE, dataset)
display(budgets)
pd.DataFrame([{"model": "joytag (own vocabulary)", "n_tags_scored": len(tags), **own},
              {"model": "tag-frequency prior (baseline)", "n_tags_scored": len(tags), **prior}]).round(3)

# %%
comparison, common = comparison_table(dataset, test_posts, {"joytag": joytag, "deepdanbooru": deepdanbooru}, THRESHOLD)
comparison.round(3)

# %% [markdown]
# ### The arena: every tagger on one protocol
#
# `acg2vec_lab.tagging.arena` is the protocol for any set of taggers, released ones included (`tag --weights`
# folders: WD14, DeepDanbooru projects, JoyTag): the same test images, the tags of the ground truth that every
# tagger outputs, F1 at each model's **recommended** thresholds (JoyTag `THRESHOLD`; DeepDanbooru here the
# `balanced` preset of `tagging.thresholds.PRESETS`, general / character), F1 where micro precision equals recall,
# mAP, per category, with bootstrap intervals (`ARENA_BOOTSTRAP` resamples of the test images), and the tag prior
# first. Rows whose interval overlaps the prior's are
# not shown to beat it.

# %%
from acg2vec_lab.tagging.arena import PRIOR as PRIOR_ROW
from acg2vec_lab.tagging.arena import Contender, arena_table
from acg2vec_lab.tagging.thresholds import PRESETS

dd_probs = tagger_probs(deepdanbooru, dataset, test_posts)
arena = arena_table(y_test, tags, categories,
                    [Contender("joytag", tags, probs_test, THRESHOLD, THRESHOLD, joytag.source),
                     Contender("deepdanbooru", deepdanbooru.tags, dd_probs, *PRESETS["balanced"], deepdanbooru.source)],
                    y_train=y_train, n_boot=ARENA_BOOTSTRAP, seed=SEED)
arena_all = arena[arena.group == "all"].set_index("model")
arena.drop(columns=["weights"]).round(3)

# %%
shown_tags = sorted(((float(p), t) for t, p in zip(tags, probs_test[PREVIEW_INDEX]) if p >= THRESHOLD), reverse=True)[:12]
truth = set(test_posts[PREVIEW_INDEX].tag_names())
pd.DataFrame([{"tag": t, "prob": round(p, 3), "in truth": t in truth} for p, t in shown_tags])

# %% [markdown]
# ## 7. The pooled trunk output as an embedding
#
# The `joytag` embedder (`acg2vec_lab/embedders/joytag.py`) returns the mean of the final-LayerNorm tokens
# (`d_model`-d) and joins the retrieval notebooks. Here: leave-one-out retrieval of test images that share a
# character tag, trained checkpoint vs the same architecture at random init (on your own data, the model trained above).

# %%
import dataclasses

from acg2vec_lab.embedders import get
from acg2vec_lab.models.joytag.experiment import character_retrieval, model_embedder

if dataset.is_synthetic:
    emb = get("joytag", PROFILE)
    trained_name, trained_encode = emb.weights, emb.encode
else:  # the registry's embedder would load the synthetic run: use the model just trained on this data
    trained_name, trained_encode = f"trained here on {DATA_LABEL}", model_embedder(model)
torch.manual_seed(SEED)
random_model = build_model(dataclasses.replace(cfg, n_tags=len(tags)))
retrieval = pd.DataFrame({trained_name: character_retrieval(trained_encode, dataset, test_posts),
                          "random init": character_retrieval(model_embedder(random_model), dataset, test_posts)}).T
retrieval[["recall@1", "recall@5", "chance_recall@5", "MRR", "n_queries"]].round(3)

# %% [markdown]
# ## 8. Headline numbers
#
# Recorded for the run's `metrics.csv` (the parameter counts carry data source `none`, the rest SYNTHETIC, or real
# on your own data). The
# checks are properties of the code (the released shape, the reload), not quality checks; those are the gates below.

# %%
record("joytag/params_full", full_params, data="none")
record("joytag/state_dict_keys", len(keys), data="none")
record("joytag/params_replica", count_parameters(model), data="none")
record("joytag/n_tags_trained", len(tags))
record("joytag/micro_f1@0.4", own["micro_f1@th"], split="test")
record("joytag/f1@p_eq_r", own["f1@p_eq_r"], split="test")
record("joytag/threshold_p_eq_r", own["threshold_p_eq_r"], split="test")
record("joytag/mAP", own["mAP"], split="test")
record("joytag/prior_micro_f1@0.4", prior["micro_f1@th"], split="test")
record("joytag/prior_mAP", prior["mAP"], split="test")
record("joytag/train_loss_last", hist["loss"][-1])
record("joytag/embed_recall@1", retrieval.iloc[0]["recall@1"])
record("joytag/embed_recall@1_random", retrieval.iloc[1]["recall@1"])
dd = comparison.set_index("model").loc["deepdanbooru"]
jc = comparison.set_index("model").loc["joytag"]
record("joytag/deepdanbooru_micro_f1@0.4", dd["micro_f1@th"], split="test")
record("joytag/deepdanbooru_mAP", dd["mAP"], split="test")
for name, slug in ((PRIOR_ROW, "tag_prior"), ("joytag", "joytag"), ("deepdanbooru", "deepdanbooru")):
    for key in ("micro_f1", "micro_f1_lo", "micro_f1_hi", "mAP", "f1_at_p_eq_r"):
        record(f"arena/{slug}/{key}", float(arena_all.loc[name, key]), split="test",
               n_tags=int(arena_all.loc[name, "n_tags"]))
record("joytag/image_presentations", int(budgets.loc["joytag", "image_presentations"]), data="none")
record("joytag/deepdanbooru_image_presentations", int(budgets.loc["deepdanbooru", "image_presentations"]), data="none")
assert full_params == 91_491_509 and len(keys) == 190, (full_params, len(keys))
assert reload_diff < 1e-5, reload_diff
assert np.isfinite(hist["loss"]).all(), hist["loss"]
comparison.round(3)

# %% [markdown]
# ## What this shows

# %%
joytag_gates = prior_gates(PROFILE, own, prior)
bj, bd = budgets.loc["joytag"], budgets.loc["deepdanbooru"]
r_emb, r_rand = retrieval.iloc[0], retrieval.iloc[1]
same_budget = bj["image_presentations"] == bd["image_presentations"] and bj["input_px"] == bd["input_px"]
same_budget_note = (": the same budget, so the difference is the architecture and recipe (on one seed)" if same_budget
                    else ": **different budgets**, so this compares two runs, not two architectures")
display(Markdown(f"""
Measured on {len(test_posts)} **{DATA_LABEL}** test posts, profile `{PROFILE}` (replica of {count_parameters(model):,}
parameters against the released {full_params:,}).

* **Against the tag prior** (its own {len(tags)} tags, threshold `{THRESHOLD}`): micro F1 {own['micro_f1@th']:.3f} vs the
  prior's {prior['micro_f1@th']:.3f} ({own['micro_f1@th'] - prior['micro_f1@th']:+.3f}); mAP {own['mAP']:.3f} vs
  {prior['mAP']:.3f} ({own['mAP'] - prior['mAP']:+.3f}). The training loss went from {hist['loss'][0]:.4f} to
  {hist['loss'][-1]:.4f}.
* **Beside DeepDanbooru** on the {len(common)} tags both output: JoyTag micro F1 {jc['micro_f1@th']:.3f} / mAP
  {jc['mAP']:.3f}, DeepDanbooru {dd['micro_f1@th']:.3f} / {dd['mAP']:.3f}. Budgets: JoyTag saw
  {int(bj['train_images']):,} images x {int(bj['epochs'])} epochs = {int(bj['image_presentations']):,} presentations at
  {int(bj['input_px'])} px, DeepDanbooru {int(bd['images_per_epoch']):,} per epoch x {int(bd['epochs'])} epochs =
  {int(bd['image_presentations']):,} at {int(bd['input_px'])} px{same_budget_note}.
* **As an embedding**, same-character recall@1 is {r_emb['recall@1']:.3f} for the trained trunk and
  {r_rand['recall@1']:.3f} for the same architecture at random init (chance recall@5 {r_emb['chance_recall@5']:.3f}).
* **Try next:** {'several seeds at this equal budget' if same_budget else 'equal budgets (same images x epochs and input size)'}
  before reading anything into JoyTag vs DeepDanbooru; more epochs for the ViT, which needs more data than a CNN; a threshold fitted on val instead of the
  released `0.4`.
"""))
gates.table(joytag_gates)

# %% [markdown]
# ## Quality gates
#
# JoyTag must beat the tag prior on the test split by the margins above; this cell raises `QualityGateError` when it
# does not. `tests/test_gates_tagging.py` proves the gate fails on a JoyTag trained with learning rate 0.

# %%
gates.check_all(joytag_gates)
