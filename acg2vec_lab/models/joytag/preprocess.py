"""JoyTag preprocessing: pad to a white square (image centred), bicubic resize, /255, CLIP mean/std, NCHW."""
from __future__ import annotations

import numpy as np
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Paste ``image`` (RGB) centred on a ``fill`` square of side max(w, h); offsets ``(max-w)//2, (max-h)//2``."""
    image = image.convert("RGB")
    w, h = image.size
    side = max(w, h)
    if w == h:
        return image
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def preprocess(image: Image.Image, size: int, resample: int = Image.BICUBIC) -> np.ndarray:
    """One PIL image -> ``(3, size, size)`` float32, CLIP-normalised, NCHW without the batch axis.

    Resizes only when the padded square is not already ``size`` (as the released inference code);
    training in the original used BILINEAR after the same padding (pass ``Image.BILINEAR``).
    """
    square = pad_to_square(image)
    if square.size[0] != size:
        square = square.resize((size, size), resample)
    x = np.asarray(square, dtype=np.float32) / 255.0
    x = (x - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
