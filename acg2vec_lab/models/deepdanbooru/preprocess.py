"""Image preprocessing for DeepDanbooru-style taggers, and the alternatives other consumers use.

Every function returns ``(H, W, 3)`` float32 in [0, 1] (HWC, RGB). The input is a PIL image, or for
the ``"deepdanbooru"`` mode preferably the *encoded* file (a path, ``bytes`` or an
:class:`EncodedImage` from :func:`load_encoded`), because the original decodes the file itself.

* ``"deepdanbooru"`` — the original's evaluation path (``deepdanbooru/data/__init__.py:
  load_image_for_evaluate``), reproduced step by step:

  1. decode with TensorFlow, ``tf.io.decode_png(raw, channels=3)`` (that op decodes PNG, JPEG, GIF
     and BMP; ``channels=3`` **drops the alpha channel** of an RGBA file, so what a transparent pixel
     stores under its alpha is what the network sees). JPEG pixels from TensorFlow's decoder and
     Pillow's differ by a few levels, so only the encoded file reproduces the original exactly; a PIL
     image that is already decoded is used as it is (its alpha, if it has one, dropped the same way).
     WebP, which the original decodes with tensorflow-io, is decoded with Pillow here (alpha dropped);
  2. ``tf.image.resize(size=(H, W), method=AREA, preserve_aspect_ratio=True)`` (fits inside the box,
     upsizes small images too);
  3. an affine warp that only re-centres the image on the ``W x H`` canvas with bilinear interpolation
     (order 1) and ``mode="edge"`` (border pixels replicated); the centring offset can be half a pixel,
     which the bilinear warp blends, exactly as the original does;
  4. ``/ 255``.

  ``tests/test_loaders_independent.py`` runs the original package on the same files and checks the
  arrays and the scores.
* ``"deepdanbooru-white"`` — the same geometry on this workbook's own decoding: Pillow, transparency
  composited on white (:func:`acg2vec_lab.data.load_image`). Closer to what a person sees for a
  sprite, but not what the released model was run on; notebook 01 measures the difference.
* ``"stretch"`` — bilinear resize to ``W x H`` ignoring the aspect ratio (ACG2vec's TF-Serving models;
  TorchDeepDanbooru's ``test.py`` does the same with PIL).
* ``"a1111"`` — stable-diffusion-webui's "resize and fill": fit inside with LANCZOS, paste centred on
  integer offsets, fill the empty bands by stretching the outermost row/column.

:func:`augment` is the training-time variant (random scale, rotation, shift in the same warp).
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

MODES = ("deepdanbooru", "deepdanbooru-white", "stretch", "a1111")


@dataclasses.dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes and where they came from (what the ``"deepdanbooru"`` mode decodes)."""

    data: bytes
    name: str = "<bytes>"


def load_encoded(path: str | os.PathLike) -> EncodedImage:
    """The raw bytes of ``path`` (a pipeline ``loader`` for the exact ``"deepdanbooru"`` mode)."""
    path = Path(path)
    try:
        return EncodedImage(path.read_bytes(), str(path))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the image file ({exc})") from exc


def _encoded(image: Any) -> EncodedImage | None:
    if isinstance(image, EncodedImage):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return EncodedImage(bytes(image))
    if isinstance(image, (str, os.PathLike)):
        return load_encoded(image)
    return None


def decode_like_deepdanbooru(image: Any) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB decoded as the original does: ``tf.io.decode_png(raw, channels=3)``.

    ``image`` is a path, ``bytes`` or :class:`EncodedImage` (decoded with TensorFlow; alpha dropped),
    or a PIL image (already decoded: its pixels, alpha dropped). WebP, which TensorFlow's op does not
    read and the original hands to tensorflow-io, is decoded with Pillow (alpha dropped). A file
    neither decoder reads gives a ``ValueError`` naming it.
    """
    enc = _encoded(image)
    if enc is None:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)  # PIL: RGBA -> RGB drops alpha
    import tensorflow as tf

    try:
        return tf.io.decode_png(enc.data, channels=3).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as exc:
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(enc.data)) as im:
                if im.format != "WEBP":
                    raise ValueError(f"{enc.name}: TensorFlow cannot decode this {im.format} file "
                                     f"({str(exc).splitlines()[0]})") from exc
                return np.asarray(im.convert("RGBA"), dtype=np.uint8)[..., :3].copy()
        except (UnidentifiedImageError, OSError) as exc2:
            raise ValueError(f"{enc.name}: not an image TensorFlow or Pillow can decode ({exc2})") from exc


def fit_size(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """``tf.image.resize(preserve_aspect_ratio=True)``'s output size: scale by the smaller ratio, round."""
    scale = min(box_h / height, box_w / width)
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)


def area_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """TensorFlow's AREA resize of an ``(h, w, 3)`` array to ``(height, width, 3)`` float32 (0-255 range kept)."""
    import tensorflow as tf

    return tf.image.resize(image, (height, width), method="area").numpy().astype(np.float32)


def _affine(src_w: int, src_h: int, dst_w: int, dst_h: int, scale: float = 1.0, rotation: float = 0.0,
            shift: tuple[float, float] = (0.0, 0.0)):
    """Source->destination transform: centre the source at the origin, scale, rotate, shift, recentre."""
    from skimage.transform import AffineTransform

    t = AffineTransform(translation=(-src_w * 0.5, -src_h * 0.5))
    if scale != 1.0:
        t = t + AffineTransform(scale=(scale, scale))
    if rotation:
        t = t + AffineTransform(rotation=math.radians(rotation))
    if shift != (0.0, 0.0):
        t = t + AffineTransform(translation=(dst_w * shift[0], dst_h * shift[1]))
    return t + AffineTransform(translation=(dst_w * 0.5, dst_h * 0.5))


