"""The spread over seeds of each quality gate's improvement, and the same training broken on purpose.

For every chosen model and seed this trains the model through the package functions its notebook uses, computes
the notebook's gates with the notebook's own gate function and prints each gate's improvement over its baseline;
then it does the same for the broken runs (seed ``--broken-seed``): ``lr0`` (learning rate 0) and ``shuffled``
(the training labels permuted across the training images). The closing table gives, per gate, the improvement of
every seed, their mean and sd, ``margin_from_spread(k=3)``, the broken runs, the margin the gate uses now, and
whether that margin passes every working seed and fails every broken run. The cpu margins in the gate modules are
these figures:

    .venv/bin/python benchmarks/gate_spread.py --profile smoke --models pix2score --seeds 0 1
    nice -n 10 .venv/bin/python benchmarks/gate_spread.py --profile cpu --models tagger pix2score dclip

Models (notebook: gate function): ``tagger`` (02: ``tagging.metrics.tagger_prior_gates``; the same runs also give
``illust2vec`` of notebook 03: ``deepix.experiment.retrieval_chance_gates`` on the untuned trunk, so asking for
either trains the tagger once), ``pix2score`` (04: ``pix2score.experiment.score_gates``), ``dclip`` (08:
``dclip.pipeline.recall_gates``), ``joytag`` (05: ``joytag.experiment.prior_gates``). A gate the profile does not
use (e.g. the illust2vec gate in smoke) is still measured and shown with margin ``-``.

Everything is written under a private cache, ``$ACG2VEC_CACHE`` (default ``/tmp/gate_spread_cache``; the shared
``~/.cache/acg2vec_lab`` is refused), so seed runs never overwrite the notebooks' checkpoints. A tagger run is
checkpointed there, so a rerun of this script loads the runs that finished. The generated synthetic data set is
copied from the shared cache when it is there (its folder name is the hash of its generator config). Each run
prints one JSON line as it finishes; timings are printed, not asserted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SHARED_CACHE = Path.home() / ".cache" / "acg2vec_lab"
DEFAULT_CACHE = Path("/tmp/gate_spread_cache")
KS = (1, 5, 10)


def _private_cache() -> Path:
    """Point ``ACG2VEC_CACHE`` (and the run folder) at a private cache; refuse the shared one."""
    root = Path(os.environ.setdefault("ACG2VEC_CACHE", str(DEFAULT_CACHE))).expanduser().resolve()
    if root == SHARED_CACHE.resolve():
        raise SystemExit(f"ACG2VEC_CACHE={root} is the shared cache: seed runs would overwrite the notebooks' "
                         f"checkpoints; unset it (default {DEFAULT_CACHE}) or point it at a private folder")
    os.environ.setdefault("ACG2VEC_RUN_DIR", str(root / "run"))
    shared_data = SHARED_CACHE / "data"
    if shared_data.is_dir():
        for src in shared_data.glob("synthetic-danbooru-*"):
            dst = root / "data" / src.name
            if src.is_dir() and not dst.exists():
                shutil.copytree(src, dst.with_name(dst.name + ".partial"), dirs_exist_ok=True)
                dst.with_name(dst.name + ".partial").rename(dst)
    return root


def _permutation(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def _run_label(seed: int, broken: str | None) -> str:
    return f"{broken}-seed{seed}" if broken else f"seed{seed}"


@dataclasses.dataclass(frozen=True)
class Measured:
    """One gate of one run: its improvement over the baseline and the margin the profile uses (None: not gated)."""

    improvement: float
    margin: float | None


def _from_gates(gates: list[Any]) -> dict[str, Measured]:
    return {g.name: Measured(float(g.improvement), float(g.margin)) for g in gates}


class _ShuffledTrainImages:
    """A data set whose training posts show another training post's image: labels shuffled across train images.

    Only :meth:`image_path` of the train split changes; the labels, vocabulary, prior and the val / test
    images are those of the wrapped set.
    """

    def __init__(self, dataset: Any, seed: int) -> None:
        self._dataset = dataset
        train = list(dataset.split("train"))
        perm = _permutation(len(train), seed)
        self._paths = {p.id: dataset.image_path(train[j]) for p, j in zip(train, perm)}
        self._train_ids = {p.id for p in train}

    def image_path(self, post: Any) -> Any:
        return self._paths[post.id] if post.id in self._train_ids else self._dataset.image_path(post)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


# ------------------------------------------------------------------------------ one run per model

def measure_tagger(profile: str, seed: int, broken: str | None) -> dict[str, Measured]:
    """Notebook 02's tagger gates and, on the same trunk, notebook 03's untuned illust2vec retrieval gate."""
    from acg2vec_lab import load_config
    from acg2vec_lab.data import open_dataset
    from acg2vec_lab.models.deepdanbooru.train import evaluate_split, prepare_images, train_tagger
    from acg2vec_lab.models.deepix.experiment import retrieval_chance_gates, retrieval_metrics
    from acg2vec_lab.models.deepix.model import trunk_embeddings, trunk_model
    from acg2vec_lab.paths import cache_dir
    from acg2vec_lab.tagging import metrics as M
    from acg2vec_lab.tagging.thresholds import ThresholdPolicy

    cfg = load_config("deepdanbooru_train", profile)
    if broken == "lr0":
        cfg = dataclasses.replace(cfg, learning_rate=0.0, learning_rates=None)
    dataset = open_dataset(None, profile)
    fed = _ShuffledTrainImages(dataset, seed) if broken == "shuffled" else dataset
    r = train_tagger(profile, cfg=cfg, dataset=fed, seed=seed,
                     checkpoint=cache_dir("gate_spread", "deepdanbooru", f"{profile}-{_run_label(seed, broken)}"))
    cats = np.asarray(r.categories)
    test = evaluate_split(r.model, r.data.test_paths, r.data.y_test, cats)
    prior = M.prior_baseline(r.data.y_train, r.data.y_test, cats, ThresholdPolicy(general=0.35, character=0.85))
    out = _from_gates(M.tagger_prior_gates(profile, test["metrics"], prior))
    if "tagger/test/micro_f1_vs_prior" not in out:  # not gated in smoke; shown all the same
        out["tagger/test/micro_f1_vs_prior"] = Measured(float(test["metrics"]["micro_f1"] - prior["micro_f1"]), None)

    dcfg = load_config("deepix", profile)  # notebook 03: the untuned trunk of this tagger
    test_posts = dataset.split("test")[: dcfg.max_eval]
    size = tuple(r.model.input_shape[1:3])
    x_test = np.stack(prepare_images([dataset.image_path(p) for p in test_posts], size, False))
    emb = trunk_embeddings(trunk_model(r.model, dcfg.cut), x_test, dcfg.l2_normalize)
    row = retrieval_metrics(emb, test_posts, KS)["character"]
    gates = retrieval_chance_gates(profile, {"untuned": row})
    out.update(_from_gates(gates) if gates else {"illust2vec/untuned/character_recall@10_vs_chance":
                                                 Measured(float(row["recall@10"] - row["chance_recall@10"]), None)})
    return out


_PIX2SCORE_DATA: dict[str, Any] = {}


def measure_pix2score(profile: str, seed: int, broken: str | None) -> dict[str, Measured]:
    """Notebook 04's gates: the summed-loss model on the real labels and the learnability control."""
    from acg2vec_lab import load_config
    from acg2vec_lab.data import open_dataset
    from acg2vec_lab.models.pix2score import train as p2s
    from acg2vec_lab.models.pix2score.experiment import CONTROL_EPOCHS, control_labels, prepare_data, score_gates

    cfg = load_config("pix2score", profile)
    if profile not in _PIX2SCORE_DATA:
        _PIX2SCORE_DATA[profile] = prepare_data(open_dataset(None, profile), cfg)
    data = _PIX2SCORE_DATA[profile]
    if broken == "lr0":
        cfg = dataclasses.replace(cfg, lr=0.0)
    perm = _permutation(len(data.x["train"]), seed) if broken == "shuffled" else slice(None)
    y_train = {h: v[perm] for h, v in data.y["train"].items()}
    model, _ = p2s.train(cfg, data.x["train"], y_train, data.x["val"], data.y["val"], seed=seed, pcgrad=False)
    plain = p2s.head_metrics(data.y["test"], p2s.predict(model, data.x["test"]))
    del model
    y_control = {s: control_labels(data.x[s]) for s in ("train", "test")}
    control_model, _ = p2s.train(dataclasses.replace(cfg, epochs=CONTROL_EPOCHS), data.x["train"],
                                 {h: v[perm] for h, v in y_control["train"].items()}, seed=seed)
    control = p2s.head_metrics(y_control["test"], p2s.predict(control_model, data.x["test"]))
    out = _from_gates(score_gates(profile, plain, control))
    for h, m in plain.items():  # the real heads are not gated in smoke; shown all the same
        out.setdefault(f"pix2score/test/{h}/accuracy_vs_majority",
                       Measured(float(m["accuracy"] - m["majority_accuracy"]), None))
    return out


