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


# ---------------------------------------------------------------------------- where it shows
@pytest.fixture(scope="module")
def crm_run(tmp_path_factory):
    """An HTML build of the onlinecrm sample (October: two months left in its fiscal year)."""
    import shutil

    folder = tmp_path_factory.mktemp("pool-run")
    shutil.copy(SAMPLES / "onlinecrm.xlsx", folder / "onlinecrm.xlsx")  # the web app's folder
    result = api.build(folder / "onlinecrm.xlsx", out=folder / "reports", formats=("html",))
    assert result.ok
    return result.run_dir


def crm_pool():
    book, issues = api.load(SAMPLES / "onlinecrm.xlsx")
    return compute(book, issues).pool


def test_results_json_carries_the_pool(crm_run):
    import json

    document = json.loads((crm_run / "results.json").read_text(encoding="utf-8"))
    pool = crm_pool()
    assert document["pool"] == {
        "earned_to_date": float(pool.earned_to_date), "paid_to_date": None,
        "projection": {"months_left": 2, "low": float(pool.projection.low),
                       "expected": float(pool.projection.expected),
                       "high": float(pool.projection.high), "method": "bootstrap",
                       "percentiles": [10, 50, 90], "draws": DRAWS, "seed": SEED}}


def test_the_company_review_shows_the_pool_and_only_its_statement_carries_it():
    import json

    from kpireport.core.i18n import Formatter
    from kpireport.report.views import ViewBuilder

    book, issues = api.load(SAMPLES / "onlinecrm.xlsx")
    results = compute(book, issues)
    builder = ViewBuilder(results, ("html",))
    company = builder.company()
    fmt = Formatter(book.settings.locale, book.settings.currency)
    band = results.pool.projection
    assert company["pool"]["earned"] == fmt.money(results.pool.earned_to_date)
    assert company["pool"]["expected"] == fmt.money(band.expected)
    assert fmt.money(band.low) in company["pool"]["likely"]
    assert fmt.money(band.high) in company["pool"]["likely"]
    assert company["pool"]["paid"] == "—"
    assert "pool" in json.loads(company["statement"]["json"])["results"]
    employee = builder.employee(next(o for o in results.owners if o.owner_type == "employee"))
    assert "pool" not in json.loads(employee["statement"]["json"])["results"]


def test_the_company_page_lays_out_the_pool(crm_run):
    html = (crm_run / "company.html").read_text(encoding="utf-8")
    pool = crm_pool()
    from kpireport.core.i18n import Formatter

    fmt = Formatter("vi_VN", "VND")
    section = html[html.index('class="cards pool"'):]
    section = section[:section.index("</section>")]
    for amount in (pool.earned_to_date, pool.projection.expected, pool.projection.low,
                   pool.projection.high):
        assert fmt.money(amount) in section


def test_diff_and_status_show_the_pool(crm_run):
    import json

    from click.testing import CliRunner

    from kpireport.cli.app import main

    pool = crm_pool()
    from kpireport.core.i18n import Formatter

    fmt = Formatter("vi_VN", "VND")
    runner = CliRunner()
    status = runner.invoke(main, ["status", str(crm_run)])
    assert status.exit_code == 0, status.output
    line = next(x for x in status.output.splitlines() if x.startswith("Bonus pool:"))
    assert line == (f"Bonus pool: paid to date —; earned to date "
                    f"{fmt.money(pool.earned_to_date)}; projected at year end "
                    f"{fmt.money(pool.projection.expected)} (likely "
                    f"{fmt.money(pool.projection.low)} – {fmt.money(pool.projection.high)}, "
                    "2 months left)")
    document = json.loads(runner.invoke(main, ["status", str(crm_run), "--format",
                                               "json"]).output)
    assert document["pool"]["earned_to_date"] == float(pool.earned_to_date)
    diff = runner.invoke(main, ["diff", str(crm_run), str(crm_run)])
    assert diff.exit_code == 0 and line in diff.output.splitlines()
    document = json.loads(runner.invoke(main, ["diff", str(crm_run), str(crm_run),
                                               "--format", "json"]).output)
    assert document["pool"]["new"]["projection"]["expected"] == float(pool.projection.expected)


def test_diff_says_how_the_pool_moved(tmp_path, crm_run):
    import json
    import shutil

    from kpireport.month.diff import diff_runs, format_text

    old = tmp_path / "old"
    shutil.copytree(crm_run, old)
    document = json.loads((old / "results.json").read_text(encoding="utf-8"))
    document["pool"]["earned_to_date"] -= 1000
    (old / "results.json").write_text(json.dumps(document), encoding="utf-8")
    text = format_text(diff_runs(old, crm_run))
    pool = crm_pool()
    from kpireport.core.i18n import Formatter

    fmt = Formatter("vi_VN", "VND")
    assert (f"earned to date {fmt.money(pool.earned_to_date - 1000)} → "
            f"{fmt.money(pool.earned_to_date)} (+{fmt.money(1000)})") in text


def test_the_run_page_shows_the_pool_beside_the_approve_button(crm_run):
    from tests.test_web import Server

    server = Server(crm_run.parents[1])
    try:
        client = server.client()
        pool = crm_pool()
        from kpireport.core.i18n import Formatter

        fmt = Formatter("vi_VN", "VND")
        status, _, body = client.get(f"/runs/{crm_run.name}")
        assert status == 200
        html = body.decode("utf-8")
        beside = html[html.index('class="approve-with-pool"'):]
        beside = beside[:beside.index("</a></div>")]
        assert 'data-pool' in beside and f'/runs/{crm_run.name}/deliver' in beside
        for amount in (pool.earned_to_date, pool.projection.expected, pool.projection.low,
                       pool.projection.high):
            assert fmt.money(amount) in beside
        _, _, body = client.get(f"/runs/{crm_run.name}/deliver")
        approve = body.decode("utf-8")
        assert approve.index("data-pool") < approve.index(f'action="/runs/{crm_run.name}/approve"')
    finally:
        server.stop()
