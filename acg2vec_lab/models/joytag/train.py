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


STATE_FILE = "train_state.pt"  # a mid-run checkpoint (only with ``checkpoint_every``); removed once complete


def fit(cfg: Any, data: JoyTagData, run: Any, log: Any = None, checkpoint_every: int = 0) -> dict[str, Any]:
    """Train into ``run`` (a :class:`~acg2vec_lab.train.run.Run`): a finished run is only loaded.

    By default JoyTag trains all its epochs in one call (no mid-run checkpoint), so resuming a run is
    loading it. ``checkpoint_every=k`` also saves ``train_state.pt`` (model, optimiser, schedule, data
    order and RNG states) and an incomplete manifest every ``k`` optimiser steps; a run killed after
    one resumes from it to the same weights as an uninterrupted run.

    Launched by ``torchrun`` (:mod:`acg2vec_lab.train.distributed`), every rank trains its shard of
    each global batch under DDP; only rank 0 writes, and every rank resumes from the same state file.
    """
    from acg2vec_lab.models.joytag.loader import load_folder
    from acg2vec_lab.train import distributed as D
    from acg2vec_lab.train.run import history_rows, load_torch_state

    D.init()
    # rank 0 decides and reads; the other ranks get its answer (their machine need not see the folder)
    done = D.broadcast_object(run.exists())
    if done:
        D.barrier()
        return {"model": load_folder(run.folder).model, "history": run.manifest()["history"], "resumed": True}
    state_path = run.path(STATE_FILE)
    resume = None
    if D.is_main() and run.resume_state() is not None and state_path.is_file():
        resume = load_torch_state(state_path)
    resume = D.broadcast_object(resume)
    model, hist = train(cfg, data.x, data.y, seed=run.seed, log=log, checkpoint_every=checkpoint_every,
                        run=run, resume=resume)
    if D.is_main():
        save_checkpoint(run.folder, model, cfg, data.tags, data.categories, run=run, history=history_rows(hist))
        state_path.unlink(missing_ok=True)  # the run is complete: the mid-run state is no longer needed
    D.barrier()  # every rank returns once the finished run is on disk
    return {"model": model, "history": history_rows(hist), "resumed": False,
            "resumed_from_step": int(resume["step"]) if resume is not None else None}


def train(cfg: Any, x: np.ndarray, y: np.ndarray, seed: int = 0, log: Any = None, checkpoint_every: int = 0,
          run: Any = None, resume: dict[str, Any] | None = None) -> tuple[Any, dict[str, list[float]]]:
    """Fit a fresh model from ``cfg`` (``n_tags`` = ``y.shape[1]``); returns (model in eval mode, history).

    History: ``loss`` per epoch (mean of the multiplied loss), ``grad_norm`` per epoch (mean pre-clip
    norm), ``seconds``. A non-finite loss stops training before the optimiser step with
    :class:`~acg2vec_lab.train.guards.NonFiniteLoss` naming the step.

    ``checkpoint_every`` (with ``run``): write a mid-run state every that many steps; ``resume``: such
    a state (continue from it). Launched by ``torchrun``: DDP over the ranks, see :func:`fit`.
    """
    import torch

    from acg2vec_lab.models.joytag.loss import tag_loss
    from acg2vec_lab.models.joytag.model import build_model
    from acg2vec_lab.train import distributed as D

    dist = D.init()  # False when not launched: the single-process path below is unchanged
    torch.manual_seed(seed)
    cfg = dataclasses.replace(cfg, n_tags=int(y.shape[1]))
    model = build_model(cfg)
    dev = D.device() if dist else "cpu"
    if dist and dev != "cpu":
        model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-6)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    total = max(cfg.epochs * steps_per_epoch, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    hist: dict[str, list[float]] = {"loss": [], "grad_norm": [], "seconds": []}
    step = 0
    start_epoch, start_at, order, losses, norms = 0, 0, None, [], []
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        gen.set_state(resume["generator"])
        torch.set_rng_state(resume["rng"])  # stochastic depth draws from the global generator
        if "cuda_rng" in resume and dev != "cpu":
            torch.cuda.set_rng_state(resume["cuda_rng"], dev)
        step, start_epoch, start_at = int(resume["step"]), int(resume["epoch"]), int(resume["next"])
        order = resume["order"]
        losses, norms = resume["losses"].tolist(), resume["norms"].tolist()
        hist = {k: resume[f"hist_{k}"].tolist() for k in hist}
    net, shards = model, None
    if dist:
        from torch.nn.parallel import DistributedDataParallel

        shards = _shard_drop_path(model)
        net = DistributedDataParallel(model, device_ids=[D.local_rank()] if dev != "cpu" else None)
    rank, world = D.rank(), D.world_size()
    log = log if D.is_main() else None
    from acg2vec_lab import progress
    from acg2vec_lab.train.guards import check_finite

    for epoch in progress.bar(range(start_epoch, cfg.epochs), desc="joytag train", unit="epoch"):
        model.train()
        t0 = time.time()
        resuming = resume is not None and epoch == start_epoch
        if not resuming:
            losses, norms = [], []
            order = torch.randperm(len(xt), generator=gen)
        for i in range(start_at if resuming else 0, len(xt), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if not dist:
                xb = xt[idx]
                if torch.rand((), generator=gen) < 0.5:  # the one cheap augmentation: horizontal flip
                    xb = xb.flip(-1)
                loss = tag_loss(model(xb), yt[idx], cfg.loss_type)
                check_finite(loss, "joytag", f"epoch {epoch} step {step}", str(run.folder) if run is not None else "")
                opt.zero_grad()
                loss.backward()
            else:  # this rank's shard of the same global batch, the same flip draw
                flip = torch.rand((), generator=gen) < 0.5
                pos = D.shard_positions(len(idx), rank, world)
                local = idx[torch.from_numpy(pos)] if len(pos) else idx[:1]  # an empty shard computes a 0-weight dummy
                xb, yb = xt[local], yt[local]
                if flip:
                    xb = xb.flip(-1)
                shards.update(n=len(idx), positions=torch.from_numpy(pos).to(dev), empty=not len(pos))
                raw = tag_loss(net(xb.to(dev)), yb.to(dev), cfg.loss_type)
                share = len(pos) / len(idx)
                loss = D.all_reduce_sum((raw.detach() * share).reshape(1))[0]  # the global-batch mean
                check_finite(loss, "joytag", f"epoch {epoch} step {step}", str(run.folder) if run is not None else "")
                opt.zero_grad()
                (raw * (D.shard_weight(len(pos), len(idx), world) if len(pos) else 0.0)).backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)))
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if checkpoint_every and run is not None and step % checkpoint_every == 0 and step < total:
                _save_state(run, model, opt, sched, gen, dev, step, epoch, i + cfg.batch_size, order, losses,
                            norms, hist, total)
        hist["loss"].append(float(np.mean(losses)))
        hist["grad_norm"].append(float(np.mean(norms)))
        hist["seconds"].append(time.time() - t0)
        if log:
            log(f"epoch {epoch + 1}/{cfg.epochs}: loss {hist['loss'][-1]:.4f}, grad norm {hist['grad_norm'][-1]:.3f}")
    if shards is not None:
        shards.restore()
        if dev != "cpu":
            model.to("cpu")
    return model.eval(), hist


