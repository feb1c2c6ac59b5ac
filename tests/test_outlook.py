"""What it takes (issue 30, point 3): hand-worked paces, the states, the owner at each level,
and properties: a stated pace, typed into every month left and scored by the real scoring at
the fiscal year's end, reaches its level; one step less (or more, for "at most") does not."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpireport.core.model import (
    Band,
    Book,
    Kpi,
    Person,
    ScorecardLine,
    Settings,
    month_label,
    month_of,
)
from kpireport.report.results_files import results_json
from kpireport.score.outlook import outlooks
from kpireport.score.results import compute
from kpireport.score.scoring import score_book

JAN, FEB, DEC = month_of(2026, 1), month_of(2026, 2), month_of(2026, 12)
BANDS = (Band("Below", 0.0, 0.0, 0.0), Band("Meets", 0.95, 1.0, 0.03),
         Band("Exceeds", 1.1, 1.5, 0.05))
ALICE = Person("E1", "Alice", "Sales", base_salary=60000, target_bonus_pct=0.1)
LEVEL_SCORE = {"threshold": 0.5, "target": 1.0, "stretch": 1.5}


def kpi(kid, direction="higher", aggregation="sum", *, unit="number", formula=None,
        components=(), decimals=None):
    return Kpi(kid, kid, unit, direction, aggregation, formula, components=components,
               decimals=decimals)


def book_of(lines, actuals, kpis, *, period=FEB, person=ALICE, targets=None, **options):
    return Book(settings=Settings(organization="T", report_period=period, **options),
                people=(person,), goals=(), kpis=tuple(kpis), scorecards=tuple(lines),
                bands=BANDS, actuals=actuals, targets=targets or {})


def outlook_of(book):
    return outlooks(book, score_book(book))["E1"]


def needs(outlook, kpi_id):
    line = next(k for k in outlook.kpis if k.kpi_id == kpi_id)
    return {n.level: (n.state, n.at_least, n.at_most) for n in line.needs}


# ---------------------------------------------------------------------------- worked by hand
def test_spec_example_worked_by_hand():
    """SPEC §5's Alice in February, ten months left. REV (sum, higher; 100 / 80 / 120 a month,
    220 so far): the year needs 1,200 / 960 / 1,440, so (1,200 − 220) / 10 = 98 a month, 74
    and 122. CAC (average, lower, 50, no threshold or stretch; 40 and 60 so far): the year's
    average at most 50 → (50·12 − 100) / 10 = 50; the threshold score is earned at 50 / 50% =
    100 → 110; the cap at 50 / 1.5 → 30."""
    book = book_of(
        [ScorecardLine("E1", "REV", 0.6, 100, 80, 120), ScorecardLine("E1", "CAC", 0.4, 50)],
        {("E1", "REV"): {JAN: 90, FEB: 130}, ("E1", "CAC"): {JAN: 40, FEB: 60}},
        [kpi("REV", unit="currency"), kpi("CAC", "lower", "average", unit="currency")])
    out = outlook_of(book)
    assert [month_label(m) for m in (out.months_left[0], out.months_left[-1])] == \
        ["2026-03", "2026-12"]
    assert needs(out, "REV") == {"threshold": ("pace", 74, None), "target": ("pace", 98, None),
                                 "stretch": ("pace", 122, None)}
    assert needs(out, "CAC") == {"threshold": ("pace", None, 110),
                                 "target": ("pace", None, 50), "stretch": ("pace", None, 30)}
    # The owner with every KPI at a level: 50%, 100%, 150% → Below, Meets, Exceeds; the bonus
    # of a whole year: 60,000 × 10% × payout.
    assert [(lv.level, lv.score, lv.band, lv.bonus_payout, lv.bonus, lv.reachable)
            for lv in out.levels] == [
        ("threshold", 0.5, "Below", 0.0, Decimal("0.00"), True),
        ("target", 1.0, "Meets", 1.0, Decimal("6000.00"), True),
        ("stretch", 1.5, "Exceeds", 1.5, Decimal("9000.00"), True)]


def test_secured_and_out_of_reach():
    """A sum already past the year's target is secured (a month is never below 0); a
    lower-is-better sum already past the year's target is out of reach; a minimum that has
    already fallen below the target can never rise again."""
    book = book_of(
        [ScorecardLine("E1", "REV", 0.4, 100, 80, 200), ScorecardLine("E1", "COST", 0.3, 100),
         ScorecardLine("E1", "FLOOR", 0.3, 10)],
        {("E1", "REV"): {JAN: 1000, FEB: 500}, ("E1", "COST"): {JAN: 1300},
         ("E1", "FLOOR"): {JAN: 4, FEB: 12}},
        [kpi("REV"), kpi("COST", "lower"), kpi("FLOOR", aggregation="min")])
    out = outlook_of(book)
    # REV: 1,500 so far; the year's threshold 960 and target 1,200 are behind it.
    assert needs(out, "REV") == {"threshold": ("secured", None, None),
                                 "target": ("secured", None, None),
                                 "stretch": ("pace", 90, None)}  # (2,400 − 1,500) / 10
    assert needs(out, "COST")["target"] == ("out_of_reach", None, None)
    # … but its threshold score (without a threshold: where target / actual is 50%) is still
    # within reach. February has no actual and is skipped (missing_actuals = skip), so the year
    # is eleven months: at most 2 × 1,100 = 2,200, (2,200 − 1,300) / 10 = 90 a month.
    assert needs(out, "COST")["threshold"] == ("pace", None, 90)
    assert needs(out, "FLOOR")["target"] == ("out_of_reach", None, None)
    # The owner at target: REV 1 (weight 40%), COST at its threshold 0.5 (30%), FLOOR: its
    # threshold (ratio 50%: a minimum of 5) is out of reach too, 0 → 0.4 + 0.15 = 0.55.
    target = next(lv for lv in out.levels if lv.level == "target")
    assert (target.score, target.reachable) == (pytest.approx(0.55), False)


def test_last_value_is_reachable_next_month_and_range_is_an_interval():
    book = book_of(
        [ScorecardLine("E1", "HEAD", 0.5, 10, 8, 12),
         ScorecardLine("E1", "NPS", 0.5, 40, target_max=60)],
        {("E1", "HEAD"): {JAN: 2, FEB: 3}, ("E1", "NPS"): {JAN: 70, FEB: 80}},
        [kpi("HEAD", aggregation="last"), kpi("NPS", "range", "average")])
    out = outlook_of(book)
    assert needs(out, "HEAD") == {"threshold": ("pace", 8, None), "target": ("pace", 10, None),
                                  "stretch": ("pace", 12, None)}
    # NPS: 150 so far; the year's average within [40, 60] → 12·40 − 150 = 330 … 12·60 − 150
    # = 570 over ten months: 33 … 57.
    assert needs(out, "NPS") == {"target": ("pace", 33, 57)}


def test_formula_moves_its_first_component_at_the_others_pace():
    """CONV = SIGNUPS / VISITS (percent, higher, target 10%): VISITS held at its pace so far
    (1,000 a month); the year needs 10% of 12,000 = 1,200 signups, 150 so far → 105 a month."""
    book = book_of(
        [ScorecardLine("E1", "CONV", 1.0, 0.1, 0.08, 0.12)],
        {("E1", "SIGNUPS"): {JAN: 70, FEB: 80}, ("E1", "VISITS"): {JAN: 900, FEB: 1100}},
        [kpi("CONV", unit="percent", aggregation=None, formula="SIGNUPS / VISITS",
             components=("SIGNUPS", "VISITS")), kpi("SIGNUPS"), kpi("VISITS")])
    line = outlook_of(book).kpis[0]
    assert (line.driver, line.held, line.unit) == ("SIGNUPS", (("VISITS", 1000.0),), "number")
    assert {n.level: n.at_least for n in line.needs} == \
        {"threshold": 81, "target": 105, "stretch": 129}


def test_final_month_and_leavers():
    """December closes the fiscal year: reached or missed, no owner levels. A leaver's months
    left end with the month of their end_date."""
    lines = [ScorecardLine("E1", "REV", 1.0, 100, 80, 120)]
    actuals = {("E1", "REV"): {m: 100 for m in range(JAN, DEC + 1)}}
    final = outlook_of(book_of(lines, actuals, [kpi("REV")], period=DEC))
    assert final.final and final.levels == ()
    assert needs(final, "REV") == {"threshold": ("reached", None, None),
                                   "target": ("reached", None, None),
                                   "stretch": ("missed", None, None)}
    leaver = replace(ALICE, end_date=dt.date(2026, 6, 10))
    out = outlook_of(book_of(lines, {("E1", "REV"): {JAN: 90, FEB: 130}}, [kpi("REV")],
                             person=leaver))
    assert [month_label(m) for m in out.months_left] == \
        ["2026-03", "2026-04", "2026-05", "2026-06"]
    # Six months of actuals against six months of target: (600 − 220) / 4 = 95.
    assert needs(out, "REV")["target"] == ("pace", 95, None)


def test_large_amounts_are_stated_to_four_significant_digits():
    book = book_of([ScorecardLine("E1", "REV", 1.0, 2_000_000_000)],
                   {("E1", "REV"): {JAN: 1_234_567_891}}, [kpi("REV", unit="currency")],
                   period=JAN)
    line = outlook_of(book).kpis[0]
    # (24e9 − 1,234,567,891) / 11 = 2,069,584,737.4… → 2,070,000,000 at a step of 1,000,000.
    assert line.step == 1_000_000
    assert {n.level: n.at_least for n in line.needs}["target"] == 2_070_000_000


def test_results_json_carries_what_it_takes(tmp_path):
    schema = json.loads((__import__("pathlib").Path(__file__).resolve().parents[1] /
                         "kpireport" / "schemas" / "results-1.schema.json").read_text())
    book = book_of(
        [ScorecardLine("E1", "REV", 0.6, 100, 80, 120), ScorecardLine("E1", "CAC", 0.4, 50)],
        {("E1", "REV"): {JAN: 90, FEB: 130}, ("E1", "CAC"): {JAN: 40, FEB: 60}},
        [kpi("REV", unit="currency"), kpi("CAC", "lower", "average", unit="currency")])
    doc = results_json(compute(replace(book, source_sha256="0" * 64)))
    jsonschema.validate(doc, schema)
    card = doc["scorecards"][0]["what_it_takes"]
    assert (card["year_end"], card["months_left"], card["final"]) == ("2026-12", 10, False)
    rev = card["kpis"][0]
    assert rev["kpi_id"] == rev["pace_of"] == "REV" and rev["step"] == 1
    assert rev["levels"][1] == {"level": "target", "score": 1.0, "state": "pace",
                                "at_least": 98.0, "at_most": None}
    assert card["levels"][1] == {"level": "target", "score": 1.0, "band": "Meets",
                                 "bonus_payout": 1.0, "bonus": 6000.0, "reachable": True}


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_samples_reviews_show_what_it_takes(sample, sample_run):
    run = sample_run(sample)
    doc = json.loads((run / "results.json").read_text())
    cards = [c for c in doc["scorecards"] if c["owner_type"] == "employee"]
    assert cards and all(c["what_it_takes"]["kpis"] for c in cards)
    assert all(c["what_it_takes"] is None for c in doc["scorecards"]
               if c["owner_type"] != "employee")
    page = (run / "employees" / f"{cards[0]['owner']}.html").read_text()
    heading = "What it takes" if sample == "acme" else "Cần gì để đạt"
    assert heading in page


# ---------------------------------------------------------------------------- properties
def _score_at_year_end(book, kpi_id, paces):
    """The ytd score of E1's ``kpi_id`` at the fiscal year's end, with ``paces`` (component
    → value) typed into every month left: the real scoring, not the outlook's."""
    actuals = {key: dict(months) for key, months in book.actuals.items()}
    for component, value in paces.items():
        months = actuals.setdefault(("E1", component), {})
        for m in range(book.settings.report_period + 1, DEC + 1):
            months[m] = value
    year = replace(book, actuals=actuals,
                   settings=replace(book.settings, report_period=DEC))
    line = next(ln for o in score_book(year).owners for ln in o.lines if ln.kpi_id == kpi_id)
    return line.ytd.score


