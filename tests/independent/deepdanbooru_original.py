"""Write and score a DeepDanbooru project with the ORIGINAL ``deepdanbooru`` package (independent of
``acg2vec_lab``: nothing from the workbook is imported here).

Run in a subprocess with ``TF_USE_LEGACY_KERAS=1`` (the package is Keras 2 code; TensorFlow then
serves ``tf.keras`` from the ``tf_keras`` package). The package's ``import tensorflow_io`` (used only
for WebP decoding, never for the PNG/JPEG files here) is satisfied by an empty stub module created
under ``OUT/_stub`` and put on ``sys.path`` in this process only.

What it does, all with the original's own code:

1. ``deepdanbooru.commands.create_project(OUT/project)`` (default ``project.json``), then sets the
   image size and model name in ``project.json`` as a user would;
2. builds the network the way ``train_project`` does: ``tf.keras.Input((H, W, 3))`` ->
   ``deepdanbooru.model.resnet.create_resnet_custom_v3`` (``--arch v3``) or, for a fast check, the same
   recipe at small width (``resnet_original_bottleneck_model`` with ``--filters``/``--repeats``, then
   ``conv_gap`` + float32 sigmoid, exactly the v3 head) -> ``tf.keras.Model(name=...)``;
3. gives every BatchNormalization random statistics (so a misplaced or mis-ordered weight changes the
   output) and rescales the head so the sigmoids are not saturated;
4. saves ``model-<name>.h5`` with ``model.save`` (tf_keras' legacy h5 writer) and ``tags.txt``;
5. reloads the project with ``deepdanbooru.project.load_model_from_project`` and scores each image
   with ``deepdanbooru.commands.evaluate_image`` (the ``deepdanbooru evaluate`` path: its own
   ``load_image_for_evaluate`` decoding and resizing); also keeps the preprocessed arrays.

Writes ``OUT/original.npz`` (``scores`` (n_images, n_tags) float32, ``inputs`` (n_images, H, W, 3)
float32; plain arrays, no pickle) and ``OUT/original.json`` (versions, model file, image names).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--arch", choices=["v3", "small"], default="small")
    ap.add_argument("--filters", default="32,64,64", help="small arch: filter sizes per stage")
    ap.add_argument("--repeats", default="1,1,1", help="small arch: identity blocks per stage")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--tags", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("images", nargs="+", type=Path)
    args = ap.parse_args(argv)
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        print("set TF_USE_LEGACY_KERAS=1 (the original package is Keras 2 code)", file=sys.stderr)
        return 2
    stub = args.out / "_stub" / "tensorflow_io"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text('"""Empty stand-in: deepdanbooru imports it for WebP only."""\n')
    sys.path.insert(0, str(stub.parent))

    import deepdanbooru as dd
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    project = args.out / "project"
    dd.commands.create_project(str(project))
    name = "resnet_custom_v3" if args.arch == "v3" else "resnet_custom_small"
    context = dd.io.deserialize_from_json(str(project / "project.json"))
    context.update({"image_width": args.width, "image_height": args.height, "model": name})
    dd.io.serialize_as_json(context, str(project / "project.json"))
    tags = [f"general_{i}" for i in range(args.tags - 3)] + ["rating:safe", "rating:questionable", "rating:explicit"]
    (project / "tags.txt").write_text("\n".join(tags) + "\n", encoding="utf-8")

    inputs = tf.keras.Input(shape=(args.height, args.width, 3), dtype=tf.float32)
    if args.arch == "v3":
        outputs = dd.model.resnet.create_resnet_custom_v3(inputs, output_dim=len(tags))
    else:
        x = dd.model.resnet.resnet_original_bottleneck_model(
            inputs, filter_sizes=[int(v) for v in args.filters.split(",")],
            repeat_sizes=[int(v) for v in args.repeats.split(",")], final_pool=False)
        x = dd.model.layers.conv_gap(x, len(tags))
        outputs = tf.keras.layers.Activation("sigmoid", dtype="float32")(x)
    model = tf.keras.Model(inputs=inputs, outputs=outputs, name=name)

    rng = np.random.default_rng(args.seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            c = gamma.shape[0]
            g = rng.uniform(0.6, 1.4, c) if np.any(gamma) else rng.uniform(0.1, 0.4, c)  # 3rd BN starts at 0
            layer.set_weights([g.astype("float32"), rng.normal(0, 0.1, c).astype("float32"),
                               rng.normal(0, 0.1, c).astype("float32"), rng.uniform(0.5, 1.5, c).astype("float32")])
    images = [dd.data.load_image_for_evaluate(str(p), width=args.width, height=args.height) for p in args.images]
    batch = np.stack(images).astype("float32")
    head = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)][-1]
    gap = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.GlobalAveragePooling2D)][-1]
    logits = tf.keras.Model(model.input, gap.output)(batch, training=False).numpy()
    (kernel,) = head.get_weights()
    head.set_weights([kernel * (1.5 / max(float(logits.std()), 1e-12))])

    model_path = project / f"model-{name}.h5"
    model.save(str(model_path), include_optimizer=False)
    del model
    tf.keras.backend.clear_session()

    reloaded = dd.project.load_model_from_project(str(project), compile_model=False)
    scores = []
    for p in args.images:
        got = dict(dd.commands.evaluate_image(str(p), reloaded, tags, threshold=0.0))
        scores.append([float(got[t]) for t in tags])
    np.savez(args.out / "original.npz", scores=np.asarray(scores, np.float32), inputs=batch)
    meta = {"tensorflow": tf.__version__, "keras": tf.keras.__version__ if hasattr(tf.keras, "__version__") else "",
            "keras_module": tf.keras.__name__, "deepdanbooru": getattr(dd, "__version__", "1.0.4"),
            "project": str(project), "model_file": str(model_path), "arch": args.arch,
            "images": [str(p) for p in args.images], "params": int(reloaded.count_params())}
    (args.out / "original.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
