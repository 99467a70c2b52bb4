"""Training a DeepDanbooru tagger from scratch on a Danbooru-format data set (the synthetic one here).

What it follows from DeepDanbooru (``models.md`` 1.5-1.6): multi-hot targets over a vocabulary of
general + character tags with at least ``minimum_tag_count`` training posts plus the rating tags;
binary cross-entropy or focal loss; Adam, SGD (momentum 0.9, Nesterov) or RMSprop with an optional
per-epoch learning-rate list; rotation / scale / shift augmentation with an edge-replicated warp; a
checkpoint after every epoch that a rerun resumes from. What it adds: the NaN guard and the
BatchNorm statistics check + repair of :mod:`acg2vec_lab.train.guards` (the two failure modes the
ACG2vec README reports).

Checkpoint: a :class:`~acg2vec_lab.train.run.Run` folder (keyed by config, data fingerprint, seed
and code version; read by the tagger loader and the illust2vec embedder through the registry):

* ``model.weights.h5``: Keras weights of ``build_model(load_config("deepdanbooru", variant), n_tags=len(tags))``;
* ``tags.json``: ``{"tags": [...], "categories": [...]}`` (0 general, 4 character, 9 rating);
* ``train_state.json``: epochs done, history, configs, guard/BN events (also in the manifest), and the
  sha256 of the weights and optimizer files of that epoch;
* ``optimizer.npz``: optimizer variables, so a resumed run continues the same optimisation.

The weights, optimizer and state of an epoch are three files, so a kill can fall between them. Before an
epoch's files are written, the committed pair is kept as ``*.prev``; a resume loads whichever file matches the
digests in ``train_state.json`` (:func:`_committed_checkpoint`), so it continues from a consistent epoch
whatever the kill point, and ``tests/test_fault_injection.py`` checks that the resumed run ends with the
weights of an uninterrupted one;
* ``manifest.json`` (written last) and ``identity.json``: see :mod:`acg2vec_lab.train.run`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io import atomic_path, write_json
from acg2vec_lab.tagging.categories import (
    CATEGORY_CHARACTER,
    CATEGORY_GENERAL,
    CATEGORY_RATING,
    load_tags_json,
    save_tags_json,
)
from acg2vec_lab.train.run import Run, RunMismatch, dataset_fingerprint, save_keras_weights

RATING_NAMES = {"g": "rating:general", "s": "rating:sensitive", "q": "rating:questionable", "e": "rating:explicit"}
STATE_FILE = "train_state.json"
WEIGHTS_FILE = "model.weights.h5"
TAGS_FILE = "tags.json"


def rating_tag(rating: str) -> str:
    return RATING_NAMES.get(rating, f"rating:{rating}")


def build_vocabulary(posts: Sequence[Any], minimum_tag_count: int = 20, max_tags: int | None = None
                     ) -> tuple[list[str], list[int]]:
    """Tags to predict: general then character tags with >= ``minimum_tag_count`` posts (most frequent
    first, capped at ``max_tags``), then the rating tags present, as in DeepDanbooru's tag files."""
    counts: Counter = Counter()
    cat_of: dict[str, int] = {}
    ratings: Counter = Counter()
    for p in posts:
        for t in p.tags:
            if t.category in (CATEGORY_GENERAL, CATEGORY_CHARACTER):
                counts[t.name] += 1
                cat_of[t.name] = t.category
        ratings[rating_tag(p.rating)] += 1
    kept = [n for n, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= minimum_tag_count]
    if max_tags is not None:
        kept = kept[:max_tags]
    general = sorted(n for n in kept if cat_of[n] == CATEGORY_GENERAL)
    character = sorted(n for n in kept if cat_of[n] == CATEGORY_CHARACTER)
    order = [r for r in RATING_NAMES.values() if r in ratings] + sorted(r for r in ratings if r not in RATING_NAMES.values())
    tags = general + character + order
    cats = [CATEGORY_GENERAL] * len(general) + [CATEGORY_CHARACTER] * len(character) + [CATEGORY_RATING] * len(order)
    return tags, cats


def multi_hot(posts: Sequence[Any], tags: Sequence[str]) -> np.ndarray:
    """``(N, n_tags)`` float32 targets (rating tag from ``post.rating``)."""
    index = {t: i for i, t in enumerate(tags)}
    y = np.zeros((len(posts), len(tags)), np.float32)
    for r, p in enumerate(posts):
        for t in p.tags:
            if t.name in index:
                y[r, index[t.name]] = 1.0
        rt = rating_tag(p.rating)
        if rt in index:
            y[r, index[rt]] = 1.0
    return y


