"""Real multilingual text pairs about anime, for training and evaluating the text embedder.

Two registry assets, joined by the Bangumi subject id (``anime_id``):

* ``bangumi_data`` (CC-BY-4.0, "bangumi-data"): an anime's original title (mostly Japanese) and its
  ``zh-Hans`` / ``zh-Hant`` / ``en`` translations -> ``title_title`` pairs between every two
  languages (original first, then zh-Hans, zh-Hant, en).
* ``bgmd`` (MIT): the Bangumi subject's original name with its Chinese name (``title_title``, lang
  ``zh-Hans``), its aliases (``title_alias``), its Chinese user tags (``title_tag``; pure year tags
  such as ``1979`` are dropped) and its summary (``title_summary``).

Every string is NFKC-normalised with whitespace collapsed. Pairs whose two sides are equal are
dropped and each (anime, text_a, text_b) is kept once (the first kind in the order above wins).
The language of aliases, tags and summaries is not given by the data; it is guessed from the
script (:func:`script_lang`: kana -> ``ja``, Hangul -> ``ko``, other Han -> ``zh``, Latin ->
``latn`` for English or romaji).

Splits are by anime and leak-free for titles: anime that share a title or alias string (a TV
series and its film, two entries of one show) are grouped with a union-find, and each group goes to
``train`` / ``val`` / ``test`` (80/10/10) by a hash of its smallest anime id, so no title or alias
string appears in two splits. Tags are shared vocabulary (``原创`` belongs to many anime) and
summaries belong to their anime's group.

* ``tipo_kgen`` (Apache-2.0): Danbooru character tags with their series qualifier, linked to the works by
  :mod:`acg2vec_lab.data.characters` -> ``char_work`` pairs (the work's original title, then its zh-Hans
  title, <-> the character's bare romanised name, lang ``latn``) and ``char_char`` pairs (two characters of
  the same work, consecutive in popularity order). The anime a qualifier links (the seasons of one show)
  join one split group, so no work crosses splits. ``anime_id`` of a character row is the work's main anime.

Held-out aliases: :data:`HELDOUT_ALIAS_PERCENT` % of the train split's aliases (by a hash of the alias string,
:func:`heldout_aliases`) are kept out of training by the acgvoc2vec sampler, so that "abbreviation /
nickname -> work" can be measured on works whose other texts were trained on.

The table is built once into the cache (parquet, atomic) and read back in well under a second.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from acg2vec_lab.data import characters as C
from acg2vec_lab.data.text_norm import normalize, script_lang

KINDS = ("title_title", "title_alias", "title_tag", "title_summary", "char_work", "char_char")
CHAR_KINDS = ("char_work", "char_char")
HELDOUT_ALIAS_PERCENT = 10  # of the train split's aliases, kept out of training for the alias -> work demo
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
TITLE_LANGS = ("ja", "zh-Hans", "zh-Hant", "en")
COLUMNS = ["anime_id", "kind", "lang_a", "text_a", "lang_b", "text_b", "split", "source"]
BUILD_VERSION = 3  # bump when the construction changes: the cached table is rebuilt

_YEAR = re.compile(r"\d{4}(年)?")


def split_of(key: int) -> str:
    """Deterministic 80/10/10 split from an integer key (a hash, so neighbouring ids spread out)."""
    bucket = int(hashlib.sha256(f"anime:{key}".encode()).hexdigest()[:8], 16) % 100
    if bucket < SPLIT_FRACTIONS[0] * 100:
        return "train"
    if bucket < (SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]) * 100:
        return "val"
    return "test"


# --------------------------------------------------------------------------- reading the assets

def _bangumi_rows(items: Iterable[dict]) -> Iterable[tuple]:
    """(anime_id, kind, lang_a, text_a, lang_b, text_b, source) from bangumi-data items."""
    for it in items:
        ids = [s.get("id") for s in it.get("sites", []) if s.get("site") == "bangumi"]
        if not ids or not str(ids[0]).isdigit():
            continue  # 68 items have no Bangumi id: they cannot be joined or grouped, so they are left out
        anime = int(ids[0])
        titles: list[tuple[str, str]] = []
        orig = normalize(it.get("title"))
        if orig:
            titles.append((it.get("lang") or "ja", orig))
        for lang in TITLE_LANGS[1:]:
            for t in (it.get("titleTranslate") or {}).get(lang, []) or []:
                t = normalize(t)
                if t:
                    titles.append((lang, t))
        for i, (la, ta) in enumerate(titles):
            for lb, tb in titles[i + 1:]:
                if la != lb:
                    yield anime, "title_title", la, ta, lb, tb, "bangumi-data"


def _bgmd_rows(entries: Iterable[dict], title_lang: dict[int, str]) -> Iterable[tuple]:
    for e in entries:
        anime = int(e["id"])
        name = normalize(e.get("name"))
        if not name:
            continue
        la = title_lang.get(anime, "ja")
        bgm = e.get("bangumi") or {}
        cn = normalize(bgm.get("name_cn"))
        if cn:
            yield anime, "title_title", la, name, "zh-Hans", cn, "bgmd"
        for alias in e.get("alias") or []:
            alias = normalize(alias)
            if alias:
                yield anime, "title_alias", la, name, script_lang(alias), alias, "bgmd"
        for tag in bgm.get("tags") or []:
            tag = normalize(tag)
            if tag and not _YEAR.fullmatch(tag):
                yield anime, "title_tag", la, name, script_lang(tag), tag, "bgmd"
        summary = normalize(e.get("summary"))
        if summary:
            yield anime, "title_summary", la, name, script_lang(summary), summary, "bgmd"


def _title_groups(df: pd.DataFrame, links: Iterable[Iterable[int]] = ()) -> dict[int, int]:
    """anime id -> smallest anime id of its group (anime linked by a shared title/alias string, or listed
    together in one of ``links``: the anime one character qualifier names)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for ids in links:
        ids = [int(a) for a in ids]
        for a in ids[1:]:
            union(ids[0], a)
    df = df[~df["kind"].isin(CHAR_KINDS)]  # character names are not titles
    titled = df["kind"].isin(("title_title", "title_alias")).to_numpy()
    owner: dict[str, int] = {}
    for anime, ta, tb, is_title in zip(df["anime_id"], df["text_a"], df["text_b"], titled):
        anime = int(anime)
        find(anime)
        # text_a is always a title; text_b is one for title/alias rows (tags are shared vocabulary)
        for text in ((ta, tb) if is_title else (ta,)):
            key = text.casefold()
            if key in owner:
                union(owner[key], anime)
            else:
                owner[key] = anime
    return {a: find(a) for a in parent}