def _reaches(score, level):
    return score is not None and round(score, 6) >= round(LEVEL_SCORE[level], 6)


def _check_line(book, line):
    """Every need of ``line`` fed back through the real scoring."""
    kpi_id = line.kpi_id
    drive = line.driver or kpi_id
    held = dict(line.held)
    step = line.step

    def score(pace):
        return _score_at_year_end(book, kpi_id, {drive: pace, **held})

    for need in line.needs:
        level = need.level
        reached = (lambda s: s is not None and round(s, 6) >= 1.0) if len(line.needs) == 1 \
            else (lambda s, lv=level: _reaches(s, lv))
        if need.state == "pace":
            for pace in {need.at_least, need.at_most} - {None}:
                assert reached(score(pace)), (level, need, score(pace))
            if need.at_least is not None:
                below = round(need.at_least - step, 9)  # 73.2 − 0.1, not 73.100000000000001
                if below >= 0 or any(v < 0 for v in _known(book, drive)):
                    assert not reached(score(below)), (level, need, "one step less")
            if need.at_most is not None:
                above = round(need.at_most + step, 9)
                assert not reached(score(above)), (level, need, "one step more")
        elif need.state == "secured":
            for pace in (0.0, 1.0, 1e6):
                assert reached(score(pace)), (level, need, pace)
        elif need.state == "out_of_reach":
            for pace in (0.0, 1.0, 50.0, 1e6):
                assert not reached(score(pace)), (level, need, pace)


