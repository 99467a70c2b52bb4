"""The cpu gate margins are derived from the spread over seeds stored beside them, and they separate.

``benchmarks/gate_spread.py --profile cpu`` measured, per gate, the improvement over the baseline of seeds 0-2
and of the same training broken on purpose (learning rate 0, labels shuffled across the train images); the
modules store those lists. For every gate measured so: the gate function's margin is the one
:func:`~acg2vec_lab.tagging.metrics.spread_margin` derives from the stored lists, the gate passes at every
stored working seed and fails at every stored broken run, and its ``why`` cites the seeds, the broken runs
and the command. A margin put above the weakest seed or at / below a broken run fails here, and so does a
stored list edited so that it no longer separates.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest

from acg2vec_lab.tagging.metrics import spread_margin


def _check(gate_at: Callable[[float], object], seeds: list[float], broken: dict[str, float], command: str) -> None:
    """``gate_at(improvement)``: the profile's gate for a model that improves on its baseline by that much."""
    margin, _ = spread_margin(seeds, broken, command)
    assert margin is not None, "the stored runs do not separate: the gate must not be built"
    gate = gate_at(min(seeds))
    assert gate.margin == pytest.approx(margin)
    assert max(broken.values()) < gate.margin <= min(seeds), (gate.name, gate.margin, seeds, broken)
    assert all(gate_at(v).passed for v in seeds), (gate.name, seeds)
    assert not any(gate_at(v).passed for v in broken.values()), (gate.name, broken)
    assert command in gate.why and str(round(min(seeds), 3)) in gate.why and all(b in gate.why for b in broken)


def test_spread_margin_rules():
    cmd = "bench"
    m, why = spread_margin([0.5, 0.52, 0.54], {"lr0": 0.0}, cmd)  # mean - 3 sd = 0.46, above the broken run
    assert m == pytest.approx(0.46) and why.startswith("margin_from_spread") and cmd in why
    m, why = spread_margin([0.1, 0.3, 0.5], {"lr0": 0.05}, cmd)  # mean - 3 sd < 0 -> floor 0, below the broken run
    assert m == pytest.approx(0.075) and why.startswith("the midpoint")
    m, why = spread_margin([0.1, 0.3, 0.5], {"lr0": -0.1, "shuffled": 0.1}, cmd)  # a broken run reaches a seed
    assert m is None and why.startswith("not gated")


def test_pix2score_cpu_margins_come_from_the_stored_spread():
    from acg2vec_lab.models.pix2score import experiment as E

    def heads(gain: float, head: str | None = None) -> dict[str, dict[str, float]]:
        return {h: {"accuracy": 0.4 + (gain if head in (None, h) else 1.0), "majority_accuracy": 0.4}
                for h in ("bookmark_predict", "view_predict", "sanity_predict")}

    def real_gate(head: str) -> Callable[[float], object]:
        name = f"pix2score/test/{head}/accuracy_vs_majority"
        return lambda v: next(g for g in E.score_gates("cpu", heads(v, head), heads(1.0)) if g.name == name)

    for head, seeds in E.CPU_REAL_VS_MAJORITY.items():
        _check(real_gate(head), seeds, E.CPU_REAL_BROKEN[head], E.CPU_COMMAND)
    _check(lambda v: E.control_gates("cpu", heads(v))[0], E.CPU_CONTROL_GAIN, E.CPU_CONTROL_BROKEN, E.CPU_COMMAND)
    assert E.control_gates("full", heads(0.0))[0].margin == E.control_gates("cpu", heads(0.0))[0].margin


def test_tagger_cpu_margins_come_from_the_stored_spread():
    from acg2vec_lab.tagging import metrics as M

    prior = {"mAP": 0.2, "micro_f1": 0.4}

    def gate(key: str) -> Callable[[float], object]:
        name = f"tagger/test/{key}_vs_prior"
        return lambda v: next(g for g in M.tagger_prior_gates("cpu", {**prior, key: prior[key] + v}, prior)
                              if g.name == name)

    for key, seeds in M.CPU_TAGGER_VS_PRIOR.items():
        _check(gate(key), seeds, M.CPU_TAGGER_BROKEN[key], M.CPU_TAGGER_COMMAND)
    assert [g.margin for g in M.tagger_prior_gates("full", prior, prior)] == [
        g.margin for g in M.tagger_prior_gates("cpu", prior, prior)]


def test_illust2vec_cpu_margin_comes_from_the_stored_spread():
    from acg2vec_lab.models.deepix import experiment as E

    def gate(v: float):
        return E.retrieval_chance_gates("cpu", {"untuned": {"recall@10": 0.3 + v, "chance_recall@10": 0.3}})[0]

    _check(gate, E.CPU_RECALL10_VS_CHANCE, E.CPU_RECALL10_BROKEN, E.CPU_COMMAND)
