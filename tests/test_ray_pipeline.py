"""The Ray Data bulk pipeline (acg2vec_lab.bulk.ray_pipeline) against the single-process commands.

One local Ray session (2 CPUs) for the module; 200 small images plus 2 bad files. The embedder is
EfficientNet-Lite0 with its real ImageNet weights (no training needed); the tagger is the smoke
profile's DeepDanbooru (trained here on SYNTHETIC data; trained first when the cache has no run of it).
"""
from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest

from acg2vec_lab import cli
from acg2vec_lab.bulk import ray_pipeline as rp
from acg2vec_lab.retrieval.index import IndexSpec, VectorIndex, exact_search

pytestmark = pytest.mark.slow
N_GOOD, SHARD = 200, 50  # 202 files -> shards of 50, 50, 50, 50, 2
MODEL, PROFILE = "efficientnet_lite0", "smoke"


def _cli(argv: list[str]) -> tuple[int, dict]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(argv)
    return rc, json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("bulk_images")
    rng = np.random.default_rng(0)
    for i in range(N_GOOD):
        sub = folder / f"part{i % 3}"  # folders are searched recursively, as `tag` does
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + i % 7, 24, 3), dtype=np.uint8)).save(sub / f"img{i:04d}.png")
    (folder / "part0" / "broken.png").write_bytes(b"this is not a png")
    (folder / "part1" / "empty.jpg").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def ray_session():
    ray = rp.init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def single(images, tmp_path_factory):
    """``acg2vec-lab embed-image --out`` over the same files: (json, vectors)."""
    npy = tmp_path_factory.mktemp("single") / "vecs.npy"
    files = rp.collect([images])
    rc, out = _cli(["embed-image", "--model", MODEL, *files, "--out", str(npy), "--profile", PROFILE, "--no-progress"])
    assert rc == 0
    return out, np.load(npy)


@pytest.fixture(scope="module")
def bulk(images, ray_session, tmp_path_factory):
    """A run stopped after 2 shards (a killed driver keeps exactly its finished shards), then resumed."""
    out = tmp_path_factory.mktemp("bulk") / "shards"
    files = rp.collect([images])
    first = rp.run("embed", files, out, model=MODEL, profile=PROFILE, shard_size=SHARD, batch_size=16, max_shards=2)
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.parquet")}
    stale = out / f".shard-00002.parquet.{2 ** 22 + 7}-dead.part"  # what a writer killed mid-shard leaves
    stale.write_bytes(b"half a parquet file")
    second = rp.run("embed", files, out, model=MODEL, profile=PROFILE, shard_size=SHARD, batch_size=16)
    return {"out": out, "files": files, "first": first, "second": second, "kept": kept, "stale": stale}


def test_make_shards_sorted_fixed_size():
    shards = rp.make_shards(["c", "a", "e", "b", "d", "a"], 2)
    assert shards == [["a", "b"], ["c", "d"], ["e"]]
    with pytest.raises(rp.BulkError):
        rp.make_shards(["a"], 0)


def test_killed_run_resumes_without_duplicates_or_holes(bulk):
    assert (bulk["first"].written, bulk["first"].skipped, bulk["first"].shards) == (2, 0, 5)
    assert (bulk["second"].written, bulk["second"].skipped) == (3, 2)
    now = {p.name: p.stat().st_mtime_ns for p in bulk["out"].glob("shard-*.parquet")}
    assert all(now[k] == v for k, v in bulk["kept"].items())  # the finished shards were not redone
    assert not bulk["stale"].exists()
    df = rp.read_shards(bulk["out"])
    assert df["id"].tolist() == bulk["files"]  # every file once, in sorted order
    assert df["id"].is_unique and len(df) == N_GOOD + 2


def test_bad_images_reported_not_fatal(bulk, single):
    errors = bulk["first"].errors + bulk["second"].errors
    assert sorted(os.path.basename(e["file"]) for e in errors) == ["broken.png", "empty.jpg"]
    assert all(e["file"] in e["error"] for e in errors)  # the message names the file
    df = rp.read_shards(bulk["out"])
    bad = df[df["error"].notna()]
    assert sorted(bad["id"]) == sorted(e["file"] for e in errors) and bad["vector"].isna().all()
    assert sorted(s["path"] for s in single[0]["skipped"]) == sorted(bad["id"])


