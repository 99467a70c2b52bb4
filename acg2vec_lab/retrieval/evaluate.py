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
        return np.load(path, allow_pickle=False)
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


# -- what the notebooks 09 / 10 compute, as functions -----------------------------------------------
WEIGHT_STATUSES = ("real weights", "real base, not fine-tuned", "trained here", "random init", "chance baseline")


def weights_status(label: str) -> str:
    """The kind of weights an embedder's ``weights`` label describes (one of :data:`WEIGHT_STATUSES`).

    ``"real: <asset>"`` -> real weights (``", not fine-tuned"`` -> real base, not fine-tuned);
    ``"trained ..."`` (``"trained on SYNTHETIC data: <run>"``, ``"trained: <folder>"``) -> trained here;
    ``"random init..."`` -> random init; ``"none: random vectors ..."`` -> chance baseline.
    """
    low = label.strip().lower()
    if low.startswith("none:"):
        return "chance baseline"
    if low.startswith("random init"):
        return "random init"
    if low.startswith("trained"):
        return "trained here"
    if low.startswith("real"):
        return "real base, not fine-tuned" if "not fine-tuned" in low else "real weights"
    raise ValueError(f"unrecognised weights label {label!r}: expected 'real: ...', 'trained ...', "
                     f"'random init ...' or 'none: ...'")


