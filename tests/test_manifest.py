"""manifest.json: every build lists its reports and files with their hashes; what follows the
build reads it instead of deriving file names."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.errors import KpireportError
from kpireport.report.manifest import MANIFEST_FILE, read_manifest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_file_of_a_build_is_in_the_manifest_with_its_hash(sample_run):
    run = sample_run("acme")
    manifest = read_manifest(run)
    document = json.loads((run / MANIFEST_FILE).read_text())
    assert document["schema"] == "kpireport/manifest@1" and manifest.period == run.name
    book = SAMPLES / "acme.xlsx"
    assert (manifest.workbook_file, manifest.workbook_sha256) == ("acme.xlsx", _sha(book))
    assert manifest.formats == ("html", "pdf")
    kinds = [r.kind for r in manifest.reports]
    assert kinds[0] == "company" and kinds[-1] == "index"
    # Each report file on disk is listed once, with the hash of the bytes beside it.
    on_disk = {p.relative_to(run).as_posix() for p in run.rglob("*.*")
               if p.parts[-2] in ("employees", "departments") or p.parent == run}
    listed = manifest.hashes()
    assert {p for p in on_disk if p.endswith((".html", ".pdf"))} == {
        p for p in listed if p.endswith((".html", ".pdf"))}
    for path, digest in listed.items():
        assert _sha(run / path) == digest, path
    assert {f.path for f in manifest.data} == {
        "results.json", "results.xlsx", "payroll.csv", "recipients.json", "inputs.json"}
    assert manifest.verify() == []
    # What a report is about, by kind.
    company = manifest.report("company", "COMPANY")
    assert company.stem == "company" and company.pdf.path == "company.pdf"
    assert company.name == json.loads((run / "results.json").read_text())["organization"]
    people = json.loads((run / "results.json").read_text())["scorecards"]
    employee = next(c for c in people if c["owner_type"] == "employee"
                    and c.get("employment") in (None, "employed"))
    entry = manifest.report("employee", employee["owner"])
    assert (entry.name, entry.department) == (employee["name"], employee["department"])
    assert entry.html.path == entry.stem + ".html" and entry.stem.startswith("employees/")
    index = manifest.report("index", "")
    assert index.pdf is None and index.html.path == "index.html"


def test_a_leaver_has_no_report_in_the_manifest(sample_run):
    run = sample_run("acme")
    manifest = read_manifest(run)
    cards = json.loads((run / "results.json").read_text())["scorecards"]
    gone = [c["owner"] for c in cards if c["owner_type"] == "employee"
            and c.get("employment") not in (None, "employed")]
    assert gone, "acme has a leaver"
    assert all(manifest.report("employee", g) is None for g in gone)


def test_build_returns_the_manifest_it_wrote_and_a_rebuild_rehashes(tmp_path):
    book = tmp_path / "acme.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", book)
    when = datetime(2026, 11, 3, 6, 0, tzinfo=timezone.utc)
    first = api.build(book, out=tmp_path / "out", formats=("html",), clock=lambda: when)
    assert first.ok and first.manifest == read_manifest(first.run_dir)
    assert first.manifest.built_at == "2026-11-03T06:00:00+00:00"
    assert all(r.pdf is None for r in first.manifest.reports)
    # An unchanged report is taken over from the previous build; the manifest still hashes
    # what is on disk, so a report edited in between is listed with its new bytes.
    edited = first.run_dir / "company.html"
    edited.write_bytes(edited.read_bytes() + b"<!-- edited -->")
    second = api.build(book, out=tmp_path / "out", formats=("html",))
    assert second.manifest.report("company", "COMPANY").html.sha256 == _sha(
        second.run_dir / "company.html")
    assert second.manifest.verify() == []
    (second.run_dir / "index.html").write_text("changed")
    assert second.manifest.verify() == ["index.html"]


@pytest.mark.parametrize("make", ["missing", "not-a-run", "damaged"])
def test_a_folder_that_is_not_a_run_is_one_clear_line(tmp_path, make):
    folder = tmp_path / "2026-10"
    if make != "missing":
        folder.mkdir()
    if make == "damaged":
        (folder / MANIFEST_FILE).write_text('{"schema": "kpireport/manifest@1"}')
    with pytest.raises(KpireportError) as caught:
        read_manifest(folder)
    message = str(caught.value)
    assert str(folder) in message and "\n" not in message
    if make == "missing":
        return  # the command line refuses a missing folder itself (click, exit 2)
    proc = subprocess.run([sys.executable, "-m", "kpireport", "send", str(folder)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "KPIREPORT_SMTP_HOST": "127.0.0.1",
                               "KPIREPORT_SMTP_FROM": "hr@example.com"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and str(folder) in proc.stderr