def focal_loss(alpha: float = 0.25, gamma: float = 2.0):
    """Binary focal loss: mean over tags of -alpha_t (1 - p_t)^gamma log(p_t)."""
    import keras
    from keras import ops

    def loss(y_true, y_pred):
        eps = keras.config.epsilon()
        y_pred = ops.clip(ops.cast(y_pred, "float32"), eps, 1.0 - eps)
        y_true = ops.cast(y_true, "float32")
        p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
        a_t = y_true * alpha + (1.0 - y_true) * (1.0 - alpha)
        return ops.mean(-a_t * ops.power(1.0 - p_t, gamma) * ops.log(p_t), axis=-1)

    loss.__name__ = "focal_loss"
    return loss


def make_optimizer(name: str, learning_rate: float):
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}")


def lr_for_epoch(cfg: Any, epoch: int) -> float:
    """DeepDanbooru's ``learning_rates`` rule: the last entry with ``used_epoch <= epoch`` wins."""
    lr = cfg.learning_rate
    for entry in sorted(cfg.learning_rates or (), key=lambda e: e["used_epoch"]):
        if entry["used_epoch"] <= epoch:
            lr = entry["learning_rate"]
    return float(lr)


def _load(path: Path):
    try:
        from acg2vec_lab.data import load_image
    except ImportError:  # pragma: no cover
        from PIL import Image

        return Image.open(path).convert("RGB")
    return load_image(path)


def prepare_images(paths: Sequence[Path], size: tuple[int, int], for_training: bool, scale_max: float = 1.1,
                   workers: int = 2) -> list[np.ndarray]:
    """Decode once: AREA-fitted arrays for augmentation (uint8), or final evaluation inputs (float32)."""
    from concurrent.futures import ThreadPoolExecutor

    from acg2vec_lab.models.deepdanbooru.preprocess import deepdanbooru_eval, fit_for_training

    def one(p: Path) -> np.ndarray:
        img = _load(p)
        if for_training:
            return np.round(fit_for_training(img, size, scale_max) * 255).astype(np.uint8)
        return deepdanbooru_eval(img, size)

    with ThreadPoolExecutor(max(workers, 1)) as pool:
        return list(pool.map(one, paths))


class AugmentedBatches:
    """A ``keras.utils.PyDataset`` of augmented batches; worker threads prepare batches ahead."""

    def __new__(cls, *args: Any, **kwargs: Any):
        import keras

        from acg2vec_lab.models.deepdanbooru.preprocess import augment, warp_to_canvas

        class _Batches(keras.utils.PyDataset):
            def __init__(self, images, labels, size, cfg, steps=None, seed=0, epoch=0):
                super().__init__(workers=max(cfg.workers, 1), use_multiprocessing=False)
                self.images, self.labels, self.size, self.cfg = images, labels, size, cfg
                self.seed, self.epoch = seed, epoch
                self.n_batches = math.ceil(len(images) / cfg.batch_size)
                if steps:
                    self.n_batches = min(self.n_batches, steps)
                self._order()

            def _order(self):
                self.order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.images))

            def __len__(self):
                return self.n_batches

            def __getitem__(self, idx):
                bs = self.cfg.batch_size
                sel = self.order[idx * bs:(idx + 1) * bs]
                rng = np.random.default_rng((self.seed, self.epoch, idx))
                xs = []
                for i in sel:
                    img = self.images[i].astype(np.float32) / 255.0
                    if self.cfg.augment:
                        xs.append(augment(img, self.size, rng, tuple(self.cfg.rotation_range),
                                          tuple(self.cfg.scale_range), tuple(self.cfg.shift_range)))
                    else:
                        xs.append(np.clip(warp_to_canvas(img, self.size[1], self.size[0],
                                                         scale=1.0 / self.cfg.scale_range[1]), 0, 1))
                return np.stack(xs).astype(np.float32), self.labels[sel]

            def set_epoch(self, epoch):
                """Batches of ``epoch`` (order and augmentation seeded by (seed, epoch, batch)); the
                training loop sets it before each epoch, so a resumed run sees what an uninterrupted one
                saw."""
                if epoch != self.epoch:
                    self.epoch = epoch
                    self._order()

            def on_epoch_end(self):
                # Keras calls this when it likes: its PyDataset adapter also calls it after peeking at the
                # first batches, so counting calls advanced the epoch twice per fit() (epoch 1 then 3 in an
                # uninterrupted run, 2 after a resume from 1: resumed weights ended 0.14 away). The epoch is
                # set explicitly instead (set_epoch).
                pass

        return _Batches(*args, **kwargs)


