"""The public calls: one per stage, each taking one frozen options object; the clock and the
transport are parameters; ``run`` reads the workbook once."""

from __future__ import annotations

import ast
import dataclasses
import email
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import kpireport
from kpireport import api, forked
from kpireport.cli import main
from kpireport.errors import KpireportError
from kpireport.options import BuildOptions, SendOptions
from kpireport.transport import MemoryTransport

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
WHEN = datetime(2026, 4, 3, 7, 30, tzinfo=timezone.utc)


def test_the_public_calls_are_listed_and_exist():
    for name in ("check", "load", "build", "send", "BuildOptions", "SendOptions",
                 "BuildResult", "SendResult", "Manifest", "read_manifest"):
        assert name in kpireport.__all__ and hasattr(kpireport, name), name
    assert all(hasattr(kpireport, name) for name in kpireport.__all__)


def test_options_are_frozen_and_unknown_keys_fail_loudly(tmp_path):
    options = BuildOptions(out=str(tmp_path), formats=["html"])
    assert options.out == tmp_path and options.formats == ("html",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.out = Path("elsewhere")  # type: ignore[misc]
    with pytest.raises(KpireportError, match="unknown BuildOptions option 'format'; known: "
                       "archive, dask, formats"):
        BuildOptions.of(format="html")
    with pytest.raises(KpireportError, match="unknown BuildOptions option 'fromats'"):
        api.build(SAMPLES / "acme.xlsx", fromats=("html",))
    with pytest.raises(KpireportError, match="not both"):
        api.build(SAMPLES / "acme.xlsx", BuildOptions(), out=tmp_path)
    with pytest.raises(KpireportError, match="unknown format 'docx'"):
        BuildOptions(formats=("docx",))
    with pytest.raises(KpireportError, match="unknown SendOptions option 'to'"):
        SendOptions.of(sender="hr@example.com", to="x@example.com")
    with pytest.raises(KpireportError, match="no sender"):
        SendOptions()
    with pytest.raises(KpireportError, match="outbox"):
        SendOptions(sender="hr@example.com", dry_run=True)


def test_build_and_send_in_process_with_a_clock_and_a_memory_transport(tmp_path):
    book = tmp_path / "acme.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", book)
    checked = api.load(book)
    built = api.build(checked, BuildOptions(out=tmp_path / "reports", formats=("pdf",)),
                      clock=lambda: WHEN)
    assert built.ok and built.manifest.built_at == WHEN.isoformat()
    from kpireport import cycle

    cycle.approve(built.run_dir, by="HR lead", clock=lambda: WHEN)  # send mails approved runs
    transport = MemoryTransport()
    sent = api.send(built.run_dir, SendOptions(sender="hr@acme.example"), book=checked[0],
                    transport=transport, clock=lambda: WHEN)
    assert sent.ok and sent.outcome.sent and not sent.outcome.failed
    pdfs = {r.pdf.path for r in built.manifest.reports if r.pdf}
    assert len(transport.sent) >= len(pdfs) > 0
    first = email.message_from_bytes(transport.sent[0][0].as_bytes())
    assert first["From"] == "hr@acme.example"
    import sqlite3

    stamps = {row[0] for row in sqlite3.connect(built.run_dir / ".send-ledger.sqlite")
              .execute("SELECT updated FROM sends")}
    assert stamps == {WHEN.isoformat()}
    # Sent once: the same call again sends nothing.
    again = api.send(built.run_dir, SendOptions(sender="hr@acme.example"), book=checked[0],
                     transport=MemoryTransport())
    assert again.outcome.sent == [] and len(again.outcome.skipped) == len(sent.outcome.sent)


def test_a_dry_run_needs_no_transport_and_writes_the_outbox(tmp_path):
    book = tmp_path / "acme.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", book)
    built = api.build(book, out=tmp_path / "reports", formats=("pdf",))
    result = api.send(built.run_dir, sender="hr@acme.example", dry_run=True,
                      outbox=tmp_path / "outbox")
    assert result.outbox and all(p.suffix == ".eml" for p in result.outbox)
    assert result.outcome is None and not (built.run_dir / ".send-ledger.sqlite").exists()
    with pytest.raises(KpireportError, match="needs a transport"):
        api.send(built.run_dir, sender="hr@acme.example")


