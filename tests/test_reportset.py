"""A cold HTML-only build deals its reports to this process and a forked child
(kpireport.reportset): the same files, manifest and progress as one process, failures and a
dying child included; and the ``kpireport`` command's quick exit keeps every byte and code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kpireport import api, forked

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
GOLDEN = json.loads((Path(__file__).parent / "golden" / "reports.json").read_text())


@pytest.fixture
def forks(monkeypatch):
    """The names of the work started beside the build (forked.start), in order."""
    started: list[str] = []
    real = forked.start

    def spy(work, *, name="kpireport-child"):
        started.append(name)
        return real(work, name=name)

    monkeypatch.setattr(forked, "start", spy)
    return started


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.suffix == ".html"}


def _manifest(result) -> dict:
    document = result.manifest.as_dict()
    document.pop("built_at")  # and results.xlsx, which carries the time it was made
    document["data"] = [d for d in document["data"] if d["path"] != "results.xlsx"]
    return document


@pytest.mark.parametrize("name", ["acme", "onlinecrm"])
def test_a_split_cold_build_writes_what_one_process_writes(name, tmp_path, forks):
    import hashlib

    book = SAMPLES / f"{name}.xlsx"
    started, counted = [], []
    split = api.build(book, out=tmp_path / "split", formats=("html",),
                      on_start=started.append, progress=counted.append)
    assert forks == ["inputs", "reports"]  # the reports child makes the results files too
    forks.clear()
    single = api.build(book, out=tmp_path / "single", formats=("html",), workers=1)
    assert forks == ["inputs", "results-files"]  # --workers 1: one process renders
    assert split.ok and single.ok
    files = _files(split.run_dir)
    assert files == _files(single.run_dir)
    assert {n: hashlib.sha256(d).hexdigest() for n, d in files.items()} \
        == GOLDEN[name]["html_only"]
    assert _manifest(split) == _manifest(single)
    assert json.loads((split.run_dir / ".kpireport-cache.json").read_text()) \
        == json.loads((single.run_dir / ".kpireport-cache.json").read_text())
    # progress: the total first, then every report once, from both halves
    assert started == [len(split.manifest.reports)] == [split.rendered]
    assert sorted(counted) == sorted(r.stem for r in split.manifest.reports)


def test_a_rebuild_reuses_the_split_builds_cache(tmp_path, forks):
    book = SAMPLES / "acme.xlsx"
    first = api.build(book, out=tmp_path, formats=("html",))
    again = api.build(book, out=tmp_path, formats=("html",))
    assert first.rendered == again.cached == len(first.manifest.reports) and again.rendered == 0
    assert forks == ["inputs", "reports", "inputs", "results-files"]  # no split: their own


def test_reports_failing_in_either_process_fail_the_build_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    good = api.build(SAMPLES / "acme.xlsx", out=out, formats=("html",), workers=1)
    before = {p: p.read_bytes() for p in good.run_dir.rglob("*") if p.is_file()}
    (out / good.run_dir.name / ".kpireport-cache.json").unlink()  # cold again: a split build
    before.pop(good.run_dir / ".kpireport-cache.json")
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


def test_a_child_that_dies_has_its_reports_rendered_here(tmp_path, monkeypatch):
    from kpireport import reportset

    parent = os.getpid()
    real = reportset.Job.share

    def share(self, specs, **keys):
        if os.getpid() != parent:
            os._exit(9)  # the child dies without a word
        return real(self, specs, **keys)

    monkeypatch.setattr(reportset.Job, "share", share)
    result = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "a", formats=("html",))
    monkeypatch.undo()
    single = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "b", formats=("html",), workers=1)
    assert result.ok and _files(result.run_dir) == _files(single.run_dir)
    assert _manifest(result) == _manifest(single)


def test_forked_work_comes_back_or_raises_here():
    assert forked.start(lambda: {"n": [1, 2, 3]})() == {"n": [1, 2, 3]}
    parent = os.getpid()

    def work():
        raise ValueError("here" if os.getpid() == parent else "in the child")

    with pytest.raises(ValueError, match="^here$"):
        forked.start(work)()


def test_the_command_exits_with_its_code_and_every_byte_of_output(tmp_path):
    """`kpireport` skips the heap teardown (kpireport.cli.entry): the output still arrives
    whole, through a pipe, and the exit codes are those of SPEC §3."""
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


def test_without_fork_the_work_runs_in_threads_and_nothing_is_split(tmp_path, monkeypatch,
                                                                     forks):
    """Where there is no fork (macOS, Windows) the snapshot and results files are made in
    threads, and the reports are not split (a thread would share this core)."""

    monkeypatch.setattr(forked, "available", lambda: False)
    names = set()
    real = forked._in_thread

    def in_thread(work, name):
        names.add(name)
        return real(work, name)

    monkeypatch.setattr(forked, "_in_thread", in_thread)
    result = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "a", formats=("html",))
    assert forks == ["inputs", "results-files"] and names == {"inputs", "results-files"}
    monkeypatch.undo()
    single = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "b", formats=("html",), workers=1)
    assert result.ok and _files(result.run_dir) == _files(single.run_dir)
    assert _manifest(result) == _manifest(single)


def test_reports_go_to_whichever_process_is_free(tmp_path, monkeypatch):
    """Runs of reports are taken by the process that is free: with this one slowed down, the
    child renders most of them; the build is the same as one process's."""
    import time

    from kpireport import reportset

    parent = os.getpid()
    real = reportset.Job.share
    log = tmp_path / "who"

    def share(self, specs, **keys):
        with log.open("a") as f:  # O_APPEND: one line per run, from either process
            f.write(f"{os.getpid()} {len(specs)}\n")
        if os.getpid() == parent:
            time.sleep(0.2)
        return real(self, specs, **keys)

    monkeypatch.setattr(reportset.Job, "share", share)
    result = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "a", formats=("html",))
    monkeypatch.undo()
    runs = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    mine = sum(n for pid, n in runs if pid == parent)
    theirs = sum(n for pid, n in runs if pid != parent)
    assert mine + theirs == len(result.manifest.reports) and theirs > mine > 0
    single = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "b", formats=("html",), workers=1)
    assert result.ok and _files(result.run_dir) == _files(single.run_dir)
    assert _manifest(result) == _manifest(single)


