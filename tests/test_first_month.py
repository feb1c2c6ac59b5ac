"""The first real month (issue 13), tried as a new HR manager would.

Every workbook here starts from what ``kpireport init`` writes (the blank template or a sample)
and is edited with openpyxl the way a person types into Excel; then the real command runs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from kpireport.cli.app import main


def kpireport(*args: str, env: dict | None = None):
    return CliRunner(env={"COLUMNS": "240", **(env or {})}).invoke(main, list(args))


def sample(tmp_path: Path, name: str = "onlinecrm", file: str = "kpis.xlsx") -> Path:
    """A sample as init writes it, with PDF protection off: these tests count plain
    messages (one per report); protected copies are tests/test_protect.py's."""
    path = tmp_path / file
    result = kpireport("init", str(path), "--sample", name)
    assert result.exit_code == 0, result.output
    with Typist(path) as t:
        t.setting("pdf_protection", "none")
    return path


class Typist:
    """Edits a workbook as a person does: finds rows by what they show, types into cells."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.book = openpyxl.load_workbook(path)

    def __enter__(self) -> Typist:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.book.save(self.path)

    def header(self, sheet: str) -> dict[str, int]:
        ws = self.book[sheet]
        return {str(c.value).strip(): c.column for c in ws[1] if c.value is not None}

    def find(self, sheet: str, **match) -> int:
        """The row whose cells show these values (first match)."""
        ws, cols = self.book[sheet], self.header(sheet)
        for r in range(2, ws.max_row + 1):
            if all(ws.cell(r, cols[k]).value == v for k, v in match.items()):
                return r
        raise KeyError(f"{sheet}: no row {match}")

    def type(self, sheet: str, row: int, **values) -> None:
        ws, cols = self.book[sheet], self.header(sheet)
        for column, value in values.items():
            ws.cell(row, cols[column]).value = value

    def setting(self, name: str, value: object) -> None:
        try:
            row = self.find("Settings", setting=name)
        except KeyError:
            row = self.book["Settings"].max_row + 1
            self.type("Settings", row, setting=name)
        self.type("Settings", row, value=value)

    def append(self, sheet: str, **values) -> int:
        ws, cols = self.book[sheet], self.header(sheet)
        row = ws.max_row + 1
        while row > 2 and all(ws.cell(row - 1, c).value is None for c in cols.values()):
            row -= 1
        for column, value in values.items():
            ws.cell(row, cols[column]).value = value
        return row

    def clear_rows(self, sheet: str) -> None:
        ws = self.book[sheet]
        for r in range(2, ws.max_row + 1):
            for c in range(1, ws.max_column + 1):
                ws.cell(r, c).value = None


def payroll(run_dir: Path) -> dict[str, dict[str, str]]:
    text = (run_dir / "payroll.csv").read_bytes().decode("utf-8-sig")
    return {row["employee_id"]: row for row in csv.DictReader(io.StringIO(text))}


# ---------------------------------------------------------------------------- money at ties
def _tester(typist: Typist, base: int, start: dt.date | None) -> None:
    """NV99: one KPI, target 100 a month, 85 typed every month → month and ytd score 85%."""
    typist.append("People", employee_id="NV99", name="Đỗ Thị Hoa", department="Kinh doanh",
                  email="nv99@onlinecrm.example", manager_id="NV02", base_salary=base,
                  target_bonus_pct=0.125, start_date=start)
    typist.append("Scorecards", owner="NV99", kpi_id="HOPDONG", weight=1, target=100)
    months = {f"2026-{m:02d}": 85 for m in range(1, 11)}
    typist.append("Actuals", owner="NV99", kpi_id="HOPDONG", **months)


@pytest.mark.parametrize(("basis", "mode", "base", "start", "exact", "paid"), [
    # 705,000,000 × 12.5% ÷ 12 × 85% = 6,242,187.5 (the binary floats give 6,242,187.4999…)
    ("month", "step", 705_000_000, None, "6242187.5", "6242188"),
    ("month", "linear", 705_000_000, None, "6242187.5", "6242188"),
    # 700,002,475 × 12.5% × 85% × 304/365 (1 Jan – 31 Oct) = 61,945,424.5
    ("ytd", "step", 700_002_475, None, "61945424.5", "61945425"),
    ("ytd", "linear", 700_002_475, None, "61945424.5", "61945425"),
    # joined 1 May: 700,000,650 × 12.5% × 85% × 184/365 = 37,493,185.5
    ("ytd", "step", 700_000_650, dt.datetime(2026, 5, 1), "37493185.5", "37493186"),
    # joined 17 Oct: 700,000,832 × 12.5% ÷ 12 × 85% × 15/31 = 2,998,995.5
    ("month", "step", 700_000_832, dt.datetime(2026, 10, 17), "2998995.5", "2998996"),
])
def test_money_is_exact_at_ties_on_every_pay_path(tmp_path, basis, mode, base, start, exact,
                                                   paid):
    from fractions import Fraction

    book = sample(tmp_path)
    with Typist(book) as t:
        t.setting("bonus_basis", basis)
        t.setting("band_mode", mode)
        # The band that 85% falls in pays 85%: as a step, or on the line 80% → 80%, 100% → 100%.
        t.type("Bands", t.find("Bands", band="Đạt một phần"),
               bonus_payout=0.85 if mode == "step" else 0.8)
        _tester(t, base, start)
    days = {"month": (31 - (start.day - 1 if start else 0), 31),
            "ytd": ((dt.date(2026, 10, 31) - (start.date() if start else dt.date(2026, 1, 1))
                     ).days + 1, 365)}[basis]
    worked = Fraction(base) * Fraction(125, 1000) * Fraction(85, 100) * Fraction(*days) \
        / (12 if basis == "month" else 1)
    assert worked == Fraction(exact)  # the table's numbers are the exact tie they claim
    result = kpireport("build", str(book), "--out", str(tmp_path / "out"), "--format", "html")
    assert result.exit_code == 0, result.output
    row = payroll(tmp_path / "out" / "2026-10")["NV99"]
    assert (row["band"], row["bonus_payout"], row["bonus"]) == ("Đạt một phần", "0.85", paid)


# ---------------------------------------------------------------------------- typing slips
def check_json(book: Path) -> tuple[int, list[dict]]:
    import json

    result = kpireport("check", str(book), "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)["issues"]


def errors(book: Path) -> list[tuple[str, str, str]]:
    return [(i["sheet"], i["cell"], i["code"]) for i in check_json(book)[1]
            if i["severity"] == "error"]


def message(book: Path, code: str) -> str:
    return next(i["message"] for i in check_json(book)[1] if i["code"] == code)


def actual_cell(t: Typist, owner: str, kpi: str, month: str) -> str:
    from openpyxl.utils import get_column_letter

    row = t.find("Actuals", owner=owner, kpi_id=kpi)
    return f"{get_column_letter(t.header('Actuals')[month])}{row}"


def test_whole_number_actual_on_a_percent_kpi_is_an_error_naming_the_cell(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        t.type("Actuals", t.find("Actuals", owner="E011", kpi_id="RET"), **{"2026-03": 93})
        cell = actual_cell(t, "E011", "RET", "2026-03")
    assert errors(book) == [("Actuals", cell, "percent-as-whole-number")]
    text = message(book, "percent-as-whole-number")
    assert f"Actuals!{cell}" in text and "type 93%" in text and "target is 95%" in text
    build = kpireport("build", str(book), "--out", str(tmp_path / "out"), "--format", "html")
    assert build.exit_code == 1 and "Traceback" not in build.output
    assert not (tmp_path / "out").exists()


def test_whole_number_target_against_percent_actuals_is_an_error(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        row = t.find("Scorecards", owner="E013", kpi_id="RET")
        t.type("Scorecards", row, target=90, threshold=None, stretch=None)  # actuals ≈ 94%
        bounded = t.find("Scorecards", owner="E012", kpi_id="RET")
        t.type("Scorecards", bounded, target=95)  # threshold 92%, stretch 98% stay
    assert errors(book) == [("Scorecards", f"D{bounded}", "percent-as-whole-number"),
                            ("Scorecards", f"D{row}", "percent-as-whole-number")]
    texts = [i["message"] for i in check_json(book)[1]]
    assert any("type 90%" in m and "actuals are like" in m for m in texts)
    assert any("type 95%" in m and "threshold and stretch are like 98%" in m for m in texts)


def test_percents_above_100_and_percent_text_stay_valid(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        t.append("KPIs", kpi_id="ROI", kpi="Return on investment", unit="percent",
                 direction="higher", aggregation="average")
        t.type("Scorecards", t.find("Scorecards", owner="E011", kpi_id="RET"), kpi_id="ROI",
               target=3, threshold=2.5, stretch=4)  # 300%, 250%, 400%
        row = t.find("Actuals", owner="E011", kpi_id="RET")
        t.type("Actuals", row, kpi_id="ROI", **{f"2025-{m:02d}": 3.2 for m in range(4, 13)})
        t.type("Actuals", row, **{"2026-01": 2.9, "2026-02": "310%", "2026-03": 3.35})
        t.type("Actuals", t.find("Actuals", owner="E012", kpi_id="RET"), **{"2026-03": "93%"})
    code, issues = check_json(book)
    assert code == 0, [i for i in issues if i["severity"] == "error"]
    build = kpireport("build", str(book), "--out", str(tmp_path / "out"), "--format", "html")
    assert build.exit_code == 0, build.output
    import json

    cards = json.loads((tmp_path / "out" / "2026-03" / "results.json").read_text())["scorecards"]
    roi = next(k for c in cards if c["owner"] == "E011" for k in c["kpis"] if k["kpi_id"] == "ROI")
    assert roi["month"]["actual"] == pytest.approx(3.35) and roi["month"]["target"] == 3
    ret = next(k for c in cards if c["owner"] == "E012" for k in c["kpis"] if k["kpi_id"] == "RET")
    assert ret["month"]["actual"] == pytest.approx(0.93)


@pytest.mark.parametrize("header", ["03/2026", "3/2026", "2026-3", "Mar 2026", "March 2026",
                                    "Mar-26", "Tháng 3/2026", "tháng 03 năm 2026", "thg 3 2026"])
def test_month_headers_people_type_are_read_as_that_month(tmp_path, header):
    import json

    book = sample(tmp_path, "acme")  # report_period blank: the latest month with an actual
    with Typist(book) as t:
        ws = t.book["Actuals"]
        ws.cell(1, t.header("Actuals")["2026-03"]).value = header
    result = kpireport("build", str(book), "--out", str(tmp_path / "out"), "--format", "html")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "2026-03" / "results.json").read_text())
    priya = next(c for c in data["scorecards"] if c["owner"] == "E003")
    rev = next(k for k in priya["kpis"] if k["kpi_id"] == "REV")
    assert data["period"] == "2026-03" and rev["month"]["actual"] == 71924.29


@pytest.mark.parametrize("header", ["Q1 2026", "2026-13", "01/03/2026", "Tháng 3", "Mar",
                                    "Mar 26"])
def test_a_month_header_that_cannot_be_read_is_an_error_naming_the_cell(tmp_path, header):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        column = t.header("Targets")["2026-03"]
        t.book["Targets"].cell(1, column).value = header
    from openpyxl.utils import get_column_letter

    cell = f"{get_column_letter(column)}1"
    assert errors(book) == [("Targets", cell, "bad-period")]
    assert f"Targets!{cell}" in message(book, "bad-period")


def test_one_slip_one_error_with_a_suggestion(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        row = t.find("Scorecards", owner="E003", kpi_id="DEALS")
        t.type("Scorecards", row, kpi_id="DEAL")
    assert errors(book) == [("Scorecards", f"B{row}", "unknown-reference")]
    assert "did you mean DEALS?" in message(book, "unknown-reference")


def test_weight_typed_as_whole_number_is_one_error(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        t.append("Targets", owner="E015", kpi_id="LEADS", **{"2026-03": 320})
        row = t.find("Scorecards", owner="E015", kpi_id="LEADS")
        t.type("Scorecards", row, weight=100)
    assert errors(book) == [("Scorecards", f"C{row}", "percent-as-whole-number")]


def test_mistyped_owner_gives_no_weight_or_actuals_errors_elsewhere(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        row = t.find("Scorecards", owner="E015", kpi_id="LEADS")
        t.type("Scorecards", row, owner="E15")
        actuals = t.find("Actuals", owner="E007", kpi_id="LEADS")
        t.type("Actuals", actuals, owner="E07")
    assert errors(book) == [("Scorecards", f"A{row}", "unknown-owner"),
                            ("Actuals", f"A{actuals}", "unknown-owner")]
    texts = [i["message"] for i in check_json(book)[1] if i["severity"] == "error"]
    assert "did you mean E015?" in texts[0] and "did you mean E007?" in texts[1]
    warnings = [i for i in check_json(book)[1] if i["code"] == "no-actuals"]
    assert warnings == []


@pytest.mark.parametrize(("sheet", "edit", "code", "hint"), [
    ("KPIs", lambda t: t.type("KPIs", t.find("KPIs", kpi_id="REV"), direction="hight"),
     "bad-choice", "did you mean higher?"),
    ("Scorecards", lambda t: setattr(t.book["Scorecards"], "title", "Scorecard"),
     "missing-sheet", "did you mean Scorecard? Rename it to Scorecards"),
    ("Scorecards", lambda t: setattr(t.book["Scorecards"].cell(1, 3), "value", "weigth"),
     "missing-column", "did you mean weigth? Rename that header to weight"),
    ("People", lambda t: t.type("People", t.find("People", employee_id="E003"),
                                email="Priya Nair <priya.nair@acme.example>"),
     "bad-email", "type the address alone: priya.nair@acme.example"),
    ("People", lambda t: t.type("People", t.find("People", employee_id="E003"),
                                manager_id="E02"),
     "unknown-reference", "did you mean E002?"),
])
def test_slips_in_names_and_choices_suggest_the_right_one(tmp_path, sheet, edit, code, hint):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        edit(t)
    found = [e for e in errors(book)]
    assert [c for _, _, c in found] == [code], found
    assert hint in message(book, code)


def test_advice_never_loses_data(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        t.append("Actuals", owner="E008", kpi_id="CONV", **{"2026-03": 0.031})
        t.append("Actuals", owner="E009", kpi_id="DEALS", **{"2026-03": 3})
    issues = [i for i in check_json(book)[1] if i["severity"] == "error"]
    assert [i["code"] for i in issues] == ["formula-has-actuals", "unknown-scorecard-line"]
    assert all("delete" not in i["message"] for i in issues)
    assert "SIGNUPS, VISITS" in issues[0]["message"]


# ---------------------------------------------------------------------------- mail
PEOPLE = [("E1", "Alice Ng", "Sales", "alice@firm.example", None),
          ("E2", "Bao Tran", "Sales", "bao@firm.example", "E1"),
          ("E3", "Chi Le", "Sales", "chi@firm.example", "E1")]


def from_template(tmp_path: Path, people=PEOPLE, file: str = "kpis.xlsx") -> Path:
    """The blank template, filled in as a new HR manager would (no Recipients rows)."""
    path = tmp_path / file
    assert kpireport("init", str(path), "--year", "2026").exit_code == 0
    with Typist(path) as t:
        t.setting("organization", "Firm Ltd")
        t.setting("pdf_protection", "none")  # plain messages, one per report
        for emp, name, dept, mail, manager in people:
            t.append("People", employee_id=emp, name=name, department=dept, email=mail,
                     manager_id=manager, base_salary=60000, target_bonus_pct=0.1)
            t.append("Scorecards", owner=emp, kpi_id="SALES", weight=1, target=100)
            t.append("Actuals", owner=emp, kpi_id="SALES",
                     **{"2026-01": 90, "2026-02": 104, "2026-03": 97})
        t.append("KPIs", kpi_id="SALES", kpi="Sales", unit="number", direction="higher",
                 aggregation="sum")
        t.append("Bands", band="Below", min_score=0, bonus_payout=0, salary_increase=0)
        t.append("Bands", band="Meets", min_score=0.95, bonus_payout=1, salary_increase=0.03)
    return path


@pytest.fixture
def mailbox(smtp):
    """mailbox(**options) → (handler, port): the suite's SMTP server on loopback."""
    return lambda **kwargs: smtp(None, **kwargs)


