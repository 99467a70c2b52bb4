"""Notebook prose states no result numbers: results shown in text come from a code cell that renders them.

A number written into a markdown cell does not change when the code's result does, so it drifts.
The rule, kept simple on purpose, scans the markdown cells of every ``notebooks/NN_*.py`` source
(py:percent cells starting ``# %% [markdown]``) and flags anything that reads like a measurement:

* a decimal number (``0.287``, ``26.25``);
* a percentage (``64 %``, ``4.9%``);
* a value in dB (``31.18 dB``);
* a speed-up or size ratio (``3x faster``, ``2.5 times smaller``);
* a runtime (``~3 min``, ``8-10 min``, ``30 s``, ``<10 minutes``, ``2 h``, ``40 ms``).

Not flagged, because they are facts of the architecture or data format, not results: integers with
units or separators (``512 px``, ``1024-d``, ``9,176 tags``, ``3x3``, ``2x/3x/4x``), layer names
(``activation_96``), and anything inside an inline code span or fenced code block (a literal copied
from code or a config: ``lr = `1e-5` ``, threshold `` `0.35` ``). A result a reader should see goes
into a code cell, e.g. ``display(Markdown(f"F1 {f1:.3f}"))``, which this test does not scan.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))

_NUM = r"\d+(?:[.,]\d+)?"
RULES = {
    "decimal": re.compile(r"(?<![\w.-])\d+\.\d+(?![\w.])"),  # not a version inside a name (CC-BY-4.0)
    "percentage": re.compile(rf"(?<![\w.]){_NUM}\s?%"),
    "dB": re.compile(rf"(?<![\w.]){_NUM}\s?dB\b"),
    "ratio": re.compile(rf"(?<![\w.]){_NUM}\s?(?:x|×|times)\s+(?:faster|slower|smaller|larger|bigger|fewer|more|less)\b",
                        re.IGNORECASE),
    "runtime": re.compile(rf"(?<![\w.])[~<>≈]?\s?{_NUM}(?:\s?(?:-|–|to)\s?{_NUM})?\s?"
                          r"(?:ms|s|sec|secs|seconds?|min|mins|minutes?|h|hrs?|hours?)(?![\w/-])"),
}
CODE_SPAN = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def markdown_cells(source: str) -> list[tuple[int, str]]:
    """``(first line number, text)`` of each markdown cell of a py:percent notebook (comment marks removed)."""
    cells, current, start = [], None, 0
    for n, line in enumerate(source.splitlines(), 1):
        if line.startswith("# %%"):
            if current is not None:
                cells.append((start, "\n".join(current)))
            is_md = re.match(r"# %%.*\[(markdown|md)\]", line) is not None
            current, start = ([] if is_md else None), n + 1
        elif current is not None:
            current.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if current is not None:
        cells.append((start, "\n".join(current)))
    return cells


def result_like_numbers(text: str) -> list[tuple[str, str]]:
    """``(rule, matched text)`` for every result-like number in ``text`` outside code spans."""
    text = CODE_SPAN.sub(lambda m: " " * len(m.group()), text)
    return [(rule, m.group().strip()) for rule, rx in RULES.items() for m in rx.finditer(text)]


def findings(path: Path) -> list[str]:
    out = []
    for start, text in markdown_cells(path.read_text(encoding="utf-8")):
        for offset, line in enumerate(text.splitlines()):
            out += [f"{path.name}:{start + offset}: {rule} {hit!r}: {line.strip()[:90]}"
                    for rule, hit in result_like_numbers(line)]
    return out


@pytest.mark.parametrize("text, rules", [
    ("zero-shot P@5 is 0.287 against 0.720", ["decimal", "decimal"]),
    ("PSNR 26.25 vs 26.76 dB", ["decimal", "decimal", "dB"]),
    ("differ on 64 % of pixels", ["percentage"]),
    ("IVF is 3x faster", ["ratio"]),
    ("About ~3 min in smoke, 8-10 min in cpu, 30 s to load", ["runtime", "runtime", "runtime"]),
])
def test_the_rule_flags_results(text, rules):
    assert sorted(r for r, _ in result_like_numbers(text)) == sorted(rules)


@pytest.mark.parametrize("text", [
    "512 px input, a 1024-d cut of 16x16x1024 after activation_96",
    "9,176 tags; 3x3 convolutions; Real-CUGAN 2x/3x/4x; blocks 31/43; ViT-B/16; licence CC-BY-4.0",
    "trunk lr `1e-5`, threshold `0.35`, see `runs/latest`",
    "```\nF1 0.42\n```",
    "## 8. Splits and the leak check (section 2, step 3)",
])
def test_the_rule_allows_architecture_constants(text):
    assert result_like_numbers(text) == []


def test_markdown_cells_are_found():
    src = "# %% [markdown]\n# # Title 0.5\n\n# %%\nx = 0.5\n# %% [markdown]\n# b 12 %\n"
    assert markdown_cells(src) == [(2, "# Title 0.5\n"), (7, "b 12 %")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_markdown_states_no_uncomputed_results(path):
    found = findings(path)
    assert not found, ("result-like numbers in markdown (compute them in a code cell and render them, "
                       "or remove them):\n" + "\n".join(found))
