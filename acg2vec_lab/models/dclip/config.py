"""DCLIP configuration (one dataclass for the tiny / small / full JSON files)."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class DclipConfig:
    """Model, optimiser and data settings of one DCLIP variant.

    Attributes:
        model_name: a built-in open_clip architecture (``"ViT-L-14"`` in full), or ``None`` when
            ``model_cfg`` describes the model.
        model_cfg: an open_clip model config dict (``embed_dim``, ``vision_cfg``, ``text_cfg``) for the
            tiny/small replicas.
        quick_gelu: OpenAI CLIP checkpoints were trained with QuickGELU (ViT-L/14: ``True``).
        text_init: ``"random"`` (the CLIP text transformer with random weights; the real OpenAI
            weights are not reachable here) or ``"e5"`` (a HuggingFace text tower initialised from the
            locally converted multilingual-e5-small, mean pooling, linear projection).
        e5_context_length: token limit of the e5 text tower.
        freeze_e5_word_embeddings: keep e5's 96 M-parameter word-embedding table fixed (CPU cost).
        pretrained_text_lr: learning rate for the pretrained e5 tower (others use ``lr``).
        caption_version: ``"code"`` (HEAD of the original) or ``"readme"``.
        lr, betas, eps, weight_decay: Adam settings; the original: 2e-6, (0.9, 0.98), 1e-6, 1e-4.
        batch_size: pairs per step (original 40).
        steps: optimiser steps of one training run (the original ran 1-6 epochs over ~3 M + ~100 M
            images; a step count is what a CPU budget can state).
        grad_clip: max global L2 norm of the gradients (``None``: no clipping, as the original and
            open_clip's default train).
        checkpoint_every: steps between checkpoints (also written at the end).
        amp: mixed precision on CUDA (the original trained fp16 weights with an fp32 optimiser step).
        max_train / max_eval: caps on the number of train / test posts used (None = all).
        zero_shot_min_count: tags that occur at least this often in the train split are the
            zero-shot label set.
        e5_steps: steps of the e5-initialised run notebook 08 trains and compares (its text tower is 118 M
            parameters; 0 in full, where the comparison is not run for real).
    """

    model_name: str | None = None
    model_cfg: dict[str, Any] | None = None
    quick_gelu: bool = True
    text_init: str = "random"
    e5_context_length: int = 64
    freeze_e5_word_embeddings: bool = True
    pretrained_text_lr: float = 2e-5
    caption_version: str = "code"
    lr: float = 2e-6
    betas: tuple = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 1e-4
    batch_size: int = 40
    steps: int = 1000
    grad_clip: float | None = None
    checkpoint_every: int = 500
    amp: bool = False
    max_train: int | None = None
    max_eval: int | None = None
    zero_shot_min_count: int = 3
    e5_steps: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.model_name is None) == (self.model_cfg is None):
            raise ValueError("give exactly one of model_name and model_cfg")
        if self.text_init not in ("random", "e5"):
            raise ValueError(f"text_init must be 'random' or 'e5', got {self.text_init!r}")
        if self.caption_version not in ("code", "readme"):
            raise ValueError(f"caption_version must be 'code' or 'readme', got {self.caption_version!r}")
