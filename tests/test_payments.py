"""Payable this month (issue 30, point 4; SPEC §2.8): earned to date, paid to date (a Payments
sheet, or the earlier approved and sent runs), payable now and clawbacks — against tables
worked by hand, to the cent, half-up.

Every workbook here: fiscal year January–December 2026 (365 days), one KPI REV (sum, higher,
monthly target 100, no threshold or stretch), bands Below 0 → 0%, Meets 95% → 100%,
Exceeds 110% → 150%, bonus_basis ytd. So an employee on target earns
base × pct × days employed / 365."""

from __future__ import annotations

import csv
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path

import jsonschema
import openpyxl
import pytest
from click.testing import CliRunner

from kpireport import api
from kpireport.cli.app import main
from kpireport.score.results import compute

SENDER = "hr@test.example"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "kpireport" / "schemas" /
                     "results-1.schema.json").read_text(encoding="utf-8"))
PEOPLE = [["employee_id", "name", "department", "email", "manager_id", "base_salary",
           "target_bonus_pct", "start_date", "end_date"],
          ["E1", "Alice", "Sales", "alice@x.example", None, 60000, 0.1, None, None],
          ["E2", "Bob", "Sales", "bob@x.example", "E1", 48000, 0.1, "2026-02-15", None],
          ["E3", "Chi", "Sales", "chi@x.example", "E1", 60000, 0.1, None, "2026-02-20"],
          ["E4", "Dan", "Sales", "dan@x.example", "E1", 40000, 0.1, None, None]]
KPIS = [["kpi_id", "kpi", "unit", "direction", "aggregation"],
        ["REV", "Revenue", "currency", "higher", "sum"]]
SCORECARDS = [["owner", "kpi_id", "weight", "target"]] + \
    [[e, "REV", 1.0, 100] for e in ("E1", "E2", "E3", "E4")]
ACTUALS = [["owner", "kpi_id", "2026-01", "2026-02", "2026-03"],
           ["E1", "REV", 100, 100, 100],
           ["E2", "REV", None, 100, 100],
           ["E3", "REV", 100, 100, None],
           ["E4", "REV", 120, 120, 0]]


def settings(period: str, payment: str | None = "monthly") -> list[list[object]]:
    rows = [["setting", "value"], ["organization", "Pay Co"], ["report_period", period],
            ["pdf_protection", "none"]]
    return rows + ([["bonus_payment", payment]] if payment else [])


def book_with(make_workbook, period: str, payment: str | None = "monthly", **sheets):
    return make_workbook(**{"Settings": settings(period, payment), "People": PEOPLE,
                            "KPIs": KPIS, "Scorecards": SCORECARDS, "Actuals": ACTUALS,
                            **sheets})


def table(results) -> dict[str, tuple]:
    """employee → (earned, paid, payable now, clawback) as text, to the cent."""
    def text(v):
        return None if v is None else str(v)

    return {e: (text(p.earned_to_date), text(p.paid_to_date), text(p.payable_now),
                text(p.clawback)) for e, p in results.payables.items()}


# ---------------------------------------------------------------------------- Payments sheet
# March 2026, paid monthly; ytd window Jan 1 – Mar 31 (90 days).
# E1 on target all year:   6,000 × 90/365 = 1,479.452… → 1,479.45; paid Jan 509.59
#                          (6,000 × 31/365) + Feb 460.27 (969.86 − 509.59) = 969.86 → 509.59.
# E2 joined Feb 15:        4,800 × 45/365 = 591.780… → 591.78; paid Feb 184.11
#                          (4,800 × 14/365 = 184.109…) → 407.67.
# E3 left Feb 20:          6,000 × 51/365 = 838.356… → 838.36; paid 509.59 + 328.77 → 0.00.
# E4 120, 120, then 0:     ytd 240/300 = 80% → Below, earned 0.00; paid at Exceeds 150%:
#                          Jan 509.59 (6,000 × 31/365) + Feb 460.27 → clawback −969.86.
PAYMENTS = [["employee_id", "period", "amount"],
            ["E1", "2026-01", 509.59], ["E1", "2026-02", 460.27],
            ["E2", "2026-02", 184.11],
            ["E3", "2026-01", 509.59], ["E3", "2026-02", 328.77],
            ["E4", "2026-01", 509.59], ["E4", "2026-02", 460.27],
            ["E1", "2026-03", 9999]]  # the report month itself: not paid *before* it