def weights_table(embedders: dict[str, Any], names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per embedder: name, modality, dim, weights label, :func:`weights_status`, data its training saw.

    ``trained on`` says ``SYNTHETIC`` for checkpoints trained here on the drawn set (from the label),
    so a reader sees which numbers come from random weights and which from a model trained on drawings.
    """
    rows = []
    for name in names or list(embedders):
        emb = embedders[name]
        status = weights_status(emb.weights)
        trained_on = ("SYNTHETIC drawings" if "synthetic" in emb.weights.lower() else "see label") \
            if status == "trained here" else "released weights" if status.startswith("real") else "-"
        rows.append({"name": name, "modality": emb.modality, "dim": emb.dim, "status": status,
                     "trained on": trained_on, "weights": emb.weights, "space": emb.space})
    return pd.DataFrame(rows)


def embed_for_maps(embedders: dict[str, Any], dataset: Any, posts: Sequence[Any], gallery: Sequence[Any],
                   queries: Sequence[Any], names: Sequence[str] | None = None,
                   use_cache: bool = True) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """``({name: (len(posts), dim) vectors}, {name: seconds})`` for the map notebook.

    ``posts`` must be ``(gallery + queries)[:n]``: image models embed gallery and queries under the same
    cache entries as the retrieval notebook (so both share one embedding pass) and keep the first
    ``len(posts)`` rows; text models embed each post's tag caption (:func:`caption`).
    """
    import time

    if [p.id for p in posts] != [p.id for p in (list(gallery) + list(queries))[: len(posts)]]:
        raise ValueError("posts must be the first rows of gallery + queries (the shared embedding cache)")
    vectors, seconds = {}, {}
    for name in names or list(embedders):
        emb = embedders[name]
        t0 = time.perf_counter()
        if emb.modality == "image":
            both = np.concatenate([embed_posts(emb, dataset, gallery, "gallery", use_cache),
                                   embed_posts(emb, dataset, queries, "queries", use_cache)])
            vectors[name] = both[: len(posts)]
        else:
            vectors[name] = embed_captions(emb, dataset, posts, use_cache)
        seconds[name] = time.perf_counter() - t0
    return vectors, seconds


def purity_table(vectors: dict[str, np.ndarray], frame: pd.DataFrame, k: int = 10,
                 rules: Sequence[str] = ("character", "series")) -> pd.DataFrame:
    """:func:`neighbour_purity` per model (rows) and label column of ``frame`` (columns), plus the
    ``(random neighbours)`` row: the expected purity of random neighbours (:func:`label_chance_purity`)."""
    table = pd.DataFrame({name: {rule: neighbour_purity(v, frame[rule], k) for rule in rules}
                          for name, v in vectors.items()}).T
    table.loc["(random neighbours)"] = [label_chance_purity(frame[rule]) for rule in rules]
    return table


def random_purity_null(labels: Sequence[Any], dim: int = 128, k: int = 10, seeds: Sequence[int] = range(5)) -> list[float]:
    """Purity of random Gaussian vectors minus :func:`label_chance_purity`, one value per seed.

    The spread of what an embedding with *no* structure scores on these very labels: a gate on
    neighbour purity needs a margin above it (:func:`null_margin`), else it would pass on noise.
    """
    n, chance = len(list(labels)), label_chance_purity(labels)
    return [neighbour_purity(np.random.default_rng(s).normal(size=(n, dim)), labels, k) - chance for s in seeds]


def null_margin(null_improvements: Sequence[float], k: float = 3.0, floor: float = 0.0) -> float:
    """A gate margin above a null distribution: ``mean + k * sd`` of what structure-free inputs reach
    over the baseline (e.g. :func:`random_purity_null`), at least ``floor``."""
    v = np.asarray(list(null_improvements), dtype=float)
    if len(v) < 2:
        raise ValueError("null_margin needs at least two seeds")
    return max(floor, float(v.mean() + k * v.std(ddof=1)))


def cosine_similarity_matrix(vecs: np.ndarray) -> np.ndarray:
    """``(n, n)`` cosine similarities of the rows of ``vecs`` ``(n, d)``."""
    from acg2vec_lab.retrieval.index import normalize_rows

    v = normalize_rows(np.asarray(vecs, dtype=np.float32))
    return v @ v.T


def sprite_separation(vecs: np.ndarray, labels: pd.DataFrame) -> float:
    """Mean sprite-sprite cosine (off-diagonal) minus mean sprite-background cosine.

    ``labels`` has a ``kind`` column (``"sprite"`` / ``"background"``) per row of ``vecs``, as
    :func:`renpy_vectors` returns. > 0: the embedding puts drawn characters nearer each other than
    near backgrounds; ~0 for random vectors.
    """
    s = cosine_similarity_matrix(vecs)
    sprite = (labels["kind"] == "sprite").to_numpy()
    if sprite.sum() < 2 or (~sprite).sum() < 1:
        raise ValueError(f"sprite_separation needs >= 2 sprites and >= 1 background, got kinds {labels['kind'].tolist()}")
    within = s[np.ix_(sprite, sprite)][~np.eye(int(sprite.sum()), dtype=bool)].mean()
    across = s[np.ix_(sprite, ~sprite)].mean()
    return float(within - across)


def random_separation_null(labels: pd.DataFrame, dim: int = 128, seeds: Sequence[int] = range(10)) -> list[float]:
    """:func:`sprite_separation` of random Gaussian vectors, one per seed (its null distribution)."""
    return [sprite_separation(np.random.default_rng(s).normal(size=(len(labels), dim)), labels) for s in seeds]


def renpy_separation(embedders: dict[str, Any], names: Sequence[str] | None = None,
                     use_cache: bool = True) -> tuple[pd.Series, pd.DataFrame]:
    """(:func:`sprite_separation` per image embedder on the Ren'Py art, the Ren'Py labels)."""
    out, labels = {}, None
    for name in names or list(embedders):
        if embedders[name].modality != "image":
            continue
        vecs, labels = renpy_vectors(embedders[name], use_cache)
        out[name] = sprite_separation(vecs, labels)
    return pd.Series(out, name="sprite-sprite minus sprite-background cosine", dtype=float), labels


def renpy_leave_one_out(embedders: dict[str, Any], ks: Sequence[int] = (1, 5), use_cache: bool = True) -> pd.DataFrame:
    """Each Ren'Py picture queries the other eleven; relevant = same kind (sprite / background).

    One row per image embedder with ``recall@5``, ``mAP@5`` and ``MRR`` (the query itself excluded).
    """
    rows = {}
    for name, emb in embedders.items():
        if emb.modality != "image":
            continue
        vecs, labels = renpy_vectors(emb, use_cache)
        kind = labels["kind"].to_numpy()
        res = M.evaluate(cosine_similarity_matrix(vecs), kind[:, None] == kind[None, :], ks=ks,
                         exclude=np.eye(len(vecs), dtype=bool))
        rows[name] = {key: res[key] for key in (f"recall@{max(ks)}", f"mAP@{max(ks)}", "MRR")}
    return pd.DataFrame(rows).T


def recall_curves(embedders: dict[str, Any], dataset: Any, queries: Sequence[Any], gallery: Sequence[Any],
                  relevance: np.ndarray, ks: Sequence[int], use_cache: bool = True,
                  skip: Sequence[str] = ("chance",)) -> dict[str, np.ndarray]:
    """recall@k at each of ``ks`` for every image embedder (exact cosine search), ``{name: (len(ks),)}``.

    ``skip``: models left out (the chance embedder: its expected curve is :func:`metrics.chance_recall`).
    """
    curves = {}
    for name, emb in embedders.items():
        if emb.modality != "image" or name in skip:
            continue
        q = embed_posts(emb, dataset, queries, "queries", use_cache)
        g = embed_posts(emb, dataset, gallery, "gallery", use_cache)
        from acg2vec_lab.retrieval.index import normalize_rows

        curves[name] = M.recall_curve(normalize_rows(q) @ normalize_rows(g).T, relevance, ks)
    return curves


def chance_metric_null(relevance: np.ndarray, metric: str = "mAP@10", seeds: Sequence[int] = range(10),
                       ks: Sequence[int] = (1, 10)) -> list[float]:
    """``metric`` of random rankings (uniform scores), one value per seed: the chance baseline's spread."""
    nq, n = relevance.shape
    return [M.evaluate(np.random.default_rng(s).random((nq, n)), relevance, ks=ks)[metric] for s in seeds]


def gallery_rows(dataset: Any, queries: Sequence[Any], gallery: Sequence[Any], query_vectors: np.ndarray,
                 index: Any, relevance: np.ndarray, labels: Sequence[Any], n_rows: int = 4, k: int = 5) -> dict[str, Any]:
    """Arguments of :func:`acg2vec_lab.viz.retrieval_gallery` for the first ``n_rows`` queries that have
    a relevant gallery item: query and top-``k`` images, relevance per hit, scores as titles.

    ``index`` holds the gallery under the posts' ids (e.g. a flat :class:`VectorIndex`); ``labels``:
    one caption per query (e.g. its character).
    """
    shown = [i for i in range(len(queries)) if relevance[i].any()][:n_rows]
    ids, scores = index.search(query_vectors[shown], k)
    pos = {p.id: j for j, p in enumerate(gallery)}
    hits = [[int(h) for h in row if h >= 0] for row in ids]
    return {
        "query_images": [dataset.load_image(queries[i]) for i in shown],
        "results": [[dataset.load_image(gallery[pos[h]]) for h in row] for row in hits],
        "relevant": [[bool(relevance[i, pos[h]]) for h in row] for i, row in zip(shown, hits)],
        "titles": [[f"{s:.2f}" for s in srow[: len(row)]] for srow, row in zip(scores, hits)],
        "query_titles": [str(labels[i]) for i in shown],
    }
