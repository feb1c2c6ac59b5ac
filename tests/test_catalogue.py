"""The issue catalogue: one table of every code, its messages filled from fields, and the
docs' table of codes (docs/issue-codes.md) kept in step with it."""

from __future__ import annotations

import ast
import copy
import re
import string
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.catalogue import CATALOGUE, ENTRIES, PLACE_FIELDS, SEVERITIES, STAGES
from kpireport.core.issues import CatalogueError, IssueLog, issue
from kpireport.data_in.annotate import fix_for
from tests.conftest import BASE

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kpireport"
A1 = re.compile(r"\b[A-Z]{1,3}[0-9]{1,7}\b")


def literal_text(template: str) -> str:
    return "".join(text for text, _, _, _ in string.Formatter().parse(template))


# ---------------------------------------------------------------------------- the table
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.code)
def test_every_entry_has_severity_title_messages_and_fix(entry):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", entry.code)
    assert entry.severity in SEVERITIES and entry.stage in STAGES
    assert entry.title and entry.title[0].isupper() and not entry.title.endswith(".")
    assert entry.fix.endswith(".") and fix_for(entry.code) == entry.fix
    assert entry.forms and all(form.text.strip() for form in entry.forms.values())
    for name, form in entry.forms.items():
        # the place is the issue's sheet and cell: a template never spells one out
        assert not (form.fields & PLACE_FIELDS), (entry.code, name)
        assert not {"sheet", "cell"} & {n for _, n, _, _ in string.Formatter().parse(form.text)}
        assert not A1.search(literal_text(form.text)), (entry.code, name, form.text)


def test_codes_are_unique():
    assert len(CATALOGUE) == len(ENTRIES)


def source_files():
    return [p for p in PACKAGE.rglob("*.py") if p.name != "catalogue.py"]


def test_every_code_the_source_makes_is_in_the_catalogue_and_every_entry_is_used():
    made, literals = set(), set()
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
            if isinstance(node, ast.Call) and node.args and \
                    isinstance(node.args[0], ast.Constant):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in ("add", "issue", "bad"):
                    made.add(node.args[0].value)
    assert made and made <= set(CATALOGUE), sorted(made - set(CATALOGUE))
    assert set(CATALOGUE) <= literals, sorted(set(CATALOGUE) - literals)


def test_no_issue_is_made_outside_the_catalogue():
    """Issues are made by issue() / IssueLog.add only, never with a typed message."""
    for path in source_files():
        if path.name == "issues.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bIssue\(|log\.(error|warning|info)\(", text), path


# ---------------------------------------------------------------------------- issue()
def test_issue_fills_the_template_and_keeps_the_place_apart():
    made = issue("weights-not-100", "Scorecards", "C2", owner="E1", percent=90.0,
                 cells="C2, C3")
    assert (made.severity, made.sheet, made.cell) == ("error", "Scorecards", "C2")
    assert made.text == "the weights of E1 add up to 90%, not 100% (cells C2, C3)"
    assert made.message == "Scorecards!C2: " + made.text
    assert made.fields["owner"] == "E1" and made.fix == fix_for("weights-not-100")
    assert made.as_dict() == {"severity": "error", "code": "weights-not-100",
                              "sheet": "Scorecards", "cell": "C2", "message": made.message}
    sheet_only = issue("missing-setting", "Settings")
    assert sheet_only.message.startswith("Settings: organization is required")
    nowhere = issue("unknown-sheet", "Notes", name="Notes")
    assert nowhere.message == "sheet 'Notes' is not a kpireport sheet; ignored"


def test_issues_pickle_and_compare_by_place_and_text():
    """Results (with their issues) go to worker processes and Dask workers."""
    import pickle

    made = issue("no-actuals", "Scorecards", "B2", owner="E1", kpi="REV")
    again = pickle.loads(pickle.dumps(made))
    assert again == made and again.fields == {"owner": "E1", "kpi": "REV"}
    assert hash(again) == hash(made) and again.message == made.message


