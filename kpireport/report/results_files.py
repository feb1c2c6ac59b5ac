"""The machine-readable files of a build (SPEC §4): results.json, results.xlsx and payroll.csv.

Each is made as bytes from the build's :class:`~kpireport.score.results.Results`, so the build
decides where (and how atomically) they are written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from decimal import Decimal

from kpireport.core.files import safe_text
from kpireport.core.i18n import N_, translations, unsigned_zero
from kpireport.core.model import month_label
from kpireport.core.money import minor_units
from kpireport.score.outlook import Outlook
from kpireport.score.pool import PERCENTILES
from kpireport.score.results import SCHEMA_ID, Results
from kpireport.score.scoring import Window


# ---------------------------------------------------------------------------- JSON
def _window(window: Window) -> dict[str, object]:
    return {"actual": _num(window.actual), "target": _num(window.target),
            "attainment": _num(window.attainment), "score": _num(window.score),
            "status": window.status}


def _num(value: float | None) -> float | None:
    """A number as written: -0.0 becomes 0.0 (IEEE: -0.0 + 0.0 is +0.0), so no file says -0."""
    return None if value is None else value + 0.0


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value) + 0.0


def results_json(results: Results) -> dict[str, object]:
    """The document of SPEC §4, shape for shape."""
    book, s = results.book, results.book.settings
    scorecards = []
    for owner in results.owners:
        pay = results.pay.get(owner.owner)
        scorecards.append({
            "owner": owner.owner, "owner_type": owner.owner_type, "name": owner.name,
            "department": owner.department,
            "month": {"score": _num(owner.month_score), "status": owner.month_status},
            "ytd": {"score": _num(owner.ytd_score), "status": owner.ytd_status},
            "band": pay.band if pay else None,
            "bonus_payout": pay.bonus_payout if pay else None,
            "bonus": _money(pay.bonus) if pay else None,
            "salary_increase": pay.salary_increase if pay else None,
            "recommended_salary": _money(pay.recommended_salary) if pay else None,
            "employment": results.employment(owner.owner),
            **payable_json(results, owner.owner),
            "what_it_takes": _outlook(results.outlooks.get(owner.owner)),
            "kpis": [{"kpi_id": line.kpi_id, "weight": line.weight,
                      "month": _window(line.month), "ytd": _window(line.ytd)}
                     for line in owner.lines]})
    return {
        "schema": SCHEMA_ID, "organization": s.organization, "period": results.period,
        "fiscal_year_start": month_label(results.scores.fiscal_start), "currency": s.currency,
        "locale": s.locale, "source": {"file": book.source_file, "sha256": book.source_sha256},
        "scorecards": scorecards,
        "issues": [i.as_dict() for i in results.issues if i.severity != "info"],
        "pool": pool_json(results)}  # after SPEC §4's keys (docs/payments.md)


def payable_json(results: Results, owner: str) -> dict[str, object]:
    """With a payment schedule, an employee's earned, paid and payable now (SPEC §2.8)."""
    line = results.payables.get(owner) if results.schedule else None
    if line is None:
        return {}
    return {"earned_to_date": _money(line.earned_to_date),
            "paid_to_date": _money(line.paid_to_date),
            "payable_now": _money(line.payable_now), "clawback": _money(line.clawback)}


def pool_json(results: Results) -> dict[str, object]:
    """The bonus pool (kpireport.score.pool): paid and earned to date, the year end projected."""
    pool = results.pool
    band = pool.projection
    return {"earned_to_date": _money(pool.earned_to_date),
            "paid_to_date": _money(pool.paid_to_date),
            "projection": {"months_left": band.months_left, "low": _money(band.low),
                           "expected": _money(band.expected), "high": _money(band.high),
                           "method": "bootstrap", "percentiles": list(PERCENTILES),
                           "draws": band.draws, "seed": band.seed}}


