"""What a notebook hands to the run: named metrics (``record``) and figures (``save_fig``).

The runner sets ``ACG2VEC_RUN_DIR`` and ``ACG2VEC_NOTEBOOK`` for each notebook it executes; records
go to ``<run>/metrics/<notebook>.jsonl`` and figures to ``<run>/figures/<notebook>/<name>.png``. Run
by hand, a notebook writes into ``runs/interactive/``. Tests read the same files.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from acg2vec_lab.io import append_line
from acg2vec_lab.paths import run_dir


def notebook_name() -> str:
    return os.environ.get("ACG2VEC_NOTEBOOK", "interactive")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy / torch / tf scalars
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    raise TypeError(f"record() takes a number, bool or string, got {type(value).__name__}")


def record(name: str, value: Any, **meta: Any) -> Any:
    """Record one headline value of this notebook for the run's metrics table; returns ``value``.

    Args:
        name: metric name, e.g. ``"tagger/f1_micro@0.35"``; unique within a notebook.
        value: a number, bool or string (numpy/torch scalars are converted).
        **meta: optional context kept beside the value (``split="test"``, ``model="tiny"``...).
    """
    row = {"notebook": notebook_name(), "name": name, "value": _jsonable(value), "time": time.time()}
    if meta:
        row["meta"] = {k: _jsonable(v) if not isinstance(v, (list, dict)) else v for k, v in meta.items()}
    append_line(run_dir() / "metrics" / f"{notebook_name()}.jsonl", json.dumps(row, ensure_ascii=False))
    print(f"[record] {name} = {row['value']}")
    return value


def read_records(run: str | os.PathLike, notebook: str | None = None) -> list[dict[str, Any]]:
    """All records of a run folder (optionally one notebook's), in the order they were written."""
    folder = Path(run) / "metrics"
    files = [folder / f"{notebook}.jsonl"] if notebook else sorted(folder.glob("*.jsonl"))
    rows = []
    for path in files:
        if path.exists():
            rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def save_fig(fig: Any, name: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``<run>/figures/<notebook>/<name>.png`` and return the path."""
    path = run_dir() / "figures" / notebook_name() / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
