"""What notebook 04 runs, as functions: data preparation, the trunk comparison, the BN-repair demo."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from acg2vec_lab.models.pix2score.train import load_images, pixiv_labels, pixiv_values


@dataclasses.dataclass
class PixivData:
    """Images ``(N, S, S, 3)`` uint8 and per-head bin labels for the train / val / test splits."""

    x: dict[str, np.ndarray]
    y: dict[str, dict[str, np.ndarray]]
    values: dict[str, dict[str, np.ndarray]]
    post_ids: dict[str, list[int]]
    paths: dict[str, list[Any]]

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.x.items()}


def prepare_data(dataset: Any, cfg: Any) -> PixivData:
    """Load every split of ``dataset`` at ``cfg.input_size`` (train capped at ``cfg.max_train``) with the original bins."""
    x, y, values, ids, paths = {}, {}, {}, {}, {}
    for split in ("train", "val", "test"):
        posts = dataset.split(split)
        if split == "train" and cfg.max_train:
            posts = posts[:cfg.max_train]
        x[split] = load_images(dataset, posts, cfg.input_size)
        y[split] = pixiv_labels(posts)
        values[split] = pixiv_values(posts)
        ids[split] = [p.id for p in posts]
        paths[split] = [dataset.image_path(p) for p in posts]
    return PixivData(x, y, values, ids, paths)


def lite_comparison(data: PixivData, cfg: Any, seed: int = 0) -> dict[str, Any]:
    """EfficientNet-Lite0 (real ImageNet weights, frozen) + the three softmax heads, trained on the same train split.

    Returns the test probabilities per head and the feature-extraction / training seconds.
    """
    import time

    from acg2vec_lab.models.pix2score.lite import lite_features, load_lite0, train_heads
    from acg2vec_lab.models.pix2score.model import HEADS

    t0 = time.time()
    net = load_lite0()
    feats = {s: lite_features(net, data.x[s], size=cfg.lite_size) for s in ("train", "test")}
    t1 = time.time()
    predict = train_heads(feats["train"], data.y["train"], dict(HEADS), epochs=cfg.lite_epochs, lr=cfg.lite_lr, seed=seed)
    return {"probs": predict(feats["test"]), "feature_seconds": t1 - t0, "head_seconds": time.time() - t1,
            "feature_dim": int(feats["train"].shape[1])}


def bn_repair_demo(model: Any, data: PixivData, batch_size: int = 32) -> dict[str, Any]:
    """Corrupt one BN layer's moving statistics of a copy, detect it, repair it (re-estimation); test accuracy at each step."""
    import keras

    from acg2vec_lab.models.pix2score.train import head_metrics, predict
    from acg2vec_lab.train.guards import check_bn_statistics, corrupt_bn_statistics, repair_bn_statistics

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())

    def acc(m: Any) -> float:
        probs = predict(m, data.x["test"])
        return float(np.mean([v["accuracy"] for v in head_metrics(data.y["test"], probs).values()]))

    healthy = check_bn_statistics(clone)
    before = acc(clone)
    layer = corrupt_bn_statistics(clone, layer_index=2, kind="nan")
    found = check_bn_statistics(clone)
    corrupted = acc(clone)
    batches = [data.x["train"][i:i + batch_size].astype(np.float32) / 255.0 for i in range(0, len(data.x["train"]), batch_size)]
    report = repair_bn_statistics(clone, batches, method="reestimate")
    return {"issues_when_trained": len(healthy), "corrupted_layer": layer, "issues_found": [i.as_dict() for i in found],
            "mean_accuracy_trained": before, "mean_accuracy_corrupted": corrupted, "mean_accuracy_repaired": acc(clone),
            "issues_after_repair": report["issues_after"], "repair_batches": report["batches"]}
