"""The :class:`~acg2vec_lab.retrieval.index.VectorIndex` interface backed by Milvus (pymilvus).

By default the collection lives in an embedded **milvus-lite** database, a single local file
(``uri="vectors.db"``) that needs no server. This is the path to a Milvus cluster when a collection
outgrows one machine (the original ACG2vec searched ~6 M 1024-d vectors in Milvus with IVF_SQ8,
nlist = 4 * sqrt(N)): the same code talks to a server when ``uri`` is its address.

Pointing it at a server::

    # a standalone Milvus (docker compose, see milvus.io "Install Milvus Standalone"), default port 19530
    index = MilvusIndex(dim=1024, spec=IndexSpec("ivf_sq8", metric="l2"), uri="http://localhost:19530",
                        collection="illust2vec", token="root:Milvus")
    # or Zilliz Cloud: uri="https://<endpoint>", token="<api key>"

What a server needs that milvus-lite did not (tests/test_retrieval_milvus_server.py runs the same
checks against both, the server being the ``milvus`` 2.3.5 PyPI package's standalone binary):

* **Index build is asynchronous.** After a flush the server's index nodes build each sealed segment's
  index in the background; until they finish, and until the query nodes load the indexed segments,
  a search scans raw data (exact, nprobe does nothing). :meth:`MilvusIndex.build` therefore waits until
  ``describe_index`` reports no pending rows, then releases and loads the collection (8 s for 2,000 rows
  on the test server: flush 2, index 1, release + load 4.5; milvus-lite builds synchronously in the load).
* **Consistency.** Reads (search, query, get, count) are sent with ``consistency_level`` (default
  ``"Strong"``): a search straight after an insert or delete sees it, from any client. On a server a
  Strong read waits for the next time tick (about 0.2 s per request on 2.3.5); ``"Bounded"`` answers
  at once but may miss writes of the last few seconds. ``"Session"`` is not offered as the safe
  middle: against the 2.3.5 server it did not see this client's own deletes.
* **Timeouts and a server that is down.** Every request carries ``timeout`` seconds (flush, the index
  wait and the load carry ``build_timeout``), so a stopped server fails in seconds with
  :class:`MilvusUnavailableError` naming the uri instead of pymilvus' default retries (minutes).
* **Own connection.** Each MilvusIndex opens a dedicated connection (pymilvus otherwise shares one per
  uri), so concurrent clients are really separate and a reconnect after a server restart is fresh.
* **Reopening does not reload.** Opening an existing collection that is already loaded (and, embedded,
  has an empty memtable) searches it as it is; :meth:`build` (release + load) would fail the searches
  other clients run at the same moment. ``close(release=True)`` frees the server's memory (for every
  client of the collection).

Conventions are those of :mod:`acg2vec_lab.retrieval.index` (ids int64 >= 0, ``(nq, k)`` results
padded with -1 / NaN, ``ip``/``cosine`` scores are similarities, ``l2`` scores squared distances).
Index kinds map to Milvus index types: flat -> FLAT, hnsw -> HNSW, ivf_flat -> IVF_FLAT,
ivf_sq8 -> IVF_SQ8, ivf_pq -> IVF_PQ. Metadata columns are stored as dynamic fields of each entity
and come back with the results.

When the index is really used. Milvus (server and milvus-lite alike) builds a vector index per
*flushed, loaded* segment; rows still in the in-memory write buffer (the memtable, flushed by
milvus-lite only at 128 MB: ``milvus_lite/constants.py`` ``MEMTABLE_MEMORY_LIMIT``) are searched by
brute force (``milvus_lite/search/executor_indexed.py``: "Memtable last (always brute-force)"), and
milvus-lite builds segment indexes only in ``load()`` (``engine/collection.py``) or later in a
background thread. So a search straight after ``insert`` is an exact search whatever the index kind,
and ``nprobe`` does nothing. :meth:`MilvusIndex.search` therefore first makes the collection
searchable through its index (:meth:`MilvusIndex.build`: flush, release, load, which builds every
segment's index synchronously) whenever rows were added since the last build.
:meth:`MilvusIndex.index_report` says what the server reports and, embedded, what was built.

Kinds a backend cannot build are refused when the index is created, not mapped to something else:
milvus-lite 3.2.2 has no IVF_PQ (``milvus_lite/index/factory.py`` raises ``NotImplementedError``
only once a segment is flushed, i.e. at the scale the index is meant for).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acg2vec_lab.io import write_json
from acg2vec_lab.retrieval.index import (
    IndexSpec,
    _as_matrix,
    default_nlist,
    default_pq_m,
    meta_column_names,
    normalize_rows,
)

MILVUS_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "ivf_flat": "IVF_FLAT", "ivf_sq8": "IVF_SQ8", "ivf_pq": "IVF_PQ"}
MILVUS_METRICS = {"ip": "IP", "cosine": "IP", "l2": "L2"}  # cosine: rows normalised here, then IP
# What embedded milvus-lite 3.2.2 can build (index/factory.py: FLAT/BRUTE_FORCE, HNSW, IVF_FLAT, IVF_SQ8).
LITE_KINDS = ("flat", "hnsw", "ivf_flat", "ivf_sq8")


class UnsupportedIndexError(ValueError):
    """The backend cannot build this index kind."""


class MilvusUnavailableError(ConnectionError):
    """The Milvus server at the index's uri refused the connection or did not answer within the timeout."""


