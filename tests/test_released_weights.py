"""``--weights`` on ``embed-image``, ``embed-text`` and ``search build`` / ``query``: released files in.

The files are written by independent code: the WD14 network with ``onnx.helper`` (the builders of
``test_wd14.py``), the sentence-transformers folder with sentence-transformers' own ``save`` of a tiny
randomly initialised BERT built with ``transformers``. The vectors are checked against a numpy
re-implementation (WD14) or the library itself loading the folder (sentence-transformers).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import test_wd14 as W
from PIL import Image


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "acg2vec_lab.cli", *argv, "--no-progress"], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def wd14(tmp_path_factory):
    d = tmp_path_factory.mktemp("wd14") / "wd-tiny"
    d.mkdir()
    weights = W.build_model(d / "model.onnx")
    W.write_selected_tags(d / "selected_tags.csv")
    return d, weights


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    for i in range(4):
        W.make_image(28 + 5 * i, 30, 40 + i).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_embed_image_with_wd14_weights_gives_the_pooled_features(wd14, images):
    d, weights = wd14
    files = sorted(str(p) for p in images.glob("[0-9].png"))
    res = _cli("embed-image", "--weights", str(d), *files, str(images / "broken.png"))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["model"] == "released_wd14" and out["weights"].startswith(f"released: {d}")
    assert out["device"]["framework"] == "onnxruntime" and out["dim"] == W.C_OUT
    assert [s["path"] for s in out["skipped"]] == [str(images / "broken.png")]
    for row, f in zip(out["vectors"], files):
        with Image.open(f) as im:
            want = W.numpy_forward(W.hand_preprocess(im.convert("RGB"))[None], weights)[1][0]
        assert np.allclose(row["vector"], want, atol=1e-4), f


def test_search_build_and_query_with_wd14_weights(wd14, images, tmp_path):
    d, _ = wd14
    index = tmp_path / "idx"
    res = _cli("search", "build", "--images", str(images), "--weights", str(d), "--out", str(index), "--kind", "flat")
    assert res.returncode == 0, res.stderr
    built = json.loads(res.stdout)
    assert built["n"] == 4 and built["model"] == "released_wd14" and len(built["skipped"]) == 1
    q = _cli("search", "query", str(index), "--image", str(images / "2.png"), "-k", "2")
    assert q.returncode == 0, q.stderr
    top = json.loads(q.stdout)["results"][0]
    assert top["path"].endswith("2.png") and top["score"] == pytest.approx(1.0, abs=1e-5)
    t = _cli("search", "query", str(index), "--text", "1girl")
    assert t.returncode == 2 and "takes --image queries only" in t.stderr


def test_embed_text_with_a_sentence_transformers_folder(tmp_path):
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", "kan", "##ko", "##re"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    base = tmp_path / "bert"
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(base)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)).save_pretrained(base)
    word = models.Transformer(str(base), max_seq_length=32)
    st = SentenceTransformer(modules=[word, models.Pooling(16, "mean"), models.Normalize()], device="cpu")
    folder = tmp_path / "st"
    st.save(str(folder))
    texts = ["kankore", "abc"]
    res = _cli("embed-text", "--weights", str(folder), *texts)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["dim"] == 16 and out["weights"].startswith(f"released: {folder}")
    want = SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_numpy=True)
    assert np.allclose([r["vector"] for r in out["vectors"]], want, atol=1e-5)
    bad = _cli("embed-text", "--weights", str(tmp_path / "bert"), "x")
    assert bad.returncode == 2 and "not a sentence-transformers folder" in bad.stderr
    both = _cli("embed-text", "--weights", str(folder), "--model", "e5_small", "x")
    assert both.returncode == 2 and "not both" in both.stderr


def test_embed_image_with_a_joytag_folder_gives_its_pooled_trunk(images, tmp_path):
    """A JoyTag folder in the released layout (safetensors written here from a random-init module, the
    keys checked by test_loaders_independent): ``embed-image --weights`` returns ``model.embed`` of the
    JoyTag preprocessing (white square pad, bicubic, CLIP mean/std), the bad file skipped."""
    import torch
    from safetensors.torch import save_file

    from acg2vec_lab.models.joytag.model import JoyTagViT
    from acg2vec_lab.models.joytag.preprocess import preprocess

    cfg = dict(n_tags=5, image_size=32, num_blocks=1, patch_size=16, d_model=16, mlp_dim=32, num_heads=2,
               stochdepth_rate=0.0, use_sine=True, loss_type="focal2",
               cnn_stem="conv:c=4;ln;relu;conv:c=8;ln;relu;conv:c=8;ln;relu;conv:c=16;ln;relu;conv:c=16,s=1,k=1,p=0")
    torch.manual_seed(1)
    model = JoyTagViT(**cfg).eval()
    d = tmp_path / "joytag"
    d.mkdir()
    save_file(model.state_dict(), str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"class": "ViT", **cfg}))
    (d / "top_tags.txt").write_text("\n".join(f"j{i}" for i in range(5)) + "\n")
    files = sorted(str(p) for p in images.glob("[0-9].png"))
    res = _cli("embed-image", "--weights", str(d), *files, str(images / "broken.png"))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["model"] == "released_joytag" and out["dim"] == 16
    assert [s["path"] for s in out["skipped"]] == [str(images / "broken.png")]
    for row, f in zip(out["vectors"], files):
        with Image.open(f) as im:
            x = torch.from_numpy(preprocess(im.convert("RGB"), 32)[None])
        with torch.no_grad():
            want = model.embed(x)[0].numpy()
        assert np.allclose(row["vector"], want, atol=1e-5), f  # raw, as for WD14 (normalise before indexing)
