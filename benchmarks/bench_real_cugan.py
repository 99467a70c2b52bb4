"""Real-CUGAN speed and memory: TF port vs PyTorch reference vs the ncnn engine, whole vs tiled.

    .venv/bin/python benchmarks/bench_real_cugan.py                 # speed on a 256x256 crop + memory at 960x540
    .venv/bin/python benchmarks/bench_real_cugan.py --size 200 --repeat 3 --skip-memory

Speed: the same real Ren'Py crop through each backend in one process (after one warm-up call; TF in
graph mode). Memory: each (backend, tile mode) runs on a 960x540 real image in its own subprocess;
peak RSS is the child's ru_maxrss (includes the framework itself; the idle baseline is reported too).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.dev.timing import time_calls

MODEL = "models-se/up2x-conservative"


def _image(h: int, w: int) -> np.ndarray:
    from acg2vec_lab.models.real_cugan import weights
    from acg2vec_lab.models.real_cugan.quality import bicubic

    img = weights.load_renpy(weights.renpy_image_paths()[0])  # 1280x720 drawn background
    if (h, w) == (540, 960):
        return bicubic(img, (960, 540))
    return np.ascontiguousarray(img[200:200 + h, 300:300 + w])


def speed(size: int, repeat: int) -> dict:
    import torch

    from acg2vec_lab.models.real_cugan import convert, engine, tf_model, torch_model, weights

    torch.set_num_threads(2)
    img = _image(size, size)
    m, pro = weights.load_official(MODEL)
    tfm = convert.tf_from_torch(m)
    res = {"image": f"{size}x{size} -> {2 * size}x{2 * size}", "model": MODEL}
    # best of `repeat` after one untimed warm-up (TF tracing, oneDNN primitive creation)
    res["torch_s"] = min(time_calls(lambda: torch_model.upscale_image(m, img, pro), repeat))
    res["tf_s"] = min(time_calls(lambda: tf_model.upscale_image(tfm, img, pro), repeat))
    res["tf_over_torch"] = res["tf_s"] / res["torch_s"]
    reason = engine.ensure_system_libs()
    if reason is None:
        eng = engine.engine(2, -1, "se")
        res["ncnn_s"] = min(time_calls(lambda: engine.run(eng, img), repeat))
    else:
        res["ncnn_s"] = f"unavailable: {reason}"
    return res


def memory_child(backend: str, mode: str, tile: int) -> None:
    import torch

    from acg2vec_lab.models.real_cugan import torch_model, weights

    torch.set_num_threads(2)
    img = _image(540, 960)
    m, pro = weights.load_official(MODEL)
    if backend == "tf":  # TensorFlow is imported only in the TF child
        from acg2vec_lab.models.real_cugan import convert, tf_model

        net = convert.tf_from_torch(m)
    else:
        net = m
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    if backend == "tf":
        out = tf_model.upscale_image(net, img, pro, tile=mode, tile_size=tile)
    else:
        out = torch_model.upscale_image(net, img, pro, tile=mode, tile_size=tile)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"backend": backend, "tile": mode, "tile_size": tile if mode != "none" else None,
                      "out": list(out.shape), "baseline_mb": round(base), "peak_mb": round(peak), "seconds": round(dt, 1)}))


def memory(tile: int, backends) -> list:
    rows = []
    for backend in backends:
        for mode in ("none", "exact"):
            cmd = [sys.executable, __file__, "--child", backend, mode, str(tile)]  # fresh process: clean peak RSS
            res = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
            rows.append(json.loads(line[-1]) if line else {"backend": backend, "tile": mode,
                                                           "error": res.stderr.strip()[-400:]})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="square crop side for the speed test")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tile", type=int, default=128, help="tile side for the tiled memory run")
    ap.add_argument("--backends", nargs="+", default=["torch", "tf"])
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        memory_child(args.child[0], args.child[1], int(args.child[2]))
        return
    out = {}
    if not args.skip_speed:
        out["speed"] = speed(args.size, args.repeat)
        print(json.dumps(out["speed"]), flush=True)
    if not args.skip_memory:
        out["memory_960x540"] = memory(args.tile, args.backends)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
