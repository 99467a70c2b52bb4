"""A SYNTHETIC Danbooru-format illustration set: drawn characters with real Danbooru tag names.

No Danbooru-tagged images can be obtained here, so the taggers, score predictors and embedders train
on pictures this module draws. They are labelled synthetic everywhere: every post has
``"synthetic": true`` in its metadata, the folder is named ``synthetic-danbooru-...`` and
``dataset.json`` says so.

**Roster.** :data:`ROSTER` lists real character tags grouped by their real series (copyright tag);
:func:`build_roster` checks each against the real vocabulary (:mod:`acg2vec_lab.data.vocab`) and gives
every character fixed traits, all real general tags: hair colour, hair length, hair style, eye colour,
0-3 accessories (hat, hair_ribbon, glasses, hair_ornament, hairband, choker, earrings) and an outfit
(dress / shirt + skirt / school uniform) with its colour tags (``blue_dress``, ``white_shirt`` ...).
Traits come from a hash of (seed, character), so two characters never share the same look. The
characters' real designs are not modelled; only their tag names (and categories) are real.

**Per image** (all from ``numpy.random.default_rng([seed, post_id])``): character count (``solo`` +
``1girl``; ``2girls`` / ``3girls`` + ``multiple_girls``), which characters (popular ones more often),
pose (``standing``, ``arms_up``, ``outstretched_arms``, ``hand_on_hip``), framing (``full_body``,
``cowboy_shot``, ``upper_body``), scale and position, expression (``smile``, ``open_mouth``,
``closed_eyes``, ``blush``), outfit swap to a ``bikini`` (``swimsuit``, ``bare_shoulders``), background
(``white_background``, coloured ``simple_background``, ``gradient_background``, or ``outdoors`` with
``sky``/``day``/``cloud``/``grass``/``tree``) and rating.

**Hidden score formula** (pixiv-style labels; a score model has to learn it from the pixels):

* ``pop``: the highest popularity among the drawn characters (1 = the roster's most popular
  character by real Danbooru tag rank, 0 = the least; log-rank scale);
* ``acc``: accessories visible in the image, capped at 4;
* ``colour``: colourfulness of the drawn picture (Hasler & Suesstrunk 2003), divided by 100, clipped to 1;
* ``racy``: 1 if rating is ``s`` or ``q``;  ``extra``: number of characters minus one.

``log(bookmark) = 3.2 + 1.8 pop + 0.3 acc + 1.5 colour + 0.5 racy + 0.3 extra + N(0, 0.45)``,
``log(view) = log(bookmark) + 2.3 - 0.3 racy + N(0, 0.3)``, ``sanity_level`` = 2 / 4 / 6 for rating
g / s / q, moved one step (2<->4, 4<->6) with probability 0.08. Danbooru ``score`` =
``round(bookmark / 20 + N(0, 2))`` (>= 0) and ``fav_count`` = ``round(1.3 score)``. The noise terms
make the signal learnable but imperfect (the formula's own R^2 on log bookmarks is about 0.6).

Rating: ``g`` with the character's own outfit, ``s`` in a bikini, and ``q`` for a bikini with a blush
in 40 % of such images. No explicit content is drawn (there is no ``e``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from acg2vec_lab.data.config import SyntheticDataConfig
from acg2vec_lab.data.danbooru import CHARACTER, COPYRIGHT, GENERAL, DanbooruDataset, Post, Tag, layout_path

GENERATOR_VERSION = 1

# Real characters (female, by their real designs) of real series, most popular series first.
ROSTER: dict[str, list[str]] = {
    "fate_(series)": ["artoria_pendragon_(fate)", "jeanne_d'arc_(fate)", "tamamo_(fate)",
                      "abigail_williams_(fate)", "nero_claudius_(fate)", "scathach_(fate)"],
    "genshin_impact": ["ganyu_(genshin_impact)", "mona_(genshin_impact)", "lumine_(genshin_impact)",
                       "hu_tao_(genshin_impact)", "keqing_(genshin_impact)", "klee_(genshin_impact)"],
    "azur_lane": ["atago_(azur_lane)", "prinz_eugen_(azur_lane)", "belfast_(azur_lane)",
                  "formidable_(azur_lane)", "taihou_(azur_lane)", "sirius_(azur_lane)"],
    "pokemon": ["dawn_(pokemon)", "lillie_(pokemon)", "may_(pokemon)", "hilda_(pokemon)",
                "rosa_(pokemon)", "marnie_(pokemon)"],
    "arknights": ["amiya_(arknights)", "skadi_(arknights)", "texas_(arknights)", "exusiai_(arknights)",
                  "lappland_(arknights)", "surtr_(arknights)"],
    "umamusume": ["rice_shower_(umamusume)", "mejiro_mcqueen_(umamusume)", "daiwa_scarlet_(umamusume)",
                  "tokai_teio_(umamusume)", "gold_ship_(umamusume)", "agnes_tachyon_(umamusume)"],
    "girls_und_panzer": ["darjeeling_(girls_und_panzer)", "anchovy_(girls_und_panzer)", "katyusha_(girls_und_panzer)",
                         "kay_(girls_und_panzer)", "mika_(girls_und_panzer)", "nonna_(girls_und_panzer)"],
    "princess_connect!": ["karyl_(princess_connect!)", "kokkoro_(princess_connect!)", "pecorine_(princess_connect!)",
                          "saren_(princess_connect!)", "kyouka_(princess_connect!)", "yuni_(princess_connect!)"],
    "league_of_legends": ["ahri_(league_of_legends)", "jinx_(league_of_legends)", "sona_(league_of_legends)",
                          "lulu_(league_of_legends)", "lux_(league_of_legends)", "caitlyn_(league_of_legends)"],
    "overwatch": ["d.va_(overwatch)", "mercy_(overwatch)", "tracer_(overwatch)", "mei_(overwatch)",
                  "widowmaker_(overwatch)", "pharah_(overwatch)"],
}

HAIR_COLOURS = {
    "blonde_hair": (246, 214, 110), "brown_hair": (128, 80, 46), "black_hair": (36, 34, 44),
    "blue_hair": (60, 110, 220), "pink_hair": (244, 150, 190), "red_hair": (200, 40, 40),
    "white_hair": (240, 240, 244), "silver_hair": (190, 196, 210), "green_hair": (70, 170, 80),
    "purple_hair": (140, 80, 190), "orange_hair": (244, 140, 40), "aqua_hair": (80, 210, 210),
}
HAIR_LENGTHS = ("short_hair", "medium_hair", "long_hair", "very_long_hair")
HAIR_STYLES = (None, "twintails", "ponytail", "side_ponytail", "hair_bun")
EYE_COLOURS = {
    "blue_eyes": (40, 90, 220), "red_eyes": (210, 30, 40), "green_eyes": (40, 160, 70),
    "brown_eyes": (120, 70, 30), "purple_eyes": (140, 60, 190), "yellow_eyes": (230, 190, 20),
    "aqua_eyes": (40, 200, 200), "pink_eyes": (240, 110, 170), "grey_eyes": (130, 130, 140),
    "orange_eyes": (245, 130, 30),
}
ACCESSORIES = ("hat", "hair_ribbon", "glasses", "hair_ornament", "hairband", "choker", "earrings")
CLOTH_COLOURS = {
    "white": (246, 246, 246), "black": (40, 40, 48), "blue": (60, 90, 200), "red": (200, 40, 50),
    "pink": (240, 140, 180), "green": (60, 150, 80), "purple": (130, 70, 170), "yellow": (240, 210, 60),
    "grey": (140, 140, 150), "brown": (130, 85, 50),
}
OUTFITS = ("dress", "shirt_skirt", "school_uniform")
POSES = ("standing", "arms_up", "outstretched_arms", "hand_on_hip")
FRAMINGS = ("full_body", "cowboy_shot", "upper_body")
BACKGROUND_COLOURS = {
    "blue_background": (150, 190, 240), "pink_background": (250, 190, 210), "grey_background": (170, 170, 175),
    "yellow_background": (250, 235, 150),
}
SKIN = (255, 226, 205)
OUTLINE = (60, 40, 40)


# ----------------------------------------------------------------------------------- roster

@dataclass(frozen=True)
class Character:
    """A roster character: real tag names and fixed drawn traits."""

    name: str  # character tag
    series: str  # copyright tag
    popularity: float  # 1 = most popular in the roster (real tag rank), 0 = least
    hair_colour: str
    hair_length: str
    hair_style: str | None
    eye_colour: str
    accessories: tuple[str, ...]
    outfit: str
    outfit_colour: str
    second_colour: str  # skirt / sailor collar colour
    accessory_colour: str
    outfit_tags: tuple[str, ...]  # general tags the outfit shows (all real)

    def trait_tags(self) -> list[str]:
        tags = [self.hair_colour, self.hair_length, self.eye_colour, *self.accessories, *self.outfit_tags]
        if self.hair_style:
            tags.append(self.hair_style)
        return tags


def _stable_rng(*parts: Any) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _outfit_tags(outfit: str, c1: str, c2: str, vocab) -> tuple[str, ...]:
    def coloured(colour: str, item: str) -> list[str]:
        tag = f"{colour}_{item}"
        return [tag] if tag in vocab else []

    if outfit == "dress":
        return ("dress", *coloured(c1, "dress"))
    if outfit == "shirt_skirt":
        return ("shirt", *coloured(c1, "shirt"), "skirt", *coloured(c2, "skirt"))
    return ("school_uniform", "serafuku", "sailor_collar", "skirt", "pleated_skirt", *coloured(c2, "skirt"))


def build_roster(vocab, n_series: int, per_series: int, seed: int = 0) -> list[Character]:
    """The first ``n_series`` series of :data:`ROSTER` with ``per_series`` characters each.

    Every character and series tag is checked against ``vocab`` (a
    :class:`~acg2vec_lab.data.vocab.TagVocabulary`): the character must be a character tag whose
    series is the listed copyright tag. Traits are distinct across the roster.
    """
    series_list = list(ROSTER)[:n_series]
    if len(series_list) < n_series or any(len(ROSTER[s]) < per_series for s in series_list):
        raise ValueError(f"the roster has {len(ROSTER)} series x {min(map(len, ROSTER.values()))} characters; "
                         f"asked for {n_series} x {per_series}")
    chosen = [(s, c) for s in series_list for c in ROSTER[s][:per_series]]
    for s, c in chosen:
        vocab.check(Tag(s, COPYRIGHT))
        vocab.check(Tag(c, CHARACTER))
        if vocab.series_of.get(c) != s:
            raise ValueError(f"{c}: the vocabulary puts it in series {vocab.series_of.get(c)!r}, not {s!r}")
    logs = {c: math.log(vocab.rank[c] + 1) for _, c in chosen}
    lo, hi = min(logs.values()), max(logs.values())
    roster: list[Character] = []
    used: set[tuple] = set()
    for s, c in chosen:
        rng = _stable_rng("character", seed, c)
        while True:
            hair = str(rng.choice(list(HAIR_COLOURS)))
            length = str(rng.choice(HAIR_LENGTHS, p=[0.3, 0.15, 0.4, 0.15]))
            style = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=[0.4, 0.2, 0.2, 0.1, 0.1]))]
            if style in ("twintails", "ponytail", "side_ponytail") and length == "short_hair":
                length = "long_hair"
            eyes = str(rng.choice(list(EYE_COLOURS)))
            n_acc = int(rng.choice(4, p=[0.3, 0.35, 0.25, 0.1]))
            acc = tuple(sorted(str(a) for a in rng.choice(ACCESSORIES, size=n_acc, replace=False)))
            outfit = str(rng.choice(OUTFITS))
            c1, c2, c3 = (str(x) for x in rng.choice(list(CLOTH_COLOURS), size=3, replace=False))
            if outfit == "school_uniform":
                c1 = "white"
            key = (hair, length, style, eyes, acc, outfit, c1)
            if key not in used:
                used.add(key)
                break
        pop = 1.0 - (logs[c] - lo) / (hi - lo) if hi > lo else 1.0
        roster.append(Character(c, s, round(pop, 4), hair, length, style, eyes, acc, outfit, c1, c2, c3,
                                _outfit_tags(outfit, c1, c2, vocab)))
    return roster


# ----------------------------------------------------------------------------------- drawing

@dataclass
class Figure:
    character: Character
    pose: str
    expression: dict[str, bool]
    bikini: bool
    cx: float
    head_y: float
    r: float  # head radius in pixels (canvas scale)
    flip: bool


class _Pen:
    """Draw in figure units (head radius 1, head centre at the origin) on a canvas."""

    def __init__(self, draw: ImageDraw.ImageDraw, fig: Figure):
        self.d, self.f = draw, fig
        self.s = -1.0 if fig.flip else 1.0

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (self.f.cx + self.s * x * self.f.r, self.f.head_y + y * self.f.r)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        (a, b), (c, d) = self.p(x0, y0), self.p(x1, y1)
        return [min(a, c), min(b, d), max(a, c), max(b, d)]

    def ellipse(self, x0, y0, x1, y1, fill=None, outline=None, width=1.0):
        self.d.ellipse(self.box(x0, y0, x1, y1), fill=fill, outline=outline, width=self.w(width))

    def poly(self, pts, fill=None, outline=None):
        self.d.polygon([self.p(x, y) for x, y in pts], fill=fill, outline=outline)

    def line(self, pts, fill, width):
        self.d.line([self.p(x, y) for x, y in pts], fill=fill, width=self.w(width), joint="curve")

    def arc(self, x0, y0, x1, y1, start, end, fill, width):
        if self.s < 0:
            start, end = 180 - end, 180 - start
        self.d.arc(self.box(x0, y0, x1, y1), start, end, fill=fill, width=self.w(width))

    def w(self, width: float) -> int:
        return max(1, int(round(width * self.f.r * 0.1)))


def _shade(rgb: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, v * k))) for v in rgb)  # type: ignore[return-value]


def draw_figure(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    """One character: hair, body, outfit, arms in the pose, face with the expression, accessories."""
    ch, pen = fig.character, _Pen(draw, fig)
    hair = HAIR_COLOURS[ch.hair_colour]
    dark_hair = _shade(hair, 0.75)
    c1, c2, c3 = CLOTH_COLOURS[ch.outfit_colour], CLOTH_COLOURS[ch.second_colour], CLOTH_COLOURS[ch.accessory_colour]
    back_len = {"short_hair": 0.4, "medium_hair": 1.8, "long_hair": 3.4, "very_long_hair": 5.4}[ch.hair_length]
    # back hair and tails (behind everything)
    if ch.hair_length != "short_hair" and ch.hair_style not in ("ponytail", "side_ponytail", "hair_bun"):
        pen.poly([(-1.15, -0.3), (1.15, -0.3), (1.35, back_len), (-1.35, back_len)], fill=dark_hair)
    if ch.hair_style == "twintails":
        for sx in (-1, 1):
            pen.ellipse(sx * 1.05 - 0.45, -0.6, sx * 1.05 + 0.45, back_len + 0.4, fill=hair)
    elif ch.hair_style in ("ponytail", "side_ponytail"):
        sx = 1.0 if ch.hair_style == "ponytail" else -1.2
        pen.ellipse(sx - 0.45, -0.7, sx + 0.45, back_len + 0.3, fill=hair)
    # legs
    leg_end = 6.9
    for sx in (-0.35, 0.35):
        pen.line([(sx, 4.0), (sx * 1.1, leg_end)], fill=SKIN, width=3.2)
        pen.ellipse(sx - 0.3, leg_end - 0.15, sx + 0.3, leg_end + 0.2, fill=_shade(c1, 0.6))
    # body / outfit
    if fig.bikini:
        pen.poly([(-0.7, 1.0), (0.7, 1.0), (0.85, 4.2), (-0.85, 4.2)], fill=SKIN)
        pen.ellipse(-0.7, 1.8, -0.05, 2.4, fill=c1)
        pen.ellipse(0.05, 1.8, 0.7, 2.4, fill=c1)
        pen.poly([(-0.85, 3.7), (0.85, 3.7), (0.0, 4.4)], fill=c1)
    elif ch.outfit == "dress":
        pen.poly([(-0.7, 1.0), (0.7, 1.0), (0.8, 2.8), (1.6, 5.0), (-1.6, 5.0), (-0.8, 2.8)], fill=c1, outline=_shade(c1, 0.7))
    else:
        pen.poly([(-0.75, 1.0), (0.75, 1.0), (0.85, 3.3), (-0.85, 3.3)], fill=c1, outline=_shade(c1, 0.7))
        pen.poly([(-0.9, 3.2), (0.9, 3.2), (1.4, 4.6), (-1.4, 4.6)], fill=c2, outline=_shade(c2, 0.7))
        if ch.outfit == "school_uniform":
            for x in (-0.7, -0.25, 0.25, 0.7):
                pen.line([(x * 0.9, 3.3), (x * 1.5, 4.6)], fill=_shade(c2, 0.6), width=0.6)
            pen.poly([(-0.75, 1.0), (0.75, 1.0), (0.0, 1.9)], fill=c2)
            pen.poly([(-0.2, 1.7), (0.2, 1.7), (0.0, 2.2)], fill=(220, 40, 50))
    # arms
    sleeve = SKIN if fig.bikini else c1
    arm_paths = {
        "standing": [(0.75, 1.2), (1.05, 2.4), (1.1, 3.5)],
        "arms_up": [(0.75, 1.2), (1.3, 0.2), (1.25, -1.2)],
        "outstretched_arms": [(0.75, 1.2), (1.8, 1.4), (2.8, 1.5)],
        "hand_on_hip": [(0.75, 1.2), (1.6, 2.2), (0.9, 3.1)],
    }[fig.pose]
    for sx in (-1, 1):
        pts = [(sx * x, y) for x, y in arm_paths]
        pen.line(pts[:2], fill=sleeve, width=3.0)
        pen.line(pts[1:], fill=SKIN, width=2.6)
        hx, hy = pts[-1]
        pen.ellipse(hx - 0.18, hy - 0.18, hx + 0.18, hy + 0.18, fill=SKIN)
    # neck, head
    pen.poly([(-0.22, 0.8), (0.22, 0.8), (0.22, 1.1), (-0.22, 1.1)], fill=SKIN)
    pen.ellipse(-1.0, -1.0, 1.0, 1.0, fill=SKIN, outline=OUTLINE, width=0.3)
    if ch.hair_style == "hair_bun":
        pen.ellipse(-0.45, -1.65, 0.45, -0.8, fill=hair)
    # bangs: a cap over the top of the head with a jagged fringe
    pen.poly([(-1.12, 0.1), (-1.1, -0.6), (-0.6, -1.12), (0.6, -1.12), (1.1, -0.6), (1.12, 0.1),
              (0.85, -0.25), (0.55, -0.05), (0.3, -0.35), (0.0, -0.1), (-0.3, -0.35), (-0.55, -0.05), (-0.85, -0.25)],
             fill=hair, outline=_shade(hair, 0.6))
    if ch.hair_length == "short_hair":
        for sx in (-1, 1):
            pen.poly([(sx * 1.12, -0.1), (sx * 0.95, 0.55), (sx * 0.8, -0.1)], fill=hair)
    # face
    ex = fig.expression
    eye_rgb = EYE_COLOURS[ch.eye_colour]
    for sx in (-0.4, 0.4):
        if ex["closed_eyes"]:
            pen.arc(sx - 0.22, -0.05, sx + 0.22, 0.3, 0, 180, fill=OUTLINE, width=0.6)
        else:
            pen.ellipse(sx - 0.2, -0.05, sx + 0.2, 0.42, fill=eye_rgb, outline=OUTLINE, width=0.3)
            pen.ellipse(sx - 0.08, 0.02, sx + 0.04, 0.14, fill=(255, 255, 255))
    if ex["blush"]:
        for sx in (-0.55, 0.55):
            pen.ellipse(sx - 0.18, 0.42, sx + 0.18, 0.56, fill=(250, 150, 160))
    if ex["open_mouth"]:
        pen.ellipse(-0.16, 0.55, 0.16, 0.8, fill=(170, 40, 50), outline=OUTLINE, width=0.2)
    elif ex["smile"]:
        pen.arc(-0.25, 0.4, 0.25, 0.72, 20, 160, fill=OUTLINE, width=0.5)
    else:
        pen.line([(-0.12, 0.65), (0.12, 0.65)], fill=OUTLINE, width=0.4)
    # accessories
    acc = set(ch.accessories)
    if "glasses" in acc:
        for sx in (-0.4, 0.4):
            pen.ellipse(sx - 0.3, -0.15, sx + 0.3, 0.5, outline=(30, 30, 30), width=0.5)
        pen.line([(-0.1, 0.15), (0.1, 0.15)], fill=(30, 30, 30), width=0.4)
    if "hairband" in acc:
        pen.arc(-1.05, -1.05, 1.05, 1.0, 200, 340, fill=c3, width=2.0)
    if "hair_ornament" in acc:
        x, y = -0.75, -0.55
        pen.poly([(x, y - 0.3), (x + 0.1, y - 0.05), (x + 0.3, y), (x + 0.1, y + 0.07), (x, y + 0.3),
                  (x - 0.1, y + 0.07), (x - 0.3, y), (x - 0.1, y - 0.05)], fill=(250, 220, 60), outline=(160, 120, 20))
    if "hair_ribbon" in acc:
        x, y = 0.85, -0.75
        pen.poly([(x, y), (x + 0.45, y - 0.3), (x + 0.45, y + 0.3)], fill=c3)
        pen.poly([(x, y), (x - 0.45, y - 0.3), (x - 0.45, y + 0.3)], fill=c3)
        pen.ellipse(x - 0.1, y - 0.1, x + 0.1, y + 0.1, fill=_shade(c3, 0.7))
    if "earrings" in acc:
        for sx in (-1.0, 1.0):
            pen.ellipse(sx - 0.1, 0.45, sx + 0.1, 0.65, fill=(250, 210, 40))
    if "choker" in acc:
        pen.line([(-0.25, 0.95), (0.25, 0.95)], fill=(20, 20, 20), width=1.6)
    if "hat" in acc:
        pen.ellipse(-1.5, -1.15, 1.5, -0.75, fill=c3, outline=_shade(c3, 0.6))
        pen.poly([(-0.9, -0.95), (-0.75, -1.9), (0.75, -1.9), (0.9, -0.95)], fill=c3, outline=_shade(c3, 0.6))


def draw_background(img: Image.Image, kind: str, colour_tag: str | None, rng: np.random.Generator) -> None:
    w, h = img.size
    draw = ImageDraw.Draw(img)
    if kind == "white":
        return
    if kind == "simple":
        draw.rectangle([0, 0, w, h], fill=BACKGROUND_COLOURS[colour_tag])
        return
    if kind == "gradient":
        a = np.array(BACKGROUND_COLOURS[colour_tag], dtype=np.float32)
        b = np.array([255, 255, 255], dtype=np.float32) if rng.random() < 0.5 else a * 0.55
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        arr = (a * (1 - t) + b * t).repeat(w, axis=1).astype(np.uint8)
        img.paste(Image.fromarray(arr, "RGB"))
        return
    # outdoors: sky gradient, clouds, grass, sometimes a tree
    horizon = int(h * rng.uniform(0.6, 0.78))
    top, bottom = np.array([70, 140, 230], np.float32), np.array([190, 225, 250], np.float32)
    t = np.linspace(0, 1, max(horizon, 1), dtype=np.float32)[:, None, None]
    sky = (top * (1 - t) + bottom * t).repeat(w, axis=1).astype(np.uint8)
    img.paste(Image.fromarray(sky, "RGB"), (0, 0))
    for _ in range(int(rng.integers(1, 4))):
        cx, cy, s = rng.uniform(0, w), rng.uniform(0, horizon * 0.6), rng.uniform(0.06, 0.14) * w
        for dx in (-0.8, 0.0, 0.8):
            draw.ellipse([cx + dx * s - s, cy - s * 0.6, cx + dx * s + s, cy + s * 0.6], fill=(250, 250, 252))
    draw.rectangle([0, horizon, w, h], fill=(90, 170, 70))
    if colour_tag == "tree":
        tx = rng.uniform(0.05, 0.95) * w
        tw = 0.05 * w
        draw.rectangle([tx - tw / 2, horizon - 0.25 * h, tx + tw / 2, horizon + 0.02 * h], fill=(110, 70, 40))
        draw.ellipse([tx - 0.16 * w, horizon - 0.45 * h, tx + 0.16 * w, horizon - 0.18 * h], fill=(40, 130, 50))


def colourfulness(arr: np.ndarray) -> float:
    """Hasler & Suesstrunk's colourfulness M of an RGB uint8 array (0 = grey; ~100 = very colourful)."""
    a = arr.astype(np.float32)
    rg = a[..., 0] - a[..., 1]
    yb = 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


