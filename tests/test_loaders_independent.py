"""Loaders proven on files that this package's own writers did not write (issue 13 item 3), and
refusal of weight files that would run code (issue 18 item 1).

* DeepDanbooru: the ORIGINAL ``deepdanbooru`` package (``tests/independent/deepdanbooru_original.py``,
  run in a subprocess under ``TF_USE_LEGACY_KERAS=1`` with tf_keras) builds the network with its own
  code, saves the project with its own Keras 2 h5 writer and scores PNG, JPEG and RGBA files with its
  own ``evaluate_image`` / ``load_image_for_evaluate``. Our loader + ``"deepdanbooru"`` preprocessing
  must match at 1e-4; the white-composite mode's difference is measured and printed.
* TorchDeepDanbooru ``.pt``: BN folded and numbered by hand in the test (port order) from the
  original-written h5, read with h5py by creation-order names, not by our writer.
* JoyTag: ``model.safetensors`` written with ``safetensors.numpy.save_file`` from a hand-written key
  list in the released layout (190 keys at the released size), checked against a functional forward
  pass written here from the same dict.
* Real-CUGAN: a ``.pth`` from a hand-written upstream key list (60 keys, 1,284,598 params for 2x),
  checked against a functional forward pass written here.
* Safety: a pickle whose ``__reduce__`` writes a marker file is refused by every torch loader we have
  and nothing runs (the same file does run code under ``weights_only=False``, so the test can fail).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import acg2vec_lab  # noqa: F401  (before tensorflow)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "independent" / "deepdanbooru_original.py"
SIZE = 64
N_TAGS = 8


def _write_images(folder: Path) -> dict[str, Path]:
    """A wide RGB PNG, the same pixels as JPEG (q 85), and an RGBA sprite whose transparent pixels
    keep non-white colour underneath (what dropping alpha vs compositing on white tells apart)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:61, 0:97]
    smooth = np.stack([xx * 2.5, yy * 4.0, (xx + yy) * 1.6], -1)
    rgb = np.clip(smooth + rng.normal(0, 25, smooth.shape), 0, 255).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"png": folder / "wide.png", "jpeg": folder / "wide.jpg", "rgba": folder / "sprite.png"}
    Image.fromarray(rgb).save(paths["png"])
    Image.fromarray(rgb).save(paths["jpeg"], quality=85)
    alpha = np.where((xx - 48) ** 2 / 30 ** 2 + (yy - 30) ** 2 / 22 ** 2 < 1, 255, 0).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(paths["rgba"])
    return paths


def run_original(out: Path, images: list[Path], arch: str = "small", size: int = SIZE, n_tags: int = N_TAGS,
                 timeout: int = 600) -> dict:
    """Run the original package in a subprocess; returns its metadata (plus the npz contents)."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--arch", arch, "--height", str(size),
           "--width", str(size), "--tags", str(n_tags), *map(str, images)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(out.parent))
    assert proc.returncode == 0, f"original deepdanbooru failed:\n{proc.stderr[-3000:]}"
    meta = json.loads((out / "original.json").read_text())
    with np.load(out / "original.npz", allow_pickle=False) as z:
        meta["scores"], meta["inputs"] = z["scores"], z["inputs"]
    return meta


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    base = tmp_path_factory.mktemp("dd_original")
    images = _write_images(base / "images")
    meta = run_original(base / "out", list(images.values()))
    meta["paths"] = images
    return meta


def _ours_scores(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x[None], training=False))[0]


def test_original_project_is_keras2_written(original):
    """The file really comes from tf_keras (Keras 2 h5 layout), not from our writer."""
    assert original["keras_module"].startswith("tf_keras")
    with h5py.File(original["model_file"]) as f:
        version = f.attrs["keras_version"]
        version = version.decode() if isinstance(version, bytes) else str(version)
        assert version.startswith("2."), version
        config = json.loads(f.attrs["model_config"])
        assert config["class_name"] == "Functional" and config["config"]["name"] == "resnet_custom_small"
        assert "batch_input_shape" in config["config"]["layers"][0]["config"]


def test_original_project_scores_identically(original):
    """load_project + "deepdanbooru" preprocessing of the file == the original's evaluate path."""
    from acg2vec_lab.models.deepdanbooru import loaders as L
    from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image

    proj = L.load_project(original["project"])
    assert proj.config.filter_sizes == (32, 64, 64) and proj.config.n_tags == N_TAGS
    assert len(proj.tags) == N_TAGS and proj.categories[-1] == "System"
    rows = []
    for i, (kind, path) in enumerate(original["paths"].items()):
        x = preprocess_image(path, (SIZE, SIZE), "deepdanbooru")
        d_in = float(np.abs(x - original["inputs"][i]).max())
        d_out = float(np.abs(_ours_scores(proj.model, x) - original["scores"][i]).max())
        rows.append((kind, d_in, d_out))
        assert d_in <= 1e-6 and d_out <= 1e-4, (kind, d_in, d_out)
    assert float(original["scores"].std()) > 0.05  # unsaturated: the comparison means something
    print("\n".join(f"{k}: input max|diff| {a:.1e}, score max|diff| {b:.1e}" for k, a, b in rows))


