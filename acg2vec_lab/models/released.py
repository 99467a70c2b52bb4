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
TorchDeepDanbooru      one ``*.pt`` (``n_Conv_<i>``, BN folded) + ``tags.txt``      ``deepdanbooru``
                       unless the file holds its ``tags``
JoyTag folder          ``config.json`` + ``model.safetensors`` + ``top_tags.txt``  ``joytag``
exported ONNX          ``export.json`` + ``model.onnx`` + ``tags.csv`` (written by  ``onnx_export``
                       ``acg2vec-lab export-onnx``; ``model.int8.onnx`` optional)
=====================  ==========================================================  ==============

A file instead of a folder is taken as its folder when it is one of those files (``model.onnx``,
``model.safetensors``, a ``model-*.h5``). Nothing here imports a framework.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

EXPECTED = ("a WD14 / wd-v3 folder (model.onnx + selected_tags.csv), a DeepDanbooru project folder "
            "(project.json or model-*.h5 / *.keras, with tags.txt), a TorchDeepDanbooru .pt (with tags.txt) or a "
            "JoyTag folder "
            "(config.json + model.safetensors + top_tags.txt), or a folder written by acg2vec-lab export-onnx")


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
                           or path.suffix in (".h5", ".keras", ".pt")):
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
    if "export.json" in has and "model.onnx" in has:  # before WD14: both hold a model.onnx
        return Detected("onnx_export", folder, "exported ONNX tagger (acg2vec-lab export-onnx)")
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
    pts = sorted(n for n in has if n.endswith(".pt"))
    if pts:
        if raw.is_file() and raw.suffix == ".pt":
            pts = [raw.name]
        elif len(pts) > 1:
            raise WeightsError(f"--weights {folder}: several .pt files ({', '.join(pts)}); pass the one to load")
        if "tags.txt" not in has:  # the file may carry its tags: told apart when it is read (weights_only)
            return Detected("deepdanbooru", folder, f"TorchDeepDanbooru state dict ({pts[0]}, tags in the file)")
        return Detected("deepdanbooru", folder, f"TorchDeepDanbooru state dict ({pts[0]})")
    if "model.safetensors" in has and "config.json" in has:
        if "top_tags.txt" not in has:
            raise WeightsError(f"--weights {folder}: config.json + model.safetensors without top_tags.txt "
                               "(a JoyTag folder names its outputs in top_tags.txt)")
        return Detected("joytag", folder, "JoyTag folder")
    shown = ", ".join(sorted(has)[:8]) + (" ..." if len(has) > 8 else "") if has else "nothing"
    raise WeightsError(f"--weights {folder}: no released tagger format here (it holds {shown}); expected {EXPECTED}")


# ------------------------------------------------------------------------------------------ embedders

ST_FILES = ("modules.json", "config_sentence_transformers.json")


def detect_embedder(path: str | os.PathLike, modality: str) -> Detected:
    """The released format at ``path`` for ``embed-image`` (a tagger folder: its pooled features) or
    ``embed-text`` (a sentence-transformers folder); :class:`WeightsError` otherwise."""
    if modality == "image":
        return detect_tagger(path)
    raw = Path(path)
    if not raw.is_dir():
        raise WeightsError(f"--weights {raw}: expected a sentence-transformers folder (modules.json, "
                           "config_sentence_transformers.json and the model files)")
    has = {p.name for p in raw.iterdir()}
    if not any(n in has for n in ST_FILES):
        raise WeightsError(f"--weights {raw}: not a sentence-transformers folder (no {' or '.join(ST_FILES)})")
    return Detected("sentence_transformers", raw, "sentence-transformers folder")


