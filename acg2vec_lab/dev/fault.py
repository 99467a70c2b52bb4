"""Fault injection: SIGKILL a long command at seeded points, rerun it, and check that nothing was lost.

Used by ``tests/test_fault_injection.py`` and ``benchmarks/fault_injection.py``. Every scenario runs
a real command as a subprocess with ``ACG2VEC_FAULT_AFTER=<n>`` (see :func:`acg2vec_lab.io.fault_point`:
the process kills itself at its n-th atomic commit, with the part file written but not renamed, or
before its n-th appended line), reruns it with another kill point, then runs it to the end, and
checks after every rerun and at the end:

* every input has exactly one valid output (json parses, csv rows complete, images decode, ``.npy``
  and index folders load and hold the right vectors): ``lost`` counts inputs without one;
* nothing is duplicated (csv rows, index entries): ``duplicated``;
* no temporary debris is left (``.*.part`` files or folders, ``.*.resume`` folders): ``debris``;
* work done before a kill is not redone: the outputs that existed before a rerun keep their
  modification time and the rerun says it skipped / resumed exactly them: ``redone``.

A trial is one sequence of kill points (seeded by the scenario name and trial number).
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io import FAULT_ENV

KILLED = -9


@dataclasses.dataclass
class Figures:
    """What the trials of one command found (one row of the printed table)."""

    command: str
    trials: int = 0
    kill_points: int = 0  # kill points asked for, per trial
    kills: int = 0  # runs that were really killed
    runs: int = 0
    checked: int = 0  # outputs checked, over all checks
    lost: int = 0
    duplicated: int = 0
    debris: int = 0
    redone: int = 0
    seconds: float = 0.0
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # findings that do not fail the scenario

    def add(self, check: dict[str, Any]) -> None:
        for k in ("checked", "lost", "duplicated", "debris", "redone"):
            setattr(self, k, getattr(self, k) + int(check.get(k, 0)))
        self.problems += check.get("problems", [])
        self.notes += check.get("notes", [])

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.debris or self.redone or self.problems)


def table(rows: Sequence[Figures]) -> str:
    """The figures as a fixed-width table."""
    head = f"{'command':<24} {'trials x kills':>14} {'killed':>6} {'runs':>4} {'checked':>7} {'lost':>4} " \
           f"{'dup':>4} {'debris':>6} {'redone':>6} {'s':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.command:<24} {f'{r.trials} x {r.kill_points}':>14} {r.kills:>6} {r.runs:>4} {r.checked:>7} "
                     f"{r.lost:>4} {r.duplicated:>4} {r.debris:>6} {r.redone:>6} {r.seconds:>6.1f}")
        lines += [f"    problem: {p}" for p in r.problems[:5]]
        lines += [f"    note: {p}" for p in r.notes[:5]]
    return "\n".join(lines)


def run_command(argv: Sequence[str], env: dict[str, str] | None = None, fault_after: int | None = None,
                timeout: float = 300, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """``python <argv...>`` with the fault hook armed at ``fault_after`` (None: not armed)."""
    e = dict(os.environ)
    e.update(env or {})
    e.pop(FAULT_ENV, None)
    if fault_after is not None:
        e[FAULT_ENV] = str(fault_after)
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    e.setdefault("ACG2VEC_PROFILE", "smoke")
    return subprocess.run([sys.executable, *argv], env=e, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def cli(*args: str) -> list[str]:
    return ["-m", "acg2vec_lab.cli", *args]


def last_json(stdout: str) -> dict[str, Any] | None:
    """The JSON object a command printed last (None when it printed none, e.g. it was killed)."""
    start = stdout.rfind("\n{")
    text = stdout[start + 1:] if start >= 0 else stdout
    try:
        return json.loads(text)
    except ValueError:
        return None


def debris(root: str | os.PathLike) -> list[Path]:
    """Temporary files or folders left under ``root`` (part files, resume folders, moved-aside indexes)."""
    root = Path(root)
    return sorted(p for p in root.rglob(".*") if p.name.endswith(".part") or p.name.endswith(".resume")
                  or ".old-" in p.name)


def mtimes(paths: Sequence[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths if p.exists()}


@dataclasses.dataclass
class Scenario:
    """A command to kill and rerun.

    ``argv``: the subprocess arguments; ``points``: how many kill points one full run has (the
    chosen points are drawn from ``1..points``); ``check(result, before, final)``: checks the
    outputs after a run (``before``: the state :attr:`snapshot` took before that run) and returns a
    dict of counts; ``snapshot()``: what exists before a run (for the not-redone check).
    """

    name: str
    argv: list[str]
    points: int
    check: Callable[[subprocess.CompletedProcess, Any, bool], dict[str, Any]]
    snapshot: Callable[[], Any]
    root: Path
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    timeout: float = 300
    cleanup: Callable[[], None] | None = None
    done: Callable[[Any], int] | None = None  # kill points already behind a snapshot (later kills fall after them)


def run_trials(sc: Scenario, trials: int = 2, kills_per_trial: int = 2, seed: int = 0) -> Figures:
    """``trials`` x (``kills_per_trial`` killed runs + a run to the end) of ``sc``, checked after each rerun."""
    fig = Figures(sc.name, trials=trials, kill_points=kills_per_trial)
    t0 = time.perf_counter()
    for trial in range(trials):
        if sc.cleanup is not None:
            sc.cleanup()
        rng = random.Random(f"{seed}:{sc.name}:{trial}")
        for i in range(kills_per_trial + 1):
            before = sc.snapshot()
            left = sc.points - (sc.done(before) if sc.done is not None else 0)
            point = rng.randint(1, max(left, 1)) if i < kills_per_trial else None
            res = run_command(sc.argv, sc.env, point, sc.timeout)
            fig.runs += 1
            killed = res.returncode == KILLED
            fig.kills += killed
            if not killed and res.returncode not in (0, 1):
                errors = [line for line in res.stderr.splitlines() if "error" in line.lower() or "Error" in line]
                fig.problems.append(f"trial {trial} run {i}: exit {res.returncode}: {' | '.join(errors[-3:])[:800]}")
                break
            if i > 0 or not killed:  # a rerun (or a first run that finished): check what it kept and did
                fig.add(sc.check(res, before, not killed))
            if not killed:
                break
        leftover = debris(sc.root)
        fig.debris += len(leftover)
        fig.problems += [f"debris after the last run: {p}" for p in leftover[:3]]
    fig.seconds = time.perf_counter() - t0
    return fig


# ---------------------------------------------------------------------------- inputs

def make_images(folder: str | os.PathLike, n: int, size: int = 16, seed: int = 0, bad: int = 0) -> list[Path]:
    """``n`` small random PNGs (and ``bad`` unreadable ones) in ``folder``; returns the good ones, sorted."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = folder / f"img_{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(p)
        out.append(p)
    for i in range(bad):
        (folder / f"zz_bad_{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    return sorted(out)


def write_tiny_tagger(cache: str | os.PathLike) -> None:
    """A tiny DeepDanbooru checkpoint (random weights) where the smoke profile's ``tag`` looks for one."""
    old = os.environ.get("ACG2VEC_CACHE")
    os.environ["ACG2VEC_CACHE"] = str(cache)
    try:
        code = ("import acg2vec_lab\n"
                "from acg2vec_lab.models.deepdanbooru.train import build_tagger_model\n"
                "from acg2vec_lab.paths import checkpoint_dir\n"
                "from acg2vec_lab.tagging.categories import save_tags_json\n"
                "ckpt = checkpoint_dir('deepdanbooru', 'tiny')\n"
                "tags = [f'tag_{i}' for i in range(6)] + ['rating:general', 'rating:sensitive']\n"
                "build_tagger_model('tiny', len(tags)).save_weights(ckpt / 'model.weights.h5')\n"
                "save_tags_json(ckpt / 'tags.json', tags, [0] * 6 + [9, 9])\n"
                # the loader builds the variant the folder's state names (else the default profile's)
                "(ckpt / 'train_state.json').write_text('{\"model_variant\": \"tiny\"}')\n")
        res = run_command(["-c", code], {"ACG2VEC_CACHE": str(cache)})
        if res.returncode != 0:
            raise RuntimeError(f"could not write the tiny tagger checkpoint under {cache}: {res.stderr[-2000:]}")
    finally:
        if old is None:
            os.environ.pop("ACG2VEC_CACHE", None)
        else:
            os.environ["ACG2VEC_CACHE"] = old


# ---------------------------------------------------------------------------- scenarios

def _sidecar(out_dir: Path, image: Path, fmt: str) -> Path:
    return out_dir / {"txt": f"{image.stem}.txt", "hydrus": f"{image.name}.txt", "json": f"{image.name}.json"}[fmt]


def tag_scenario(work: Path, fmt: str, images: Sequence[Path], cache: Path, bad: Sequence[Path] = ()) -> Scenario:
    """``acg2vec-lab tag`` in format ``fmt`` into ``work/out-<fmt>`` (one kill point per image)."""
    out_dir = work / f"out-{fmt}"
    src = images[0].parent
    argv = cli("tag", str(src), "--profile", "smoke", "--format", fmt, "--output-dir", str(out_dir),
               "--batch-size", "2", "--workers", "1", "--no-progress", "--general-threshold", "0.0", "--max-tags", "3")
    csv_path = out_dir / "tags.csv"

    def snapshot():
        if fmt == "csv":
            return _csv_rows(csv_path)[0] if csv_path.exists() else {}
        return mtimes([_sidecar(out_dir, p, fmt) for p in images])

    def check(res, before, final):
        c: dict[str, Any] = {"problems": []}
        summary = last_json(res.stdout) if res.returncode != KILLED else None
        if fmt == "csv":
            rows, dup, bad_rows = _csv_rows(csv_path) if csv_path.exists() else ({}, 0, 0)
            c["duplicated"] = dup
            c["checked"] = len(rows)
            if bad_rows:
                c["problems"].append(f"{bad_rows} incomplete rows in {csv_path}")
            if final:
                c["lost"] = sum(str(p) not in rows for p in images)
            c["redone"] = sum(rows.get(k) != v for k, v in before.items())  # a kept row changed or vanished
            done_before = len(before)
        else:
            now = {}
            for p in images:
                out = _sidecar(out_dir, p, fmt)
                if out.exists():
                    problem = _check_sidecar(out, p, fmt)
                    if problem:
                        c["problems"].append(problem)
                    now[out] = out.stat().st_mtime_ns
            c["checked"] = len(now)
            if final:
                c["lost"] = len(images) - len(now)
            c["redone"] = sum(now.get(k) != v for k, v in before.items())
            done_before = len(before)
        if summary is not None and final:
            if summary.get("skipped_done") != done_before:
                c["problems"].append(f"tag {fmt}: the rerun skipped {summary.get('skipped_done')} images, "
                                     f"{done_before} were done before it")
                c["redone"] = c.get("redone", 0) + max(done_before - int(summary.get("skipped_done") or 0), 0)
            if summary.get("tagged", 0) + summary.get("skipped_done", 0) != len(images):
                c["problems"].append(f"tag {fmt}: tagged {summary.get('tagged')} + skipped "
                                     f"{summary.get('skipped_done')} != {len(images)} images")
        for b in bad:
            if fmt != "csv" and _sidecar(out_dir, b, fmt).exists():
                c["problems"].append(f"an output was written for the unreadable {b}")
        return c

    def cleanup():
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)

    def done(before):
        return len(before) + (1 if fmt == "csv" and csv_path.exists() else 0)

    return Scenario(f"tag --format {fmt}", argv, len(images) + (1 if fmt == "csv" else 0), check, snapshot, out_dir,
                    env={"ACG2VEC_CACHE": str(cache)}, cleanup=cleanup, done=done)


def _csv_rows(path: Path) -> tuple[dict[str, tuple[str, ...]], int, int]:
    """``{file: row}`` of a tags.csv, the number of duplicate files and of incomplete rows."""
    import csv

    text = path.read_text(encoding="utf-8")
    rows: dict[str, tuple[str, ...]] = {}
    dup = bad = 0
    if text and not text.endswith("\n"):
        bad += 1
    for i, row in enumerate(csv.reader(text.splitlines())):
        if i == 0:
            if row != ["file", "tags", "rating"]:
                bad += 1
            continue
        if len(row) != 3 or not row[0]:
            bad += 1
        elif row[0] in rows:
            dup += 1
        else:
            rows[row[0]] = tuple(row)
    return rows, dup, bad


def _check_sidecar(out: Path, image: Path, fmt: str) -> str | None:
    try:
        text = out.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"{out}: unreadable ({exc})"
    if not text.endswith("\n"):
        return f"{out}: truncated (no final newline)"
    if fmt == "json":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return f"{out}: not JSON ({exc})"
        if obj.get("file") != str(image) or not isinstance(obj.get("tags"), list):
            return f"{out}: JSON of another image or without tags"
    return None


def embed_scenario(work: Path, images: Sequence[Path], batch: int = 4) -> Scenario:
    """``acg2vec-lab embed-image --model chance --out`` (a kill point per batch and one for the .npy)."""
    from acg2vec_lab.data.images import load_image
    from acg2vec_lab.embedders.chance import random_vectors

    out = work / "embed" / "vecs.npy"
    resume = out.parent / f".{out.name}.resume"
    want = random_vectors([load_image(p) for p in images])
    argv = cli("embed-image", "--model", "chance", "--profile", "smoke", "--batch", str(batch), "--out", str(out),
               *map(str, images))

    def snapshot():
        return len(list(resume.glob("batch-*.npz"))) if resume.is_dir() else 0

    def check(res, before, final):
        c: dict[str, Any] = {"problems": [], "notes": [], "checked": 0}
        if not final:
            return c
        summary = last_json(res.stdout) or {}
        x = np.load(out, allow_pickle=False)
        c["checked"] = len(x)
        c["lost"] = max(len(images) - len(x), 0)
        c["duplicated"] = max(len(x) - len(images), 0)
        if x.shape == want.shape and not np.allclose(x, want, atol=1e-6):
            c["problems"].append(f"{out}: vectors differ from an uninterrupted run")
        expect = min(before * batch, len(images))
        if summary.get("resumed") != expect:
            c["redone"] = abs(expect - int(summary.get("resumed") or 0))
            c["problems"].append(f"embed-image resumed {summary.get('resumed')} vectors, {expect} were kept")
        return c

    def cleanup():
        import shutil

        shutil.rmtree(out.parent, ignore_errors=True)

    n_batches = -(-len(images) // batch)
    return Scenario("embed-image --out", argv, n_batches + 1, check, snapshot, out.parent, cleanup=cleanup, done=int)


def search_scenario(work: Path, images: Sequence[Path], batch: int = 4, bad: int = 0) -> Scenario:
    """``acg2vec-lab search build --images --model chance`` (a kill point per batch and one at the save)."""
    from acg2vec_lab.data.images import load_image
    from acg2vec_lab.embedders.chance import random_vectors

    base = work / "search"
    out = base / "ix"
    resume = base / f".{out.name}.resume"
    src = images[0].parent
    want = dict(zip(map(str, images), random_vectors([load_image(p) for p in images])))
    argv = cli("search", "build", "--images", str(src), "--model", "chance", "--profile", "smoke", "--kind", "flat",
               "--batch", str(batch), "--out", str(out))

    def snapshot():
        return len(list(resume.glob("batch-*.npz"))) if resume.is_dir() else 0

    def check(res, before, final):
        c: dict[str, Any] = {"problems": [], "checked": 0}
        if not final:
            return c
        from acg2vec_lab.retrieval.index import VectorIndex

        summary = last_json(res.stdout) or {}
        ix = VectorIndex.load(out)
        paths = list(ix.metadata["path"])
        c["checked"] = len(paths)
        c["lost"] = len(set(want) - set(paths))
        c["duplicated"] = len(paths) - len(set(paths))
        got = ix.reconstruct(ix._ids) if len(paths) else np.zeros((0, 1))
        for p, v in zip(paths, got):
            if p in want and not np.allclose(v, want[p], atol=1e-5):
                c["problems"].append(f"index vector of {p} differs from an uninterrupted run")
                break
        expect = min(before * batch, len(images) + bad)
        if summary.get("resumed") != expect:
            c["redone"] = abs(expect - int(summary.get("resumed") or 0))
            c["problems"].append(f"search build resumed {summary.get('resumed')} inputs, {expect} were kept")
        return c

    def cleanup():
        import shutil

        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)

    n_batches = -(-(len(images) + bad) // batch)
    return Scenario("search build --images", argv, n_batches + 1, check, snapshot, base, cleanup=cleanup, done=int)


def upscale_scenario(work: Path, images: Sequence[Path]) -> Scenario:
    """``acg2vec-lab upscale FOLDER OUT`` 2x (a kill point per image); ``images`` are all of their folder."""
    from PIL import Image

    out = work / "upscaled"
    src = images[0].parent
    argv = cli("upscale", str(src), str(out), "--scale", "2")
    sizes = {p.stem: Image.open(p).size for p in images}

    def snapshot():
        return mtimes([out / f"{p.stem}.png" for p in images])

    def check(res, before, final):
        c: dict[str, Any] = {"problems": []}
        now = {}
        for p in images:
            o = out / f"{p.stem}.png"
            if not o.exists():
                continue
            try:
                with Image.open(o) as im:
                    im.load()
                    w, h = sizes[p.stem]
                    if im.size != (2 * w, 2 * h):
                        c["problems"].append(f"{o}: size {im.size}, expected {(2 * w, 2 * h)}")
            except Exception as exc:  # noqa: BLE001 - any decode failure is a finding
                c["problems"].append(f"{o}: does not decode ({exc})")
            now[o] = o.stat().st_mtime_ns
        c["checked"] = len(now)
        if final:
            c["lost"] = len(images) - len(now)
            summary = last_json(res.stdout) or {}
            if len(summary.get("skipped_existing", [])) != len(before):
                c["problems"].append(f"upscale skipped {len(summary.get('skipped_existing', []))} files, "
                                     f"{len(before)} existed")
        c["redone"] = sum(now.get(k) != v for k, v in before.items())
        return c

    def cleanup():
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

    return Scenario("upscale FOLDER", argv, len(images), check, snapshot, out, cleanup=cleanup, done=len)


# ---------------------------------------------------------------------------- training

TRAIN_KERAS = """
import json, sys, dataclasses
import acg2vec_lab
from acg2vec_lab.config import load_config
from acg2vec_lab.data import synthetic_dataset
from acg2vec_lab.models.deepdanbooru.train import train_tagger
cfg = dataclasses.replace(load_config("deepdanbooru_train", "smoke"), epochs=3, steps_per_epoch=2, max_train=32,
                          max_eval=16, batch_size=8, workers=1, seed=0)
r = train_tagger(cfg=cfg, dataset=synthetic_dataset("smoke"), checkpoint=sys.argv[1])
print(json.dumps({"resumed_from": r.resumed_from_epoch, "done": r.state["epochs_done"]}))
"""

TRAIN_TORCH = """
import json, sys, dataclasses
import acg2vec_lab
import numpy as np, torch
from acg2vec_lab.config import load_config
from acg2vec_lab.models.dclip import train as T
cfg = dataclasses.replace(load_config("dclip", "smoke"), steps=6, checkpoint_every=2, batch_size=8, seed=0)
g = torch.Generator().manual_seed(0)
images = torch.rand((16, 3, 64, 64), generator=g)
captions = [f"tag_{i % 5} tag_{i % 3} solo" for i in range(16)]
r = T.train(cfg, images, list(range(16)), captions, ckpt_dir=sys.argv[1])
print(json.dumps({"resumed_from": r["resumed_from"], "done": r["step"]}))
"""


def _keras_weights(folder: Path) -> list[np.ndarray]:
    import h5py

    arrays: list[np.ndarray] = []
    with h5py.File(folder / "model.weights.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.append(np.asarray(obj)) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def _torch_weights(folder: Path) -> list[np.ndarray]:
    from acg2vec_lab.train.run import load_torch_state

    state = load_torch_state(folder / "last.pt")["model_state_dict"]
    return [state[k].numpy() for k in sorted(state)]


def train_scenario(work: Path, kind: str, reference: Path | None, strict_weights: bool = True) -> Scenario:
    """Training of the tiny DeepDanbooru tagger (Keras, 3 epochs) or a tiny DCLIP (torch, 6 steps, a
    checkpoint every 2), killed at seeded points among its checkpoint writes, resumed, and compared
    with an uninterrupted run of the same seed (``reference``, trained once by the caller).

    Checked: the rerun resumes from the checkpoint on disk (Keras: ``train_state.json``'s epochs;
    torch: ``last.pt``'s step), the final manifest is complete at the last step, and the weights equal
    the reference's (``strict_weights=False``: a difference is a note, not a problem; ``reference=None``:
    not compared, for a trainer whose resume is known not to reproduce the uninterrupted weights)."""
    code, weights, unit = (TRAIN_KERAS, _keras_weights, 3) if kind == "keras" else (TRAIN_TORCH, _torch_weights, 3)
    folder = work / f"train-{kind}"
    argv = ["-c", code, str(folder)]
    # atomic commits: the identity, then per checkpoint tags, weights, optimiser, state, manifest (keras: one per
    # epoch) or last.pt, manifest (torch: one every 2 steps)
    per = 5 if kind == "keras" else 2
    points = 1 + per * unit

    def done(before):
        return 1 + per * (before if kind == "keras" else before // 2) if folder.is_dir() else 0

    def snapshot():
        from acg2vec_lab.train.run import load_torch_state, manifest_of

        if manifest_of(folder) is None:  # nothing to resume from: the trainer starts over
            return 0
        if kind == "keras":
            state = folder / "train_state.json"
            return int(json.loads(state.read_text())["epochs_done"]) if state.exists() else 0
        return int(load_torch_state(folder / "last.pt")["step"]) if (folder / "last.pt").exists() else 0

    def check(res, before, final):
        c: dict[str, Any] = {"problems": [], "notes": [], "checked": 0}
        if not final:
            return c
        summary = last_json(res.stdout) or {}
        got_from = int(summary.get("resumed_from") or 0)
        if got_from != before:
            c["redone"] = max(before - got_from, 0)
            c["problems"].append(f"train {kind}: resumed from {got_from}, the last checkpoint was at {before}")
        from acg2vec_lab.train.run import manifest_of

        m = manifest_of(folder) or {}
        if not m.get("complete") or int(m.get("step", -1)) != unit * (1 if kind == "keras" else 2):
            c["problems"].append(f"train {kind}: the final manifest says step {m.get('step')}, complete "
                                 f"{m.get('complete')} (the weights on disk are of the last step)")
        a = weights(folder)
        c["checked"] = len(a)
        if reference is None:
            c["notes"].append(f"train {kind}: weights not compared with an uninterrupted run")
            return c
        b = weights(reference)
        if len(a) != len(b) or not all(x.shape == y.shape and np.allclose(x, y, rtol=1e-4, atol=1e-5)
                                       for x, y in zip(a, b)):
            worst = max((float(np.max(np.abs(x - y))) for x, y in zip(a, b) if x.shape == y.shape), default=-1)
            msg = f"train {kind}: resumed weights differ from the uninterrupted run (max |diff| {worst:.3g})"
            c["problems" if strict_weights else "notes"].append(msg)
        return c

    def cleanup():
        import shutil

        shutil.rmtree(folder, ignore_errors=True)

    return Scenario(f"train {'deepdanbooru (keras)' if kind == 'keras' else 'dclip (torch)'}", argv, points, check,
                    snapshot, folder, timeout=600, cleanup=cleanup, done=done)


def train_reference(work: Path, kind: str) -> Path:
    """An uninterrupted training run of ``kind`` (the weights a resumed run must reach)."""
    folder = work / f"reference-{kind}"
    res = run_command(["-c", TRAIN_KERAS if kind == "keras" else TRAIN_TORCH, str(folder)], timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"the uninterrupted {kind} training run failed: {res.stderr[-3000:]}")
    return folder


def all_scenarios(work: Path, n_images: int = 10, training: bool = True) -> list[Scenario]:
    """Every scenario of the suite on ``n_images`` generated images under ``work``."""
    cache = work / "cache"
    images = make_images(work / "images", n_images)
    write_tiny_tagger(cache)
    out = [tag_scenario(work, fmt, images, cache) for fmt in ("txt", "hydrus", "json", "csv")]
    small = make_images(work / "images-upscale", 4, size=12, seed=1)
    out += [embed_scenario(work, images), search_scenario(work, images), upscale_scenario(work, small)]
    if training:
        out += [train_scenario(work, kind, train_reference(work, kind), strict_weights=kind != "keras")
                for kind in ("keras", "torch")]
    return out
