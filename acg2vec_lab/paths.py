"""Where things live: the project tree, the asset/data cache and the run folders.

Every location can be overridden by an environment variable so CI, a laptop and a GPU box can share
one checkout: ``ACG2VEC_CACHE`` (fetched assets, generated data, checkpoints), ``ACG2VEC_RUNS``
(executed notebooks, figures, metrics) and ``ACG2VEC_RUN_DIR`` (the one run being written now).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
CONFIGS_DIR = PACKAGE_DIR / "configs"
DATA_DIR = PROJECT_DIR / "data"


def cache_dir(*parts: str) -> Path:
    """The cache root (``$ACG2VEC_CACHE`` or ``~/.cache/acg2vec_lab``), joined with ``parts``, created."""
    root = Path(os.environ.get("ACG2VEC_CACHE", Path.home() / ".cache" / "acg2vec_lab")).expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """The folder that holds one sub-folder per run (``$ACG2VEC_RUNS`` or ``<project>/runs``)."""
    return Path(os.environ.get("ACG2VEC_RUNS", PROJECT_DIR / "runs")).expanduser()


def run_dir() -> Path:
    """The run being written now: ``$ACG2VEC_RUN_DIR`` when the runner set it, else ``runs/interactive``."""
    path = Path(os.environ.get("ACG2VEC_RUN_DIR", runs_dir() / "interactive")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir(model: str, variant: str) -> Path:
    """Where a trained model variant keeps its checkpoints (shared by notebooks, CLI and embedders)."""
    return cache_dir("checkpoints", model, variant)