CONSISTENCY_LEVELS = ("Strong", "Bounded", "Eventually")


def is_embedded(uri: str) -> bool:
    """True for a local ``.db`` file (milvus-lite, in this process), False for a server address."""
    return "://" not in str(uri)


def check_kind(kind: str, uri: str) -> None:
    """Raise :class:`UnsupportedIndexError` naming the kind and the backend if ``uri``'s backend cannot build it."""
    if is_embedded(uri) and kind not in LITE_KINDS:
        raise UnsupportedIndexError(
            f"index kind {kind!r} cannot be built by the embedded milvus-lite backend ({uri}): milvus-lite "
            f"builds only {', '.join(LITE_KINDS)} (it has no {MILVUS_TYPES.get(kind, kind)}); use one of "
            f"those, the faiss VectorIndex, or a Milvus server uri (http://host:19530)")


class MilvusIndex:
    """A Milvus collection with the :class:`VectorIndex` methods (add, remove, search, query, save/load).

    Args:
        dim: vector dimension.
        spec: index kind and knobs; ``spec.nlist`` ``None`` -> 4 * sqrt(``expected_n``).
        uri: a local ``.db`` file (embedded milvus-lite, the default) or a server address.
        collection: collection name (created if missing; ``overwrite=True`` drops an existing one).
        expected_n: expected collection size, for the default nlist.
        token: server credentials (``"user:password"`` or an API key); unused by milvus-lite.
        timeout: seconds for connecting and for each request (None: pymilvus' own retries, minutes
            when the server is down); a server that does not answer raises :class:`MilvusUnavailableError`.
        build_timeout: seconds for :meth:`build`'s flush, index wait and load (large collections need more).
        consistency_level: of the collection and of every read (see the module notes): ``"Strong"``
            sees every write at once; ``"Bounded"`` / ``"Eventually"`` are faster on a server.
    """

    def __init__(self, dim: int, spec: IndexSpec | None = None, uri: str | os.PathLike = "vectors.db",
                 collection: str = "vectors", expected_n: int = 10_000, token: str | None = None,
                 overwrite: bool = False, info: dict[str, Any] | None = None, timeout: float | None = 30.0,
                 build_timeout: float | None = 600.0, consistency_level: str = "Strong") -> None:
        from pymilvus import DataType, MilvusClient

        self.dim = int(dim)
        self.spec = spec or IndexSpec()
        self.uri = str(uri)
        check_kind(self.spec.kind, self.uri)
        if consistency_level not in CONSISTENCY_LEVELS:
            raise ValueError(f"consistency_level {consistency_level!r}: choose one of {', '.join(CONSISTENCY_LEVELS)}")
        self.collection = collection
        self.info = dict(info or {})
        self.token = token
        self.timeout = timeout
        self.build_timeout = build_timeout
        self.consistency_level = consistency_level
        if is_embedded(self.uri):
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client = MilvusClient(self.uri, timeout=timeout, dedicated=True, **({"token": token} if token else {}))
        except Exception as exc:  # noqa: BLE001  (pymilvus raises MilvusException or grpc errors)
            if _unreachable(exc):
                raise self._unavailable(exc) from exc
            raise
        if overwrite and self._call("has_collection", collection):
            self._call("drop_collection", collection)
        reopened = self._call("has_collection", collection)
        if reopened:
            self._check_dim()
        else:
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            build = self._build_params(expected_n)
            params = self.client.prepare_index_params()
            params.add_index(field_name="vector", index_type=MILVUS_TYPES[self.spec.kind],
                             metric_type=MILVUS_METRICS[self.spec.metric], params=build)
            if build:
                # pymilvus 3 sends build params as flat key/value pairs ("nlist": "64"); milvus-lite 3.2.2
                # reads only the JSON "params" pair (adapter/grpc/translators/index.py) and silently built
                # nlist=128 instead. A Milvus server accepts both forms, so send the JSON pair as well.
                params[0]._configs["params"] = dict(build)
            self._call("create_collection", collection, schema=schema, index_params=params,
                       consistency_level=self.consistency_level)
            self._check_reported_index(build)
        self._next_id = 0
        # a new collection, or a reopened one that is not loaded (or, embedded, has memtable rows that a
        # search would scan by brute force): build() before searching
        self._dirty = not reopened or self._needs_build()
        self._inserted = False  # rows inserted by this index since the last build (what a server flush is for)
        self.builds = 0  # how many times build() flushed and (re)loaded, for the record

    def _unavailable(self, exc: BaseException) -> MilvusUnavailableError:
        return MilvusUnavailableError(
            f"Milvus at {self.uri} is not reachable (connection refused or no answer within "
            f"{self.timeout} s): {exc}. Is the server running and is the uri right?")

    def _call(self, method: str, *args: Any, timeout: float | None | str = "request", **kwargs: Any) -> Any:
        """``self.client.<method>(...)`` with this index's request timeout (or ``timeout``); a connection
        failure becomes :class:`MilvusUnavailableError` naming the uri."""
        try:
            return getattr(self.client, method)(*args, timeout=self.timeout if timeout == "request" else timeout,
                                                **kwargs)
        except Exception as exc:  # noqa: BLE001
            if _unreachable(exc):
                raise self._unavailable(exc) from exc
            raise

    def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._call(method, *args, consistency_level=self.consistency_level, **kwargs)

    def _check_dim(self) -> None:
        """An existing collection must hold vectors of this index's dimension."""
        fields = self._call("describe_collection", self.collection).get("fields", [])
        dims = [int(f.get("params", {}).get("dim", 0)) for f in fields if f.get("name") == "vector"]
        if dims != [self.dim]:
            raise ValueError(f"collection {self.collection!r} at {self.uri} holds vectors of dimension "
                             f"{dims[0] if dims else 'none'}; this index was opened with dim={self.dim} "
                             "(open it with the collection's dimension, or overwrite=True to replace it)")

    def _needs_build(self) -> bool:
        state = self._call("get_load_state", self.collection).get("state")
        if getattr(state, "name", str(state)) != "Loaded":
            return True
        if is_embedded(self.uri):
            col = _lite_collection(self.uri, self.collection)
            return col is None or int(col._memtable.size()) > 0  # noqa: SLF001  (milvus-lite 3.2.2 internals)
        return False

    def _reported_index(self) -> dict[str, Any]:
        info = self._call("describe_index", self.collection, index_name="vector") or {}
        params = info.get("params") if isinstance(info.get("params"), dict) else {}
        flat = {k: v for k, v in info.items() if k not in ("params",)}
        return {**flat, **params}

    def _check_reported_index(self, build: dict[str, Any]) -> None:
        """Fail loudly if the server does not report the index type and build params that were asked for."""
        got = self._reported_index()
        want = {"index_type": MILVUS_TYPES[self.spec.kind], **build}
        wrong = {k: (v, got.get(k)) for k, v in want.items() if str(got.get(k)) != str(v)}
        if wrong:
            raise RuntimeError(f"Milvus at {self.uri} reports index {got} for collection {self.collection!r}; "
                               f"asked for {want} (mismatch: {wrong})")

    def _build_params(self, n: int) -> dict[str, Any]:
        s = self.spec
        if s.kind == "hnsw":
            return {"M": s.hnsw_m, "efConstruction": s.ef_construction}
        if s.is_ivf:
            s.nlist = s.nlist or default_nlist(n)
            out: dict[str, Any] = {"nlist": int(s.nlist)}
            if s.kind == "ivf_pq":
                out.update(m=int(s.pq_m or default_pq_m(self.dim)), nbits=int(s.pq_nbits))
            return out
        return {}

    def _search_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.spec.is_ivf:
            params["nprobe"] = int(self.spec.nprobe)
        if self.spec.kind == "hnsw":
            params["ef"] = int(self.spec.ef_search)
        return {"metric_type": MILVUS_METRICS[self.spec.metric], "params": params}

    def _prepare(self, x: Any) -> np.ndarray:
        x = _as_matrix(x, self.dim)
        return normalize_rows(x) if self.spec.metric == "cosine" else x

    def add(self, x: Any, ids: Iterable[int] | None = None, metadata: pd.DataFrame | None = None,
            batch: int = 1000) -> np.ndarray:
        """Insert vectors ``(N, d)`` with int64 ids (default consecutive) and optional metadata rows."""
        x = self._prepare(x)
        ids = np.arange(self._next_id, self._next_id + len(x)) if ids is None else np.asarray(list(ids))
        ids = ids.astype(np.int64).reshape(-1)
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids for {len(x)} vectors")
        if (ids < 0).any() or len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique and >= 0")
        existing = self._read("get", self.collection, ids=ids.tolist(), output_fields=["id"]) if len(ids) else []
        if existing:
            raise ValueError(f"duplicate ids already in the collection, e.g. {existing[0]['id']}")
        records = metadata.to_dict("records") if metadata is not None else [{} for _ in range(len(x))]
        from acg2vec_lab import progress

        for start in progress.bar(range(0, len(x), batch), desc=f"milvus insert {self.collection}", unit="batch",
                                  leave=False):
            rows = []
            for i in range(start, min(start + batch, len(x))):
                row = {k: _plain(v) for k, v in records[i].items()}
                row.update(id=int(ids[i]), vector=x[i].tolist())
                rows.append(row)
            self._call("insert", self.collection, rows)
        self._dirty = self._dirty or len(x) > 0
        self._inserted = self._inserted or len(x) > 0
        self._next_id = max(self._next_id, int(ids.max()) + 1 if len(ids) else 0)
        self._meta_columns = list(metadata.columns) if metadata is not None else getattr(self, "_meta_columns", [])
        return ids

    def remove(self, ids: Iterable[int]) -> int:
        """Delete entities by id; returns how many were present."""
        ids = [int(i) for i in ids]
        present = self._read("get", self.collection, ids=ids, output_fields=["id"]) if ids else []
        if present:
            self._call("delete", self.collection, ids=[p["id"] for p in present])
        return len(present)

    def __len__(self) -> int:
        res = self._read("query", self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        if nprobe is not None:
            self.spec.nprobe = int(nprobe)
        if ef_search is not None:
            self.spec.ef_search = int(ef_search)

    def build(self) -> MilvusIndex:
        """Flush the write buffer into segments, then release and load the collection.

        milvus-lite builds each segment's index synchronously in the load, so afterwards every row is
        searched through the index (``nprobe`` / ``ef`` take effect). A Milvus server seals the flushed
        segments and builds their indexes in the background: this waits until ``describe_index``
        reports no pending rows (``build_timeout``), then releases and loads, so the query nodes serve the
        indexed segments. Called by :meth:`search` when rows were added since the last build.

        A server is flushed only when this index inserted rows (it seals other writers' segments itself,
        and searches cover unsealed rows): just after a server restart a flush fails ("node not match")
        until the killed data node's session expires (``common.session.ttl``, 30 s), a load just waits."""
        if is_embedded(self.uri) or self._inserted:
            self._call("flush", self.collection, timeout=self.build_timeout)
        if not is_embedded(self.uri):
            self._wait_for_index()
        self._call("release_collection", self.collection)
        self._call("load_collection", self.collection, timeout=self.build_timeout)
        self._dirty = self._inserted = False
        self.builds += 1
        return self

    def _wait_for_index(self, poll: float = 0.2) -> None:
        """Server only: wait until every flushed row is indexed (``pending_index_rows`` 0)."""
        import time

        deadline = None if self.build_timeout is None else time.monotonic() + self.build_timeout
        while True:
            info = self._reported_index()
            if str(info.get("state")) == "Failed":
                raise RuntimeError(f"Milvus at {self.uri} failed to build the index of {self.collection!r}: {info}")
            if int(info.get("pending_index_rows", 0)) == 0 and \
                    int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)):
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Milvus at {self.uri}: index of {self.collection!r} not built within "
                                   f"{self.build_timeout} s (build_timeout): {info}")
            time.sleep(poll)

    def index_report(self) -> dict[str, Any]:
        """What the index actually is now (after :meth:`build`), for the record.

        ``index_type`` / ``nlist`` / ``metric_type``: as the server reports them (``describe_index``);
        ``row_count``: rows the server counts; ``load_state``. Embedded milvus-lite also reports, by
        looking into its in-process collection: ``memtable_rows`` (rows a search would scan by brute
        force; 0 after a build), ``flushed_rows`` and ``segment_indexes`` (the index class actually
        attached to each flushed segment, with its ``nlist`` for IVF). Those keys are absent for a server.
        """
        out: dict[str, Any] = {"backend": "milvus-lite (embedded)" if is_embedded(self.uri) else f"Milvus server {self.uri}"}
        # milvus-lite's indexed_rows / total_rows are its row count, whatever was built: server only
        keys = ("index_type", "metric_type", "nlist", "M", "efConstruction", "state") + \
            (() if is_embedded(self.uri) else ("indexed_rows", "total_rows"))
        out.update({k: v for k, v in self._reported_index().items() if k in keys})
        out["row_count"] = int(self._call("get_collection_stats", self.collection)["row_count"])
        out["load_state"] = str(self._call("get_load_state", self.collection).get("state"))
        col = _lite_collection(self.uri, self.collection) if is_embedded(self.uri) else None
        if col is not None:
            segments = list(col._segment_cache.values())  # noqa: SLF001  (milvus-lite 3.2.2 internals)
            out["memtable_rows"] = int(col._memtable.size())  # noqa: SLF001
            out["flushed_rows"] = int(sum(seg.num_rows for seg in segments))
            built = []
            for seg in segments:
                idx = seg.indexes.get("vector")
                inner = getattr(idx, "_index", None)
                built.append(f"{type(idx).__name__ if idx is not None else 'none'}"
                             f"(rows={seg.num_rows}" + (f", nlist={inner.nlist}" if hasattr(inner, "nlist") else "") + ")")
            out["segment_indexes"] = ", ".join(built) or "none"
        return out

    def _raw_search(self, q: Any, k: int, output_fields: list[str] | None = None) -> list[list[dict]]:
        if self._dirty:
            self.build()
        q = self._prepare(q)
        return self._read("search", self.collection, q.tolist(), limit=int(k), search_params=self._search_params(),
                          output_fields=output_fields or [])

    def search(self, q: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(ids, scores)``, each ``(nq, k)``, padded with -1 / NaN."""
        if k < 1:
            raise ValueError("k must be >= 1")
        hits = self._raw_search(q, k)
        ids = np.full((len(hits), k), -1, dtype=np.int64)
        scores = np.full((len(hits), k), np.nan, dtype=np.float32)
        for i, row in enumerate(hits):
            for j, h in enumerate(row[:k]):
                ids[i, j] = h["id"]
                scores[i, j] = h["distance"]
        return ids, scores

    def query(self, q: Any, k: int = 10) -> pd.DataFrame:
        """Long table ``query, rank, id, score`` plus the metadata stored with each hit."""
        cols = getattr(self, "_meta_columns", [])
        hits = self._raw_search(q, k, cols or None)
        names = meta_column_names(cols)
        rows = []
        for i, row in enumerate(hits):
            for j, h in enumerate(row[:k]):
                entity = h.get("entity", {}) or {}
                rows.append({"query": i, "rank": j + 1, "id": int(h["id"]), "score": float(h["distance"]),
                             **{names[c]: entity.get(c) for c in cols}})
        return pd.DataFrame(rows, columns=["query", "rank", "id", "score", *names.values()])

    def save(self, folder: str | os.PathLike) -> Path:
        """Write a small ``milvus.json`` (atomically) that :meth:`load` reconnects from; the data stay in Milvus."""
        import dataclasses

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "milvus.json", {
            "uri": str(Path(self.uri).resolve()) if "://" not in self.uri else self.uri,
            "collection": self.collection, "dim": self.dim, "spec": dataclasses.asdict(self.spec),
            "info": self.info, "next_id": self._next_id, "meta_columns": getattr(self, "_meta_columns", []),
        })
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, token: str | None = None, **kwargs: Any) -> MilvusIndex:
        """Reconnect from :meth:`save`'s file; ``kwargs``: ``timeout``, ``build_timeout``, ``consistency_level``."""
        state = json.loads((Path(folder) / "milvus.json").read_text(encoding="utf-8"))
        obj = cls(state["dim"], IndexSpec(**state["spec"]), uri=state["uri"], collection=state["collection"],
                  token=token, info=state.get("info"), **kwargs)
        obj._next_id = state["next_id"]
        obj._meta_columns = state["meta_columns"]
        return obj

    def close(self, release: bool = False) -> None:
        """Close this index's connection; ``release=True`` first releases the collection from the
        server's memory (for every client of it: searches fail until the next :meth:`build` / load)."""
        try:
            if release:
                self._call("release_collection", self.collection)
        finally:
            self.client.close()


def nprobe_sweep(x: Any, queries: Any, spec: IndexSpec, nprobes: Iterable[int], uri: str | os.PathLike,
                 k: int = 10, collection: str = "nprobe_sweep") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build a Milvus IVF collection over ``x`` ``(N, d)`` and measure recall@k against exact search
    (faiss flat over the same rows) at each ``nprobe``: what the index actually does.

    Returns ``(table, report)``: ``table`` has columns ``nprobe, recall@k, seconds`` (``seconds``: one
    batched search of all queries); ``report`` is :meth:`MilvusIndex.index_report` after the build plus
    ``n``, ``nlist_requested`` and ``builds``. The collection stays in ``uri`` (pass a temporary path).
    """
    import dataclasses
    import time

    from acg2vec_lab.retrieval.metrics import ann_recall
    from acg2vec_lab.retrieval.planner import exact_neighbours

    if not spec.is_ivf:
        raise ValueError(f"nprobe_sweep needs an IVF index kind, got {spec.kind!r}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    truth = exact_neighbours(x, queries, k, spec.metric)
    index = MilvusIndex(x.shape[1], dataclasses.replace(spec), uri=uri, collection=collection,
                        expected_n=len(x), overwrite=True)
    try:
        index.add(x)
        index.build()  # flush + load now, so the first timed search does not include the index build
        rows = []
        for nprobe in nprobes:
            index.set_search_params(nprobe=int(nprobe))
            t0 = time.perf_counter()
            got, _ = index.search(queries, k)
            rows.append({"nprobe": int(nprobe), f"recall@{k}": ann_recall(got, truth, k),
                         "seconds": time.perf_counter() - t0})
        report = {"n": len(x), "nlist_requested": index.spec.nlist, **index.index_report(), "builds": index.builds}
    finally:
        index.close()
    return pd.DataFrame(rows), report


def _unreachable(exc: BaseException) -> bool:
    """Whether a pymilvus / grpc error means the server is down or silent (not a bad request)."""
    text = str(exc).lower()
    code = getattr(exc, "code", None)
    code = code() if callable(code) else code
    return any(s in text for s in ("fail connecting to server", "unavailable", "deadline", "retry timeout",
                                   "connection refused", "failed to connect", "timed out")) or \
        getattr(code, "name", "") in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def _lite_collection(uri: str, collection: str) -> Any:
    """The in-process milvus-lite ``Collection`` behind a ``.db`` uri, or None (private API: introspection only)."""
    try:
        from milvus_lite.server_manager import server_manager_instance

        entry = server_manager_instance._servers.get(os.path.abspath(uri))  # noqa: SLF001
        return entry[1].get_collection(collection) if entry else None
    except Exception:  # noqa: BLE001  (a different milvus-lite layout: report without these keys)
        return None


def _plain(v: Any) -> Any:
    """A JSON-friendly scalar for a dynamic field (numpy scalars -> Python, NaN -> None)."""
    if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(i) for i in v]
    return v
