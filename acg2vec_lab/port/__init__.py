"""Shared PyTorch <-> TensorFlow port helpers: named weight permutations (``layout``), transposed-conv
crop arithmetic (``transposed``), the parity ledger (``ledger``); TF "same" padding and BN folding
live in ``padding`` and ``bn``."""
