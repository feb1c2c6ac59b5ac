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

from kpireport.cli import main


def kpireport(*args: str, env: dict | None = None):
    return CliRunner(env={"COLUMNS": "240", **(env or {})}).invoke(main, list(args))


def sample(tmp_path: Path, name: str = "onlinecrm", file: str = "kpis.xlsx") -> Path:
    path = tmp_path / file
    result = kpireport("init", str(path), "--sample", name)
    assert result.exit_code == 0, result.output
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
