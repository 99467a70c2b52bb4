"""Character <-> work links: the linking rules on hand-made lists, then the real table's character pairs."""
from __future__ import annotations

import pytest

from acg2vec_lab.data import characters as C
from acg2vec_lab.data import text_pairs as T


def test_key_and_parse():
    assert C.key("Kantai Collection: KanColle") == "kantai collection kancolle"
    assert C.key("ＳＨＯＷ　ＢＹ ＲＯＣＫ!!") == "show by rock"
    assert C.parse_character_tag("kaga (kancolle)") == ("kaga", "kancolle")
    assert C.parse_character_tag("celestia (bishoujo) (my little pony)") == ("celestia (bishoujo)", "my little pony")
    assert C.parse_character_tag("hatsune miku") == ("hatsune miku", None)


def test_link_rules():
    index = C.work_index([(1, "KanColle"), (2, "Pokemon"), (3, "_summer"), (4, "Log Horizon"),
                          (5, "Log Horizon 2"), (6, "Log Horizon"), (7, "ab")])
    assert "ab" not in index  # too short to link on
    tags = ["kaga (kancolle)", "akagi (kancolle)", "saber (kancolle)", "saber (fate)",  # saber: ambiguous
            "pikachu (pokemon)", "pokemon trainer (pokemon)",  # contains its series' key
            "ganyu (genshin impact)",  # no such work
            "nagisa (summer)",  # generic qualifier, though a work "_summer" exists
            "shiroe (log horizon)", "hatsune miku", "x (kancolle)"]
    links = C.link_characters(tags, index, popularity={4: 10, 6: 30}, max_per_work=10)
    got = {(l.name, l.work) for l in links}
    assert got == {("kaga", 1), ("akagi", 1), ("pikachu", 2), ("shiroe", 6)}
    shiroe = next(l for l in links if l.name == "shiroe")
    assert shiroe.anime_ids == (4, 6) and shiroe.work == 6  # the most-tagged anime is the work's main entry
    assert [l.rank for l in links] == sorted(l.rank for l in links)
    capped = C.link_characters(tags, index, popularity={}, max_per_work=1)
    assert [l.name for l in capped if l.work == 1] == ["kaga"]  # the cap keeps the most popular


def _item(bgm_id, title, **tr):
    return {"title": title, "lang": "ja", "titleTranslate": tr, "sites": [{"site": "bangumi", "id": str(bgm_id)}]}


def test_character_pairs_in_the_table_and_one_split_per_work():
    items = [_item(10, "ログ・ホライズン", **{"zh-Hans": ["记录的地平线"], "en": ["Log Horizon"]}),
             _item(11, "ログ・ホライズン 第2シリーズ", **{"en": ["Log-Horizon"]}),  # same key, another string
             _item(12, "無関係", **{"zh-Hans": ["无关"]})]
    entries = [{"id": 10, "name": "ログ・ホライズン", "alias": [], "bangumi": {"name_cn": "", "tags": ["冒险", "异世界"]}},
               {"id": 11, "name": "ログ・ホライズン 第2シリーズ", "alias": [], "bangumi": {"tags": ["冒险"]}}]
    tags = ["shiroe (log horizon)", "akatsuki (log horizon)", "naotsugu (log horizon)"]
    df = T.build_pairs(items, entries, tags)
    cw = df[df["kind"] == "char_work"]
    assert set(cw["anime_id"]) == {10}  # the work's main anime (most Bangumi tags)
    assert set(zip(cw["lang_a"], cw["text_a"])) == {("ja", "ログ・ホライズン"), ("zh-Hans", "记录的地平线")}
    assert sorted(cw.loc[cw["lang_a"] == "ja", "text_b"]) == ["akatsuki", "naotsugu", "shiroe"]
    assert set(cw["lang_b"]) == {"latn"} and set(cw["source"]) == {"tipo-kgen"}
    cc = df[df["kind"] == "char_char"]
    assert set(zip(cc["text_a"], cc["text_b"])) == {("shiroe", "akatsuki"), ("akatsuki", "naotsugu")}
    split = df.groupby("anime_id")["split"].agg(set)
    assert split[10] == split[11] and len(split[10]) == 1  # linked by the qualifier: one split group
    assert T.build_pairs(items, entries, tags).equals(df)  # deterministic


@pytest.fixture(scope="module")
def real():
    return T.load_text_pairs().pairs


@pytest.mark.assets
def test_real_character_pairs(real):
    cw = real[real["kind"] == "char_work"]
    cc = real[real["kind"] == "char_char"]
    assert len(cw) > 5000 and len(cc) > 2000
    works = cw.groupby("split")["anime_id"].nunique()
    assert works["train"] > 400 and works["test"] > 40 and works["val"] > 40
    # a known link: KanColle's ship girls belong to 艦隊これくしょん -艦これ- (Bangumi 84386); "kaga" itself is
    # dropped as ambiguous (kaga (azur lane) exists too)
    kaga = cw[(cw["text_b"] == "akitsu maru") & (cw["lang_a"] == "ja")]
    assert list(kaga["anime_id"]) == [84386] and list(kaga["text_a"]) == ["艦隊これくしょん -艦これ-"]
    assert not (cw["text_b"] == "kaga").any()
    # the cap, and no qualifier left in a name's text
    assert cw[cw["lang_a"] == "ja"].groupby("anime_id").size().max() <= C.MAX_CHARS_PER_WORK
    assert not cw["text_b"].str.contains("kancolle").any()
    # a character name belongs to one split (no held-out character is trained on)
    names = cw.groupby("text_b")["split"].nunique()
    assert (names == 1).all()


@pytest.mark.assets
def test_heldout_aliases_stay_out_of_training(real):
    from acg2vec_lab.models.acgvoc2vec import evaluate as E
    from acg2vec_lab.models.acgvoc2vec.config import AcgVoc2VecConfig
    from acg2vec_lab.models.acgvoc2vec.train import sample_pairs

    held = T.heldout_aliases(real)
    n_alias = int(((real["split"] == "train") & (real["kind"] == "title_alias")).sum())
    assert 0.07 < len(held) / n_alias < 0.13
    sample = sample_pairs(real, AcgVoc2VecConfig())
    assert not set(sample["text_b"].str.casefold()) & set(held["text_b"].str.casefold())
    q = E.alias_holdout_queries(real)
    assert 0 < len(q) <= len(held) and q["alias"].is_unique