class _DropPathShards:
    """Stochastic depth under DDP: every rank draws the GLOBAL batch's mask from the (identically
    seeded) global generator, as the single-process run does, and keeps its own rows of it; so the
    masks, and the generator's stream, are those of the single-process run."""

    def __init__(self, modules: list[Any]) -> None:
        self.modules, self.n, self.positions, self.empty = modules, 0, None, False
        for m in modules:
            m.forward = self._forward(m)

    def update(self, n: int, positions: Any, empty: bool) -> None:
        self.n, self.positions, self.empty = n, positions, empty

    def _forward(self, m: Any) -> Any:
        import torch

        def forward(x: Any) -> Any:
            if not m.training or m.rate <= 0:
                return x
            keep = 1.0 - m.rate
            full = torch.rand((self.n, 1, 1), device=x.device, dtype=x.dtype)  # drawn even when empty: same stream
            if self.empty:
                return x
            return x / keep * torch.floor(keep + full[self.positions])

        return forward

    def restore(self) -> None:
        for m in self.modules:
            m.__dict__.pop("forward", None)


def _shard_drop_path(model: Any) -> _DropPathShards:
    from acg2vec_lab.models.joytag.model import DropPath

    return _DropPathShards([m for m in model.modules() if isinstance(m, DropPath)])


def _save_state(run: Any, model: Any, opt: Any, sched: Any, gen: Any, dev: str, step: int, epoch: int, nxt: int,
                order: Any, losses: list[float], norms: list[float], hist: dict[str, list[float]], total: int) -> None:
    """The mid-run checkpoint (rank 0 only): ``train_state.pt`` then the (incomplete) manifest."""
    import torch

    from acg2vec_lab.train import distributed as D
    from acg2vec_lab.train.run import history_rows, save_torch_state

    if not D.is_main():
        return
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "generator": gen.get_state(), "rng": torch.get_rng_state(),
             "step": step, "epoch": epoch, "next": nxt, "order": order, "losses": f64(losses), "norms": f64(norms),
             **{f"hist_{k}": f64(v) for k, v in hist.items()}}
    if dev != "cpu":
        state["cuda_rng"] = torch.cuda.get_rng_state(dev)
    save_torch_state(state, run.path(STATE_FILE))
    run.save(history_rows(hist), step=len(hist["loss"]), complete=False, opt_step=step, target_steps=total)


def predict_probs(model: Any, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """``(N, n_tags)`` sigmoid probabilities for preprocessed ``(N, 3, S, S)`` inputs."""
    import torch

    from acg2vec_lab.models.precision import input_dtype

    model.eval()
    device = next(model.parameters()).device  # the inputs go where the model is (CPU or a GPU), in its dtype
    dtype = input_dtype(model)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device, dtype)
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
