"""Runtime helpers every notebook calls first: seeds, thread settings, versions, a light UMAP import."""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import random
import sys

import numpy as np

# The packages whose versions a run reports (distribution names).
VERSION_PACKAGES = (
    "acg2vec_lab", "numpy", "tensorflow", "keras", "torch", "torchvision", "open_clip_torch",
    "sentence-transformers", "transformers", "faiss-cpu", "umap-learn", "scikit-learn", "pandas",
    "matplotlib", "papermill", "pillow",
)


def seed_everything(seed: int, frameworks: tuple[str, ...] | None = None) -> int:
    """Seed Python's ``random``, NumPy and the frameworks named in ``frameworks``.

    ``frameworks`` (``"torch"``, ``"tensorflow"``) are imported when needed and seeded; the default
    ``None`` seeds only those already imported (importing TensorFlow costs seconds, so a notebook that
    never uses it should not pay for it). A trainer seeds what it uses itself from its run's seed, so
    the notebook ``SEED`` reaches training through ``spec.config(PROFILE, seed=SEED)``.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ["PYTHONHASHSEED"] = str(seed)
    os.environ["ACG2VEC_SEED"] = str(seed)
    unknown = set(frameworks or ()) - {"torch", "tensorflow"}
    if unknown:
        raise ValueError(f"seed_everything: unknown framework(s) {sorted(unknown)}; choose torch, tensorflow")
    if "torch" in sys.modules or "torch" in (frameworks or ()):
        seed_torch(seed)
    if "tensorflow" in sys.modules or "tensorflow" in (frameworks or ()):
        seed_tensorflow(seed)
    return seed


def seed_torch(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def seed_tensorflow(seed: int) -> None:
    import tensorflow as tf

    tf.random.set_seed(seed)
    try:
        import keras

        keras.utils.set_random_seed(seed)
    except Exception:  # pragma: no cover - keras missing is reported by versions()
        pass


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default: every core, 2 here) in NumPy's BLAS, torch and TensorFlow.

    TensorFlow's inter/intra-op settings only take effect before its runtime starts, so call this
    early; later calls still set torch and the environment for child processes.
    """
    n = n or os.cpu_count() or 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(min(n, 2))
        except RuntimeError:  # runtime already initialised: settings are fixed for this process
            pass
    return n


def versions(packages: tuple[str, ...] = VERSION_PACKAGES) -> dict[str, str]:
    """Python, platform and installed versions of the packages this workbook depends on."""
    out = {"python": platform.python_version(), "platform": platform.platform(), "cpus": str(os.cpu_count())}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def setup_notebook(seed: int, threads: int | None = None, data: str | None = None) -> dict[str, str]:
    """The first code cell of every notebook: threads, seeds, the notebook's data source, the figure
    style, and the versions table (returned).

    ``data`` (``synthetic`` | ``real`` | ``mixed`` | ``none``) is the default data source of the
    notebook's ``record()`` rows and saved figures (see :mod:`acg2vec_lab.record`).
    """
    from acg2vec_lab import viz
    from acg2vec_lab.record import set_data_source

    set_threads(threads)
    seed_everything(seed)
    set_data_source(data)
    viz.style()
    return versions()
