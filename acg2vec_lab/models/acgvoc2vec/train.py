"""acgvoc2vec fine-tuning: sentence-transformers' MultipleNegativesRankingLoss on anime text pairs.

The original (``acgvoc2vec/train.py``): ``model.fit`` with MNRL (in-batch negatives, scale 20,
cosine), batch 96, 20 epochs, warm-up 10 % of all steps, AMP, the library's default AdamW lr 2e-5 /
weight decay 0.01 with a linear warm-up/decay schedule, a checkpoint every 6000 steps (keep 10).
This loop does the same steps by hand so that it can stop after a step budget, checkpoint the
optimiser and scheduler, and resume exactly. Batches never hold two pairs of the same anime (those
would be false negatives for MNRL, like sentence-transformers' no-duplicates sampler).
"""
from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acg2vec_lab.io import write_json
from acg2vec_lab.models.acgvoc2vec.config import AcgVoc2VecConfig
from acg2vec_lab.train.run import Run, fingerprint, load_torch_state, manifest_of, save_torch_state

STATE = "trainer_state.pt"


def load_base(cfg: AcgVoc2VecConfig, device: str = "cpu") -> Any:
    """The base model of ``cfg`` before fine-tuning."""
    from sentence_transformers import SentenceTransformer

    from acg2vec_lab.models.acgvoc2vec import architecture, e5

    base = str(e5.ensure_e5()) if cfg.base == "e5-small" else cfg.base
    if cfg.architecture == "original":
        model = architecture.build_original(base, max_seq_length=cfg.max_seq_length, device=device)
    elif cfg.base == "e5-small":
        model = SentenceTransformer(base, device=device, local_files_only=True)
    else:
        model = architecture.build_e5_style(base, max_seq_length=cfg.max_seq_length, device=device)
    model.max_seq_length = cfg.max_seq_length
    return model


def prefix_scheme(cfg: AcgVoc2VecConfig) -> str:
    """The prefix scheme of ``cfg`` (:mod:`~acg2vec_lab.models.acgvoc2vec.prefixes`): its ``prefixes`` for the
    e5 base, ``"none"`` for any other base (which was not trained with prefixes)."""
    return cfg.prefixes if cfg.base == "e5-small" else "none"


def encoders(model: Any, cfg: AcgVoc2VecConfig) -> Any:
    """The evaluation encoders of ``model`` under ``cfg``'s prefix scheme."""
    from acg2vec_lab.models.acgvoc2vec.evaluate import Encoders

    return Encoders(model, prefix_scheme(cfg), cfg.eval_batch_size)


def sample_pairs(pairs: pd.DataFrame, cfg: AcgVoc2VecConfig, split: str = "train") -> pd.DataFrame:
    """The training sample: pairs of ``split`` of the configured kinds, mixed by ``kind_mix``
    (all pairs when ``max_train`` is None), shuffled with the config's seed."""
    from acg2vec_lab.data.text_pairs import heldout_aliases

    df = pairs[(pairs["split"] == split) & pairs["kind"].isin(cfg.kinds)]
    df = df[(df["text_a"].str.strip() != "") & (df["text_b"].str.strip() != "")]
    if "title_alias" in set(pairs["kind"]):  # held-out aliases stay out of training (the alias -> work demo)
        held = set(heldout_aliases(pairs)["text_b"].str.casefold())
        df = df[~df["text_b"].str.casefold().isin(held)]
    rng = np.random.default_rng(cfg.seed)
    if cfg.max_train:
        parts = []
        for kind, share in zip(cfg.kinds, cfg.kind_mix):
            sub = df[df["kind"] == kind]
            if len(sub) == 0:
                continue
            n = min(len(sub), int(round(cfg.max_train * share)))
            parts.append(sub.iloc[rng.choice(len(sub), n, replace=False)])
        df = pd.concat(parts)
    return df.iloc[rng.permutation(len(df))].reset_index(drop=True)


