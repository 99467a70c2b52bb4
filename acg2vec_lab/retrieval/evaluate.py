"""Score every available embedder on the same queries with the same metrics (one table), with cached embeddings.

Relevance rules for a Danbooru-format set (query = test split, gallery = train split):

* ``character``: the query and the gallery image share a character tag (category 4);
* ``series``: they share a copyright tag (category 3);
* ``tags``: the Jaccard overlap of their general tags (category 0) is >= a threshold.

Queries without any relevant gallery item under a rule are left out of that rule's means (see
:mod:`acg2vec_lab.retrieval.metrics`). Image embedders are compared image -> image. A text embedder
whose ``space`` matches an image embedder's (e.g. ``dclip_text`` and ``dclip_image``) is also scored
text -> image, the query being the post's tags written as a caption.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acg2vec_lab.retrieval import metrics as M

RELEVANCE_RULES = ("character", "series", "tags")
TABLE_METRICS = ("recall@1", "recall@10", "mAP@10", "nDCG@10", "MRR", "median_rank")


def post_labels(post: Any) -> dict[str, Any]:
    """``character`` / ``series`` / ``tags`` sets and the first character and series (or ``None``)."""
    chars = [t.name for t in post.tags if t.category == 4]
    series = [t.name for t in post.tags if t.category == 3]
    general = [t.name for t in post.tags if t.category == 0]
    return {"id": post.id, "characters": chars, "series_tags": series, "general": general,
            "character": chars[0] if chars else None, "series": series[0] if series else None,
            "score": post.score}


def posts_frame(posts: Sequence[Any]) -> pd.DataFrame:
    """One row per post: id, first character / series, tag lists, score."""
    return pd.DataFrame([post_labels(p) for p in posts])


def caption(post: Any) -> str:
    """The post's tags as a caption (underscores -> spaces), for text -> image queries."""
    return ", ".join(t.name.replace("_", " ") for t in post.tags if t.category in (0, 3, 4))


def relevance_matrices(queries: pd.DataFrame, gallery: pd.DataFrame, jaccard_threshold: float = 0.3) -> dict[str, np.ndarray]:
    """``{"character", "series", "tags"}`` -> ``(nq, n)`` bool relevance for two :func:`posts_frame` tables."""
    shared = lambda a, b: M.jaccard_matrix(a, b) > 0  # noqa: E731  (any common tag)
    return {
        "character": shared(queries["characters"], gallery["characters"]),
        "series": shared(queries["series_tags"], gallery["series_tags"]),
        "tags": M.relevance_jaccard(queries["general"], gallery["general"], jaccard_threshold),
    }


def _weights_stamp(weights: str) -> str:
    """The weights label plus, for a trained checkpoint folder, its newest file time (retraining invalidates)."""
    if weights.startswith("trained:"):
        folder = Path(weights.split(":", 1)[1].strip())
        if folder.exists():
            times = [p.stat().st_mtime for p in folder.rglob("*") if p.is_file()]
            return f"{weights}@{max(times) if times else 0}"
    return weights


def embed_cached(embedder: Any, items: Sequence[Any], keys: Sequence[str], cache_key: str,
                 use_cache: bool = True) -> np.ndarray:
    """``embedder.encode(items)`` ``(N, dim)``, cached under ``cache/embeddings/<model>/<cache_key>-<hash>.npy``.

    ``keys`` identify the items (e.g. post ids or file names); the hash covers them and the weights.
    """
    from acg2vec_lab.io import atomic_path
    from acg2vec_lab.paths import cache_dir

    digest = hashlib.sha256(json.dumps([embedder.name, _weights_stamp(embedder.weights), embedder.dim,
                                        list(map(str, keys))]).encode()).hexdigest()[:16]
    path = cache_dir("embeddings", embedder.name) / f"{cache_key}-{digest}.npy"
    if use_cache and path.exists():
        return np.load(path)
    vecs = np.asarray(embedder.encode(list(items)), dtype=np.float32)
    if vecs.shape != (len(items), embedder.dim):
        raise ValueError(f"{embedder.name}: encode gave {vecs.shape}, expected {(len(items), embedder.dim)}")
    if use_cache:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, vecs)
    return vecs


def embed_posts(embedder: Any, dataset: Any, posts: Sequence[Any], role: str, use_cache: bool = True) -> np.ndarray:
    """Image vectors of ``posts`` (cached per model, dataset and ``role``, e.g. ``"gallery"``)."""
    key = Path(str(getattr(dataset, "root", "dataset"))).name
    return embed_cached(embedder, [dataset.image_path(p) for p in posts], [f"{p.id}:{p.md5}" for p in posts],
                        f"{key}-{role}", use_cache)


def embed_captions(embedder: Any, dataset: Any, posts: Sequence[Any], use_cache: bool = True) -> np.ndarray:
    """Text vectors of the posts' tag captions (:func:`caption`)."""
    key = Path(str(getattr(dataset, "root", "dataset"))).name
    texts = [caption(p) for p in posts]
    return embed_cached(embedder, texts, texts, f"{key}-captions", use_cache)


