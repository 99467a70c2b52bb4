"""Data-parallel training on the standard launchers gives the single-process weights (issue 20, item 2).

* torch: ``torchrun --standalone --nproc_per_node 2`` (gloo on CPU) trains a tiny JoyTag config with
  DDP; every rank computes its shard of the same global batches (same seeded permutation, same flip
  draws, the same stochastic-depth masks) -> the saved weights equal an in-process single-process
  run's within float tolerance;
* torch: the same torchrun run SIGKILLed (``ACG2VEC_FAULT_AFTER``) while writing its third mid-run
  checkpoint resumes from the second to the uninterrupted run's weights;
* TF: the DeepDanbooru (tiny) model built and compiled under ``MirroredStrategy`` over 2 logical CPU
  devices vs one device, the same global batches, 2 steps: the same weights within float tolerance
  with BatchNormalization synchronised (what ``train_tagger(strategy=...)`` sets); per-replica BN
  statistics are measured too and differ by far more.

The pure helpers (sharding, strategy parsing) are checked in-process. The measured maximum weight
differences are printed (``-s`` shows them).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import acg2vec_lab  # noqa: F401  (environment defaults first)
from acg2vec_lab.train import distributed as D

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TORCHRUN = str(Path(PY).with_name("torchrun"))
# 11 training images in global batches of 4: 4, 4, 3 per epoch (shards 2/2, 2/2, 2/1), 2 epochs = 6 steps;
# the smoke (tiny) variant keeps stochastic depth 0.05, so the mask sharding is exercised
JOYTAG_SETS = ["--set", "epochs=2", "--set", "batch_size=4", "--set", "max_train=11", "--set", "n_tags=8"]


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*D.ENV_KEYS, "MASTER_ADDR", "MASTER_PORT", "TF_CONFIG")}
    env.pop("ACG2VEC_FAULT_AFTER", None)
    env.update(ACG2VEC_CACHE=str(cache), ACG2VEC_PROGRESS="0", ACG2VEC_DEVICE="cpu", PYTHONPATH=str(ROOT),
               TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _torchrun(args: list[str], env: dict[str, str], timeout: int = 240) -> subprocess.CompletedProcess:
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "acg2vec_lab.train.launch", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


def _close(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rtol: float = 1e-5, atol: float = 1e-6) -> list[str]:
    return [k for k in a if not np.allclose(a[k], b[k], rtol=rtol, atol=atol)]


# ---------------------------------------------------------------------- helpers, in-process

def test_shard_covers_every_position_once():
    for n in (0, 1, 3, 8, 11):
        for world in (1, 2, 3):
            for mode in ("contiguous", "strided"):
                parts = [D.shard_positions(n, r, world, mode) for r in range(world)]
                assert sorted(np.concatenate(parts).tolist()) == list(range(n))
                assert max(map(len, parts)) - min(map(len, parts)) <= 1
    idx = [10, 11, 12, 13, 14]
    assert D.shard(idx, 0, 2) == [10, 11, 12] and D.shard(idx, 1, 2) == [13, 14]
    assert D.shard(np.array(idx), 1, 2, "strided").tolist() == [11, 13]
    assert D.shard_weight(2, 4, 2) == 1.0 and D.shard_weight(1, 3, 2) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        D.shard_positions(4, 2, 2)


def test_not_launched_is_the_single_process(monkeypatch):
    for k in D.ENV_KEYS:
        monkeypatch.delenv(k, raising=False)
    assert not D.launched() and D.rank() == 0 and D.world_size() == 1 and D.is_main()
    assert D.init() is False and not D.initialized()
    D.barrier()
    D.cleanup()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert D.launched() and D.rank() == 1 and D.world_size() == 2 and not D.is_main() and D.local_rank() == 1
    assert D.strategy("none") is None and D.replicas(None) == 1 and D.tf_is_chief(None)


# ---------------------------------------------------------------------- torch DDP under torchrun

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A 48-image synthetic set and the single-process reference run (in this process, no launcher)."""
    root = tmp_path_factory.mktemp("distributed")
    old = os.environ.get("ACG2VEC_CACHE")
    os.environ["ACG2VEC_CACHE"] = str(root / "cache")
    try:
        from acg2vec_lab import models
        from acg2vec_lab.data import synthetic_dataset
        from acg2vec_lab.models.joytag.train import fit
        from acg2vec_lab.train.launch import load_source, make_config

        data = Path(synthetic_dataset("smoke", root=root / "data", n_images=48).root)
        spec = models.get("joytag")
        cfg = make_config("joytag", "smoke", JOYTAG_SETS[1::2], None)
        ds = load_source(str(data), "smoke")
        assert cfg.stochdepth_rate > 0  # the masks must be drawn like the single-process run's
        run = spec.run(cfg, spec.source_fingerprint(ds, cfg), folder=root / "single")
        fit(cfg, spec.prepare(cfg, ds), run)
        yield {"root": root, "data": data, "single": root / "single"}
    finally:
        if old is None:
            os.environ.pop("ACG2VEC_CACHE", None)
        else:
            os.environ["ACG2VEC_CACHE"] = old


