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
# # 10 · Retrieval evaluation
#
# Every available model is scored on the same queries against the same gallery with the same metrics
# (recall@k, mAP@10, nDCG@10, MRR, median rank) under three relevance rules: same character, same
# series, and tag overlap (Jaccard of general tags >= a threshold). EfficientNet-Lite0 with real
# ImageNet weights is the first row and the chance baseline the last; other models plug in by name
# through the embedder registry. Then the indexes that serve these vectors (exact, HNSW, IVF-Flat,
# IVF-SQ8 as in the original Milvus deployment, IVF-PQ) are compared for recall against exact search
# and queries per second, and the same IVF-SQ8 collection is served by embedded Milvus. Smoke ~1-2 min
# with cached embeddings (notebook 09 fills the cache), cpu ~5-8 min.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks sizes from configs/retrieval/<variant>.json
SEED = 0  # seeds numpy/torch and the index sampling
TARGET_RECALL = 0.95  # recall@10 the planner tunes an approximate index to reach
MEMORY_BUDGET_GB = 2.0  # budget handed to the planner at notebook scale

# %%
import acg2vec_lab
from acg2vec_lab import runtime, viz
from acg2vec_lab.config import load_config
from acg2vec_lab.record import record, save_fig

versions = runtime.setup_notebook(SEED)
viz.style()
cfg = load_config("retrieval", PROFILE)
cfg

# %% [markdown]
# ## 1. Queries, gallery and relevance
#
# Queries are test-split posts, the gallery is train-split posts (leak-free by construction; section 6
# checks it). A query with no relevant gallery item under a rule is left out of that rule's means, and
# the table says how many queries were scored.

# %%
import numpy as np
import pandas as pd

from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.retrieval import evaluate

ds = synthetic_dataset(PROFILE)
queries, gallery = evaluate.split_posts(ds, cfg.max_gallery, cfg.max_queries)
qf, gf = evaluate.posts_frame(queries), evaluate.posts_frame(gallery)
rels = evaluate.relevance_matrices(qf, gf, cfg.jaccard_threshold)
pd.DataFrame({rule: {"queries": len(queries), "gallery": len(gallery),
                     "queries with a relevant item": int((r.sum(1) > 0).sum()),
                     "mean relevant per query": float(r.sum(1).mean())} for rule, r in rels.items()})

# %% [markdown]
# The metric definitions live in `acg2vec_lab.retrieval.metrics` and are tested against brute-force
# implementations (ties, queries with no relevant item, k larger than the gallery). Average precision,
# for example:

# %%
import inspect

from acg2vec_lab.retrieval import metrics

print(inspect.getsource(metrics.average_precision_at_k))

# %% [markdown]
# ## 2. One table: every model, the same queries, the same metrics
#
# Exact cosine search, so differences come from the embeddings only. `weights` says what is measured:
# real released weights, a checkpoint trained in this workbook, or random initialisation.

# %%
from acg2vec_lab.embedders import available

embedders = available(PROFILE)
table = evaluate.compare_embedders(ds, embedders, queries, gallery, ks=cfg.ks, jaccard_threshold=cfg.jaccard_threshold)
cols = ["model", "weights", "dim", "direction"] + [c for c in table.columns if c.split("/")[-1] in
                                                  ("recall@1", "recall@10", "mAP@10", "nDCG@10", "MRR", "median_rank")]
table[cols].round(3)

# %%
table[["model"] + [c for c in table.columns if c.endswith("n_queries")] + ["seconds"]].round(1)

# %% [markdown]
# ## 3. recall@k curves (same character), with chance
#
# The chance line is the expected recall of a random ranking, k / gallery size.

# %%
ks = sorted({1, 2, 5, 10, 20, 50, len(gallery)} & set(range(1, len(gallery) + 1)))
curves = {}
for name, emb in embedders.items():
    if emb.modality != "image" or name == "chance":
        continue
    q = evaluate.embed_posts(emb, ds, queries, "queries")
    g = evaluate.embed_posts(emb, ds, gallery, "gallery")
    from acg2vec_lab.retrieval.index import normalize_rows
    curves[name] = metrics.recall_curve(normalize_rows(q) @ normalize_rows(g).T, rels["character"], ks)
