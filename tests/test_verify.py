"""``kpireport verify``: intact statements verify, tampered ones (edited with pikepdf) and a
changed workbook fail with the first difference in words, bad input is one line."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pikepdf
import pytest
from openpyxl import load_workbook

from kpireport.core.errors import NotVerified
from kpireport.deliver.protect import encrypt_pdf
from kpireport.report.statement import ATTACHMENT, DOCINFO, code_of, verify_pdf

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


def verify_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpireport", "verify", *map(str, args)],
                          capture_output=True, text=True)


def one_line_failure(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def statement_pdf(sample_run, tmp_path):
    """A copy of E003's review from a full build of the acme sample."""
    copy = tmp_path / "E003.pdf"
    shutil.copy(sample_run("acme") / "employees" / "E003.pdf", copy)
    return copy


@pytest.mark.parametrize(("sample", "pdfs"), [
    ("acme", ("employees/E003.pdf", "company.pdf", "departments/sales.pdf")),
    ("onlinecrm", ("employees/NV01.pdf", "departments/kinh-doanh.pdf"))])
def test_every_kind_of_report_verifies_against_its_workbook(sample_run, sample, pdfs):
    run = sample_run(sample)
    for pdf in pdfs:
        done = verify_cli(run / pdf, "--book", SAMPLES / f"{sample}.xlsx")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"verified: {Path(pdf).name}")
    with pikepdf.open(run / pdfs[0]) as pdf:
        attached = json.loads(pdf.attachments[ATTACHMENT].get_file().read_bytes())
        statement = attached["statement"]
        assert pdf.docinfo[DOCINFO["code"]] == attached["code"] == code_of(statement)
        sha = hashlib.sha256((SAMPLES / f"{sample}.xlsx").read_bytes()).hexdigest()
        assert pdf.docinfo[DOCINFO["workbook"]] == attached["workbook"]["sha256"] == sha
        assert statement["kpireport"] and len(statement["rules_sha256"]) == 64
        assert pdf.docinfo[DOCINFO["version"]] == statement["kpireport"]
        assert pdf.docinfo[DOCINFO["rules"]] == statement["rules_sha256"]
        # The attachment is the whole written once with sorted keys (the statement's text
        # goes in as the view carries it, not parsed and written again).
        assert pdf.attachments[ATTACHMENT].get_file().read_bytes() == (json.dumps(
            attached, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        assert [c["owner"] for c in statement["results"]["scorecards"]] == \
            [statement["report"]["subject"]]
    text = subprocess.run(["pdftotext", str(run / pdfs[0]), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert attached["code"] in text  # the footer prints the code


def test_a_changed_figure_on_the_page_fails(statement_pdf):
    with pikepdf.open(statement_pdf, allow_overwriting_input=True) as pdf:
        page = pdf.pages[0]
        contents = page.obj.Contents
        stream = contents[0] if isinstance(contents, pikepdf.Array) else contents
        data = stream.read_bytes()
        match = re.search(rb"<([0-9a-f]{4,})>", data)
        assert match
        digits = match.group(1)
        changed = digits[:-1] + (b"1" if digits[-1:] != b"1" else b"2")
        stream.write(data[:match.start(1)] + changed + data[match.end(1):])
        pdf.save(statement_pdf)
    line = one_line_failure(verify_cli(statement_pdf))
    assert "the pages were changed after kpireport wrote them" in line


def _rewrite_attachment(path: Path, change, *, recode: bool) -> None:
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        attached = json.loads(pdf.attachments[ATTACHMENT].get_file().read_bytes())
        change(attached["statement"]["results"]["scorecards"][0])
        if recode:  # a careful forger: the code and the metadata made to match
            attached["code"] = code_of(attached["statement"])
            pdf.docinfo[DOCINFO["code"]] = attached["code"]
        pdf.attachments[ATTACHMENT] = pikepdf.AttachedFileSpec(
            pdf, json.dumps(attached).encode(), filename=ATTACHMENT)
        pdf.save(path)


def test_a_changed_attachment_fails(statement_pdf):
    _rewrite_attachment(statement_pdf, lambda card: card.update(bonus=30000.0), recode=False)
    line = one_line_failure(verify_cli(statement_pdf))
    assert "the attached results were changed" in line


def test_a_careful_forgery_fails_against_the_workbook(statement_pdf):
    _rewrite_attachment(statement_pdf, lambda card: card.update(bonus=30000.0), recode=True)
    assert verify_cli(statement_pdf).returncode == 0  # self-consistent: only the book tells
    line = one_line_failure(verify_cli(statement_pdf, "--book", SAMPLES / "acme.xlsx"))
    assert line == ("not verified: E003.pdf: bonus on the statement $30,000.00, recomputed "
                    "$23,920.00 from acme.xlsx")


def test_a_changed_workbook_names_the_first_difference(statement_pdf, tmp_path):
    book_path = tmp_path / "kpis.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", book_path)
    book = load_workbook(book_path)
    sheet = book["Actuals"]
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == "E003" and row[1].value == "REV":
            row[-1].value = 10.0  # March revenue, nearly nothing
    book.save(book_path)
    with pytest.raises(NotVerified) as caught:
        verify_pdf(statement_pdf, book_path)
    assert re.fullmatch(r"E003\.pdf: bonus on the statement \$23,920\.00, recomputed "
                        r"\$[\d,]+\.\d\d from kpis\.xlsx", str(caught.value)), caught.value


def test_protected_copies(statement_pdf, tmp_path):
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(encrypt_pdf(statement_pdf.read_bytes(), "correct horse 42", "owner-pw"))
    done = verify_cli(locked, "--password", "correct horse 42", "--book", SAMPLES / "acme.xlsx")
    assert done.returncode == 0 and done.stdout.startswith("verified"), done.stderr
    assert "give its password with --password" in one_line_failure(verify_cli(locked))
    assert "the password is wrong" in one_line_failure(
        verify_cli(locked, "--password", "wrong password"))


def test_bad_input_is_one_line(tmp_path):
    text = tmp_path / "notes.pdf"
    text.write_text("hello")
    assert one_line_failure(verify_cli(text)).endswith("notes.pdf is not a PDF")
    other = tmp_path / "other.pdf"
    blank = pikepdf.new()
    blank.add_blank_page()
    blank.save(other)
    assert "carries no kpireport statement" in one_line_failure(verify_cli(other))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00" * 50)
    one_line_failure(verify_cli(broken))
    assert "cannot be read" in one_line_failure(verify_cli(tmp_path / "missing.pdf"))


def test_archive_copies_verify(sample_run, tmp_path):
    from kpireport import api

    result = api.build(SAMPLES / "acme.xlsx", out=tmp_path / "out", formats=("pdf",),
                       archive=True, workers=1)
    assert result.ok
    copy = result.run_dir / "archive" / "employees-E003.pdf"
    checked = verify_pdf(copy, SAMPLES / "acme.xlsx")
    assert checked.subject == "E003" and "figures" in checked.checked
    with pikepdf.open(copy) as pdf:
        assert {ATTACHMENT, "results.json"} <= set(pdf.attachments)
        assert len(pdf.Root.AF) == 2
