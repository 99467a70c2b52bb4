"""One entry point for the image notebooks' data: the SYNTHETIC set, or a researcher's own folder.

``open_dataset(DATA, PROFILE)`` returns a :class:`~acg2vec_lab.data.danbooru.DanbooruDataset` whatever
``DATA`` is:

* ``None`` or ``"synthetic"``: the profile's SYNTHETIC drawn set (:func:`synthetic_dataset`), labelled
  ``synthetic`` as before.
* a folder with a ``project.json``: a **DeepDanbooru project** (``project.json``, ``tags.txt``,
  ``categories.json``, the SQLite ``posts(id, md5, file_ext, tag_string, tag_count_general, ...)`` table
  at ``database_path`` (default ``project.sqlite3``), images at ``images/<md5[0:2]>/<md5>.<ext>``).
  Tags are those of ``tags.txt`` with their ``categories.json`` block (General 0, Character 4, any
  Artist / Copyright / Meta block by name); a tag of ``tag_string`` that is not in ``tags.txt`` is
  dropped, as DeepDanbooru ignores it. The rating is the table's ``rating`` column when it has one,
  else the post's system tag (``rating:general`` / ``sensitive`` / ``questionable`` / ``explicit``, the
  older ``rating:safe`` read as ``g``). As DeepDanbooru trains only on posts with
  ``tag_count_general >= minimum_tag_count``, the other posts are left out (listed in ``skipped``).
* any other folder: a **Danbooru2021-format folder**: metadata as JSON lines (or a JSON list), in
  either form :func:`~acg2vec_lab.data.danbooru.iter_metadata` reads (Danbooru2021 ``tags`` objects or
  the API's ``tag_string_*``), from ``metadata/*.json*`` or the folder's own ``*.json`` / ``*.jsonl``
  files. Images under ``original/``, ``512px/``, ``images/`` or the folder itself, in the Danbooru2021
  layout (``0xxx/<id>.<ext>``), flat (``<id>.<ext>``), by md5 (``<md5[0:2]>/<md5>.<ext>``) or the
  ``512px`` subset's ``0xxx/<id>.jpg``; the layout is detected by looking which one finds the files of
  the first posts.

**Vocabulary.** Only tags with at least ``minimum_tag_count`` posts (of the posts kept) stay on the
posts: the project's ``project.json`` value when it has one, else ``minimum_tag_count`` of
``configs/data/real-<variant>.json``. ``dataset.vocabulary`` lists them, most frequent first.

**Images.** Every post's image is checked (it must exist, stay inside the folder and decode); a post
whose image is missing, unsafe or broken is left out and reported in ``dataset.skipped`` as
``(what, problem)``, as is a metadata record that cannot be read. Never fatal: only a folder where no
image at all is found raises. A post without an md5 gets its file's md5 (the leak check and the
embedding cache key on it), and a missing width/height the decoded size.

**Score labels** (the Pix2Score / deepix bins of :mod:`acg2vec_lab.data.labels`), from the first of:

1. **pixiv-style fields** on every post: ``bookmark_count`` (or ``total_bookmarks``) and ``view_count``
   (or ``total_view``), in the record's ``pixiv`` object, as top-level fields or as columns of the
   project's posts table; ``sanity_level`` likewise, else from the rating (``g`` 2, ``s`` 4, ``q`` 6,
   ``e`` 6: the levels the synthetic set uses; pixiv marks R-18 separately with ``x_restrict``, which
   these heads do not predict). ``score_source == "pixiv"``.
2. **Danbooru ``fav_count`` / ``score``** on every post (Danbooru2021 always has both), mapped:
   ``bookmark_count = fav_count`` (a Danbooru favourite and a pixiv bookmark are the same act, a user
   keeping the work; ``max(score, 0)`` when there is no ``fav_count``), ``view_count = 10 x
   bookmark_count`` (Danbooru publishes no views; 10 is pixiv's typical views per bookmark, the
   synthetic set's ``exp(2.3)``, so the view head learns nothing the bookmark head does not), and
   ``sanity_level`` from the rating as above. ``score_source == "danbooru"``.
3. otherwise ``dataset.has_scores`` is False and ``dataset.scores_note`` says why (also when only some
   posts carry the fields): notebook 04 and the deepix part of notebook 03 skip, visibly.

``dataset.data_label`` is ``"synthetic"`` or ``"real: <folder name>"`` and ``dataset.data_source``
``synthetic`` or ``real`` (:func:`data_source_of` gives it from ``DATA`` for ``setup_notebook(SEED, data=...)``);
:func:`headline_label` is what prose prints (``SYNTHETIC`` for the default, as before) and
:func:`stamp_figure` puts the real label into a figure's title. Splits hash post ids as for the
synthetic set, with ``val_fraction`` / ``test_fraction`` of the data config.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acg2vec_lab.data.danbooru import (
    _SAFE_EXT,
    _SAFE_MD5,
    ARTIST,
    CHARACTER,
    COPYRIGHT,
    GENERAL,
    META,
    DanbooruDataset,
    DanbooruFormatError,
    Post,
    Tag,
    iter_metadata,
    layout_path,
    read_deepdanbooru_project,
    safe_join,
)
from acg2vec_lab.tagging.categories import RATING_TAGS, block_names

SYNTHETIC_NAMES = ("synthetic",)
PIXIV_ALIASES = {"bookmark_count": ("bookmark_count", "total_bookmarks", "bookmarks"),
                 "view_count": ("view_count", "total_view", "views"),
                 "sanity_level": ("sanity_level",)}
SANITY_OF_RATING = {"g": 2, "s": 4, "q": 6, "e": 6}
VIEWS_PER_BOOKMARK = 10
RATING_OF_SYSTEM_TAG = {"rating:safe": "g", **{tag: r for r, tag in RATING_TAGS.items()}}  # + the pre-2022 "safe"
_BLOCK_CODES = {"general": GENERAL, "character": CHARACTER, "artist": ARTIST, "copyright": COPYRIGHT, "meta": META}
IMAGE_ROOTS = ("original", "512px", "images", ".")
LAYOUT_CANDIDATES = ("danbooru2021", "flat", "md5", "{bucket}/{id}.jpg")
_METADATA_SUFFIXES = (".json", ".jsonl", ".ndjson")
_NOT_METADATA = {"dataset.json", "project.json", "categories.json"}


@dataclass(frozen=True)
class RealDataConfig:
    """Defaults for a researcher's own data (``configs/data/real-<variant>.json``)."""

    minimum_tag_count: int = 20  # tags kept on the posts need this many posts (when no project.json says)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    check_images: bool = True  # decode every image once and leave out the broken ones

    def __post_init__(self) -> None:
        if isinstance(self.minimum_tag_count, bool) or not isinstance(self.minimum_tag_count, int) \
                or self.minimum_tag_count < 1:
            raise ValueError(f"minimum_tag_count must be an integer >= 1, got {self.minimum_tag_count!r}")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1):
            raise ValueError("val_fraction + test_fraction must be in [0, 1)")


