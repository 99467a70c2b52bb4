"""Batch tagging: decode + resize in worker threads overlapping the model, results written as they come.

One call of :func:`tag_images` = one model load (the caller passes a loaded :class:`Tagger`). Images
are decoded and preprocessed by a thread pool (PIL, TensorFlow's resize and scikit-image release the
GIL) while the model runs on the previous batch; ``prefetch`` batches are kept in flight. Each
image's output is written atomically right after its batch, so an interrupted run keeps its work and
a rerun skips the images whose output already exists. A file that cannot be read is reported and
skipped; the run never aborts because of one image.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab import progress as _progress
from acg2vec_lab.tagging.base import Tagger
from acg2vec_lab.tagging.format import Writer
from acg2vec_lab.tagging.thresholds import TaggedTag, ThresholdPolicy, select_tags

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def find_images(inputs: Sequence[str | os.PathLike], recursive: bool = True,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Files given directly, plus image files (by extension) inside given folders, sorted, no duplicates."""
    out: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            found = sorted(f for f in it if f.is_file() and f.suffix.lower() in extensions and not f.name.startswith("."))
        elif p.exists():
            found = [p]
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
        for f in found:
            if f not in seen:
                seen.add(f)
                out.append(f)
    return out


@dataclasses.dataclass
class TagResult:
    path: Path
    tags: list[TaggedTag]
    output: Path | None


@dataclasses.dataclass
class TagSummary:
    """What one run did (printed as JSON by the CLI)."""

    model: str
    total: int = 0
    tagged: int = 0
    skipped_done: int = 0
    failed: int = 0
    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    model_seconds: float = 0.0
    images_per_s: float = 0.0
    first_result_s: float | None = None
    outputs: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self, max_outputs: int = 20) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["outputs"] = self.outputs[:max_outputs]
        d["n_outputs"] = len(self.outputs)
        return d


def _load_and_preprocess(tagger: Tagger, path: Path, loader: Callable[[Path], Any]) -> np.ndarray:
    return tagger.preprocess(loader(path))


def _default_loader(path: Path) -> Any:
    try:
        from acg2vec_lab.data import load_image  # the project's robust loader (names the file on errors)
    except ImportError:  # pragma: no cover - before the data package lands
        from PIL import Image

        def load_image(p):
            with Image.open(p) as im:
                return im.convert("RGB")
    return load_image(path)


def tag_images(tagger: Tagger, paths: Sequence[str | os.PathLike], writer: Writer | None = None,
               policy: ThresholdPolicy | None = None, batch_size: int = 8, workers: int = 2, prefetch: int = 2,
               progress: bool = True, resume: bool = True, loader: Callable[[Path], Any] | None = None,
               on_result: Callable[[TagResult, np.ndarray], None] | None = None,
               policy_for: Callable[[np.ndarray], ThresholdPolicy] | None = None) -> TagSummary:
    """Tag ``paths`` in batches and write each result as soon as its batch is done.

    Args:
        tagger: a loaded :class:`Tagger` (loaded once by the caller).
        paths: image files (see :func:`find_images` for folders).
        writer: output writer (``None`` = compute only; results go to ``on_result``).
        policy: thresholds, cap, exclusions.
        batch_size: images per model call; the last batch may be smaller (dynamic batch).
        workers: decode/resize threads; ``prefetch`` batches are prepared ahead of the model.
        resume: skip images whose output already exists.
        loader: ``path -> what tagger.preprocess takes``; default the tagger's own ``loader`` method when it
            has one (DeepDanbooru's exact ``"deepdanbooru"`` mode decodes the encoded file as the original
            does), else :func:`acg2vec_lab.data.load_image` (PIL RGB, transparency on white).
        on_result: called with each :class:`TagResult` and the image's probability vector.
        policy_for: a per-image policy from its probability vector (MCut:
            :func:`acg2vec_lab.tagging.thresholds.mcut_policy`); ``None`` = ``policy`` for every image.
    Returns:
        a :class:`TagSummary` (counts, errors with file and message, images/s, time to first result).
    """
    t0 = time.perf_counter()
    loader = loader or getattr(tagger, "loader", None) or _default_loader
    policy = policy or ThresholdPolicy()
    paths = [Path(p) for p in paths]
    summary = TagSummary(model=getattr(tagger, "name", type(tagger).__name__), total=len(paths))
    todo = []
    for p in paths:
        if resume and writer is not None and writer.is_done(p):
            summary.skipped_done += 1
        else:
            todo.append(p)
    bar = _progress.bar(total=len(todo), desc=f"tag {summary.model}", unit="img") if progress else None
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="tag-decode") as pool:
        pending: deque[list[tuple[Path, Future]]] = deque()
        it = iter(batches)

        def submit_next() -> None:
            batch = next(it, None)
            if batch is not None:
                pending.append([(p, pool.submit(_load_and_preprocess, tagger, p, loader)) for p in batch])

        for _ in range(max(prefetch, 1)):
            submit_next()
        while pending:
            batch = pending.popleft()
            submit_next()  # keep `prefetch` batches decoding while the model runs
            ok_paths, arrays = [], []
            for p, fut in batch:
                try:
                    arrays.append(fut.result())
                    ok_paths.append(p)
                except Exception as exc:  # a bad file is reported and skipped, never fatal
                    summary.failed += 1
                    summary.errors.append({"file": str(p), "error": f"{type(exc).__name__}: {exc}"})
            if arrays:
                tm = time.perf_counter()
                probs = tagger.predict(np.stack(arrays))
                summary.model_seconds += time.perf_counter() - tm
                for p, row in zip(ok_paths, probs):
                    pol = policy_for(row) if policy_for is not None else policy
                    tags = select_tags(row, tagger.tags, tagger.categories, pol)
                    out = writer.write(p, tags) if writer is not None else None
                    if out is not None:
                        summary.outputs.append(str(out))
                    summary.tagged += 1
                    if summary.first_result_s is None:
                        summary.first_result_s = time.perf_counter() - t0
                    if on_result is not None:
                        on_result(TagResult(p, tags, out), row)
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    summary.images_per_s = summary.tagged / summary.seconds if summary.seconds > 0 else 0.0
    return summary


def predict_paths(tagger: Tagger, paths: Sequence[str | os.PathLike], batch_size: int = 8, workers: int = 2,
                  loader: Callable[[Path], Any] | None = None) -> tuple[np.ndarray, list[Path], list[dict[str, str]]]:
    """Probabilities ``(N_ok, n_tags)`` of every readable image, its paths, and the errors (no writing)."""
    rows: list[np.ndarray] = []
    ok: list[Path] = []

    def keep(res: TagResult, row: np.ndarray) -> None:
        rows.append(row)
        ok.append(res.path)

    s = tag_images(tagger, paths, None, ThresholdPolicy(), batch_size, workers, progress=False,
                   resume=False, loader=loader, on_result=keep)
    probs = np.stack(rows) if rows else np.zeros((0, len(tagger.tags)), np.float32)
    return probs, ok, s.errors
