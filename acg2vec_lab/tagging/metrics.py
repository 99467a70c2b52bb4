"""Multi-label tagging metrics on ``(N, n_tags)`` arrays (shared by the DeepDanbooru and JoyTag notebooks).

Conventions: ``y_true`` is ``(N, n_tags)`` bool/0-1 ground truth, ``probs`` ``(N, n_tags)`` scores in
[0, 1], ``pred`` ``(N, n_tags)`` bool predictions. *Macro* averages run over the tags that have at
least one positive in ``y_true`` (a tag absent from the evaluation split has no defined recall);
``macro_over="all"`` averages over every tag with 0 for undefined values, like scikit-learn's
``zero_division=0``.
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


def per_tag_ap(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    y = _as_bool(y_true)
    return np.array([average_precision(y[:, j], probs[:, j]) for j in range(y.shape[1])])


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
    from acg2vec_lab.tagging.base import CATEGORY_NAMES

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
