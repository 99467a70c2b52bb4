"""Data-parallel training on the standard launchers: torch DDP under ``torchrun``, Keras under ``tf.distribute``.

Torch (JoyTag; :mod:`acg2vec_lab.models.joytag.train`):

* a process started by ``torchrun`` has ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (and the rendezvous
  ``MASTER_ADDR`` / ``MASTER_PORT``) in its environment: :func:`launched` says so, :func:`init` joins
  the process group (backend ``nccl`` when the ranks compute on CUDA, else ``gloo``);
* every rank walks the SAME global batches (the seeded permutation of the single-process run) and
  computes on its part of each (:func:`shard`), DDP averages the gradients; a rank's loss is weighted
  by its share of the global batch (:func:`shard_weight`) so uneven last batches average correctly;
* only the main rank (:func:`is_main`) writes checkpoints and the manifest; :func:`barrier` lines the
  ranks up around it; :func:`cleanup` leaves the group.

Not launched (no ``RANK`` / ``WORLD_SIZE``), every helper is the single-process answer (rank 0 of 1) and
the trainers keep their single-process path unchanged.

Keras (DeepDanbooru; :mod:`acg2vec_lab.models.deepdanbooru.train`): :func:`strategy` returns a
``tf.distribute`` strategy (``MirroredStrategy`` over the visible GPUs, or over N logical CPU devices;
``MultiWorkerMirroredStrategy`` from ``$TF_CONFIG``) under whose ``scope()`` the model is built and
compiled; Keras then splits every global batch across the replicas and sums the per-replica gradients.

No framework is imported at module level.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


# ============================================================================ torch / torchrun

def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher setting RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    """This process's global rank (0 when not launched)."""
    return int(os.environ.get("RANK", 0)) if launched() else 0


def world_size() -> int:
    """The number of processes (1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", 1)) if launched() else 1


def local_rank() -> int:
    """This process's rank on its machine (its GPU index); 0 when not launched."""
    return int(os.environ.get("LOCAL_RANK", 0)) if launched() else 0


def is_main() -> bool:
    """Whether this process writes (checkpoints, manifests, logs): rank 0, or the only process."""
    return rank() == 0


def _torch():
    import torch

    return torch


def uses_cuda() -> bool:
    """Whether the ranks compute on CUDA: a GPU is visible and the device request is not ``cpu``."""
    from acg2vec_lab.device import normalise

    if normalise(None) == "cpu":
        return False
    torch = _torch()
    return bool(torch.cuda.is_available())


def device() -> str:
    """The torch device of this rank: ``cuda:<LOCAL_RANK>`` when :func:`uses_cuda`, else ``cpu``."""
    return f"cuda:{local_rank()}" if uses_cuda() else "cpu"


def backend() -> str:
    """``nccl`` when the ranks compute on CUDA, else ``gloo``."""
    return "nccl" if uses_cuda() else "gloo"


def initialized() -> bool:
    """Whether a torch process group is up."""
    if not launched():
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init(timeout_s: float = 1800.0) -> bool:
    """Join the process group when launched (idempotent); returns whether this is a distributed run.

    Reads the rendezvous from the environment ``torchrun`` sets (``env://``); pins this rank's GPU
    when it computes on CUDA.
    """
    if not launched():
        return False
    import datetime

    import torch.distributed as dist

    if dist.is_initialized():
        return True
    if uses_cuda():
        _torch().cuda.set_device(local_rank())
    dist.init_process_group(backend=backend(), init_method="env://", rank=rank(), world_size=world_size(),
                            timeout=datetime.timedelta(seconds=timeout_s))
    return True


def barrier() -> None:
    """Wait for every rank (a no-op when not distributed)."""
    if initialized():
        import torch.distributed as dist

        if backend() == "nccl":
            dist.barrier(device_ids=[local_rank()])
        else:
            dist.barrier()


def cleanup() -> None:
    """Leave the process group (a no-op when not distributed)."""
    if initialized():
        import torch.distributed as dist

        dist.destroy_process_group()


def all_reduce_sum(value: Any) -> Any:
    """The sum over ranks of a tensor (in place, returned); the tensor itself when not distributed."""
    if initialized():
        import torch.distributed as dist

        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; for small states and decisions). ``obj`` itself when
    not distributed."""
    if not initialized():
        return obj
    import torch.distributed as dist

    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0, device=device() if backend() == "nccl" else None)
    return box[0]


def shard_positions(n: int, rank: int, world: int, mode: str = "contiguous") -> np.ndarray:
    """The positions (0..n-1) of a global batch of ``n`` that rank ``rank`` of ``world`` computes.

    ``contiguous``: ``np.array_split`` parts (the first ``n % world`` ranks get one more); ``strided``:
    ``rank, rank + world, ...``. Every position goes to exactly one rank.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} of world {world}")
    if mode == "contiguous":
        base, extra = divmod(n, world)
        lo = rank * base + min(rank, extra)
        return np.arange(lo, lo + base + (rank < extra), dtype=np.int64)
    if mode == "strided":
        return np.arange(rank, n, world, dtype=np.int64)
    raise ValueError(f"unknown shard mode {mode!r}; use 'contiguous' or 'strided'")