@dataclasses.dataclass
class TaggerData:
    tags: list[str]
    categories: list[int]
    train_paths: list[Path]
    y_train: np.ndarray
    val_paths: list[Path]
    y_val: np.ndarray
    test_paths: list[Path]
    y_test: np.ndarray


def tagger_data(dataset: Any, cfg: Any) -> TaggerData:
    """Vocabulary from the training split, multi-hot labels and image paths for train/val/test."""
    def cap(posts, n):
        return list(posts)[:n] if n else list(posts)

    train = cap(dataset.split("train"), cfg.max_train)
    val = cap(dataset.split("val"), cfg.max_eval)
    test = cap(dataset.split("test"), cfg.max_eval)
    tags, cats = build_vocabulary(train, cfg.minimum_tag_count, cfg.max_tags)
    paths = lambda ps: [Path(dataset.image_path(p)) for p in ps]  # noqa: E731
    return TaggerData(tags, cats, paths(train), multi_hot(train, tags), paths(val), multi_hot(val, tags),
                      paths(test), multi_hot(test, tags))


def _model_config(variant: str):
    from acg2vec_lab.config import load_config

    return load_config("deepdanbooru", variant=variant)


def build_tagger_model(variant: str, n_tags: int):
    """The Keras tagger of ``configs/deepdanbooru/<variant>.json`` with ``n_tags`` outputs."""
    from acg2vec_lab.models.deepdanbooru.tf_model import build_model

    return build_model(_model_config(variant), n_tags=n_tags)


