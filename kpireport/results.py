"""Results of one build, and the machine-readable files of SPEC §4.

``compute`` joins scores and pay; ``results_json``, ``results_xlsx`` and ``payroll_csv`` turn
them into bytes, so the caller decides where (and how atomically) they are written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from kpireport.bands import Pay, minor_units, pay_for
from kpireport.issues import Issue
from kpireport.model import Book, Month, Person, first_day, last_day, month_label
from kpireport.scoring import (
    LineResult,
    OwnerScore,
    Scores,
    Window,
    mean_score,
    score_book,
    status_of,
)
from kpireport.spec import COMPANY

SCHEMA_ID = "kpireport/results@1"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Results:
    book: Book
    scores: Scores
    pay: dict[str, Pay]  # employee_id -> pay
    issues: tuple[Issue, ...]

    @property
    def period(self) -> str:
        return month_label(self.scores.period)

    @property
    def owners(self) -> tuple[OwnerScore, ...]:
        return self.scores.owners

    def owner(self, owner_id: str) -> OwnerScore:
        return self._by_owner[owner_id]

    @cached_property
    def _by_owner(self) -> dict[str, OwnerScore]:
        return {o.owner: o for o in self.scores.owners}

    @cached_property
    def absent(self) -> dict[str, str]:
        """Employees not employed on any day of the report month: ``left`` (end_date before
        it) or ``not-started`` (start_date after it). They get no review and no e-mail; their
        pay stays in the results files, marked."""
        found = {}
        for o in self.scores.owners:
            if o.person is not None:
                state = employment(o.person, self.scores.period)
                if state != "employed":
                    found[o.owner] = state
        return found

    def employment(self, owner_id: str) -> str | None:
        """employed / left / not-started for an employee; None for departments, the company."""
        owner = self._by_owner.get(owner_id)
        if owner is None or owner.person is None:
            return None
        return self.absent.get(owner_id, "employed")


    # ------------------------------------------------------------------ group scores
    def status(self, score: float | None) -> str:
        """The status of any score, by the workbook's rag_green and rag_amber."""
        s = self.book.settings
        return status_of(score, s.rag_green, s.rag_amber)

    @cached_property
    def departments(self) -> dict[str, DepartmentScore]:
        """Every department's score (see :class:`DepartmentScore`), in the book's order."""
        own = {o.owner: o for o in self.scores.owners if o.owner_type == "department"}
        teams: dict[str, list[OwnerScore]] = {d: [] for d in self.book.departments}
        for o in self.scores.owners:
            if o.owner_type == "employee" and o.owner not in self.absent \
                    and o.department in teams:
                teams[o.department].append(o)
        found = {}
        for name, team in teams.items():
            team_month = mean_score(o.month_score for o in team)
            team_ytd = mean_score(o.ytd_score for o in team)
            scorecard = own.get(name)
            month = scorecard.month_score if scorecard else team_month
            ytd = scorecard.ytd_score if scorecard else team_ytd
            found[name] = DepartmentScore(name, month, ytd, self.status(ytd), team_ytd,
                                          tuple(team))
        return found

    @cached_property
    def kpis(self) -> dict[str, KpiScore]:
        """Every KPI on any scorecard, across the scorecards that measure it (see
        :class:`KpiScore`)."""
        lines: dict[str, list[LineResult]] = {}
        for o in self.scores.owners:
            for line in o.lines:
                lines.setdefault(line.kpi_id, []).append(line)
        found = {}
        for kpi_id, measured in lines.items():
            company = next((ln for ln in measured if ln.owner == COMPANY), None)
            ytd = company.ytd.score if company else mean_score(ln.ytd.score for ln in measured)
            counts: dict[str, int] = {}
            for line in measured:
                counts[line.ytd.status] = counts.get(line.ytd.status, 0) + 1
            found[kpi_id] = KpiScore(kpi_id, ytd, self.status(ytd), len(measured),
                                     tuple((code, counts[code]) for code in STATUS_ORDER
                                           if code in counts))
        return found


