"""DCLIP = an open_clip CLIP model (ViT-L/14 in full, a replica with every layer type in tiny/small),
optionally with a text tower initialised from the locally converted multilingual-e5-small, plus a
loader that accepts the real OpenAI / open_clip / DCLIP checkpoint formats.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.models.dclip.config import DclipConfig

# CLIP's image normalisation (DCLIP/data_generator.py:_transform)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# keys that OpenAI's JIT archives carry beside the weights
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


def model_cfg(cfg: DclipConfig) -> dict[str, Any]:
    """The open_clip model config dict of ``cfg`` (built-in name resolved, e5 text tower swapped in)."""
    import open_clip

    if cfg.model_name is not None:
        base = open_clip.get_model_config(cfg.model_name)
        if base is None:
            raise ValueError(f"open_clip has no built-in model {cfg.model_name!r}")
    else:
        base = cfg.model_cfg
    mc = copy.deepcopy(base)
    if cfg.text_init == "e5":
        from acg2vec_lab.models.acgvoc2vec.e5 import ensure_e5

        e5_path = str(ensure_e5())
        mc["text_cfg"] = {"hf_model_name": e5_path, "hf_tokenizer_name": e5_path, "hf_model_pretrained": True,
                          "hf_proj_type": "linear", "hf_pooler_type": "mean_pooler",
                          "context_length": cfg.e5_context_length}
    return mc


def build_model(cfg: DclipConfig, device: str = "cpu") -> Any:
    """An open_clip ``CLIP`` (or ``CustomTextCLIP`` with the e5 tower) in float32."""
    import open_clip
    import torch

    mc = model_cfg(cfg)
    if "hf_model_name" in mc["text_cfg"]:
        model = open_clip.CustomTextCLIP(**mc, quick_gelu=cfg.quick_gelu)
        if cfg.freeze_e5_word_embeddings:
            model.text.transformer.embeddings.word_embeddings.weight.requires_grad_(False)
    else:
        model = open_clip.CLIP(**mc, quick_gelu=cfg.quick_gelu)
    return model.to(device=device, dtype=torch.float32)


_CLIP_TOKENIZERS: dict[int, Any] = {}


class Tokenize:
    """Captions -> token ids for the model's text tower (CLIP BPE, truncated to the context, like
    ``clip.tokenize(truncate=True)``; or e5's tokenizer with the ``"query: "`` prefix)."""

    def __init__(self, cfg: DclipConfig):
        import open_clip

        mc = model_cfg(cfg)
        tc = mc["text_cfg"]
        self.context_length = tc.get("context_length", 77)
        if "hf_model_name" in tc:
            from acg2vec_lab.models.acgvoc2vec.e5 import QUERY_PREFIX

            self.prefix = QUERY_PREFIX
            self._tok = open_clip.tokenizer.HFTokenizer(tc["hf_tokenizer_name"], context_length=self.context_length)
        else:
            self.prefix = ""
            if self.context_length not in _CLIP_TOKENIZERS:  # loading the BPE merges takes seconds
                _CLIP_TOKENIZERS[self.context_length] = open_clip.tokenizer.SimpleTokenizer(
                    context_length=self.context_length)
            self._tok = _CLIP_TOKENIZERS[self.context_length]

    def __call__(self, texts: Sequence[str]) -> Any:
        return self._tok([self.prefix + t for t in texts])


def image_transform(model: Any) -> Callable:
    """CLIP preprocessing at the model's resolution: shorter side -> size (bicubic), centre crop,
    tensor, CLIP mean/std."""
    import open_clip

    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return open_clip.image_transform(size, is_train=False, mean=CLIP_MEAN, std=CLIP_STD)


