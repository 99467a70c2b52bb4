"""Text normalisation and script-based language guess shared by the text-pair builders.

A leaf module (standard library only) so that :mod:`acg2vec_lab.data.text_pairs` and
:mod:`acg2vec_lab.data.characters` can both use it without importing each other.
"""
from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")


def normalize(text: object) -> str:
    """NFKC, whitespace runs collapsed to one space, stripped ("" for non-strings)."""
    if not isinstance(text, str):
        return ""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def script_lang(text: str) -> str:
    """Guess a language label from the script: ja (kana), ko (Hangul), zh (Han), latn, other."""
    kana = han = hangul = latin = 0
    for ch in text:
        o = ord(ch)
        if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9D:
            kana += 1
        elif 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
            han += 1
        elif 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF:
            hangul += 1
        elif ch.isascii() and ch.isalpha() or unicodedata.category(ch).startswith("L") and o < 0x250:
            latin += 1
    if kana:
        return "ja"
    if hangul:
        return "ko"
    if han:
        return "zh"
    if latin:
        return "latn"
    return "other"