@pytest.fixture(scope="module")
def ddp_run(work):
    out = work["root"] / "ddp"
    p = _torchrun(["joytag", "--profile", "smoke", "--data", str(work["data"]), *JOYTAG_SETS, "--out", str(out)],
                  _env(work["root"] / "cache"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["complete"]
    return out


def test_torchrun_two_ranks_equal_single_process(work, ddp_run):
    single, ddp = _weights(work["single"]), _weights(ddp_run)
    diff = _max_diff(single, ddp)
    print(f"\njoytag: torchrun 2 ranks vs 1 process, 6 steps: max |dW| = {diff:.3g}")
    assert not _close(single, ddp), f"weights differ beyond rtol 1e-5 / atol 1e-6 (max {diff:.3g})"
    h1 = json.loads((work["single"] / "manifest.json").read_text())
    h2 = json.loads((ddp_run / "manifest.json").read_text())
    assert h1["run_id"] == h2["run_id"]  # the same run identity: the launcher does not change the config
    for r1, r2 in zip(h1["history"], h2["history"], strict=True):
        assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-5)
        assert r1["grad_norm"] == pytest.approx(r2["grad_norm"], rel=1e-5)
    assert not (ddp_run / "train_state.pt").exists()


def test_torchrun_killed_after_a_checkpoint_resumes_to_the_same_weights(work, ddp_run):
    out = work["root"] / "killed"
    args = ["joytag", "--profile", "smoke", "--data", str(work["data"]), *JOYTAG_SETS, "--out", str(out),
            "--checkpoint-every", "1"]
    # rank 0's atomic commits: identity.json (1), then per step train_state.pt + manifest.json (2-3, 4-5);
    # the 6th is step 3's train_state.pt: SIGKILLed with its part file written, not yet renamed
    p = _torchrun(args, _env(work["root"] / "cache", ACG2VEC_FAULT_AFTER="6"))
    assert p.returncode != 0 and "SIGKILL at point 6" in p.stderr, p.stderr[-3000:]
    m = json.loads((out / "manifest.json").read_text())
    assert not m["complete"] and m["extra"]["opt_step"] == 2 and (out / "train_state.pt").exists()
    assert list(out.glob(".*.part"))  # the debris of the kill, removed by the resume
    p = _torchrun(args, _env(work["root"] / "cache"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert not list(out.glob(".*.part")) and not (out / "train_state.pt").exists()
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] and len(m["history"]) == 2
    resumed, whole, single = _weights(out), _weights(ddp_run), _weights(work["single"])
    d_whole, d_single = _max_diff(resumed, whole), _max_diff(resumed, single)
    print(f"\njoytag: killed at step 3 + resumed from step 2 vs uninterrupted torchrun: max |dW| = {d_whole:.3g}; "
          f"vs 1 process: {d_single:.3g}")
    assert not _close(resumed, whole, rtol=0, atol=1e-7)
    assert not _close(resumed, single)


# ---------------------------------------------------------------------- Keras under tf.distribute

TF_SCRIPT = r"""
import contextlib, json
import numpy as np
import acg2vec_lab
from acg2vec_lab.train import distributed as D

strat = D.strategy("cpu:2")  # before TensorFlow initialises
import keras
from acg2vec_lab.models.deepdanbooru.train import build_tagger_model

rng = np.random.default_rng(0)
x = rng.random((8, 64, 64, 3)).astype("float32")
y = (rng.random((8, 8)) > 0.5).astype("float32")

def train(scope, opt, sync=True):
    keras.utils.set_random_seed(0)
    with scope:
        m = build_tagger_model("tiny", 8)
        for layer in m._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = sync
        m.compile(optimizer=opt(), loss=keras.losses.BinaryCrossentropy(), jit_compile=False)
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)  # 2 steps of global batch 4
    assert int(m.optimizer.iterations.numpy()) == 2
    return m.get_weights()

def diff(a, b):
    return max(float(np.abs(p.astype(np.float64) - q).max()) for p, q in zip(a, b))

one = contextlib.nullcontext
sgd = lambda: keras.optimizers.SGD(0.01)  # noqa: E731
w1 = train(one(), sgd)
w2 = train(strat.scope(), sgd)
res = {"replicas": strat.num_replicas_in_sync, "sgd": diff(w1, w2),
       "sgd_close": all(np.allclose(p, q, rtol=1e-4, atol=2e-5) for p, q in zip(w1, w2)),
       "sgd_unsynced": diff(w1, train(strat.scope(), sgd, sync=False))}

# end to end: train_tagger itself (its data pipeline, epochs, checkpoints) on one device and under the strategy
import dataclasses, sys, tempfile
from pathlib import Path
from acg2vec_lab.config import load_config
from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.models.deepdanbooru.train import train_tagger
cfg = dataclasses.replace(load_config("deepdanbooru_train", "smoke"), epochs=2, steps_per_epoch=2, max_train=32,
                          max_eval=16, batch_size=8, workers=1, seed=0, optimizer="sgd", bn_check=False)
tmp, data = Path(tempfile.mkdtemp()), synthetic_dataset("smoke")
a = train_tagger(cfg=cfg, dataset=data, checkpoint=tmp / "one").model.get_weights()
b = train_tagger(cfg=cfg, dataset=data, checkpoint=tmp / "two", strategy=strat).model.get_weights()
res["train_tagger_sgd"] = diff(a, b)
res["train_tagger_close"] = all(np.allclose(p, q, rtol=1e-4, atol=2e-5) for p, q in zip(a, b))
print("RESULT " + json.dumps(res))
"""


def test_mirrored_two_logical_cpus_equal_one_device(tmp_path):
    """The DeepDanbooru (tiny) tagger built and compiled under MirroredStrategy over 2 logical CPUs,
    the same 2 global batches of 4: the weights of one device within float tolerance; and ``train_tagger``
    end to end under the strategy ends with the single-device weights. (Adam, measured with the same
    script: 8.9e-5 at the model level, 1.5e-3 end to end after 4 steps, where near-zero gradients' rounding
    is divided by sqrt(v); not asserted.)"""
    p = subprocess.run([PY, "-c", TF_SCRIPT], cwd=ROOT, env=_env(tmp_path / "cache"), capture_output=True,
                       text=True, timeout=400)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-4000:]
    res = json.loads(next(line for line in p.stdout.splitlines() if line.startswith("RESULT "))[7:])
    print(f"\ndeepdanbooru tiny, MirroredStrategy 2 logical CPUs vs 1 device, 2 steps: max |dW| SGD "
          f"{res['sgd']:.3g} (synchronised BN), {res['sgd_unsynced']:.3g} (per-replica BN); train_tagger end to end "
          f"(smoke, 2 epochs x 2 steps, SGD) {res['train_tagger_sgd']:.3g}")
    assert res["replicas"] == 2
    assert res["sgd_close"], res
    assert res["sgd_unsynced"] > 100 * max(res["sgd"], 1e-7), res
    # was 0.06 apart until train_tagger stopped letting Keras shuffle the batch order (fit(shuffle=False))
    assert res["train_tagger_close"], res
