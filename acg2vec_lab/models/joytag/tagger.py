"""JoyTag as a :class:`acg2vec_lab.tagging.base.Tagger` (``acg2vec-lab tag --model joytag``)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.models.joytag.preprocess import preprocess as joytag_preprocess


class JoyTagTagger:
    """A JoyTag model with its tag list; ``predict`` returns sigmoid probabilities ``(N, n_tags)``.

    Args:
        model: a :class:`~acg2vec_lab.models.joytag.model.JoyTagViT`.
        tags, categories: vocabulary (index = output column) and Danbooru category codes.
        source: ``"folder: <path>"`` (given explicitly) or ``"trained: <checkpoint>"``.
    """

    name = "joytag"
    framework = "torch"

    def __init__(self, model: Any, tags: Sequence[str], categories: Sequence[int], source: str = "") -> None:
        if model.n_tags != len(tags) or len(categories) != len(tags):
            raise ValueError(f"model has {model.n_tags} outputs, {len(tags)} tags, {len(categories)} categories")
        self.model = model.eval()
        self.tags = list(tags)
        self.categories = [int(c) for c in categories]
        self.input_size = (model.image_size, model.image_size)
        self.source = source
        self.precision = "fp32"

    def to(self, device: str) -> JoyTagTagger:
        """Move the model to a torch device (``"cpu"``, ``"cuda"``; see :mod:`acg2vec_lab.device`)."""
        self.model.to(device)
        return self

    def set_precision(self, precision: str) -> JoyTagTagger:
        """``fp32`` or ``bf16`` weights (:func:`acg2vec_lab.models.precision.cast_torch`)."""
        from acg2vec_lab.models.precision import cast_torch

        self.model, self.precision = cast_torch(self.model, precision), precision
        return self

    def preprocess(self, image: Any) -> np.ndarray:
        """PIL RGB -> ``(3, S, S)`` float32 (white square pad, bicubic, CLIP mean/std)."""
        return joytag_preprocess(image, self.input_size[0])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        from acg2vec_lab.models.joytag.train import predict_probs

        return predict_probs(self.model, np.asarray(batch, dtype=np.float32)).astype(np.float32)


def _categories(folder: Path, n: int) -> list[int]:
    path = folder / "categories.json"
    if path.exists():
        return [int(c) for c in json.loads(path.read_text(encoding="utf-8"))["categories"]]
    return [0] * n  # a released folder has only top_tags.txt: every tag counts as general


def load_joytag_tagger(folder: str | os.PathLike, source: str | None = None) -> JoyTagTagger:
    """JoyTag from a model folder (the released one, or a run folder trained here).

    The registry's ``models.load_tagger("joytag", profile)`` finds the profile's finished run.
    ``source``: the weights label shown in reports (default ``folder: <folder>``).
    """
    from acg2vec_lab.models.joytag.loader import load_folder

    folder = Path(folder)
    source = source or f"folder: {folder}"
    loaded = load_folder(folder)
    return JoyTagTagger(loaded.model, loaded.tags, _categories(folder, len(loaded.tags)), source=source)
