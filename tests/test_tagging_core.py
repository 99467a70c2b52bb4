"""Thresholds, exclusions, caption formatting and preprocessing of the tagging package."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from acg2vec_lab.tagging.format import Writer, caption, caption_tag, is_kaomoji, read_caption, sidecar_path
from acg2vec_lab.tagging.thresholds import TaggedTag, ThresholdPolicy, apply_thresholds, preset, select_tags

TAGS = ["1girl", "long_hair", "smile", "^_^", "white_background", "simple_background", "hatsune_miku",
        "ganyu_(genshin_impact)", "rating:safe", "rating:questionable", "rating:explicit"]
CATS = [0, 0, 0, 0, 0, 0, 4, 4, 9, 9, 9]


def test_per_category_thresholds_and_rating_argmax():
    probs = np.array([0.9, 0.4, 0.3, 0.36, 0.2, 0.1, 0.84, 0.86, 0.2, 0.5, 0.3])
    out = select_tags(probs, TAGS, CATS)
    names = [t.name for t in out]
    # general >= 0.35: 1girl .9, long_hair .4, ^_^ .36; character >= .85: ganyu; rating arg-max questionable
    assert names == ["1girl", "ganyu_(genshin_impact)", "long_hair", "^_^", "rating:questionable"]
    # rating is emitted even when every rating score is tiny (never thresholded)
    low = probs.copy()
    low[8:] = [0.01, 0.02, 0.03]
    assert select_tags(low, TAGS, CATS)[-1].name == "rating:explicit"


def test_cap_exclusions_and_per_tag_override():
    probs = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.5, 0.9, 0.1, 0.9, 0.05, 0.05])
    pol = ThresholdPolicy(exclude=("*_background", "re:smi.e"), max_tags=2)
    names = [t.name for t in select_tags(probs, TAGS, CATS, pol)]
    assert names == ["1girl", "hatsune_miku", "rating:safe"]  # 2 kept + rating, excluded never counted
    per_tag = np.full(len(TAGS), np.nan)
    per_tag[0] = 0.95  # 1girl now needs 0.95
    names = [t.name for t in select_tags(probs, TAGS, CATS, ThresholdPolicy(per_tag=per_tag))]
    assert "1girl" not in names and "long_hair" in names
    # a pattern with spaces matches the underscore spelling
    names = [t.name for t in select_tags(probs, TAGS, CATS, ThresholdPolicy(exclude=("white background",)))]
    assert "white_background" not in names and "simple_background" in names


def test_apply_thresholds_matches_select_tags():
    rng = np.random.default_rng(0)
    probs = rng.random((20, len(TAGS)))
    pol = preset("recall")
    pred = apply_thresholds(probs, CATS, pol)
    for i in range(20):
        got = {TAGS[j] for j in np.flatnonzero(pred[i])}
        assert got == {t.name for t in select_tags(probs[i], TAGS, CATS, pol)}
    assert pred[:, 8:].sum(1).tolist() == [1] * 20


def test_caption_spelling():
    assert caption_tag("long_hair") == "long hair"
    assert caption_tag("^_^") == "^_^" and caption_tag(">_<") == ">_<" and is_kaomoji("o_o")
    assert not is_kaomoji("no_humans")
    assert caption_tag("ganyu_(genshin_impact)") == r"ganyu \(genshin impact\)"
    assert caption_tag("ganyu_(genshin_impact)", underscores=True, escape=False) == "ganyu_(genshin_impact)"
    tags = [TaggedTag("smile", 0.9, 0), TaggedTag("^_^", 0.5, 0), TaggedTag("rating:safe", 0.9, 9)]
    assert caption(tags, trigger="mychar") == "mychar, smile, ^_^"


@pytest.mark.parametrize("fmt", ["txt", "hydrus", "json", "csv"])
def test_writers_roundtrip_and_done(tmp_path, fmt):
    img = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(img)
    w = Writer(fmt, root=tmp_path)
    assert not w.is_done(img)
    tags = [TaggedTag("long_hair", 0.9, 0), TaggedTag("smile", 0.5, 0), TaggedTag("rating:safe", 0.8, 9)]
    out = w.write(img, tags)
    assert w.is_done(img) and out.exists()
    if fmt == "txt":
        assert out == tmp_path / "a.txt" and read_caption(out) == ["long hair", "smile"]
    elif fmt == "hydrus":
        assert out == tmp_path / "a.png.txt" and read_caption(out) == ["long hair", "smile"]
    elif fmt == "csv":
        assert Writer("csv", root=tmp_path).is_done(img)  # a fresh writer reads the CSV back
    assert not list(tmp_path.glob(".*part"))  # no temp files left
    assert sidecar_path(img, "txt", tmp_path / "out", tmp_path) == tmp_path / "out" / "a.txt"


def test_preprocess_modes_shapes_and_edge_padding():
    from acg2vec_lab.models.deepdanbooru.preprocess import a1111_fill, deepdanbooru_eval, fit_size, stretch

    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :, 0] = 255  # red image, wide
    arr[0, :, 1] = 255  # top row yellow: edge replication copies it upward
    img = Image.fromarray(arr)
    assert fit_size(40, 20, 32, 32) == (32, 16)
    x = deepdanbooru_eval(img, (32, 32))
    assert x.shape == (32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.allclose(x[0, :, 0], 1.0) and x[0, 16, 1] > 0.5  # top band = replicated yellow row
    assert np.allclose(x[31, :, 1], 0.0, atol=1e-5)  # bottom band = replicated red row
    assert stretch(img, (32, 24)).shape == (32, 24, 3)
    y = a1111_fill(img, (32, 32))
    assert y.shape == (32, 32, 3) and y[0, 16, 1] > 0.5
