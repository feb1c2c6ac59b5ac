"""Reading hostile, broken and foreign files: a clear answer in bounded time, never a crash."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.errors import UnreadableWorkbook
from kpireport.read.workbook import read_workbook
from tests.conftest import BASE, CORPUS, soffice


def rewrite(src: Path, dst: Path, changes: dict[str, bytes]) -> Path:
    """Copy the zip ``src`` to ``dst`` replacing (or adding) members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename not in changes:
                zout.writestr(info, zin.read(info))
        for name, data in changes.items():
            zout.writestr(name, data)
    return dst


def sheet_part(path: Path, name: str) -> str:
    """The worksheet part of sheet ``name`` in a workbook openpyxl wrote."""
    index = list(BASE).index(name) + 1
    return f"xl/worksheets/sheet{index}.xml"


def check_cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpireport", "check", str(path)],
                          capture_output=True, text=True, timeout=60)


def assert_refused(path: Path, pattern: str, seconds: float = 10) -> None:
    start = time.perf_counter()
    run = check_cli(path)
    elapsed = time.perf_counter() - start
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert re.search(pattern, run.stderr), run.stderr
    assert elapsed < seconds


def _laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    return ('<?xml version="1.0"?><!DOCTYPE lolz [' + "".join(entities) + ']>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
            "</sheetData></worksheet>").encode()


LAUGHS = _laughs()
XXE = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
       b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&x;</t></is></c></row>'
       b"</sheetData></worksheet>")


