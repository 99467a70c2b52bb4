"""The Milvus backend against a REAL Milvus server and against embedded milvus-lite, the same checks.

The server is the standalone Milvus 2.3.5 binary of the ``milvus`` PyPI package (embedded etcd,
local storage, no Docker), started once for this module on a free loopback port with its data dir
in a temporary folder (``milvus_server``), and stopped afterwards, also when a test fails. If it
cannot start, the fixture fails with the server's log and the shared libraries it misses: these
tests never skip.

Each check runs on both backends (``backend`` is ``lite`` or ``server``): insert, flush and build
IVF_FLAT / IVF_SQ8 / IVF_PQ (server; milvus-lite refuses IVF_PQ by name) / HNSW, recall@10 against
exact faiss (nprobe=1 measurably below exact, rising with nprobe), delete, a restart on the same data
(the server process, or milvus-lite's in-process server, stopped and started) with nothing lost,
concurrent clients (threads, each with its own MilvusIndex and connection) equal to serial, a clear
error while the server is down (seconds, naming the uri) and a dimension mismatch. The figures are
printed at the end of the module (terminal summary section "milvus: lite vs server").
"""
from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from acg2vec_lab.retrieval.index import IndexSpec, build_index, default_nlist
from acg2vec_lab.retrieval.metrics import ann_recall

pytest.importorskip("pymilvus")

N, D, NQ = 2000, 32, 100
KINDS = ("ivf_flat", "ivf_sq8", "ivf_pq", "hnsw")
_FIGURES: list[str] = []


