"""Data for every notebook: robust image loading, Danbooru-format sets, pixiv score bins.

* :func:`load_image` - any image file -> RGB ``PIL.Image`` or a typed :class:`ImageLoadError`.
* :class:`DanbooruDataset`, :class:`Post`, :class:`Tag` - Danbooru2021 / API metadata plus images.
* :func:`synthetic_dataset` - the SYNTHETIC drawn Danbooru-format set for a profile (cached).
* :func:`open_dataset` - what the image notebooks run on: that set (``None``) or a researcher's own
  Danbooru2021-format folder / DeepDanbooru project (:mod:`acg2vec_lab.data.source`).
* :func:`renpy_images` - the real Ren'Py sprites and backgrounds as a small labelled set.
* :mod:`acg2vec_lab.data.labels` - Pix2Score bins; :mod:`acg2vec_lab.data.splits` - leak-free splits.
"""
from __future__ import annotations

from typing import Any

from acg2vec_lab.data.danbooru import DanbooruDataset, Post, Tag
from acg2vec_lab.data.images import ImageLoadError, load_image, scan_images
from acg2vec_lab.data.source import open_dataset
from acg2vec_lab.data.synthetic import synthetic_dataset


def renpy_images(*args: Any, **kwargs: Any):
    """The Ren'Py sprites/backgrounds as ``[(PIL RGB image, labels dict), ...]``
    (see :func:`acg2vec_lab.data.renpy.renpy_images`; imported on call)."""
    from acg2vec_lab.data.renpy import renpy_images as _renpy_images

    return _renpy_images(*args, **kwargs)


__all__ = ["load_image", "scan_images", "ImageLoadError", "synthetic_dataset", "open_dataset", "DanbooruDataset",
           "Post", "Tag", "renpy_images"]