@pytest.mark.parametrize("call, words", [
    (lambda: issue("weights-sum", "Scorecards", "C2"), "'weights-sum' is not in the catalogue"),
    (lambda: issue("weights-not-100", "Scorecards", "C2", owner="E1", percent=1.0),
     "missing field(s) cells"),
    (lambda: issue("no-actuals", "Scorecards", "B2", owner="E1", kpi="REV", month="x"),
     "unknown field(s) month"),
    (lambda: issue("duplicate-id", "People", "A3", id="E1"), "has no message form ''"),
    (lambda: issue("duplicate-id", "People", "A3", form="person", id="E1"),
     "has no message form 'person'"),
    (lambda: IssueLog().add("bad-choice", "KPIs", "C2", value="x"),
     "missing field(s) choices, hint"),
])
def test_issue_fails_loudly(call, words):
    with pytest.raises(CatalogueError, match=re.escape(words)):
        call()


# ---------------------------------------------------------------------------- the docs' table
CODES_PAGE = ROOT / "docs" / "issue-codes.md"


def documented_codes() -> dict[str, tuple[str, str]]:
    """code → (severity, title) from the table of docs/issue-codes.md, one row per code."""
    text = CODES_PAGE.read_text(encoding="utf-8")
    start = text.index("| code | severity | title | meaning → fix |")
    rows = text[start:].split("\n\n", 1)[0].strip().splitlines()[2:]
    found: dict[str, tuple[str, str]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        assert len(cells) == 4, f"a row of {CODES_PAGE.name} without four cells: {row}"
        codes = re.findall(r"^`([a-z0-9-]+)`$", cells[0])
        assert codes, f"not one code in backticks: {cells[0]}"
        assert codes[0] not in found, f"{codes[0]} is in {CODES_PAGE.name}'s table twice"
        found[codes[0]] = (cells[1], cells[2])
    return found


def test_the_docs_table_lists_every_code_with_its_severity_and_title():
    documented = documented_codes()
    assert set(documented) == set(CATALOGUE), (
        f"not in {CODES_PAGE.name}: {sorted(set(CATALOGUE) - set(documented))}; "
        f"not in the catalogue: {sorted(set(documented) - set(CATALOGUE))}")
    for code, (severity, title) in documented.items():
        entry = CATALOGUE[code]
        expected = entry.severity + (" (build)" if entry.stage == "build" else "")
        assert severity == expected, code
        assert title == entry.title, code


# ---------------------------------------------------------------------------- every form
def write(path: Path, sheets: dict, hidden=(), merged=()) -> Path:
    from openpyxl import Workbook, load_workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(row)
        if name in hidden:
            ws.sheet_state = "hidden"
    for name, rng in merged:
        book[name].merge_cells(rng)
    book.save(path)
    if "formula-cells" in path.name:
        book = load_workbook(path)
        book["Actuals"]["C2"] = "=1+1"  # saved without its value
        book["Actuals"]["D2"] = "#DIV/0!"
        book.save(path)
    return path


def base(**sheets) -> dict:
    found = copy.deepcopy(BASE)
    found.update(copy.deepcopy(sheets))
    return found


def put(sheets: dict, sheet: str, row: int, col: int, value) -> dict:
    rows = sheets[sheet]
    while len(rows) <= row:
        rows.append([])
    rows[row].extend([None] * (col + 1 - len(rows[row])))
    rows[row][col] = value
    return sheets


def edit(sheet, row, col, value, sheets=None) -> dict:
    return put(sheets or base(), sheet, row, col, value)


def plus(sheet, *rows, sheets=None) -> dict:
    sheets = sheets or base()
    sheets[sheet] += [list(r) for r in rows]
    return sheets


def without(*names) -> dict:
    sheets = base()
    for name in names:
        sheets.pop(name)
    return sheets


def renamed(old, new) -> dict:
    sheets = base()
    sheets[new] = sheets.pop(old)
    return sheets


GOALS = [["goal_id", "goal", "level", "parent_goal_id"], ["G1", "Grow", "strategic", None],
         ["G2", "Sell", "tactical", "G1"]]
CONV = ["CONV", "Conversion", "percent", "higher", "average", None]
RANGE = ["RNG", "r", "number", "range", "sum", None]


def conv(line, actuals, **sheets) -> dict:
    found = plus("KPIs", CONV, sheets=base(**sheets))
    found["Scorecards"][3] = ["E2", "CONV", 1.0, *line]
    found["Actuals"][3] = ["E2", "CONV", *actuals]
    return found


def ranged(*extra) -> dict:
    found = plus("KPIs", RANGE)
    found["Scorecards"][3] = ["E2", "RNG", 1.0, 100, None, None, *extra]
    found["Actuals"][3][1] = "RNG"
    if extra:
        found["Scorecards"][0].append("target_max")
    return found


def formula_kpis(*rows) -> dict:
    return plus("KPIs", *[[k, "r", "number", "higher", None, f] for k, f in rows])


def dated(start, end, other) -> dict:
    found = edit("People", 0, 7, "start_date")
    put(found, "People", 0, 8, "end_date")
    put(found, "People", 1, 7, start)
    put(found, "People", 1, 8, end)
    return put(found, "People", 2, 7, other)


def ratio(actual_kpi) -> dict:
    found = formula_kpis(("RATIO", "REV / CAC"))
    found["Scorecards"][3] = ["E2", "RATIO", 1.0, 2, None, None]
    return plus("Actuals", ["E2", actual_kpi, 1, 2], sheets=found)


def no_period(**sheets) -> dict:
    found = base(**sheets)
    found["Settings"].pop()
    return found


LONG = [["owner", "kpi_id", "period", "actual"], ["E1", "REV", "2026-01", 1],
        ["E1", "REV", "2026-01", 2], ["E1", "CAC", "2026-02", 3], ["E2", "REV", "2026-02", 4],
        ["E2", "REV", "2026-13", 4]]

CASES = {
    "no-bands-sheet": without("Bands"),
    "near-sheet": renamed("Bands", "Band"),
    "dup-sheet": plus("People ", *BASE["People"], sheets=base(**{"People ": []})),
    "hidden-merged-unknown": plus("Notes", ["x"], sheets=base(Goals=GOALS, Notes=[])),
    "empty-sheet": base(People=[[None]]),
    "near-column": edit("KPIs", 0, 0, "kpi id"),
    "missing-column": edit("KPIs", 0, 3, "way"),
    "quarter-header": edit("Actuals", 0, 4, "Q1 2026"),
    "month-twice": edit("Actuals", 0, 4, "2026-01"),
    "column-twice": edit("People", 0, 7, "name"),
    "similar-column": edit("People", 0, 7, "end date"),
    "helper-column": edit("People", 0, 7, "notes"),
    "unknown-setting": plus("Settings", ["bonus_bases", 1]),
    "setting-twice": plus("Settings", ["report_period", "2026-01"]),
    "no-organization": edit("Settings", 1, 0, "organisation"),
    "bad-settings": plus("Settings", ["score_cap", 0.5], ["rag_amber", 1.2],
                         ["rag_green", 1.0]),
    "currency-locale": plus("Settings", ["currency", "XXQ"], ["locale", "zz_QQ"]),
    "employee-twice": edit("People", 2, 0, "e1"),
    "goal-twice": base(Goals=GOALS + [["g1", "x", "strategic", None]]),
    "kpi-twice": edit("KPIs", 2, 0, "rev"),
    "band-twice": edit("Bands", 2, 0, "below"),
    "dates": dated("2026-05-01", "2026-01-01", "not a date"),
    "negative-salary": edit("People", 1, 5, -5),
    "short-password": put(edit("People", 0, 7, "pdf_password"), "People", 1, 7, "short"),
    "unknown-manager": edit("People", 2, 4, "E99"),
    "own-manager": edit("People", 1, 4, "E1"),
    "manager-loop": edit("People", 1, 4, "E2"),
    "goals": put(put(put(base(Goals=GOALS + [
        ["G3", "x", "tactical", "G9"], ["G4", "y", "tactical", "G4"],
        ["G5", "a", "tactical", "G6"], ["G6", "b", "tactical", "G5"]]),
        "KPIs", 0, 6, "goal_id"), "KPIs", 1, 6, "G2"), "KPIs", 2, 6, "G7"),
    "no-aggregation": edit("KPIs", 2, 4, None),
    "no-name": edit("People", 1, 1, None),
    "no-month-columns": base(Actuals=[["owner", "kpi_id"], ["E1", "REV"]]),
    "no-bands": base(Bands=[BASE["Bands"][0]]),
    "bad-kpi-id": edit("KPIs", 1, 0, "1REV"),
    "formulas": formula_kpis(("R1", "REV / (CAC"), ("R2", "REV / CACC"), ("R3", "R4 + 1"),
                             ("R4", "R3 + 1"), ("R5", "R6 * 2"), ("R6", "REV * 2")),
    "ambiguous-owner": plus("Scorecards", ["Sales", "REV", 1.0, 100, None, None],
                            sheets=plus("People", ["Sales", "Sam", "Ops", None, None, 1, 0.1])),
    "unknown-owner": edit("Scorecards", 3, 0, "E3"),
    "line-twice": plus("Scorecards", ["E2", "REV", 0.0, 100, None, None]),
    "actuals-row-twice": plus("Actuals", ["E1", "REV", 1, 2]),
    "weights": edit("Scorecards", 1, 2, 0.5),
    "range-without-column": ranged(),
    "range-without-value": ranged(None),
    "range-below-target": ranged(50),
    "target-zero": edit("Scorecards", 3, 3, 0),
    "threshold-higher": edit("Scorecards", 1, 4, 150),
    "stretch-higher": edit("Scorecards", 1, 5, 90),
    "threshold-lower": edit("Scorecards", 2, 4, 40),
    "stretch-lower": edit("Scorecards", 2, 5, 60),
    "stretch-negative": edit("Scorecards", 2, 5, -1),
    "long-actuals": base(Actuals=LONG),
    "weight-60": edit("Scorecards", 1, 2, 60),
    "slip-actual": conv((0.2, None, None), (0.21, 23)),
    "slip-target": conv((20, None, None), (0.21, 0.23)),
    "slip-bound": conv((0.2, 0.1, 30), (0.21, 0.23)),
    "slip-target-bounds": conv((20, 0.1, 0.3), (0.21, 0.23)),
    "slip-target-bound": conv((20, 0.1, None), (0.21, 0.23)),
    "slip-monthly-target": conv((0.2, None, None), (0.21, 0.2), Targets=[
        ["owner", "kpi_id", "2026-01"], ["E2", "CONV", 25]]),
    "formula-actuals": ratio("RATIO"),
    "missing-component": ratio("CAC"),
    "no-scorecard-line": plus("Actuals", ["E2", "CAC", 1, 2]),
    "targets": base(Targets=[["owner", "kpi_id", "2026-01"], ["E2", "CAC", 5],
                             ["E1", "REV", 0]]),
    "no-actuals": base(Actuals=BASE["Actuals"][:-1]),
    "bands-first": edit("Bands", 1, 1, 0.1),
    "bands-order": edit("Bands", 3, 1, 0.9),
    "recipients": base(Recipients=[["report", "scope", "to", "cc"],
                                   ["employee", "*", "{employee}", "x@y"],
                                   ["employee", "E9", "{employe}", None]]),
    "bad-email": edit("People", 1, 3, "alice@"),
    "latest-period": no_period(),
    "no-period": no_period(Actuals=[["owner", "kpi_id", "2026-01"]]),
    "no-actuals-in-period": edit("Settings", 2, 1, "2026-05"),
    "after-period": edit("Settings", 2, 1, "2026-01"),
    "glyphs": edit("People", 1, 1, "王小明"),
    "line-break": edit("People", 1, 1, "Ali\nce"),
    "control": edit("People", 1, 1, "Ali\x7fce"),
    "nan": edit("Actuals", 1, 2, "nan"),
    "huge": edit("Actuals", 1, 2, 1e20),
    "decimals": put(edit("KPIs", 0, 6, "decimals"), "KPIs", 1, 6, 9),
    "number-as-text": edit("Actuals", 1, 2, "1,000"),
    "not-a-number": edit("Actuals", 1, 2, "lots"),
    "bad-choice": edit("KPIs", 1, 2, "dollars"),
    "comments": base(Comments=[["owner", "period", "comment", "kpi_id"],
                               ["E1", "2026-02", "ok", "Revenue"],
                               ["Nobody", "2026-02", "x", None]]),
    "formula-cells": base(),
    "payments": plus("Settings", ["bonus_payment", "weekly"], sheets=base(Payments=[
        ["employee_id", "period", "amount"], ["E9", "2026-01", 100],
        ["E1", "2025-12", 100], ["E2", "2026-01", -5]])),
}
# Forms that no workbook check makes: they are made by the reader, cli.py or a build.
ELSEWHERE = {("unreadable-file", ""), ("not-finite", "number"), ("division-by-zero", "")}


@pytest.fixture(scope="module")
def every_issue(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    found = []
    for name, sheets in CASES.items():
        extra = {}
        if name.startswith("hidden-merged"):
            extra = {"hidden": ("Goals",), "merged": (("People", "H1:I2"),)}
        _, issues = api.check(write(folder / f"{name}.xlsx", sheets, **extra))
        found += [(name, i) for i in issues]
    return found


def test_every_message_form_is_made_by_some_workbook(every_issue):
    made = {(i.code, i.form) for _, i in every_issue}
    forms = {(e.code, f) for e in ENTRIES for f in e.forms}
    assert forms - ELSEWHERE == made, sorted(forms - ELSEWHERE - made)


def test_no_message_text_repeats_its_own_place(every_issue):
    for name, i in every_issue:
        assert i.text and i.text.strip() == i.text, (name, i)
        if i.sheet and i.cell:
            assert f"{i.sheet}!{i.cell}" not in i.text, (name, i.message)
        assert i.message == (f"{i.where}: {i.text}" if i.where else i.text)
        assert i.where in ("", i.sheet, f"{i.sheet}!{i.cell}") or i.code == "merged-cells"


@pytest.mark.parametrize("case, code, message", [
    ("unknown-manager", "unknown-reference",
     "People!E3: manager E99 is not in the People sheet"),
    ("near-sheet", "missing-sheet",
     "the required sheet 'Bands' is missing (sheets found: Settings, People, KPIs, Scorecards, "
     "Actuals, Band); did you mean Band? Rename it to Bands"),
    ("hidden-merged-unknown", "merged-cells",
     "People!H1:I2: merged cells; only the top-left cell keeps a value, unmerge them"),
    ("no-organization", "missing-setting",
     "Settings: organization is required (add a row: organization | your organisation's name)"),
    ("slip-target-bounds", "percent-as-whole-number",
     "Scorecards!D4: target 20 of CONV, a percent KPI whose threshold and stretch are like 30%, "
     "looks like a whole percent; type 20% (or 0.2)"),
    ("recipients", "bad-email",
     "Recipients!D2: 'x@y' is not a single e-mail address or {employee}, {manager}, {head}"),
    ("weights", "weights-not-100",
     "Scorecards!C2: the weights of E1 add up to 90%, not 100% (cells C2, C3)"),
])
def test_messages_read_as_before(every_issue, case, code, message):
    """The messages people see are the ones kpireport has always shown."""
    assert message in [i.message for name, i in every_issue if name == case and i.code == code]
