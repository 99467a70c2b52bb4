"""Super-resolution quality on real anime art, the ACG2vec (3,2,1,0) bug demo, side-by-side crops."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL bicubic resize to (width, height)."""
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))


def center_crop(img: np.ndarray, side: int) -> np.ndarray:
    """A side x side crop (even side) around the image centre, shifted up for tall sprites (faces)."""
    h, w = img.shape[:2]
    side = min(side, h, w) // 2 * 2
    y = (h - side) // 2 if h <= 1.5 * w else max(0, h // 5 - side // 4)
    x = (w - side) // 2
    return img[y:y + side, x:x + side]


def hr_crops(n: int, side: int) -> list[tuple[str, np.ndarray]]:
    """(name, crop) of the first ``n`` Ren'Py images (backgrounds first, then sprites on white),
    alternating so both kinds appear when n >= 2."""
    from acg2vec_lab.models.real_cugan import weights

    paths = weights.renpy_image_paths()
    bgs = [p for p in paths if p.name.startswith("bg ")]
    sprites = [p for p in paths if not p.name.startswith("bg ")]
    order = [p for pair in zip(bgs, sprites) for p in pair] + sprites[len(bgs):]
    return [(p.stem, center_crop(weights.load_renpy(p), side)) for p in order[:n]]


def quality_table(crops: Sequence[tuple[str, np.ndarray]], variants: Sequence[str], tf_too: bool = True,
                  keep_outputs: bool = False) -> Any:
    """PSNR/SSIM of 2x upscalers on bicubic-downscaled crops vs the originals.

    Methods: bicubic, waifu2x UpConv7 (real weights), and for each official Real-CUGAN 2x
    ``variants`` (e.g. ``models-se/up2x-conservative``) the PyTorch reference and (``tf_too``) the TF
    port. Returns a DataFrame (one row per method x image) and, with ``keep_outputs``, a dict
    {(method, image): upscaled uint8}."""
    import pandas as pd

    from acg2vec_lab.models import waifu2x
    from acg2vec_lab.models.real_cugan import convert, tf_model, torch_model, weights

    w2x = waifu2x.load_npz(waifu2x.model_path())
    methods = {"bicubic": lambda lr, hr: bicubic(lr, (hr.shape[1], hr.shape[0])),
               "waifu2x UpConv7": lambda lr, hr: waifu2x.upscale_image(w2x, lr)}
    for v in variants:
        m, pro = weights.load_official(v)
        methods[f"Real-CUGAN {v} (torch)"] = lambda lr, hr, m=m, pro=pro: torch_model.upscale_image(m, lr, pro)
        if tf_too:
            tm_ = convert.tf_from_torch(m)
            methods[f"Real-CUGAN {v} (tf)"] = lambda lr, hr, t=tm_, pro=pro: tf_model.upscale_image(t, lr, pro)
    rows, outputs = [], {}
    for name, hr in crops:
        lr = bicubic(hr, (hr.shape[1] // 2, hr.shape[0] // 2))
        for method, fn in methods.items():
            out = fn(lr, hr)
            rows.append({"method": method, "image": name, "psnr": psnr(out, hr), "ssim": ssim(out, hr)})
            if keep_outputs:
                outputs[(method, name)] = out
    df = pd.DataFrame(rows)
    return (df, outputs) if keep_outputs else df


def summarize(df: Any) -> Any:
    return df.groupby("method", sort=False)[["psnr", "ssim"]].mean().round(4)


def transpose_bug_demo(torch_model: Any, img: np.ndarray, pro: bool = False) -> dict:
    """ACG2vec's port bug on a real image: TF model with kernels permuted (3,2,1,0).

    Returns outputs of the correct port, the buggy port and T(correct(T(x))), plus the measured
    max |diff| (uint8 steps) buggy vs correct and buggy vs T(f(T(x)))."""
    from acg2vec_lab.models.real_cugan import convert, tf_model

    good = convert.tf_from_torch(torch_model)
    bad = tf_model.TFUpCunet(torch_model.scale, torch_model.base, torch_model.se)
    convert.load_into_tf_acg2vec_bug(bad, torch_model.state_dict())
    y_good = tf_model.upscale_image(good, img, pro)
    y_bad = tf_model.upscale_image(bad, img, pro)
    y_tft = tf_model.upscale_image(good, np.ascontiguousarray(img.transpose(1, 0, 2)), pro).transpose(1, 0, 2)
    d = lambda a, b: int(np.abs(a.astype(int) - b.astype(int)).max())  # noqa: E731
    return {"correct": y_good, "acg2vec_bug": y_bad, "T_f_T": y_tft,
            "bug_vs_correct_max": d(y_bad, y_good), "bug_vs_correct_mean": float(np.abs(y_bad.astype(int) - y_good.astype(int)).mean()),
            "bug_vs_TfT_max": d(y_bad, y_tft)}


def side_by_side(images: Sequence[np.ndarray], titles: Sequence[str], zoom: int = 0):
    """A matplotlib figure of equally sized crops side by side (optionally the top-left zoom px)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3.2))
    for ax, im, t in zip(np.atleast_1d(axes), images, titles):
        ax.imshow(im[:zoom, :zoom] if zoom else im, interpolation="nearest")
        ax.set_title(t, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