HAND_WORKED = {"E1": ("1479.45", "969.86", "509.59", None),
               "E2": ("591.78", "184.11", "407.67", None),
               "E3": ("838.36", "838.36", "0.00", None),
               "E4": ("0.00", "969.86", "0.00", "-969.86")}


def test_payments_sheet_joiner_leaver_and_clawback(make_workbook):
    book, issues = api.load(book_with(make_workbook, "2026-03", Payments=PAYMENTS))
    results = compute(book, issues)
    assert table(results) == HAND_WORKED
    assert results.pool.paid_to_date == Decimal("2962.19")  # 969.86 + 184.11 + 838.36 + 969.86


def test_the_payments_sheet_wins_without_a_schedule_too(make_workbook):
    # bonus_payment none: no payable lines, but the pool knows what was paid
    book, issues = api.load(book_with(make_workbook, "2026-03", None, Payments=PAYMENTS))
    results = compute(book, issues)
    assert results.payables == {}
    assert results.pool.paid_to_date == Decimal("2962.19")


@pytest.mark.parametrize(("schedule", "period", "due"), [
    ("quarterly", "2026-01", False), ("quarterly", "2026-02", False),
    ("quarterly", "2026-03", True), ("annual", "2026-03", False), ("monthly", "2026-02", True)])
def test_nothing_is_payable_between_payment_months(make_workbook, schedule, period, due):
    book, issues = api.load(book_with(make_workbook, period, schedule))
    results = compute(book, issues)
    e1 = results.payables["E1"]
    assert e1.payment_month is due
    # E1 on target, nothing paid yet: the whole earned amount when due, else 0
    assert e1.payable_now == (e1.earned_to_date if due else Decimal("0.00"))


def test_quarterly_pays_the_quarter_at_its_last_month(make_workbook):
    # March, quarterly, no Payments: E1 1,479.45 payable; E4 earned 0.00 (nothing paid yet,
    # so no clawback); E3 left in February: 838.36.
    book, issues = api.load(book_with(make_workbook, "2026-03", "quarterly"))
    assert table(compute(book, issues)) == {
        "E1": ("1479.45", "0.00", "1479.45", None), "E2": ("591.78", "0.00", "591.78", None),
        "E3": ("838.36", "0.00", "838.36", None), "E4": ("0.00", "0.00", "0.00", None)}