_DCLIP_DATA: dict[str, Any] = {}


def measure_dclip(profile: str, seed: int, broken: str | None) -> dict[str, Measured]:
    """Notebook 08's gates: recall@5 of the trained model vs chance and vs the untrained model of the same seed."""
    from acg2vec_lab import load_config
    from acg2vec_lab.data import synthetic_dataset
    from acg2vec_lab.models.dclip import pipeline as P
    from acg2vec_lab.models.dclip import train as T

    cfg = dataclasses.replace(load_config("dclip", profile), seed=seed)
    if profile not in _DCLIP_DATA:
        _DCLIP_DATA[profile] = P.prepare_data(cfg, synthetic_dataset(profile))
    data = _DCLIP_DATA[profile]
    fed = data
    if broken == "lr0":
        cfg = dataclasses.replace(cfg, lr=0.0)
    elif broken == "shuffled":  # every caption of an image goes to one other image
        perm = _permutation(len(data["train_posts"]), seed)
        fed = {**data, "pair_image": [int(perm[i]) for i in data["pair_image"]]}
    # P.run's trainer without a checkpoint folder: the registry keys its folder by the data set, not by the
    # shuffled pairs, so a seed or broken run here must never load another run's weights
    run = T.train(cfg, fed["train_images"], fed["pair_image"], fed["captions"])
    trained, untrained = P.evaluate_model(run["model"], run["tokenize"], data, cfg), P.random_baseline(cfg, data)
    out = _from_gates(P.recall_gates(profile, trained, untrained))
    # what a learning-rate-0 run of this seed scores vs chance (it stays the untrained model: Adam's step is lr-scaled)
    u = untrained["recall"]
    out["dclip/test/untrained_recall@5_vs_chance"] = Measured(
        (float(u["t2i_recall@5"]) + float(u["i2t_recall@5"])) / 2 - float(u["chance@5"]), None)
    return out


