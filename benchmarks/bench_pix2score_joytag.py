"""Throughput (images/s, CPU) of Pix2Score at 224 and JoyTag at 448 in their full configurations, and of the tiny replicas.

Random-init weights (throughput does not depend on the values). Each model runs ``--repeats`` timed
forward passes over ``--images`` random images in batches of ``--batch`` after one warm-up pass; the
figure is images / median seconds. Pix2Score runs in TensorFlow through a ``tf.function`` with a fixed
signature (graph mode, as served); JoyTag in PyTorch eval mode under ``torch.inference_mode``. Only
the network is timed (no decode / resize). Another tenant on the machine can slow single runs a lot:
look at ``load_avg`` in the output.

    .venv/bin/python benchmarks/bench_pix2score_joytag.py                      # full + tiny, 4 images
    .venv/bin/python benchmarks/bench_pix2score_joytag.py --models joytag_tiny pix2score_tiny --images 64
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import numpy as np

import acg2vec_lab  # noqa: F401  (environment defaults before tensorflow)
from acg2vec_lab import runtime
from acg2vec_lab.config import load_config
from acg2vec_lab.dev.timing import time_calls

MODELS = ("pix2score_full", "pix2score_tiny", "joytag_full", "joytag_tiny")


def bench_pix2score(variant: str, n: int, batch: int, repeats: int) -> dict:
    import keras
    import tensorflow as tf

    from acg2vec_lab.models.pix2score.model import build_pix2score

    cfg = load_config("pix2score", variant=variant)
    keras.utils.set_random_seed(0)
    model = build_pix2score(cfg)
    s = cfg.input_size
    call = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)])
    x = np.random.default_rng(0).random((n, s, s, 3), dtype=np.float32)
    batches = [tf.constant(x[i:i + batch]) for i in range(0, n, batch)]
    times = time_calls(lambda: [call(b) for b in batches], repeats)  # seconds per pass over every batch
    return {"framework": "tensorflow", "input": f"{s}x{s}", "params": int(model.count_params()), "times_s": times}


def bench_joytag(variant: str, n: int, batch: int, repeats: int) -> dict:
    import torch

    from acg2vec_lab.models.joytag.model import build_model, count_parameters

    cfg = load_config("joytag", variant=variant)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    s = cfg.image_size
    x = torch.randn(n, 3, s, s)
    batches = [x[i:i + batch] for i in range(0, n, batch)]

    def call(b):
        with torch.inference_mode():
            return model(b)

    times = time_calls(lambda: [call(b) for b in batches], repeats)  # seconds per pass over every batch
    return {"framework": "torch", "input": f"{s}x{s}", "params": int(count_parameters(model)), "times_s": times}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--images", type=int, default=4, help="images per timed pass (full models); tiny models use 8x")
    ap.add_argument("--batch", type=int, default=2, help="batch size (full models); tiny models use 8x")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="threads for torch / TF / BLAS (default: all cores)")
    args = ap.parse_args(argv)
    threads = runtime.set_threads(args.threads)
    import tensorflow as tf  # noqa: F401  (imported after the thread settings)
    import torch

    runtime.set_threads(threads)
    rows = []
    for name in args.models:
        family, variant = name.split("_")
        scale = 8 if variant == "tiny" else 1
        n, batch = args.images * scale, args.batch * scale
        fn = bench_pix2score if family == "pix2score" else bench_joytag
        res = fn(variant, n, batch, args.repeats)
        med = statistics.median(res["times_s"])
        row = {"model": name, **{k: v for k, v in res.items() if k != "times_s"}, "images": n, "batch": batch,
               "median_s": round(med, 4), "images_per_s": round(n / med, 2),
               "times_s": [round(t, 4) for t in res["times_s"]]}
        rows.append(row)
        print(f"{name:15s} {row['input']:>8s} {row['params']:>12,d} params  {row['images_per_s']:8.2f} images/s "
              f"(batch {batch}, median of {args.repeats})", file=sys.stderr)
    print(json.dumps({"threads": threads, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "load_avg": [round(v, 2) for v in os.getloadavg()], "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
