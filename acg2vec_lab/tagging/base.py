"""The ``Tagger`` protocol every tagger implements (model-agnostic; no model is imported here).

The DeepDanbooru tagger is :class:`acg2vec_lab.models.deepdanbooru.tagger.DeepDanbooruTagger`, JoyTag's
:class:`acg2vec_lab.models.joytag.tagger.JoyTagTagger`; :func:`acg2vec_lab.models.load_tagger` loads any
of them by registry name. Tag category codes live in :mod:`acg2vec_lab.tagging.categories`.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Tagger(Protocol):
    """What the pipeline, thresholds and metrics need from a tagging model.

    Attributes:
        name: short model name, e.g. ``"deepdanbooru"`` or ``"joytag"``.
        tags: the output vocabulary, index i = output column i (Danbooru spelling, underscores).
        categories: one category code per tag (0 general, 4 character, 9 rating; see module doc).
        input_size: ``(height, width)`` the model takes.
    """

    name: str
    tags: list[str]
    categories: list[int]
    input_size: tuple[int, int]

    def preprocess(self, image: Any) -> np.ndarray:
        """One PIL RGB image -> the model's input array for one image (float32, no batch axis)."""
        ...

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """A stacked batch of preprocessed images -> ``(N, n_tags)`` float32 probabilities in [0, 1]."""
        ...