def _save_optimizer(opt: Any, path: Path) -> None:
    arrays = {f"v{i:04d}": v.numpy() for i, v in enumerate(opt.variables)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _load_optimizer(opt: Any, model: Any, path: Path) -> bool:
    if not path.exists():
        return False
    opt.build(model.trainable_variables)
    data = np.load(path, allow_pickle=False)
    if len(data.files) != len(opt.variables):
        return False
    for i, v in enumerate(opt.variables):
        v.assign(data[f"v{i:04d}"])
    return True


def _save_weights(model: Any, path: Path) -> None:
    save_keras_weights(model, path)


OPTIMIZER_FILE = "optimizer.npz"


def _prev(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def _commit_checkpoint(ckpt: Path, model: Any, opt: Any, state: dict[str, Any], state_path: Path) -> None:
    """Write one epoch's weights, optimizer and state so that a kill at any point leaves a consistent
    committed epoch: the committed files are kept as ``*.prev`` until the new state (which names the new
    files by digest) is written."""
    from acg2vec_lab.io import file_digest

    files = (ckpt / WEIGHTS_FILE, ckpt / OPTIMIZER_FILE)
    for f in files:
        if f.exists():
            os.replace(f, _prev(f))
    _save_weights(model, files[0])
    _save_optimizer(opt, files[1])
    state["files"] = {"weights": file_digest(files[0]), "optimizer": file_digest(files[1])}
    write_json(state_path, state)
    for f in files:
        _prev(f).unlink(missing_ok=True)


def _committed_checkpoint(ckpt: Path, state: dict[str, Any]) -> None:
    """Make the folder's weights and optimizer files the ones ``train_state.json`` committed: the current file
    when its digest matches, else its ``*.prev`` (the kill fell after the next epoch's files were written and
    before its state), renamed back. A state written before digests were recorded is taken as it is."""
    from acg2vec_lab.io import file_digest

    want = state.get("files")
    if not want:
        return
    for f, key in ((ckpt / WEIGHTS_FILE, "weights"), (ckpt / OPTIMIZER_FILE, "optimizer")):
        if f.exists() and file_digest(f) == want[key]:
            _prev(f).unlink(missing_ok=True)
        elif _prev(f).exists() and file_digest(_prev(f)) == want[key]:
            os.replace(_prev(f), f)  # the epoch after the committed one was interrupted
        else:
            raise RunMismatch(f"{ckpt}: no {f.name} matches train_state.json (epoch {state.get('epochs_done')}); "
                              "the folder's files are inconsistent: delete it or start over (resume=False)")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train_tagger` returns."""

    model: Any
    tags: list[str]
    categories: list[int]
    checkpoint: Path
    state: dict[str, Any]
    data: TaggerData
    resumed_from_epoch: int
    seconds: float


def train_tagger(profile: str | None = None, cfg: Any = None, dataset: Any = None, checkpoint: str | os.PathLike | None = None,
                 resume: bool = True, epochs: int | None = None, verbose: int = 0, seed: int | None = None,
                 run: Run | None = None, strategy: Any = None, sync_batchnorm: bool = True) -> TrainResult:
    """Train (or resume, or just load when finished) the DeepDanbooru tagger of ``profile``.

    Args:
        profile: picks ``configs/deepdanbooru_train/<variant>.json`` and the synthetic data set.
        cfg: a :class:`~acg2vec_lab.train.config.TaggerTrainConfig` instead of the profile's.
        dataset: a Danbooru-format data set (default ``acg2vec_lab.data.synthetic_dataset(profile)``).
        checkpoint: the run folder (default: the run's keyed folder under ``checkpoints/deepdanbooru``).
            A folder holding another run (config, data, seed) raises
            :class:`~acg2vec_lab.train.run.RunMismatch`; it is never silently started over.
        resume: continue from the run's last finished epoch (a finished run is only loaded);
            ``False`` empties the run folder and starts over on purpose.
        epochs: train up to this many epochs in total (default ``cfg.epochs``); lets a caller stop
            early and resume later.
        seed: overrides ``cfg.seed`` (data order, augmentation, initialisation).
        run: the :class:`~acg2vec_lab.train.run.Run` to train into (instead of ``checkpoint``).
        strategy: a ``tf.distribute`` strategy (:func:`acg2vec_lab.train.distributed.strategy`): the
            model, optimiser and metrics are built and compiled under its ``scope()``; Keras splits
            every global batch of ``cfg.batch_size`` across the replicas and sums their gradients.
            Only the chief writes the checkpoint. None: the single-device path, unchanged.
        sync_batchnorm: with a strategy of more than one replica, BatchNormalization computes its
            batch statistics over the global batch (``synchronized=True``), as one device does;
            ``False``: per replica (each sees ``batch_size / replicas`` images), which changes the
            forward pass and so the weights, not only by rounding.
    """
    import keras

    from acg2vec_lab.config import load_config, to_dict
    from acg2vec_lab.train.guards import NaNGuard, NonFiniteLoss, check_bn_statistics, repair_bn_statistics

    t0 = time.perf_counter()
    cfg = cfg or load_config("deepdanbooru_train", profile)
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=int(seed))
    if dataset is None:
        from acg2vec_lab.data import synthetic_dataset

        dataset = synthetic_dataset(profile)
    if run is None:
        run = Run.create("deepdanbooru", cfg, dataset_fingerprint(dataset), folder=checkpoint)
    if not resume:
        run.reset()
    ckpt = run.folder
    total_epochs = epochs or cfg.epochs
    data = tagger_data(dataset, cfg)

    state_path = ckpt / STATE_FILE
    state: dict[str, Any] = {}
    manifest = run.resume_state()
    if manifest is not None and state_path.exists() and ((ckpt / WEIGHTS_FILE).exists()
                                                         or _prev(ckpt / WEIGHTS_FILE).exists()):
        state = json.loads(state_path.read_text(encoding="utf-8"))
        _committed_checkpoint(ckpt, state)
        if state.get("tags") != data.tags:  # same config and data give the same vocabulary
            raise RunMismatch(f"{ckpt}: the saved vocabulary differs from the one of this data; "
                              "the folder's files are inconsistent: delete it or start over (resume=False)")
    keras.utils.set_random_seed(cfg.seed)
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    import contextlib

    from acg2vec_lab.train import distributed as D

    writer = D.tf_is_chief(strategy)  # MultiWorkerMirrored: only the chief writes the checkpoint
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_tagger_model(cfg.model_variant, len(data.tags))
        if strategy is not None and sync_batchnorm and D.replicas(strategy) > 1:
            for layer in model._flatten_layers(include_self=False):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True
        opt = make_optimizer(cfg.optimizer, cfg.learning_rate)
        loss = focal_loss() if cfg.loss == "focal_loss" else keras.losses.BinaryCrossentropy()
        model.compile(optimizer=opt, loss=loss, jit_compile=False,  # XLA compile of the backward pass costs minutes on CPU
                      metrics=[keras.metrics.Precision(name="precision"),
                                                          keras.metrics.Recall(name="recall")])
        start_epoch = 0
        if state:
            model.load_weights(ckpt / WEIGHTS_FILE)
            _load_optimizer(opt, model, ckpt / OPTIMIZER_FILE)
            start_epoch = int(state["epochs_done"])
    if not state:
        state = {"epochs_done": 0, "history": [], "guard_events": [], "bn_events": [],
                 "train_config": to_dict(cfg), "model_config": to_dict(_model_config(cfg.model_variant)),
                 "model_variant": cfg.model_variant, "tags": data.tags}
    resumed_from = start_epoch
    size = tuple(model.input_shape[1:3])

    if start_epoch < total_epochs:
        scale_max = cfg.scale_range[1] if cfg.augment else 1.0
        train_images = prepare_images(data.train_paths, size, True, max(scale_max, 1.0), cfg.workers)
        val_x = np.stack(prepare_images(data.val_paths, size, False, workers=cfg.workers))
        val_y = data.y_val
        if strategy is not None and D.replicas(strategy) > 1:
            val_x, val_y = _replica_ready(cfg, len(train_images), val_x, val_y, D.replicas(strategy))
        batches = AugmentedBatches(train_images, data.y_train, size, cfg, cfg.steps_per_epoch, cfg.seed, start_epoch)
        feed = batches if strategy is None else _in_order(batches)
        guard = NaNGuard(verbose=True)
        from acg2vec_lab import progress

        for epoch in progress.bar(range(start_epoch, total_epochs), desc="deepdanbooru train", unit="epoch"):
            te = time.perf_counter()
            opt.learning_rate.assign(lr_for_epoch(cfg, epoch))
            batches.set_epoch(epoch)  # also what the tf.data view (_in_order) reads
            # shuffle=False: the batches are already in a seeded order per epoch; Keras's own shuffle of a
            # PyDataset's batch order draws from the global RNG, so a resumed run (or the tf.data path under a
            # strategy, which Keras does not shuffle) trained the same batches in another order
            hist = model.fit(feed, epochs=epoch + 1, initial_epoch=epoch, verbose=verbose, callbacks=[guard],
                             validation_data=(val_x, val_y), validation_batch_size=cfg.batch_size, shuffle=False)
            row = {k: float(v[-1]) for k, v in hist.history.items()}
            row.update(epoch=epoch, lr=lr_for_epoch(cfg, epoch), seconds=round(time.perf_counter() - te, 2))
            if guard.triggered:  # the checkpoint on disk is the last good epoch: a resume continues from it
                ev = guard.events[-1]
                raise NonFiniteLoss(f"deepdanbooru: non-finite loss {ev['loss']} at epoch {ev['epoch']} batch "
                                    f"{ev['batch']}; the weights were not updated with it; the last committed "
                                    f"checkpoint ({state['epochs_done']} epochs) is in {ckpt}")
            if cfg.bn_check:
                issues = check_bn_statistics(model)
                if issues:
                    bn_feed = (batches[i][0] for i in range(min(len(batches), 10)))  # not `feed`: training's
                    report = repair_bn_statistics(model, bn_feed, method=cfg.bn_repair)
                    state["bn_events"].append({"epoch": epoch, **report})
            state["history"].append(row)
            state["epochs_done"] = epoch + 1
            if not writer:
                continue
            save_tags_json(ckpt / TAGS_FILE, data.tags, data.categories)
            _commit_checkpoint(ckpt, model, opt, state, state_path)
            run.save(state["history"], state["epochs_done"], complete=state["epochs_done"] >= cfg.epochs,
                     guard_events=state["guard_events"], bn_events=state["bn_events"],
                     model_variant=cfg.model_variant, n_tags=len(data.tags))
    m = run.manifest() or {}
    done = int(state["epochs_done"])
    if writer and done and (int(m.get("step", -1)) != done or bool(m.get("complete")) != (done >= cfg.epochs)):
        # a kill between train_state.json and the manifest left the manifest one epoch behind the files
        run.save(state["history"], done, complete=done >= cfg.epochs, guard_events=state["guard_events"],
                 bn_events=state["bn_events"], model_variant=cfg.model_variant, n_tags=len(data.tags))
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("float32")
    return TrainResult(model, data.tags, data.categories, ckpt, state, data, resumed_from, time.perf_counter() - t0)


def _in_order(batches: Any) -> Any:
    """``batches`` (a :class:`AugmentedBatches`) as a ``tf.data`` set of its batches in order, with
    its length declared. Under a strategy Keras's own PyDataset path reorders the first batches (its
    enqueuer is started once to build the model and again to train), and a ``tf.data`` set of unknown
    length ends each epoch with one extra step on empty replica batches (which moves Adam's weights)."""
    import tensorflow as tf

    x0, y0 = batches[0]
    spec = (tf.TensorSpec((None, *x0.shape[1:]), tf.float32), tf.TensorSpec((None, *y0.shape[1:]), tf.float32))
    ds = tf.data.Dataset.from_generator(lambda: (batches[i] for i in range(len(batches))), output_signature=spec)
    return ds.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)


def _replica_ready(cfg: Any, n_train: int, val_x: np.ndarray, val_y: np.ndarray, n_replicas: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Checks for ``fit`` under a strategy of ``n_replicas``: Keras builds the model from the first
    batch of each data set reduced over the replicas, so that batch must split evenly. The training
    batch must (an uneven split would also weight the replicas' mean losses unequally); a validation
    set smaller than one batch is cut to a multiple of ``n_replicas`` (its metrics only, not the weights)."""
    if min(cfg.batch_size, n_train) % n_replicas:
        raise ValueError(f"batch_size {cfg.batch_size} (with {n_train} training images) does not split evenly "
                         f"across {n_replicas} replicas; use a multiple of {n_replicas}")
    first = min(cfg.batch_size, len(val_x))
    if first % n_replicas:
        keep = len(val_x) - first % n_replicas
        val_x, val_y = val_x[:keep], val_y[:keep]
    return val_x, val_y


def load_trained_tagger_model(profile: str | None = None, checkpoint: str | os.PathLike | None = None):
    """``(model, tags, categories, checkpoint_dir)`` of the run folder ``checkpoint`` written by
    :func:`train_tagger` (find a profile's run with ``models.get("deepdanbooru").find(profile)``).

    ``profile``: the model variant to build when the folder's state does not name one.
    """
    if checkpoint is None:
        raise ValueError("load_trained_tagger_model needs checkpoint= (a run folder); "
                         "models.get('deepdanbooru').find(profile) gives the profile's run")
    ckpt = Path(checkpoint)
    if not (ckpt / WEIGHTS_FILE).exists() or not (ckpt / TAGS_FILE).exists():
        raise FileNotFoundError(f"no trained DeepDanbooru tagger in {ckpt} (needs {WEIGHTS_FILE} and {TAGS_FILE})")
    tags, cats = load_tags_json(ckpt / TAGS_FILE)
    state = json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8")) if (ckpt / STATE_FILE).exists() else {}
    from acg2vec_lab.config import variant_for

    variant = state.get("model_variant") or variant_for(profile)
    model = build_tagger_model(variant, len(tags))
    model.load_weights(ckpt / WEIGHTS_FILE)
    return model, tags, cats, ckpt


def predict_arrays(model: Any, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Probabilities of preprocessed inputs ``(N, H, W, 3)`` in [0, 1], batched, training=False."""
    out = [np.asarray(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def evaluate_split(model: Any, paths: Sequence[Path], y: np.ndarray, categories: Sequence[int],
                   general: float = 0.35, character: float = 0.85, workers: int = 2) -> dict[str, Any]:
    """Probabilities on a split and the headline metrics at the per-category thresholds."""
    from acg2vec_lab.tagging.metrics import evaluate
    from acg2vec_lab.tagging.thresholds import ThresholdPolicy, apply_thresholds

    size = tuple(model.input_shape[1:3])
    x = np.stack(prepare_images(paths, size, False, workers=workers))
    probs = predict_arrays(model, x)
    pred = apply_thresholds(probs, categories, ThresholdPolicy(general=general, character=character))
    return {"probs": probs, "pred": pred, "metrics": evaluate(y, probs, pred)}
