"""The main job: execute the ordered notebooks with papermill and gather what they produced.

Each notebook runs in a fresh kernel in its own ``papermill`` process with a wall-clock timeout.
A run folder ``runs/<timestamp>/`` receives the executed notebooks (``.ipynb`` and ``.html``), their
figures, per-notebook logs, the metrics table (``metrics.csv`` / ``metrics.json``, one row per
notebook and metric) and ``index.html`` linking all of it; ``runs/latest`` points at the newest run.
A failing notebook is reported with its failing cell and error, and the others still run.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from acg2vec_lab import progress
from acg2vec_lab.config import ConfigError, check_profile
from acg2vec_lab.io import write_json, write_text
from acg2vec_lab.paths import NOTEBOOKS_DIR, runs_dir
from acg2vec_lab.record import read_records

KERNEL_NAME = "acg2vec-lab"
NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
# Wall-clock budget per notebook (seconds); 0 means no limit (the full profile runs on a GPU box).
NOTEBOOK_TIMEOUT = {"smoke": 900, "cpu": 1800, "full": 0}


@dataclasses.dataclass
class NotebookResult:
    name: str
    status: str  # "ok", "failed", "timeout"
    seconds: float
    output: str
    error_cell: int | None = None
    error_source: str | None = None
    error: str | None = None


def list_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The workbook's notebooks, in order (``NN_name.ipynb``)."""
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))


def select_notebooks(only: Iterable[str] | None, folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Pick notebooks by number (``3`` or ``03``) or stem; unknown selections raise ``ConfigError``."""
    books = list_notebooks(folder)
    if not only:
        return books
    chosen = []
    for key in only:
        key = str(key)
        hits = [p for p in books if (key.isdigit() and int(p.name[:2]) == int(key)) or p.stem == key]
        if not hits:
            known = ", ".join(p.stem for p in books)
            raise ConfigError(f"no notebook {key!r}; available: {known}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def notebook_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell (the cell tagged ``parameters``)."""
    import ast

    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names: set[str] = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in (cell.get("metadata", {}).get("tags") or []):
            try:
                tree = ast.parse("".join(cell.get("source", "")))
            except SyntaxError:
                continue
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def has_parameter(path: Path, name: str) -> bool:
    """Whether the notebook's ``parameters`` cell sets ``name`` (papermill warns about any other)."""
    return name in notebook_parameters(path)


def data_parameters(path: Path, data: str | os.PathLike | None) -> dict[str, str] | None:
    """``{"DATA": <folder>}`` for a notebook whose parameters cell has ``DATA`` when ``data`` is given, else None."""
    if data is None or not has_parameter(path, "DATA"):
        return None
    return {"DATA": str(Path(data).expanduser().resolve())}


def check_kernel(kernel: str = KERNEL_NAME) -> None:
    """Raise ``ConfigError`` with the fix when the Jupyter kernel papermill needs is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager

    if kernel not in KernelSpecManager().find_kernel_specs():
        raise ConfigError(
            f"Jupyter kernel {kernel!r} is not installed in this environment; run `make setup` "
            f"(it registers the kernel inside .venv with `ipykernel install --sys-prefix --name {kernel}`)"
        )


def first_error(nb_path: Path) -> tuple[int | None, str | None, str | None]:
    """(cell index, first lines of its source, 'Name: message') of the first cell with an error.

    The index counts cells of the source notebook (0-based): cells papermill added (the injected
    parameters, the error banner) are skipped, so it points at the cell a reader sees.
    """
    try:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, None, None
    added = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in nb.get("cells", []) if not added & set(c.get("metadata", {}).get("tags") or [])]
    for index, cell in enumerate(cells):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                src = "".join(cell.get("source", ""))
                lines = src.strip().splitlines()
                return index, "\n".join(lines[:6]), f"{out.get('ename')}: {out.get('evalue')}"
    return None, None, None


_CELL_RE = re.compile(rb"Executing Cell (\d+)")


def _n_cells(path: Path) -> int | None:
    """Cells papermill will execute: the notebook's cells plus the injected parameters cell."""
    try:
        return len(json.loads(path.read_text(encoding="utf-8")).get("cells", [])) + 1
    except (OSError, ValueError):
        return None


def _follow_cells(log: Path, pos: int, bar: Any) -> int:
    """Move ``bar`` to the last ``Executing Cell N`` papermill logged after byte ``pos``; the new position."""
    try:
        with open(log, "rb") as f:
            f.seek(pos)
            chunk = f.read()
    except OSError:
        return pos
    chunk = chunk[: chunk.rfind(b"\n") + 1]  # whole lines only; the rest is read next time
    hits = _CELL_RE.findall(chunk)
    if hits:
        cell = int(hits[-1])
        bar.update(cell - bar.n)
        bar.set_postfix_str(f"cell {cell}", refresh=True)
    return pos + len(chunk)


def run_notebook(
    path: Path, profile: str, run: Path, timeout: int | None = None, kernel: str = KERNEL_NAME,
    parameters: dict | None = None,
) -> NotebookResult:
    """Execute one notebook with papermill in a fresh kernel; never raises for a failing notebook."""
    check_profile(profile)
    timeout = NOTEBOOK_TIMEOUT[profile] if timeout is None else timeout
    out = run / "notebooks" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    log = run / "logs" / f"{path.stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "papermill", str(path), str(out), "-k", kernel, "--cwd", str(path.parent),
           "-p", "PROFILE", profile, "--no-progress-bar", "--log-output"]
    for key, value in (parameters or {}).items():
        cmd += ["-p", key, str(value)]
    if timeout:
        cmd += ["--execution-timeout", str(timeout)]
    env = dict(os.environ, ACG2VEC_RUN_DIR=str(run), ACG2VEC_NOTEBOOK=path.stem, ACG2VEC_PROFILE=profile,
               MPLBACKEND="module://matplotlib_inline.backend_inline", PYDEVD_DISABLE_FILE_VALIDATION="1")
    start = time.monotonic()
    bar = progress.bar(total=_n_cells(path), desc=path.stem, unit="cell", leave=False)
    with open(log, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        pos, code = 0, None
        while code is None:  # papermill logs "Executing Cell N" per cell: the bar follows the log
            try:
                code = proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                if timeout and time.monotonic() - start > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)  # the kernel is in the same session: kill it too
                    proc.wait()
                    break
            pos = _follow_cells(log, pos, bar)
        status = "timeout" if code is None else "ok" if code == 0 else "failed"
    bar.close()
    seconds = time.monotonic() - start
    result = NotebookResult(path.stem, status, seconds, str(out))
    if status != "ok":
        result.error_cell, result.error_source, result.error = first_error(out)
        if status == "timeout":
            result.error = f"timed out after {timeout} s (profile {profile})"
        elif result.error is None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            result.error = "papermill failed before any cell ran: " + " | ".join(tail)
    return result


