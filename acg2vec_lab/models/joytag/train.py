"""Train and evaluate JoyTag on a Danbooru-format set (the synthetic one here).

The vocabulary is the ``n_tags`` most frequent tags of the train split (the role of ``top_tags.txt``);
images go through :func:`~acg2vec_lab.models.joytag.preprocess.preprocess`; the loss is the config's
``loss_type`` (``focal2``: focal gamma 2 x 256); AdamW with cosine decay, gradient clipping 1.0
(the original used LAMB, which torch does not ship; its README notes AdamW also works).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def top_tags(posts: Sequence[Any], n_tags: int) -> tuple[list[str], list[int]]:
    """The ``n_tags`` most frequent tags of ``posts`` (ties by name) and their categories."""
    counts: Counter = Counter()
    category: dict[str, int] = {}
    for p in posts:
        for t in p.tags:
            counts[t.name] += 1
            category[t.name] = int(t.category)
    names = sorted(counts, key=lambda n: (-counts[n], n))[:n_tags]
    return names, [category[n] for n in names]


def tag_targets(posts: Sequence[Any], tags: Sequence[str]) -> np.ndarray:
    """``(N, n_tags)`` float32 multi-hot ground truth."""
    index = {t: i for i, t in enumerate(tags)}
    y = np.zeros((len(posts), len(tags)), dtype=np.float32)
    for r, p in enumerate(posts):
        for t in p.tags:
            if t.name in index:
                y[r, index[t.name]] = 1.0
    return y


def load_images(dataset: Any, posts: Sequence[Any], size: int) -> np.ndarray:
    """``(N, 3, size, size)`` float32 JoyTag inputs (white square pad, bicubic, CLIP mean/std), NCHW."""
    from acg2vec_lab.models.joytag.preprocess import preprocess

    return np.stack([preprocess(dataset.load_image(p), size) for p in posts]) if posts else np.zeros((0, 3, size, size), np.float32)


@dataclasses.dataclass
class JoyTagData:
    """Training inputs: ``x`` ``(N, 3, S, S)`` float32 (NCHW, CLIP-normalised), ``y`` ``(N, n_tags)``
    multi-hot, the vocabulary and its categories, and ``fingerprint`` (what a run was trained on)."""

    x: np.ndarray
    y: np.ndarray
    tags: list[str]
    categories: list[int]
    fingerprint: str

    @classmethod
    def from_dataset(cls, dataset: Any, cfg: Any) -> JoyTagData:
        """The train split (capped at ``cfg.max_train``), the ``cfg.n_tags`` most frequent tags."""
        from acg2vec_lab.train.run import dataset_fingerprint

        posts = dataset.split("train")
        if cfg.max_train:
            posts = posts[:cfg.max_train]
        tags, cats = top_tags(posts, cfg.n_tags)
        return cls(load_images(dataset, posts, cfg.image_size), tag_targets(posts, tags), tags, cats,
                   dataset_fingerprint(dataset))


def fit(cfg: Any, data: JoyTagData, run: Any, log: Any = None) -> dict[str, Any]:
    """Train into ``run`` (a :class:`~acg2vec_lab.train.run.Run`): a finished run is only loaded.

    JoyTag trains all its epochs in one call (no mid-run checkpoint), so resuming a run is loading it.
    """
    from acg2vec_lab.models.joytag.loader import load_folder
    from acg2vec_lab.train.run import history_rows

    if run.exists():
        return {"model": load_folder(run.folder).model, "history": run.manifest()["history"], "resumed": True}
    model, hist = train(cfg, data.x, data.y, seed=run.seed, log=log)
    save_checkpoint(run.folder, model, cfg, data.tags, data.categories, run=run, history=history_rows(hist))
    return {"model": model, "history": history_rows(hist), "resumed": False}


def train(cfg: Any, x: np.ndarray, y: np.ndarray, seed: int = 0, log: Any = None) -> tuple[Any, dict[str, list[float]]]:
    """Fit a fresh model from ``cfg`` (``n_tags`` = ``y.shape[1]``); returns (model in eval mode, history).

    History: ``loss`` per epoch (mean of the multiplied loss), ``grad_norm`` per epoch (mean pre-clip
    norm), ``seconds``. A non-finite loss stops training with an error naming the step.
    """
    import torch

    from acg2vec_lab.models.joytag.loss import tag_loss
    from acg2vec_lab.models.joytag.model import build_model

    torch.manual_seed(seed)
    cfg = dataclasses.replace(cfg, n_tags=int(y.shape[1]))
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-6)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    total = max(cfg.epochs * steps_per_epoch, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    hist: dict[str, list[float]] = {"loss": [], "grad_norm": [], "seconds": []}
    step = 0
    from acg2vec_lab import progress

    for epoch in progress.bar(range(cfg.epochs), desc="joytag train", unit="epoch"):
        model.train()
        t0, losses, norms = time.time(), [], []
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb = xt[idx]
            if torch.rand((), generator=gen) < 0.5:  # the one cheap augmentation: horizontal flip
                xb = xb.flip(-1)
            loss = tag_loss(model(xb), yt[idx], cfg.loss_type)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch} step {step}")
            opt.zero_grad()
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)))
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
        hist["loss"].append(float(np.mean(losses)))
        hist["grad_norm"].append(float(np.mean(norms)))
        hist["seconds"].append(time.time() - t0)
        if log:
            log(f"epoch {epoch + 1}/{cfg.epochs}: loss {hist['loss'][-1]:.4f}, grad norm {hist['grad_norm'][-1]:.3f}")
    return model.eval(), hist


def predict_probs(model: Any, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """``(N, n_tags)`` sigmoid probabilities for preprocessed ``(N, 3, S, S)`` inputs."""
    import torch

    model.eval()
    device = next(model.parameters()).device  # the inputs go where the model is (CPU or a GPU)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device)
            out.append(torch.sigmoid(model(xb)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.n_tags), np.float32)


def save_checkpoint(folder: str | Path, model: Any, cfg: Any, tags: Sequence[str], categories: Sequence[int],
                    extra: dict[str, Any] | None = None, run: Any = None, history: Sequence[dict[str, Any]] = (),
                    data_fingerprint: str | None = None) -> Path:
    """The released folder format (``config.json`` + ``model.safetensors`` + ``top_tags.txt``) plus
    ``categories.json``, then the run manifest (written last: the folder counts as trained from then).

    ``run`` is the :class:`~acg2vec_lab.train.run.Run` being saved; without one, ``folder`` is
    overwritten on purpose with a run of ``cfg`` on data ``data_fingerprint`` (``"unknown"`` if not given).
    """
    from acg2vec_lab.io import write_json
    from acg2vec_lab.models.joytag.loader import save_folder
    from acg2vec_lab.train.run import Run

    folder = Path(folder)
    if run is None:
        seed = int((extra or {}).get("seed", getattr(cfg, "seed", 0)))
        run = Run.fresh("joytag", cfg, data_fingerprint or "unknown", folder, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "categories.json", {"categories": [int(c) for c in categories], **(extra or {})})
    kwargs = dataclasses.replace(cfg, n_tags=len(tags)).vit_kwargs()
    out = save_folder(folder, model, kwargs, list(tags))
    run.save(history, step=len(history), complete=True, n_tags=len(tags), **(extra or {}))
    return out
