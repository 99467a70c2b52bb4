"""Danbooru-format data sets: Danbooru2021 metadata, the live API form, and DeepDanbooru projects.

Metadata (one JSON object per line, or a JSON list) in either of two forms:

* **Danbooru2021** (gwern's dump): ``tags`` is a list of ``{"name": ..., "category": ...}`` with the
  category as an int or a digit string (0 general, 1 artist, 3 copyright, 4 character, 5 meta).
* **live API** (``/posts.json``): space-separated ``tag_string_general``, ``tag_string_artist``,
  ``tag_string_copyright``, ``tag_string_character`` and ``tag_string_meta``.

Images live under an image root. The default layout is Danbooru2021's
``<root>/<id % 1000 zero-padded to 4>/<id>.<ext>``; :data:`LAYOUTS` has the others
(``flat``: ``<id>.<ext>``; ``md5``: ``<md5[0:2]>/<md5>.<ext>`` as in DeepDanbooru projects) and any
``str.format`` pattern with ``{id}``, ``{md5}``, ``{ext}``, ``{bucket}`` (= ``id % 1000`` as 4 digits)
and ``{md5_prefix}`` is accepted. A metadata value can never make a path escape the image root:
absolute paths, ``..`` parts, NUL bytes, over-long names and symlinks that resolve outside are
rejected with :class:`UnsafePathError` (:func:`acg2vec_lab.io_safety.safe_join`), naming the post.
A batch goes on past such an item: :meth:`DanbooruDataset.resolve_images` and
:meth:`DeepDanbooruProject.resolve_images` return the good paths and a ``skipped`` list, and
:func:`iter_metadata` given a ``skipped`` list reports a bad record there instead of stopping.

A DeepDanbooru project (``project.json``, ``tags.txt``, ``categories.json``, SQLite
``posts(id, md5, file_ext, tag_string, tag_count_general)`` and ``images/<md5[0:2]>/<md5>.<ext>``) is
written by :func:`write_deepdanbooru_project` and read by :func:`read_deepdanbooru_project`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from acg2vec_lab.io_safety import InputFileError, UnsafePath, parse_json_text, read_json_file
from acg2vec_lab.io_safety import safe_join as _safe_join
from acg2vec_lab.tagging import categories as _categories

# the metadata's category codes and names: one table, the tagging leaf's (no rating block here)
GENERAL, ARTIST, COPYRIGHT, CHARACTER, META = (_categories.CATEGORY_GENERAL, _categories.CATEGORY_ARTIST,
                                               _categories.CATEGORY_COPYRIGHT, _categories.CATEGORY_CHARACTER,
                                               _categories.CATEGORY_META)
CATEGORY_NAMES = _categories.DANBOORU_CATEGORY_NAMES
CATEGORY_BY_NAME = {v: k for k, v in CATEGORY_NAMES.items()}
API_TAG_FIELDS = {
    "tag_string_general": GENERAL,
    "tag_string_artist": ARTIST,
    "tag_string_copyright": COPYRIGHT,
    "tag_string_character": CHARACTER,
    "tag_string_meta": META,
}
RATINGS = tuple(_categories.RATING_TAGS)  # ("g", "s", "q", "e")
LAYOUTS = {
    "danbooru2021": "{bucket}/{id}.{ext}",
    "flat": "{id}.{ext}",
    "md5": "{md5_prefix}/{md5}.{ext}",
}
_SAFE_EXT = re.compile(r"^[A-Za-z0-9]{1,8}$")
_SAFE_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


class DanbooruFormatError(InputFileError):
    """Metadata that cannot be read; the message names the file/line and the field (a ``ValueError``)."""


class UnsafePathError(DanbooruFormatError, UnsafePath):
    """A path built from metadata would leave the data root (or cannot name a file safely)."""


class Tag(NamedTuple):
    """A tag and its Danbooru category (0 general, 1 artist, 3 copyright, 4 character, 5 meta)."""

    name: str
    category: int

    @property
    def category_name(self) -> str:
        return CATEGORY_NAMES.get(self.category, str(self.category))


@dataclass
class Post:
    """One Danbooru post (the fields the models use)."""

    id: int
    md5: str
    file_ext: str
    rating: str
    score: int = 0
    fav_count: int = 0
    image_width: int = 0
    image_height: int = 0
    tags: list[Tag] = field(default_factory=list)
    pixiv: dict[str, Any] = field(default_factory=dict)  # bookmark_count, view_count, sanity_level
    extra: dict[str, Any] = field(default_factory=dict)  # any other metadata field, kept verbatim
    # the keys the metadata record carried (parse_post fills it): tells a missing ``score`` from a 0
    fields: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)

    def tag_names(self, category: int | None = None) -> list[str]:
        return [t.name for t in self.tags if category is None or t.category == category]

    @property
    def tag_string(self) -> str:
        return " ".join(t.name for t in self.tags)

    def to_danbooru2021(self) -> dict[str, Any]:
        """The Danbooru2021 JSON form (``tags`` as ``{"name", "category"}`` with string categories)."""
        out = {
            "id": str(self.id), "md5": self.md5, "file_ext": self.file_ext, "rating": self.rating,
            "score": str(self.score), "fav_count": str(self.fav_count),
            "image_width": str(self.image_width), "image_height": str(self.image_height),
            "tags": [{"name": t.name, "category": str(t.category)} for t in self.tags],
        }
        if self.pixiv:
            out["pixiv"] = dict(self.pixiv)
        out.update(self.extra)
        return out

    def to_api(self) -> dict[str, Any]:
        """The live API form (``tag_string_*`` fields)."""
        out: dict[str, Any] = {
            "id": self.id, "md5": self.md5, "file_ext": self.file_ext, "rating": self.rating,
            "score": self.score, "fav_count": self.fav_count,
            "image_width": self.image_width, "image_height": self.image_height,
            "tag_string": self.tag_string,
        }
        for key, cat in API_TAG_FIELDS.items():
            out[key] = " ".join(self.tag_names(cat))
        if self.pixiv:
            out["pixiv"] = dict(self.pixiv)
        out.update(self.extra)
        return out


_KNOWN_KEYS = {"id", "md5", "file_ext", "rating", "score", "fav_count", "image_width", "image_height",
               "tags", "tag_string", "pixiv", *API_TAG_FIELDS}


def _int(raw: dict, key: str, where: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if value is None:
        raise DanbooruFormatError(f"{where}: missing field {key!r}")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: Infinity
        raise DanbooruFormatError(f"{where}: field {key!r} is not an integer ({value!r})") from exc


def parse_post(raw: dict[str, Any], where: str = "post") -> Post:
    """A :class:`Post` from either metadata form (detected per record)."""
    if not isinstance(raw, dict):
        raise DanbooruFormatError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    post_id = _int(raw, "id", where)
    if post_id < 0:
        raise DanbooruFormatError(f"{where}: negative post id {post_id}")
    md5 = str(raw.get("md5") or "")
    if md5 and not _SAFE_MD5.fullmatch(md5):
        raise DanbooruFormatError(f"{where}: md5 {md5!r} is not 32 hex digits")
    ext = str(raw.get("file_ext") or "")
    if not _SAFE_EXT.fullmatch(ext):
        raise DanbooruFormatError(f"{where}: file_ext {ext!r} is not a plain extension")
    rating = str(raw.get("rating") or "")
    if rating not in RATINGS:
        raise DanbooruFormatError(f"{where}: rating {rating!r} is not one of {RATINGS}")
    tags: list[Tag] = []
    if "tags" in raw:
        if not isinstance(raw["tags"], list):
            raise DanbooruFormatError(f"{where}: 'tags' must be a list of {{name, category}} objects")
        for i, t in enumerate(raw["tags"]):
            if not isinstance(t, dict) or "name" not in t or "category" not in t:
                raise DanbooruFormatError(f"{where}: tags[{i}] must have 'name' and 'category'")
            try:
                cat = int(t["category"])
            except (TypeError, ValueError, OverflowError) as exc:
                raise DanbooruFormatError(f"{where}: tags[{i}] category {t['category']!r} is not an int") from exc
            if cat not in CATEGORY_NAMES:
                raise DanbooruFormatError(f"{where}: tags[{i}] category {cat} is not one of {sorted(CATEGORY_NAMES)}")
            if not isinstance(t["name"], str) or not t["name"].strip():
                raise DanbooruFormatError(f"{where}: tags[{i}] name {t['name']!r} is not a non-empty string")
            tags.append(Tag(t["name"], cat))
    elif any(k in raw for k in API_TAG_FIELDS):
        for key, cat in API_TAG_FIELDS.items():
            tags += [Tag(name, cat) for name in str(raw.get(key) or "").split()]
    else:
        raise DanbooruFormatError(f"{where}: no 'tags' list and no tag_string_* fields")
    pixiv = raw.get("pixiv") or {}
    if not isinstance(pixiv, dict):
        raise DanbooruFormatError(f"{where}: 'pixiv' must be an object, got {type(pixiv).__name__}")
    return Post(
        id=post_id, md5=md5.lower(), file_ext=ext.lower(), rating=rating,
        score=_int(raw, "score", where, 0), fav_count=_int(raw, "fav_count", where, 0),
        image_width=_int(raw, "image_width", where, 0), image_height=_int(raw, "image_height", where, 0),
        tags=tags, pixiv=dict(pixiv),
        extra={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
        fields=frozenset(raw),
    )


def iter_metadata(path: str | os.PathLike, skipped: list[tuple[str, str]] | None = None) -> Iterator[Post]:
    """Posts from a JSON-lines file (or one JSON list), either form, in file order.

    A fault raises :class:`DanbooruFormatError` naming the file and the line (``path:line``, or
    ``path[i]`` in the list form). With a ``skipped`` list, a bad record (invalid JSON line, bad
    field, unsafe md5/extension) is appended there as ``(where, reason)`` and reading goes on; a
    fault of the whole file (not UTF-8 in the list form, a broken JSON list) still raises.
    """
    path = Path(path)

    def refuse(where: str, exc: DanbooruFormatError) -> None:
        if skipped is None:
            raise exc
        skipped.append((where, str(exc)))

    with open(path, "rb") as f:
        head = f.read(1 << 16).lstrip(b"\xef\xbb\xbf").lstrip()[:1]
        f.seek(0)
        if head == b"[":
            data = f.read()
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                line = data.count(b"\n", 0, exc.start) + 1
                raise DanbooruFormatError(f"{path}:{line}: not UTF-8 text (byte offset {exc.start})") from exc
            records = parse_json_text(text, path, DanbooruFormatError, "Danbooru metadata", expect=list)
            for i, raw in enumerate(records):
                where = f"{path}[{i}]"
                try:
                    post = parse_post(raw, where)
                except DanbooruFormatError as exc:
                    refuse(where, exc)
                    continue
                yield post
            return
        for lineno, raw_line in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw_line.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                refuse(where, DanbooruFormatError(f"{where}: not UTF-8 text (byte {exc.start} of the line)"))
                continue
            if not line.strip():
                continue
            try:
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DanbooruFormatError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
                except (ValueError, RecursionError) as exc:  # a 4300+-digit integer, nesting too deep
                    raise DanbooruFormatError(f"{where}: not usable JSON ({type(exc).__name__}: {exc})") from exc
                post = parse_post(raw, where)
            except DanbooruFormatError as exc:
                refuse(where, exc)
                continue
            yield post


def write_metadata(posts: Iterable[Post], path: str | os.PathLike, form: str = "danbooru2021") -> Path:
    """Write posts as JSON lines in ``form`` (``danbooru2021`` or ``api``), atomically."""
    from acg2vec_lab.io import atomic_path

    if form not in ("danbooru2021", "api"):
        raise ValueError(f"form must be 'danbooru2021' or 'api', got {form!r}")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for p in posts:
                f.write(json.dumps(p.to_danbooru2021() if form == "danbooru2021" else p.to_api(), ensure_ascii=False) + "\n")
    return Path(path)


def layout_path(post: Post, layout: str = "danbooru2021") -> str:
    """The relative image path of ``post`` in a layout (a :data:`LAYOUTS` name or a format pattern)."""
    pattern = LAYOUTS.get(layout, layout)
    try:
        rel = pattern.format(id=post.id, md5=post.md5, ext=post.file_ext, bucket=f"{post.id % 1000:04d}",
                             md5_prefix=post.md5[0:2])
    except (KeyError, IndexError) as exc:
        raise ValueError(f"layout {layout!r} uses an unknown field ({exc}); use id, md5, ext, bucket, md5_prefix") from exc
    return rel


def safe_join(root: str | os.PathLike, rel: str, what: str = "path") -> Path:
    """``root / rel``, refusing anything that would leave ``root`` (absolute, ``..``, NUL bytes,
    over-long names, symlinks out) with :class:`UnsafePathError` whose message starts with ``what``
    (see :func:`acg2vec_lab.io_safety.safe_join`)."""
    try:
        return _safe_join(root, rel, what)
    except UnsafePath as exc:
        raise UnsafePathError(f"{exc} (data root {root})") from exc


class DanbooruDataset:
    """Posts plus the folder holding their images.

    Args:
        posts: the posts (order kept).
        image_root: the folder the layout is relative to.
        layout: a :data:`LAYOUTS` name or a format pattern.
        root: the data set's folder (defaults to ``image_root``).
        val_fraction, test_fraction: shares of post ids hashed into val/test by :meth:`split`.
        info: free metadata about the set (e.g. ``{"synthetic": True, ...}``). The keys
            ``data_label``, ``has_scores``, ``score_source`` and ``scores_note`` (written by
            :func:`acg2vec_lab.data.source.open_dataset`) back the properties of the same names.

    ``skipped`` lists ``(what, problem)`` for every post or file a reader left out (a missing or
    undecodable image, a bad record); ``vocabulary`` is the tag vocabulary the reader kept (``None``:
    every tag of the posts), ``minimum_tag_count`` the count it was cut at.
    """

    def __init__(self, posts: Sequence[Post], image_root: str | os.PathLike, layout: str = "danbooru2021",
                 root: str | os.PathLike | None = None, val_fraction: float = 0.1, test_fraction: float = 0.1,
                 info: dict[str, Any] | None = None):
        self.posts = list(posts)
        self.image_root = Path(image_root)
        self.layout = layout
        self.root = Path(root) if root is not None else self.image_root
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.info = dict(info or {})
        self.skipped: list[tuple[str, str]] = []
        self.vocabulary: list[Tag] | None = None
        self.minimum_tag_count: int | None = None
        self._by_id = {p.id: p for p in self.posts}
        if len(self._by_id) != len(self.posts):
            dup = [k for k, v in Counter(p.id for p in self.posts).items() if v > 1][:5]
            raise DanbooruFormatError(f"duplicate post ids in the data set: {dup}")

    @classmethod
    def from_metadata(cls, metadata: str | os.PathLike | Sequence[str | os.PathLike], image_root: str | os.PathLike,
                      layout: str = "danbooru2021", skipped: list[tuple[str, str]] | None = None,
                      **kwargs: Any) -> DanbooruDataset:
        """Read one or more metadata files (either form) with images under ``image_root``; with a
        ``skipped`` list, bad records are reported there (see :func:`iter_metadata`) instead of raising."""
        files = [metadata] if isinstance(metadata, (str, os.PathLike)) else list(metadata)
        posts = [p for f in files for p in iter_metadata(f, skipped)]
        return cls(posts, image_root, layout, **kwargs)

    @classmethod
    def from_folder(cls, root: str | os.PathLike, **kwargs: Any) -> DanbooruDataset:
        """A Danbooru2021-style folder: ``metadata/*.json*`` (or ``posts.jsonl``) and images in
        ``original/`` (or the folder itself) in the Danbooru2021 layout. ``dataset.json`` beside them,
        if present, supplies ``layout``, ``val_fraction``, ``test_fraction`` and ``info``."""
        root = Path(root)
        files = sorted((root / "metadata").glob("*.json*")) if (root / "metadata").is_dir() else []
        if not files and (root / "posts.jsonl").is_file():
            files = [root / "posts.jsonl"]
        if not files:
            raise DanbooruFormatError(f"{root}: no metadata/*.json or posts.jsonl found")
        opts: dict[str, Any] = {}
        if (root / "dataset.json").is_file():
            desc = read_json_file(root / "dataset.json", DanbooruFormatError, "dataset description", expect=dict)
            opts = {k: desc[k] for k in ("layout", "val_fraction", "test_fraction") if k in desc}
            opts["info"] = desc
        opts.update(kwargs)
        image_root = root / "original" if (root / "original").is_dir() else root
        layout = opts.pop("layout", "danbooru2021")
        return cls.from_metadata(files, image_root, layout, root=root, **opts)

    def __len__(self) -> int:
        return len(self.posts)

    def __repr__(self) -> str:
        kind = "synthetic " if self.info.get("synthetic") else ""
        return f"<DanbooruDataset {kind}{len(self.posts)} posts at {self.root}>"

    def post(self, post_id: int) -> Post:
        return self._by_id[post_id]

    @property
    def is_synthetic(self) -> bool:
        return bool(self.info.get("synthetic"))

    @property
    def data_source(self) -> str:
        """The :mod:`acg2vec_lab.record` data source of numbers measured on this set: ``synthetic`` or ``real``."""
        return "synthetic" if self.is_synthetic else "real"

    @property
    def data_label(self) -> str:
        """``"synthetic"`` or ``"real: <folder name>"``: what titles and findings call this set."""
        return str(self.info.get("data_label") or ("synthetic" if self.is_synthetic else f"real: {self.root.name}"))

    @property
    def has_scores(self) -> bool:
        """Whether every post carries the pixiv-style ``bookmark_count``, ``view_count`` and ``sanity_level``
        that the score models (Pix2Score, deepix) learn (``info["has_scores"]`` when a reader decided it)."""
        if "has_scores" in self.info:
            return bool(self.info["has_scores"])
        keys = ("bookmark_count", "view_count", "sanity_level")
        return bool(self.posts) and all(all(k in p.pixiv for k in keys) for p in self.posts)

    @property
    def score_source(self) -> str | None:
        """Where the score labels come from: ``pixiv`` (the metadata's own counts), ``danbooru`` (mapped
        from ``score`` / ``fav_count``, see :mod:`acg2vec_lab.data.source`) or None (no scores)."""
        if "score_source" in self.info:
            return self.info["score_source"]
        return "pixiv" if self.has_scores else None

    @property
    def scores_note(self) -> str:
        """One sentence on the score labels (why they are missing, when they are)."""
        if self.info.get("scores_note"):
            return str(self.info["scores_note"])
        return ("pixiv-style bookmark / view / sanity labels on every post" if self.has_scores else
                "no pixiv-style bookmark / view / sanity labels and no Danbooru score / fav_count to map them from")

    def image_path(self, post: Post | int) -> Path:
        """Where ``post``'s image is (checked to stay inside the image root)."""
        if isinstance(post, int):
            post = self._by_id[post]
        return safe_join(self.image_root, layout_path(post, self.layout), what=f"post {post.id}: image path")

    def resolve_images(self, posts: Iterable[Post] | None = None) -> tuple[list[tuple[Post, Path]], list[tuple[str, str]]]:
        """``(found, skipped)`` for a batch: ``(post, image path)`` for every post whose path is safe,
        ``(f"post {id}", reason)`` for each one refused (:class:`UnsafePathError`); never raises for one post."""
        found: list[tuple[Post, Path]] = []
        skipped: list[tuple[str, str]] = []
        for post in self.posts if posts is None else posts:
            try:
                found.append((post, self.image_path(post)))
            except ValueError as exc:  # UnsafePathError, or a layout that cannot format this post
                skipped.append((f"post {post.id}", str(exc)))
        return found, skipped

    def load_image(self, post: Post | int, **kwargs: Any):
        from acg2vec_lab.data.images import load_image

        return load_image(self.image_path(post), **kwargs)

    def split(self, name: str) -> list[Post]:
        """Posts of split ``name`` ("train"/"val"/"test"), assigned by a hash of the post id."""
        from acg2vec_lab.data.splits import split_of

        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return [p for p in self.posts if split_of(p.id, self.val_fraction, self.test_fraction) == name]

    def tag_counts(self) -> Counter:
        return Counter(t for p in self.posts for t in p.tags)

    def tag_vocabulary(self, min_count: int = 1, categories: Iterable[int] | None = None) -> list[Tag]:
        """Tags used by at least ``min_count`` posts, most frequent first (ties by name)."""
        cats = None if categories is None else set(categories)
        counts = self.tag_counts()
        tags = [t for t, c in counts.items() if c >= min_count and (cats is None or t.category in cats)]
        return sorted(tags, key=lambda t: (-counts[t], t.name))


# --------------------------------------------------------------------------- DeepDanbooru projects

DEEPDANBOORU_PROJECT_DEFAULTS: dict[str, Any] = {
    "image_width": 299,
    "image_height": 299,
    "database_path": None,
    "minimum_tag_count": 20,
    "model": "resnet_custom_v2",
    "minibatch_size": 32,
    "epoch_count": 10,
    "export_model_per_epoch": 10,
    "checkpoint_frequency_mb": 200,
    "console_logging_frequency_mb": 10,
    "loss": "binary_crossentropy",
    "optimizer": "adam",
    "learning_rate": 0.001,
    "rotation_range": [0.0, 360.0],
    "scale_range": [0.9, 1.1],
    "shift_range": [-0.1, 0.1],
    "mixed_precision": False,
}


@dataclass
class DeepDanbooruProject:
    """A DeepDanbooru project folder, read back."""

    path: Path
    context: dict[str, Any]  # project.json merged over the defaults
    tags: list[str]  # tags.txt, in order (general, character, system)
    categories: list[dict[str, Any]]  # categories.json: [{"name", "start_index"}]
    records: list[dict[str, Any]]  # rows of the posts table

    @property
    def database_path(self) -> Path:
        return safe_join(self.path, self.context.get("database_path") or "project.sqlite3",
                         what=f"{self.path / 'project.json'}: database_path")

    def image_path(self, record: dict[str, Any]) -> Path:
        md5, ext = str(record.get("md5")), str(record.get("file_ext"))
        if not _SAFE_MD5.fullmatch(md5) or not _SAFE_EXT.fullmatch(ext):
            raise UnsafePathError(f"{self.path}: record {record.get('id')} has an unsafe md5/file_ext ({md5!r}, {ext!r})")
        return safe_join(self.path, f"images/{md5[0:2]}/{md5}.{ext}", what=f"{self.path}: record {record.get('id')}")

    def resolve_images(self, records: Iterable[dict[str, Any]] | None = None
                       ) -> tuple[list[tuple[dict[str, Any], Path]], list[tuple[str, str]]]:
        """``(found, skipped)`` for a batch of posts-table rows: ``(record, image path)`` for each safe
        row, ``(f"record {id}", reason)`` for each refused one; never raises for one row."""
        found: list[tuple[dict[str, Any], Path]] = []
        skipped: list[tuple[str, str]] = []
        for record in self.records if records is None else records:
            try:
                found.append((record, self.image_path(record)))
            except UnsafePathError as exc:
                skipped.append((f"record {record.get('id')}", str(exc)))
        return found, skipped

    def category_of(self, index: int) -> str:
        """The ``categories.json`` block name of tag position ``index`` (``""`` before the first block)."""
        return _categories.block_names(index + 1, self.categories)[index] if index >= 0 else ""

    def training_records(self) -> list[dict[str, Any]]:
        """Rows DeepDanbooru trains on: png/jpg/jpeg with ``tag_count_general >= minimum_tag_count``."""
        minimum = int(self.context.get("minimum_tag_count", 0))
        return [r for r in self.records if r["file_ext"] in ("png", "jpg", "jpeg")
                and isinstance(r["tag_count_general"], int) and r["tag_count_general"] >= minimum]


def write_deepdanbooru_project(
    dataset: DanbooruDataset,
    path: str | os.PathLike,
    posts: Sequence[Post] | None = None,
    min_tag_count: int = 1,
    include_ratings: bool = True,
    copy_images: str = "copy",
    **context: Any,
) -> Path:
    """Write ``dataset`` (or ``posts`` of it) as a DeepDanbooru project.

    ``tags.txt`` holds the general tags (natural-sorted), then the character tags, then the system
    rating tags (as the current ``download-tags`` writes them); ``categories.json`` records where each
    block starts. Images are copied (``copy_images="copy"``), hard-linked (``"link"``, falls back to
    copy) or not written (``"none"``) to ``images/<md5[0:2]>/<md5>.<ext>``.
    ``context`` overrides :data:`DEEPDANBOORU_PROJECT_DEFAULTS` in ``project.json``.
    """
    from acg2vec_lab.io import write_json, write_text

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    posts = list(dataset.posts if posts is None else posts)
    unknown = sorted(set(context) - set(DEEPDANBOORU_PROJECT_DEFAULTS) - {"learning_rates"})
    if unknown:
        raise ValueError(f"unknown project.json key(s) {unknown}")
    ctx = {**DEEPDANBOORU_PROJECT_DEFAULTS, **context}
    ctx.setdefault("database_path", None)
    if ctx["database_path"] is None:
        ctx["database_path"] = "project.sqlite3"
    write_json(path / "project.json", ctx)

    counts = Counter(t for p in posts for t in p.tags)
    general = sorted({t.name for t, c in counts.items() if t.category == GENERAL and c >= min_tag_count}, key=_natural_key)
    character = sorted({t.name for t, c in counts.items() if t.category == CHARACTER and c >= min_tag_count}, key=_natural_key)
    system = list(_categories.RATING_TAGS.values()) if include_ratings else []
    write_text(path / "tags.txt", "\n".join(general + character + system) + "\n")
    write_text(path / "tags-general.txt", "\n".join(general) + "\n")
    write_text(path / "tags-character.txt", "\n".join(character) + "\n")
    cats = [{"name": "General", "start_index": 0}, {"name": "Character", "start_index": len(general)}]
    if system:
        cats.append({"name": "System", "start_index": len(general) + len(character)})
    write_json(path / "categories.json", cats)

    db = safe_join(path, ctx["database_path"], what="database_path")
    tmp_db = db.with_name(db.name + ".part")
    if tmp_db.exists():
        tmp_db.unlink()
    con = sqlite3.connect(tmp_db)
    try:
        con.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, md5 TEXT NOT NULL, file_ext TEXT NOT NULL, "
                    "tag_string TEXT NOT NULL, tag_count_general INTEGER NOT NULL)")
        rows = []
        for p in posts:
            names = [t.name for t in p.tags]
            if include_ratings:
                names.append(_categories.RATING_TAGS[p.rating])
            rows.append((p.id, p.md5, p.file_ext, " ".join(names), sum(t.category == GENERAL for t in p.tags)))
        con.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?)", rows)
        con.commit()
    finally:
        con.close()
    os.replace(tmp_db, db)

    if copy_images != "none":
        for p in posts:
            if not _SAFE_MD5.fullmatch(p.md5):
                raise UnsafePathError(f"post {p.id}: md5 {p.md5!r} cannot name an image file")
            src = dataset.image_path(p)
            dst = safe_join(path, f"images/{p.md5[0:2]}/{p.md5}.{p.file_ext}", what=f"post {p.id}: image path")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                continue
            if copy_images == "link":
                try:
                    os.link(src, dst)
                    continue
                except OSError:
                    pass
            shutil.copyfile(src, dst)
    return path


def read_project_context(path: str | os.PathLike) -> dict[str, Any]:
    """``project.json`` merged over :data:`DEEPDANBOORU_PROJECT_DEFAULTS`; a file that is not a JSON
    object, or a ``database_path`` / ``minimum_tag_count`` / ``image_width`` / ``image_height`` of
    the wrong type, raises :class:`DanbooruFormatError` naming the file and the key."""
    path = Path(path)
    raw = read_json_file(path, DanbooruFormatError, "DeepDanbooru project.json", expect=dict)
    context = {**DEEPDANBOORU_PROJECT_DEFAULTS, **raw}
    if context["database_path"] is not None and not isinstance(context["database_path"], str):
        raise DanbooruFormatError(f"{path}: 'database_path' must be a relative path string, "
                                  f"got {context['database_path']!r}")
    for key in ("minimum_tag_count", "image_width", "image_height"):
        value = context[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DanbooruFormatError(f"{path}: {key!r} must be a non-negative integer, got {value!r}")
    return context


def read_deepdanbooru_project(path: str | os.PathLike) -> DeepDanbooruProject:
    """Read a DeepDanbooru project folder (missing ``project.json`` keys take their defaults).

    Every file's fault is a :class:`DanbooruFormatError` naming it (``project.json`` via
    :func:`read_project_context`, ``tags.txt`` and ``categories.json`` via
    :mod:`acg2vec_lab.tagging.categories`); rows of the posts table are kept as they are and checked
    when their image path is asked for (:meth:`DeepDanbooruProject.resolve_images`).
    """
    from acg2vec_lab.tagging.categories import read_categories_json, read_tags_txt

    path = Path(path)
    pj = path / "project.json"
    if not pj.is_file():
        raise DanbooruFormatError(f"{path}: no project.json (not a DeepDanbooru project)")
    context = read_project_context(pj)
    tags_file = path / "tags.txt"
    tags = read_tags_txt(tags_file, DanbooruFormatError) if tags_file.is_file() else []
    cat_file = path / "categories.json"
    categories = read_categories_json(cat_file, DanbooruFormatError) if cat_file.is_file() else []
    project = DeepDanbooruProject(path, context, tags, categories, [])
    db = project.database_path
    if not db.is_file():
        raise DanbooruFormatError(f"{path}: database {db} does not exist")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cur = con.execute("SELECT id, md5, file_ext, tag_string, tag_count_general FROM posts ORDER BY id")
        project.records = [dict(zip(("id", "md5", "file_ext", "tag_string", "tag_count_general"), row)) for row in cur]
    except sqlite3.DatabaseError as exc:
        raise DanbooruFormatError(f"{db}: cannot read the posts table ({exc})") from exc
    finally:
        con.close()
    return project


def _natural_key(s: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", s)]

