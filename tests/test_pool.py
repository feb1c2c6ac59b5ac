"""The bonus pool (issue 30, point 5): earned to date, and the year end projected at the
current pace by a seeded bootstrap through the scoring code.

Each projection test builds the year the bootstrap can draw as a workbook of its own and
scores it with ``compute``: the projection must land on those figures to the cent."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.model import month_of
from kpireport.score.pool import DRAWS, SEED
from kpireport.score.results import compute

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"

PEOPLE = [["employee_id", "name", "department", "email", "manager_id", "base_salary",
           "target_bonus_pct", "start_date", "end_date"],
          ["E1", "Alice", "Sales", "a@x.example", None, 60000, 0.1, None, None],
          ["E2", "Bob", "Sales", "b@x.example", "E1", 50000, 0.12, None, "2026-06-30"],
          ["E3", "Chi", "Ops", "c@x.example", "E1", 45000, 0.1, None, None]]
KPIS = [["kpi_id", "kpi", "unit", "direction", "aggregation", "formula"],
        ["REV", "Revenue", "currency", "higher", "sum", None],
        ["CAC", "Customer acquisition cost", "currency", "lower", "average", None],
        ["WON", "Deals won", "number", "higher", "sum", None],
        ["LEADS", "Leads", "number", "higher", "sum", None],
        ["CONV", "Conversion", "percent", "higher", None, "WON / LEADS"]]
SCORECARDS = [["owner", "kpi_id", "weight", "target", "threshold", "stretch"],
              ["E1", "REV", 0.6, 100, 80, 120],
              ["E1", "CAC", 0.4, 50, None, None],
              ["E2", "REV", 1.0, 100, None, None],
              ["E3", "CONV", 0.5, 0.2, 0.1, 0.3],
              ["E3", "REV", 0.5, 100, None, None]]


def settings(period: str, **more: object) -> list[list[object]]:
    rows = [["setting", "value"], ["organization", "Pool Co"], ["report_period", period]]
    return rows + [[k, v] for k, v in more.items()]


def actuals(months: list[str], values: dict[tuple[str, str], list]) -> list[list[object]]:
    return [["owner", "kpi_id", *months]] + [[o, k, *v] for (o, k), v in values.items()]


JAN = {("E1", "REV"): [90], ("E1", "CAC"): [40], ("E2", "REV"): [110],
       ("E3", "WON"): [3], ("E3", "LEADS"): [20], ("E3", "REV"): [70]}


def year_end_total(book, fill: dict[tuple[str, str], dict[int, float]]) -> Decimal:
    """The pool at the end of the fiscal year when the months left have ``fill``'s actuals."""
    merged = {key: {**book.actuals.get(key, {}), **months} for key, months in fill.items()}
    year_end = replace(book, actuals={**book.actuals, **merged},
                       settings=replace(book.settings, report_period=month_of(2026, 12)))
    results = compute(year_end)
    return sum((p.bonus for p in results.pay.values() if p.bonus is not None), Decimal(0))


def employed_months(book, owner: str) -> list[int]:
    person = next((p for p in book.people if p.employee_id == owner), None)
    last = month_of(2026, 12) if person is None or person.end_date is None else \
        month_of(person.end_date.year, person.end_date.month)
    return list(range(month_of(2026, 2), last + 1))


@pytest.mark.parametrize("more", [{}, {"band_mode": "linear"}, {"missing_actuals": "zero"}])
def test_one_month_so_far_projects_that_month_for_the_rest_of_the_year(make_workbook, more):
    # With January alone known, every draw repeats January: the band is one number, the
    # pool compute() gives for a year whose employed months all look like January (Bob left
    # in June: his months after it are not drawn, and his bonus is pro-rated to June 30).
    path = make_workbook(Settings=settings("2026-01", **more), People=PEOPLE, KPIs=KPIS,
                         Scorecards=SCORECARDS, Actuals=actuals(["2026-01"], JAN))
    book, issues = api.load(path)
    pool = compute(book, issues).pool
    fill = {key: {m: values[0] for m in employed_months(book, key[0])}
            for key, values in JAN.items()}
    expected = year_end_total(book, fill)
    assert pool.projection.months_left == 11
    assert (pool.projection.low, pool.projection.expected, pool.projection.high) == \
        (expected, expected, expected)
    assert pool.projection.draws == DRAWS and pool.projection.seed == SEED