def test_white_composite_mode_differs_as_measured(original):
    """The Pillow + white-composite option: identical on an RGB PNG, a few levels off on JPEG
    (a different decoder), far off on an RGBA sprite (alpha composited instead of dropped)."""
    from acg2vec_lab.models.deepdanbooru import loaders as L
    from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image

    proj = L.load_project(original["project"])
    diffs = {}
    for i, (kind, path) in enumerate(original["paths"].items()):
        w = preprocess_image(path, (SIZE, SIZE), "deepdanbooru-white")
        diffs[kind] = (float(np.abs(w - original["inputs"][i]).max() * 255),
                       float(np.abs(_ours_scores(proj.model, w) - original["scores"][i]).max()))
    print("white-composite vs original: " + ", ".join(f"{k}: input {a:.2f} levels, score {b:.1e}"
                                                      for k, (a, b) in diffs.items()))
    assert diffs["png"][1] <= 1e-4
    assert diffs["rgba"][0] > 50 and diffs["rgba"][1] > 1e-3


def _fold_by_creation_order(h5_path: str):
    """The original-written h5 as a TorchDeepDanbooru-style state dict, by hand: convs and BNs
    paired in creation order (a fresh Keras session names them conv2d, conv2d_1, ...; the original
    creates each projection block's shortcut after its main path), BN folded with eps 1e-3, and
    numbered as the port numbers them (shortcut first)."""
    with h5py.File(h5_path) as f:
        g = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["layer_names"]]

        def order(prefix):
            sel = [n for n in names if n == prefix or n.startswith(prefix + "_")]
            return sorted(sel, key=lambda n: int(n.rsplit("_", 1)[1]) if n != prefix else 0)

        def ds(layer, short):
            grp = g[layer]
            (key,) = [k.decode() if isinstance(k, bytes) else k for k in grp.attrs["weight_names"]
                      if (k.decode() if isinstance(k, bytes) else k).split("/")[-1].startswith(short)]
            return np.asarray(grp[key][()], np.float64)

        convs, bns = order("conv2d"), order("batch_normalization")
        assert len(convs) == len(bns) + 1  # every conv but the head has a BN
        folded = []
        for c, b in zip(convs, bns):
            k = ds(c, "kernel")
            s = ds(b, "gamma") / np.sqrt(ds(b, "moving_variance") + 1e-3)
            folded.append((np.transpose(k * s, (3, 2, 0, 1)), ds(b, "beta") - ds(b, "moving_mean") * s))
        head = np.transpose(ds(convs[-1], "kernel"), (3, 2, 0, 1))
    # creation order: stem, then per stage [c1 c2 c3 sc] + r x [c1 c2 c3]; port order puts sc first
    port, i = [folded[0]], 1
    for r in (1, 1, 1):
        c1, c2, c3, sc = folded[i:i + 4]
        port += [sc, c1, c2, c3] + folded[i + 4:i + 4 + 3 * r]
        i += 4 + 3 * r
    assert i == len(folded)
    sd = {}
    for n, (w, bias) in enumerate(port):
        sd[f"n_Conv_{n}.weight"] = torch.from_numpy(w.astype(np.float32))
        sd[f"n_Conv_{n}.bias"] = torch.from_numpy(bias.astype(np.float32))
    sd[f"n_Conv_{len(port)}.weight"] = torch.from_numpy(head.astype(np.float32))
    return sd