STATUS_ORDER = ("green", "amber", "red", "none")


@dataclass(frozen=True)
class DepartmentScore:
    """A department's month and year-to-date score: its own scorecard's where it has one,
    else the average of its team (the employees who worked in the report month); the status
    is that year-to-date score's."""

    name: str
    month: float | None
    ytd: float | None
    status: str
    team_average: float | None  # the team's year-to-date average, beside its own score
    team: tuple[OwnerScore, ...]


@dataclass(frozen=True)
class KpiScore:
    """A KPI across every scorecard that measures it: the company's year-to-date score where
    the company scorecard has the KPI, else the average of those scorecards; its status; and
    how many of them are at each status (in STATUS_ORDER, only the statuses present)."""

    kpi_id: str
    ytd: float | None
    status: str
    scorecards: int
    by_status: tuple[tuple[str, int], ...]


def employment(person: Person, period: Month) -> str:
    """Whether the person worked any day of the month: employed, left or not-started."""
    if person.end_date is not None and person.end_date < first_day(period):
        return "left"
    if person.start_date is not None and person.start_date > last_day(period):
        return "not-started"
    return "employed"


def compute(book: Book, issues: list[Issue] | tuple[Issue, ...] = ()) -> Results:
    """Score the book and work out each employee's band, bonus and salary."""
    scores = score_book(book)
    pay = {}
    for owner in scores.owners:
        if owner.person is not None:
            pay[owner.owner] = pay_for(owner.person, owner.month_score, owner.ytd_score,
                                       book.settings, book.bands, scores.fiscal_start)
    return Results(book, scores, pay, tuple(issues) + scores.issues)


# ---------------------------------------------------------------------------- JSON
def _window(window: Window) -> dict[str, object]:
    return {"actual": window.actual, "target": window.target,
            "attainment": window.attainment, "score": window.score, "status": window.status}


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def results_json(results: Results) -> dict[str, object]:
    """The document of SPEC §4, shape for shape."""
    book, s = results.book, results.book.settings
    scorecards = []
    for owner in results.owners:
        pay = results.pay.get(owner.owner)
        scorecards.append({
            "owner": owner.owner, "owner_type": owner.owner_type, "name": owner.name,
            "department": owner.department,
            "month": {"score": owner.month_score, "status": owner.month_status},
            "ytd": {"score": owner.ytd_score, "status": owner.ytd_status},
            "band": pay.band if pay else None,
            "bonus_payout": pay.bonus_payout if pay else None,
            "bonus": _money(pay.bonus) if pay else None,
            "salary_increase": pay.salary_increase if pay else None,
            "recommended_salary": _money(pay.recommended_salary) if pay else None,
            "employment": results.employment(owner.owner),
            "kpis": [{"kpi_id": line.kpi_id, "weight": line.weight,
                      "month": _window(line.month), "ytd": _window(line.ytd)}
                     for line in owner.lines]})
    return {
        "schema": SCHEMA_ID, "organization": s.organization, "period": results.period,
        "fiscal_year_start": month_label(results.scores.fiscal_start), "currency": s.currency,
        "locale": s.locale, "source": {"file": book.source_file, "sha256": book.source_sha256},
        "scorecards": scorecards,
        "issues": [i.as_dict() for i in results.issues if i.severity != "info"]}


def results_json_bytes(results: Results) -> bytes:
    """results.json as written: UTF-8, indented by two (orjson: ~20× the standard library's
    indenting encoder, which is pure Python)."""
    import orjson

    return orjson.dumps(results_json(results), option=orjson.OPT_INDENT_2) + b"\n"


