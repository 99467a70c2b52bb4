"""The original acgvoc2vec architecture, rebuildable on any base by name.

Original (``acgvoc2vec/train.py`` + ``model_to_tf.py``): a HuggingFace transformer (multilingual
DistilBERT of ``sentence-transformers/distiluse-base-multilingual-cased-v2``, max_seq_length 128) ->
mean pooling over the attention mask -> Dense(hidden -> 512, tanh); output 512-d, not normalised.
That base is not reachable here; pass its name (or a local folder) where it is.
"""
from __future__ import annotations

from typing import Any

ORIGINAL_BASE = "sentence-transformers/distiluse-base-multilingual-cased-v2"
ORIGINAL_DIM = 512


def build_original(base: str = ORIGINAL_BASE, max_seq_length: int = 128, out_dim: int = ORIGINAL_DIM,
                   device: str = "cpu") -> Any:
    """transformer(``base``) -> mean pooling -> Dense(hidden -> ``out_dim``, tanh) as a
    ``SentenceTransformer``. ``base`` is a HuggingFace model name or folder (offline: a folder)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    transformer = Transformer(base, max_seq_length=max_seq_length)
    hidden = transformer.get_embedding_dimension() if hasattr(transformer, "get_embedding_dimension") \
        else transformer.auto_model.config.hidden_size
    pooling = Pooling(hidden, "mean")
    dense = Dense(hidden, out_dim, activation_function=torch.nn.Tanh())
    return SentenceTransformer(modules=[transformer, pooling, dense], device=device)


def build_e5_style(base: str, max_seq_length: int = 128, device: str = "cpu") -> Any:
    """transformer(``base``) -> mean pooling -> L2 normalise (the e5 recipe) on any base."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(base, max_seq_length=max_seq_length)
    hidden = transformer.auto_model.config.hidden_size
    return SentenceTransformer(modules=[transformer, Pooling(hidden, "mean"), Normalize()], device=device)


def describe(model: Any) -> dict[str, Any]:
    """Module types, output dimension and parameter counts of a sentence-transformers model."""
    mods = [type(m).__name__ for m in model]
    dense = [m for m in model if type(m).__name__ == "Dense"]
    return {"modules": mods,
            "dim": model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension(),
            "params": sum(p.numel() for p in model.parameters()),
            "dense_params": sum(p.numel() for m in dense for p in m.parameters()),
            "max_seq_length": model.max_seq_length}
