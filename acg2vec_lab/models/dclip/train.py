"""DCLIP training: symmetric contrastive loss on (image, tag caption) pairs, Adam, checkpoints, resume.

The original loop (``DCLIP/finetune_clip.py``): loss = (CE(logits_per_image, arange) +
CE(logits_per_text, arange)) / 2 with CLIP's learnable logit scale; Adam lr 2e-6, betas (0.9, 0.98),
eps 1e-6, weight decay 1e-4; checkpoints ``{epoch, model_state_dict, optimizer_state_dict, loss}``.
Here the checkpoint lives in a :class:`~acg2vec_lab.train.run.Run` folder: ``last.pt`` holds the
tensors only (model, optimiser, step; loaded with ``weights_only=True``) and the run manifest holds
the config, data fingerprint, seed and loss history, so a run resumes exactly.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.models.dclip import model as M
from acg2vec_lab.models.dclip.captions import build_captions
from acg2vec_lab.models.dclip.config import DclipConfig
from acg2vec_lab.train.run import Run, fingerprint, load_torch_state, save_torch_state

CHECKPOINT = "last.pt"


def clip_loss(logits_per_image: Any, logits_per_text: Any) -> Any:
    """Symmetric InfoNCE: the i-th image matches the i-th text."""
    import torch
    import torch.nn.functional as F

    target = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_text, target)) / 2


def caption_pairs(posts: Sequence[Any], version: str = "code") -> tuple[list[int], list[str]]:
    """(post index, caption) for every caption of every post (two for posts with > 20 general tags);
    posts whose caption is empty are skipped."""
    idx, caps = [], []
    for i, post in enumerate(posts):
        for cap in build_captions(post.tags, version):
            if cap.strip():
                idx.append(i)
                caps.append(cap)
    return idx, caps


def image_tensor(dataset: Any, posts: Sequence[Any], transform: Any) -> Any:
    """All images of ``posts`` preprocessed with CLIP's transform, stacked (N, 3, S, S)."""
    import torch

    from acg2vec_lab.data import load_image

    return torch.stack([transform(load_image(dataset.image_path(p))) for p in posts])


def make_optimizer(model: Any, cfg: DclipConfig) -> Any:
    """Adam with the configured settings; a pretrained (e5) text tower gets ``pretrained_text_lr``."""
    import torch

    text_params, other = [], []
    pretrained_text = cfg.text_init == "e5"
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (text_params if pretrained_text and name.startswith("text.transformer.") else other).append(p)
    groups = [{"params": other, "lr": cfg.lr}]
    if text_params:
        groups.append({"params": text_params, "lr": cfg.pretrained_text_lr})
    return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def save_checkpoint(path: Path, model: Any, opt: Any, cfg: DclipConfig, step: int, epoch: int,
                    history: list[float]) -> Path:
    """``last.pt``: tensors and numbers only (the config lives in the run manifest). The loss history
    is kept here too: a run killed after ``last.pt`` and before the manifest resumes with all of it."""
    import torch

    return save_torch_state({"epoch": epoch, "step": step, "model_state_dict": model.state_dict(),
                             "optimizer_state_dict": opt.state_dict(),
                             "loss": history[-1] if history else float("nan"),
                             "loss_history": torch.tensor(history, dtype=torch.float64)}, path)


def data_fingerprint(images: Any, pair_image: Sequence[int], captions: Sequence[str]) -> str:
    """What a DCLIP run was trained on: the image tensor, the caption -> image index and the captions."""
    return fingerprint(images, list(map(int, pair_image)), list(captions))


