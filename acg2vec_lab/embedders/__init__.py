"""Every model that produces vectors, by name, for the retrieval and map notebooks and ``embed-*``.

A module in this package defines ``make_embedders(profile: str, seed: int | None = None) -> list[Embedder]``;
adding a model's embeddings to the comparison table is adding one module. Trained weights come from
the model registry (``acg2vec_lab.models.get(name).find(profile, seed)``: the finished run of the
profile's config and data with that seed, default the config's); without one an embedder is random
init, labelled so. Modules import their framework lazily
(inside ``encode``/factory), so listing the embedders stays cheap.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass
class Embedder:
    """One way of turning inputs into vectors.

    Attributes:
        name: unique key, e.g. ``"illust2vec"``, ``"dclip_image"``, ``"dclip_text"``, ``"joytag"``,
            ``"acgvoc2vec"``, ``"efficientnet_lite0"``.
        modality: ``"image"`` (inputs: PIL images or paths) or ``"text"`` (inputs: strings).
        dim: output dimension.
        weights: where the weights come from, shown in every table: ``"real: <asset>"``,
            ``"trained on SYNTHETIC data: <run id>"`` (or ``"trained: <legacy folder> (...)"``) or
            ``"random init"`` (honest labelling of what is measured).
        encode: ``encode(inputs: Sequence) -> np.ndarray`` of shape (N, dim), float32.
        space: name of the joint space for cross-modal search (``"dclip"`` for DCLIP image and text).
        framework: what computes it (``"torch"``, ``"tensorflow"``, ``"numpy"``): the commands resolve
            and print the device for it (:mod:`acg2vec_lab.device`); torch embedders put their model on
            :func:`acg2vec_lab.device.torch_device` when they load it.
    """

    name: str
    modality: str
    dim: int
    weights: str
    encode: Callable[[Sequence[Any]], np.ndarray]
    space: str | None = None
    framework: str = "torch"


def available(profile: str, modality: str | None = None, seed: int | None = None) -> dict[str, Embedder]:
    """All embedders the installed modules offer for ``profile`` (trained runs of ``seed``), optionally of one modality."""
    found: dict[str, Embedder] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for emb in module.make_embedders(profile, seed=seed):
            if modality is None or emb.modality == modality:
                if emb.name in found:
                    raise ValueError(f"two embedders named {emb.name!r} ({info.name})")
                found[emb.name] = emb
    return found


def get(name: str, profile: str, seed: int | None = None) -> Embedder:
    """The embedder called ``name``; a clear error lists the available names."""
    embs = available(profile, seed=seed)
    if name not in embs:
        raise KeyError(f"no embedder {name!r}; available: {', '.join(sorted(embs)) or 'none'}")
    return embs[name]
