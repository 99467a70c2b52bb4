"""Multilingual text pairs: construction rules on hand-made records, then the real table's invariants."""
from __future__ import annotations

import pandas as pd
import pytest

from acg2vec_lab.data import text_pairs as T


def _item(bgm_id, title, lang="ja", **tr):
    sites = [{"site": "bangumi", "id": str(bgm_id)}] if bgm_id is not None else [{"site": "mal", "id": "1"}]
    return {"title": title, "lang": lang, "titleTranslate": tr, "sites": sites}


def _entry(bgm_id, name, alias=(), tags=(), summary="", name_cn=""):
    return {"id": bgm_id, "name": name, "alias": list(alias), "summary": summary,
            "bangumi": {"name_cn": name_cn, "tags": list(tags)}}


def test_normalize_and_script_lang():
    assert T.normalize("ＡＢＣ\u3000 ｶﾞﾝﾀﾞﾑ \n 1") == "ABC ガンダム 1"
    assert T.normalize(None) == "" and T.normalize("   ") == ""
    assert T.script_lang("けいおん!") == "ja"
    assert T.script_lang("轻音少女") == "zh"
    assert T.script_lang("K-On!") == "latn"
    assert T.script_lang("케이온") == "ko"
    assert T.script_lang("2009") == "other"


def test_build_pairs_rules():
    items = [
        _item(1, "けいおん!", **{"zh-Hans": ["轻音少女"], "zh-Hant": ["輕音部！"], "en": ["K-ON!"]}),
        _item(2, "ＣＬＡＮＮＡＤ", **{"zh-Hans": ["CLANNAD"]}),  # NFKC makes both sides equal: dropped
        _item(None, "no bangumi id", **{"en": ["x"]}),          # cannot be joined: left out
        _item(3, "劇場版 けいおん!", **{"zh-Hans": ["轻音少女 剧场版"]}),
    ]
    entries = [
        _entry(1, "けいおん!", alias=["K-ON!", "轻音少女", "  K-On!  "], tags=["2009", "百合", "京阿尼", "百合"],
               summary="  平泽唯\n进入了  轻音部。 ", name_cn="轻音少女"),
        _entry(3, "劇場版 けいおん!", alias=["K-ON! Movie", "けいおん!"]),  # shares a title with anime 1
        _entry(4, "無関係", tags=["原创"]),
    ]
    df = T.build_pairs(items, entries)
    assert list(df.columns) == T.COLUMNS
    a1 = df[df["anime_id"] == 1]
    tt = a1[a1["kind"] == "title_title"]
    langs = set(zip(tt["lang_a"], tt["lang_b"]))
    assert langs == {("ja", "zh-Hans"), ("ja", "zh-Hant"), ("ja", "en"), ("zh-Hans", "zh-Hant"),
                     ("zh-Hans", "en"), ("zh-Hant", "en")}
    assert ("輕音部!" in set(tt["text_b"]))  # NFKC: fullwidth ！ -> !
    # bgmd name <-> name_cn duplicates bangumi-data's ja <-> zh-Hans pair: kept once, as title_title
    assert len(df[(df["anime_id"] == 1) & (df["text_b"] == "轻音少女")]) == 1
    aliases = a1[a1["kind"] == "title_alias"]
    # K-ON! and 轻音少女 already are title_title pairs; "K-On!" is a new alias (case differs)
    assert list(aliases["text_b"]) == ["K-On!"] and list(aliases["lang_b"]) == ["latn"]
    tags = a1[a1["kind"] == "title_tag"]
    assert sorted(tags["text_b"]) == ["京阿尼", "百合"]  # year dropped, duplicate tag once
    (summary,) = a1.loc[a1["kind"] == "title_summary", "text_b"]
    assert summary == "平泽唯 进入了 轻音部。"
    assert 2 not in set(df["anime_id"]) and "no bangumi id" not in set(df["text_a"])
    # anime 3 shares the string けいおん! with anime 1: same split group
    split = df.groupby("anime_id")["split"].agg(set)
    assert split[1] == split[3] and len(split[1]) == 1
    assert set(df["kind"]) <= set(T.KINDS) and set(df["split"]) <= set(T.SPLITS)
    assert df.equals(T.build_pairs(items, entries))  # deterministic


def test_split_of_is_deterministic_and_balanced():
    splits = [T.split_of(i) for i in range(20000)]
    assert splits == [T.split_of(i) for i in range(20000)]
    frac = pd.Series(splits).value_counts(normalize=True)
    assert abs(frac["train"] - 0.8) < 0.02 and abs(frac["val"] - 0.1) < 0.02 and abs(frac["test"] - 0.1) < 0.02


@pytest.fixture(scope="module")
def real():
    return T.load_text_pairs()


@pytest.mark.assets
def test_real_table_contract(real):
    df = real.pairs
    assert list(df.columns) == T.COLUMNS and len(df) > 100_000
    assert set(df["kind"]) == set(T.KINDS) and set(df["split"]) == set(T.SPLITS)
    assert (df["text_a"].str.len() > 0).all() and (df["text_b"].str.len() > 0).all()
    assert (df["text_a"] != df["text_b"]).all()
    lo = df[["text_a", "text_b"]].min(axis=1)
    hi = df[["text_a", "text_b"]].max(axis=1)
    assert not pd.DataFrame({"a": df["anime_id"], "lo": lo, "hi": hi}).duplicated().any()
    sample = df.sample(3000, random_state=0)
    for text in list(sample["text_a"]) + list(sample["text_b"]):
        assert T.normalize(text) == text
    # a known real pair from bangumi-data (Zombie Land Saga)
    hit = df[(df["text_a"] == "ゾンビランドサガ") & (df["kind"] == "title_title")]
    assert "zh-Hans" in set(hit["lang_b"])


@pytest.mark.assets
def test_real_splits_do_not_leak(real):
    df = real.pairs
    per_anime = df.groupby("anime_id")["split"].nunique()
    assert (per_anime == 1).all()  # an anime lives in one split
    titles = df[df["kind"].isin(("title_title", "title_alias"))]
    named = df[~df["kind"].isin(T.CHAR_KINDS)]  # text_a is a title (char_char holds two names)
    strings = {}
    for s in T.SPLITS:
        part = pd.concat([named.loc[named["split"] == s, "text_a"], titles.loc[titles["split"] == s, "text_b"]])
        strings[s] = set(part.str.casefold())
    assert not strings["train"] & strings["val"]
    assert not strings["train"] & strings["test"]
    assert not strings["val"] & strings["test"]
    val = real.split("val", "title_title")
    assert len(val) > 1000 and set(val["kind"]) == {"title_title"}


@pytest.mark.assets
def test_real_pair_counts(real):
    c = real.counts()
    assert c == T.pair_counts()
    assert sum(c["by_kind"].values()) == c["pairs"] == sum(c["by_split"].values())
    assert sum(c["by_lang_pair"].values()) == c["pairs"]
    # the sizes assets.md reports for the sources, after de-duplication
    assert c["by_kind"]["title_title"] > 25_000 and c["by_kind"]["title_tag"] > 100_000
    assert c["by_kind"]["title_alias"] > 10_000 and c["by_kind"]["title_summary"] > 7_000
    assert c["by_lang_pair"]["ja-zh-Hans"] > 7_000
    assert 0.75 < c["anime_by_split"]["train"] / c["anime"] < 0.85
