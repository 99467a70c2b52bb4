"""Configuration of a DeepDanbooru tagger (architecture, tags, input size, illust2vec cut).

The architecture is either one of DeepDanbooru's named variants (``resnet_custom_v1`` ... ``v4``,
``resnet_152``; their filter/repeat sizes are in :data:`VARIANTS`) or ``"custom"`` with explicit
``filter_sizes`` / ``repeat_sizes`` (the tiny and small profiles). Stage ``i`` has
``1 + repeat_sizes[i]`` bottleneck blocks of width ``filter_sizes[i]`` (bottleneck = width // 4); the
stem has ``stem_filters`` (default ``filter_sizes[0] // 4``) 7x7/2 filters.

The illust2vec cut is stage 3 (0-based) in every profile; its width is the embedding dimension and
its map size is ``image_size / 32`` (measured by building each profile's model):

======== ========= ============== ================= ================================
profile  input px  cut-stage map  illust2vec dim    Keras names of the two cuts
======== ========= ============== ================= ================================
smoke    64        2x2x64         64                ``activation_21`` / ``add_8``
cpu      128       4x4x256        256               ``activation_24`` / ``add_9``
full     512       16x16x1024     1024              ``activation_96`` / ``add_43``
======== ========= ============== ================= ================================

(Keras names are those of a model built first in a fresh session; cuts are found by block
position, never by name.) DeepDanbooru's ``project.json`` training fields are not here: they live
in :class:`acg2vec_lab.train.config.TaggerTrainConfig` (``configs/deepdanbooru_train/``).
"""
from __future__ import annotations

import dataclasses

# name -> (filter_sizes, repeat_sizes, head); head "conv_gap" = 1x1 conv + GAP, "dense" = AvgPool(7)+Flatten+Dense
VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {
    "resnet_custom_v1": ((256, 512, 1024, 2048, 4096), (2, 7, 35, 2, 2), "conv_gap"),
    "resnet_custom_v2": ((256, 512, 1024, 1024, 1024, 2048), (2, 7, 40, 16, 16, 6), "conv_gap"),
    "resnet_custom_v3": ((256, 512, 1024, 1024, 2048, 4096), (2, 7, 19, 19, 2, 2), "conv_gap"),
    "resnet_custom_v4": ((256, 512, 1024, 1024, 1024, 2048), (2, 7, 10, 10, 10, 2), "conv_gap"),
    "resnet_152": ((256, 512, 1024, 2048), (2, 7, 35, 2), "dense"),
}

EMBEDDING_CUTS = ("activation_96", "add_43")


@dataclasses.dataclass
class DeepDanbooruConfig:
    """One DeepDanbooru network: architecture, tag count, input size and the illust2vec cut.

    The training recipe (DeepDanbooru's project.json fields) lives in
    :class:`acg2vec_lab.train.config.TaggerTrainConfig` (``configs/deepdanbooru_train/``).

    Attributes:
        variant: a key of :data:`VARIANTS` or ``"custom"`` (then ``filter_sizes``/``repeat_sizes`` are required).
        filter_sizes: output width of each stage (``custom`` only; must be None for named variants).
        repeat_sizes: identity blocks after each stage's projection block (``custom`` only).
        stem_filters: 7x7 stem width; None = ``filter_sizes[0] // 4`` as in DeepDanbooru.
        head: ``"conv_gap"`` (v1-v4) or ``"dense"`` (resnet_152); None = the variant's head.
        n_tags: number of sigmoid outputs (9176 for the v3-20211112 release).
        image_size: square input side in pixels (512 for the released models).
        embedding_cut: illust2vec cut point, ``"activation_96"`` (README) or ``"add_43"`` (code).
        l2_normalize: L2-normalise the illust2vec embedding.
    """

    variant: str = "resnet_custom_v3"
    filter_sizes: tuple[int, ...] | None = None
    repeat_sizes: tuple[int, ...] | None = None
    stem_filters: int | None = None
    head: str | None = None
    n_tags: int = 9176
    image_size: int = 512
    embedding_cut: str = "activation_96"
    l2_normalize: bool = False

    def __post_init__(self) -> None:
        if self.variant == "custom":
            if not self.filter_sizes or not self.repeat_sizes:
                raise ValueError("variant 'custom' needs filter_sizes and repeat_sizes")
        elif self.variant in VARIANTS:
            if self.filter_sizes is not None or self.repeat_sizes is not None:
                raise ValueError(f"variant {self.variant!r} fixes filter/repeat sizes; use variant 'custom' to set them")
        else:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {sorted(VARIANTS)} or 'custom'")
        if len(self.stages()[0]) != len(self.stages()[1]):
            raise ValueError("filter_sizes and repeat_sizes must have the same length")
        if self.embedding_cut not in EMBEDDING_CUTS:
            raise ValueError(f"embedding_cut must be one of {EMBEDDING_CUTS}, got {self.embedding_cut!r}")
        if self.head_kind() not in ("conv_gap", "dense"):
            raise ValueError(f"head must be 'conv_gap' or 'dense', got {self.head!r}")
        if any(f % 4 for f in self.stages()[0]):
            raise ValueError(f"every filter size must be divisible by 4 (bottleneck = width // 4): {self.stages()[0]}")

    def stages(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(filter_sizes, repeat_sizes)`` in force (from the variant table or the explicit fields)."""
        if self.variant == "custom":
            return tuple(self.filter_sizes), tuple(self.repeat_sizes)  # type: ignore[arg-type]
        fs, rs, _ = VARIANTS[self.variant]
        return fs, rs

    def head_kind(self) -> str:
        if self.head is not None:
            return self.head
        return "conv_gap" if self.variant == "custom" else VARIANTS[self.variant][2]

    def stem_width(self) -> int:
        return self.stem_filters or self.stages()[0][0] // 4