def _outlook(outlook: Outlook | None) -> dict[str, object] | None:
    """What the rest of the fiscal year takes (kpireport.score.outlook); null but for
    employees."""
    if outlook is None:
        return None
    return {
        "year_end": month_label(outlook.year_end), "months_left": len(outlook.months_left),
        "final": outlook.final,
        "kpis": [{"kpi_id": k.kpi_id, "pace_of": k.driver or k.kpi_id,
                  "held": {c: _num(v) for c, v in k.held}, "step": k.step,
                  "levels": [{"level": n.level, "score": n.score, "state": n.state,
                              "at_least": _num(n.at_least), "at_most": _num(n.at_most)}
                             for n in k.needs]}
                 for k in outlook.kpis],
        "levels": [{"level": lv.level, "score": _num(lv.score), "band": lv.band,
                    "bonus_payout": _num(lv.bonus_payout), "bonus": _money(lv.bonus),
                    "reachable": lv.reachable} for lv in outlook.levels]}


def results_json_bytes(results: Results, document: dict | None = None) -> bytes:
    """results.json as written: UTF-8, indented by two (orjson: ~20× the standard library's
    indenting encoder, which is pure Python). ``document`` is :func:`results_json` of
    ``results`` when the caller has made it already."""
    # lazy: orjson is loaded only where it is used (start-up stays light)
    import orjson

    if document is None:
        document = results_json(results)
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


# ---------------------------------------------------------------------------- payroll.csv
PAYROLL_COLUMNS = ("employee_id", "name", "department", "ytd_score", "band", "bonus_payout",
                   "bonus", "salary_increase", "recommended_salary", "currency", "employment")
PAYMENT_COLUMNS = ("earned_to_date", "paid_to_date", "payable_now", "clawback")


def payroll_csv(results: Results) -> bytes:
    currency = results.book.settings.currency
    places = minor_units(currency)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    schedule = results.schedule
    writer.writerow(PAYROLL_COLUMNS + (PAYMENT_COLUMNS if schedule else ()))
    for owner in results.owners:
        pay = results.pay.get(owner.owner)
        if pay is None:
            continue
        row = [owner.owner, owner.name, owner.department, _plain(owner.ytd_score),
               pay.band or "", _plain(pay.bonus_payout),
               _fixed(pay.bonus, places), _plain(pay.salary_increase),
               _fixed(pay.recommended_salary, places),
               currency, results.employment(owner.owner)]
        row = [safe_text(v) for v in row]
        if schedule:  # numbers as numbers: a clawback's minus sign is not a formula
            line = results.payables[owner.owner]
            row += [_fixed(line.earned_to_date, places), _fixed(line.paid_to_date, places),
                    _fixed(line.payable_now, places), _fixed(line.clawback, places)]
        writer.writerow(row)
    # The byte-order mark makes Excel on Windows read UTF-8 (Vietnamese names) instead of
    # the ANSI code page; csv readers that open with utf-8-sig skip it.
    return out.getvalue().encode("utf-8-sig")


def _plain(value: float | None) -> str:
    return "" if value is None else repr(round(value, 10) + 0.0)


def _fixed(value: Decimal | None, places: int) -> str:
    return "" if value is None else unsigned_zero(f"{value:.{places}f}")


# ---------------------------------------------------------------------------- results.xlsx
XLSX_STATUS = {"green": N_("On track"), "amber": N_("At risk"), "red": N_("Off track"),
               "none": N_("No data")}
WINDOW_HEADERS = ((N_("month actual"), N_("month target"), N_("month attainment"),
                   N_("month score"), N_("month status")),
                  (N_("ytd actual"), N_("ytd target"), N_("ytd attainment"), N_("ytd score"),
                   N_("ytd status")))
XLSX_WORDS = {"employee": N_("employee"), "department": N_("department"),
              "company": N_("company"), "employed": N_("employed"), "left": N_("left"),
              "not-started": N_("not started")}