def read_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """The weights of a checkpoint file in any of the formats DCLIP met:

    * OpenAI ``clip`` releases (TorchScript archives, e.g. ``ViT-L-14.pt``) or their plain state dicts
      (fp16 tensors plus ``input_resolution``/``context_length``/``vocab_size``);
    * DCLIP training checkpoints ``{epoch, model_state_dict, optimizer_state_dict, loss}``;
    * open_clip / DataParallel state dicts (``state_dict`` key, ``module.`` prefixes), ``.safetensors``.

    Returned tensors are float32 (fp16 OpenAI weights are cast, as ``convert_models_to_fp32`` did).
    """
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj: Any = load_file(str(path))
    else:
        try:
            obj = torch.jit.load(str(path), map_location="cpu").state_dict()
        except (RuntimeError, ValueError):
            import pickle

            try:
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as exc:
                raise ValueError(f"{path}: refused to load: the file holds pickled objects other than tensors and "
                                 f"plain containers, which could run code (torch.load weights_only=True)") from exc
            except (RuntimeError, EOFError) as exc:
                raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path}: no state dict found")
    sd = {}
    for k, v in obj.items():
        if k in _OPENAI_EXTRA_KEYS:
            continue
        if k.startswith("module."):
            k = k[len("module."):]
        sd[k] = v.float() if torch.is_tensor(v) and v.is_floating_point() else v
    return sd


def load_checkpoint(model: Any, path: str | os.PathLike, strict: bool = True) -> Any:
    """Load real OpenAI / open_clip / DCLIP weights into ``model`` (see :func:`read_state_dict`).

    OpenAI's flat text-tower keys (``token_embedding``, ``transformer.resblocks...``) match open_clip's
    ``CLIP``; for a ``CustomTextCLIP`` they are moved under ``text.``. Image position embeddings are
    resized when the grid differs (open_clip's own rule).
    """
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed

    sd = read_state_dict(path)
    if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)
    if "logit_scale" in sd and sd["logit_scale"].ndim != model.logit_scale.ndim:
        sd["logit_scale"] = sd["logit_scale"].reshape(model.logit_scale.shape)
    resize_pos_embed(sd, model)
    return model.load_state_dict(sd, strict=strict)


def count_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(cfg: DclipConfig) -> dict[str, Any]:
    """Dimensions of the configured model, built on the ``meta`` device (no memory, no forward)."""
    import torch

    if cfg.text_init != "random":
        raise ValueError("describe() builds on the meta device; use text_init='random'")
    with torch.device("meta"):
        model = build_model(cfg, device="meta")
    v = model.visual
    grid = v.grid_size if hasattr(v, "grid_size") else None
    out = {"params": count_params(model), "vision_params": count_params(v),
           "image_size": v.image_size, "grid": grid,
           "embed_dim": int(model_cfg(cfg)["embed_dim"]),
           "vision_width": int(v.conv1.out_channels) if hasattr(v, "conv1") else None,
           "vision_layers": len(v.transformer.resblocks) if hasattr(v, "transformer") else None}
    if hasattr(model, "token_embedding"):
        out.update(text_width=int(model.token_embedding.embedding_dim), vocab=int(model.token_embedding.num_embeddings),
                   text_layers=len(model.transformer.resblocks), context_length=int(model.context_length))
    return out


def encode_images(model: Any, images: Any, batch_size: int = 64) -> np.ndarray:
    """L2-normalised image vectors for a (N, 3, H, W) float tensor."""
    import torch

    model.eval()
    dev = next(model.parameters()).device  # inputs go where the model is
    outs = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            outs.append(model.encode_image(images[i:i + batch_size].to(dev), normalize=True).float().cpu().numpy())
    return np.concatenate(outs)


def encode_texts(model: Any, tokenize: Tokenize, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """L2-normalised text vectors."""
    import torch

    model.eval()
    dev = next(model.parameters()).device
    outs = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            tokens = tokenize(texts[i:i + batch_size])
            tokens = tokens.to(dev) if hasattr(tokens, "to") else {k: v.to(dev) for k, v in tokens.items()}
            outs.append(model.encode_text(tokens, normalize=True).float().cpu().numpy())
    return np.concatenate(outs)