def test_run_reads_and_validates_the_workbook_once(tmp_path, monkeypatch):
    book = tmp_path / "acme.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", book)
    import kpireport.workbook

    reads = []
    real = kpireport.workbook.read_workbook
    counted = lambda path: reads.append(path) or real(path)  # noqa: E731
    monkeypatch.setattr(api, "read_workbook", counted)
    monkeypatch.setattr(kpireport.workbook, "read_workbook", counted)  # the input snapshot
    result = CliRunner().invoke(main, ["run", str(book), "--out", str(tmp_path / "reports"),
                                       "--dry-run", "--outbox", str(tmp_path / "outbox")])
    assert result.exit_code == 0, result.output
    assert "Dry run: wrote" in result.output
    assert reads == [book]  # checked, built (with its input snapshot) and sent from one read
    assert (tmp_path / "reports" / "2026-03" / "inputs.json").stat().st_size > 1000


def test_the_input_snapshot_comes_from_the_cells_already_read(tmp_path):
    from kpireport.diff import inputs_bytes

    book = tmp_path / "acme.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", book)
    checked = api.load(book)
    assert checked.raw is not None and checked.raw.sha256 == checked[0].source_sha256
    expected = inputs_bytes(checked[0])  # read again from the file
    book.unlink()  # gone: the snapshot can only come from the cells of the check
    assert inputs_bytes(checked[0], checked.raw) == expected
    built = api.build(checked, out=tmp_path / "reports", formats=("html",))
    assert (built.run_dir / "inputs.json").read_bytes() == expected
    assert built.manifest.data_file("inputs.json").size == len(expected)


