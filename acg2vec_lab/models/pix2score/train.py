"""Pix2Score data, training, evaluation and checkpoints on a Danbooru-format set with pixiv counts.

Images are stretched to ``S x S`` (bilinear, like the serving preprocessing) and kept as uint8 NHWC;
labels are the pixiv bins of :mod:`acg2vec_lab.data.labels`. Training uses ``model.fit`` with the
custom multi-task step of :class:`~acg2vec_lab.models.pix2score.model.Pix2Score`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.data.labels import BOOKMARK_EDGES, SANITY_EDGES, VIEW_EDGES, to_bins

HEAD_EDGES = {"bookmark_predict": BOOKMARK_EDGES, "view_predict": VIEW_EDGES, "sanity_predict": SANITY_EDGES}
PIXIV_FIELDS = {"bookmark_predict": "bookmark_count", "view_predict": "view_count", "sanity_predict": "sanity_level"}


def pixiv_values(posts: Sequence[Any]) -> dict[str, np.ndarray]:
    """Raw pixiv counts per head name, ``(N,)`` float64; a post without pixiv data is an error naming it."""
    out = {}
    for head, field in PIXIV_FIELDS.items():
        vals = []
        for p in posts:
            if field not in p.pixiv:
                raise KeyError(f"post {p.id} has no pixiv {field!r}")
            vals.append(float(p.pixiv[field]))
        out[head] = np.asarray(vals)
    return out


def pixiv_labels(posts: Sequence[Any], edges: dict[str, Sequence[float]] | None = None) -> dict[str, np.ndarray]:
    """Bin indices per head, ``(N,)`` int64, with the original edges unless ``edges`` overrides them."""
    edges = {**HEAD_EDGES, **(edges or {})}
    return {h: to_bins(v, edges[h]) for h, v in pixiv_values(posts).items()}


def load_images(dataset: Any, posts: Sequence[Any], size: int) -> np.ndarray:
    """``(N, size, size, 3)`` uint8 RGB, each image stretched with TF bilinear resize (the serving resize)."""
    import tensorflow as tf

    out = np.empty((len(posts), size, size, 3), dtype=np.uint8)
    for i, post in enumerate(posts):
        img = np.asarray(dataset.load_image(post), dtype=np.float32)
        out[i] = np.clip(np.round(tf.image.resize(img, (size, size), method="bilinear").numpy()), 0, 255)
    return out


def make_tf_dataset(images: np.ndarray, labels: dict[str, np.ndarray], batch_size: int, shuffle: bool, seed: int) -> Any:
    """A ``tf.data`` pipeline of ``(x float32 [0,1], {head: int labels})`` batches."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, {k: labels[k] for k in HEAD_EDGES}))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y)).prefetch(2)


def train(cfg: Any, train_x: np.ndarray, train_y: dict[str, np.ndarray], val_x: np.ndarray | None = None,
          val_y: dict[str, np.ndarray] | None = None, seed: int = 0, pcgrad: bool | None = None,
          callbacks: Sequence[Any] = (), verbose: int = 0) -> tuple[Any, dict[str, list[float]]]:
    """Build and fit a Pix2Score model (Adam ``cfg.lr``, ``cfg.epochs``, ``cfg.batch_size``); returns (model, history)."""
    import keras

    from acg2vec_lab.models.pix2score.model import build_pix2score

    keras.utils.set_random_seed(seed)
    model = build_pix2score(cfg, pcgrad=pcgrad)
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr))
    train_ds = make_tf_dataset(train_x, train_y, cfg.batch_size, True, seed)
    val_ds = make_tf_dataset(val_x, val_y, cfg.batch_size, False, seed) if val_x is not None else None
    from acg2vec_lab import progress

    bars = [] if verbose else [progress.keras_epochs(cfg.epochs, "pix2score train")]
    hist = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=[*callbacks, *bars], verbose=verbose)
    history: dict[str, Any] = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    if cfg.recalibrate_bn:
        history.update(recalibrate_bn(model, train_x, cfg.batch_size, cfg.recalibrate_batches, val_x, val_y))
    return model, history


def _mean_accuracy(model: Any, x: np.ndarray, y: dict[str, np.ndarray]) -> float:
    probs = predict(model, x)
    return float(np.mean([(probs[h].argmax(1) == y[h]).mean() for h in probs]))


