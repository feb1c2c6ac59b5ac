"""Validation: every rule asserted as a (sheet, cell, code) table."""

from __future__ import annotations

import datetime as dt

import pytest

from kpireport import api
from kpireport.core.issues import flatten
from tests.conftest import BASE


def problems(path, severity=("error",)):
    _, issues = api.check(path)
    return [(i.sheet, i.cell, i.code) for i in issues if i.severity in severity]


def edit(sheet, row, col, value):
    rows = [r[:] for r in BASE[sheet]]
    while len(rows[row]) <= col:
        rows[row].append(None)
    rows[row][col] = value
    return {sheet: rows}


def test_base_workbook_is_valid(make_workbook):
    book, issues = api.check(make_workbook())
    assert book is not None
    assert problems(make_workbook(), ("error", "warning")) == []


@pytest.mark.parametrize("change, expected", [
    # People
    (edit("People", 2, 4, "E99"), [("People", "E3", "unknown-reference")]),
    (edit("People", 2, 0, "e1"), [("People", "A3", "duplicate-id"),
                                  ("Scorecards", "A4", "unknown-owner"),
                                  ("Actuals", "A4", "unknown-owner")]),
    (edit("People", 1, 4, "E2"), [("People", "E2", "manager-cycle")]),
    (edit("People", 1, 4, "E1"), [("People", "E2", "manager-cycle")]),
    (edit("People", 1, 3, "alice@"), [("People", "D2", "bad-email")]),
    (edit("People", 1, 3, "a@x.org)<b@y.org>"), [("People", "D2", "bad-email")]),
    (edit("People", 1, 5, -5), [("People", "F2", "negative-value")]),
    (edit("People", 1, 6, 10), [("People", "G2", "percent-as-whole-number")]),
    (edit("People", 1, 1, None), [("People", "B2", "missing-value")]),
    (edit("People", 1, 1, "Ali\nce"), [("People", "B2", "control-character")]),
    (edit("People", 1, 1, "Ali\x7fce"), [("People", "B2", "control-character")]),
    # KPIs
    (edit("KPIs", 1, 0, "1REV"), [("KPIs", "A2", "bad-kpi-id"),
                                  ("Scorecards", "B2", "unknown-reference"),
                                  ("Scorecards", "B4", "unknown-reference"),
                                  ("Actuals", "B2", "unknown-reference"),
                                  ("Actuals", "B4", "unknown-reference")]),
    (edit("KPIs", 2, 0, "rev"), [("KPIs", "A3", "duplicate-id"),
                                 ("Scorecards", "B3", "unknown-reference"),
                                 ("Actuals", "B3", "unknown-reference")]),
    (edit("KPIs", 1, 2, "dollars"), [("KPIs", "C2", "bad-choice")]),
    (edit("KPIs", 1, 4, None), [("KPIs", "E2", "missing-value")]),
    # Scorecards
    (edit("Scorecards", 1, 2, 60), [("Scorecards", "C2", "percent-as-whole-number")]),
    (edit("Scorecards", 1, 2, 0.5), [("Scorecards", "C2", "weights-not-100")]),
    (edit("Scorecards", 1, 4, 110), [("Scorecards", "E2", "bad-threshold")]),
    (edit("Scorecards", 1, 5, 90), [("Scorecards", "F2", "bad-stretch")]),
    (edit("Scorecards", 2, 3, 0), [("Scorecards", "D3", "target-not-positive")]),
    (edit("Scorecards", 2, 4, 40), [("Scorecards", "E3", "bad-threshold")]),
    # one slip, one error: the rejected row's Actuals row is not reported again
    (edit("Scorecards", 3, 0, "Nobody"), [("Scorecards", "A4", "unknown-owner")]),
    # Actuals
    (edit("Actuals", 1, 2, "abc"), [("Actuals", "C2", "not-a-number")]),
    (edit("Actuals", 1, 2, "inf"), [("Actuals", "C2", "not-finite")]),
    (edit("Actuals", 1, 0, "E9"), [("Actuals", "A2", "unknown-owner")]),
    # Bands
    (edit("Bands", 1, 1, 0.1), [("Bands", "B2", "bands-first-not-zero")]),
    (edit("Bands", 3, 1, 0.9), [("Bands", "B4", "bands-not-increasing")]),
    # Settings
    (edit("Settings", 1, 1, None), [("Settings", "", "missing-setting")]),
    (edit("Settings", 2, 1, "2026-13"), [("Settings", "B3", "bad-period")]),
])
def test_rules(make_workbook, change, expected):
    assert problems(make_workbook(**change)) == expected


