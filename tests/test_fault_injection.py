"""Kill -9 anywhere, lose nothing: commands SIGKILLed at seeded points, rerun, and checked.

The harness is :mod:`acg2vec_lab.dev.fault` (also run by ``benchmarks/fault_injection.py``): each
command runs as a subprocess with ``ACG2VEC_FAULT_AFTER=<n>``, which makes it SIGKILL itself at its
n-th atomic commit (the part file written, not yet renamed) or appended csv line; it is rerun with
another kill point, then run to the end. After every rerun: each input has exactly one valid output,
nothing is duplicated, the outputs from before the kill were not rewritten (and the rerun says it
skipped / resumed exactly them), and no ``.part`` / ``.resume`` debris is left. The figures of every
command are printed at the end of the session (terminal summary).

The unit tests at the top check the pieces (the hook, stale-part removal, the csv repair, the
embedding checkpoint) in-process; the command scenarios take about two minutes on 2 CPU cores and
the two training scenarios (one Keras, one torch model) are marked ``slow``.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from acg2vec_lab.dev import fault as F
from acg2vec_lab.io import FAULT_ENV, atomic_path, fault_point, remove_stale_parts, write_text

_FIGURES: list[F.Figures] = []


@pytest.fixture(scope="module", autouse=True)
def _print_figures(request):
    yield
    if not _FIGURES:
        return
    text = F.table(_FIGURES)
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_sep("-", "fault injection (trials x kill points per command)")
        tr.write_line(text)
    else:  # pragma: no cover
        print(text, file=sys.stderr)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = tmp_path_factory.mktemp("fault")
    F.write_tiny_tagger(w / "cache")
    return w


@pytest.fixture(scope="module")
def images(work):
    return F.make_images(work / "images", 10)


def _assert_clean(fig: F.Figures, min_kills: int = 1) -> None:
    _FIGURES.append(fig)
    assert fig.kills >= min_kills, f"{fig.command}: no run was killed ({fig.runs} runs): the kill points missed"
    assert fig.ok, (f"{fig.command}: lost {fig.lost}, duplicated {fig.duplicated}, debris {fig.debris}, "
                    f"redone {fig.redone}; problems: {fig.problems}")


# ----------------------------------------------------------------------------- the pieces

def test_fault_point_is_a_noop_when_unset(monkeypatch, tmp_path):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    for _ in range(5):
        fault_point("nothing")
    write_text(tmp_path / "a.txt", "a\n")
    assert (tmp_path / "a.txt").read_text() == "a\n" and not list(tmp_path.glob(".*"))


def test_fault_point_kills_at_the_nth_commit_and_the_next_run_removes_the_part(tmp_path):
    code = ("import sys\nfrom pathlib import Path\nfrom acg2vec_lab.io import write_text\n"
            "for i in range(5):\n    write_text(Path(sys.argv[1]) / f'{i}.txt', f'{i}\\n')\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=dict(os.environ, **{FAULT_ENV: "3"}),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == -9 and "fault injection: SIGKILL at point 3" in res.stderr
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == ["0.txt", "1.txt"]  # the 3rd was not renamed
    (part,) = tmp_path.glob(".2.txt.*.part")
    assert part.read_text() == "2\n"
    assert remove_stale_parts(tmp_path) == [part] and not part.exists()


def test_remove_stale_parts_spares_live_writers_and_other_names(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".a.txt.{dead_pid}-x1y2z3.part"
    live = tmp_path / f".b.txt.{os.getpid()}-x1y2z3.part"
    other = tmp_path / f".c.json.{dead_pid}-x1y2z3.part"
    old_style = tmp_path / ".d.txt.abc123.part"  # no pid: stale only once old
    for p in (stale, live, other, old_style):
        p.write_text("x")
    assert remove_stale_parts(tmp_path, lambda n: n.endswith(".txt")) == [stale]
    assert live.exists() and other.exists() and old_style.exists()
    assert remove_stale_parts(tmp_path, {"d.txt"}, min_age_s=0) == [old_style]
    with atomic_path(tmp_path / "e.txt") as tmp:  # our own live part is never removed under us
        tmp.write_text("e")
        assert remove_stale_parts(tmp_path, {"e.txt"}, min_age_s=0) == []
    assert (tmp_path / "e.txt").read_text() == "e"


def test_csv_appender_cuts_a_torn_line_and_drops_duplicates(tmp_path):
    from acg2vec_lab.tagging.format import Writer
    from acg2vec_lab.tagging.thresholds import TaggedTag

    path = tmp_path / "tags.csv"
    path.write_text('file,tags,rating\na.png,"x, y",rating:general\na.png,"x, y",rating:general\n'
                    'b.png,"x",rating:gen', encoding="utf-8")  # a duplicate row, then a line cut mid-way
    w = Writer("csv", output_dir=tmp_path)
    assert w.is_done("a.png") and not w.is_done("b.png")
    assert path.read_text() == 'file,tags,rating\na.png,"x, y",rating:general\n'
    w.write("b.png", [TaggedTag("x", 0.9, 0)])
    rows = F._csv_rows(path)
    assert set(rows[0]) == {"a.png", "b.png"} and rows[1:] == (0, 0)
    path.write_text("something,else\n")
    with pytest.raises(ValueError, match="tags.csv"):
        Writer("csv", output_dir=tmp_path)


def test_embed_checkpoint_resumes_its_own_batches_only(tmp_path):
    from acg2vec_lab.commands._resume import EmbedCheckpoint

    out = tmp_path / "v.npy"
    ck = EmbedCheckpoint(out, {"model": "m", "inputs": "abc"}).open()
    ck.add(["a", "b"], np.ones((2, 3)), [{"path": "c", "error": "bad"}], 3)
    again = EmbedCheckpoint(out, {"model": "m", "inputs": "abc"}).open()
    names, x, skipped = again.result(3)
    assert again.resumed == 3 and names == ["a", "b"] and x.shape == (2, 3) and skipped[0]["path"] == "c"
    other = EmbedCheckpoint(out, {"model": "other", "inputs": "abc"}).open()
    assert other.resumed == 0 and other.result(3)[1].shape == (0, 3)
    other.finish()
    assert not other.folder.exists()


# ----------------------------------------------------------------------------- the commands

@pytest.mark.parametrize("fmt", ["txt", "hydrus", "json", "csv"])
def test_tag_survives_kill_9(work, images, fmt):
    _assert_clean(F.run_trials(F.tag_scenario(work, fmt, images, work / "cache"), trials=1, kills_per_trial=2))


def test_embed_image_survives_kill_9(work, images):
    _assert_clean(F.run_trials(F.embed_scenario(work, images), trials=3, kills_per_trial=2), min_kills=3)


def test_search_build_survives_kill_9(work, images):
    _assert_clean(F.run_trials(F.search_scenario(work, images), trials=3, kills_per_trial=2), min_kills=3)


def test_upscale_survives_kill_9(work):
    from acg2vec_lab.models.real_cugan import weights

    weights.models_dir()  # the official weights are an asset: missing -> AssetError, not a skip
    small = F.make_images(work / "images-upscale", 4, size=12, seed=1)
    _assert_clean(F.run_trials(F.upscale_scenario(work, small), trials=2, kills_per_trial=2), min_kills=2)


# ----------------------------------------------------------------------------- training

@pytest.mark.slow
def test_keras_training_resumes_to_the_same_weights(work):
    """The tiny DeepDanbooru tagger (Keras, 3 epochs, a checkpoint per epoch) killed among its
    checkpoint writes: the rerun starts from the last complete epoch in ``train_state.json`` (not
    from scratch), finishes with a complete manifest, leaves no part files, and ends with the weights
    of an uninterrupted run of the same seed (rtol 1e-4, atol 1e-5).

    Until 2026-12-04 it did not: Keras shuffled the PyDataset's batch order from the global RNG
    (``fit(shuffle=True)``, the default) and counted its own ``on_epoch_end`` calls into the epoch
    seed, so a resumed epoch trained the same batches in another order (weights ~0.06-0.14 away).
    ``train_tagger`` now fits with ``shuffle=False`` on batches in a seeded order per epoch.
    """
    reference = F.train_reference(work, "keras")
    _assert_clean(F.run_trials(F.train_scenario(work, "keras", reference), trials=1,
                               kills_per_trial=1))  # one kill: the run is the slowest of the suite


@pytest.mark.slow
def test_torch_training_resumes_to_the_same_weights(work):
    """A tiny DCLIP (torch, 6 steps, a checkpoint every 2) killed among its checkpoint writes: the
    rerun resumes from ``last.pt``'s step and ends with the weights of an uninterrupted run of the same
    seed (rtol 1e-4, atol 1e-5), with a complete manifest and no part files."""
    reference = F.train_reference(work, "torch")
    _assert_clean(F.run_trials(F.train_scenario(work, "torch", reference), trials=1, kills_per_trial=2))
