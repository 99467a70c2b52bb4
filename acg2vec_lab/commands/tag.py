"""``acg2vec-lab tag``: batch-tag folders or files with DeepDanbooru or JoyTag, writing sidecars/JSON/CSV."""
from __future__ import annotations

from typing import Any

from acg2vec_lab.commands._util import (
    CLIError,
    add_allow_untrained,
    add_command,
    add_runtime_options,
    place,
    print_json,
)

EXAMPLES = """  acg2vec-lab run --only 02 --profile cpu                    # first: notebook 02 trains the cpu tagger (SYNTHETIC data)
  acg2vec-lab tag images/                                    # .txt captions beside each image (that trained tagger)
  acg2vec-lab tag images/ --project-path deepdanbooru-v3/     # a real DeepDanbooru project folder
  acg2vec-lab tag a.png b.jpg --format json --max-tags 20
  acg2vec-lab tag images/ --format hydrus --exclude '*_background' 're:^rating:.*'
  acg2vec-lab tag images/ --model joytag --format csv --output-dir out/
  acg2vec-lab tag images/ --preset precision --trigger mychar  # 0.5 / 0.9 thresholds, trigger word first
  acg2vec-lab tag images/ --weights onnx-dd/ --precision int8  # a tagger exported by acg2vec-lab export-onnx --int8
  acg2vec-lab tag images/ --project-path deepdanbooru-v3/ --precision bf16  # bfloat16 (AVX512-BF16 / AMX, GPU)

Without --project-path, a profile with no trained checkpoint (notebook 02 for DeepDanbooru, 05
for JoyTag) is an error that says which notebook trains it; a checkpoint labelled random init is
refused unless --allow-untrained (then the output says "untrained": true).
The taggers trained here learned SYNTHETIC drawings; the output's "weights" says so.
"""


def _main(args) -> int:
    from acg2vec_lab.config import ConfigError, current_profile
    from acg2vec_lab.tagging.format import Writer
    from acg2vec_lab.tagging.pipeline import find_images, tag_images
    from acg2vec_lab.tagging.thresholds import PRESETS, ThresholdPolicy

    try:
        profile = current_profile(args.profile)
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc
    try:
        paths = find_images(args.inputs, recursive=not args.no_recursive)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from exc
    if not paths:
        raise CLIError(f"no images found in {' '.join(args.inputs)}")
    g, c = PRESETS[args.preset]
    policy = ThresholdPolicy(
        general=args.general_threshold if args.general_threshold is not None else g,
        character=args.character_threshold if args.character_threshold is not None else c,
        max_tags=args.max_tags, exclude=tuple(args.exclude or ()), rating=not args.no_rating)
    from pathlib import Path

    first = Path(args.inputs[0])
    root = first if first.is_dir() else first.parent
    try:
        writer = Writer(args.format, output_dir=args.output_dir, root=root, trigger=args.trigger,
                        underscores=args.keep_underscores, escape=not args.no_escape,
                        include_rating=args.include_rating)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    writer.remove_stale_parts(paths)  # part files of a killed earlier run
    from acg2vec_lab.commands._util import how_to_train, refuse_untrained, tagger_model_for, untrained_label
    from acg2vec_lab.models import load_tagger

    model = tagger_model_for(args.weights, args.model) or "deepdanbooru"
    if args.project_path and model != "deepdanbooru":
        raise CLIError("--project-path is a DeepDanbooru project folder; use --weights for the other formats")
    args.model = model
    if args.precision == "int8" and model != "onnx_export":
        raise CLIError("--precision int8 runs an exported ONNX tagger's int8 file: export with "
                       "acg2vec-lab export-onnx OUT --int8, then tag with --weights OUT")
    if args.precision == "bf16" and model not in ("deepdanbooru", "joytag"):
        raise CLIError(f"--precision bf16 runs the PyTorch taggers (deepdanbooru, joytag), not {model}; "
                       "an ONNX tagger takes fp32 or int8")
    extra = {"preprocess_mode": args.preprocess} if model == "deepdanbooru" else {}
    if model == "onnx_export":
        extra = {"precision": args.precision}
    try:
        tagger = load_tagger(model, profile, args.project_path, weights=args.weights, **extra)
    except FileNotFoundError as exc:
        released = args.project_path or args.weights
        hint = "" if released else f". {how_to_train(model, profile)}, or pass --weights with a released folder"
        raise CLIError(f"{exc}{hint}") from exc
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    weights = getattr(tagger, "source", "")
    untrained = refuse_untrained(args.model, weights, profile, args.allow_untrained)
    if args.precision == "bf16":
        tagger = _bf16(tagger)
    ran_on = place(tagger, getattr(tagger, "framework", "tensorflow"), f"tag {args.model}",
                   precision={"int8": "int8", "bf16": "bfloat16"}.get(args.precision, "float32"))
    if weights.startswith("trained") and "synthetic" not in weights.lower():  # the taggers here learn the drawn set
        weights = f"{weights} (trained here on SYNTHETIC data; not a released model)"
    policy_for = None
    if args.mcut != "none":
        from acg2vec_lab.tagging.thresholds import mcut_policy

        general, character = args.mcut in ("general", "both"), args.mcut in ("character", "both")
        cats = tagger.categories
        policy_for = lambda row: mcut_policy(row, cats, policy, general=general, character=character)  # noqa: E731
    summary = tag_images(tagger, paths, writer, policy, batch_size=args.batch_size, workers=args.workers,
                         progress=not args.no_progress, resume=not args.overwrite, policy_for=policy_for)
    out = summary.as_dict()
    out.update(profile=profile, format=args.format, weights=weights, **untrained_label(untrained), device=ran_on,
               thresholds={"general": policy.general, "character": policy.character, "max_tags": policy.max_tags,
                           "exclude": list(policy.exclude), "mcut": args.mcut})
    print_json(out, stats=True)
    return 0 if summary.failed == 0 else 1


