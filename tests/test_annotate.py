"""`kpireport check BOOK --annotate`: issues written back into a copy of the workbook."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.comments import Comment
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import PatternFill

from kpireport import api
from kpireport.cli.app import main
from kpireport.data_in.annotate import FILLS, fix_for
from tests.conftest import soffice

RED, AMBER = FILLS["error"], FILLS["warning"]


def invoke(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, list(args), catch_exceptions=False)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def broken_book(tmp_path):
    """The acme sample with mistakes typed as a person makes them."""
    path = tmp_path / "acme.xlsx"
    assert invoke("init", str(path), "--sample", "acme").exit_code == 0
    book = openpyxl.load_workbook(path)
    cards = book["Scorecards"]
    cards["C2"] = 40  # a weight typed as a whole percent
    cards["C2"].fill = PatternFill("solid", fgColor="FF00B0F0")  # the user's own colour
    cards["C2"].comment = Comment("agreed with Marcus", "Priya")
    actuals = book["Actuals"]
    actuals["C2"] = "abc"  # not a number
    actuals["D2"] = "42"  # a number stored as text: a warning
    book["README"]["F1"] = "=SUM(1,2)"  # the user's own formula on their own sheet
    book["README"].conditional_formatting.add(
        "F1", CellIsRule(operator="greaterThan", formula=["2"], fill=PatternFill("solid",
                                                                                fgColor="FFFF00")))
    book.save(path)
    return path


def cells(ws):
    return {c.coordinate: (c.value, c.number_format, c.fill.fgColor.rgb if c.fill.fill_type
                           else None, c.font.b)
            for row in ws.iter_rows() for c in row}


def test_annotated_copy_marks_every_cell_and_keeps_everything_else(broken_book):
    before = sha(broken_book)
    _, issues = api.check(broken_book)
    result = invoke("check", str(broken_book), "--annotate")
    assert result.exit_code == 1
    out = broken_book.with_name("acme.checked.xlsx")
    assert f"Annotated copy: {out}" in result.output
    assert sha(broken_book) == before  # the original is never written

    original, copy = openpyxl.load_workbook(broken_book), openpyxl.load_workbook(out)
    assert copy.sheetnames == ["Issues", *original.sheetnames]
    assert copy.active.title == "Issues"
    marked = {(i.sheet, i.cell): i for i in issues if i.severity in ("error", "warning")}
    assert {(s, c): i.severity for (s, c), i in marked.items()} == {
        ("Scorecards", "C2"): "error", ("Actuals", "C2"): "error", ("Actuals", "D2"): "warning"}
    for (sheet, ref), issue in marked.items():
        cell = copy[sheet][ref]
        assert cell.fill.fgColor.rgb == (RED if issue.severity == "error" else AMBER)
        assert issue.message in cell.comment.text and fix_for(issue.code) in cell.comment.text
    assert "agreed with Marcus" in copy["Scorecards"]["C2"].comment.text  # the user's note too

    for ws in original.worksheets:  # everything else as it was, cell by cell
        want, got = cells(ws), cells(copy[ws.title])
        for sheet, ref in marked:
            if sheet == ws.title:
                assert got.pop(ref)[0] == want.pop(ref)[0]  # the value stays, only marked
        assert got == want, ws.title
        assert [(str(v.sqref), v.formula1) for v in ws.data_validations.dataValidation] == \
            [(str(v.sqref), v.formula1) for v in copy[ws.title].data_validations.dataValidation]
        assert sorted(ws.tables) == sorted(copy[ws.title].tables)
        assert ws.freeze_panes == copy[ws.title].freeze_panes
        assert [str(r.sqref) for r in ws.conditional_formatting] == \
            [str(r.sqref) for r in copy[ws.title].conditional_formatting]
    assert copy["README"]["F1"].value == "=SUM(1,2)"

    rows = list(copy["Issues"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(issues)  # info notes are listed too, after errors and warnings
    assert [r[1] for r in rows] == sorted((r[1] for r in rows),
                                          key=["error", "warning", "info"].index)
    assert {(r[3], r[4], r[2]) for r in rows} == {(i.sheet, i.cell or None, i.code)
                                                  for i in issues}
    for row in copy["Issues"].iter_rows(min_row=2):
        sheet, ref = row[3].value, row[4].value
        link = (row[4] if ref else row[3]).hyperlink
        assert link is not None and link.location == f"'{sheet}'!{ref or 'A1'}"


def test_issues_without_a_cell_are_listed(make_workbook, tmp_path):
    book = make_workbook(Bands=None)
    out = tmp_path / "marked.xlsx"
    result = invoke("check", str(book), "--annotate", str(out))
    assert result.exit_code == 1 and f"Annotated copy: {out}" in result.output
    rows = list(openpyxl.load_workbook(out)["Issues"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [("error", "missing-sheet", "Bands",
                                                         None)]
    assert "Bands" in rows[0][5] and rows[0][6] == fix_for("missing-sheet")


def test_reannotating_a_fixed_copy_clears_the_old_marks(broken_book):
    invoke("check", str(broken_book), "--annotate")
    checked = broken_book.with_name("acme.checked.xlsx")
    book = openpyxl.load_workbook(checked)  # the user fixes the cells where they are shown
    book["Scorecards"]["C2"] = 0.4
    book["Actuals"]["C2"] = 39
    book["Actuals"]["D2"] = 42
    book.save(checked)
    again = broken_book.with_name("again.xlsx")
    result = invoke("check", str(checked), "--annotate", str(again))
    assert result.exit_code == 0, result.output
    assert "3 old mark(s) cleared" in result.output
    copy = openpyxl.load_workbook(again)
    assert copy.sheetnames.count("Issues") == 1
    assert copy["Scorecards"]["C2"].fill.fgColor.rgb == "FF00B0F0"  # the user's fill is back
    assert copy["Scorecards"]["C2"].comment.text == "agreed with Marcus"
    for ws in copy.worksheets[1:]:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.fill.fgColor.rgb not in (RED, AMBER), cell.coordinate
                assert cell.comment is None or "kpireport check" not in cell.comment.text
    rows = list(copy["Issues"].iter_rows(min_row=2, values_only=True))
    assert {r[1] for r in rows} == {"info"}
    assert [r[3] for r in rows if r[2] == "unknown-sheet"] == ["README"]  # not the old Issues


def test_annotated_copy_opens_in_libreoffice(broken_book, tmp_path):
    invoke("check", str(broken_book), "--annotate")
    checked = broken_book.with_name("acme.checked.xlsx")
    outdir = tmp_path / "lo"
    run = subprocess.run([*soffice(tmp_path), "--convert-to", "xlsx", "--outdir", str(outdir),
                          str(checked)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    resaved = openpyxl.load_workbook(outdir / checked.name)
    assert resaved.sheetnames[0] == "Issues"
    assert resaved["Actuals"]["C2"].fill.fgColor.rgb == RED
    assert "not a number" in resaved["Actuals"]["C2"].comment.text
    link = resaved["Issues"]["E2"].hyperlink
    assert link is not None and "Scorecards" in (link.location or link.target or "")
    # LibreOffice drops the notes' author; a fixed copy it saved still loses its old marks.
    resaved["Scorecards"]["C2"] = 0.4
    resaved["Actuals"]["C2"] = 39
    resaved["Actuals"]["D2"] = 42
    resaved.save(outdir / "fixed.xlsx")
    result = invoke("check", str(outdir / "fixed.xlsx"), "--annotate")
    assert result.exit_code == 0
    copy = openpyxl.load_workbook(outdir / "fixed.checked.xlsx")
    assert copy["Actuals"]["C2"].comment is None
    assert copy["Actuals"]["C2"].fill.fgColor.rgb not in (RED, AMBER)


def test_annotate_refuses_to_overwrite_the_book_and_bad_names(broken_book):
    before = sha(broken_book)
    for target, message in ((broken_book, "cannot replace the workbook"),
                            (broken_book.with_name("x.csv"), "must be an .xlsx file"),
                            (broken_book.parent / "missing" / "x.xlsx", "does not exist")):
        result = subprocess.run([sys.executable, "-m", "kpireport", "check", str(broken_book),
                                 "--annotate", str(target)], capture_output=True, text=True)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert sha(broken_book) == before


def test_annotate_of_an_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "notes.xlsx"
    path.write_text("owner,kpi\nE1,REV\n")
    result = subprocess.run([sys.executable, "-m", "kpireport", "check", str(path), "--annotate"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "notes.checked.xlsx").exists()


def test_annotate_says_what_openpyxl_cannot_keep(tmp_path):
    import xlsxwriter

    from tests.conftest import BASE

    path = tmp_path / "drawn.xlsx"
    book = xlsxwriter.Workbook(path)
    for name, rows in BASE.items():
        ws = book.add_worksheet(name)
        for r, row in enumerate(rows):
            ws.write_row(r, 0, row)
    book.get_worksheet_by_name("Settings").insert_textbox("E2", "Ask Priya before editing")
    book.close()
    result = subprocess.run([sys.executable, "-m", "kpireport", "check", str(path),
                             "--annotate"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "not kept in the copy (openpyxl cannot write them back): 1 shape(s) or text " \
        "box(es)" in result.stderr
    assert (tmp_path / "drawn.checked.xlsx").exists()


def test_an_edited_earlier_copy_is_kept_not_overwritten(broken_book):
    checked = broken_book.with_name("acme.checked.xlsx")
    invoke("check", str(broken_book), "--annotate")
    again = invoke("check", str(broken_book), "--annotate")  # our own copy: simply replaced
    assert "kept as" not in again.output
    book = openpyxl.load_workbook(checked)
    book["Actuals"]["C2"] = 39  # fixed in Excel, which records who saved it
    book.properties.lastModifiedBy = "Priya Nair"
    book.save(checked)
    edited = sha(checked)
    result = invoke("check", str(broken_book), "--annotate")
    backup = broken_book.with_name("acme.checked.bak.xlsx")
    assert f"The earlier copy had been edited and saved: kept as {backup}" in result.output
    assert sha(backup) == edited
    assert openpyxl.load_workbook(checked)["Actuals"]["C2"].value == "abc"  # fresh from BOOK
