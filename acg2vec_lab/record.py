"""What a notebook hands to the run: named metrics (``record``) and figures (``save_fig``).

The runner sets ``ACG2VEC_RUN_DIR`` and ``ACG2VEC_NOTEBOOK`` for each notebook it executes; records
go to ``<run>/metrics/<notebook>.jsonl`` and figures to ``<run>/figures/<notebook>/<name>.png``. Run
by hand, a notebook writes into ``runs/interactive/``. Tests read the same files.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from acg2vec_lab.io import append_line
from acg2vec_lab.paths import run_dir


def notebook_name() -> str:
    return os.environ.get("ACG2VEC_NOTEBOOK", "interactive")


# Where a number or figure comes from. Every record() row carries one (a ``data`` column in
# metrics.csv); a figure saved from SYNTHETIC data says so in its title.
DATA_SOURCES = ("synthetic", "real", "mixed", "none")
_default_data: str | None = None


def set_data_source(data: str | None) -> None:
    """Set the notebook's default data source for :func:`record` and :func:`save_fig`.

    ``setup_notebook(SEED, data=...)`` calls this; a call may still pass its own ``data=``.
    ``synthetic``: the drawn Danbooru-format set; ``real``: registry assets (Ren'Py art, text pairs,
    real weights on real inputs); ``mixed``: both in one number; ``none``: no data (a parameter count).
    """
    global _default_data
    if data is not None and data not in DATA_SOURCES:
        raise ValueError(f"data source {data!r} is not one of {DATA_SOURCES}")
    _default_data = data


def data_source(data: str | None = None) -> str | None:
    """``data`` if given, else the notebook's default (see :func:`set_data_source`)."""
    if data is not None and data not in DATA_SOURCES:
        raise ValueError(f"data source {data!r} is not one of {DATA_SOURCES}")
    return data if data is not None else _default_data


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy / torch / tf scalars
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    raise TypeError(f"record() takes a number, bool or string, got {type(value).__name__}")


# The one naming scheme of recorded metrics: ``<model or area>/<quantity>[/<qualifier>...][@<k or threshold>]``,
# e.g. ``tagger/test_micro_f1@0.35``, ``dclip/recall@5``, ``preprocess/a1111/full/score_max_abs_diff``.
# The split, when there is one, goes in the name's quantity (``test_mAP``) or in ``split=`` meta; the
# data source in ``data=``. Segments are letters, digits, ``_ . + -`` (no spaces), so a name is a
# stable key for the findings, the tests and the metrics table.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.+-]+)+(@[A-Za-z0-9_.+-]+)?$")


def slug(text: str) -> str:
    """``text`` as one name segment: runs of characters outside ``A-Za-z0-9_.+-`` become ``_``
    (``"1girl, solo"`` -> ``"1girl_solo"``), for names built from free text such as queries."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text)).strip("_") or "_"


def check_name(name: str) -> str:
    """``name`` if it follows :data:`NAME_RE`'s scheme, else a ``ValueError`` that shows the scheme."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"record name {name!r} does not follow <model or area>/<quantity>[/<qualifier>...]"
                         "[@<k or threshold>] (letters, digits, _ . + - ; lower-case first segment)")
    return name


def record(name: str, value: Any, *, data: str | None = None, **meta: Any) -> Any:
    """Record one headline value of this notebook for the run's metrics table; returns ``value``.

    Args:
        name: metric name, e.g. ``"tagger/f1_micro@0.35"``; unique within a notebook.
        value: a number, bool or string (numpy/torch scalars are converted).
        data: where the value comes from (one of ``DATA_SOURCES``); default: the notebook's.
        **meta: optional context kept beside the value (``split="test"``, ``model="tiny"``...).
    """
    check_name(name)
    row = {"notebook": notebook_name(), "name": name, "value": _jsonable(value), "time": time.time(),
           "data": data_source(data)}
    if meta:
        row["meta"] = {k: _jsonable(v) if not isinstance(v, (list, dict)) else v for k, v in meta.items()}
    append_line(run_dir() / "metrics" / f"{notebook_name()}.jsonl", json.dumps(row, ensure_ascii=False))
    print(f"[record] {name} = {row['value']}" + (f"  ({row['data']})" if row["data"] else ""))
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


def _titles(fig: Any) -> list[str]:
    texts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    return texts + [ax.get_title(loc) for ax in fig.get_axes() for loc in ("left", "center", "right")]


def mark_synthetic(fig: Any) -> Any:
    """Make sure the figure's title says SYNTHETIC (prefixing the suptitle if no title does)."""
    if not any("SYNTHETIC" in t for t in _titles(fig)):
        old = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
        fig.suptitle(f"SYNTHETIC data · {old}" if old else "SYNTHETIC data", color="#b2182b")
    return fig


def save_fig(fig: Any, name: str, dpi: int = 110, *, data: str | None = None) -> Path:
    """Save a matplotlib figure as ``<run>/figures/<notebook>/<name>.png`` and return the path.

    A figure whose data source (``data=``, default the notebook's) is ``synthetic`` or ``mixed``
    gets SYNTHETIC into its title first (:func:`mark_synthetic`), so no saved figure built from
    the drawn set can be mistaken for one of real art.
    """
    if data_source(data) in ("synthetic", "mixed"):
        mark_synthetic(fig)
    path = run_dir() / "figures" / notebook_name() / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
