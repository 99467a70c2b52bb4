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
# # 02 · Training a DeepDanbooru tagger, thresholds and batch tagging
#
# A DeepDanbooru-shaped ResNet (the profile's variant of `resnet_custom_v3`) is trained from scratch on the
# **synthetic** Danbooru-format set with DeepDanbooru's recipe (multi-hot targets, binary cross-entropy, Adam,
# rotation/scale/shift augmentation), guarded by a NaN check and a BatchNorm-statistics check. It is then
# evaluated on held-out splits: micro/macro F1, mAP, the precision = recall point, per-tag optimal thresholds and
# MCut, threshold strategies compared with a paired bootstrap interval (thresholds fit on `val`, measured on `test`),
# per category, and the PR curve. Last, a folder is batch-tagged (one bad file included) into `.txt` sidecars and
# a rerun shows resume. Smoke: ~2-3 min (score meaningless); cpu: ~8-10 min with a real F1.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks configs/deepdanbooru_train/<variant>.json and the data set size
SEED = 0  # seeds numpy / tensorflow / python
N_BOOTSTRAP = 1000  # bootstrap resamples for the strategy comparison
N_DEMO_IMAGES = 12  # test images copied into the batch-tagging demo folder

# %%
import acg2vec_lab
from acg2vec_lab import load_config, record, runtime, save_fig

versions = runtime.setup_notebook(SEED)
import inspect
import json
import shutil

import numpy as np
import pandas as pd

from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.paths import run_dir
from acg2vec_lab.tagging import metrics as M
from acg2vec_lab.tagging.base import DeepDanbooruTagger
from acg2vec_lab.tagging.format import Writer, read_caption
from acg2vec_lab.tagging.pipeline import find_images, tag_images
from acg2vec_lab.tagging.plots import pr_curve_figure
from acg2vec_lab.tagging.thresholds import ThresholdPolicy, apply_thresholds
from acg2vec_lab.train.guards import check_bn_statistics
from acg2vec_lab.train.tagger import evaluate_split, train_tagger

{k: versions[k] for k in ("python", "tensorflow", "keras", "numpy")}

# %% [markdown]
# ## 1. Data and recipe
#
# The set is drawn, not real (see notebook 00): real Danbooru tag names, drawn characters. The vocabulary is built
# from the training split only (general + character tags with enough posts, then the rating tags).

# %%
dataset = synthetic_dataset(PROFILE)
train_cfg = load_config("deepdanbooru_train", PROFILE)
model_cfg = load_config("deepdanbooru", variant=train_cfg.model_variant)
pd.DataFrame([{"split": s, "posts": len(dataset.split(s))} for s in ("train", "val", "test")]).assign(
    image_size=model_cfg.image_size, stages=str(model_cfg.stages()), optimizer=train_cfg.optimizer,
    loss=train_cfg.loss, epochs=train_cfg.epochs)

# %% [markdown]
# ## 2. Training (checkpointed every epoch; a rerun resumes or just loads)
#
# `train_tagger` writes `model.weights.h5`, `tags.json`, the optimizer state and `train_state.json` into
# `checkpoint_dir("deepdanbooru", variant)`; the illust2vec embedder (notebook 03) reads the same folder.
# After every epoch the BatchNorm moving statistics are checked (NaN/inf, negative or exploded variance) and
# repaired by re-estimation if needed; a non-finite loss stops training with the weights rolled back.

# %%
result = train_tagger(PROFILE)
history = pd.DataFrame(result.state["history"])
print(f"{len(result.tags)} tags, resumed from epoch {result.resumed_from_epoch}, {result.seconds:.0f} s,",
      f"guard events {result.state['guard_events']}, BN repairs {len(result.state['bn_events'])}")
history.round(4)

# %%
bn_issues = check_bn_statistics(result.model)
print(inspect.getsource(check_bn_statistics).split('"""')[1].strip())
bn_issues

# %% [markdown]
# ## 3. Held-out evaluation at the default per-category thresholds (general 0.35, character 0.85, rating arg-max)

# %%
cats = np.asarray(result.categories)
val = evaluate_split(result.model, result.data.val_paths, result.data.y_val, cats)
test = evaluate_split(result.model, result.data.test_paths, result.data.y_test, cats)
y_val, y_test = result.data.y_val.astype(bool), result.data.y_test.astype(bool)
pd.DataFrame({"val": val["metrics"], "test": test["metrics"]}).round(4)

