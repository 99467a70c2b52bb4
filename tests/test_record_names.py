"""One naming scheme for recorded metrics (``record.NAME_RE``), held by every notebook.

Every ``record("...")`` call in the notebooks' text sources is read from the AST: a literal name
must match the scheme; an f-string must match it with each ``{...}`` replaced by a plain word. A
name that breaks the scheme is also refused by ``record`` itself at run time.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from acg2vec_lab.record import NAME_RE, check_name

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _record_names(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "record" \
                and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.append((node.lineno, arg.value))
            elif isinstance(arg, ast.JoinedStr):
                out.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "x" for v in arg.values)))
            # a name held in a variable is checked by record() itself when the notebook runs
    return out


def test_every_notebook_record_name_follows_the_scheme():
    names = {p.name: _record_names(p) for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))}
    assert sum(len(v) for v in names.values()) > 50  # the scan sees the notebooks' records
    bad = [f"{nb}:{line}: {name}" for nb, rows in names.items() for line, name in rows if not NAME_RE.match(name)]
    assert not bad, "record names outside the scheme:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", ["tagger/test_micro_f1@0.35", "dclip/recall@5", "env/cpus",
                                  "preprocess/a1111/full/score_max_abs_diff", "tagger/test_mAP"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["f1", "Tagger/f1", "tagger/", "tagger/f1 micro", "tagger//f1", "tagger/f1@",
                                  "tagger/f1@0.5@1", 3])
def test_bad_names_are_refused(name, tmp_path, monkeypatch):
    import importlib

    R = importlib.import_module("acg2vec_lab.record")

    monkeypatch.setenv("ACG2VEC_RUN_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="does not follow"):
        R.record(name, 1.0)
    assert not list(tmp_path.rglob("*.jsonl"))
