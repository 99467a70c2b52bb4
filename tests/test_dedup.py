"""De-duplication: exact hash, perceptual hash, embedding neighbours, groups and split leakage."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from acg2vec_lab.retrieval import dedup


def pictures(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)  # smooth distinct pictures
        out.append(Image.fromarray(small).resize((96, 96), Image.BILINEAR))
    return out


def test_exact_groups(tmp_path):
    imgs = pictures(3)
    paths = []
    for i, im in enumerate(imgs):
        p = tmp_path / f"{i}.png"
        im.save(p)
        paths.append(p)
    (tmp_path / "copy.png").write_bytes(paths[1].read_bytes())
    groups = dedup.exact_duplicate_groups(paths + [tmp_path / "copy.png"])
    assert [sorted(p.name for p in g) for g in groups] == [["1.png", "copy.png"]]


def test_perceptual_pairs_find_edited_copies_only():
    imgs = pictures(6)
    edited = [imgs[0].resize((80, 80)), imgs[2].filter(ImageFilter.GaussianBlur(1)), imgs[4].rotate(180)]
    h = dedup.perceptual_hashes(imgs + edited)
    assert h.shape == (9, 64) and h.dtype == bool
    pairs = dedup.perceptual_duplicate_pairs(h, max_distance=8)
    found = set(zip(pairs["i"], pairs["j"]))
    assert (0, 6) in found and (2, 7) in found
    assert (4, 8) not in found  # a rotated picture is a different picture to a phash
    assert all(j >= 6 for _, j in found)  # no false pairs between distinct pictures
    assert dedup.duplicate_groups(found, 9)[:2] == [[0, 6], [2, 7]]


def test_embedding_sweep_groups_and_leakage():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 16)).astype(np.float32)
    dup = base[:10] + 0.01 * rng.normal(size=(10, 16)).astype(np.float32)
    x = np.concatenate([base, dup])
    truth = [i if i < 10 else None for i in range(40)] + list(range(10))
    sweep = dedup.threshold_sweep(x, [0.5, 0.99, 0.99999], true_groups=truth)
    mid = sweep.set_index("threshold").loc[0.99]
    assert mid["recall"] == 1.0 and mid["precision"] == 1.0 and mid["groups"] == 10
    assert sweep["pairs"].is_monotonic_decreasing
    groups = dedup.duplicate_groups(dedup.embedding_duplicate_pairs(x, 0.99), len(x))
    assert sorted(groups) == [[i, 40 + i] for i in range(10)]
    leaks = dedup.near_duplicate_leakage(base, dup, 0.99)
    assert leaks["a"].tolist() == list(range(10))
    assert dedup.near_duplicate_leakage(base[10:], dup, 0.99).empty


def test_leakage_check_by_key():
    rep = dedup.leakage_check({"train": ["a", "b", "c"], "val": ["d"], "test": ["c", "e"]})
    assert rep.to_dict("records") == [{"key": "c", "split_a": "train", "split_b": "test"}]
    assert dedup.leakage_check({"train": ["a"], "test": ["b"]}).empty


def test_union_find_transitive():
    assert dedup.duplicate_groups([(0, 1), (1, 2), (4, 5)], 6) == [[0, 1, 2], [4, 5]]


def test_cross_split_pairs_is_the_key_leak_check_of_both_callers():
    pairs, within = dedup.cross_split_pairs([("train", "1", "h"), ("train", "2", "h"), ("test", "3", "h"),
                                             ("val", "4", "g")])
    assert pairs == [("train", "1", "test", "3"), ("train", "2", "test", "3")] and within == 1
    # leakage_check is the same check on keys alone: a key repeated inside one split is one key
    rep = dedup.leakage_check({"train": ["h", "h"], "test": ["h"], "val": ["g"]})
    assert rep.to_dict("records") == [{"key": "h", "split_a": "train", "split_b": "test"}]