def results_xlsx(results: Results) -> bytes:
    """Two sheets for Excel users: owner scores and KPI lines, formatted and filterable.

    Headers, owner types, status and employment words are in the workbook's language
    (Settings ``locale``); actuals and targets of percent KPIs are formatted as percents and
    of currency KPIs as money; goal names stand beside goal ids.

    Written with rustpy-xlsxwriter (rust_xlsxwriter): ~0.15 s for the ~160,000 cells of
    1,000 people, where XlsxWriter took 1.15 s — more than a whole ``kpireport check``. Number
    formats sit on the columns; the actual and target columns have none, so each KPI line's
    row format (its unit's: percent, money or plain) formats them, while the other columns'
    formats win over it. Text is always written as text (an inline string, never a formula)
    and keeps safe_text's apostrophe.
    """
    # lazy: rustpy_xlsxwriter is loaded only where it is used (start-up stays light)
    import rustpy_xlsxwriter as xlsx

    gettext = translations(results.book.settings.locale).gettext
    words = {code: gettext(text) for code, text in {**XLSX_STATUS, **XLSX_WORDS}.items()}
    goals = {g.goal_id: g.goal for g in results.book.goals}
    currency = results.book.settings.currency
    money = "#,##0" if minor_units(currency) == 0 else "#,##0.00"
    owner_cols = [(N_("owner"), 12, None), (N_("type"), 11, None), (N_("name"), 26, None),
                  (N_("department"), 18, None), (N_("month score"), 12, "0.0%"),
                  (N_("month status"), 12, None), (N_("ytd score"), 11, "0.0%"),
                  (N_("ytd status"), 11, None), (N_("band"), 18, None),
                  (N_("bonus payout"), 12, "0.0%"),
                  (gettext("bonus ({currency})").format(currency=currency), 16, money),
                  (N_("salary increase"), 14, "0.0%"),
                  (gettext("recommended salary ({currency})").format(currency=currency), 24,
                   money), (N_("employment"), 14, None)]
    rows = []
    for o in results.owners:
        pay = results.pay.get(o.owner)
        state = results.employment(o.owner)
        rows.append([o.owner, words[o.owner_type], o.name, o.department, o.month_score,
                     words[o.month_status], o.ytd_score, words[o.ytd_status],
                     pay.band if pay else None, pay.bonus_payout if pay else None,
                     pay.bonus if pay else None, pay.salary_increase if pay else None,
                     pay.recommended_salary if pay else None,
                     words[state] if state else None])
    line_cols = [(N_("owner"), 12, None), (N_("kpi_id"), 12, None), (N_("kpi"), 30, None),
                 (N_("weight"), 9, "0%"), (N_("goal"), 10, None), (N_("goal name"), 30, None),
                 (N_("strategic goal"), 14, None), (N_("strategic goal name"), 30, None)]
    for actual, target, attainment, score, status in WINDOW_HEADERS:
        line_cols += [(actual, 14, None), (target, 14, None),  # the row's unit formats these
                      (attainment, 12, "0.0%"), (score, 11, "0.0%"), (status, 11, None)]
    # The ~20,000 KPI lines' numbers (Window's floats or None) go to the writer as they are,
    # their texts made safe once per distinct text: _cell on each of ~360,000 cells cost 0.1 s.
    safe: dict[str, object] = {}

    def text(value: str | None) -> object:
        if value is None:
            return None
        if value not in safe:
            safe[value] = _cell(value)
        return safe[value]

    status = {code: text(word) for code, word in words.items()}
    zero_below = _ZeroBelow()
    kpis: dict[tuple, tuple] = {}  # a KPI's texts and row format, once per KPI and goals
    line_rows, line_units = [], []
    for o in results.owners:
        owner = text(o.owner)
        for ln in o.lines:
            key = (ln.kpi_id, ln.goal_id, ln.strategic_goal_id)
            if key not in kpis:
                kpis[key] = ((text(ln.kpi_id), text(ln.kpi.kpi)),
                             (text(ln.goal_id), text(goals.get(ln.goal_id or "")),
                              text(ln.strategic_goal_id),
                              text(goals.get(ln.strategic_goal_id or ""))),
                             _value_format(ln.kpi.unit, ln.kpi.decimals, money) or PLAIN)
            kpi_texts, goal_texts, unit = kpis[key]
            m, y = ln.month, ln.ytd
            near = zero_below[unit]
            line_rows.append([owner, *kpi_texts, ln.weight, *goal_texts,
                              _zeroed(m.actual, near), _zeroed(m.target, near),
                              _zeroed(m.attainment, PERCENT_ZERO), m.score, status[m.status],
                              _zeroed(y.actual, near), _zeroed(y.target, near),
                              _zeroed(y.attainment, PERCENT_ZERO), y.score,
                              status[y.status]])
            line_units.append(unit)
    formats: dict[str, object] = {}

    def number_format(fmt: str):
        if fmt not in formats:
            formats[fmt] = xlsx.Format().set_num_format(fmt)
        return formats[fmt]

    header = (xlsx.Format().set_bold().set_font_color("#FFFFFF")
              .set_background_color("#1F3A5F"))
    sheets, options = [], {key: {} for key in (
        "freeze_panes", "column_widths", "column_formats", "header_format", "autofilter",
        "row_formats")}
    rows = [list(map(_cell, row)) for row in rows]
    for title, cols, data, frozen, units in (
            (gettext("Owners"), owner_cols, rows, 1, None),
            (gettext("KPI lines"), line_cols, line_rows, 2, line_units)):
        title = title[:31]
        names = _unique([gettext(name) for name, _, _ in cols])
        sheets.append((title, [dict(zip(names, row)) for row in data]
                       or [dict.fromkeys(names)]))
        options["freeze_panes"][title] = {"row": 1, "col": frozen}
        options["column_widths"][title] = [width for _, width, _ in cols]
        options["column_formats"][title] = {name: number_format(fmt)
                                            for name, (_, _, fmt) in zip(names, cols) if fmt}
        options["header_format"][title] = header
        options["autofilter"][title] = True
        if units:
            options["row_formats"][title] = {r: number_format(unit)
                                             for r, unit in enumerate(units, start=1)}
    out = io.BytesIO()
    xlsx.write_worksheets(sheets, out, **options)
    return out.getvalue()


