"""What notebook 05 runs, as functions: data, the tagger comparison table on one split, character retrieval."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from acg2vec_lab.retrieval.metrics import l2_normalize


def evaluate_probs(y: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    """F1 at ``threshold``, the P=R point and mAP, all from :mod:`acg2vec_lab.tagging.metrics`."""
    from acg2vec_lab.tagging import metrics as tm

    at = tm.f1_at(y, probs, threshold)
    pr = tm.precision_equals_recall(y, probs)
    return {"micro_f1@th": at["micro_f1"], "macro_f1@th": at["macro_f1"], "precision@th": at["micro_precision"],
            "recall@th": at["micro_recall"], "threshold_p_eq_r": pr["threshold"], "f1@p_eq_r": pr["f1"],
            "mAP": tm.mean_average_precision(y, probs)}


def tagger_probs(tagger: Any, dataset: Any, posts: Sequence[Any], batch_size: int = 16) -> np.ndarray:
    """Any :class:`~acg2vec_lab.tagging.base.Tagger` on ``posts`` through its own ``preprocess``; ``(N, n_tags)``."""
    out = []
    for i in range(0, len(posts), batch_size):
        batch = np.stack([tagger.preprocess(dataset.load_image(p)) for p in posts[i:i + batch_size]])
        out.append(tagger.predict(batch))
    return np.concatenate(out)


def comparison_table(dataset: Any, posts: Sequence[Any], taggers: dict[str, Any], threshold: float = 0.4) -> tuple[Any, list[str]]:
    """One row per tagger on the same posts, scored on the tags every tagger outputs (rating pseudo-tags excluded).

    Returns (DataFrame, common tags). Each row also carries the tagger's weights source.
    """
    import pandas as pd

    from acg2vec_lab.models.joytag.train import tag_targets

    common = sorted(set.intersection(*[{t for t in tg.tags if not t.startswith("rating:")} for tg in taggers.values()]))
    y = tag_targets(posts, common)
    rows = []
    for name, tg in taggers.items():
        cols = [tg.tags.index(t) for t in common]
        probs = tagger_probs(tg, dataset, posts)[:, cols]
        rows.append({"model": name, "weights": getattr(tg, "source", ""), "n_tags_scored": len(common),
                     "n_images": len(posts), **evaluate_probs(y, probs, threshold)})
    return pd.DataFrame(rows), common


def character_retrieval(embed: Any, dataset: Any, posts: Sequence[Any]) -> dict[str, float]:
    """Leave-one-out retrieval of images sharing a character tag
    (:func:`~acg2vec_lab.retrieval.metrics.same_character_relevance`), cosine similarity of ``embed(images)``."""
    from acg2vec_lab.retrieval.metrics import leave_one_out, same_character_relevance

    v = l2_normalize(embed([dataset.load_image(p) for p in posts]))
    return leave_one_out(v, same_character_relevance(posts), ks=(1, 5))


def model_embedder(model: Any) -> Any:
    """``encode(images) -> (N, d_model)`` pooled trunk output of an in-memory JoyTag model (PIL images in)."""
    import torch

    from acg2vec_lab.models.joytag.preprocess import preprocess

    def encode(images: Sequence[Any]) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(np.stack([preprocess(im, model.image_size) for im in images]))
            return model.eval().embed(x).numpy()

    return encode


def deepdanbooru_tagger(profile: str) -> tuple[Any, Any]:
    """The DeepDanbooru tagger of ``profile`` as a Tagger, always: notebook 02's run is loaded, or trained now.

    Returns ``(tagger, train_result)`` (:class:`~acg2vec_lab.models.deepdanbooru.train.TrainResult`), so the comparison in
    notebook 05 never depends on whether notebook 02 ran first.
    """
    from acg2vec_lab.models.deepdanbooru.tagger import DeepDanbooruTagger
    from acg2vec_lab.models.deepdanbooru.train import train_tagger

    result = train_tagger(profile)
    tagger = DeepDanbooruTagger(result.model, result.tags, result.categories, source=f"trained: {result.checkpoint}")
    return tagger, result


def training_budgets(profile: str, dataset: Any) -> Any:
    """How much training each tagger of notebook 05 gets in ``profile``, computed from the two configs.

    One row per model: train images used (after the config's cap), epochs, images seen per epoch (a
    ``steps_per_epoch`` cap limits DeepDanbooru's), and total image presentations (images seen x epochs).
    """
    import pandas as pd

    from acg2vec_lab.config import load_config

    n_train = len(dataset.split("train"))
    jt, dd = load_config("joytag", profile), load_config("deepdanbooru_train", profile)
    jt_images = min(jt.max_train or n_train, n_train)
    dd_images = min(dd.max_train or n_train, n_train)
    dd_per_epoch = min(dd_images, dd.steps_per_epoch * dd.batch_size) if dd.steps_per_epoch else dd_images
    rows = [{"model": "joytag", "train_images": jt_images, "epochs": jt.epochs, "images_per_epoch": jt_images,
             "image_presentations": jt_images * jt.epochs, "input_px": jt.image_size},
            {"model": "deepdanbooru", "train_images": dd_images, "epochs": dd.epochs, "images_per_epoch": dd_per_epoch,
             "image_presentations": dd_per_epoch * dd.epochs,
             "input_px": load_config("deepdanbooru", variant=dd.model_variant).image_size}]
    return pd.DataFrame(rows).set_index("model")


# Improvement of the smoke JoyTag (configs/joytag/tiny.json, 2 epochs on 256 images) over the tag prior on the
# smoke test split at threshold 0.4, seeds 0-3 of joytag.train.train(cfg, x, y, seed=s); broken on purpose, seed 0:
# lr 0 gave micro F1 +0.004 / mAP +0.082, labels shuffled across images +0.041 / +0.086.
SMOKE_VS_PRIOR = {"micro_f1@th": [0.072, 0.085, 0.086, 0.070], "mAP": [0.146, 0.167, 0.144, 0.162]}


def _margins() -> dict[str, dict[str, tuple[float, str]]]:
    from acg2vec_lab.gates import margin_from_spread

    smoke = {k: (round(margin_from_spread(v, k=3), 3), f"margin_from_spread(k=3) of the improvement over 4 smoke seeds {v}; "
                 "lr 0 and shuffled labels measured below it") for k, v in SMOKE_VS_PRIOR.items()}
    cpu = {k: (round(m / 2, 3), "half the smoke margin: cpu not measured over seeds (too slow here; the cpu prior, "
                                "from the cpu labels, is micro F1 0.348 / mAP 0.168 on 138 tags); 6 epochs on 1500 "
                                "images should clear at least the smoke margin, so this is conservative")
           for k, (m, _) in smoke.items()}
    return {"smoke": smoke, "cpu": cpu}


def prior_gates(profile: str, model: dict[str, float], prior: dict[str, float], prefix: str = "joytag/test") -> list[Any]:
    """JoyTag vs the tag prior on the same test split (keys of :func:`evaluate_probs`), margins of ``profile``."""
    from acg2vec_lab.config import current_profile
    from acg2vec_lab.tagging.metrics import gates_vs_baseline

    margins = _margins()
    margins = margins.get(current_profile(profile), margins["cpu"])
    return gates_vs_baseline(prefix, model, prior, margins, "prior")
