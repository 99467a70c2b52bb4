"""Tiled Real-CUGAN inference for the PyTorch reference and the TF port (one driver, two backends).

Geometry: the image is reflect-padded exactly as the whole-image path does (margin 18/14/19, core
rounded up to a multiple of 2/4/2). The core is cut into tiles of ``tile`` input pixels (aligned to
the network's stride so each tile's feature maps are exact windows of the whole image's); a tile is
run with its ``margin`` halo and yields exactly ``scale * tile`` output pixels. Activation memory is
bounded by the tile size; only the output image is full size.

SE blocks need a global mean per image, so tiled inference runs in passes (recomputing rather than
caching, so memory stays bounded). Pass i runs every tile up to SE block i and gathers statistics:

* ``mode="cache"`` -- the reference's semantics (upcunet_v3 cache modes 0/1): the global mean is the
  unweighted AVERAGE OF PER-TILE MEANS over halo-including tiles. Close to, but not equal to, the
  whole-image output.
* ``mode="exact"`` -- each tile contributes the SUM over the part of its feature map that it owns
  (halo cropped, the tiles' owned parts partition the whole feature map), divided by the whole
  feature map's area: the exact global mean, so the output matches whole-image inference up to
  float rounding.
* ``mode="none"`` -- no tiling.

Alpha: the reference multiplies the SE-scaled conv4 output by alpha in its non-tiled path, but the
pre-SE features in its tiled path, forgets it in ``forward_gap_sync``'s last pass and ignores it in
``forward_fast_rough``. Here alpha always multiplies the SE-scaled conv4 output, in every path
(the model's ``core`` applies it; SE statistics are gathered before it).

Works for any image size (the reference divides by zero for tiled inputs under 128 px).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from acg2vec_lab import progress
from acg2vec_lab.models.real_cugan.geometry import (  # noqa: F401  (re-exported: tiling's vocabulary)
    GEOMETRY,
    MODES,
    N_SE,
    SECtx,
    StopAtSE,
    np_reflect_pad,
    padding,
    se_size,
    tile_starts,
)


def run_tiled(run: Callable, x: np.ndarray, scale: int, mode: str = "exact", tile: int = 128,
              n_se: int = N_SE) -> np.ndarray:
    """Generic driver. ``run(tile_nhwc, means: list[np.ndarray], stop_at: int|None) -> np.ndarray``
    (NHWC features at SE ``stop_at`` (pre-SE) or the tile's output). ``x``: (1, H, W, 3) float."""
    if mode not in MODES:
        raise ValueError(f"tile mode must be one of {MODES}, got {mode!r}")
    if x.shape[0] != 1:
        raise ValueError("tiled inference takes one image at a time")
    h0, w0 = x.shape[1:3]
    t, b, l, r, ph, pw = padding(scale, h0, w0)
    m, k = GEOMETRY[scale]
    xp = np_reflect_pad(x.astype(np.float32), t, b, l, r)
    if mode == "none":
        return run(xp, [], None)[:, : scale * h0, : scale * w0]
    tile = max(k, tile // k * k)
    ys, xs = tile_starts(ph, tile), tile_starts(pw, tile)
    tiles = [(y0, min(y0 + tile, ph), x0, min(x0 + tile, pw)) for y0 in ys for x0 in xs]
    hp, wp = ph + 2 * m, pw + 2 * m
    bar = progress.bar(total=len(tiles) * (n_se + 1), desc=f"tiles ({mode})", unit="tile", leave=False)
    means: list[np.ndarray] = []
    for i in range(n_se):
        acc, count = 0.0, 0
        full_h, full_w = se_size(scale, hp, i), se_size(scale, wp, i)
        for y0, y1, x0, x1 in tiles:
            f = run(xp[:, y0:y1 + 2 * m, x0:x1 + 2 * m], means, i)[0].astype(np.float64)
            bar.update(1)
            if mode == "cache":
                acc = acc + f.mean(axis=(0, 1))
                count += 1
                continue
            assert f.shape[0] == se_size(scale, y1 - y0 + 2 * m, i), (f.shape, i)
            # owned window: from this tile's offset to the next tile's offset in feature coordinates
            a0 = full_h - se_size(scale, hp - y0, i)
            a1 = full_h - se_size(scale, hp - y1, i) if y1 < ph else full_h
            c0 = full_w - se_size(scale, wp - x0, i)
            c1 = full_w - se_size(scale, wp - x1, i) if x1 < pw else full_w
            if a1 - a0 > f.shape[0] or c1 - c0 > f.shape[1]:
                raise AssertionError("tile too small for its owned feature window")
            acc = acc + f[: a1 - a0, : c1 - c0].sum(axis=(0, 1))
        means.append((acc / count if mode == "cache" else acc / (full_h * full_w)).astype(np.float32))
    out = None
    for y0, y1, x0, x1 in tiles:
        o = run(xp[:, y0:y1 + 2 * m, x0:x1 + 2 * m], means, None)
        bar.update(1)
        if out is None:
            out = np.zeros((1, scale * ph, scale * pw, o.shape[-1]), np.float32)
        out[:, scale * y0:scale * y1, scale * x0:scale * x1] = o
    bar.close()
    return out[:, : scale * h0, : scale * w0]


def _n_se(se: bool) -> int:
    return N_SE if se else 0


def torch_upscale(model, x, alpha: float = 1.0, mode: str = "none", tile: int = 128):
    """PyTorch: x NCHW float tensor (network range) -> NCHW float tensor."""
    import torch

    dev = next(model.parameters()).device  # tiles go where the model is (CPU or a GPU), results come back
    if mode == "none" and x.shape[0] != 1:
        with torch.no_grad():
            return model(x.to(dev), alpha).cpu()

    def run(xp, means, stop_at):
        t = torch.from_numpy(np.ascontiguousarray(xp)).permute(0, 3, 1, 2).to(dev)
        ctx = SECtx(means={i: torch.from_numpy(mv).view(1, -1, 1, 1).to(dev) for i, mv in enumerate(means)},
                    stop_at=stop_at)
        with torch.no_grad():
            try:
                y = model.core(t, alpha, ctx)
            except StopAtSE as stop:
                y = stop.features
        return y.permute(0, 2, 3, 1).float().cpu().numpy()

    xn = x.permute(0, 2, 3, 1).cpu().numpy()
    y = run_tiled(run, xn, model.scale, mode, tile, _n_se(model.se))
    return torch.from_numpy(np.ascontiguousarray(y)).permute(0, 3, 1, 2)


def tf_upscale(model, x: np.ndarray, alpha: float = 1.0, mode: str = "none", tile: int = 128) -> np.ndarray:
    """TF port: x NHWC float array (network range) -> NHWC float array. Each tile runs in graph mode
    (a cached ``tf.function`` with dynamic spatial sizes, so differently sized edge tiles reuse it)."""
    import tensorflow as tf

    a = tf.constant(alpha, tf.float32)

    def run(xp, means, stop_at):
        fn = model.function("core", n_means=len(means), stop_at=stop_at)
        ms = [tf.constant(mv.reshape(1, 1, 1, -1)) for mv in means]
        return fn(tf.constant(xp), a, *ms).numpy()

    return run_tiled(run, np.asarray(x, np.float32), model.scale, mode, tile, _n_se(model.se))