def _character_rows(links: list, rows: list[tuple]) -> Iterable[tuple]:
    """``char_work`` and ``char_char`` rows of :class:`~acg2vec_lab.data.characters.CharacterLink` s; the
    work's titles come from the title rows already built (original title first, then zh-Hans)."""
    original: dict[int, tuple[str, str]] = {}
    zh: dict[int, str] = {}
    for anime, kind, la, ta, lb, tb, _source in rows:
        if kind == "title_title":
            original.setdefault(anime, (la, ta))
            if lb == "zh-Hans":
                zh.setdefault(anime, tb)
        elif kind == "title_alias":
            original.setdefault(anime, (la, ta))
    by_work: dict[int, list] = {}
    for link in links:
        if link.work in original:
            by_work.setdefault(link.work, []).append(link)
    for work, chars in by_work.items():
        la, title = original[work]
        for c in chars:
            yield work, "char_work", la, title, "latn", c.name, "tipo-kgen"
            if work in zh:
                yield work, "char_work", "zh-Hans", zh[work], "latn", c.name, "tipo-kgen"
        for c1, c2 in zip(chars, chars[1:]):
            yield work, "char_char", "latn", c1.name, "latn", c2.name, "tipo-kgen"


def build_pairs(bangumi_items: list[dict], bgmd_entries: list[dict],
                character_tags: list[str] | None = None) -> pd.DataFrame:
    """The pair table from the parsed assets (pure function; :func:`load_text_pairs` caches it);
    ``character_tags`` (the tipo-kgen list) adds the character kinds."""

    title_lang: dict[int, str] = {}
    for it in bangumi_items:
        for s in it.get("sites", []):
            if s.get("site") == "bangumi" and str(s.get("id", "")).isdigit():
                title_lang.setdefault(int(s["id"]), it.get("lang") or "ja")
    rows = list(_bangumi_rows(bangumi_items)) + list(_bgmd_rows(bgmd_entries, title_lang))
    links: list = []
    if character_tags:
        popularity: dict[int, int] = {}
        for r in rows:
            if r[1] == "title_tag":
                popularity[r[0]] = popularity.get(r[0], 0) + 1
        links = C.link_characters(character_tags, C.work_index(C.latin_names(bangumi_items, bgmd_entries)),
                                  popularity)
        rows += list(_character_rows(links, rows))
    df = pd.DataFrame(rows, columns=["anime_id", "kind", "lang_a", "text_a", "lang_b", "text_b", "source"])
    df = df[df["text_a"] != df["text_b"]]
    # one row per (anime, unordered text pair); the kind order above decides which row is kept
    df["_k"] = df["kind"].map({k: i for i, k in enumerate(KINDS)})
    a, b = df["text_a"].to_numpy(), df["text_b"].to_numpy()
    first = a < b
    df["_lo"] = np.where(first, a, b)
    df["_hi"] = np.where(first, b, a)
    df = df.sort_values(["_k"], kind="stable").drop_duplicates(["anime_id", "_lo", "_hi"], keep="first")
    groups = _title_groups(df, [link.anime_ids for link in links])
    df["split"] = [split_of(groups[int(a)]) for a in df["anime_id"]]
    df = df.sort_values(["anime_id", "_k", "lang_a", "lang_b", "text_a", "text_b"], kind="stable")
    df = df[COLUMNS].reset_index(drop=True)
    df["anime_id"] = df["anime_id"].astype("int64")
    return df


