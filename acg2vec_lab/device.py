"""Which device a command or notebook computes on: asked for once, checked, printed, never a silent fallback.

A request is one of

* ``auto`` (the default): the GPU when the framework sees one, else the CPU;
* ``cpu``: the CPU, even on a GPU machine (the GPUs are hidden from the frameworks, so TensorFlow
  does not grab their memory either);
* ``cuda`` (or ``cuda:N``, ``gpu``): a GPU, and an error (:class:`DeviceError`) when the framework
  that runs the model cannot see one: a CPU-only torch build, TensorFlow without its CUDA extra
  (``pip install "tensorflow[and-cuda]"``), no driver, ``CUDA_VISIBLE_DEVICES`` empty.

It comes from ``--device`` on the commands, or ``$ACG2VEC_DEVICE`` (notebooks, papermill). A
``cpu`` request must be made before TensorFlow or torch initialise CUDA; commands make it right
after parsing their arguments, before any framework is imported.

:func:`torch_device` and :func:`tf_device` resolve the request for one framework; :func:`describe`
gives the line every command prints (stderr) and puts in its JSON (``"device"``).
"""
from __future__ import annotations

import os
import sys
from typing import Any

ENV = "ACG2VEC_DEVICE"
CHOICES = ("auto", "cpu", "cuda")


class DeviceError(RuntimeError):
    """A GPU was asked for and the framework that would use it cannot see one."""


def normalise(name: str | None) -> str:
    """``None``/``""`` -> ``$ACG2VEC_DEVICE`` or ``auto``; ``gpu`` -> ``cuda``; validates the spelling."""
    name = (name or os.environ.get(ENV) or "auto").strip().lower()
    if name == "gpu":
        name = "cuda"
    if name.startswith("gpu:"):
        name = "cuda:" + name[4:]
    base, _, index = name.partition(":")
    if base not in CHOICES or (index and (base != "cuda" or not index.isdigit())):
        raise DeviceError(f"unknown device {name!r}; use one of auto, cpu, cuda, cuda:N")
    return name


def request(name: str | None = None) -> str:
    """Record the request for this process (and its children) and return it normalised.

    ``cpu`` hides the GPUs (``CUDA_VISIBLE_DEVICES=-1``) when no framework has been imported yet;
    later, the resolution functions still return the CPU.
    """
    name = normalise(name)
    os.environ[ENV] = name
    if name == "cpu" and "torch" not in sys.modules and "tensorflow" not in sys.modules:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    return name


def _why_no_torch_gpu(torch: Any) -> str:
    built = getattr(torch.version, "cuda", None)
    if not built:
        return f"torch {torch.__version__} is a CPU-only build (install a CUDA build of torch)"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    hint = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    return f"torch {torch.__version__} (CUDA {built}) finds no usable GPU (driver or device missing{hint})"


def torch_device(name: str | None = None) -> str:
    """The torch device string for the request: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    name = normalise(name)
    if name == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise DeviceError(f"--device {name}: no GPU for torch: {_why_no_torch_gpu(torch)}; use --device cpu")
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise DeviceError(f"--device {name}: torch sees {torch.cuda.device_count()} GPU(s)")
    return name


def tf_device(name: str | None = None) -> str:
    """The TensorFlow device for the request: ``"/CPU:0"`` or ``"/GPU:N"`` (use as ``with tf.device(...)``)."""
    name = normalise(name)
    if name == "cpu":
        return "/CPU:0"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        return "/GPU:0" if gpus else "/CPU:0"
    if not gpus:
        built = tf.sysconfig.get_build_info().get("is_cuda_build", False)
        why = ("this TensorFlow has CUDA support but finds no GPU (driver or device missing)" if built else
               f"TensorFlow {tf.__version__} has no CUDA support here: install its extra, "
               "pip install \"tensorflow[and-cuda]\"")
        raise DeviceError(f"--device {name}: no GPU for TensorFlow: {why}; use --device cpu")
    index = int(name.partition(":")[2] or 0)
    if index >= len(gpus):
        raise DeviceError(f"--device {name}: TensorFlow sees {len(gpus)} GPU(s)")
    return f"/GPU:{index}"


def resolve(framework: str, name: str | None = None) -> str:
    """:func:`torch_device` or :func:`tf_device` by framework name (``"torch"``, ``"tensorflow"``);
    ``"onnxruntime"`` and ``"ncnn"`` resolve like torch's request but are checked by their own loaders."""
    if framework in ("tensorflow", "tf", "keras"):
        return tf_device(name)
    if framework == "torch":
        return torch_device(name)
    return normalise(name)


def describe(framework: str, device: str, precision: str = "float32") -> dict[str, Any]:
    """``{"framework", "device", "precision", "threads"}``: what a command reports it ran on."""
    threads = None
    if framework == "torch" and "torch" in sys.modules:
        threads = sys.modules["torch"].get_num_threads()
    elif framework in ("tensorflow", "tf", "keras") and "tensorflow" in sys.modules:
        threads = sys.modules["tensorflow"].config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return {"framework": framework, "device": device, "precision": precision, "threads": threads}


def announce(framework: str, device: str, precision: str = "float32", what: str = "") -> dict[str, Any]:
    """Print ``device: <device> (<framework>, <precision>)`` on stderr and return :func:`describe`'s dict."""
    info = describe(framework, device, precision)
    label = f"{what}: " if what else ""
    threads = f", {info['threads']} threads" if info["threads"] else ""
    print(f"{label}device {device} ({framework}, {precision}{threads})", file=sys.stderr)
    return info
