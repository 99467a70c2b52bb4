"""Quality gates: a trained model must beat its baseline by a margin, or the notebook (or test) fails.

A gate compares a measured value with a baseline measured on the same split (the tag prior, the
majority class, chance, the untrained model, the base model, a reference engine) and requires

    value - baseline >= margin          (higher is better; the default)
    baseline - value >= margin          (lower is better)

The margin is chosen from the spread measured over several seeds (see each gate's ``why``), so a
gate fails on a broken model (zero learning rate, shuffled labels) and not on noise. Every gate is
recorded as ``gate/<name>`` (the improvement over the baseline, with measured value, baseline, margin in the
meta) before it raises, so a failing run still shows what it measured.

``check_all`` evaluates a list of gates and raises one :class:`QualityGateError` naming every gate
that failed; a notebook's last cell calls it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


class QualityGateError(AssertionError):
    """A model did not beat its baseline by the required margin."""


@dataclass(frozen=True)
class Gate:
    """One comparison: ``value`` against ``baseline`` with a required ``margin``.

    Args:
        name: short id, recorded as ``gate/<name>`` (e.g. ``"tagger/test/micro_f1@category_vs_prior"``).
        value: the model's number.
        baseline: the baseline's number on the same split.
        margin: the least improvement that counts (>= 0; in the metric's own units).
        higher_is_better: False for losses, distances, errors.
        why: where the margin comes from (the seeds and spread it was measured over).
        data: the data source of the comparison (see :mod:`acg2vec_lab.record`); default: the notebook's.
    """

    name: str
    value: float
    baseline: float
    margin: float
    higher_is_better: bool = True
    why: str = ""
    data: str | None = None

    @property
    def improvement(self) -> float:
        d = self.value - self.baseline
        return d if self.higher_is_better else -d

    @property
    def passed(self) -> bool:
        return math.isfinite(self.value) and math.isfinite(self.baseline) and self.improvement >= self.margin

    def describe(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        sign = "+" if self.higher_is_better else "-"
        return (f"{self.name}: {self.value:.4g} vs baseline {self.baseline:.4g} "
                f"(needs {op} baseline {sign} {self.margin:.4g}; improvement {self.improvement:+.4g})"
                + (f" [{self.why}]" if self.why else ""))


def check(gate: Gate, *, record: bool = True) -> Gate:
    """Record one gate and raise :class:`QualityGateError` if it failed."""
    return check_all([gate], record=record)[0]


def check_all(gates: list[Gate], *, record: bool = True) -> list[Gate]:
    """Record every gate, then raise one error naming all that failed. Returns the gates."""
    if not gates:
        raise ValueError("check_all() needs at least one gate: a notebook with no gate checks nothing")
    if record:
        from acg2vec_lab.record import record as _record

        for g in gates:
            _record(f"gate/{g.name}", float(g.improvement), measured=float(g.value), baseline=float(g.baseline),
                    margin=float(g.margin), passed=bool(g.passed), data=g.data)
    failed = [g for g in gates if not g.passed]
    if failed:
        raise QualityGateError("quality gate(s) failed:\n  " + "\n  ".join(g.describe() for g in failed))
    return gates


def table(gates: list[Gate]):
    """The gates as a DataFrame (for a notebook's findings section)."""
    import pandas as pd

    return pd.DataFrame([{"gate": g.name, "value": g.value, "baseline": g.baseline, "margin": g.margin,
                          "improvement": g.improvement, "passed": g.passed, "why": g.why} for g in gates])


def margin_from_spread(values: list[float], k: float = 3.0, floor: float = 0.0) -> float:
    """A margin of ``k`` standard deviations of a metric measured over several seeds (at least ``floor``).

    Use the spread of the *improvement over the baseline* across seeds: a gate at ``mean - k*sd`` of
    a working model still passes on an unlucky seed, and a broken model (improvement ~ 0) fails.
    """
    import numpy as np

    if len(values) < 2:
        raise ValueError("margin_from_spread needs at least two seeds")
    return max(floor, float(np.mean(values) - k * np.std(values, ddof=1)))