def test_torch_port_file_folded_by_hand_scores_like_the_original(original, tmp_path):
    from acg2vec_lab.models.deepdanbooru import loaders as L
    from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig

    sd = _fold_by_creation_order(original["model_file"])
    sd["tags"] = [f"t{i}" for i in range(N_TAGS)]
    torch.save(sd, tmp_path / "model-port.pt")
    cfg = DeepDanbooruConfig(variant="custom", filter_sizes=(32, 64, 64), repeat_sizes=(1, 1, 1), n_tags=N_TAGS)
    for folded in (False, True):
        tm = L.load_port_into_torch(tmp_path / "model-port.pt", cfg=cfg, folded=folded)
        assert tm.tags == sd["tags"]
        with torch.no_grad():
            out = tm(torch.from_numpy(original["inputs"])).numpy()
        assert np.abs(out - original["scores"]).max() <= 1e-4


def test_torch_port_file_as_a_tagger_through_tag_images(original, tmp_path):
    """The same hand-folded file as ``tag --weights`` reads it: a folder with the ``.pt`` (no tags inside)
    and ``tags.txt``; the tagger scores the original's images like the original, through the batch
    pipeline, and a .pt without tags is refused naming the file."""
    from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
    from acg2vec_lab.models.deepdanbooru.tagger import load_torch_port_tagger, torch_port_file
    from acg2vec_lab.models.released import detect_tagger
    from acg2vec_lab.tagging.pipeline import tag_images
    from acg2vec_lab.tagging.thresholds import ThresholdPolicy

    folder = tmp_path / "torchdeepdanbooru"
    folder.mkdir()
    torch.save(_fold_by_creation_order(original["model_file"]), folder / "model-resnet_custom.pt")
    tags = [f"t{i}" for i in range(N_TAGS)]
    cfg = DeepDanbooruConfig(variant="custom", filter_sizes=(32, 64, 64), repeat_sizes=(1, 1, 1), n_tags=N_TAGS)
    with pytest.raises(FileNotFoundError, match="no 'tags' in the file and no tags.txt"):
        load_torch_port_tagger(folder / "model-resnet_custom.pt", image_size=SIZE, cfg=cfg)
    (folder / "tags.txt").write_text("\n".join(tags) + "\n")
    found = detect_tagger(folder)
    assert found.model == "deepdanbooru" and "TorchDeepDanbooru" in found.format
    assert torch_port_file(folder) == folder / "model-resnet_custom.pt"
    tagger = load_torch_port_tagger(torch_port_file(folder), image_size=SIZE, cfg=cfg)
    assert tagger.framework == "torch" and tagger.tags == tags and tagger.input_size == (SIZE, SIZE)
    assert np.abs(tagger.predict(original["inputs"]) - original["scores"]).max() <= 1e-4
    images = [original["paths"][k] for k in ("png", "jpeg", "rgba")]
    got = {}
    summary = tag_images(tagger, images, None, ThresholdPolicy(general=0.0, character=0.0), batch_size=2,
                         progress=False, on_result=lambda res, probs: got.__setitem__(Path(res.path).name, probs))
    assert summary.tagged == 3 and summary.failed == 0
    diffs = {path.name: float(np.abs(np.asarray(got[path.name]) - original["scores"][i]).max())
             for i, path in enumerate(images)}
    assert max(diffs.values()) <= 1e-4, diffs


@pytest.mark.slow
def test_original_resnet_custom_v3_h5(tmp_path):
    """The real ``create_resnet_custom_v3`` (all 179 convs, 57 blocks) at 64 px with 8 tags, saved by
    the original, loaded by topology and scored through our preprocessing."""
    from acg2vec_lab.models.deepdanbooru import loaders as L
    from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image

    images = _write_images(tmp_path / "images")
    meta = run_original(tmp_path / "out", [images["jpeg"], images["rgba"]], arch="v3")
    proj = L.load_project(meta["project"])
    assert proj.config.variant == "resnet_custom_v3" and len(proj.config.stages()[1]) == 6
    for i, path in enumerate((images["jpeg"], images["rgba"])):
        x = preprocess_image(path, (SIZE, SIZE), "deepdanbooru")
        assert np.abs(x - meta["inputs"][i]).max() <= 1e-6
        assert np.abs(_ours_scores(proj.model, x) - meta["scores"][i]).max() <= 1e-4


