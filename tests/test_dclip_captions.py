"""DCLIP caption rules (models.md section 4), both versions, every edge case."""
from __future__ import annotations

import dataclasses

import pytest

from acg2vec_lab.models.dclip.captions import build_caption, build_captions, prompt_for_tag


def T(name, cat):
    return (name, cat)


REIMU = [T("hakurei_reimu_(touhou)", 4), T("touhou", 3), T("1girl", 0), T("red_bow", 0), T("solo", 0),
         T("zun", 1), T("highres", 5)]


def test_full_post_code_version():
    assert build_caption(REIMU, "code") == "hakurei reimu  from touhou with 1girl,red bow,solo"


def test_full_post_readme_version_drops_girl_boy():
    assert build_caption(REIMU, "readme") == "hakurei reimu  from touhou with red bow,solo"


def test_parentheses_kept_without_copyright_and_original_is_not_a_copyright():
    tags = [T("hatsune_miku_(append)", 4), T("original", 3), T("twintails", 0)]
    assert build_caption(tags, "code") == "hatsune miku (append) with twintails"
    # with a real copyright every (...) group goes, non-greedy (the text between groups stays)
    tags2 = [T("a_(x)_b_(y)", 4), T("vocaloid", 3), T("twintails", 0)]
    assert build_caption(tags2, "code") == "a  b  from vocaloid with twintails"


def test_multiple_characters_and_copyrights():
    tags = [T("a_(s)", 4), T("b", 4), T("s_one", 3), T("s_two", 3), T("smile", 0)]
    assert build_caption(tags) == "a ,b from s one s two with smile"


def test_no_characters():
    tags = [T("touhou", 3), T("1girl", 0), T("solo", 0)]
    assert build_caption(tags, "code") == "from touhou 1girl,solo"
    assert build_caption(tags, "readme") == " from touhou with solo"


def test_no_general_tags_strips_trailing_space():
    tags = [T("hakurei_reimu_(touhou)", 4), T("touhou", 3)]
    assert build_caption(tags, "code") == "hakurei reimu  from touhou"
    assert build_caption(tags, "readme") == "hakurei reimu  from touhou"


def test_dangling_with_when_no_general_tag_survives_the_letter_filter():
    tags = [T("kirisame_marisa", 4), T(":)", 0), T("^_^", 0)]
    assert build_caption(tags, "code") == "kirisame marisa with"
    # README: "with " whenever general tags exist, even when the girl/boy filter removes them all
    assert build_caption([T("x", 4), T("1girl", 0)], "readme") == "x with"
    # code version without characters: no "with", the last char of the prefix goes instead
    assert build_caption([T("touhou", 3), T(":)", 0)], "code") == "from touhou"


def test_only_non_caption_tags():
    assert build_captions([T("zun", 1), T("highres", 5)], "code") == [""]
    assert build_captions([], "code") == [""]


def test_more_than_20_general_tags_gives_two_captions():
    general = [T(f"tag_{i:02d}", 0) for i in range(23)]
    caps = build_captions([T("c", 4)] + general, "code")
    assert len(caps) == 2
    assert caps[0] == "c with " + ",".join(f"tag {i:02d}" for i in range(11))
    assert caps[1] == "c with " + ",".join(f"tag {i:02d}" for i in range(11, 23))
    # exactly 20 stays one caption; the count is taken before the letter filter
    assert len(build_captions([T(f"t{i}", 0) for i in range(20)])) == 1
    assert len(build_captions([T(f"t{i}", 0) for i in range(20)] + [T(":3", 0)])) == 2


def test_accepts_tag_objects_and_rejects_unknown_version():
    @dataclasses.dataclass
    class Tag:
        name: str
        category: int

    assert build_caption([Tag("smile", 0)]) == "smile"
    with pytest.raises(ValueError, match="version"):
        build_captions([], "v3")


def test_prompt_for_tag():
    assert prompt_for_tag("long_hair") == "long hair"
    assert prompt_for_tag(":)") == ":)"