PLAIN = "#,##0.####"  # the actual and target of a KPI that is neither percent nor money
PERCENT_ZERO = 0.0005  # below this a negative shows as -0.0% in a "0.0%" cell


class _ZeroBelow(dict):
    """Number format → the size under which a negative value shows as -0 in it."""

    def __missing__(self, fmt: str) -> float:
        body = fmt.split(";")[0]
        places = len(body.split(".")[1].rstrip("%")) if "." in body else 0
        self[fmt] = limit = 0.5 * 10.0 ** -(places + (2 if body.endswith("%") else 0))
        return limit


def _zeroed(value: float | None, below: float) -> float | None:
    """A negative value that Excel would show as -0 (it rounds away from zero at its format's
    places) is written as 0: a figure that rounds to zero is zero. Others stay exact."""
    if value is not None and -below < value <= 0:
        return 0.0
    return value


def _cell(value: object) -> object:
    """A cell's value as rust_xlsxwriter takes it: text made safe, Decimal money a float."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _unique(names: list[str]) -> list[str]:
    """Column headers as record keys: a translation that repeats one gets a number."""
    seen: set[str] = set()
    out = []
    for name in names:
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name} ({n})"
        seen.add(unique)
        out.append(unique)
    return out


def _value_format(unit: str, decimals: int | None, money: str) -> str | None:
    """The number format of a KPI's actual and target cells: percent KPIs as %, money as
    money; plain numbers keep the column's format."""
    if unit == "percent":
        places = 1 if decimals is None else decimals
        return "0" + ("." + "0" * places if places else "") + "%"
    if unit == "currency":
        return money
    return None


# ---------------------------------------------------------------------------- all three
def results_files(results: Results, more: Mapping[str, Callable[[], bytes]] | None = None,
                  *, document: dict | None = None) -> dict[str, bytes]:
    """results.json, results.xlsx and payroll.csv of a build, by file name (and ``more``: other
    files of the build made beside them, e.g. the input snapshot). ``document`` is results.json
    already made (the build's view builder has it)."""
    files = {"results.json": results_json_bytes(results, document),
             "results.xlsx": results_xlsx(results), "payroll.csv": payroll_csv(results)}
    for name, make in (more or {}).items():
        files[name] = make()
    return files
