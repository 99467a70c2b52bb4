"""Atomic file writes: a reader (or an interrupted run) never sees a half-written file.

A write goes to a hidden ``.<name>.<pid>-<random>.part`` beside its target and is renamed onto it
in one step. A process killed mid-write (``kill -9``, power loss) leaves that part file behind;
:func:`remove_stale_parts` is what the next run calls on the folders it writes to, and it removes
the parts of processes that are gone (never those of a live writer).

:func:`fault_point` is the fault-injection hook of the tests (``tests/test_fault_injection.py``):
with ``ACG2VEC_FAULT_AFTER=<n>`` set, the process SIGKILLs itself at its n-th atomic commit (the
part file written, not yet renamed) or appended line; unset, it does nothing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAULT_ENV = "ACG2VEC_FAULT_AFTER"
_fault_calls = 0


def fault_point(what: str = "") -> None:
    """Kill this process with SIGKILL at the n-th call when ``$ACG2VEC_FAULT_AFTER`` is ``n`` (a test hook).

    Called at item boundaries (every atomic commit, every appended line, each resumable batch), so
    a test can stop a command at a chosen, reproducible point. A no-op when the variable is unset.
    """
    global _fault_calls
    limit = os.environ.get(FAULT_ENV)
    if not limit:
        return
    _fault_calls += 1
    if _fault_calls >= int(limit):
        sys.stderr.write(f"fault injection: SIGKILL at point {_fault_calls} ({what})\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


_PART_RE = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[^.]*\.part$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_parts(folder: str | os.PathLike, names: Any = None, recursive: bool = False,
                       min_age_s: float = 3600.0) -> list[Path]:
    """Remove the ``.<name>.<pid>-*.part`` files (and folders) that killed writers left in ``folder``.

    A part is stale when the process in its name is gone; a part without a pid in its name (an
    older writer's) is stale once it is ``min_age_s`` old. Args: ``names``: only parts of these
    target names (a set of names, or a callable ``name -> bool``; default all); ``recursive``: also
    in subfolders. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    now = time.time()
    for part in (folder.rglob(".*.part") if recursive else folder.glob(".*.part")):
        m = _PART_RE.match(part.name)
        if m is None:
            continue
        name = m.group("name")
        if names is not None and not (names(name) if callable(names) else name in names):
            continue
        pid = m.group("pid")
        try:
            stale = not _pid_alive(int(pid)) if pid else now - part.lstat().st_mtime >= min_age_s
        except OSError:
            continue
        if not stale:
            continue
        try:
            if part.is_dir() and not part.is_symlink():
                shutil.rmtree(part)
            else:
                part.unlink()
            removed.append(part)
        except FileNotFoundError:
            pass
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path`` in one step.

    On an exception the temporary file is removed and ``path`` is left as it was. The temporary
    name carries this process's pid, so :func:`remove_stale_parts` can tell a killed writer's part.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise _not_writable(path, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        fault_point(f"commit {path.name}")
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _not_writable(path: Path, exc: OSError) -> OSError:
    """The same kind of ``OSError`` (``PermissionError``, ``NotADirectoryError``, ...) with a message
    naming the output folder and the file that could not be written there."""
    reason = exc.strerror or str(exc)
    return type(exc)(exc.errno, f"cannot write {path.name!r} in the output folder {str(path.parent)!r}: {reason} "
                     "(is the folder read-only, full, or is a part of its path a file?)")


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; a failed write raises an ``OSError`` naming the output
    folder and leaves neither a part file nor a changed ``path`` behind."""
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # e.g. the disk filled up mid-write
            raise _not_writable(Path(path), exc) from exc
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, **kwargs: Any) -> Path:
    kwargs.setdefault("indent", 2)
    kwargs.setdefault("ensure_ascii", False)
    return write_text(path, json.dumps(obj, **kwargs) + "\n")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line with a single ``write`` call (small appends are atomic on POSIX)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _not_writable(path, exc) from exc
    fault_point(f"append {path.name}")
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")
    except OSError as exc:
        raise _not_writable(path, exc) from exc


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file read in 1 MiB chunks (``sha256``, ``md5``, any ``hashlib`` name)."""
    import hashlib

    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
