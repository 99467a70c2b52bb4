"""DeepDanbooru as a :class:`~acg2vec_lab.tagging.base.Tagger`: a real project folder or the run trained here."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.models.deepdanbooru.loaders import load_project
from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image
from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model
from acg2vec_lab.tagging.categories import category_code


class DeepDanbooruTagger:
    """A Keras DeepDanbooru model as a :class:`Tagger`.

    Args:
        model: a Keras model mapping ``(N, H, W, 3)`` float32 in [0, 1] (NHWC, RGB) to ``(N, n_tags)``
            sigmoid probabilities.
        tags, categories: the vocabulary and one category code per tag.
        preprocess_mode: ``"deepdanbooru"`` (evaluation preprocessing of the original: AREA resize
            keeping aspect, centred, edge-replicated border), ``"stretch"`` or ``"a1111"``; see
            :mod:`acg2vec_lab.models.deepdanbooru.preprocess`.
        source: where the weights came from (shown in reports).
    """

    name = "deepdanbooru"
    framework = "tensorflow"

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
        self.device: str | None = None  # a TensorFlow device ("/GPU:0"); None: TensorFlow's default placement
        self._call = None

    def to(self, device: str) -> DeepDanbooruTagger:
        """Run on this TensorFlow device (``"/CPU:0"``, ``"/GPU:0"``; see :mod:`acg2vec_lab.device`)."""
        self.device = device
        self._call = None
        return self

    def preprocess(self, image: Any) -> np.ndarray:
        return preprocess_image(image, self.input_size, self.preprocess_mode)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` float32 in [0, 1] -> ``(N, n_tags)`` probabilities; any N (no retracing per N)."""
        if self._call is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, *self.input_size, 3], tf.float32)
            model = self.model
            self._call = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        if self.device is not None:
            import tensorflow as tf

            with tf.device(self.device):
                out = self._call(np.asarray(batch, dtype=np.float32))
        else:
            out = self._call(np.asarray(batch, dtype=np.float32))
        if isinstance(out, (list, tuple)):
            out = out[0]
        return np.asarray(out, dtype=np.float32)

    def unload(self) -> None:
        """Drop the model so its memory can be released."""
        self.model = None
        self._call = None


def load_deepdanbooru_tagger(project_path: str | os.PathLike | None = None,
                             checkpoint: str | os.PathLike | None = None,
                             preprocess_mode: str = "deepdanbooru", source: str = "") -> DeepDanbooruTagger:
    """The DeepDanbooru tagger of a real project folder or of a run folder trained here.

    Args:
        project_path: a DeepDanbooru project folder (``model-<name>.h5``/``.keras``, ``tags.txt``,
            optional ``categories.json``), loaded by :func:`~acg2vec_lab.models.deepdanbooru.loaders.load_project`.
        checkpoint: a run folder of :func:`~acg2vec_lab.models.deepdanbooru.train.train_tagger` (the
            registry's ``models.load_tagger("deepdanbooru", profile)`` finds the profile's run).
        source: the weights label shown in reports (default: the folder).
    """
    if (project_path is None) == (checkpoint is None):
        raise ValueError("pass exactly one of project_path (a real DeepDanbooru project) or checkpoint (a run folder)")
    if project_path is not None:
        proj = load_project(project_path)
        categories = [category_code(t, c) for t, c in zip(proj.tags, proj.categories)]
        return DeepDanbooruTagger(proj.model, proj.tags, categories, preprocess_mode,
                                  source=source or f"real: {proj.model_file}")
    model, tags, categories, folder = load_trained_tagger_model(checkpoint=checkpoint)
    return DeepDanbooruTagger(model, tags, categories, preprocess_mode, source=source or f"trained: {folder}")