def recalibrate_bn(model: Any, train_x: np.ndarray, batch_size: int, max_batches: int,
                   val_x: np.ndarray | None = None, val_y: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Re-estimate every BatchNorm layer's moving statistics with the final weights (shared guard, weights frozen).

    Returns the number of layers and batches and, when validation data is given, the mean val accuracy of
    the three heads with the moving statistics left by ``fit`` and after re-estimation.
    """
    import keras

    from acg2vec_lab.train.guards import repair_bn_statistics

    names = [l.name for l in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(l, keras.layers.BatchNormalization)]
    out: dict[str, Any] = {"bn_layers_recalibrated": len(names)}
    if val_x is not None and val_y is not None:
        out["val_mean_accuracy_fit_stats"] = _mean_accuracy(model, val_x, val_y)
    order = np.random.default_rng(0).permutation(len(train_x))
    batches = [train_x[order[i:i + batch_size]].astype(np.float32) / 255.0 for i in range(0, len(train_x), batch_size)]
    batches = [b for b in batches if np.isfinite(b).all()]  # never estimate statistics from broken inputs
    report = repair_bn_statistics(model, batches, method="reestimate", layers=names, max_batches=max_batches)
    out["bn_recalibration_batches"] = report["batches"]
    if val_x is not None and val_y is not None:
        out["val_mean_accuracy_recalibrated"] = _mean_accuracy(model, val_x, val_y)
    return out


def predict(model: Any, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Head name -> ``(N, k)`` softmax probabilities for uint8 or [0, 1] float images."""
    from acg2vec_lab.models.pix2score.model import HEAD_NAMES

    x = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    outs = model.predict(x, batch_size=batch_size, verbose=0)
    return {name: np.asarray(o) for name, o in zip(HEAD_NAMES, outs)}


def head_metrics(y_true: dict[str, np.ndarray], probs: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per head: accuracy, macro F1 (over the classes present in truth or prediction), confusion matrix, majority baseline."""
    from sklearn.metrics import confusion_matrix, f1_score

    out = {}
    for head, p in probs.items():
        k = p.shape[1]
        y, pred = np.asarray(y_true[head]), p.argmax(1)
        counts = np.bincount(y, minlength=k)
        out[head] = {
            "accuracy": float((pred == y).mean()),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "majority_accuracy": float(counts.max() / max(len(y), 1)),
            "confusion": confusion_matrix(y, pred, labels=list(range(k))),
        }
    return out


def metrics_table(results: dict[str, dict[str, dict[str, Any]]]) -> Any:
    """One DataFrame row per (model, head) with accuracy, macro F1 and the majority-class baseline."""
    import pandas as pd

    rows = [{"model": m, "head": h, **{k: v for k, v in r.items() if k != "confusion"}}
            for m, heads in results.items() for h, r in heads.items()]
    return pd.DataFrame(rows)


def plot_confusions(metrics: dict[str, dict[str, Any]], title: str = "") -> Any:
    """Row-normalised confusion matrices of the three heads; returns the figure."""
    import matplotlib.pyplot as plt

    from acg2vec_lab.data.labels import bin_labels

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.2))
    for ax, (head, m) in zip(np.atleast_1d(axes), metrics.items()):
        cm = m["confusion"].astype(np.float64)
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(cm, vmin=0, vmax=1, cmap="Blues")
        labels = bin_labels(HEAD_EDGES[head])
        ax.set_xticks(range(len(labels)), labels, rotation=80, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel("predicted bin")
        ax.set_ylabel("true bin")
        ax.set_title(f"{title} {head}: acc {m['accuracy']:.2f}, macro F1 {m['macro_f1']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig


def gradient_cosines(model: Any, x: np.ndarray, y: dict[str, np.ndarray]) -> np.ndarray:
    """``(3, 3)`` cosine similarity of the heads' loss gradients on the shared trunk for one batch (conflict < 0)."""
    import keras
    import tensorflow as tf

    from acg2vec_lab.models.pix2score.model import HEAD_NAMES, cosine_conflicts

    ce = keras.losses.SparseCategoricalCrossentropy()
    trunk_vars = [v for v in model.trainable_variables if not any(v.path.startswith(h) for h in HEAD_NAMES)]
    xb = tf.convert_to_tensor(x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x)
    with tf.GradientTape(persistent=True) as tape:
        preds = model(xb, training=False)
        losses = [ce(y[h], p) for h, p in zip(HEAD_NAMES, preds)]
    grads = [tape.gradient(loss, trunk_vars) for loss in losses]
    return cosine_conflicts(grads, trunk_vars).numpy()


# ----------------------------------------------------------------------------------- checkpoints

def fit(cfg: Any, data: Any, run: Any, verbose: int = 0) -> dict[str, Any]:
    """Train into ``run`` (a :class:`~acg2vec_lab.train.run.Run`) on ``data``
    (:class:`~acg2vec_lab.models.pix2score.experiment.PixivData`), with the NaN guard; a finished run
    is only loaded. Pix2Score trains all its epochs in one ``fit`` call, so resuming is loading."""
    import time

    from acg2vec_lab.train.guards import NaNGuard, NonFiniteLoss
    from acg2vec_lab.train.run import history_rows

    if run.exists():
        return {"model": load_checkpoint(run.folder)[0], "history": run.manifest()["history"], "resumed": True}
    guard = NaNGuard(verbose=False)
    t0 = time.perf_counter()
    model, hist = train(cfg, data.x["train"], data.y["train"], data.x.get("val"), data.y.get("val"), seed=run.seed,
                        callbacks=[guard])
    seconds = time.perf_counter() - t0
    if guard.triggered:  # nothing is saved: Pix2Score has no mid-run checkpoint, so a rerun starts over
        ev = guard.events[-1]
        raise NonFiniteLoss(f"pix2score: non-finite loss {ev['loss']} at epoch {ev['epoch']} batch {ev['batch']}; "
                            f"the weights were not updated with it and nothing was saved in {run.folder}")
    epoch_hist = {k: v for k, v in hist.items() if isinstance(v, list)}
    metrics = {k: v for k, v in hist.items() if not isinstance(v, list)}
    rows = history_rows(epoch_hist)
    save_checkpoint(model, cfg, run.folder, {"trained_on": run.data, "guard_events": guard.events,
                                             "train_seconds": seconds}, run=run, history=rows, metrics=metrics)
    return {"model": model, "history": rows, "metrics": metrics, "resumed": False}


def run_history(run: Any) -> dict[str, Any]:
    """A finished run's history in :func:`train`'s shape, read from its manifest (the same whether the run
    was trained just now or earlier): per-epoch lists (``loss``, ``val_loss``, ...), the BN re-estimation
    numbers, and ``guard_events`` / ``train_seconds`` of the training call."""
    manifest = run.manifest()
    if not (manifest and manifest.get("complete")):
        raise ValueError(f"{run.folder}: no finished pix2score run (train it with fit or ensure_trained first)")
    from acg2vec_lab.train.run import history_columns

    extra = manifest.get("extra", {})
    return (history_columns(manifest["history"]) | dict(manifest.get("metrics", {}))
            | {"guard_events": list(extra.get("guard_events", [])), "train_seconds": extra.get("train_seconds")})


def save_checkpoint(model: Any, cfg: Any, folder: str | os.PathLike, extra: dict[str, Any] | None = None,
                    run: Any = None, history: Sequence[dict[str, Any]] = (), metrics: dict[str, Any] | None = None,
                    data_fingerprint: str | None = None) -> Path:
    """``model.weights.h5`` + ``config.json`` (the config and ``extra``), then the run manifest (written
    last, so its presence means complete). Without ``run``, ``folder`` is overwritten on purpose with a
    run of ``cfg`` on ``data_fingerprint`` (``"unknown"`` if not given)."""
    from acg2vec_lab.io import write_json
    from acg2vec_lab.train.run import Run, config_json, save_keras_weights

    folder = Path(folder)
    if run is None:
        run = Run.fresh("pix2score", cfg, data_fingerprint or "unknown", folder)
    save_keras_weights(model, folder / "model.weights.h5")
    write_json(folder / "config.json", {"config": config_json(cfg), **(extra or {})})
    run.save(history, step=len(history), complete=True, metrics=metrics, **(extra or {}))
    return folder


def load_checkpoint(folder: str | os.PathLike) -> tuple[Any, Any, dict[str, Any]]:
    """Rebuild the model from ``config.json`` and load ``model.weights.h5``; returns (model, cfg, meta)."""
    from acg2vec_lab.config import from_dict
    from acg2vec_lab.models.pix2score.config import Pix2ScoreConfig
    from acg2vec_lab.models.pix2score.model import build_pix2score

    folder = Path(folder)
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    raw = {k: v for k, v in meta["config"].items() if k != "seed"}  # the registry's seed is not an architecture field
    cfg = from_dict(Pix2ScoreConfig, raw, str(folder / "config.json"))
    model = build_pix2score(cfg)
    model.load_weights(str(folder / "model.weights.h5"))
    return model, cfg, meta