def _bf16(tagger: Any) -> Any:
    """The tagger with bfloat16 weights; a Keras DeepDanbooru runs through its PyTorch port for that."""
    from acg2vec_lab.models.deepdanbooru.tagger import DeepDanbooruTagger, DeepDanbooruTorchTagger

    if isinstance(tagger, DeepDanbooruTagger):
        return DeepDanbooruTorchTagger.from_keras(tagger, precision="bf16")
    return tagger.set_precision("bf16")


def register(sub) -> None:
    p = add_command(sub, "tag", "Tag images in batches (one model load per run); resumable, bad files skipped and reported.",
                    EXAMPLES, _main)
    p.add_argument("inputs", nargs="+", metavar="FOLDER_OR_FILE", help="image files and/or folders (searched recursively)")
    p.add_argument("--model", choices=["deepdanbooru", "joytag", "wd14", "onnx_export"], default=None,
                   help="which tagger (default deepdanbooru, or what --weights holds)")
    p.add_argument("--weights", metavar="PATH",
                   help="released weights, format detected from the files: a WD14 / wd-v3 folder (model.onnx + "
                        "selected_tags.csv), a DeepDanbooru project folder, a JoyTag folder, a folder written by "
                        "acg2vec-lab export-onnx")
    p.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                   help="bf16: bfloat16 weights for the PyTorch taggers (DeepDanbooru through its PyTorch port, "
                        "JoyTag); int8: the int8 file of an exported ONNX tagger (export-onnx --int8). What each "
                        "costs against fp32 is printed by benchmarks/peer_deepdanbooru.py and onnx_precision.py")
    p.add_argument("--mcut", choices=["none", "general", "character", "both"], default="none",
                   help="per-image MCut thresholds (largest gap of the sorted scores), as the wd-tagger Space: "
                        "general = MCut, character = max(0.15, MCut)")
    p.add_argument("--project-path", help="a real DeepDanbooru project folder (model-*.h5/.keras, tags.txt, categories.json)")
    p.add_argument("--profile", help="smoke | cpu | full: which trained variant (default: $ACG2VEC_PROFILE or cpu)")
    p.add_argument("--format", choices=["txt", "hydrus", "json", "csv"], default="txt",
                   help="txt: name.txt caption; hydrus: name.ext.txt one tag per line; json: name.ext.json; csv: one tags.csv")
    p.add_argument("--output-dir", help="write outputs here (mirroring the input folder) instead of beside the images")
    p.add_argument("--preset", choices=["balanced", "precision", "recall", "original"], default="balanced",
                   help="threshold preset (general/character): balanced .35/.85, precision .5/.9, recall .25/.7, original .5/.5")
    p.add_argument("--general-threshold", type=float, help="overrides the preset's general threshold")
    p.add_argument("--character-threshold", type=float, help="overrides the preset's character threshold")
    p.add_argument("--max-tags", type=int, help="keep at most this many tags per image (rating not counted)")
    p.add_argument("--exclude", nargs="+", metavar="PATTERN", help="wildcards (e.g. '*_background') or 're:REGEX', after thresholding")
    p.add_argument("--trigger", help="a word prepended to every caption")
    p.add_argument("--keep-underscores", action="store_true", help="do not turn underscores into spaces")
    p.add_argument("--no-escape", action="store_true", help="do not escape ( and )")
    p.add_argument("--include-rating", action="store_true", help="put the rating tag into txt/hydrus captions too")
    p.add_argument("--no-rating", action="store_true", help="do not emit the rating arg-max at all")
    p.add_argument("--preprocess", choices=["deepdanbooru", "stretch", "a1111"], default="deepdanbooru",
                   help="DeepDanbooru preprocessing: original evaluation path, plain stretch, or A1111 resize-and-fill")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="decode/resize threads running beside the model")
    p.add_argument("--overwrite", action="store_true", help="retag images whose output already exists (default: skip them)")
    p.add_argument("--no-recursive", action="store_true")
    add_runtime_options(p)
    add_allow_untrained(p)
