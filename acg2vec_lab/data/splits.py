"""Deterministic splits by id, and a leak check across splits (exact and perceptual duplicates).

:func:`split_of` hashes an id (post id or anime id) with SHA-256, so the split of an item never
depends on the order, the size of the set or the Python hash seed, and adding posts never moves an
existing one. :func:`find_leaks` looks for the same picture in two splits: byte-identical files
(SHA-256) and near-identical pictures: pairs whose 64-bit perceptual hashes (``imagehash.phash``) are
within a Hamming distance are candidates, confirmed by comparing 32x32 thumbnails (mean absolute
difference). The confirmation matters for simple drawings: two different full-body figures on plain
backgrounds can have phash distance 2, while a re-encoded or resized copy also matches pixel-wise.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from acg2vec_lab.io import file_digest
from acg2vec_lab.retrieval.dedup import cross_split_pairs, hamming_matrix, perceptual_hashes

SPLITS = ("train", "val", "test")


def split_fraction(key: int | str, salt: str = "acg2vec-split-v1") -> float:
    """A uniform number in [0, 1) fixed by ``key`` (SHA-256 of ``salt:key``)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(key: int | str, val_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """``"test"`` for the first ``test_fraction`` of hash space, then ``"val"``, else ``"train"``."""
    u = split_fraction(key)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


@dataclass
class LeakReport:
    """Result of :func:`find_leaks`."""

    n_items: int
    exact: list[tuple[str, str, str, str]] = field(default_factory=list)  # (split_a, id_a, split_b, id_b)
    perceptual: list[tuple[str, str, str, str, int]] = field(default_factory=list)  # ... + hamming distance
    within_split_exact: int = 0  # duplicate pairs inside one split (not leaks; reported for information)
    threshold: int = 0
    candidates_rejected: int = 0  # phash-close pairs across splits whose thumbnails differ (not leaks)

    @property
    def n_leaks(self) -> int:
        return len(self.exact) + len(self.perceptual)

    def summary(self) -> dict[str, int]:
        return {"items": self.n_items, "exact_leaks": len(self.exact), "perceptual_leaks": len(self.perceptual),
                "within_split_exact_duplicates": self.within_split_exact, "phash_threshold": self.threshold,
                "phash_candidates_rejected": self.candidates_rejected}


def thumbnail(path: str | os.PathLike, size: int = 32) -> np.ndarray:
    """The image as a ``size x size`` RGB float array in [0, 1] (aspect ignored, area-averaged)."""
    from PIL import Image

    from acg2vec_lab.data.images import load_image

    return np.asarray(load_image(path).resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0


def find_leaks(
    items: Sequence[tuple[str, str, str | os.PathLike]],
    phash_threshold: int = 4,
    hasher: Callable[[str | os.PathLike], np.ndarray] | None = None,
    max_thumb_diff: float | None = 0.02,
) -> LeakReport:
    """Duplicates of one picture across different splits.

    Args:
        items: ``(split, item_id, image_path)`` triples.
        phash_threshold: two images whose perceptual hashes differ in at most this many of 64 bits
            count as the same picture (0 = identical hashes only; < 0 disables the perceptual check).
        hasher: path -> bool hash bits (default: the 64-bit ``imagehash.phash`` of
            :func:`acg2vec_lab.retrieval.dedup.perceptual_hashes`).
        max_thumb_diff: a phash candidate is a leak only if the mean absolute difference of the two
            32x32 thumbnails is at most this (``None``: every phash candidate is a leak).
    """
    report = LeakReport(n_items=len(items), threshold=phash_threshold)
    report.exact, report.within_split_exact = cross_split_pairs(
        (split, str(item_id), file_digest(path, "sha256")) for split, item_id, path in items)
    if phash_threshold < 0 or not items:
        return report
    exact_pairs = {frozenset([(a, b), (c, d)]) for a, b, c, d in report.exact}
    paths = [path for _, _, path in items]
    bits = perceptual_hashes(paths) if hasher is None else np.stack([hasher(path) for path in paths])
    splits = np.array([s for s, _, _ in items])
    ids = [str(i) for _, i, _ in items]
    # Hamming distances between every pair, one row block at a time (n^2 distances stay small).
    for start in range(0, len(items), 512):
        block = bits[start:start + 512]
        dist = hamming_matrix(block, bits)
        rows, cols = np.nonzero(dist <= phash_threshold)
        for r, c in zip(rows, cols):
            a = start + int(r)
            b = int(c)
            if b <= a or splits[a] == splits[b]:
                continue
            pair = frozenset([(splits[a], ids[a]), (splits[b], ids[b])])
            if pair in exact_pairs:
                continue
            if max_thumb_diff is not None:
                diff = float(np.abs(thumbnail(items[a][2]) - thumbnail(items[b][2])).mean())
                if diff > max_thumb_diff:
                    report.candidates_rejected += 1
                    continue
            report.perceptual.append((str(splits[a]), ids[a], str(splits[b]), ids[b], int(dist[r, c])))
    return report


def dataset_leaks(dataset, phash_threshold: int = 4) -> LeakReport:
    """:func:`find_leaks` over every post of a :class:`~acg2vec_lab.data.danbooru.DanbooruDataset`."""
    items = [(name, str(p.id), dataset.image_path(p)) for name in SPLITS for p in dataset.split(name)]
    return find_leaks(items, phash_threshold=phash_threshold)


def split_counts(keys: Iterable[int | str], val_fraction: float = 0.1, test_fraction: float = 0.1) -> dict[str, int]:
    counts = {s: 0 for s in SPLITS}
    for k in keys:
        counts[split_of(k, val_fraction, test_fraction)] += 1
    return counts