def clustered(n, d, centres, noise, seed):
    """Unit vectors around ``centres`` random centres (as in tests/test_retrieval_milvus.py): an IVF
    index that visits one list misses part of each neighbourhood, so recall rises with nprobe."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    x = c[rng.integers(0, centres, n)] + noise * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    both = clustered(N + NQ, D, 30, 0.6, seed=1)
    x, q = both[:N], both[N:]  # same centres, held-out queries
    exact, _ = build_index(x, IndexSpec("flat", "cosine")).search(q, 10)
    return x, q, exact


@pytest.fixture(scope="module", autouse=True)
def _print_figures(request):
    yield
    if not _FIGURES:
        return
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    text = "\n".join(_FIGURES)
    if tr is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past pytest's output capture, also when all pass
            tr.write_line("")
            tr.write_sep("-", "milvus: lite vs server (2,000 x 32, 100 queries, recall@10 vs exact faiss)")
            tr.write_line(text)
    else:  # pragma: no cover
        print(text, file=sys.stderr)


# --------------------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MilvusServerProcess:
    """The ``milvus`` package's standalone server on ``127.0.0.1:port`` with its data under ``base``.

    ``start()`` returns once the server answers a pymilvus request; ``stop()`` SIGTERMs it and SIGKILLs
    it after ``grace`` seconds (2.3.5's own shutdown hangs, its coordinators stopping in the wrong order;
    what was flushed is on disk either way)."""

    session_ttl = 10

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._server = None
        self.timings: dict[str, float] = {}

    def start(self, timeout: float = 150.0) -> float:
        from milvus import MilvusServer, MilvusServerConfig

        class _Config(MilvusServerConfig):
            def try_bind_port(self, port):  # the package's port probe, with SO_REUSEADDR: our own port
                sock = socket.socket()  # sits in TIME_WAIT after a restart and would fail the probe
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                    sock.listen()
                    return sock
                except OSError:
                    sock.close()
                    return None

        t0 = time.perf_counter()
        config = _Config()
        # a killed node's etcd session blocks its successor's channels until it expires (default 30 s)
        config.set("common.session.ttl", self.session_ttl)
        self._server = MilvusServer(config, wait_for_started=False, data_dir=str(self.base), proxy_port=self.port)
        self._server.start()  # extracts the binaries into base/bin (first start only), spawns the process
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return time.perf_counter() - t0

    def _wait(self, timeout: float) -> None:
        from pymilvus import MilvusClient

        proc = self._server.server_proc
        health = f"http://127.0.0.1:{self._server.webservice_port}/healthz"
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the Milvus server exited with code {proc.returncode} during start-up.\n"
                                   f"{self.diagnose()}")
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:
                    if b"OK" in resp.read():
                        client = MilvusClient(self.uri, timeout=5, dedicated=True)
                        client.list_collections(timeout=5)
                        client.close()
                        return
            except Exception as exc:  # noqa: BLE001  (not up yet)
                last = repr(exc)
            time.sleep(0.25)
        raise TimeoutError(f"the Milvus server at {self.uri} did not answer within {timeout} s ({last}).\n"
                           f"{self.diagnose()}")

    def diagnose(self) -> str:
        """The log tails and the shared libraries the binary cannot find (for the apt lines)."""
        logs = self.base / "logs"
        out = []
        for name in ("milvus-stderr.log", "milvus-stdout.log"):
            p = logs / name
            if p.exists():
                out.append(f"--- {p} (tail)\n" + p.read_text(errors="replace")[-3000:])
        exe = self.base / "bin" / "milvus"
        if exe.exists() and shutil.which("ldd"):
            res = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=False,
                                 env={"LD_LIBRARY_PATH": str(exe.parent)})
            missing = [line.strip() for line in res.stdout.splitlines() if "not found" in line]
            out.append("missing shared libraries: " + (", ".join(missing) or "none (ldd)"))
        return "\n".join(out)

    def stop(self, grace: float = 3.0) -> float:
        t0 = time.perf_counter()
        server, self._server = self._server, None
        if server is not None and server.server_proc is not None:
            proc = server.server_proc
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
            server.stop()  # closes the log files (the process is gone)
        return time.perf_counter() - t0

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.server_proc.poll() is None


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    server = MilvusServerProcess(tmp_path_factory.mktemp("milvus-server"))
    atexit.register(server.stop)  # also if the session dies before the teardown
    seconds = server.start()
    _FIGURES.append(f"server: milvus {_milvus_version()} standalone at {server.uri}, started in {seconds:.1f} s "
                    f"(binaries extracted, etcd + coordinators up, first request answered)")
    try:
        yield server
    finally:
        server.stop()


def _milvus_version() -> str:
    import milvus

    return milvus.__version__


class Backend:
    def __init__(self, name: str, uri: str, server: MilvusServerProcess | None = None) -> None:
        self.name, self.uri, self.server = name, uri, server

    def restart(self) -> tuple[float, float]:
        """Stop and start the database on the same data; returns (stop seconds, start seconds)."""
        if self.server is not None:
            return self.server.stop(), self.server.start()
        from milvus_lite.server_manager import server_manager_instance

        t0 = time.perf_counter()
        server_manager_instance.release_server(self.uri)  # milvus-lite's in-process gRPC server and db
        return time.perf_counter() - t0, 0.0  # started again by the next client that opens the .db

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        else:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)

    def start(self) -> float:
        return self.server.start() if self.server is not None else 0.0


@pytest.fixture(params=["lite", "server"])
def backend(request, tmp_path):
    if request.param == "server":
        server = request.getfixturevalue("milvus_server")
        if not server.running:  # a failed restart test left it down
            server.start()
        return Backend("server", server.uri, server)
    return Backend("lite", str(tmp_path / "vectors.db"))


def _index(backend, kind, collection, nprobe=1, **kwargs):
    from acg2vec_lab.retrieval.milvus import MilvusIndex

    spec = IndexSpec(kind, "cosine", nprobe=nprobe, pq_m=8 if kind == "ivf_pq" else None)
    return MilvusIndex(D, spec, uri=backend.uri, collection=collection, expected_n=N, overwrite=True,
                       timeout=10, **kwargs)


# ------------------------------------------------------------------------------------------- checks


@pytest.mark.parametrize("kind", KINDS)
def test_build_search_recall_and_delete(backend, kind, data):
    """Insert, flush + build, recall@10 against exact faiss (nprobe / ef sweep), then delete."""
    from acg2vec_lab.retrieval.milvus import UnsupportedIndexError

    x, q, exact = data
    if backend.name == "lite" and kind == "ivf_pq":
        with pytest.raises(UnsupportedIndexError, match=r"'ivf_pq'.*milvus-lite.*IVF_PQ"):
            _index(backend, kind, "pq")
        _FIGURES.append("lite   ivf_pq   refused by name (UnsupportedIndexError: milvus-lite has no IVF_PQ)")
        return
    m = _index(backend, kind, f"recall_{kind}")
    try:
        t0 = time.perf_counter()
        m.add(x)
        t_insert = time.perf_counter() - t0
        m.build()
        t_build = time.perf_counter() - t0 - t_insert
        report = m.index_report()
        nlist = default_nlist(N)
        sweep = (1, 4, 16, nlist) if kind != "hnsw" else (10, 32, 128)
        recalls = {}
        for v in sweep:
            if kind == "hnsw":
                m.set_search_params(ef_search=v)
            else:
                m.set_search_params(nprobe=v)
            recalls[v] = ann_recall(m.search(q, 10)[0], exact, 10)
        assert m.builds == 1, "one flush + index + load for all the searches"
        knob = "ef" if kind == "hnsw" else "nprobe"
        _FIGURES.append(f"{backend.name:6} {kind:8} recall@10 by {knob}: "
                        + ", ".join(f"{k}={r:.3f}" for k, r in recalls.items())
                        + f"  (insert {t_insert:.1f} s, flush+index+load {t_build:.1f} s)")
        assert report["index_type"] == kind.upper() and report["row_count"] == N, report
        if backend.name == "server":
            assert int(report["indexed_rows"]) == N and "Loaded" in report["load_state"], report
        values = list(recalls.values())
        assert all(b >= a - 0.005 for a, b in zip(values, values[1:])), recalls
        if kind == "hnsw":
            assert values[-1] >= 0.95, recalls
        else:
            assert int(report["nlist"]) == nlist, report
            assert values[0] < 0.9, f"nprobe=1 should miss neighbours (the index is used): {recalls}"
            assert values[-1] - values[0] > (0.05 if kind == "ivf_pq" else 0.15), recalls
            assert values[-1] >= {"ivf_flat": 0.99, "ivf_sq8": 0.95, "ivf_pq": 0.5}[kind], recalls

        gone = np.arange(0, N, 20)  # 100 ids
        assert m.remove(gone.tolist() + [10**9]) == len(gone)
        assert len(m) == N - len(gone)
        m.set_search_params(nprobe=nlist, ef_search=128)
        ids, _ = m.search(x[gone], 10)
        assert not np.isin(ids, gone).any(), "a deleted id came back"
        assert m.remove(gone.tolist()) == 0
    finally:
        m.close()


def test_restart_loses_nothing_and_a_down_server_fails_fast(backend, data, tmp_path):
    """Everything flushed survives a stop + start on the same data; while it is down, requests fail
    within seconds with an error naming the uri (not pymilvus' minutes of retries)."""
    from acg2vec_lab.retrieval.milvus import MilvusIndex, MilvusUnavailableError

    x, q, _ = data
    m = _index(backend, "ivf_sq8", "restart", nprobe=4)
    m.add(x)
    m.remove(range(0, 50))
    before_ids, before_scores = m.search(q, 10)
    before_len = len(m)
    m.save(tmp_path / "saved")

    t_stop, _ = backend.restart() if backend.name == "lite" else (backend.server.stop(), 0.0)
    t_start = 0.0
    try:
        if backend.name == "server":  # down now: the open index and a new one fail fast, naming the uri
            t0 = time.perf_counter()
            with pytest.raises(MilvusUnavailableError, match=r"127\.0\.0\.1:\d+.*not reachable"):
                m.search(q[:1], 10)
            t_open_err = time.perf_counter() - t0
            t0 = time.perf_counter()
            with pytest.raises(MilvusUnavailableError, match=backend.uri.replace(".", r"\.")):
                MilvusIndex(D, IndexSpec("ivf_sq8", "cosine"), uri=backend.uri, collection="restart", timeout=3)
            t_new_err = time.perf_counter() - t0
            assert t_open_err < 20 and t_new_err < 10, (t_open_err, t_new_err)
            _FIGURES.append(f"server down: search on an open index failed in {t_open_err:.1f} s (timeout=10), "
                            f"a new connection in {t_new_err:.2f} s, both MilvusUnavailableError naming {backend.uri}")
        m.close()
    finally:
        if backend.name == "server":
            t_start = backend.server.start()

    t0 = time.perf_counter()
    back = MilvusIndex.load(tmp_path / "saved", timeout=10)
    try:
        back.set_search_params(nprobe=4)
        after_ids, after_scores = back.search(q, 10)
        t_first = time.perf_counter() - t0
        assert len(back) == before_len == N - 50
        np.testing.assert_array_equal(after_ids, before_ids)
        np.testing.assert_allclose(after_scores, before_scores, rtol=1e-5, atol=1e-5)
        assert not np.isin(after_ids, np.arange(50)).any()
    finally:
        back.close()
    _FIGURES.append(f"{backend.name:6} restart: stop {t_stop:.1f} s, start {t_start:.1f} s, reconnect + first search "
                    f"{t_first:.1f} s ({back.builds} build); {before_len} rows and all {NQ}x10 results identical")


@pytest.mark.parametrize("consistency", ["Strong", "Bounded"])
def test_concurrent_clients_equal_serial(backend, data, consistency):
    """Several threads, each with its own MilvusIndex (own connection), one query per request: every
    answer equals the serial one; queries/s printed for the consistency level."""
    from acg2vec_lab.retrieval.milvus import MilvusIndex

    x, q, _ = data
    clients, per_client = 4, 25
    m = _index(backend, "ivf_sq8", f"conc_{consistency.lower()}", nprobe=8, consistency_level=consistency)
    try:
        m.add(x)
        serial_ids, serial_scores = m.search(q, 10)  # builds
        t0 = time.perf_counter()
        for i in range(per_client):
            m.search(q[i], 10)
        serial_qps = per_client / (time.perf_counter() - t0)
        others = [MilvusIndex(D, IndexSpec("ivf_sq8", "cosine", nprobe=8), uri=backend.uri, collection=m.collection,
                              timeout=10, consistency_level=consistency) for _ in range(clients)]
        assert all(o.builds == 0 and not o._dirty for o in others), "a loaded collection is not reloaded on open"
        got: dict[int, np.ndarray] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(clients)

        def work(c: int) -> None:
            try:
                barrier.wait()
                for i in range(c, clients * per_client, clients):  # client c: queries c, c + 4, ...
                    ids, scores = others[c].search(q[i], 10)
                    got[i] = (ids[0], scores[0])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        seconds = time.perf_counter() - t0
        for o in others:
            o.close()
    finally:
        m.close()
    assert not errors, errors
    assert len(got) == clients * per_client
    for i, (ids, scores) in got.items():
        np.testing.assert_array_equal(ids, serial_ids[i])
        np.testing.assert_allclose(scores, serial_scores[i], rtol=1e-5, atol=1e-5)
    _FIGURES.append(f"{backend.name:6} concurrency ({consistency}): {clients} clients x {per_client} queries "
                    f"(1 per request) = {len(got) / seconds:.0f} queries/s, 1 client {serial_qps:.0f} queries/s; "
                    f"all {len(got)} equal to serial")


def test_dimension_mismatch_is_named(backend):
    from acg2vec_lab.retrieval.milvus import MilvusIndex

    m = _index(backend, "flat", "dims")
    m.add(np.ones((3, D), np.float32))
    with pytest.raises(ValueError, match=rf"'dims'.*dimension {D}.*dim=16"):
        MilvusIndex(16, IndexSpec("flat", "cosine"), uri=backend.uri, collection="dims", timeout=10)
    with pytest.raises(ValueError, match=rf"dimension 16, the index has {D}"):
        m.add(np.ones((2, 16), np.float32))
    m.close()


def test_no_server_on_the_port_fails_fast_naming_the_uri():
    from acg2vec_lab.retrieval.milvus import MilvusIndex, MilvusUnavailableError

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(MilvusUnavailableError, match=uri.replace(".", r"\.") + ".*not reachable"):
        MilvusIndex(D, IndexSpec("flat", "cosine"), uri=uri, collection="none", timeout=3)
    assert time.perf_counter() - t0 < 10