@pytest.mark.parametrize("payload", [LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entities_are_refused(make_workbook, tmp_path, payload):
    base = make_workbook()
    bad = rewrite(base, tmp_path / "bad.xlsx", {sheet_part(base, "People"): payload})
    assert_refused(bad, "DTD or XML entities")
    workbook_xml = zipfile.ZipFile(base).read("xl/workbook.xml")
    doctype = b'<!DOCTYPE w [<!ENTITY x SYSTEM "http://127.0.0.1:9/">]>'
    poisoned = workbook_xml.replace(b"?>", b"?>" + doctype, 1) \
        if workbook_xml.startswith(b"<?xml") else doctype + workbook_xml
    bad2 = rewrite(base, tmp_path / "bad2.xlsx", {"xl/workbook.xml": poisoned})
    assert_refused(bad2, "DTD or XML entities")


def test_zip_bomb_is_refused_from_the_directory(make_workbook, tmp_path):
    base = make_workbook()
    bomb = tmp_path / "bomb.xlsx"
    shutil.copy(base, bomb)
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("xl/media/padding.xml", "w", force_zip64=True) as stream:
            chunk = b" " * (1 << 20)
            for _ in range(300):  # 300 MB that compress to a few hundred KB
                stream.write(chunk)
    assert bomb.stat().st_size < 2_000_000
    assert_refused(bomb, "zip bomb|inflates")


def test_far_cell_is_refused_without_allocating(make_workbook, tmp_path):
    base = make_workbook()
    part = sheet_part(base, "People")
    xml = zipfile.ZipFile(base).read(part)
    far = b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'
    bad = rewrite(base, tmp_path / "far.xlsx", {part: xml.replace(b"</sheetData>", far)})
    assert_refused(bad, "XFD1048576", seconds=8)


def test_dimension_claim_alone_is_harmless(make_workbook, tmp_path):
    base = make_workbook()
    part = sheet_part(base, "People")
    xml = zipfile.ZipFile(base).read(part)
    xml = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:XFD1048576"/>', xml)
    book, _ = api.check(rewrite(base, tmp_path / "dim.xlsx", {part: xml}))
    assert book is not None


def test_formula_without_cached_value_is_an_error_never_zero(make_workbook):
    actuals = [r[:] for r in BASE["Actuals"]]
    actuals[1][2] = "=40+50"
    book, issues = api.check(make_workbook(Actuals=actuals))
    assert book is None
    assert [(i.sheet, i.cell, i.code) for i in issues if i.severity == "error"] == [
        ("Actuals", "C2", "formula-without-value")]


def test_excel_error_values_are_reported(make_workbook, tmp_path):
    base = make_workbook()
    part = sheet_part(base, "Actuals")
    xml = zipfile.ZipFile(base).read(part)
    xml = re.sub(rb'<c r="C2"[^>]*>.*?</c>',
                 b'<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c>', xml, count=1)
    xml = re.sub(rb'<c r="D3"[^>]*>.*?</c>', b'<c r="D3" t="e"><v>#N/A</v></c>', xml, count=1)
    book, issues = api.check(rewrite(base, tmp_path / "err.xlsx", {part: xml}))
    assert book is None
    errors = [(i.sheet, i.cell, i.code) for i in issues if i.severity == "error"]
    assert errors == [("Actuals", "C2", "excel-error"), ("Actuals", "D3", "excel-error")]
    assert "#DIV/0!" in issues[[i.cell for i in issues].index("C2")].message


def test_nan_and_infinity_in_xml(make_workbook, tmp_path):
    base = make_workbook()
    part = sheet_part(base, "Actuals")
    xml = zipfile.ZipFile(base).read(part)
    xml = re.sub(rb'(<c r="C2"[^>]*><v>)[^<]*', rb"\g<1>NaN", xml, count=1)
    xml = re.sub(rb'(<c r="D2"[^>]*><v>)[^<]*', rb"\g<1>INF", xml, count=1)
    book, issues = api.check(rewrite(base, tmp_path / "nan.xlsx", {part: xml}))
    codes = {(i.cell, i.code) for i in issues if i.severity == "error"}
    assert book is None or not codes  # never silently a number
    if book is not None:
        assert all(v == v for v in book.actuals[("E1", "REV")].values())
    else:
        assert codes <= {("C2", "not-finite"), ("D2", "not-finite"), ("C2", "not-a-number"),
                         ("D2", "not-a-number")}


def test_merged_and_hidden(make_workbook, tmp_path):
    import openpyxl

    path = make_workbook()
    book = openpyxl.load_workbook(path)
    book["People"].merge_cells("H2:I2")
    book.create_sheet("Goals")
    book["Goals"].append(["goal_id", "goal", "level"])
    book["Goals"].sheet_state = "hidden"
    book.save(path)
    _, issues = api.check(path)
    warnings = [(i.sheet, i.cell, i.code) for i in issues if i.severity == "warning"]
    assert ("People", "H2", "merged-cells") in warnings
    assert ("Goals", "", "hidden-sheet") in warnings


@pytest.mark.parametrize("content, pattern", [
    (b"", "empty"),
    (b"employee_id,name\nE1,Alice\n", "text file"),
    (b"<html><body>hi</body></html>", "HTML"),
])
def test_not_a_workbook(tmp_path, content, pattern):
    path = tmp_path / "x.xlsx"
    path.write_bytes(content)
    assert_refused(path, pattern)


def test_truncated_file(make_workbook, tmp_path):
    data = make_workbook().read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(data[: len(data) // 2])
    assert_refused(path, "damaged or truncated")


def test_password_protected(make_workbook, tmp_path):
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = make_workbook()
    locked = tmp_path / "locked.xlsx"
    with plain.open("rb") as src, locked.open("wb") as dst:
        OOXMLFile(src).encrypt("secret", dst)
    assert_refused(locked, "password-protected")


def test_legacy_xls_saved_by_libreoffice(make_workbook, tmp_path):
    src = make_workbook()
    subprocess.run([*soffice(tmp_path), "--convert-to", "xls", "--outdir", str(tmp_path),
                    str(src)], check=True, capture_output=True, timeout=180)
    assert_refused(tmp_path / (src.stem + ".xls"), r"legacy Excel 97-2003 \(\.xls\)")


def test_libreoffice_resave_reads_the_same_values(tmp_path):
    sample = Path(__file__).resolve().parents[1] / "sample_workbooks" / "acme.xlsx"
    original, _ = api.load(sample)
    out = tmp_path / "lo"
    subprocess.run([*soffice(tmp_path), "--calc", "--convert-to", "xlsx", "--outdir",
                    str(out), str(sample)], check=True, capture_output=True, timeout=180)
    resaved, issues = api.load(out / "acme.xlsx")
    assert resaved.actuals == original.actuals
    assert resaved.people == original.people and resaved.scorecards == original.scorecards
    assert resaved.settings == original.settings and resaved.bands == original.bands


def test_libreoffice_cached_formula_values_are_used(make_workbook, tmp_path):
    actuals = [r[:] for r in BASE["Actuals"]]
    actuals[1][2] = "=40+50"
    src = make_workbook("formulas.xlsx", Actuals=actuals)
    out = tmp_path / "lo"
    subprocess.run([*soffice(tmp_path), "--calc", "--convert-to", "xlsx", "--outdir",
                    str(out), str(src)], check=True, capture_output=True, timeout=180)
    book, _ = api.load(out / "formulas.xlsx")
    assert sorted(book.actuals[("E1", "REV")].values()) == [90, 130]


def test_unreadable_raises_typed_error(tmp_path):
    with pytest.raises(UnreadableWorkbook, match="no such file"):
        read_workbook(tmp_path / "missing.xlsx")


def corpus_files():
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_file())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the project")
def test_every_corpus_file_gets_a_clean_answer():
    from concurrent.futures import ThreadPoolExecutor

    def run(path: Path):
        start = time.perf_counter()
        return path, check_cli(path), time.perf_counter() - start

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(run, corpus_files()))
    assert len(outcomes) > 100
    for path, result, elapsed in outcomes:
        assert result.returncode in (0, 1), (path.name, result.returncode, result.stderr[-500:])
        assert "Traceback" not in result.stderr + result.stdout, path.name
        assert "internal error" not in result.stderr, (path.name, result.stderr)
        assert (result.stdout + result.stderr).strip(), path.name
        assert elapsed < 10, (path.name, elapsed)


def test_1904_date_system_reads_the_same_dates(tmp_path):
    import datetime as dt

    import openpyxl
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    from tests.conftest import write_xlsx

    people = [r[:] + [None] for r in BASE["People"]]
    people[0][-1] = "start_date"
    people[1][-1] = dt.date(2024, 2, 29)
    path = write_xlsx(tmp_path / "mac.xlsx", {**BASE, "People": people})
    book = openpyxl.load_workbook(path)
    book.epoch = CALENDAR_MAC_1904
    book.save(path)
    assert b'date1904="1"' in zipfile.ZipFile(path).read("xl/workbook.xml")
    loaded, _ = api.load(path)
    assert loaded.people[0].start_date == dt.date(2024, 2, 29)


def test_check_pauses_the_garbage_collector_only_while_reading(make_workbook, tmp_path):
    """The GC pause of read + validate (a fast path) ends with it, also when the file is
    refused, and leaves a collector that was already off alone."""
    import gc

    assert gc.isenabled()
    book, _ = api.check(make_workbook())
    assert book is not None and gc.isenabled()
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UnreadableWorkbook):
        api.check(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        api.check(make_workbook())
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_sheets_read_in_a_thread_keep_the_workbook_order(make_workbook):
    import openpyxl

    path = make_workbook()
    raw = read_workbook(path)
    assert [s.name for s in raw.sheets] == openpyxl.load_workbook(path).sheetnames
    people = next(s for s in raw.sheets if s.name == "People")
    assert people.rows[0][0] == "employee_id" and len(people.rows) > 2

