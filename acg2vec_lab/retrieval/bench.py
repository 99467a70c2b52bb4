"""Index comparison at any scale: structured vectors grown from real embeddings, and a timing/recall table.

Uniform random vectors are the wrong test for an ANN index (no clusters, every neighbour equally
far). :func:`structured_vectors` instead starts from real image embeddings, maps them to the target
dimension, and grows a hierarchy around them: parents (the real vectors), sub-clusters drawn in a
shared low-rank subspace with a decaying spectrum (as real embedding spectra decay), and points
around each sub-cluster with anisotropic plus a little isotropic noise.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from acg2vec_lab.retrieval.index import IndexSpec, VectorIndex, build_index, normalize_rows
from acg2vec_lab.retrieval.metrics import ann_recall


def project_to_dim(base: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """Real vectors ``(m, D)`` -> ``(m, dim)``: centred, then a random orthogonal projection (D >= dim)
    or zero-padding followed by a random rotation (D < dim); rows L2-normalised."""
    rng = np.random.default_rng(seed)
    x = np.asarray(base, dtype=np.float64)
    x = x - x.mean(0)
    d = x.shape[1]
    if d >= dim:
        q, _ = np.linalg.qr(rng.normal(size=(d, dim)))
        y = x @ q
    else:
        q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        y = np.concatenate([x, np.zeros((len(x), dim - d))], 1) @ q
    return normalize_rows(y.astype(np.float32))


def structured_vectors(base: np.ndarray, n: int, dim: int, seed: int = 0, per_cluster: int = 50,
                       rank: int = 64, spread: float = 0.3, jitter: float = 0.9, chunk: int = 100_000,
                       out: np.ndarray | None = None) -> np.ndarray:
    """``(n, dim)`` float32 unit vectors grown from real embeddings ``base`` ``(m, D)``.

    Args:
        base: real embeddings (e.g. EfficientNet-Lite0 features of real and synthetic pictures).
        n: vectors to make. dim: their dimension.
        per_cluster: average points per sub-cluster (n / per_cluster sub-clusters).
        rank: dimension of the shared subspace the structure lives in.
        spread: sub-cluster distance from its parent, relative to the parents' typical spacing.
        jitter: point distance from its sub-cluster centre, relative to the same spacing.
        out: optional preallocated array (e.g. a memmap) to fill.
    """
    rng = np.random.default_rng(seed)
    parents = project_to_dim(base, dim, seed)
    spacing = float(np.median(np.linalg.norm(parents[:, None] - parents[None, :256], axis=-1)))
    spectrum = 1.0 / np.sqrt(np.arange(1, rank + 1))  # decaying, like real embedding spectra
    basis = np.linalg.qr(rng.normal(size=(dim, rank)))[0].T * spectrum[:, None]  # (rank, dim)
    basis /= np.sqrt((spectrum**2).sum())
    n_sub = max(1, n // per_cluster)
    sub = parents[rng.integers(0, len(parents), n_sub)] + spread * spacing * (rng.normal(size=(n_sub, rank)) @ basis)
    sub = sub.astype(np.float32)
    x = out if out is not None else np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        centre = sub[rng.integers(0, n_sub, m)]
        noise = (rng.normal(size=(m, rank)).astype(np.float32) @ basis.astype(np.float32)) * 0.8
        noise += rng.normal(size=(m, dim)).astype(np.float32) * (0.6 / np.sqrt(dim))
        x[start:start + m] = normalize_rows(centre + jitter * spacing * noise)
    return x


@dataclasses.dataclass
class IndexResult:
    index: str
    knob: str
    build_s: float
    memory_mb: float
    single_qps: float
    batched_qps: float
    recall_at_10: float


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def time_search(index: Any, queries: np.ndarray, k: int = 10, single: int = 50, repeats: int = 3,
                min_seconds: float = 0.2) -> tuple[float, float, np.ndarray]:
    """(single-query QPS, batched QPS, batched ids): medians of ``repeats`` runs after a warm-up.

    Each run repeats its loop until ``min_seconds`` have passed, so one descheduled time slice on a
    shared machine cannot dominate a millisecond-long measurement.
    """
    index.search(queries[:4], k)  # warm-up
    singles, batches = [], []
    ids = None
    n_single = min(single, len(queries))
    for _ in range(repeats):
        done, t0 = 0, time.perf_counter()
        while True:
            for q in queries[:n_single]:
                index.search(q, k)
            done += n_single
            if time.perf_counter() - t0 >= min_seconds:
                break
        singles.append(done / (time.perf_counter() - t0))
        done, t0 = 0, time.perf_counter()
        while True:
            ids, _ = index.search(queries, k)
            done += len(queries)
            if time.perf_counter() - t0 >= min_seconds:
                break
        batches.append(done / (time.perf_counter() - t0))
    return float(np.median(singles)), float(np.median(batches)), ids


def shared_kmeans(x: np.ndarray, nlist: int, metric: str = "cosine", seed: int = 0, niter: int = 10,
                  points_per_centroid: int = 39) -> tuple[np.ndarray, float]:
    """One coarse k-means (``nlist`` centroids) for several IVF variants; returns (centroids, seconds)."""
    import faiss

    rng = np.random.default_rng(seed)
    n_train = min(len(x), points_per_centroid * nlist)
    sample = x[np.sort(rng.choice(len(x), n_train, replace=False))] if n_train < len(x) else x
    if metric == "cosine":
        sample = normalize_rows(sample)
    t0 = time.perf_counter()
    km = faiss.Kmeans(x.shape[1], nlist, niter=niter, seed=seed, max_points_per_centroid=points_per_centroid,
                      spherical=metric != "l2")
    km.train(np.ascontiguousarray(sample, dtype=np.float32))
    return km.centroids, time.perf_counter() - t0


def compare_indexes(x: np.ndarray, queries: np.ndarray, specs: Sequence[IndexSpec],
                    sweeps: dict[str, Sequence[int]] | None = None, k: int = 10, single: int = 50,
                    repeats: int = 3, seed: int = 0, log: Any = None, share_kmeans: bool = False) -> pd.DataFrame:
    """Build each index over ``x``, time single and batched search, measure recall@k against exact.

    ``sweeps`` maps a kind to search-knob values (``nprobe`` for IVF kinds, ``ef_search`` for HNSW);
    each value gives one row. The first spec should be ``flat`` (the exact reference).
    ``share_kmeans``: train the coarse quantizer once for all IVF kinds; each IVF row's ``build_s``
    still includes that k-means time (what building it alone would cost).
    """
    sweeps = sweeps or {}
    rows: list[IndexResult] = []
    truth = None
    centroids, km_s = None, 0.0
    for spec in specs:
        if spec.is_ivf and share_kmeans and centroids is None:
            from acg2vec_lab.retrieval.index import default_nlist

            centroids, km_s = shared_kmeans(x, spec.nlist or default_nlist(len(x)), spec.metric, seed)
        before = _rss()
        t0 = time.perf_counter()
        index = build_index(x, dataclasses.replace(spec), seed=seed,
                            centroids=centroids if spec.is_ivf and share_kmeans else None)
        build_s = time.perf_counter() - t0 + (km_s if spec.is_ivf and share_kmeans else 0.0)
        measured = max(_rss() - before, 0) / 1e6
        mem_mb = max(measured, index.memory_bytes() / 1e6) if measured > 0 else index.memory_bytes() / 1e6
        knob_name = "nprobe" if spec.is_ivf else "ef_search" if spec.kind == "hnsw" else ""
        values = list(sweeps.get(spec.kind, [spec.nprobe if spec.is_ivf else spec.ef_search])) if knob_name else [None]
        for v in values:
            if knob_name == "nprobe":
                index.set_search_params(nprobe=v)
            elif knob_name == "ef_search":
                index.set_search_params(ef_search=v)
            sq, bq, ids = time_search(index, queries, k, single, repeats)
            if truth is None:
                if spec.kind != "flat":
                    raise ValueError("the first spec must be flat (the exact reference)")
                truth = ids
            label = spec.kind + (f" (nlist={index.spec.nlist})" if spec.is_ivf else f" (M={spec.hnsw_m})" if spec.kind == "hnsw" else "")
            rows.append(IndexResult(label, f"{knob_name}={v}" if knob_name else "exact", build_s, mem_mb, sq, bq,
                                    ann_recall(ids, truth, k)))
            if log:
                log(rows[-1])
        del index
    table = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    exact_bq = table["batched_qps"].iloc[0]
    table["speedup_vs_exact"] = table["batched_qps"] / exact_bq
    return table


def default_specs(metric: str = "cosine") -> list[IndexSpec]:
    """Exact, HNSW32, IVF-Flat, IVF-SQ8 and IVF-PQ (nlist = 4 sqrt(N) for the IVF kinds)."""
    return [IndexSpec("flat", metric), IndexSpec("hnsw", metric, hnsw_m=32, ef_construction=64),
            IndexSpec("ivf_flat", metric), IndexSpec("ivf_sq8", metric), IndexSpec("ivf_pq", metric)]


def database_and_queries(base: np.ndarray, n: int, n_queries: int, dim: int, seed: int = 0,
                         **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``n`` database vectors and ``n_queries`` held-out queries from the same structure (not in the database)."""
    x = structured_vectors(base, n + n_queries, dim, seed=seed, **kwargs)
    return x[:n], np.ascontiguousarray(x[n:])


def exact_index(x: np.ndarray, metric: str = "cosine") -> VectorIndex:
    return build_index(x, IndexSpec("flat", metric))
