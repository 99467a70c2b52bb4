"""``acg2vec-lab upscale``: folder, resumable, bad files reported and skipped, atomic outputs."""
import json

import numpy as np
from PIL import Image

from acg2vec_lab import cli


def test_upscale_folder_resumable(tmp_path, capsys):
    from acg2vec_lab.models.real_cugan import weights

    weights.models_dir()  # the official weights are an asset: missing -> AssetError, not a skip
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)).save(src / "a.png")
    Image.fromarray(rng.integers(0, 256, (30, 41, 4), dtype=np.uint8), "RGBA").save(src / "b.png")
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    rc = cli.main(["upscale", str(src), str(tmp_path / "out"), "--scale", "2", "--tile", "exact", "--tile-size", "16"])
    first = json.loads(capsys.readouterr().out)
    assert rc == 1 and len(first["done"]) == 2 and first["failed"][0]["file"].endswith("broken.jpg")
    assert Image.open(tmp_path / "out" / "a.png").size == (82, 60)
    assert not list((tmp_path / "out").glob("*.part"))
    rc = cli.main(["upscale", str(src), str(tmp_path / "out")])
    second = json.loads(capsys.readouterr().out)
    assert second["done"] == [] and len(second["skipped_existing"]) == 2
    assert cli.main(["upscale", str(src / "a.png"), str(tmp_path / "x.png"), "--scale", "4", "--denoise", "denoise1x"]) == 2


def test_upscale_takes_released_pth_and_ncnn_files(tmp_path, capsys):
    """``--weights``: an upstream ``.pth`` (written here with plain ``torch.save`` of a state dict, the
    release's format) and an ncnn ``.param`` + ``.bin`` (a copy of the official pair) give the same
    pixels as the official model they hold; a wrong file is an error naming it."""
    import shutil

    import torch

    from acg2vec_lab.models.real_cugan import weights

    src = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 23, 3), dtype=np.uint8)).save(src)
    assert cli.main(["upscale", str(src), str(tmp_path / "official.png"), "--no-progress"]) == 0
    official = np.asarray(Image.open(tmp_path / "official.png"))
    model, pro = weights.load_official("models-se/up2x-conservative")
    pth = tmp_path / "up2x-conservative.pth"
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, pth)
    param = weights.param_path("models-se/up2x-conservative")
    ncnn = tmp_path / "ncnn"
    ncnn.mkdir()
    shutil.copy(param, ncnn / param.name)
    shutil.copy(param.with_suffix(".bin"), ncnn / param.with_suffix(".bin").name)
    capsys.readouterr()
    for w in (pth, ncnn / param.name):
        out = tmp_path / f"{w.suffix[1:]}.png"
        assert cli.main(["upscale", str(src), str(out), "--weights", str(w), "--no-progress"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["weights"] == f"released: {w}" and summary["device"]["device"] == "cpu"
        assert np.array_equal(np.asarray(Image.open(out)), official), w
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    (ncnn / param.with_suffix(".bin").name).unlink()
    for bad, why in ((tmp_path / "bad.pth", "bad.pth"), (ncnn / param.name, "are not beside it"),
                     (tmp_path / "a.png", "not a Real-CUGAN file")):
        assert cli.main(["upscale", str(src), str(tmp_path / "x.png"), "--weights", str(bad)]) == 2
        assert why in capsys.readouterr().err
