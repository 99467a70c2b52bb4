"""The one wall-clock timer of the benchmarks: warm-up calls, then one ``perf_counter`` span per repeat."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``, after ``warmup`` untimed calls.

    The warm-up pays for what only the first call costs (TF tracing, oneDNN primitive creation,
    allocator and cache warm-up), so the repeats measure the steady state. Callers reduce the list
    themselves: the best (``min``) for a bound, the median for a typical call.

    Args:
        fn: the work to time, called with no arguments.
        repeats: timed calls, at least 1.
        warmup: untimed calls before them, at least 0.

    Returns:
        ``repeats`` durations in seconds, in call order.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"time_calls: repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times
