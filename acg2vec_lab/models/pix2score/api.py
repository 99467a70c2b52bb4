"""The original API's view of a prediction: ``{bookmarkPredict, viewPredict, sanityPredict}`` plus arg-max bins.

The webapp returned the three softmax distributions under those camel-case keys; the demo frontend
showed the arg-max bin of each with the README's bin labels (``"0-10"``, ..., ``"2700-∞"``).
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.data.labels import BOOKMARK_EDGES, SANITY_EDGES, VIEW_EDGES

API_KEYS = {"bookmark_predict": "bookmarkPredict", "view_predict": "viewPredict", "sanity_predict": "sanityPredict"}
EDGES = {"bookmark_predict": BOOKMARK_EDGES, "view_predict": VIEW_EDGES, "sanity_predict": SANITY_EDGES}


def readme_bin_labels(edges: Sequence[float]) -> list[str]:
    """The README's label dictionary: ``["0-10", "10-30", ..., "2700-∞"]``."""
    bounds = [0, *edges]
    return [f"{a:g}-{b:g}" for a, b in zip(bounds[:-1], bounds[1:])] + [f"{edges[-1]:g}-∞"]


def to_api(probs: dict[str, np.ndarray], index: int = 0) -> dict[str, Any]:
    """One image's prediction in the API form, with ``argmax`` = bin index (0-based) and label per head."""
    out: dict[str, Any] = {}
    best: dict[str, Any] = {}
    for head, key in API_KEYS.items():
        p = np.asarray(probs[head][index], dtype=np.float64)
        out[key] = [round(float(v), 6) for v in p]
        i = int(p.argmax())
        best[key] = {"bin": i, "label": readme_bin_labels(EDGES[head])[i], "probability": round(float(p[i]), 6)}
    out["argmax"] = best
    return out


def image_file_b64(path: str | Path) -> str:
    """Any image file Pillow reads -> PNG bytes of its RGB form -> URL-safe base64 (the served model's input)."""
    from acg2vec_lab.data.images import load_image
    from acg2vec_lab.models.pix2score.serving import encode_b64

    buf = io.BytesIO()
    load_image(path).save(buf, "PNG")
    return encode_b64(buf.getvalue())


def _found(profile: str | None):
    """The registry's finished Pix2Score checkpoint for ``profile`` (folder + weights label), or None."""
    from acg2vec_lab import models

    return models.get("pix2score").find(profile)


def _untrained_label(profile: str | None) -> str:
    from acg2vec_lab import models

    stale = models.get("pix2score").stale(profile)
    return (f"random init (no trained Pix2Score run for profile {profile or 'cpu'}; run notebook 04 to train one"
            f"{f'; {stale}' if stale else ''})")


def load_for_scoring(profile: str | None = None, seed: int = 0) -> tuple[Any, str]:
    """The profile's trained run if it exists, else a random-init model; with a weights label.

    The label is the registry run's: ``"trained on SYNTHETIC data: pix2score-<key>"`` for the run notebook 04
    trains (the profile's synthetic set, config and seed); or ``"random init ..."`` when there is no such run
    (the ``score`` command refuses such a model unless ``--allow-untrained``).
    """
    from acg2vec_lab.config import load_config
    from acg2vec_lab.models.pix2score.train import load_checkpoint

    found = _found(profile)
    if found is not None:
        return load_checkpoint(found.folder)[0], found.label
    import keras

    from acg2vec_lab.models.pix2score.model import build_pix2score

    keras.utils.set_random_seed(seed)
    return build_pix2score(load_config("pix2score", profile)), _untrained_label(profile)


def untrained_weights(profile: str | None = None) -> str | None:
    """The ``"random init ..."`` label :func:`load_for_scoring` would give, or None when a checkpoint exists.

    Cheap (no framework import, no model built): lets the ``score`` command refuse before loading.
    """
    found = _found(profile)
    if found is None:
        return _untrained_label(profile)
    return found.label if found.label.startswith("random init") else None