def real_data_config(profile: str | None = None, **overrides: Any) -> RealDataConfig:
    """The profile's :class:`RealDataConfig` (``configs/data/real-<variant>.json``), with overrides."""
    from acg2vec_lab.config import load_config, variant_for

    return load_config("data", variant=f"real-{variant_for(profile)}", **overrides)


def is_synthetic(data: Any) -> bool:
    return data is None or (isinstance(data, str) and data.strip().lower() in ("", *SYNTHETIC_NAMES))


def open_dataset(data: str | Path | None, profile: str | None = None, **options: Any) -> DanbooruDataset:
    """The data set a notebook runs on (see the module doc).

    Args:
        data: ``None`` / ``"synthetic"``, or the path of a Danbooru2021-format folder or DeepDanbooru project.
        profile: ``smoke`` / ``cpu`` / ``full``: the synthetic set's size, or the real-data defaults.
        **options: :class:`RealDataConfig` fields (``minimum_tag_count``, ``val_fraction``,
            ``test_fraction``, ``check_images``) replacing the config's (``minimum_tag_count`` also
            replaces a project's own).
    """
    if is_synthetic(data):
        from acg2vec_lab.data.synthetic import synthetic_dataset

        if options:
            raise ValueError(f"open_dataset: options {sorted(options)} are for a real data folder, not the synthetic set")
        ds = synthetic_dataset(profile)
        ds.info.update(synthetic=True, data_label="synthetic", score_source="pixiv",
                       scores_note="pixiv-style labels drawn by the synthetic set's hidden formula (notebook 00)")
        return ds
    root = Path(str(data)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"open_dataset: {root} is not a folder (a Danbooru2021-format folder or a "
                                "DeepDanbooru project with project.json); DATA=None runs on the synthetic set")
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(RealDataConfig)})
    if unknown:
        raise TypeError(f"open_dataset: unknown option(s) {unknown}; allowed: "
                        f"{[f.name for f in dataclasses.fields(RealDataConfig)]}")
    cfg = real_data_config(profile)
    explicit_min = options.get("minimum_tag_count")
    cfg = dataclasses.replace(cfg, **options)
    if (root / "project.json").is_file():
        return _from_deepdanbooru(root, cfg, explicit_min)
    return _from_danbooru_folder(root, cfg)


