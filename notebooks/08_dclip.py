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
# # 08 · DCLIP: CLIP trained on captions built from Danbooru tags
#
# DCLIP fine-tuned OpenAI CLIP ViT-L/14 on Danbooru/pixiv images with captions made from their tags
# ("<characters> from <series> with <general tags>"). Here: the caption rules (both original versions),
# the ViT-L/14 configuration and a loader for the real checkpoint formats, then a small replica trained
# from random weights on the SYNTHETIC Danbooru set (no real CLIP weights or Danbooru images are
# reachable), evaluated on held-out images (text <-> image recall, zero-shot tags against a frequency
# baseline), and a second run whose text tower starts from the real multilingual-e5-small weights.
# Smoke: ~3 min; cpu: ~10 min.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks the DCLIP config variant
SEED = 0  # seeds random, numpy and torch

# %%
import dataclasses
import inspect

import numpy as np
import pandas as pd

import acg2vec_lab
from acg2vec_lab import load_config, record, runtime, save_fig
from acg2vec_lab.config import variant_for
from acg2vec_lab.paths import checkpoint_dir

versions = runtime.setup_notebook(SEED)
pd.Series(versions, name="version").to_frame()

# %% [markdown]
# ## 1. Captions from tags
# Characters (their `(series)` qualifier removed when a copyright is present), `from <copyrights>`
# (not `original`), `with <general tags>` (only tags with an ASCII letter); more than 20 general tags
# give two captions. The README snippet (older code) also drops `girl`/`boy` tags and always writes
# `with`. Every quirk is kept, including the dangling `with`.

# %%
from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.models.dclip.captions import build_captions

dataset = synthetic_dataset(PROFILE)
rows = []
for post in dataset.split("train")[:6]:
    rows.append({"post": post.id, "code version": build_captions(post.tags, "code"),
                 "README version": build_captions(post.tags, "readme")})
pd.set_option("display.max_colwidth", 120)
pd.DataFrame(rows)

# %% [markdown]
# ## 2. The model: ViT-L/14 (full) and the replica trained here

# %%
from acg2vec_lab.models.dclip import model as M
from acg2vec_lab.models.dclip import pipeline as P
from acg2vec_lab.models.dclip import plots
from acg2vec_lab.models.dclip.config import DclipConfig

cfg = load_config("dclip", PROFILE)
vit_l = M.describe(DclipConfig(model_name="ViT-L-14"))  # built on the meta device: dims only
ours = M.describe(dataclasses.replace(cfg, text_init="random"))
pd.DataFrame({"ViT-L-14 (full profile)": vit_l, f"{variant_for(PROFILE)} replica": ours})

# %%
print(inspect.getsource(M.read_state_dict))  # the real checkpoint formats the loader accepts

# %% [markdown]
# ## 3. Data: synthetic posts, captions, CLIP preprocessing

# %%
data = P.prepare_data(cfg, dataset)
pd.Series({"train posts": len(data["train_posts"]), "train captions": len(data["captions"]),
           "test posts": len(data["test_posts"]), "image tensor": tuple(data["train_images"].shape)})

# %% [markdown]
# ## 4. Training (random init, symmetric contrastive loss, Adam)

# %%
ckpt = checkpoint_dir("dclip", variant_for(PROFILE))
run = P.run(cfg, data, ckpt)
print(f"steps {run['step']} (resumed from {run['resumed_from']}), {run['seconds']:.0f} s")
untrained = P.random_baseline(cfg, data)
trained = P.evaluate_model(run["model"], run["tokenize"], data, cfg)
table = pd.DataFrame({"untrained": P.flat(untrained), "trained": P.flat(trained)})
table

# %% [markdown]
# ## 5. Text tower from the real e5 weights vs random initialisation
# The same replica with open_clip's HuggingFace text tower pointing at the locally converted
# multilingual-e5-small (mean pooling + linear projection; its word-embedding table frozen for CPU
# cost; `"query: "` prefix), trained for the configured number of steps and compared with the
# random-init run at the same number of steps.

# %%
e5_cfg = dataclasses.replace(cfg, text_init="e5")
e5_run = P.run(e5_cfg, data, ckpt / "e5_text", steps=cfg.e5_steps)
e5_eval = P.evaluate_model(e5_run["model"], e5_run["tokenize"], data, e5_cfg)
same_steps = P.run(cfg, data, ckpt / f"random_{cfg.e5_steps}", steps=cfg.e5_steps)
same_eval = P.evaluate_model(same_steps["model"], same_steps["tokenize"], data, cfg)
compare = pd.DataFrame({f"random text tower, {cfg.e5_steps} steps": P.flat(same_eval),
                        f"e5 text tower, {cfg.e5_steps} steps": P.flat(e5_eval),
                        f"random text tower, {run['step']} steps": P.flat(trained)})
fig = plots.loss_curves({"random": run["history"], "e5 text": e5_run["history"]})
save_fig(fig, "loss")
compare

# %% [markdown]
# ## 6. Text -> image search on held-out images

# %%
from acg2vec_lab.data import load_image

queries = ["1girl, solo, blonde hair", "red background", "from fate with long hair"]
qv = M.encode_texts(run["model"], run["tokenize"], queries)
sims = qv @ trained["image_vectors"].T
images = [load_image(dataset.image_path(p)) for p in data["test_posts"]]
fig = plots.search_strip(queries, images, sims, k=5)
save_fig(fig, "text_to_image")
pd.DataFrame(sims.max(1), index=queries, columns=["best cosine"])

# %% [markdown]
# ## 7. Headline numbers
# The tagger comparison uses a frequency baseline (every image scored by the tag's train frequency):
# no trained tagger checkpoint is used here.

# %%
r, z = trained["recall"], trained["zero_shot"]
record("dclip/test_images", r["n"])
record("dclip/t2i_recall@1", r["t2i_recall@1"])
record("dclip/t2i_recall@5", r["t2i_recall@5"])
record("dclip/i2t_recall@1", r["i2t_recall@1"])
record("dclip/i2t_recall@5", r["i2t_recall@5"])
record("dclip/untrained_t2i_recall@5", untrained["recall"]["t2i_recall@5"])
record("dclip/zero_shot_mAP", z["zero_shot_mAP"])
record("dclip/frequency_mAP", z["frequency_mAP"])
record("dclip/e5_text_t2i_recall@5", e5_eval["recall"]["t2i_recall@5"])
record("dclip/random_text_same_steps_t2i_recall@5", same_eval["recall"]["t2i_recall@5"])
record("dclip/loss_first", run["history"][0])
record("dclip/loss_last", run["history"][-1])
record("dclip/vit_l_14_params", vit_l["params"])
assert P.vectors_ok(trained) and P.vectors_ok(e5_eval)
assert all(0 <= v <= 1 for k, v in r.items() if "recall" in k or "mrr" in k)
assert np.isfinite(run["history"]).all() and vit_l["embed_dim"] == 768
table