@pytest.mark.parametrize("n", [8, 20, 1012, 200_000, 2_000_000])
def test_the_deal_covers_every_report_once_in_at_most_512_runs(n):
    """The runs (8 bytes each) fit in the smallest pipe (4 KiB, written before the fork) and
    cover every report once, whatever the book's size; the last runs are small."""
    from kpireport.reportset import MAX_RUNS, Job, Share, _Deal

    class Counting(Job):
        def __init__(self):
            pass

        def share(self, specs, **keys):
            return Share([{"file": f"r{i}"} for i, _ in specs], {})

    deal = _Deal(list(range(n)))
    try:
        runs = deal.take(Counting(), [(i, "") for i in range(n)])
    finally:
        deal.close()
    assert len(runs) <= MAX_RUNS == 512
    assert [i for positions, _ in runs for i in positions] == list(range(n))
    sizes = [len(positions) for positions, _ in runs]
    assert sizes == sorted(sizes, reverse=True)  # never a bigger run after a smaller one
    assert sizes[-1] <= 4 and max(sizes) <= max(32, -(-n // 256))
    assert all(view["file"] == f"r{i}" for positions, share in runs
               for i, view in zip(positions, share.views))


def test_the_index_is_dealt_first_and_every_report_keeps_its_place(tmp_path):
    """The index (a row for everyone, the longest to render) goes in the first run, so the
    last run is small reports; the views still come back in report order."""
    from kpireport.reportset import Job, Share, _Deal, _deal_order

    specs = [("company", "")] + [("department", f"D{i}") for i in range(3)] \
        + [("employee", f"E{i}") for i in range(40)] + [("index", "")]
    order = _deal_order(specs)
    assert order[0] == len(specs) - 1 and sorted(order) == list(range(len(specs)))
    assert order[1:] == list(range(len(specs) - 1))

    class Naming(Job):
        def __init__(self):
            pass

        def share(self, specs, **keys):
            return Share([{"file": f"{kind}:{subject}"} for kind, subject in specs], {})

    deal = _Deal(order)
    try:
        runs = deal.take(Naming(), specs)
    finally:
        deal.close()
    assert runs[0][1].views[0] == {"file": "index:"}
    assert sorted(i for positions, _ in runs for i in positions) == list(range(len(specs)))
    for positions, share in runs:
        assert [view["file"] for view in share.views] == [
            f"{specs[i][0]}:{specs[i][1]}" for i in positions]
