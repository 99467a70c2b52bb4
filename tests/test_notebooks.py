"""Every notebook executes in the smoke profile, records finite headline numbers, and is clean in git."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

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


def test_notebooks_match_their_text_sources():
    """Every ``.ipynb`` is exactly what its ``py:percent`` source renders to (``dev.sync``)."""
    from acg2vec_lab.dev.sync import out_of_sync
    assert out_of_sync() == []


def test_sync_check_catches_a_drifted_pair(tmp_path):
    """The sync check fails when a notebook was edited without its source, or lacks one."""
    import shutil

    from acg2vec_lab.dev.sync import out_of_sync, render
    src = NOTEBOOKS[0].with_suffix(".py")
    py = tmp_path / src.name
    shutil.copy(src, py)
    py.with_suffix(".ipynb").write_text(render(py), encoding="utf-8")
    assert out_of_sync(tmp_path) == []
    py.write_text(py.read_text(encoding="utf-8") + "\n# %%\nx = 1\n", encoding="utf-8")
    assert any("not what" in p for p in out_of_sync(tmp_path))
    py.unlink()
    assert any("no text source" in p for p in out_of_sync(tmp_path))


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
    # every figure a notebook saves is also shown inline, so the executed .ipynb / .html carry it
    saved = path.with_suffix(".py").read_text(encoding="utf-8").count("save_fig(")
    if saved:
        executed = json.loads(Path(res.output).read_text(encoding="utf-8"))
        images = sum("image/png" in out.get("data", {})
                     for cell in executed["cells"] for out in cell.get("outputs", []))
        assert images >= 1, f"{path.name} saves {saved} figure(s) but its executed notebook shows none inline"
