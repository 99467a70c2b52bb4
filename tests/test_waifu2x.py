"""waifu2x UpConv7 with the real anime-style weights, and its quality gate against bicubic."""
import pytest
import torch

import acg2vec_lab  # noqa: F401
from acg2vec_lab.gates import QualityGateError, check_all
from acg2vec_lab.models import waifu2x
from acg2vec_lab.models.real_cugan import quality


@pytest.fixture(scope="module")
def crops():
    return quality.hr_crops(2, 96)  # one background, one sprite (the smoke profile's crops)


def test_upconv7_real_weights_pass_the_gate(crops):
    m = waifu2x.load_npz(waifu2x.model_path())
    assert sum(p.numel() for p in m.parameters()) == 994_976
    hr = crops[0][1]
    assert waifu2x.upscale_image(m, quality.downscale(hr)).shape == hr.shape
    qt = quality.quality_table(crops, [], tf_too=False, waifu2x_model=m)
    gate = quality.waifu2x_gate(qt)
    print(gate.describe())
    check_all([gate], record=False)


def test_gate_fails_for_broken_waifu2x(crops):
    """Shuffling each weight tensor (same values, wrong places) must fail the gate."""
    m = waifu2x.load_npz(waifu2x.model_path())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.flatten()[torch.randperm(p.numel(), generator=g)].reshape(p.shape))
    qt = quality.quality_table(crops, [], tf_too=False, waifu2x_model=m)
    with pytest.raises(QualityGateError, match="waifu2x/psnr_vs_bicubic"):
        check_all([quality.waifu2x_gate(qt)], record=False)