def measure_joytag(profile: str, seed: int, broken: str | None) -> dict[str, Measured]:
    """Notebook 05's gates: JoyTag vs the tag prior on its own vocabulary at the config's threshold."""
    from acg2vec_lab import load_config
    from acg2vec_lab.data import open_dataset
    from acg2vec_lab.models.joytag import train as jt
    from acg2vec_lab.models.joytag.experiment import evaluate_probs, prior_gates
    from acg2vec_lab.tagging import metrics as M

    cfg = load_config("joytag", profile)
    if broken == "lr0":
        cfg = dataclasses.replace(cfg, lr=0.0)
    dataset = open_dataset(None, profile)
    train_posts, test_posts = dataset.split("train"), dataset.split("test")
    if cfg.max_train:
        train_posts = train_posts[: cfg.max_train]
    tags, _ = jt.top_tags(train_posts, cfg.n_tags)
    x_tr, y_tr = jt.load_images(dataset, train_posts, cfg.image_size), jt.tag_targets(train_posts, tags)
    x_te, y_te = jt.load_images(dataset, test_posts, cfg.image_size), jt.tag_targets(test_posts, tags)
    y_fit = y_tr[_permutation(len(y_tr), seed)] if broken == "shuffled" else y_tr
    model, _ = jt.train(cfg, x_tr, y_fit, seed=seed)
    own = evaluate_probs(y_te, jt.predict_probs(model, x_te), cfg.threshold)
    prior = evaluate_probs(y_te, M.prior_probs(y_tr, len(y_te)), cfg.threshold)
    return _from_gates(prior_gates(profile, own, prior))


