"""Small demonstrations behind the port-notes notebook (06); each returns a table or numbers."""
from __future__ import annotations

from typing import Any

import numpy as np


def nchw_vs_nhwc() -> Any:
    """One 3x3 conv in both frameworks on the same data: shapes side by side and max |diff|."""
    import pandas as pd
    import tensorflow as tf
    import torch

    from acg2vec_lab.port import layout

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 6, 7)
    y_t = conv(x).detach().numpy()
    k = layout.oihw_to_hwio(conv.weight.detach().numpy())
    y_f = tf.nn.conv2d(layout.nchw_to_nhwc(x.numpy()), k, 1, "VALID").numpy() + conv.bias.detach().numpy()
    return pd.DataFrame([
        {"": "input", "PyTorch (NCHW)": tuple(x.shape), "TF (NHWC)": tuple(layout.nchw_to_nhwc(x.numpy()).shape)},
        {"": "kernel", "PyTorch (NCHW)": tuple(conv.weight.shape), "TF (NHWC)": k.shape},
        {"": "output", "PyTorch (NCHW)": y_t.shape, "TF (NHWC)": y_f.shape},
        {"": "max |diff|", "PyTorch (NCHW)": float(np.abs(layout.nchw_to_nhwc(y_t) - y_f).max()), "TF (NHWC)": ""},
    ])


def kernel_layouts(torch_model: Any, tf_model: Any) -> Any:
    """Per layer type: PyTorch weight shape, Keras kernel shape, the permutation used (one example each)."""
    import pandas as pd

    from acg2vec_lab.models.real_cugan.convert import weight_transform

    rows, seen = [], set()
    for key, layer in tf_model.layers.items():
        kind = tf_model.kinds[key][0]
        label = "SE 1x1 Conv2d" if ".seblock." in key else ("ConvTranspose2d" if kind == "deconv" else "Conv2d")
        label += f" k{tf_model.kinds[key][1]} s{tf_model.kinds[key][2]}"
        if label in seen:
            continue
        seen.add(label)
        rows.append({"type": label, "example": key, "torch weight": tuple(torch_model.get_submodule(key).weight.shape),
                     "keras kernel": tuple(layer.kernel.shape), "transform": weight_transform(kind)})
    return pd.DataFrame(rows)


def toy_transposed(n: int = 5, k: int = 4, s: int = 2, p: int = 3) -> dict:
    """ConvTranspose2d(k, s, p) on an n x n toy: torch size, Keras valid/same sizes, crop, max |diff|."""
    import tensorflow as tf
    import torch

    from acg2vec_lab.port import layout, transposed

    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose2d(1, 1, k, s, p, bias=False)
    x = torch.arange(n * n, dtype=torch.float32).reshape(1, 1, n, n) / (n * n)
    ref = conv(x).detach().numpy()[0, 0]
    kern = layout.iohw_to_hwoi(conv.weight.detach().numpy())
    xv = layout.nchw_to_nhwc(x.numpy())
    valid = tf.keras.layers.Conv2DTranspose(1, k, s, padding="valid", use_bias=False)
    same = tf.keras.layers.Conv2DTranspose(1, k, s, padding="same", use_bias=False)
    valid.build(xv.shape)
    same.build(xv.shape)
    valid.set_weights([kern])
    same.set_weights([kern])
    yv = valid(xv).numpy()[0, :, :, 0]
    a, b = transposed.crop(k, s, p)
    cropped = yv[a:yv.shape[0] - b, a:yv.shape[1] - b]
    out = transposed.describe(n, k, s, p)
    out.update({"keras_same_shape": tuple(same(xv).shape[1:3]), "valid_then_crop_max_abs_diff": float(np.abs(cropped - ref).max()),
                "flipped_kernel_max_abs_diff": _flipped(xv, kern, k, s, a, b, ref)})
    return out


def _flipped(xv, kern, k, s, a, b, ref) -> float:
    import tensorflow as tf

    layer = tf.keras.layers.Conv2DTranspose(1, k, s, padding="valid", use_bias=False)
    layer.build(xv.shape)
    layer.set_weights([kern[::-1, ::-1].copy()])
    y = layer(xv).numpy()[0, :, :, 0]
    return float(np.abs(y[a:y.shape[0] - b, a:y.shape[1] - b] - ref).max())


def real_transposed_layer(torch_model: Any, tf_model: Any, key: str = "unet1.conv_bottom", n: int = 9) -> dict:
    """The same check on an official layer: random feature map of the right width."""
    import torch

    mod = torch_model.get_submodule(key)
    layer = tf_model.layers[key]
    kind, k, s, p = tf_model.kinds[key]
    x = torch.rand(1, mod.in_channels, n, n)
    with torch.no_grad():
        ref = mod(x).numpy().transpose(0, 2, 3, 1)
    yv = layer(x.numpy().transpose(0, 2, 3, 1)).numpy()
    y = yv[:, p:-p, p:-p] if p else yv
    return {"layer": key, "torch": str(mod), "input": n, "keras_valid_out": yv.shape[1], "crop_per_side": p,
            "torch_out": ref.shape[1], "max_abs_diff": float(np.abs(y - ref).max())}


