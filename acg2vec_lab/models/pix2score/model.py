"""Pix2Score networks in Keras 3: the ResNet-V2 trunk, the three softmax heads, and the multi-task train step.

Input ``(N, S, S, 3)`` float32 RGB in [0, 1], NHWC (no ResNet ``preprocess_input``: the deployed model
was trained from scratch on [0, 1]). Outputs, in order: ``bookmark_predict`` (15), ``view_predict``
(15), ``sanity_predict`` (5), each a softmax distribution over the pixiv bins of
:mod:`acg2vec_lab.data.labels`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from acg2vec_lab.data.labels import N_BOOKMARK_BINS, N_SANITY_BINS, N_VIEW_BINS

HEADS: tuple[tuple[str, int], ...] = (
    ("bookmark_predict", N_BOOKMARK_BINS), ("view_predict", N_VIEW_BINS), ("sanity_predict", N_SANITY_BINS))
HEAD_NAMES = tuple(name for name, _ in HEADS)
BN_EPS = 1.001e-5  # Keras ResNet-V2 batch-norm epsilon


def _block_v2(x: Any, filters: int, name: str, stride: int = 1, conv_shortcut: bool = False) -> Any:
    """Pre-activation bottleneck: BN-ReLU, 1x1 f, 3x3 f (stride), 1x1 4f; conv / max-pool / identity shortcut."""
    preact = layers.BatchNormalization(epsilon=BN_EPS, name=f"{name}_preact_bn")(x)
    preact = layers.Activation("relu", name=f"{name}_preact_relu")(preact)
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    else:
        shortcut = layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x) if stride > 1 else x
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    y = layers.BatchNormalization(epsilon=BN_EPS, name=f"{name}_1_bn")(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(epsilon=BN_EPS, name=f"{name}_2_bn")(y)
    y = layers.Activation("relu", name=f"{name}_2_relu")(y)
    y = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(y)
    return layers.Add(name=f"{name}_out")([shortcut, y])


def resnet_v2_trunk(input_size: int, blocks: Sequence[int], filters: Sequence[int], stem_filters: int = 64,
                    name: str = "resnet_v2") -> keras.Model:
    """A ResNet-V2 trunk with the layer types and naming of ``keras.applications`` (stage k = ``conv{k+2}``).

    Each stage: first block with a conv shortcut, middle blocks identity, last block strided (stride 2
    except the final stage) with a max-pool shortcut. ``blocks=(3, 4, 23, 3)``, ``filters=(64, 128,
    256, 512)`` reproduces ResNet101V2 (tested against ``keras.applications``).
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(stem_filters, 7, strides=2, name="conv1_conv")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (n, f) in enumerate(zip(blocks, filters)):
        last_stride = 1 if stage == len(blocks) - 1 else 2
        prefix = f"conv{stage + 2}"
        x = _block_v2(x, f, f"{prefix}_block1", conv_shortcut=True, stride=1 if n > 1 else last_stride)
        for b in range(2, n):
            x = _block_v2(x, f, f"{prefix}_block{b}")
        if n > 1:
            x = _block_v2(x, f, f"{prefix}_block{n}", stride=last_stride)
    x = layers.BatchNormalization(epsilon=BN_EPS, name="post_bn")(x)
    x = layers.Activation("relu", name="post_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, x, name=name)


def build_trunk(cfg: Any) -> keras.Model:
    """The configured trunk mapping ``(N, S, S, 3)`` in [0, 1] to a pooled feature vector."""
    if cfg.trunk == "resnet101v2":
        return keras.applications.ResNet101V2(include_top=False, weights=None, pooling="avg",
                                              input_shape=(cfg.input_size, cfg.input_size, 3))
    if cfg.trunk == "resnet_v2":
        return resnet_v2_trunk(cfg.input_size, cfg.blocks, cfg.filters, cfg.stem_filters)
    raise ValueError(f"unknown trunk {cfg.trunk!r}; choose resnet101v2 or resnet_v2")


def pcgrad_combine(task_grads: Sequence[Sequence[Any]], variables: Sequence[Any]) -> list[Any]:
    """PCGrad (Yu et al. 2020): project each task gradient off every other task gradient it conflicts with.

    For task i, in a random order over j != i: if ``g_i . g_j < 0`` then ``g_i -= (g_i . g_j) / |g_j|^2 g_j``
    (``g_j`` the original, unprojected gradient); the projected gradients are summed. Works on the
    gradients flattened over all variables (head-only variables are zero for the other tasks).
    """
    shapes = [tf.shape(v) for v in variables]
    sizes = [tf.size(v) for v in variables]
    flat = tf.stack([
        tf.concat([tf.reshape(g if g is not None else tf.zeros_like(v), [-1]) for g, v in zip(grads, variables)], 0)
        for grads in task_grads])
    n_tasks = len(task_grads)
    projected = []
    for i in range(n_tasks):
        g = flat[i]
        order = tf.random.shuffle(tf.constant([j for j in range(n_tasks) if j != i]))
        for k in range(n_tasks - 1):
            gj = tf.gather(flat, order[k])
            dot = tf.reduce_sum(g * gj)
            g = g - tf.minimum(dot, 0.0) / (tf.reduce_sum(gj * gj) + 1e-12) * gj
        projected.append(g)
    total = tf.add_n(projected)
    return [tf.reshape(part, shape) for part, shape in zip(tf.split(total, sizes), shapes)]


def cosine_conflicts(task_grads: Sequence[Sequence[Any]], variables: Sequence[Any]) -> Any:
    """Pairwise cosine similarity of the task gradients over the shared (trunk) variables, ``(T, T)``."""
    flat = tf.stack([tf.concat([tf.reshape(g if g is not None else tf.zeros_like(v), [-1])
                                for g, v in zip(grads, variables)], 0) for grads in task_grads])
    flat = tf.math.l2_normalize(flat, axis=1)
    return tf.matmul(flat, flat, transpose_b=True)


class Pix2Score(keras.Model):
    """The trunk + three softmax heads, with a train step that sums the head losses or combines them by PCGrad.

    Build with :func:`build_pix2score`. Labels are bin indices, ``y = {head_name: (N,) int}``; each
    head's loss is categorical cross-entropy (equal weights, like the deployed v4). ``pcgrad=True``
    computes one gradient per head and combines them with :func:`pcgrad_combine`.
    """

    def __init__(self, *args: Any, pcgrad: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pcgrad = pcgrad
        self._ce = keras.losses.SparseCategoricalCrossentropy()
        self.trackers = {n: keras.metrics.Mean(name=f"{n}_loss") for n in ("loss", *HEAD_NAMES)}

    @property
    def metrics(self) -> list[Any]:
        return list(self.trackers.values())

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        with tf.GradientTape(persistent=self.pcgrad) as tape:
            preds = self(x, training=True)
            losses = [self._ce(y[name], p) for name, p in zip(HEAD_NAMES, preds)]
            total = tf.add_n(losses)
        variables = self.trainable_variables
        if self.pcgrad:
            grads = pcgrad_combine([tape.gradient(loss, variables) for loss in losses], variables)
            del tape
        else:
            grads = tape.gradient(total, variables)
        self.optimizer.apply(grads, variables)
        self.trackers["loss"].update_state(total)
        for name, loss in zip(HEAD_NAMES, losses):
            self.trackers[name].update_state(loss)
        return {k: t.result() for k, t in self.trackers.items()}

    def test_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        preds = self(x, training=False)
        losses = [self._ce(y[name], p) for name, p in zip(HEAD_NAMES, preds)]
        self.trackers["loss"].update_state(tf.add_n(losses))
        for name, loss in zip(HEAD_NAMES, losses):
            self.trackers[name].update_state(loss)
        return {k: t.result() for k, t in self.trackers.items()}


def build_pix2score(cfg: Any, pcgrad: bool | None = None) -> Pix2Score:
    """Trunk + ``Dense(k, softmax, float32)`` heads named ``bookmark_predict``, ``view_predict``, ``sanity_predict``."""
    trunk = build_trunk(cfg)
    inputs = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    features = trunk(inputs)
    outputs = [layers.Dense(k, activation="softmax", dtype="float32", name=name)(features) for name, k in HEADS]
    return Pix2Score(inputs, outputs, name="pix2score", pcgrad=cfg.pcgrad if pcgrad is None else pcgrad)
