"""Robust image loading used by every model: always an RGB ``PIL.Image`` or a typed error.

What :func:`load_image` repairs, and how:

* transparency (RGBA, LA, P or L/RGB with a ``transparency`` entry, PA) is composited on white;
* grayscale (L, 1), CMYK, YCbCr, LAB, HSV, palette and 16/32-bit integer or float modes become RGB
  (high-bit-depth values are scaled to 8 bits by their real range, not clipped);
* the EXIF orientation tag is applied (a phone photo stored sideways comes out upright);
* animated GIF / WebP / APNG: the first frame.

What it refuses, with an :class:`ImageLoadError` subclass whose message names the file:

* :class:`NotAnImageError` - the bytes are not an image format Pillow knows (or the file is empty);
* :class:`CorruptImageError` - a known format whose data is truncated or broken;
* :class:`ImageTooLargeError` - more pixels than ``max_pixels`` (a decompression bomb guard that is
  checked from the header, before any pixel is decoded);
* :class:`ImageLoadError` itself - the file is missing or unreadable.

:func:`scan_images` walks a folder and never aborts: it returns the loadable paths and a list of
``(path, reason)`` for everything it skipped (a symlink that leads out of the folder among them).
:func:`read_image_list` does the same for a list of image paths read from a file (a CSV column or one
path per line): a path with ``..``, an absolute path, a NUL byte, an over-long name or a symlink out of
the root is skipped with the reason (:func:`acg2vec_lab.io_safety.safe_join`), the rest are kept.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from acg2vec_lab.io_safety import UnsafePath, check_inside, read_text_file, safe_join

#: Default pixel budget: 8192 x 8192 (~67 MP). Danbooru's largest regular posts are well below.
DEFAULT_MAX_PIXELS = 8192 * 8192

# Pillow's own bomb guard is a module global; it is lifted only while a header is read (our budget is
# checked right after), under a lock so concurrent loaders never leave it lifted.
_OPEN_LOCK = threading.Lock()

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


class ImageLoadError(Exception):
    """An image that cannot be loaded; ``path`` and ``problem`` say which file and why."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"cannot load image {self.path}: {problem}")


class NotAnImageError(ImageLoadError):
    """The file is empty or not in any image format Pillow recognises."""


class CorruptImageError(ImageLoadError):
    """A recognised image format whose data is truncated or damaged."""


class ImageTooLargeError(ImageLoadError):
    """More pixels than the allowed budget (possible decompression bomb)."""


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any decoded mode to RGB, compositing transparency on white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA")
        mode = "RGBA"
    elif mode in ("L", "RGB") and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            scale = 65535.0
        elif mode == "I":
            scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
        else:  # float images: assume [0, 1] when they fit, else their own max
            scale = 1.0 if arr.max(initial=0) <= 1.0 else float(arr.max())
        arr8 = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in ("RGBX", "CMYK", "YCbCr", "LAB", "HSV", "L", "1"):
        return im.convert("RGB")
    if mode.startswith("I;16") or mode.startswith("BGR"):
        return im.convert("RGB")
    return im.convert("RGB")


