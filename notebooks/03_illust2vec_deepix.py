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
# # 03 · illust2vec from the trained tagger, deepix fine-tuning, retrieval before/after
#
# illust2vec is the mean-pooled 16x16x1024 tensor of DeepDanbooru's trunk (at 512 px in v3). Here it is cut from the
# tagger trained in notebook 02 (on the **synthetic** set; loaded from its checkpoint, or trained if missing), once at
# `activation_96` (the README) and once at `add_43` (the code), in the same forward pass as the tags. Then deepix is
# built on the trunk (cut at `add_43`) with a ResNet-V2 stack and bookmark/view/sanity heads, fine-tuned with
# differential learning rates (trunk 1e-5, heads 1e-2), and illust2vec is re-extracted from the tuned trunk and compared
# with the untuned one on the same leave-one-out retrieval queries. Smoke: ~2-3 min; cpu: ~8 min.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks configs/deepix/<variant>.json and the tagger checkpoint
SEED = 0  # seeds numpy / tensorflow / python
KS = (1, 5, 10)  # recall@k cut-offs

# %%
import acg2vec_lab
from acg2vec_lab import load_config, record, runtime, save_fig

versions = runtime.setup_notebook(SEED)
import inspect

import numpy as np
import pandas as pd

from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec, describe_cut
from acg2vec_lab.models.deepix.experiment import retrieval_metrics
from acg2vec_lab.models.deepix.model import (
    DifferentialTrainer,
    build_deepix,
    head_accuracy,
    pixiv_targets,
    split_variables,
    trunk_embeddings,
    trunk_model,
)
from acg2vec_lab.train.tagger import prepare_images, train_tagger

{k: versions[k] for k in ("python", "tensorflow", "keras")}

# %% [markdown]
# ## 1. The tagger and where the two cut points sit (found by block position, not by layer name)

# %%
cfg = load_config("deepix", PROFILE)
tagger_run = train_tagger(PROFILE)  # loads the checkpoint of notebook 02 when it is complete
tagger = tagger_run.model
pd.DataFrame([describe_cut(tagger, c) for c in ("activation_96", "add_43")])

# %% [markdown]
# ## 2. One forward pass: tags and the embedding together

# %%
size = tuple(tagger.input_shape[1:3])
ds = synthetic_dataset(PROFILE)
train_posts = ds.split("train")[: cfg.max_train_images]
test_posts = ds.split("test")[: cfg.max_eval_images]
x_train = np.stack(prepare_images([ds.image_path(p) for p in train_posts], size, False))
x_test = np.stack(prepare_images([ds.image_path(p) for p in test_posts], size, False))
two_out = build_illust2vec(tagger, cut="activation_96", l2_normalize=True)
probs, emb = two_out(x_test[:4], training=False)
{"tags": tuple(probs.shape), "embedding": tuple(emb.shape), "norms": np.round(np.linalg.norm(emb, axis=1), 4).tolist()}

# %% [markdown]
# ## 3. illust2vec of the untuned trunk (both cuts), leave-one-out retrieval on the test split
#
# Relevance `character`: same character tag; `bookmark_bin`: same bookmark bin (the label deepix learns next).
# Retrieval metrics come from `acg2vec_lab.retrieval.metrics`; `chance_recall@k` is a random ranking.

# %%
before = {cut: trunk_embeddings(trunk_model(tagger, cut), x_test, cfg.l2_normalize) for cut in ("activation_96", "add_43")}
def table(embs):
    rows = []
    for name, e in embs.items():
        for rel, m in retrieval_metrics(e, test_posts, KS).items():
            rows.append({"embedding": name, "relevance": rel, **{k: m[k] for k in
                         ("recall@1", "recall@10", "precision@10", "mAP@10", "chance_recall@10")}})
    return pd.DataFrame(rows)
table({f"untuned {c}": e for c, e in before.items()}).round(4)

# %% [markdown]
# ## 4. deepix: trunk (cut at `add_43`) + ResNet-V2 stack + heads, two optimizers
#
# The variables are split by identity into the trunk group and the rest, and the split is checked to cover every
# trainable variable exactly once. (The original multi-optimizer builder could hand the "other" group an earlier
# group's layers and leave its optimizer `None`, `models.md` 9.7.)

# %%
deepix = build_deepix(tagger, cfg)
trunk_vars, head_vars = split_variables(deepix)
print(inspect.getsource(split_variables))
{"trunk variables": len(trunk_vars), "stack + head variables": len(head_vars), "outputs": [tuple(o.shape) for o in deepix.outputs],
 "trunk lr": cfg.trunk_lr, "head lr": cfg.head_lr}

# %%
y_train, y_test = pixiv_targets(train_posts), pixiv_targets(test_posts)
trainer = DifferentialTrainer(deepix, cfg)
history = pd.DataFrame(trainer.fit(x_train, y_train, cfg.epochs, cfg.batch_size, cfg.steps_per_epoch, SEED))
history.round(4)

# %%
heads = head_accuracy(deepix, x_test, y_test)
pd.Series(heads).round(4)

# %% [markdown]
# ## 5. illust2vec re-extracted from the tuned trunk, same queries and metrics
#
# The tagger shares its layers with the deepix trunk, so `tagger` now carries the tuned trunk weights.

# %%
after = trunk_embeddings(trunk_model(tagger, cfg.cut), x_test, cfg.l2_normalize)
drift = float(np.mean(np.sum(after * before[cfg.cut], axis=1)))
comparison = table({f"untuned {cfg.cut}": before[cfg.cut], f"deepix-tuned {cfg.cut}": after})
print(f"mean cosine between untuned and tuned embeddings of the same image: {drift:.4f}")
comparison.round(4)

# %% [markdown]
# ## 6. Headline numbers

# %%
c = comparison.set_index(["embedding", "relevance"])
b_char = c.loc[(f"untuned {cfg.cut}", "character"), "recall@10"]
a_char = c.loc[(f"deepix-tuned {cfg.cut}", "character"), "recall@10"]
b_bm = c.loc[(f"untuned {cfg.cut}", "bookmark_bin"), "precision@10"]
a_bm = c.loc[(f"deepix-tuned {cfg.cut}", "bookmark_bin"), "precision@10"]
record("illust2vec/untuned_character_recall@10", b_char)
record("illust2vec/tuned_character_recall@10", a_char)
record("illust2vec/untuned_bookmark_precision@10", b_bm)
record("illust2vec/tuned_bookmark_precision@10", a_bm)
record("deepix/bookmark_acc", heads["bookmark_acc"])
record("deepix/bookmark_majority", heads["bookmark_majority"])
record("deepix/final_loss", float(history["loss"].iloc[-1]))
record("illust2vec/tuned_vs_untuned_cosine", drift)
assert np.isfinite(history["loss"]).all() and emb.shape[1] == before["activation_96"].shape[1]
for v in (b_char, a_char, b_bm, a_bm, heads["bookmark_acc"]):
    assert 0.0 <= v <= 1.0
comparison.shape
