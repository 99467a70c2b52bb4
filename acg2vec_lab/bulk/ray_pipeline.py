"""``embed-image`` / ``tag`` over millions of files: a Ray Data pipeline writing resumable Parquet shards.

The file list (:func:`acg2vec_lab.tagging.pipeline.find_images`, as ``tag`` collects it) is cut, in
sorted order, into fixed shards of ``shard_size`` files. All shards not yet written go through ONE
``ray.data`` dataset: ``map_batches`` with a callable class that loads the model once per actor
(``concurrency`` actors, one per CPU slot, or ``num_gpus`` each) and turns every input row into exactly
one output row, so the driver knows when a shard is complete and writes it, atomically, as
``shard-NNNNN.parquet``:

* embed: ``id`` (the file path), ``vector`` (float32 list of ``dim``), ``error`` (null when read);
* tag: ``id``, ``tags`` (list of names), ``scores`` (list of float32, same order), ``error``.

A bad image is an error row (file and message), never fatal. A rerun skips the shards whose Parquet
exists, so a killed run resumes with no duplicates and no holes; ``manifest.json`` pins the file list
and the model, and a rerun with other inputs is refused. The model objects are the single-process
commands' own (the :mod:`acg2vec_lab.embedders` registry, :func:`acg2vec_lab.models.load_tagger`), so
the vectors are the same. :func:`load_index` reads the shards into the project's faiss
:class:`~acg2vec_lab.retrieval.index.VectorIndex`.

GPU: ``num_gpus=1`` gives each actor one GPU (Ray sets ``CUDA_VISIBLE_DEVICES``, and the embedder /
tagger places itself on ``cuda`` as in the plain commands); ``concurrency`` is then the number of GPUs.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.commands._resume import inputs_digest
from acg2vec_lab.io import atomic_path, remove_stale_parts
from acg2vec_lab.tagging.pipeline import find_images

MANIFEST = "manifest.json"


class BulkError(ValueError):
    """A bulk run that cannot start (other inputs than the folder's manifest, bad arguments)."""


@dataclasses.dataclass
class BulkSummary:
    """What one run did: shards in total / written now / skipped (already there), images, errors."""

    out: str
    shards: int
    written: int
    skipped: int
    images: int
    errors: list[dict[str, str]]
    seconds: float

    @property
    def images_per_s(self) -> float:
        """Images of the shards written now per wall-clock second (Ray start-up excluded)."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


def shard_path(out: str | os.PathLike, i: int) -> Path:
    """``out/shard-NNNNN.parquet``: shard ``i``'s file."""
    return Path(out) / f"shard-{i:05d}.parquet"


def make_shards(paths: Sequence[str | os.PathLike], shard_size: int) -> list[list[str]]:
    """``paths`` sorted and deduplicated, cut into consecutive shards of ``shard_size`` (the last may be shorter)."""
    if shard_size < 1:
        raise BulkError(f"shard_size must be at least 1, got {shard_size}")
    files = sorted({str(p) for p in paths})
    return [files[i:i + shard_size] for i in range(0, len(files), shard_size)]


def collect(inputs: Sequence[str | os.PathLike], recursive: bool = True) -> list[str]:
    """The image files of ``inputs`` (files and folders), as ``tag`` and ``embed-image`` take them, sorted."""
    return sorted(str(p) for p in find_images(inputs, recursive=recursive))


class EmbedBatch:
    """Ray actor: one registry embedder, loaded once; a batch of paths -> vectors and error rows."""

    def __init__(self, model: str, profile: str, normalize: bool = False) -> None:
        from acg2vec_lab.embedders import get

        self.emb = get(model, profile)
        self.normalize = normalize

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"path", "shard"}`` -> ``{"path", "shard", "vector" (N, dim) float32, "error"}``, one row per input."""
        from acg2vec_lab.data.images import ImageLoadError, load_image
        from acg2vec_lab.retrieval.metrics import l2_normalize

        images, ok, errors = [], [], []
        for path in batch["path"]:
            try:
                images.append(load_image(str(path)))
                ok.append(True)
                errors.append("")
            except (ImageLoadError, OSError) as exc:
                ok.append(False)
                errors.append(str(exc))
        vecs = np.zeros((len(ok), self.emb.dim), np.float32)
        if images:
            got = np.asarray(self.emb.encode(images), dtype=np.float32)
            vecs[np.asarray(ok)] = l2_normalize(got) if self.normalize else got
        return {"path": batch["path"], "shard": batch["shard"], "vector": vecs, "error": np.asarray(errors, dtype=object)}


class TagBatch:
    """Ray actor: one tagger (:func:`acg2vec_lab.models.load_tagger`), loaded once; paths -> tags and scores."""

    def __init__(self, model: str, profile: str, policy: Any, load_kwargs: dict[str, Any]) -> None:
        from acg2vec_lab.models import load_tagger

        self.tagger = load_tagger(model, profile, **load_kwargs)
        self.policy = policy

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"path", "shard"}`` -> ``{"path", "shard", "tags", "scores", "error"}``: tags/scores as JSON lists."""
        from acg2vec_lab.tagging.pipeline import predict_paths
        from acg2vec_lab.tagging.thresholds import select_tags

        paths = [str(p) for p in batch["path"]]
        probs, ok, errs = predict_paths(self.tagger, paths, batch_size=len(paths), workers=1)
        by_path = {str(p): row for p, row in zip(ok, probs)}
        err_of = {e["file"]: e["error"] for e in errs}
        tags, scores, errors = [], [], []
        for p in paths:
            chosen = select_tags(by_path[p], self.tagger.tags, self.tagger.categories, self.policy) if p in by_path else []
            tags.append(json.dumps([t.name for t in chosen]))
            scores.append(json.dumps([float(t.score) for t in chosen]))
            errors.append("" if p in by_path else err_of.get(p, "not tagged"))
        return {"path": batch["path"], "shard": batch["shard"], "tags": np.asarray(tags, dtype=object),
                "scores": np.asarray(scores, dtype=object), "error": np.asarray(errors, dtype=object)}


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """``ray.init(address=...)`` on a cluster when ``address`` is given, else a local Ray on this machine's CPUs.

    Returns the ``ray`` module. Already initialised: left as it is (a test's one session).
    """
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return ray