def loopback(port: int) -> dict[str, str]:
    return {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
            "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": "hr@firm.example"}


def received(handler) -> dict[str, list[str]]:
    import email
    import email.policy

    found = {}
    for rcpts, data in handler.messages:
        message = email.message_from_bytes(data, policy=email.policy.default)
        found[message["Subject"]] = sorted(rcpts)
    return found


def run_approve_send(book: Path, out: Path, handler, port: int):
    """The month as the template sets it up (require_approval yes): the job builds and waits
    (exit 4, nothing sent), a person approves, the send follows; the send's result."""
    job = kpireport("run", str(book), "--out", str(out), "--send", "--workers", "1",
                    env=loopback(port))
    assert job.exit_code == 4 and "awaits approval" in job.output, job.output
    assert handler.messages == []
    assert kpireport("approve", str(out / "2026-03"), "--by", "HR lead").exit_code == 0
    return kpireport("send", str(out / "2026-03"), "--book", str(book), env=loopback(port))


def test_a_workbook_made_from_the_template_sends_mail_to_the_defaults(tmp_path, mailbox):
    handler, port = mailbox()
    book = from_template(tmp_path)
    result = run_approve_send(book, tmp_path / "reports", handler, port)
    assert result.exit_code == 0, result.output
    assert len(handler.messages) == 5 and "7 sent" in result.output  # 7 recipients in all
    got = sorted(received(handler).values())
    assert got == sorted([
        ["alice@firm.example"],  # Alice's review: she has no manager
        ["alice@firm.example", "bao@firm.example"], ["alice@firm.example", "chi@firm.example"],
        ["alice@firm.example"],  # Sales: its head
        ["alice@firm.example"]])  # the company: the people with no manager


