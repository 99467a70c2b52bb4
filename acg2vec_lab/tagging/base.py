"""The ``Tagger`` protocol every tagger implements, the DeepDanbooru tagger and ``load_tagger``.

Tag categories follow Danbooru's numbering, with one addition for the rating pseudo-tags:

* ``0`` general, ``1`` artist, ``3`` copyright, ``4`` character, ``5`` meta (Danbooru's own codes);
* ``9`` rating (``rating:safe`` / ``rating:general`` / ``rating:questionable`` / ...). DeepDanbooru's
  ``categories.json`` calls this block "System"; it is one-of-k, so it is emitted as the arg-max and
  never thresholded (see :mod:`acg2vec_lab.tagging.thresholds`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

CATEGORY_GENERAL = 0
CATEGORY_ARTIST = 1
CATEGORY_COPYRIGHT = 3
CATEGORY_CHARACTER = 4
CATEGORY_META = 5
CATEGORY_RATING = 9
CATEGORY_NAMES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta", 9: "rating"}


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


def categories_from_blocks(tags: Sequence[str], blocks: Sequence[dict[str, Any]]) -> list[int]:
    """Per-tag categories from DeepDanbooru's ``categories.json`` (``[{"name", "start_index"}]``).

    "General" -> 0, "Character" -> 4, "System" (the rating tags) -> 9. Tags starting with ``rating:``
    are category 9 whatever block they sit in.
    """
    codes = {"general": 0, "character": 4, "system": 9, "rating": 9, "copyright": 3, "artist": 1, "meta": 5}
    out = [0] * len(tags)
    ordered = sorted(blocks, key=lambda b: int(b["start_index"]))
    for i, block in enumerate(ordered):
        start = int(block["start_index"])
        stop = int(ordered[i + 1]["start_index"]) if i + 1 < len(ordered) else len(tags)
        code = codes.get(str(block["name"]).lower(), 0)
        for j in range(start, min(stop, len(tags))):
            out[j] = code
    return [CATEGORY_RATING if t.startswith("rating:") else c for t, c in zip(tags, out)]


class DeepDanbooruTagger:
    """A Keras DeepDanbooru model as a :class:`Tagger`.

    Args:
        model: a Keras model mapping ``(N, H, W, 3)`` float32 in [0, 1] (NHWC, RGB) to ``(N, n_tags)``
            sigmoid probabilities.
        tags, categories: the vocabulary and one category code per tag.
        preprocess_mode: ``"deepdanbooru"`` (evaluation preprocessing of the original: AREA resize
            keeping aspect, centred, edge-replicated border), ``"stretch"`` or ``"a1111"``; see
            :mod:`acg2vec_lab.tagging.preprocess`.
        source: where the weights came from (shown in reports).
    """

    name = "deepdanbooru"

    def __init__(self, model: Any, tags: Sequence[str], categories: Sequence[int],
                 preprocess_mode: str = "deepdanbooru", source: str = "") -> None:
        shape = model.input_shape
        if isinstance(shape, list):
            shape = shape[0]
        n_out = int(model.output_shape[-1]) if not isinstance(model.output_shape, list) else int(model.output_shape[0][-1])
        if n_out != len(tags):
            raise ValueError(f"model has {n_out} outputs but the tag list has {len(tags)} tags")
        if len(categories) != len(tags):
            raise ValueError(f"{len(categories)} categories for {len(tags)} tags")
        self.model = model
        self.tags = list(tags)
        self.categories = [int(c) for c in categories]
        self.input_size = (int(shape[1]), int(shape[2]))
        self.preprocess_mode = preprocess_mode
        self.source = source
        self._call = None

    def preprocess(self, image: Any) -> np.ndarray:
        from acg2vec_lab.tagging.preprocess import preprocess_image

        return preprocess_image(image, self.input_size, self.preprocess_mode)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` float32 in [0, 1] -> ``(N, n_tags)`` probabilities; any N (no retracing per N)."""
        if self._call is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, *self.input_size, 3], tf.float32)
            model = self.model
            self._call = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        out = self._call(np.asarray(batch, dtype=np.float32))
        if isinstance(out, (list, tuple)):
            out = out[0]
        return np.asarray(out, dtype=np.float32)

    def unload(self) -> None:
        """Drop the model so its memory can be released."""
        self.model = None
        self._call = None


def save_tags_json(path: str | os.PathLike, tags: Sequence[str], categories: Sequence[int]) -> Path:
    """Write the ``tags.json`` that sits beside a trained checkpoint's ``model.weights.h5``."""
    from acg2vec_lab.io import write_json

    return write_json(path, {"tags": list(tags), "categories": [int(c) for c in categories],
                             "category_codes": {str(k): v for k, v in CATEGORY_NAMES.items()}})


def load_tags_json(path: str | os.PathLike) -> tuple[list[str], list[int]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return list(data["tags"]), [int(c) for c in data["categories"]]


def load_deepdanbooru_tagger(profile: str | None = None, project_path: str | os.PathLike | None = None,
                             preprocess_mode: str = "deepdanbooru", seed: int | None = None) -> DeepDanbooruTagger:
    """The DeepDanbooru tagger: a real project folder if given, else the checkpoint trained here.

    Args:
        profile, seed: pick the trained run (the registry's ``find(profile, seed)``; seed default: the config's).
        project_path: a DeepDanbooru project folder (``model-<name>.h5``/``.keras``, ``tags.txt``,
            optional ``categories.json``), loaded by :mod:`acg2vec_lab.models.deepdanbooru`.
    """
    if project_path is not None:
        from acg2vec_lab.models.deepdanbooru.loaders import load_project

        proj = load_project(project_path)
        codes = {"general": CATEGORY_GENERAL, "character": CATEGORY_CHARACTER, "system": CATEGORY_RATING,
                 "rating": CATEGORY_RATING, "copyright": CATEGORY_COPYRIGHT, "artist": CATEGORY_ARTIST,
                 "meta": CATEGORY_META}
        categories = [CATEGORY_RATING if t.startswith("rating:") else codes.get(str(c).lower(), CATEGORY_GENERAL)
                      for t, c in zip(proj.tags, proj.categories)]
        return DeepDanbooruTagger(proj.model, proj.tags, categories, preprocess_mode,
                                  source=f"real: {proj.model_file}")
    from acg2vec_lab import models
    from acg2vec_lab.train.tagger import load_trained_tagger_model

    found = models.get("deepdanbooru").find(profile, seed)
    if found is None:
        load_trained_tagger_model(profile, seed=seed)  # raises FileNotFoundError saying how to train one
    model, tags, categories, _ = load_trained_tagger_model(checkpoint=found.folder)
    return DeepDanbooruTagger(model, tags, categories, preprocess_mode, source=found.label)


def load_tagger(model: str, profile: str | None = None, project_path: str | os.PathLike | None = None,
                **kwargs: Any) -> Tagger:
    """One entry point for every tagger, by registry name (:func:`acg2vec_lab.models.get`).

    Args:
        model: a registered model with a tagger (``"deepdanbooru"``, ``"joytag"``).
        profile: ``smoke`` / ``cpu`` / ``full`` (which trained run).
        project_path: a real DeepDanbooru project folder (DeepDanbooru only).
    """
    from acg2vec_lab import models

    try:
        spec = models.get(model)
    except KeyError:
        spec = None
    if spec is None or not spec.has_tagger:
        choices = ", ".join(n for n in models.names() if models.get(n).has_tagger)
        raise ValueError(f"unknown tagger {model!r}; choose {choices}")
    return spec.tagger(profile, project_path=project_path, **kwargs)
