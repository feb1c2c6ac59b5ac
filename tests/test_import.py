"""`kpireport import`: actuals from CRM and ad-platform exports, run as a user runs it."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpireport import api
from kpireport.cli.app import main
from kpireport.core.model import month_of
from kpireport.data_in.importer import SHIPPED, load_mapping, plan_import, shipped_mappings
from tests.conftest import CORPUS, soffice

IMPORTING_PAGE = Path(__file__).resolve().parents[1] / "docs" / "importing.md"


def invoke(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args],
                                                    catch_exceptions=False)


def run(*args):
    return subprocess.run([sys.executable, "-m", "kpireport", *map(str, args)],
                          capture_output=True, text=True, env={"COLUMNS": "200",
                                                               **_env()})


def _env():
    import os

    return dict(os.environ)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cells(path: Path) -> dict[tuple[str, str], object]:
    book = openpyxl.load_workbook(path)
    return {(ws.title, c.coordinate): c.value for ws in book.worksheets
            for row in ws.iter_rows() for c in row if c.value is not None}


@pytest.fixture
def acme(tmp_path):
    path = tmp_path / "acme.xlsx"
    assert invoke("init", path, "--sample", "acme").exit_code == 0
    return path


HUBSPOT = (
    '\ufeff"Record ID","Deal Name","Deal Stage","Amount","Close Date","Deal owner","Pipeline",'
    '"Create Date"\n'
    '9001,"Globex renewal","Closed won","12,500.00","2026-04-15 10:32",'
    '"priya.nair@acme.example","Sales Pipeline","2026-02-01 09:00"\n'
    '9002,"Initech upsell","Closed won","8,000.00","2026-04-20 09:00",'
    '"Priya.Nair@ACME.example","Sales Pipeline","2026-03-01 09:00"\n'
    '9003,"Umbrella new","Closed lost","30,000.00","2026-04-21 09:00",'
    '"tom.becker@acme.example","Sales Pipeline","2026-03-05 09:00"\n'
    '9004,"Hooli expansion","Closed won","4,250.50","2026-03-31 23:59",'
    '"lucia.ortiz@acme.example","Sales Pipeline","2026-01-10 09:00"\n'
    '9005,"Stark partner deal","Closed won","1,000.00","2026-04-02 12:00",'
    '"lucia.ortiz@acme.example","Partner Pipeline","2026-01-10 09:00"\n'
    '9006,"Wayne ""big"" deal","Closed won","62,652.49","2026-03-12 08:00",'
    '"sam.okafor@acme.example","Sales Pipeline","2026-01-10 09:00"\n')


def test_hubspot_deals_dry_run_then_import(acme, tmp_path):
    deals = tmp_path / "hubspot-deals-2026-04.csv"
    deals.write_text(HUBSPOT, encoding="utf-8")  # HubSpot writes a BOM
    before = sha(acme)
    stamp = acme.stat().st_mtime_ns

    dry = invoke("import", deals, "--book", acme, "--map", "hubspot-deals", "--dry-run")
    assert dry.exit_code == 0, dry.output
    table = [re.sub(r"\s+", " ", line.strip(" │")) for line in dry.output.splitlines()
             if line.startswith("│")]
    assert table == [
        "E003 │ DEALS │ 2026-04 │ — │ 2",
        "E003 │ REV │ 2026-04 │ — │ 20,500",
        "E005 │ DEALS │ 2026-03 │ 11.6 │ 1",
        "E005 │ REV │ 2026-03 │ 61,578.9 │ 4,250.5",
        "E006 │ DEALS │ 2026-03 │ 9.1 │ 1"]  # E006's REV is already 61,578.9: no change
    assert "Dry run: nothing written" in dry.output
    assert "6 record(s) (utf-8-sig, separator ',', decimal '.'" in dry.output
    assert "new month column(s) 2026-04" in dry.output
    assert sha(acme) == before and acme.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".xlsx") == ["acme.xlsx"]

    old = cells(acme)
    done = invoke("import", deals, "--book", acme, "--map", "hubspot-deals")
    assert done.exit_code == 0, done.output
    backup = tmp_path / "acme.bak.xlsx"
    assert f"Wrote 5 value(s) into {acme} (backup: {backup})" in done.output
    assert sha(backup) == before
    new = cells(acme)
    changed = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v
               and k[0] not in ("Sources",)}
    assert changed == {  # only the mapped Actuals cells, and the new month's header
        ("Actuals", "O1"): (None, "2026-04"),
        ("Actuals", "O7"): (None, 20500), ("Actuals", "O8"): (None, 2),  # E003 REV, DEALS
        ("Actuals", "N11"): (61578.9, 4250.5), ("Actuals", "N12"): (11.6, 1),  # E005
        ("Actuals", "N14"): (9.1, 1)}  # E006 DEALS
    assert not [k for k in old if k not in new]
    book = openpyxl.load_workbook(acme)
    assert book["Actuals"].tables["tblActuals"].ref == "A1:O40"
    assert book["Actuals"]["O1"].font.b == book["Actuals"]["N1"].font.b
    sources = list(book["Sources"].iter_rows(values_only=True))
    assert sources[0] == ("file", "sha256", "imported_at", "records", "cells_changed",
                          "mapping")
    assert sources[1][:2] == (deals.name, sha(deals))
    assert dt.datetime.fromisoformat(sources[1][2].replace("Z", "+00:00")).tzinfo is not None
    assert sources[1][3:] == (6, 5, "hubspot-deals.toml")

    scored, issues = api.check(acme)
    assert scored is not None, [i for i in issues if i.severity == "error"]
    assert scored.actuals[("E003", "REV")][month_of(2026, 4)] == 20500
    assert scored.actuals[("E005", "DEALS")][month_of(2026, 3)] == 1

    again = invoke("import", deals, "--book", acme, "--map", "hubspot-deals")
    assert again.exit_code == 0 and "0 value(s) to change, 6 already as in the workbook" \
        in again.output
    assert not (tmp_path / "acme.bak-2.xlsx").exists()  # nothing to write, nothing written


CAMPAIGNS = (
    "Kampagne;Verantwortlich;Tag;Status;Kosten;Leads;Kunden-ID\n"
    "Frühjahr Suche;Liam Brooks;03.03.2026;Aktiv;1.234,56 €;17;C-1001\n"
    "Frühjahr Suche;Liam Brooks;15.03.2026;Aktiv;2.000,44 €;3;C-1002\n"
    "Markenbekanntheit « Café »;Hannah  Lee;09.03.2026;Aktiv;500,00 €;40;C-1001\n"
    "Alte Kampagne;hannah lee;10.03.2026;Entfernt;9.999,99 €;99;C-9999\n"
    "Newsletter;Zoe Adams;31.03.2026;Aktiv;0,00 €;12;\n"
    "Retargeting;Liam Brooks;20.03.2026;Aktiv;765,50 €;0;C-1001\n")


@pytest.mark.parametrize("pinned", [True, False], ids=["shipped-mapping", "detected"])
def test_semicolon_cp1252_campaign_report_with_decimal_commas(acme, tmp_path, pinned):
    report = tmp_path / "kampagnen-maerz.csv"
    report.write_bytes(CAMPAIGNS.encode("cp1252"))
    mapping = "ad-campaigns"
    if not pinned:  # the same mapping without encoding, separator, decimal or date format
        text = (SHIPPED / "ad-campaigns.toml").read_text()
        text = "\n".join(line for line in text.splitlines()
                         if not line.startswith(("date_format", "decimal", "encoding",
                                                 "delimiter")))
        mapping = tmp_path / "campaigns.toml"
        mapping.write_text(text)
    result = invoke("import", report, "--book", acme, "--map", mapping)
    assert result.exit_code == 0, result.output
    if not pinned:
        assert "cp1252, separator ';'" in result.output and "decimal ','" in result.output
        assert "dates %d.%m.%Y" in result.output
    # Liam's leads feed no scorecard line of his: left out and said so.
    assert "E010 has no scorecard line for LEADS" in result.output
    book, _ = api.load(acme)
    march = month_of(2026, 3)
    assert book.actuals[("E010", "SPEND")][march] == pytest.approx(1234.56 + 2000.44 + 765.50)
    assert book.actuals[("E010", "NEWCUST")][march] == 2  # C-1001 and C-1002
    assert book.actuals[("E007", "SPEND")][march] == 500.0  # the removed campaign is skipped
    assert book.actuals[("E007", "LEADS")][march] == 40
    assert book.actuals[("E007", "NEWCUST")][march] == 1
    assert book.actuals[("E015", "LEADS")][march] == 12


def test_xlsx_export_with_date_cells(acme, tmp_path):
    export = tmp_path / "cloudpro-tickets.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Summary"
    wb.active["A1"] = "Cloud Pro CRM export"
    ws = wb.create_sheet("Tickets")
    ws.append(["Ticket", "Agent ID", "Closed on", "First response (h)", "NPS answer"])
    for row in [("T-1", "E012", dt.datetime(2026, 3, 2, 9, 30), 2.5, 60),
                ("T-2", "e012", dt.datetime(2026, 3, 28, 16, 0), 5.5, 30),
                ("T-3", "E012", dt.datetime(2026, 3, 15, 11, 0), 3.0, 10),
                ("T-4", "E014", dt.date(2026, 3, 3), 4, None),
                ("T-5", "E014", dt.datetime(2026, 2, 27, 8, 0), "6,5", 50)]:
        ws.append(row)
    wb.save(export)
    result = invoke("import", export, "--book", acme, "--map", "cloudpro-tickets")
    assert result.exit_code == 0, result.output
    assert "sheet 'Tickets'" in result.output
    book, _ = api.load(acme)
    march, feb = month_of(2026, 3), month_of(2026, 2)
    assert book.actuals[("E012", "FRT")][march] == pytest.approx((2.5 + 5.5 + 3.0) / 3)
    assert book.actuals[("E012", "NPS")][march] == 30  # the latest answer of the month
    assert book.actuals[("E014", "FRT")][march] == 4
    assert book.actuals[("E014", "NPS")][march] == 35  # blank answer: the old value stays
    assert book.actuals[("E014", "FRT")][feb] == 6.5

    # Without sheet = "Tickets" the sheet with the mapped columns is found; a bad record is
    # named by its sheet row.
    ws.append(["T-6", "E099", dt.datetime(2026, 3, 9), 1.0, 70])
    wb.save(export)
    mapping = tmp_path / "tickets.toml"
    mapping.write_text((SHIPPED / "cloudpro-tickets.toml").read_text().replace(
        'sheet = "Tickets"', ""))
    result = invoke("import", export, "--book", acme, "--map", mapping)
    assert result.exit_code == 1
    assert "Error: cloudpro-tickets.xlsx row 7: unknown owner 'E099' (Agent ID)" in result.output


def test_long_format_imports_without_a_mapping(tmp_path):
    book = tmp_path / "onlinecrm.xlsx"
    assert invoke("init", book, "--sample", "onlinecrm").exit_code == 0
    source = tmp_path / "thang-11.csv"
    source.write_text("owner;kpi_id;period;actual\n"
                      "Lê Minh Đức;DOANHTHU;2026-11;2.650.000.000\n"
                      "nv04@onlinecrm.example;DOANHTHU;2026-11;2.480.500.000\n"
                      "NV02;HOPDONG;2026-11;38\n"
                      "Kinh doanh;HOPDONG;2026-11;75\n", encoding="utf-8-sig")
    result = invoke("import", source, "--book", book)
    assert result.exit_code == 0, result.output
    model, _ = api.load(book)
    nov = month_of(2026, 11)
    assert model.actuals[("NV03", "DOANHTHU")][nov] == 2_650_000_000
    assert model.actuals[("NV04", "DOANHTHU")][nov] == 2_480_500_000
    assert model.actuals[("NV02", "HOPDONG")][nov] == 38
    assert model.actuals[("Kinh doanh", "HOPDONG")][nov] == 75  # a department's own row


def test_long_actuals_sheet_gets_rows_in_its_own_layout(make_workbook, tmp_path):
    book = make_workbook(Actuals=[["owner", "kpi_id", "period", "actual"],
                                  ["E1", "REV", "2026-01", 90], ["E1", "CAC", "2026-01", 40],
                                  ["E2", "REV", "2026-01", 100]])
    source = tmp_path / "feb.csv"
    source.write_text("owner,kpi_id,period,actual\nE1,REV,2026-01,91\nE1,REV,2026-02,130\n"
                      "E2,REV,2026-02,95\n")
    result = invoke("import", source, "--book", book)
    assert result.exit_code == 0, result.output
    rows = list(openpyxl.load_workbook(book)["Actuals"].iter_rows(values_only=True))
    assert rows == [("owner", "kpi_id", "period", "actual"), ("E1", "REV", "2026-01", 91),
                    ("E1", "CAC", "2026-01", 40), ("E2", "REV", "2026-01", 100),
                    ("E1", "REV", "2026-02", 130), ("E2", "REV", "2026-02", 95)]


BAD_DEALS = (
    "Deal Name,Deal Stage,Amount,Close Date,Deal owner,Pipeline\n"
    'Good one,Closed won,100,2026-03-01,priya.nair@acme.example,Sales Pipeline\n'
    '"Two-line\nname",Closed won,200,2026-03-02,nobody@acme.example,Sales Pipeline\n'
    'Bad date,Closed won,300,2026-02-30,priya.nair@acme.example,Sales Pipeline\n'
    'Not a number,Closed won,n/a,2026-03-04,priya.nair@acme.example,Sales Pipeline\n'
    'Lost ones do not matter,Closed lost,zzz,never,nobody@acme.example,Sales Pipeline\n'
    'No owner,Closed won,50,2026-03-05,,Sales Pipeline\n')


def test_bad_records_are_reported_with_their_line_and_nothing_is_written(acme, tmp_path):
    deals = tmp_path / "deals.csv"
    deals.write_text(BAD_DEALS)
    before = sha(acme)
    result = run("import", deals, "--book", acme, "--map", "hubspot-deals")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "Error: deals.csv line 3: unknown owner 'nobody@acme.example' (Deal owner)",
        "Error: deals.csv line 5: Close Date '2026-02-30' is not a date",
        "Error: deals.csv line 6: Amount 'n/a' is not a number",
        "Error: deals.csv line 8: no owner (Deal owner is blank)",
        "Error: 4 record(s) cannot be imported; nothing was written (fix them, or use "
        "--skip-bad-rows to import the others)."]
    assert sha(acme) == before and not (tmp_path / "acme.bak.xlsx").exists()

    skipped = run("import", deals, "--book", acme, "--map", "hubspot-deals", "--skip-bad-rows")
    assert skipped.returncode == 0, skipped.stderr
    assert "Warning: deals.csv line 3: unknown owner" in skipped.stderr
    model, _ = api.load(acme)
    assert model.actuals[("E003", "REV")][month_of(2026, 3)] == 100
    assert model.actuals[("E003", "DEALS")][month_of(2026, 3)] == 1


def _mapping(tmp_path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(text)
    return path


GOOD_MAP = ('[source]\nowner = "Deal owner"\ndate = "Close Date"\n'
            '[[measure]]\nkpi = "REV"\ncolumn = "Amount"\ncombine = "sum"\n')


@pytest.mark.parametrize("case, message", [
    ("pdf", "a PDF document, not a CSV or .xlsx export"),
    ("xls", "a legacy Excel 97-2003 (.xls) file"),
    ("empty", "the file is empty"),
    ("ragged", "not a readable CSV file (Error tokenizing data. C error: Expected 6 fields in "
               "line 3, saw 7)"),
    ("missing-file", "no such file"),
    ("missing-column", "map.toml: REV measure column 'Revenue' is not in deals.csv (columns: "),
    ("unknown-kpi", "map.toml: KPI 'TURNOVER' is not in the KPIs sheet"),
    ("formula-kpi", "map.toml: KPI CAC is a formula KPI (SPEND / NEWCUST); map its parts"),
    ("bad-toml", "map.toml: not valid TOML"),
    ("bad-combine", "combine = 'median'; use one of sum, count, distinct, average, last"),
    ("no-mapping", "no --map given, and the file is not in the long format"),
    ("open-in-libreoffice", "acme.xlsx is open in LibreOffice (found .~lock.acme.xlsx#)"),
    ("open-in-excel", "acme.xlsx is open in Excel (found ~$acme.xlsx)"),
    ("invalid-book", "error(s) in the workbook; first: Scorecards!C2"),
    ("book-not-xlsx", "acme.xlsx"),
])
def test_bad_input_is_one_line_and_the_workbook_untouched(acme, tmp_path, case, message):
    deals = tmp_path / "deals.csv"
    deals.write_text(HUBSPOT.lstrip("\ufeff"))
    mapping: Path | str = "hubspot-deals"
    if case == "pdf":
        deals.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    elif case == "xls":
        deals.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    elif case == "empty":
        deals.write_text("")
    elif case == "ragged":
        deals.write_text("Deal Stage,Amount,Close Date,Deal owner,Pipeline,x\n"
                         "Closed won,1,2026-03-01,priya.nair@acme.example,Sales Pipeline,\n"
                         "Closed won,1,2026-03-01,priya.nair@acme.example,Sales Pipeline,,\n")
    elif case == "missing-file":
        deals.unlink()
    elif case == "missing-column":
        mapping = _mapping(tmp_path, GOOD_MAP.replace('"Amount"', '"Revenue"'))
    elif case == "unknown-kpi":
        mapping = _mapping(tmp_path, GOOD_MAP.replace('"REV"', '"TURNOVER"'))
    elif case == "formula-kpi":
        mapping = _mapping(tmp_path, GOOD_MAP.replace('"REV"', '"CAC"'))
    elif case == "bad-toml":
        mapping = _mapping(tmp_path, GOOD_MAP.replace("[[measure]]", "[[measure]"))
    elif case == "bad-combine":
        mapping = _mapping(tmp_path, GOOD_MAP.replace('"sum"', '"median"'))
    elif case == "no-mapping":
        mapping = ""
    elif case == "open-in-libreoffice":
        (tmp_path / ".~lock.acme.xlsx#").write_text("LockedBy,host,user,02.12.2026 19:00,")
    elif case == "open-in-excel":
        (tmp_path / "~$acme.xlsx").write_bytes(b"\x05Priya")
    elif case == "invalid-book":
        wb = openpyxl.load_workbook(acme)
        wb["Scorecards"]["C2"] = 40
        wb.save(acme)
    elif case == "book-not-xlsx":
        acme.write_text("owner,kpi_id\n")
    before = sha(acme)
    args = ["import", deals, "--book", acme] + (["--map", mapping] if mapping else [])
    result = run(*args)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, lines
    assert sha(acme) == before
    assert not (tmp_path / "acme.bak.xlsx").exists()


def test_imported_workbook_opens_in_libreoffice(acme, tmp_path):
    deals = tmp_path / "deals.csv"
    deals.write_text(HUBSPOT, encoding="utf-8")
    assert invoke("import", deals, "--book", acme, "--map", "hubspot-deals").exit_code == 0
    run_lo = subprocess.run([*soffice(tmp_path), "--convert-to", "xlsx", "--outdir",
                             str(tmp_path / "lo"), str(acme)], capture_output=True, text=True,
                            timeout=180)
    assert run_lo.returncode == 0, run_lo.stderr
    resaved = openpyxl.load_workbook(tmp_path / "lo" / "acme.xlsx")
    assert resaved["Actuals"]["O7"].value == 20500
    assert resaved["Sources"]["A2"].value == "deals.csv"


def test_shipped_mappings_load_and_are_in_the_docs():
    page = IMPORTING_PAGE.read_text(encoding="utf-8")
    assert shipped_mappings() == ["ad-campaigns", "cloudpro-tickets", "hubspot-deals",
                                  "salesforce-opportunities"]
    for name in shipped_mappings():
        load_mapping(Path(name))
    for name in ("hubspot-deals", "ad-campaigns"):  # the two worked examples, word for word
        assert (SHIPPED / f"{name}.toml").read_text().strip() in page, name


def test_plan_reads_without_writing(acme, tmp_path):
    deals = tmp_path / "deals.csv"
    deals.write_text(HUBSPOT, encoding="utf-8")
    plan = plan_import(deals, acme, Path("hubspot-deals"))
    assert [(c.owner, c.kpi, c.period, c.old, c.new) for c in plan.changes][:2] == [
        ("E003", "DEALS", "2026-04", None, 2.0), ("E003", "REV", "2026-04", None, 20500.0)]
    assert plan.new_months == [month_of(2026, 4)] and plan.bad == []


def test_import_help_ends_with_an_example():
    result = invoke("import", "--help")
    assert result.exit_code == 0 and "Example:" in result.output
    assert "kpireport import deals.csv --book kpis.xlsx" in result.output


def test_benchmark_command_runs_small():
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_import.py"
    run = subprocess.run([sys.executable, str(script), "--records", "3000", "--employees", "20",
                          "--repeat", "1"], capture_output=True, text=True)
    out = run.stdout  # speed is not tested: a loaded machine may miss the promise
    assert run.returncode in (0, 1), run.stderr
    assert "3,000 records" in out and "pandas.read_csv" in out and "plan ÷ pandas = " in out
    assert "0 bad" in out


def test_salesforce_report_with_us_dates_and_currency_codes(acme, tmp_path):
    report = tmp_path / "report1712345678901.csv"
    report.write_text(
        '"Opportunity Owner","Opportunity Name","Stage","Amount","Close Date","Type"\n'
        '"Lucia Ortiz","Globex - Renewal","Closed Won","USD 12,500.00","3/4/2026","Renewal"\n'
        '"Lucia  Ortiz","Initech - New","Closed Won","USD 2,000.00","3/9/2026",'
        '"New Business"\n'
        '"Sam Okafor","Hooli - New","Closed Lost","USD 9,000.00","3/10/2026","New Business"\n'
        '"Sam Okafor","Wayne - New","Closed Won","USD 1,000.50","4/1/2026","New Business"\n',
        encoding="utf-8")
    result = invoke("import", report, "--book", acme, "--map", "salesforce-opportunities")
    assert result.exit_code == 0, result.output
    book, _ = api.load(acme)
    march, april = month_of(2026, 3), month_of(2026, 4)
    assert book.actuals[("E005", "REV")][march] == 14500.0
    assert book.actuals[("E005", "DEALS")][march] == 1  # the renewal is not a new deal
    assert book.actuals[("E006", "REV")][april] == 1000.5
    assert march in book.actuals[("E006", "REV")]  # not in the export: left as it was


def test_missing_rows_are_added_and_an_empty_book_can_be_filled(acme, tmp_path):
    wb = openpyxl.load_workbook(acme)
    ws = wb["Actuals"]
    owners = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
    ws.delete_rows(owners.index("E003") + 1, 2)  # Priya's REV and DEALS rows are gone
    for row in ws.iter_rows(min_row=2, min_col=3):
        for cell in row:
            cell.value = None  # and no actuals at all yet: no report period either
    wb.save(acme)
    assert [i.code for i in api.check(acme)[1] if i.severity == "error"] == ["no-report-period"]
    deals = tmp_path / "deals.csv"
    deals.write_text(HUBSPOT, encoding="utf-8")
    result = invoke("import", deals, "--book", acme, "--map", "hubspot-deals")
    assert result.exit_code == 0, result.output
    assert "2 new row(s)" in result.output
    rows = list(openpyxl.load_workbook(acme)["Actuals"].iter_rows(values_only=True))
    assert rows[-2][:2] == ("E003", "DEALS") and rows[-2][-1] == 2
    assert rows[-1][:2] == ("E003", "REV") and rows[-1][-1] == 20500
    book, _ = api.load(acme)
    assert book.settings.report_period == month_of(2026, 4)


def test_added_rows_fill_the_helper_columns_people_keep(make_workbook, tmp_path):
    book = make_workbook(Actuals=[
        ["owner", "owner_name", "kpi_id", "kpi", "2026-01", "2026-02"],
        ["E1", "Alice", "REV", "Revenue", 90, 130], ["E1", "CAC", "CAC", None, 40, 60]])
    source = tmp_path / "bob.csv"
    source.write_text("owner,kpi_id,period,actual\nbob@x.example,REV,2026-02,95\n")
    result = invoke("import", source, "--book", book)
    assert result.exit_code == 0, result.output
    rows = list(openpyxl.load_workbook(book)["Actuals"].iter_rows(values_only=True))
    assert rows[-1] == ("E2", "Bob", "REV", "Revenue", None, 95)
    assert rows[2] == ("E1", "CAC", "CAC", None, 40, 60)  # what people typed stays as it was
    assert api.check(book)[0] is not None


def test_a_workbook_that_would_not_pass_check_is_not_written(make_workbook, tmp_path):
    """openpyxl drops the cached values of formulas: a book with formulas in Actuals (saved
    by LibreOffice, so the values are there) would not pass check after an import."""
    draft = make_workbook("draft.xlsx", Actuals=[
        ["owner", "kpi_id", "2026-01", "2026-02"], ["E1", "REV", 90, "=C2+40"],
        ["E1", "CAC", 40, 60], ["E2", "REV", 100, 95]])
    run_lo = subprocess.run([*soffice(tmp_path), "--convert-to", "xlsx", "--outdir",
                             str(tmp_path / "lo"), str(draft)], capture_output=True, text=True,
                            timeout=180)
    assert run_lo.returncode == 0, run_lo.stderr
    book = tmp_path / "lo" / "draft.xlsx"
    assert api.check(book)[0] is not None  # valid as LibreOffice saved it
    before = sha(book)
    source = tmp_path / "bob.csv"
    source.write_text("owner,kpi_id,period,actual\nE2,REV,2026-02,97\n")
    result = run("import", source, "--book", book)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: draft.xlsx was not changed: it has formulas in cells kpireport reads (e.g. "
        "Actuals!D2) and openpyxl, which writes the file, cannot keep their values; replace "
        "them by values (or import into a copy and open and save it in Excel)"]
    assert sha(book) == before
    assert sorted(p.name for p in book.parent.iterdir()) == ["draft.xlsx"]  # no backup, no tmp


def test_new_month_columns_follow_date_headers(make_workbook, tmp_path):
    book = make_workbook(Actuals=[
        ["owner", "kpi_id", dt.datetime(2026, 1, 1), dt.datetime(2026, 2, 1)],
        ["E1", "REV", 90, 130], ["E1", "CAC", 40, 60], ["E2", "REV", 100, 95]])
    wb = openpyxl.load_workbook(book)
    for cell in wb["Actuals"][1][2:]:
        cell.number_format = "mmm yyyy"
    wb.save(book)
    source = tmp_path / "march.csv"
    source.write_text("owner,kpi_id,period,actual\nE1,REV,2026-03-31,140\n")
    assert invoke("import", source, "--book", book).exit_code == 0
    header = openpyxl.load_workbook(book)["Actuals"]["E1"]
    assert header.value == dt.datetime(2026, 3, 1) and header.number_format == "mmm yyyy"
    model, _ = api.load(book)
    assert model.actuals[("E1", "REV")] == {month_of(2026, 1): 90, month_of(2026, 2): 130,
                                            month_of(2026, 3): 140}


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deals=st.lists(st.tuples(st.sampled_from(["priya.nair@acme.example",
                                                 "lucia.ortiz@acme.example"]),
                                st.sampled_from(["Closed won", "Closed lost"]),
                                st.integers(0, 10_000_000), st.integers(1, 12)),
                      min_size=1, max_size=40))
def test_imported_sums_and_counts_match_the_records(acme, tmp_path, deals):
    path = tmp_path / "deals.csv"
    lines = ["Deal Stage,Amount,Close Date,Deal owner,Pipeline"]
    lines += [f'{stage},"{cents / 100:,.2f}",2026-{month:02d}-10 09:00,{owner},Sales Pipeline'
              for owner, stage, cents, month in deals]
    path.write_text("\n".join(lines) + "\n")
    plan = plan_import(path, acme, Path("hubspot-deals"))
    assert plan.bad == []
    won = [(o, c, m) for o, s, c, m in deals if s == "Closed won"]
    ids = {"priya.nair@acme.example": "E003", "lucia.ortiz@acme.example": "E005"}
    expected_rev, expected_deals = {}, {}
    for owner, cents, month in won:
        key = (ids[owner], month_of(2026, month))
        expected_rev[key] = expected_rev.get(key, 0) + cents
        expected_deals[key] = expected_deals.get(key, 0) + 1
    got_rev = {(o, m): v for (o, k, m), v in plan.values.items() if k == "REV"}
    got_deals = {(o, m): v for (o, k, m), v in plan.values.items() if k == "DEALS"}
    assert got_deals == expected_deals
    assert got_rev.keys() == expected_rev.keys()
    for key, cents in expected_rev.items():
        assert got_rev[key] == pytest.approx(cents / 100, abs=1e-6)


def test_title_lines_above_the_header_are_skipped(acme, tmp_path):
    report = tmp_path / "Campaign report.csv"
    report.write_text(  # as Google Ads writes it: a title, the date range, then the table
        "Campaign report\n"
        '"March 1, 2026 - March 31, 2026"\n'
        "Campaign,Campaign owner,Day,Cost,Conversions\n"
        'Spring search,liam.brooks@acme.example,2026-03-03,"1,234.56",17\n'
        'Retargeting,liam.brooks@acme.example,2026-03-20,765.44,0\n'
        'Brand,nobody@acme.example,2026-03-21,10.00,1\n'
        'Total: Account,,,"2,010.00",18\n', encoding="utf-8")
    mapping = _mapping(tmp_path, '[source]\nowner = "Campaign owner"\ndate = "Day"\n'
                       'where_not = { Campaign = "Total: Account" }\n'
                       '[[measure]]\nkpi = "SPEND"\ncolumn = "Cost"\n')
    result = invoke("import", report, "--book", acme, "--map", mapping)
    assert result.exit_code == 1
    assert "Error: Campaign report.csv line 6: unknown owner 'nobody@acme.example'" \
        in result.output
    result = invoke("import", report, "--book", acme, "--map", mapping, "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert "separator ','" in result.output
    book, _ = api.load(acme)
    assert book.actuals[("E010", "SPEND")][month_of(2026, 3)] == pytest.approx(2000.0)


def test_headers_with_line_breaks_stay_on_one_line(acme, tmp_path):
    export = tmp_path / "export.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["Deal\nowner", "Amount\r\n(USD)", "Close date"])
    wb.active.append(["priya.nair@acme.example", 10, dt.datetime(2026, 3, 1)])
    wb.save(export)
    result = run("import", export, "--book", acme, "--map", "hubspot-deals")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: hubspot-deals.toml: filter column 'Pipeline' is not in export.xlsx (columns: "
        "Deal owner, Amount (USD), Close date)"]  # "Deal\nowner" itself matches "Deal owner"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the project")
def test_every_corpus_file_as_an_export_or_annotated_gets_a_clean_answer(acme, tmp_path):
    """The 130 odd files other writers made: as an export to import, and as a workbook to
    annotate — each works or is one clear line, and none of them is changed."""
    from kpireport.core.errors import KpireportError
    from kpireport.data_in.annotate import annotate_workbook

    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    assert len(files) > 100
    before = {p: sha(p) for p in files}
    annotated = 0
    for path in files:
        for mapping in (None, Path("hubspot-deals")):
            try:
                plan_import(path, acme, mapping)
            except KpireportError as exc:
                assert "\n" not in str(exc) and "\r" not in str(exc), (path.name, str(exc))
        try:
            _, issues = api.check(path)
            annotate_workbook(path, issues, tmp_path / f"{path.stem}.checked.xlsx")
            annotated += 1
        except KpireportError as exc:
            assert "\n" not in str(exc), (path.name, str(exc))
    assert annotated > 50
    assert {p: sha(p) for p in files} == before


def test_a_book_waiting_for_its_month_is_filled_or_left_alone(make_workbook, tmp_path):
    """Settings say 2026-02 and nobody has February yet: importing February fixes that;
    importing only January would leave the book failing check, so it is not written."""
    book = make_workbook(Actuals=[["owner", "kpi_id", "2026-01", "2026-02"],
                                  ["E1", "REV", 90, None], ["E1", "CAC", 40, None],
                                  ["E2", "REV", 100, None]])
    assert [i.code for i in api.check(book)[1] if i.severity == "error"] == \
        ["no-actuals-in-period"]
    before = sha(book)
    january = tmp_path / "jan.csv"
    january.write_text("owner,kpi_id,period,actual\nE1,REV,2026-01,91\n")
    result = run("import", january, "--book", book)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {book.name} was not changed: with the imported values it would not pass check "
        "(Settings!B3: report_period 2026-02: nobody has an actual in that month; the latest "
        "month with actuals is 2026-01)"]
    assert sha(book) == before
    february = tmp_path / "feb.csv"
    february.write_text("owner,kpi_id,period,actual\nE1,REV,2026-02,130\nE1,CAC,2026-02,60\n"
                        "E2,REV,2026-02,95\n")
    assert run("import", february, "--book", book).returncode == 0
    assert api.check(book)[0] is not None


def test_month_headers_as_people_type_them_are_the_months_imported_into(make_workbook,
                                                                        tmp_path):
    book = make_workbook(Actuals=[["owner", "kpi_id", "Jan 2026", "Tháng 2/2026"],
                                  ["E1", "REV", 90, 130], ["E1", "CAC", 40, 60],
                                  ["E2", "REV", 100, None]])
    source = tmp_path / "feb.csv"
    source.write_text("owner,kpi_id,period,actual\nE2,REV,Feb 2026,95\n")
    result = invoke("import", source, "--book", book)
    assert result.exit_code == 0, result.output
    assert "new month" not in result.output
    rows = list(openpyxl.load_workbook(book)["Actuals"].iter_rows(values_only=True))
    assert rows[0] == ("owner", "kpi_id", "Jan 2026", "Tháng 2/2026")
    assert rows[3] == ("E2", "REV", 100, 95)
