"""The public calls: one per stage, each taking one frozen options object; the clock and the
transport are parameters; ``run`` reads the workbook once."""

from __future__ import annotations

import dataclasses
import email
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import kpireport
from kpireport import api
from kpireport.cli.app import main
from kpireport.core.errors import KpireportError
from kpireport.core.options import BuildOptions, SendOptions
from kpireport.deliver.transport import MemoryTransport

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
    from kpireport.month import cycle

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
    import kpireport.read.workbook

    reads = []
    real = kpireport.read.workbook.read_workbook
    counted = lambda path: reads.append(path) or real(path)  # noqa: E731
    monkeypatch.setattr(api, "read_workbook", counted)
    monkeypatch.setattr(kpireport.read.workbook, "read_workbook", counted)
    import kpireport.report.inputs

    monkeypatch.setattr(kpireport.report.inputs, "read_workbook", counted)  # the input snapshot
    result = CliRunner().invoke(main, ["run", str(book), "--out", str(tmp_path / "reports"),
                                       "--dry-run", "--outbox", str(tmp_path / "outbox")])
    assert result.exit_code == 0, result.output
    assert "Dry run: wrote" in result.output
    assert reads == [book]  # checked, built (with its input snapshot) and sent from one read
    assert (tmp_path / "reports" / "2026-03" / "inputs.json").stat().st_size > 1000


def test_the_input_snapshot_comes_from_the_cells_already_read(tmp_path):
    from kpireport.report.inputs import inputs_bytes

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


def test_a_source_name_is_the_workbooks_name_on_every_file_and_report(tmp_path):
    """The web app stores an upload under a name of its own; the name people gave is the one
    every report, results.json, the manifest and inputs.json show, and the files equal those
    of a build from a file of that name."""
    import json

    stored = tmp_path / "stored" / "team-20261207-171941-2e7e74.xlsx"
    stored.parent.mkdir()
    shutil.copy(SAMPLES / "acme.xlsx", stored)
    named = tmp_path / "team.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", named)
    when = {"clock": lambda: WHEN}
    web = api.build(api.load(stored, source_name="team.xlsx"), out=tmp_path / "web",
                    formats=("html",), **when)
    cli = api.build(named, out=tmp_path / "cli", formats=("html",), **when)
    assert web.manifest.workbook_file == "team.xlsx"
    for name in ("results.json", "inputs.json", "company.html", "employees/E001.html"):
        text = (web.run_dir / name).read_text(encoding="utf-8")
        assert "team-2026" not in text and "team.xlsx" in text, name
        assert text == (cli.run_dir / name).read_text(encoding="utf-8"), name
    assert json.loads((web.run_dir / "results.json").read_text())["source"]["file"] == \
        "team.xlsx"
    assert api.check(stored)[0].source_file == stored.name  # the CLI keeps the file's name
