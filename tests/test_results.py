"""results.json / results.xlsx / payroll.csv, and the build that writes them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import openpyxl
import pytest

from kpireport import api
from kpireport.core.files import safe_text
from kpireport.report.results_files import payroll_csv, results_json, results_xlsx
from kpireport.score.results import compute

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "kpireport" / "schemas" /
                     "results-1.schema.json").read_text())
SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


@pytest.fixture(scope="module")
def acme():
    book, issues = api.load(SAMPLES / "acme.xlsx")
    return compute(book, issues)


def test_results_json_matches_schema_and_spec_shape(acme):
    doc = results_json(acme)
    jsonschema.validate(doc, SCHEMA)
    assert list(doc) == ["schema", "organization", "period", "fiscal_year_start", "currency",
                         "locale", "source", "scorecards", "issues", "pool"]
    assert doc["period"] == "2026-03" and doc["fiscal_year_start"] == "2025-04"
    owners = {s["owner"] for s in doc["scorecards"]}
    assert {"COMPANY", "Sales", "Marketing", "E001", "E015"} <= owners
    company = next(s for s in doc["scorecards"] if s["owner"] == "COMPANY")
    assert company["bonus"] is None and company["band"] is None
    json.dumps(doc, allow_nan=False)  # no NaN sneaks in


def test_spec_example_json(make_workbook):
    book, issues = api.load(make_workbook())
    doc = results_json(compute(book, issues))
    jsonschema.validate(doc, SCHEMA)
    alice = next(s for s in doc["scorecards"] if s["owner"] == "E1")
    assert alice["ytd"] == {"score": pytest.approx(1.15), "status": "green"}
    assert alice["band"] == "Exceeds" and alice["bonus"] == 1454.79  # 60000×0.1×1.5×59/365
    assert alice["kpis"][0]["month"] == {"actual": 130.0, "target": 100.0, "attainment": 1.3,
                                         "score": 1.5, "status": "green"}


def test_payroll_csv_columns_and_money(acme):
    data = payroll_csv(acme)
    assert data.startswith(b"\xef\xbb\xbf")  # Excel on Windows then reads UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["employee_id", "name", "department", "ytd_score", "band",
                       "bonus_payout", "bonus", "salary_increase", "recommended_salary",
                       "currency", "employment"]
    assert len(rows) == 16
    for row in rows[1:]:
        assert row[9] == "USD"
        if row[6]:
            assert len(row[6].split(".")[1]) == 2


def test_xlsx_sheets_formats_filters(acme):
    book = openpyxl.load_workbook(io.BytesIO(results_xlsx(acme)))
    assert book.sheetnames == ["Owners", "KPI lines"]
    owners = book["Owners"]
    assert owners.freeze_panes == "B2" and owners.auto_filter.ref.startswith("A1:")
    assert owners["E2"].number_format == "0.0%"
    bonus = next(c for (c,) in owners.iter_rows(min_row=2, min_col=11, max_col=11)
                 if c.value is not None)
    assert bonus.number_format == "#,##0.00" and isinstance(bonus.value, (int, float))
    lines = book["KPI lines"]
    assert lines.freeze_panes == "C2"
    assert [c.value for c in lines[1]][:4] == ["owner", "kpi_id", "kpi", "weight"]
    assert lines["A1"].font.b and lines["A1"].fill.fgColor.rgb.endswith("1F3A5F")
    assert lines["D2"].number_format == "0%" and lines["K2"].number_format == "0.0%"
    assert lines.max_row == 1 + sum(len(o.lines) for o in acme.owners)


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)",
                                  "\tx", "\rx"])
def test_text_never_becomes_a_formula(text):
    assert safe_text(text) == "'" + text
    assert safe_text("Alice") == "Alice" and safe_text(5) == 5


def test_injection_through_names_is_neutralised(make_workbook, tmp_path):
    from tests.conftest import BASE, Literal

    people = [row[:] for row in BASE["People"]]
    people[1][1] = Literal("=cmd|' /C calc'!A0")
    book, issues = api.load(make_workbook(People=people))
    results = compute(book, issues)
    sheet = openpyxl.load_workbook(io.BytesIO(results_xlsx(results)))["Owners"]
    names = [c.value for c in sheet["C"]]
    assert "'=cmd|' /C calc'!A0" in names
    assert all(c.data_type != "f" for c in sheet["C"])
    assert "'=cmd" in payroll_csv(results).decode()


def test_kpi_lines_sheet_neutralises_texts_and_keeps_numbers(make_workbook):
    """The KPI lines sheet makes each distinct text safe once: every row of a KPI whose name
    starts like a formula gets the apostrophe, and its numbers stay numbers."""
    from tests.conftest import BASE, Literal

    kpis = [row[:] for row in BASE["KPIs"]]
    kpis[1][1] = Literal("+Revenue")
    book, issues = api.load(make_workbook(KPIs=kpis))
    results = compute(book, issues)
    sheet = openpyxl.load_workbook(io.BytesIO(results_xlsx(results)))["KPI lines"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    revenue = [row for row in rows if row[1] == "REV"]
    assert len(revenue) == 2 and all(row[2] == "'+Revenue" for row in revenue)
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    lines = {(o.owner, ln.kpi_id): ln for o in results.owners for ln in o.lines}
    for row in rows:
        line = lines[(row[0], row[1])]
        assert row[3] == line.weight
        assert row[8:12] == [line.month.actual, line.month.target, line.month.attainment,
                             line.month.score]
        assert row[13:17] == [line.ytd.actual, line.ytd.target, line.ytd.attainment,
                              line.ytd.score]


def test_build_writes_every_file_and_rebuild_is_cached(make_workbook, tmp_path):
    out = tmp_path / "out"
    first = api.build(make_workbook("book.xlsx"), out=out, formats=("html",), workers=1)
    run = out / "2026-02"
    assert first.ok and first.rendered == 5  # company, 1 department, 2 employees, index
    for name in ("results.json", "results.xlsx", "payroll.csv", "index.html", "company.html",
                 "departments/sales.html", "employees/E1.html", "employees/E2.html"):
        assert (run / name).is_file(), name
    assert not list(tmp_path.glob("out/.*staging*"))
    again = api.build(make_workbook("book.xlsx"), out=out, formats=("html",), workers=1)
    assert (again.rendered, again.cached) == (0, 5)


def test_changed_number_rerenders_only_what_changed(make_workbook, tmp_path):
    from tests.conftest import BASE

    out = tmp_path / "out"
    api.build(make_workbook("book.xlsx"), out=out, formats=("html",), workers=1)
    actuals = [row[:] for row in BASE["Actuals"]]
    actuals[3][3] = 96  # Bob's February revenue
    again = api.build(make_workbook("book.xlsx", Actuals=actuals), out=out, formats=("html",),
                      workers=1)
    # Bob's review, his department, the company and the index change; Alice's does not.
    assert again.cached == 1 and again.rendered == 4


def test_failed_build_leaves_previous_files(make_workbook, tmp_path):
    out = tmp_path / "out"
    api.build(make_workbook("book.xlsx"), out=out, formats=("html",), workers=1)
    before = {p: p.read_bytes() for p in (out / "2026-02").rglob("*") if p.is_file()}
    broken = tmp_path / "tpl"
    broken.mkdir()
    (broken / "employee.html").write_text("{% extends 'base.html' %}{% block content %}"
                                          "{{ no_such_variable }}{% endblock %}")
    result = api.build(make_workbook("book.xlsx"), out=out, formats=("html",), workers=1,
                       templates=broken)
    assert not result.ok and set(result.failures) == {"employees/E1", "employees/E2"}
    assert "no_such_variable" in result.failures["employees/E1"]
    assert "employee.html, line 1" in result.failures["employees/E1"]
    after = {p: p.read_bytes() for p in (out / "2026-02").rglob("*") if p.is_file()}
    assert after == before




def test_department_and_kpi_scores_come_from_the_scores(make_workbook):
    """A department without its own scorecard scores its team's average; a KPI not on the
    company scorecard scores the average of the scorecards measuring it; statuses follow
    rag_green and rag_amber like every other score."""
    from tests.conftest import BASE

    results = compute(*api.load(make_workbook()))
    e1, e2 = results.owner("E1"), results.owner("E2")
    sales = results.departments["Sales"]
    assert sales.ytd == sales.team_average == pytest.approx((e1.ytd_score + e2.ytd_score) / 2)
    assert sales.month == pytest.approx((e1.month_score + e2.month_score) / 2)
    assert [o.owner for o in sales.team] == ["E1", "E2"]
    assert sales.status == results.status(sales.ytd)
    rev = results.kpis["REV"]
    lines = [ln for o in (e1, e2) for ln in o.lines if ln.kpi_id == "REV"]
    assert rev.ytd == pytest.approx(sum(ln.ytd.score for ln in lines) / 2)
    assert rev.scorecards == 2 and sum(n for _, n in rev.by_status) == 2

    # with a department scorecard and the KPI on the company's, theirs are the scores
    scorecards = BASE["Scorecards"] + [["Sales", "REV", 1.0, 200, None, None],
                                       ["COMPANY", "REV", 1.0, 300, None, None]]
    actuals = BASE["Actuals"] + [["Sales", "REV", 150, 230], ["COMPANY", "REV", 300, 90]]
    results = compute(*api.load(make_workbook(Scorecards=scorecards, Actuals=actuals)))
    own = results.owner("Sales")
    assert results.departments["Sales"].ytd == own.ytd_score != \
        results.departments["Sales"].team_average
    assert results.kpis["REV"].ytd == results.owner("COMPANY").lines[0].ytd.score
    assert results.kpis["REV"].status == results.status(results.kpis["REV"].ytd)
    assert results.kpis["REV"].scorecards == 4