def _known(book, kpi_id):
    return list(book.actuals.get(("E1", kpi_id), {}).values())


amounts = st.one_of(st.integers(0, 400).map(float),
                    st.integers(0, 40000).map(lambda v: v / 100))


@st.composite
def plain_books(draw):
    direction = draw(st.sampled_from(["higher", "lower", "range"]))
    aggregation = draw(st.sampled_from(["sum", "average", "last", "min", "max"]))
    target = float(draw(st.integers(20, 200)))
    threshold = stretch = target_max = None
    if direction == "higher":
        threshold = draw(st.none() | st.integers(1, int(target) - 1).map(float))
        stretch = draw(st.none() | st.integers(int(target) + 1, 400).map(float))
    elif direction == "lower":
        threshold = draw(st.none() | st.integers(int(target) + 1, 400).map(float))
        stretch = draw(st.none() | st.integers(1, int(target) - 1).map(float))
    else:
        target_max = target + draw(st.integers(0, 100))
    period = JAN + draw(st.integers(0, 10))
    values = draw(st.lists(amounts, min_size=period - JAN + 1, max_size=period - JAN + 1))
    missing = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    actuals = {JAN + i: v for i, (v, gone) in enumerate(zip(values, missing)) if not gone}
    decimals = draw(st.sampled_from([None, 0, 1, 2]))
    line = ScorecardLine("E1", "K", 1.0, target, threshold, stretch, target_max)
    phased = draw(st.booleans())
    targets = {("E1", "K"): {m: target * (1 + (m % 3) / 10) for m in range(JAN, DEC + 1)}} \
        if phased else {}
    return book_of([line], {("E1", "K"): actuals} if actuals else {},
                   [kpi("K", direction, aggregation, decimals=decimals)], period=period,
                   targets=targets)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_books())