def load_embedder(path: str | os.PathLike, modality: str) -> Any:
    """An :class:`acg2vec_lab.embedders.Embedder` over released weights (``--weights`` of ``embed-*`` and
    ``search build``): WD14 (the input of its final dense layer), a DeepDanbooru project (illust2vec: the
    mean-pooled first block of stage 3, ``activation_96`` in v3), JoyTag (the pooled trunk), or a
    sentence-transformers folder (its own pooling and normalisation)."""
    import numpy as np

    from acg2vec_lab.embedders import Embedder

    found = detect_embedder(path, modality)
    label = f"released: {found.folder} ({found.format})"
    if found.model == "sentence_transformers":
        state: dict[str, Any] = {}

        def encode_text(texts: Any) -> Any:
            if "model" not in state:
                from sentence_transformers import SentenceTransformer

                from acg2vec_lab.device import torch_device

                state["model"] = SentenceTransformer(str(found.folder), device=torch_device(), local_files_only=True)
            return np.asarray(state["model"].encode([str(t) for t in texts], convert_to_numpy=True,
                                                    show_progress_bar=False), dtype=np.float32)

        dim = _st_dim(found.folder)
        return Embedder(name="released_text", modality="text", dim=dim, weights=label, encode=encode_text)

    if found.model == "onnx_export":
        raise WeightsError(f"--weights {found.folder}: an exported ONNX tagger gives tag probabilities only; embed "
                           "with the weights it was exported from")
    from acg2vec_lab.data.images import load_image
    from acg2vec_lab.models import load_tagger

    tagger = load_tagger(found.model, weights=found.folder, source=label)
    if found.model == "wd14":
        feats = tagger.embed
        dim = int(feats(np.zeros((1, *tagger.input_size, 3), np.float32)).shape[1])
        framework = "onnxruntime"
    elif found.model == "deepdanbooru":
        if tagger.framework == "torch":
            raise WeightsError(f"--weights {path}: illust2vec embeddings come from a Keras DeepDanbooru project "
                               "(model-*.h5 / .keras); a TorchDeepDanbooru .pt tags only")
        from acg2vec_lab.models.deepdanbooru.illust2vec import build_illust2vec

        two = build_illust2vec(tagger.model, "activation_96")
        feats = lambda batch: np.asarray(two(batch, training=False)[1])  # noqa: E731
        dim = int(two.output_shape[1][-1])
        framework = "tensorflow"
    else:  # joytag
        import torch

        def feats(batch: Any) -> Any:
            dev = next(tagger.model.parameters()).device
            with torch.no_grad():
                return tagger.model.embed(torch.from_numpy(batch).to(dev)).float().cpu().numpy()

        dim = int(tagger.model.d_model) if hasattr(tagger.model, "d_model") else \
            int(feats(np.zeros((1, 3, *tagger.input_size), np.float32)).shape[1])
        framework = "torch"

    def encode_image(inputs: Any) -> Any:
        out = []
        for i in range(0, len(inputs), 16):
            ims = [x.convert("RGB") if hasattr(x, "convert") else load_image(x) for x in inputs[i:i + 16]]
            out.append(np.asarray(feats(np.stack([tagger.preprocess(im) for im in ims]).astype(np.float32))))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)

    return Embedder(name=f"released_{found.model}", modality="image", dim=dim, weights=label, encode=encode_image,
                    framework=framework)


def _st_dim(folder: Path) -> int:
    """The output width of a sentence-transformers folder, read from its files (no model load)."""
    import json

    for dense in sorted(folder.glob("*Dense*/config.json")):
        try:
            return int(json.loads(dense.read_text(encoding="utf-8"))["out_features"])
        except (OSError, ValueError, KeyError):
            pass
    for name in ("1_Pooling/config.json", "config.json"):
        p = folder / name
        if p.is_file():
            try:
                cfg = json.loads(p.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise WeightsError(f"--weights {folder}: {name} is not JSON ({exc})") from exc
            for key in ("word_embedding_dimension", "hidden_size", "d_model"):
                if key in cfg:
                    return int(cfg[key])
    raise WeightsError(f"--weights {folder}: cannot tell the embedding width (no Dense, Pooling or model config)")
