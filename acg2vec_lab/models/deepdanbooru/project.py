"""DeepDanbooru project folders: ``project.json``, ``model-<name>.keras`` / ``.h5``, ``tags.txt``,
optional ``categories.json``; :func:`load_project` reads one, :func:`write_project` writes one (tests,
notebooks).
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from acg2vec_lab.io_safety import (
    read_json_file,
)
from acg2vec_lab.models.deepdanbooru.canonical import LoadError
from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
from acg2vec_lab.models.deepdanbooru.h5 import load_h5_model, load_keras_file, write_legacy_h5

# ---------------------------------------------------------------------------------------------
# project folder
# ---------------------------------------------------------------------------------------------

def read_tags(path: str | Path) -> list[str]:
    """``tags.txt``: one tag per line, blank lines ignored (DeepDanbooru ``load_tags``); a file that
    is not UTF-8 text is a :class:`LoadError` naming it and the line."""
    from acg2vec_lab.tagging.categories import read_tags_txt

    return read_tags_txt(path, LoadError)


def read_categories(path: str | Path) -> list[dict[str, Any]]:
    """``categories.json``: ``[{"name": str, "start_index": int}]``; anything else is a
    :class:`LoadError` naming the file and the entry."""
    from acg2vec_lab.tagging.categories import read_categories_json

    return read_categories_json(path, LoadError)


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def read_project_json(path: str | Path) -> dict[str, Any]:
    """A DeepDanbooru ``project.json``: a JSON object whose ``model`` (when given) is a plain name
    (it becomes part of the file name ``model-<name>.h5``, so no path separators or ``..``) and whose
    ``image_width`` / ``image_height`` (when given) are positive integers. Anything else is a
    :class:`LoadError` naming the file and the key."""
    path = Path(path)
    project = read_json_file(path, LoadError, "DeepDanbooru project.json", expect=dict)
    name = project.get("model", "resnet_custom_v2")
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise LoadError(f"{path}: 'model' must be a plain model name (letters, digits, '_', '-', '.'), got {name!r:.80}")
    for key in ("image_width", "image_height"):
        value = project.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise LoadError(f"{path}: {key!r} must be a positive integer, got {value!r:.80}")
    return project


def tag_categories(tags: list[str], categories: list[dict] | None) -> list[str]:
    """Category name per tag from ``categories.json`` start indices; without it, ``rating:*`` = System."""
    if categories:
        starts = sorted((int(c["start_index"]), c["name"]) for c in categories)
        out = []
        for i in range(len(tags)):
            name = starts[0][1]
            for s, n in starts:
                if i >= s:
                    name = n
            out.append(name)
        return out
    return ["System" if t.startswith("rating:") else "General" for t in tags]


@dataclasses.dataclass
class ProjectModel:
    """The model half of a DeepDanbooru project folder (network, tags, categories, project.json); the
    data half (the SQLite ``posts`` table, images) is :class:`acg2vec_lab.data.danbooru.DeepDanbooruProject`."""

    path: Path
    model: Any  # Keras model
    config: DeepDanbooruConfig
    tags: list[str]
    categories: list[str]  # one per tag
    project: dict
    model_file: Path


def load_project(folder: str | Path) -> ProjectModel:
    """A DeepDanbooru project folder: ``project.json`` names the model; ``.keras`` preferred over ``.h5``."""
    folder = Path(folder)
    pj = folder / "project.json"
    project = read_project_json(pj) if pj.is_file() else {}
    name = project.get("model", "resnet_custom_v2")
    candidates = [folder / f"model-{name}.keras", folder / f"model-{name}.h5"]
    model_file = next((c for c in candidates if c.is_file()), None)
    if model_file is None:
        found = sorted(p.name for p in folder.glob("model-*"))
        raise LoadError(f"{folder}: no {candidates[0].name} or {candidates[1].name} (model files there: {found})")
    size = project.get("image_width")
    if model_file.suffix == ".h5":
        model, cfg = load_h5_model(model_file, image_size=size)
    else:
        model, cfg = load_keras_file(model_file, image_size=size)
    tags_path = folder / "tags.txt"
    if not tags_path.is_file():
        raise LoadError(f"{folder}: no tags.txt")
    tags = read_tags(tags_path)
    if len(tags) != cfg.n_tags:
        raise LoadError(f"{folder}: tags.txt has {len(tags)} tags but the model's head has {cfg.n_tags} outputs")
    cats_path = folder / "categories.json"
    cats = read_categories(cats_path) if cats_path.is_file() else None
    return ProjectModel(folder, model, cfg, tags, tag_categories(tags, cats), project, model_file)




def write_project(folder: str | Path, model, tags: list[str], categories: list[dict] | None = None,
                  name: str = "resnet_custom_v3", dtype: str = "float32") -> Path:
    """Write a DeepDanbooru project folder the way a release looks: ``project.json``,
    ``model-<name>.h5`` (legacy Keras 2 layout, ``dtype``), ``tags.txt`` and ``categories.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = model.input_shape[1:3]
    project = {"image_width": w, "image_height": h, "model": name, "minibatch_size": 32, "epoch_count": 10,
               "loss": "binary_crossentropy", "optimizer": "adam", "learning_rate": 0.001, "mixed_precision": False}
    (folder / "project.json").write_text(json.dumps(project, indent=2), encoding="utf-8")
    (folder / "tags.txt").write_text("\n".join(tags) + "\n", encoding="utf-8")
    if categories is not None:
        (folder / "categories.json").write_text(json.dumps(categories, indent=2), encoding="utf-8")
    write_legacy_h5(model, folder / f"model-{name}.h5", dtype=dtype)
    return folder
