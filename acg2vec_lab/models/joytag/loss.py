"""JoyTag's losses: binary focal loss (gamma 2) and ``focal2`` = focal x 256, the loss multiplier the README
calls essential for stable fp16 training (a mean BCE over ~6k mostly-negative tags is tiny)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_MULTIPLIERS = {"ce": 1.0, "focal": 1.0, "focal2": 256.0}


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean over all (sample, tag) of ``BCE(logit, y) * (1 - p_t) ** gamma``; ``p_t`` the probability of the true label."""
    p = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return (bce * (1 - p_t) ** gamma).mean()


def tag_loss(logits: torch.Tensor, targets: torch.Tensor, loss_type: str = "focal2") -> torch.Tensor:
    """The loss named by the config's ``loss_type``: ``ce`` (mean BCE), ``focal`` or ``focal2`` (focal x 256)."""
    if loss_type not in LOSS_MULTIPLIERS:
        raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {sorted(LOSS_MULTIPLIERS)}")
    if loss_type == "ce":
        return F.binary_cross_entropy_with_logits(logits, targets)
    return focal_loss(logits, targets) * LOSS_MULTIPLIERS[loss_type]