chance_curve = metrics.chance_recall(rels["character"], ks)
fig = viz.recall_curves(ks, curves, chance_curve, title="recall@k, relevance = same character",
                        colors=viz.model_colors(list(curves)))
save_fig(fig, "recall_curves_character")
fig

# %% [markdown]
# ## 4. What the top 5 look like (EfficientNet-Lite0)
#
# Green frames: same character as the query; red: not.

# %%
from acg2vec_lab.retrieval.index import IndexSpec, build_index

eff = embedders["efficientnet_lite0"]
g_eff = evaluate.embed_posts(eff, ds, gallery, "gallery")
q_eff = evaluate.embed_posts(eff, ds, queries, "queries")
index = build_index(g_eff, IndexSpec("flat", "cosine"), ids=[p.id for p in gallery],
                    metadata=gf[["character", "series"]])
shown = [i for i in range(len(queries)) if rels["character"][i].any()][:4]
top = index.query(q_eff[shown], 5)
pos = {p.id: i for i, p in enumerate(gallery)}
fig = viz.retrieval_gallery(
    [ds.load_image(queries[i]) for i in shown],
    [[ds.load_image(gallery[pos[h]]) for h in top[top["query"] == r]["id"]] for r in range(len(shown))],
    relevant=[[bool(rels["character"][i, pos[h]]) for h in top[top["query"] == r]["id"]] for r, i in enumerate(shown)],
    titles=[[f"{s:.2f}" for s in top[top["query"] == r]["score"]] for r in range(len(shown))],
    query_titles=[str(qf["character"][i]) for i in shown], suptitle="efficientnet_lite0: query -> top 5")
save_fig(fig, "gallery_efficientnet_lite0")
top.head(5)

# %% [markdown]
# ## 5. Real art: the Ren'Py pictures as queries
#
# Each sprite queries the other eleven pictures; relevant = the same kind (sprite / background). The
# backgrounds are few, so this mostly asks whether a drawn character finds drawn characters.

# %%
ren_rows = {}
for name, emb in embedders.items():
    if emb.modality != "image":
        continue
    rv, rl = evaluate.renpy_vectors(emb)
    v = normalize_rows(rv)
    same_kind = (rl["kind"].to_numpy()[:, None] == rl["kind"].to_numpy()[None, :])
    res = metrics.evaluate(v @ v.T, same_kind, ks=(1, 5), exclude=np.eye(len(v), dtype=bool))
    ren_rows[name] = {k: res[k] for k in ("recall@5", "mAP@5", "MRR")}
renpy_table = pd.DataFrame(ren_rows).T
renpy_table.round(3)

# %% [markdown]
# ## 6. Duplicates and leakage
#
# Exact keys (md5) must not be shared between splits; near-duplicates by embedding (cosine >= a
# threshold) are what an exact check misses. The sweep shows how many pairs each threshold calls
# duplicates within the gallery.

# %%
from acg2vec_lab.retrieval import dedup

leaks = dedup.leakage_check({s: [p.md5 for p in ds.split(s)] for s in ("train", "val", "test")})
near = dedup.near_duplicate_leakage(g_eff, q_eff, threshold=0.98)
sweep = dedup.threshold_sweep(g_eff, [0.9, 0.95, 0.98, 0.99])
print(f"md5 shared between splits: {len(leaks)}; test images with a train near-duplicate (cos >= 0.98): {len(near)}")
sweep

# %% [markdown]
# ## 7. Indexes at notebook scale
#
# `cfg.index_n` vectors grown from the EfficientNet-Lite0 gallery embeddings (projected to
# `cfg.index_dim`, then sub-clusters and points with structured noise; uniform random vectors would be
# the wrong test). Queries are held-out draws from the same structure. Recall@10 is against exact
# search; QPS are medians after a warm-up on a shared 2-core machine, so compare rows within one run.
# `benchmarks/bench_retrieval.py` does the same at 100 k and 1 M x 1024.

# %%
from acg2vec_lab.retrieval import bench

