"""acgvoc2vec before / after fine-tuning over several seeds: the spread the quality-gate margins come from.

For each seed: the held-out anime sample (``eval_anime``, seeded), the training sample and run (``cfg.seed``),
then the e5 base and the fine-tuned model on the same tasks (:func:`evaluate.summary`). Prints one JSON line
per seed and, at the end, the mean and sd of every ``after - before`` change. The margins in
``acg2vec_lab.models.acgvoc2vec.evaluate.MEASURED`` are these numbers.

    .venv/bin/python benchmarks/acgvoc2vec_seeds.py --profile smoke --seeds 0 1 2 3
    .venv/bin/python benchmarks/acgvoc2vec_seeds.py --profile cpu --seeds 0 1 2

Training runs are not checkpointed (nothing is written to the cache).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

KEYS = ("title_recall@1", "title_chance@1", "alias_recall@1", "tag_precision@10", "tag_chance@10",
        "char->work[ja]_recall@10", "char->work[ja]_chance@10", "char->work[zh-Hans]_recall@10",
        "work->chars_recall@10", "same_work_auc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()

    from acg2vec_lab import load_config
    from acg2vec_lab.data.text_pairs import load_text_pairs
    from acg2vec_lab.models.acgvoc2vec import evaluate as E
    from acg2vec_lab.models.acgvoc2vec import train as TR

    pairs = load_text_pairs().pairs
    base_cache: dict[tuple, dict] = {}
    rows = []
    for seed in args.seeds:
        cfg = dataclasses.replace(load_config("acgvoc2vec", args.profile), seed=seed)
        anime = E.held_out_anime(pairs, "test", cfg.eval_anime, seed)
        kw = dict(alias_queries=cfg.eval_alias_queries, tag_queries=cfg.eval_tag_queries,
                  char_works=cfg.eval_char_works, seed=seed)
        key = (tuple(anime), seed if cfg.eval_alias_queries or cfg.eval_tag_queries else None)
        t0 = time.perf_counter()
        if key not in base_cache:
            base = TR.load_base(cfg)
            base.max_seq_length = cfg.max_seq_length
            base_cache[key] = E.summary(E.evaluate_all(TR.encoders(base, cfg), pairs, anime, **kw))
        before = base_cache[key]
        run = TR.train(cfg, TR.sample_pairs(pairs, cfg))
        after = E.summary(E.evaluate_all(TR.encoders(run["model"], cfg), pairs, anime, **kw))
        row = {"seed": seed, "profile": args.profile, "steps": run["step"], "seconds": round(time.perf_counter() - t0),
               "before": {k: round(before[k], 4) for k in KEYS if k in before},
               "after": {k: round(after[k], 4) for k in KEYS if k in after}}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    print("change after - before (mean, sd over seeds):")
    for k in KEYS:
        d = [r["after"][k] - r["before"][k] for r in rows if k in r["after"] and k in r["before"]]
        if d:
            sd = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
            print(f"  {k:32s} {np.mean(d):+.4f}  sd {sd:.4f}  {[round(x, 4) for x in d]}")


if __name__ == "__main__":
    main()
