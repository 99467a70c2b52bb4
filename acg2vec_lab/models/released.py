"""Released weights through one switch: what a ``--weights PATH`` is, told from its files.

Every command that runs a tagger takes ``--weights PATH``; :func:`detect_tagger` names the format
from what is on disk (never from the file name alone, never by trying loaders until one works), so
a wrong path gets one clear error that lists what was expected:

=====================  ==========================================================  ==============
format                 files                                                       tagger
=====================  ==========================================================  ==============
WD14 / wd-v3 (ONNX)    ``model.onnx`` + ``selected_tags.csv``                      ``wd14``
DeepDanbooru project   ``project.json`` and/or ``model-*.h5`` / ``*.keras`` +      ``deepdanbooru``
                       ``tags.txt`` (``categories.json`` optional)
JoyTag folder          ``config.json`` + ``model.safetensors`` + ``top_tags.txt``  ``joytag``
=====================  ==========================================================  ==============

A file instead of a folder is taken as its folder when it is one of those files (``model.onnx``,
``model.safetensors``, a ``model-*.h5``). Nothing here imports a framework.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

EXPECTED = ("a WD14 / wd-v3 folder (model.onnx + selected_tags.csv), a DeepDanbooru project folder "
            "(project.json or model-*.h5 / *.keras, with tags.txt) or a JoyTag folder "
            "(config.json + model.safetensors + top_tags.txt)")


class WeightsError(ValueError):
    """``--weights`` points at something that is not a released format this package reads."""


@dataclasses.dataclass(frozen=True)
class Detected:
    """What :func:`detect_tagger` found: the registry model, the folder, and the format in words."""

    model: str
    folder: Path
    format: str


def _folder_of(path: Path) -> Path:
    if path.is_file() and (path.name in ("model.onnx", "model.safetensors", "selected_tags.csv", "top_tags.txt",
                                          "project.json", "tags.txt")
                           or path.suffix in (".h5", ".keras")):
        return path.parent
    return path


def detect_tagger(path: str | os.PathLike) -> Detected:
    """The released tagger format at ``path``; :class:`WeightsError` naming the path and what was expected."""
    raw = Path(path)
    if not raw.exists():
        raise WeightsError(f"--weights {raw}: no such file or folder; expected {EXPECTED}")
    folder = _folder_of(raw)
    if not folder.is_dir():
        raise WeightsError(f"--weights {raw}: a file of no released tagger format; expected {EXPECTED}")
    has = {p.name for p in folder.iterdir()}
    if "model.onnx" in has:
        if "selected_tags.csv" not in has:
            raise WeightsError(f"--weights {folder}: model.onnx without selected_tags.csv (a WD14 / wd-v3 folder "
                               "needs both: the csv names the model's outputs)")
        return Detected("wd14", folder, "WD14 / wd-v3 ONNX tagger")
    keras_files = [n for n in has if (n.startswith("model-") and n.endswith(".h5")) or n.endswith(".keras")]
    if "project.json" in has or keras_files:
        if "tags.txt" not in has:
            raise WeightsError(f"--weights {folder}: a DeepDanbooru project without tags.txt "
                               f"(found {', '.join(sorted(keras_files)) or 'project.json'})")
        return Detected("deepdanbooru", folder, "DeepDanbooru project")
    if "model.safetensors" in has and "config.json" in has:
        if "top_tags.txt" not in has:
            raise WeightsError(f"--weights {folder}: config.json + model.safetensors without top_tags.txt "
                               "(a JoyTag folder names its outputs in top_tags.txt)")
        return Detected("joytag", folder, "JoyTag folder")
    shown = ", ".join(sorted(has)[:8]) + (" ..." if len(has) > 8 else "") if has else "nothing"
    raise WeightsError(f"--weights {folder}: no released tagger format here (it holds {shown}); expected {EXPECTED}")
