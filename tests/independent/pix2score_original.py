"""Write and score a Pix2Score ``deepix_v4`` weights file the way the ORIGINAL code does (independent of
``acg2vec_lab``: nothing from the workbook is imported here).

Run in a subprocess with ``TF_USE_LEGACY_KERAS=1`` (the original is Keras 2 code; TensorFlow then
serves ``tf.keras`` from the ``tf_keras`` package). What it does, following upstream
``pix2score/deepix_resnet_swin_transformer.py:pure_resnet``, ``train.py`` and
``pix2score_export_to_tf-serving.py``:

1. builds ``pure_resnet``: ``tf.keras.Input((224, 224, 3), name="input")`` ->
   ``tf.keras.applications.ResNet101V2(include_top=False, weights=None, input_shape=None,
   pooling="avg")`` called as a nested model -> three ``Dense(k, softmax, dtype="float32")`` heads
   ``bookmark_predict`` 15, ``view_predict`` 15, ``sanity_predict`` 5 -> ``Model(name="pix2score")``;
2. gives every BatchNormalization random statistics and scales each head so the softmaxes are not
   saturated (random from ``--seed``: a misplaced or mis-ordered weight changes the output);
3. saves ``OUT/00000200.h5`` with ``model.save_weights`` (tf_keras' Keras 2 weights-only h5 writer,
   the per-epoch ``model_weight_history/<config>/{epoch:08d}.h5`` of ``train.py``);
4. with ``--savedmodel``, also the TF-Serving export: a fresh ``pure_resnet`` loads that h5 and is
   wrapped as the export script does (``Input(shape=(), dtype=string, name="b64_input_bytes")`` ->
   decode_base64 / decode_image / resize 224 / 255 -> the model), saved with ``model.save`` to
   ``OUT/pix2score_base64_input`` (the export script saved and reloaded the plain model first; that
   round trip is skipped here for time, the variables and the signature are the same);
5. predicts each image with its own preprocessing (``tf.io.decode_image(channels=3)``,
   ``tf.image.resize`` bilinear to 224x224, ``/ 255``) on a fresh model that ``load_weights`` the h5.

Writes ``OUT/original.npz`` (``bookmark``, ``view``, ``sanity``: ``(n_images, k)`` float32; ``inputs``
``(n_images, 224, 224, 3)`` float32; plain arrays, no pickle) and ``OUT/original.json`` (versions,
files, image names, parameter count, the weights file's first layer names).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SIZE = 224
HEADS = (("bookmark_predict", 15), ("view_predict", 15), ("sanity_predict", 5))


def pure_resnet(tf):
    """The upstream ``pure_resnet(input_size=224)`` as written there (nested ResNet101V2, three heads)."""
    inputs = tf.keras.Input(shape=(SIZE, SIZE, 3), name="input")
    resnet = tf.keras.applications.ResNet101V2(include_top=False, weights=None, input_tensor=None,
                                               input_shape=None, pooling="avg")
    x = resnet(inputs)
    outputs = [tf.keras.layers.Dense(k, activation="softmax", name=name, dtype="float32")(x) for name, k in HEADS]
    return tf.keras.models.Model(inputs=inputs, outputs=outputs, name="pix2score")


def load_for_upstream(tf, path: Path):
    """The upstream ``Base64DecoderLayer.byte_to_img`` minus the base64 step: decode, resize, /255."""
    image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    return tf.image.resize(image, [SIZE, SIZE]) / 255.0


def randomise(tf, np, model, seed: int, batch) -> None:
    """Random BN statistics everywhere, then heads rescaled so their logits have std ~1.5 on ``batch``."""
    rng = np.random.default_rng(seed)
    trunk = model.get_layer("resnet101v2")
    for layer in trunk.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.6, 1.4, c).astype("float32"), rng.normal(0, 0.1, c).astype("float32"),
                               rng.normal(0, 0.1, c).astype("float32"), rng.uniform(0.5, 1.5, c).astype("float32")])
    features = trunk(batch, training=False).numpy()
    for name, _ in HEADS:
        head = model.get_layer(name)
        kernel, bias = head.get_weights()
        logits = features @ kernel
        scale = 1.5 / max(float(logits.std()), 1e-12)
        head.set_weights([kernel * scale, rng.normal(0, 0.3, bias.shape).astype("float32")])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--savedmodel", action="store_true", help="also write the TF-Serving export")
    ap.add_argument("images", nargs="+", type=Path)
    args = ap.parse_args(argv)
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        print("set TF_USE_LEGACY_KERAS=1 (the original is Keras 2 code)", file=sys.stderr)
        return 2
    import h5py
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    batch = tf.stack([load_for_upstream(tf, p) for p in args.images])
    model = pure_resnet(tf)
    randomise(tf, np, model, args.seed, batch)
    weights = args.out / "00000200.h5"
    model.save_weights(str(weights))
    params = int(model.count_params())
    del model
    tf.keras.backend.clear_session()

    fresh = pure_resnet(tf)  # what the export script does: build_model(config) then load_weights(<epoch>.h5)
    fresh.load_weights(str(weights))
    preds = fresh.predict(batch, verbose=0)
    files = {"weights": str(weights)}
    if args.savedmodel:
        wrapped = args.out / "pix2score_base64_input"
        files["savedmodel"] = str(wrapped)

        class Base64DecoderLayer(tf.keras.layers.Layer):
            """The export script's layer: URL-safe base64 string -> (224, 224, 3) in [0, 1]."""

            def byte_to_img(self, byte_tensor):
                image = tf.io.decode_image(tf.io.decode_base64(byte_tensor), channels=3)
                image.set_shape((None, None, 3))
                return tf.cast(tf.image.resize(image, [SIZE, SIZE]), tf.float32) / 255

            def call(self, inputs, **kwargs):
                return tf.map_fn(self.byte_to_img, inputs, dtype=tf.float32)

        b64 = tf.keras.layers.Input(shape=(), dtype=tf.string, name="b64_input_bytes")
        base64_model = tf.keras.Model(inputs=b64, outputs=fresh(Base64DecoderLayer()(b64)))
        base64_model.save(str(wrapped))
    with h5py.File(weights, "r") as f:
        layer_names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
    np.savez(args.out / "original.npz", bookmark=preds[0].astype(np.float32), view=preds[1].astype(np.float32),
             sanity=preds[2].astype(np.float32), inputs=batch.numpy().astype(np.float32))
    meta = {"tensorflow": tf.__version__, "keras_module": tf.keras.__name__,
            "keras": getattr(tf.keras, "__version__", ""), **files, "images": [str(p) for p in args.images],
            "params": params, "layer_names": layer_names}
    (args.out / "original.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