MEASURE: dict[str, Callable[[str, int, str | None], dict[str, Measured]]] = {
    "tagger": measure_tagger, "pix2score": measure_pix2score, "dclip": measure_dclip, "joytag": measure_joytag}
ALIASES = {"illust2vec": "tagger"}  # measured on the tagger's runs


# ------------------------------------------------------------------------------ the table

def summarise(gate: str, seeds: dict[int, Measured], broken: dict[str, Measured]) -> dict[str, Any]:
    """One table row: the seeds' improvements, mean, sd, margin_from_spread(k=3), broken runs, current margin."""
    from acg2vec_lab.gates import margin_from_spread

    vals = [m.improvement for m in seeds.values()]
    margins = {m.margin for m in [*seeds.values(), *broken.values()]}
    margin = margins.pop() if len(margins) == 1 else None
    row: dict[str, Any] = {"gate": gate, "seeds": {s: round(m.improvement, 4) for s, m in seeds.items()},
                           "mean": round(float(np.mean(vals)), 4) if vals else None,
                           "sd": round(float(np.std(vals, ddof=1)), 4) if len(vals) > 1 else None,
                           "k3": round(margin_from_spread(vals, k=3), 4) if len(vals) > 1 else None,
                           "broken": {b: round(m.improvement, 4) for b, m in broken.items()}, "margin": margin}
    if margin is not None and vals:
        row["passes_seeds"] = all(v >= margin for v in vals)
        row["fails_broken"] = all(m.improvement < margin for m in broken.values()) if broken else None
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    def fmt(v: Any) -> str:
        return "-" if v is None else (f"{v:+.4f}" if isinstance(v, float) else str(v))

    head = f"{'gate':52s} {'seeds':34s} {'mean':>8s} {'sd':>7s} {'k=3':>8s} {'broken':28s} {'margin':>7s} ok_seeds fails_broken"
    print(head)
    for r in rows:
        seeds = " ".join(f"{v:+.3f}" for v in r["seeds"].values())
        broken = " ".join(f"{b}={v:+.3f}" for b, v in r["broken"].items())
        print(f"{r['gate']:52s} {seeds:34s} {fmt(r['mean']):>8s} {fmt(r['sd']):>7s} {fmt(r['k3']):>8s} "
              f"{broken:28s} {fmt(r['margin']):>7s} {fmt(r.get('passes_seeds')):8s} {fmt(r.get('fails_broken'))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--models", nargs="+", default=["tagger", "pix2score", "dclip", "joytag"],
                    choices=[*MEASURE, *ALIASES])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="none: only the broken runs")
    ap.add_argument("--broken", nargs="*", default=["lr0", "shuffled"], choices=["lr0", "shuffled"])
    ap.add_argument("--broken-seed", type=int, default=0, help="the seed of the broken runs")
    args = ap.parse_args()
    cache = _private_cache()
    print(f"cache {cache}, profile {args.profile}", flush=True)

    models = list(dict.fromkeys(ALIASES.get(m, m) for m in args.models))
    runs = [(m, s, None) for m in models for s in args.seeds] + [(m, args.broken_seed, b) for m in models for b in args.broken]
    measured: dict[str, dict[str, dict[Any, Measured]]] = {}  # gate -> "seeds"/"broken" -> run -> Measured
    for model, seed, broken in runs:
        t0 = time.perf_counter()
        result = MEASURE[model](args.profile, seed, broken)
        print(json.dumps({"model": model, "profile": args.profile, "seed": seed, "broken": broken,
                          "seconds": round(time.perf_counter() - t0),
                          "improvement": {g: round(m.improvement, 4) for g, m in result.items()},
                          "margin": {g: m.margin for g, m in result.items()}}), flush=True)
        for gate, m in result.items():
            slot = measured.setdefault(gate, {"seeds": {}, "broken": {}})
            slot["broken" if broken else "seeds"][broken or seed] = m
    rows = [summarise(g, v["seeds"], v["broken"]) for g, v in measured.items()]
    print(f"\nimprovement over the baseline per gate, profile {args.profile} (margin: the gate's margin now):")
    print_table(rows)
    print(json.dumps(rows), flush=True)


if __name__ == "__main__":
    main()
