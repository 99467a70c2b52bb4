"""Malformed inputs get clear errors (issue "Safe with untrusted files", item 5).

Property-based: every parser of a file a user hands in - Danbooru metadata (JSON lines and the JSON
list form), DeepDanbooru ``project.json`` / ``tags.txt`` / ``categories.json``, config files and
caption sidecars - is fed arbitrary bytes and structurally plausible but wrong JSON (200 examples per
parser). Each input gives a result or a ``ValueError`` subclass whose message names the file (and the
line where there is one); never a raw ``KeyError`` / ``TypeError`` / ``AttributeError`` /
``IndexError``, nor a bare ``UnicodeDecodeError`` / ``JSONDecodeError``.

Also: a write into a folder that cannot take it fails at the first write with an ``OSError`` naming
the folder, and leaves nothing half-written.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acg2vec_lab.config import ConfigError, load_config_file
from acg2vec_lab.data.danbooru import DanbooruFormatError, iter_metadata, read_project_context
from acg2vec_lab.io import append_line, write_json, write_text
from acg2vec_lab.tagging.categories import categories_from_blocks, read_categories_json, read_tags_txt
from acg2vec_lab.tagging.format import Writer, read_caption
from acg2vec_lab.tagging.thresholds import TaggedTag

EXAMPLES = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
_DIR = Path(tempfile.mkdtemp(prefix="acg2vec_props_"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)

# --------------------------------------------------------------------------------------------- strategies

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                           max_leaves=8)
hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)


def good_or(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes any JSON value (the way a real file goes wrong)."""
    return st.one_of(good, good, json_values)


tag_entry = st.fixed_dictionaries({}, optional={"name": good_or(st.text(min_size=1, max_size=10)),
                                                "category": good_or(st.sampled_from([0, 1, 3, 4, 5, "0", "4", 2, -1]))})
post_record = st.fixed_dictionaries({}, optional={
    "id": good_or(st.integers(0, 10 ** 6) | st.integers(0, 10 ** 6).map(str)),
    "md5": good_or(hex32),
    "file_ext": good_or(st.sampled_from(["jpg", "png", "gif", "../x", "jpg\n", ""])),
    "rating": good_or(st.sampled_from(["g", "s", "q", "e", "x"])),
    "score": good_or(st.integers()), "fav_count": good_or(st.integers()),
    "image_width": good_or(st.integers(0, 9000)), "image_height": good_or(st.integers(0, 9000)),
    "tags": good_or(st.lists(good_or(tag_entry), max_size=3)),
    "tag_string_general": good_or(st.text(max_size=20)), "tag_string_character": good_or(st.text(max_size=20)),
    "pixiv": good_or(st.dictionaries(st.sampled_from(["bookmark_count", "view_count"]), st.integers(), max_size=2)),
})
json_line = st.one_of(post_record.map(json.dumps), post_record.map(json.dumps), json_values.map(json.dumps),
                      st.text(max_size=30))
raw_bytes = st.binary(max_size=200)


def _lines_file(lines: list, junk: bytes) -> bytes:
    return b"\n".join(line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line for line in lines) + junk


metadata_jsonl = st.builds(_lines_file, st.lists(st.one_of(json_line, json_line, raw_bytes), max_size=5), raw_bytes | st.just(b""))
metadata_list = st.one_of(
    st.lists(st.one_of(post_record, json_values), max_size=4).map(lambda rs: json.dumps(rs).encode()),
    st.builds(lambda body, tail: b"[" + body + tail, raw_bytes, st.sampled_from([b"]", b"", b"] x"])),
)


def _write(name: str, content: bytes | str) -> Path:
    path = _DIR / name
    path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    return path


RAW_EXCEPTIONS = (UnicodeDecodeError, json.JSONDecodeError)


def _clear_error(exc: BaseException, path: Path, line_pattern: str | None = None) -> None:
    """The property: a ValueError subclass (not a bare decode error) naming the file (and the line)."""
    assert isinstance(exc, ValueError) and not isinstance(exc, RAW_EXCEPTIONS), repr(exc)
    msg = str(exc)
    assert path.name in msg, msg
    if line_pattern is not None:
        assert re.search(re.escape(str(path)) + line_pattern, msg), msg


def _parse(parser, path: Path, line_pattern: str | None = None):
    try:
        return parser(path)
    except ValueError as exc:
        _clear_error(exc, path, line_pattern)
        return exc


# --------------------------------------------------------------------------------------------- Danbooru metadata

LINE = r"(:\d+|\[\d+\])"  # path:line, or path[i] in the JSON-list form


