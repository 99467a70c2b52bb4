"""Shared fixtures: an isolated run folder per test session and a cache of executed smoke notebooks."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before any test module imports tensorflow or torch: the package loads triton first, which keeps
# TF 2.21 + a later triton import from aborting the process (see acg2vec_lab/_env.py). Test modules
# may then order their imports as ruff sorts them.
import acg2vec_lab  # noqa: F401

os.environ.setdefault("ACG2VEC_PROFILE", "smoke")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """One run folder shared by every notebook test of the session."""
    return tmp_path_factory.mktemp("run")


_EXECUTED: dict[str, object] = {}


@pytest.fixture(scope="session")
def execute_smoke(smoke_run):
    """``execute_smoke("03")`` runs a notebook once per session (smoke profile) and returns
    ``(NotebookResult, {metric: value})``; later calls reuse the result."""
    from acg2vec_lab import runner
    from acg2vec_lab.record import read_records

    def _run(key: str):
        if key not in _EXECUTED:
            (path,) = runner.select_notebooks([key])
            res = runner.run_notebook(path, "smoke", smoke_run)
            records = {r["name"]: r["value"] for r in read_records(smoke_run, path.stem)}
            _EXECUTED[key] = (res, records)
        return _EXECUTED[key]

    return _run
