"""The synthetic Danbooru-format set: deterministic, real tags with real categories, drawn (not
noise), labelled synthetic, pixiv labels learnable but noisy, and generated atomically."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest

from acg2vec_lab.config import load_config
from acg2vec_lab.data import DanbooruDataset, load_image, synthetic, synthetic_dataset
from acg2vec_lab.data.danbooru import CHARACTER, COPYRIGHT, GENERAL
from acg2vec_lab.data.labels import BOOKMARK_EDGES, VIEW_EDGES, to_bins
from acg2vec_lab.data.vocab import load_vocabulary


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary()


@pytest.fixture(scope="module")
def small_cfg():
    return load_config("data", "smoke", n_images=60, min_size=64, max_size=80)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, vocab, small_cfg):
    out = tmp_path_factory.mktemp("syn") / "synthetic-a"
    desc = synthetic.generate(small_cfg, out, vocab=vocab, workers=1)
    return out, desc


def _file_digest(folder):
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "dataset.json"}


def test_vocabulary_join_matches_the_reference_counts(vocab):
    assert len(vocab) == 11389  # assets.md says 11,388 (wc -l: the last line has no newline)
    assert vocab.counts() == {"general": 7139, "artist": 1032, "copyright": 948, "character": 2251, "meta": 19}
    assert vocab.series_of["artoria_pendragon_(fate)"] == "fate_(series)"
    assert vocab.tag("1girl").category == GENERAL and vocab.tag("touhou").category == COPYRIGHT


def test_roster_is_real_and_distinct(vocab):
    roster = synthetic.build_roster(vocab, 10, 6)
    assert len(roster) == 60
    for c in roster:
        assert vocab.category[c.name] == CHARACTER and vocab.category[c.series] == COPYRIGHT
        assert vocab.series_of[c.name] == c.series
        for t in c.trait_tags():
            assert vocab.category[t] == GENERAL, t
    looks = {(c.hair_colour, c.hair_length, c.hair_style, c.eye_colour, c.accessories, c.outfit, c.outfit_colour) for c in roster}
    assert len(looks) == len(roster)
    assert max(c.popularity for c in roster) == 1.0 and min(c.popularity for c in roster) == 0.0


def test_every_tag_is_real_with_its_category(generated, vocab):
    out, _ = generated
    ds = DanbooruDataset.from_folder(out)
    assert len(ds) == 60
    cats = set()
    for p in ds.posts:
        assert p.tags, p.id
        for t in p.tags:
            assert t.name in vocab, t
            assert vocab.category[t.name] == t.category, t
            cats.add(t.category)
        names = p.tag_names()
        assert ("solo" in names) == ("1girl" in names)
        assert ("multiple_girls" in names) == ("2girls" in names or "3girls" in names)
        for ch in p.tag_names(CHARACTER):
            assert vocab.series_of[ch] in p.tag_names(COPYRIGHT)
    assert cats == {GENERAL, COPYRIGHT, CHARACTER}


def test_labelled_synthetic_everywhere(generated):
    out, desc = generated
    assert desc["synthetic"] is True and "SYNTHETIC" in desc["description"]
    rows = [json.loads(l) for l in (out / "metadata" / "posts.jsonl").read_text().splitlines()]
    assert all(r["synthetic"] is True for r in rows)
    assert "synthetic" in synthetic.dataset_dir_name(load_config("data", "smoke"), "tiny")


def test_images_match_metadata_and_are_drawn(generated, small_cfg):
    out, _ = generated
    ds = DanbooruDataset.from_folder(out)
    for p in ds.posts:
        path = ds.image_path(p)
        assert path.parent.name == f"{p.id % 1000:04d}" and path.name == f"{p.id}.jpg"
        assert hashlib.md5(path.read_bytes()).hexdigest() == p.md5
        im = load_image(path)
        assert im.size == (p.image_width, p.image_height)
        assert small_cfg.min_size <= min(im.size) and max(im.size) <= small_cfg.max_size
        arr = np.asarray(im, dtype=np.float32)
        # drawn shapes, not noise: neighbouring pixels are far more alike than the same pixels shuffled
        shuffled = np.random.default_rng(0).permutation(arr.reshape(-1, 3)).reshape(arr.shape)
        ratio = np.abs(np.diff(arr, axis=1)).mean() / np.abs(np.diff(shuffled, axis=1)).mean()
        assert ratio < 0.5, (p.id, ratio)  # smoke set: median 0.18, max 0.35; noise gives 1.0
        # skin is on every picture (every post shows at least one character)
        skin = np.all(np.abs(arr - np.array(synthetic.SKIN)) < 16, axis=-1).mean()
        assert skin > 0.002, (p.id, skin)


def test_deterministic_for_a_seed_and_independent_of_workers(generated, vocab, small_cfg, tmp_path):
    out, _ = generated
    again = tmp_path / "again"
    synthetic.generate(small_cfg, again, vocab=vocab, workers=2)  # parallel run, same bytes
    assert _file_digest(again) == _file_digest(out)
    other = tmp_path / "other"
    synthetic.generate(dataclasses.replace(small_cfg, seed=1), other, vocab=vocab, workers=1)
    assert _file_digest(other) != _file_digest(out)


def test_pixiv_labels_are_learnable_but_noisy(vocab):
    cfg = load_config("data", "smoke", n_images=400, min_size=48, max_size=48)
    roster = synthetic.build_roster(vocab, cfg.n_series, cfg.characters_per_series, cfg.seed)
    metas = [synthetic.sample_post(i, roster, cfg)[1] for i in range(1, 401)]
    log_bm = np.log([m["pixiv"]["bookmark_count"] for m in metas])
    h = [m["synthetic_hidden"] for m in metas]
    pred = np.array([3.2 + 1.8 * x["popularity"] + 0.3 * x["accessories"] + 1.5 * x["colourfulness"]
                     + 0.5 * x["racy"] + 0.3 * x["extra_characters"] for x in h])
    r = np.corrcoef(pred, log_bm)[0, 1]
    assert 0.6 < r < 0.97, r  # a real signal, but noise keeps it imperfect
    views = np.array([m["pixiv"]["view_count"] for m in metas])
    assert np.corrcoef(np.log(views), log_bm)[0, 1] > 0.7
    # the labels spread over the original bins (not all in one)
    assert len(set(to_bins(np.exp(log_bm), BOOKMARK_EDGES))) >= 6
    assert len(set(to_bins(views, VIEW_EDGES))) >= 6
    sanity = {m["rating"]: [] for m in metas}
    for m in metas:
        sanity[m["rating"]].append(m["pixiv"]["sanity_level"])
    assert set(sanity) >= {"g", "s"}
    assert np.mean(sanity["g"]) < np.mean(sanity["s"])
    assert all(math.isfinite(v) for v in log_bm)


def test_interrupted_generation_never_counts_as_present(vocab, small_cfg, tmp_path, monkeypatch):
    real_render = synthetic._render_one
    calls = {"n": 0}

    def dying(post_id):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt("simulated interruption")
        return real_render(post_id)

    monkeypatch.setattr(synthetic, "_render_one", dying)
    cfg = dataclasses.replace(small_cfg, workers=1)
    with pytest.raises(KeyboardInterrupt):
        synthetic.ensure_generated(cfg, "tiny", root=tmp_path, vocab=vocab)
    assert list(tmp_path.iterdir()) == []  # neither a final folder nor a leftover temp folder
    monkeypatch.setattr(synthetic, "_render_one", real_render)
    folder = synthetic.ensure_generated(cfg, "tiny", root=tmp_path, vocab=vocab)
    assert (folder / "dataset.json").is_file() and folder.name.startswith("synthetic-danbooru-tiny-")
    stamp = (folder / "dataset.json").stat().st_mtime_ns
    assert synthetic.ensure_generated(cfg, "tiny", root=tmp_path, vocab=vocab) == folder  # cached, not redone
    assert (folder / "dataset.json").stat().st_mtime_ns == stamp


def test_profile_dataset_contract():
    ds = synthetic_dataset("smoke")
    cfg = load_config("data", "smoke")
    assert len(ds.posts) == cfg.n_images and ds.info["synthetic"] is True
    p = ds.posts[0]
    assert {"bookmark_count", "view_count", "sanity_level"} <= set(p.pixiv)
    assert ds.image_path(p).is_file()
    splits = {s: {q.id for q in ds.split(s)} for s in ("train", "val", "test")}
    assert sum(map(len, splits.values())) == len(ds.posts)
    assert not (splits["train"] & splits["val"] or splits["train"] & splits["test"] or splits["val"] & splits["test"])
    vocab = ds.tag_vocabulary(min_count=2)
    assert vocab and all(sum(t in q.tags for q in ds.posts) >= 2 for t in vocab[:10])


def test_pixiv_bins_follow_the_original_edges():
    from acg2vec_lab.data.labels import N_BOOKMARK_BINS, N_SANITY_BINS, N_VIEW_BINS, SANITY_EDGES, bin_labels

    assert (N_BOOKMARK_BINS, N_VIEW_BINS, N_SANITY_BINS) == (15, 15, 5)
    assert to_bins([0, 9.99, 10, 29, 30, 2699, 2700, 10**6], BOOKMARK_EDGES).tolist() == [0, 0, 1, 1, 2, 13, 14, 14]
    assert to_bins([499, 500, 35000], VIEW_EDGES).tolist() == [0, 1, 14]
    assert to_bins([0, 2, 4, 6, 7], SANITY_EDGES).tolist() == [0, 1, 2, 3, 4]
    assert bin_labels(SANITY_EDGES) == ["<2", "2-4", "4-6", "6-7", ">=7"]
    with pytest.raises(ValueError):
        to_bins([float("nan")], VIEW_EDGES)


def test_vocabulary_check_rejects_fake_or_miscategorised_tags(vocab):
    from acg2vec_lab.data.danbooru import Tag
    from acg2vec_lab.data.vocab import VocabularyError

    with pytest.raises(VocabularyError, match="not in the real"):
        vocab.check(Tag("purple_polka_dot_tentacle_hat", 0))
    with pytest.raises(VocabularyError, match="category"):
        vocab.check(Tag("touhou", 0))  # a copyright tag claimed as general
