"""acgvoc2vec's character tasks score an oracle perfectly and a blind encoder at chance, on the real held-out
works; the fine-tuning gates pass the measured fine-tuned numbers and fail a broken model."""
from __future__ import annotations

import numpy as np
import pytest

from acg2vec_lab.gates import QualityGateError, check_all
from acg2vec_lab.models.acgvoc2vec import evaluate as E

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def pairs():
    from acg2vec_lab.data.text_pairs import load_text_pairs

    return load_text_pairs().pairs


def _oracle(pairs):
    """text -> one-hot of its work: titles of every anime, names of the characters' works."""
    owner = {}
    for lang in ("ja", "zh-Hans"):
        for a, t in E.first_titles(pairs, "test", lang).items():
            owner.setdefault(t, a)
    chars = E.held_out_characters(pairs, "test")
    owner.update(dict(zip(chars["name"], chars["work"])))
    ids = {a: i for i, a in enumerate(sorted(set(owner.values())))}

    def encode(texts):
        v = np.zeros((len(texts), len(ids)), np.float32)
        v[np.arange(len(texts)), [ids[owner[t]] for t in texts]] = 1
        return v

    return encode


def test_character_tasks_oracle_and_blind(pairs):
    good = E.character_tasks(E.Encoders(_oracle(pairs), "none"), pairs, "test")
    assert good["n_characters"] > 200 and good["n_works"] > 40
    assert good["char->work[ja]_recall@1"] == 1.0
    # a few works share a zh-Hans title string with another held-out anime: the oracle cannot tell them apart
    assert 0.95 <= good["char->work[zh-Hans]_recall@1"] < 1.0
    assert good["work->chars_recall@10"] == 1.0 and good["same_work_auc"] == 1.0
    blind = E.character_tasks(E.Encoders(lambda t: np.ones((len(t), 3), np.float32), "none"), pairs, "test")
    # every score ties: ranks follow gallery order, so recall is chance on average, and AUC exactly one half
    assert blind["same_work_auc"] == 0.5
    assert abs(blind["char->work[ja]_recall@10"] - blind["char->work[ja]_chance@10"]) < 0.05
    assert blind["char->work[ja]_recall@10"] < 0.1


def test_character_works_sample(pairs):
    """smoke's smaller character galleries: whole works of the test split, seeded, and the oracle still exact."""
    sub = E.character_works(pairs, "test", 60, seed=1)
    assert set(sub["split"]) == {"test"} and sub["anime_id"].nunique() == 60
    assert sub.equals(E.character_works(pairs, "test", 60, seed=1))
    assert not set(sub["anime_id"]) == set(E.character_works(pairs, "test", 60, seed=2)["anime_id"])
    full = pairs[(pairs["split"] == "test") & pairs["anime_id"].isin(sub["anime_id"])]
    assert len(sub) == len(full)  # every pair of a sampled work is kept
    assert E.character_works(pairs, "test", 0) is pairs
    small = E.character_tasks(E.Encoders(_oracle(pairs), "none"), sub, "test")
    assert small["char->work[ja]_recall@1"] == 1.0
    assert small["char->work[ja]_chance@10"] > 10 / len(E.first_titles(pairs, "test", "ja"))


def _measured(i: int, which: int) -> dict[str, float]:
    return {k: v[i][which] for k, v in E.MEASURED["cpu"].items()}


def test_gates_pass_the_measured_runs_and_fail_a_broken_model(pairs):
    assert len(next(iter(E.MEASURED["cpu"].values()))) >= 2, "the cpu margins need measured seeds"
    for i in range(len(E.MEASURED["cpu"]["title_recall@1"])):
        ok = E.finetune_gates("cpu", _measured(i, 0), _measured(i, 1))
        assert {g.name.split("/")[-1] for g in ok} >= {"char_to_work_ja_recall@10_gain_vs_base",
                                                      "title_recall@1_drop_vs_base"}
        check_all(ok, record=False)
    # a broken model: random vectors, evaluated on the real held-out tasks
    rng = np.random.default_rng(0)
    broken = E.summary(E.evaluate_all(E.Encoders(lambda t: rng.normal(size=(len(t), 16)).astype(np.float32), "none"),
                                      pairs, E.held_out_anime(pairs, "test"), alias_queries=100, tag_queries=50))
    gates = E.finetune_gates("cpu", _measured(0, 0), broken)
    failed = {g.name.split("/")[-1] for g in gates if not g.passed}
    assert {"char_to_work_ja_recall@10_gain_vs_base", "title_recall@1_drop_vs_base",
            "title_recall@1_vs_chance"} <= failed
    with pytest.raises(QualityGateError):
        check_all(gates, record=False)
    # no change at all (the base itself, as if training did nothing) fails the gain gate, and no drop gate
    same = E.finetune_gates("cpu", _measured(0, 0), _measured(0, 0))
    failed = {g.name.split("/")[-1] for g in same if not g.passed}
    assert "char_to_work_ja_recall@10_gain_vs_base" in failed and not any("drop" in f for f in failed)