# --------------------------------------------------------------------------- Danbooru2021 folders

def metadata_files(root: Path) -> list[Path]:
    """``metadata/**/*.json*`` when there is such a folder, else the folder's own JSON / JSON-lines files."""
    meta = root / "metadata"
    if meta.is_dir():
        files = sorted(p for p in meta.rglob("*") if p.is_file() and p.suffix.lower() in _METADATA_SUFFIXES)
        if files:
            return files
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in _METADATA_SUFFIXES
                  and p.name not in _NOT_METADATA)


def detect_layout(posts: Sequence[Post], root: Path, sample: int = 64) -> tuple[Path, str, int]:
    """``(image root, layout, hits)``: the candidate (:data:`IMAGE_ROOTS` x :data:`LAYOUT_CANDIDATES`) that
    finds the most image files of the first ``sample`` posts (ties: the earlier candidate)."""
    probe = list(posts[:sample])
    best: tuple[Path, str, int] = (root, "danbooru2021", -1)
    for sub in IMAGE_ROOTS:
        image_root = root if sub == "." else root / sub
        if not image_root.is_dir():
            continue
        for layout in LAYOUT_CANDIDATES:
            hits = 0
            for p in probe:
                if layout == "md5" and not p.md5:
                    continue
                try:
                    hits += safe_join(image_root, layout_path(p, layout)).is_file()
                except ValueError:
                    continue
            if hits > best[2]:
                best = (image_root, layout, hits)
    return best


def _from_danbooru_folder(root: Path, cfg: RealDataConfig) -> DanbooruDataset:
    files = metadata_files(root)
    if not files:
        raise DanbooruFormatError(f"{root}: no metadata found (metadata/*.json, *.jsonl or *.json in the folder) "
                                  "and no project.json: not a Danbooru2021-format folder or DeepDanbooru project")
    skipped: list[tuple[str, str]] = []
    posts = _unique([p for f in files for p in iter_metadata(f, skipped)], skipped)
    if not posts:
        raise DanbooruFormatError(f"{root}: the metadata ({', '.join(f.name for f in files)}) holds no readable post")
    image_root, layout, hits = detect_layout(posts, root)
    if hits <= 0:
        raise DanbooruFormatError(f"{root}: no image of the first posts found under {', '.join(IMAGE_ROOTS)} in any "
                                  f"layout ({', '.join(LAYOUT_CANDIDATES)})")
    info = {"format": "danbooru2021", "metadata": [str(f.relative_to(root)) for f in files],
            "image_root": str(image_root.relative_to(root)) if image_root != root else ".", "layout": layout}
    return _finish(posts, image_root, layout, root, cfg, cfg.minimum_tag_count, skipped, info)


