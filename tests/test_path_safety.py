"""Paths from data cannot escape their root (issue "Safe with untrusted files", item 2).

Every way a path read from data could leave its root - a ``..`` part, an absolute path, a symlink
that resolves outside, a NUL byte, an over-long component or path - is refused by
:func:`acg2vec_lab.io_safety.safe_join` with an :class:`UnsafePath` naming the item, and each batch
reader (Danbooru metadata, a DeepDanbooru project's posts table, a list of image paths, a scanned
image folder) reports the bad item in its skipped list while processing the others.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from acg2vec_lab.data.danbooru import (
    DanbooruDataset,
    Post,
    Tag,
    UnsafePathError,
    iter_metadata,
    read_deepdanbooru_project,
    write_deepdanbooru_project,
)
from acg2vec_lab.data.images import read_image_list, scan_images
from acg2vec_lab.io_safety import MAX_COMPONENT_BYTES, MAX_PATH_BYTES, UnsafePath, check_inside, safe_join

BAD = {
    "dotdot": ("a/../../etc/passwd", "'..'"),
    "dotdot_backslash": ("a\\..\\..\\x.png", "'..'"),
    "absolute": ("/etc/passwd", "absolute"),
    "absolute_backslash": ("\\\\server\\share\\x.png", "absolute"),
    "drive": ("C:x.png", "absolute"),
    "nul": ("a\x00b.png", "NUL"),
    "long_component": ("a/" + "x" * (MAX_COMPONENT_BYTES + 1) + ".png", "name limit"),
    "long_component_multibyte": ("\u00e9" * 128 + ".png", "name limit"),  # 256 UTF-8 bytes in 129 chars
    "long_path": ("/".join(["d" * 200] * 21) + "/x.png", "path limit"),
    "empty": ("", "empty"),
    "root_itself": ("./.", "root itself"),
}


def _image(path: Path, color=(10, 20, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), color).save(path)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_safe_join_refuses_and_names_the_item(tmp_path, case):
    rel, why = BAD[case]
    with pytest.raises(UnsafePath, match=why) as info:
        safe_join(tmp_path, rel, what="metadata.jsonl:7 image path")
    assert str(info.value).startswith("metadata.jsonl:7 image path"), info.value


def test_limits_are_the_file_system_ones(tmp_path):
    """Exactly at the limits is fine; one byte over is not (so the limit checks can fail)."""
    ok = "x" * MAX_COMPONENT_BYTES
    assert safe_join(tmp_path, f"a/{ok}") == tmp_path / "a" / ok
    assert len(("d" * 200 + "/") * 20) < MAX_PATH_BYTES
    safe_join(tmp_path, "/".join(["d" * 200] * 20))
    with pytest.raises(UnsafePath, match="name limit"):
        safe_join(tmp_path, "a/" + ok + "x")


def test_symlinks_out_of_the_root_are_refused_inside_ones_allowed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    _image(outside / "secret.png")
    _image(root / "real" / "ok.png")
    root.joinpath("out").symlink_to(outside)  # a folder link out
    root.joinpath("leak.png").symlink_to(outside / "secret.png")  # a file link out
    root.joinpath("in").symlink_to(root / "real")  # a link that stays inside
    root.joinpath("loop").symlink_to(root / "loop")  # a loop
    for rel in ("out/secret.png", "leak.png"):
        with pytest.raises(UnsafePath, match="outside the data root") as info:
            safe_join(root, rel, what=f"row {rel}")
        assert f"row {rel}" in str(info.value)
    with pytest.raises(UnsafePath):
        safe_join(root, "loop/x.png")
    assert safe_join(root, "in/ok.png") == root / "in" / "ok.png"
    assert safe_join(root, "./real//ok.png") == root / "real" / "ok.png"
    assert check_inside(root, root / "in" / "ok.png") == root / "in" / "ok.png"
    with pytest.raises(UnsafePath, match="leak.png"):
        check_inside(root, root / "leak.png", what="image")


def test_non_string_paths_are_refused(tmp_path):
    for rel in (b"x.png", 3, None):
        with pytest.raises(UnsafePath, match="database_path"):
            safe_join(tmp_path, rel, what="project.json: database_path")


# --------------------------------------------------------------------------- Danbooru metadata

def _post(i: int, md5: str | None = None, ext: str = "png") -> dict:
    return {"id": i, "md5": md5 or f"{i:032x}", "file_ext": ext, "rating": "g",
            "tags": [{"name": "1girl", "category": 0}]}


def test_metadata_batch_skips_the_unsafe_records_and_keeps_the_rest(tmp_path):
    rows = [_post(1), _post(2, md5="../../../../../etc/passwd"), _post(3, ext="png/../../x"),
            _post(4, ext="png\n"), _post(5)]
    meta = tmp_path / "posts.jsonl"
    meta.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    skipped: list[tuple[str, str]] = []
    ds = DanbooruDataset.from_metadata(meta, tmp_path / "images", "flat", skipped=skipped)
    assert [p.id for p in ds.posts] == [1, 5]
    assert [w for w, _ in skipped] == [f"{meta}:2", f"{meta}:3", f"{meta}:4", f"{meta}:6"]
    assert "md5" in skipped[0][1] and "file_ext" in skipped[1][1] and "not valid JSON" in skipped[3][1]
    # without a skipped list the first bad record stops the read, naming its line
    with pytest.raises(ValueError, match=f"{meta.name}:2"):
        list(iter_metadata(meta))


def test_dataset_image_paths_batch_goes_on_past_an_escaping_post(tmp_path):
    root, outside = tmp_path / "images", tmp_path / "outside"
    posts = [Post(i, f"{i:032x}", "png", "g", tags=[Tag("a", 0)]) for i in (1, 2, 3)]
    _image(root / "1.png")
    _image(outside / "2.png")
    root.joinpath("2.png").symlink_to(outside / "2.png")
    _image(root / "3.png")
    found, skipped = DanbooruDataset(posts, root, "flat").resolve_images()
    assert [p.id for p, _ in found] == [1, 3] and [path.name for _, path in found] == ["1.png", "3.png"]
    assert [w for w, _ in skipped] == ["post 2"] and "outside the data root" in skipped[0][1]
    with pytest.raises(UnsafePathError, match="post 2"):
        DanbooruDataset(posts, root, "flat").image_path(2)


# --------------------------------------------------------------------------- DeepDanbooru project

def _project(tmp_path: Path) -> Path:
    posts = [Post(i, f"{i:02x}" * 16, "jpg", "g", tags=[Tag("a", 0)]) for i in (1, 2, 3, 4)]
    src = tmp_path / "src"
    for p in posts:
        _image(src / f"{p.id}.jpg")
    return write_deepdanbooru_project(DanbooruDataset(posts, src, "flat"), tmp_path / "proj")


def test_project_records_that_escape_are_skipped_per_record(tmp_path):
    proj = _project(tmp_path)
    outside = _image(tmp_path / "outside" / "x.jpg")
    md5_3 = "03" * 16
    target = proj / "images" / "03" / f"{md5_3}.jpg"
    target.unlink()
    target.symlink_to(outside)  # an image-folder entry that links out of the project
    with sqlite3.connect(proj / "project.sqlite3") as con:
        con.execute("UPDATE posts SET md5 = '../../../../etc/passwd' WHERE id = 2")
        con.execute("UPDATE posts SET file_ext = '/abs' WHERE id = 4")
    project = read_deepdanbooru_project(proj)
    found, skipped = project.resolve_images()
    assert [r["id"] for r, _ in found] == [1]
    assert found[0][1] == proj / "images" / "01" / f"{'01' * 16}.jpg"
    assert [w for w, _ in skipped] == ["record 2", "record 3", "record 4"]
    assert "unsafe md5" in skipped[0][1] and "outside the data root" in skipped[1][1]
    assert all("record" in why for _, why in skipped)


@pytest.mark.parametrize("db", ["../elsewhere.sqlite3", "/etc/passwd", "a\x00b", "x" * 300, 7])
def test_project_database_path_cannot_escape(tmp_path, db):
    proj = _project(tmp_path)
    (proj / "project.json").write_text(json.dumps({"database_path": db}))
    with pytest.raises(ValueError, match="project.json") as info:
        read_deepdanbooru_project(proj)
    assert "database_path" in str(info.value)


# --------------------------------------------------------------------------- lists of image paths, folders

def test_image_list_csv_skips_bad_rows_and_keeps_the_others(tmp_path):
    root = tmp_path / "data"
    _image(root / "a.png")
    _image(root / "sub" / "b.png")
    _image(tmp_path / "secret.png")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    listing = root / "tags.csv"  # the CSV ``acg2vec-lab tag --format csv`` writes
    rows = ["file,tags,rating", "a.png,x,g", "../secret.png,x,g", "/etc/passwd,x,g", "link.png,x,g",
            '"n\x00ul.png",x,g', "sub/b.png,x,g", "y" * 300 + ".png,x,g"]
    listing.write_text("\n".join(rows) + "\n", encoding="utf-8")
    paths, skipped = read_image_list(listing)
    assert paths == [root / "a.png", root / "sub" / "b.png"]
    assert [w for w, _ in skipped] == [f"{listing}:{i}" for i in (3, 4, 5, 6, 8)]
    reasons = [why for _, why in skipped]
    assert "'..'" in reasons[0] and "absolute" in reasons[1] and "outside the data root" in reasons[2]
    assert "NUL" in reasons[3] and "name limit" in reasons[4]


def test_image_list_plain_lines(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# images\nx/1.png\n\n../../2.png\n3.png\n")
    paths, skipped = read_image_list(listing, root=tmp_path / "r")
    assert paths == [tmp_path / "r" / "x" / "1.png", tmp_path / "r" / "3.png"]
    assert skipped and skipped[0][0] == f"{listing}:4"


def test_scan_images_skips_a_symlink_out_of_the_folder(tmp_path):
    folder = tmp_path / "imgs"
    _image(folder / "ok.png")
    _image(tmp_path / "secret.png")
    (folder / "leak.png").symlink_to(tmp_path / "secret.png")
    ok, skipped = scan_images(folder)
    assert ok == [folder / "ok.png"]
    assert [p.name for p, _ in skipped] == ["leak.png"] and "outside the data root" in skipped[0][1]


def test_danbooru_safe_join_is_the_shared_check(tmp_path):
    """``data.danbooru.safe_join`` raises the Danbooru subclass of the shared :class:`UnsafePath`."""
    from acg2vec_lab.data.danbooru import DanbooruFormatError
    from acg2vec_lab.data.danbooru import safe_join as dj

    with pytest.raises(UnsafePathError) as info:
        dj(tmp_path, "a/" + "z" * 256)
    assert isinstance(info.value, UnsafePath) and isinstance(info.value, DanbooruFormatError)
