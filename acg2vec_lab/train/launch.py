"""Train one registry model from the command line, on one process or under the standard launchers.

One process (CPU or one GPU)::

    python -m acg2vec_lab.train.launch joytag --profile cpu

One machine, N GPUs (torch DDP; JoyTag)::

    torchrun --standalone --nproc_per_node N -m acg2vec_lab.train.launch joytag --profile full --data DIR

M machines (run on each, ``--node_rank`` 0..M-1; the run folder must be on a shared filesystem)::

    torchrun --nnodes M --node_rank i --nproc_per_node N --rdzv_backend c10d --rdzv_endpoint HOST:PORT \\
        -m acg2vec_lab.train.launch joytag --profile full --data DIR --out SHARED_FOLDER

Keras (DeepDanbooru) is one process per machine: ``--strategy auto`` (the default) mirrors over every
visible GPU, or over the workers of ``$TF_CONFIG`` (``MultiWorkerMirroredStrategy``); ``cpu:N``
mirrors over N logical CPU devices (the tests).

The run is the registry's (:mod:`acg2vec_lab.train.run`): its folder is keyed by (config, data
fingerprint, seed), so the distributed and the single-process run of one config share a folder and
a rerun resumes (or loads) it. The last line on stdout (rank 0 / the chief) is a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TORCH_DDP = ("joytag",)
KERAS = ("deepdanbooru",)


def parse_value(text: str) -> Any:
    """``--set key=VALUE``: JSON when it parses (numbers, true/false/null, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m acg2vec_lab.train.launch", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a trainable registry model (DDP: joytag; tf.distribute: deepdanbooru)")
    p.add_argument("--profile", default=None, help="smoke / cpu / full (config and default synthetic data)")
    p.add_argument("--data", default=None, help="a Danbooru-format folder (default: the profile's synthetic set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="replace a config field (repeatable), e.g. --set epochs=3")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="the run folder (default: the run's keyed folder in the cache)")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="joytag: also checkpoint every K optimiser steps (a killed run resumes from it)")
    p.add_argument("--strategy", default="auto", help="keras: auto, mirrored, cpu:N, multiworker or none")
    p.add_argument("--no-sync-bn", dest="sync_bn", action="store_false",
                   help="keras: per-replica BatchNormalization statistics (default: synchronised over the global batch)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda (default $ACG2VEC_DEVICE or auto)")
    return p


def load_source(data: str | None, profile: str | None) -> Any:
    """The data set: a generated synthetic folder as it is, another folder through ``open_dataset``,
    nothing: the profile's synthetic set."""
    from acg2vec_lab.data import DanbooruDataset, synthetic_dataset

    if data is None:
        return synthetic_dataset(profile)
    root = Path(data).expanduser()
    if root.name.startswith("synthetic-danbooru-"):
        return DanbooruDataset.from_folder(root)
    from acg2vec_lab.data import open_dataset

    return open_dataset(root, profile)


def make_config(model: str, profile: str | None, overrides: list[str], seed: int | None) -> Any:
    from acg2vec_lab import models

    kv = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        kv[key.strip()] = parse_value(value)
    if seed is not None:
        kv["seed"] = seed
    return models.get(model).config(profile, **kv)


def open_run(spec: Any, cfg: Any, fingerprint: str, folder: str | None) -> Any:
    """The run, created by rank 0 only; the other ranks open it read-only once it exists."""
    from acg2vec_lab.train import distributed as D

    if D.is_main():
        run = spec.run(cfg, fingerprint, folder=folder)
    D.barrier()
    if not D.is_main():
        run = spec.run(cfg, fingerprint, folder=folder, write=False)
    return run


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from acg2vec_lab.device import request

    request(args.device)  # before any framework initialises
    from acg2vec_lab import models
    from acg2vec_lab.train import distributed as D

    spec = models.get(args.model)
    if D.launched() and D.world_size() > 1 and args.model not in TORCH_DDP:
        raise SystemExit(f"{args.model}: torchrun data parallelism is implemented for {', '.join(TORCH_DDP)}; "
                         "Keras models run one process per machine with --strategy")
    strat = D.strategy(args.strategy) if args.model in KERAS else None  # before TensorFlow initialises
    D.init()
    try:
        cfg = make_config(args.model, args.profile, args.overrides, args.seed)
        dataset = load_source(args.data, args.profile)
        run = open_run(spec, cfg, spec.source_fingerprint(dataset, cfg), args.out)
        if args.model == "joytag":
            from acg2vec_lab.models.joytag.train import fit

            log = (lambda m: print(m, file=sys.stderr)) if D.is_main() else None
            fit(cfg, spec.prepare(cfg, dataset), run, log=log, checkpoint_every=args.checkpoint_every)
        elif args.model == "deepdanbooru":
            from acg2vec_lab.models.deepdanbooru.train import train_tagger

            train_tagger(cfg=cfg, dataset=dataset, run=run, strategy=strat, sync_batchnorm=args.sync_bn)
        else:
            spec.fit(cfg, spec.prepare(cfg, dataset), run)
        if D.is_main() and D.tf_is_chief(strat):
            m = run.manifest() or {}
            print(json.dumps({"model": args.model, "run": run.id, "folder": str(run.folder), "step": m.get("step"),
                              "complete": m.get("complete"), "world_size": D.world_size(),
                              "replicas": D.replicas(strat), "label": run.weights_label}))
    finally:
        D.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
