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
# # 09 · Embedding maps
#
# UMAP maps of every available model's embeddings of the same pictures, coloured by character, series
# and score bin with one fixed palette, so maps of different models can be compared side by side.
# The pictures are the **SYNTHETIC** Danbooru-format set (drawn figures with real Danbooru tag names,
# notebook 00); every number and figure from them says so. The one real-art section uses the Ren'Py
# sprites and backgrounds.
#
# EfficientNet-Lite0 with its real ImageNet weights comes first (the only real pretrained image
# network here); every other model (illust2vec, DCLIP image and text, JoyTag, acgvoc2vec, ...) plugs in
# through the embedder registry by name. A model whose notebook has not trained it yet is measured with
# **random weights**: the weights table below says which, and nothing is gated on those. A number
# beside each map, the k-nearest-neighbour purity in the original space, says how much of the picture
# is structure rather than UMAP's layout. Measured runtimes: see the README's notebook map (embeddings
# are cached and shared with notebook 10).
#
# **Your own data.** With `DATA` set to a folder (a Danbooru2021-format subset or a DeepDanbooru project), its posts
# are the pictures and every number and map title says `real: <folder>`; without score fields the bookmark-bin
# colouring is left out (and said so).

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks sizes from configs/retrieval/<variant>.json
TRAIN_MISSING = True  # train (or load) every model compared here first, so the table does not depend on run order
DATA = None  # None: the SYNTHETIC set; or a Danbooru2021-format folder / DeepDanbooru project (open_dataset)
SEED = 0  # seeds the trained models' runs, numpy/torch and UMAP's random_state
K_PURITY = 10  # neighbours per point for the purity score
NULL_SEEDS = 10  # random-vector draws that measure the noise a purity / separation gate must clear

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
# ## 1. The pictures
#
# The **SYNTHETIC** Danbooru-format set of this profile (or your own folder, `DATA`): the gallery and query posts of
# notebook 10, so both notebooks share cached embeddings.

# %%
import pandas as pd
from IPython.display import Markdown, display

from acg2vec_lab.data import open_dataset
from acg2vec_lab.data.source import headline_label, stamp_figure
from acg2vec_lab.retrieval import evaluate

ds = open_dataset(DATA, PROFILE)
DATA_LABEL = headline_label(ds)  # "SYNTHETIC", or "real: <folder>"
queries, gallery = evaluate.split_posts(ds, cfg.max_gallery, cfg.max_queries)
posts = (gallery + queries)[: cfg.map_points]
frame = evaluate.posts_frame(posts)
frame[["id", "character", "series", "score"]].head()

# %% [markdown]
# ## 2. Every available embedder, and what its weights are
#
# `acg2vec_lab.embedders.available(PROFILE)` lists what the installed modules offer. Image models embed
# the pictures; text models embed each post's tags written as a caption. `chance` gives random vectors:
# its map is what no structure looks like. The `status` column is read from each embedder's `weights`
# label: **real weights** (released), **trained here** (a checkpoint this workbook trained on the
# SYNTHETIC drawings), **random init** (its notebook has not trained it in this cache yet: its numbers
# describe an untrained network), or the chance baseline.

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
order = sorted(embedders, key=lambda n: (n != "efficientnet_lite0", n.startswith("chance"), n))
weights = evaluate.weights_table(embedders, order)
random_init = weights.loc[weights["status"] == "random init", "name"].tolist()
trained = weights.loc[weights["status"] == "trained here", "name"].tolist()
display(Markdown(
    f"**Random init (untrained, not gated):** {', '.join(random_init) or 'none'}.  \n"
    f"**Trained here on SYNTHETIC drawings (not gated until their notebooks guarantee the training):** "
    f"{', '.join(trained) or 'none'}."))
weights

# %%
vectors, seconds = evaluate.embed_for_maps(embedders, ds, posts, gallery, queries, order)
pd.DataFrame({"shape": {n: v.shape for n, v in vectors.items()}, "seconds (0 when cached)": seconds})

# %% [markdown]
# ## 3. Structure before the map: neighbour purity
#
# For each point, the share of its `K_PURITY` nearest neighbours (cosine, in the model's own space) with
# the same character (or series). The `(random neighbours)` row is the expected purity of random
# neighbours. Random vectors do not reach exactly that value: their spread over `NULL_SEEDS` draws is
# the noise a real structure has to clear (the gate margin). Text models see captions that contain the
# character and series tags themselves, so their purity is an upper bound for text, not a fair match
# for the image models.

