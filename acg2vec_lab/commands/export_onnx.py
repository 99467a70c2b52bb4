"""``acg2vec-lab export-onnx``: a DeepDanbooru or JoyTag tagger as ONNX (dynamic batch), optionally int8."""
from __future__ import annotations

from acg2vec_lab.commands._util import add_allow_untrained, add_command, add_runtime_options

EXAMPLES = """  acg2vec-lab export-onnx onnx-dd/                                 # the trained DeepDanbooru tagger (cpu profile)
  acg2vec-lab export-onnx onnx-dd/ --project-path deepdanbooru-v3/  # a real DeepDanbooru project
  acg2vec-lab export-onnx onnx-jt/ --model joytag --weights joytag/ --int8   # a JoyTag folder, plus int8 (dynamic)
  acg2vec-lab export-onnx onnx-dd/ --int8 --calibration train-images/ # static int8 for DeepDanbooru
  acg2vec-lab tag images/ --weights onnx-dd/ --precision int8       # tag with what was exported

The export is run by onnxruntime at two batch sizes and compared with the framework model before anything
is written (allowed max |prob diff| 1e-4); the figures are in the folder's export.json.
"""


def _main(args) -> int:
    from acg2vec_lab.commands._util import CLIError, print_json, refuse_untrained
    from acg2vec_lab.config import ConfigError, current_profile

    try:
        profile = current_profile(args.profile)
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc
    import acg2vec_lab  # noqa: F401  (environment defaults before the frameworks)
    from acg2vec_lab.commands._util import tagger_model_for
    from acg2vec_lab.models import load_tagger
    from acg2vec_lab.models.onnx_export import ExportError, export_tagger

    model = tagger_model_for(args.weights, args.model, allowed=("deepdanbooru", "joytag")) or "deepdanbooru"
    try:
        tagger = load_tagger(model, profile, args.project_path, weights=args.weights)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    refuse_untrained(model, getattr(tagger, "source", ""), profile, args.allow_untrained)
    calibration = None
    if args.calibration:
        if not args.int8:
            raise CLIError("--calibration sets the ranges of the int8 file: add --int8")
        calibration = _calibration_images(tagger, args.calibration, args.calibration_images)
    try:
        meta = export_tagger(tagger, args.out, int8=args.int8, calibration=calibration,
                             calibrate_method=args.calibrate_method)
    except ExportError as exc:
        raise CLIError(str(exc)) from exc
    print_json({"out": str(args.out), **meta}, stats=True)
    return 0


def _calibration_images(tagger, folder: str, limit: int):
    """Up to ``limit`` images of ``folder`` (sorted, every ``len // limit``-th), preprocessed as the tagger
    does; unreadable files are skipped and named on stderr."""
    import sys

    import numpy as np

    from acg2vec_lab.commands._util import CLIError
    from acg2vec_lab.tagging.pipeline import find_images

    try:
        paths = find_images([folder])
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from exc
    paths = paths[:: max(1, len(paths) // max(limit, 1))][:limit]
    from acg2vec_lab.data import load_image
    from acg2vec_lab.data.images import ImageLoadError

    load = getattr(tagger, "loader", None) or load_image  # as the tag pipeline reads files for this tagger
    arrays = []
    for p in paths:
        try:
            arrays.append(tagger.preprocess(load(p)))
        except (OSError, ValueError, ImageLoadError) as exc:
            print(f"export-onnx: calibration: skipped {p}: {exc}", file=sys.stderr)
    if not arrays:
        raise CLIError(f"--calibration {folder}: no readable images")
    return np.stack(arrays).astype(np.float32)


def register(sub) -> None:
    p = add_command(sub, "export-onnx", "Export a DeepDanbooru or JoyTag tagger to ONNX (dynamic batch; --int8 too)",
                    EXAMPLES, _main)
    p.add_argument("out", metavar="OUT_FOLDER", help="the folder to write (model.onnx, tags.csv, export.json)")
    p.add_argument("--model", choices=["deepdanbooru", "joytag"], default=None,
                   help="which tagger (default deepdanbooru, or what --weights holds)")
    p.add_argument("--weights", metavar="PATH", help="a DeepDanbooru project or JoyTag folder (default: the trained run)")
    p.add_argument("--project-path", help="a real DeepDanbooru project folder")
    p.add_argument("--profile", help="smoke | cpu | full: which trained variant (default: $ACG2VEC_PROFILE or cpu)")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (onnxruntime quantisation: static "
                   "with --calibration, else dynamic)")
    p.add_argument("--calibration", metavar="IMAGES", help="a folder of images (not the ones you evaluate on) that set "
                   "the int8 activation ranges: static quantisation, the fast int8 path for DeepDanbooru's convolutions")
    p.add_argument("--calibration-images", type=int, default=64, help="how many of them (spread over the folder)")
    p.add_argument("--calibrate-method", choices=["minmax", "percentile"], default="minmax",
                   help="how an activation range is read from the calibration images")
    add_allow_untrained(p)
    add_runtime_options(p, device=False)  # the export and its parity check run on the CPU
