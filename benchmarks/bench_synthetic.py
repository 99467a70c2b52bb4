"""Speed of the SYNTHETIC Danbooru-format generator: images per second at a few sizes and worker counts.

Each run writes a fresh set into a temporary folder (JPEG files, metadata, the vocabulary check:
the same work as ``synthetic_dataset``), times it end to end and deletes it.

    .venv/bin/python benchmarks/bench_synthetic.py                          # 3000 x 128 px, every core
    .venv/bin/python benchmarks/bench_synthetic.py --n 1000 --size 256 512 --workers 1 2

Another tenant on a shared machine can slow a run; the numbers are wall-clock.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import acg2vec_lab  # noqa: F401  (environment defaults)


def main(argv: list[str] | None = None) -> int:
    from acg2vec_lab.config import load_config
    from acg2vec_lab.data import synthetic
    from acg2vec_lab.data.vocab import load_vocabulary

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="images per run")
    ap.add_argument("--size", type=int, nargs="+", default=[128], help="image side(s) in pixels (one run each)")
    ap.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1], help="process counts to try")
    args = ap.parse_args(argv)

    vocab = load_vocabulary()
    rows = []
    for size in args.size:
        for workers in args.workers:
            cfg = load_config("data", "cpu", n_images=args.n, min_size=size, max_size=size, workers=workers)
            tmp = Path(tempfile.mkdtemp(prefix="bench-synthetic-"))
            try:
                t0 = time.perf_counter()
                desc = synthetic.generate(cfg, tmp / "set", vocab=vocab)
                seconds = time.perf_counter() - t0
                mb = sum(p.stat().st_size for p in (tmp / "set").rglob("*") if p.is_file()) / 1e6
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            row = {"n": args.n, "size": size, "workers": workers, "seconds": round(seconds, 2),
                   "images_per_s": round(args.n / seconds, 1), "render_images_per_s": desc["images_per_second"],
                   "megabytes": round(mb, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
