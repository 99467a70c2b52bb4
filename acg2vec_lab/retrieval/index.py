"""One interface over faiss: exact, HNSW, IVF-Flat, IVF-SQ8 and IVF-PQ, with ids, removal and metadata.

Conventions (shared by :mod:`acg2vec_lab.retrieval.milvus`):

* Vectors are ``(N, d)`` float32, rows are items. ``metric`` is ``"ip"`` (inner product),
  ``"cosine"`` (rows L2-normalised on the way in, then inner product) or ``"l2"`` (squared
  Euclidean distance, as faiss and Milvus report it).
* Search returns ``ids`` ``(nq, k)`` int64 and ``scores`` ``(nq, k)`` float32, best first. For
  ``ip``/``cosine`` a score is a similarity (higher is better); for ``l2`` it is a squared distance
  (lower is better). When fewer than ``k`` items exist, the tail is padded with id ``-1`` and score
  NaN, so ``k`` larger than the gallery is allowed.
* Ids are caller-chosen int64 (``>= 0``) or assigned consecutively; adding an id twice is an error.
* IVF kinds use ``nlist = 4 * sqrt(N)`` by default (the original Milvus IVF_SQ8 configuration),
  clamped so every list gets >= 39 training points (the k-means minimum faiss asks for).
* HNSW graphs cannot drop nodes, so removal there is a tombstone: removed ids are filtered inside
  the search by an id selector (memory is reclaimed by rebuilding).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acg2vec_lab.retrieval.metrics import l2_normalize

INDEX_KINDS = ("flat", "hnsw", "ivf_flat", "ivf_sq8", "ivf_pq")
METRICS = ("ip", "cosine", "l2")
FORMAT_VERSION = 1


def default_nlist(n: int) -> int:
    """``4 * sqrt(n)`` inverted lists (the original configuration), at most ``n // 39``, at least 1."""
    return int(max(1, min(round(4 * math.sqrt(max(n, 1))), n // 39)))


def default_pq_m(d: int) -> int:
    """Sub-quantizers for PQ: about one per 16 dimensions, and a divisor of ``d``."""
    target = max(1, d // 16)
    for m in range(target, 0, -1):
        if d % m == 0:
            return m
    return 1


@dataclasses.dataclass
class IndexSpec:
    """What to build.

    Attributes:
        kind: one of :data:`INDEX_KINDS`.
        metric: ``ip``, ``cosine`` or ``l2``.
        nlist: inverted lists for IVF kinds; ``None`` -> :func:`default_nlist` of the training size.
        nprobe: lists visited per query (IVF).
        hnsw_m: graph degree (HNSW).
        ef_construction: candidate list while building (HNSW).
        ef_search: candidate list while searching (HNSW).
        pq_m: sub-quantizers (IVF-PQ); ``None`` -> :func:`default_pq_m`.
        pq_nbits: bits per sub-quantizer code (IVF-PQ), lowered when there is too little training data.
    """

    kind: str = "flat"
    metric: str = "cosine"
    nlist: int | None = None
    nprobe: int = 16
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    pq_m: int | None = None
    pq_nbits: int = 8

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; choose one of {', '.join(INDEX_KINDS)}")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")

    @property
    def is_ivf(self) -> bool:
        return self.kind.startswith("ivf")

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "l2"


def estimate_bytes(spec: IndexSpec, n: int, d: int) -> int:
    """Approximate resident size of an index of ``n`` vectors of dimension ``d`` (codes, ids, graph, centroids)."""
    ids = 8 * n
    nlist = spec.nlist or default_nlist(n)
    if spec.kind == "flat":
        return 4 * n * d + ids
    if spec.kind == "hnsw":
        # level 0 holds 2*M neighbours per node, upper levels ~M/(M-1)... small; int32 links
        return 4 * n * d + ids + n * 4 * 2 * spec.hnsw_m + n * 4 * spec.hnsw_m // 8
    centroids = 4 * nlist * d
    if spec.kind == "ivf_flat":
        return 4 * n * d + ids + centroids
    if spec.kind == "ivf_sq8":
        return n * d + ids + centroids + 8 * d
    m = spec.pq_m or default_pq_m(d)
    code = math.ceil(m * spec.pq_nbits / 8)
    return n * code + ids + centroids + 4 * (2**spec.pq_nbits) * d


def _as_matrix(x: Any, d: int | None = None) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"expected vectors of shape (N, d), got {x.shape}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"vectors have dimension {x.shape[1]}, the index has {d}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or inf")
    return x


RESULT_COLUMNS = ("query", "rank", "id", "score")


def meta_column_names(columns: Iterable[Any]) -> dict[Any, str]:
    """Metadata columns renamed where they clash with result columns (``score`` -> ``meta_score``)."""
    return {c: f"meta_{c}" if c in RESULT_COLUMNS else c for c in columns}


ADD_CHUNK = 100_000  # vectors per faiss add call (progress granularity for big builds)
normalize_rows = l2_normalize  # the index's historical name for the package's one L2 normalisation


class VectorIndex:
    """A faiss index with int64 ids, removal, metadata and atomic save/load.

    Example::

        idx = VectorIndex(dim=1280, spec=IndexSpec("ivf_sq8", metric="l2"))
        idx.add(vectors, ids=post_ids, metadata=df)   # trains on the first batch if needed
        ids, scores = idx.search(queries, k=10)        # (nq, 10) each
        table = idx.query(queries, k=10)               # long DataFrame joined with metadata
    """

    def __init__(self, dim: int, spec: IndexSpec | None = None, info: dict[str, Any] | None = None) -> None:
        self.dim = int(dim)
        self.spec = spec or IndexSpec()
        self.info: dict[str, Any] = dict(info or {})  # e.g. embedder name, space, weights
        self.metadata: pd.DataFrame | None = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._removed: set[int] = set()
        self._next_id = 0
        self._index = self._make_empty()

    # -- construction ---------------------------------------------------------------------------
    def _faiss_metric(self) -> int:
        import faiss

        return faiss.METRIC_L2 if self.spec.metric == "l2" else faiss.METRIC_INNER_PRODUCT

    def _make_empty(self, n_train: int | None = None) -> Any:
        import faiss

        s, d, metric = self.spec, self.dim, self._faiss_metric()
        if s.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlat(d, metric))
        if s.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(d, s.hnsw_m, metric)
            inner.hnsw.efConstruction = s.ef_construction
            inner.hnsw.efSearch = s.ef_search
            return faiss.IndexIDMap2(inner)
        if n_train is None:
            return None  # IVF: built at train time, when the data size is known
        nlist = s.nlist or default_nlist(n_train)
        quantizer = faiss.IndexFlat(d, metric)
        if s.kind == "ivf_flat":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
        elif s.kind == "ivf_sq8":
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, metric)
        else:
            m = s.pq_m or default_pq_m(d)
            if d % m:
                raise ValueError(f"pq_m={m} does not divide d={d}")
            # k-means per sub-quantizer wants >= 39 points per centroid: fewer bits on small data
            nbits = int(min(s.pq_nbits, max(1, math.floor(math.log2(max(n_train // 39, 2))))))
            index = faiss.IndexIVFPQ(quantizer, d, nlist, m, nbits, metric)
        index.cp.niter = 10  # k-means iterations; 10 is enough for search quality (faiss uses 25 by default)
        index.cp.max_points_per_centroid = 64
        return index

    @property
    def is_trained(self) -> bool:
        return self._index is not None and bool(self._index.is_trained)

    def train(self, x: Any, centroids: np.ndarray | None = None) -> VectorIndex:
        """Train the quantizers (IVF kinds) on ``x`` ``(N, d)``; a no-op for flat and HNSW.

        ``centroids`` ``(nlist, d)``: a coarse quantizer trained elsewhere (e.g. one k-means shared by
        several IVF variants in a benchmark); then only the SQ/PQ codebooks are trained on ``x``.
        """
        x = self._prepare(x)
        if self.spec.is_ivf:
            if len(self._ids):
                raise RuntimeError("cannot retrain an index that already holds vectors")
            if centroids is not None:
                self.spec.nlist = len(centroids)
            self._index = self._make_empty(len(x))
            if centroids is not None:
                self._index.quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
            self._index.train(x)
            self._index.nprobe = self.spec.nprobe
        return self

    def _prepare(self, x: Any) -> np.ndarray:
        x = _as_matrix(x, self.dim)
        return normalize_rows(x) if self.spec.metric == "cosine" else x

    # -- mutation -------------------------------------------------------------------------------
    def add(self, x: Any, ids: Iterable[int] | None = None, metadata: pd.DataFrame | None = None) -> np.ndarray:
        """Add vectors ``x`` ``(N, d)`` with int64 ``ids`` (default: consecutive); returns the ids.

        ``metadata``: optional DataFrame with one row per vector (same order); it is indexed by id
        and joined to search results. An untrained IVF index is trained on ``x`` first.
        """
        x = self._prepare(x)
        if ids is None:
            ids = np.arange(self._next_id, self._next_id + len(x), dtype=np.int64)
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids for {len(x)} vectors")
        if (ids < 0).any():
            raise ValueError("ids must be >= 0 (-1 marks 'no result')")
        if len(np.unique(ids)) != len(ids) or np.isin(ids, self._ids).any():
            raise ValueError("duplicate ids: an id can be added once (remove it first to replace it)")
        if metadata is not None and len(metadata) != len(x):
            raise ValueError(f"metadata has {len(metadata)} rows for {len(x)} vectors")
        if not self.is_trained:
            self.train(x)
        chunk = ADD_CHUNK
        if len(x) > chunk:  # large adds in chunks, with a progress bar (same index as one call)
            from acg2vec_lab import progress

            for s in progress.bar(range(0, len(x), chunk), desc="index add", unit="chunk", leave=False):
                self._index.add_with_ids(x[s:s + chunk], ids[s:s + chunk])
        elif len(x):
            self._index.add_with_ids(x, ids)
        self._ids = np.concatenate([self._ids, ids])
        self._next_id = max(self._next_id, int(ids.max()) + 1 if len(ids) else 0)
        if metadata is not None:
            meta = metadata.copy()
            meta.index = pd.Index(ids, name="id")
            self.metadata = meta if self.metadata is None else pd.concat([self.metadata, meta])
        return ids

    def remove(self, ids: Iterable[int]) -> int:
        """Remove items by id; returns how many were present. Unknown ids are ignored."""
        import faiss

        ids = np.asarray(list(ids), dtype=np.int64).reshape(-1)
        present = ids[np.isin(ids, self._ids)]
        if not len(present):
            return 0
        if self.spec.kind == "hnsw":
            self._removed.update(int(i) for i in present)
        else:
            self._index.remove_ids(faiss.IDSelectorBatch(present))
        self._ids = self._ids[~np.isin(self._ids, present)]
        if self.metadata is not None:
            self.metadata = self.metadata.drop(index=present, errors="ignore")
        return len(present)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        return self._ids.copy()

    # -- search ---------------------------------------------------------------------------------
    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the speed/recall knobs (IVF ``nprobe``, HNSW ``ef_search``) without rebuilding."""
        if nprobe is not None:
            self.spec.nprobe = int(nprobe)
            if self.spec.is_ivf and self._index is not None:
                self._index.nprobe = int(nprobe)
        if ef_search is not None:
            self.spec.ef_search = int(ef_search)
            if self.spec.kind == "hnsw":
                self._hnsw().efSearch = int(ef_search)

    def _hnsw(self) -> Any:
        import faiss

        return faiss.downcast_index(self._index.index).hnsw

    def search(self, q: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` for one query ``(d,)`` or a batch ``(nq, d)``: ``(ids, scores)``, each ``(nq, k)``.

        Padded with id -1 / score NaN when the index holds fewer than ``k`` items.
        """
        import faiss

        if k < 1:
            raise ValueError("k must be >= 1")
        q = self._prepare(q)
        nq = len(q)
        if not len(self._ids) or self._index is None:
            return np.full((nq, k), -1, dtype=np.int64), np.full((nq, k), np.nan, dtype=np.float32)
        params = None
        if self.spec.kind == "hnsw" and self._removed:
            sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self._removed, dtype=np.int64)))
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=self.spec.ef_search)
            self._keep_alive = sel
        # One query cannot use several threads in faiss (it parallelises over queries), but entering an
        # OpenMP region still waits for every thread; on a busy machine that costs a time slice per query.
        threads = faiss.omp_get_max_threads()
        if nq == 1 and threads > 1:
            faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(q, k, params=params) if params is not None else self._index.search(q, k)
        finally:
            if nq == 1 and threads > 1:
                faiss.omp_set_num_threads(threads)
        scores = scores.astype(np.float32)
        scores[ids < 0] = np.nan
        return ids.astype(np.int64), scores

    def query(self, q: Any, k: int = 10) -> pd.DataFrame:
        """Long table of results: ``query, rank, id, score`` plus the metadata columns of each hit.

        Metadata columns named like a result column get a ``meta_`` prefix.
        """
        ids, scores = self.search(q, k)
        nq = ids.shape[0]
        frame = pd.DataFrame({
            "query": np.repeat(np.arange(nq), k), "rank": np.tile(np.arange(1, k + 1), nq),
            "id": ids.reshape(-1), "score": scores.reshape(-1),
        })
        frame = frame[frame["id"] >= 0].reset_index(drop=True)
        if self.metadata is not None and len(frame):
            frame = frame.join(self.metadata.rename(columns=meta_column_names(self.metadata.columns)), on="id")
        return frame

    def reconstruct(self, ids: Iterable[int]) -> np.ndarray:
        """Stored vectors for ``ids`` (flat and HNSW exactly; IVF kinds as decoded, i.e. approximate)."""
        ids = np.asarray(list(ids), dtype=np.int64)
        if self.spec.kind in ("flat", "hnsw"):
            return np.stack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dim), np.float32)
        self._index.make_direct_map()
        return np.stack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dim), np.float32)

    def memory_bytes(self) -> int:
        """Estimated resident size (see :func:`estimate_bytes`) of what the index holds now."""
        return estimate_bytes(self.spec, len(self), self.dim)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``index.faiss``, ``index.json`` and ``metadata.parquet`` into ``folder`` atomically.

        Everything is written into a temporary sibling folder which then replaces ``folder``, so a
        reader never sees a half-written index and an interrupted save leaves the old one intact.
        """
        import faiss

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
        try:
            if self._index is not None:
                faiss.write_index(self._index, str(tmp / "index.faiss"))
            state = {
                "format": FORMAT_VERSION, "dim": self.dim, "spec": dataclasses.asdict(self.spec),
                "info": self.info, "next_id": self._next_id, "removed": sorted(self._removed),
                "ids": self._ids.tolist() if len(self._ids) <= 100_000 else None, "trained": self._index is not None,
            }
            if state["ids"] is None:
                np.save(tmp / "ids.npy", self._ids)
            if self.metadata is not None:
                self.metadata.to_parquet(tmp / "metadata.parquet")
            (tmp / "index.json").write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
            old = None
            if folder.exists():
                old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
                os.replace(folder, old)
            os.replace(tmp, folder)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> VectorIndex:
        """Read an index written by :meth:`save`."""
        import faiss

        folder = Path(folder)
        state_path = folder / "index.json"
        if not state_path.is_file():
            raise FileNotFoundError(f"{folder} is not a saved index (no index.json)")
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("format") != FORMAT_VERSION:
            raise ValueError(f"{folder}: index format {state.get('format')} is not {FORMAT_VERSION}")
        obj = cls(state["dim"], IndexSpec(**state["spec"]), state.get("info"))
        if state["trained"]:
            obj._index = faiss.read_index(str(folder / "index.faiss"))
            if obj.spec.is_ivf:
                obj._index.nprobe = obj.spec.nprobe
            if obj.spec.kind == "hnsw":
                obj._hnsw().efSearch = obj.spec.ef_search
        ids = state["ids"] if state["ids"] is not None else np.load(folder / "ids.npy", allow_pickle=False)
        obj._ids = np.asarray(ids, dtype=np.int64)
        obj._removed = set(state["removed"])
        obj._next_id = state["next_id"]
        if (folder / "metadata.parquet").is_file():
            obj.metadata = pd.read_parquet(folder / "metadata.parquet")
        return obj


def build_index(x: Any, spec: IndexSpec | str = "flat", ids: Iterable[int] | None = None,
                metadata: pd.DataFrame | None = None, train_size: int | None = None, seed: int = 0,
                centroids: np.ndarray | None = None, **info: Any) -> VectorIndex:
    """Build an index over ``x`` ``(N, d)`` in one call (training IVF kinds on a sample of ``train_size``)."""
    spec = IndexSpec(spec) if isinstance(spec, str) else spec
    x = _as_matrix(x)
    index = VectorIndex(x.shape[1], spec, info)
    if spec.is_ivf:
        if spec.nlist is None:
            spec.nlist = default_nlist(len(x))
        if centroids is not None:
            spec.nlist = len(centroids)
        n_train = min(len(x), train_size or max(64 * spec.nlist, 10_000))
        rows = np.random.default_rng(seed).choice(len(x), n_train, replace=False) if n_train < len(x) else slice(None)
        index.train(x[rows], centroids=centroids)
    index.add(x, ids=ids, metadata=metadata)
    return index


def exact_search(gallery: np.ndarray, queries: np.ndarray, k: int, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` positions (not ids) and scores with the index's conventions (numpy only)."""
    g = _as_matrix(gallery)
    q = _as_matrix(queries, g.shape[1])
    if metric == "cosine":
        g, q = normalize_rows(g), normalize_rows(q)
    if metric == "l2":
        s = -((q**2).sum(1)[:, None] - 2 * q @ g.T + (g**2).sum(1)[None, :])
    else:
        s = q @ g.T
    kk = min(k, g.shape[0])
    order = np.argsort(-s, axis=1, kind="stable")[:, :kk]
    top = np.take_along_axis(s, order, 1)
    ids = np.full((len(q), k), -1, dtype=np.int64)
    scores = np.full((len(q), k), np.nan, dtype=np.float32)
    ids[:, :kk] = order
    scores[:, :kk] = -top if metric == "l2" else top
    return ids, scores
