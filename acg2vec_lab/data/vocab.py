"""The real Danbooru tag vocabulary with categories, from two registry assets.

* ``text2tags`` (``text2tags-lib==0.0.7``): ``text2tags/tags.txt``, 11,388 popular Danbooru tags in
  popularity order, underscore form.
* ``tipo_kgen`` (``tipo-kgen==0.3.1``): ``kgen/tag-list/{characters,copyrights,artist,meta}.txt``,
  Danbooru's category lists in space form.

Joined, every popular tag gets its real category: a tag found in one of the kgen lists takes that
list's category, every other popular tag is general (the lists do not overlap on these tags). This
gives 7,139 general, 2,251 character, 1,032 artist, 948 copyright and 19 meta tags. A character's
series is read from its ``(qualifier)`` when the qualifier (or ``<qualifier>_(series)``,
``_(game)``, ``_(anime)``) is itself a popular copyright tag, e.g.
``artoria_pendragon_(fate)`` -> ``fate_(series)``.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from acg2vec_lab.data.danbooru import ARTIST, CHARACTER, COPYRIGHT, GENERAL, META, Tag

KGEN_LISTS = {"characters.txt": CHARACTER, "copyrights.txt": COPYRIGHT, "artist.txt": ARTIST, "meta.txt": META}
_QUALIFIER = re.compile(r"^(.*)_\(([^()]*)\)$")


class VocabularyError(LookupError):
    """A tag that is not in the real vocabulary, or has a different category there."""


@dataclass
class TagVocabulary:
    """Popular Danbooru tags (popularity order) with their categories and character -> series."""

    tags: list[str]
    category: dict[str, int]
    series_of: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rank = {t: i for i, t in enumerate(self.tags)}

    def __contains__(self, name: str) -> bool:
        return name in self.category

    def __len__(self) -> int:
        return len(self.tags)

    def tag(self, name: str) -> Tag:
        """The :class:`Tag` of ``name`` with its real category; :class:`VocabularyError` if unknown."""
        if name not in self.category:
            raise VocabularyError(f"tag {name!r} is not in the real Danbooru vocabulary (text2tags tags.txt)")
        return Tag(name, self.category[name])

    def check(self, tag: Tag) -> Tag:
        """Raise unless ``tag`` exists with exactly this category."""
        real = self.tag(tag.name)
        if real.category != tag.category:
            raise VocabularyError(f"tag {tag.name!r} has category {real.category} in the vocabulary, not {tag.category}")
        return tag

    def counts(self) -> dict[str, int]:
        from acg2vec_lab.data.danbooru import CATEGORY_NAMES

        out = {name: 0 for name in CATEGORY_NAMES.values()}
        for cat in self.category.values():
            out[CATEGORY_NAMES[cat]] += 1
        return out

    def characters_by_series(self) -> dict[str, list[str]]:
        """Series tag -> its characters in popularity order."""
        out: dict[str, list[str]] = {}
        for t in self.tags:
            if t in self.series_of:
                out.setdefault(self.series_of[t], []).append(t)
        return out


def build_vocabulary(tags_txt: str | Path, tag_list_dir: str | Path) -> TagVocabulary:
    """Join ``tags.txt`` with the kgen category lists (files as laid out in the two packages)."""
    tags_txt, tag_list_dir = Path(tags_txt), Path(tag_list_dir)
    tags: list[str] = []
    seen: set[str] = set()
    for line in tags_txt.read_text(encoding="utf-8").splitlines():
        t = line.strip()
        if t and t not in seen:
            seen.add(t)
            tags.append(t)
    wanted = {t.replace("_", " "): t for t in tags}
    category = {t: GENERAL for t in tags}
    for fname, cat in KGEN_LISTS.items():
        path = tag_list_dir / fname
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary: {path} is missing (tipo-kgen tag list)")
        with open(path, encoding="utf-8") as f:
            for line in f:
                t = wanted.get(line.strip())
                if t is not None and category[t] == GENERAL:
                    category[t] = cat
    series_of: dict[str, str] = {}
    for t in tags:
        if category[t] != CHARACTER:
            continue
        m = _QUALIFIER.match(t)
        if not m:
            continue
        q = m.group(2)
        for cand in (q, f"{q}_(series)", f"{q}_(game)", f"{q}_(anime)"):
            if category.get(cand) == COPYRIGHT:
                series_of[t] = cand
                break
    return TagVocabulary(tags, category, series_of)


@functools.lru_cache(maxsize=4)
def load_vocabulary(text2tags_dir: str | None = None, tipo_kgen_dir: str | None = None) -> TagVocabulary:
    """The joined vocabulary; by default from ``assets.fetch("text2tags")`` and ``fetch("tipo_kgen")``.

    The directories are the assets' extracted folders (holding ``text2tags/tags.txt`` and
    ``kgen/tag-list/``); pass them to use copies elsewhere.
    """
    if text2tags_dir is None or tipo_kgen_dir is None:
        from acg2vec_lab import assets

        text2tags_dir = text2tags_dir or str(assets.fetch("text2tags"))
        tipo_kgen_dir = tipo_kgen_dir or str(assets.fetch("tipo_kgen"))
    return build_vocabulary(Path(text2tags_dir) / "text2tags" / "tags.txt", Path(tipo_kgen_dir) / "kgen" / "tag-list")