def _unique(posts: list[Post], skipped: list[tuple[str, str]]) -> list[Post]:
    seen: set[int] = set()
    out = []
    for p in posts:
        if p.id in seen:
            skipped.append((f"post {p.id}", "duplicate post id in the metadata (the first record is kept)"))
            continue
        seen.add(p.id)
        out.append(p)
    return out


# --------------------------------------------------------------------------- DeepDanbooru projects

def _project_extra_columns(db: Path) -> dict[int, dict[str, Any]]:
    """Every column of the posts table beyond DeepDanbooru's five, by post id."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cols = [row[1] for row in con.execute("PRAGMA table_info(posts)")]
        extra = [c for c in cols if c not in ("id", "md5", "file_ext", "tag_string", "tag_count_general")]
        if not extra:
            return {}
        quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in extra)
        return {int(row[0]): dict(zip(extra, row[1:])) for row in con.execute(f"SELECT id, {quoted} FROM posts")}
    except sqlite3.DatabaseError as exc:
        raise DanbooruFormatError(f"{db}: cannot read the posts table ({exc})") from exc
    finally:
        con.close()


def _tag_categories(project: Any) -> dict[str, int]:
    """tags.txt tag -> category, from categories.json blocks by name (General 0, Character 4, ...)."""
    tags = [t for t in project.tags if not t.startswith("rating:")]
    if not project.categories:
        cats = {}
        for name, code in (("general", GENERAL), ("character", CHARACTER), ("copyright", COPYRIGHT),
                           ("artist", ARTIST), ("meta", META)):
            f = project.path / f"tags-{name}.txt"
            if f.is_file():
                cats.update({t.strip(): code for t in f.read_text(encoding="utf-8").splitlines() if t.strip()})
        return {t: cats.get(t, GENERAL) for t in tags}
    names = block_names(len(project.tags), project.categories)
    return {tag: _BLOCK_CODES.get(name.lower(), GENERAL) for tag, name in zip(project.tags, names)
            if not tag.startswith("rating:")}


def _from_deepdanbooru(root: Path, cfg: RealDataConfig, explicit_min: int | None) -> DanbooruDataset:
    from acg2vec_lab.io_safety import read_json_file

    project = read_deepdanbooru_project(root)  # a broken project.json / tags.txt / categories.json / db raises
    raw_context = read_json_file(root / "project.json", DanbooruFormatError, "DeepDanbooru project.json", expect=dict)
    minimum = explicit_min or (project.context["minimum_tag_count"] if "minimum_tag_count" in raw_context
                               else cfg.minimum_tag_count)
    minimum = max(1, int(minimum))
    extra_cols = _project_extra_columns(project.database_path)
    categories = _tag_categories(project) if project.tags else None
    skipped: list[tuple[str, str]] = []
    posts: list[Post] = []
    dropped_tags: Counter = Counter()
    for rec in project.records:
        what = f"record {rec.get('id')}"
        md5, ext = str(rec.get("md5") or ""), str(rec.get("file_ext") or "").lower()
        if not _SAFE_MD5.fullmatch(md5) or not _SAFE_EXT.fullmatch(ext):
            skipped.append((what, f"unsafe or missing md5/file_ext ({md5!r}, {ext!r})"))
            continue
        n_general = rec.get("tag_count_general")
        if not isinstance(n_general, int) or n_general < minimum:
            skipped.append((what, f"tag_count_general {n_general!r} < minimum_tag_count {minimum} (DeepDanbooru "
                                  "trains only on posts with at least minimum_tag_count general tags)"))
            continue
        cols = extra_cols.get(int(rec["id"]), {})
        names = str(rec.get("tag_string") or "").split()
        rating = str(cols.get("rating") or "").strip().lower()[:1]
        if rating not in SANITY_OF_RATING:
            rating = next((RATING_OF_SYSTEM_TAG[n] for n in names if n in RATING_OF_SYSTEM_TAG), "")
        if not rating:
            skipped.append((what, "no rating (no rating column and no rating:* system tag in tag_string)"))
            continue
        tags = []
        for n in names:
            if n.startswith("rating:"):
                continue
            if categories is not None and n not in categories:
                dropped_tags[n] += 1
                continue
            tags.append(Tag(n, categories.get(n, GENERAL) if categories is not None else GENERAL))
        fields = frozenset(k for k, v in cols.items() if v is not None)
        pixiv = {k: cols[k] for k in ("bookmark_count", "view_count", "sanity_level") if cols.get(k) is not None}
        extra = {k: v for k, v in cols.items() if k not in ("rating", "score", "fav_count", "image_width",
                                                            "image_height", *pixiv) and v is not None}
        try:
            post = Post(id=int(rec["id"]), md5=md5.lower(), file_ext=ext, rating=rating,
                        score=int(cols.get("score") or 0), fav_count=int(cols.get("fav_count") or 0),
                        image_width=int(cols.get("image_width") or 0), image_height=int(cols.get("image_height") or 0),
                        tags=tags, pixiv=pixiv, extra=extra, fields=fields)
        except (TypeError, ValueError) as exc:
            skipped.append((what, f"a column is not a number ({exc})"))
            continue
        posts.append(post)
    info = {"format": "deepdanbooru_project", "project": project.context.get("model"),
            "database": str(project.database_path.relative_to(root)), "layout": "md5",
            "tags_txt": len(project.tags), "tags_not_in_tags_txt": sum(dropped_tags.values()),
            "minimum_tag_count_from": "project.json" if "minimum_tag_count" in raw_context and not explicit_min
            else ("option" if explicit_min else "data config")}
    return _finish(posts, root / "images", "md5", root, cfg, minimum, skipped, info)


# --------------------------------------------------------------------------- shared steps

def _check_image(ds: DanbooruDataset, post: Post) -> tuple[Post, str | None, dict[str, Any]]:
    from acg2vec_lab.data.images import ImageLoadError, load_image

    try:
        path = ds.image_path(post)
    except ValueError as exc:
        return post, str(exc), {}
    if not path.is_file():
        return post, f"missing image file {path}", {}
    found: dict[str, Any] = {}
    try:
        im = load_image(path)
        found["size"] = im.size
    except ImageLoadError as exc:
        return post, f"cannot read image {path}: {getattr(exc, 'problem', exc)}", {}
    except Exception as exc:  # noqa: BLE001 - a decoder fault of one file must not stop the set
        return post, f"cannot read image {path}: {type(exc).__name__}: {exc}", {}
    if not post.md5:
        found["md5"] = hashlib.md5(path.read_bytes()).hexdigest()
    return post, None, found


def _check_images(ds: DanbooruDataset, posts: list[Post], skipped: list[tuple[str, str]], decode: bool) -> list[Post]:
    if not decode:
        found, bad = ds.resolve_images(posts)
        skipped += bad
        kept = []
        for post, path in found:
            if path.is_file():
                kept.append(post)
            else:
                skipped.append((f"post {post.id}", f"missing image file {path}"))
        return kept
    kept = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for post, problem, found in pool.map(lambda p: _check_image(ds, p), posts):
            if problem:
                skipped.append((f"post {post.id}", problem))
                continue
            if "md5" in found:
                post.md5 = found["md5"]
            if not (post.image_width and post.image_height) and "size" in found:
                post.image_width, post.image_height = found["size"]
            kept.append(post)
    return kept


def _pixiv_of(post: Post) -> dict[str, Any]:
    """The post's pixiv-style fields from its ``pixiv`` object or top-level fields (aliases of :data:`PIXIV_ALIASES`)."""
    out: dict[str, Any] = {}
    for key, aliases in PIXIV_ALIASES.items():
        for a in aliases:
            for src in (post.pixiv, post.extra):
                if src.get(a) is not None and key not in out:
                    out[key] = src[a]
    return out