def negative_padding() -> dict:
    import torch
    import torch.nn.functional as F

    x = torch.rand(1, 2, 12, 10)
    return {"F.pad(-4) shape": tuple(F.pad(x, (-4, -4, -4, -4)).shape), "slice shape": tuple(x[:, :, 4:-4, 4:-4].shape),
            "equal": bool(torch.equal(F.pad(x, (-4, -4, -4, -4)), x[:, :, 4:-4, 4:-4]))}


def reflect_order() -> dict:
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    from acg2vec_lab.port import layout

    x = torch.rand(1, 3, 5, 8)
    pad = (2, 3, 1, 4)  # torch: left, right, top, bottom (last axis first)
    ref = F.pad(x, pad, mode="reflect").numpy().transpose(0, 2, 3, 1)
    right = tf.pad(layout.nchw_to_nhwc(x.numpy()), layout.torch_reflect_pad_to_tf(pad), "REFLECT").numpy()
    naive = tf.pad(layout.nchw_to_nhwc(x.numpy()), [[0, 0], [2, 3], [1, 4], [0, 0]], "REFLECT").numpy()
    return {"torch_pad": pad, "tf_paddings": layout.torch_reflect_pad_to_tf(pad), "tf_shape": right.shape,
            "max_abs_diff": float(np.abs(right - ref).max()), "naive_order_shape": naive.shape,
            "naive_order_matches": naive.shape == ref.shape and bool(np.allclose(naive, ref))}


def graph_mode(tf_model: Any, sizes=((37, 53), (64, 48), (41, 41))) -> dict:
    """The whole-image forward as one tf.function with [None, None, None, 3]: one trace, many sizes."""
    import tensorflow as tf

    fn = tf_model.function("forward")
    shapes = []
    for h, w in sizes:
        y = fn(tf.random.uniform([1, h, w, 3]), tf.constant(1.0))
        shapes.append(tuple(y.shape))
    return {"input_signature": str(fn.input_signature[0]), "outputs": shapes,
            "traces": fn.experimental_get_tracing_count()}


def tensorarray_tile_means(tf_model: Any, img_nhwc: np.ndarray, tile: int) -> dict:
    """Graph-mode tile loop: per-tile means of the first SE block gathered with tf.while_loop into a
    TensorArray (assigned back each step, as graph mode requires), compared with a Python loop."""
    import tensorflow as tf

    from acg2vec_lab.models.real_cugan import tiling

    scale = tf_model.scale
    t, b, l, r, ph, pw = tiling.padding(scale, *img_nhwc.shape[1:3])
    m = t
    xp = tf.constant(tiling.np_reflect_pad(img_nhwc.astype(np.float32), t, b, l, r))
    starts = [(y, x) for y in range(0, ph, tile) for x in range(0, pw, tile)]
    st = tf.constant(starts, tf.int32)
    core = tf_model.function("core", 0, 0)

    @tf.function
    def loop(xp, st):
        ta = tf.TensorArray(tf.float32, size=tf.shape(st)[0])

        def body(i, ta):
            y0, x0 = st[i, 0], st[i, 1]
            y1, x1 = tf.minimum(y0 + tile, ph), tf.minimum(x0 + tile, pw)
            f = core(xp[:, y0:y1 + 2 * m, x0:x1 + 2 * m], tf.constant(1.0))
            ta = ta.write(i, tf.reduce_mean(f, axis=(0, 1, 2)))  # re-assign: TensorArray is functional in graphs
            return i + 1, ta

        _, ta = tf.while_loop(lambda i, ta: i < tf.shape(st)[0], body, [tf.constant(0), ta])
        return ta.stack()

    graph_means = loop(xp, st).numpy()
    py_means = np.stack([core(xp[:, y:min(y + tile, ph) + 2 * m, x:min(x + tile, pw) + 2 * m], tf.constant(1.0)).numpy().mean(axis=(0, 1, 2))
                         for y, x in starts])
    return {"tiles": len(starts), "means_shape": graph_means.shape,
            "max_abs_diff_vs_python_loop": float(np.abs(graph_means - py_means).max())}


def tiling_comparison(torch_model: Any, tf_model: Any, img: np.ndarray, pro: bool, tile: int) -> Any:
    """uint8 and float differences of tiled (exact, cache) vs whole-image output, both backends."""
    import pandas as pd
    import torch

    from acg2vec_lab.models.real_cugan import tiling
    from acg2vec_lab.models.real_cugan import torch_model as tm

    x = torch.from_numpy(tm.to_network_range(img, pro)).permute(2, 0, 1)[None]
    whole = tiling.torch_upscale(torch_model, x, mode="none").permute(0, 2, 3, 1).numpy()
    rows = []
    for backend in ("torch", "tf"):
        for mode in ("exact", "cache"):
            if backend == "torch":
                y = tiling.torch_upscale(torch_model, x, mode=mode, tile=tile).permute(0, 2, 3, 1).numpy()
            else:
                y = tiling.tf_upscale(tf_model, x.permute(0, 2, 3, 1).numpy(), mode=mode, tile=tile)
            qa = tm.quantize(tm.from_network_range_float(y, pro))
            qb = tm.quantize(tm.from_network_range_float(whole, pro))
            rows.append({"backend": backend, "mode": mode, "tile": tile, "image": f"{img.shape[1]}x{img.shape[0]}",
                         "max_abs_diff_x255": float(np.abs(y - whole).max() * 255),
                         "uint8_identical": float((qa == qb).mean()),
                         "uint8_max_diff": int(np.abs(qa.astype(int) - qb.astype(int)).max())})
    return pd.DataFrame(rows)
