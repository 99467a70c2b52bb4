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
from pathlib import Path
from typing import Any, Sequence

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
    key = Path(str(getattr(dataset, "root", "dataset"))).name
    q_paths = [dataset.image_path(p) for p in queries]
    g_paths = [dataset.image_path(p) for p in gallery]
    q_keys = [f"{p.id}:{p.md5}" for p in queries]
    g_keys = [f"{p.id}:{p.md5}" for p in gallery]
    rows, gallery_vecs = [], {}
    for name, emb in embedders.items():
        if emb.modality != "image":
            continue
        t0 = time.perf_counter()
        g = embed_cached(emb, g_paths, g_keys, f"{key}-gallery", use_cache)
        q = embed_cached(emb, q_paths, q_keys, f"{key}-queries", use_cache)
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
            texts = [caption(p) for p in queries]
            q = embed_cached(emb, texts, texts, f"{key}-captions", use_cache)
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
