"""Loaders for DeepDanbooru's released formats, tested on files written here (tiny variant), and
TensorFlow <-> PyTorch parity on the same weights, including odd input sizes.

These are round trips through this package's own writers; the same loaders on files written by
independent code (the original ``deepdanbooru`` package, a port state dict folded by hand) are in
``tests/test_loaders_independent.py``."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.config import load_config
from acg2vec_lab.models.deepdanbooru import loaders as L
from acg2vec_lab.models.deepdanbooru import tf_model as T
from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig

SIZES = [(64, 64), (67, 53), (33, 41)]


@pytest.fixture(scope="module")
def tiny():
    """A tiny Keras tagger (any input size) with non-trivial BN statistics and unsaturated outputs."""
    cfg = load_config("deepdanbooru", "smoke")
    model = T.build_model(cfg, input_shape=(None, None, 3))
    rng = np.random.default_rng(0)
    T.make_nontrivial(model, rng.uniform(0, 1, (4, 64, 64, 3)), seed=1)
    return cfg, model


def _x(h, w, n=2, seed=0):
    return np.random.default_rng(seed + h * w).uniform(0, 1, (n, h, w, 3)).astype(np.float32)


def _predict(model, x):
    return np.asarray(model(x, training=False))


def test_outputs_are_not_saturated(tiny):
    _, model = tiny
    p = _predict(model, _x(64, 64, 8))
    assert 0.05 < p.mean() < 0.95 and p.std() > 0.1


@pytest.mark.parametrize("folded", [False, True])
def test_tf_and_torch_agree_on_odd_sizes(tiny, folded):
    import torch

    _, model = tiny
    tm = L.keras_to_torch(model, folded=folded)
    assert tm.folded == folded and (tm.blocks[0].c1.bn is None) == folded
    for h, w in SIZES:
        x = _x(h, w)
        with torch.no_grad():
            out = tm(torch.from_numpy(x)).numpy()
        diff = np.abs(out - _predict(model, x)).max()
        assert diff <= 1e-4, (h, w, diff)


def test_torch_padding_is_needed_for_parity(tiny):
    """Symmetric PyTorch padding (what a naive port does) breaks parity on stride-2 layers."""
    import torch
    import torch.nn.functional as F

    import acg2vec_lab.models.deepdanbooru.torch_model as TM

    _, model = tiny
    tm = L.keras_to_torch(model)
    x = _x(64, 64)

    def naive(self, inp):
        y = F.conv2d(inp, self.conv.weight, self.conv.bias, self.stride, padding=self.kernel // 2)
        return self.bn(y) if self.bn is not None else y

    orig = TM.ConvBN.forward
    TM.ConvBN.forward = naive
    try:
        with torch.no_grad():
            out = tm(torch.from_numpy(x)).numpy()
    finally:
        TM.ConvBN.forward = orig
    assert np.abs(out - _predict(model, x)).max() > 1e-3


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_legacy_h5_roundtrip(tiny, tmp_path, dtype):
    _, model = tiny
    path = L.write_legacy_h5(model, tmp_path / "model-x.h5", dtype=dtype)
    with h5py.File(path) as f:  # the Keras 2 layout
        assert L._attr_str(f.attrs["keras_version"]).startswith("2.")
        cfg = json.loads(f.attrs["model_config"])
        assert cfg["class_name"] == "Functional"
        assert isinstance(cfg["config"]["layers"][1]["inbound_nodes"][0][0], list)
        names = [L._attr_str(n) for n in f["model_weights"].attrs["layer_names"]]
        first_conv = names[1]
        assert [L._attr_str(n) for n in f["model_weights"][first_conv].attrs["weight_names"]] == [f"{first_conv}/kernel:0"]
        assert f["model_weights"][first_conv][f"{first_conv}/kernel:0"].dtype == np.dtype(dtype)
    contents = L.read_legacy_h5(path)
    assert contents.stored_dtype == dtype
    loaded, lcfg = L.load_h5_model(path, image_size=64)
    assert lcfg.stages() == tiny[0].stages() and lcfg.n_tags == tiny[0].n_tags
    x = _x(64, 64)
    if dtype == "float32":
        assert np.abs(_predict(loaded, x) - _predict(model, x)).max() == 0.0
    else:  # exactly the float16-rounded weights
        ref = L.keras_canonical(model)
        got = L.keras_canonical(loaded)
        for key in ref:
            np.testing.assert_array_equal(got[key]["kernel"], ref[key]["kernel"].astype(np.float16).astype(np.float32))
        assert np.abs(_predict(loaded, x) - _predict(model, x)).max() < 0.05


def test_h5_read_by_topology_not_names(tiny, tmp_path):
    """Shuffled layer_names and a differently-suffixed model (built later in the session) still map."""
    cfg, model = tiny
    other = T.build_model(cfg)  # same architecture, shifted auto-names
    L.set_keras_canonical(other, L.keras_canonical(model))
    assert other.layers[1].name != model.layers[1].name
    names = [layer.name for layer in other.layers]
    rng = np.random.default_rng(0)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    path = L.write_legacy_h5(other, tmp_path / "m.h5", layer_order=shuffled)
    loaded, _ = L.load_h5_model(path)
    x = _x(64, 64)
    assert np.abs(_predict(loaded, x) - _predict(model, x)).max() == 0.0


def test_h5_chunked_attributes(tiny, tmp_path, monkeypatch):
    """Keras splits attribute lists over 64 KB into layer_names0, layer_names1, ... (v3 needs it)."""
    _, model = tiny
    from acg2vec_lab.models.deepdanbooru import h5 as H5

    monkeypatch.setattr(H5, "HDF5_OBJECT_HEADER_LIMIT", 256)  # the Keras-file module owns the limit
    path = L.write_legacy_h5(model, tmp_path / "chunked.h5")
    with h5py.File(path) as f:
        assert "layer_names" not in f["model_weights"].attrs and "layer_names2" in f["model_weights"].attrs
    loaded, _ = L.load_h5_model(path)
    assert np.abs(_predict(loaded, _x(64, 64)) - _predict(model, _x(64, 64))).max() == 0.0


def test_keras3_files(tiny, tmp_path):
    """Keras 3's own legacy-h5 writer (no ':0', Keras 3 config) and the .keras zip format."""
    cfg, model = tiny
    fixed = T.build_model(cfg)
    L.set_keras_canonical(fixed, L.keras_canonical(model))
    fixed.save(tmp_path / "k3.h5")
    fixed.save(tmp_path / "k3.keras")
    x = _x(64, 64)
    for loader, p in ((L.load_h5_model, "k3.h5"), (L.load_keras_file, "k3.keras")):
        loaded, _ = loader(tmp_path / p)
        assert np.abs(_predict(loaded, x) - _predict(model, x)).max() == 0.0