def test_the_band_spans_the_months_a_line_can_repeat(make_workbook):
    # One person, one KPI, two months known (March 80, October 130), November known too;
    # December is drawn from {80, 130, 100}: the 10th percentile is the year with 80 in
    # December, the 90th the year with 130 (each drawn about a third of the time).
    months = ["2026-03", "2026-10", "2026-11"]
    path = make_workbook(
        Settings=settings("2026-11"), People=PEOPLE[:2], KPIs=KPIS[:2],
        Scorecards=[SCORECARDS[0], ["E1", "REV", 1.0, 100, 80, 120]],
        Actuals=actuals(months, {("E1", "REV"): [80, 130, 100]}))
    book, issues = api.load(path)
    pool = compute(book, issues).pool
    dec = month_of(2026, 12)
    low, high = (year_end_total(book, {("E1", "REV"): {dec: v}}) for v in (80, 130))
    assert pool.projection.months_left == 1
    assert pool.projection.low == low
    assert pool.projection.high == high
    assert pool.projection.expected in {year_end_total(book, {("E1", "REV"): {dec: v}})
                                        for v in (80, 100, 130)}
    assert low < high


def test_the_projection_is_reproducible_and_ordered():
    book, issues = api.load(SAMPLES / "onlinecrm.xlsx")
    first, again = compute(book, issues).pool, compute(book, issues).pool
    assert first == again
    band = first.projection
    assert band.months_left == 2
    assert band.low <= band.expected <= band.high
    assert band.low < band.high  # the sample's KPIs vary from month to month


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_earned_to_date_is_the_sum_of_the_bonuses(sample):
    book, issues = api.load(SAMPLES / f"{sample}.xlsx")
    results = compute(book, issues)
    assert results.pool.earned_to_date == sum(
        (p.bonus for p in results.pay.values() if p.bonus is not None), Decimal(0))
    assert results.pool.paid_to_date is None  # no schedule, no Payments sheet: unknown


def test_at_the_year_end_the_projection_is_what_was_earned():
    book, issues = api.load(SAMPLES / "acme.xlsx")  # March, the fiscal year's last month
    pool = compute(book, issues).pool
    assert pool.projection.months_left == 0
    assert pool.projection.low == pool.projection.expected == pool.projection.high \
        == pool.earned_to_date


def test_month_basis_earned_is_the_sum_of_the_monthly_bonuses(make_workbook):
    # Hand-worked: Alice (60,000 × 10% / 12 = 500 a month at 100%), REV alone.
    # Jan 90 → score 0.5 + 0.5·10/20 = 0.75 → Below, payout 0; Feb 130 → 1.5 → Exceeds 1.5
    # → 750.00; Mar 100 → 1.0 → Meets → 500.00. Earned through March: 1,250.00.
    path = make_workbook(
        Settings=settings("2026-03", bonus_basis="month"), People=PEOPLE[:2], KPIs=KPIS[:2],
        Scorecards=[SCORECARDS[0], ["E1", "REV", 1.0, 100, 80, 120]],
        Actuals=actuals(["2026-01", "2026-02", "2026-03"], {("E1", "REV"): [90, 130, 100]}))
    book, issues = api.load(path)
    results = compute(book, issues)
    assert results.pool.earned_to_date == Decimal("1250.00")
    monthly = [compute(api.with_period(book, month_of(2026, m))).pay["E1"].bonus
               for m in (1, 2, 3)]
    assert monthly == [Decimal("0.00"), Decimal("750.00"), Decimal("500.00")]
    # the months left repeat one of the three: a year of 0 / 750 / 500 months
    band = results.pool.projection
    assert Decimal("1250.00") <= band.low <= band.expected <= band.high \
        <= Decimal("1250.00") + 9 * Decimal("750.00")
