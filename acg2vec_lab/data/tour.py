"""Tables and figures of the data tour (notebook 00): tags by category, label bins, image grids, and
the checks that the leak detector finds planted leaks and that the splits are disjoint.

Figures built from the synthetic set take a ``title`` that says SYNTHETIC (notebook 00 passes one;
``save_fig`` adds it anyway for a ``synthetic`` data source).
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from acg2vec_lab.data.danbooru import CATEGORY_NAMES, DanbooruDataset, Post
from acg2vec_lab.data.labels import BOOKMARK_EDGES, SANITY_EDGES, VIEW_EDGES, bin_labels, to_bins
from acg2vec_lab.data.splits import SPLITS, split_of
from acg2vec_lab.tagging.categories import CATEGORY_CHARACTER

CATEGORY_ORDER = ("character", "copyright", "artist", "general", "meta")


def tags_by_category(post: Post) -> dict[str, list[str]]:
    """``{"character": [...], "copyright": [...], "general": [...], ...}`` (empty categories left out)."""
    out: dict[str, list[str]] = {}
    for name in CATEGORY_ORDER:
        cat = next(k for k, v in CATEGORY_NAMES.items() if v == name)
        tags = post.tag_names(cat)
        if tags:
            out[name] = tags
    return out


def posts_table(posts: Sequence[Post]) -> pd.DataFrame:
    """One row per post: id, size, rating, pixiv labels and tags joined per category."""
    rows = []
    for p in posts:
        row: dict[str, Any] = {"id": p.id, "size": f"{p.image_width}x{p.image_height}", "rating": p.rating,
                               **{k: p.pixiv.get(k) for k in ("bookmark_count", "view_count", "sanity_level")}}
        for cat, tags in tags_by_category(p).items():
            row[cat] = " ".join(tags)
        rows.append(row)
    return pd.DataFrame(rows).set_index("id")


def tag_frequency(ds: DanbooruDataset) -> pd.DataFrame:
    """Every tag with its category, post count and share of posts, most frequent first."""
    counts = ds.tag_counts()
    n = max(len(ds.posts), 1)
    df = pd.DataFrame([(t.name, CATEGORY_NAMES[t.category], c, c / n) for t, c in counts.items()],
                      columns=["tag", "category", "posts", "share"])
    return df.sort_values(["posts", "tag"], ascending=[False, True]).reset_index(drop=True)


def category_summary(freq: pd.DataFrame) -> pd.DataFrame:
    """Per category: distinct tags, tag occurrences, and the most frequent tag."""
    g = freq.groupby("category")
    out = pd.DataFrame({"distinct_tags": g.size(), "occurrences": g["posts"].sum(),
                        "top_tag": g.apply(lambda d: d.iloc[0]["tag"], include_groups=False)})
    return out.reindex([c for c in CATEGORY_ORDER if c in out.index])


def plot_tag_frequency(freq: pd.DataFrame, top: int = 12, title: str | None = None):
    """One horizontal bar chart per category present: the ``top`` tags by share of posts."""
    import matplotlib.pyplot as plt

    cats = [c for c in CATEGORY_ORDER if c in set(freq["category"])]
    fig, axes = plt.subplots(1, len(cats), figsize=(4.2 * len(cats), 0.28 * top + 1.4), squeeze=False)
    for ax, cat in zip(axes[0], cats):
        d = freq[freq["category"] == cat].head(top).iloc[::-1]
        ax.barh(d["tag"], d["share"], color="#1f77b4")
        ax.set_title(f"{cat} ({(freq['category'] == cat).sum()} distinct)")
        ax.set_xlabel("share of posts")
        ax.tick_params(axis="y", labelsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def pixiv_labels(ds: DanbooruDataset) -> pd.DataFrame:
    """Per post: split, the raw pixiv labels and their Pix2Score bins."""
    df = pd.DataFrame([{"id": p.id, "split": split_of(p.id, ds.val_fraction, ds.test_fraction), "rating": p.rating,
                        **{k: p.pixiv[k] for k in ("bookmark_count", "view_count", "sanity_level")}} for p in ds.posts])
    df["bookmark_bin"] = to_bins(df["bookmark_count"], BOOKMARK_EDGES)
    df["view_bin"] = to_bins(df["view_count"], VIEW_EDGES)
    df["sanity_bin"] = to_bins(df["sanity_level"], SANITY_EDGES)
    return df


def plot_label_bins(labels: pd.DataFrame, title: str | None = None):
    """Posts per bin for bookmarks (15), views (15) and sanity (5), bins labelled by their edges."""
    import matplotlib.pyplot as plt

    spec = [("bookmark_bin", BOOKMARK_EDGES, "bookmark_count"), ("view_bin", VIEW_EDGES, "view_count"),
            ("sanity_bin", SANITY_EDGES, "sanity_level")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), gridspec_kw={"width_ratios": [15, 15, 6]})
    for ax, (col, edges, raw) in zip(axes, spec):
        names = bin_labels(edges)
        counts = np.bincount(labels[col], minlength=len(names))
        ax.bar(range(len(names)), counts, color="#ff7f0e")
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{raw}: posts per original bin ({len(names)} bins)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _caption(post: Post, width: int = 34, max_general: int = 8) -> str:
    cats = tags_by_category(post)
    lines = []
    for cat in ("character", "copyright"):
        if cat in cats:
            lines.append(f"{cat[:4]}: " + ", ".join(cats[cat]))
    general = cats.get("general", [])
    more = f" +{len(general) - max_general}" if len(general) > max_general else ""
    lines.append("gen: " + ", ".join(general[:max_general]) + more)
    lines.append(f"rating {post.rating} | bm {post.pixiv.get('bookmark_count')} | view {post.pixiv.get('view_count')}")
    return "\n".join(textwrap.fill(l, width, subsequent_indent="  ") for l in lines)


def plot_post_grid(ds: DanbooruDataset, posts: Sequence[Post], ncols: int = 4, title: str | None = None):
    """Images with their tags by category underneath (character, copyright, general, rating, labels):
    a :func:`acg2vec_lab.viz.image_grid` of ``ncols`` columns."""
    from acg2vec_lab import viz
    from acg2vec_lab.data.images import load_image

    return viz.image_grid(viz.rows_of([load_image(ds.image_path(p)) for p in posts], ncols),
                          titles=viz.rows_of([f"post {p.id}" for p in posts], ncols),
                          captions=viz.rows_of([_caption(p) for p in posts], ncols),
                          cell=(3.3, 5.2), title_size=8, suptitle=title or "")


def plot_labelled_images(items: Sequence[tuple[Any, dict]], ncols: int = 6, keys: Sequence[str] = ("file",)):
    """A grid of ``(PIL image, labels)`` with chosen label fields as titles (e.g. the Ren'Py set):
    a :func:`acg2vec_lab.viz.image_grid` of ``ncols`` columns."""
    from acg2vec_lab import viz

    titles = ["\n".join(str(labels.get(k)) for k in keys if labels.get(k) is not None) for _, labels in items]
    return viz.image_grid(viz.rows_of([im for im, _ in items], ncols), titles=viz.rows_of(titles, ncols),
                          cell=(2.6, 3.0))


def split_table(ds: DanbooruDataset) -> pd.DataFrame:
    """Posts, distinct characters and mean bookmarks per split."""
    rows = []
    for s in SPLITS:
        posts = ds.split(s)
        chars = {t.name for p in posts for t in p.tags if t.category == CATEGORY_CHARACTER}
        rows.append({"split": s, "posts": len(posts), "characters": len(chars),
                     "mean_bookmarks": float(np.mean([p.pixiv["bookmark_count"] for p in posts])) if posts else float("nan")})
    return pd.DataFrame(rows).set_index("split")


def split_checks(ds: DanbooruDataset) -> dict[str, bool]:
    """The split assignment's invariants on ``ds``, each True when it holds.

    ``disjoint``: no post id in two splits; ``complete``: the three splits hold every post exactly
    once; ``deterministic``: each post's split equals :func:`split_of` of its id recomputed now (so it
    does not depend on the order or size of the set).
    """
    ids = {s: [p.id for p in ds.split(s)] for s in SPLITS}
    sets = {s: set(v) for s, v in ids.items()}
    disjoint = all(not (sets[a] & sets[b]) for i, a in enumerate(SPLITS) for b in SPLITS[i + 1:])
    complete = sorted(i for v in ids.values() for i in v) == sorted(p.id for p in ds.posts)
    deterministic = all(split_of(i, ds.val_fraction, ds.test_fraction) == s for s, v in ids.items() for i in v)
    return {"disjoint": disjoint, "complete": complete, "deterministic": deterministic}


def planted_leak_check(ds: DanbooruDataset, folder: Any, n: int = 40, phash_threshold: int = 4):
    """Run the leak check on real posts of every split plus two planted leaks; return ``(report, planted)``.

    The items are the first ``n`` train posts and ``n // 2`` each of val and test (clean: the full
    set's check finds no leak), plus copies of the first train post's image put into other splits:
    a byte-identical copy in ``test`` (an exact leak) and a re-encoded JPEG (quality 85) resized to
    90 % in ``val`` (a perceptual leak: different bytes, same picture). A detector that works flags
    only pairs made of the source and the two plants; one that over-reports flags real posts too.

    Args:
        folder: a writable folder for the two planted files.
    Returns:
        the :class:`~acg2vec_lab.data.splits.LeakReport` and ``{"exact": (split, id), "perceptual": (split, id)}``.
    """
    import shutil
    from pathlib import Path

    from PIL import Image

    from acg2vec_lab.data.images import load_image
    from acg2vec_lab.data.splits import find_leaks

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train = ds.split("train")[:n]
    src = ds.image_path(train[0])
    exact = folder / f"planted-exact{src.suffix}"
    shutil.copyfile(src, exact)
    im = load_image(src)
    near = folder / "planted-perceptual.jpg"
    im.resize((max(1, int(im.width * 0.9)), max(1, int(im.height * 0.9))), Image.Resampling.LANCZOS).save(
        near, "JPEG", quality=85)
    items = [("train", str(p.id), ds.image_path(p)) for p in train]
    items += [(s, str(p.id), ds.image_path(p)) for s in ("val", "test") for p in ds.split(s)[:n // 2]]
    items += [("test", "planted-exact", exact), ("val", "planted-perceptual", near)]
    report = find_leaks(items, phash_threshold=phash_threshold)
    return report, {"source": ("train", str(train[0].id)), "exact": ("test", "planted-exact"),
                    "perceptual": ("val", "planted-perceptual")}
