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
# series, and tag overlap (Jaccard of general tags >= a threshold). Queries and gallery are posts of the
# **SYNTHETIC** Danbooru-format set (drawn pictures with real Danbooru tag names, notebook 00); the
# Ren'Py section is real art. EfficientNet-Lite0 with real ImageNet weights is the first row and the
# chance baseline the last; other models plug in by name through the embedder registry, and a model
# whose notebook has not trained it yet is measured with **random weights** (the weights table says
# which; nothing is gated on those).
#
# Then the indexes that serve these vectors (exact, HNSW, IVF-Flat, IVF-SQ8 as in the original Milvus
# deployment, IVF-PQ) are compared for recall against exact search and queries per second, on vectors
# **synthesised** from the EfficientNet-Lite0 embeddings of the SYNTHETIC pictures, and an IVF-SQ8
# collection is built and searched in embedded Milvus, with what the index actually did. Measured
# runtimes: see the README's notebook map (embeddings are cached; notebook 09 fills the same cache).
#
# **Your own data.** With `DATA` set to a folder (a Danbooru2021-format subset or a DeepDanbooru project), its test
# and train posts are the queries and the gallery, and every number and title says `real: <folder>` where it says
# SYNTHETIC here. A relevance rule the data cannot support (a DeepDanbooru project has no series tags) scores no
# query, and the table says so.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks sizes from configs/retrieval/<variant>.json
TRAIN_MISSING = True  # train (or load) every model compared here first, so the table does not depend on run order
DATA = None  # None: the SYNTHETIC set; or a Danbooru2021-format folder / DeepDanbooru project (open_dataset)
SEED = 0  # seeds the trained models' runs, numpy/torch and the index sampling
TARGET_RECALL = 0.95  # recall@10 the planner tunes an approximate index to reach
MEMORY_BUDGET_GB = 2.0  # budget handed to the planner at notebook scale
MILVUS_N = 20_000  # at most this many vectors go into the Milvus collection
NPROBES = (1, 2, 4, 8, 16, 32)  # Milvus IVF lists visited per query (nlist itself is added: exhaustive)
NULL_SEEDS = 10  # random rankings that measure the chance baseline's spread (the gate margin)

# %%
import acg2vec_lab
from acg2vec_lab import runtime, viz
from acg2vec_lab.config import load_config
from acg2vec_lab.data.source import data_source_of
from acg2vec_lab.record import record, save_fig

versions = runtime.setup_notebook(SEED, data=data_source_of(DATA))
cfg = load_config("retrieval", PROFILE)
cfg

# %% [markdown]
# ## 1. Queries, gallery and relevance
#
# Queries are test-split posts of the SYNTHETIC set, the gallery is train-split posts (leak-free by
# construction; section 6 checks it). A query with no relevant gallery item under a rule is left out of
# that rule's means, and the table says how many queries were scored.

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from acg2vec_lab.data import open_dataset
from acg2vec_lab.data.source import headline_label, stamp_figure
from acg2vec_lab.retrieval import evaluate

ds = open_dataset(DATA, PROFILE)
DATA_LABEL = headline_label(ds)  # "SYNTHETIC", or "real: <folder>"
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
# Exact cosine search, so differences come from the embeddings only. First what is measured: the
# `status` of each model's weights (real released weights, a checkpoint trained here on the SYNTHETIC
# drawings, or random initialisation).

# %%
from acg2vec_lab import models
from acg2vec_lab.embedders import available

# The trainable models are loaded from their runs of (config, data, SEED), or trained now when that run is
# missing, so this notebook alone gives the same table as after notebooks 00-08 (TRAIN_MISSING = False keeps
# whatever is cached and says which embedders are untrained).
if TRAIN_MISSING:
    for name in ("deepdanbooru", "joytag", "dclip", "acgvoc2vec"):
        models.get(name).ensure_trained(PROFILE, seed=SEED)

embedders = available(PROFILE, seed=SEED)
if not ds.is_synthetic:  # the registry's embedders load the runs of the profile's synthetic set (their weights say so)
    display(Markdown(f"**On {DATA_LABEL}:** the trained embedders are the runs trained on the SYNTHETIC set (the "
                     "`trained on` column says so); embedders of runs trained on this folder need the registry to "
                     "find runs by data set (not yet there), so they are measured as trained elsewhere."))
weights = evaluate.weights_table(embedders)
random_init = weights.loc[weights["status"] == "random init", "name"].tolist()
display(Markdown(f"**Random init (untrained, not gated):** {', '.join(random_init) or 'none'}."))
weights[["name", "modality", "dim", "status", "trained on", "weights"]]

