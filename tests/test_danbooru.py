"""Danbooru formats: both metadata forms written here, layouts, path-escape attempts, and a
DeepDanbooru project written and read back."""
from __future__ import annotations

import json
import os
import sqlite3

import pytest
from PIL import Image

from acg2vec_lab.data.danbooru import (
    DEEPDANBOORU_PROJECT_DEFAULTS,
    DanbooruDataset,
    DanbooruFormatError,
    Post,
    Tag,
    UnsafePathError,
    iter_metadata,
    read_deepdanbooru_project,
    safe_join,
    write_deepdanbooru_project,
    write_metadata,
)

D2021 = [
    {"id": "1234", "md5": "0123456789abcdef0123456789abcdef", "file_ext": "jpg", "rating": "s", "score": "12",
     "fav_count": "30", "image_width": "800", "image_height": "1200",
     "tags": [{"id": "470575", "name": "1girl", "category": "0"}, {"id": "1", "name": "long_hair", "category": "0"},
              {"name": "hatsune_miku", "category": "4"}, {"name": "vocaloid", "category": "3"},
              {"name": "some_artist", "category": "1"}, {"name": "highres", "category": "5"}],
     "pools": [], "uploader_id": "9"},
    {"id": 5, "md5": "fedcba9876543210fedcba9876543210", "file_ext": "png", "rating": "g",
     "tags": [{"name": "solo", "category": 0}]},
]
API = [
    {"id": 2001, "md5": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "file_ext": "png", "rating": "q", "score": 3, "fav_count": 4,
     "image_width": 64, "image_height": 48, "tag_string": "2girls multiple_girls touhou hakurei_reimu kirisame_marisa",
     "tag_string_general": "2girls multiple_girls", "tag_string_character": "hakurei_reimu kirisame_marisa",
     "tag_string_copyright": "touhou", "tag_string_artist": "", "tag_string_meta": "commentary_request"},
]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _image(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), colour).save(path)


def test_danbooru2021_metadata_and_layout(tmp_path):
    meta = _write_jsonl(tmp_path / "posts000.json", D2021)
    _image(tmp_path / "original" / "0234" / "1234.jpg", (200, 0, 0))
    _image(tmp_path / "original" / "0005" / "5.png", (0, 200, 0))
    ds = DanbooruDataset.from_metadata(meta, tmp_path / "original")
    p = ds.post(1234)
    assert (p.md5, p.file_ext, p.rating, p.score, p.fav_count, p.image_width, p.image_height) == (
        "0123456789abcdef0123456789abcdef", "jpg", "s", 12, 30, 800, 1200)
    assert p.tag_names(0) == ["1girl", "long_hair"] and p.tag_names(4) == ["hatsune_miku"]
    assert p.tag_names(3) == ["vocaloid"] and p.tag_names(1) == ["some_artist"] and p.tag_names(5) == ["highres"]
    assert p.extra["pools"] == [] and p.extra["uploader_id"] == "9"
    assert ds.image_path(p) == tmp_path / "original" / "0234" / "1234.jpg"
    assert ds.load_image(5).getpixel((0, 0)) == (0, 200, 0)
    assert Tag("1girl", 0) in ds.tag_vocabulary(min_count=1)


def test_api_metadata_form(tmp_path):
    meta = _write_jsonl(tmp_path / "api.jsonl", API)
    (p,) = list(iter_metadata(meta))
    assert p.rating == "q" and p.score == 3
    assert set(p.tags) == {Tag("2girls", 0), Tag("multiple_girls", 0), Tag("hakurei_reimu", 4),
                           Tag("kirisame_marisa", 4), Tag("touhou", 3), Tag("commentary_request", 5)}


def test_json_list_and_round_trip_both_forms(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps(D2021 + API))
    posts = list(iter_metadata(tmp_path / "list.json"))
    assert [p.id for p in posts] == [1234, 5, 2001]
    for form in ("danbooru2021", "api"):
        out = write_metadata(posts, tmp_path / f"{form}.jsonl", form=form)
        back = list(iter_metadata(out))
        assert [(b.id, b.md5, b.rating, sorted(b.tags)) for b in back] == [(p.id, p.md5, p.rating, sorted(p.tags)) for p in posts]
        first = json.loads(out.read_text().splitlines()[0])
        assert ("tags" in first) == (form == "danbooru2021") and ("tag_string_general" in first) == (form == "api")


