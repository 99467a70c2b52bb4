"""Multi-label tagging metrics on ``(N, n_tags)`` arrays (shared by the DeepDanbooru and JoyTag notebooks).

Conventions: ``y_true`` is ``(N, n_tags)`` bool/0-1 ground truth, ``probs`` ``(N, n_tags)`` scores in
[0, 1], ``pred`` ``(N, n_tags)`` bool predictions. *Macro* averages run over the tags that have at
least one positive in ``y_true`` (a tag absent from the evaluation split has no defined recall);
``macro_over="all"`` averages over every tag with 0 for undefined values, like scikit-learn's
``zero_division=0``.

Baselines and gates: :func:`prior_baseline` (the tag prior: each tag scored with its train frequency,
thresholded like the model), :func:`gates_vs_baseline`, :func:`tagger_prior_gates` (the DeepDanbooru
tagger's gates with each profile's margin and where it comes from). Note that the prior gives every image
the same score, so its AP is exactly the test prevalence, which on a small split is *below* the expected
AP of a random ranking (with few positives a random order's AP exceeds the prevalence).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_bool(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(bool)


def _safe_div(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def _f1(p, r):
    return _safe_div(2 * p * r, p + r)


def f1_scores(y_true: np.ndarray, pred: np.ndarray, macro_over: str = "present") -> dict[str, float]:
    """Micro precision/recall/F1 and macro F1 of binary predictions.

    Args:
        macro_over: ``"present"`` (tags with a positive in ``y_true``) or ``"all"``.
    """
    y, p = _as_bool(y_true), _as_bool(pred)
    tp = (y & p).sum(0).astype(np.float64)
    fp = (~y & p).sum(0).astype(np.float64)
    fn = (y & ~p).sum(0).astype(np.float64)
    micro_p = float(_safe_div(tp.sum(), tp.sum() + fp.sum()))
    micro_r = float(_safe_div(tp.sum(), tp.sum() + fn.sum()))
    per_tag = _f1(_safe_div(tp, tp + fp), _safe_div(tp, tp + fn))
    mask = (tp + fn) > 0 if macro_over == "present" else np.ones_like(tp, dtype=bool)
    return {
        "micro_precision": micro_p, "micro_recall": micro_r, "micro_f1": float(_f1(micro_p, micro_r)),
        "macro_f1": float(per_tag[mask].mean()) if mask.any() else 0.0, "n_tags_macro": int(mask.sum()),
    }


def f1_at(y_true: np.ndarray, probs: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """:func:`f1_scores` of ``probs >= threshold`` (a scalar or one threshold per tag)."""
    th = np.asarray(threshold, dtype=np.float64)
    return f1_scores(y_true, np.asarray(probs) >= (th[None, :] if th.ndim == 1 else th))


def micro_pr_curve(y_true: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    """Micro-averaged precision/recall at every distinct score (all tags pooled), highest threshold first."""
    y = _as_bool(y_true).ravel()
    s = np.asarray(probs, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    n_pred = np.arange(1, len(s) + 1)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each distinct score
    tp, n_pred = tp[last], n_pred[last]
    total = max(int(y.sum()), 1)
    return {"threshold": s[last], "precision": tp / n_pred, "recall": tp / total}


def precision_equals_recall(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The threshold where micro precision equals recall (how WD tagger model cards report F1).

    Returns the distinct-score threshold that minimises |P - R|, with P, R and F1 there.
    """
    curve = micro_pr_curve(y_true, probs)
    i = int(np.argmin(np.abs(curve["precision"] - curve["recall"])))
    p, r = float(curve["precision"][i]), float(curve["recall"][i])
    return {"threshold": float(curve["threshold"][i]), "precision": p, "recall": r, "f1": float(_f1(p, r))}