def _new_run_dir(profile: str, root: Path | None = None) -> Path:
    root = root or runs_dir()
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run = root / f"{stamp}-{profile}"
    n = 1
    while run.exists():
        n += 1
        run = root / f"{stamp}-{profile}-{n}"
    run.mkdir(parents=True)
    return run


def _link_latest(run: Path) -> None:
    latest = run.parent / "latest"
    tmp = run.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run.name)
    os.replace(tmp, latest)


def gather_metrics(run: Path) -> list[dict]:
    """One row per (notebook, metric): the last value recorded under that name."""
    rows: dict[tuple[str, str], dict] = {}
    for rec in read_records(run):
        rows[(rec["notebook"], rec["name"])] = {"notebook": rec["notebook"], "metric": rec["name"],
                                                "value": rec["value"], "data": rec.get("data"),
                                                **({"meta": rec["meta"]} if "meta" in rec else {})}
    table = list(rows.values())
    write_json(run / "metrics.json", table)
    with open(run / "metrics.csv.part", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["notebook", "metric", "value", "data", "meta"])
        for row in table:
            writer.writerow([row["notebook"], row["metric"], row["value"], row["data"] or "",
                             json.dumps(row.get("meta", {}), ensure_ascii=False)])
    os.replace(run / "metrics.csv.part", run / "metrics.csv")
    return table


def _render_html(nb_path: Path) -> Path | None:
    try:
        import nbformat
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nbformat.read(nb_path, as_version=4))
        return write_text(nb_path.with_suffix(".html"), body)
    except Exception as exc:  # a broken render must not hide the run's results
        print(f"  (could not render {nb_path.name} to HTML: {exc})", file=sys.stderr)
        return None


