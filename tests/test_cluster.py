"""Rendering on a real Dask cluster: a scheduler and two workers on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.errors import KpireportError
from tests.conftest import REQUIRE_TOOLS

distributed = pytest.importorskip("distributed") if not REQUIRE_TOOLS else __import__(
    "distributed")

from kpireport.report.cluster import dask_submitter  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def _dask(*args: str) -> list[str]:
    return [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]]


class Cluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.processes.append(_start(_dask("scheduler", "--host", "127.0.0.1", "--port",
                                           str(self.port), "--no-dashboard")))
        self.workers = [self.add_worker() for _ in range(2)]
        self.wait_for(2)

    def add_worker(self, env: dict | None = None) -> subprocess.Popen:
        process = _start(_dask("worker", self.address, "--nthreads", "1", "--nworkers", "1",
                               "--no-dashboard", "--host", "127.0.0.1"), env)
        self.processes.append(process)
        return process

    def wait_for(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=60)

    def stop(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)


@pytest.fixture(scope="module")
def cluster():
    running = Cluster()
    yield running
    running.stop()


def test_cluster_build_writes_the_same_files_as_a_local_build(cluster, tmp_path):
    local = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "local", workers=2)
    remote = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "remote",
                       submit=dask_submitter(cluster.address))
    assert remote.ok, remote.failures
    names = sorted(p.relative_to(local.run_dir) for p in local.run_dir.rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    assert names == sorted(p.relative_to(remote.run_dir) for p in remote.run_dir.rglob("*")
                           if p.is_file() and not p.name.startswith("."))
    for name in names:
        a, b = (local.run_dir / name).read_bytes(), (remote.run_dir / name).read_bytes()
        if name.suffix == ".pdf":
            from pypdf import PdfReader

            assert [p.extract_text() for p in PdfReader(local.run_dir / name).pages] == \
                [p.extract_text() for p in PdfReader(remote.run_dir / name).pages]
        elif name.name == "manifest.json":  # build times and PDF/xlsx bytes differ
            from kpireport.report.manifest import read_manifest

            def listing(run):
                return [(r.kind, r.scope, r.stem, [(f, e.path) for f, e in r.files])
                        for r in read_manifest(run).reports]

            assert listing(local.run_dir) == listing(remote.run_dir)
        elif name.name == "audit.jsonl":  # times and PDF hashes differ: one build line each
            from kpireport.month.audit import verify

            assert [r["action"] for r in verify(local.run_dir).records] == \
                [r["action"] for r in verify(remote.run_dir).records] == ["build"]
        elif name.suffix != ".xlsx":
            assert a == b, name


def test_cli_build_with_dask(cluster, tmp_path):
    run = subprocess.run([sys.executable, "-m", "kpireport", "build",
                          str(SAMPLES / "onlinecrm.xlsx"), "--out", str(tmp_path),
                          "--dask", cluster.address], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "2026-10" / "employees" / "NV06.pdf").exists()


def test_a_worker_dying_mid_run_is_recovered(tmp_path):
    cluster = Cluster()
    try:
        book = tmp_path / "syn.xlsx"
        from kpireport.data_in import samples, template

        template.write_workbook(book, samples.synthetic(20))
        killed = []

        def progress(name: str) -> None:
            if not killed:
                os.killpg(cluster.workers[0].pid, signal.SIGKILL)
                killed.append(name)

        result = api.build(book, out=tmp_path / "out", formats=("pdf",), progress=progress,
                           submit=dask_submitter(cluster.address))
        assert killed and result.ok, result.failures
        assert len(list((result.run_dir / "employees").glob("*.pdf"))) == 20
    finally:
        cluster.stop()


def test_unreachable_scheduler_is_a_clear_error_not_a_hang(tmp_path):
    start = time.perf_counter()
    with pytest.raises(KpireportError, match="cannot reach the Dask scheduler"):
        api.build(SAMPLES / "acme.xlsx", out=tmp_path,
                  submit=dask_submitter(f"tcp://127.0.0.1:{free_port()}", connect_timeout=3))
    assert time.perf_counter() - start < 30


def test_worker_without_kpireport_is_named(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'kpireport' or name.startswith('kpireport.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _Block())\n")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [_start(_dask("scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"))]
    processes.append(_start(_dask("worker", address, "--nthreads", "1", "--no-dashboard",
                                  "--host", "127.0.0.1"), {"PYTHONPATH": str(blocker)}))
    try:
        with pytest.raises(KpireportError, match="do not have kpireport installed"):
            api.build(SAMPLES / "acme.xlsx", out=tmp_path / "out",
                      submit=dask_submitter(address))
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_without_dask_installed_the_message_says_how(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(KpireportError, match=r"pip install 'kpireport\[dask\]'"):
        dask_submitter("tcp://127.0.0.1:1")