def _ranked_cuts(y: np.ndarray, score_col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every distinct-score cut of one tag, best score first, ties grouped (as scikit-learn).

    Returns ``(cut_score, tp, n_predicted, n_positives)``: predicting "score >= cut_score[i]" gives
    ``tp[i]`` true positives out of ``n_predicted[i]`` predictions.
    """
    s = np.asarray(score_col, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    return s[last], np.cumsum(y)[last], np.arange(1, len(s) + 1)[last], int(y.sum())


def best_f1_threshold(y_true_col: np.ndarray, score_col: np.ndarray) -> tuple[float, float]:
    """``(threshold, F1)`` maximising F1 of one tag over its distinct scores; ``(nan, 0)`` without positives."""
    y = _as_bool(y_true_col)
    if not y.any():
        return float("nan"), 0.0
    cut, tp, n_pred, positives = _ranked_cuts(y, score_col)
    f1 = 2 * tp / (n_pred + positives)
    j = int(np.argmax(f1))
    return float(cut[j]), float(f1[j])


def per_tag_optimal_thresholds(y_true: np.ndarray, probs: np.ndarray, min_positives: int = 1,
                               fallback: float = float("nan")) -> np.ndarray:
    """One F1-optimal threshold per tag (fit on a validation split); ``fallback`` for tags with too few positives."""
    y = _as_bool(y_true)
    out = np.full(y.shape[1], fallback, dtype=np.float64)
    for j in range(y.shape[1]):
        if y[:, j].sum() >= min_positives:
            out[j] = best_f1_threshold(y[:, j], probs[:, j])[0]
    return out


def mcut(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MCut: per image, cut at the largest gap between consecutive sorted scores.

    Returns ``(thresholds (N,), pred (N, n_tags))``; the threshold is the midpoint of the largest gap,
    so the tags above the gap are predicted.
    """
    p = np.asarray(probs, dtype=np.float64)
    s = -np.sort(-p, axis=1)
    gaps = s[:, :-1] - s[:, 1:]
    k = np.argmax(gaps, axis=1)
    rows = np.arange(len(p))
    th = (s[rows, k] + s[rows, k + 1]) / 2
    return th, p > th[:, None]


def average_precision(y_true_col: np.ndarray, score_col: np.ndarray) -> float:
    """Average precision of one tag (sum over positives of precision at their rank; ties grouped, as scikit-learn)."""
    y = _as_bool(y_true_col)
    if not y.any():
        return float("nan")
    _, tp, n_pred, positives = _ranked_cuts(y, score_col)
    precision = tp / n_pred
    recall = tp / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Macro mAP over the tags with at least one positive."""
    y = _as_bool(y_true)
    aps = [average_precision(y[:, j], probs[:, j]) for j in range(y.shape[1]) if y[:, j].any()]
    return float(np.mean(aps)) if aps else float("nan")


def evaluate(y_true: np.ndarray, probs: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Micro/macro F1 of ``pred``, mAP and micro AP of ``probs``, and the P=R point, in one dict."""
    out = f1_scores(y_true, pred)
    out["mAP"] = mean_average_precision(y_true, probs)
    out["micro_AP"] = average_precision(np.asarray(y_true).ravel(), np.asarray(probs).ravel())
    pr = precision_equals_recall(y_true, probs)
    out["f1_at_p_eq_r"] = pr["f1"]
    out["threshold_p_eq_r"] = pr["threshold"]
    return out


def per_category(y_true: np.ndarray, probs: np.ndarray, pred: np.ndarray, categories: Sequence[int],
                 names: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """:func:`f1_scores` and mAP restricted to each tag category (rows ready for a DataFrame)."""
    from acg2vec_lab.tagging.categories import CATEGORY_NAMES

    names = names or CATEGORY_NAMES
    cats = np.asarray(categories)
    rows = []
    for c in sorted(set(cats.tolist())):
        idx = np.flatnonzero(cats == c)
        y, p, q = np.asarray(y_true)[:, idx], np.asarray(probs)[:, idx], np.asarray(pred)[:, idx]
        row = {"category": names.get(int(c), str(c)), "n_tags": len(idx), "positives": int(_as_bool(y).sum())}
        row.update({k: v for k, v in f1_scores(y, q).items() if k != "n_tags_macro"})
        row["mAP"] = mean_average_precision(y, p)
        rows.append(row)
    return rows


def tag_prior(y_train: np.ndarray) -> np.ndarray:
    """``(n_tags,)`` float64: each tag's frequency in the training labels ``(N_train, n_tags)``."""
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim != 2 or len(y) == 0:
        raise ValueError(f"tag_prior needs (N_train, n_tags) labels with N_train > 0, got shape {y.shape}")
    return y.mean(0)


def prior_probs(y_train: np.ndarray, n_images: int) -> np.ndarray:
    """The tag-prior baseline's scores: every image gets each tag's train frequency, ``(n_images, n_tags)``.

    It ignores the pixels, so it is the floor a tagger must clear: frequent tags (``1girl``, ``solo``)
    clear a threshold on their own and make micro F1 look good without any image understanding.
    """
    return np.tile(tag_prior(y_train), (int(n_images), 1))


def prior_baseline(y_train: np.ndarray, y_test: np.ndarray, categories: Sequence[int] | None = None,
                   policy: Any = None, threshold: float | None = None) -> dict[str, Any]:
    """The tag-prior baseline on ``y_test``, thresholded the same way as the model it is compared with.

    Args:
        y_train: ``(N_train, n_tags)`` labels the prior is counted on.
        y_test: ``(N_test, n_tags)`` labels it is scored on (same tag columns).
        categories: with ``policy`` (a :class:`~acg2vec_lab.tagging.thresholds.ThresholdPolicy`,
            default the per-category one): thresholds per category, rating block as arg-max.
        threshold: instead of ``categories``/``policy``: one threshold for every tag (JoyTag's 0.4).

    Returns:
        :func:`evaluate`'s dict of the prior plus ``probs`` and ``pred`` (both ``(N_test, n_tags)``).
        All images get the same scores, so each tag's AP is its test prevalence and mAP is the mean
        prevalence; micro F1 comes from the tags frequent enough to pass their threshold everywhere.
    """
    y_test = np.asarray(y_test)
    probs = prior_probs(y_train, len(y_test))
    if probs.shape[1] != y_test.shape[1]:
        raise ValueError(f"train labels have {probs.shape[1]} tags, test labels {y_test.shape[1]}")
    if threshold is not None:
        if categories is not None or policy is not None:
            raise ValueError("give either threshold or categories/policy, not both")
        pred = probs >= float(threshold)
    else:
        from acg2vec_lab.tagging.thresholds import ThresholdPolicy, apply_thresholds

        if categories is None:
            raise ValueError("prior_baseline needs categories (with an optional policy) or one threshold")
        pred = apply_thresholds(probs, categories, policy or ThresholdPolicy())
    return {**evaluate(y_test, probs, pred), "probs": probs, "pred": pred}


def gates_vs_baseline(prefix: str, model: dict[str, float], baseline: dict[str, float],
                      margins: dict[str, tuple[float, str]], baseline_name: str = "prior") -> list[Any]:
    """One :class:`~acg2vec_lab.gates.Gate` per metric in ``margins``: ``model[key]`` vs ``baseline[key]``.

    ``margins`` maps a metric key (e.g. ``"micro_f1"``, ``"mAP"``) to ``(margin, why)``, where ``why``
    says which seeds and spread the margin was measured from. Gate names are
    ``<prefix>/<key>_vs_<baseline_name>``.
    """
    from acg2vec_lab.gates import Gate

    return [Gate(f"{prefix}/{key}_vs_{baseline_name}", float(model[key]), float(baseline[key]), float(m), why=why)
            for key, (m, why) in margins.items()]


def spread_margin(seeds: Sequence[float], broken: dict[str, float], command: str, k: float = 3.0
                  ) -> tuple[float | None, str]:
    """A gate's margin from the improvements of working seeds and of the same training broken on purpose.

    ``seeds``: the improvement over the baseline of each working seed; ``broken``: that of each broken run
    (``{"lr0": ..., "shuffled": ...}``); ``command``: what measured them (``benchmarks/gate_spread.py``).
    The margin is ``margin_from_spread(seeds, k)`` when it lies above every broken run and at most the
    weakest seed, else the midpoint between the weakest seed and the strongest broken run (rounded to
    3 decimals when that keeps it strictly between them). When a broken run reaches the weakest seed the
    gate cannot tell them apart: the margin is ``None`` and the caller must not gate with it.

    Returns ``(margin, why)``; ``why`` cites the seeds, their spread, the broken runs, the rule used and
    the command.
    """
    from acg2vec_lab.gates import margin_from_spread

    weakest, strongest_broken = min(seeds), max(broken.values())
    k3 = margin_from_spread(list(seeds), k=k)
    spread = (f"seeds {[round(float(v), 3) for v in seeds]} (mean {np.mean(seeds):.3f}, sd "
              f"{np.std(seeds, ddof=1):.3f}, margin_from_spread(k={k:g}) {k3:.3f}); broken "
              f"{ {b: round(float(v), 3) for b, v in broken.items()} }; measured by `{command}`")
    if strongest_broken >= weakest:
        return None, f"not gated: a broken run reaches the weakest working seed, so no margin separates them; {spread}"
    if strongest_broken < k3 <= weakest:
        m, rule = k3, "margin_from_spread"
    else:
        m, rule = (weakest + strongest_broken) / 2, "the midpoint between the weakest seed and the strongest broken run"
    if strongest_broken < round(m, 3) <= weakest:
        m = round(m, 3)
    return m, f"{rule} ({m:.4g}): {spread}"


# Improvement of the smoke DeepDanbooru tagger (configs/deepdanbooru_train/tiny.json, 2 epochs x 16 steps) over the
# tag prior on the smoke test split, measured for seeds 0-3 with train_tagger(..., seed=s), and of the same
# training broken on purpose (learning rate 0; labels shuffled across train images), seed 0.
SMOKE_TAGGER_VS_PRIOR = {"mAP": [0.132, 0.094, 0.123, 0.053], "micro_f1": [-0.011, -0.018, 0.018, -0.070]}
SMOKE_TAGGER_BROKEN = {"mAP": {"lr0": 0.038, "shuffled": 0.067}, "micro_f1": {"lr0": -0.028, "shuffled": -0.055}}
# The same for the cpu tagger (configs/deepdanbooru_train/small.json, 8 epochs on <= 2500 SYNTHETIC train images,
# scored on the cpu test split at the per-category thresholds): seeds 0-2, and broken on purpose, seed 0 (learning
# rate 0; labels shuffled across train images), measured by CPU_TAGGER_COMMAND; margins by spread_margin.
CPU_TAGGER_COMMAND = ".venv/bin/python benchmarks/gate_spread.py --profile cpu --models tagger"
CPU_TAGGER_VS_PRIOR = {"mAP": [0.5983, 0.6127, 0.5195], "micro_f1": [0.3194, 0.3303, 0.266]}
CPU_TAGGER_BROKEN = {"mAP": {"lr0": 0.0249, "shuffled": 0.0316}, "micro_f1": {"lr0": -0.1365, "shuffled": -0.0034}}


def _tagger_margins() -> dict[str, dict[str, tuple[float, str]]]:
    map_seeds = SMOKE_TAGGER_VS_PRIOR["mAP"]
    smoke_map = round((min(map_seeds) + SMOKE_TAGGER_BROKEN["mAP"]["lr0"]) / 2, 3)
    return {
        "smoke": {"mAP": (smoke_map, (
            f"smoke seeds 0-3: mAP - prior = {map_seeds}; mean - 3 sd is below 0 (margin_from_spread gives 0), so the "
            f"margin is the midpoint between the weakest working seed and the lr=0 run ({SMOKE_TAGGER_BROKEN['mAP']['lr0']}); "
            f"weak: shuffled labels measured {SMOKE_TAGGER_BROKEN['mAP']['shuffled']}, above it. micro F1 is not gated in "
            f"smoke: the tiny tagger does not beat the prior there ({SMOKE_TAGGER_VS_PRIOR['micro_f1']})"))},
        "cpu": {key: (m, f"cpu {why}") for key, seeds in CPU_TAGGER_VS_PRIOR.items()
                for m, why in [spread_margin(seeds, CPU_TAGGER_BROKEN[key], CPU_TAGGER_COMMAND)] if m is not None},
    }


def tagger_prior_gates(profile: str | None, model: dict[str, float], prior: dict[str, float],
                       prefix: str = "tagger/test") -> list[Any]:
    """The DeepDanbooru tagger's gates against the tag prior (keys of :func:`evaluate`) with ``profile``'s margins.

    ``full`` uses the cpu margins (measured in cpu, not in full). Each gate's ``why`` says where its margin comes from.
    """
    from acg2vec_lab.config import current_profile

    margins = _tagger_margins()
    return gates_vs_baseline(prefix, model, prior, margins.get(current_profile(profile), margins["cpu"]), "prior")


def per_category_optimal_thresholds(y_val: np.ndarray, probs_val: np.ndarray, categories: Sequence[int],
                                    grid: Sequence[float] | None = None) -> dict[int, float]:
    """One threshold per non-rating category, the one maximising that category's micro F1 on the val split.

    ``grid``: candidate thresholds (default ``0.05, 0.10, ..., 0.95``). Categories whose val split has
    no positives are left out (nothing to fit). Fit on val, then apply to test, so the threshold never
    sees the split it is scored on.
    """
    from acg2vec_lab.tagging.categories import CATEGORY_RATING

    grid = np.round(np.arange(0.05, 0.951, 0.05), 2) if grid is None else np.asarray(grid, dtype=np.float64)
    cats = np.asarray(categories)
    y, p = _as_bool(y_val), np.asarray(probs_val)
    out: dict[int, float] = {}
    for c in sorted(set(cats.tolist()) - {CATEGORY_RATING}):
        idx = np.flatnonzero(cats == c)
        if not y[:, idx].any():
            continue
        f1s = [f1_scores(y[:, idx], p[:, idx] >= t)["micro_f1"] for t in grid]
        out[int(c)] = float(grid[int(np.argmax(f1s))])
    return out


def _weighted_f1(y: np.ndarray, p: np.ndarray, w: np.ndarray, kind: str) -> float:
    """F1 when image i counts ``w[i]`` times (a bootstrap resample expressed as counts)."""
    tp = w @ (y & p)
    fp = w @ (~y & p)
    fn = w @ (y & ~p)
    if kind == "micro_f1":
        return float(_safe_div(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()))
    if kind == "macro_f1":
        mask = (tp + fn) > 0
        return float(_safe_div(2 * tp, 2 * tp + fp + fn)[mask].mean()) if mask.any() else 0.0
    raise ValueError(f"unknown metric {kind!r}; micro_f1 or macro_f1")


@dataclasses.dataclass
class BootstrapDiff:
    """Result of :func:`bootstrap_difference`: metric(A) - metric(B) on the evaluation split."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p_a_not_better: float  # share of resamples where A - B <= 0
    n_resamples: int
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def bootstrap_difference(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, metric: str = "micro_f1",
                         n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> BootstrapDiff:
    """Percentile bootstrap interval of metric(pred_a) - metric(pred_b), resampling images.

    Both strategies' thresholds must have been fixed without looking at this split (e.g. fit on
    "val", evaluated here on "test"); the same resample is used for A and B (paired).
    """
    y = _as_bool(y_true).astype(np.int64)
    a, b = _as_bool(pred_a).astype(np.int64), _as_bool(pred_b).astype(np.int64)
    yb = y.astype(bool)
    a_b, b_b = a.astype(bool), b.astype(bool)
    n = len(y)
    ones = np.ones(n)
    base_a, base_b = _weighted_f1(yb, a_b, ones, metric), _weighted_f1(yb, b_b, ones, metric)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for k in range(n_resamples):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        diffs[k] = _weighted_f1(yb, a_b, w, metric) - _weighted_f1(yb, b_b, w, metric)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return BootstrapDiff(metric, base_a, base_b, base_a - base_b, float(low), float(high),
                         float(np.mean(diffs <= 0)), n_resamples, confidence)


def strategy_predictions(y_val: np.ndarray, probs_val: np.ndarray, probs_test: np.ndarray,
                         categories: Sequence[int], general: float = 0.35, character: float = 0.85
                         ) -> dict[str, np.ndarray]:
    """Binary test predictions of the standard threshold strategies, thresholds fit on the validation split.

    Strategies: ``fixed@0.5``; ``category`` (general/character defaults); ``p_eq_r`` (one global
    threshold where P = R on val); ``per_tag`` (F1-optimal per tag on val, category default for tags
    without val positives); ``mcut`` (per image, needs no fitting). Rating tags are arg-max in all
    threshold-based strategies.
    """
    from acg2vec_lab.tagging.thresholds import ThresholdPolicy, apply_thresholds

    cats = np.asarray(categories)
    out = {
        "fixed@0.5": apply_thresholds(probs_test, cats, ThresholdPolicy(general=0.5, character=0.5)),
        "category": apply_thresholds(probs_test, cats, ThresholdPolicy(general=general, character=character)),
    }
    non_rating = cats != 9
    t_eq = precision_equals_recall(np.asarray(y_val)[:, non_rating], np.asarray(probs_val)[:, non_rating])["threshold"]
    out["p_eq_r"] = apply_thresholds(probs_test, cats, ThresholdPolicy(general=t_eq, character=t_eq))
    per_tag = per_tag_optimal_thresholds(y_val, probs_val)
    out["per_tag"] = apply_thresholds(probs_test, cats, ThresholdPolicy(general=general, character=character, per_tag=per_tag))
    out["mcut"] = mcut(probs_test)[1]
    return out


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("annotations", "dataclasses", "np", "Any",
                                                                    "Callable", "Sequence")]