def test_project_folder(tiny, tmp_path):
    cfg, model = tiny
    n = cfg.n_tags
    tags = [f"tag_{i}" for i in range(n - 5)] + ["char_a", "char_b", "rating:safe", "rating:questionable",
                                                  "rating:explicit"]
    (tmp_path / "project.json").write_text(json.dumps({"image_width": 64, "image_height": 64, "model": "tiny"}))
    (tmp_path / "tags.txt").write_text("\n".join(tags[:3]) + "\n\n" + "\n".join(tags[3:]) + "\n")
    (tmp_path / "categories.json").write_text(json.dumps([
        {"name": "General", "start_index": 0}, {"name": "Character", "start_index": n - 5},
        {"name": "System", "start_index": n - 3}]))
    L.write_legacy_h5(model, tmp_path / "model-tiny.h5", dtype="float16")
    proj = L.load_project(tmp_path)
    assert proj.tags == tags and proj.model_file.name == "model-tiny.h5"
    assert proj.categories[0] == "General" and proj.categories[n - 4] == "Character" and proj.categories[-1] == "System"
    assert tuple(proj.model.input_shape[1:]) == (64, 64, 3)
    assert np.abs(_predict(proj.model, _x(64, 64)) - _predict(model, _x(64, 64))).max() < 0.05
    # a .keras file wins over the .h5 (DeepDanbooru's lookup order)
    exact = T.build_model(cfg)
    L.set_keras_canonical(exact, L.keras_canonical(model))
    exact.save(tmp_path / "model-tiny.keras")
    proj = L.load_project(tmp_path)
    assert proj.model_file.suffix == ".keras"
    assert np.abs(_predict(proj.model, _x(64, 64)) - _predict(model, _x(64, 64))).max() == 0.0
    (tmp_path / "tags.txt").write_text("\n".join(tags[:-1]))
    with pytest.raises(L.LoadError, match="tags.txt has"):
        L.load_project(tmp_path)


def test_h5_errors_name_the_layer(tiny, tmp_path):
    _, model = tiny
    top = T.topology(model)
    path = L.write_legacy_h5(model, tmp_path / "bad.h5")
    victim = top.blocks[2].bns[1]
    with h5py.File(path, "a") as f:
        del f["model_weights"][victim]
    with pytest.raises(L.LoadError, match=victim):
        L.read_legacy_h5(path)
    path = L.write_legacy_h5(model, tmp_path / "bad2.h5")
    conv = top.blocks[1].convs[1]
    with h5py.File(path, "a") as f:
        g = f["model_weights"][conv]
        wn = L._attr_str(g.attrs["weight_names"][0])
        k = g[wn][()]
        del g[wn]
        g.create_dataset(wn, data=k[:, :, :, :-1])
    with pytest.raises(L.LoadError, match=conv):
        L.load_h5_model(path)