def shard(indices: Sequence[Any] | Any, rank: int, world: int, mode: str = "contiguous") -> Any:
    """Rank ``rank``'s part of the global batch ``indices`` (a list, array or tensor, order kept)."""
    pos = shard_positions(len(indices), rank, world, mode)
    if isinstance(indices, (list, tuple)):
        return type(indices)(indices[int(i)] for i in pos)
    if hasattr(indices, "index_select"):  # a torch tensor
        import torch

        return indices[torch.from_numpy(pos).to(getattr(indices, "device", "cpu"))]
    return np.asarray(indices)[pos]


def shard_weight(n_local: int, n_global: int, world: int) -> float:
    """The factor on a rank's mean loss that makes DDP's gradient average equal the global-batch mean's
    gradient: ``n_local * world / n_global`` (exactly 1.0 for equal shards)."""
    return n_local * world / n_global if n_global else 0.0


# ============================================================================ Keras / tf.distribute

def logical_cpus(n: int) -> list[str]:
    """Split the CPU into ``n`` logical devices (must run before TensorFlow initialises its devices);
    returns their names. Already split into ``n``: returns the existing ones."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as exc:  # TF already initialised: fine if the split is the one asked for
        have = tf.config.list_logical_devices("CPU")
        if len(have) != n:
            raise RuntimeError(f"cannot split the CPU into {n} logical devices: TensorFlow is already initialised "
                               f"with {len(have)}; call strategy('cpu:{n}') before any TensorFlow op") from exc
    return [d.name for d in tf.config.list_logical_devices("CPU")][:n]


def tf_config() -> dict[str, Any] | None:
    """``$TF_CONFIG`` parsed (``{"cluster": {...}, "task": {"type", "index"}}``), or None."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    return json.loads(raw) if raw else None


def strategy(kind: str | None = "auto") -> Any:
    """A ``tf.distribute`` strategy, or None for the single-device path.

    ``kind``:

    * ``auto``: ``multiworker`` when ``$TF_CONFIG`` names a cluster of more than one task, ``mirrored``
      when more than one GPU is visible, else None (one device; the trainer's path is unchanged);
    * ``mirrored``: ``MirroredStrategy`` over every visible GPU (over ``/cpu:0`` when there is none);
    * ``cpu:N``: ``MirroredStrategy`` over N logical CPU devices (tests; before TF initialises);
    * ``multiworker``: ``MultiWorkerMirroredStrategy``; the cluster and this task from ``$TF_CONFIG``;
    * ``none`` / ``default`` / ``one``: None.
    """
    kind = (kind or "none").strip().lower()
    if kind in ("none", "default", "one", "single"):
        return None
    if kind not in _STRATEGIES:  # one per kind and process: a second MirroredStrategy's collectives clash
        _STRATEGIES[kind] = _make_strategy(kind)
    return _STRATEGIES[kind]


_STRATEGIES: dict[str, Any] = {}


def _make_strategy(kind: str) -> Any:
    import tensorflow as tf

    if kind == "auto":
        conf = tf_config()
        if conf and sum(len(v) for v in conf.get("cluster", {}).values()) > 1:
            kind = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            return None
    if kind.startswith("cpu:"):
        n = int(kind.partition(":")[2])
        return tf.distribute.MirroredStrategy(devices=logical_cpus(n))
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(devices=[g.name for g in gpus] or ["/cpu:0"])
    if kind == "multiworker":
        if tf_config() is None:
            raise ValueError("strategy('multiworker') needs $TF_CONFIG (the cluster and this task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {kind!r}; use auto, mirrored, cpu:N, multiworker or none")


def replicas(strat: Any) -> int:
    """The replicas in sync of ``strat`` (1 for None)."""
    return int(strat.num_replicas_in_sync) if strat is not None else 1


def tf_is_chief(strat: Any = None) -> bool:
    """Whether this TF worker writes checkpoints: no cluster, the ``chief`` task, or worker 0 of a
    cluster without a chief."""
    conf = tf_config()
    if not conf or strat is None or type(strat).__name__ != "MultiWorkerMirroredStrategy":
        return True
    task = conf.get("task", {})
    if "chief" in conf.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0
