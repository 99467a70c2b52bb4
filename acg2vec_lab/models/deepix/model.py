"""deepix in Keras: DeepDanbooru trunk -> ResNet-V2 stack ``deepix_conv5`` -> GAP -> 3 softmax heads.

* trunk: the trained tagger's graph up to the cut (``add_43`` by block position, as deepix_v1), a
  sub-model named ``deepix_trunk`` so its variables form one group;
* ``deepix_conv5``: ResNet-V2 ``stack2`` pre-activation bottlenecks (BN eps 1.001e-5 -> ReLU -> 1x1
  f -> BN-ReLU -> 3x3 f -> BN-ReLU -> 1x1 4f; conv shortcut from the pre-activation in block 1,
  identity after), stride 1 throughout (``stride1=1``);
* heads: ``bookmark_predict`` 15, ``view_predict`` 15, ``sanity_predict`` 5, softmax, float32 —
  the 15/15/5 bins the training scripts actually use (not deepix_v1's 10/10/10/3/3, ``models.md`` 3.3).

Differential learning rates: :class:`DifferentialTrainer` splits the trainable variables into the
trunk group and everything else *by identity*, checks that the two groups are disjoint and cover
every trainable variable, and steps each with its own optimizer. The original multi-optimizer
builder (``models.md`` 9.7) could leave the "other" group's optimizer ``None`` and hand an earlier
group's layer list to it; here an uncovered variable is an error.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.data.labels import (
    BOOKMARK_EDGES,
    N_BOOKMARK_BINS,
    N_SANITY_BINS,
    N_VIEW_BINS,
    SANITY_EDGES,
    VIEW_EDGES,
    to_bins,
)
from acg2vec_lab.retrieval import metrics as retrieval_metrics

HEADS = {"bookmark": N_BOOKMARK_BINS, "view": N_VIEW_BINS, "sanity": N_SANITY_BINS}
BN_EPS_V2 = 1.001e-5


def trunk_model(tagger: Any, cut: str = "add_43"):
    """The tagger's graph from its input to the cut tensor, as a sub-model ``deepix_trunk``."""
    import keras

    from acg2vec_lab.models.deepdanbooru.tf_model import cut_layer_name, topology

    name = cut_layer_name(topology(tagger), cut)
    return keras.Model(tagger.input, tagger.get_layer(name).output, name="deepix_trunk")


def _v2_block(x, filters: int, conv_shortcut: bool, name: str):
    L = __import__("keras").layers
    pre = L.BatchNormalization(epsilon=BN_EPS_V2, name=f"{name}_preact_bn")(x)
    pre = L.Activation("relu", name=f"{name}_preact_relu")(pre)
    shortcut = L.Conv2D(4 * filters, 1, name=f"{name}_0_conv")(pre) if conv_shortcut else x
    y = L.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(pre)
    y = L.BatchNormalization(epsilon=BN_EPS_V2, name=f"{name}_1_bn")(y)
    y = L.Activation("relu", name=f"{name}_1_relu")(y)
    y = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = L.BatchNormalization(epsilon=BN_EPS_V2, name=f"{name}_2_bn")(y)
    y = L.Activation("relu", name=f"{name}_2_relu")(y)
    y = L.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(y)
    return L.Add(name=f"{name}_out")([shortcut, y])


def build_deepix(tagger: Any, cfg: Any):
    """deepix on top of ``tagger`` (its weights are shared with the trunk sub-model)."""
    import keras

    L = keras.layers
    trunk = trunk_model(tagger, cfg.cut)
    inp = keras.Input(tagger.input_shape[1:], name="image")
    x = trunk(inp)
    for i in range(cfg.stack_blocks):
        x = _v2_block(x, cfg.stack_filters, conv_shortcut=(i == 0), name=f"deepix_conv5_block{i + 1}")
    x = L.GlobalAveragePooling2D(name="deepix_avg_pool")(x)
    outs = [L.Dense(n, activation="softmax", dtype="float32", name=f"{h}_predict")(x) for h, n in HEADS.items()]
    return keras.Model(inp, outs, name="deepix")


