"""DeepDanbooru as a :class:`~acg2vec_lab.tagging.base.Tagger`: a real project folder or the run trained here."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.models.deepdanbooru.loaders import load_project
from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image
from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model
from acg2vec_lab.tagging.categories import category_code


def load_for_mode(path: Any, mode: str) -> Any:
    """What :func:`preprocess_image` needs for ``mode`` from an image file: the encoded bytes for the exact
    ``"deepdanbooru"`` mode (the original decodes the file itself: TensorFlow's JPEG decoder, alpha
    dropped, not composited), a PIL RGB image otherwise. The file is first opened and fully decoded by
    :func:`acg2vec_lab.data.load_image`, so a bad, truncated or oversized file fails the same way in
    every mode, naming the file."""
    from acg2vec_lab.data import load_image
    from acg2vec_lab.models.deepdanbooru.preprocess import load_encoded

    image = load_image(path)
    return load_encoded(path) if mode == "deepdanbooru" else image


class _DeepDanbooruInput:
    """The input side both DeepDanbooru taggers share: ``input_size`` and ``preprocess_mode`` set by them."""

    input_size: tuple[int, int]
    preprocess_mode: str

    def preprocess(self, image: Any) -> np.ndarray:
        return preprocess_image(image, self.input_size, self.preprocess_mode)

    def loader(self, path: Any) -> Any:
        """A file as :meth:`preprocess` wants it for this mode (:func:`load_for_mode`)."""
        return load_for_mode(path, self.preprocess_mode)


class DeepDanbooruTagger(_DeepDanbooruInput):
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


class DeepDanbooruTorchTagger(_DeepDanbooruInput):
    """A TorchDeepDanbooru state dict (``model-resnet_custom_v3.pt``: BN folded into ``n_Conv_<i>``)
    run by the package's PyTorch DeepDanbooru (:class:`~acg2vec_lab.models.deepdanbooru.torch_model.DeepDanbooruTorch`)
    as a :class:`Tagger`: the same inputs as :class:`DeepDanbooruTagger` (NHWC float32 in [0, 1], the same
    preprocessing) and the same sigmoid probabilities."""

    name = "deepdanbooru"
    framework = "torch"

    def __init__(self, model: Any, tags: Sequence[str], categories: Sequence[int],
                 preprocess_mode: str = "deepdanbooru", source: str = "", precision: str = "fp32") -> None:
        n_out = int(model.cfg.n_tags)
        if n_out != len(tags) or len(categories) != len(tags):
            raise ValueError(f"model has {n_out} outputs, {len(tags)} tags, {len(categories)} categories")
        self.model = model.eval()
        self.tags, self.categories = list(tags), [int(c) for c in categories]
        self.input_size = (int(model.cfg.image_size), int(model.cfg.image_size))
        self.preprocess_mode, self.source = preprocess_mode, source
        self.precision = "fp32"
        self.set_precision(precision)

    @classmethod
    def from_keras(cls, tagger: DeepDanbooruTagger, precision: str = "fp32") -> DeepDanbooruTorchTagger:
        """The same network and weights as a Keras :class:`DeepDanbooruTagger`, run by the PyTorch port (BN
        folded; per-stage parity in notebook 01), e.g. for ``--precision bf16``."""
        from acg2vec_lab.models.deepdanbooru.torch_port import keras_to_torch

        return cls(keras_to_torch(tagger.model, folded=True), tagger.tags, tagger.categories, tagger.preprocess_mode,
                   f"{tagger.source} (PyTorch port)", precision)

    def set_precision(self, precision: str) -> DeepDanbooruTorchTagger:
        """``fp32`` or ``bf16`` weights (:func:`acg2vec_lab.models.precision.cast_torch`)."""
        from acg2vec_lab.models.precision import cast_torch

        self.model, self.precision = cast_torch(self.model, precision), precision
        return self

    def to(self, device: str) -> DeepDanbooruTorchTagger:
        self.model.to(device)
        return self

    def predict(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from acg2vec_lab.models.precision import input_dtype

        dev = next(self.model.parameters()).device
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(dev, input_dtype(self.model))
            return self.model(x).float().cpu().numpy()

    def unload(self) -> None:
        self.model = None


def torch_port_file(path: str | os.PathLike) -> Path | None:
    """The TorchDeepDanbooru ``.pt`` that ``path`` names: the file itself, or the one ``.pt`` of a folder that
    holds no Keras model (``model-*.h5`` / ``*.keras``); ``None`` when ``path`` is not such a thing. Several
    ``.pt`` files in one folder are an error naming them."""
    p = Path(path)
    if p.is_file():
        return p if p.suffix == ".pt" else None
    if not p.is_dir() or any(p.glob("model-*.h5")) or any(p.glob("*.keras")):
        return None
    pts = sorted(p.glob("*.pt"))
    if len(pts) > 1:
        raise ValueError(f"{p}: several .pt files ({', '.join(x.name for x in pts)}); pass the one to load")
    return pts[0] if pts else None


def load_torch_port_tagger(path: str | os.PathLike, preprocess_mode: str = "deepdanbooru", image_size: int = 512,
                           source: str = "", cfg: Any = None) -> DeepDanbooruTorchTagger:
    """A TorchDeepDanbooru ``.pt`` (read with ``weights_only=True``; the architecture from the tensors'
    shapes) with its tags: the file's own ``tags`` list, else ``tags.txt`` beside it (``categories.json``
    optional, as in a DeepDanbooru project). ``image_size``: the released models take 512. ``cfg``: the
    architecture of a custom network (a named variant is told from the shapes)."""
    import dataclasses

    from acg2vec_lab.models.deepdanbooru.project import read_categories, read_tags, tag_categories
    from acg2vec_lab.models.deepdanbooru.torch_model import build_torch_model
    from acg2vec_lab.models.deepdanbooru.torch_port import read_port_state_dict

    path = Path(path)
    cfg, weights, tags = read_port_state_dict(path, cfg)
    cfg = dataclasses.replace(cfg, image_size=image_size)
    if tags is None:
        tags_path = path.parent / "tags.txt"
        if not tags_path.is_file():
            raise FileNotFoundError(f"{path}: no 'tags' in the file and no tags.txt beside it")
        tags = read_tags(tags_path)
        if len(tags) != cfg.n_tags:
            raise ValueError(f"{tags_path}: {len(tags)} tags, the head of {path.name} has {cfg.n_tags} outputs")
    cats_path = path.parent / "categories.json"
    cats = tag_categories(list(tags), read_categories(cats_path) if cats_path.is_file() else None)
    model = build_torch_model(cfg, folded=True)
    model.load_canonical(weights)
    return DeepDanbooruTorchTagger(model, tags, [category_code(t, c) for t, c in zip(tags, cats)], preprocess_mode,
                                   source=source or f"real: {path} (TorchDeepDanbooru)")


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
        pt = torch_port_file(project_path)
        if pt is not None:
            return load_torch_port_tagger(pt, preprocess_mode, source=source)
        proj = load_project(project_path)
        categories = [category_code(t, c) for t, c in zip(proj.tags, proj.categories)]
        return DeepDanbooruTagger(proj.model, proj.tags, categories, preprocess_mode,
                                  source=source or f"real: {proj.model_file}")
    model, tags, categories, folder = load_trained_tagger_model(checkpoint=checkpoint)
    return DeepDanbooruTagger(model, tags, categories, preprocess_mode, source=source or f"trained: {folder}")