# %%
table = evaluate.compare_embedders(ds, embedders, queries, gallery, ks=cfg.ks, jaccard_threshold=cfg.jaccard_threshold)
table.insert(2, "status", [evaluate.weights_status(w) for w in table["weights"]])
cols = ["model", "status", "dim", "direction"] + [c for c in table.columns if c.split("/")[-1] in
                                                  ("recall@1", "recall@10", "mAP@10", "nDCG@10", "MRR", "median_rank")]
table[cols].round(3)

# %%
table[["model"] + [c for c in table.columns if c.endswith("n_queries")] + ["seconds"]].round(1)

# %% [markdown]
# The chance row is one random embedding; random rankings over `NULL_SEEDS` seeds give the spread of
# chance itself, which sets the margin of the gate on EfficientNet-Lite0.

# %%
chance_null = evaluate.chance_metric_null(rels["character"], "mAP@10", seeds=range(NULL_SEEDS))
chance_map = float(np.mean(chance_null))
map_margin = evaluate.null_margin([v - chance_map for v in chance_null], k=3.0, floor=0.02)
display(Markdown(f"Random rankings: character mAP@10 {chance_map:.3f} (sd {np.std(chance_null, ddof=1):.3f} over "
                 f"{NULL_SEEDS} seeds); gate margin {map_margin:.3f} ({DATA_LABEL})."))

# %% [markdown]
# ## 3. recall@k curves (same character), with chance
#
# The chance line is the expected recall of a random ranking, k / gallery size.

# %%
ks = sorted({1, 2, 5, 10, 20, 50, len(gallery)} & set(range(1, len(gallery) + 1)))
curves = evaluate.recall_curves(embedders, ds, queries, gallery, rels["character"], ks)
fig = viz.recall_curves(ks, curves, metrics.chance_recall(rels["character"], ks),
                        title="recall@k, relevance = same character", colors=viz.model_colors(list(curves)))
save_fig(stamp_figure(fig, ds), "recall_curves_character")  # stamps SYNTHETIC (or the real folder) into the title
viz.show(fig)

# %% [markdown]
# ## 4. What the top 5 look like (EfficientNet-Lite0)
#
# Green frames: same character as the query; red: not.

# %%
from acg2vec_lab.retrieval.index import IndexSpec, build_index

eff = embedders["efficientnet_lite0"]
g_eff = evaluate.embed_posts(eff, ds, gallery, "gallery")
q_eff = evaluate.embed_posts(eff, ds, queries, "queries")
flat = build_index(g_eff, IndexSpec("flat", "cosine"), ids=[p.id for p in gallery])
rows = evaluate.gallery_rows(ds, queries, gallery, q_eff, flat, rels["character"], qf["character"], n_rows=4, k=5)
fig = viz.retrieval_gallery(**rows, suptitle="efficientnet_lite0: query -> top 5")
save_fig(stamp_figure(fig, ds), "gallery_efficientnet_lite0")
viz.show(fig)

# %% [markdown]
# ## 5. Real art: the Ren'Py pictures as queries
#
# Each of the twelve pictures queries the other eleven; relevant = the same kind (sprite / background).
# The backgrounds are few, so this mostly asks whether a drawn character finds drawn characters.

# %%
renpy_table = evaluate.renpy_leave_one_out(embedders, ks=(1, 5))
renpy_table.assign(status=weights.set_index("name")["status"]).round(3)

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
# `cfg.index_n` vectors **synthesised** from the EfficientNet-Lite0 embeddings of the SYNTHETIC gallery
# and queries (projected to `cfg.index_dim`, then sub-clusters and points with structured noise;
# uniform random vectors would be the wrong test). Queries are held-out draws from the same structure.
# Recall@10 is against exact search; QPS are medians after a warm-up on a shared machine, so compare
# rows within one run. `benchmarks/bench_retrieval.py` does the same at 100 k and 1 M x 1024.

# %%
from acg2vec_lab.retrieval import bench

x, xq = bench.database_and_queries(np.concatenate([g_eff, q_eff]), cfg.index_n, cfg.index_queries, cfg.index_dim, seed=SEED)
sweeps = {"hnsw": [16, 64], "ivf_flat": [4, 16], "ivf_sq8": [4, 16], "ivf_pq": [16]}
index_table = bench.compare_indexes(x, xq, bench.default_specs(), sweeps=sweeps, single=20, repeats=3, seed=SEED)
index_table.round(3)

# %% [markdown]
# The planner picks an index for N, d and a memory budget and then measures (not assumes) its
# recall against exact search, raising `nprobe` / `ef_search` until it reaches the target. Forcing an
# IVF-SQ8 plan, starting at `nprobe = 1`, shows the tuning:

