"""Training loops and their safety nets (NaN guard, BatchNorm statistics check and repair)."""
