"""Resumable embedding for the commands that write ONE output from many inputs.

``embed-image --out vecs.npy`` and ``search build --images`` embed every input and only then write
their output (one ``.npy``, one index folder), atomically. Killed half-way, they would have nothing
to show for the work done, so they embed in batches and keep each finished batch in a hidden
folder beside the output, ``.<out name>.resume/``:

* ``identity.json``: what the vectors are of (command, model, weights, inputs, batch size); a
  folder of another identity is discarded, never mixed in;
* ``batch-<i>.npz``: batch ``i``'s input names, vectors and skipped (unreadable) inputs, written
  atomically (a kill leaves at most one stale part file, removed on the next open).

A rerun loads the batches, embeds only the inputs after them, writes the output and removes the
folder. Nothing here unpickles: the shards are plain arrays read with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from acg2vec_lab.io import atomic_path, remove_stale_parts, write_json


def inputs_digest(inputs: Sequence[Any]) -> str:
    """A short digest of an ordered list of inputs (paths or strings)."""
    h = hashlib.sha256()
    for item in inputs:
        h.update(str(item).encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:16]


class EmbedCheckpoint:
    """Finished batches of one embedding job, kept beside its output until the output is written."""

    def __init__(self, out: str | os.PathLike, identity: dict[str, Any]) -> None:
        out = Path(out)
        self.folder = out.parent / f".{out.name}.resume"
        self.identity = json.loads(json.dumps(identity, sort_keys=True, default=str))
        self.names: list[str] = []
        self.vectors: list[np.ndarray] = []
        self.skipped: list[dict[str, str]] = []
        self.consumed = 0  # inputs covered by the finished batches (embedded or skipped)
        self.resumed = 0  # of those, how many came from an earlier run
        self._next = 0

    def open(self) -> EmbedCheckpoint:
        """Load the finished batches of an earlier run with the same identity (else start empty)."""
        key = self.folder / "identity.json"
        if self.folder.is_dir():
            try:
                same = json.loads(key.read_text(encoding="utf-8")) == self.identity
            except (OSError, ValueError):
                same = False
            if not same:
                shutil.rmtree(self.folder)
        if not self.folder.is_dir():
            write_json(key, self.identity)
        remove_stale_parts(self.folder)
        for i, shard in enumerate(sorted(self.folder.glob("batch-*.npz"))):
            if shard.name != f"batch-{i:06d}.npz" or not self._load(shard):
                for later in sorted(self.folder.glob("batch-*.npz"))[i:]:  # a gap or a bad shard: redo from here
                    later.unlink()
                break
        self.resumed = self.consumed
        return self

    def _load(self, shard: Path) -> bool:
        try:
            with np.load(shard, allow_pickle=False) as z:
                names = [str(n) for n in z["names"]]
                vecs = np.asarray(z["vectors"], dtype=np.float32)
                skipped = json.loads(str(z["skipped"]))
                n_inputs = int(z["n_inputs"])
        except (OSError, ValueError, KeyError):
            return False
        if len(names) != len(vecs) or len(names) + len(skipped) != n_inputs:
            return False
        self.names += names
        self.vectors.append(vecs)
        self.skipped += skipped
        self.consumed += n_inputs
        self._next += 1
        return True

    def add(self, names: Sequence[str], vectors: np.ndarray, skipped: Sequence[dict[str, str]], n_inputs: int) -> None:
        """Keep one finished batch (``n_inputs`` inputs: ``names`` embedded as ``vectors``, ``skipped`` not)."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(names), -1) if len(names) else \
            np.zeros((0, 0), np.float32)
        with atomic_path(self.folder / f"batch-{self._next:06d}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, names=np.array(list(names), dtype=str), vectors=vectors,
                         skipped=np.array(json.dumps(list(skipped))), n_inputs=np.array(n_inputs))
        self.names += list(names)
        self.vectors.append(vectors)
        self.skipped += list(skipped)
        self.consumed += n_inputs
        self._next += 1

    def result(self, dim: int) -> tuple[list[str], np.ndarray, list[dict[str, str]]]:
        """Every finished batch: names, ``(N, dim)`` vectors, skipped inputs."""
        vecs = [v for v in self.vectors if len(v)]
        x = np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32)
        return list(self.names), x, list(self.skipped)

    def finish(self) -> None:
        """Remove the folder (call after the output is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)