# --------------------------------------------------------------------------------------------- JoyTag

def joytag_released_keys(n_tags: int, stem: tuple[int, ...] = (64, 128, 256, 512), d_model: int = 768,
                         mlp: int = 3072, blocks: int = 12) -> dict[str, tuple[int, ...]]:
    """JoyTag's released state-dict layout, written out by hand (models.md section 7: CNN stem convs at
    ``patch_embeddings.conv.{0,3,6,9,12}``, channel LayerNorms at ``.{1,4,7,10}.norm``, pre-norm blocks
    with fused ``qkv_proj``, ``out_proj``, LayerScale ``skip_init{1,2}.skip``, ``mlp.linear{1,2}``,
    final ``norm``, ``head``)."""
    keys: dict[str, tuple[int, ...]] = {}
    cin = 3
    for j, c in enumerate(stem):
        keys[f"patch_embeddings.conv.{3 * j}.weight"] = (c, cin, 3, 3)
        keys[f"patch_embeddings.conv.{3 * j}.bias"] = (c,)
        keys[f"patch_embeddings.conv.{3 * j + 1}.norm.weight"] = (c,)
        keys[f"patch_embeddings.conv.{3 * j + 1}.norm.bias"] = (c,)
        cin = c
    keys["patch_embeddings.conv.12.weight"] = (d_model, cin, 1, 1)
    keys["patch_embeddings.conv.12.bias"] = (d_model,)
    for b in range(blocks):
        p = f"blocks.{b}."
        keys.update({p + "norm1.weight": (d_model,), p + "norm1.bias": (d_model,),
                     p + "qkv_proj.weight": (3 * d_model, d_model), p + "qkv_proj.bias": (3 * d_model,),
                     p + "out_proj.weight": (d_model, d_model), p + "out_proj.bias": (d_model,),
                     p + "skip_init1.skip": (d_model,),
                     p + "norm2.weight": (d_model,), p + "norm2.bias": (d_model,),
                     p + "mlp.linear1.weight": (mlp, d_model), p + "mlp.linear1.bias": (mlp,),
                     p + "mlp.linear2.weight": (d_model, mlp), p + "mlp.linear2.bias": (d_model,),
                     p + "skip_init2.skip": (d_model,)})
    keys.update({"norm.weight": (d_model,), "norm.bias": (d_model,),
                 "head.weight": (n_tags, d_model), "head.bias": (n_tags,)})
    return keys


def test_joytag_released_layout_matches_the_module():
    """190 keys and 91,491,509 params at the released size (n_tags 5813, models.md section 7)."""
    from acg2vec_lab.models.joytag.config import SWMODEL20_STEM
    from acg2vec_lab.models.joytag.model import JoyTagViT

    keys = joytag_released_keys(5813)
    assert len(keys) == 190 and sum(math.prod(s) for s in keys.values()) == 91_491_509
    with torch.device("meta"):
        m = JoyTagViT(n_tags=5813, image_size=448, num_blocks=12, patch_size=16, d_model=768, mlp_dim=3072,
                      num_heads=12, cnn_stem=SWMODEL20_STEM)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == keys


def _sincos(gw: int, gh: int, dim: int) -> np.ndarray:
    q = dim // 4
    omega = 1.0 / 10000 ** (np.arange(q) / (q - 1))
    ys, xs = np.divmod(np.arange(gh * gw), gw)  # tokens row-major
    x, y = xs[:, None] * omega, ys[:, None] * omega
    return np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], 1)


