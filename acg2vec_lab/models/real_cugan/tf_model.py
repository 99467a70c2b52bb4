"""Real-CUGAN UpCunet 2x/3x/4x as a Keras 3 / TensorFlow port (NHWC).

Every layer is a Keras layer named after the upstream PyTorch key prefix (``unet1.conv1.conv.0``),
so :mod:`convert` fills them by name. What differs from PyTorch, and how it is handled here:

* NHWC; SE mean over axes (1, 2), keepdims.
* ``ConvTranspose2d(k, s, p)``: Keras ``Conv2DTranspose(padding="valid")`` then a slice of ``p`` per
  side (:func:`acg2vec_lab.port.transposed.crop`): k4 s2 p3 -> ``[3:-3]``; k5 s3 p2 -> ``[2:-2]``.
* ``F.pad(x, (-a,)*4)`` -> slices ``x[:, a:-a, a:-a, :]`` (``tf.pad`` rejects negatives).
* ``F.pad(x, (l, r, t, b), 'reflect')`` -> ``tf.pad(x, [[0,0],[t,b],[l,r],[0,0]], 'REFLECT')``.
* ``PixelShuffle(2)`` (NCHW channel index c*4 + i*2 + j) is an explicit reshape/transpose, not
  ``tf.nn.depth_to_space`` (whose channel order is (i*2 + j)*C + c).
* SE hooks and alpha exactly as in :mod:`torch_model` (shared :class:`SECtx`).
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from acg2vec_lab.models.real_cugan import tiling
from acg2vec_lab.models.real_cugan.geometry import (
    GEOMETRY,
    SECtx,
    StopAtSE,
    from_network_range_float,
    quantize,
    to_network_range,
)
from acg2vec_lab.models.real_cugan.geometry import next_se as _next_se


def _lrelu(x):
    return tf.nn.leaky_relu(x, 0.1)


def crop(x, a: int):
    return x[:, a:-a, a:-a, :] if a else x


class _Builder:
    """Creates Keras layers and records them under their torch key prefix."""

    def __init__(self):
        self.layers: dict[str, keras.layers.Layer] = {}
        self.kinds: dict[str, tuple] = {}

    def conv(self, key, cout, k, s=1):
        layer = keras.layers.Conv2D(cout, k, strides=s, padding="valid", name=key.replace(".", "_"))
        self.layers[key] = layer
        self.kinds[key] = ("conv", k, s, 0)
        return layer

    def deconv(self, key, cout, k, s, p):
        layer = keras.layers.Conv2DTranspose(cout, k, strides=s, padding="valid", name=key.replace(".", "_"))
        self.layers[key] = layer
        self.kinds[key] = ("deconv", k, s, p)
        return layer


class TFUpCunet:
    """Keras layers + a Python forward; wrap calls in ``tf.function`` (see :meth:`function`)."""

    def __init__(self, scale: int = 2, base: int = 32, se: bool = True, reduction: int = 8):
        self.scale, self.base, self.se, self.reduction = scale, base, se, reduction
        b = _Builder()
        c1, c2, c4, c8 = base, 2 * base, 4 * base, 8 * base
        u1_out = 2 * base if scale == 4 else 3
        u2_in, u2_out = (2 * base, 2 * base) if scale == 4 else (3, 3)

        def unetconv(key, mid, cout, has_se):
            b.conv(f"{key}.conv.0", mid, 3)
            b.conv(f"{key}.conv.2", cout, 3)
            if has_se and se:
                b.conv(f"{key}.seblock.conv1", cout // reduction, 1)
                b.conv(f"{key}.seblock.conv2", cout, 1)

        unetconv("unet1.conv1", c1, c2, False)
        b.conv("unet1.conv1_down", c2, 2, 2)
        unetconv("unet1.conv2", c4, c2, True)
        b.deconv("unet1.conv2_up", c2, 2, 2, 0)
        b.conv("unet1.conv3", c2, 3)
        if scale == 3:
            b.deconv("unet1.conv_bottom", u1_out, 5, 3, 2)
        else:
            b.deconv("unet1.conv_bottom", u1_out, 4, 2, 3)
        unetconv("unet2.conv1", c1, c2, False)
        b.conv("unet2.conv1_down", c2, 2, 2)
        unetconv("unet2.conv2", c2, c4, True)
        b.conv("unet2.conv2_down", c4, 2, 2)
        unetconv("unet2.conv3", c8, c4, True)
        b.deconv("unet2.conv3_up", c4, 2, 2, 0)
        unetconv("unet2.conv4", c2, c2, True)
        b.deconv("unet2.conv4_up", c2, 2, 2, 0)
        b.conv("unet2.conv5", c2, 3)
        b.conv("unet2.conv_bottom", u2_out, 3)
        if scale == 4:
            b.conv("conv_final", 12, 3)
        self.layers, self.kinds = b.layers, b.kinds
        self._in_channels = {"unet2.conv1.conv.0": u2_in}
        self._functions: dict = {}
        self.built = False

    # --- layers ---------------------------------------------------------------------------------
    def _apply(self, key, x):
        layer = self.layers[key]
        kind, k, s, p = self.kinds[key]
        y = layer(x)
        if kind == "deconv" and p:
            y = y[:, p:-p, p:-p, :]  # valid transposed conv, then crop p per side
        return y

    def _unetconv(self, key, x, ctx):
        x = _lrelu(self._apply(f"{key}.conv.0", x))
        x = _lrelu(self._apply(f"{key}.conv.2", x))
        if f"{key}.seblock.conv1" in self.layers:
            mean = _next_se(ctx, x)
            if mean is None:
                mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
            z = tf.nn.relu(self._apply(f"{key}.seblock.conv1", mean))
            z = tf.sigmoid(self._apply(f"{key}.seblock.conv2", z))
            x = x * z
        return x

    def unet1(self, x, ctx=None):
        x1 = self._unetconv("unet1.conv1", x, ctx)
        x2 = _lrelu(self._apply("unet1.conv1_down", x1))
        x2 = self._unetconv("unet1.conv2", x2, ctx)
        x2 = _lrelu(self._apply("unet1.conv2_up", x2))
        x3 = _lrelu(self._apply("unet1.conv3", crop(x1, 4) + x2))
        return self._apply("unet1.conv_bottom", x3)

    def unet2(self, x, alpha=1.0, ctx=None):
        x1 = self._unetconv("unet2.conv1", x, ctx)
        x2 = _lrelu(self._apply("unet2.conv1_down", x1))
        x2 = self._unetconv("unet2.conv2", x2, ctx)
        x3 = _lrelu(self._apply("unet2.conv2_down", x2))
        x3 = self._unetconv("unet2.conv3", x3, ctx)
        x3 = _lrelu(self._apply("unet2.conv3_up", x3))
        x4 = self._unetconv("unet2.conv4", crop(x2, 4) + x3, ctx) * alpha
        x4 = _lrelu(self._apply("unet2.conv4_up", x4))
        x5 = _lrelu(self._apply("unet2.conv5", crop(x1, 16) + x4))
        return self._apply("unet2.conv_bottom", x5)

    def core(self, xp, alpha=1.0, ctx=None):
        """Padded NHWC input of side c + 2*margin -> scale*c output (see torch_model.UpCunet.core)."""
        y = self.unet1(xp, ctx)
        out = self.unet2(y, alpha, ctx) + crop(y, 20)
        if self.scale == 4:
            out = pixel_shuffle_nhwc(crop(self._apply("conv_final", out), 1), 2)
            m = GEOMETRY[4][0]
            src = xp[:, m:-m, m:-m, :]
            out = out + tf.repeat(tf.repeat(src, 4, axis=1), 4, axis=2)  # nearest x4
        return out

    def forward(self, x, alpha=1.0):
        """Whole image, NHWC float in network range; dynamic sizes (graph-safe)."""
        m, k = GEOMETRY[self.scale]
        shape = tf.shape(x)
        h0, w0 = shape[1], shape[2]
        ph = ((h0 - 1) // k + 1) * k
        pw = ((w0 - 1) // k + 1) * k
        # torch F.pad(x, (m, m+pw-w0, m, m+ph-h0)) lists W first; tf.pad lists H first.
        xp = reflect_pad(x, m, m + ph - h0, m, m + pw - w0)
        out = self.core(xp, alpha)
        return out[:, : self.scale * h0, : self.scale * w0, :]

    def build(self):
        if not self.built:
            m, k = GEOMETRY[self.scale]
            self.core(tf.zeros([1, 4 * k + 2 * m, 4 * k + 2 * m, 3]))
            self.built = True
        return self

    def function(self, kind: str = "forward", n_means: int = 0, stop_at: int | None = None):
        """A cached ``tf.function`` with a dynamic-size input signature.

        kind "forward": f(x, alpha) on the unpadded image; kind "core": f(xp, alpha, *means) on a
        padded tile, with the first ``n_means`` SE means supplied and an optional stop point."""
        self.build()
        key = (kind, n_means, stop_at)
        if key not in self._functions:
            img = tf.TensorSpec([None, None, None, 3], tf.float32)
            alpha = tf.TensorSpec([], tf.float32)
            if kind == "forward":
                fn = tf.function(lambda x, a: self.forward(x, a), input_signature=[img, alpha])
            else:
                chans = self.se_channels()
                sig = [img, alpha] + [tf.TensorSpec([None, 1, 1, chans[i]], tf.float32) for i in range(n_means)]

                def _core(xp, a, *means):
                    ctx = SECtx(means={i: m for i, m in enumerate(means)}, stop_at=stop_at)
                    try:
                        return self.core(xp, a, ctx)
                    except StopAtSE as stop:
                        return stop.features

                fn = tf.function(_core, input_signature=sig)
            self._functions[key] = fn
        return self._functions[key]

    def se_channels(self) -> list[int]:
        c2, c4 = 2 * self.base, 4 * self.base
        return [c2, c4, c4, c2]

    def __call__(self, x, alpha: float = 1.0):
        return self.function("forward")(tf.convert_to_tensor(x, tf.float32), tf.constant(alpha, tf.float32))


def reflect_pad(x, top, bottom, left, right, rounds: int = 8):
    """Graph-safe reflect padding with dynamic amounts; like torch_model.reflect_pad it pads in
    rounds of at most side-1 so images smaller than the margin work (sides >= 2; 8 unrolled rounds
    cover every side >= 2 for the margins used here). Extra rounds pad by 0 (no-ops)."""
    for _ in range(rounds):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        t, b = tf.minimum(top, h - 1), tf.minimum(bottom, h - 1)
        l, r = tf.minimum(left, w - 1), tf.minimum(right, w - 1)
        x = tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], mode="REFLECT")
        top, bottom, left, right = top - t, bottom - b, left - l, right - r
    return x


def pixel_shuffle_nhwc(x, r: int):
    """PyTorch ``PixelShuffle(r)`` semantics on NHWC: input channel c*r*r + i*r + j -> (h*r+i, w*r+j, c)."""
    s = tf.shape(x)
    n, h, w, cr = s[0], s[1], s[2], s[3]
    c = cr // (r * r)
    x = tf.reshape(x, [n, h, w, c, r, r])
    x = tf.transpose(x, [0, 1, 4, 2, 5, 3])  # n, h, i, w, j, c
    return tf.reshape(x, [n, h * r, w * r, c])


def upscale_image(model: TFUpCunet, img: Any, pro: bool = False, alpha: float = 1.0, tile: str = "none",
                  tile_size: int = 128) -> Any:
    """uint8 HxWx3 -> uint8 upscaled with the TF port."""
    import numpy as np


    x = to_network_range(np.asarray(img), pro)[None]
    y = tiling.tf_upscale(model, x, alpha=alpha, mode=tile, tile=tile_size)
    return quantize(from_network_range_float(np.asarray(y)[0], pro))
