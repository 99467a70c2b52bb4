"""The original ``deepdanbooru evaluate`` against ``acg2vec-lab tag`` on the same project and images, in one run.

Issue 19's peer benchmark. The project is a full-size ``resnet_custom_v3`` (512x512, ``--tags`` tags, default
9,176 as the released v3) built and saved by the ORIGINAL ``deepdanbooru`` package with its own Keras 2 h5
writer (``tests/independent/deepdanbooru_original.py``, random weights with spread BN statistics: speed does
not depend on the weights, and the agreement figures below compare engines of the same weights). Images: the
real Ren'Py art of the cache (``assets fetch renpy``), cycled to ``--images`` files.

Engines, each run as its own process from a cold start, end to end (load, decode, network, write), in
alternating order over ``--reps`` rounds:

* ``original``: ``python -m deepdanbooru evaluate IMAGES --project-path P --allow-folder`` (tf_keras, one image
  at a time, its own decoder), under ``TF_USE_LEGACY_KERAS=1``;
* ``acg2vec fp32``: ``acg2vec-lab tag IMAGES --project-path P`` (Keras 3, batched pipeline, the original's
  decoding: ``--preprocess deepdanbooru``);
* ``acg2vec torch bf16``: ``acg2vec-lab tag IMAGES --project-path P --precision bf16`` (the PyTorch port with
  bfloat16 weights, channels-last);
* ``acg2vec onnx fp32`` / ``acg2vec onnx int8``: ``acg2vec-lab tag IMAGES --weights ONNX [--precision int8]``
  on the export of the same project (``acg2vec-lab export-onnx --project-path P --int8``, static ranges from
  ``--calibration`` Ren'Py images that are not among the timed ones; the export is timed once, apart).

Printed per engine: median end-to-end seconds, the ratio to the original's, images/s, time to first result
(acg2vec-lab's own summary; the original prints none), peak RSS of the process (``os.wait4``), and, against
the original's own ``evaluate_image`` probabilities of the same files (full precision, from the writer
script), the share of images whose top-10 general tags are unchanged and max |prob diff| on those tags. Wall-clock on a shared machine: rerun when the load changes.

    .venv/bin/python benchmarks/peer_deepdanbooru.py --images 16 --reps 2
    .venv/bin/python benchmarks/peer_deepdanbooru.py --images 4 --reps 1 --tags 64 --size 128   # a quick check
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_WRITER = ROOT / "tests" / "independent" / "deepdanbooru_original.py"
VENV_BIN = Path(sys.executable).parent


def _legacy_env(stub_parent: Path) -> dict[str, str]:
    """The original package's environment: Keras 2 through tf_keras, the empty tensorflow_io stand-in (made
    here, before the process starts: a path on PYTHONPATH that does not exist yet is cached as empty)."""
    (stub_parent / "tensorflow_io").mkdir(parents=True, exist_ok=True)
    (stub_parent / "tensorflow_io" / "__init__.py").write_text('"""Empty stand-in: deepdanbooru imports it for WebP only."""\n')
    path = os.pathsep.join(p for p in (str(stub_parent), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1",
            "PYTHONPATH": path}


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict:
    """Run ``cmd`` to the end: wall seconds, peak RSS (MiB, this child only) and its stdout."""
    out_f = tempfile.TemporaryFile(mode="w+")
    err_f = tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out_f, stderr=err_f, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    stdout, stderr = out_f.read(), err_f.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n{stderr[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def _images(folder: Path, n: int, offset: int = 0) -> list[Path]:
    from acg2vec_lab.models.real_cugan.weights import renpy_image_paths

    art = renpy_image_paths()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = art[(offset + i) % len(art)]
        dst = folder / f"{i:03d}{src.suffix.lower()}"
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def _json_top10(out_dir: Path, images: list[Path], tags: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The top-10 general tags and their scores from ``acg2vec-lab tag --format json`` sidecars
    (thresholds 0, ``--max-tags 10``): ``(indices (n, 10), scores (n, 10))``."""
    index = {t: j for j, t in enumerate(tags)}
    idx, val = [], []
    for p in images:
        data = json.loads((out_dir / f"{p.name}.json").read_text(encoding="utf-8"))
        idx.append([index[t["name"].replace(" ", "_")] for t in data["tags"]])
        val.append([float(t["score"]) for t in data["tags"]])
    return np.asarray(idx), np.asarray(val, np.float32)