def pixiv_targets(posts: Sequence[Any]) -> dict[str, np.ndarray]:
    """One-hot ``(N, bins)`` targets per head from ``post.pixiv`` (bin i = [e_{i-1}, e_i))."""
    raw = {"bookmark": ([p.pixiv["bookmark_count"] for p in posts], BOOKMARK_EDGES),
           "view": ([p.pixiv["view_count"] for p in posts], VIEW_EDGES),
           "sanity": ([p.pixiv["sanity_level"] for p in posts], SANITY_EDGES)}
    return {h: np.eye(HEADS[h], dtype=np.float32)[to_bins(v, e)] for h, (v, e) in raw.items()}


def split_variables(model: Any) -> tuple[list[Any], list[Any]]:
    """``(trunk variables, other variables)`` by identity; every trainable variable in exactly one group."""
    trunk = model.get_layer("deepix_trunk")
    trunk_ids = {id(v) for v in trunk.trainable_variables}
    t = [v for v in model.trainable_variables if id(v) in trunk_ids]
    o = [v for v in model.trainable_variables if id(v) not in trunk_ids]
    if len(t) + len(o) != len(model.trainable_variables) or not t or not o:
        raise ValueError(f"variable groups do not partition the model: trunk {len(t)}, other {len(o)}, "
                         f"total {len(model.trainable_variables)}")
    return t, o


def _optimizer(name: str, lr: float):
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=1e-4)
    return keras.optimizers.Adam(lr)


class DifferentialTrainer:
    """Two optimizers, one per variable group; one compiled train step (categorical CE summed over heads)."""

    def __init__(self, model: Any, cfg: Any) -> None:
        import tensorflow as tf

        self.model, self.cfg = model, cfg
        self.trunk_vars, self.head_vars = split_variables(model)
        self.trunk_opt = _optimizer(cfg.trunk_optimizer, cfg.trunk_lr)
        self.head_opt = _optimizer(cfg.head_optimizer, cfg.head_lr)
        self.trunk_opt.build(self.trunk_vars)
        self.head_opt.build(self.head_vars)
        n_t = len(self.trunk_vars)

        def step(x, yb, yv, ys):
            with tf.GradientTape() as tape:
                pb, pv, ps = model(x, training=True)
                losses = [tf.reduce_mean(tf.keras.losses.categorical_crossentropy(y, p))
                          for y, p in ((yb, pb), (yv, pv), (ys, ps))]
                loss = tf.add_n(losses)
            grads = tape.gradient(loss, self.trunk_vars + self.head_vars)

            def apply():
                self.trunk_opt.apply_gradients(zip(grads[:n_t], self.trunk_vars))
                self.head_opt.apply_gradients(zip(grads[n_t:], self.head_vars))
                return tf.constant(True)

            # a non-finite loss never reaches the weights (train/guards.py's one policy)
            tf.cond(tf.math.is_finite(loss), apply, lambda: tf.constant(False))
            return loss, losses

        self._step = tf.function(step)

    def fit(self, x: np.ndarray, targets: dict[str, np.ndarray], epochs: int, batch_size: int,
            steps_per_epoch: int | None = None, seed: int = 0) -> list[dict[str, float]]:
        """Shuffled mini-batch training. A non-finite loss is not applied and raises
        :class:`~acg2vec_lab.train.guards.NonFiniteLoss` naming the epoch and batch."""
        from acg2vec_lab.train.guards import check_finite

        history: list[dict[str, Any]] = []
        n = len(x)
        from acg2vec_lab import progress

        for epoch in progress.bar(range(epochs), desc="deepix train", unit="epoch"):
            t0 = time.perf_counter()
            order = np.random.default_rng((seed, epoch)).permutation(n)
            nb = int(np.ceil(n / batch_size))
            if steps_per_epoch:
                nb = min(nb, steps_per_epoch)
            sums = np.zeros(4)
            for b in range(nb):
                idx = order[b * batch_size:(b + 1) * batch_size]
                loss, parts = self._step(x[idx], targets["bookmark"][idx], targets["view"][idx], targets["sanity"][idx])
                vals = np.array([float(loss)] + [float(p) for p in parts])
                check_finite(vals.sum(), "deepix", f"epoch {epoch} batch {b}")
                sums += vals
            m = sums / nb
            history.append({"epoch": epoch, "loss": m[0], "bookmark_ce": m[1], "view_ce": m[2], "sanity_ce": m[3],
                            "batches": nb, "seconds": round(time.perf_counter() - t0, 1)})
        return history


# ----------------------------------------------------------------------------------- runs

WEIGHTS_FILE = "deepix.weights.h5"