def test_duplicate_line_keeps_first(make_workbook):
    rows = [r[:] for r in BASE["Scorecards"]] + [["E1", "REV", 0.1, 5]]
    assert problems(make_workbook(Scorecards=rows)) == [("Scorecards", "B5", "duplicate-line")]


def test_settings_values(make_workbook):
    settings = [["setting", "value"], ["organization", "X"], ["currency", "XYZ"],
                ["locale", "xx_YY"], ["fiscal_year_start_month", 13],
                ["missing_actuals", "maybe"], ["score_cap", 150], ["colour", "blue"]]
    assert problems(make_workbook(Settings=settings), ("error", "warning")) == [
        ("Settings", "B3", "bad-currency"), ("Settings", "B4", "bad-locale"),
        ("Settings", "B5", "out-of-range"), ("Settings", "B6", "bad-choice"),
        ("Settings", "B7", "percent-as-whole-number"), ("Settings", "A8", "unknown-setting")]


def test_missing_sheets_and_columns(make_workbook):
    assert problems(make_workbook(Bands=None, People=None)) == [
        ("People", "", "missing-sheet"), ("Bands", "", "missing-sheet")]
    kpis = [["kpi_id", "kpi", "unit"], ["REV", "Revenue", "currency"]]
    assert problems(make_workbook(KPIs=kpis)) == [("KPIs", "A1", "missing-column")]


def test_headers_are_normalised_and_duplicates_reported(make_workbook):
    people = [r[:] for r in BASE["People"]]
    people[0] = [" Employee_ID ", "NAME", "department\u00a0", "email", "manager_id",
                 "base_salary", "target_bonus_pct"]
    assert problems(make_workbook(People=people)) == []
    people[0].append("name")
    assert problems(make_workbook(People=people)) == [("People", "H1", "duplicate-column")]


def test_unknown_columns_and_sheets_are_info(make_workbook):
    people = [r[:] + ["note"] for r in BASE["People"]]
    people[0][-1] = "owner_name"
    _, issues = api.check(make_workbook(People=people, Notes=[["anything"]]))
    info = {(i.sheet, i.cell, i.code) for i in issues if i.severity == "info"}
    assert {("People", "H1", "unknown-column"), ("Notes", "", "unknown-sheet")} <= info


def test_names_like_na_none_null_are_names(make_workbook):
    people = [r[:] for r in BASE["People"]]
    people[1][1], people[2][1] = "NA", "null"
    book, _ = api.check(make_workbook(People=people))
    assert [p.name for p in book.people] == ["NA", "null"]


def test_percent_text_and_numbers_as_text(make_workbook):
    scorecards = [r[:] for r in BASE["Scorecards"]]
    scorecards[1][2], scorecards[2][2] = "60%", "40 %"
    actuals = [r[:] for r in BASE["Actuals"]]
    actuals[1][2] = "1,090"
    book, issues = api.check(make_workbook(Scorecards=scorecards, Actuals=actuals))
    assert book is not None
    assert [ln.weight for ln in book.scorecards][:2] == [0.6, 0.4]
    assert book.actuals[("E1", "REV")][min(book.actuals[("E1", "REV")])] == 1090
    assert flatten([i for i in issues if i.severity == "warning"]) == [
        ("Actuals", "C2", "number-as-text")]


def test_long_actuals_and_date_headers(make_workbook):
    long = [["owner", "kpi_id", "period", "actual"], ["E1", "REV", "2026-01", 90],
            ["E1", "REV", "2026-02", 130], ["E1", "CAC", dt.date(2026, 1, 31), 40],
            ["E1", "CAC", "2026-02", 60], ["E2", "REV", "2026-02", 95],
            ["E2", "REV", "2026-02", 96]]
    assert problems(make_workbook(Actuals=long)) == [("Actuals", "C7", "duplicate-actual")]
    wide = [r[:] for r in BASE["Actuals"]]
    wide[0][2:] = [dt.datetime(2026, 1, 1), dt.date(2026, 2, 15)]
    book, _ = api.check(make_workbook(Actuals=wide))
    assert book is not None and len(book.actuals[("E1", "REV")]) == 2