base = np.concatenate([g_eff, q_eff])
x, xq = bench.database_and_queries(base, cfg.index_n, cfg.index_queries, cfg.index_dim, seed=SEED)
sweeps = {"hnsw": [16, 64], "ivf_flat": [4, 16], "ivf_sq8": [4, 16], "ivf_pq": [16]}
index_table = bench.compare_indexes(x, xq, bench.default_specs(), sweeps=sweeps, single=20, repeats=3, seed=SEED)
index_table.round(3)

# %% [markdown]
# The planner picks an index for N, d and a memory budget and then measures (not assumes) its
# recall against exact search, raising `nprobe` / `ef_search` until it reaches the target. Forcing an
# IVF-SQ8 plan shows the tuning:

# %%
from acg2vec_lab.retrieval import planner

auto_plan = planner.plan_index(len(x), x.shape[1], int(MEMORY_BUDGET_GB * 1e9))
sq8_plan = planner.Plan(IndexSpec("ivf_sq8", "cosine", nprobe=1), len(x), x.shape[1], int(MEMORY_BUDGET_GB * 1e9), 0, "forced: the original Milvus choice")
_, report = planner.build_planned(x, int(MEMORY_BUDGET_GB * 1e9), plan=sq8_plan, target_recall=TARGET_RECALL, seed=SEED)
print("automatic choice:", auto_plan.spec.kind, "-", auto_plan.reason)
pd.DataFrame(report["tuning"], columns=["knob", "value", "recall@10"])

# %% [markdown]
# ## 8. The same collection in Milvus (embedded milvus-lite)
#
# `MilvusIndex` has the same methods as the faiss `VectorIndex`; with a `.db` path it runs embedded,
# with `uri="http://host:19530"` it talks to a Milvus server (the path to a cluster when one machine is
# not enough).

# %%
import tempfile
from pathlib import Path

from acg2vec_lab.retrieval.milvus import MilvusIndex

n_milvus = min(len(x), 5000)
with tempfile.TemporaryDirectory() as tmp:
    mv = MilvusIndex(x.shape[1], IndexSpec("ivf_sq8", "cosine", nprobe=16), uri=str(Path(tmp) / "vectors.db"),
                     collection="notebook", expected_n=n_milvus, overwrite=True)
    mv.add(x[:n_milvus])
    got, _ = mv.search(xq, 10)
    mv.close()
truth = planner.exact_neighbours(x[:n_milvus], xq, 10)
milvus_recall = metrics.ann_recall(got, truth, 10)
{"milvus_lite_ivf_sq8_recall@10": round(milvus_recall, 3), "n": n_milvus, "nlist": mv.spec.nlist}

# %% [markdown]
# ## 9. Headline numbers

# %%
import math

chance = evaluate.chance_row(table)
eff_row = table[table["model"] == "efficientnet_lite0"].iloc[0]
for _, row in table.iterrows():
    for rule in ("character", "series", "tags"):
        record(f"retrieval/{rule}/mAP@10/{row['model']}", float(row[f"{rule}/mAP@10"]), weights=row["weights"])
    record(f"retrieval/character/recall@10/{row['model']}", float(row["character/recall@10"]))
approx = index_table[(index_table.index > 0) & (index_table["recall_at_10"] >= TARGET_RECALL)]
best = approx.sort_values("batched_qps", ascending=False).iloc[0] if len(approx) else None
record("index/best_speedup_at_target_recall", float(best["speedup_vs_exact"]) if best is not None else 0.0,
       index=str(best["index"]) if best is not None else "none")
record("index/planner_sq8_recall@10", float(report["recall@10"]))
record("index/milvus_lite_sq8_recall@10", float(milvus_recall))
values = [eff_row["character/mAP@10"], chance["character/mAP@10"], report["recall@10"], milvus_recall]
assert all(math.isfinite(v) and 0 <= v <= 1 for v in values)
assert eff_row["weights"].startswith("real:") and chance["model"] == "chance"
table[["model", "weights", "character/mAP@10", "series/mAP@10", "tags/mAP@10"]].round(3)
