"""Images/s of the Ray bulk pipeline (``acg2vec-lab bulk embed``) vs the plain ``embed-image --out``, one run.

Both embed the same SYNTHETIC random-pixel PNGs (written to a temporary folder) with the same
embedder; the plain command runs in this process, the pipeline on a local Ray (``--num-cpus``
actors). Ray's start-up is timed apart: ``ray_images_per_s`` is the pipeline alone (what a long job
sees), ``ray_images_per_s_with_startup`` includes ``ray.init``. Also prints the largest |difference|
between the two sets of vectors. Prints one JSON object.

    .venv/bin/python benchmarks/bench_ray_bulk.py --n 400 --model efficientnet_lite0
    .venv/bin/python benchmarks/bench_ray_bulk.py --n 2000 --shard-size 250 --batch 32
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="images (SYNTHETIC random pixels)")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--model", default="efficientnet_lite0", help="image embedder (embed-image --list)")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="local Ray CPUs = model actors")
    args = ap.parse_args()

    from PIL import Image

    from acg2vec_lab import cli, progress
    from acg2vec_lab.bulk import ray_pipeline as rp

    progress.set_enabled(False)
    with tempfile.TemporaryDirectory(prefix="bench_ray_bulk_") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.n):
            Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")
        files = rp.collect([folder])

        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            rc = cli.main(["embed-image", "--model", args.model, *files, "--out", f"{tmp}/plain.npy",
                           "--batch", str(args.batch), "--profile", args.profile, "--no-progress"])
        plain_s = time.perf_counter() - t
        assert rc == 0, "embed-image failed"

        t = time.perf_counter()
        ray = rp.init_ray(num_cpus=args.num_cpus)
        startup_s = time.perf_counter() - t
        s = rp.run("embed", files, f"{tmp}/shards", model=args.model, profile=args.profile,
                   shard_size=args.shard_size, batch_size=args.batch)
        ray_s = time.perf_counter() - t - startup_s
        ray.shutdown()
        _, vecs = rp.load_vectors(f"{tmp}/shards")
        diff = float(np.abs(vecs - np.load(f"{tmp}/plain.npy")).max())
    print(json.dumps({
        "data": "SYNTHETIC random-pixel PNGs", "n": args.n, "size": args.size, "model": args.model,
        "batch": args.batch, "shard_size": args.shard_size, "ray_cpus": args.num_cpus, "host_cpus": os.cpu_count(),
        "plain_images_per_s": round(args.n / plain_s, 2),
        "ray_images_per_s": round(args.n / ray_s, 2),
        "ray_images_per_s_with_startup": round(args.n / (ray_s + startup_s), 2),
        "plain_s": round(plain_s, 2), "ray_s": round(ray_s, 2), "ray_startup_s": round(startup_s, 2),
        "shards": s.shards, "max_abs_diff": diff,
    }, indent=2))


if __name__ == "__main__":
    main()
