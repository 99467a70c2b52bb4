"""``acg2vec-lab bulk embed|tag|index``: ``embed-image`` / ``tag`` over huge collections on Ray (Parquet shards)."""
from __future__ import annotations

from acg2vec_lab.commands._util import CLIError, add_allow_untrained, add_command, add_runtime_options, print_json

EXAMPLES = """  acg2vec-lab bulk embed images/ --model efficientnet_lite0 --out shards/   # local Ray on this machine's CPUs
  acg2vec-lab bulk embed images/ --model efficientnet_lite0 --out shards/   # rerun: finished shards are skipped
  acg2vec-lab bulk embed s3mount/ --model illust2vec --out shards/ --address ray://head:10001 --num-gpus 1
  acg2vec-lab bulk tag images/ --model deepdanbooru --out tags/ --preset precision
  acg2vec-lab bulk index shards/ --out index/                                # the shards -> a faiss index folder

One Parquet file per --shard-size files (sorted order), written atomically; bad images are error
rows (file and message), never fatal. Needs the dev extra (ray[data]).
"""


def _common(args):
    """The checked profile and file list of a ``bulk embed`` / ``bulk tag`` call."""
    from acg2vec_lab.bulk.ray_pipeline import collect
    from acg2vec_lab.config import ConfigError, current_profile

    try:
        profile = current_profile(args.profile)
        files = collect(args.inputs, recursive=not args.no_recursive)
    except (ConfigError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from exc
    if not files:
        raise CLIError(f"no images found in {' '.join(args.inputs)}")
    return profile, files


def _finish(args, task: str, model: str, weights: str, untrained: bool, files, profile: str, **kw) -> int:
    """Run the pipeline and print its summary (exit 1 when some images were bad, as ``tag``)."""
    from acg2vec_lab.bulk.ray_pipeline import BulkError, run
    from acg2vec_lab.commands._util import untrained_label

    try:
        s = run(task, files, args.out, model=model, profile=profile, shard_size=args.shard_size,
                batch_size=args.batch, concurrency=args.concurrency, num_gpus=args.num_gpus,
                max_shards=args.max_shards, address=args.address, progress=not args.no_progress, **kw)
    except BulkError as exc:
        raise CLIError(str(exc)) from exc
    print_json({"task": task, "model": model, "weights": weights, **untrained_label(untrained), "out": s.out,
                "files": len(files), "shards": s.shards, "written": s.written, "skipped": s.skipped,
                "images": s.images, "images_per_s": round(s.images_per_s, 2), "failed": len(s.errors),
                "errors": s.errors[:20]}, stats=True)
    return 0 if not s.errors else 1


def _embed(args) -> int:
    from acg2vec_lab.commands._util import refuse_untrained
    from acg2vec_lab.embedders import available

    profile, files = _common(args)
    embs = available(profile, "image")
    if args.model not in embs:
        raise CLIError(f"no image embedder {args.model!r}; available: {', '.join(sorted(embs))}")
    emb = embs[args.model]
    untrained = refuse_untrained(emb.name, emb.weights, profile, args.allow_untrained)
    return _finish(args, "embed", emb.name, emb.weights, untrained, files, profile, normalize=args.normalize)


def _tag(args) -> int:
    from acg2vec_lab.commands._util import refuse_untrained
    from acg2vec_lab.models import load_tagger
    from acg2vec_lab.tagging.thresholds import PRESETS, ThresholdPolicy

    profile, files = _common(args)
    g, c = PRESETS[args.preset]
    policy = ThresholdPolicy(general=g if args.general_threshold is None else args.general_threshold,
                             character=c if args.character_threshold is None else args.character_threshold,
                             max_tags=args.max_tags)
    load_kwargs = {"project_path": args.project_path, "weights": args.weights}
    try:  # loaded here once too: a missing checkpoint is a clear error before Ray starts
        weights = getattr(load_tagger(args.model, profile, **load_kwargs), "source", "")
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    untrained = refuse_untrained(args.model, weights, profile, args.allow_untrained)
    return _finish(args, "tag", args.model, weights, untrained, files, profile, policy=policy, load_kwargs=load_kwargs)


def _index(args) -> int:
    from acg2vec_lab.bulk.ray_pipeline import BulkError, load_index

    try:
        index = load_index(args.shards, args.kind)
    except (BulkError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from exc
    print_json({"shards": args.shards, "n": len(index), "dim": index.dim, "kind": args.kind,
                "out": str(index.save(args.out))})
    return 0


def _run_options(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="FOLDER_OR_FILE", help="image files and/or folders (searched recursively)")
    p.add_argument("--out", required=True, help="output folder of shard-NNNNN.parquet files (reused to resume)")
    p.add_argument("--shard-size", type=int, default=1000, help="files per Parquet shard (the unit of resume)")
    p.add_argument("--batch", type=int, default=32, help="images per model call")
    p.add_argument("--concurrency", type=int, help="model actors (default: one per CPU, or per GPU with --num-gpus)")
    p.add_argument("--num-gpus", type=float, default=0, help="GPUs per actor (0: CPU actors)")
    p.add_argument("--address", help="a Ray cluster (ray://HOST:10001 or auto); default a local Ray on this machine")
    p.add_argument("--max-shards", type=int, help="write at most this many new shards, then stop")
    p.add_argument("--profile", help="smoke | cpu | full (default $ACG2VEC_PROFILE or cpu)")
    p.add_argument("--no-recursive", action="store_true")
    add_runtime_options(p, device=False)
    add_allow_untrained(p)


def register(sub) -> None:
    p = add_command(sub, "bulk", "embed-image / tag over huge collections as a Ray Data pipeline; resumable shards.",
                    EXAMPLES, lambda args: p.print_help() or 2)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    e = add_command(verbs, "embed", "Embed images with a registry embedder into Parquet shards of ids and vectors.",
                    EXAMPLES, _embed)
    _run_options(e)
    e.add_argument("--model", required=True, help="image embedder name (see embed-image --list)")
    e.add_argument("--normalize", action="store_true", help="L2-normalise the vectors")
    t = add_command(verbs, "tag", "Tag images into Parquet shards of ids, tags and scores.", EXAMPLES, _tag)
    _run_options(t)
    t.add_argument("--model", choices=["deepdanbooru", "joytag", "wd14", "onnx_export"], default="deepdanbooru")
    t.add_argument("--weights", metavar="PATH", help="released tagger weights (as tag --weights)")
    t.add_argument("--project-path", help="a real DeepDanbooru project folder")
    t.add_argument("--preset", choices=["balanced", "precision", "recall", "original"], default="balanced")
    t.add_argument("--general-threshold", type=float)
    t.add_argument("--character-threshold", type=float)
    t.add_argument("--max-tags", type=int)
    i = add_command(verbs, "index", "Load the shards of a bulk embed run into a faiss index folder.", EXAMPLES, _index)
    i.add_argument("shards", help="the --out folder of acg2vec-lab bulk embed")
    i.add_argument("--out", required=True, help="index folder to write (VectorIndex.save)")
    i.add_argument("--kind", default="flat", choices=["flat", "hnsw", "ivf_flat", "ivf_sq8", "ivf_pq"])
    add_runtime_options(i, device=False)
