"""BatchNorm folding: fold an inference-mode BN into the preceding conv, and split it back out.

With ``scale = gamma / sqrt(var + eps)``: ``w' = w * scale`` (per output channel) and
``b' = beta + (b - mean) * scale`` (``b = 0`` for a bias-free conv). Keras' default epsilon is 1e-3,
PyTorch's 1e-5: always pass the epsilon of the framework that trained the BN.
"""
from __future__ import annotations

import numpy as np

KERAS_BN_EPSILON = 1e-3

_OUT_AXIS = {"oihw": 0, "hwio": 3}


def bn_scale_shift(gamma, beta, mean, var, eps: float = KERAS_BN_EPSILON) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, shift)`` with ``bn(x) = x * scale + shift`` in inference mode (float64)."""
    gamma, beta, mean, var = (np.asarray(a, dtype=np.float64) for a in (gamma, beta, mean, var))
    if not (gamma.shape == beta.shape == mean.shape == var.shape) or gamma.ndim != 1:
        raise ValueError(f"BN parameter shapes differ or are not 1-d: {gamma.shape}, {beta.shape}, {mean.shape}, {var.shape}")
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def fold_bn(kernel, gamma, beta, mean, var, eps: float = KERAS_BN_EPSILON, bias=None,
            layout: str = "oihw") -> tuple[np.ndarray, np.ndarray]:
    """Fold BN into a conv kernel; returns ``(kernel', bias')`` float32 in the same ``layout``.

    Args:
        kernel: conv kernel in ``layout`` ("oihw" = PyTorch, "hwio" = TF/Keras).
        gamma, beta, mean, var: BN parameters and moving statistics (1-d, one per output channel).
        eps: BN epsilon (Keras default 1e-3).
        bias: the conv's own bias, or None.
    """
    if layout not in _OUT_AXIS:
        raise ValueError(f"layout must be one of {sorted(_OUT_AXIS)}, got {layout!r}")
    kernel = np.asarray(kernel, dtype=np.float64)
    axis = _OUT_AXIS[layout]
    scale, shift = bn_scale_shift(gamma, beta, mean, var, eps)
    if kernel.shape[axis] != scale.shape[0]:
        raise ValueError(f"kernel {kernel.shape} has {kernel.shape[axis]} output channels, BN has {scale.shape[0]}")
    shape = [1] * kernel.ndim
    shape[axis] = -1
    w = kernel * scale.reshape(shape)
    b = shift if bias is None else shift + np.asarray(bias, dtype=np.float64) * scale
    return w.astype(np.float32), b.astype(np.float32)


def unfolded_bn(bias, eps: float = KERAS_BN_EPSILON) -> dict[str, np.ndarray]:
    """BN parameters that reproduce a folded conv's bias exactly: gamma = sqrt(1 + eps)... i.e. identity scale.

    A folded conv ``(w', b')`` equals conv(w') followed by a BN with ``scale = 1`` and ``shift = b'``;
    returns ``{gamma, beta, moving_mean, moving_variance}`` with ``var = 1 - eps``, ``gamma = 1``,
    ``mean = 0``, ``beta = b'``.
    """
    b = np.asarray(bias, dtype=np.float32)
    n = b.shape[0]
    return {"gamma": np.ones(n, np.float32), "beta": b.copy(), "moving_mean": np.zeros(n, np.float32),
            "moving_variance": np.full(n, 1.0 - eps, np.float32)}
