"""What the illust2vec embedding costs over tagging alone, and full-size resnet_custom_v3 speed.

1. Tags only vs tags + embedding (the two-output illust2vec model) on the same model, the same
   batch, in one process: calls alternate A/B so a noisy neighbour hits both; the ratio of the
   median call times, of the fastest calls and of the median process CPU time is printed (goal: <= 1.05). On a loaded machine
   the spread between runs (+-5 %) exceeds the cost being measured (one GAP over the cut tensor).
2. ``--full-v3``: resnet_custom_v3 at 512x512 with 9176 tags (zeros-initialised as the loaders build
   it; speed does not depend on the weights; reading a 650 MB weights file is not included): time
   from start (after imports) to the first result, images/s on a few batches, peak resident memory.

    .venv/bin/python benchmarks/bench_deepdanbooru.py                       # cpu profile (small), batch 8
    .venv/bin/python benchmarks/bench_deepdanbooru.py --profile smoke --batch 16 --reps 20
    .venv/bin/python benchmarks/bench_deepdanbooru.py --full-v3 --v3-images 4 --v3-batch 2

Numbers are wall-clock on a shared machine; rerun when the load changes.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import acg2vec_lab  # noqa: F401  (before tensorflow)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def embedding_overhead(profile: str, batch: int, reps: int, cut: str | None = None) -> dict:
    """Median seconds per batch for tags only and tags + embedding; their ratio."""
    import numpy as np
    import tensorflow as tf

    from acg2vec_lab.config import load_config
    from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec
    from acg2vec_lab.models.deepdanbooru.tf_model import build_model

    cfg = load_config("deepdanbooru", profile)
    cut = cut or cfg.embedding_cut
    tagger = build_model(cfg)
    both = build_illust2vec(tagger, cut, cfg.l2_normalize)
    tags_fn = tf.function(lambda x: tagger(x, training=False))
    both_fn = tf.function(lambda x: both(x, training=False))
    x = tf.constant(np.random.default_rng(0).uniform(0, 1, (batch, cfg.image_size, cfg.image_size, 3)).astype("float32"))
    for fn in (tags_fn, both_fn):  # trace + warm up
        fn(x)
        fn(x)
    times: dict[str, list[float]] = {"tags": [], "tags+embedding": []}
    cpu: dict[str, list[float]] = {"tags": [], "tags+embedding": []}  # process CPU seconds, less hit by neighbours
    for i in range(reps):
        order = (("tags", tags_fn), ("tags+embedding", both_fn)) if i % 2 == 0 else \
            (("tags+embedding", both_fn), ("tags", tags_fn))
        for name, fn in order:
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(x)
            _ = [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    a, b = statistics.median(times["tags"]), statistics.median(times["tags+embedding"])
    return {"profile": profile, "variant": cfg.variant, "image_size": cfg.image_size, "batch": batch, "reps": reps,
            "cut": cut, "tags_s_per_batch": round(a, 5), "tags_embedding_s_per_batch": round(b, 5),
            "ratio": round(b / a, 4),
            "ratio_of_min": round(min(times["tags+embedding"]) / min(times["tags"]), 4),  # least disturbed calls
            "cpu_time_ratio": round(statistics.median(cpu["tags+embedding"]) / statistics.median(cpu["tags"]), 4),
            "images_per_s_tags": round(batch / a, 2)}


def full_v3(images: int, batch: int, t_start: float) -> dict:
    """resnet_custom_v3 @ 512, 9176 tags: time to first result, images/s, peak memory."""
    import numpy as np
    import tensorflow as tf

    from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
    from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec
    from acg2vec_lab.models.deepdanbooru.tf_model import build_model

    t0 = time.perf_counter()
    # zeros init, as the loaders build before filling in a file's weights (reading the file is not timed)
    model = build_model(DeepDanbooruConfig(variant="resnet_custom_v3", n_tags=9176, image_size=512), init="zeros")
    both = build_illust2vec(model, "activation_96")
    build_s = time.perf_counter() - t0
    fn = tf.function(lambda x: both(x, training=False))
    rng = np.random.default_rng(0)
    first = rng.uniform(0, 1, (1, 512, 512, 3)).astype("float32")
    tags, emb = fn(first)
    tags.numpy()
    first_s = time.perf_counter() - t_start
    x = tf.constant(rng.uniform(0, 1, (batch, 512, 512, 3)).astype("float32"))
    fn(x)  # trace the batch shape
    done, t1 = 0, time.perf_counter()
    while done < images:
        tags, emb = fn(x)
        tags.numpy()
        done += batch
    secs = time.perf_counter() - t1
    return {"model": "resnet_custom_v3@512 (9176 tags, zeros init, file read not timed)", "build_s": round(build_s, 2),
            "time_to_first_result_s": round(first_s, 2), "images": done, "batch": batch,
            "images_per_s": round(done / secs, 3), "embedding_dim": int(emb.shape[-1]),
            "peak_rss_mb": round(_peak_rss_mb(), 0)}


def main(argv: list[str] | None = None) -> int:
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "full"], help="config variant to time")
    ap.add_argument("--batch", type=int, default=8, help="images per batch")
    ap.add_argument("--reps", type=int, default=15, help="timed calls of each model (alternating)")
    ap.add_argument("--cut", default=None, choices=["activation_96", "add_43"], help="cut point (default: config)")
    ap.add_argument("--full-v3", action="store_true", help="also time resnet_custom_v3 at 512")
    ap.add_argument("--v3-images", type=int, default=4, help="images for the v3 throughput")
    ap.add_argument("--v3-batch", type=int, default=2, help="v3 batch size")
    ap.add_argument("--skip-overhead", action="store_true", help="only the full v3 timing")
    args = ap.parse_args(argv)
    import tensorflow as tf  # noqa: F401  (imports are not part of time to first result)

    t_start = time.perf_counter()
    if args.full_v3:
        print(json.dumps(full_v3(args.v3_images, args.v3_batch, t_start)), flush=True)
    if not args.skip_overhead:
        row = embedding_overhead(args.profile, args.batch, args.reps, args.cut)
        print(json.dumps(row), flush=True)
        print(f"tags+embedding / tags-only = {row['ratio']:.3f} (median wall), {row['ratio_of_min']:.3f} (fastest calls), "
              f"{row['cpu_time_ratio']:.3f} (median process CPU time) "
              f"({args.profile}, batch {args.batch})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