def write_index(run: Path, profile: str, results: list[NotebookResult], metrics: list[dict]) -> Path:
    """``index.html``: status and time per notebook, links to executed notebooks, figures, metrics."""
    esc = html.escape
    rows = []
    for r in results:
        nb = Path(r.output)
        links = [f'<a href="notebooks/{esc(nb.name)}">ipynb</a>']
        if nb.with_suffix(".html").exists():
            links.append(f'<a href="notebooks/{esc(nb.with_suffix(".html").name)}">html</a>')
        links.append(f'<a href="logs/{esc(r.name)}.log">log</a>')
        figs = sorted((run / "figures" / r.name).glob("*.png"))
        fig_links = " ".join(f'<a href="figures/{esc(r.name)}/{esc(f.name)}">{esc(f.stem)}</a>' for f in figs)
        err = "" if r.status == "ok" else f"<br><small>cell {r.error_cell}: {esc(r.error or '')}</small>"
        rows.append(f"<tr class={r.status}><td>{esc(r.name)}</td><td>{r.status}{err}</td><td>{r.seconds:.1f}</td>"
                    f"<td>{' '.join(links)}</td><td>{fig_links}</td></tr>")
    mrows = "".join(f"<tr><td>{esc(m['notebook'])}</td><td>{esc(m['metric'])}</td><td>{esc(str(m['value']))}</td></tr>"
                    for m in metrics)
    page = f"""<!doctype html><meta charset=utf-8><title>acg2vec_lab run {esc(run.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}
.failed,.timeout{{background:#fdd}}</style>
<h1>acg2vec_lab run {esc(run.name)}</h1><p>profile <b>{esc(profile)}</b>;
{sum(r.status == 'ok' for r in results)}/{len(results)} notebooks passed;
<a href="metrics.csv">metrics.csv</a> · <a href="metrics.json">metrics.json</a></p>
<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>seconds</th><th>files</th><th>figures</th></tr>
{''.join(rows)}</table><h2>Metrics</h2><table><tr><th>notebook</th><th>metric</th><th>value</th></tr>{mrows}</table>
"""
    return write_text(run / "index.html", page)


def run_all(profile: str, only: Iterable[str] | None = None, root: Path | None = None,
            timeout: int | None = None, render: bool = True,
            data: str | os.PathLike | None = None) -> tuple[Path, list[NotebookResult]]:
    """Execute the selected notebooks in order; returns the run folder and one result per notebook.

    ``data``: a Danbooru2021-format folder or DeepDanbooru project, passed as ``-p DATA <folder>`` to
    every notebook whose parameters cell has ``DATA`` (the others run as usual).
    """
    check_profile(profile)
    books = select_notebooks(only)
    if data is not None and not Path(data).expanduser().is_dir():
        raise ConfigError(f"--data {data}: not a folder (a Danbooru2021-format folder or a DeepDanbooru project)")
    check_kernel()
    run = _new_run_dir(profile, root)
    _link_latest(run)
    print(f"run folder: {run}  (profile {profile}, {len(books)} notebooks)", flush=True)
    if data is not None:
        takes = [p.name[:2] for p in books if has_parameter(p, "DATA")]
        print(f"data: {Path(data).expanduser().resolve()} -> notebooks {' '.join(takes) or '(none selected takes DATA)'}; "
              "the others run on their usual data", flush=True)
    results = []
    t0 = time.monotonic()
    for i, path in enumerate(books, 1):
        print(f"[{i}/{len(books)}] {path.stem} ...", end=" ", flush=True)
        res = run_notebook(path, profile, run, timeout, parameters=data_parameters(path, data))
        results.append(res)
        print(f"{res.status} ({res.seconds:.1f} s)", flush=True)
        if res.status != "ok":
            print(f"    failing cell {res.error_cell}: {res.error}", flush=True)
            if res.error_source:
                print("    " + res.error_source.replace("\n", "\n    "), flush=True)
            print(f"    log: {run / 'logs' / (path.stem + '.log')}", flush=True)
        if render and Path(res.output).exists():
            _render_html(Path(res.output))
    metrics = gather_metrics(run)
    write_json(run / "results.json", [dataclasses.asdict(r) for r in results])
    write_index(run, profile, results, metrics)
    ok = sum(r.status == "ok" for r in results)
    print(f"{ok}/{len(results)} notebooks passed in {time.monotonic() - t0:.0f} s; "
          f"{len(metrics)} metrics; index: {run / 'index.html'}", flush=True)
    return run, results
