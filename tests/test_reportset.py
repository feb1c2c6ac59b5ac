"""The reports of a build (kpireport.report.reportset): the same files and manifest however they
are rendered (here, in one worker, in two), progress counted once per report, failures that
write nothing, a render pool that raises instead of redoing, and the command's exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.errors import TemplateError
from kpireport.core.resources import builtin_templates
from kpireport.report import render

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
GOLDEN = json.loads((Path(__file__).parent / "golden" / "reports.json").read_text())


def _files(run_dir: Path, suffix: str = ".html") -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.suffix == suffix}


def _manifest(result) -> dict:
    document = result.manifest.as_dict()
    document.pop("built_at")  # and results.xlsx, which carries the time it was made
    document["data"] = [d for d in document["data"] if d["path"] != "results.xlsx"]
    return document


@pytest.mark.parametrize("name", ["acme", "onlinecrm"])
def test_html_reports_are_the_golden_bytes_with_progress_counted_once(name, tmp_path):
    started, counted = [], []
    result = api.build(SAMPLES / f"{name}.xlsx", out=tmp_path, formats=("html",),
                       on_start=started.append, progress=counted.append)
    assert result.ok
    files = _files(result.run_dir)
    assert {n: hashlib.sha256(d).hexdigest() for n, d in files.items()} \
        == GOLDEN[name]["html_only"]
    assert started == [len(result.manifest.reports)] == [result.rendered]
    assert sorted(counted) == sorted(r.stem for r in result.manifest.reports)


def test_one_worker_and_two_render_the_same_build(tmp_path):
    book = SAMPLES / "acme.xlsx"
    one = api.build(book, out=tmp_path / "one", formats=("html", "pdf"), workers=1)
    two = api.build(book, out=tmp_path / "two", formats=("html", "pdf"), workers=2)
    assert one.ok and two.ok
    assert _files(one.run_dir) == _files(two.run_dir)
    assert set(_files(one.run_dir, ".pdf")) == set(_files(two.run_dir, ".pdf"))
    assert [r.stem for r in one.manifest.reports] == [r.stem for r in two.manifest.reports]


def test_a_rebuild_reuses_the_cache_and_counts_only_what_it_renders(tmp_path):
    book = SAMPLES / "acme.xlsx"
    first = api.build(book, out=tmp_path, formats=("html",))
    started = []
    again = api.build(book, out=tmp_path, formats=("html",), on_start=started.append)
    assert first.rendered == again.cached == len(first.manifest.reports)
    assert again.rendered == 0 and started == [0]
    assert _manifest(first) == _manifest(again)


def test_failing_reports_fail_the_build_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    good = api.build(SAMPLES / "acme.xlsx", out=out, formats=("html",))
    before = {p: p.read_bytes() for p in good.run_dir.rglob("*") if p.is_file()}
    broken = tmp_path / "tpl"
    broken.mkdir()
    (broken / "employee.html").write_text("{% extends 'base.html' %}{% block content %}"
                                          "{{ no_such_variable }}{% endblock %}")
    result = api.build(SAMPLES / "acme.xlsx", out=out, formats=("html",), templates=broken)
    employees = {r.stem for r in good.manifest.reports if r.kind == "employee"}
    assert not result.ok and set(result.failures) == employees
    assert all("no_such_variable" in m for m in result.failures.values())
    after = {p: p.read_bytes() for p in good.run_dir.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in out.iterdir() if "staging" in p.name]


def test_a_worker_that_dies_stops_the_pool_with_an_error_naming_the_report():
    pool = render.RenderPool((builtin_templates(),), ("pdf",), 1, timeout=10)
    try:
        with pytest.raises(TemplateError, match="E9: a render worker died"):
            # os._exit in the worker: the way a worker killed by the kernel looks to the pool
            pool.pool.submit(__import__("os")._exit, 9)
            pool.pending[pool.pool.submit(_sleep, 1)] = {"file": "E9"}
            pool.drain()
    finally:
        pool.close()


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def test_the_command_exits_with_its_code_and_every_byte_of_output(tmp_path):
    book = SAMPLES / "acme.xlsx"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "kpireport", *args], capture_output=True,
                              text=True)

    checked = run("check", str(book), "--format", "json", "--all")
    assert checked.returncode == 0 and json.loads(checked.stdout)["valid"] is True
    assert run("check", str(tmp_path / "missing.xlsx")).returncode == 1
    assert run("build").returncode == 2
    built = run("build", str(book), "--format", "html", "--out", str(tmp_path / "out"))
    assert built.returncode == 0, built.stderr
    assert built.stdout.splitlines()[0].startswith("Scored ")
    assert built.stdout.endswith("\n") and "nothing to compare with yet" in built.stdout
