"""e5's text prefixes, chosen per pair kind and side.

multilingual-e5 was trained with ``"query: "`` / ``"passage: "`` in front of every text; its model card
asks for ``"query: "`` on both sides of a symmetric task (semantic similarity, bitext mining, paraphrase
retrieval) and ``"query: "`` / ``"passage: "`` for an asymmetric one (a short query finds a longer or
different kind of text). The schemes:

* ``"e5"`` (default): per pair kind, by that rule. Titles across languages, a title and its alias, and two
  characters of one work are the same kind of text (symmetric: ``query:`` both sides); a tag or a character
  name looking for a work is a query and the work's title its passage; a title looking for its summary is
  the query, the summary the passage.
* ``"query"``: ``"query: "`` everywhere (what this workbook used before; symmetric for every task).
* ``"none"``: no prefix (what a base other than e5 gets, and the ablation).

Each side of a kind keeps its prefix whichever way a task ranks (work -> characters uses the same
prefixes as character -> work), so training and evaluation see one text the same way.
"""
from __future__ import annotations

QUERY = "query: "
PASSAGE = "passage: "
SCHEMES = ("e5", "query", "none")

# kind -> (prefix of text_a, prefix of text_b) in the "e5" scheme; text_a is always the work's title
# except for char_char (two character names)
E5_SIDES: dict[str, tuple[str, str]] = {
    "title_title": (QUERY, QUERY),
    "title_alias": (QUERY, QUERY),
    "title_tag": (PASSAGE, QUERY),
    "title_summary": (QUERY, PASSAGE),
    "char_work": (PASSAGE, QUERY),
    "char_char": (QUERY, QUERY),
}


def sides(scheme: str, kind: str) -> tuple[str, str]:
    """``(prefix of text_a, prefix of text_b)`` of a pair ``kind`` under ``scheme``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown prefix scheme {scheme!r}; use one of {SCHEMES}")
    if kind not in E5_SIDES:
        raise ValueError(f"unknown pair kind {kind!r}; known: {tuple(E5_SIDES)}")
    if scheme == "none":
        return "", ""
    if scheme == "query":
        return QUERY, QUERY
    return E5_SIDES[kind]


def table() -> list[dict[str, str]]:
    """The e5 scheme as rows (kind, text_a prefix, text_b prefix) for the notebook."""
    return [{"kind": k, "text_a": a.strip() or "-", "text_b": b.strip() or "-"} for k, (a, b) in E5_SIDES.items()]
