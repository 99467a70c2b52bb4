"""Batched tagging pipeline vs the original blog's naive loop (load one image, ``model.predict`` one at a time).

Same model, same images, one process, one run each after a warm-up; prints the images/s of both and the
ratio. The tiny DeepDanbooru replica runs by default; ``--full N`` adds resnet_custom_v3 at 512 with 9176
tags on N images (random init: speed does not depend on the weights), with the time to the first result
and the peak memory of the process.

    .venv/bin/python benchmarks/bench_tagging.py                 # tiny, 48 images
    .venv/bin/python benchmarks/bench_tagging.py --full 4        # plus full v3 at 512 on 4 images
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import acg2vec_lab  # noqa: F401  (before tensorflow)


def make_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` JPEGs of mixed sizes (the synthetic set's look is irrelevant to speed)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = int(rng.integers(300, 700)), int(rng.integers(300, 700))
        arr = (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(arr).resize((w, h))
        p = folder / f"img_{i:03d}.jpg"
        img.save(p, quality=90)
        paths.append(p)
    return paths


def naive_loop(model, paths, size) -> float:
    """The blog's way: for each file, decode, preprocess, ``model.predict`` on a batch of one."""
    from acg2vec_lab.data import load_image
    from acg2vec_lab.models.deepdanbooru.preprocess import deepdanbooru_eval

    t0 = time.perf_counter()
    for p in paths:
        x = deepdanbooru_eval(load_image(p), size)[None]
        model.predict(x, verbose=0)
    return time.perf_counter() - t0


def batched(tagger, paths, batch_size: int, workers: int):
    from acg2vec_lab.tagging.pipeline import tag_images

    return tag_images(tagger, paths, None, batch_size=batch_size, workers=workers, progress=False, resume=False)


def bench(model, tags, paths, batch_size: int, workers: int, label: str) -> dict:
    from acg2vec_lab.models.deepdanbooru.tagger import DeepDanbooruTagger

    size = tuple(model.input_shape[1:3])
    tagger = DeepDanbooruTagger(model, tags, [0] * len(tags), source="random init (speed only)")
    t_first = time.perf_counter()
    tagger.predict(np.zeros((1, *size, 3), np.float32))  # warm-up: trace once (both paths then run warm)
    warm_batched = time.perf_counter() - t_first
    model.predict(np.zeros((1, *size, 3), np.float32), verbose=0)
    naive_s = naive_loop(model, paths, size)
    s = batched(tagger, paths, batch_size, workers)
    out = {
        "model": label, "images": len(paths), "batch_size": batch_size, "workers": workers,
        "naive_images_per_s": len(paths) / naive_s, "batched_images_per_s": s.images_per_s,
        "ratio_batched_over_naive": s.images_per_s / (len(paths) / naive_s),
        "batched_first_result_s": s.first_result_s, "trace_warmup_s": warm_batched,
        "failed": s.failed,
    }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--full", type=int, default=0, metavar="N", help="also time full v3 at 512 on N images")
    args = ap.parse_args(argv)
    from acg2vec_lab.runtime import set_threads

    set_threads()
    import keras

    from acg2vec_lab.models.deepdanbooru.train import build_tagger_model

    keras.utils.set_random_seed(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), max(args.n_images, args.full))
        tags = [f"tag_{i}" for i in range(32)]
        results.append(bench(build_tagger_model("tiny", len(tags)), tags, paths[: args.n_images],
                             args.batch_size, args.workers, "deepdanbooru tiny (64 px)"))
        print(json.dumps(results[-1], indent=1))
        if args.full:
            from acg2vec_lab.config import load_config
            from acg2vec_lab.models.deepdanbooru.tf_model import build_model

            t0 = time.perf_counter()
            model = build_model(load_config("deepdanbooru", variant="full"))
            build_s = time.perf_counter() - t0
            tags = [f"tag_{i}" for i in range(model.output_shape[-1])]
            r = bench(model, tags, paths[: args.full], min(args.batch_size, 4), args.workers, "resnet_custom_v3 512 px, 9176 tags")
            r["build_s"] = build_s
            results.append(r)
            print(json.dumps(results[-1], indent=1))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in results:
        print(f"{r['model']}: naive {r['naive_images_per_s']:.2f} img/s, batched {r['batched_images_per_s']:.2f} img/s, "
              f"ratio {r['ratio_batched_over_naive']:.2f}x, first result {r['batched_first_result_s']:.2f} s")
    print(f"peak RSS {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
