"""Character <-> work links from the real assets: Danbooru character tags, their series, and the works.

Danbooru qualifies a character tag with its series when the bare name is ambiguous:
``kaga (kancolle)``, ``ganyu (genshin impact)``. The ``tipo-kgen`` character list holds 322,737 such
tags (in popularity order), a little over half of them qualified. The qualifier is a romanised or
English series name, and the works of :mod:`acg2vec_lab.data.text_pairs` carry romanised / English
names too: bangumi-data's ``en`` translations, and the Latin-script names and aliases of bgmd
(``KanColle``, ``Sword Art Online``, ``sao``...). A qualifier links its characters to a work when its
normalised form (:func:`key`: casefolded, every run of non-alphanumerics one space) equals the normalised
form of one of those strings.

What this yields (``tipo-kgen 0.3.1``, ``bangumi-data 0.3.208``, ``bgmd 0.0.64``): about 1,300 qualifiers
matched to about 1,200 works, about 17,000 characters before the filters below. Many qualifiers are
games (``azur lane``, ``arknights``) with no anime entry; they are left out.

Rules (each one guards the pairs against a wrong link; see ``tests/test_characters.py``):

* generic qualifiers (:data:`GENERIC_QUALIFIERS`: ``summer``, ``1st costume``, ``cosplay``...) name an
  outfit or a kind, not a series, and are ignored even where a work of that name exists;
* the character text is the bare name (``kaga``), never the qualified tag: with the qualifier the task
  would be string matching of ``kancolle`` against ``KanColle``;
* a bare name that carries more than one qualifier anywhere in the list (``saber (fate)`` and
  ``saber (...)``) is ambiguous and dropped, as is a name that contains its own series' key
  (``kirby (kirby)``);
* a qualifier matching several anime (the seasons and films of one show) links them all: they form one
  work, whose gallery title is that of the anime with the most Bangumi tags (the main entry), and
  :mod:`~acg2vec_lab.data.text_pairs` puts them in one split group, so no work crosses splits;
* at most :data:`MAX_CHARS_PER_WORK` characters per work, in the list's (popularity) order, so that one
  franchise (1,836 ``kancolle`` characters) does not swamp the pairs.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from acg2vec_lab.data.text_norm import normalize, script_lang

MAX_CHARS_PER_WORK = 40
MIN_KEY_LEN = 3
GENERIC_QUALIFIERS = frozenset({
    "character", "cosplay", "personification", "mythology", "racehorse", "vtuber", "summer", "winter",
    "spring", "autumn", "real life", "artist", "mascot", "ship", "style", "company", "1st costume",
    "2nd costume", "3rd costume", "4th costume", "5th costume", "6th costume", "swimsuit", "idol",
    "human", "animal", "cat", "dog", "bird", "fox", "horse", "meme", "youtube", "twitter", "spirit",
    "original", "game", "cosplay character", "species", "creature", "robot", "mecha", "ai", "god",
})

_QUALIFIED = re.compile(r"^(.+?) \(([^()]+)\)$")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def key(text: str) -> str:
    """The matching form of a romanised / English string: NFKC, casefolded, non-alphanumeric runs -> one
    space, stripped (``"Kantai Collection: KanColle"`` -> ``"kantai collection kancolle"``)."""

    return _NON_ALNUM.sub(" ", normalize(text).casefold()).strip()


def parse_character_tag(tag: str) -> tuple[str, str | None]:
    """``"kaga (kancolle)"`` -> ``("kaga", "kancolle")``; an unqualified tag -> ``(tag, None)``."""
    m = _QUALIFIED.match(tag.strip())
    return (m.group(1).strip(), m.group(2).strip()) if m else (tag.strip(), None)


@dataclass(frozen=True)
class CharacterLink:
    """One character of one work: ``name`` (bare, space form), the Danbooru ``tag``, the ``qualifier``
    that linked it, the ``work`` (its main anime id), every anime id of the work, and the character's
    popularity ``rank`` in the list (0 = most used)."""

    name: str
    tag: str
    qualifier: str
    work: int
    anime_ids: tuple[int, ...]
    rank: int


def read_character_list(path: str | Path) -> list[str]:
    """The tags of ``kgen/tag-list/characters.txt`` (one per line, space form), in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"characters: {path} is missing (tipo-kgen kgen/tag-list/characters.txt)")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def work_index(latin_names: Iterable[tuple[int, str]]) -> dict[str, set[int]]:
    """:func:`key` -> anime ids, from ``(anime_id, romanised / English name)`` pairs (keys under
    :data:`MIN_KEY_LEN` characters are too ambiguous to link on and are left out)."""
    index: dict[str, set[int]] = defaultdict(set)
    for anime, text in latin_names:
        k = key(text)
        if len(k) >= MIN_KEY_LEN:
            index[k].add(int(anime))
    return dict(index)


def link_characters(tags: Iterable[str], index: dict[str, set[int]], popularity: dict[int, int],
                    max_per_work: int = MAX_CHARS_PER_WORK) -> list[CharacterLink]:
    """The character links of :mod:`this module <acg2vec_lab.data.characters>`'s rules.

    ``tags``: the character list in popularity order; ``index``: from :func:`work_index`;
    ``popularity``: anime id -> a size (its Bangumi tag count) that picks the main anime of a work.
    """
    parsed = [(i, t, *parse_character_tag(t)) for i, t in enumerate(tags)]
    qualifiers_of: dict[str, set[str]] = defaultdict(set)
    for _, _, name, qual in parsed:
        qualifiers_of[key(name)].add(qual or "")
    per_work: dict[int, int] = defaultdict(int)
    out: list[CharacterLink] = []
    for rank, tag, name, qual in parsed:
        if qual is None or qual.casefold() in GENERIC_QUALIFIERS:
            continue
        qk = key(qual)
        ids = index.get(qk)
        nk = key(name)
        if not ids or len(nk) < 2 or len(qualifiers_of[nk]) > 1 or qk in nk:
            continue
        anime_ids = tuple(sorted(ids))
        work = max(anime_ids, key=lambda a: (popularity.get(a, 0), -a))
        if per_work[work] >= max_per_work:
            continue
        per_work[work] += 1
        out.append(CharacterLink(name, tag, qual, work, anime_ids, rank))
    return out


def latin_names(bangumi_items: list[dict], bgmd_entries: list[dict]) -> list[tuple[int, str]]:
    """``(anime_id, text)`` for every romanised / English title of the two assets: bangumi-data's ``en``
    translations and Latin-script originals, bgmd's Latin-script names and aliases."""

    out: list[tuple[int, str]] = []
    for it in bangumi_items:
        ids = [s.get("id") for s in it.get("sites", []) if s.get("site") == "bangumi"]
        if not ids or not str(ids[0]).isdigit():
            continue
        for t in [it.get("title")] + list((it.get("titleTranslate") or {}).get("en", []) or []):
            t = normalize(t)
            if t and script_lang(t) == "latn":
                out.append((int(ids[0]), t))
    for e in bgmd_entries:
        for t in [e.get("name")] + list(e.get("alias") or []):
            t = normalize(t)
            if t and script_lang(t) == "latn":
                out.append((int(e["id"]), t))
    return out