def test_payroll_and_results_json_carry_the_lines_and_mark_the_clawback(make_workbook,
                                                                          tmp_path):
    path = book_with(make_workbook, "2026-03", Payments=PAYMENTS)
    result = api.build(path, out=tmp_path / "out", formats=("html",))
    assert result.ok
    rows = list(csv.DictReader(io.StringIO(
        (result.run_dir / "payroll.csv").read_text(encoding="utf-8-sig"))))
    assert {r["employee_id"]: (r["earned_to_date"], r["paid_to_date"], r["payable_now"],
                               r["clawback"] or None) for r in rows} == {
        e: (earned, paid, now, claw) for e, (earned, paid, now, claw) in HAND_WORKED.items()}
    document = json.loads((result.run_dir / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, SCHEMA)
    e4 = next(c for c in document["scorecards"] if c["owner"] == "E4")
    assert (e4["earned_to_date"], e4["paid_to_date"], e4["payable_now"], e4["clawback"]) == \
        (0.0, 969.86, 0.0, -969.86)
    review = (result.run_dir / "employees" / "E4.html").read_text(encoding="utf-8")
    assert "Payable this month" in review and "$969.86" in review and "clawback" in review
    approved = CliRunner().invoke(main, ["approve", str(result.run_dir), "--by", "Lan"])
    assert approved.exit_code == 0, approved.output
    assert "Clawback: 1 employee(s)" in approved.output
    assert "Dan (E4): earned $0.00, paid $969.86, clawback -$969.86" in approved.output


def test_without_a_schedule_the_files_are_as_before(make_workbook, tmp_path):
    result = api.build(book_with(make_workbook, "2026-03", None), out=tmp_path / "out",
                       formats=("html",))
    header = (result.run_dir / "payroll.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header == ("employee_id,name,department,ytd_score,band,bonus_payout,bonus,"
                      "salary_increase,recommended_salary,currency,employment")
    document = json.loads((result.run_dir / "results.json").read_text(encoding="utf-8"))
    assert "payable_now" not in document["scorecards"][-1]


# ---------------------------------------------------------------------------- bad input
def test_bad_payments_rows_and_setting_name_their_cells(make_workbook):
    path = book_with(make_workbook, "2026-03", "weekly", Payments=[
        ["employee_id", "period", "amount"],
        ["E9", "2026-01", 100],       # row 2: nobody
        ["E1", "2025-12", 100],       # row 3: the previous fiscal year
        ["E1", "2026-02", -5],        # row 4: negative
        ["E1", "2027-01", 1]])        # row 5: the next fiscal year
    book, issues = api.check(path)
    assert book is None
    found = {(i.sheet, i.cell, i.code) for i in issues if i.severity == "error"}
    assert found == {("Payments", "A2", "unknown-reference"),
                     ("Payments", "B3", "payment-outside-year"),
                     ("Payments", "C4", "negative-value"),
                     ("Payments", "B5", "payment-outside-year"),
                     ("Settings", "B5", "bad-choice")}
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "payment-outside-year" in result.output
    result = CliRunner().invoke(main, ["check", str(path), "--format", "json"])
    assert result.exit_code == 1
    messages = {i["cell"]: i["message"] for i in json.loads(result.output)["issues"]
                if i["sheet"] == "Payments"}
    assert messages["B3"] == ("Payments!B3: 2025-12 is not in the fiscal year of the report "
                              "month (2026-01 to 2026-12)")
    assert messages["C4"] == "Payments!C4: amount cannot be negative"


# ---------------------------------------------------------------------------- run folders
def smtp_env(port: int) -> dict[str, str]:
    return {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
            "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER,
            "KPIREPORT_SMTP_BACKOFF": "0.01"}


def run(*args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def set_cells(path: Path, sheet: str, **cells) -> None:
    workbook = openpyxl.load_workbook(path)
    for cell, value in cells.items():
        workbook[sheet][cell] = value
    workbook.save(path)


def e1_line(out: Path, period: str) -> tuple:
    document = json.loads((out / period / "results.json").read_text(encoding="utf-8"))
    card = next(c for c in document["scorecards"] if c["owner"] == "E1")
    return card["earned_to_date"], card["paid_to_date"], card["payable_now"]


def test_paid_to_date_from_sent_runs_salary_change_and_reopen(make_workbook, tmp_path, smtp):
    """Alice (E1) alone, paid monthly, from the run folders:

    | step | month | earned to date                      | paid to date          | payable  |
    |------|-------|-------------------------------------|-----------------------|----------|
    | 1    | Jan   | 6,000 × 31/365 = 509.59             | 0                     | 509.59   |
    | 2    | Feb   | 6,000 × 59/365 = 969.86             | Jan 509.59            | 460.27   |
    | 3    | Mar   | raise to 72,000: 7,200 × 90/365 =   | 509.59 + 460.27 =     | 805.48   |
    |      |       | 1,775.34                            | 969.86                |          |
    | 4    | Feb reopened: Feb actual 130 → ytd 230/200 = 115% → Exceeds 150%:             |
    |      | Feb   | 72,000: 7,200 × 1.5 × 59/365 = 1,745.75 | 509.59            | 1,236.16 |
    | 5    | Mar, the correction not sent: paid still counts the Feb that was sent: 969.86 |
    | 6    | Mar, the correction sent: 509.59 + 1,236.16 = 1,745.75; Mar earned 1,775.34   |
    |      |       | (ytd 330/300 = 110% → Exceeds: 7,200 × 1.5 × 90/365 = 2,663.01) → 917.26  |
    """
    _, port = smtp()
    env = smtp_env(port)
    people = [PEOPLE[0], PEOPLE[1], PEOPLE[2][:7] + [None, None]]
    path = make_workbook("pay.xlsx", Settings=settings("2026-01"), People=people, KPIs=KPIS,
                         Scorecards=SCORECARDS[:3],
                         Actuals=[ACTUALS[0], ACTUALS[1], ["E2", "REV", 100, 100, 100]])
    out = tmp_path / "reports"

    def month(period: str, *extra) -> None:
        # each month's build from its own copy of the workbook (send needs that very file)
        set_cells(path, "Settings", B3=period)
        shutil.copy(path, tmp_path / f"{period}.xlsx")
        run("build", tmp_path / f"{period}.xlsx", "--out", out, "--format", "pdf",
            "--workers", "1", *extra)

    def approve_and_send(period: str) -> None:
        run("approve", out / period, "--by", "Lan")
        run("send", out / period, "--book", tmp_path / f"{period}.xlsx", env=env)

    month("2026-01")
    assert e1_line(out, "2026-01") == (509.59, 0.0, 509.59)
    approve_and_send("2026-01")
    month("2026-02")
    assert e1_line(out, "2026-02") == (969.86, 509.59, 460.27)
    approve_and_send("2026-02")
    set_cells(path, "People", F2=72000)  # a raise, typed in March
    month("2026-03")
    assert e1_line(out, "2026-03") == (1775.34, 969.86, 805.48)
    set_cells(path, "Actuals", D2=130)  # February corrected
    month("2026-02", "--reopen", "--by", "Lan", "--note", "Feb revenue corrected")
    assert e1_line(out, "2026-02") == (1745.75, 509.59, 1236.16)
    month("2026-03")  # the correction is not sent: Feb counts as it was sent
    assert e1_line(out, "2026-03")[1] == 969.86
    approve_and_send("2026-02")
    month("2026-03")
    assert e1_line(out, "2026-03") == (2663.01, 1745.75, 917.26)


def test_a_run_built_but_not_sent_paid_nothing(make_workbook, tmp_path):
    path = book_with(make_workbook, "2026-01")
    out = tmp_path / "reports"
    assert api.build(path, out=out, formats=("html",)).ok
    set_cells(path, "Settings", B3="2026-02")
    assert api.build(path, out=out, formats=("html",)).ok
    assert e1_line(out, "2026-02")[1] == 0.0


def test_the_approve_step_of_the_web_app_lists_the_clawbacks(make_workbook, tmp_path):
    from tests.test_web import Server

    path = book_with(make_workbook, "2026-03", Payments=PAYMENTS)
    assert api.build(path, out=tmp_path / "reports", formats=("html",)).ok
    server = Server(tmp_path)
    try:
        status, _, body = server.client().get("/runs/2026-03/deliver")
    finally:
        server.stop()
    assert status == 200
    page = body.decode("utf-8")
    listed = page[page.index("data-clawbacks"):]
    listed = listed[:listed.index("</div>")]
    assert "Dan (E4): earned $0.00, paid $969.86, clawback -$969.86" in listed
    assert "Alice" not in listed
    assert page.index("data-clawbacks") < page.index('action="/runs/2026-03/approve"')