def warp_to_canvas(image: np.ndarray, width: int, height: int, scale: float = 1.0, rotation: float = 0.0,
                   shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Place ``image`` (float, any range) on a ``height x width`` canvas: bilinear, edge-replicated border."""
    from skimage.transform import warp

    t = _affine(image.shape[1], image.shape[0], width, height, scale, rotation, shift)
    return warp(image, t.inverse, output_shape=(height, width), order=1, mode="edge",
                preserve_range=True).astype(np.float32)


def deepdanbooru_eval(image: Any, size: tuple[int, int]) -> np.ndarray:
    """The original evaluation preprocessing (module doc, steps 1-4). ``size`` is ``(height, width)``.

    ``image``: path / ``bytes`` / :class:`EncodedImage` (decoded by TensorFlow as the original does),
    or a PIL image (used as decoded). Returns ``(height, width, 3)`` float32 in [0, 1].
    """
    import tensorflow as tf

    height, width = size
    arr = decode_like_deepdanbooru(image)
    resized = tf.image.resize(arr, size=(height, width), method="area", preserve_aspect_ratio=True).numpy()
    return (warp_to_canvas(resized.astype(np.float32), width, height) / 255.0).astype(np.float32)


def deepdanbooru_white(image: Any, size: tuple[int, int]) -> np.ndarray:
    """The original's geometry on Pillow decoding with transparency composited on white.

    ``image``: a path (read with :func:`acg2vec_lab.data.load_image`) or a PIL image (an RGBA one is
    composited on white here). Returns ``(height, width, 3)`` float32 in [0, 1].
    """
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        from acg2vec_lab.data import load_image

        image = load_image(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return deepdanbooru_eval(image.convert("RGB"), size)


def stretch(image: Any, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize to exactly ``size`` = (height, width), aspect not kept; [0, 1]."""
    from PIL import Image

    height, width = size
    out = image.convert("RGB").resize((width, height), Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


def a1111_fill(image: Any, size: tuple[int, int]) -> np.ndarray:
    """A1111 "resize and fill": fit inside (LANCZOS), centre, stretch the edge rows/columns into the bands."""
    from PIL import Image

    height, width = size
    img = image.convert("RGB")
    ratio, src_ratio = width / height, img.width / img.height
    if ratio < src_ratio:  # image is wider: fit width, bands above and below
        src_w, src_h = width, max(img.height * width // img.width, 1)
    else:
        src_w, src_h = max(img.width * height // img.height, 1), height
    resized = img.resize((src_w, src_h), Image.LANCZOS)
    canvas = Image.new("RGB", (width, height))
    left, top = width // 2 - src_w // 2, height // 2 - src_h // 2
    canvas.paste(resized, (left, top))
    if top > 0:
        canvas.paste(resized.crop((0, 0, src_w, 1)).resize((src_w, top)), (left, 0))
    bottom = height - (top + src_h)
    if bottom > 0:
        canvas.paste(resized.crop((0, src_h - 1, src_w, src_h)).resize((src_w, bottom)), (left, top + src_h))
    if left > 0:
        canvas.paste(resized.crop((0, 0, 1, src_h)).resize((left, src_h)), (0, top))
    right = width - (left + src_w)
    if right > 0:
        canvas.paste(resized.crop((src_w - 1, 0, src_w, src_h)).resize((right, src_h)), (left + src_w, top))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def preprocess_image(image: Any, size: tuple[int, int], mode: str = "deepdanbooru") -> np.ndarray:
    """Dispatch on ``mode`` (one of :data:`MODES`); ``size`` is ``(height, width)``.

    ``image`` is a PIL image; the deepdanbooru modes also take a path, ``bytes`` or an
    :class:`EncodedImage` (needed for an exact ``"deepdanbooru"`` decode, see the module doc).
    """
    if mode == "deepdanbooru":
        return deepdanbooru_eval(image, size)
    if mode == "deepdanbooru-white":
        return deepdanbooru_white(image, size)
    if mode == "stretch":
        return stretch(image, size)
    if mode == "a1111":
        return a1111_fill(image, size)
    raise ValueError(f"unknown preprocessing {mode!r}; choose one of {', '.join(MODES)}")


def augment(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
            rotation_range: tuple[float, float] = (0.0, 360.0), scale_range: tuple[float, float] = (0.9, 1.1),
            shift_range: tuple[float, float] = (-0.1, 0.1)) -> np.ndarray:
    """DeepDanbooru's training augmentation on an already fitted image.

    Args:
        image: ``(h, w, 3)`` float32 in [0, 1], already AREA-fitted to ``size * scale_range[1]``
            (see :func:`fit_for_training`).
        size: output ``(height, width)``.
        rng: NumPy generator (one per worker, seeded).
    Returns:
        ``(height, width, 3)`` float32 in [0, 1]: scale U(scale_range)/scale_range[1], rotation
        U(rotation_range) degrees, shift U(shift_range) * (W, H), edge-replicated border.
    """
    height, width = size
    scale = float(rng.uniform(*scale_range)) / scale_range[1]
    rotation = float(rng.uniform(*rotation_range))
    shift = (float(rng.uniform(*shift_range)), float(rng.uniform(*shift_range)))
    return np.clip(warp_to_canvas(image, width, height, scale, rotation, shift), 0.0, 1.0)


def fit_for_training(image: Any, size: tuple[int, int], scale_max: float = 1.1) -> np.ndarray:
    """AREA-fit a PIL image into ``size * scale_max`` keeping aspect; float32 in [0, 1] (cacheable)."""
    height, width = size
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    new_w, new_h = fit_size(arr.shape[1], arr.shape[0], int(width * scale_max), int(height * scale_max))
    return area_resize(arr, new_w, new_h) / 255.0