@EXAMPLES
@given(metadata_jsonl)
def test_metadata_json_lines(content):
    path = _write("posts.jsonl", content)
    out = _parse(lambda p: list(iter_metadata(p)), path, LINE)
    if isinstance(out, ValueError):
        assert isinstance(out, DanbooruFormatError)
    # the lenient form never stops for one record: every bad line is in `skipped`, named with its line
    # (a fault of the whole file, e.g. a broken JSON list, still raises a clear error)
    skipped: list = []
    posts = _parse(lambda p: list(iter_metadata(p, skipped)), path, LINE)
    if isinstance(posts, ValueError):
        assert isinstance(out, ValueError) and not skipped
        return
    assert all(re.fullmatch(re.escape(str(path)) + LINE, where) and str(path) in why for where, why in skipped)
    if not isinstance(out, ValueError):
        assert posts == out and not skipped
    else:
        assert skipped


@EXAMPLES
@given(metadata_list)
def test_metadata_json_list(content):
    path = _write("posts.json", content)
    out = _parse(lambda p: list(iter_metadata(p)), path, LINE)
    if not isinstance(out, ValueError):
        assert all(p.id >= 0 and p.rating in "gsqe" for p in out)


def test_metadata_examples_that_used_to_crash():
    """Inputs that raised from deep inside before (kept as fixed examples, not left to chance)."""
    cases = {
        b'{"id": Infinity, "file_ext": "jpg", "rating": "g", "tags": []}': "not an integer",
        b'{"id": 1, "file_ext": "jpg", "rating": "g", "tags": [], "pixiv": [1, 2]}': "pixiv",
        b'{"id": 1, "file_ext": "jpg\\n", "rating": "g", "tags": []}': "file_ext",
        b'\xff\xfe{"id": 1}': "not UTF-8",
        b'{"id": 1, "file_ext": "jpg", "rating": "g", "tags": [{"name": 3, "category": 0}]}': "name",
        b"[" * 100000: "nested too deeply",
    }
    for content, why in cases.items():
        path = _write("crash.jsonl", content)
        with pytest.raises(DanbooruFormatError, match=why) as info:
            list(iter_metadata(path))
        assert "crash.jsonl" in str(info.value)


# --------------------------------------------------------------------------------------------- DeepDanbooru project files

project_json = st.one_of(
    raw_bytes,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={
        "model": good_or(st.sampled_from(["resnet_custom_v3", "tiny", "../../evil", "a/b", "", "x" * 200])),
        "image_width": good_or(st.integers(-5, 1024)), "image_height": good_or(st.integers(-5, 1024)),
        "database_path": good_or(st.sampled_from(["project.sqlite3", "db/x.sqlite3"])),
        "minimum_tag_count": good_or(st.integers(-3, 50)),
    }).map(lambda d: json.dumps(d).encode()),
)


@EXAMPLES
@given(project_json)
def test_project_json_both_readers(content):
    from acg2vec_lab.models.deepdanbooru.loaders import LoadError, read_project_json

    path = _write("project.json", content)
    ours = _parse(read_project_json, path)
    if isinstance(ours, ValueError):
        assert isinstance(ours, LoadError)
    else:  # what load_project then builds a file name from stays a plain name
        assert "/" not in str(ours.get("model", "")) and ".." not in str(ours.get("model", ""))
    ctx = _parse(read_project_context, path)
    if not isinstance(ctx, ValueError):
        assert isinstance(ctx["minimum_tag_count"], int)


@EXAMPLES
@given(st.one_of(raw_bytes, st.lists(st.text(max_size=12), max_size=6).map(lambda ts: "\n".join(ts).encode("utf-8", "surrogatepass"))))
def test_tags_txt(content):
    from acg2vec_lab.models.deepdanbooru.loaders import read_tags

    path = _write("tags.txt", content)
    for reader in (read_tags, read_tags_txt):
        tags = _parse(reader, path, r":\d+")
        if not isinstance(tags, ValueError):
            assert all(t and t == t.strip() and "\x00" not in t for t in tags)


block = st.fixed_dictionaries({}, optional={"name": good_or(st.sampled_from(["General", "Character", "System"])),
                                            "start_index": good_or(st.integers(-2, 12))})
categories_json = st.one_of(raw_bytes, json_values.map(lambda v: json.dumps(v).encode()),
                            st.lists(good_or(block), max_size=4).map(lambda bs: json.dumps(bs).encode()))


