"""The Pix2Score config: trunk, heads, input size and training settings."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Pix2ScoreConfig:
    """Trunk and training knobs.

    ``trunk``: ``"resnet101v2"`` is ``keras.applications.ResNet101V2(include_top=False, weights=None,
    pooling="avg")`` as deployed; ``"resnet_v2"`` is this package's ResNet-V2 builder with
    ``blocks``/``filters`` (same layer types: 7x7 stem conv, max-pool, pre-activation bottlenecks
    with conv or max-pool shortcuts, post-BN/ReLU, global average pool).
    """

    trunk: str = "resnet101v2"
    input_size: int = 224
    blocks: tuple = (3, 4, 23, 3)
    filters: tuple = (64, 128, 256, 512)
    stem_filters: int = 64
    # training: the deployed v4 used Adam 3e-4, batch 64, equal loss weights, categorical cross-entropy
    epochs: int = 1
    batch_size: int = 64
    lr: float = 3e-4
    pcgrad: bool = False
    max_train: int | None = None
    # after fit, re-estimate every BN layer's moving statistics from training batches with the final
    # weights (weights frozen): the moving averages of a short, fast-moving run lag behind the weights
    recalibrate_bn: bool = True
    recalibrate_batches: int = 30
    # EfficientNet-Lite0 comparison: frozen real features + the same three heads
    lite_size: int = 224  # EfficientNet-Lite0 input side (its native 224; smaller in the CPU profiles for time)
    lite_epochs: int = 50
    lite_lr: float = 1e-2