def test_a_recipients_row_for_one_kind_keeps_the_defaults_for_the_others(tmp_path, mailbox):
    handler, port = mailbox()
    book = from_template(tmp_path)
    with Typist(book) as t:
        t.append("Recipients", report="company", scope="*", to="board@firm.example")
    result = run_approve_send(book, tmp_path / "reports", handler, port)
    assert result.exit_code == 0, result.output
    rcpts = [sorted(r) for r, _ in handler.messages]
    assert ["board@firm.example"] in rcpts and len(rcpts) == 5
    assert ["bao@firm.example", "alice@firm.example"][::-1] in rcpts


def test_a_send_that_would_send_nothing_is_an_error(tmp_path, mailbox):
    handler, port = mailbox()
    book = from_template(tmp_path, [p[:3] + (None,) + p[4:] for p in PEOPLE])
    result = run_approve_send(book, tmp_path / "reports", handler, port)
    assert result.exit_code == 1
    assert "no recipient for 5 reports: People has no e-mail addresses" in result.output
    assert "Traceback" not in result.output and "wrote 0" not in result.output
    again = kpireport("send", str(tmp_path / "reports" / "2026-03"), "--book", str(book),
                      env=loopback(port))
    assert again.exit_code == 1 and "no recipient for 5 reports" in again.output
    assert handler.messages == []


