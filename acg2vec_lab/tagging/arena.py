"""One evaluation protocol for every tagger on the same held-out posts (the JoyTag "arena" protocol).

Taggers differ in vocabulary (DeepDanbooru's 9,176 tags, WD14's ~10,800, JoyTag's 5,813, the ones
trained here), in output scale and in the thresholds their authors recommend, so comparing their own
reported numbers compares nothing. The arena scores each of them:

* on the **same images** (the test split of the data the notebook runs on);
* on the **intersection** of every tagger's vocabulary with the ground-truth vocabulary (rating tags
  left out: they are one-of-k and scored apart), so no tagger is charged for tags another cannot
  output;
* with **F1 at each model's recommended thresholds** (general / character; WD14 0.35 / 0.85, the
  presets here), **F1 where micro precision equals recall** (threshold-free, how the WD model cards
  report it), **mAP** (macro over tags with a positive), each **per category** (general,
  character, and the rest together);
* with **bootstrap confidence intervals** over images (percentile, ``n_boot`` resamples, seeded);
* beside the **tag-prior baseline** (every image gets the train frequency of each tag: the floor
  that frequent tags alone reach), which every tagger must beat to be worth its pixels.

:func:`arena_table` takes probabilities (so a notebook can pass cached ones) and
:func:`score_taggers` runs the taggers on image files first. Nothing here imports a framework.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from acg2vec_lab.tagging.categories import CATEGORY_CHARACTER, CATEGORY_GENERAL, CATEGORY_RATING
from acg2vec_lab.tagging.metrics import f1_scores, mean_average_precision, precision_equals_recall, tag_prior

PRIOR = "tag prior (baseline)"


@dataclasses.dataclass
class Contender:
    """One tagger's scores on the arena images, in its own vocabulary.

    Attributes:
        name: the row label (``"wd14"``, ``"deepdanbooru (trained here, SYNTHETIC)"``, ...).
        tags: its vocabulary (column ``j`` of ``probs`` is ``tags[j]``).
        probs: ``(N, len(tags))`` probabilities on the arena images, in the arena's image order.
        general, character: its recommended thresholds.
        weights: where its weights come from (shown in the table).
    """

    name: str
    tags: Sequence[str]
    probs: np.ndarray
    general: float = 0.35
    character: float = 0.85
    weights: str = ""


def common_vocabulary(truth_tags: Sequence[str], truth_categories: Sequence[int],
                      contenders: Sequence[Contender]) -> list[str]:
    """Ground-truth tags (rating excluded) that every contender can output, in ground-truth order."""
    shared = set.intersection(*[set(c.tags) for c in contenders]) if contenders else set()
    return [t for t, c in zip(truth_tags, truth_categories) if c != CATEGORY_RATING and t in shared]


def _columns(tags: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    index = {t: j for j, t in enumerate(tags)}
    return np.array([index[t] for t in wanted], dtype=np.int64)


def _scores(y: np.ndarray, p: np.ndarray, th: np.ndarray) -> dict[str, float]:
    f1 = f1_scores(y, p >= th[None, :])
    return {"micro_f1": f1["micro_f1"], "macro_f1": f1["macro_f1"], "mAP": mean_average_precision(y, p),
            "f1_at_p_eq_r": precision_equals_recall(y, p)["f1"]}


def _groups(categories: np.ndarray) -> dict[str, np.ndarray]:
    out = {"all": np.arange(len(categories))}
    for name, code in (("general", CATEGORY_GENERAL), ("character", CATEGORY_CHARACTER)):
        idx = np.flatnonzero(categories == code)
        if len(idx):
            out[name] = idx
    rest = np.flatnonzero((categories != CATEGORY_GENERAL) & (categories != CATEGORY_CHARACTER))
    if len(rest):
        out["other"] = rest
    return out


def arena_table(y_true: np.ndarray, truth_tags: Sequence[str], truth_categories: Sequence[int],
                contenders: Sequence[Contender], y_train: np.ndarray | None = None, n_boot: int = 200,
                seed: int = 0, ci: float = 0.95) -> Any:
    """The arena as a DataFrame: one row per (contender, category group), the prior first.

    Args:
        y_true: ``(N, len(truth_tags))`` 0/1 ground truth of the arena images.
        truth_tags, truth_categories: the ground-truth vocabulary and its category codes.
        contenders: the taggers' probabilities (:class:`Contender`).
        y_train: ``(N_train, len(truth_tags))`` training labels for the tag-prior baseline (no prior row
            without them).
        n_boot: bootstrap resamples of the images for the intervals (0: none).
    Columns: ``model, weights, group, n_tags, positives, micro_f1, micro_f1_lo, micro_f1_hi, macro_f1,
    mAP, mAP_lo, mAP_hi, f1_at_p_eq_r, thresholds``; ``attrs["vocabulary"]`` holds the common tags.
    """
    import pandas as pd

    y_true = np.asarray(y_true)
    if y_true.shape[1] != len(truth_tags) or len(truth_categories) != len(truth_tags):
        raise ValueError(f"ground truth has {y_true.shape[1]} columns for {len(truth_tags)} tags and "
                         f"{len(truth_categories)} categories")
    for c in contenders:
        if np.asarray(c.probs).shape != (len(y_true), len(c.tags)):
            raise ValueError(f"{c.name}: probabilities of shape {np.asarray(c.probs).shape}, expected "
                             f"({len(y_true)}, {len(c.tags)}) (one row per arena image, one column per tag)")
    vocab = common_vocabulary(truth_tags, truth_categories, contenders)
    if not vocab:
        raise ValueError("the taggers share no tag with the ground truth: nothing to compare")
    tcols = _columns(truth_tags, vocab)
    y = y_true[:, tcols].astype(bool)
    cats = np.asarray(truth_categories)[tcols]
    rows: list[tuple[str, str, np.ndarray, np.ndarray, str]] = []  # name, weights, probs, thresholds, label
    if y_train is not None:
        prior = np.tile(tag_prior(np.asarray(y_train)[:, tcols]), (len(y), 1))
        th = np.full(len(vocab), precision_equals_recall(y, prior)["threshold"])
        rows.append((PRIOR, "train-split tag frequencies", prior, th, "P=R threshold"))
    for c in contenders:
        p = np.asarray(c.probs, dtype=np.float64)[:, _columns(c.tags, vocab)]
        th = np.where(cats == CATEGORY_CHARACTER, c.character, c.general)
        rows.append((c.name, c.weights, p, th, f"{c.general:g} / {c.character:g}"))
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(y), len(y)) for _ in range(n_boot)]
    lo_q, hi_q = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    out = []
    for name, weights, p, th, label in rows:
        for group, idx in _groups(cats).items():
            yg, pg, tg = y[:, idx], p[:, idx], th[idx]
            row = {"model": name, "weights": weights, "group": group, "n_tags": len(idx),
                   "positives": int(yg.sum()), **_scores(yg, pg, tg), "thresholds": label}
            if samples:
                boot = [_scores(yg[s], pg[s], tg) for s in samples]
                for key in ("micro_f1", "mAP"):
                    vals = np.array([b[key] for b in boot], dtype=np.float64)
                    vals = vals[np.isfinite(vals)]
                    row[f"{key}_lo"], row[f"{key}_hi"] = (float(np.percentile(vals, lo_q)),
                                                          float(np.percentile(vals, hi_q))) if len(vals) else (
                                                              float("nan"), float("nan"))
            out.append(row)
    cols = ["model", "weights", "group", "n_tags", "positives", "micro_f1", "micro_f1_lo", "micro_f1_hi",
            "macro_f1", "mAP", "mAP_lo", "mAP_hi", "f1_at_p_eq_r", "thresholds"]
    table = pd.DataFrame(out)[[c for c in cols if c in out[0]]]
    table.attrs["vocabulary"] = vocab
    return table


def score_taggers(taggers: Mapping[str, Any], paths: Sequence[Any], thresholds: Mapping[str, tuple[float, float]]
                  | None = None, batch_size: int = 8) -> tuple[list[Contender], list[Any], list[dict[str, str]]]:
    """Run every tagger on ``paths`` and return its :class:`Contender`, the images all of them read, and
    the skipped ones (a file one tagger cannot read is dropped for every tagger: same images for all)."""
    from acg2vec_lab.tagging.pipeline import predict_paths

    thresholds = dict(thresholds or {})
    raw: dict[str, tuple[np.ndarray, list[Any]]] = {}
    skipped: list[dict[str, str]] = []
    for name, tagger in taggers.items():
        probs, ok, errors = predict_paths(tagger, paths, batch_size=batch_size)
        raw[name] = (probs, [str(p) for p in ok])
        skipped += [{**e, "tagger": name} for e in errors]
    keep = [str(p) for p in paths if all(str(p) in set(ok) for _, ok in raw.values())]
    contenders = []
    for name, tagger in taggers.items():
        probs, ok = raw[name]
        pos = {p: i for i, p in enumerate(ok)}
        g, c = thresholds.get(name, (0.35, 0.85))
        contenders.append(Contender(name, list(tagger.tags), probs[[pos[p] for p in keep]], g, c,
                                    getattr(tagger, "source", "")))
    return contenders, keep, skipped
