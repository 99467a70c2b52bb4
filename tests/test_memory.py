"""Memory that does not grow: repeated model loads and a long tagging run keep RSS flat (psutil).

Each measurement runs in a fresh subprocess, so what other tests imported or cached cannot pollute
it, and prints its figures as JSON (the test prints them again, so a run with ``-s`` shows them).

* load and drop a tagger (the tiny DeepDanbooru checkpoint the smoke profile loads) and an embedder
  (e5-small, the smallest real one) 10 times: the peak RSS after any load stays within 10 % of the
  RSS after the first load (``gc.collect()`` before every measurement);
* tag 10,000 generated 8x8 images with that tagger in batches of 32 (no writer: the pipeline and
  the model only): RSS at the end stays within 10 % (+ 16 MiB for allocator noise) of RSS after batch 10.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

LOADS = 10
GROWTH = 0.10  # allowed growth over the first load / the 10th batch
SLACK_MB = 16.0  # allocator noise allowed on top for the long run

_PRELUDE = """
import gc, json, os, sys
import psutil
import acg2vec_lab
proc = psutil.Process()
def rss_mb():
    gc.collect()
    return proc.memory_info().rss / 2**20
"""

TAGGER_LOADS = _PRELUDE + """
import numpy as np
from acg2vec_lab.models import load_tagger
x = None
rss = []
for i in range(int(sys.argv[1])):
    t = load_tagger("deepdanbooru", "smoke")
    x = np.zeros((2, *t.input_size, 3), np.float32) if x is None else x
    t.predict(x)
    del t
    rss.append(rss_mb())
print(json.dumps({"rss_mb": rss}))
"""

EMBEDDER_LOADS = _PRELUDE + """
from acg2vec_lab.embedders import get
rss = []
for i in range(int(sys.argv[1])):
    e = get("e5_small", "smoke")
    e.encode(["silver hair, 1girl"])
    del e
    rss.append(rss_mb())
print(json.dumps({"rss_mb": rss}))
"""

LONG_TAGGING = _PRELUDE + """
import numpy as np
from PIL import Image
from acg2vec_lab.models import load_tagger
from acg2vec_lab.tagging.pipeline import tag_images
n, batch = int(sys.argv[1]), 32
rng = np.random.default_rng(0)
pixels = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
paths = [f"generated/{i:05d}.png" for i in range(n)]
index = {p: i for i, p in enumerate(paths)}
loader = lambda p: Image.fromarray(pixels[index[str(p)]])
tagger = load_tagger("deepdanbooru", "smoke")
marks = {}
seen = [0]
def on_result(res, row):
    seen[0] += 1
    if seen[0] in (batch * 10, n // 2, n):
        marks[seen[0]] = rss_mb()
s = tag_images(tagger, paths, None, batch_size=batch, workers=2, progress=False, resume=False,
               loader=loader, on_result=on_result)
print(json.dumps({"tagged": s.tagged, "failed": s.failed, "rss_mb": marks, "images_per_s": s.images_per_s}))
"""


@pytest.fixture(scope="module")
def tagger_cache(tmp_path_factory):
    from acg2vec_lab.dev.fault import write_tiny_tagger

    cache = tmp_path_factory.mktemp("memcache")
    write_tiny_tagger(cache)
    return cache


def _run(code: str, arg: int, env: dict[str, str] | None = None, timeout: float = 600) -> dict:
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", ACG2VEC_PROFILE="smoke", **(env or {}))
    res = subprocess.run([sys.executable, "-c", code, str(arg)], env=e, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"the measuring subprocess failed (exit {res.returncode}): {res.stderr[-3000:]}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def _report(what: str, figures: dict) -> None:
    print(f"\n[memory] {what}: {json.dumps(figures)}", file=sys.stderr)


def _assert_flat_loads(what: str, rss: list[float]) -> None:
    first, peak = rss[0], max(rss)
    _report(what, {"first_mb": round(first, 1), "peak_mb": round(peak, 1), "last_mb": round(rss[-1], 1),
                   "growth": round(peak / first - 1, 4), "loads": len(rss)})
    assert len(rss) == LOADS
    assert peak <= first * (1 + GROWTH), (
        f"{what}: RSS grew from {first:.1f} MiB after the first load to {peak:.1f} MiB over {LOADS} loads "
        f"(> {GROWTH:.0%}): {[round(r, 1) for r in rss]}")


def test_loading_a_tagger_ten_times_keeps_rss_flat(tagger_cache):
    out = _run(TAGGER_LOADS, LOADS, {"ACG2VEC_CACHE": str(tagger_cache)})
    _assert_flat_loads("deepdanbooru tiny tagger x10", out["rss_mb"])


def test_loading_an_embedder_ten_times_keeps_rss_flat():
    out = _run(EMBEDDER_LOADS, LOADS)
    _assert_flat_loads("e5_small embedder x10", out["rss_mb"])


def test_tagging_ten_thousand_images_keeps_rss_flat(tagger_cache):
    n = 10_000
    out = _run(LONG_TAGGING, n, {"ACG2VEC_CACHE": str(tagger_cache)})
    marks = {int(k): v for k, v in out["rss_mb"].items()}
    at10, end = marks[32 * 10], marks[n]
    _report("tag 10,000 8x8 images", {"rss_batch10_mb": round(at10, 1), "rss_half_mb": round(marks[n // 2], 1),
                                      "rss_end_mb": round(end, 1), "growth": round(end / at10 - 1, 4),
                                      "images_per_s": round(out["images_per_s"], 1)})
    assert out["tagged"] == n and out["failed"] == 0
    assert end <= at10 * (1 + GROWTH) + SLACK_MB, (
        f"tagging {n} images: RSS grew from {at10:.1f} MiB at batch 10 to {end:.1f} MiB at the end "
        f"(allowed {GROWTH:.0%} + {SLACK_MB:.0f} MiB)")
