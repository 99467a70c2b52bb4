"""Tag categories and the ``tags.json`` beside a trained checkpoint: a leaf every module may import.

Tag categories follow Danbooru's numbering, with one addition for the rating pseudo-tags:

* ``0`` general, ``1`` artist, ``3`` copyright, ``4`` character, ``5`` meta (Danbooru's own codes,
  :data:`DANBOORU_CATEGORY_NAMES`, the only ones its metadata carries);
* ``9`` rating (``rating:safe`` / ``rating:general`` / ``rating:questionable`` / ...). DeepDanbooru's
  ``categories.json`` calls this block "System"; it is one-of-k, so it is emitted as the arg-max and
  never thresholded (see :mod:`acg2vec_lab.tagging.thresholds`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acg2vec_lab.io import write_json
from acg2vec_lab.io_safety import read_json_file, read_text_file

CATEGORY_GENERAL = 0
CATEGORY_ARTIST = 1
CATEGORY_COPYRIGHT = 3
CATEGORY_CHARACTER = 4
CATEGORY_META = 5
CATEGORY_RATING = 9
DANBOORU_CATEGORY_NAMES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta"}
CATEGORY_NAMES = {**DANBOORU_CATEGORY_NAMES, 9: "rating"}
# Danbooru's one-letter ratings -> the rating pseudo-tags (DeepDanbooru's "System" block), in this order
RATING_TAGS = {"g": "rating:general", "s": "rating:sensitive", "q": "rating:questionable", "e": "rating:explicit"}

# DeepDanbooru block names (``categories.json``) and the spellings other taggers use -> codes
_CODES_BY_NAME = {"general": CATEGORY_GENERAL, "character": CATEGORY_CHARACTER, "system": CATEGORY_RATING,
                  "rating": CATEGORY_RATING, "copyright": CATEGORY_COPYRIGHT, "artist": CATEGORY_ARTIST,
                  "meta": CATEGORY_META}


def category_code(tag: str, name: str) -> int:
    """The code of ``tag`` whose block or column says ``name`` (unknown names are general).

    Tags starting with ``rating:`` are category 9 whatever block they sit in.
    """
    if tag.startswith("rating:"):
        return CATEGORY_RATING
    return _CODES_BY_NAME.get(str(name).lower(), CATEGORY_GENERAL)


def block_names(n_tags: int, blocks: Sequence[dict[str, Any]]) -> list[str]:
    """The ``categories.json`` block name of each of ``n_tags`` tag positions, the one block parser.

    A block (``{"name", "start_index"}``) runs from its ``start_index`` to the next block's; of two
    blocks with one ``start_index`` the later entry wins; positions before the first block get ``""``.
    """
    names = [""] * n_tags
    ordered = sorted(blocks, key=lambda b: int(b["start_index"]))  # stable: ties keep the file's order
    for i, block in enumerate(ordered):
        start = int(block["start_index"])
        stop = int(ordered[i + 1]["start_index"]) if i + 1 < len(ordered) else n_tags
        for j in range(start, min(stop, n_tags)):
            names[j] = str(block["name"])
    return names


def categories_from_blocks(tags: Sequence[str], blocks: Sequence[dict[str, Any]]) -> list[int]:
    """Per-tag categories from DeepDanbooru's ``categories.json`` (``[{"name", "start_index"}]``).

    "General" -> 0, "Character" -> 4, "System" (the rating tags) -> 9; a tag before the first block is general.
    """
    return [category_code(t, n) for t, n in zip(tags, block_names(len(tags), blocks))]


def read_tags_txt(path: str | os.PathLike, error: type[Exception] = ValueError) -> list[str]:
    """DeepDanbooru's ``tags.txt``: one tag per line, surrounding blanks and blank lines ignored
    (its ``load_tags``). Bytes that are not UTF-8 or a NUL byte raise ``error`` naming the file and line."""
    path = Path(path)
    tags = []
    for lineno, line in enumerate(read_text_file(path, error, "tags.txt").splitlines(), 1):
        if "\x00" in line:
            raise error(f"{path}:{lineno}: a NUL byte in a tag")
        if line.strip():
            tags.append(line.strip())
    return tags


def read_categories_json(path: str | os.PathLike, error: type[Exception] = ValueError) -> list[dict[str, Any]]:
    """DeepDanbooru's ``categories.json``: a list of ``{"name": str, "start_index": int >= 0}``
    (other keys kept). Anything else raises ``error`` naming the file and the entry."""
    path = Path(path)
    blocks = read_json_file(path, error, "categories.json", expect=list)
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "name" not in block or "start_index" not in block:
            raise error(f"{path}: entry [{i}] must be an object with 'name' and 'start_index', got {block!r:.80}")
        if not isinstance(block["name"], str):
            raise error(f"{path}: entry [{i}] 'name' must be a string, got {block['name']!r:.80}")
        start = block["start_index"]
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise error(f"{path}: entry [{i}] 'start_index' must be a non-negative integer, got {start!r:.80}")
    return blocks


def save_tags_json(path: str | os.PathLike, tags: Sequence[str], categories: Sequence[int]) -> Path:
    """Write the ``tags.json`` that sits beside a trained checkpoint's ``model.weights.h5``."""
    return write_json(path, {"tags": list(tags), "categories": [int(c) for c in categories],
                             "category_codes": {str(k): v for k, v in CATEGORY_NAMES.items()}})


def load_tags_json(path: str | os.PathLike) -> tuple[list[str], list[int]]:
    """``(tags, categories)`` from a ``tags.json``; a malformed file is an error naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tags, cats = list(data["tags"]), [int(c) for c in data["categories"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a readable tags.json ({type(e).__name__}: {e})") from e
    if len(tags) != len(cats) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"{path}: {len(tags)} tags but {len(cats)} categories, or a tag that is not a string")
    return tags, cats
