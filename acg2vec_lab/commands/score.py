"""``acg2vec-lab score``: Pix2Score bookmark / view / sanity predictions for images, as the original API returned them."""
from __future__ import annotations

from acg2vec_lab.commands._util import add_command

EXAMPLES = """  acg2vec-lab score art.png                    # {bookmarkPredict, viewPredict, sanityPredict} + arg-max bins
  acg2vec-lab score a.jpg b.webp --profile full  # the ResNet101V2 checkpoint trained in the full profile
  acg2vec-lab score *.png --compact            # one JSON line per image
"""


def _main(args) -> int:
    import json
    import sys

    from acg2vec_lab.commands._util import CLIError, print_json
    from acg2vec_lab.config import ConfigError, current_profile
    from acg2vec_lab.data.images import ImageLoadError

    try:
        profile = current_profile(args.profile)
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc
    from acg2vec_lab.models.pix2score.api import image_file_b64, to_api

    encoded = []
    for path in args.images:  # read every image first: a bad file fails before any model is built
        try:
            encoded.append(image_file_b64(path))
        except ImageLoadError as exc:
            raise CLIError(str(exc)) from exc
    import acg2vec_lab  # noqa: F401  (environment defaults before tensorflow)
    from acg2vec_lab.models.pix2score.api import load_for_scoring
    from acg2vec_lab.models.pix2score.serving import predict_b64

    model, weights = load_for_scoring(profile)
    if weights.startswith("random init"):
        print(f"score: {weights}; the numbers below are NOT meaningful", file=sys.stderr)
    probs = predict_b64(model, encoded)
    results = [{"image": str(p), **to_api(probs, i)} for i, p in enumerate(args.images)]
    if args.compact:
        for r in results:
            print(json.dumps({**r, "weights": weights}, ensure_ascii=False))
    else:
        print_json({"profile": profile, "weights": weights, "results": results})
    return 0


def register(sub) -> None:
    p = add_command(sub, "score", "Pix2Score: predict pixiv bookmark/view bins and sanity level of images",
                    EXAMPLES, _main)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    p.add_argument("--profile", default=None, help="smoke | cpu | full: which trained variant (default $ACG2VEC_PROFILE or cpu)")
    p.add_argument("--compact", action="store_true", help="one JSON object per line instead of one document")