def _agreement(ref: np.ndarray, general: np.ndarray, idx: np.ndarray, val: np.ndarray) -> dict[str, float]:
    """Against the original's probabilities ``ref`` (n, n_tags): share of images whose top-10 general tags
    are the same set, and max |prob diff| on the tags the engine reported."""
    ref_general = np.where(general[None, :], ref, -np.inf)
    top = np.argsort(-ref_general, axis=1)[:, :10]
    same = float(np.mean([set(a.tolist()) == set(b.tolist()) for a, b in zip(top, idx)]))
    diff = float(np.abs(np.take_along_axis(ref, idx, axis=1) - val).max())
    return {"top10_unchanged": same, "max_abs_prob_diff": diff}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--tags", type=int, default=9176)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--calibration", type=int, default=16, help="Ren'Py images for the int8 ranges (not timed ones)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the project and outputs here")
    args = ap.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="peer_dd_"))
    work.mkdir(parents=True, exist_ok=True)
    images = _images(work / "images", args.images)
    _images(work / "calibration", args.calibration, offset=args.images)
    t0 = time.perf_counter()
    build = _run([sys.executable, str(ORIGINAL_WRITER), "--out", str(work / "orig"), "--arch", "v3",
                  "--height", str(args.size), "--width", str(args.size), "--tags", str(args.tags),
                  *map(str, images)],
                 env=_legacy_env(work / "orig" / "_stub"), cwd=work)
    project = work / "orig" / "project"
    tags = (project / "tags.txt").read_text(encoding="utf-8").split()
    print(f"project written by the original package in {time.perf_counter() - t0:.0f} s: {project} "
          f"({len(tags)} tags, {args.size} px)", file=sys.stderr)
    with np.load(work / "orig" / "original.npz", allow_pickle=False) as z:
        ref = z["scores"]  # the original's evaluate_image probabilities (full precision) of every timed image
    general = np.array([not t.startswith("rating:") for t in tags])
    del build

    onnx_dir = work / "onnx"
    export = _run([str(VENV_BIN / "acg2vec-lab"), "export-onnx", str(onnx_dir), "--project-path", str(project),
                   "--int8", "--calibration", str(work / "calibration")])
    tag_args = ["--format", "json", "--general-threshold", "0", "--character-threshold", "0", "--max-tags", "10",
                "--keep-underscores", "--overwrite", "--no-progress"]
    engines = {
        "original": lambda out: [sys.executable, "-m", "deepdanbooru", "evaluate", str(work / "images"),
                                 "--project-path", str(project), "--allow-folder"],  # its default threshold 0.5
        "acg2vec fp32": lambda out: [str(VENV_BIN / "acg2vec-lab"), "tag", str(work / "images"), "--project-path",
                                     str(project), "--output-dir", str(out), *tag_args],
        "acg2vec torch bf16": lambda out: [str(VENV_BIN / "acg2vec-lab"), "tag", str(work / "images"), "--project-path",
                                           str(project), "--precision", "bf16", "--output-dir", str(out), *tag_args],
        "acg2vec onnx fp32": lambda out: [str(VENV_BIN / "acg2vec-lab"), "tag", str(work / "images"), "--weights",
                                          str(onnx_dir), "--output-dir", str(out), *tag_args],
        "acg2vec onnx int8": lambda out: [str(VENV_BIN / "acg2vec-lab"), "tag", str(work / "images"), "--weights",
                                          str(onnx_dir), "--precision", "int8", "--output-dir", str(out), *tag_args],
    }
    runs: dict[str, list[dict]] = {k: [] for k in engines}
    for rep in range(args.reps):
        order = list(engines) if rep % 2 == 0 else list(engines)[::-1]
        for name in order:
            out = work / "out" / name.replace(" ", "_")
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            env = _legacy_env(work / "orig" / "_stub") if name == "original" else None
            r = _run(engines[name](out), env=env, cwd=work)
            r["out"] = out
            runs[name].append(r)
            print(f"  {name}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MiB", file=sys.stderr)

    printed = runs["original"][-1]["stdout"].count("Tags of ")
    if printed != len(images):
        raise RuntimeError(f"deepdanbooru evaluate tagged {printed} of {len(images)} images")
    base_s = statistics.median(r["seconds"] for r in runs["original"])
    rows = []
    for name, rs in runs.items():
        med = statistics.median(r["seconds"] for r in rs)
        row = {"engine": name, "end_to_end_s": round(med, 2), "vs_original": round(med / base_s, 3),
               "images_per_s": round(args.images / med, 2), "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rs)),
               "first_result_s": None, "max_abs_prob_diff": None, "top10_unchanged": None}
        if name != "original":
            summary = json.loads(rs[-1]["stdout"][rs[-1]["stdout"].index("{"):])
            row["first_result_s"] = summary.get("first_result_s")
            row.update(_agreement(ref, general, *_json_top10(rs[-1]["out"], images, tags)))
        rows.append(row)
    print(json.dumps({"project": f"resnet_custom_v3 {args.size}px, {len(tags)} tags, written by deepdanbooru 1.0.4 "
                                 "(random weights)", "images": f"{args.images} real Ren'Py files", "reps": args.reps,
                      "export_onnx_s": round(export["seconds"], 1), "engines": rows}, indent=1))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
