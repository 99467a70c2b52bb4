"""De-duplication: exact file hashes, perceptual hashes and embedding nearest neighbours; split leakage.

Three levels, cheapest first (the order users of booru tooling ask for): identical bytes (SHA-256),
near-identical pictures (a 64-bit perceptual hash within a Hamming distance), and the same picture
re-encoded, resized or lightly edited (cosine similarity of embeddings above a threshold, with a
sweep to choose it). Pairs become groups by union-find. :func:`cross_split_pairs` is the one leak
check by key: :func:`leakage_check` reports keys of one split found in another, and
:func:`acg2vec_lab.data.splits.find_leaks` runs it on file hashes before its perceptual stage.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acg2vec_lab.io import file_digest


# -- exact --------------------------------------------------------------------------------------
def exact_duplicate_groups(paths: Iterable[str | os.PathLike]) -> list[list[Path]]:
    """Groups (size >= 2) of files with identical bytes (SHA-256)."""
    by_hash: dict[str, list[Path]] = {}
    for p in paths:
        by_hash.setdefault(file_digest(p, "sha256"), []).append(Path(p))
    return [g for g in by_hash.values() if len(g) > 1]


# -- perceptual ---------------------------------------------------------------------------------
def perceptual_hashes(images: Iterable[Any], hash_size: int = 8, method: str = "phash") -> np.ndarray:
    """``(N, hash_size**2)`` bool bit matrix of perceptual hashes (``imagehash``) of PIL images or paths
    (a path is read by :func:`acg2vec_lab.data.images.load_image`: 8-bit RGB, errors name the file)."""
    import imagehash
    from PIL import Image

    from acg2vec_lab.data.images import load_image

    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash, "ahash": imagehash.average_hash}[method]
    rows = []
    for img in images:
        if not isinstance(img, Image.Image):
            img = load_image(img)
        rows.append(np.asarray(fn(img, hash_size=hash_size).hash, dtype=bool).reshape(-1))
    return np.stack(rows) if rows else np.zeros((0, hash_size * hash_size), dtype=bool)


def hamming_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``(Na, Nb)`` Hamming distances between bit rows."""
    a = np.asarray(a, dtype=np.int32)
    b = a if b is None else np.asarray(b, dtype=np.int32)
    return (a[:, None, :] != b[None, :, :]).sum(-1) if a.size * len(b) < 5e7 else a @ (1 - b.T) + (1 - a) @ b.T


def perceptual_duplicate_pairs(hashes: np.ndarray, max_distance: int = 6) -> pd.DataFrame:
    """Pairs ``i < j`` whose hashes differ in at most ``max_distance`` bits (columns i, j, distance)."""
    d = hamming_matrix(hashes)
    i, j = np.nonzero(np.triu(d <= max_distance, 1))
    return pd.DataFrame({"i": i, "j": j, "distance": d[i, j]})


# -- embeddings ---------------------------------------------------------------------------------
def embedding_neighbour_pairs(x: np.ndarray, k: int = 10) -> pd.DataFrame:
    """Each row's ``k`` nearest other rows by cosine similarity (pairs ``i < j`` once; columns i, j, similarity)."""
    import faiss

    from acg2vec_lab.retrieval.index import normalize_rows

    x = normalize_rows(np.ascontiguousarray(x, dtype=np.float32))
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims, nn = index.search(x, min(k + 1, len(x)))
    rows = {}
    for i in range(len(x)):
        for s, j in zip(sims[i], nn[i]):
            if j < 0 or j == i:
                continue
            key = (min(i, int(j)), max(i, int(j)))
            rows[key] = max(rows.get(key, -np.inf), float(s))
    if not rows:
        return pd.DataFrame({"i": [], "j": [], "similarity": []})
    keys = np.array(list(rows.keys()))
    return pd.DataFrame({"i": keys[:, 0], "j": keys[:, 1], "similarity": list(rows.values())}).sort_values(
        "similarity", ascending=False, ignore_index=True)


def embedding_duplicate_pairs(x: np.ndarray, threshold: float = 0.95, k: int = 10) -> pd.DataFrame:
    """Neighbour pairs with cosine similarity >= ``threshold``."""
    pairs = embedding_neighbour_pairs(x, k)
    return pairs[pairs["similarity"] >= threshold].reset_index(drop=True)


