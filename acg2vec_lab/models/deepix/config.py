"""Schema of ``configs/deepix/*.json``."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class DeepixConfig:
    """deepix multi-task fine-tuning (``models.md`` 3.3).

    Attributes:
        base_variant: DeepDanbooru variant whose trained tagger provides the trunk (``tiny``/``small``/``full``).
        cut: trunk cut point, ``add_43`` (deepix_v1's code) or ``activation_96``.
        stack_filters: bottleneck width of the ResNet-V2 stack (512 in deepix_v1; output = 4x).
        stack_blocks: pre-activation blocks in the stack (10 in deepix_v1); the first has a conv shortcut.
        trunk_lr / head_lr: learning rates of the two parameter groups (README: 1e-5 / 1e-2).
        trunk_optimizer / head_optimizer: ``sgd`` (momentum 0.9, Nesterov) or ``adamw`` (wd 1e-4);
            deepix_v2 used SGD for the trunk and AdamW for the heads.
        epochs, batch_size, max_train, max_eval, steps_per_epoch: the training run.
        l2_normalize: L2-normalise the re-extracted illust2vec embedding for retrieval.
        seed: init / shuffling seed.
    """

    base_variant: str = "small"
    cut: str = "add_43"
    stack_filters: int = 512
    stack_blocks: int = 10
    trunk_lr: float = 1e-5
    head_lr: float = 1e-2
    trunk_optimizer: str = "sgd"
    head_optimizer: str = "adamw"
    epochs: int = 3
    batch_size: int = 16
    max_train: int | None = None
    max_eval: int | None = None
    steps_per_epoch: int | None = None
    l2_normalize: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cut not in ("add_43", "activation_96"):
            raise ValueError(f"cut must be add_43 or activation_96, got {self.cut!r}")
        for o in (self.trunk_optimizer, self.head_optimizer):
            if o not in ("sgd", "adamw", "adam"):
                raise ValueError(f"optimizer must be sgd, adam or adamw, got {o!r}")
        if self.stack_blocks < 1:
            raise ValueError("stack_blocks must be >= 1")
