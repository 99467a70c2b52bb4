"""Offline-safe process defaults, applied once at package import (before TF, torch or HF load)."""
import os

_DEFAULTS = {
    # No model hub is reachable here: never let a library try (and hang) on a look-up.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    # Quieter TensorFlow start-up; oneDNN's reordering makes float results differ run to run.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TOKENIZERS_PARALLELISM": "false",
    # Keep the Keras 3 API (TensorFlow backend) explicit.
    "KERAS_BACKEND": "tensorflow",
}
for _k, _v in _DEFAULTS.items():
    os.environ.setdefault(_k, _v)

# numba (UMAP) compiles on the first fit of every process; a persistent cache makes reruns warm.
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    os.path.join(os.environ.get("ACG2VEC_CACHE", os.path.expanduser("~/.cache/acg2vec_lab")), "numba"),
)

# TensorFlow and triton (pulled in by torch when open_clip or sentence-transformers load) each carry
# LLVM; if TensorFlow loads first, triton's import aborts the process with "Option
# 'bitcode-mdindex-threshold' registered more than once". Loading triton first (0.2 s) avoids it.
# tests/test_environment.py checks both frameworks together in one process.
try:  # pragma: no cover - depends on the installed torch build
    import triton  # noqa: F401
except Exception:
    pass
