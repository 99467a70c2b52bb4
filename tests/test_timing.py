"""dev.timing: the benchmarks' one timer warms up, then times each repeat on its own."""
from __future__ import annotations

import time

import pytest

from acg2vec_lab.dev.timing import time_calls


def test_time_calls_warms_up_then_times_each_repeat():
    calls = []

    def work():
        calls.append(len(calls))
        time.sleep(0.3 if len(calls) == 1 else 0.01)  # only the warm-up call is slow

    times = time_calls(work, repeats=3, warmup=1)
    assert len(calls) == 4 and len(times) == 3
    assert all(0.009 <= t < 0.25 for t in times)  # the slow first call is not among them


def test_time_calls_rejects_bad_counts():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        time_calls(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="warmup >= 0"):
        time_calls(lambda: None, repeats=1, warmup=-1)
