"""Fault injection: SIGKILL every long command at seeded points, rerun it, and print what was lost.

Runs the harness of ``tests/test_fault_injection.py`` (:mod:`acg2vec_lab.dev.fault`) on generated
images in a temporary folder and prints one row per command: trials x kill points, runs really
killed, outputs checked, lost, duplicated, debris left, outputs redone, seconds. Exit code 1 when
any of lost / duplicated / debris / redone is not 0 or a problem was found.

    .venv/bin/python benchmarks/fault_injection.py                # commands and training, 2 x 2 kills
    .venv/bin/python benchmarks/fault_injection.py --trials 3 --kills 3 --images 20 --no-training
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import acg2vec_lab  # noqa: F401  (before any framework)
from acg2vec_lab.dev import fault as F


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--kills", type=int, default=2, help="kill points per trial")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-training", action="store_true", help="skip the Keras and torch training scenarios")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="acg2vec-fault-") as tmp:
        for sc in F.all_scenarios(Path(tmp), args.images, training=not args.no_training):
            rows.append(F.run_trials(sc, args.trials, args.kills, args.seed))
            print(F.table(rows[-1:]).splitlines()[2], flush=True)  # its row, as it finishes
    print()
    print(F.table(rows))
    total = {k: sum(getattr(r, k) for r in rows) for k in ("runs", "kills", "checked", "lost", "duplicated",
                                                           "debris", "redone")}
    print(f"\ntotal: {total}; {time.perf_counter() - t0:.0f} s")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
