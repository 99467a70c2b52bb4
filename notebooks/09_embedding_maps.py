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
# EfficientNet-Lite0 with its real ImageNet weights comes first (the only real pretrained image
# network here); every other model (illust2vec, DCLIP image and text, JoyTag, acgvoc2vec, ...) plugs in
# through the embedder registry by name, with its `weights` label saying whether it is real, trained
# here or random. A number beside each map, the k-nearest-neighbour purity in the original space,
# says how much of the picture is structure rather than UMAP's layout. Smoke ~1-2 min, cpu ~5 min
# (embeddings are cached, so reruns are faster).

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks sizes from configs/retrieval/<variant>.json
SEED = 0  # seeds numpy/torch and UMAP's random_state
K_PURITY = 10  # neighbours per point for the purity score

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
# ## 1. The pictures
#
# The synthetic Danbooru-format set of this profile (drawn pictures with real Danbooru tag names; see
# notebook 00): the gallery and query posts of notebook 10, so both notebooks share cached embeddings.

# %%
import pandas as pd

from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.retrieval import evaluate

ds = synthetic_dataset(PROFILE)
queries, gallery = evaluate.split_posts(ds, cfg.max_gallery, cfg.max_queries)
posts = (gallery + queries)[: cfg.map_points]
frame = evaluate.posts_frame(posts)
frame[["id", "character", "series", "score"]].head()

# %% [markdown]
# ## 2. Every available embedder
#
# `acg2vec_lab.embedders.available(PROFILE)` lists what the installed modules offer. Image models embed
# the pictures; text models embed each post's tags written as a caption. `chance` gives random vectors:
# its map is what no structure looks like.

# %%
from acg2vec_lab.embedders import available

embedders = available(PROFILE)
order = sorted(embedders, key=lambda n: (n != "efficientnet_lite0", n.startswith("chance"), n))
pd.DataFrame([{"name": n, "modality": embedders[n].modality, "dim": embedders[n].dim,
               "weights": embedders[n].weights, "space": embedders[n].space} for n in order])

# %%
import time

import numpy as np

vectors, seconds = {}, {}
for name in order:
    emb = embedders[name]
    t0 = time.perf_counter()
    if emb.modality == "image":  # same cache entries as notebook 10 (gallery, queries)
        both = np.concatenate([evaluate.embed_posts(emb, ds, gallery, "gallery"),
                               evaluate.embed_posts(emb, ds, queries, "queries")])
        vectors[name] = both[: len(posts)]
    else:
        vectors[name] = evaluate.embed_captions(emb, ds, posts)
    seconds[name] = time.perf_counter() - t0
pd.DataFrame({"shape": {n: v.shape for n, v in vectors.items()}, "seconds (cached: ~0)": seconds})

# %% [markdown]
# ## 3. Structure before the map: neighbour purity
#
# For each point, the share of its 10 nearest neighbours (cosine, in the model's own space) with the
# same character (or series). Random neighbours give the chance value in the last row. A map can only
# show what this number allows. Text models see captions that contain the character and series tags
# themselves, so their purity is an upper bound for text, not a fair match for the image models.

# %%
purity = pd.DataFrame({
    name: {"character": evaluate.neighbour_purity(v, frame["character"], K_PURITY),
           "series": evaluate.neighbour_purity(v, frame["series"], K_PURITY)}
    for name, v in vectors.items()}).T
purity.loc["(random neighbours)"] = [evaluate.label_chance_purity(frame["character"]),
                                     evaluate.label_chance_purity(frame["series"])]
purity.round(3)

# %% [markdown]
# ## 4. Maps
#
# UMAP (PCA to `cfg.umap_pca` dimensions first), seeded. Colours are fixed once from the data (the most
# frequent characters / series get palette colours, the rest grey) and shared by every model's map.
# Score bins use the pixiv-style bookmark edges of `acg2vec_lab.data.labels`.

# %%
from acg2vec_lab.data.labels import BOOKMARK_EDGES

score_bin = viz.score_bins([p.pixiv.get("bookmark_count", 0) for p in posts], BOOKMARK_EDGES)
colourings = {"character": list(frame["character"]), "series": list(frame["series"]), "bookmark bin": score_bin}
palette = {"character": viz.label_colors(colourings["character"], max_labels=12),
           "series": viz.label_colors(colourings["series"], max_labels=12),
           "bookmark bin": viz.bin_colors(BOOKMARK_EDGES)}  # ordinal: low -> high along viridis
coords = {}
for name in vectors:
    coords[name] = viz.umap_embed(vectors[name], cfg.umap_n_neighbors, cfg.umap_min_dist, SEED, pca=cfg.umap_pca)
    fig = viz.map_panels(coords[name], colourings, name, cfg.umap_n_neighbors, cfg.umap_min_dist, SEED, palette)
    save_fig(fig, f"map_{name}")
fig

# %%
fig = viz.map_panels(coords["efficientnet_lite0"], colourings, "efficientnet_lite0 (real ImageNet weights)",
                     cfg.umap_n_neighbors, cfg.umap_min_dist, SEED, palette)
fig

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
# Eight hand-drawn sprites (two outfits, four expressions) and four backgrounds. Twelve points are too
# few for UMAP; the cosine similarity matrix is the honest picture. A useful image embedding puts the
# sprites together and apart from the backgrounds.

# %%
import matplotlib.pyplot as plt
import numpy as np

from acg2vec_lab.retrieval.index import normalize_rows

ren_vecs, ren_labels = evaluate.renpy_vectors(embedders["efficientnet_lite0"])
v = normalize_rows(ren_vecs)
sim = v @ v.T
names = [f.rsplit(".", 1)[0] for f in ren_labels["file"]]
fig, ax = plt.subplots(figsize=(6, 5))
im = ax.imshow(sim, vmin=-0.2, vmax=1, cmap="viridis")
ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
ax.set_yticks(range(len(names)), names, fontsize=7)
ax.grid(False)
fig.colorbar(im, ax=ax, shrink=0.8)
ax.set_title("efficientnet_lite0: cosine similarity of the Ren'Py images")
save_fig(fig, "renpy_similarity")
fig


# %%
def sprite_separation(vecs, labels):
    s = normalize_rows(vecs) @ normalize_rows(vecs).T
    sprite = (labels["kind"] == "sprite").to_numpy()
    within = s[np.ix_(sprite, sprite)][~np.eye(sprite.sum(), dtype=bool)].mean()
    across = s[np.ix_(sprite, ~sprite)].mean()
    return within - across

separation = pd.Series({name: sprite_separation(evaluate.renpy_vectors(embedders[name])[0], ren_labels)
                        for name in order if embedders[name].modality == "image"}, name="sprite-sprite minus sprite-background cosine")
separation.round(3)

# %% [markdown]
# ## 6. Headline numbers

# %%
import math

for name in vectors:
    record(f"maps/purity_character/{name}", float(purity.loc[name, "character"]), k=K_PURITY, weights=embedders[name].weights)
    record(f"maps/trustworthiness/{name}", float(trust[name]))
record("maps/purity_character/random_neighbours", float(purity.loc["(random neighbours)", "character"]))
record("maps/renpy_separation/efficientnet_lite0", float(separation["efficientnet_lite0"]))
assert all(0 <= x <= 1 for x in purity.to_numpy().ravel() if not math.isnan(x))
assert all(0 <= x <= 1 for x in trust) and math.isfinite(separation["efficientnet_lite0"])
assert "efficientnet_lite0" in vectors and "chance" in vectors
purity.round(3)
