"""Real anime-style art: the sprites and backgrounds of the Ren'Py demo game "The Question".

The Debian package ``renpy-thequestion`` (Expat licence; fetched by :mod:`acg2vec_lab.assets` as
``renpy_thequestion``) ships 8 hand-drawn RGBA sprites of Sylvie, named
``sylvie <outfit> <expression>.png`` (outfits blue / green; expressions normal, smile, giggle,
surprised), and 4 drawn backgrounds ``bg <scene>.jpg`` (1280x720). The labels come from the file
names; there are no Danbooru tags. Sprites are composited on white (their alpha) by
:func:`acg2vec_lab.data.load_image`; backgrounds are returned as they are.
"""
from __future__ import annotations

from pathlib import Path

IMAGES_DIR = "usr/share/games/renpy/the_question/game/images"
KINDS = ("sprite", "background")


def parse_name(path: str | Path) -> dict:
    """Labels from a Ren'Py image file name (``"sylvie blue smile.png"``, ``"bg club.jpg"``)."""
    path = Path(path)
    words = path.stem.split()
    if not words:
        raise ValueError(f"{path.name}: empty Ren'Py image name")
    if words[0] == "bg":
        return {"kind": "background", "character": None, "outfit": None, "expression": None,
                "scene": " ".join(words[1:]) or None, "file": path.name}
    if len(words) == 3:
        character, outfit, expression = words
    elif len(words) == 2:
        (character, expression), outfit = words, None
    else:
        raise ValueError(f"{path.name}: expected '<character> [outfit] <expression>' or 'bg <scene>'")
    return {"kind": "sprite", "character": character, "outfit": outfit, "expression": expression,
            "scene": None, "file": path.name}


def renpy_image_paths(kind: str | None = None) -> list[tuple[Path, dict]]:
    """``[(path, labels), ...]`` of the fetched images (sprites first, each group sorted by name)."""
    from acg2vec_lab import assets

    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, not {kind!r}")
    folder = assets.fetch("renpy_thequestion") / IMAGES_DIR
    items = [(p, parse_name(p)) for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")]
    items.sort(key=lambda it: (KINDS.index(it[1]["kind"]), it[0].name))
    return [it for it in items if kind is None or it[1]["kind"] == kind]


def renpy_images(kind: str | None = None) -> list[tuple[object, dict]]:
    """``[(PIL RGB image, labels), ...]``: labels has kind (sprite|background), character, outfit,
    expression, scene and file. Sprites are composited on white; backgrounds are unchanged."""
    from acg2vec_lab.data.images import load_image

    return [(load_image(path), labels) for path, labels in renpy_image_paths(kind)]
