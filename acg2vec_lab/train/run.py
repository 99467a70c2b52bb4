"""One run / checkpoint object for every trainer: a folder keyed by what the run was trained from.

A :class:`Run` is identified by ``(model, config as JSON, data fingerprint, seed, code version)``.
Its folder is ``cache_dir("checkpoints", model, "run-<key>")`` where ``key`` is a content hash of
that identity, so changing any of them (a config field, the generated data, the seed, or a model's
``CODE_VERSIONS`` entry) selects another folder instead of reusing a stale checkpoint.

Folder layout (each model keeps its own inner weight files beside these two):

* ``identity.json``: the identity above, written when the run is opened; a folder is never reused
  for another identity (see the resume rule);
* ``manifest.json``: written LAST after every checkpoint, atomically: identity + ``history`` (one
  shape for every model: a list of row dicts), ``step`` (epochs or optimiser steps done, in the
  model's unit), ``complete``, ``metrics``, ``created`` / ``updated`` times, model-specific
  ``extra``. A crash between writing weights and the manifest leaves the previous manifest, which
  still describes weights of the previous checkpoint only if the weights were replaced atomically;
  every saver below replaces files atomically.

The one resume rule: a run whose folder holds the same identity resumes from its manifest (or is
only loaded when ``complete``); a folder holding another identity raises :class:`RunMismatch`
naming the fields that differ (an explicitly given folder is the only way to get there, since keyed
folders differ by construction). Nothing silently starts over: starting over is an explicit
:meth:`Run.reset`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io import atomic_path, remove_stale_parts, write_json

IDENTITY_FILE = "identity.json"
MANIFEST_FILE = "manifest.json"

# Bump a model's entry when its training code changes what a checkpoint means (a new loss, a new
# inner file layout): every earlier run of that model stops matching.
CODE_VERSIONS = {"deepdanbooru": 1, "deepix": 1, "pix2score": 1, "joytag": 1, "dclip": 1, "acgvoc2vec": 1}


class RunMismatch(ValueError):
    """A run folder that holds a run of another identity (config, data, seed or code version)."""


def config_json(cfg: Any) -> dict[str, Any]:
    """A config dataclass (or dict) as the JSON it round-trips to (tuples become lists)."""
    raw = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    return json.loads(json.dumps(raw, sort_keys=True, default=str))


def _feed(h: Any, obj: Any) -> None:
    """Feed ``obj`` into hash ``h`` in a type-tagged, order-stable way."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, bytes):
        h.update(b"bytes:" + obj)
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"nd:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    elif hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        _feed(h, obj.detach().cpu().numpy())
    elif hasattr(obj, "to_numpy") and hasattr(obj, "columns"):  # a DataFrame
        h.update(f"df:{list(map(str, obj.columns))};".encode())
        for col in obj.columns:
            _feed(h, [str(v) for v in obj[col].tolist()])
    elif isinstance(obj, os.PathLike):
        p = Path(obj)
        st = p.stat() if p.exists() else None
        _feed(h, ("path", str(p), st.st_size if st else None, st.st_mtime_ns if st else None))
    elif isinstance(obj, Mapping):
        h.update(b"map{")
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
        h.update(b"}")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _feed(h, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    elif isinstance(obj, Sequence) or isinstance(obj, (set, frozenset, tuple)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        h.update(f"seq{len(items)}[".encode())
        for x in items:
            _feed(h, x)
        h.update(b"]")
    else:
        raise TypeError(f"cannot fingerprint a {type(obj).__name__}; pass arrays, tensors, frames, paths, "
                        "strings, numbers or containers of them")


def fingerprint(*parts: Any) -> str:
    """A content hash (hex, 16 chars) of arrays / tensors / DataFrames / paths / JSON-like values.

    Paths contribute their name, size and modification time (not their bytes: image folders are big);
    a data set whose folder name is itself a content hash (the synthetic ones) is better fingerprinted
    with :func:`dataset_fingerprint`.
    """
    h = hashlib.sha256()
    for p in parts:
        _feed(h, p)
    return h.hexdigest()[:16]


def dataset_fingerprint(dataset: Any) -> str:
    """The fingerprint of a Danbooru-format data set, cheap and stable.

    A generated synthetic set lives in a folder named by the content hash of its generator config and
    version (``synthetic-danbooru-<variant>-seed<s>-<hash>``): that name is the fingerprint. Any other
    set is fingerprinted by its metadata files and post ids.
    """
    root = Path(getattr(dataset, "root", "") or "")
    if root.name.startswith("synthetic-danbooru-"):
        return f"synthetic:{root.name}"
    meta = sorted(p for p in root.glob("*.json*") if p.is_file()) if root.name else []
    ids = [getattr(p, "id", None) for p in getattr(dataset, "posts", [])]
    return f"folder:{root.name}:{fingerprint([p.name for p in meta], [p.stat().st_size for p in meta], ids)}"


def synthetic_fingerprint(profile: str | None) -> str:
    """:func:`dataset_fingerprint` of ``synthetic_dataset(profile)`` computed from its config alone
    (without generating the set)."""
    from acg2vec_lab.config import load_config, variant_for
    from acg2vec_lab.data.synthetic import dataset_dir_name

    return f"synthetic:{dataset_dir_name(load_config('data', profile), variant_for(profile))}"


def _data_source(data_fingerprint: str) -> str:
    if data_fingerprint.startswith("synthetic:"):
        return "SYNTHETIC"
    return "unrecorded" if data_fingerprint in ("", "unknown") else "real"


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} (in the folder) vs {b!r} (asked for)"]


@dataclasses.dataclass
class Run:
    """One training run of one model: its folder, identity and manifest.

    Attributes:
        model: registry name (``"joytag"``...).
        config: the config as JSON (:func:`config_json`).
        data: the data fingerprint (:func:`fingerprint` / :func:`dataset_fingerprint`).
        seed: the seed of data order, initialisation and training.
        version: the model's code version (``CODE_VERSIONS``).
        folder: where the run lives.
    """

    model: str
    config: dict[str, Any]
    data: str
    seed: int
    version: int
    folder: Path

    @classmethod
    def create(cls, model: str, cfg: Any, data: str, seed: int | None = None,
               folder: str | os.PathLike | None = None, version: int | None = None, write: bool = True) -> Run:
        """The run of ``(model, cfg, data, seed)`` in its keyed folder (or ``folder``), opened.

        ``seed`` defaults to ``cfg.seed``. Raises :class:`RunMismatch` when ``folder`` holds another run.
        ``write=False`` only looks (no folder is created): for "is it trained?" questions.
        """
        from acg2vec_lab.paths import cache_dir

        seed = int(getattr(cfg, "seed", 0) if seed is None else seed)
        version = CODE_VERSIONS.get(model, 0) if version is None else int(version)
        run = cls(model, config_json(cfg), str(data), seed, version, Path("."))
        run.folder = Path(folder) if folder is not None else cache_dir("checkpoints", model) / f"run-{run.key}"
        if write or run.folder.is_dir():
            run.open(write=write)
        return run

    @classmethod
    def fresh(cls, model: str, cfg: Any, data: str, folder: str | os.PathLike, seed: int | None = None) -> Run:
        """A new run in ``folder``, replacing whatever was there (an explicit save, not a resume)."""
        seed = int(getattr(cfg, "seed", 0) if seed is None else seed)
        run = cls(model, config_json(cfg), str(data), seed, CODE_VERSIONS.get(model, 0), Path(folder))
        return run.reset()

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, Any]:
        return {"model": self.model, "config": self.config, "data": self.data, "seed": self.seed,
                "version": self.version}

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def id(self) -> str:
        return f"{self.model}-{self.key}"

    def open(self, write: bool = True) -> Run:
        """Check (or write) the folder's identity; raises :class:`RunMismatch` naming what differs."""
        if write:
            self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / IDENTITY_FILE
        if path.is_file():
            other = json.loads(path.read_text(encoding="utf-8"))
            diffs = _diff(other, self.identity())
            if diffs:
                if other.get("config") != self.config:
                    what = "with another config"
                elif other.get("data") != self.data:
                    what = "on other data"
                else:
                    what = "with another seed or code version"
                raise RunMismatch(
                    f"{self.folder} holds a {self.model} run trained {what}; it will not be resumed or reused. "
                    f"Differences: {'; '.join(diffs[:8])}{' ...' if len(diffs) > 8 else ''}. Use the run's own "
                    "folder (the default), delete this folder, or start over on purpose (resume=False).")
        elif any(p.name == MANIFEST_FILE for p in self.folder.iterdir()):
            raise RunMismatch(f"{self.folder} has a manifest but no {IDENTITY_FILE}; delete it or start over on purpose")
        elif write:
            write_json(path, self.identity())
        if write:
            remove_stale_parts(self.folder, recursive=True)  # part files of a run killed mid-checkpoint
        return self

    def reset(self) -> Run:
        """Start over on purpose: empty the folder and write this run's identity."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        write_json(self.folder / IDENTITY_FILE, self.identity())
        return self

    # ------------------------------------------------------------------ state
    def path(self, name: str) -> Path:
        """A file inside the run folder."""
        return self.folder / name

    def manifest(self) -> dict[str, Any] | None:
        """The last saved manifest, or None before the first checkpoint."""
        return manifest_of(self.folder)

    def resume_state(self) -> dict[str, Any] | None:
        """The manifest to resume from (same identity, checked at open), or None: train from scratch."""
        return self.manifest()

    def exists(self) -> bool:
        """Whether this run finished (its last manifest says ``complete``)."""
        m = self.manifest()
        return bool(m and m.get("complete"))

    def save(self, history: Sequence[Mapping[str, Any]], step: int, complete: bool,
             metrics: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """Write the manifest (call after the weight files are saved): the checkpoint is then current."""
        old = self.manifest() or {}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = {**self.identity(), "run_id": self.id, "history": [dict(r) for r in history], "step": int(step),
                    "complete": bool(complete), "metrics": dict(metrics or {}), "extra": extra,
                    "created": old.get("created", now), "updated": now}
        write_json(self.folder / MANIFEST_FILE, json.loads(json.dumps(manifest, default=_json_default)))
        return manifest

    @property
    def weights_label(self) -> str:
        """``"trained on SYNTHETIC data: <run id>"`` (or ``real``) when finished, else ``"random init (untrained)"``."""
        if self.exists():
            return f"trained on {_data_source(self.data)} data: {self.id}"
        return "random init (untrained)"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable in a manifest: {type(o).__name__}")


# ---------------------------------------------------------------------- atomic weight files

def save_keras_weights(model: Any, path: str | os.PathLike) -> Path:
    """``model.save_weights`` to ``path`` atomically (Keras wants a ``.weights.h5`` name and refuses to overwrite)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        staged = tmp.with_name(tmp.name + ".weights.h5")
        try:
            model.save_weights(str(staged))
            os.replace(staged, tmp)
        finally:
            if staged.exists():
                staged.unlink()
    return path