def test_configurable_layouts(tmp_path):
    posts = list(iter_metadata(_write_jsonl(tmp_path / "m.jsonl", D2021)))
    assert DanbooruDataset(posts, tmp_path, "flat").image_path(posts[0]) == tmp_path / "1234.jpg"
    assert DanbooruDataset(posts, tmp_path, "md5").image_path(posts[0]) == tmp_path / "01" / "0123456789abcdef0123456789abcdef.jpg"
    custom = DanbooruDataset(posts, tmp_path, "img/{bucket}/{md5}.{ext}")
    assert custom.image_path(posts[1]) == tmp_path / "img" / "0005" / "fedcba9876543210fedcba9876543210.png"
    with pytest.raises(ValueError, match="unknown field"):
        DanbooruDataset(posts, tmp_path, "{nope}.{ext}").image_path(posts[0])


@pytest.mark.parametrize("field,value", [
    ("file_ext", "../../etc/passwd"),
    ("file_ext", "jpg/../../x"),
    ("md5", "../../../../../../etc/passwd"),
    ("md5", "/etc/passwd"),
    ("rating", "x"),
    ("id", "-3"),
])
def test_bad_metadata_values_rejected(tmp_path, field, value):
    row = dict(D2021[1], **{field: value})
    with pytest.raises(DanbooruFormatError) as err:
        list(iter_metadata(_write_jsonl(tmp_path / "evil.jsonl", [row])))
    assert "evil.jsonl:1" in str(err.value)