def load_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``path`` and return it as an 8-bit RGB image (see the module doc for the repairs).

    Args:
        path: image file.
        max_pixels: refuse images with more pixels than this (``None`` disables the guard).

    Raises:
        ImageLoadError: or a subclass, naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(path, "no such file" if not path.exists() else "not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageLoadError(path, f"cannot stat ({exc})") from exc
    if size == 0:
        raise NotAnImageError(path, "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns/raises on its own budget; we apply ours from the header.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _OPEN_LOCK:
                old_max = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
                try:
                    im = Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = old_max
    except UnidentifiedImageError as exc:
        raise NotAnImageError(path, "not a recognised image format") from exc
    except OSError as exc:
        raise CorruptImageError(path, f"unreadable header ({exc})") from exc
    with im:
        w, h = im.size
        if max_pixels is not None and w * h > max_pixels:
            raise ImageTooLargeError(
                path,
                f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} (possible decompression "
                "bomb); pass a larger max_pixels if the file is trusted",
            )
        if w == 0 or h == 0:
            raise CorruptImageError(path, f"zero-sized image {w}x{h}")
        try:
            if getattr(im, "is_animated", False):
                im.seek(0)
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            try:
                im.load()
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
            exif_fixed = ImageOps.exif_transpose(im)
            if exif_fixed is None:  # in-place variant returned None on old Pillow
                exif_fixed = im
            out = _to_rgb(exif_fixed)
            out.load()
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            text = str(exc) or type(exc).__name__
            kind = "truncated" if "truncated" in text.lower() else "corrupt"
            raise CorruptImageError(path, f"{kind} image data ({text})") from exc
    if out is im:
        out = out.copy()
    return out


def iter_image_files(folder: str | os.PathLike, extensions: Iterable[str] | None = IMAGE_EXTENSIONS) -> list[Path]:
    """Every file under ``folder`` (recursively, sorted); filtered by suffix unless ``extensions`` is None."""
    folder = Path(folder)
    exts = None if extensions is None else {e.lower() for e in extensions}
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()]
    if exts is not None:
        files = [p for p in files if p.suffix.lower() in exts]
    return files


def scan_images(
    folder: str | os.PathLike,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    extensions: Iterable[str] | None = None,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Try to load every file under ``folder``; never raises for a bad file.

    Args:
        folder: a directory (searched recursively).
        max_pixels: the decompression-bomb budget passed to :func:`load_image`.
        extensions: only consider these suffixes (e.g. ``(".png", ".jpg")``); ``None`` tries every file.

    Returns:
        ``(paths, skipped)``: the files that load, and ``(path, reason)`` for each one that does not.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"scan_images: {folder} is not a directory")
    ok: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in iter_image_files(folder, extensions):
        try:
            check_inside(folder, path, what="image")
        except UnsafePath as exc:
            skipped.append((path, f"UnsafePath: {exc}"))
            continue
        try:
            load_image(path, max_pixels=max_pixels)
        except ImageLoadError as exc:
            skipped.append((path, f"{type(exc).__name__}: {exc.problem}"))
        except Exception as exc:  # noqa: BLE001 - a scan reports every failure and keeps going
            skipped.append((path, f"{type(exc).__name__}: {exc}"))
        else:
            ok.append(path)
    return ok, skipped


PATH_COLUMNS = ("file", "path", "image", "filename")


def read_image_list(list_file: str | os.PathLike, root: str | os.PathLike | None = None,
                    column: str | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image paths listed in a file, each checked to stay under ``root``; never raises for one entry.

    ``list_file`` is a CSV with a header naming a path column (``column``, else the first of
    :data:`PATH_COLUMNS` present, e.g. the ``file`` column of a ``tags.csv``) or, without such a
    header, one relative path per line (blank lines and ``#`` comments ignored). ``root`` defaults
    to the list file's folder.

    Returns ``(paths, skipped)``: the safe paths (whether the images load is :func:`load_image`'s
    business), and ``(f"{list_file}:{line}", reason)`` for each entry refused by
    :func:`acg2vec_lab.io_safety.safe_join`. A list file that is not UTF-8 text raises a ``ValueError``
    naming it.
    """
    import csv
    import io

    list_file = Path(list_file)
    root = Path(root) if root is not None else list_file.parent
    text = read_text_file(list_file, ValueError, "image list")
    lines = text.splitlines()
    header = next(csv.reader([lines[0]])) if lines else []
    col = column if column is not None else next((c for c in PATH_COLUMNS if c in header), None)
    if column is not None and column not in header:
        raise ValueError(f"{list_file}:1: no column {column!r} in the header {header}")
    entries: list[tuple[int, str]] = []
    if col is not None:
        index = header.index(col)
        try:
            for row_no, row in enumerate(csv.reader(io.StringIO(text)), 1):
                if row_no == 1 or not row:
                    continue
                entries.append((row_no, row[index] if index < len(row) else ""))
        except csv.Error as exc:
            raise ValueError(f"{list_file}: not a readable CSV ({exc})") from exc
    else:
        entries = [(i, line.strip()) for i, line in enumerate(lines, 1)
                   if line.strip() and not line.lstrip().startswith("#")]
    paths: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for line_no, entry in entries:
        where = f"{list_file}:{line_no}"
        try:
            paths.append(safe_join(root, entry, what=f"{where}: image path"))
        except UnsafePath as exc:
            skipped.append((where, str(exc)))
    return paths, skipped