def test_a_stated_pace_lands_exactly_on_its_outcome(book):
    out = outlook_of(book)
    _check_line(book, out.kpis[0])


@st.composite
def formula_books(draw):
    direction = draw(st.sampled_from(["higher", "lower"]))
    target = draw(st.integers(2, 30)) / 100
    period = JAN + draw(st.integers(0, 10))
    n = period - JAN + 1
    signups = draw(st.lists(st.integers(0, 300).map(float), min_size=n, max_size=n))
    visits = draw(st.lists(st.integers(200, 3000).map(float), min_size=n, max_size=n))
    line = ScorecardLine("E1", "CONV", 1.0, target,
                         target * (0.8 if direction == "higher" else 1.25),
                         target * (1.25 if direction == "higher" else 0.8))
    return book_of(
        [line], {("E1", "SIGNUPS"): {JAN + i: v for i, v in enumerate(signups)},
                 ("E1", "VISITS"): {JAN + i: v for i, v in enumerate(visits)}},
        [kpi("CONV", direction, None, unit="percent", formula="SIGNUPS / VISITS",
             components=("SIGNUPS", "VISITS")), kpi("SIGNUPS"), kpi("VISITS")],
        period=period)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formula_books())
def test_a_formula_pace_lands_exactly_on_its_outcome(book):
    out = outlook_of(book)
    line = out.kpis[0]
    assert line.driver == "SIGNUPS" and math.isfinite(dict(line.held)["VISITS"])
    _check_line(book, line)
