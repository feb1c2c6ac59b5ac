"""SPEC §2 scoring: the worked example, a table of worked cases per rule, and properties."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpireport import api
from kpireport.core.model import Band, Book, Kpi, Person, ScorecardLine, Settings, month_of
from kpireport.core.money import round_money
from kpireport.score.bands import band_for, pay_for, payout_for
from kpireport.score.results import compute
from kpireport.score.scoring import attainment_and_score, fiscal_year_start, score_book

JAN, FEB = month_of(2026, 1), month_of(2026, 2)
BANDS = (Band("Below", 0.0, 0.0, 0.0), Band("Meets", 0.95, 1.0, 0.03),
         Band("Exceeds", 1.1, 1.5, 0.05))


def kpi(kid, direction="higher", aggregation="sum", formula=None, components=(), unit="number"):
    return Kpi(kid, kid, unit, direction, aggregation, formula, components=components)


def make_book(lines, actuals, kpis, *, people=None, period=FEB, targets=None, **settings):
    people = people or (Person("E1", "Alice", "Sales", base_salary=60000,
                               target_bonus_pct=0.1),)
    return Book(settings=Settings(organization="T", report_period=period, **settings),
                people=tuple(people), goals=(), kpis=tuple(kpis), scorecards=tuple(lines),
                bands=BANDS, actuals=actuals, targets=targets or {})


def line_of(scores, owner, kpi_id):
    owner_score = next(o for o in scores.owners if o.owner == owner)
    return next(ln for ln in owner_score.lines if ln.kpi_id == kpi_id)


def test_spec_worked_example(make_workbook):
    book, _ = api.load(make_workbook())
    scores = score_book(book)
    rev, cac = line_of(scores, "E1", "REV"), line_of(scores, "E1", "CAC")
    assert rev.month.score == pytest.approx(1.5)
    assert (rev.ytd.actual, rev.ytd.target, rev.ytd.threshold, rev.ytd.stretch) == \
        (220, 200, 160, 240)
    assert rev.ytd.score == pytest.approx(1.25)
    assert cac.month.attainment == pytest.approx(50 / 60)
    assert cac.month.score == pytest.approx(0.8333333)
    assert (cac.ytd.actual, cac.ytd.score) == (50, 1.0)
    alice = next(o for o in scores.owners if o.owner == "E1")
    assert alice.month_score == pytest.approx(0.6 * 1.5 + 0.4 * 50 / 60)
    assert alice.ytd_score == pytest.approx(1.15)
    assert alice.month_status == "green"


# (direction, threshold, stretch, actual, target, expected score), cap 1.5, ts 0.5
CASES = [
    ("higher", None, None, 90, 100, 0.9),
    ("higher", None, None, 200, 100, 1.5),  # capped
    ("higher", None, None, 120, 100, 1.2),
    ("higher", 80, None, 79, 100, 0.0),  # below threshold
    ("higher", 80, None, 80, 100, 0.5),  # exactly at threshold
    ("higher", 80, None, 90, 100, 0.75),
    ("higher", 80, 120, 110, 100, 1.25),
    ("higher", 80, 120, 130, 100, 1.5),
    ("higher", None, 120, 100, 100, 1.0),
    ("lower", None, None, 60, 50, 50 / 60),
    ("lower", None, None, 40, 50, 1.25),
    ("lower", None, None, 0, 50, 1.5),  # actual ≤ 0 → cap
    ("lower", 70, None, 71, 50, 0.0),
    ("lower", 70, None, 70, 50, 0.5),
    ("lower", 70, None, 60, 50, 0.75),
    ("lower", 70, 30, 40, 50, 1.25),
    ("lower", 70, 30, 20, 50, 1.5),
    ("range", None, None, 45, 40, 1.0),
    ("range", None, None, 39, 40, 0.0),
    ("range", None, None, 61, 40, 0.0),
    ("range", None, None, 60, 40, 1.0),
]


@pytest.mark.parametrize("direction, threshold, stretch, actual, target, expected", CASES)
def test_score_rules(direction, threshold, stretch, actual, target, expected):
    code = {"higher": 0, "lower": 1, "range": 2}[direction]
    arr = lambda v: np.array([np.nan if v is None else float(v)])  # noqa: E731
    _, score = attainment_and_score(np.array([code]), arr(actual), arr(target), arr(threshold),
                                    arr(stretch), arr(60), cap=1.5, ts=0.5)
    assert score[0] == pytest.approx(expected)


@pytest.mark.parametrize("aggregation, month, ytd", [
    ("sum", (30, 20), (40, 40)), ("average", (30, 20), (20, 20)),
    ("min", (30, 20), (10, 20)), ("max", (30, 20), (30, 20)), ("last", (30, 20), (30, 20)),
])
def test_aggregations(aggregation, month, ytd):
    book = make_book([ScorecardLine("E1", "K", 1.0, 20)],
                     {("E1", "K"): {JAN: 10, FEB: 30}}, [kpi("K", aggregation=aggregation)])
    line = line_of(score_book(book), "E1", "K")
    assert (line.month.actual, line.month.target) == month
    assert (line.ytd.actual, line.ytd.target) == ytd


def test_skip_leaves_missing_months_out_of_both_sides_and_zero_counts_them():
    months = {JAN: 10.0}  # February missing
    k = [kpi("K")]
    skip = line_of(score_book(make_book([ScorecardLine("E1", "K", 1, 10)], {("E1", "K"): months},
                                        k)), "E1", "K")
    assert (skip.ytd.actual, skip.ytd.target, skip.month.score) == (10, 10, None)
    assert skip.month.status == "none"
    zero = line_of(score_book(make_book([ScorecardLine("E1", "K", 1, 10)], {("E1", "K"): months},
                                        k, missing_actuals="zero")), "E1", "K")
    assert (zero.ytd.actual, zero.ytd.target, zero.month.actual, zero.month.score) == \
        (10, 20, 0, 0)


def test_zero_only_in_months_the_person_was_employed():
    joiner = Person("E1", "A", "S", start_date=dt.date(2026, 2, 20))
    book = make_book([ScorecardLine("E1", "K", 1, 10)], {("E1", "K"): {}}, [kpi("K")],
                     people=[joiner], missing_actuals="zero")
    line = line_of(score_book(book), "E1", "K")
    assert (line.ytd.actual, line.ytd.target) == (0, 10)  # January not counted


def test_phased_targets_scale_threshold_and_stretch():
    book = make_book([ScorecardLine("E1", "K", 1, 100, threshold=80, stretch=120)],
                     {("E1", "K"): {JAN: 100, FEB: 180}}, [kpi("K")],
                     targets={("E1", "K"): {FEB: 200}})
    line = line_of(score_book(book), "E1", "K")
    assert (line.month.target, line.month.threshold, line.month.stretch) == (200, 160, 240)
    assert line.month.score == pytest.approx(0.75)  # 0.5 + 0.5 × (180 − 160) / (200 − 160)
    assert (line.ytd.target, line.ytd.threshold) == (300, 240)


def test_formula_is_ratio_of_sums_never_average_of_ratios():
    k = [kpi("CONV", formula="SIGNUPS / VISITS", aggregation=None,
             components=("SIGNUPS", "VISITS"), unit="percent"), kpi("SIGNUPS"), kpi("VISITS")]
    book = make_book([ScorecardLine("E1", "CONV", 1, 0.1)],
                     {("E1", "SIGNUPS"): {JAN: 1, FEB: 30}, ("E1", "VISITS"): {JAN: 100, FEB: 100}},
                     k, targets={("E1", "CONV"): {JAN: 0.1, FEB: 0.2}})
    line = line_of(score_book(book), "E1", "CONV")
    assert line.ytd.actual == pytest.approx(31 / 200)  # not (0.01 + 0.3) / 2
    assert line.ytd.target == pytest.approx(0.15)  # mean of monthly targets
    assert line.month.actual == pytest.approx(0.3)


def test_formula_division_by_zero_is_no_data_and_a_warning():
    k = [kpi("R", formula="A / B", aggregation=None, components=("A", "B")), kpi("A"), kpi("B")]
    book = make_book([ScorecardLine("E1", "R", 1, 1)],
                     {("E1", "A"): {JAN: 1, FEB: 1}, ("E1", "B"): {JAN: 0, FEB: 0}}, k)
    scores = score_book(book)
    line = line_of(scores, "E1", "R")
    assert line.ytd.score is None and line.month.status == "none"
    assert {i.code for i in scores.issues} == {"division-by-zero"}


def test_weights_renormalise_over_kpis_with_data_and_weight_zero_is_not_scored():
    k = [kpi("A"), kpi("B"), kpi("C")]
    book = make_book([ScorecardLine("E1", "A", 0.5, 10), ScorecardLine("E1", "B", 0.5, 10),
                      ScorecardLine("E1", "C", 0.0, 10)],
                     {("E1", "A"): {FEB: 12}, ("E1", "C"): {FEB: 1}}, k)
    alice = score_book(book).owners[0]
    assert alice.month_score == pytest.approx(1.2)


def test_no_kpi_with_data_means_no_score_band_or_bonus():
    book = make_book([ScorecardLine("E1", "A", 1, 10)], {}, [kpi("A")])
    results = compute(book)
    assert results.owners[0].ytd_score is None
    pay = results.pay["E1"]
    assert (pay.band, pay.bonus, pay.bonus_payout, pay.recommended_salary) == (None,) * 4


def test_roll_up_sums_people_and_formula_rolls_up_components():
    people = [Person("E1", "A", "Sales"), Person("E2", "B", "Sales"), Person("E3", "C", "Ops")]
    k = [kpi("REV"), kpi("NPS", aggregation="average"), kpi("S"), kpi("V"),
         kpi("CONV", formula="S / V", aggregation=None, components=("S", "V"))]
    actuals = {("E1", "REV"): {FEB: 10}, ("E2", "REV"): {FEB: 30}, ("E3", "REV"): {FEB: 100},
               ("E1", "NPS"): {FEB: 40}, ("E2", "NPS"): {FEB: 60},
               ("E1", "S"): {FEB: 1}, ("E1", "V"): {FEB: 10}, ("E2", "S"): {FEB: 9},
               ("E2", "V"): {FEB: 90}}
    lines = [ScorecardLine("Sales", "REV", 0.4, 40), ScorecardLine("Sales", "NPS", 0.3, 50),
             ScorecardLine("Sales", "CONV", 0.3, 0.1), ScorecardLine("COMPANY", "REV", 1, 100)]
    scores = score_book(make_book(lines, actuals, k, people=people))
    assert line_of(scores, "Sales", "REV").month.actual == 40
    assert line_of(scores, "Sales", "REV").rolled_up
    assert line_of(scores, "Sales", "NPS").month.actual == 50
    assert line_of(scores, "Sales", "CONV").month.actual == pytest.approx(0.1)
    assert line_of(scores, "COMPANY", "REV").month.actual == 140


@pytest.mark.parametrize("period, start, expected", [
    (month_of(2026, 3), 4, month_of(2025, 4)), (month_of(2026, 4), 4, month_of(2026, 4)),
    (month_of(2026, 12), 1, month_of(2026, 1)), (month_of(2026, 1), 7, month_of(2025, 7)),
])
def test_fiscal_year_start(period, start, expected):
    assert fiscal_year_start(period, start) == expected


def test_fiscal_year_starting_april_uses_april_to_period():
    apr, may = month_of(2025, 4), month_of(2025, 5)
    book = make_book([ScorecardLine("E1", "K", 1, 10)],
                     {("E1", "K"): {month_of(2025, 3): 99, apr: 10, may: 20}}, [kpi("K")],
                     period=may, fiscal_year_start_month=4)
    line = line_of(score_book(book), "E1", "K")
    assert (line.ytd.actual, line.ytd.target) == (30, 20)


# ------------------------------------------------------------------ bands and pay
def test_band_edges_are_inclusive_after_rounding():
    assert band_for(0.95, BANDS).band == "Meets"
    assert band_for(0.9499999999, BANDS).band == "Meets"  # rounds to 0.95
    assert band_for(0.949999, BANDS).band == "Below"
    assert band_for(None, BANDS) is None


def test_linear_payout_interpolates_and_stays_flat_above_last():
    assert payout_for(1.025, BANDS, "linear") == pytest.approx(1.25)
    assert payout_for(2.0, BANDS, "linear") == 1.5
    assert payout_for(0.475, BANDS, "linear") == pytest.approx(0.5)
    assert payout_for(1.025, BANDS, "step") == 1.0


def settings_for(**kw):
    return Settings(organization="T", report_period=month_of(2026, 2), **kw)


def test_ytd_bonus_prorates_by_days_in_fiscal_year():
    alice = Person("E1", "A", "S", base_salary=60000, target_bonus_pct=0.1)
    pay = pay_for(alice, 1.0, 1.0, settings_for(), BANDS, month_of(2026, 1))
    # 60000 × 0.1 × 1.0 × 59/365
    assert pay.bonus == Decimal("969.86")
    assert pay.recommended_salary == Decimal("61800.00")


def test_month_bonus_for_a_leaver_mid_month():
    leaver = Person("E1", "A", "S", base_salary=60000, target_bonus_pct=0.1,
                    end_date=dt.date(2026, 2, 14))
    pay = pay_for(leaver, 1.2, None, settings_for(bonus_basis="month"), BANDS,
                  month_of(2026, 1))
    assert pay.band == "Exceeds"  # from the month score
    assert pay.bonus == Decimal("375.00")  # 60000 × 0.1 / 12 × 1.5 × 14/28


def test_joiner_gets_days_from_start_date():
    joiner = Person("E1", "A", "S", base_salary=36500, target_bonus_pct=0.1,
                    start_date=dt.date(2026, 2, 1))
    pay = pay_for(joiner, 1.0, 1.0, settings_for(), BANDS, month_of(2026, 1))
    assert pay.days_employed == 28 and pay.bonus == Decimal("280.00")


def test_vnd_has_no_minor_unit():
    person = Person("E1", "A", "S", base_salary=216_000_000, target_bonus_pct=0.12)
    pay = pay_for(person, 1.0, 1.0, settings_for(currency="VND"), BANDS, month_of(2026, 1))
    assert pay.bonus == Decimal("4189808")  # 25,920,000 × 59/365 = 4,189,808.22
    assert round_money(Decimal("2.5"), "VND") == Decimal("3")
    assert round_money(Decimal("0.125"), "USD") == Decimal("0.13")


# ------------------------------------------------------------------ properties
finite = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(target=finite, a1=finite, a2=finite, has_lo=st.booleans(), has_hi=st.booleans(),
       direction=st.sampled_from([0, 1]))
@settings(max_examples=300, deadline=None)
def test_better_actual_never_lowers_score(target, a1, a2, has_lo, has_hi, direction):
    lo = target * (0.8 if direction == 0 else 1.25) if has_lo else np.nan
    hi = target * (1.25 if direction == 0 else 0.8) if has_hi else np.nan
    low, high = sorted((a1, a2))
    arr = lambda v: np.array([v, v], dtype=float)  # noqa: E731
    _, score = attainment_and_score(np.array([direction] * 2), np.array([low, high]),
                                    arr(target), arr(lo), arr(hi), arr(np.nan), 1.5, 0.5)
    if direction == 0:
        assert score[1] >= score[0] - 1e-12
    else:
        assert score[0] >= score[1] - 1e-12
    assert ((score >= 0) & (score <= 1.5)).all()


@given(score=st.floats(min_value=0, max_value=3), base=st.integers(0, 10**9),
       pct=st.floats(min_value=0, max_value=1), mode=st.sampled_from(["step", "linear"]))
@settings(max_examples=200, deadline=None)
def test_bonus_never_negative_and_exact_to_the_cent(score, base, pct, mode):
    person = Person("E1", "A", "S", base_salary=float(base), target_bonus_pct=pct)
    pay = pay_for(person, score, score, settings_for(band_mode=mode), BANDS, month_of(2026, 1))
    assert pay.bonus is not None and pay.bonus >= 0
    assert pay.bonus == pay.bonus.quantize(Decimal("0.01"))
    assert pay.band is not None and band_for(score, BANDS).min_score <= round(score, 6)


@given(st.floats(min_value=0, max_value=2))
def test_band_is_the_last_whose_min_is_at_most_the_score(score):
    band = band_for(score, BANDS)
    later = [b for b in BANDS if b.min_score > band.min_score]
    assert all(round(score, 6) < b.min_score for b in later)


def test_acme_sample_has_a_mix_of_statuses():
    from pathlib import Path

    book, issues = api.load(Path(__file__).resolve().parents[1] / "sample_workbooks" /
                            "acme.xlsx")
    results = compute(book, issues)
    statuses = {o.ytd_status for o in results.owners}
    assert {"green", "amber", "red"} <= statuses
    assert replace(book.settings).currency == "USD"


def test_series_with_members_missing_months_and_a_roll_up():
    """Rows built as lists: months outside the window are ignored, missing ones are NaN,
    and a department's row sums its members where any has data."""
    k = kpi("K1")
    people = (Person("E1", "A", "Sales"), Person("E2", "B", "Sales"))
    lines = [ScorecardLine("E1", "K1", 1.0, 10.0, row=2),
             ScorecardLine("E2", "K1", 1.0, 10.0, row=3),
             ScorecardLine("Sales", "K1", 1.0, 20.0, row=4)]
    before = JAN - 1
    actuals = {("E1", "K1"): {before: 99.0, JAN: 4.0, FEB: 6.0}, ("E2", "K1"): {FEB: 5.0}}
    scores = score_book(make_book(lines, actuals, [k], people=people))
    assert line_of(scores, "E1", "K1").ytd.actual == 10.0
    assert [a for _, a, _ in line_of(scores, "E2", "K1").history] == [None, 5.0]
    sales = line_of(scores, "Sales", "K1")
    assert sales.rolled_up and [a for _, a, _ in sales.history] == [4.0, 11.0]

