"""Every notebook executes in the smoke profile, records finite headline numbers, and is clean in git."""
from __future__ import annotations

import math
import re

import pytest

from acg2vec_lab import runner
from acg2vec_lab.dev.notebooks import check_clean
from acg2vec_lab.paths import PROJECT_DIR

NOTEBOOKS = runner.list_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_name.ipynb found"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    assert check_clean(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_in_readme_map(path):
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"\|\s*{path.name[:2]}\s*\|.*{re.escape(path.stem)}", readme), (
        f"{path.name} is missing from the notebook map in README.md")


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_smoke_profile(path, execute_smoke):
    res, records = execute_smoke(path.stem)
    assert res.status == "ok", f"{path.name}: {res.status} at cell {res.error_cell}: {res.error}\n{res.error_source}"
    assert records, f"{path.name} recorded no metrics"
    for name, value in records.items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{path.name}: {name} = {value}"
