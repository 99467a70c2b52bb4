"""DeepDanbooru architectures against models.md section 1: parameter counts, layer types, cut points,
TF "same" padding arithmetic and BN folding."""
from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.config import PROFILES, load_config
from acg2vec_lab.models.deepdanbooru import tf_model as T
from acg2vec_lab.models.deepdanbooru.config import DeepDanbooruConfig
from acg2vec_lab.port.bn import fold_bn
from acg2vec_lab.port.layout import hwio_to_oihw, oihw_to_hwio
from acg2vec_lab.port.padding import same_padding


@pytest.mark.slow
def test_v3_at_512_matches_the_spec():
    """resnet_custom_v3, 9176 tags, 512x512: counts, layer types, stage table and both cut points."""
    import keras

    keras.backend.clear_session()  # fresh session: Keras names as in the released file
    m = T.resnet_custom_v3(n_tags=9176, image_size=512)
    counts = T.count_params(m)
    assert counts == {"total": 161_272_768, "trainable": 161_061_952, "non_trainable": 210_816}
    assert T.analytic_param_counts(load_config("deepdanbooru", "full")) == counts
    types = T.layer_type_counts(m)
    assert types["Conv2D"] == 179 and types["BatchNormalization"] == 178 and types["Add"] == 57
    assert types["Activation"] == 173 and types["MaxPooling2D"] == 1 and types["GlobalAveragePooling2D"] == 1
    assert len(m.layers) == 590
    assert tuple(m.get_layer(T.topology(m).head).kernel.shape) == (1, 1, 4096, 9176)
    top = T.topology(m)
    assert [len(s) for s in top.stage_blocks()] == [3, 8, 20, 20, 3, 3]
    assert top.filter_sizes == (256, 512, 1024, 1024, 2048, 4096)
    a96, a43 = T.cut_block(top, "activation_96"), T.cut_block(top, "add_43")
    assert (a96.index, a43.index) == (31, 43) and a96.is_projection and a96.stride == 2
    # located by position, and in a fresh session the positions carry the names the README/code use
    assert T.cut_layer_name(top, "activation_96") == "activation_96"
    assert T.cut_layer_name(top, "add_43") == "add_43"
    assert a96.add == "add_31" and a43.relu == "activation_132"
    for cut in ("activation_96", "add_43"):
        assert tuple(m.get_layer(T.cut_layer_name(top, cut)).output.shape[1:]) == (16, 16, 1024)
    spatial = [r["spatial"] for r in T.stage_table(m)]
    assert spatial == ["128x128", "64x64", "32x32", "16x16", "8x8", "4x4"]
    # backbone sizes (models.md 1.3): input -> activation_96 and input -> add_43
    for cut, total, trainable in (("activation_96", 27_556_800, 27_471_936), ("add_43", 40_999_872, 40_878_144)):
        sub = keras.Model(m.inputs, m.get_layer(T.cut_layer_name(top, cut)).output)
        assert T.count_params(sub)["total"] == total and T.count_params(sub)["trainable"] == trainable
    # a second build in the same session shifts every suffix, positions stay
    m2 = T.build_model(load_config("deepdanbooru", variant="tiny"))
    assert T.cut_layer_name(T.topology(m2), "activation_96") != "activation_21"  # tiny in a fresh session
    del m, m2, sub
    keras.backend.clear_session()
    gc.collect()


@pytest.mark.slow
@pytest.mark.parametrize("variant,size,total,convs,adds", [
    ("resnet_custom_v1", 512, 122_250_176, 166, 53),
    ("resnet_custom_v2", 512, 124_013_504, 287, 93),
    ("resnet_custom_v4", 512, 59_087_808, 149, 47),
    ("resnet_152", 224, 60_344_232, 155, 50),
])
def test_variant_parameter_counts(variant, size, total, convs, adds):
    import keras

    m = T.BUILDERS[variant](n_tags=1000, image_size=size)
    assert T.count_params(m)["total"] == total
    assert T.analytic_param_counts(DeepDanbooruConfig(variant=variant, n_tags=1000, image_size=size)) == T.count_params(m)
    types = T.layer_type_counts(m)
    assert types["Conv2D"] == convs and types["Add"] == adds
    if variant == "resnet_152":
        assert types["Dense"] == 1 and m.get_layer("ap_final") is not None
    del m
    keras.backend.clear_session()
    gc.collect()