# %%
purity = evaluate.purity_table(vectors, frame, K_PURITY)
purity_null = evaluate.random_purity_null(frame["character"], k=K_PURITY, seeds=range(NULL_SEEDS))
purity_margin = evaluate.null_margin(purity_null, k=3.0, floor=0.02)
display(Markdown(f"Random vectors over {NULL_SEEDS} seeds reach chance "
                 f"{sum(purity_null) / len(purity_null):+.3f} (character purity); the gate margin is "
                 f"mean + 3 sd, at least 0.02: **{purity_margin:.3f}** ({DATA_LABEL})."))
purity.assign(status=weights.set_index("name")["status"]).round(3)

# %% [markdown]
# ## 4. Maps
#
# UMAP (PCA to `cfg.umap_pca` dimensions first), seeded; each title carries the UMAP parameters and
# seed. Colours are fixed once from the data (the most frequent characters / series get palette
# colours, the rest grey) and shared by every model's map. Score bins use the pixiv-style bookmark
# edges of `acg2vec_lab.data.labels`. Every model's map is shown below (and saved).

# %%
from acg2vec_lab.data.labels import BOOKMARK_EDGES

colourings = {"character": list(frame["character"]), "series": list(frame["series"])}
palette = {"character": viz.label_colors(colourings["character"], max_labels=12),
           "series": viz.label_colors(colourings["series"], max_labels=12)}
if ds.has_scores:
    colourings["bookmark bin"] = viz.score_bins([p.pixiv.get("bookmark_count", 0) for p in posts], BOOKMARK_EDGES)
    palette["bookmark bin"] = viz.bin_colors(BOOKMARK_EDGES)  # ordinal: low -> high along viridis
else:
    print(f"bookmark-bin colouring left out: {ds.scores_note}")
coords = {}
for name in vectors:
    label = f"{name} [{weights.set_index('name').loc[name, 'status']}]"
    fig, coords[name] = viz.umap_map(vectors[name], colourings, label, cfg.umap_n_neighbors, cfg.umap_min_dist, SEED,
                                     pca=cfg.umap_pca, colors=palette)
    save_fig(stamp_figure(fig, ds), f"map_{name}")  # stamps SYNTHETIC (or the real folder) into the title
    viz.show(fig)

# %% [markdown]
# How faithful is each 2-D map to its space? Trustworthiness (scikit-learn) is 1 when every map
# neighbourhood is also a neighbourhood in the original space.

# %%
from sklearn.manifold import trustworthiness

trust = pd.Series({name: trustworthiness(vectors[name], coords[name], n_neighbors=K_PURITY, metric="cosine")
                   for name in vectors}, name="trustworthiness")
trust.round(3)

# %% [markdown]
# ## 5. Real art: the Ren'Py pictures
#
# Eight hand-drawn sprites (two outfits, four expressions) and four backgrounds: **real art**, not the
# synthetic set. Twelve points are too few for UMAP; the cosine similarity matrix is the honest
# picture. A useful image embedding puts the sprites together and apart from the backgrounds; the
# separation (mean sprite-sprite minus mean sprite-background cosine) is 0 in expectation for random
# vectors, whose spread over `NULL_SEEDS` draws sets the gate margin.

# %%
ren_vecs, ren_labels = evaluate.renpy_vectors(embedders["efficientnet_lite0"])
names = [f.rsplit(".", 1)[0] for f in ren_labels["file"]]
fig = viz.similarity_heatmap(evaluate.cosine_similarity_matrix(ren_vecs), names,
                             "efficientnet_lite0 (real ImageNet weights): cosine similarity, Ren'Py images (real art)")
save_fig(fig, "renpy_similarity", data="real")
viz.show(fig)

# %%
separation, _ = evaluate.renpy_separation(embedders, order)
separation_null = evaluate.random_separation_null(ren_labels, seeds=range(NULL_SEEDS))
separation_margin = evaluate.null_margin(separation_null, k=3.0, floor=0.02)
pd.DataFrame({"separation": separation, "status": weights.set_index("name")["status"]}).dropna().round(3)