def save_torch_state(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` of tensors / state dicts / plain numbers only, atomically (read back with
    :func:`load_torch_state`, ``weights_only=True``)."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)
    return path


def load_torch_state(path: str | os.PathLike, map_location: str = "cpu") -> Any:
    """A torch file with ``weights_only=True`` (what :func:`save_torch_state` wrote, or any user's ``.pt``):
    the package's one safe torch load. A pickle needing more than tensors and plain containers (it could
    run code) is refused before anything in it runs, and an unreadable file is an error; both are a
    ``ValueError`` naming the file."""
    import pickle

    import torch

    try:
        return torch.load(Path(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: refused to load: the file holds pickled objects other than tensors and plain "
                         f"containers, which could run code (torch.load weights_only=True: {first})") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: not a readable torch file ({type(exc).__name__}: {exc})") from exc


def manifest_of(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest in ``folder`` (any run), or None."""
    path = Path(folder) / MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def is_complete(folder: str | os.PathLike) -> bool:
    """The one "is this model trained?" test: a complete manifest in ``folder``."""
    m = manifest_of(folder)
    return bool(m and m.get("complete"))


def label_of(folder: str | os.PathLike) -> str:
    """The :attr:`Run.weights_label` of whatever run is in ``folder``."""
    m = manifest_of(folder)
    if not (m and m.get("complete")):
        return "random init (untrained)"
    return f"trained on {_data_source(str(m.get('data', '')))} data: {m.get('run_id', Path(folder).name)}"


def history_rows(history: Mapping[str, Sequence[float]] | Sequence[Any], key: str = "loss") -> list[dict[str, Any]]:
    """One history shape: a dict of per-epoch lists or a list of floats -> a list of row dicts."""
    if isinstance(history, Mapping):
        n = max((len(v) for v in history.values()), default=0)
        return [{k: v[i] for k, v in history.items() if i < len(v)} | {"epoch": i} for i in range(n)]
    return [dict(r) if isinstance(r, Mapping) else {"step": i + 1, key: r} for i, r in enumerate(history)]


def history_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The inverse of :func:`history_rows` on a dict of per-epoch lists: a manifest's row dicts ->
    ``{key: [value per row]}`` (the ``epoch`` index dropped), for a run that was loaded rather than trained."""
    keys = dict.fromkeys(k for r in rows for k in r if k != "epoch")
    return {k: [r[k] for r in rows if k in r] for k in keys}
