"""Write workbook notebooks from Python and check their hygiene.

Notebooks are authored as a list of cells and written clean (no outputs, no execution counts, the
project kernel, one ``parameters``-tagged cell). ``check_clean`` is what the hygiene test uses.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import nbformat

KERNELSPEC = {"name": "acg2vec-lab", "display_name": "Python (acg2vec-lab)", "language": "python"}


def build_notebook(cells: Iterable[tuple[str, str]], path: str | Path) -> Path:
    """Write a notebook from ``(kind, source)`` pairs; kind is ``md``, ``code`` or ``params``.

    ``params`` is a code cell tagged ``parameters`` (literals only, UPPER_CASE, a comment on each).
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        elif kind in ("code", "params"):
            cell = nbformat.v4.new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
        else:
            raise ValueError(f"unknown cell kind {kind!r}")
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"cell-{i:02d}"
    path = Path(path)
    nbformat.validate(nb)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def check_clean(path: str | Path) -> list[str]:
    """Problems that keep a notebook from being committed: outputs, counts, no parameters cell."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    problems = []
    cells = nb.get("cells", [])
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{path}: cell {i} carries outputs or an execution count")
    params = [c for c in cells if "parameters" in (c.get("metadata", {}).get("tags") or [])]
    if len(params) != 1:
        problems.append(f"{path}: expected exactly one cell tagged 'parameters', found {len(params)}")
    elif "PROFILE" not in "".join(params[0].get("source", "")):
        problems.append(f"{path}: the parameters cell does not define PROFILE")
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != KERNELSPEC["name"]:
        problems.append(f"{path}: kernelspec is not {KERNELSPEC['name']!r}")
    return problems


def strip_outputs(path: str | Path) -> None:
    """Remove outputs and execution counts in place (for a notebook saved from JupyterLab)."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