def batches_without_duplicates(anime_ids: Sequence[int], batch_size: int, seed: int) -> list[np.ndarray]:
    """One epoch of batches (indices), no anime twice in a batch; leftovers that cannot fill a
    batch wait for the next epoch (as with the no-duplicates sampler)."""
    order = np.random.default_rng(seed).permutation(len(anime_ids))
    out, cur, seen = [], [], set()
    pending: list[int] = []
    for i in order:
        a = anime_ids[i]
        if a in seen:
            pending.append(i)
            continue
        cur.append(i)
        seen.add(a)
        if len(cur) == batch_size:
            out.append(np.array(cur))
            cur, seen = [], set()
            still = []
            for j in pending:  # retry held-back pairs in the new batch
                if anime_ids[j] not in seen and len(cur) < batch_size:
                    cur.append(j)
                    seen.add(anime_ids[j])
                else:
                    still.append(j)
            pending = still
    return out


def _optimizer(model: Any, cfg: AcgVoc2VecConfig) -> Any:
    import torch

    frozen = tuple(f"layer.{i}." for i in range(cfg.freeze_layers))
    for name, p in model.named_parameters():
        if (cfg.freeze_word_embeddings and "word_embeddings" in name) or \
                (cfg.freeze_layers and ("embeddings." in name or any(f in name for f in frozen))):
            p.requires_grad_(False)
    no_decay = ("bias", "LayerNorm.bias", "LayerNorm.weight")  # as sentence-transformers' fit
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in params if not any(nd in n for nd in no_decay)], "weight_decay": cfg.weight_decay},
              {"params": [p for n, p in params if any(nd in n for nd in no_decay)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _features(model: Any, texts: list[str], device: str) -> dict[str, Any]:
    feats = model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in feats.items()}


def total_steps(cfg: AcgVoc2VecConfig, n_batches_per_epoch: int) -> int:
    steps = cfg.epochs * n_batches_per_epoch
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def _save(run: Run, model: Any, opt: Any, sched: Any, step: int, history: list[float],
          cfg: AcgVoc2VecConfig, keep: int, complete: bool) -> Path:
    """``latest`` (model + trainer state) and ``step-N`` snapshots (model only) in the run folder,
    atomically (folder renames), then the run manifest."""
    ckpt_dir = run.folder
    tmp = ckpt_dir / f".latest.{step}.{uuid.uuid4().hex[:8]}.part"  # unique: two writers never share it
    model.save(str(tmp))
    save_torch_state({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp / STATE)
    write_json(tmp / "acg2vec_train.json", {"step": step, "run_id": run.id,
                                            "loss_last": history[-1] if history else None})
    latest = ckpt_dir / "latest"
    old = ckpt_dir / ".latest.old"
    if latest.exists():
        if old.exists():
            shutil.rmtree(old)
        latest.rename(old)
    tmp.rename(latest)
    if old.exists():
        shutil.rmtree(old)
    # step snapshots (model only): keep the newest ``keep``
    if keep > 1:
        snap = ckpt_dir / f"step-{step}"
        if not snap.exists():
            shutil.copytree(latest, snap, ignore=shutil.ignore_patterns(STATE))
        snaps = sorted(ckpt_dir.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
        for p in snaps[:-(keep - 1)]:
            shutil.rmtree(p)
    run.save([{"step": i + 1, "loss": v} for i, v in enumerate(history)], step, complete=complete)
    return latest


def data_fingerprint(pairs: pd.DataFrame) -> str:
    """What a run was trained on: the sampled pairs (anime id and both texts, in order)."""
    return fingerprint(pairs[["anime_id", "text_a", "text_b"]])


def train(cfg: AcgVoc2VecConfig, pairs: pd.DataFrame, ckpt_dir: str | Path | None = None, resume: bool = True,
          device: str = "cpu", log_every: int = 0, steps: int | None = None, run: Run | None = None) -> dict[str, Any]:
    """Fine-tune with MNRL on ``pairs`` (columns ``anime_id, text_a, text_b``; already sampled).

    Checkpoints go to ``<run folder>/latest`` every ``cfg.checkpoint_every`` steps and at the end (the
    run is ``run``, or the one in ``ckpt_dir``). A folder holding the same run (config, pairs, seed)
    continues (model, optimiser, schedule, batch order); one holding another raises
    :class:`~acg2vec_lab.train.run.RunMismatch`; ``resume=False`` empties it and starts over on
    purpose. ``steps`` stops early at that total (for tests and resumable budgets).
    Returns ``{"model", "history", "step", "total_steps", "resumed_from", "seconds", "run"}``.
    """
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import get_linear_schedule_with_warmup

    if run is None and ckpt_dir is not None:
        run = Run.create("acgvoc2vec", cfg, data_fingerprint(pairs), folder=ckpt_dir)
    if run is not None and not resume:
        run.reset()
    seed = run.seed if run is not None else cfg.seed
    torch.manual_seed(seed)
    latest = run.path("latest") if run is not None else None
    manifest = run.resume_state() if run is not None else None
    state = load_torch_state(latest / STATE) if manifest is not None and (latest / STATE).is_file() else None
    if state is not None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(latest), device=device, local_files_only=True)
        model.max_seq_length = cfg.max_seq_length
    else:
        model = load_base(cfg, device)
    loss_fn = MultipleNegativesRankingLoss(model, scale=cfg.scale)
    anime = pairs["anime_id"].to_numpy()
    from acg2vec_lab.models.acgvoc2vec.prefixes import sides

    scheme = prefix_scheme(cfg)
    kinds = pairs["kind"] if "kind" in pairs else pd.Series(["title_title"] * len(pairs))
    side = {k: sides(scheme, k) for k in set(kinds)}
    text_a = [side[k][0] + t for k, t in zip(kinds, pairs["text_a"])]
    text_b = [side[k][1] + t for k, t in zip(kinds, pairs["text_b"])]
    bs = min(cfg.batch_size, len(pairs))
    per_epoch = len(batches_without_duplicates(anime, bs, seed))
    if per_epoch == 0:
        raise ValueError(f"{len(pairs)} pairs cannot fill one batch of {bs} distinct anime")
    n_total = total_steps(cfg, per_epoch)
    opt = _optimizer(model, cfg)
    sched = get_linear_schedule_with_warmup(opt, int(math.ceil(cfg.warmup_ratio * n_total)), n_total)
    step, history, resumed_from = 0, [], None
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, resumed_from = int(state["step"]), int(state["step"])
        history = [float(r["loss"]) for r in manifest["history"]][:step]
    stop = min(n_total, steps) if steps else n_total
    use_amp = cfg.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    model.train()
    t0 = time.perf_counter()
    epoch_batches: dict[int, list[np.ndarray]] = {}
    from acg2vec_lab import progress
    from acg2vec_lab.train.guards import check_finite

    bar = progress.bar(total=stop, initial=step, desc="acgvoc2vec train", unit="step")
    while step < stop:
        epoch, b = divmod(step, per_epoch)
        if epoch not in epoch_batches:
            epoch_batches = {epoch: batches_without_duplicates(anime, bs, seed + epoch)}
        sel = epoch_batches[epoch][b % len(epoch_batches[epoch])]
        fa = _features(model, [text_a[i] for i in sel], device)
        fb = _features(model, [text_b[i] for i in sel], device)
        with torch.autocast("cuda", enabled=use_amp):
            loss = loss_fn([fa, fb], None)
        check_finite(loss, "acgvoc2vec", f"epoch {epoch} step {step}", str(run.folder) if run is not None else "")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        sched.step()
        step += 1
        history.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}", refresh=False)
        if log_every and step % log_every == 0:
            print(f"step {step}/{stop} loss {history[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
        if run is not None and (step % cfg.checkpoint_every == 0 or step == stop):
            _save(run, model, opt, sched, step, history, cfg, cfg.keep_checkpoints, complete=step >= n_total)
    bar.close()
    model.eval()
    return {"model": model, "history": history, "step": step, "total_steps": n_total,
            "resumed_from": resumed_from, "seconds": time.perf_counter() - t0, "run": run}


def trained_dir(variant: str) -> Path:
    """The folder a trained variant's ``latest`` checkpoint lives in."""
    from acg2vec_lab.paths import checkpoint_dir

    return checkpoint_dir("acgvoc2vec", variant) / "latest"


def load_trained(path: str | Path, device: str = "cpu") -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device=device, local_files_only=True)


def train_info(path: str | Path) -> dict[str, Any] | None:
    """The manifest of the run whose ``latest`` folder is ``path`` (``step``, ``config``, ``history``...), or None."""
    return manifest_of(Path(path).parent)