def test_one_person_without_an_address_is_a_listed_warning(tmp_path, mailbox):
    handler, port = mailbox()
    people = PEOPLE[:2] + [("E3", "Chi Le", "Sales", None, "E1")]
    book = from_template(tmp_path, people)
    result = run_approve_send(book, tmp_path / "reports", handler, port)
    assert result.exit_code == 0, result.output
    assert "Warning: employees/E3: Chi Le (E3) has no e-mail address" in result.output
    assert len(handler.messages) == 5  # Chi's review still goes to her manager (cc → to)


def test_run_dry_run_writes_every_message_and_sends_nothing(tmp_path, mailbox):
    handler, port = mailbox()
    book = from_template(tmp_path)
    outbox = tmp_path / "outbox"
    result = kpireport("run", str(book), "--out", str(tmp_path / "reports"), "--dry-run",
                       "--outbox", str(outbox), "--workers", "1", env=loopback(port))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in outbox.glob("*.eml")) == [
        "company.eml", "departments__sales.eml", "employees__E1.eml", "employees__E2.eml",
        "employees__E3.eml"]
    assert handler.messages == [] and not list((tmp_path / "reports").rglob("*ledger*"))
    assert kpireport("run", str(book), "--dry-run").exit_code == 2  # needs --outbox


def _help_example(command: str) -> list[str]:
    text = kpireport(command, "--help").output
    block = text.split("Example:")[1].split("\n\n")[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_the_send_help_example_works_in_a_fresh_shell(tmp_path, mailbox):
    import os
    import subprocess
    import sys

    handler, port = mailbox()
    lines = _help_example("send")
    assert lines[0].startswith("kpireport init") and "--dry-run" in lines[2]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kpireport").write_text(f"#!/bin/sh\nexec {sys.executable} -m kpireport \"$@\"\n")
    (bin_dir / "kpireport").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPIREPORT_")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    shell = tmp_path / "fresh"
    shell.mkdir()
    script = "set -e\n" + "\n".join(lines[:3]) + "\n"
    run = subprocess.run(["bash", "-c", script], cwd=shell, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    # acme as init writes it: 19 reports (Tom Becker left); employee reviews are encrypted
    # for each recipient, so a review with a cc is two messages (32 in all)
    mails = [p.name for p in (shell / "outbox").glob("*.eml")]
    assert len({"__".join(name.removesuffix(".eml").split("__")[:2]) for name in mails}) == 19
    assert len(mails) == 32
    # the lines that send need a server: the same lines, pointed at the loopback one
    real = "\n".join(lines[3:]).replace("smtp.example.com", "127.0.0.1")
    real = real.replace("export ", f"export KPIREPORT_SMTP_PORT={port} "
                        "KPIREPORT_SMTP_SECURITY=none ", 1)
    run = subprocess.run(["bash", "-c", "set -e\n" + real], cwd=shell, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(handler.messages) == 32


def test_doctor_smtp_checks_the_server_and_sends_nothing(tmp_path, mailbox):
    from aiosmtpd.smtp import AuthResult

    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=auth_data.password == b"right-pw", handled=False)

    handler, port = mailbox(authenticator=authenticator, auth_require_tls=False)
    env = {**loopback(port), "KPIREPORT_SMTP_USER": "hr", "KPIREPORT_SMTP_PASSWORD": "right-pw"}
    good = kpireport("doctor", "--smtp", env=env)
    assert good.exit_code == 0, good.output
    for step in ("connect", "EHLO", "AUTH", "logged in as hr", "hr@firm.example accepted"):
        assert step in good.output
    assert "right-pw" not in good.output and handler.messages == []
    bad = kpireport("doctor", "--smtp", env={**env, "KPIREPORT_SMTP_PASSWORD": "wrong-pw"})
    assert bad.exit_code == 1 and "refused the login for 'hr'" in bad.output
    assert "wrong-pw" not in bad.output
    from tests.conftest import free_port

    closed = kpireport("doctor", "--smtp", env={**env, "KPIREPORT_SMTP_PORT": str(free_port())})
    assert closed.exit_code == 1 and "failed" in closed.output and "connect" in closed.output
    unset = kpireport("doctor", "--smtp", env={"KPIREPORT_SMTP_HOST": ""})
    assert unset.exit_code == 1 and "no SMTP server" in unset.output


def test_doctor_smtp_starttls_trusted_and_untrusted(tmp_path, mailbox):
    import os
    import ssl
    import subprocess
    import sys

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    handler, port = mailbox(tls_context=context, require_starttls=True)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    env = {**os.environ, **loopback(port), "KPIREPORT_SMTP_SECURITY": "starttls",
           "COLUMNS": "200"}

    def doctor(**extra):
        return subprocess.run([sys.executable, "-m", "kpireport", "doctor", "--smtp"],
                              env={**env, **extra}, capture_output=True, text=True, timeout=60)

    trusted = doctor(SSL_CERT_FILE=str(tmp_path / "ca.pem"))
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "STARTTLS" in trusted.stdout and "certificate for 127.0.0.1 verified" in trusted.stdout
    untrusted = doctor()
    assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout
    assert handler.messages == []


# ---------------------------------------------------------------------------- people, periods
def test_leavers_and_future_joiners_get_no_review_and_no_mail_but_stay_in_pay(tmp_path,
                                                                                mailbox):
    import json

    handler, port = mailbox()
    book = sample(tmp_path, "acme")  # Tom Becker (E004) left on 31 Jan 2026; period 2026-03
    with Typist(book) as t:
        t.append("People", employee_id="E016", name="Rae Quinn", department="Marketing",
                 email="rae.quinn@acme.example", manager_id="E007", base_salary=70000,
                 target_bonus_pct=0.08, start_date=dt.datetime(2026, 4, 13))
        t.append("Scorecards", owner="E016", kpi_id="LEADS", weight=1, target=300)
        t.type("People", t.find("People", employee_id="E006"), end_date=dt.datetime(2026, 3, 10))
    outbox = tmp_path / "outbox"
    result = kpireport("run", str(book), "--out", str(tmp_path / "reports"), "--dry-run",
                       "--outbox", str(outbox), "--workers", "2", env=loopback(port))
    assert result.exit_code == 0, result.output
    run = tmp_path / "reports" / "2026-03"
    mails = {p.name for p in outbox.glob("*.eml")}
    assert "employees__E006.eml" in mails  # left during the month: reviewed
    assert not {"employees__E004.eml", "employees__E016.eml"} & mails
    assert not (run / "employees" / "E004.pdf").exists()
    assert not (run / "employees" / "E016.html").exists()
    assert (run / "employees" / "E006.pdf").exists()
    cards = {c["owner"]: c for c in json.loads((run / "results.json").read_text())["scorecards"]}
    assert cards["E004"]["employment"] == "left" and cards["E004"]["bonus"] is not None
    assert cards["E004"]["recommended_salary"] is not None
    assert cards["E016"]["employment"] == "not-started"
    assert cards["E006"]["employment"] == "employed" and cards["Sales"]["employment"] is None
    pay = payroll(run)
    assert pay["E004"]["employment"] == "left" and float(pay["E004"]["bonus"]) == \
        cards["E004"]["bonus"]
    sheet = openpyxl.load_workbook(run / "results.xlsx")["Owners"]
    header = [c.value for c in sheet[1]]
    rows = {r[0]: dict(zip(header, r)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["E004"]["employment"] == "left" and rows["E004"]["bonus (USD)"] is not None
    sales = (run / "departments" / "sales.html").read_text()
    index = (run / "index.html").read_text()
    assert "Tom Becker" not in sales and "E004.html" not in index and "E016" not in index
    assert "Sam Okafor" in sales


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_a_period_nobody_has_actuals_for_is_an_error_naming_the_latest(tmp_path, how):
    book = sample(tmp_path, "acme")
    args = ["build", str(book), "--out", str(tmp_path / "out"), "--format", "html"]
    if how == "flag":
        args += ["--period", "2026-06"]
    else:
        with Typist(book) as t:
            t.setting("report_period", "2026-06")
    result = kpireport(*args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "2026-06: nobody has an actual in that month; the latest month with actuals is " \
        "2026-03" in result.output
    assert not (tmp_path / "out").exists()
    if how == "setting":
        assert ("Settings", "B6", "no-actuals-in-period") in errors(book)


# ---------------------------------------------------------------------------- Excel files
def test_payroll_csv_opens_in_excel_with_vietnamese_names(tmp_path):
    book = sample(tmp_path, "onlinecrm")
    result = kpireport("build", str(book), "--out", str(tmp_path / "out"), "--format", "html")
    assert result.exit_code == 0, result.output
    data = (tmp_path / "out" / "2026-10" / "payroll.csv").read_bytes()
    assert data.startswith("\ufeffemployee_id,".encode())
    assert payroll(tmp_path / "out" / "2026-10")["NV01"]["name"] == "Nguyễn Văn An"


def test_results_xlsx_speaks_the_workbook_language_and_formats_percent_kpis(tmp_path):
    book = sample(tmp_path, "onlinecrm")
    result = kpireport("build", str(book), "--out", str(tmp_path / "out"), "--format", "html")
    assert result.exit_code == 0, result.output
    workbook = openpyxl.load_workbook(tmp_path / "out" / "2026-10" / "results.xlsx")
    assert workbook.sheetnames == ["Đối tượng", "Dòng KPI"]
    owners = workbook["Đối tượng"]
    header = [c.value for c in owners[1]]
    assert header[:4] == ["đối tượng", "loại", "họ tên", "phòng ban"]
    assert "thưởng (VND)" in header and "tình trạng làm việc" in header
    values = {v for row in owners.iter_rows(min_row=2, values_only=True) for v in row}
    assert {"nhân viên", "công ty", "đang làm việc"} <= values
    assert values & {"Đạt tiến độ", "Có rủi ro", "Không đạt"}
    assert not values & {"green", "amber", "red", "employee"}
    lines = workbook["Dòng KPI"]
    header = [c.value for c in lines[1]]
    assert header[4:8] == ["mục tiêu", "tên mục tiêu", "mục tiêu chiến lược",
                           "tên mục tiêu chiến lược"]
    col = {name: i for i, name in enumerate(header)}
    found = {}
    for row in lines.iter_rows(min_row=2):
        found[(row[0].value, row[1].value)] = row
    conversion = found[("NV01", "TYLECD")]
    assert conversion[col["thực tế tháng"]].number_format == "0.0%"
    assert conversion[col["mục tiêu tháng"]].number_format == "0.0%"
    assert conversion[col["tên mục tiêu"]].value == "Chuyển đổi khách hàng tiềm năng thành hợp đồng"
    revenue = found[("NV01", "DOANHTHU")]
    assert revenue[col["thực tế tháng"]].number_format == "#,##0"
    assert revenue[col["tên mục tiêu chiến lược"]].value == "Doanh thu 120 tỷ đồng trong năm 2026"


@pytest.mark.parametrize(("column", "typed", "hint"), [
    ("owner", "E08", "did you mean E008?"), ("kpi_id", "SIGNUP", "did you mean SIGNUPS?")])
def test_a_mistyped_actuals_row_is_one_error_not_a_missing_formula_part(tmp_path, column,
                                                                          typed, hint):
    book = sample(tmp_path, "acme")  # E008's CONV = SIGNUPS / VISITS needs the SIGNUPS row
    with Typist(book) as t:
        row = t.find("Actuals", owner="E008", kpi_id="SIGNUPS")
        t.type("Actuals", row, **{column: typed})
    code, issues = check_json(book)
    cell = ("A" if column == "owner" else "B") + str(row)
    assert [(i["sheet"], i["cell"]) for i in issues if i["severity"] != "info"] == \
        [("Actuals", cell)]
    assert hint in issues[[i["cell"] for i in issues].index(cell)]["message"]


def test_a_mistyped_setting_name_suggests_the_setting(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        t.type("Settings", t.find("Settings", setting="bonus_basis"), setting="bonus basis")
    assert "did you mean bonus_basis?" in message(book, "unknown-setting")


def test_people_who_have_left_receive_no_one_elses_report(tmp_path):
    import email
    import email.policy

    book = sample(tmp_path, "acme")
    with Typist(book) as t:  # the head of Sales leaves at the end of February
        t.type("People", t.find("People", employee_id="E002"), end_date=dt.datetime(2026, 2, 28))
        t.clear_rows("Recipients")  # the defaults: {employee} cc {manager}, {head}
    outbox = tmp_path / "outbox"
    result = kpireport("run", str(book), "--out", str(tmp_path / "reports"), "--dry-run",
                       "--outbox", str(outbox), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "Priya Nair's manager E002 is no longer employed" in result.output

    def read(name):
        return email.message_from_bytes((outbox / name).read_bytes(),
                                        policy=email.policy.default)

    everyone = " ".join(str(read(p.name)["To"]) + " " + str(read(p.name)["Cc"] or "")
                        for p in outbox.glob("*.eml"))
    assert "marcus.chen" not in everyone and not (outbox / "employees__E002.eml").exists()
    assert read("employees__E003.eml")["To"] == "priya.nair@acme.example"
    sales = str(read("departments__sales.eml")["To"])
    assert "priya.nair@acme.example" in sales and "tom.becker" not in sales


@pytest.mark.parametrize("header", [2026.03, 202603])
def test_a_number_as_a_month_header_is_an_error(tmp_path, header):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        t.book["Actuals"].cell(1, t.header("Actuals")["2026-03"]).value = header
    assert [c for _, _, c in errors(book)] == ["bad-period"]


def test_percent_slip_in_long_actuals_names_the_actual_cell(tmp_path):
    book = from_template(tmp_path)
    with Typist(book) as t:
        t.append("KPIs", kpi_id="WINRATE", kpi="Win rate", unit="percent", direction="higher",
                 aggregation="average")
        for emp in ("E1", "E2", "E3"):
            row = t.find("Scorecards", owner=emp, kpi_id="SALES")
            t.type("Scorecards", row, weight=0.5)
            t.append("Scorecards", owner=emp, kpi_id="WINRATE", weight=0.5, target=0.3)
        ws = t.book["Actuals"]  # replaced by a system export: the long layout
        ws.delete_rows(1, ws.max_row)
        ws.append(["owner", "kpi_id", "period", "actual"])
        for emp in ("E1", "E2", "E3"):
            for month, sales, rate in (("2026-01", 90, 0.28), ("2026-02", 104, "31%")):
                ws.append([emp, "SALES", month, sales])
                ws.append([emp, "WINRATE", month, 33 if (emp, month) == ("E2", "2026-02")
                           else rate])
    slip = 2 + [(e, m, k) for e in ("E1", "E2", "E3") for m in ("2026-01", "2026-02")
                for k in ("SALES", "WINRATE")].index(("E2", "2026-02", "WINRATE"))
    assert errors(book) == [("Actuals", f"D{slip}", "percent-as-whole-number")]
    assert "type 33%" in message(book, "percent-as-whole-number")


def test_doctor_smtp_over_implicit_tls(tmp_path, mailbox):
    import os
    import ssl
    import subprocess
    import sys

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    handler, port = mailbox(ssl_context=context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    env = {**os.environ, **loopback(port), "KPIREPORT_SMTP_SECURITY": "ssl", "COLUMNS": "200",
           "SSL_CERT_FILE": str(tmp_path / "ca.pem")}
    run = subprocess.run([sys.executable, "-m", "kpireport", "doctor", "--smtp"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(ssl)" in run.stdout and "certificate for 127.0.0.1 verified" in run.stdout
    assert handler.messages == []


def test_a_misspelled_optional_column_is_a_warning_not_a_silent_note(tmp_path):
    book = sample(tmp_path, "acme")
    with Typist(book) as t:
        column = t.header("People")["end_date"]
        t.book["People"].cell(1, column).value = "end date"
        t.book["People"].cell(1, column + 1).value = "owner_notes"
    code, issues = check_json(book)
    found = [(i["severity"], i["sheet"], i["code"]) for i in issues if i["sheet"] == "People"]
    assert code == 0 and ("warning", "People", "similar-column") in found
    assert "did you mean end_date?" in message(book, "similar-column")
    assert ("info", "People", "unknown-column") in found  # a helper column stays a note
