"""Pix2Score with its preprocessing inside: URL-safe base64 image bytes in, three distributions out.

The deployed model (``pix2score_base64_input``) took ``b64_input_bytes`` (URL-safe base64, no padding,
as the webapp sends it), decoded the image, stretched it to 224x224 (bilinear) and divided by 255.
:func:`preprocess_b64` is that preprocessing as eager TensorFlow ops (what a notebook calls);
:func:`export_b64_savedmodel` wraps the same function around the model in a SavedModel whose serving
signature ``serving_default(b64_input_bytes: string[N])`` returns ``bookmark_predict``,
``view_predict``, ``sanity_predict``. (The original's TF-Serving output names were ``pix2score``,
``pix2score_1``, ``pix2score_2`` in that order; here they are named after the heads.)
"""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from acg2vec_lab.models.pix2score.model import HEAD_NAMES


def encode_b64(data: bytes) -> str:
    """Image file bytes -> URL-safe base64 without padding (the webapp's wire format)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode_one(b64: Any, size: int) -> Any:
    """One URL-safe base64 string tensor -> ``(size, size, 3)`` float32 in [0, 1] (decode, bilinear stretch, /255)."""
    raw = tf.io.decode_base64(b64)  # accepts the web-safe alphabet, padding optional
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), method="bilinear")
    return image / 255.0


def preprocess_b64(b64_strings: Any, size: int = 224) -> Any:
    """A batch of base64 strings ``(N,)`` -> ``(N, size, size, 3)`` float32 in [0, 1], NHWC."""
    strings = tf.convert_to_tensor(b64_strings, dtype=tf.string)
    return tf.map_fn(lambda s: decode_one(s, size), strings, fn_output_signature=tf.TensorSpec((size, size, 3), tf.float32))


def predict_b64(model: Any, b64_strings: Any, size: int | None = None) -> dict[str, Any]:
    """The in-notebook path: :func:`preprocess_b64` then the Keras model; dict of head name -> ``(N, k)`` numpy."""
    size = size or int(model.input_shape[1])
    outs = model(preprocess_b64(b64_strings, size), training=False)
    return {name: out.numpy() for name, out in zip(HEAD_NAMES, outs)}


def export_b64_savedmodel(model: Any, path: str | os.PathLike) -> Path:
    """Write a SavedModel whose ``serving_default`` takes ``b64_input_bytes`` (string ``[N]``).

    Uses ``keras.export.ExportArchive`` so the Keras variables are tracked; the endpoint runs the same
    :func:`preprocess_b64` as the notebook, so the two cannot drift apart.
    """
    import keras

    size = int(model.input_shape[1])
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(b64_input_bytes):
        outs = model(preprocess_b64(b64_input_bytes, size), training=False)
        return {name: out for name, out in zip(HEAD_NAMES, outs)}

    archive.add_endpoint(name="serving_default", fn=serve,
                         input_signature=[tf.TensorSpec([None], tf.string, name="b64_input_bytes")])
    path = Path(path)
    archive.write_out(str(path), verbose=False)
    return path


def load_served(path: str | os.PathLike) -> Any:
    """The exported signature, callable as ``fn(b64_input_bytes=tf.constant([...]))`` -> dict of tensors."""
    return tf.saved_model.load(str(path)).signatures["serving_default"]