def test_formula_kpis(make_workbook):
    kpis = [r[:] for r in BASE["KPIs"]] + [
        ["CONV", "Conversion", "percent", "higher", None, "SIGNUPS / visits"],
        ["SIGNUPS", "Sign-ups", "number", "higher", "sum", None],
        ["VISITS", "Visits", "number", "higher", "sum", None],
        ["BAD", "Bad", "number", "higher", None, "SUM(VISITS)"],
        ["EVIL", "Evil", "number", "higher", None, "__import__('os')"],
        ["LOOP", "Loop", "number", "higher", None, "LOOP + 1"],
        ["GHOST", "Ghost", "number", "higher", None, "NOPE / 2"]]
    assert problems(make_workbook(KPIs=kpis)) == [
        ("KPIs", "F7", "bad-formula"), ("KPIs", "F8", "bad-formula"),
        ("KPIs", "F10", "unknown-reference"), ("KPIs", "F9", "formula-cycle")]
    scorecards = [r[:] for r in BASE["Scorecards"]] + [["E2", "CONV", 0, 0.1]]
    actuals = [r[:] for r in BASE["Actuals"]] + [["E2", "SIGNUPS", 1, 2], ["E2", "CONV", 1, 1]]
    kpis = kpis[:6]
    assert problems(make_workbook(KPIs=kpis, Scorecards=scorecards, Actuals=actuals)) == [
        ("Actuals", "A6", "formula-has-actuals"), ("Scorecards", "B5", "missing-component-actuals")]


def test_range_kpi_needs_target_max(make_workbook):
    kpis = [r[:] for r in BASE["KPIs"]] + [["NPS", "NPS", "number", "range", "last", None]]
    scorecards = [r[:] for r in BASE["Scorecards"]] + [["E2", "NPS", 0, 40]]
    actuals = [r[:] for r in BASE["Actuals"]] + [["E2", "NPS", 45, 50]]
    assert problems(make_workbook(KPIs=kpis, Scorecards=scorecards, Actuals=actuals)) == [
        ("Scorecards", "A5", "missing-target-max")]


def test_owner_both_person_and_department(make_workbook):
    people = [r[:] for r in BASE["People"]] + [["Sales", "Sal", "Ops"]]
    scorecards = [r[:] for r in BASE["Scorecards"]] + [["Sales", "REV", 1, 200]]
    assert ("Scorecards", "A5", "ambiguous-owner") in problems(
        make_workbook(People=people, Scorecards=scorecards))


def test_goal_references_and_cycles(make_workbook):
    goals = [["goal_id", "goal", "level", "parent_goal_id"], ["S1", "Grow", "strategic", None],
             ["T1", "Win", "tactical", "S1"], ["T2", "Loop A", "tactical", "T3"],
             ["T3", "Loop B", "tactical", "T2"], ["T4", "Orphan", "tactical", "S9"]]
    assert problems(make_workbook(Goals=goals)) == [
        ("Goals", "D6", "unknown-reference"), ("Goals", "D4", "goal-cycle")]


def test_actuals_for_unknown_scorecard_line_and_warnings(make_workbook):
    actuals = [r[:] for r in BASE["Actuals"]] + [["E2", "CAC", 1, 2]]
    actuals[0] = actuals[0] + ["2026-03"]
    actuals[1] = actuals[1] + [7]
    assert problems(make_workbook(Actuals=actuals), ("error", "warning")) == [
        ("Actuals", "A5", "unknown-scorecard-line"), ("Actuals", "", "actual-after-period")]
    scorecards = [r[:] for r in BASE["Scorecards"]]
    actuals = [r[:] for r in BASE["Actuals"] if r[1] != "CAC"]
    assert problems(make_workbook(Scorecards=scorecards, Actuals=actuals), ("warning",)) == [
        ("Scorecards", "B3", "no-actuals")]


def test_every_problem_in_one_pass(make_workbook):
    change = {**edit("People", 2, 4, "E99"), **edit("Bands", 1, 1, 0.1),
              **edit("Actuals", 1, 2, "x")}
    assert len(problems(make_workbook(**change))) == 3
