"""Index benchmark at 100 k / 1 M x 1024-d: build time, memory, QPS, recall@10 vs exact, bandwidth bound.

Vectors are grown from REAL embeddings (EfficientNet-Lite0 ImageNet features of the synthetic
Danbooru-format pictures and the Ren'Py art, projected to 1024-d) with structured noise
(:func:`acg2vec_lab.retrieval.bench.structured_vectors`), not uniform random. Queries are held-out
draws from the same structure. The same run measures this machine's memory bandwidth (a large numpy
reduction) and GEMM throughput, and compares exact search with those bounds; it ends with the memory
plan for 6 M x 1024 (the original collection) in 24 GB.

    .venv/bin/python benchmarks/bench_retrieval.py --n 100000            # ~10-15 min on 2 busy cores
    .venv/bin/python benchmarks/bench_retrieval.py --n 1000000 --kinds flat ivf_flat ivf_sq8 ivf_pq

Times are medians of ``--repeats`` runs after a warm-up; another tenant can slow single runs 3-7x.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import acg2vec_lab  # noqa: F401  (environment defaults before torch)
from acg2vec_lab.dev.timing import time_calls


def bandwidth_gbs(gb: float = 2.0, repeats: int = 5) -> float:
    """Read bandwidth: bytes of a large float32 array / time of ``a.sum()`` (best of ``repeats``)."""
    a = np.ones(int(gb * 1e9 / 4), dtype=np.float32)
    return a.nbytes / min(time_calls(a.sum, repeats)) / 1e9


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """fp32 GEMM throughput (best of ``repeats``), the compute bound of batched exact search."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    return 2 * n**3 / min(time_calls(lambda: a @ a, repeats)) / 1e9


def base_embeddings(n_images: int) -> np.ndarray:
    """EfficientNet-Lite0 features of ``n_images`` synthetic pictures + the Ren'Py images (cached)."""
    from acg2vec_lab.data import synthetic_dataset
    from acg2vec_lab.data.renpy import renpy_image_paths
    from acg2vec_lab.embedders import get
    from acg2vec_lab.retrieval.evaluate import embed_cached

    emb = get("efficientnet_lite0", "cpu")
    ds = synthetic_dataset("cpu")
    posts = sorted(ds.posts, key=lambda p: p.id)[:n_images]
    syn = embed_cached(emb, [ds.image_path(p) for p in posts], [f"{p.id}:{p.md5}" for p in posts],
                       f"{ds.root.name}-bench")
    renpy = renpy_image_paths()
    ren = embed_cached(emb, [p for p, _ in renpy], [p.name for p, _ in renpy], "renpy")
    return np.concatenate([syn, ren])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[100_000], help="database sizes")
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=1000, help="batched queries (recall is over these)")
    ap.add_argument("--single", type=int, default=50, help="queries timed one by one")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--base-images", type=int, default=1000, help="real pictures embedded as the structure's parents")
    ap.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivf_flat", "ivf_sq8", "ivf_pq"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the tables here")
    args = ap.parse_args(argv)

    import faiss
    import pandas as pd

    from acg2vec_lab.retrieval.bench import compare_indexes, database_and_queries
    from acg2vec_lab.retrieval.index import IndexSpec
    from acg2vec_lab.retrieval.planner import memory_plan

    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    faiss.omp_set_num_threads(args.threads)
    print(f"faiss {faiss.__version__}, threads {args.threads}, dim {args.dim}, queries {args.queries}", flush=True)
    bw = bandwidth_gbs()
    gf = gemm_gflops()
    print(f"memory bandwidth (numpy sum of 2 GB): {bw:.1f} GB/s; fp32 GEMM: {gf:.0f} GFLOP/s", flush=True)
    t0 = time.perf_counter()
    base = base_embeddings(args.base_images)
    print(f"real base embeddings: {base.shape} in {time.perf_counter() - t0:.1f} s; the indexed vectors are "
          f"SYNTHESISED from them (structured_vectors), queries are held-out draws", flush=True)

    out: dict = {"bandwidth_gbs": bw, "gemm_gflops": gf, "runs": []}
    for n in args.n:
        t0 = time.perf_counter()
        x, q = database_and_queries(base, n, args.queries, args.dim, seed=0)
        print(f"\n=== N = {n:,} x {args.dim}: data made in {time.perf_counter() - t0:.1f} s ({x.nbytes / 1e9:.2f} GB)", flush=True)
        specs = [IndexSpec(kind, "cosine", hnsw_m=32, ef_construction=64) for kind in args.kinds]
        sweeps = {"hnsw": [32, 64, 128], "ivf_flat": [8, 16, 32, 64], "ivf_sq8": [8, 16, 32, 64], "ivf_pq": [16, 64]}
        table = compare_indexes(x, q, specs, sweeps=sweeps, single=args.single, repeats=args.repeats,
                                share_kmeans=True, log=lambda r: print("  ", r, flush=True))
        print(table.round(3).to_string(index=False), flush=True)
        exact = table.iloc[0]
        db_bytes = n * args.dim * 4
        mem_bound_single = db_bytes / (bw * 1e9)
        flops_per_query = 2 * n * args.dim
        batched_bound = max(db_bytes / (bw * 1e9) / args.queries, flops_per_query / (gf * 1e9))
        single_s = 1 / exact["single_qps"]
        batched_s = 1 / exact["batched_qps"]
        print(f"exact single query: {single_s * 1e3:.1f} ms vs memory-bandwidth bound {mem_bound_single * 1e3:.1f} ms "
              f"-> {single_s / mem_bound_single:.2f}x the bound", flush=True)
        print(f"exact batched: {batched_s * 1e3:.2f} ms/query vs bound {batched_bound * 1e3:.2f} ms/query "
              f"(max of bandwidth {db_bytes / (bw * 1e9) / args.queries * 1e3:.3f} and GEMM {flops_per_query / (gf * 1e9) * 1e3:.3f}) "
              f"-> {batched_s / batched_bound:.2f}x the bound", flush=True)
        good = table[(table.index > 0) & (table["recall_at_10"] >= 0.95)]
        if len(good):
            best = good.sort_values("batched_qps", ascending=False).iloc[0]
            print(f"best approximate index with recall@10 >= 0.95: {best['index']} {best['knob']}: "
                  f"recall {best['recall_at_10']:.3f}, {best['speedup_vs_exact']:.1f}x exact batched QPS "
                  f"(goal >= 10x: {'met' if best['speedup_vs_exact'] >= 10 else 'NOT met'})", flush=True)
        else:
            print("no approximate index reached recall@10 >= 0.95", flush=True)
        out["runs"].append({"n": n, "table": table.to_dict("records"), "exact_single_vs_bound": single_s / mem_bound_single,
                            "exact_batched_vs_bound": batched_s / batched_bound})
        del x, q

    plan = memory_plan(6_000_000, 1024, 24 * 10**9, metric="l2")
    print("\nmemory plan, 6 M x 1024 in 24 GB (estimated index bytes; nlist = 4 sqrt(N)):")
    print(plan.round(2).to_string(index=False))
    out["memory_plan_6m"] = plan.to_dict("records")
    if args.json:
        from acg2vec_lab.io import write_json

        write_json(args.json, out, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