def train(cfg: DclipConfig, images: Any, pair_image: Sequence[int], captions: Sequence[str],
          ckpt_dir: str | Path | None = None, resume: bool = True, steps: int | None = None,
          log_every: int = 0, run: Run | None = None) -> dict[str, Any]:
    """Train (or continue training) a DCLIP model on preprocessed ``images`` and their captions.

    Args:
        images: (N, 3, S, S) float tensor; ``pair_image[j]`` is the image of ``captions[j]``.
        ckpt_dir: a folder for the run (default: none unless ``run`` is given); it holds ``last.pt``,
            written every ``cfg.checkpoint_every`` steps and at the end, and the run manifest. A
            folder holding the same run resumes (model, optimiser, step, history); one holding another
            config or data raises :class:`~acg2vec_lab.train.run.RunMismatch`; ``resume=False``
            empties it and starts over on purpose.
        steps: total optimiser steps to reach (default ``cfg.steps``).
        run: the :class:`~acg2vec_lab.train.run.Run` to write (instead of ``ckpt_dir``).
    Returns ``{"model", "tokenize", "history", "step", "resumed_from", "seconds", "run"}``.
    """
    import torch

    steps = cfg.steps if steps is None else steps
    if run is None and ckpt_dir is not None:
        run = Run.create("dclip", cfg, data_fingerprint(images, pair_image, captions), folder=ckpt_dir)
    if run is not None and not resume:
        run.reset()
    seed = run.seed if run is not None else cfg.seed
    torch.manual_seed(seed)
    model = M.build_model(cfg)
    tokenize = M.Tokenize(cfg)
    opt = make_optimizer(model, cfg)
    history: list[float] = []
    step, resumed_from = 0, None
    path = run.path(CHECKPOINT) if run is not None else None
    state = run.resume_state() if run is not None else None
    if state is not None and path.is_file():
        ck = load_torch_state(path)
        model.load_state_dict(ck["model_state_dict"])
        opt.load_state_dict(ck["optimizer_state_dict"])
        step, resumed_from = int(ck["step"]), int(ck["step"])
        if "loss_history" in ck:  # the checkpoint's own (newer than the manifest's when killed in between)
            history = [float(v) for v in ck["loss_history"].tolist()][:step]
        else:
            history = [float(r["loss"]) for r in state["history"]][:step]
    pair_image = np.asarray(pair_image)
    tokens = tokenize(list(captions))
    n = len(pair_image)
    bs = min(cfg.batch_size, n)
    per_epoch = max(1, n // bs)
    use_amp = cfg.amp and torch.cuda.is_available()
    t0 = time.perf_counter()
    model.train()
    from acg2vec_lab import progress
    from acg2vec_lab.train.guards import check_finite

    bar = progress.bar(total=steps, initial=step, desc="dclip train", unit="step")
    while step < steps:
        epoch = step // per_epoch
        order = np.random.default_rng(seed + epoch).permutation(n)
        b = step % per_epoch
        sel = order[b * bs:(b + 1) * bs]
        with torch.autocast("cuda", enabled=use_amp):
            img_f = model.encode_image(images[pair_image[sel]], normalize=True)
            txt_f = model.encode_text(tokens[sel], normalize=True)
            scale = model.logit_scale.exp()
            logits = scale * img_f @ txt_f.T
            loss = clip_loss(logits, logits.T)
        check_finite(loss, "dclip", f"step {step}", str(run.folder) if run is not None else "")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():  # CLIP clamps the temperature at 100
            model.logit_scale.clamp_(0, math.log(100))
        step += 1
        history.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}", refresh=False)
        if log_every and step % log_every == 0:
            print(f"step {step}/{steps} loss {history[-1]:.4f}")
        if run is not None and (step % cfg.checkpoint_every == 0 or step == steps):
            save_checkpoint(path, model, opt, cfg, step, epoch, history)
            run.save([{"step": i + 1, "loss": v} for i, v in enumerate(history)], step,
                     complete=step >= cfg.steps, target_steps=steps)
    bar.close()
    if run is not None and resumed_from is not None and resumed_from == step:
        # resumed at the last checkpoint with nothing left to do: a kill between last.pt and the manifest
        # left the manifest one checkpoint behind; bring it up to the weights on disk
        run.save([{"step": i + 1, "loss": v} for i, v in enumerate(history)], step,
                 complete=step >= cfg.steps, target_steps=steps)
    model.eval()
    return {"model": model, "tokenize": tokenize, "history": history, "step": step,
            "resumed_from": resumed_from, "seconds": time.perf_counter() - t0, "run": run}


def load_trained(cfg: DclipConfig, ckpt_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenize) from ``ckpt_dir/last.pt`` (through the general checkpoint loader)."""
    model = M.build_model(cfg)
    M.load_checkpoint(model, Path(ckpt_dir) / CHECKPOINT)
    model.eval()
    return model, M.Tokenize(cfg)
