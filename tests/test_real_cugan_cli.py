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
