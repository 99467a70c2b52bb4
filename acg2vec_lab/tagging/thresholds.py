"""From probabilities to a tag list: per-category thresholds, rating arg-max, exclusions, a cap.

Order of operations for one image (what users of the WD14/kohya taggers expect):

1. every non-rating tag whose probability is >= its threshold is kept (per-tag thresholds, if
   given, override the category's; categories without their own threshold use ``general``);
2. exclusion patterns are applied to the kept tags (``fnmatch`` wildcards such as ``*_background``
   or exact names; a pattern starting with ``re:`` is a Python regular expression matched in full);
3. the kept tags are sorted by confidence and cut to ``max_tags``;
4. the rating block (category 9) contributes exactly one tag, its arg-max, never thresholded.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.tagging.categories import CATEGORY_CHARACTER, CATEGORY_GENERAL, CATEGORY_RATING


@dataclasses.dataclass(frozen=True)
class TaggedTag:
    name: str
    score: float
    category: int


@dataclasses.dataclass
class ThresholdPolicy:
    """How probabilities become tags.

    Attributes:
        general: threshold for general tags and any category without its own threshold.
        character: threshold for character tags (category 4).
        per_category: extra thresholds by category code (e.g. ``{3: 0.7}`` for copyright).
        per_tag: optional ``(n_tags,)`` thresholds overriding the category ones (NaN = use category).
        max_tags: keep at most this many non-rating tags (highest confidence first); None = no cap.
        exclude: wildcard patterns, or ``re:<regex>``, removed after thresholding.
        rating: emit the rating block's arg-max (``True``) or no rating at all (``False``).
    """

    general: float = 0.35
    character: float = 0.85
    per_category: dict[int, float] = dataclasses.field(default_factory=dict)
    per_tag: np.ndarray | None = None
    max_tags: int | None = None
    exclude: tuple[str, ...] = ()
    rating: bool = True

    def category_threshold(self, category: int) -> float:
        if category in self.per_category:
            return float(self.per_category[category])
        if category == CATEGORY_CHARACTER:
            return float(self.character)
        return float(self.general)

    def thresholds_for(self, categories: Sequence[int]) -> np.ndarray:
        """The effective threshold of every tag, ``(n_tags,)``; rating tags get +inf (arg-max instead)."""
        cats = np.asarray(categories)
        th = np.array([self.category_threshold(int(c)) for c in cats], dtype=np.float64)
        if self.per_tag is not None:
            per = np.asarray(self.per_tag, dtype=np.float64)
            if per.shape != th.shape:
                raise ValueError(f"per_tag thresholds have shape {per.shape}, expected {th.shape}")
            th = np.where(np.isnan(per), th, per)
        th[cats == CATEGORY_RATING] = np.inf
        return th


# Presets: (general, character). "balanced" is the common default of the WD14/kohya taggers.
PRESETS: dict[str, tuple[float, float]] = {
    "balanced": (0.35, 0.85),
    "precision": (0.5, 0.9),   # fewer, surer tags (captions for training data)
    "recall": (0.25, 0.7),     # more candidate tags (search, hand curation)
    "original": (0.5, 0.5),    # DeepDanbooru's CLI default is one threshold 0.5 for every tag
}


def preset(name: str, **overrides) -> ThresholdPolicy:
    """A named :class:`ThresholdPolicy` (``balanced``, ``precision``, ``recall``, ``original``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    g, c = PRESETS[name]
    return ThresholdPolicy(general=g, character=c, **overrides)


class Excluder:
    """Compiled exclusion patterns; ``excluded(name)`` is True when any pattern matches in full."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        regexes = []
        for p in self.patterns:
            if p.startswith("re:"):
                regexes.append(re.compile(p[3:]))
            else:
                regexes.append(re.compile(fnmatch.translate(p)))
        self._regexes = regexes

    def excluded(self, name: str) -> bool:
        # A pattern written with spaces also matches the underscore spelling and vice versa.
        alt = name.replace("_", " ")
        return any(r.fullmatch(name) or r.fullmatch(alt) for r in self._regexes)


def select_tags(probs: np.ndarray, tags: Sequence[str], categories: Sequence[int],
                policy: ThresholdPolicy | None = None) -> list[TaggedTag]:
    """The tags of one image, sorted by confidence (rating last).

    Args:
        probs: ``(n_tags,)`` probabilities of one image.
        tags, categories: the tagger's vocabulary and category codes.
        policy: thresholds etc.; default :class:`ThresholdPolicy()`.
    """
    policy = policy or ThresholdPolicy()
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(tags),):
        raise ValueError(f"probabilities have shape {probs.shape}, expected ({len(tags)},)")
    cats = np.asarray(categories)
    th = policy.thresholds_for(cats)
    keep = np.flatnonzero(probs >= th)
    excluder = Excluder(policy.exclude) if policy.exclude else None
    out = [TaggedTag(tags[i], float(probs[i]), int(cats[i])) for i in keep
           if excluder is None or not excluder.excluded(tags[i])]
    out.sort(key=lambda t: (-t.score, t.name))
    if policy.max_tags is not None:
        out = out[: max(int(policy.max_tags), 0)]
    if policy.rating:
        rating_idx = np.flatnonzero(cats == CATEGORY_RATING)
        if rating_idx.size:
            best = int(rating_idx[np.argmax(probs[rating_idx])])
            out.append(TaggedTag(tags[best], float(probs[best]), CATEGORY_RATING))
    return out


def apply_thresholds(probs: np.ndarray, categories: Sequence[int], policy: ThresholdPolicy | None = None) -> np.ndarray:
    """Binary predictions ``(N, n_tags)`` for evaluation: thresholds per tag, rating block as arg-max.

    Exclusions and the cap are output-formatting choices and are not applied here.
    """
    policy = policy or ThresholdPolicy()
    probs = np.asarray(probs)
    cats = np.asarray(categories)
    pred = probs >= policy.thresholds_for(cats)[None, :]
    rating_idx = np.flatnonzero(cats == CATEGORY_RATING)
    if rating_idx.size and policy.rating:
        pred[:, rating_idx] = False
        best = rating_idx[np.argmax(probs[:, rating_idx], axis=1)]
        pred[np.arange(len(probs)), best] = True
    return pred


__all__ = ["TaggedTag", "ThresholdPolicy", "PRESETS", "preset", "Excluder", "select_tags", "apply_thresholds",
           "CATEGORY_GENERAL", "CATEGORY_CHARACTER", "CATEGORY_RATING"]


MCUT_CHARACTER_FLOOR = 0.15  # the wd-tagger Space: with MCut on, character uses max(0.15, MCut)


def mcut_threshold(probs: Any) -> float:
    """MCut (as the wd-tagger Space): sort descending, the midpoint of the largest gap between neighbours.

    Ties for the largest gap go to the first (highest) one. Fewer than two values have no gap: a
    ``ValueError``.
    """
    p = np.asarray(probs, dtype=np.float64).ravel()
    if p.size < 2:
        raise ValueError(f"MCut needs at least two probabilities, got {p.size}")
    s = np.sort(p)[::-1]
    gaps = s[:-1] - s[1:]
    t = int(np.argmax(gaps))
    return float((s[t] + s[t + 1]) / 2)


def mcut_policy(probs: Any, categories: Sequence[int], policy: ThresholdPolicy | None = None,
                general: bool = True, character: bool = True) -> ThresholdPolicy:
    """One image's :class:`ThresholdPolicy` with MCut thresholds (the Space's ``*_mcut_enabled``).

    ``general``: the general tags (category 0) use the MCut of their probabilities; ``character``: the
    character tags (category 4) use ``max(0.15, MCut)`` of theirs. A category with fewer than two tags
    keeps the threshold of ``policy`` (default :class:`ThresholdPolicy()`, 0.35 / 0.85); everything
    else (cap, exclusions, rating) is kept from ``policy``.
    """
    policy = policy or ThresholdPolicy()
    p = np.asarray(probs, dtype=np.float64)
    cats = np.asarray(categories)
    if p.shape != cats.shape:
        raise ValueError(f"probabilities have shape {p.shape}, categories {cats.shape}")
    per = dict(policy.per_category)
    if general and np.count_nonzero(cats == CATEGORY_GENERAL) >= 2:
        per[CATEGORY_GENERAL] = mcut_threshold(p[cats == CATEGORY_GENERAL])
    if character and np.count_nonzero(cats == CATEGORY_CHARACTER) >= 2:
        per[CATEGORY_CHARACTER] = max(MCUT_CHARACTER_FLOOR, mcut_threshold(p[cats == CATEGORY_CHARACTER]))
    return dataclasses.replace(policy, per_category=per)