# %% [markdown]
# ## 4. Threshold strategies, fit on `val`, measured on `test`, with a paired bootstrap interval
#
# `fixed@0.5` (the DeepDanbooru CLI default), `category` (0.35 / 0.85), `p_eq_r` (one threshold where precision
# equals recall on val, how WD model cards report), `per_tag` (F1-optimal per tag on val) and `mcut` (largest gap per
# image, nothing to fit). The interval is for micro F1(strategy) - micro F1(category) over 1000 resamples of the test
# images; an interval containing 0 means the test split cannot tell them apart.

# %%
strategies = M.strategy_predictions(y_val, val["probs"], test["probs"], cats)
rows = []
for name, pred in strategies.items():
    row = {"strategy": name, **{k: v for k, v in M.f1_scores(y_test, pred).items() if k != "n_tags_macro"}}
    if name != "category":
        b = M.bootstrap_difference(y_test, pred, strategies["category"], n_resamples=N_BOOTSTRAP, seed=SEED)
        row.update(diff_vs_category=b.diff, ci_low=b.low, ci_high=b.high)
    rows.append(row)
strategy_table = pd.DataFrame(rows).set_index("strategy")
strategy_table.round(4)

# %% [markdown]
# ## 5. Per category

# %%
pd.DataFrame(M.per_category(y_test, test["probs"], test["pred"], cats)).round(4)


# %% [markdown]
# ## 6. Micro PR curve on `test` with the operating points

# %%
def point(pred):
    s = M.f1_scores(y_test, pred)
    return s["micro_recall"], s["micro_precision"]
points = {name: point(strategies[name]) for name in ("fixed@0.5", "category", "p_eq_r", "per_tag", "mcut")}
fig = pr_curve_figure(y_test, test["probs"], points, title=f"DeepDanbooru {train_cfg.model_variant}, synthetic test split")
save_fig(fig, "pr_curve")
fig

# %% [markdown]
# ## 7. Batch tagging a folder (one bad file), `.txt` sidecars, and resume
#
# One model load; decoding and the DeepDanbooru preprocessing run in worker threads beside the model; each sidecar is
# written atomically as its batch finishes; the broken file is reported and skipped.

# %%
demo = run_dir() / "tag_demo"
shutil.rmtree(demo, ignore_errors=True)
demo.mkdir(parents=True)
for p in result.data.test_paths[:N_DEMO_IMAGES]:
    shutil.copy(p, demo / p.name)
(demo / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
tagger = DeepDanbooruTagger(result.model, result.tags, result.categories, source=f"trained: {result.checkpoint}")
policy = ThresholdPolicy(general=0.35, character=0.85, max_tags=12)
summary = tag_images(tagger, find_images([demo]), Writer("txt", root=demo), policy, batch_size=4, progress=False)
{k: v for k, v in summary.as_dict(3).items() if k in ("total", "tagged", "failed", "errors", "images_per_s", "first_result_s")}

# %%
sidecars = sorted(demo.glob("*.txt"))[:4]
pd.DataFrame([{"sidecar": p.name, "caption": p.read_text().strip()} for p in sidecars])

# %%
(demo / sidecars[0].name).unlink()  # pretend the run was interrupted before this image
rerun = tag_images(tagger, find_images([demo]), Writer("txt", root=demo), policy, batch_size=4, progress=False)
{k: rerun.as_dict()[k] for k in ("total", "skipped_done", "tagged", "failed")}

# %% [markdown]
# ## 8. Headline numbers

# %%
tm, vm = test["metrics"], val["metrics"]
record("tagger/n_tags", len(result.tags))
record("tagger/epochs_done", result.state["epochs_done"])
record("tagger/test_micro_f1@category", tm["micro_f1"], split="test")
record("tagger/test_macro_f1@category", tm["macro_f1"], split="test")
record("tagger/test_mAP", tm["mAP"], split="test")
record("tagger/test_f1_at_p_eq_r", tm["f1_at_p_eq_r"], split="test")
record("tagger/test_micro_f1@per_tag", strategy_table.loc["per_tag", "micro_f1"])
record("tagger/per_tag_minus_category_ci_low", strategy_table.loc["per_tag", "ci_low"])
record("tagger/per_tag_minus_category_ci_high", strategy_table.loc["per_tag", "ci_high"])
record("tagger/batch_images_per_s", summary.images_per_s)
assert summary.failed == 1 and summary.tagged == N_DEMO_IMAGES
assert rerun.skipped_done == N_DEMO_IMAGES - 1 and rerun.tagged == 1
assert bn_issues == [] and not result.state["guard_events"]
for v in (tm["micro_f1"], tm["macro_f1"], tm["mAP"]):
    assert 0.0 <= v <= 1.0
tm["micro_f1"], tm["mAP"]
