"""acg2vec_lab: rebuild, explain and evaluate the ACG2vec family of anime-illustration models.

Importing the package is cheap (no TensorFlow or torch): it only sets offline-safe defaults so that
nothing ever blocks on a model-hub look-up, then exposes the notebook helpers.
"""
from acg2vec_lab import _env  # noqa: F401  (sets environment defaults before anything heavy loads)
from acg2vec_lab.config import current_profile, load_config
from acg2vec_lab.record import record, save_fig

__all__ = ["record", "save_fig", "load_config", "current_profile"]
__version__ = "0.1.0"
