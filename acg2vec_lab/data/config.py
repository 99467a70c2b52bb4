"""Schema of the data-set configs ``acg2vec_lab/configs/data/{tiny,small,full}.json``.

``load_config("data", profile)`` returns a :class:`SyntheticDataConfig`: how big the synthetic
Danbooru-format set is for that profile and how its images are drawn.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticDataConfig:
    n_images: int  # posts to generate
    min_size: int  # shortest image side, pixels (inclusive)
    max_size: int  # longest image side, pixels (inclusive)
    n_series: int  # copyright tags in the roster (each a real series from the vocabulary)
    characters_per_series: int  # characters drawn from each series (real character tags)
    seed: int = 0  # generator seed; the data set is a pure function of (config, seed)
    val_fraction: float = 0.1  # share of post ids hashed into "val"
    test_fraction: float = 0.1  # share of post ids hashed into "test"
    jpeg_quality: int = 90  # images are written as JPEG like most Danbooru posts
    workers: int = 0  # processes for generation; 0 = every core

    def __post_init__(self) -> None:
        if self.n_images < 1:
            raise ValueError("n_images must be >= 1")
        if not 16 <= self.min_size <= self.max_size:
            raise ValueError(f"need 16 <= min_size <= max_size, got {self.min_size}, {self.max_size}")
        if self.n_series < 1 or self.characters_per_series < 1:
            raise ValueError("n_series and characters_per_series must be >= 1")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1):
            raise ValueError("val_fraction + test_fraction must be in [0, 1)")