def test_port_state_dict_roundtrip(tiny, tmp_path):
    import torch

    cfg, model = tiny
    tags = [f"t{i}" for i in range(cfg.n_tags)]
    sd = L.write_port_state_dict(L.keras_canonical(model), cfg, tags=tags)
    n_convs = 1 + sum(3 * (1 + r) + 1 for r in cfg.stages()[1]) + 1
    assert len(sd) == 2 * n_convs - 1 + 1 and f"n_Conv_{n_convs - 1}.bias" not in sd and sd["tags"] == tags
    torch.save(sd, tmp_path / "model.pt")
    for folded in (False, True):
        tm = L.load_port_into_torch(tmp_path / "model.pt", cfg=cfg, folded=folded)
        assert tm.tags == tags
        for h, w in SIZES:
            x = _x(h, w)
            with torch.no_grad():
                out = tm(torch.from_numpy(x)).numpy()
            diff = np.abs(out - _predict(model, x)).max()
            assert diff <= 1e-4, (folded, h, w, diff)
    # the folded port back into Keras (BN as identity scale + shift) reproduces the model too
    pcfg, weights, _ = L.read_port_state_dict(sd, cfg)
    unfused = L.keras_to_torch(model)  # structure donor
    unfused.load_canonical(weights)
    back = T.build_model(cfg, input_shape=(None, None, 3))
    L.set_keras_canonical(back, unfused.canonical())
    assert np.abs(_predict(back, _x(67, 53)) - _predict(model, _x(67, 53))).max() <= 1e-4


def test_port_errors_name_the_layer(tiny):
    cfg, model = tiny
    sd = L.write_port_state_dict(L.keras_canonical(model), cfg)
    bad = dict(sd)
    del bad["n_Conv_5.weight"], bad["n_Conv_5.bias"]
    with pytest.raises(L.LoadError, match="n_Conv_5"):
        L.read_port_state_dict(bad, cfg)
    bad = dict(sd)
    bad["n_Conv_7.weight"] = bad["n_Conv_7.weight"][:, :-1]
    with pytest.raises(L.LoadError, match="n_Conv_7"):
        L.read_port_state_dict(bad, cfg)
    bad = dict(sd)
    del bad["n_Conv_3.bias"]
    with pytest.raises(L.LoadError, match="n_Conv_3"):
        L.read_port_state_dict(bad, cfg)
    with pytest.raises(L.LoadError, match="no named"):
        L.read_port_state_dict(sd)  # a custom network needs its cfg


def _v3_port_shapes(n_tags=9176):
    """OIHW shapes of the released port, numbered as the port numbers them (models.md 1.8)."""
    cfg = DeepDanbooruConfig(variant="resnet_custom_v3", n_tags=n_tags)
    fs, rs = cfg.stages()
    shapes, cin = [(64, 3, 7, 7)], 64
    for s, (f, r) in enumerate(zip(fs, rs)):
        m = f // 4
        main = [(m, cin, 1, 1), (m, m, 3, 3), (f, m, 1, 1)]
        sc = [(f, cin, 1, 1)]
        shapes += main + sc if s == 3 else sc + main
        shapes += [(m, f, 1, 1), (m, m, 3, 3), (f, m, 1, 1)] * r
        cin = f
    shapes.append((n_tags, cin, 1, 1))
    return dict(enumerate(shapes))


def test_port_mapping_of_the_released_v3_layout():
    """The released 179-conv numbering: shortcut before the main path in 5 stages, after it in stage 3."""
    shapes = _v3_port_shapes()
    assert len(shapes) == 179
    cfg, mapping = L.port_conv_mapping(shapes)
    assert cfg.variant == "resnet_custom_v3" and cfg.n_tags == 9176
    assert [mapping[f"b{b}.sc"] for b in (0, 3, 11, 31, 51, 54)] == [1, 11, 36, 100, 158, 168]
    assert [mapping["b31.c1"], mapping["b31.c2"], mapping["b31.c3"]] == [97, 98, 99]
    assert mapping["head"] == 178 and len(set(mapping.values())) == 179
    params = sum(int(np.prod(s)) for s in shapes.values()) + sum(s[0] for i, s in shapes.items() if i != 178)
    assert params == 160_956_544  # models.md 1.8: folded port
    wrong = dict(shapes)
    wrong[100] = (1024, 512, 1, 1)
    with pytest.raises(L.LoadError, match="n_Conv_100"):
        L.port_conv_mapping(wrong)


@pytest.mark.slow
def test_full_v3_port_roundtrip_small_input():
    """The whole resnet_custom_v3 (16 tags to save memory) through the port format and back, at a
    small and an odd input size: all 179 convs, the stage-3 shortcut numbering, auto-detected variant."""
    import gc

    import keras
    import torch

    cfg = DeepDanbooruConfig(variant="resnet_custom_v3", n_tags=16, image_size=64)
    model = T.build_model(cfg, input_shape=(None, None, 3))
    T.make_nontrivial(model, np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)), seed=3)
    sd = L.write_port_state_dict(L.keras_canonical(model), cfg, tags=[f"t{i}" for i in range(16)])
    assert sum(k.endswith(".weight") for k in sd) == 179 and "n_Conv_178.bias" not in sd
    tm = L.load_port_into_torch(sd)  # no cfg: detected as resnet_custom_v3 from the conv shapes
    assert tm.cfg.variant == "resnet_custom_v3"
    del sd
    for h, w in ((64, 64), (67, 53)):
        x = _x(h, w, n=1)
        with torch.no_grad():
            out = tm(torch.from_numpy(x)).numpy()
        assert np.abs(out - _predict(model, x)).max() <= 1e-4
    del model, tm
    keras.backend.clear_session()
    gc.collect()
