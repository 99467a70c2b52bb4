"""Schema of the DeepDanbooru tagger training config (``configs/deepdanbooru_train/*.json``); deepix has its own in ``models/deepix/config.py``."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class TaggerTrainConfig:
    """Training a DeepDanbooru tagger from scratch (DeepDanbooru's ``project.json`` options).

    The architecture comes from ``configs/deepdanbooru/<model_variant>.json`` (its ``n_tags`` is
    replaced by the vocabulary size found in the data); everything about *training* is here.

    Attributes:
        model_variant: DeepDanbooru config variant to build (``tiny`` / ``small`` / ``full``).
        epochs: passes over the training split.
        batch_size: DeepDanbooru's ``minibatch_size``.
        learning_rate: initial learning rate.
        learning_rates: optional schedule, ``[{"used_epoch": e, "learning_rate": lr}, ...]``; the last
            entry with ``used_epoch <= epoch`` wins (DeepDanbooru's semantics).
        optimizer: ``adam``, ``sgd`` (momentum 0.9, Nesterov) or ``rmsprop``.
        loss: ``binary_crossentropy`` or ``focal_loss`` (alpha 0.25, gamma 2).
        rotation_range / scale_range / shift_range: augmentation (degrees / factor / fraction of size).
        augment: apply the augmentation (off = evaluation preprocessing for training too).
        minimum_tag_count: tags with fewer training posts are dropped from the vocabulary.
        max_tags: keep at most this many general+character tags (most frequent); None = all.
        max_train / max_eval: caps on the splits (None = all).
        steps_per_epoch: cap on batches per epoch (smoke runs); None = the whole split.
        mixed_precision: ``mixed_float16`` policy (GPU only; the NaN guard matters most here).
        bn_check: check BatchNorm moving statistics after every epoch and repair corruption.
        bn_repair: ``reestimate`` or ``nan_to_num`` (see :mod:`acg2vec_lab.train.guards`).
        workers: threads preparing batches (decode, augment) while the model trains.
        seed: shuffling / augmentation / init seed.
    """

    model_variant: str = "small"
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 0.001
    learning_rates: tuple = ()
    optimizer: str = "adam"
    loss: str = "binary_crossentropy"
    rotation_range: tuple[float, float] = (0.0, 360.0)
    scale_range: tuple[float, float] = (0.9, 1.1)
    shift_range: tuple[float, float] = (-0.1, 0.1)
    augment: bool = True
    minimum_tag_count: int = 20
    max_tags: int | None = None
    max_train: int | None = None
    max_eval: int | None = None
    steps_per_epoch: int | None = None
    mixed_precision: bool = False
    bn_check: bool = True
    bn_repair: str = "reestimate"
    workers: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd", "rmsprop"):
            raise ValueError(f"optimizer must be adam, sgd or rmsprop, got {self.optimizer!r}")
        if self.loss not in ("binary_crossentropy", "focal_loss"):
            raise ValueError(f"loss must be binary_crossentropy or focal_loss, got {self.loss!r}")
        if self.bn_repair not in ("reestimate", "nan_to_num"):
            raise ValueError(f"bn_repair must be reestimate or nan_to_num, got {self.bn_repair!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