def _as_count(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v and v >= 0 else None  # NaN / negative: not a count


def assign_scores(posts: list[Post]) -> dict[str, Any]:
    """Fill every post's ``pixiv`` with ``bookmark_count`` / ``view_count`` / ``sanity_level`` from the
    metadata (module doc: pixiv fields first, else Danbooru ``fav_count`` / ``score``); returns the
    ``has_scores`` / ``score_source`` / ``scores_note`` info keys."""
    n = len(posts)
    found = [_pixiv_of(p) for p in posts]
    full = [f for f in found if _as_count(f.get("bookmark_count")) is not None and _as_count(f.get("view_count")) is not None]
    if n and len(full) == n:
        for p, f in zip(posts, found):
            sanity = _as_count(f.get("sanity_level"))
            p.pixiv = {**p.pixiv, "bookmark_count": int(_as_count(f["bookmark_count"])),
                       "view_count": int(_as_count(f["view_count"])),
                       "sanity_level": int(sanity) if sanity is not None else SANITY_OF_RATING[p.rating]}
        from_rating = sum(_as_count(f.get("sanity_level")) is None for f in found)
        note = "pixiv-style bookmark_count / view_count on every post"
        note += f" (sanity_level from the rating on {from_rating} posts)" if from_rating else " and sanity_level"
        return {"has_scores": True, "score_source": "pixiv", "scores_note": note}
    if full:
        return {"has_scores": False, "score_source": None,
                "scores_note": f"only {len(full)} of {n} posts carry pixiv-style bookmark_count and view_count, "
                               "so the score models (Pix2Score, deepix) are not trained on this set"}
    danbooru = [("fav_count" in p.fields) or ("score" in p.fields) for p in posts]
    if n and all(danbooru):
        for p in posts:
            bookmarks = p.fav_count if "fav_count" in p.fields else max(p.score, 0)
            p.pixiv = {**p.pixiv, "bookmark_count": int(bookmarks), "view_count": int(VIEWS_PER_BOOKMARK * bookmarks),
                       "sanity_level": SANITY_OF_RATING[p.rating]}
        return {"has_scores": True, "score_source": "danbooru",
                "scores_note": "mapped from Danbooru fav_count / score: bookmark_count = fav_count, "
                               f"view_count = {VIEWS_PER_BOOKMARK} x bookmark_count (Danbooru has no views), "
                               "sanity_level from the rating (acg2vec_lab.data.source module doc)"}
    return {"has_scores": False, "score_source": None,
            "scores_note": "no pixiv-style bookmark_count / view_count and no Danbooru score / fav_count in the "
                           "metadata, so the score models (Pix2Score, deepix) have no labels on this set"}


def _finish(posts: list[Post], image_root: Path, layout: str, root: Path, cfg: RealDataConfig, minimum: int,
            skipped: list[tuple[str, str]], info: dict[str, Any]) -> DanbooruDataset:
    probe = DanbooruDataset(posts, image_root, layout, root=root)
    kept = _check_images(probe, posts, skipped, cfg.check_images)
    if not kept:
        problems = "; ".join(f"{w}: {p}" for w, p in skipped[:3])
        raise DanbooruFormatError(f"{root}: no post with a readable image ({len(skipped)} left out: {problems} ...)")
    counts = Counter(t for p in kept for t in set(p.tags))
    vocab = sorted((t for t, c in counts.items() if c >= minimum), key=lambda t: (-counts[t], t.name))
    keep = set(vocab)
    dropped = 0
    for p in kept:
        before = len(p.tags)
        p.tags = [t for t in p.tags if t in keep]
        dropped += before - len(p.tags)
    scores = assign_scores(kept)
    digest = hashlib.sha256(json.dumps(
        [[p.id, p.md5, p.rating, [list(t) for t in p.tags], sorted(p.pixiv.items())] for p in kept]
        + [minimum, cfg.val_fraction, cfg.test_fraction], sort_keys=True, default=str).encode()).hexdigest()[:16]
    info = {**info, "synthetic": False, "data_label": f"real: {root.name}", "path": str(root),
            "posts_read": len(posts), "posts": len(kept), "skipped": len(skipped), "minimum_tag_count": minimum, "vocabulary": len(vocab),
            "tag_uses_below_minimum": dropped, "content_fingerprint": digest, **scores}
    ds = DanbooruDataset(kept, image_root, layout, root=root, val_fraction=cfg.val_fraction,
                         test_fraction=cfg.test_fraction, info=info)
    ds.skipped = skipped
    ds.vocabulary = vocab
    ds.minimum_tag_count = minimum
    return ds


def describe(ds: DanbooruDataset) -> dict[str, Any]:
    """A one-row summary for a notebook: label, posts, splits, vocabulary, ratings, scores, skipped."""
    ratings = Counter(p.rating for p in ds.posts)
    cats = Counter(t.category_name for t in (ds.vocabulary if ds.vocabulary is not None else ds.tag_counts()))
    return {"data": ds.data_label, "posts": len(ds), **{s: len(ds.split(s)) for s in ("train", "val", "test")},
            "tags": sum(cats.values()), **{f"{k} tags": v for k, v in sorted(cats.items())},
            "ratings": dict(sorted(ratings.items())), "scores": ds.score_source or "none",
            "skipped": len(ds.skipped)}


def checkpoint_variant(variant: str, ds: DanbooruDataset) -> str:
    """The ``checkpoint_dir`` variant a notebook saves an explicit checkpoint of ``ds`` under: the plain
    variant for the synthetic set (what the CLI commands load), ``<variant>-real-<fingerprint>``
    otherwise, so a model trained on other data never replaces the synthetic one."""
    if ds.is_synthetic:
        return variant
    return f"{variant}-real-{ds.info.get('content_fingerprint') or hashlib.sha256(str(ds.root).encode()).hexdigest()[:16]}"


def data_source_of(data: Any) -> str:
    """The ``setup_notebook(SEED, data=...)`` source of a notebook's ``DATA`` parameter: ``synthetic`` or ``real``."""
    return "synthetic" if is_synthetic(data) else "real"


def headline_label(ds: DanbooruDataset) -> str:
    """How prose and titles name the set: ``SYNTHETIC`` (as every notebook always has) or ``real: <folder>``."""
    return "SYNTHETIC" if ds.is_synthetic else ds.data_label


def stamp_figure(fig: Any, ds: DanbooruDataset) -> Any:
    """Put ``real: <folder>`` into a figure's title when it shows real data (``save_fig`` already stamps
    SYNTHETIC on the synthetic set's figures, so those are left as they are)."""
    if ds.is_synthetic:
        return fig
    old = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    if ds.data_label not in old:
        fig.suptitle(f"{ds.data_label} · {old}" if old else ds.data_label)
    return fig


def skip_rest_of_notebook(reason: str) -> None:
    """Turn every later cell of this kernel into a line printing ``skipped: <reason>`` (visibly: the
    executed notebook shows it under each cell), for a notebook whose remaining part needs labels the
    data does not have. Outside IPython it does nothing but print."""
    print(f"skipped from here on: {reason}")
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
        return
    ip = get_ipython()
    if ip is None:
        return
    line = f"print({('skipped: ' + reason)!r})\n"
    ip.input_transformers_cleanup.append(lambda lines: [line])