@EXAMPLES
@given(categories_json, st.lists(st.sampled_from(["1girl", "solo", "rating:safe"]), max_size=8))
def test_categories_json(content, tags):
    from acg2vec_lab.models.deepdanbooru.loaders import read_categories, tag_categories

    path = _write("categories.json", content)
    blocks = _parse(read_categories, path)
    assert isinstance(blocks, ValueError) == isinstance(_parse(read_categories_json, path), ValueError)
    if not isinstance(blocks, ValueError):  # what the readers return, the consumers take without crashing
        assert len(tag_categories(tags, blocks)) == len(tags)
        assert len(categories_from_blocks(tags, blocks)) == len(tags)


# --------------------------------------------------------------------------------------------- configs

SCHEMAS = ["acg2vec_lab.models.deepdanbooru.config:DeepDanbooruConfig", "acg2vec_lab.data.config:SyntheticDataConfig",
           "acg2vec_lab.models.deepdanbooru.config:NoSuchClass", "acg2vec_lab.no_such_module:X", "os:system",
           "antigravity:fly", "json:JSONDecoder", "", ":", "a b:c"]
DD_FIELDS = ["variant", "n_tags", "image_size", "filter_sizes", "repeat_sizes", "embedding_cut", "depth", "max_train"]
config_json = st.one_of(
    raw_bytes,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda schema, values: json.dumps({"schema": schema, **values}).encode(),
              good_or(st.sampled_from(SCHEMAS)),
              st.dictionaries(st.sampled_from(DD_FIELDS + ["comment", "train_limit"]),
                              good_or(st.sampled_from(["tiny", "resnet_custom_v3", "custom", 8, 64, [8, 16], [1, 1]])),
                              max_size=4)),
)


@EXAMPLES
@given(config_json)
def test_config_files(content):
    path = _write("cfg.json", content)
    out = _parse(load_config_file, path)
    if isinstance(out, ValueError):
        assert isinstance(out, ConfigError)
    assert "antigravity" not in sys.modules, "a config file made the loader import a module"


def test_config_schema_cannot_import_outside_the_package(tmp_path):
    path = tmp_path / "evil.json"
    path.write_text(json.dumps({"schema": "antigravity:fly"}))
    with pytest.raises(ConfigError, match="evil.json.*outside acg2vec_lab"):
        load_config_file(path)
    assert "antigravity" not in sys.modules
    path.write_text('{"schema": "acg2vec_lab.models.deepdanbooru.config:DeepDanbooruConfig",\n "n_tags": }')
    with pytest.raises(ConfigError, match=r"evil\.json:2:\d+: not valid JSON"):
        load_config_file(path)


# --------------------------------------------------------------------------------------------- sidecars

sidecar = st.one_of(
    raw_bytes,
    st.builds(lambda ts, sep: sep.join(ts).encode("utf-8", "surrogatepass"),
              st.lists(st.text(max_size=15), max_size=5), st.sampled_from([", ", "\n", "\r\n"])),
)


@EXAMPLES
@given(sidecar)
def test_caption_sidecars(content):
    path = _write("image.txt", content)
    tags = _parse(read_caption, path, r":\d+")
    if not isinstance(tags, ValueError):
        assert all(isinstance(t, str) and t and t == t.strip() for t in tags)


# --------------------------------------------------------------------------------------------- unwritable output

def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


TAGS = [TaggedTag("1girl", 0.9, 0), TaggedTag("rating:general", 0.8, 9)]


@pytest.mark.parametrize("how", ["write_text", "write_json", "append_line", "sidecar", "csv"])
def test_output_under_a_regular_file_fails_at_the_first_write(tmp_path, how):
    """An output folder that cannot exist (a part of its path is a regular file): works as root too."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("keep me")
    out = blocker / "out"
    before = _files_under(tmp_path)
    writes = {"write_text": lambda: write_text(out / "a.txt", "x"),
              "write_json": lambda: write_json(out / "a.json", {"a": 1}),
              "append_line": lambda: append_line(out / "tags.csv", "a,b,c"),
              "sidecar": lambda: Writer("txt", output_dir=out, root=tmp_path).write(tmp_path / "img.png", TAGS),
              "csv": lambda: Writer("csv", output_dir=out).write(tmp_path / "img.png", TAGS)}
    with pytest.raises(OSError) as info:
        writes[how]()
    assert str(out) in str(info.value) and "output folder" in str(info.value), info.value
    assert _files_under(tmp_path) == before and blocker.read_text() == "keep me"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod 0o555 does not stop root's writes (the regular-file case covers this path)")
def test_read_only_output_folder_fails_at_the_first_write(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)  # 0o555
    try:
        with pytest.raises(PermissionError) as info:
            Writer("txt", output_dir=out, root=tmp_path).write(tmp_path / "img.png", TAGS)
        assert str(out) in str(info.value) and "output folder" in str(info.value)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)
