"""DCLIP model: ViT-L/14 dims, the real checkpoint formats, the contrastive loss, training and resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from acg2vec_lab.models.dclip import model as M
from acg2vec_lab.models.dclip import train as T
from acg2vec_lab.models.dclip.config import DclipConfig

SMALL = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


def test_vit_l_14_config_dims():
    d = M.describe(DclipConfig(model_name="ViT-L-14"))
    assert d["embed_dim"] == 768 and d["vision_width"] == 1024 and d["vision_layers"] == 24
    assert d["text_width"] == 768 and d["text_layers"] == 12 and d["context_length"] == 77
    assert d["vocab"] == 49408 and tuple(d["image_size"]) == (224, 224) and tuple(d["grid"]) == (16, 16)
    assert d["params"] == 427_616_513  # CLIP ViT-L/14


def _reference_state_dict():
    import open_clip

    torch.manual_seed(123)
    ref = open_clip.CLIP(**SMALL, quick_gelu=True)  # built by open_clip itself, random weights
    return ref, ref.state_dict()


@pytest.mark.parametrize("fmt", ["openai_fp16", "dclip_checkpoint", "dataparallel", "safetensors"])
def test_loader_accepts_real_checkpoint_formats(tmp_path, fmt):
    ref, sd = _reference_state_dict()
    if fmt == "openai_fp16":  # OpenAI releases: fp16 tensors + three metadata entries
        obj = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
        obj.update(input_resolution=torch.tensor(32), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
        path = tmp_path / "ViT-x.pt"
        torch.save(obj, path)
    elif fmt == "dclip_checkpoint":
        path = tmp_path / "dclip_15_pixiv0.pt"
        torch.save({"epoch": 15, "model_state_dict": sd, "optimizer_state_dict": {}, "loss": 1.0}, path)
    elif fmt == "dataparallel":
        path = tmp_path / "open_clip.pt"
        torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, path)
    else:
        from safetensors.torch import save_file

        path = tmp_path / "open_clip_model.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = M.build_model(DclipConfig(model_cfg=SMALL))
    result = M.load_checkpoint(model, path)
    assert not result.missing_keys and not result.unexpected_keys
    if fmt == "openai_fp16":  # the file holds fp16: the loaded weights must be exactly those, widened
        sd = {k: v.half().float() if v.is_floating_point() else v for k, v in sd.items()}
        ref.load_state_dict(sd)
    for k, v in sd.items():
        assert torch.equal(model.state_dict()[k].float(), v.float()), k
    img = torch.randn(2, 3, 32, 32)
    ref.eval(), model.eval()
    with torch.no_grad():
        a, b = ref.encode_image(img, normalize=True), model.encode_image(img, normalize=True)
    assert torch.allclose(a, b, atol=1e-6)


def test_loader_rejects_a_mismatched_architecture(tmp_path):
    _, sd = _reference_state_dict()
    path = tmp_path / "x.pt"
    torch.save(sd, path)
    other = dict(SMALL, embed_dim=48)
    with pytest.raises(RuntimeError):
        M.load_checkpoint(M.build_model(DclipConfig(model_cfg=other)), path)


def test_clip_loss_is_symmetric_and_minimal_on_the_diagonal():
    eye = torch.eye(4) * 50
    assert float(T.clip_loss(eye, eye.T)) < 1e-6
    rnd = torch.randn(4, 4)
    assert torch.isclose(T.clip_loss(rnd, rnd.T), T.clip_loss(rnd.T, rnd))
    assert float(T.clip_loss(torch.zeros(4, 4), torch.zeros(4, 4))) == pytest.approx(np.log(4), rel=1e-5)


def _toy_pairs():
    colours = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "white": (1, 1, 1)}
    imgs, caps = [], []
    g = torch.Generator().manual_seed(0)
    for i in range(16):
        name = list(colours)[i % 4]
        imgs.append(torch.tensor(colours[name]).view(3, 1, 1).expand(3, 32, 32) + 0.1 * torch.randn(3, 32, 32, generator=g))
        caps.append(f"{name} background")
    return torch.stack(imgs).float(), list(range(16)), caps


def test_training_reduces_loss_and_resume_is_exact(tmp_path):
    images, idx, caps = _toy_pairs()
    cfg = DclipConfig(model_cfg=SMALL, lr=1e-3, batch_size=8, steps=6, checkpoint_every=2)
    straight = T.train(cfg, images, idx, caps, ckpt_dir=tmp_path / "a")
    part = T.train(cfg, images, idx, caps, ckpt_dir=tmp_path / "b", steps=4)
    resumed = T.train(cfg, images, idx, caps, ckpt_dir=tmp_path / "b")
    assert part["step"] == 4 and resumed["resumed_from"] == 4 and resumed["step"] == 6
    assert resumed["history"] == pytest.approx(straight["history"], abs=1e-5)
    for (k, a), b in zip(straight["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), k
    longer = T.train(DclipConfig(model_cfg=SMALL, lr=1e-3, batch_size=8, steps=40, checkpoint_every=100),
                     images, idx, caps)
    assert np.mean(longer["history"][-5:]) < np.mean(longer["history"][:5]) - 0.3
    # the trained checkpoint reloads through the general loader
    model, tok = T.load_trained(cfg, tmp_path / "a")
    assert torch.allclose(model.encode_text(tok(["red background"])),
                          straight["model"].encode_text(straight["tokenize"](["red background"])), atol=1e-5)


def test_checkpoint_of_another_config_is_not_resumed(tmp_path):
    images, idx, caps = _toy_pairs()
    T.train(DclipConfig(model_cfg=SMALL, lr=1e-3, batch_size=8, steps=1), images, idx, caps, ckpt_dir=tmp_path)
    with pytest.raises(ValueError, match="another config"):
        T.train(DclipConfig(model_cfg=SMALL, lr=2e-3, batch_size=8, steps=2), images, idx, caps, ckpt_dir=tmp_path)