# %% [markdown]
# ## 6. Headline numbers

# %%
for name in vectors:
    record(f"maps/purity_character/{name}", float(purity.loc[name, "character"]), k=K_PURITY,
           weights=embedders[name].weights, status=evaluate.weights_status(embedders[name].weights))
    record(f"maps/trustworthiness/{name}", float(trust[name]))
record("maps/purity_character/random_neighbours", float(purity.loc["(random neighbours)", "character"]))
record("maps/purity_character/gate_margin", purity_margin, seeds=NULL_SEEDS)
for name, value in separation.items():
    record(f"maps/renpy_separation/{name}", float(value), data="real", weights=embedders[name].weights)
record("maps/renpy_separation/gate_margin", separation_margin, data="real", seeds=NULL_SEEDS)
purity.round(3)

# %% [markdown]
# ## 7. What this shows

# %%
chance_p = float(purity.loc["(random neighbours)", "character"])
eff_p = float(purity.loc["efficientnet_lite0", "character"])
image_rows = [n for n in order if embedders[n].modality == "image" and n != "chance"]
lines = [f"- **EfficientNet-Lite0 (real ImageNet weights)** groups the {DATA_LABEL} characters: character "
         f"purity {eff_p:.3f} against {chance_p:.3f} for random neighbours (gate margin {purity_margin:.3f}); "
         f"trustworthiness of its map {trust['efficientnet_lite0']:.3f}. Nothing here trained it on drawings: "
         f"generic ImageNet features (colour, shape, texture) already tell the generator's characters apart."]
for n in image_rows:
    if n == "efficientnet_lite0":
        continue
    st = evaluate.weights_status(embedders[n].weights)
    p = float(purity.loc[n, "character"])
    verdict = "above" if p > eff_p else "below"
    why = ("its weights are random (notebook not run in this cache), so this is what an untrained network of "
           "that shape does: try running its notebook (or `ensure_trained`) first" if st == "random init" else
           "a small network trained here from scratch on this profile's SYNTHETIC drawings, against features "
           "learned from ImageNet's photos: try a longer training run or a bigger profile"
           + (", the deeper cut of the full profile, or deepix fine-tuning (notebook 03)" if n == "illust2vec" else ""))
    lines.append(f"- **{n}** ({st}): purity {p:.3f}, {verdict} EfficientNet-Lite0's {eff_p:.3f}; {why}.")
text_rows = [n for n in order if embedders[n].modality == "text" and not n.startswith("chance")]
if text_rows:
    best_text = max(text_rows, key=lambda n: purity.loc[n, "character"])
    lines.append(f"- Text models read captions that name the character, so their purity (best: {best_text} "
                 f"{purity.loc[best_text, 'character']:.3f}) is an upper bound, not a like-for-like comparison.")
lines.append(f"- **Real art**: on the Ren'Py pictures EfficientNet-Lite0's sprite separation is "
             f"{separation['efficientnet_lite0']:+.3f} against 0 for random vectors (margin {separation_margin:.3f}): "
             f"sprites are nearer each other than the backgrounds.")
lines.append("- **Next**: gate the trained embedders against chance once their notebooks guarantee training; "
             "compare at equal dimension (PCA all models to the same size); add a harder relevance rule than "
             "character identity (outfit, expression on the Ren'Py set).")
display(Markdown("\n".join(lines)))

# %%
from acg2vec_lab import gates

checks = {  # gate -> data source of its numbers (check_all would record both under the notebook default)
    gates.Gate("maps/efficientnet_lite0/purity_character_vs_chance", eff_p, chance_p, purity_margin,
               why=f"margin = mean + 3 sd of random-vector purity over chance, {NULL_SEEDS} seeds, floor 0.02"): data_source_of(DATA),
    gates.Gate("maps/efficientnet_lite0/renpy_separation_vs_random", float(separation["efficientnet_lite0"]), 0.0,
               separation_margin, why=f"margin = mean + 3 sd of random-vector separation, {NULL_SEEDS} seeds, floor 0.02"): "real",
}
for g, source in checks.items():
    record(f"gate/{g.name}", g.improvement, data=source, measured=g.value, baseline=g.baseline, margin=g.margin,
           passed=g.passed)
gates.table(gates.check_all(list(checks), record=False))
