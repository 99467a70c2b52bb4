"""Real-CUGAN: PyTorch reference, ncnn and .pth loaders, TF port parity, tiling, ACG2vec layout."""
import numpy as np
import pytest
import torch

import acg2vec_lab  # noqa: F401  (before tensorflow)
from acg2vec_lab.models.real_cugan import convert, tiling, weights
from acg2vec_lab.models.real_cugan import torch_model as tm


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tiny_random_parity_and_keys(scale):
    torch.manual_seed(scale)
    m = tm.UpCunet(scale, 4, True, 2).eval()
    for p in m.parameters():  # larger weights so SE and every path matter
        p.data.mul_(3.0)
    tfm = convert.tf_from_torch(m)
    for hw in [(37, 53), (40, 40), (9, 11)]:
        x = torch.rand(1, 3, *hw)
        with torch.no_grad():
            y = _nhwc(m(x))
        yt = tfm(x.numpy().transpose(0, 2, 3, 1)).numpy()
        assert y.shape == (1, scale * hw[0], scale * hw[1], 3)
        assert np.abs(y - yt).max() <= 1e-4 * max(1.0, np.abs(y).max())
    led = convert.parity_ledger(m, tfm, torch.rand(1, 3, 37, 53))
    assert list(led.columns[:7]) == ["layer", "torch", "tf", "weight_transform", "crop", "output_shape", "max_abs_diff"]
    assert (led.rel_diff < 1e-5).all()
    assert (led.max_abs_diff < 1e-4).all()
    assert led.loc[led.layer == "unet1.conv_bottom", "crop"].item() != "-"


def test_official_width_keys_and_counts():
    counts = {2: 1_284_598, 3: 1_286_326, 4: 1_406_812}
    for s, n in counts.items():
        m = tm.UpCunet(s)
        assert sum(p.numel() for p in m.parameters()) == n
        assert len(m.state_dict()) == (62 if s == 4 else 60)
    sd = tm.UpCunet(2).state_dict()
    assert sd["unet1.conv_bottom.weight"].shape == (64, 3, 4, 4)
    assert sd["unet2.conv_bottom.weight"].shape == (3, 64, 3, 3)
    assert sd["unet2.conv2.seblock.conv1.weight"].shape == (16, 128, 1, 1)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pth_roundtrip_with_pro_key(tmp_path, scale):
    torch.manual_seed(0)
    src = tm.UpCunet(scale)
    sd = dict(src.state_dict())
    sd["pro"] = torch.tensor(1)
    torch.save(sd, tmp_path / "w.pth")
    m, pro = tm.load_pth(str(tmp_path / "w.pth"))
    assert pro and m.scale == scale
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v)
    sd.pop("pro")
    sd.pop("unet2.conv5.bias")
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="unet2.conv5.bias"):
        tm.load_pth(str(tmp_path / "bad.pth"))


def test_all_official_models_parse_load_and_tf_parity():
    weights_dir = weights.models_dir()  # a missing asset fails with AssetError (no skip)
    assert weights_dir.is_dir()
    # real art, not uniform noise: on noise the pro models' unet2 activations explode to ~1e7
    # (out of distribution), and float32 rounding then exceeds 1e-4 in both frameworks alike.
    real = weights.load_renpy(weights.renpy_image_paths()[4])  # a sprite on white
    crops = [np.ascontiguousarray(real[120:157, 100:153]), np.ascontiguousarray(real[200:264, 150:214])]
    results = {}
    for name in weights.OFFICIAL_MODELS:
        m, pro = weights.load_official(name)  # strict load
        tfm = convert.tf_from_torch(m)
        worst, agree = 0.0, 1.0
        for img in crops:  # 37x53 (odd) and 64x64
            x = torch.from_numpy(tm.to_network_range(img, pro)).permute(2, 0, 1)[None]
            with torch.no_grad():
                y = _nhwc(m(x))
            yt = tfm(x.numpy().transpose(0, 2, 3, 1)).numpy()
            worst = max(worst, float(np.abs(y - yt).max()))
            qa = tm.quantize(tm.from_network_range_float(y, pro))
            qb = tm.quantize(tm.from_network_range_float(yt, pro))
            agree = min(agree, float((qa == qb).mean()))
        results[name] = (worst, agree)
        assert worst <= 1e-4, (name, worst)
        assert agree >= 0.999, (name, agree)
    for k, (a, b) in results.items():
        print(f"PARITY {k}: max|diff| {a:.2e}  uint8 identical {b:.5f}")


