"""Training safety nets for the two failure modes the ACG2vec README reports.

1. **NaN loss** (under mixed precision). One policy for every trainer: a non-finite loss never reaches
   the weights, the run is never saved or marked complete with it, and training stops with
   :class:`NonFiniteLoss` naming the model, the epoch and step, and what is left on disk (the last
   committed checkpoint, from which a resume continues). How each loop gets there:

   * Keras ``fit`` loops (DeepDanbooru, Pix2Score): :class:`NaNGuard`, a callback that notices the first
     batch whose loss is not finite, reports it (epoch, batch, loss), rolls the weights back to the last
     snapshot taken at a finite loss and stops ``fit``; the trainer then raises :class:`NonFiniteLoss`.
   * custom loops (JoyTag, DCLIP, acgvoc2vec in torch; deepix's compiled TF step): :func:`check_finite`
     before the optimiser step (deepix's step applies its gradients only when the loss is finite).

   Gradient clipping is a config field, ``grad_clip`` (max global L2 norm; ``None``: none), in the
   configs of the torch trainers; the Keras trainers do not clip (as the originals do not).
2. **Corrupted BatchNorm moving statistics** (NaN/inf, negative variance, or exploded mean/variance;
   the weights look fine but inference outputs garbage): :func:`check_bn_statistics` finds them,
   :func:`repair_bn_statistics` repairs them in one of two ways:

   * ``"reestimate"`` (default, the repair the README describes): reset the corrupted layers'
     moving mean/variance to 0/1 and re-estimate them with forward passes in training mode over a
     few batches, with every weight frozen (no gradient step). The momentum of each repaired layer is
     set per batch to ``k / (k + 1)`` so the result is the plain average of the batch statistics;
     layers that are not repaired get momentum 1 (their statistics do not move).
   * ``"nan_to_num"``: what the original ``model_refresh_without_nan`` did, ``np.nan_to_num`` on every
     moving statistic (NaN -> 0, +-inf -> +-float max). Cheap and needs no data, but a NaN variance
     becomes 0, so that channel is then divided by sqrt(epsilon) only; negative or exploded values
     are left as they are. Kept for comparison; prefer ``"reestimate"``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np


def _bn_layers(model: Any) -> list[Any]:
    import keras

    out = []
    for layer in model._flatten_layers(include_self=False, recursive=True) if hasattr(model, "_flatten_layers") else model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            out.append(layer)
    return out


@dataclasses.dataclass
class BNIssue:
    layer: str
    problem: str  # "nan" | "inf" | "negative_variance" | "exploded_mean" | "exploded_variance"
    count: int
    channels: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_bn_statistics(model: Any, max_abs_mean: float = 1e4, max_variance: float = 1e8) -> list[BNIssue]:
    """Every BatchNormalization layer whose moving statistics are unusable.

    Args:
        max_abs_mean: |moving_mean| above this counts as exploded.
        max_variance: moving_variance above this counts as exploded.
    Returns:
        one :class:`BNIssue` per (layer, problem); an empty list means healthy.
    """
    issues = []
    for layer in _bn_layers(model):
        mean = np.asarray(layer.moving_mean.numpy(), dtype=np.float64)
        var = np.asarray(layer.moving_variance.numpy(), dtype=np.float64)
        c = mean.size
        checks = {
            "nan": int(np.isnan(mean).sum() + np.isnan(var).sum()),
            "inf": int(np.isinf(mean).sum() + np.isinf(var).sum()),
            "negative_variance": int((var < 0).sum()),
            "exploded_mean": int((np.abs(mean[np.isfinite(mean)]) > max_abs_mean).sum()),
            "exploded_variance": int((var[np.isfinite(var)] > max_variance).sum()),
        }
        issues += [BNIssue(layer.name, k, v, c) for k, v in checks.items() if v]
    return issues


def corrupt_bn_statistics(model: Any, layer_index: int = 0, kind: str = "nan", fraction: float = 0.5,
                          seed: int = 0) -> str:
    """Deliberately corrupt one BN layer's moving statistics (for tests and the notebook demo).

    ``kind``: ``"nan"``, ``"negative_variance"`` or ``"exploded"``. Returns the layer name.
    """
    layer = _bn_layers(model)[layer_index]
    rng = np.random.default_rng(seed)
    mean, var = layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy()
    idx = rng.choice(mean.size, max(1, int(fraction * mean.size)), replace=False)
    if kind == "nan":
        mean[idx] = np.nan
        var[idx[: max(1, len(idx) // 2)]] = np.nan
    elif kind == "negative_variance":
        var[idx] = -1.0
    elif kind == "exploded":
        mean[idx] = 1e6
        var[idx] = 1e12
    else:
        raise ValueError(kind)
    layer.moving_mean.assign(mean)
    layer.moving_variance.assign(var)
    return layer.name


def repair_bn_statistics(model: Any, data: Iterable[Any] | None = None, method: str = "reestimate",
                         layers: Iterable[str] | None = None, max_batches: int = 20) -> dict[str, Any]:
    """Repair corrupted BN moving statistics; returns what was done.

    Args:
        model: a Keras model.
        data: batches of model inputs (arrays, or ``(x, y)`` tuples) for ``"reestimate"``.
        method: ``"reestimate"`` or ``"nan_to_num"`` (see module docstring).
        layers: BN layer names to repair; default = the layers :func:`check_bn_statistics` flags
            (``"reestimate"``) or every BN layer (``"nan_to_num"``, as the original did).
        max_batches: forward passes used for re-estimation.
    """
    bns = {layer.name: layer for layer in _bn_layers(model)}
    before = check_bn_statistics(model)
    if method == "nan_to_num":
        names = list(layers) if layers is not None else list(bns)
        for n in names:
            layer = bns[n]
            layer.moving_mean.assign(np.nan_to_num(layer.moving_mean.numpy()))
            layer.moving_variance.assign(np.nan_to_num(layer.moving_variance.numpy()))
        return {"method": method, "layers": names, "issues_before": [i.as_dict() for i in before],
                "issues_after": [i.as_dict() for i in check_bn_statistics(model)], "batches": 0}
    if method != "reestimate":
        raise ValueError(f"unknown repair method {method!r}; reestimate or nan_to_num")
    if data is None:
        raise ValueError("re-estimating BN statistics needs data (batches of inputs)")
    names = list(layers) if layers is not None else sorted({i.layer for i in before})
    if not names:
        return {"method": method, "layers": [], "issues_before": [], "issues_after": [], "batches": 0}
    saved_momentum = {n: layer.momentum for n, layer in bns.items()}
    weights_before = [w.numpy().copy() for w in model.trainable_weights]
    for n in names:
        bns[n].moving_mean.assign(np.zeros(bns[n].moving_mean.shape, np.float32))
        bns[n].moving_variance.assign(np.ones(bns[n].moving_variance.shape, np.float32))
    try:
        for layer in bns.values():
            layer.momentum = 1.0  # frozen unless repaired
        k = 0
        for batch in data:
            if k >= max_batches:
                break
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            for n in names:
                bns[n].momentum = k / (k + 1.0)  # running plain average of batch statistics
            model(x, training=True)  # eager call: momentum is read at call time; no gradient step
            k += 1
    finally:
        for n, layer in bns.items():
            layer.momentum = saved_momentum[n]
    changed = any(not np.array_equal(a, w.numpy()) for a, w in zip(weights_before, model.trainable_weights))
    if changed:  # pragma: no cover - would mean a layer updates weights in a forward pass
        raise RuntimeError("trainable weights changed during BN re-estimation")
    return {"method": method, "layers": names, "issues_before": [i.as_dict() for i in before],
            "issues_after": [i.as_dict() for i in check_bn_statistics(model)], "batches": k}


class NonFiniteLoss(FloatingPointError):
    """A trainer met a NaN / inf loss and stopped before it reached the weights (the module's one policy)."""


def check_finite(loss: Any, model: str, where: str, on_disk: str = "") -> None:
    """Raise :class:`NonFiniteLoss` unless ``loss`` (a float, numpy value or 0-d tensor) is finite.

    ``model``: the trainer's name; ``where``: e.g. ``"epoch 2 step 31"``; ``on_disk``: what a resume
    would continue from (the run folder), said in the message. Call it before the optimiser step.
    """
    value = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
    if not np.isfinite(value):
        raise NonFiniteLoss(f"{model}: non-finite loss {value} at {where}; the weights were not updated with it"
                            + (f"; the last committed checkpoint is in {on_disk}" if on_disk else ""))


class NaNGuard:
    """Keras callback: on the first non-finite loss, report the batch, roll back and stop.

    A snapshot of the weights (trainable and BN statistics) is taken every ``snapshot_every``
    batches whose loss is finite; on a NaN/inf loss the last snapshot is restored and training stops.
    ``events`` lists what happened (epoch, batch, loss, restored_from).
    """

    def __new__(cls, *args: Any, **kwargs: Any):
        import keras

        class _NaNGuard(keras.callbacks.Callback):
            def __init__(self, snapshot_every: int = 10, rollback: bool = True, verbose: bool = True):
                super().__init__()
                self.snapshot_every, self.rollback, self.verbose = snapshot_every, rollback, verbose
                self.events: list[dict[str, Any]] = []
                self._snapshot: list[np.ndarray] | None = None
                self._snapshot_at: tuple[int, int] | None = None
                self._epoch = 0
                self.triggered = False

            def on_train_begin(self, logs=None):
                self._take(-1, -1)

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch

            def _take(self, epoch, batch):
                self._snapshot = [w.numpy().copy() for w in self.model.weights]
                self._snapshot_at = (epoch, batch)

            def on_train_batch_end(self, batch, logs=None):
                loss = float((logs or {}).get("loss", 0.0))
                if np.isfinite(loss):
                    if batch % self.snapshot_every == 0:
                        self._take(self._epoch, batch)
                    return
                event = {"epoch": self._epoch, "batch": int(batch), "loss": str(loss),
                         "restored_from": list(self._snapshot_at) if self.rollback else None}
                self.events.append(event)
                self.triggered = True
                if self.verbose:
                    print(f"NaNGuard: non-finite loss {loss} at epoch {self._epoch} batch {batch}; "
                          + (f"weights restored from {self._snapshot_at}, " if self.rollback else "") + "training stopped")
                if self.rollback and self._snapshot is not None:
                    for w, v in zip(self.model.weights, self._snapshot):
                        w.assign(v)
                self.model.stop_training = True

        return _NaNGuard(*args, **kwargs)
