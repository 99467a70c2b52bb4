"""Output formats for tagged images: caption ``.txt``, hydrus ``name.ext.txt``, JSON, CSV.

Every writer is atomic per image (a reader or an interrupted run never sees half a file) and knows
which images are already done, so a rerun resumes.

* ``txt``: ``<stem>.txt`` beside the image (or in ``output_dir``), one line, tags comma-separated in
  caption spelling (underscores -> spaces except in kaomoji, brackets escaped, trigger word first).
* ``hydrus``: ``<name>.<ext>.txt``, one tag per line (hydrus' sidecar import format).
* ``json``: ``<name>.<ext>.json`` with every kept tag, its score and category, plus the rating.
* ``csv``: one ``tags.csv`` for the run (``file, tags, rating``), a line appended per image. A
  rerun first cuts a torn last line (a run killed mid-line, a full disk) and drops duplicate rows, so
  every image has exactly one complete row; the torn image is then tagged again.

A run killed mid-write leaves a hidden ``.<sidecar>.<pid>-*.part``; :meth:`Writer.remove_stale_parts`
(called by ``acg2vec-lab tag`` before it starts) removes the ones of dead processes.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from acg2vec_lab.io import append_line, remove_stale_parts, write_bytes, write_text
from acg2vec_lab.tagging.categories import CATEGORY_NAMES, CATEGORY_RATING
from acg2vec_lab.tagging.thresholds import TaggedTag

FORMATS = ("txt", "hydrus", "json", "csv")

# Danbooru kaomoji tags whose underscores are part of the face. Beyond this list, a tag with no run
# of two or more letters/digits (``^_^``, ``>_o``, ``3_3``, ``x_x``) is treated as a kaomoji too.
KAOMOJI = frozenset({
    "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9", ">_o",
    "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||", "-_-", ";_;", "t_t", "v_v", "^_^;", "q_q",
})
_WORDISH = re.compile(r"[A-Za-z0-9]{2,}")


def is_kaomoji(tag: str) -> bool:
    """True for emoticon tags whose underscores must be kept (``^_^``, ``>_<``, ``o_o``)."""
    return tag in KAOMOJI or ("_" in tag and not _WORDISH.search(tag))


def caption_tag(tag: str, underscores: bool = False, escape: bool = True) -> str:
    """One tag in caption spelling.

    Args:
        tag: Danbooru spelling, e.g. ``long_hair``, ``^_^``, ``ganyu_(genshin_impact)``.
        underscores: keep underscores (``True``) or turn them into spaces except in kaomoji.
        escape: backslash-escape ``(`` and ``)`` (prompt syntax of the diffusion UIs).
    """
    out = tag if (underscores or is_kaomoji(tag)) else tag.replace("_", " ")
    if escape:
        out = out.replace("(", r"\(").replace(")", r"\)")
    return out


def caption(tags: Sequence[TaggedTag], trigger: str | None = None, underscores: bool = False,
            escape: bool = True, include_rating: bool = False, sep: str = ", ") -> str:
    """The ``.txt`` caption line: optional trigger word, then tags by confidence (already sorted)."""
    names = [caption_tag(t.name, underscores, escape) for t in tags
             if include_rating or t.category != CATEGORY_RATING]
    if trigger:
        names.insert(0, trigger)
    return sep.join(names)


def sidecar_path(image: str | os.PathLike, fmt: str, output_dir: str | os.PathLike | None = None,
                 root: str | os.PathLike | None = None) -> Path:
    """Where the sidecar of ``image`` goes for format ``fmt`` (not used for ``csv``).

    With ``output_dir``, the image's path relative to ``root`` is mirrored below it.
    """
    image = Path(image)
    folder = image.parent
    if output_dir is not None:
        rel = image.parent.relative_to(root) if root is not None and image.is_relative_to(root) else Path()
        folder = Path(output_dir) / rel
    if fmt == "txt":
        return folder / f"{image.stem}.txt"
    if fmt == "hydrus":
        return folder / f"{image.name}.txt"
    if fmt == "json":
        return folder / f"{image.name}.json"
    raise ValueError(f"format {fmt!r} has no per-image sidecar; choose one of txt, hydrus, json")


class Writer:
    """Writes one image's tags in one format, atomically, and says whether an image is done.

    Args:
        fmt: ``txt``, ``hydrus``, ``json`` or ``csv``.
        output_dir: where outputs go (default: beside each image; ``csv``: the first input folder).
        root: the input folder, mirrored under ``output_dir``.
        trigger, underscores, escape, include_rating: caption options (``txt``/``hydrus``).
    """

    def __init__(self, fmt: str, output_dir: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
                 trigger: str | None = None, underscores: bool = False, escape: bool = True,
                 include_rating: bool = False, csv_path: str | os.PathLike | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.root = Path(root) if root is not None else None
        self.trigger, self.underscores, self.escape, self.include_rating = trigger, underscores, escape, include_rating
        self.csv_path = None
        self._done_csv: set[str] = set()
        if fmt == "csv":
            base = self.output_dir or self.root or Path.cwd()
            self.csv_path = Path(csv_path) if csv_path else base / "tags.csv"
            self._done_csv = repair_csv(self.csv_path)

    def remove_stale_parts(self, images: Iterable[str | os.PathLike]) -> list[Path]:
        """Remove the part files that killed runs left for this format's outputs of ``images``."""
        if self.fmt == "csv":
            return remove_stale_parts(self.csv_path.parent, {self.csv_path.name})
        suffix = ".json" if self.fmt == "json" else ".txt"
        folders = {self.output_for(p).parent for p in images}
        return [r for d in sorted(folders) for r in remove_stale_parts(d, lambda n: n.endswith(suffix))]

    def output_for(self, image: str | os.PathLike) -> Path:
        return self.csv_path if self.fmt == "csv" else sidecar_path(image, self.fmt, self.output_dir, self.root)

    def is_done(self, image: str | os.PathLike) -> bool:
        if self.fmt == "csv":
            return str(image) in self._done_csv
        return sidecar_path(image, self.fmt, self.output_dir, self.root).exists()

    def write(self, image: str | os.PathLike, tags: Sequence[TaggedTag]) -> Path:
        image = Path(image)
        if self.fmt == "txt":
            text = caption(tags, self.trigger, self.underscores, self.escape, self.include_rating) + "\n"
        elif self.fmt == "hydrus":
            names = [caption_tag(t.name, self.underscores, escape=False) for t in tags
                     if self.include_rating or t.category != CATEGORY_RATING]
            if self.trigger:
                names.insert(0, self.trigger)
            text = "\n".join(names) + "\n"
        elif self.fmt == "json":
            rating = [t for t in tags if t.category == CATEGORY_RATING]
            obj = {
                "file": str(image),
                "tags": [{"name": t.name, "score": round(t.score, 6), "category": CATEGORY_NAMES.get(t.category, str(t.category))}
                         for t in tags if t.category != CATEGORY_RATING],
                "rating": {"name": rating[0].name, "score": round(rating[0].score, 6)} if rating else None,
            }
            text = json.dumps(obj, ensure_ascii=False, indent=1) + "\n"
        else:  # csv: one appended line (a single small write is atomic on POSIX)
            buf = io.StringIO()
            rating = next((t.name for t in tags if t.category == CATEGORY_RATING), "")
            csv.writer(buf, lineterminator="").writerow(
                [str(image), caption(tags, self.trigger, self.underscores, self.escape, False), rating])
            append_line(self.csv_path, buf.getvalue())
            self._done_csv.add(str(image))
            return self.csv_path
        path = self.output_for(image)
        write_text(path, text)
        return path


