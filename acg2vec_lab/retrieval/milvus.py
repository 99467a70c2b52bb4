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

Conventions are those of :mod:`acg2vec_lab.retrieval.index` (ids int64 >= 0, ``(nq, k)`` results
padded with -1 / NaN, ``ip``/``cosine`` scores are similarities, ``l2`` scores squared distances).
Index kinds map to Milvus index types: flat -> FLAT, hnsw -> HNSW, ivf_flat -> IVF_FLAT,
ivf_sq8 -> IVF_SQ8, ivf_pq -> IVF_PQ. Metadata columns are stored as dynamic fields of each entity
and come back with the results.
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


class MilvusIndex:
    """A Milvus collection with the :class:`VectorIndex` methods (add, remove, search, query, save/load).

    Args:
        dim: vector dimension.
        spec: index kind and knobs; ``spec.nlist`` ``None`` -> 4 * sqrt(``expected_n``).
        uri: a local ``.db`` file (embedded milvus-lite, the default) or a server address.
        collection: collection name (created if missing; ``overwrite=True`` drops an existing one).
        expected_n: expected collection size, for the default nlist.
        token: server credentials (``"user:password"`` or an API key); unused by milvus-lite.
    """

    def __init__(self, dim: int, spec: IndexSpec | None = None, uri: str | os.PathLike = "vectors.db",
                 collection: str = "vectors", expected_n: int = 10_000, token: str | None = None,
                 overwrite: bool = False, info: dict[str, Any] | None = None) -> None:
        from pymilvus import DataType, MilvusClient

        self.dim = int(dim)
        self.spec = spec or IndexSpec()
        self.uri = str(uri)
        self.collection = collection
        self.info = dict(info or {})
        self.token = token
        if "://" not in self.uri:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        self.client = MilvusClient(self.uri, **({"token": token} if token else {}))
        if overwrite and self.client.has_collection(collection):
            self.client.drop_collection(collection)
        if not self.client.has_collection(collection):
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            params = self.client.prepare_index_params()
            params.add_index(field_name="vector", index_type=MILVUS_TYPES[self.spec.kind],
                             metric_type=MILVUS_METRICS[self.spec.metric], params=self._build_params(expected_n))
            self.client.create_collection(collection, schema=schema, index_params=params)
        self._next_id = 0

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
        existing = self.client.get(self.collection, ids=ids.tolist(), output_fields=["id"]) if len(ids) else []
        if existing:
            raise ValueError(f"duplicate ids already in the collection, e.g. {existing[0]['id']}")
        records = metadata.to_dict("records") if metadata is not None else [{} for _ in range(len(x))]
        for start in range(0, len(x), batch):
            rows = []
            for i in range(start, min(start + batch, len(x))):
                row = {k: _plain(v) for k, v in records[i].items()}
                row.update(id=int(ids[i]), vector=x[i].tolist())
                rows.append(row)
            self.client.insert(self.collection, rows)
        self._next_id = max(self._next_id, int(ids.max()) + 1 if len(ids) else 0)
        self._meta_columns = list(metadata.columns) if metadata is not None else getattr(self, "_meta_columns", [])
        return ids

    def remove(self, ids: Iterable[int]) -> int:
        """Delete entities by id; returns how many were present."""
        ids = [int(i) for i in ids]
        present = self.client.get(self.collection, ids=ids, output_fields=["id"]) if ids else []
        if present:
            self.client.delete(self.collection, ids=[p["id"] for p in present])
        return len(present)

    def __len__(self) -> int:
        res = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        if nprobe is not None:
            self.spec.nprobe = int(nprobe)
        if ef_search is not None:
            self.spec.ef_search = int(ef_search)

    def _raw_search(self, q: Any, k: int, output_fields: list[str] | None = None) -> list[list[dict]]:
        q = self._prepare(q)
        return self.client.search(self.collection, q.tolist(), limit=int(k), search_params=self._search_params(),
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
    def load(cls, folder: str | os.PathLike, token: str | None = None) -> MilvusIndex:
        state = json.loads((Path(folder) / "milvus.json").read_text(encoding="utf-8"))
        obj = cls(state["dim"], IndexSpec(**state["spec"]), uri=state["uri"], collection=state["collection"],
                  token=token, info=state.get("info"))
        obj._next_id = state["next_id"]
        obj._meta_columns = state["meta_columns"]
        return obj

    def close(self) -> None:
        self.client.close()


def _plain(v: Any) -> Any:
    """A JSON-friendly scalar for a dynamic field (numpy scalars -> Python, NaN -> None)."""
    if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(i) for i in v]
    return v