def _joytag_functional(w: dict[str, torch.Tensor], images: torch.Tensor, heads: int, blocks: int) -> torch.Tensor:
    """JoyTag's forward written from the released description, reading only the weight dict."""
    x = images
    for j in range(4):
        x = F.conv2d(x, w[f"patch_embeddings.conv.{3 * j}.weight"], w[f"patch_embeddings.conv.{3 * j}.bias"],
                     stride=2, padding=1)
        n = f"patch_embeddings.conv.{3 * j + 1}.norm."
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], w[n + "weight"], w[n + "bias"]).permute(0, 3, 1, 2)
        x = F.relu(x)
    x = F.conv2d(x, w["patch_embeddings.conv.12.weight"], w["patch_embeddings.conv.12.bias"])
    nb, d, gh, gw = x.shape
    x = x.flatten(2).transpose(1, 2) + torch.from_numpy(_sincos(gw, gh, d)).float()
    for b in range(blocks):
        p = f"blocks.{b}."
        h = F.layer_norm(x, (d,), w[p + "norm1.weight"], w[p + "norm1.bias"])
        q, k, v = F.linear(h, w[p + "qkv_proj.weight"], w[p + "qkv_proj.bias"]).split(d, -1)
        split = lambda t: t.reshape(nb, -1, heads, d // heads).transpose(1, 2)  # noqa: E731
        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(d // heads), -1) @ split(v)
        att = F.linear(att.transpose(1, 2).reshape(nb, -1, d), w[p + "out_proj.weight"], w[p + "out_proj.bias"])
        x = x + w[p + "skip_init1.skip"] * att
        h = F.layer_norm(x, (d,), w[p + "norm2.weight"], w[p + "norm2.bias"])
        h = F.linear(F.gelu(F.linear(h, w[p + "mlp.linear1.weight"], w[p + "mlp.linear1.bias"])),
                     w[p + "mlp.linear2.weight"], w[p + "mlp.linear2.bias"])
        x = x + w[p + "skip_init2.skip"] * h
    x = F.layer_norm(x, (d,), w["norm.weight"], w["norm.bias"]).mean(1)
    return F.linear(x, w["head.weight"], w["head.bias"])


def test_joytag_folder_from_hand_built_safetensors(tmp_path):
    """A folder written without our writer: config.json by hand (with training-only keys), weights by
    ``safetensors.numpy.save_file`` from the hand-built key list, an old 9-row-longer head."""
    from safetensors.numpy import save_file

    from acg2vec_lab.models.joytag.loader import load_folder

    n_tags, stem, d, mlp, blocks, heads = 7, (8, 16, 16, 16), 32, 64, 2, 4
    keys = joytag_released_keys(n_tags + 9, stem, d, mlp, blocks)
    rng = np.random.default_rng(0)
    arrays = {}
    for k, shape in keys.items():
        if k.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
            arrays[k] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif k.endswith(".skip"):
            arrays[k] = rng.uniform(0.05, 0.3, shape).astype(np.float32)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 4
            arrays[k] = rng.normal(0, 1 / math.sqrt(fan_in), shape).astype(np.float32)
    save_file(arrays, str(tmp_path / "model.safetensors"))
    stem_spec = ";".join(f"conv:c={c};ln;relu" for c in stem) + f";conv:c={d},s=1,k=1,p=0"
    config = {"class": "ViT", "n_tags": n_tags, "image_size": 32, "num_blocks": blocks, "patch_size": 16,
              "d_model": d, "mlp_dim": mlp, "num_heads": heads, "stochdepth_rate": 0.05, "use_sine": True,
              "loss_type": "focal2", "cnn_stem": stem_spec, "use_amp": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "top_tags.txt").write_text("\n".join(f"tag_{i}" for i in range(n_tags)) + "\n")

    loaded = load_folder(tmp_path)
    assert loaded.trimmed_head and loaded.dropped_keys == ["use_amp"] and len(loaded.tags) == n_tags
    state = loaded.model.state_dict()
    assert set(state) == set(keys)  # every key consumed, none invented
    for k, v in state.items():
        ref = arrays[k][:n_tags] if k.startswith("head.") else arrays[k]
        assert torch.equal(v, torch.from_numpy(ref)), k
    x = torch.from_numpy(rng.normal(0, 1, (2, 3, 32, 32)).astype(np.float32))
    w = {k: torch.from_numpy(v[:n_tags] if k.startswith("head.") else v) for k, v in arrays.items()}
    with torch.no_grad():
        ours, ref = loaded.model(x), _joytag_functional(w, x, heads, blocks)
    assert ours.shape == (2, n_tags) and float(ref.std()) > 0.1
    assert torch.allclose(ours, ref, atol=1e-5), float((ours - ref).abs().max())


# ---------------------------------------------------------------------------------------- Real-CUGAN

def realcugan_up2x_keys() -> dict[str, tuple[int, ...]]:
    """Upstream ``UpCunet2x`` state-dict layout written out by hand from models.md section 6.1
    (``UNetConv`` = ``conv.0``/``conv.2`` + optional ``seblock.conv1/2``; ConvTranspose weights are
    (in, out, kh, kw))."""
    def unetconv(p, cin, mid, cout, se):
        out = {f"{p}.conv.0.weight": (mid, cin, 3, 3), f"{p}.conv.0.bias": (mid,),
               f"{p}.conv.2.weight": (cout, mid, 3, 3), f"{p}.conv.2.bias": (cout,)}
        if se:
            out.update({f"{p}.seblock.conv1.weight": (cout // 8, cout, 1, 1), f"{p}.seblock.conv1.bias": (cout // 8,),
                        f"{p}.seblock.conv2.weight": (cout, cout // 8, 1, 1), f"{p}.seblock.conv2.bias": (cout,)})
        return out

    def layer(name, shape, transpose=False):
        return {f"{name}.weight": shape, f"{name}.bias": (shape[1] if transpose else shape[0],)}

    k = {}
    k |= unetconv("unet1.conv1", 3, 32, 64, False) | layer("unet1.conv1_down", (64, 64, 2, 2))
    k |= unetconv("unet1.conv2", 64, 128, 64, True) | layer("unet1.conv2_up", (64, 64, 2, 2), True)
    k |= layer("unet1.conv3", (64, 64, 3, 3)) | layer("unet1.conv_bottom", (64, 3, 4, 4), True)
    k |= unetconv("unet2.conv1", 3, 32, 64, False) | layer("unet2.conv1_down", (64, 64, 2, 2))
    k |= unetconv("unet2.conv2", 64, 64, 128, True) | layer("unet2.conv2_down", (128, 128, 2, 2))
    k |= unetconv("unet2.conv3", 128, 256, 128, True) | layer("unet2.conv3_up", (128, 128, 2, 2), True)
    k |= unetconv("unet2.conv4", 128, 64, 64, True) | layer("unet2.conv4_up", (64, 64, 2, 2), True)
    k |= layer("unet2.conv5", (64, 64, 3, 3)) | layer("unet2.conv_bottom", (3, 64, 3, 3))
    return k


def _cugan2x_functional(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Upstream UpCunet2x (non-tiled, alpha 1, even input) from the weight dict alone."""
    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    conv = lambda t, n, s=1: F.conv2d(t, w[n + ".weight"], w[n + ".bias"], stride=s)  # noqa: E731
    up = lambda t, n, s=2, p=0: F.conv_transpose2d(t, w[n + ".weight"], w[n + ".bias"], stride=s, padding=p)  # noqa: E731
    crop = lambda t, c: t[:, :, c:-c, c:-c]  # noqa: E731

    def unetconv(t, p):
        t = lrelu(conv(lrelu(conv(t, p + ".conv.0")), p + ".conv.2"))
        if p + ".seblock.conv1.weight" in w:
            m = torch.sigmoid(conv(F.relu(conv(t.mean((2, 3), keepdim=True), p + ".seblock.conv1")), p + ".seblock.conv2"))
            t = t * m
        return t

    h0, w0 = x.shape[-2:]
    x = F.pad(x, (18, 18, 18, 18), mode="reflect")
    x1 = unetconv(x, "unet1.conv1")
    x2 = unetconv(lrelu(conv(x1, "unet1.conv1_down", 2)), "unet1.conv2")
    x2 = lrelu(up(x2, "unet1.conv2_up"))
    y = up(lrelu(conv(crop(x1, 4) + x2, "unet1.conv3")), "unet1.conv_bottom", 2, 3)
    a1 = unetconv(y, "unet2.conv1")
    a2 = unetconv(lrelu(conv(a1, "unet2.conv1_down", 2)), "unet2.conv2")
    a3 = unetconv(lrelu(conv(a2, "unet2.conv2_down", 2)), "unet2.conv3")
    a3 = lrelu(up(a3, "unet2.conv3_up"))
    a4 = lrelu(up(unetconv(crop(a2, 4) + a3, "unet2.conv4"), "unet2.conv4_up"))
    a6 = conv(lrelu(conv(crop(a1, 16) + a4, "unet2.conv5")), "unet2.conv_bottom")
    return (a6 + crop(y, 20))[:, :, :2 * h0, :2 * w0]


def test_realcugan_pth_from_hand_written_keys(tmp_path):
    from acg2vec_lab.models.real_cugan import torch_model as tm

    keys = realcugan_up2x_keys()
    assert len(keys) == 60 and sum(math.prod(s) for s in keys.values()) == 1_284_598  # models.md 6.1
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) * (0.5 / math.sqrt(math.prod(s[1:]) if len(s) > 1 else 1))
          for k, s in keys.items()}
    sd["pro"] = torch.tensor(1)
    torch.save(sd, tmp_path / "up2x-pro.pth")
    model, pro = tm.load_pth(str(tmp_path / "up2x-pro.pth"))
    assert pro and model.scale == 2
    state = model.state_dict()
    assert set(state) == set(keys)
    assert all(torch.equal(state[k], sd[k]) for k in keys)
    x = torch.rand(1, 3, 24, 20, generator=g)
    with torch.no_grad():
        ours, ref = model(x), _cugan2x_functional(sd, x)
    assert ours.shape == (1, 3, 48, 40) and float(ref.std()) > 1e-3
    assert torch.allclose(ours, ref, atol=1e-5), float((ours - ref).abs().max())


# ------------------------------------------------------------------------------------------- safety

class _WritesMarker:
    """Pickles to ``exec(<write the marker file>)``: loading it with full pickle runs that code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def _evil_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    payload = _WritesMarker(marker)
    files = {"port": tmp_path / "model-port.pt", "cugan": tmp_path / "up2x.pth"}
    torch.save({"n_Conv_0.weight": torch.zeros(8, 3, 7, 7), "tags": payload}, files["port"])
    torch.save({"unet1.conv_bottom.weight": torch.zeros(64, 3, 4, 4), "pro": payload}, files["cugan"])
    (tmp_path / "joytag").mkdir()
    (tmp_path / "joytag" / "config.json").write_text(json.dumps({"class": "ViT", "n_tags": 2, "image_size": 32,
        "num_blocks": 1, "patch_size": 16, "d_model": 32, "mlp_dim": 64, "num_heads": 4}))
    torch.save({"model": {"head.weight": torch.zeros(2, 32)}, "optimizer": payload}, tmp_path / "joytag" / "model.pt")
    files["joytag"] = tmp_path / "joytag" / "model.pt"
    return files


def test_pickle_that_runs_code_is_refused_by_every_torch_loader(tmp_path):
    from acg2vec_lab.models.deepdanbooru import loaders as L
    from acg2vec_lab.models.joytag.loader import load_folder
    from acg2vec_lab.models.real_cugan import torch_model as tm

    marker = tmp_path / "marker.txt"
    files = _evil_files(tmp_path, marker)
    loaders = {"port": lambda: L.load_port_into_torch(files["port"]),
               "cugan": lambda: tm.load_pth(str(files["cugan"])),
               "joytag": lambda: load_folder(files["joytag"].parent)}
    for name, load in loaders.items():
        with pytest.raises(ValueError, match="refused to load") as info:
            load()
        assert str(files[name]) in str(info.value), info.value
        assert not marker.exists(), f"{name}: code from the file ran"
    # the payload is live: a full-pickle load of the same file does run it (so this test can fail)
    torch.load(files["port"], weights_only=False)
    assert marker.read_text() == "code ran"


def test_port_file_with_tags_loads_weights_only(tmp_path):
    """A plain TorchDeepDanbooru file (tensors + a list of tag strings) loads with weights_only=True."""
    from acg2vec_lab.models.deepdanbooru import loaders as L

    sd = {"n_Conv_0.weight": torch.ones(2, 3, 7, 7), "tags": ["1girl", "rating:safe"]}
    torch.save(sd, tmp_path / "m.pt")
    got = L.safe_torch_load(tmp_path / "m.pt")
    assert got["tags"] == ["1girl", "rating:safe"] and torch.equal(got["n_Conv_0.weight"], sd["n_Conv_0.weight"])
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(L.LoadError, match="junk.pt"):
        L.safe_torch_load(tmp_path / "junk.pt")


def test_deepdanbooru_mode_names_a_file_it_cannot_decode(tmp_path):
    from acg2vec_lab.models.deepdanbooru.preprocess import preprocess_image

    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then garbage")
    with pytest.raises(ValueError, match="not_an_image.png"):
        preprocess_image(bad, (SIZE, SIZE), "deepdanbooru")
    with pytest.raises(ValueError, match="missing.png"):
        preprocess_image(tmp_path / "missing.png", (SIZE, SIZE), "deepdanbooru")
