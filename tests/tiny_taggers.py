"""Tiny random-init taggers shared by the precision tests (``test_onnx_export.py``, ``test_precision.py``):
a DeepDanbooru (Keras, 12 tags), a JoyTag (torch, 7 tags) and a JoyTag folder in the released layout."""
from __future__ import annotations

import json

JOYTAG = dict(n_tags=7, image_size=32, num_blocks=2, patch_size=16, d_model=16, mlp_dim=32, num_heads=2,
              stochdepth_rate=0.0, use_sine=True, loss_type="focal2",
              cnn_stem="conv:c=4;ln;relu;conv:c=8;ln;relu;conv:c=8;ln;relu;conv:c=16;ln;relu;conv:c=16,s=1,k=1,p=0")


def deepdanbooru(n_tags=12):
    import keras

    from acg2vec_lab.models.deepdanbooru.tagger import DeepDanbooruTagger
    from acg2vec_lab.models.deepdanbooru.train import build_tagger_model

    keras.utils.set_random_seed(0)
    return DeepDanbooruTagger(build_tagger_model("tiny", n_tags), [f"t{i}" for i in range(n_tags)],
                              [4 if i == 1 else 0 for i in range(n_tags)], source="test: tiny random init")


def joytag():
    import torch

    from acg2vec_lab.models.joytag.model import JoyTagViT
    from acg2vec_lab.models.joytag.tagger import JoyTagTagger

    torch.manual_seed(0)
    return JoyTagTagger(JoyTagViT(**JOYTAG), [f"j{i}" for i in range(7)], [0] * 7, source="test: tiny random init")


def joytag_folder(src):
    """A JoyTag folder in the released layout: safetensors of a random-init module, config.json, top_tags.txt."""
    import torch
    from safetensors.torch import save_file

    from acg2vec_lab.models.joytag.model import JoyTagViT

    torch.manual_seed(0)
    src.mkdir()
    save_file(JoyTagViT(**JOYTAG).state_dict(), str(src / "model.safetensors"))
    (src / "config.json").write_text(json.dumps({"class": "ViT", **JOYTAG}))
    (src / "top_tags.txt").write_text("\n".join(f"j{i}" for i in range(7)) + "\n")
    return src
