"""Progress bars for every long loop, with one switch to silence them all.

Every loop over images, batches, epochs, tiles, index inserts and notebooks goes through
:func:`bar`, a thin wrapper of ``tqdm``: in a Jupyter kernel with ``ipywidgets`` installed it is the
widget bar (``tqdm.notebook``), elsewhere the text bar on stderr (so a command's JSON on stdout
stays clean). One switch turns them all off:

* ``--no-progress`` on every command (it calls :func:`set_enabled` ``(False)``);
* ``ACG2VEC_PROGRESS=0`` in the environment (notebooks, papermill, CI logs);
* ``progress.set_enabled(False)`` in code.

Nothing here imports a framework; ``tqdm`` is imported on first use.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

ENV = "ACG2VEC_PROGRESS"
_override: bool | None = None


def set_enabled(flag: bool | None) -> None:
    """Turn every bar on or off for this process (``None``: back to the environment's choice)."""
    global _override
    _override = flag


def enabled() -> bool:
    """Whether bars are shown: :func:`set_enabled` wins, then ``$ACG2VEC_PROGRESS`` (``0``/``false``/``no`` = off)."""
    if _override is not None:
        return _override
    return os.environ.get(ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _tqdm_class() -> Any:
    if _in_kernel():
        try:
            import ipywidgets  # noqa: F401  (tqdm.notebook needs it; without it the text bar is used)
            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm


def bar(iterable: Iterable[Any] | None = None, total: int | None = None, desc: str | None = None,
        unit: str = "it", leave: bool | None = None, **kwargs: Any) -> Any:
    """A ``tqdm`` bar over ``iterable`` (or a manual one to ``.update(n)``), off when progress is disabled.

    Args:
        iterable: what to loop over (``None``: update the bar by hand).
        total: number of items when ``iterable`` has no ``len``.
        desc: what is being done, e.g. ``"tag deepdanbooru"`` or ``"epoch"``.
        unit: the item's name, e.g. ``"img"``, ``"batch"``, ``"tile"``; tqdm shows ``<unit>/s``.
        leave: keep the finished bar on screen (default: only for outermost bars).
    """
    cls = _tqdm_class()
    kwargs.setdefault("mininterval", 0.5)
    if "file" not in kwargs and cls.__module__ == "tqdm.std":
        kwargs["file"] = sys.stderr
    return cls(iterable, total=total, desc=desc, unit=unit, leave=leave if leave is not None else True,
               disable=not enabled(), dynamic_ncols=True, **kwargs)


def keras_epochs(epochs: int, desc: str) -> Any:
    """A Keras callback that advances one :func:`bar` per finished epoch (for ``fit(verbose=0)``)."""
    import keras

    class _EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.bar = bar(total=epochs, desc=desc, unit="epoch")

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None:
                self.bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
            self.bar.update(1)

        def on_train_end(self, logs: Any = None) -> None:
            self.bar.close()

    return _EpochBar()