# %%
from acg2vec_lab.retrieval import planner

budget = int(MEMORY_BUDGET_GB * 1e9)
auto_plan = planner.plan_index(len(x), x.shape[1], budget)
sq8_plan = planner.forced_plan(IndexSpec("ivf_sq8", "cosine", nprobe=1), len(x), x.shape[1], budget,
                               reason="forced: the original Milvus choice")
_, report = planner.build_planned(x, budget, plan=sq8_plan, target_recall=TARGET_RECALL, seed=SEED)
print("automatic choice:", auto_plan.spec.kind, "-", auto_plan.reason)
pd.DataFrame(report["tuning"], columns=["knob", "value", "recall@10"])

# %% [markdown]
# ## 8. The same kind of collection in Milvus (embedded milvus-lite)
#
# `MilvusIndex` has the same methods as the faiss `VectorIndex`; with a `.db` path it runs embedded,
# with `uri="http://host:19530"` it talks to a Milvus server. Milvus builds an IVF index only for
# flushed, loaded segments and searches unflushed rows by brute force, so `MilvusIndex` flushes and
# loads before it searches; the report below is what the server says it built and, embedded, the
# index class attached to each flushed segment. If the index is really used, recall at `nprobe = 1`
# is below exact and rises with `nprobe`. Kinds milvus-lite cannot build (`ivf_pq`) are refused with
# an error naming the kind and the backend.

# %%
import tempfile
from pathlib import Path

from acg2vec_lab.retrieval.index import default_nlist
from acg2vec_lab.retrieval.milvus import nprobe_sweep

n_milvus = min(len(x), MILVUS_N)
nlist = default_nlist(n_milvus)
with tempfile.TemporaryDirectory() as tmp:
    milvus_table, milvus_report = nprobe_sweep(
        x[:n_milvus], xq, IndexSpec("ivf_sq8", "cosine"), sorted({*NPROBES, nlist}), Path(tmp) / "vectors.db",
        collection="notebook")
display(pd.Series(milvus_report, name="Milvus index after build").to_frame())
milvus_table.round(3)

# %% [markdown]
# ## 9. Headline numbers

# %%
chance = evaluate.chance_row(table)
eff_row = table[table["model"] == "efficientnet_lite0"].iloc[0]
for _, row in table.iterrows():
    key = row["model"].replace(" -> ", "_to_")  # a text->image row ("dclip_text -> dclip_image") as a record name
    for rule in ("character", "series", "tags"):
        record(f"retrieval/{rule}/{key}/mAP@10", float(row[f"{rule}/mAP@10"]), weights=row["weights"],
               status=row["status"])
    record(f"retrieval/character/{key}/recall@10", float(row["character/recall@10"]))
record("retrieval/character/random_rankings/mAP@10", chance_map, seeds=NULL_SEEDS)
for name, row in renpy_table.iterrows():
    record(f"retrieval/renpy/{name}/mAP@5", float(row["mAP@5"]), data="real", weights=embedders[name].weights)
vectors_note = f"vectors synthesised from EfficientNet-Lite0 embeddings of the {DATA_LABEL} pictures"
approx = index_table[(index_table.index > 0) & (index_table["recall_at_10"] >= TARGET_RECALL)]
best = approx.sort_values("batched_qps", ascending=False).iloc[0] if len(approx) else None
record("index/best_speedup_at_target_recall", float(best["speedup_vs_exact"]) if best is not None else 0.0,
       index=str(best["index"]) if best is not None else "none", vectors=vectors_note)
record("index/planner_sq8_recall@10", float(report["recall@10"]), vectors=vectors_note,
       nprobe=int(report["tuning"][-1][1]))
milvus_recall = dict(zip(milvus_table["nprobe"], milvus_table["recall@10"]))
for nprobe, value in milvus_recall.items():
    record(f"index/milvus_lite_ivf_sq8/nprobe_{nprobe}/recall@10", float(value), vectors=vectors_note,
           n=n_milvus, nlist=nlist)
record("index/milvus_lite_index_type", str(milvus_report["index_type"]),
       segment_indexes=str(milvus_report.get("segment_indexes")))
record("index/milvus_lite_flushed_rows", int(milvus_report.get("flushed_rows", -1)),
       memtable_rows=int(milvus_report.get("memtable_rows", -1)), row_count=int(milvus_report["row_count"]))
table[["model", "status", "character/mAP@10", "series/mAP@10", "tags/mAP@10"]].round(3)

# %% [markdown]
# ## 10. What this shows

