"""Small helpers shared by command modules.

Untrained models: several models here have no released weights that this machine can obtain, so
their only trained weights are checkpoints written by a notebook. Without one, a command would
otherwise run a randomly initialised network and print numbers that look like predictions. Every
command that can meet such a model calls :func:`refuse_untrained`: it exits with an error that says
which notebook trains the checkpoint (and for which profile) unless ``--allow-untrained`` was given,
and then :func:`untrained_label` marks the JSON output (``"untrained": true`` plus a warning).
Untrained is read from the weights label: it starts with ``"random init"`` (the embedders' and
:func:`acg2vec_lab.models.pix2score.api.load_for_scoring`'s convention).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


class CLIError(Exception):
    """A usage problem reported as ``error: <message>`` with exit code 2 (no traceback)."""


# Which notebook writes the checkpoint a model's trained weights come from, by model / embedder name.
TRAINED_BY = {
    "pix2score": ("04", "04_pix2score"),
    "deepdanbooru": ("02", "02_tagging_and_thresholds"),
    "illust2vec": ("02", "02_tagging_and_thresholds"),
    "joytag": ("05", "05_joytag"),
    "dclip_image": ("08", "08_dclip"),
    "dclip_text": ("08", "08_dclip"),
}
UNTRAINED_WARNING = "UNTRAINED: random-init weights; these outputs are NOT predictions of a trained model"


def add_command(sub: Any, name: str, help: str, examples: str, func: Any) -> argparse.ArgumentParser:
    """Add a subcommand with its one-line help, an examples epilog and its handler."""
    parser = sub.add_parser(
        name, help=help, description=help, epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    return parser


def add_allow_untrained(parser: argparse.ArgumentParser) -> None:
    """The ``--allow-untrained`` flag (default off: a model without trained weights is refused)."""
    parser.add_argument("--allow-untrained", action="store_true",
                        help="run a model that has no trained checkpoint (random weights); output is labelled "
                             "untrained. Without it such a model is refused with how to train one")


def add_runtime_options(parser: argparse.ArgumentParser, device: bool = True) -> None:
    """``--no-progress`` (every command) and ``--device`` (commands that run a model).

    :func:`acg2vec_lab.cli.main` applies both before the command runs: progress bars off
    (:mod:`acg2vec_lab.progress`), the device request recorded (:mod:`acg2vec_lab.device`).
    """
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (also $ACG2VEC_PROGRESS=0); the JSON output is the same")
    if device:
        parser.add_argument("--device", default=None, metavar="DEVICE",
                            help="auto | cpu | cuda | cuda:N (default $ACG2VEC_DEVICE or auto: the GPU when "
                                 "the model's framework sees one). Asking for a GPU that is not there is an "
                                 "error, never a silent fallback to the CPU")


def tagger_model_for(weights: str | None, model: str | None, allowed: tuple[str, ...] | None = None) -> str | None:
    """The registry tagger ``--weights`` holds (format told from its files), checked against ``--model``
    and, when given, the ``allowed`` models of the command; ``model`` unchanged without ``--weights``."""
    if not weights:
        return model
    from acg2vec_lab.models.released import WeightsError, detect_tagger

    try:
        found = detect_tagger(weights)
    except WeightsError as exc:
        raise CLIError(str(exc)) from exc
    if allowed is not None and found.model not in allowed:
        raise CLIError(f"--weights {weights} is a {found.format}; this command takes {' or '.join(allowed)}")
    if model is not None and model != found.model:
        raise CLIError(f"--weights {weights} is a {found.format} ({found.model}), not --model {model}")
    return found.model


def place(obj: Any, framework: str, what: str, precision: str = "float32") -> dict[str, Any]:
    """Resolve the device for ``framework``, move ``obj`` there (its ``.to(device)``, when it has one),
    print ``<what>: device ... (framework, precision)`` on stderr; returns the dict for the JSON output."""
    from acg2vec_lab import device as _device

    if framework == "onnxruntime" and getattr(obj, "providers", None):  # chosen (and checked) when loaded
        first = obj.providers[0]
        name = first[0] if isinstance(first, (tuple, list)) else str(first)
        return _device.announce(framework, "cuda" if name.startswith("CUDA") else "cpu", precision, what)
    if framework == "onnxruntime":  # not loaded yet: the providers the request will give
        from acg2vec_lab.models.wd14.tagger import providers_for_device

        try:
            first = providers_for_device(_device.normalise(None))[0]
        except ValueError as exc:
            raise CLIError(str(exc)) from exc
        name = first[0] if isinstance(first, (tuple, list)) else str(first)
        return _device.announce(framework, "cuda" if name.startswith("CUDA") else "cpu", precision, what)
    try:
        dev = _device.resolve(framework)
    except _device.DeviceError as exc:
        raise CLIError(str(exc)) from exc
    if hasattr(obj, "to") and framework in ("torch", "tensorflow"):
        obj.to(dev)
    return _device.announce(framework, dev, precision, what)


def is_untrained(weights: str | None) -> bool:
    """True when a weights label says random initialisation (``"random init ..."``)."""
    return bool(weights) and str(weights).startswith("random init")


def how_to_train(model: str, profile: str) -> str:
    """The command that writes ``model``'s checkpoint for ``profile`` (``acg2vec-lab run --only NN``)."""
    if model not in TRAINED_BY:
        return f"no notebook here trains {model!r}; pick a model with trained or real weights (see --list)"
    nn, name = TRAINED_BY[model]
    return (f"Train it with notebook {name} for this profile: "
            f"`acg2vec-lab run --only {nn} --profile {profile}` (writes the checkpoint the CLI loads)")


def refuse_untrained(model: str, weights: str | None, profile: str, allow: bool) -> bool:
    """Raise :class:`CLIError` when ``weights`` is a random init and ``allow`` is off; else return untrained-ness."""
    untrained = is_untrained(weights)
    if untrained and not allow:
        raise CLIError(f"{model} has no trained weights in profile {profile} ({weights}); refusing to print outputs "
                       f"of random weights. {how_to_train(model, profile)}; or pass --allow-untrained to run "
                       "it anyway with the output labelled untrained")
    if untrained:
        print(f"warning: {model}: {UNTRAINED_WARNING} ({weights})", file=sys.stderr)
    return untrained


def untrained_label(untrained: bool) -> dict[str, Any]:
    """Fields merged into a command's JSON: ``{"untrained": bool}`` plus the warning when untrained."""
    return {"untrained": True, "warning": UNTRAINED_WARNING} if untrained else {"untrained": False}


def run_stats() -> dict[str, float]:
    """``{"seconds": since the process started (interpreter start-up and imports included),
    "peak_rss_mb": the process's peak resident memory}``: what every model command reports."""
    import resource
    import time

    import psutil

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"seconds": round(time.time() - psutil.Process().create_time(), 2), "peak_rss_mb": round(peak_kb / 1024, 1)}


def print_json(obj: Any, stats: bool = False) -> None:
    """The command's JSON on stdout; ``stats``: a dict output gains ``"run"``: :func:`run_stats`."""
    if stats and isinstance(obj, dict):
        obj = {**obj, "run": run_stats()}
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