# ---------------------------------------------------------------------------- safe text
def safe_text(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (OWASP)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# ---------------------------------------------------------------------------- payroll.csv
PAYROLL_COLUMNS = ("employee_id", "name", "department", "ytd_score", "band", "bonus_payout",
                   "bonus", "salary_increase", "recommended_salary", "currency", "employment")


def payroll_csv(results: Results) -> bytes:
    currency = results.book.settings.currency
    places = minor_units(currency)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(PAYROLL_COLUMNS)
    for owner in results.owners:
        pay = results.pay.get(owner.owner)
        if pay is None:
            continue
        writer.writerow([safe_text(v) for v in (
            owner.owner, owner.name, owner.department, _plain(owner.ytd_score),
            pay.band or "", _plain(pay.bonus_payout),
            "" if pay.bonus is None else f"{pay.bonus:.{places}f}",
            _plain(pay.salary_increase),
            "" if pay.recommended_salary is None else f"{pay.recommended_salary:.{places}f}",
            currency, results.employment(owner.owner))])
    # The byte-order mark makes Excel on Windows read UTF-8 (Vietnamese names) instead of
    # the ANSI code page; csv readers that open with utf-8-sig skip it.
    return out.getvalue().encode("utf-8-sig")


def _plain(value: float | None) -> str:
    return "" if value is None else repr(round(value, 10))


# ---------------------------------------------------------------------------- results.xlsx
def N_(message: str) -> str:
    """Mark a message for extraction; translated where the workbook is written."""
    return message


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
    import rustpy_xlsxwriter as xlsx

    from kpireport.i18n import translations

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
            line_rows.append([owner, *kpi_texts, ln.weight, *goal_texts,
                              m.actual, m.target, m.attainment, m.score, status[m.status],
                              y.actual, y.target, y.attainment, y.score, status[y.status]])
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
def results_files(results: Results, more: Mapping[str, Callable[[], bytes]] | None = None
                  ) -> dict[str, bytes]:
    """results.json, results.xlsx and payroll.csv of a build, by file name (and ``more``: other
    files of the build made beside them, e.g. the input snapshot)."""
    files = {"results.json": results_json_bytes(results), "results.xlsx": results_xlsx(results),
             "payroll.csv": payroll_csv(results)}
    for name, make in (more or {}).items():
        files[name] = make()
    return files


class ResultsFiles:
    """The :func:`results_files` of a build, made beside its reports.

    A build that splits its reports with a forked child (kpireport.reportset) has that child
    make them first and then take reports (:meth:`before_fork`, :meth:`make`, :meth:`given`):
    two processes on two cores and one fork fewer than a child of their own, whose copied
    pages and third process on two cores cost ~40 ms of a cold 1,000-person build. Any
    other build starts them in a child of their own (:meth:`start`) as it renders.
    :meth:`wait` returns them (started here if nobody did)."""

    def __init__(self, results: Results) -> None:
        self.results = results
        self._wait: Callable[[], dict[str, bytes]] | None = None

    def before_fork(self) -> None:
        """Ready a child to make them: the catalog loaded and, unless it is safe for the
        child to import (:func:`kpireport.forked.alone`), the xlsx writer imported here.

        A command's child imports the writer itself (~45 ms this process never spends): no
        other thread but the children's reapers runs when it forks (the build's import
        thread has ended), so no import lock is held across the fork. Where other threads
        run (a server), the writer is imported here first and the child imports nothing."""
        from kpireport import forked
        from kpireport.i18n import translations

        if not forked.alone():
            import rustpy_xlsxwriter  # noqa: F401
        translations(self.results.book.settings.locale)

    def make(self) -> dict[str, bytes]:
        return results_files(self.results)

    def given(self, files: dict[str, bytes]) -> None:
        """Made elsewhere (by the child that shared the reports)."""
        self._wait = lambda: files

    def start(self) -> None:
        """Start making them in a forked child of their own (a thread where there is no
        fork, see :mod:`kpireport.forked`)."""
        from kpireport import forked

        self.before_fork()
        self._wait = forked.start(self.make, name="results-files")

    def wait(self) -> dict[str, bytes]:
        """The files (raises what making them raised)."""
        if self._wait is None:
            self.start()
        return self._wait()  # type: ignore[misc]