def test_path_escape_through_layout_and_symlink(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    posts = list(iter_metadata(_write_jsonl(tmp_path / "m.jsonl", D2021)))
    # a layout pattern (e.g. from a config file) that climbs out
    with pytest.raises(UnsafePathError, match=r"'\.\.'"):
        DanbooruDataset(posts, root, "../outside/{id}.{ext}").image_path(posts[0])
    with pytest.raises(UnsafePathError, match="absolute"):
        DanbooruDataset(posts, root, "/tmp/{id}.{ext}").image_path(posts[0])
    with pytest.raises(UnsafePathError):
        safe_join(root, "a/../../b.jpg")
    # a symlinked bucket folder pointing outside the root
    outside = tmp_path / "outside"
    outside.mkdir()
    _image(outside / "1234.jpg", (1, 2, 3))
    os.symlink(outside, root / "0234")
    with pytest.raises(UnsafePathError, match="outside the data root"):
        DanbooruDataset(posts, root).image_path(posts[0])
    # a symlink that stays inside is fine
    (root / "real").mkdir()
    _image(root / "real" / "5.png", (4, 5, 6))
    os.symlink(root / "real", root / "0005")
    assert DanbooruDataset(posts, root).load_image(5).getpixel((0, 0)) == (4, 5, 6)


def test_from_folder_reads_dataset_json(tmp_path):
    (tmp_path / "metadata").mkdir()
    _write_jsonl(tmp_path / "metadata" / "posts000000000000.json", D2021)
    (tmp_path / "dataset.json").write_text(json.dumps({"layout": "flat", "val_fraction": 0.5, "test_fraction": 0.0}))
    ds = DanbooruDataset.from_folder(tmp_path)
    assert ds.image_path(1234) == tmp_path / "1234.jpg"
    assert sorted(p.id for p in ds.split("train") + ds.split("val")) == [5, 1234] and ds.split("test") == []


def test_duplicate_ids_rejected(tmp_path):
    posts = list(iter_metadata(_write_jsonl(tmp_path / "m.jsonl", D2021 + [D2021[0]])))
    with pytest.raises(DanbooruFormatError, match="duplicate post ids"):
        DanbooruDataset(posts, tmp_path)


def test_deepdanbooru_project_round_trip(tmp_path):
    posts = [
        Post(10, "11" * 16, "jpg", "g", tags=[Tag("1girl", 0), Tag("solo", 0), Tag("hair_10", 0), Tag("hair_9", 0),
                                             Tag("hakurei_reimu", 4), Tag("touhou", 3)]),
        Post(11, "22" * 16, "png", "q", tags=[Tag("1girl", 0), Tag("kirisame_marisa", 4), Tag("artist_x", 1)]),
        Post(12, "33" * 16, "gif", "s", tags=[Tag("1girl", 0), Tag("solo", 0)]),
    ]
    src = tmp_path / "src"
    for p, c in zip(posts, ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        _image(src / f"{p.id}.{p.file_ext}", c)
    ds = DanbooruDataset(posts, src, "flat")
    proj_dir = write_deepdanbooru_project(ds, tmp_path / "proj", minimum_tag_count=2, image_width=512, image_height=512)

    ctx = json.loads((proj_dir / "project.json").read_text())
    assert set(DEEPDANBOORU_PROJECT_DEFAULTS) <= set(ctx)
    assert ctx["minimum_tag_count"] == 2 and ctx["image_width"] == 512 and ctx["model"] == "resnet_custom_v2"
    tags = (proj_dir / "tags.txt").read_text().split()
    # general (natural sort: hair_9 before hair_10), then character, then system rating tags
    assert tags == ["1girl", "hair_9", "hair_10", "solo", "hakurei_reimu", "kirisame_marisa",
                    "rating:general", "rating:sensitive", "rating:questionable", "rating:explicit"]
    cats = json.loads((proj_dir / "categories.json").read_text())
    assert cats == [{"name": "General", "start_index": 0}, {"name": "Character", "start_index": 4},
                    {"name": "System", "start_index": 6}]
    with sqlite3.connect(proj_dir / ctx["database_path"]) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(posts)")]
        rows = con.execute("SELECT id, md5, file_ext, tag_string, tag_count_general FROM posts ORDER BY id").fetchall()
    assert cols == ["id", "md5", "file_ext", "tag_string", "tag_count_general"]
    assert rows[0] == (10, "11" * 16, "jpg", "1girl solo hair_10 hair_9 hakurei_reimu touhou rating:general", 4)
    assert rows[1][3].endswith("rating:questionable") and rows[1][4] == 1
    img = proj_dir / "images" / "22" / f"{'22' * 16}.png"
    assert Image.open(img).getpixel((0, 0)) == (0, 255, 0)

    project = read_deepdanbooru_project(proj_dir)
    assert project.tags == tags and project.context["minimum_tag_count"] == 2
    assert [r["id"] for r in project.records] == [10, 11, 12]
    assert project.image_path(project.records[1]) == img
    assert project.category_of(5) == "Character" and project.category_of(6) == "System"
    # DeepDanbooru trains on png/jpg/jpeg with at least minimum_tag_count general tags
    assert [r["id"] for r in project.training_records()] == [10]


def test_deepdanbooru_project_rejects_unsafe_records(tmp_path):
    ds = DanbooruDataset([Post(1, "ab" * 16, "jpg", "g", tags=[Tag("a", 0)])], tmp_path, "flat")
    proj = write_deepdanbooru_project(ds, tmp_path / "p", copy_images="none")
    with sqlite3.connect(proj / "project.sqlite3") as con:
        con.execute("UPDATE posts SET md5 = '../../../../etc/passwd' WHERE id = 1")
    project = read_deepdanbooru_project(proj)
    with pytest.raises(UnsafePathError):
        project.image_path(project.records[0])
    (proj / "project.json").write_text(json.dumps({"database_path": "../elsewhere.sqlite3"}))
    with pytest.raises(UnsafePathError):
        read_deepdanbooru_project(proj)
    with pytest.raises(DanbooruFormatError, match="no project.json"):
        read_deepdanbooru_project(tmp_path / "missing")


def test_one_block_parser_behind_every_categories_json_reader():
    from acg2vec_lab.tagging.categories import RATING_TAGS, block_names, categories_from_blocks

    blocks = [{"name": "Character", "start_index": 3}, {"name": "General", "start_index": 1},
              {"name": "System", "start_index": 5}, {"name": "Meta", "start_index": 5}]  # unsorted; a tie at 5
    assert block_names(7, blocks) == ["", "General", "General", "Character", "Character", "Meta", "Meta"]
    assert categories_from_blocks(["a", "b", "c", "d", "e", "f", "rating:general"], blocks) == [0, 0, 0, 4, 4, 5, 9]
    assert block_names(2, [{"name": "General", "start_index": 4}]) == ["", ""]  # a block past the end
    assert list(RATING_TAGS) == ["g", "s", "q", "e"] and RATING_TAGS["s"] == "rating:sensitive"
