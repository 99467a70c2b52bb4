"""DCLIP captions from Danbooru tags, reproducing the original rules including their quirks.

Two versions of the original ``DCLIP/data_generator.py`` exist (models.md section 4):

* ``"readme"`` (the snippet in the README = the code of 2023-05-11 .. 06-04): general tags whose
  name contains ``girl`` or ``boy`` are excluded; a space always follows the character block;
  ``"with "`` is added whenever the post has general tags.
* ``"code"`` (the code since 2023-07-04, the default): no girl/boy filter; a space follows the
  character block only if it is non-empty; ``"with "`` only if there are both characters and
  general tags.

Common rules, in this order:

1. characters (category 4) in tag order; if a copyright other than ``original`` is present, the first
   ``(...)`` group of each name is removed (non-greedy ``\\(.*?\\)``, all occurrences), then ``_`` -> space
   (so ``hakurei_reimu_(touhou)`` becomes ``"hakurei reimu "`` with its trailing space, as in the
   original); names are joined with ``,`` and no space;
2. copyrights (category 3) minus ``original``: ``"from "`` then each name (``_`` -> space) followed by
   one space;
3. general tags (category 0) that contain at least one ASCII letter, ``_`` -> space, joined with ``,``;
4. with more than 20 general tags (counted before any filtering) the general list is cut in half
   (first ``n // 2`` / the rest, cut before filtering) and the post yields two captions that share
   the character/copyright prefix;
5. the caption's last character is dropped (``[:-1]``, meant for the general block's trailing
   ``,``). When no general tag survives the filters it drops the prefix's trailing space instead,
   which can leave a dangling ``"... with"``.

Artist (1) and meta (5) tags are dropped. Tags are ``(name, category)`` pairs or objects with
``.name`` and ``.category`` (the ``acg2vec_lab.data`` ``Tag``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

VERSIONS = ("code", "readme")
GENERAL, ARTIST, COPYRIGHT, CHARACTER, META = 0, 1, 3, 4, 5
SPLIT_ABOVE = 20
_PAREN = re.compile(r"\(.*?\)")
_ASCII_LETTER = re.compile(r"[A-Za-z]")


def _name_cat(tag: Any) -> tuple[str, int]:
    if isinstance(tag, (tuple, list)):
        return str(tag[0]), int(tag[1])
    return str(tag.name), int(tag.category)


def _keep_general(name: str, version: str) -> bool:
    if not _ASCII_LETTER.search(name):
        return False
    if version == "readme" and ("girl" in name or "boy" in name):
        return False
    return True


def _general_block(names: Sequence[str], version: str) -> str:
    block = ""
    for name in names:
        if _keep_general(name, version):
            block += name.replace("_", " ") + ","
    return block


def build_captions(tags: Iterable[Any], version: str = "code") -> list[str]:
    """The caption(s) DCLIP trains on for one post: one, or two when it has > 20 general tags.

    With two captions the first uses the first half of the general tags, the second the rest.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown caption version {version!r}; choose one of {VERSIONS}")
    pairs = [_name_cat(t) for t in tags]
    characters = [n for n, c in pairs if c == CHARACTER]
    copyrights = [n for n, c in pairs if c == COPYRIGHT and n != "original"]
    general = [n for n, c in pairs if c == GENERAL]

    char_block = ""
    for name in characters:
        if copyrights:
            name = _PAREN.sub("", name)
        char_block += name.replace("_", " ") + ","
    prefix = char_block[:-1]
    if version == "readme" or characters:
        prefix += " "
    if copyrights:
        prefix += "from "
        for name in copyrights:
            prefix += name.replace("_", " ") + " "
    if general and (version == "readme" or characters):
        prefix += "with "

    if len(general) > SPLIT_ABOVE:
        half = len(general) // 2
        parts = [general[:half], general[half:]]
    else:
        parts = [general]
    return [(prefix + _general_block(part, version))[:-1] for part in parts]


def build_caption(tags: Iterable[Any], version: str = "code") -> str:
    """The first caption of :func:`build_captions` (convenient when one string per post is needed)."""
    return build_captions(tags, version)[0]


def prompt_for_tag(name: str, category: int = GENERAL) -> str:
    """A zero-shot prompt in caption style for one tag (what a one-tag post's caption would be)."""
    caption = build_captions([(name, category)], "code")[0].strip() if category == GENERAL else ""
    return caption or name.replace("_", " ")