# ---------------------------------------------------------------------------- imports beside
def _python(code: str, *args: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_reading_a_workbook_imports_none_of_the_build_imports():
    """What makes importing them in a thread during the read safe: the reading thread never
    takes an import lock of theirs (and they take none of kpireport's, below)."""
    left = _python("import sys; import kpireport.cli; from kpireport import api; "
                   "api.load(sys.argv[1]); "
                   "print([m for m in api.BUILD_IMPORTS if m in sys.modules])",
                   str(SAMPLES / "acme.xlsx"))
    assert left == "[]"


def test_the_build_imports_import_nothing_of_kpireport():
    from kpireport.api import BUILD_IMPORTS

    found = _python("import importlib, sys\n"
                    "for name in sys.argv[1:]: importlib.import_module(name)\n"
                    "print(sorted(m for m in sys.modules if m.startswith('kpireport')))",
                    *BUILD_IMPORTS)
    assert found == "[]"


def test_a_build_from_a_file_forks_only_after_the_import_thread_ended(tmp_path, monkeypatch):
    import threading

    from kpireport import forked

    seen, start = [], forked.start

    def recording(work, **kw):
        seen.append(sorted(t.name for t in threading.enumerate()))
        return start(work, **kw)

    def slow_imports(names):  # still importing when the read ends
        import time

        time.sleep(0.5)

    monkeypatch.setattr(forked, "start", recording)
    monkeypatch.setattr(api, "_import_all", slow_imports)
    result = api.build(SAMPLES / "acme.xlsx", out=tmp_path, formats=("html",))
    assert result.ok and len(seen) >= 2  # the inputs; the reports (with the results files)
    assert not any("kpireport-imports" in names for names in seen)
    assert "kpireport-imports" not in {t.name for t in threading.enumerate()}


needs_fork = pytest.mark.skipif(not forked.available(), reason="work is forked on Linux only; "
                                "elsewhere it runs in a thread, which may import")


@needs_fork
def test_at_each_fork_only_reapers_run_beside_the_build(tmp_path):
    """What lets a child import (the child that makes the results files imports the xlsx
    writer): at each fork, no thread but the main one and the reapers of earlier children,
    which only wait for their child, so no import lock is held across the fork. (In a fresh process:
    a test runner's own threads would be counted.)"""
    seen = _python("import sys, threading; from kpireport import api, forked\n"
                   "seen, start = [], forked.start\n"
                   "def recording(work, *, name):\n"
                   "    seen.append((name, forked.alone(), sorted(\n"
                   "        t.name for t in threading.enumerate()\n"
                   "        if t is not threading.main_thread())))\n"
                   "    return start(work, name=name)\n"
                   "forked.start = recording\n"
                   "assert api.build(sys.argv[1], out=sys.argv[2], formats=('html',)).ok\n"
                   "print(repr(seen))",
                   str(SAMPLES / "acme.xlsx"), str(tmp_path))
    seen = ast.literal_eval(seen)
    names = [name for name, _, _ in seen]
    assert names == ["inputs", "reports"]  # the reports child makes the results files too
    for i, (_, alone, running) in enumerate(seen):
        assert alone, seen
        assert set(running) <= set(names[:i]), seen


@needs_fork
def test_the_xlsx_writer_is_imported_only_by_the_child_that_writes_results_xlsx(tmp_path):
    import openpyxl

    left = _python("import sys; from kpireport import api; "
                   "r = api.build(sys.argv[1], out=sys.argv[2], formats=('html',)); "
                   "print(r.ok, 'rustpy_xlsxwriter' in sys.modules)",
                   str(SAMPLES / "acme.xlsx"), str(tmp_path))
    assert left == "True False"
    book = openpyxl.load_workbook(next(tmp_path.glob("*/results.xlsx")), read_only=True)
    assert len(book.sheetnames) == 2


@needs_fork
def test_beside_another_thread_the_xlsx_writer_is_imported_before_the_fork(tmp_path):
    """In a server other threads may be importing when a build forks: then the child must
    import nothing, so the parent imports the writer first (and the file is the same)."""
    left = _python("import sys, threading; from kpireport import api, forked\n"
                   "stop = threading.Event()\n"
                   "threading.Thread(target=stop.wait, daemon=True).start()\n"
                   "assert not forked.alone()\n"
                   "r = api.build(sys.argv[1], out=sys.argv[2], formats=('html',))\n"
                   "print(r.ok, 'rustpy_xlsxwriter' in sys.modules)",
                   str(SAMPLES / "acme.xlsx"), str(tmp_path / "server"))
    assert left == "True True"
    alone = _python("import sys; from kpireport import api, forked\n"
                    "assert forked.alone()\n"
                    "r = api.build(sys.argv[1], out=sys.argv[2], formats=('html',))\n"
                    "print(r.ok, 'rustpy_xlsxwriter' in sys.modules)",
                    str(SAMPLES / "acme.xlsx"), str(tmp_path / "command"))
    assert alone == "True False"
    sheets = [zipfile.ZipFile(next((tmp_path / where).glob("*/results.xlsx"))).read(
        "xl/worksheets/sheet2.xml") for where in ("server", "command")]
    assert sheets[0] == sheets[1]


@needs_fork
def test_alone_counts_only_reapers_as_harmless():
    """Threads started by ``threading`` and by ``_thread`` (as an extension or a test
    runner's channel does) both count; the reapers of children do not. In a fresh process,
    where no other thread runs."""
    told = _python("import _thread, threading, time; from kpireport import forked\n"
                   "told = [forked.alone()]\n"
                   "wait = forked.start(lambda: 42, name='test-child')\n"
                   "told.append(forked.alone())  # its reaper only waits\n"
                   "assert wait() == 42\n"
                   "stop = threading.Event()\n"
                   "other = threading.Thread(target=stop.wait); other.start()\n"
                   "told.append(forked.alone()); stop.set(); other.join()\n"
                   "told.append(forked.alone())\n"
                   "running, done = threading.Event(), threading.Event()\n"
                   "def raw():\n"
                   "    running.set(); done.wait()\n"
                   "_thread.start_new_thread(raw, ()); running.wait()\n"
                   "told.append(forked.alone()); done.set()\n"
                   "deadline = time.monotonic() + 10  # until the raw thread has ended\n"
                   "while not forked.alone() and time.monotonic() < deadline:\n"
                   "    time.sleep(0.01)\n"
                   "told.append(forked.alone())\n"
                   "print(told)")
    assert told == "[True, True, False, True, False, True]"


def test_an_invalid_workbook_leaves_no_import_thread(tmp_path):
    import threading

    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a workbook")
    with pytest.raises(KpireportError):
        api.build(bad, out=tmp_path / "out", formats=("html",))
    assert "kpireport-imports" not in {t.name for t in threading.enumerate()}
