"""Load and save a JoyTag model folder: ``config.json`` + ``model.safetensors`` + ``top_tags.txt``.

``config.json`` holds ``"class": "ViT"`` and the constructor arguments; training-only keys of the
training code (``use_amp``, ``ml_decoder_head``, ...) are dropped with a note. Old checkpoints whose
``head`` has ``n_tags + 9`` rows (3 rating + 6 score outputs) are trimmed to the first ``n_tags``.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from acg2vec_lab.io_safety import read_json_file, read_text_file
from acg2vec_lab.models.joytag.config import VIT_KWARGS
from acg2vec_lab.models.joytag.model import JoyTagViT


@dataclasses.dataclass
class LoadedJoyTag:
    model: JoyTagViT
    tags: list[str]
    config: dict[str, Any]
    dropped_keys: list[str]
    trimmed_head: bool


def read_top_tags(path: str | os.PathLike) -> list[str]:
    """``top_tags.txt``: one tag per line, blank lines ignored (not UTF-8: a ``ValueError`` naming the file)."""
    return [line.strip() for line in read_text_file(path, ValueError, "top_tags.txt").splitlines() if line.strip()]


def _safe_torch_load(path: Path, map_location: str) -> Any:
    """``torch.load(weights_only=True)`` through :func:`acg2vec_lab.train.run.load_torch_state`."""
    from acg2vec_lab.train.run import load_torch_state

    return load_torch_state(path, map_location)


def load_folder(folder: str | os.PathLike, map_location: str = "cpu") -> LoadedJoyTag:
    """Build the model from ``config.json``, load ``model.safetensors`` (or ``model.pt``'s ``model``,
    read with ``weights_only=True``), read the tags. Every key of the file must be consumed and every
    shape match; errors name the folder and the key."""
    folder = Path(folder)
    config = read_json_file(folder / "config.json", ValueError, "JoyTag config", expect=dict)
    cls = config.get("class", "ViT")
    if cls != "ViT":
        raise ValueError(f"{folder / 'config.json'}: class {cls!r} is not supported (only 'ViT')")
    kwargs = {k: v for k, v in config.items() if k in VIT_KWARGS}
    dropped = sorted(k for k in config if k not in VIT_KWARGS and k != "class")
    model = JoyTagViT(**kwargs)
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"), device=map_location)
    elif (folder / "model.pt").exists():
        state = _safe_torch_load(folder / "model.pt", map_location)
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{folder / 'model.pt'}: expected a dict with a 'model' state dict")
        state = state["model"]
    else:
        raise FileNotFoundError(f"{folder}: neither model.safetensors nor model.pt")
    trimmed = False
    n = model.n_tags
    if "head.weight" in state and state["head.weight"].shape[0] == n + 9:
        state["head.weight"], state["head.bias"] = state["head.weight"][:n], state["head.bias"][:n]
        trimmed = True
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{folder}: state dict mismatch; missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise ValueError(f"{folder}: {key} has shape {tuple(tensor.shape)}, the model expects {tuple(own[key].shape)}")
    model.load_state_dict(state)
    model.eval()
    tags_path = folder / "top_tags.txt"
    tags = read_top_tags(tags_path) if tags_path.exists() else [f"tag_{i}" for i in range(n)]
    if len(tags) != n:
        raise ValueError(f"{tags_path}: {len(tags)} tags but config n_tags is {n}")
    return LoadedJoyTag(model, tags, config, dropped, trimmed)


def save_folder(folder: str | os.PathLike, model: JoyTagViT, kwargs: dict[str, Any], tags: list[str],
                extra_config: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` (``class`` + kwargs + extras), ``model.safetensors`` and ``top_tags.txt``."""
    from safetensors.torch import save_file

    from acg2vec_lab.io import atomic_path, write_json, write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    write_text(folder / "top_tags.txt", "\n".join(tags) + "\n")
    write_json(folder / "config.json", {"class": "ViT", **kwargs, **(extra_config or {})})
    return folder