# ----------------------------------------------------------------------------------- one post

_WORKER: dict[str, Any] = {}


def _init_worker(roster: list[Character], cfg: SyntheticDataConfig, image_root: str) -> None:
    _WORKER.update(roster=roster, cfg=cfg, image_root=image_root)


def sample_post(post_id: int, roster: Sequence[Character], cfg: SyntheticDataConfig) -> tuple[Image.Image, dict[str, Any]]:
    """Draw post ``post_id``: the image and its metadata (Danbooru2021 form, without md5)."""
    rng = np.random.default_rng([cfg.seed, post_id, GENERATOR_VERSION])
    w = int(rng.integers(cfg.min_size, cfg.max_size + 1))
    aspect = float(rng.choice([1.0, 1.0, 1.25, 1.33, 0.8]))
    h = int(min(cfg.max_size, max(cfg.min_size, round(w * aspect))))
    n = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
    weights = np.array([0.3 + c.popularity for c in roster], dtype=np.float64)
    n = min(n, len(roster))
    idx = rng.choice(len(roster), size=n, replace=False, p=weights / weights.sum())
    chars = [roster[int(i)] for i in idx]
    framing = str(rng.choice(FRAMINGS if n == 1 else FRAMINGS[:2], p=[0.4, 0.3, 0.3] if n == 1 else [0.6, 0.4]))
    bg_kind = str(rng.choice(["white", "simple", "gradient", "outdoors"], p=[0.3, 0.25, 0.2, 0.25]))
    bg_tag = None
    if bg_kind in ("simple", "gradient"):
        bg_tag = str(rng.choice(list(BACKGROUND_COLOURS)))
    elif bg_kind == "outdoors" and rng.random() < 0.4:
        bg_tag = "tree"

    ss = 2 if max(w, h) < 300 else 1  # small images: draw at twice the size, then downsample (anti-aliasing)
    canvas = Image.new("RGB", (w * ss, h * ss), (255, 255, 255))
    draw_background(canvas, bg_kind, bg_tag, rng)
    draw = ImageDraw.Draw(canvas)
    extent = {"full_body": 8.4, "cowboy_shot": 6.0, "upper_body": 4.2}[framing]
    H, W = h * ss, w * ss
    r = H * rng.uniform(0.82, 0.97) / extent
    r = min(r, W / (3.4 * n))  # n figures must fit side by side
    slots = (np.arange(n) + 0.5) / n
    jitter = rng.uniform(-0.25, 0.25) / n
    figures: list[Figure] = []
    tags: list[Tag] = []
    any_bikini = False
    any_blush = False
    expressions = []
    for k, ch in enumerate(chars):
        pose = str(rng.choice(POSES, p=[0.4, 0.2, 0.2, 0.2]))
        closed = bool(rng.random() < 0.2)
        open_mouth = bool(rng.random() < 0.3)
        ex = {"closed_eyes": closed, "open_mouth": open_mouth, "smile": bool(rng.random() < 0.55),
              "blush": bool(rng.random() < 0.3)}
        bikini = bool(rng.random() < 0.15)
        any_bikini |= bikini
        any_blush |= ex["blush"]
        cx = W * float(np.clip(slots[k] + jitter, 0.15, 0.85))
        head_y = 1.3 * r + rng.uniform(0, 0.08) * H
        fig = Figure(ch, pose, ex, bikini, cx, head_y, r, bool(rng.random() < 0.5))
        draw_figure(draw, fig)
        figures.append(fig)
        expressions.append(ex)
    img = canvas.resize((w, h), Image.Resampling.BOX) if ss > 1 else canvas

    # ---- tags (only what is drawn and visible)
    names: list[str] = []
    names += ["1girl", "solo"] if n == 1 else (["2girls"] if n == 2 else ["3girls"]) + ["multiple_girls"]
    visible_to_leg = framing == "full_body"
    for fig in figures:
        ch, ex = fig.character, fig.expression
        names += [ch.hair_colour, ch.hair_length]
        if ch.hair_style:
            names.append(ch.hair_style)
        if not ex["closed_eyes"]:
            names.append(ch.eye_colour)
        names += list(ch.accessories)
        if fig.bikini:
            names += ["swimsuit", "bikini", "bare_shoulders"]
        elif framing == "upper_body" and ch.outfit != "dress":
            names += [t for t in ch.outfit_tags if "skirt" not in t]
        else:
            names += list(ch.outfit_tags)
        if fig.pose != "standing" or visible_to_leg:
            names.append(fig.pose)
        for key in ("smile", "open_mouth", "closed_eyes", "blush"):
            if ex[key] and not (key == "smile" and ex["open_mouth"]):
                names.append(key)
        if not ex["closed_eyes"]:
            names.append("looking_at_viewer")
    names.append(framing)
    if bg_kind == "white":
        names += ["simple_background", "white_background"]
    elif bg_kind == "simple":
        names += ["simple_background", bg_tag]
    elif bg_kind == "gradient":
        names += ["simple_background", "gradient_background"]
    else:
        names += ["outdoors", "sky", "day", "cloud", "blue_sky", "grass"] + (["tree"] if bg_tag == "tree" else [])
    seen: set[str] = set()
    tags = [Tag(t, GENERAL) for t in names if not (t in seen or seen.add(t))]
    tags += [Tag(s, COPYRIGHT) for s in dict.fromkeys(c.series for c in chars)]
    tags += [Tag(c.name, CHARACTER) for c in chars]

    # ---- rating and the hidden score formula (documented in the module doc)
    rating = "g"
    if any_bikini:
        rating = "q" if any_blush and rng.random() < 0.4 else "s"
    arr = np.asarray(img)
    colour = min(1.0, colourfulness(arr) / 100.0)
    pop = max(c.popularity for c in chars)
    acc = min(4, sum(len(c.accessories) for c in chars))
    racy = 1.0 if rating in ("s", "q") else 0.0
    log_bm = 3.2 + 1.8 * pop + 0.3 * acc + 1.5 * colour + 0.5 * racy + 0.3 * (n - 1) + rng.normal(0, 0.45)
    log_view = log_bm + 2.3 - 0.3 * racy + rng.normal(0, 0.3)
    sanity = {"g": 2, "s": 4, "q": 6}[rating]
    if rng.random() < 0.08:
        sanity = {2: 4, 4: int(rng.choice([2, 6])), 6: 4}[sanity]
    bookmark = int(round(math.exp(log_bm)))
    score = max(0, int(round(bookmark / 20 + rng.normal(0, 2))))
    meta = {
        "id": post_id, "file_ext": "jpg", "rating": rating, "score": score, "fav_count": int(round(1.3 * score)),
        "image_width": w, "image_height": h,
        "tags": [{"name": t.name, "category": t.category} for t in tags],
        "pixiv": {"bookmark_count": bookmark, "view_count": int(round(math.exp(log_view))), "sanity_level": sanity},
        "synthetic": True,
        "synthetic_hidden": {"popularity": round(pop, 4), "accessories": acc, "colourfulness": round(colour, 4),
                             "racy": int(racy), "extra_characters": n - 1},
    }
    return img, meta


