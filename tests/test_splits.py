"""Splits by hashed id, and the duplicate check across splits: zero leaks on the generated tiny set,
and planted duplicates (byte-identical and re-encoded) are found."""
from __future__ import annotations

import shutil

import pytest

from acg2vec_lab.data import DanbooruDataset, load_image, synthetic_dataset
from acg2vec_lab.data.danbooru import Post
from acg2vec_lab.data.splits import dataset_leaks, find_leaks, split_counts, split_of


def test_split_is_a_pure_function_of_the_id():
    ids = list(range(1, 20001))
    first = [split_of(i) for i in ids]
    assert [split_of(i) for i in reversed(ids)] == first[::-1]
    counts = split_counts(ids)
    assert abs(counts["val"] / 20000 - 0.1) < 0.01 and abs(counts["test"] / 20000 - 0.1) < 0.01
    assert split_of(12345) == split_of("12345")  # ids from JSON strings split the same way
    # growing the val share only moves train items into val; nothing leaves test
    moved = [(a, split_of(i, 0.2, 0.1)) for i, a in zip(ids, first) if split_of(i, 0.2, 0.1) != a]
    assert moved and all(a == "train" and b == "val" for a, b in moved)


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset("smoke")


def test_generated_tiny_set_has_no_leaks(tiny):
    report = dataset_leaks(tiny)
    assert report.n_items == len(tiny.posts)
    assert report.n_leaks == 0, report.summary()
    assert {s for s in ("train", "val", "test") if tiny.split(s)} == {"train", "val", "test"}


def _plant(tiny: DanbooruDataset, tmp_path, how: str):
    """Copy the set's metadata, plus one post whose picture duplicates a train post, into a new set
    where the planted post's id hashes into test."""
    src = tiny.split("train")[0]
    new_id = next(i for i in range(10**6, 10**6 + 1000) if split_of(i) == "test")
    planted = Post(new_id, "f" * 32, "jpg", "g", tags=list(src.tags))
    posts = list(tiny.posts) + [planted]
    ds = DanbooruDataset(posts, tiny.image_root, tiny.layout, root=tmp_path)
    dst = ds.image_path(planted)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if how == "exact":
        shutil.copyfile(tiny.image_path(src), dst)
    else:  # re-encoded at another quality and size: same picture, different bytes
        im = load_image(tiny.image_path(src))
        im.resize((im.width + 7, im.height + 7)).save(dst, quality=70)
    return ds, src, planted, dst


@pytest.mark.parametrize("how", ["exact", "reencoded"])
def test_planted_duplicate_is_detected(tiny, tmp_path, how):
    # write the planted file inside a private copy of the image root, so the cached set is untouched
    root = tmp_path / "original"
    shutil.copytree(tiny.image_root, root)
    tiny_copy = DanbooruDataset(tiny.posts, root, tiny.layout, root=tmp_path)
    ds, src, planted, dst = _plant(tiny_copy, tmp_path, how)
    report = dataset_leaks(ds)
    pairs = report.exact if how == "exact" else report.perceptual
    assert report.n_leaks == 1, report.summary()
    (leak,) = pairs
    assert {(leak[0], leak[1]), (leak[2], leak[3])} == {("train", str(src.id)), ("test", str(planted.id))}


def test_phash_candidates_need_pixel_agreement(tmp_path):
    from PIL import Image

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (32, 32), (250, 250, 250)).save(a)
    Image.new("RGB", (32, 32), (10, 10, 10)).save(b)  # flat images: identical phash, different pictures
    items = [("train", "1", a), ("test", "2", b)]
    assert find_leaks(items).n_leaks == 0 and find_leaks(items).candidates_rejected == 1
    assert len(find_leaks(items, max_thumb_diff=None).perceptual) == 1
