"""The tagger arena: same images, the common vocabulary, recommended thresholds, P=R, mAP, CIs, prior."""
from __future__ import annotations

import numpy as np
import pytest

from acg2vec_lab.tagging.arena import PRIOR, Contender, arena_table, common_vocabulary, score_taggers

TAGS = ["1girl", "solo", "smile", "hat", "rei_(evangelion)", "asuka_(evangelion)", "rating:general"]
CATS = [0, 0, 0, 0, 4, 4, 9]


def _truth(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(TAGS))) < [0.8, 0.6, 0.3, 0.2, 0.15, 0.1, 1.0]).astype(np.int8)
    return y, (rng.random((300, len(TAGS))) < [0.8, 0.6, 0.3, 0.2, 0.15, 0.1, 1.0]).astype(np.int8)


def test_common_vocabulary_is_the_intersection_without_ratings():
    a = Contender("a", ["1girl", "hat", "smile", "rating:general"], np.zeros((1, 4)))
    b = Contender("b", ["hat", "1girl", "rei_(evangelion)"], np.zeros((1, 3)))
    assert common_vocabulary(TAGS, CATS, [a, b]) == ["1girl", "hat"]


def test_scores_are_right_and_order_the_contenders():
    y, y_train = _truth()
    rng = np.random.default_rng(1)
    truth6 = y[:, :6].astype(float)
    perfect = Contender("perfect", TAGS[:6][::-1], truth6[:, ::-1].copy())  # its own column order
    noisy = Contender("noisy", TAGS[:6], np.clip(truth6 * 0.6 + rng.random(truth6.shape) * 0.5, 0, 1))
    blind = Contender("blind", TAGS[:6] + ["extra_tag"], rng.random((len(y), 7)))
    t = arena_table(y, TAGS, CATS, [perfect, noisy, blind], y_train=y_train, n_boot=100, seed=3)
    assert t.attrs["vocabulary"] == TAGS[:6]
    allrows = t[t.group == "all"].set_index("model")
    assert list(allrows.index) == [PRIOR, "perfect", "noisy", "blind"]
    assert allrows.loc["perfect", "micro_f1"] == 1.0 and allrows.loc["perfect", "mAP"] == 1.0
    assert allrows.loc["perfect", "micro_f1"] > allrows.loc["noisy", "micro_f1"] > allrows.loc["blind", "micro_f1"]
    assert allrows.loc["noisy", "mAP"] > allrows.loc[PRIOR, "mAP"] > 0
    # the prior's mAP is the mean test prevalence (constant scores: AP = prevalence)
    assert allrows.loc[PRIOR, "mAP"] == pytest.approx(y[:, :6].mean(0).mean(), abs=1e-12)
    # noisy micro F1 at 0.35 / 0.85, by hand
    p = noisy.probs
    pred = p >= np.where(np.array(CATS[:6]) == 4, 0.85, 0.35)
    tp, fp, fn = (pred & (y[:, :6] == 1)).sum(), (pred & (y[:, :6] == 0)).sum(), (~pred & (y[:, :6] == 1)).sum()
    assert allrows.loc["noisy", "micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    for name in ("noisy", "blind"):
        r = allrows.loc[name]
        assert r["micro_f1_lo"] <= r["micro_f1"] <= r["micro_f1_hi"] and r["micro_f1_hi"] - r["micro_f1_lo"] > 0
    groups = set(t[t.model == "noisy"].group)
    assert groups == {"all", "general", "character"}
    assert t[(t.model == "noisy") & (t.group == "character")]["n_tags"].item() == 2
    again = arena_table(y, TAGS, CATS, [perfect, noisy, blind], y_train=y_train, n_boot=100, seed=3)
    assert again.equals(t)  # seeded


def test_bad_shapes_and_disjoint_vocabularies_are_errors():
    y, _ = _truth(10)
    with pytest.raises(ValueError, match="expected \\(10, 2\\)"):
        arena_table(y, TAGS, CATS, [Contender("x", ["1girl", "hat"], np.zeros((9, 2)))])
    with pytest.raises(ValueError, match="share no tag"):
        arena_table(y, TAGS, CATS, [Contender("x", ["zzz"], np.zeros((10, 1)))])


def test_score_taggers_runs_real_taggers_on_the_same_images(tmp_path):
    """A WD14 folder written with onnx.helper and a second tagger of another vocabulary, on image files
    with one unreadable: both are scored on the readable images only, in the same order."""
    import test_wd14 as W

    from acg2vec_lab.models.wd14.tagger import load_wd14_tagger

    d = tmp_path / "wd"
    d.mkdir()
    W.build_model(d / "model.onnx")
    W.write_selected_tags(d / "selected_tags.csv")
    wd = load_wd14_tagger(d)
    paths = []
    for i in range(5):
        W.make_image(30, 30 + i, 60 + i).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"broken")
    paths.insert(2, tmp_path / "bad.png")

    class Flat:
        name, input_size = "flat", (8, 8)
        tags = [wd.tags[-1], wd.tags[-2], "only_here"]
        categories = [0, 0, 0]
        source = "constant scores"

        def preprocess(self, image):
            return np.zeros((8, 8, 3), np.float32)

        def predict(self, batch):
            return np.full((len(batch), 3), 0.5, np.float32)

    contenders, kept, skipped = score_taggers({"wd14": wd, "flat": Flat()}, paths, {"wd14": (0.35, 0.85)})
    assert kept == [str(p) for p in paths if p.name != "bad.png"]
    assert {s["tagger"] for s in skipped} == {"wd14", "flat"} and all("bad.png" in s["file"] for s in skipped)
    assert [c.probs.shape for c in contenders] == [(5, len(wd.tags)), (5, 3)]
    truth_tags = [wd.tags[-1], wd.tags[-2], "not_output"]
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]])
    t = arena_table(y, truth_tags, [0, 0, 0], contenders, n_boot=20)
    assert t.attrs["vocabulary"] == truth_tags[:2] and set(t.model) == {"wd14", "flat"}