def threshold_sweep(x: np.ndarray, thresholds: Sequence[float], true_groups: Sequence[Any] | None = None,
                    k: int = 10) -> pd.DataFrame:
    """For each threshold: pairs and groups found, and (given ``true_groups``, one label per row, ``None``
    for singletons) pair precision and recall against the true duplicate pairs."""
    pairs = embedding_neighbour_pairs(x, k)
    truth: set[tuple[int, int]] = set()
    if true_groups is not None:
        by: dict[Any, list[int]] = {}
        for i, g in enumerate(true_groups):
            if g is not None:
                by.setdefault(g, []).append(i)
        truth = {(a, b) for m in by.values() for ai, a in enumerate(m) for b in m[ai + 1:]}
    rows = []
    for t in thresholds:
        sel = pairs[pairs["similarity"] >= t]
        found = set(zip(sel["i"].astype(int), sel["j"].astype(int)))
        row = {"threshold": float(t), "pairs": len(found), "groups": len(duplicate_groups(found, len(x)))}
        if true_groups is not None:
            tp = len(found & truth)
            row["precision"] = tp / len(found) if found else float("nan")
            row["recall"] = tp / len(truth) if truth else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


# -- groups and leakage -------------------------------------------------------------------------
def duplicate_groups(pairs: Iterable[tuple[int, int]] | pd.DataFrame, n: int) -> list[list[int]]:
    """Connected components (size >= 2) of the duplicate-pair graph over ``n`` items (union-find)."""
    if isinstance(pairs, pd.DataFrame):
        pairs = zip(pairs["i"].astype(int), pairs["j"].astype(int))
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


def cross_split_pairs(items: Iterable[tuple[str, Any, Any]]) -> tuple[list[tuple[str, Any, str, Any]], int]:
    """Items that share a key (a file hash, an md5, an id), the one leak check by key.

    Args:
        items: ``(split, item_id, key)`` triples.

    Returns:
        ``(pairs, within)``: every pair of items with one key in two different splits, as
        ``(split_a, id_a, split_b, id_b)`` in first-seen order, and the number of same-key pairs
        inside one split (duplicates, but not leaks).
    """
    by_key: dict[Any, list[tuple[str, Any]]] = {}
    for split, item_id, key in items:
        by_key.setdefault(key, []).append((split, item_id))
    pairs: list[tuple[str, Any, str, Any]] = []
    within = 0
    for group in by_key.values():
        for i, (sa, ia) in enumerate(group):
            for sb, ib in group[i + 1:]:
                if sa != sb:
                    pairs.append((sa, ia, sb, ib))
                else:
                    within += 1
    return pairs, within


def leakage_check(keys_by_split: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Keys (hashes, md5s, ids) that occur in more than one split (:func:`cross_split_pairs` of the keys).

    Args:
        keys_by_split: e.g. ``{"train": [md5...], "val": [...], "test": [...]}``.

    Returns:
        One row per (key, split_a, split_b) with a shared key; empty when the splits are leak-free.
    """
    pairs, _ = cross_split_pairs((split, key, key) for split, keys in keys_by_split.items() for key in dict.fromkeys(keys))
    return pd.DataFrame([{"key": key, "split_a": a, "split_b": b} for a, key, b, _ in pairs],
                        columns=["key", "split_a", "split_b"])


def near_duplicate_leakage(x_a: np.ndarray, x_b: np.ndarray, threshold: float = 0.95) -> pd.DataFrame:
    """Items of split B whose nearest item in split A has cosine similarity >= ``threshold``
    (columns b, a, similarity): near-duplicates that an exact-hash check misses."""
    import faiss

    from acg2vec_lab.retrieval.index import normalize_rows

    a = normalize_rows(np.ascontiguousarray(x_a, dtype=np.float32))
    b = normalize_rows(np.ascontiguousarray(x_b, dtype=np.float32))
    index = faiss.IndexFlatIP(a.shape[1])
    index.add(a)
    sims, nn = index.search(b, 1)
    hit = sims[:, 0] >= threshold
    return pd.DataFrame({"b": np.nonzero(hit)[0], "a": nn[hit, 0], "similarity": sims[hit, 0]})