CSV_HEADER = "file,tags,rating"


def repair_csv(path: str | os.PathLike) -> set[str]:
    """Make the appended ``tags.csv`` at ``path`` whole again and return the files it holds.

    A missing or empty file gets its header. A last line without its newline (the run was killed or
    the disk filled mid-line) is cut off, rows without all three fields are dropped and only the
    first row of a file is kept; when any of that changed the file, it is rewritten atomically.
    """
    path = Path(path)
    raw = path.read_bytes() if path.exists() else b""
    if not raw.strip():
        if path.exists():
            path.unlink()
        append_line(path, CSV_HEADER)
        return set()
    text = raw.decode("utf-8", errors="replace")
    keep = text if text.endswith("\n") else text[:text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(keep)))
    if not rows or rows[0] != CSV_HEADER.split(","):
        raise ValueError(f"{path}: not a tags.csv written by this tool (first line {text.splitlines()[0]!r}, "
                         f"expected {CSV_HEADER!r}); move it away or pass another --output-dir")
    done: set[str] = set()
    good = [rows[0]]
    for row in rows[1:]:
        if len(row) == 3 and row[0] and row[0] not in done:
            done.add(row[0])
            good.append(row)
    if keep != text or len(good) != len(rows):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(good)
        write_bytes(path, buf.getvalue().encode("utf-8"))
    return done


def read_caption(path: str | os.PathLike) -> list[str]:
    """Tags of a ``txt`` caption (comma-separated) or a hydrus sidecar (one per line).

    A sidecar that is not UTF-8 text (or holds a NUL byte) is a ``ValueError`` naming the file and
    the line, not a bare ``UnicodeDecodeError``."""
    from acg2vec_lab.io_safety import read_text_file

    text = read_text_file(path, ValueError, "caption sidecar")
    if "\x00" in text:
        raise ValueError(f"{path}:{text.count(chr(10), 0, text.index(chr(0))) + 1}: a NUL byte in a caption sidecar")
    text = text.strip()
    if "\n" in text or ", " not in text:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [t.strip() for t in text.split(", ") if t.strip()]
