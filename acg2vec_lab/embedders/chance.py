"""The chance baseline: a random unit vector per input, for the comparison tables.

The vector depends only on the input (its pixels, or its text), so the same picture always gets the
same vector, and any score it reaches is what a ranking that ignores the content reaches.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.embedders import Embedder
from acg2vec_lab.retrieval.metrics import l2_normalize

DIM = 128
WEIGHTS = "none: random vectors (chance baseline)"


def _key(item: Any) -> bytes:
    if hasattr(item, "tobytes") and hasattr(item, "size"):  # PIL image: its pixels
        return item.convert("RGB").tobytes()
    if isinstance(item, str):
        return item.encode("utf-8")
    with open(item, "rb") as f:  # a path
        return f.read()


def random_vectors(inputs: Sequence[Any], dim: int = DIM) -> np.ndarray:
    """``(N, dim)`` float32 unit vectors seeded by a hash of each input."""
    out = np.zeros((len(inputs), dim), dtype=np.float32)
    for i, item in enumerate(inputs):
        seed = int.from_bytes(hashlib.sha256(_key(item)).digest()[:8], "little")
        v = np.random.default_rng(seed).normal(size=dim)
        out[i] = v
    return l2_normalize(out)


def make_embedders(profile: str, seed: int | None = None) -> list[Embedder]:
    """``chance`` for images and ``chance_text`` for texts."""
    return [
        Embedder(name="chance", modality="image", dim=DIM, weights=WEIGHTS, encode=random_vectors, framework="numpy"),
        Embedder(name="chance_text", modality="text", dim=DIM, weights=WEIGHTS, encode=random_vectors,
                 framework="numpy"),
    ]
