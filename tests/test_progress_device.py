"""Progress on long loops with one switch to silence it; the device said out loud, a missing GPU an error.

This machine has no GPU, so the GPU branch is tested from the other side: asking for ``cuda`` must
fail with a message that names the framework and the fix, for torch and for TensorFlow, through the
command line as a user would meet it, while ``--device cpu`` runs and reports the CPU.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from acg2vec_lab import device, progress

ENV = {k: v for k, v in os.environ.items() if k not in (device.ENV, progress.ENV)}


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acg2vec_lab.cli", *argv], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_device_spellings(monkeypatch):
    monkeypatch.delenv(device.ENV, raising=False)
    assert device.normalise(None) == "auto"
    assert device.normalise("GPU") == "cuda" and device.normalise("gpu:1") == "cuda:1"
    assert device.normalise("cuda:0") == "cuda:0" and device.normalise(" cpu ") == "cpu"
    monkeypatch.setenv(device.ENV, "cpu")
    assert device.normalise(None) == "cpu"
    for bad in ("tpu", "cpu:1", "cuda:x", "mps"):
        with pytest.raises(device.DeviceError, match="unknown device"):
            device.normalise(bad)


def test_cpu_and_auto_resolve_to_the_cpu_here():
    import torch

    assert device.torch_device("cpu") == "cpu"
    assert device.tf_device("cpu") == "/CPU:0"
    if not torch.cuda.is_available():  # this machine: auto finds no GPU and says cpu
        assert device.torch_device("auto") == "cpu"


def test_asking_for_a_gpu_that_is_not_there_is_an_error():
    import tensorflow as tf
    import torch

    if torch.cuda.is_available() or tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present: the error path cannot be reached on this machine")
    with pytest.raises(device.DeviceError, match=r"no GPU for torch: .*use --device cpu"):
        device.torch_device("cuda")
    with pytest.raises(device.DeviceError, match=r"no GPU for TensorFlow: .*use --device cpu"):
        device.tf_device("cuda:0")


def test_cli_refuses_a_missing_gpu_and_reports_the_cpu(images):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    files = [str(p) for p in sorted(images.glob("*.png"))]
    bad = _cli("embed-image", "--model", "efficientnet_lite0", "--device", "cuda", *files)
    assert bad.returncode == 2, bad.stderr
    assert "error: --device cuda: no GPU for torch" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stdout == ""  # nothing was computed and printed as if on a GPU
    ok = _cli("embed-image", "--model", "efficientnet_lite0", "--device", "cpu", "--no-progress", *files)
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["device"]["device"] == "cpu" and out["device"]["framework"] == "torch"
    assert out["device"]["precision"] == "float32" and len(out["vectors"]) == 3
    assert "embed-image efficientnet_lite0: device cpu (torch, float32" in ok.stderr
    # every model command reports its end-to-end time (process start included) and peak RSS
    assert 0 < out["run"]["seconds"] < 300 and out["run"]["peak_rss_mb"] > 100  # torch alone is more


def test_unknown_device_is_a_usage_error():
    res = _cli("embed-text", "--model", "chance_text", "--device", "tpu", "a")
    assert res.returncode == 2 and "unknown device 'tpu'" in res.stderr


def test_bar_is_off_with_the_switch_and_the_environment(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    progress.set_enabled(None)
    buf = io.StringIO()
    list(progress.bar(range(5), desc="counting", file=buf, mininterval=0))
    assert "counting" in buf.getvalue() and "5/5" in buf.getvalue()
    for off in (lambda: progress.set_enabled(False), lambda: monkeypatch.setenv(progress.ENV, "0")):
        off()
        buf = io.StringIO()
        assert list(progress.bar(range(5), desc="counting", file=buf)) == list(range(5))  # still iterates
        assert buf.getvalue() == ""
        progress.set_enabled(None)


def test_tagging_shows_a_bar_unless_told_not_to(capsys):
    from acg2vec_lab.tagging.pipeline import tag_images

    class Tiny:
        name, tags, categories, input_size = "tiny", ["a", "b"], [0, 0], (4, 4)

        def preprocess(self, image):
            return np.zeros((4, 4, 3), np.float32)

        def predict(self, batch):
            return np.full((len(batch), 2), 0.9, np.float32)

    paths = [f"img{i}.png" for i in range(6)]
    progress.set_enabled(None)
    tag_images(Tiny(), paths, loader=lambda p: None, batch_size=2, progress=True)
    assert "tag tiny" in capsys.readouterr().err
    tag_images(Tiny(), paths, loader=lambda p: None, batch_size=2, progress=False)
    assert "tag tiny" not in capsys.readouterr().err


def test_runner_bar_follows_papermills_cell_log(tmp_path):
    from acg2vec_lab.runner import _follow_cells

    log = tmp_path / "nb.log"
    log.write_text("Executing notebook with kernel: x\nExecuting Cell 1------\nExecuting Cell 2---\nExecuting Ce")
    buf = io.StringIO()
    bar = progress.bar(total=5, desc="00_nb", unit="cell", file=buf, mininterval=0)
    pos = _follow_cells(log, 0, bar)
    assert bar.n == 2 and "cell 2" in buf.getvalue()
    with open(log, "a") as f:
        f.write("ll 3---\nEnding Cell 3\n")
    _follow_cells(log, pos, bar)  # the torn line is read whole the next time
    assert bar.n == 3


def test_no_hand_written_progress_bar_remains():
    import acg2vec_lab.tagging.pipeline as pipeline

    assert not hasattr(pipeline, "Progress")
    src = open(pipeline.__file__, encoding="utf-8").read()
    assert "\\r[" not in src