def _render_one(post_id: int) -> dict[str, Any]:
    roster, cfg, image_root = _WORKER["roster"], _WORKER["cfg"], _WORKER["image_root"]
    img, meta = sample_post(post_id, roster, cfg)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=cfg.jpeg_quality)
    data = buf.getvalue()
    meta["md5"] = hashlib.md5(data).hexdigest()
    post = Post(id=post_id, md5=meta["md5"], file_ext="jpg", rating=meta["rating"])
    path = Path(image_root) / layout_path(post, "danbooru2021")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return meta


# ----------------------------------------------------------------------------------- whole set

def post_ids(n: int) -> list[int]:
    """Ids of the generated posts (1..n, like a fresh Danbooru)."""
    return list(range(1, n + 1))


def generate(cfg: SyntheticDataConfig, out_dir: str | os.PathLike, vocab=None, workers: int | None = None) -> dict[str, Any]:
    """Write the synthetic set described by ``cfg`` into ``out_dir`` (which must not exist yet).

    Layout: ``metadata/posts.jsonl`` (Danbooru2021 form), ``original/<id % 1000:04d>/<id>.jpg``
    and ``dataset.json`` (``"synthetic": true``, config, roster, timing). Returns ``dataset.json``'s content.
    """
    from acg2vec_lab.data.vocab import load_vocabulary
    from acg2vec_lab.io import write_json

    vocab = vocab or load_vocabulary()
    out_dir = Path(out_dir)
    roster = build_roster(vocab, cfg.n_series, cfg.characters_per_series, cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=False)
    image_root = out_dir / "original"
    image_root.mkdir()
    ids = post_ids(cfg.n_images)
    workers = workers if workers is not None else (cfg.workers or os.cpu_count() or 1)
    t0 = time.perf_counter()
    if workers <= 1 or len(ids) < 8 * workers:
        _init_worker(roster, cfg, str(image_root))
        metas = [_render_one(i) for i in ids]
    else:
        import multiprocessing as mp

        # fork: workers only use numpy + PIL, and it needs no `if __name__ == "__main__"` guard in
        # the caller's script (spawn would re-run it); other platforms fall back to spawn.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(roster, cfg, str(image_root))) as pool:
            metas = pool.map(_render_one, ids, chunksize=max(8, len(ids) // (workers * 8)))
    seconds = time.perf_counter() - t0
    for m in metas:  # every generated tag must be real, with its real category
        for t in m["tags"]:
            vocab.check(Tag(t["name"], int(t["category"])))
    (out_dir / "metadata").mkdir()
    with open(out_dir / "metadata" / "posts.jsonl", "w", encoding="utf-8") as f:
        for m in metas:
            f.write(json.dumps(m, ensure_ascii=False) + "\n")
    desc = {
        "synthetic": True,
        "description": "SYNTHETIC Danbooru-format set: drawn characters with real Danbooru tag names "
                       "(acg2vec_lab.data.synthetic). Not real Danbooru posts.",
        "generator_version": GENERATOR_VERSION,
        "layout": "danbooru2021",
        "val_fraction": cfg.val_fraction,
        "test_fraction": cfg.test_fraction,
        "config": dataclasses.asdict(cfg),
        "roster": [dataclasses.asdict(c) for c in roster],
        "n_posts": len(metas),
        "generation_seconds": round(seconds, 3),
        "workers": workers,
        "images_per_second": round(len(metas) / max(seconds, 1e-9), 2),
    }
    write_json(out_dir / "dataset.json", desc)
    return desc


def dataset_dir_name(cfg: SyntheticDataConfig, variant: str) -> str:
    blob = json.dumps({"cfg": dataclasses.asdict(cfg), "v": GENERATOR_VERSION, "roster": ROSTER}, sort_keys=True)
    return f"synthetic-danbooru-{variant}-seed{cfg.seed}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def ensure_generated(cfg: SyntheticDataConfig, variant: str, root: str | os.PathLike | None = None, vocab=None) -> Path:
    """The folder of the set for ``cfg``, generating it once (temp folder + atomic rename).

    An interrupted generation leaves only a ``.tmp-*`` folder, which never counts as present (and is
    removed by the next call once it is older than an hour)."""
    from acg2vec_lab.paths import cache_dir

    base = Path(root) if root is not None else cache_dir("data")
    base.mkdir(parents=True, exist_ok=True)
    final = base / dataset_dir_name(cfg, variant)
    if (final / "dataset.json").is_file():
        return final
    for stale in base.glob(f".tmp-{final.name}-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = base / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        generate(cfg, tmp, vocab=vocab)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "dataset.json").is_file():  # not a concurrent winner: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def synthetic_dataset(profile: str | None = None, root: str | os.PathLike | None = None, **overrides: Any) -> DanbooruDataset:
    """The synthetic Danbooru-format set for ``profile`` (sizes from ``configs/data/<variant>.json``).

    Generated once into the cache (``$ACG2VEC_CACHE/data/synthetic-danbooru-...``) and then read back.
    ``overrides`` replace config fields (e.g. ``n_images=50``).
    """
    from acg2vec_lab.config import load_config, variant_for

    cfg = load_config("data", profile, **overrides)
    variant = variant_for(profile)
    folder = ensure_generated(cfg, variant, root)
    return DanbooruDataset.from_folder(folder)