@dataclasses.dataclass
class DeepixData:
    """Training inputs: ``x`` ``(N, H, W, 3)`` float32 in [0, 1] (the tagger's evaluation
    preprocessing, NHWC), one-hot ``targets`` per head, and the finished base tagger run whose
    trunk deepix tunes (its id is part of the deepix run's data fingerprint)."""

    x: np.ndarray
    targets: dict[str, np.ndarray]
    base_folder: Path
    fingerprint: str

    @classmethod
    def from_dataset(cls, dataset: Any, cfg: Any, base_run: Any) -> DeepixData:
        from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model, prepare_images
        from acg2vec_lab.train.run import dataset_fingerprint

        tagger = load_trained_tagger_model(checkpoint=base_run.folder)[0]
        posts = dataset.split("train")[: cfg.max_train]
        size = tuple(tagger.input_shape[1:3])
        x = np.stack(prepare_images([dataset.image_path(p) for p in posts], size, False))
        return cls(x, pixiv_targets(posts), base_run.folder, f"{dataset_fingerprint(dataset)}+base:{base_run.id}")


def fit(cfg: Any, data: DeepixData, run: Any) -> dict[str, Any]:
    """Tune deepix on ``data`` into ``run`` (a :class:`~acg2vec_lab.train.run.Run`): the whole deepix
    model (trunk included) is saved as ``deepix.weights.h5``; a finished run is only loaded."""
    import keras

    from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model
    from acg2vec_lab.train.run import save_keras_weights

    if run.exists():
        return {"model": load_run(run.folder), "history": run.manifest()["history"], "resumed": True}
    keras.utils.set_random_seed(run.seed)
    tagger = load_trained_tagger_model(checkpoint=data.base_folder)[0]
    model = build_deepix(tagger, cfg)
    history = DifferentialTrainer(model, cfg).fit(data.x, data.targets, cfg.epochs, cfg.batch_size,
                                                  cfg.steps_per_epoch, run.seed)
    save_keras_weights(model, run.path(WEIGHTS_FILE))
    run.save(history, step=len(history), complete=True, base_tagger=str(data.base_folder))
    return {"model": model, "history": history, "resumed": False}


def load_run(folder: str | Path) -> Any:
    """The deepix model of a finished run folder (built on its base tagger run, then its own weights)."""
    from acg2vec_lab.config import from_dict
    from acg2vec_lab.models.deepdanbooru.train import load_trained_tagger_model
    from acg2vec_lab.models.deepix.config import DeepixConfig
    from acg2vec_lab.train.run import manifest_of

    folder = Path(folder)
    m = manifest_of(folder)
    if not (m and m.get("complete")):
        raise FileNotFoundError(f"no finished deepix run in {folder}")
    cfg = from_dict(DeepixConfig, m["config"], str(folder))
    tagger = load_trained_tagger_model(checkpoint=m["extra"]["base_tagger"])[0]
    model = build_deepix(tagger, cfg)
    model.load_weights(str(folder / WEIGHTS_FILE))
    return model


def head_accuracy(model: Any, x: np.ndarray, targets: dict[str, np.ndarray], batch_size: int = 32) -> dict[str, float]:
    """Top-1 accuracy per head and the majority-bin baseline of the same split."""
    preds = [[], [], []]
    for i in range(0, len(x), batch_size):
        for k, p in enumerate(model(x[i:i + batch_size], training=False)):
            preds[k].append(np.asarray(p))
    out = {}
    for k, h in enumerate(HEADS):
        p = np.concatenate(preds[k]).argmax(1)
        y = targets[h].argmax(1)
        out[f"{h}_acc"] = float((p == y).mean())
        out[f"{h}_majority"] = float(np.bincount(y, minlength=HEADS[h]).max() / len(y))
    return out


def trunk_embeddings(trunk: Any, x: np.ndarray, l2_normalize: bool = True, batch_size: int = 32) -> np.ndarray:
    """illust2vec from a trunk: mean-pooled cut tensor ``(N, C)``, optionally L2-normalised."""
    out = []
    for i in range(0, len(x), batch_size):
        f = np.asarray(trunk(x[i:i + batch_size], training=False))
        out.append(f.mean(axis=(1, 2)))
    e = np.concatenate(out).astype(np.float32)
    if l2_normalize:
        e = retrieval_metrics.l2_normalize(e)
    return e