def test_official_larger_size_parity():
    m, pro = weights.load_official("models-se/up2x-conservative")
    img = weights.load_renpy(weights.renpy_image_paths()[0])[100:301, 200:451]  # 201x251, odd
    x = torch.from_numpy(tm.to_network_range(np.ascontiguousarray(img), pro)).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = _nhwc(m(x))
    yt = convert.tf_from_torch(m)(x.numpy().transpose(0, 2, 3, 1)).numpy()
    assert np.abs(y - yt).max() <= 1e-4
    assert (tm.quantize(y * 255) == tm.quantize(yt * 255)).mean() >= 0.999


def test_tiling_exact_matches_whole_cache_does_not():
    m, pro = weights.load_official("models-se/up2x-conservative")
    img = weights.load_renpy(weights.renpy_image_paths()[0])[200:270, 300:390]  # 70x90 (< 128 px)
    x = torch.from_numpy(tm.to_network_range(np.ascontiguousarray(img), pro)).permute(2, 0, 1)[None]
    with torch.no_grad():
        whole = _nhwc(m(x))
    exact = _nhwc(tiling.torch_upscale(m, x, mode="exact", tile=48))
    cache = _nhwc(tiling.torch_upscale(m, x, mode="cache", tile=48))
    assert np.abs(exact - whole).max() < 1e-4  # float summation order only (measured 2e-5)
    assert np.abs(cache - whole).max() > 1e-3  # the reference semantics really differ (measured ~2e-2)
    tfm = convert.tf_from_torch(m)
    exact_tf = tiling.tf_upscale(tfm, x.numpy().transpose(0, 2, 3, 1), mode="exact", tile=32)
    assert np.abs(exact_tf - whole).max() < 1e-4


@pytest.mark.parametrize("scale", [3, 4])
def test_tiling_exact_other_scales_tiny(scale):
    torch.manual_seed(1)
    m = tm.UpCunet(scale, 4, True, 2).eval()
    for p in m.parameters():
        p.data.mul_(3.0)
    x = torch.rand(1, 3, 30, 45)
    with torch.no_grad():
        whole = _nhwc(m(x))
    exact = _nhwc(tiling.torch_upscale(m, x, mode="exact", tile=12))
    assert exact.shape == whole.shape
    assert np.abs(exact - whole).max() < 1e-5 * max(1.0, float(np.abs(whole).max()))


def test_acg2vec_layout_loader_and_bug(tmp_path):
    torch.manual_seed(0)
    m = tm.UpCunet(2, 4, True, 2).eval()
    for p in m.parameters():
        p.data.mul_(3.0)
    variables = convert.acg2vec_export_variables(m.state_dict())
    np.savez(tmp_path / "acg2vec.npz", *variables)
    z = np.load(tmp_path / "acg2vec.npz")
    loaded = [z[f"arr_{i}"] for i in range(len(z.files))]
    assert loaded[0].shape == (3, 3, 3, 4)  # (kw, kh, in, out)
    sd = convert.state_dict_from_acg2vec_variables(loaded, tm.UpCunet(2, 4, True, 2).state_dict())
    for k, v in m.state_dict().items():
        assert torch.equal(sd[k], v), k
    # the usual HWIO->OIHW (3,2,0,1) would swap kh/kw back wrongly: non-square kernels show it
    from acg2vec_lab.models.real_cugan import tf_model

    bad = tf_model.TFUpCunet(2, 4, True, 2)
    convert.load_into_tf_acg2vec_bug(bad, m.state_dict())
    x = np.random.default_rng(0).random((1, 21, 34, 3)).astype(np.float32)
    y_bad = bad(x).numpy()
    y_tft = convert.tf_from_torch(m)(x.transpose(0, 2, 1, 3)).numpy().transpose(0, 2, 1, 3)
    with torch.no_grad():
        y_ref = _nhwc(m(torch.from_numpy(x.transpose(0, 3, 1, 2))))
    assert np.abs(y_bad - y_tft).max() < 1e-4  # buggy port == T(f(T(x)))
    assert np.abs(y_bad - y_ref).max() > 1e-3  # and != f(x)
