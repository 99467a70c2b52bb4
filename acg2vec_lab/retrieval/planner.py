"""Pick an index for N vectors of dimension d under a memory budget, then measure its recall against exact search.

The rules (in the spirit of autofaiss; all sizes from :func:`~acg2vec_lab.retrieval.index.estimate_bytes`):

1. N <= ``exact_max`` (100 k): exact search. A batched scan of 100 k x 1024 floats is ~0.4 GB per
   pass and is fast enough, and it is exact.
2. Full-precision vectors fit in the budget: HNSW (best recall per query time) up to ``hnsw_max``
   (2 M; the graph build costs ~0.5 ms per vector on 2 cores), IVF-Flat above.
3. One byte per dimension fits: IVF-SQ8 with nlist = 4 * sqrt(N) (the original Milvus choice).
4. Otherwise IVF-PQ with as many sub-quantizer bytes per vector as fit.

:func:`build_planned` builds the chosen index and raises ``nprobe`` / ``ef_search`` until the recall@k
measured against exact search on a sample of queries reaches the target (or the knob is exhausted);
the measured recall is returned, never assumed.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from acg2vec_lab.retrieval.index import (
    IndexSpec,
    VectorIndex,
    build_index,
    default_nlist,
    estimate_bytes,
    normalize_rows,
)
from acg2vec_lab.retrieval.metrics import ann_recall


@dataclasses.dataclass
class Plan:
    """The chosen index, its estimated size and why."""

    spec: IndexSpec
    n: int
    d: int
    budget_bytes: int
    estimated_bytes: int
    reason: str


def plan_index(n: int, d: int, budget_bytes: int, metric: str = "cosine", exact_max: int = 100_000,
               hnsw_max: int = 2_000_000, headroom: float = 0.8) -> Plan:
    """Choose an :class:`IndexSpec` for ``n`` x ``d`` vectors using at most ``headroom * budget_bytes``."""
    budget = int(budget_bytes * headroom)

    def fits(spec: IndexSpec) -> bool:
        return estimate_bytes(spec, n, d) <= budget

    flat = IndexSpec("flat", metric)
    if n <= exact_max and fits(flat):
        return Plan(flat, n, d, budget_bytes, estimate_bytes(flat, n, d), f"N={n} <= {exact_max}: exact search is cheap and exact")
    hnsw = IndexSpec("hnsw", metric)
    if n <= hnsw_max and fits(hnsw):
        return Plan(hnsw, n, d, budget_bytes, estimate_bytes(hnsw, n, d), "float vectors + graph fit in the budget: HNSW")
    ivf = IndexSpec("ivf_flat", metric, nlist=default_nlist(n))
    if fits(ivf):
        return Plan(ivf, n, d, budget_bytes, estimate_bytes(ivf, n, d), "float vectors fit, too many for an HNSW build: IVF-Flat")
    sq8 = IndexSpec("ivf_sq8", metric, nlist=default_nlist(n))
    if fits(sq8):
        return Plan(sq8, n, d, budget_bytes, estimate_bytes(sq8, n, d),
                    "float vectors do not fit, 1 byte per dimension does: IVF-SQ8 (nlist = 4 sqrt(N), as in the original)")
    for m in sorted({m for m in range(1, d + 1) if d % m == 0}, reverse=True):
        pq = IndexSpec("ivf_pq", metric, nlist=default_nlist(n), pq_m=m)
        if fits(pq):
            return Plan(pq, n, d, budget_bytes, estimate_bytes(pq, n, d), f"only product codes fit: IVF-PQ with {m} bytes per vector")
    raise ValueError(f"{n} x {d} vectors do not fit in {budget_bytes / 1e9:.2f} GB even as 1-byte PQ codes")


def forced_plan(spec: IndexSpec, n: int, d: int, budget_bytes: int, reason: str = "forced") -> Plan:
    """A :class:`Plan` for a chosen ``spec`` (not the rules' choice), with its estimated size, e.g. to
    show how :func:`build_planned` tunes an IVF-SQ8 index at a scale where the rules pick exact search."""
    return Plan(spec=spec, n=int(n), d=int(d), budget_bytes=int(budget_bytes),
                estimated_bytes=estimate_bytes(spec, n, d), reason=reason)


def exact_neighbours(x: np.ndarray, queries: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    """Exact top-``k`` row positions ``(nq, k)`` with faiss' brute force (the recall reference)."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if metric == "cosine":
        x, q = normalize_rows(x), normalize_rows(q)
    flat = faiss.IndexFlatL2(x.shape[1]) if metric == "l2" else faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    return flat.search(q, k)[1]


def measure_recall(index: VectorIndex, x: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int = 10,
                   truth: np.ndarray | None = None) -> float:
    """Recall@k of ``index`` against exact search over ``x`` (whose rows carry ``ids``)."""
    truth_pos = truth if truth is not None else exact_neighbours(x, queries, k, index.spec.metric)
    truth_ids = np.where(truth_pos >= 0, np.asarray(ids)[np.maximum(truth_pos, 0)], -1)
    got, _ = index.search(queries, k)
    return ann_recall(got, truth_ids, k)


def build_planned(x: Any, budget_bytes: int, ids: Any = None, metric: str = "cosine", k: int = 10,
                  target_recall: float = 0.95, n_queries: int = 200, seed: int = 0,
                  plan: Plan | None = None) -> tuple[VectorIndex, dict[str, Any]]:
    """Plan, build, and tune an index over ``x`` ``(N, d)``; returns ``(index, report)``.

    Queries are ``n_queries`` rows sampled from ``x`` (a perturbed copy would also do). The report
    holds the plan, build seconds, the tuned knob and the measured ``recall@k`` (a float in [0, 1]).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    plan = plan or plan_index(n, d, budget_bytes, metric)
    t0 = time.perf_counter()
    index = build_index(x, dataclasses.replace(plan.spec), ids=ids, seed=seed)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    queries = x[rng.choice(n, min(n_queries, n), replace=False)]
    truth = exact_neighbours(x, queries, k, metric)
    steps: list[tuple[str, int, float]] = []
    recall = measure_recall(index, x, ids, queries, k, truth)
    if index.spec.is_ivf:
        nlist = index.spec.nlist or default_nlist(n)
        probe = index.spec.nprobe
        steps.append(("nprobe", probe, recall))
        while recall < target_recall and probe < nlist:
            probe = min(nlist, probe * 2)
            index.set_search_params(nprobe=probe)
            recall = measure_recall(index, x, ids, queries, k, truth)
            steps.append(("nprobe", probe, recall))
    elif index.spec.kind == "hnsw":
        ef = index.spec.ef_search
        steps.append(("ef_search", ef, recall))
        while recall < target_recall and ef < 1024:
            ef *= 2
            index.set_search_params(ef_search=ef)
            recall = measure_recall(index, x, ids, queries, k, truth)
            steps.append(("ef_search", ef, recall))
    report = {
        "kind": plan.spec.kind, "reason": plan.reason, "estimated_gb": plan.estimated_bytes / 1e9,
        "budget_gb": budget_bytes / 1e9, "build_s": build_s, f"recall@{k}": recall,
        "target_met": bool(recall >= target_recall), "tuning": steps,
    }
    return index, report


def memory_plan(n: int, d: int, budget_bytes: int, metric: str = "l2") -> Any:
    """Estimated size of every index kind for ``n`` x ``d`` and whether each fits (a DataFrame)."""
    import pandas as pd

    rows = []
    for spec in (IndexSpec("flat", metric), IndexSpec("hnsw", metric), IndexSpec("ivf_flat", metric),
                 IndexSpec("ivf_sq8", metric), IndexSpec("ivf_pq", metric), IndexSpec("ivf_pq", metric, pq_m=d // 8)):
        b = estimate_bytes(spec, n, d)
        label = spec.kind if spec.kind != "ivf_pq" else f"ivf_pq (m={spec.pq_m or d // 16})"
        rows.append({"index": label, "nlist": spec.nlist or (default_nlist(n) if spec.is_ivf else None),
                     "GB": b / 1e9, "fits": b <= budget_bytes})
    return pd.DataFrame(rows)
