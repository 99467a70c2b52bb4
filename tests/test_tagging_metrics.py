"""Tagging metrics against brute-force and scikit-learn references."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from acg2vec_lab.tagging import metrics as M


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    y = rng.random((60, 12)) < 0.25
    y[:, 11] = False  # a tag absent from the split
    probs = np.clip(0.5 * y + rng.random(y.shape) * 0.7, 0, 1).round(2)  # ties on purpose
    return y, probs


def test_f1_matches_sklearn(data):
    y, probs = data
    pred = probs >= 0.5
    got = M.f1_scores(y, pred)
    assert got["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert got["micro_precision"] == pytest.approx(precision_score(y, pred, average="micro"))
    assert got["micro_recall"] == pytest.approx(recall_score(y, pred, average="micro"))
    present = np.flatnonzero(y.any(0))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", labels=present, zero_division=0))
    assert M.f1_scores(y, pred, macro_over="all")["macro_f1"] == pytest.approx(
        f1_score(y, pred, average="macro", zero_division=0))


def test_average_precision_matches_sklearn(data):
    y, probs = data
    for j in range(11):
        assert M.average_precision(y[:, j], probs[:, j]) == pytest.approx(average_precision_score(y[:, j], probs[:, j]))
    assert np.isnan(M.average_precision(y[:, 11], probs[:, 11]))
    assert M.mean_average_precision(y, probs) == pytest.approx(
        np.mean([average_precision_score(y[:, j], probs[:, j]) for j in range(11)]))


def test_best_f1_threshold_brute_force(data):
    y, probs = data
    for j in range(11):
        th, f1 = M.best_f1_threshold(y[:, j], probs[:, j])
        brute = max(f1_score(y[:, j], probs[:, j] >= t, zero_division=0) for t in np.unique(probs[:, j]))
        assert f1 == pytest.approx(brute)
        assert f1_score(y[:, j], probs[:, j] >= th) == pytest.approx(brute)
    ths = M.per_tag_optimal_thresholds(y, probs)
    assert np.isnan(ths[11]) and np.isfinite(ths[:11]).all()


def test_precision_equals_recall_brute_force(data):
    y, probs = data
    got = M.precision_equals_recall(y, probs)
    best = min(np.unique(probs), key=lambda t: abs(precision_score(y.ravel(), probs.ravel() >= t, zero_division=0)
                                                   - recall_score(y.ravel(), probs.ravel() >= t)))
    assert got["threshold"] == pytest.approx(best)
    assert got["precision"] == pytest.approx(precision_score(y.ravel(), probs.ravel() >= best))
    curve = M.micro_pr_curve(y, probs)
    assert np.all(np.diff(curve["recall"]) >= 0) and curve["recall"][-1] == pytest.approx(1.0)


def test_mcut_largest_gap():
    probs = np.array([[0.9, 0.85, 0.2, 0.1], [0.6, 0.55, 0.5, 0.05]])
    th, pred = M.mcut(probs)
    assert pred.tolist() == [[True, True, False, False], [True, True, True, False]]
    assert th[0] == pytest.approx(0.525)


def test_bootstrap_difference_detects_a_real_gap_and_not_a_null(data):
    y, probs = data
    good = probs >= 0.5
    bad = np.random.default_rng(3).random(y.shape) < 0.25  # chance-level predictions
    res = M.bootstrap_difference(y, good, bad, n_resamples=300, seed=0)
    assert res.diff == pytest.approx(M.f1_scores(y, good)["micro_f1"] - M.f1_scores(y, bad)["micro_f1"])
    assert 0 < res.low <= res.diff <= res.high
    same = M.bootstrap_difference(y, good, good.copy(), metric="macro_f1", n_resamples=50)
    assert same.low == same.high == 0.0


def test_per_category_and_strategies(data):
    y, probs = data
    cats = [0] * 8 + [4, 4, 9, 9]
    rows = M.per_category(y, probs, probs >= 0.5, cats)
    assert [r["category"] for r in rows] == ["general", "character", "rating"]
    strategies = M.strategy_predictions(y[:30], probs[:30], probs[30:], cats)
    assert set(strategies) == {"fixed@0.5", "category", "p_eq_r", "per_tag", "mcut"}
    assert all(p.shape == (30, 12) for p in strategies.values())


def test_prior_baseline_scores_train_frequency_thresholded_like_the_model():
    y_train = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 1], [1, 1, 0, 0, 1], [1, 0, 1, 0, 1]], dtype=np.float32)
    y_test = np.array([[1, 0, 0, 1, 0], [1, 1, 0, 0, 1], [0, 0, 1, 0, 1]], dtype=bool)
    cats = [0, 0, 4, 9, 9]  # tag 2 a character (train freq 0.25), tags 3-4 ratings
    np.testing.assert_allclose(M.tag_prior(y_train), [1.0, 0.5, 0.25, 0.25, 0.75])
    got = M.prior_baseline(y_train, y_test, cats)
    # general 0.35: tags 0 and 1 predicted for every image; character 0.85: never; rating: arg-max = tag 4
    assert got["pred"].tolist() == [[True, True, False, False, True]] * 3
    assert got["micro_f1"] == pytest.approx(M.f1_scores(y_test, got["pred"])["micro_f1"])
    # the same score for every image: each tag's AP is its test prevalence
    assert got["mAP"] == pytest.approx(np.mean(y_test.mean(0)))
    one = M.prior_baseline(y_train, y_test, threshold=0.6)
    assert one["pred"].tolist() == [[True, False, False, False, True]] * 3
    with pytest.raises(ValueError, match="shape"):
        M.tag_prior(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="tags"):
        M.prior_baseline(y_train, y_test[:, :3], threshold=0.5)


def test_a_model_that_sees_the_labels_beats_the_prior_and_noise_does_not():
    # Large enough that a random ranking's AP is close to the prevalence (on a few dozen images it is not:
    # with few positives, a random order's expected AP exceeds the prevalence that the prior scores).
    rng = np.random.default_rng(2)
    y = rng.random((4000, 10)) < np.linspace(0.05, 0.6, 10)
    probs = np.clip(0.4 * y + 0.6 * rng.random(y.shape), 0, 1)
    prior = M.prior_baseline(y[:2000], y[2000:], threshold=0.5)
    good = M.evaluate(y[2000:], probs[2000:], probs[2000:] >= 0.5)
    noise = rng.random(probs[2000:].shape)
    bad = M.evaluate(y[2000:], noise, noise >= 0.5)
    margins = {"mAP": (0.05, "test"), "micro_f1": (0.05, "test")}
    assert all(g.passed for g in M.gates_vs_baseline("m", good, prior, margins))
    assert not any(g.passed for g in M.gates_vs_baseline("m", bad, prior, margins))
    assert [g.name for g in M.gates_vs_baseline("m", good, prior, margins)] == ["m/mAP_vs_prior", "m/micro_f1_vs_prior"]


def test_per_category_optimal_thresholds_fit_each_category(data):
    y, probs = data
    cats = np.array([0] * 8 + [4, 4, 9, 9])
    got = M.per_category_optimal_thresholds(y, probs, cats, grid=[0.3, 0.5, 0.7])
    assert set(got) == {0, 4}
    for c, t in got.items():
        idx = cats == c
        best = max([0.3, 0.5, 0.7], key=lambda g: M.f1_scores(y[:, idx], probs[:, idx] >= g)["micro_f1"])
        assert t == best


def test_strategy_predictions_give_the_hand_computed_tags():
    # tags: 0 general, 1 general without a val positive, 2 character, 3-4 the rating block
    cats = [0, 0, 4, 9, 9]
    y_val = np.array([[1, 0, 1, 1, 0], [1, 0, 0, 0, 1], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]], dtype=bool)
    probs_val = np.array([[0.90, 0.05, 0.80, 0.70, 0.30],
                          [0.30, 0.05, 0.20, 0.20, 0.80],
                          [0.28, 0.05, 0.25, 0.60, 0.40],
                          [0.10, 0.05, 0.60, 0.40, 0.60]])
    # p_eq_r pools the non-rating val scores: 0.9+ 0.8+ 0.6- 0.3+ | 0.28- 0.25+ ... (4 positives); P = R
    # (3/4) first at the 4th score, so one threshold 0.30 for every tag. per_tag (F1-optimal on val):
    # tag 0 at 0.30 (both positives, F1 1), tag 1 has no positive -> the general default 0.35,
    # tag 2 at 0.25 (F1 0.8: 2 of 3 predicted; 0.80 alone gives 0.67, 0.60 gives 0.5).
    probs_test = np.array([[0.60, 0.40, 0.70, 0.30, 0.70],
                           [0.32, 0.20, 0.90, 0.80, 0.20],
                           [0.20, 0.33, 0.27, 0.45, 0.55]])
    T, F = True, False
    expected = {
        "fixed@0.5": [[T, F, T, F, T], [F, F, T, T, F], [F, F, F, F, T]],
        "category": [[T, T, F, F, T], [F, F, T, T, F], [F, F, F, F, T]],  # general 0.35, character 0.85
        "p_eq_r": [[T, T, T, F, T], [T, F, T, T, F], [F, T, F, F, T]],  # 0.30 everywhere
        "per_tag": [[T, T, T, F, T], [T, F, T, T, F], [F, F, T, F, T]],  # 0.30 / 0.35 / 0.25
        # largest gap per image over all five scores, ratings included: 0.6|0.4, 0.8|0.32, 0.45|0.33
        "mcut": [[T, F, T, F, T], [F, F, T, T, F], [F, F, F, T, T]],
    }
    got = M.strategy_predictions(y_val, probs_val, probs_test, cats)
    assert {name: p.tolist() for name, p in got.items()} == expected
    # the strategies differ from each other on this example, so a swapped or mis-fitted one fails
    assert len({str(v) for v in expected.values()}) == len(expected)
