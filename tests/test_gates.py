"""The gate arithmetic and the data-source labels: a gate fails below its margin, names what failed,
and records before raising; record() rows and saved figures carry their data source."""
from __future__ import annotations

import importlib
import json

import matplotlib
import pytest

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402

from acg2vec_lab import gates  # noqa: E402

R = importlib.import_module("acg2vec_lab.record")  # the module (the package exports the function)


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ACG2VEC_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("ACG2VEC_NOTEBOOK", "99_test")
    R.set_data_source(None)
    yield tmp_path
    R.set_data_source(None)


def test_gate_passes_and_fails_on_the_margin(run):
    ok = gates.Gate("m/f1_vs_prior", value=0.60, baseline=0.40, margin=0.10)
    assert ok.passed and ok.improvement == pytest.approx(0.20)
    assert not gates.Gate("m/f1_vs_prior", value=0.45, baseline=0.40, margin=0.10).passed
    assert gates.Gate("m/loss", value=0.2, baseline=0.5, margin=0.1, higher_is_better=False).passed
    assert not gates.Gate("m/nan", value=float("nan"), baseline=0.1, margin=0.0).passed


def test_check_all_records_every_gate_then_names_the_failures(run):
    good = gates.Gate("a/good", 0.9, 0.5, 0.1)
    bad = gates.Gate("b/bad", 0.5, 0.5, 0.1, why="3 seeds", data="real")
    with pytest.raises(gates.QualityGateError, match="b/bad") as err:
        gates.check_all([good, bad])
    assert "a/good" not in str(err.value)
    rows = R.read_records(run, "99_test")
    assert {r["name"] for r in rows} == {"gate/a/good", "gate/b/bad"}
    assert [r["meta"]["passed"] for r in rows] == [True, False]
    assert [r["data"] for r in rows] == [None, "real"]
    with pytest.raises(ValueError):
        gates.check_all([])


def test_margin_from_spread():
    assert gates.margin_from_spread([0.30, 0.32, 0.28], k=3) == pytest.approx(0.30 - 3 * 0.02)
    assert gates.margin_from_spread([0.01, 0.2, 0.4], floor=0.02) == 0.02


def test_record_carries_the_data_source(run):
    R.set_data_source("synthetic")
    R.record("toy/x", 1.0)
    R.record("toy/y", 2.0, data="real")
    rows = R.read_records(run, "99_test")
    assert [r["data"] for r in rows] == ["synthetic", "real"]
    with pytest.raises(ValueError):
        R.record("toy/z", 1.0, data="made-up")


def test_saved_synthetic_figures_say_so(run):
    R.set_data_source("synthetic")
    fig, ax = plt.subplots()
    ax.set_title("loss")
    R.save_fig(fig, "a")
    assert "SYNTHETIC" in fig._suptitle.get_text()
    fig2, ax2 = plt.subplots()
    ax2.set_title("already SYNTHETIC")
    R.save_fig(fig2, "b")
    assert fig2._suptitle is None  # not stamped twice
    fig3, _ = plt.subplots()
    R.save_fig(fig3, "c", data="real")
    assert fig3._suptitle is None
    assert (run / "figures" / "99_test" / "a.png").exists()


def test_metrics_csv_has_a_data_column(run):
    from acg2vec_lab.runner import gather_metrics

    R.record("toy/x", 1.0, data="synthetic")
    gather_metrics(run)
    header = (run / "metrics.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == ["notebook", "metric", "value", "data", "meta"]
    assert json.loads((run / "metrics.json").read_text())[0]["data"] == "synthetic"