# --------------------------------------------------------------------------- cached loading

@dataclass
class TextPairs:
    """The pair table (``.pairs``: ``anime_id, kind, lang_a, text_a, lang_b, text_b, split, source``)."""

    pairs: pd.DataFrame
    path: Path

    def split(self, name: str, kind: str | None = None) -> pd.DataFrame:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; use one of {SPLITS}")
        df = self.pairs[self.pairs["split"] == name]
        if kind is not None:
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}; use one of {KINDS}")
            df = df[df["kind"] == kind]
        return df.reset_index(drop=True)

    def counts(self) -> dict:
        return _counts(self.pairs)


def _counts(df: pd.DataFrame) -> dict:
    by_lang = df.groupby(["kind", "lang_a", "lang_b"]).size().sort_values(ascending=False)
    return {
        "pairs": int(len(df)),
        "anime": int(df["anime_id"].nunique()),
        "by_kind": {k: int(df["kind"].eq(k).sum()) for k in KINDS},
        "by_split": {s: int(df["split"].eq(s).sum()) for s in SPLITS},
        "anime_by_split": {s: int(df.loc[df["split"] == s, "anime_id"].nunique()) for s in SPLITS},
        "by_lang_pair": {f"{la}-{lb}": int(n) for (la, lb), n in
                         df.groupby(["lang_a", "lang_b"]).size().sort_values(ascending=False).items()},
        "by_kind_lang_pair": {f"{k}:{la}-{lb}": int(n) for (k, la, lb), n in by_lang.items()},
    }


def _cache_file() -> Path:
    from acg2vec_lab import assets
    from acg2vec_lab.paths import cache_dir

    b, g, k = (assets.spec(n).version for n in ("bangumi_data", "bgmd", "tipo_kgen"))
    return cache_dir("text_pairs") / f"pairs-v{BUILD_VERSION}-bangumi-data{b}-bgmd{g}-kgen{k}.parquet"


def _read_assets() -> tuple[list[dict], list[dict], list[str]]:
    from acg2vec_lab import assets

    with open(assets.fetch("bangumi_data") / "package/dist/data.json", encoding="utf-8") as f:
        items = json.load(f)["items"]
    with open(assets.fetch("bgmd") / "package/data/full.json", encoding="utf-8") as f:
        entries = json.load(f)["bangumis"]
    characters = C.read_character_list(assets.fetch("tipo_kgen") / "kgen/tag-list/characters.txt")
    return items, entries, characters


def load_text_pairs(rebuild: bool = False) -> TextPairs:
    """The pair table, built once from the fetched assets into the cache."""
    from acg2vec_lab.io import atomic_path

    path = _cache_file()
    if rebuild or not path.exists():
        df = build_pairs(*_read_assets())
        with atomic_path(path) as tmp:
            df.to_parquet(tmp, index=False)
        for old in path.parent.glob("pairs-v*.parquet"):  # tables of earlier builds or asset pins
            if old != path:
                old.unlink(missing_ok=True)
    return TextPairs(pd.read_parquet(path), path)


def _bucket(text: str) -> int:
    return int(hashlib.sha256(f"alias:{text.casefold()}".encode()).hexdigest()[:8], 16) % 100


def heldout_aliases(pairs: pd.DataFrame) -> pd.DataFrame:
    """The train split's ``title_alias`` rows kept out of training (:data:`HELDOUT_ALIAS_PERCENT` %, by a
    hash of the alias string, so the choice does not depend on the sample): their works are trained on
    through every other text, their aliases are not."""
    df = pairs[(pairs["split"] == "train") & (pairs["kind"] == "title_alias")]
    return df[[_bucket(t) < HELDOUT_ALIAS_PERCENT for t in df["text_b"]]]


def pair_counts() -> dict:
    """Counts per pair kind, per split, per language pair and per (kind, language pair)."""
    return load_text_pairs().counts()