# %%
eff_map, chance_row_map = float(eff_row["character/mAP@10"]), float(chance["character/mAP@10"])
others = table[(table["direction"] == "image->image") & ~table["model"].isin(["efficientnet_lite0", "chance"])]
probe_1, probe_all = float(milvus_recall[min(milvus_recall)]), float(milvus_recall[max(milvus_recall)])
reaching = [p for p, v in milvus_recall.items() if v >= TARGET_RECALL]
lines = [f"- **EfficientNet-Lite0 (real ImageNet weights)** retrieves the same {DATA_LABEL} character with mAP@10 "
         f"{eff_map:.3f}, against {chance_map:.3f} for random rankings (the chance embedding: {chance_row_map:.3f}; "
         f"gate margin {map_margin:.3f}); same series {float(eff_row['series/mAP@10']):.3f}, tag overlap "
         f"{float(eff_row['tags/mAP@10']):.3f}."]
for _, row in others.iterrows():
    m = float(row["character/mAP@10"])
    why = ("random weights: an untrained network; run its notebook first, then compare" if row["status"] == "random init"
           else "a small network trained here from scratch on SYNTHETIC drawings, against ImageNet features; "
                "try a longer training run or a bigger profile"
                + (", the deeper full-profile cut, or deepix fine-tuning (notebook 03)" if row["model"] == "illust2vec" else ""))
    lines.append(f"- **{row['model']}** ({row['status']}): mAP@10 {m:.3f} "
                 f"({'above' if m > eff_map else 'below'} EfficientNet-Lite0); {why}.")
lines.append(f"- **Real art** (Ren'Py, leave-one-out by kind): EfficientNet-Lite0 mAP@5 "
             f"{float(renpy_table.loc['efficientnet_lite0', 'mAP@5']):.3f}, chance embedding "
             f"{float(renpy_table.loc['chance', 'mAP@5']):.3f}.")
lines.append(f"- **Indexes** (on {vectors_note}): the forced IVF-SQ8 plan reached recall@10 "
             f"{float(report['recall@10']):.3f} at nprobe {int(report['tuning'][-1][1])} (target {TARGET_RECALL}); "
             + (f"the fastest index at the target ran {float(best['speedup_vs_exact']):.1f}x exact batched QPS "
                f"({best['index']}, {best['knob']}); the planner's own choice at this N is `{auto_plan.spec.kind}` "
                f"({auto_plan.reason})." if best is not None else
                "no approximate index reached the target at these settings."))
lines.append(f"- **Milvus really indexes**: {milvus_report['index_type']} built on {milvus_report.get('flushed_rows')} "
             f"flushed rows ({milvus_report.get('memtable_rows')} left in the brute-force memtable; segment index "
             f"{milvus_report.get('segment_indexes')}). Recall@10 is {probe_1:.3f} at nprobe {min(milvus_recall)} and "
             f"{probe_all:.3f} at nprobe {max(milvus_recall)} (all lists; the rest is SQ8 code error); the smallest "
             f"nprobe reaching {TARGET_RECALL} is {min(reaching) if reaching else 'none'}. Without the flush and load, "
             f"milvus-lite would scan every row by brute force and nprobe would change nothing.")
lines.append("- **Next**: gate the trained embedders against chance once their notebooks guarantee training; "
             "measure the index at the scale it is for (`benchmarks/bench_retrieval.py`, 1 M x 1024) and with "
             "queries from real art; try a Milvus server for IVF-PQ, which milvus-lite cannot build.")
display(Markdown("\n".join(lines)))

# %%
from acg2vec_lab import gates

gates.table(gates.check_all([
    gates.Gate("retrieval/efficientnet_lite0/character_mAP@10_vs_chance", eff_map, chance_map, map_margin,
               why=f"margin = mean + 3 sd of random-ranking mAP@10 over its mean, {NULL_SEEDS} seeds, floor 0.02"),
    gates.Gate("index/planner_ivf_sq8_recall@10_vs_target", float(report["recall@10"]), TARGET_RECALL, 0.0,
               why="the planner tunes nprobe until the measured recall meets the target"),
    gates.Gate("index/milvus_ivf_sq8_exact_minus_nprobe1", 1.0, probe_1, 0.02,
               why="an IVF index that visits one list must miss neighbours: else the search is exact (not indexed)"),
    gates.Gate("index/milvus_ivf_sq8_recall_rises_with_nprobe", probe_all, probe_1, 0.02,
               why="visiting every list must recover what one list misses"),
    gates.Gate("index/milvus_ivf_sq8_best_recall_vs_target", max(milvus_recall.values()), TARGET_RECALL, 0.0,
               why="some nprobe must reach the target recall"),
]))