def renpy_vectors(embedder: Any, use_cache: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
    """Vectors of the Ren'Py sprites and backgrounds (real art) and their labels (kind, outfit, ...)."""
    from acg2vec_lab.data.renpy import renpy_image_paths

    items = renpy_image_paths()
    vecs = embed_cached(embedder, [p for p, _ in items], [p.name for p, _ in items], "renpy", use_cache)
    return vecs, pd.DataFrame([labels for _, labels in items])


def split_posts(dataset: Any, max_gallery: int, max_queries: int) -> tuple[list[Any], list[Any]]:
    """(queries, gallery): the first ``max_queries`` test posts and ``max_gallery`` train posts by id."""
    gallery = sorted(dataset.split("train"), key=lambda p: p.id)[:max_gallery]
    queries = sorted(dataset.split("test"), key=lambda p: p.id)[:max_queries]
    return queries, gallery


def _score_row(q: np.ndarray, g: np.ndarray, rels: dict[str, np.ndarray], ks: Sequence[int]) -> dict[str, float]:
    from acg2vec_lab.retrieval.index import normalize_rows

    scores = normalize_rows(q) @ normalize_rows(g).T  # cosine; exact search, so the metric is the model's
    row: dict[str, float] = {}
    for rule, rel in rels.items():
        res = M.evaluate(scores, rel, ks=ks)
        for name in TABLE_METRICS:
            row[f"{rule}/{name}"] = res.get(name, float("nan"))
        row[f"{rule}/n_queries"] = res["n_queries"]
    return row


def compare_embedders(dataset: Any, embedders: dict[str, Any], queries: Sequence[Any] | None = None,
                      gallery: Sequence[Any] | None = None, ks: Sequence[int] = (1, 5, 10),
                      jaccard_threshold: float = 0.3, use_cache: bool = True) -> pd.DataFrame:
    """One row per model (and text -> image pair) scored on the same queries and gallery.

    Args:
        dataset: a :class:`~acg2vec_lab.data.DanbooruDataset` (image paths and tags).
        embedders: ``{name: Embedder}``, e.g. ``acg2vec_lab.embedders.available(profile)``; the
            ``chance`` baseline is one of them.
        queries / gallery: posts (default: test / train split).
        ks: cut-offs (10 must be among them for the table's @10 columns).

    Returns:
        DataFrame with ``model, weights, dim, direction, seconds`` and ``<rule>/<metric>`` columns.
    """
    import time

    if queries is None or gallery is None:
        q_default, g_default = split_posts(dataset, 10**9, 10**9)
        queries = queries if queries is not None else q_default
        gallery = gallery if gallery is not None else g_default
    ks = tuple(sorted(set(ks) | {1, 10}))
    qf, gf = posts_frame(queries), posts_frame(gallery)
    rels = relevance_matrices(qf, gf, jaccard_threshold)
    rows, gallery_vecs = [], {}
    for name, emb in embedders.items():
        if emb.modality != "image":
            continue
        t0 = time.perf_counter()
        g = embed_posts(emb, dataset, gallery, "gallery", use_cache)
        q = embed_posts(emb, dataset, queries, "queries", use_cache)
        gallery_vecs[name] = (emb, g)
        rows.append({"model": name, "weights": emb.weights, "dim": emb.dim, "direction": "image->image",
                     "seconds": time.perf_counter() - t0, **_score_row(q, g, rels, ks)})
    for name, emb in embedders.items():
        if emb.modality != "text" or not emb.space:
            continue
        for img_name, (img_emb, g) in gallery_vecs.items():
            if img_emb.space != emb.space:
                continue
            t0 = time.perf_counter()
            q = embed_captions(emb, dataset, queries, use_cache)
            rows.append({"model": f"{name} -> {img_name}", "weights": emb.weights, "dim": emb.dim,
                         "direction": "text->image", "seconds": time.perf_counter() - t0, **_score_row(q, g, rels, ks)})
    rows.sort(key=lambda r: (r["direction"] != "image->image", _order(r["model"])))
    return pd.DataFrame(rows)


def _order(name: str) -> tuple[int, str]:
    """EfficientNet-Lite0 first, chance last, the rest by name."""
    return (0 if name.startswith("efficientnet_lite0") else 2 if name.startswith("chance") else 1, name)


def chance_row(table: pd.DataFrame) -> pd.Series:
    """The chance baseline's row of a :func:`compare_embedders` table."""
    return table[table["model"] == "chance"].iloc[0]


def neighbour_purity(x: np.ndarray, labels: Sequence[Any], k: int = 10) -> float:
    """Mean fraction of each labelled point's ``k`` nearest other points (cosine) that share its label.

    Points whose label is ``None`` are not scored but still count as (non-matching) neighbours.
    """
    from acg2vec_lab.retrieval.index import normalize_rows

    labels = list(labels)
    v = normalize_rows(np.asarray(x, dtype=np.float32))
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(v) - 1)
    nn = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    vals = [np.mean([labels[j] == labels[i] for j in nn[i]]) for i in range(len(v)) if labels[i] is not None]
    return float(np.mean(vals)) if vals else float("nan")


def label_chance_purity(labels: Sequence[Any]) -> float:
    """Expected :func:`neighbour_purity` of random neighbours: mean over labelled points of (count - 1) / (n - 1)."""
    from collections import Counter

    labels = list(labels)
    counts = Counter(labels)
    n = len(labels)
    vals = [(counts[lab] - 1) / (n - 1) for lab in labels if lab is not None]
    return float(np.mean(vals)) if vals and n > 1 else float("nan")
