"""The JoyTag config: the ``ViT`` constructor arguments of the original plus this workbook's training knobs."""
from __future__ import annotations

import dataclasses

# The released model's CNN stem (training default ``SWModel20``): four stride-2 3x3 convs, each
# followed by a LayerNorm over channels and a ReLU, then a 1x1 conv to d_model; 448/16 = 28x28 tokens.
SWMODEL20_STEM = ("conv:c=64;ln;relu;conv:c=128;ln;relu;conv:c=256;ln;relu;conv:c=512;ln;relu;"
                  "conv:c=768,s=1,k=1,p=0")

# Constructor keys of the original ``ViT`` (what a released ``config.json`` may hold besides ``class``).
VIT_KWARGS = ("n_tags", "image_size", "num_blocks", "patch_size", "d_model", "mlp_dim", "num_heads",
              "stochdepth_rate", "use_sine", "loss_type", "layerscale_init", "head_mean_after", "cnn_stem",
              "patch_dropout")


@dataclasses.dataclass
class JoyTagConfig:
    """Architecture (the original's ``ViT`` kwargs) and training settings.

    ``n_tags`` is the output width; training on the synthetic set keeps the ``n_tags`` most frequent
    tags of its train split (like ``top_tags.txt``).
    """

    n_tags: int
    image_size: int
    num_blocks: int
    patch_size: int
    d_model: int
    mlp_dim: int
    num_heads: int
    stochdepth_rate: float = 0.0
    use_sine: bool = True
    loss_type: str = "focal2"
    layerscale_init: float | None = None
    head_mean_after: bool = False
    cnn_stem: str | None = None
    patch_dropout: float = 0.0
    # training (this workbook; the original: batch 4096, LAMB lr 4e-3 cosine, wd 0.05, clip 1.0)
    epochs: int = 1
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    threshold: float = 0.4
    max_train: int | None = None  # cap on training posts (None: the whole train split)

    def vit_kwargs(self) -> dict:
        """The architecture arguments in the original ``config.json`` spelling."""
        return {k: getattr(self, k) for k in VIT_KWARGS}