@pytest.mark.parametrize("profile", PROFILES)
def test_configs_load_and_tiny_keeps_every_layer_type(profile):
    cfg = load_config("deepdanbooru", profile)
    assert isinstance(cfg, DeepDanbooruConfig)
    if profile == "full":
        assert cfg.variant == "resnet_custom_v3" and cfg.image_size == 512 and cfg.n_tags == 9176
        return
    m = T.build_model(cfg)
    assert T.analytic_param_counts(cfg) == T.count_params(m)
    assert set(T.layer_type_counts(m)) == {"InputLayer", "Conv2D", "BatchNormalization", "Activation",
                                           "MaxPooling2D", "Add", "GlobalAveragePooling2D"}
    top = T.topology(m)
    assert len(top.filter_sizes) == 6  # six stages as v3, so both cut points have a stage-3 home
    assert any(b.stride == 2 for b in top.blocks) and any(not b.is_projection for b in top.blocks)
    assert m.get_layer(top.stem_conv).kernel_size == (7, 7) and m.get_layer(top.stem_conv).strides == (2, 2)
    zero_gamma = [b for b in top.blocks if np.all(m.get_layer(b.bns[2]).gamma.numpy() == 0)]
    assert len(zero_gamma) == len(top.blocks)
    for name in top.weight_layers()[:-1]:
        layer = m.get_layer(name)
        if hasattr(layer, "use_bias"):
            assert not layer.use_bias
        else:
            assert layer.epsilon == 1e-3 and layer.momentum == 0.99
    assert m.output.dtype == "float32"
    assert T.cut_block(top, "activation_96").index != T.cut_block(top, "add_43").index


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown variant"):
        DeepDanbooruConfig(variant="resnet_custom_v9")
    with pytest.raises(ValueError, match="custom"):
        DeepDanbooruConfig(variant="resnet_custom_v3", filter_sizes=(16,), repeat_sizes=(1,))
    with pytest.raises(ValueError, match="embedding_cut"):
        DeepDanbooruConfig(embedding_cut="add_44")


def test_topology_error_names_the_layer():
    import keras

    inp = keras.Input((32, 32, 3))
    x = T.conv_bn_relu(inp, 8, 7, 2)
    x = keras.layers.MaxPool2D(3, 2, padding="same")(x)
    c = T.conv_bn_relu(x, 4, 1)
    c = T.conv(c, 16, 1)  # BN missing after the third conv
    s = T.conv_bn(x, 16, 1)
    add = keras.layers.Add(name="broken_add")([c, s])
    y = keras.layers.Activation("relu")(add)
    y = keras.layers.GlobalAveragePooling2D()(T.conv(y, 4, 1))
    m = keras.Model(inp, keras.layers.Activation("sigmoid")(y))
    with pytest.raises(T.TopologyError, match="broken_add"):
        T.topology(m)


def test_same_padding_reference_values():
    assert same_padding(512, 7, 2) == (2, 3)
    assert same_padding(256, 3, 2) == (0, 1)
    assert same_padding(256, 1, 2) == (0, 0)
    assert same_padding(64, 3, 1) == (1, 1)
    assert same_padding(67, 7, 2) == (3, 3) and same_padding(53, 3, 2) == (1, 1)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 23), w=st.integers(1, 23), k=st.sampled_from([1, 3, 7]), s=st.sampled_from([1, 2]))
def test_pad_same_matches_tensorflow_conv(h, w, k, s):
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    from acg2vec_lab.port.padding import pad_same

    rng = np.random.default_rng(h * 100 + w)
    x = rng.normal(size=(1, h, w, 2)).astype(np.float32)
    kern = rng.normal(size=(k, k, 2, 3)).astype(np.float32)
    ref = tf.nn.conv2d(x, kern, strides=s, padding="SAME").numpy()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    out = F.conv2d(pad_same(xt, k, s), torch.from_numpy(kern).permute(3, 2, 0, 1), stride=s)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)
    pref = tf.nn.max_pool2d(x, 3, s, "SAME").numpy()
    pout = F.max_pool2d(pad_same(xt, 3, s, value=float("-inf")), 3, s)
    np.testing.assert_allclose(pout.permute(0, 2, 3, 1).numpy(), pref, atol=0)


def test_fold_bn_equals_conv_then_bn():
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3, 3, 3)).astype(np.float32)
    g, b, m, v = rng.uniform(0.5, 2, 5), rng.normal(size=5), rng.normal(size=5), rng.uniform(0.1, 2, 5)
    x = torch.from_numpy(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    ref = F.batch_norm(F.conv2d(x, torch.from_numpy(w)), torch.tensor(m, dtype=torch.float32),
                       torch.tensor(v, dtype=torch.float32), torch.tensor(g, dtype=torch.float32),
                       torch.tensor(b, dtype=torch.float32), training=False, eps=1e-3)
    wf, bf = fold_bn(w, g, b, m, v, eps=1e-3)
    out = F.conv2d(x, torch.from_numpy(wf), torch.from_numpy(bf))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=5e-5)
    wh, bh = fold_bn(oihw_to_hwio(w), g, b, m, v, layout="hwio")
    np.testing.assert_allclose(hwio_to_oihw(wh), wf, rtol=1e-6)
    with pytest.raises(ValueError, match="output channels"):
        fold_bn(w, g[:4], b[:4], m[:4], v[:4])
