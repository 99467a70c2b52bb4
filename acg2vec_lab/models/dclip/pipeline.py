"""The DCLIP experiment in a few calls (what the notebook runs): data -> train -> evaluate."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from acg2vec_lab.models.dclip import evaluate as EV
from acg2vec_lab.models.dclip import model as M
from acg2vec_lab.models.dclip import train as T
from acg2vec_lab.models.dclip.config import DclipConfig


def image_size(cfg: DclipConfig) -> int:
    size = M.model_cfg(dataclasses.replace(cfg, text_init="random"))["vision_cfg"]["image_size"]
    return size[0] if isinstance(size, (list, tuple)) else int(size)


def prepare_data(cfg: DclipConfig, dataset: Any) -> dict[str, Any]:
    """Train/test posts (capped by the config), their preprocessed images and the training captions."""
    import open_clip

    train_posts = dataset.split("train")
    test_posts = dataset.split("test")
    if cfg.max_train:
        train_posts = train_posts[:cfg.max_train]
    if cfg.max_eval:
        test_posts = test_posts[:cfg.max_eval]
    tf = open_clip.image_transform(image_size(cfg), is_train=False, mean=M.CLIP_MEAN, std=M.CLIP_STD)
    pair_image, captions = T.caption_pairs(train_posts, cfg.caption_version)
    keep = [i for i, p in enumerate(test_posts) if EV.eval_captions([p], cfg.caption_version)[0].strip()]
    test_posts = [test_posts[i] for i in keep]
    return {"train_posts": train_posts, "test_posts": test_posts,
            "train_images": T.image_tensor(dataset, train_posts, tf),
            "test_images": T.image_tensor(dataset, test_posts, tf),
            "pair_image": pair_image, "captions": captions, "transform": tf}


def run(cfg: DclipConfig, data: dict[str, Any], dataset: Any) -> dict[str, Any]:
    """Train, resume or (when finished) load the run of ``cfg`` on ``dataset`` (the registry's run:
    ``models.get("dclip").run`` keys the same folder).

    ``data`` is :func:`prepare_data` of ``cfg`` and ``dataset``. The run's folder is keyed by (config, data
    fingerprint of ``dataset``, seed, code version), so every variant a notebook trains (the e5-initialised
    text tower, a shorter random-init run) is a config of its own with a folder of its own, and a changed
    config never resumes a stale folder. ``dataset=None``: train in memory, nothing saved (tests).
    Returns :func:`~acg2vec_lab.models.dclip.train.train`'s dict.
    """
    from acg2vec_lab.train.run import Run, dataset_fingerprint

    keyed = None if dataset is None else Run.create("dclip", cfg, dataset_fingerprint(dataset))
    return T.train(cfg, data["train_images"], data["pair_image"], data["captions"], run=keyed)


def evaluate_model(model: Any, tokenize: Any, data: dict[str, Any], cfg: DclipConfig) -> dict[str, Any]:
    """Cross-modal recall on the test split and zero-shot tags vs the frequency baseline."""
    img = M.encode_images(model, data["test_images"])
    txt = M.encode_texts(model, tokenize, EV.eval_captions(data["test_posts"], cfg.caption_version))
    tags, freq, y = EV.zero_shot_labels(data["train_posts"], data["test_posts"], cfg.zero_shot_min_count)
    tag_vecs = M.encode_texts(model, tokenize, EV.tag_prompts(tags))
    return {"recall": EV.cross_modal_recall(img, txt), "zero_shot": EV.zero_shot(img, tag_vecs, y, freq),
            "image_vectors": img, "text_vectors": txt}


def random_baseline(cfg: DclipConfig, data: dict[str, Any]) -> dict[str, Any]:
    """The same evaluation on an untrained model of the same config (what training adds)."""
    import torch

    torch.manual_seed(cfg.seed)
    model = M.build_model(cfg).eval()
    return evaluate_model(model, M.Tokenize(cfg), data, cfg)


def flat(result: dict[str, Any]) -> dict[str, float]:
    out = {k: v for k, v in result["recall"].items()}
    out.update(result["zero_shot"])
    return out


def vectors_ok(result: dict[str, Any]) -> bool:
    return bool(np.isfinite(result["image_vectors"]).all() and np.isfinite(result["text_vectors"]).all())


def query_relevance(posts: Any, query_tags: dict[str, list[str]]) -> np.ndarray:
    """``(n_queries, n_posts)`` bool: the post carries every tag of the query (tags in Danbooru form)."""
    have = [{t.name for t in p.tags} for p in posts]
    return np.array([[set(tags) <= h for h in have] for tags in query_tags.values()], dtype=bool)


# Smoke (configs/dclip/tiny.json, 40 steps, 23 SYNTHETIC test posts, chance recall@5 = 5/23 = 0.217), seeds 0-2
# of cfg.seed (initialisation and batch order): recall@5 averaged over text -> image and image -> text, of the
# trained model and of the untrained model of the same seed. Learning rate 0 leaves the untrained model as it is
# (Adam's step is lr-scaled and the weight decay is L2 inside it), so its gain over untrained is exactly 0.
SMOKE_RECALL5 = {"trained": [0.543, 0.413, 0.304], "untrained": [0.217, 0.217, 0.261]}
SMOKE_CHANCE5 = 0.217


def _recall_margins() -> dict[str, dict[str, tuple[float, str]]]:
    from acg2vec_lab.gates import margin_from_spread

    tr, un = SMOKE_RECALL5["trained"], SMOKE_RECALL5["untrained"]
    gain = [round(a - b, 3) for a, b in zip(tr, un)]
    over_chance = [round(a - SMOKE_CHANCE5, 3) for a in tr]
    untrained_over_chance = [round(b - SMOKE_CHANCE5, 3) for b in un]
    k3 = margin_from_spread(gain, k=3)
    m_chance = round((min(over_chance) + max(untrained_over_chance)) / 2, 3)
    smoke = {
        "untrained": (0.02, f"smoke seeds 0-2: gain over the untrained model of the same seed {gain} (one of the 23 test "
                            f"posts is 0.043); margin_from_spread(k=3) gives {k3:.3f} (the spread is as wide as the mean), so the margin is 0.02, just under one post: a run "
                            "with learning rate 0 gains exactly 0 and fails, the weakest working seed passes"),
        "chance": (m_chance, f"smoke seeds 0-2: trained minus chance {over_chance}, untrained (= lr 0) minus chance "
                             f"{untrained_over_chance}; the margin is the midpoint between the weakest trained seed and "
                             "the luckiest untrained one"),
    }
    cpu = {k: (m, why + "; cpu uses the smoke margin (not measured over seeds in cpu: 300 steps of a larger "
                        "replica should clear it)") for k, (m, why) in smoke.items()}
    return {"smoke": smoke, "cpu": cpu, "full": cpu}


def recall_gates(profile: str | None, trained: dict[str, Any], untrained: dict[str, Any],
                 prefix: str = "dclip/test") -> list[Any]:
    """DCLIP recall@5 (mean of text -> image and image -> text) vs chance and vs the untrained model.

    ``trained`` / ``untrained``: results of :func:`evaluate_model` / :func:`random_baseline` on the same
    test split. Both directions are averaged because with a few dozen test posts one direction alone moves
    in steps of one post (1 / N); margins per profile from the smoke seeds above.
    """
    from acg2vec_lab.config import current_profile
    from acg2vec_lab.gates import Gate

    margins = _recall_margins()
    m = margins.get(current_profile(profile), margins["cpu"])
    r, u = trained["recall"], untrained["recall"]
    both = (float(r["t2i_recall@5"]) + float(r["i2t_recall@5"])) / 2
    both_u = (float(u["t2i_recall@5"]) + float(u["i2t_recall@5"])) / 2
    return [Gate(f"{prefix}/recall@5_vs_chance", both, float(r["chance@5"]), m["chance"][0], why=m["chance"][1]),
            Gate(f"{prefix}/recall@5_vs_untrained", both, both_u, m["untrained"][0], why=m["untrained"][1])]
