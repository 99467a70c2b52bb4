"""Inference precision of the torch models: ``fp32`` or ``bf16`` (``int8`` is the ONNX export's).

``bf16`` casts the weights to bfloat16 and keeps convolutions in channels-last memory, the layout oneDNN's
bfloat16 kernels want (AVX512-BF16 / AMX on recent x86 CPUs; tensor cores on a GPU). Outputs come back as
float32. What it costs against fp32 is measured, not assumed: ``benchmarks/peer_deepdanbooru.py`` and
``tests/test_precision.py`` print the max |prob diff| and the top-10 agreement. The one switch is
``acg2vec-lab tag --precision fp32|bf16|int8``.
"""
from __future__ import annotations

from typing import Any

PRECISIONS = ("fp32", "bf16", "int8")
TORCH_PRECISIONS = ("fp32", "bf16")


def cast_torch(model: Any, precision: str) -> Any:
    """``model`` (a torch module, eval mode) with its weights in ``precision``; returns it."""
    import torch

    if precision not in TORCH_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not a torch inference precision; choose {', '.join(TORCH_PRECISIONS)}"
                         " (int8 runs an ONNX export: acg2vec-lab export-onnx --int8)")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = model.to(dtype=dtype)
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def input_dtype(model: Any) -> Any:
    """The dtype a model's inputs must have (that of its first floating-point parameter)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    import torch

    return torch.float32