def test_ray_output_equals_single_process_command(bulk, single):
    ids, vecs = rp.load_vectors(bulk["out"])
    out, ref = single
    assert ids == out["inputs"]
    assert vecs.shape == ref.shape == (N_GOOD, 1280)
    np.testing.assert_allclose(vecs, ref, atol=1e-5, rtol=0)


def test_shards_load_into_faiss_with_the_same_neighbours(bulk, single):
    index = rp.load_index(bulk["out"], "flat")
    ref = single[1]
    q = ref[:: 17]
    got_ids, _ = index.search(q, k=5)
    want_ids, _ = exact_search(ref, q, k=5, metric="cosine")
    np.testing.assert_array_equal(got_ids, want_ids)
    table = index.query(q[:1], k=1)
    assert table["path"].iloc[0] == single[0]["inputs"][0]
    into = rp.load_index(bulk["out"], index=VectorIndex(1280, IndexSpec("hnsw", metric="cosine")))
    assert len(into) == N_GOOD and into.search(q, k=1)[0][:, 0].tolist() == want_ids[:, 0].tolist()


def test_other_inputs_refused_and_cli_rerun_skips_everything(bulk, images, tmp_path):
    with pytest.raises(rp.BulkError, match="shard_size"):
        rp.run("embed", bulk["files"], bulk["out"], model=MODEL, profile=PROFILE, shard_size=SHARD + 1)
    rc, out = _cli(["bulk", "embed", str(images), "--model", MODEL, "--out", str(bulk["out"]),
                    "--shard-size", str(SHARD), "--batch", "16", "--profile", PROFILE, "--no-progress"])
    assert rc == 0 and (out["written"], out["skipped"], out["files"]) == (0, 5, N_GOOD + 2)
    rc, out = _cli(["bulk", "index", str(bulk["out"]), "--out", str(tmp_path / "index")])
    assert rc == 0 and (out["n"], out["dim"]) == (N_GOOD, 1280)


def test_tag_shards_equal_single_process_tags(images, ray_session, tmp_path):
    from acg2vec_lab import models
    from acg2vec_lab.models import load_tagger
    from acg2vec_lab.tagging.pipeline import predict_paths
    from acg2vec_lab.tagging.thresholds import ThresholdPolicy, select_tags

    models.get("deepdanbooru").ensure_trained(PROFILE)  # notebook 02's smoke run: loaded, or trained here
    tagger = load_tagger("deepdanbooru", PROFILE)
    files = rp.collect([images])[:61]
    assert str(images / "part0" / "broken.png") in files
    policy = ThresholdPolicy(general=0.3, character=0.5)
    s = rp.run("tag", files, tmp_path / "tags", model="deepdanbooru", profile=PROFILE, shard_size=25, batch_size=16,
               concurrency=1, policy=policy)
    assert s.written == 3 and [os.path.basename(e["file"]) for e in s.errors] == ["broken.png"]
    df = rp.read_shards(tmp_path / "tags")
    probs, ok, errs = predict_paths(tagger, sorted(files))
    assert [e["file"] for e in errs] == [e["file"] for e in s.errors]
    got = df[df["error"].isna()]
    assert got["id"].tolist() == [str(p) for p in ok]
    for row, p in zip(got.itertuples(), probs):
        want = select_tags(p, tagger.tags, tagger.categories, policy)
        assert list(row.tags) == [t.name for t in want]
        np.testing.assert_allclose(row.scores, [t.score for t in want], atol=1e-5)


def test_driver_killed_mid_run_resumes_on_the_cluster_by_address(images, ray_session, single, tmp_path):
    """A real kill: ``acg2vec-lab bulk embed --address`` (joining this module's Ray) SIGKILLed after its first shard."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "shards"
    argv = [sys.executable, "-m", "acg2vec_lab.cli", "bulk", "embed", str(images), "--model", MODEL, "--out", str(out),
            "--shard-size", "20", "--batch", "10", "--profile", PROFILE, "--no-progress",
            "--address", ray_session.get_runtime_context().gcs_address]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (out / "shard-00000.parquet").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL  # killed mid-run, not finished
    done = sorted(p.name for p in out.glob("shard-*.parquet"))
    assert 1 <= len(done) < 11
    s = rp.run("embed", rp.collect([images]), out, model=MODEL, profile=PROFILE, shard_size=20, batch_size=10)
    assert (s.skipped, s.written, s.shards) == (len(done), 11 - len(done), 11)
    ids, vecs = rp.load_vectors(out)
    assert ids == single[0]["inputs"]  # no duplicates, no holes
    np.testing.assert_allclose(vecs, single[1], atol=1e-5, rtol=0)
