"""``acg2vec-lab score``: Pix2Score bookmark / view / sanity predictions for images, as the original API returned them."""
from __future__ import annotations

from acg2vec_lab.commands._util import add_allow_untrained, add_command, add_runtime_options

EXAMPLES = """  acg2vec-lab run --only 04 --profile cpu        # first: notebook 04 trains the cpu checkpoint (SYNTHETIC data)
  acg2vec-lab score art.png                      # {bookmarkPredict, viewPredict, sanityPredict} + arg-max bins
  acg2vec-lab score a.jpg b.webp --profile smoke # the tiny checkpoint of `acg2vec-lab run --only 04 --profile smoke`
  acg2vec-lab score *.png --compact              # one JSON line per image
  acg2vec-lab score art.png --allow-untrained    # no checkpoint: random weights, output labelled untrained
  acg2vec-lab score a.png b.jpg --weights model_weight_history/deepix_v4/00000200.h5   # released deepix_v4
  acg2vec-lab score art.png --weights pix2score_base64_input/   # the TF-Serving SavedModel of the same

Without --weights and without a checkpoint for the profile the command exits with an error saying how
to train one. --weights takes the released deepix_v4 files (a Keras 2 save_weights .h5 or the
TF-Serving SavedModel folder; format told from the files, every weight name and shape checked).
An image that cannot be read is skipped and listed under "skipped" (exit status 1).
"""


def _main(args) -> int:
    import json
    import sys

    from acg2vec_lab.commands._util import CLIError, print_json, refuse_untrained, untrained_label
    from acg2vec_lab.config import ConfigError, current_profile
    from acg2vec_lab.data.images import ImageLoadError

    try:
        profile = current_profile(args.profile)
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc
    from acg2vec_lab.models.pix2score.api import image_file_b64, to_api, untrained_weights

    # refuse before reading images or building a model: a --weights path of no Pix2Score format, or
    # random weights (they print plausible-looking bins)
    if args.weights:
        from acg2vec_lab.models.pix2score.released import Pix2ScoreWeightsError, detect_format

        try:
            detect_format(args.weights)  # a wrong path fails before any image is read
        except Pix2ScoreWeightsError as exc:
            raise CLIError(str(exc)) from exc
    elif not args.allow_untrained:
        refuse_untrained("pix2score", untrained_weights(profile), profile, allow=False)

    encoded, images, skipped = [], [], []
    for path in args.images:  # read every image first: a bad file is skipped before any model is built
        try:
            encoded.append(image_file_b64(path))
            images.append(path)
        except ImageLoadError as exc:
            skipped.append({"image": str(path), "error": str(exc)})
            print(f"skipped: {exc}", file=sys.stderr)
    if not encoded:
        raise CLIError("no image could be read: " + "; ".join(s["error"] for s in skipped))
    import acg2vec_lab  # noqa: F401  (environment defaults before tensorflow)
    from acg2vec_lab.commands._util import place
    from acg2vec_lab.models.pix2score.api import load_for_scoring
    from acg2vec_lab.models.pix2score.serving import predict_b64

    if args.weights:
        from acg2vec_lab.models.pix2score.released import load_released

        try:
            model, weights = load_released(args.weights)
        except Pix2ScoreWeightsError as exc:
            raise CLIError(str(exc)) from exc
        label = untrained_label(False)
    else:
        model, weights = load_for_scoring(profile)
        label = untrained_label(refuse_untrained("pix2score", weights, profile, args.allow_untrained))
    ran_on = place(None, "tensorflow", "score pix2score")
    import tensorflow as tf

    with tf.device(ran_on["device"]):
        probs = predict_b64(model, encoded)
    results = [{"image": str(p), **to_api(probs, i)} for i, p in enumerate(images)]
    if args.compact:
        for r in results:
            print(json.dumps({**r, "weights": weights, **label, "device": ran_on["device"]}, ensure_ascii=False))
        for s in skipped:
            print(json.dumps({**s, "skipped": True}, ensure_ascii=False))
    else:
        print_json({"profile": profile, "weights": weights, **label, "device": ran_on, "results": results,
                    "skipped": skipped}, stats=True)
    return 1 if skipped else 0


def register(sub) -> None:
    p = add_command(sub, "score", "Pix2Score: predict pixiv bookmark/view bins and sanity level of images",
                    EXAMPLES, _main)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    p.add_argument("--profile", default=None, help="smoke | cpu | full: which trained variant (default $ACG2VEC_PROFILE or cpu)")
    p.add_argument("--compact", action="store_true", help="one JSON object per line instead of one document")
    p.add_argument("--weights", default=None, metavar="PATH",
                   help="released deepix_v4 weights: a Keras 2 save_weights .h5 (model_weight_history/deepix_v4/"
                        "<epoch>.h5) or the TF-Serving SavedModel folder; instead of the profile's checkpoint")
    add_runtime_options(p)
    add_allow_untrained(p)
