"""Crop arithmetic for porting ``torch.nn.ConvTranspose2d(padding=p, output_padding=op)`` to a Keras
``Conv2DTranspose(padding="valid")`` followed by a slice.

PyTorch: out = (n - 1) * s - 2p + k + op. Keras "valid": out = (n - 1) * s + k (for k >= s). The torch
output is the valid output with ``p`` rows removed at the top/left and ``p - op`` at the bottom/right.
Keras "same" gives n * s, which is a different size whenever k - s != 2p (e.g. k4 s2 p3: 2n vs 2n - 4).
"""
from __future__ import annotations


def torch_out(n: int, k: int, s: int, p: int, op: int = 0) -> int:
    return (n - 1) * s - 2 * p + k + op


def valid_out(n: int, k: int, s: int) -> int:
    return (n - 1) * s + max(k, s)


def same_out(n: int, s: int) -> int:
    return n * s


def crop(k: int, s: int, p: int, op: int = 0) -> tuple[int, int]:
    """(start, end) rows to drop from the Keras valid output to get the PyTorch output."""
    if op >= s and op >= 1:
        raise ValueError("output_padding must be smaller than the stride")
    if k < s:
        raise ValueError("kernel smaller than stride: Keras valid output then includes zero rows")
    return p, p - op


def describe(n: int, k: int, s: int, p: int, op: int = 0) -> dict:
    a, b = crop(k, s, p, op)
    return {"n": n, "k": k, "s": s, "p": p, "torch_out": torch_out(n, k, s, p, op),
            "keras_valid_out": valid_out(n, k, s), "crop_start": a, "crop_end": b,
            "keras_same_out": same_out(n, s)}
