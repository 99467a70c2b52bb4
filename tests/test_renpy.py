"""The real Ren'Py images: labels from file names, sprites composited on white, backgrounds as is."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from acg2vec_lab.data import renpy as R


def test_parse_name():
    assert R.parse_name("sylvie green surprised.png") == {
        "kind": "sprite", "character": "sylvie", "outfit": "green", "expression": "surprised",
        "scene": None, "file": "sylvie green surprised.png"}
    assert R.parse_name("eileen happy.png")["outfit"] is None
    bg = R.parse_name("bg lecturehall.jpg")
    assert bg["kind"] == "background" and bg["scene"] == "lecturehall" and bg["character"] is None
    with pytest.raises(ValueError):
        R.parse_name("a b c d.png")


@pytest.mark.assets
def test_renpy_images_real():
    from acg2vec_lab.data import renpy_images

    items = renpy_images()
    sprites = [(im, l) for im, l in items if l["kind"] == "sprite"]
    backgrounds = [(im, l) for im, l in items if l["kind"] == "background"]
    assert len(sprites) == 8 and len(backgrounds) == 4
    assert {(l["outfit"], l["expression"]) for _, l in sprites} == {
        (o, e) for o in ("blue", "green") for e in ("normal", "smile", "giggle", "surprised")}
    assert {l["character"] for _, l in sprites} == {"sylvie"}
    assert {l["scene"] for _, l in backgrounds} == {"club", "lecturehall", "meadow", "uni"}
    for im, _ in items:
        assert im.mode == "RGB"
    path, labels = R.renpy_image_paths("sprite")[0]
    raw = np.asarray(Image.open(path).convert("RGBA")).astype(float)
    got = np.asarray(dict((l["file"], im) for im, l in sprites)[labels["file"]]).astype(float)
    assert got.shape[:2] == raw.shape[:2] and got.shape[:2][0] == 700
    alpha = raw[..., 3:] / 255.0
    expect = raw[..., :3] * alpha + 255.0 * (1 - alpha)  # composited on white
    assert np.abs(got - expect).max() <= 1.0
    assert (got[alpha[..., 0] == 0] == 255).all() and (alpha == 0).mean() > 0.2
    for im, l in backgrounds:  # unchanged JPEGs
        assert im.size == (1280, 720)
        raw_bg = dict((l2["file"], p) for p, l2 in R.renpy_image_paths("background"))[l["file"]]
        assert np.array_equal(np.asarray(im), np.asarray(Image.open(raw_bg).convert("RGB")))
    assert [l["file"] for _, l in renpy_images("background")] == [l["file"] for _, l in backgrounds]
    with pytest.raises(ValueError):
        R.renpy_image_paths("portrait")
