"""Configs and profiles, the record helper, the runner's error reporting, and the CLI surface."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from acg2vec_lab import config as cfgmod
from acg2vec_lab import runner
from acg2vec_lab.config import ConfigError
from acg2vec_lab.dev.notebooks import build_notebook, check_clean
from acg2vec_lab.record import read_records


@dataclasses.dataclass
class _Inner:
    width: int = 4


@dataclasses.dataclass
class _Schema:
    name: str
    depth: int = 2
    sizes: tuple = (1, 2)
    inner: _Inner = dataclasses.field(default_factory=_Inner)


@pytest.fixture()
def configs(tmp_path, monkeypatch):
    monkeypatch.setattr(cfgmod, "CONFIGS_DIR", tmp_path)
    (tmp_path / "toy").mkdir()
    schema = f"{__name__}:_Schema"
    for variant, depth in (("tiny", 1), ("small", 3), ("full", 50)):
        (tmp_path / "toy" / f"{variant}.json").write_text(json.dumps(
            {"schema": schema, "comment": "a toy", "name": variant, "depth": depth, "sizes": [3, 4], "inner": {"width": depth}}))
    return tmp_path


def test_profile_picks_variant_in_one_place(configs):
    assert cfgmod.load_config("toy", "smoke").depth == 1
    assert cfgmod.load_config("toy", "cpu").depth == 3
    full = cfgmod.load_config("toy", "full")
    assert full.depth == 50 and full.inner == _Inner(50) and full.sizes == (3, 4)


def test_unknown_key_is_rejected_with_file_name(configs):
    path = configs / "toy" / "tiny.json"
    raw = json.loads(path.read_text())
    raw["dpeth"] = 3
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"tiny\.json.*unknown key.*dpeth"):
        cfgmod.load_config("toy", "smoke")


def test_nested_unknown_key_and_missing_schema(configs):
    path = configs / "toy" / "small.json"
    raw = json.loads(path.read_text())
    raw["inner"] = {"widht": 3}
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"inner.*widht"):
        cfgmod.load_config("toy", "cpu")
    raw.pop("schema")
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="schema"):
        cfgmod.load_config("toy", "cpu")


def test_overrides_and_unknown_profile(configs):
    assert cfgmod.load_config("toy", "smoke", depth=9).depth == 9
    with pytest.raises(ConfigError, match="unknown profile 'gpu'"):
        cfgmod.load_config("toy", "gpu")
    with pytest.raises(ConfigError, match="no config"):
        cfgmod.load_config("nope", "smoke")


def test_every_shipped_config_loads_in_every_profile():
    for model in cfgmod.models_with_configs():
        for profile in cfgmod.PROFILES:
            cfg = cfgmod.load_config(model, profile)
            assert dataclasses.is_dataclass(cfg), (model, profile)


def test_record_writes_jsonl(tmp_path, monkeypatch):
    from acg2vec_lab import record

    monkeypatch.setenv("ACG2VEC_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("ACG2VEC_NOTEBOOK", "99_toy")
    import numpy as np

    record("toy/acc", np.float32(0.5), split="test")
    record("toy/name", "tiny")
    rows = read_records(tmp_path, "99_toy")
    assert [(r["name"], r["value"]) for r in rows] == [("toy/acc", 0.5), ("toy/name", "tiny")]
    assert rows[0]["meta"] == {"split": "test"}
    with pytest.raises(TypeError):
        record("toy/bad", [1, 2])


def _toy_notebooks(folder):
    folder.mkdir(parents=True, exist_ok=True)
    build_notebook([("params", "PROFILE = 'cpu'  # profile"), ("code", "from acg2vec_lab import record\nrecord('toy/x', 1.5)")],
                   folder / "01_good.ipynb")
    build_notebook([("params", "PROFILE = 'cpu'  # profile"), ("code", "a = 1"), ("code", "b = 1 / 0")],
                   folder / "02_bad.ipynb")
    return folder


def test_select_notebooks_rejects_unknown_number(tmp_path):
    folder = _toy_notebooks(tmp_path)
    assert [p.stem for p in runner.select_notebooks(["2"], folder)] == ["02_bad"]
    with pytest.raises(ConfigError, match="no notebook '7'.*01_good, 02_bad"):
        runner.select_notebooks(["7"], folder)


def test_built_notebooks_are_clean(tmp_path):
    folder = _toy_notebooks(tmp_path)
    assert check_clean(folder / "01_good.ipynb") == []


def test_runner_reports_failing_cell_and_keeps_going(tmp_path):
    folder = _toy_notebooks(tmp_path / "nb")
    run = tmp_path / "run"
    good = runner.run_notebook(folder / "01_good.ipynb", "smoke", run, timeout=300)
    bad = runner.run_notebook(folder / "02_bad.ipynb", "smoke", run, timeout=300)
    assert good.status == "ok", good
    assert [(r["name"], r["value"]) for r in read_records(run, "01_good")] == [("toy/x", 1.5)]
    assert bad.status == "failed"
    assert "ZeroDivisionError" in bad.error
    # the index is the source notebook's (cells papermill adds are not counted)
    assert bad.error_cell == 2 and "1 / 0" in bad.error_source


def test_runner_timeout(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    build_notebook([("params", "PROFILE = 'cpu'"), ("code", "import time\ntime.sleep(60)")], folder / "01_slow.ipynb")
    res = runner.run_notebook(folder / "01_slow.ipynb", "smoke", tmp_path / "run", timeout=15)
    assert res.status == "timeout" and "timed out" in res.error


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "acg2vec_lab.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_help_lists_commands():
    out = _cli("--help")
    assert out.returncode == 0 and "run" in out.stdout


def test_cli_bad_usage_is_a_clear_message():
    out = _cli("run", "--profile", "gpu", "--no-html")
    assert out.returncode == 2 and "unknown profile 'gpu'" in out.stderr
    out = _cli("run", "--only", "97", "--no-html")
    assert out.returncode == 2 and "no notebook '97'" in out.stderr


def test_missing_kernel_is_reported(monkeypatch):
    with pytest.raises(ConfigError, match="kernel 'no-such-kernel' is not installed.*make setup"):
        runner.check_kernel("no-such-kernel")
