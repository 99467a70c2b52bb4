"""waifu2x UpConv7 with the real anime-style weights."""
import pytest

import acg2vec_lab  # noqa: F401
from acg2vec_lab.models import waifu2x


def test_upconv7_real_weights_beat_bicubic():
    from acg2vec_lab.models.real_cugan import quality

    try:
        path = waifu2x.model_path()
        crops = quality.hr_crops(1, 96)
    except Exception as exc:
        if type(exc).__name__ in ("AssetError", "FileNotFoundError"):
            pytest.skip(f"asset unavailable: {exc}")
        raise
    m = waifu2x.load_npz(path)
    assert sum(p.numel() for p in m.parameters()) == 994_976
    hr = crops[0][1]
    lr = quality.bicubic(hr, (hr.shape[1] // 2, hr.shape[0] // 2))
    out = waifu2x.upscale_image(m, lr)
    assert out.shape == hr.shape
    assert quality.psnr(out, hr) > quality.psnr(quality.bicubic(lr, (hr.shape[1], hr.shape[0])), hr) + 1.0
