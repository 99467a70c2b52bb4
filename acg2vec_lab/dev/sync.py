"""Notebooks are stored as text: ``notebooks/NN_name.py`` (jupytext ``py:percent``) is the reviewed
source, and ``notebooks/NN_name.ipynb`` is rendered from it, clean (no outputs, stable cell ids,
the project kernel). papermill and JupyterLab use the ``.ipynb``; a review reads the ``.py``.

Usage::

    python -m acg2vec_lab.dev.sync            # render every .ipynb from its .py
    python -m acg2vec_lab.dev.sync --check    # exit 1 if a pair is out of sync (the tests run this)
    python -m acg2vec_lab.dev.sync --from-ipynb 02   # after editing 02 in JupyterLab: .ipynb -> .py

The pair is also declared in each notebook's metadata (``jupytext.formats = "ipynb,py:percent"``),
so JupyterLab with the jupytext extension keeps both files up to date on save.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

from acg2vec_lab.dev.notebooks import KERNELSPEC
from acg2vec_lab.paths import PROJECT_DIR

NOTEBOOK_DIR = PROJECT_DIR / "notebooks"
FORMATS = "ipynb,py:percent"


def sources(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The ``NN_name.py`` notebook sources, in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def render(py: Path) -> str:
    """The clean ``.ipynb`` text for the ``py:percent`` source ``py``."""
    nb = jupytext.read(py, fmt="py:percent")
    nb.metadata = {"jupytext": {"formats": FORMATS},
                   "kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids keep diffs to the cells that changed
        cell.metadata.pop("lines_to_next_cell", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4) + "\n"


def to_text(ipynb: Path) -> str:
    """The ``py:percent`` text for a notebook (outputs dropped); used after editing in JupyterLab."""
    nb = nbformat.read(ipynb, as_version=4)
    nb.metadata = {"jupytext": {"formats": FORMATS}, "kernelspec": dict(KERNELSPEC)}
    return jupytext.writes(nb, fmt="py:percent")


def out_of_sync(folder: Path = NOTEBOOK_DIR) -> list[str]:
    """Problems with the pairs in ``folder``: a source without its notebook, or the reverse, or a
    notebook whose content is not what its source renders to."""
    problems = []
    for py in sources(folder):
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            problems.append(f"{ipynb.name} is missing: run python -m acg2vec_lab.dev.sync")
        elif ipynb.read_text(encoding="utf-8") != render(py):
            problems.append(f"{ipynb.name} is not what {py.name} renders to: edit the .py and run "
                            "python -m acg2vec_lab.dev.sync (or --from-ipynb after a JupyterLab edit)")
    for ipynb in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        if not ipynb.with_suffix(".py").exists():
            problems.append(f"{ipynb.name} has no text source {ipynb.with_suffix('.py').name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m acg2vec_lab.dev.sync", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="report pairs that are out of sync; change nothing")
    ap.add_argument("--from-ipynb", nargs="+", metavar="NN", help="rewrite these notebooks' .py from the .ipynb")
    args = ap.parse_args(argv)
    if args.check:
        problems = out_of_sync()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    if args.from_ipynb:
        for key in args.from_ipynb:
            (ipynb,) = sorted(NOTEBOOK_DIR.glob(f"{key}*.ipynb"))
            ipynb.with_suffix(".py").write_text(to_text(ipynb), encoding="utf-8")
            print(f"wrote {ipynb.with_suffix('.py').name}")
    for py in sources():
        ipynb = py.with_suffix(".ipynb")
        text = render(py)
        if not ipynb.exists() or ipynb.read_text(encoding="utf-8") != text:
            ipynb.write_text(text, encoding="utf-8")
            print(f"rendered {ipynb.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
