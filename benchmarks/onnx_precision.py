"""DeepDanbooru through ONNX: fp32 and int8 against the Keras model, speed and what int8 costs.

1. **Cost on the test split** (``--profile``, SYNTHETIC data): the DeepDanbooru tagger of that profile is
   trained as notebook 02 trains it (into a temporary folder, seed 0), exported with int8 static (ranges from
   64 SYNTHETIC train images) and dynamic, and the engines tag the same SYNTHETIC test images: max |prob
   diff| vs Keras, share of images whose
   top-10 tags are unchanged, micro-F1 at the per-category thresholds (0.35 / 0.85) and mAP, each with its
   delta to fp32 Keras.
2. **Speed at full size** (``--full-v3``): resnet_custom_v3 at 512x512 with 9,176 tags (random init: speed
   does not depend on the weights, but int8's cost on random weights says nothing; part 1 measures it),
   the same batch through Keras, ONNX fp32, ONNX int8 static (QDQ) and dynamic, in alternating order, median seconds per batch,
   images/s and the ratios to Keras, measured side by side in one process.

    .venv/bin/python benchmarks/onnx_precision.py --profile smoke
    .venv/bin/python benchmarks/onnx_precision.py --profile cpu --full-v3 --batch 4 --reps 3

Numbers are wall-clock on a shared machine; rerun when the load changes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import acg2vec_lab  # noqa: F401  (environment defaults before tensorflow)


def cost_on_test_split(profile: str, threads: int | None, calibration: int = 64, run_dir: str | None = None,
                       method: str = "minmax") -> dict:
    from acg2vec_lab import load_config
    from acg2vec_lab.data import synthetic_dataset
    from acg2vec_lab.models import onnx_export as OX
    from acg2vec_lab.models.deepdanbooru.tagger import DeepDanbooruTagger
    from acg2vec_lab.models.deepdanbooru.train import prepare_images, train_tagger
    from acg2vec_lab.tagging.metrics import evaluate
    from acg2vec_lab.tagging.thresholds import ThresholdPolicy, apply_thresholds

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = train_tagger(profile, cfg=load_config("deepdanbooru_train", profile), dataset=synthetic_dataset(profile),
                         checkpoint=Path(run_dir) if run_dir else Path(tmp) / "run", seed=0)  # a finished run is reused
        train_s = time.perf_counter() - t0
        cats = list(r.categories)
        keras_tagger = DeepDanbooruTagger(r.model, list(r.tags), cats, source=f"trained here ({profile}, SYNTHETIC)")
        size = keras_tagger.input_size
        train_paths = list(r.data.train_paths)[:: max(1, len(r.data.train_paths) // calibration)][:calibration]
        calib = np.stack(prepare_images(train_paths, size, False)).astype(np.float32)  # train images, never test
        t0 = time.perf_counter()
        meta = OX.export_tagger(keras_tagger, Path(tmp) / "onnx", int8=True, calibration=calib, calibrate_method=method)
        export_s = time.perf_counter() - t0
        OX.quantize_int8(Path(tmp) / "onnx" / OX.MODEL_FILE, Path(tmp) / "dynamic.onnx")
        x = np.stack(prepare_images(r.data.test_paths, size, False)).astype(np.float32)
        probs = {"keras_fp32": np.concatenate([keras_tagger.predict(x[i:i + 16]) for i in range(0, len(x), 16)])}
        for name, file in (("onnx_fp32", OX.MODEL_FILE), ("onnx_int8_static", OX.INT8_FILE),
                           ("onnx_int8_dynamic", "../dynamic.onnx")):
            sess = OX._session(Path(tmp) / "onnx" / file, threads)
            probs[name] = np.concatenate([sess.run(["probs"], {"images": x[i:i + 16]})[0] for i in range(0, len(x), 16)])
    policy = ThresholdPolicy(general=0.35, character=0.85)
    out = {"profile": profile, "data": "SYNTHETIC test split", "images": int(len(x)), "tags": len(cats),
           "calibration": f"{len(calib)} SYNTHETIC train images, {method}",
           "train_s": round(train_s, 1), "export_s": round(export_s, 1), "parity": meta["parity_vs_framework"]}
    ref = None
    for name, p in probs.items():
        m = evaluate(r.data.y_test, p, apply_thresholds(p, cats, policy))
        row = {"micro_f1": m["micro_f1"], "mAP": m["mAP"]}
        if ref is None:
            ref = row
        else:
            row.update(OX.compare(probs["keras_fp32"], p, k=10))
            row["micro_f1_delta"] = row["micro_f1"] - ref["micro_f1"]
            row["mAP_delta"] = row["mAP"] - ref["mAP"]
        out[name] = {k: round(float(v), 6) for k, v in row.items()}
    return out


def speed_full_v3(batch: int, reps: int, threads: int | None) -> dict:
    from acg2vec_lab import load_config
    from acg2vec_lab.models import onnx_export as OX
    from acg2vec_lab.models.deepdanbooru.tagger import DeepDanbooruTagger
    from acg2vec_lab.models.deepdanbooru.tf_model import build_model

    cfg = load_config("deepdanbooru", "full")
    model = build_model(cfg)
    n_tags = int(model.output_shape[-1])
    tagger = DeepDanbooruTagger(model, [f"t{i}" for i in range(n_tags)], [0] * n_tags, source="random init (speed)")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        calib = rng.random((4, *tagger.input_size, 3), dtype=np.float32)  # random weights: ranges for speed only
        OX.export_tagger(tagger, Path(tmp), int8=True, probe_batches=(1, 2), calibration=calib)
        export_s = time.perf_counter() - t0
        OX.quantize_int8(Path(tmp) / OX.MODEL_FILE, Path(tmp) / "dynamic.onnx")
        sizes = {f: round((Path(tmp) / f).stat().st_size / 2**20, 1) for f in (OX.MODEL_FILE, OX.INT8_FILE)}

        def run(file):
            sess = OX._session(Path(tmp) / file, threads)
            return lambda x: sess.run(["probs"], {"images": x})[0]

        engines = {"keras_fp32": tagger.predict, "onnx_fp32": run(OX.MODEL_FILE), "onnx_int8_static": run(OX.INT8_FILE),
                   "onnx_int8_dynamic": run("dynamic.onnx")}
        x = rng.random((batch, *tagger.input_size, 3), dtype=np.float32)
        for fn in engines.values():  # warm up (graph tracing, allocations)
            fn(x)
        times: dict[str, list[float]] = {k: [] for k in engines}
        for i in range(reps):
            order = list(engines.items())
            for name, fn in (order if i % 2 == 0 else order[::-1]):
                t0 = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": f"resnet_custom_v3 {cfg.image_size}px, {n_tags} tags (random init)", "batch": batch, "reps": reps,
            "export_s": round(export_s, 1), "file_mb": sizes,
            "median_s_per_batch": {k: round(v, 3) for k, v in med.items()},
            "images_per_s": {k: round(batch / v, 2) for k, v in med.items()},
            "time_vs_keras": {k: round(v / med["keras_fp32"], 3) for k, v in med.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke", help="the trained tagger of part 1 (smoke | cpu | full)")
    ap.add_argument("--full-v3", action="store_true", help="also time the full-size resnet_custom_v3")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: its choice)")
    ap.add_argument("--run-dir", help="keep the trained tagger here (a rerun reuses it) instead of a temporary folder")
    ap.add_argument("--calibrate-method", default="minmax", choices=["minmax", "percentile"])
    args = ap.parse_args()
    print(json.dumps({"cost": cost_on_test_split(args.profile, args.threads, run_dir=args.run_dir,
                                                 method=args.calibrate_method)}, ensure_ascii=False))
    if args.full_v3:
        print(json.dumps({"speed": speed_full_v3(args.batch, args.reps, args.threads)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
