"""The DCLIP experiment in a few calls (what the notebook runs): data -> train -> evaluate."""
from __future__ import annotations

import dataclasses
from pathlib import Path
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
    if cfg.train_limit:
        train_posts = train_posts[:cfg.train_limit]
    if cfg.eval_limit:
        test_posts = test_posts[:cfg.eval_limit]
    tf = open_clip.image_transform(image_size(cfg), is_train=False, mean=M.CLIP_MEAN, std=M.CLIP_STD)
    pair_image, captions = T.caption_pairs(train_posts, cfg.caption_version)
    keep = [i for i, p in enumerate(test_posts) if EV.eval_captions([p], cfg.caption_version)[0].strip()]
    test_posts = [test_posts[i] for i in keep]
    return {"train_posts": train_posts, "test_posts": test_posts,
            "train_images": T.image_tensor(dataset, train_posts, tf),
            "test_images": T.image_tensor(dataset, test_posts, tf),
            "pair_image": pair_image, "captions": captions, "transform": tf}


def run(cfg: DclipConfig, data: dict[str, Any], ckpt_dir: str | Path | None, steps: int | None = None,
        resume: bool = True) -> dict[str, Any]:
    return T.train(cfg, data["train_images"], data["pair_image"], data["captions"], ckpt_dir=ckpt_dir,
                   resume=resume, steps=steps)


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