def _table(rows: list[dict[str, Any]], task: str, dim: int | None) -> Any:
    """One shard's rows (in file order) as a pyarrow table of the module doc's columns."""
    import pyarrow as pa

    ids = [r["path"] for r in rows]
    errors = [r["error"] or None for r in rows]
    cols: dict[str, Any] = {"id": pa.array(ids, pa.string())}
    if task == "embed":
        vecs = [None if r["error"] else np.asarray(r["vector"], np.float32) for r in rows]
        cols["vector"] = pa.array(vecs, pa.list_(pa.float32(), dim))
    else:
        cols["tags"] = pa.array([None if r["error"] else json.loads(r["tags"]) for r in rows], pa.list_(pa.string()))
        cols["scores"] = pa.array([None if r["error"] else json.loads(r["scores"]) for r in rows],
                                  pa.list_(pa.float32()))
    cols["error"] = pa.array(errors, pa.string())
    return pa.table(cols)


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write ``out/manifest.json``, or refuse when one from other inputs / another model is there."""
    path = out / MANIFEST
    if path.exists():
        old = json.loads(path.read_text())
        if old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise BulkError(f"{out} holds shards of another run (different {', '.join(diff)}); "
                            "use a new output folder")
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))


def run(task: str, files: Sequence[str], out: str | os.PathLike, *, model: str, profile: str,
        shard_size: int = 1000, batch_size: int = 32, concurrency: int | None = None, num_gpus: float = 0,
        max_shards: int | None = None, address: str | None = None, normalize: bool = False,
        policy: Any = None, load_kwargs: dict[str, Any] | None = None, progress: bool = False) -> BulkSummary:
    """Embed (``task="embed"``) or tag (``"tag"``) ``files`` into Parquet shards under ``out``.

    Args:
        task: ``"embed"`` (a registry embedder ``model``) or ``"tag"`` (a tagger ``model``).
        files: image paths (:func:`collect`); sorted and cut into shards of ``shard_size``.
        out: output folder (``shard-NNNNN.parquet`` + ``manifest.json``).
        batch_size: paths per ``map_batches`` call (one encode / predict call).
        concurrency: model actors (default: the CPUs Ray has, or the GPUs with ``num_gpus``).
        num_gpus: GPUs per actor (0: CPU).
        max_shards: write at most this many new shards, then stop (a bounded slice of a big job).
        address: a Ray cluster (``ray://host:10001`` or ``auto``); ``None``: local Ray.
        normalize: L2-normalise the vectors (embed).
        policy: a :class:`~acg2vec_lab.tagging.thresholds.ThresholdPolicy` (tag).
        load_kwargs: extra :func:`acg2vec_lab.models.load_tagger` arguments (tag).
    Returns:
        a :class:`BulkSummary`; the bad images are in ``errors`` (file and message) and in the shards.
    """
    import time

    if task not in ("embed", "tag"):
        raise BulkError(f"task must be embed or tag, got {task!r}")
    out = Path(out)
    shards = make_shards(files, shard_size)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(out)  # the half-written shard of a killed run
    _check_manifest(out, {"task": task, "model": model, "profile": profile, "normalize": normalize,
                          "shard_size": shard_size, "n": sum(map(len, shards)),
                          "inputs": inputs_digest([f for s in shards for f in s])})
    todo = [i for i in range(len(shards)) if not shard_path(out, i).exists()]
    skipped = len(shards) - len(todo)
    if max_shards is not None:
        todo = todo[:max_shards]
    summary = BulkSummary(str(out), len(shards), 0, skipped, 0, [], 0.0)
    if not todo:
        return summary
    ray = init_ray(address)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    slots = int(ray.cluster_resources().get("GPU" if num_gpus else "CPU", 1) / (num_gpus or 1))
    actors = max(1, concurrency or slots)
    items = [{"path": p, "shard": i} for i in todo for p in shards[i]]
    dim = None
    if task == "embed":
        from acg2vec_lab.embedders import get

        dim = get(model, profile).dim
        fn, kwargs = EmbedBatch, {"model": model, "profile": profile, "normalize": normalize}
    else:
        fn, kwargs = TagBatch, {"model": model, "profile": profile, "policy": policy, "load_kwargs": load_kwargs or {}}
    t0 = time.perf_counter()
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items) // batch_size)).map_batches(
        fn, fn_constructor_kwargs=kwargs, batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=num_gpus,
        num_cpus=0 if num_gpus else 1, batch_format="numpy")
    pending: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in todo}
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        for j in range(len(batch["path"])):
            row = {k: batch[k][j] for k in batch}
            i = int(row["shard"])
            pending[i][str(row["path"])] = row
            if len(pending[i]) == len(shards[i]):
                _write_shard(out, i, [pending[i][p] for p in shards[i]], task, dim, summary)
                del pending[i]
    if pending:  # every input row gives one output row; a missing one is a pipeline bug, not a bad image
        raise RuntimeError(f"shards {sorted(pending)} incomplete after the pipeline finished")
    summary.seconds = time.perf_counter() - t0
    return summary


def _write_shard(out: Path, i: int, rows: list[dict[str, Any]], task: str, dim: int | None,
                 summary: BulkSummary) -> None:
    """Write shard ``i`` atomically (tmp + rename) and count it in ``summary``."""
    import pyarrow.parquet as pq

    with atomic_path(shard_path(out, i)) as tmp:
        pq.write_table(_table(rows, task, dim), tmp)
    summary.written += 1
    summary.images += len(rows)
    summary.errors += [{"file": str(r["path"]), "error": str(r["error"])} for r in rows if r["error"]]


def read_shards(out: str | os.PathLike) -> Any:
    """All shards of ``out`` in shard order as one pandas DataFrame (error rows included)."""
    import pandas as pd
    import pyarrow.parquet as pq

    files = sorted(Path(out).glob("shard-*.parquet"))
    if not files:
        raise FileNotFoundError(f"no shard-*.parquet in {out}")
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def load_vectors(out: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """The ids and ``(N, dim)`` float32 vectors of the readable images of an embed run's shards."""
    df = read_shards(out)
    df = df[df["error"].isna()]
    if "vector" not in df:
        raise BulkError(f"{out} holds tag shards, not vectors")
    return df["id"].tolist(), np.stack(df["vector"].to_numpy()).astype(np.float32)


def load_index(out: str | os.PathLike, spec: Any = "flat", index: Any = None, **info: Any) -> Any:
    """A faiss :class:`~acg2vec_lab.retrieval.index.VectorIndex` over an embed run's shards.

    Item ``i`` gets id ``i`` and metadata ``path`` (the file), so ``index.query`` names the files.
    ``index``: an existing index of the same interface to add to instead (e.g. a
    :class:`~acg2vec_lab.retrieval.milvus.MilvusIndex`; call its ``build()`` after).
    """
    import pandas as pd

    from acg2vec_lab.retrieval.index import build_index

    ids, vecs = load_vectors(out)
    meta = pd.DataFrame({"path": ids})
    if index is not None:
        index.add(vecs, ids=np.arange(len(ids), dtype=np.int64), metadata=meta)
        return index
    return build_index(vecs, spec, metadata=meta, **info)
