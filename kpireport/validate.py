"""Check a RawBook against SPEC §1–§2 and build the typed model.

``validate(raw)`` returns ``(book, issues)``. ``book`` is None when any error was found; every
problem is reported in one pass, each with its sheet and A1 cell.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from kpireport import formula as formula_mod
from kpireport.cells import (
    MAX_MAGNITUDE,
    MIN_MAGNITUDE,
    CellReader,
    address_hint,
    closest,
    did_you_mean,
    is_blank,
    looks_like_period,
    month_from_header,
)
from kpireport.glyphs import check_glyphs
from kpireport.issues import Issue, IssueLog
from kpireport.model import (
    Band,
    Book,
    Comment,
    Goal,
    Kpi,
    Month,
    Person,
    Recipient,
    ScorecardLine,
    Settings,
    month_label,
)
from kpireport.spec import (
    COMPANY,
    LONG_ACTUALS_COLUMNS,
    SETTINGS,
    SETTINGS_BY_NAME,
    SHEETS,
    SHEETS_BY_KEY,
    Sheet,
    normalise,
)
from kpireport.workbook import RawBook, RawSheet, address, column_letter

KPI_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
TOKENS = ("{employee}", "{manager}", "{head}")
WEIGHT_TOLERANCE = 0.005


@dataclass
class Table:
    """A standard sheet located in the workbook: header positions and data rows."""

    spec: Sheet
    raw: RawSheet
    header_row: int
    columns: dict[str, int]  # column name -> index
    months: dict[Month, int]  # month columns (Targets / Actuals wide)
    rows: list[int]  # indexes of data rows

    @property
    def name(self) -> str:
        return self.raw.name

    def value(self, row: int, column: str) -> object:
        col = self.columns.get(column)
        if col is None:
            return None
        cells = self.raw.rows[row]
        return cells[col] if col < len(cells) else None

    def cell(self, row: int, column: str) -> str:
        col = self.columns.get(column)
        return f"{column_letter(col if col is not None else 0)}{row + 1}"


def validate(raw: RawBook, *, need_period: bool = True) -> tuple[Book | None, list[Issue]]:
    """Validate every rule that can be checked before scoring.

    ``need_period=False`` (for ``import``, which brings the actuals) leaves out the checks
    that a month with actuals can be reported.
    """
    return _Validator(raw, need_period=need_period).run()


def locate_tables(raw: RawBook) -> dict[str, Table]:
    """The standard sheets of ``raw`` with their header and data rows, nothing checked (the
    input snapshot of kpireport.diff reads values by column through these)."""
    validator = _Validator(raw)
    validator._locate_sheets()
    return validator.tables


class _Validator:
    def __init__(self, raw: RawBook, *, need_period: bool = True) -> None:
        self.raw = raw
        self.need_period = need_period
        self.log = IssueLog()
        self.tables: dict[str, Table] = {}
        # (owner, kpi) keys, casefolded, with "" for any: lines whose Scorecards row was already
        # reported (a mistyped owner or kpi_id), so their Actuals/Targets rows are not again.
        self.reported_lines: set[tuple[str, str]] = set()
        self.reported_weights: set[str] = set()  # owners whose weights a typo already broke
        self.typo_owners: dict[str, set[str]] = defaultdict(set)  # sheet -> suggested owners
        self.typo_kpis: dict[str, set[tuple[str, str]]] = defaultdict(set)  # (owner, kpi)
        self._near_cache: dict[tuple[str, str], list[str]] = {}
        # where each value of a percent KPI was typed: (sheet, (owner, kpi), month) -> row
        self.percent_cells: dict[tuple[str, tuple[str, str], Month], int] = {}
        self.line_keys: set[tuple[str, str]] = set()  # every (owner, kpi) typed in Scorecards
        self._bad: dict[str, set[tuple[int, int]]] = {}

    # ---------------------------------------------------------------- structure
    def run(self) -> tuple[Book | None, list[Issue]]:
        self._locate_sheets()
        missing = [s.name for s in SHEETS if s.required and s.name not in self.tables]
        unknown = [s.name for s in self.raw.sheets if normalise(s.name) not in SHEETS_BY_KEY]
        for name in missing:
            hint = did_you_mean(name, unknown)
            self.log.error("missing-sheet", name, "",
                           f"the required sheet {name!r} is missing (sheets found: "
                           f"{', '.join(s.name for s in self.raw.sheets) or 'none'})"
                           + (f"{hint} Rename it to {name}" if hint else ""))
        if any(i.code in ("missing-sheet", "missing-column") for i in self.log.errors):
            return None, self.log.items
        settings = self._settings()
        people = self._people()
        goals = self._goals()
        kpis = self._kpis(goals)
        lines = self._scorecards(people, kpis)
        actuals = self._actuals(people, kpis, lines)
        targets = self._targets(kpis, lines)
        bands = self._bands()
        recipients = self._recipients(people)
        comments = self._comments(people, kpis)
        self._percent_slips(kpis, lines, actuals, targets)
        settings = self._report_period(settings, actuals, lines, kpis)
        self._cell_errors()
        check_glyphs(self.tables, self.log)
        if not self.log.valid or settings is None:
            return None, self.log.items
        book = Book(settings=settings, people=tuple(people.values()),
                    goals=tuple(goals.values()), kpis=tuple(kpis.values()),
                    scorecards=tuple(lines), bands=tuple(bands), actuals=actuals,
                    targets=targets, recipients=recipients, comments=tuple(comments),
                    source_file=self.raw.path.name, source_sha256=self.raw.sha256,
                    source_path=str(self.raw.path))
        return book, self.log.items

    def _locate_sheets(self) -> None:
        for raw in self.raw.sheets:
            spec = SHEETS_BY_KEY.get(normalise(raw.name))
            if spec is None:
                self.log.info("unknown-sheet", raw.name, "",
                              f"sheet {raw.name!r} is not a kpireport sheet; ignored")
                continue
            if spec.name in self.tables:
                self.log.error("duplicate-sheet", raw.name, "",
                               f"sheets {self.tables[spec.name].name!r} and {raw.name!r} both "
                               f"stand for {spec.name}; keep one")
                continue
            if raw.hidden:
                self.log.warning("hidden-sheet", raw.name, "",
                                 f"sheet {raw.name!r} is hidden; it is read all the same")
            table = self._locate_columns(spec, raw)
            if table is not None:
                self.tables[spec.name] = table
            for rng in raw.merged:
                self.log.warning("merged-cells", raw.name, rng.split(":")[0],
                                 f"{raw.name}!{rng}: merged cells; only the top-left cell "
                                 "keeps a value, unmerge them")

    def _locate_columns(self, spec: Sheet, raw: RawSheet) -> Table | None:
        header = next((r for r, cells in enumerate(raw.rows)
                       if any(not is_blank(v) for v in cells)), None)
        if header is None:
            if spec.required:
                self.log.error("missing-column", raw.name, "A1",
                               f"sheet {raw.name!r} is empty; it needs the columns "
                               f"{', '.join(c.name for c in spec.columns if c.required)}")
            return None
        known = {c.name: c for c in spec.columns}
        if spec.name == "Actuals":
            known.update({c.name: c for c in LONG_ACTUALS_COLUMNS})
        columns: dict[str, int] = {}
        months: dict[Month, int] = {}
        unknown_headers: dict[str, str] = {}
        for col, value in enumerate(raw.rows[header]):
            if is_blank(value):
                continue
            cell = address(header, col)
            month = month_from_header(value) if spec.month_columns else None
            if month is None and spec.month_columns and looks_like_period(value):
                self.log.error("bad-period", raw.name, cell,
                               f"{raw.name}!{cell}: the header {str(value).strip()!r} looks like "
                               "a month but names no single month; type it as YYYY-MM, e.g. "
                               "2026-03 (or 03/2026, Mar 2026)")
                continue
            if month is not None:
                if month in months:
                    self.log.error("duplicate-column", raw.name, cell,
                                   f"{raw.name}!{cell}: month {month_label(month)} appears "
                                   f"twice (also {address(header, months[month])})")
                else:
                    months[month] = col
                continue
            key = normalise(value)
            match = next((name for name in known if name == key), None)
            if match is None:
                unknown_headers[str(value).strip()] = cell
            elif match in columns:
                self.log.error("duplicate-column", raw.name, cell,
                               f"{raw.name}!{cell}: column {match!r} appears twice (also "
                               f"{address(header, columns[match])})")
            else:
                columns[match] = col
        required = [c.name for c in spec.columns if c.required]
        if spec.name == "Actuals" and ("period" in columns or "actual" in columns):
            required += ["period", "actual"]
        for name in required:
            if name not in columns:
                near = closest(name, unknown_headers)
                hint = did_you_mean(name, unknown_headers)
                where = unknown_headers[near[0]] if len(near) == 1 else address(header, 0)
                self.log.error("missing-column", raw.name, where,
                               f"{raw.name}: the required column {name!r} is missing from "
                               f"the header row {header + 1}"
                               + (f"{hint} Rename that header to {name}" if hint else ""))
        self._unknown_columns(raw, unknown_headers, [n for n in known if n not in columns
                                                     and n not in required])
        used = sorted(set(columns.values()) | set(months.values()))
        flagged = {r for r, _ in raw.uncached} | {r for r, _ in raw.errors}
        rows = [r for r in range(header + 1, len(raw.rows))
                if _has_value(raw.rows[r], used) or r in flagged]
        return Table(spec, raw, header, columns, months, rows)

    def _unknown_columns(self, raw: RawSheet, headers: dict[str, str],
                         missing: list[str]) -> None:
        """Helper columns are info notes; one that is nearly the name of an optional column
        not in the sheet (``end date``, ``threshhold``) is a warning: its values are ignored."""
        for text, cell in headers.items():
            near = closest(text, missing)
            if len(near) == 1:
                self.log.warning("similar-column", raw.name, cell,
                                 f"{raw.name}!{cell}: column {text!r} is ignored; did you mean "
                                 f"{near[0]}? Rename the header to {near[0]} to use it")
            else:
                self.log.info("unknown-column", raw.name, cell,
                              f"{raw.name}!{cell}: column {text!r} is not a kpireport "
                              "column; ignored")

    def _cell_errors(self) -> None:
        """Excel error values and formulas without a cached value, in the cells we use."""
        for table in self.tables.values():
            used = set(table.columns.values()) | set(table.months.values())
            for (r, c), error in sorted(table.raw.errors.items()):
                if c in used and r > table.header_row:
                    cell = address(r, c)
                    self.log.error("excel-error", table.name, cell,
                                   f"{table.name}!{cell}: the cell shows the Excel error "
                                   f"{error}; fix the formula or type the value")
            for r, c in sorted(table.raw.uncached):
                if c in used and r > table.header_row:
                    cell = address(r, c)
                    self.log.error("formula-without-value", table.name, cell,
                                   f"{table.name}!{cell}: the formula has no saved result "
                                   "(the file was written by a program that does not "
                                   "calculate); open and save it in Excel or LibreOffice")

    def _near(self, what: str, text: str, names) -> list[str]:
        """:func:`closest` for a mistyped ``what`` (owner, kpi …), memoised, and only for the
        first 200 different slips: a column of 10,000 wrong ids is still checked fast."""
        key = (what, str(text).strip().casefold())
        found = self._near_cache.get(key)
        if found is None:
            found = closest(str(text), names()) if len(self._near_cache) < 200 else []
            self._near_cache[key] = found
        return found

    def _hint(self, what: str, text: str, names) -> str:
        best = self._near(what, text, names)
        return f"; did you mean {' or '.join(best)}?" if best else ""

    def _setting_cell(self, name: str) -> str:
        """The value cell of a setting's row in Settings ('' when it has none)."""
        table = self.tables["Settings"]
        for r in table.rows:
            if normalise(table.value(r, "setting") or "") == name:
                return table.cell(r, "value")
        return ""

    def _reader(self, table: Table) -> CellReader:
        return CellReader(table.name, self.log)

    def _bad_cells(self, table: Table) -> set[tuple[int, int]]:
        cached = self._bad.get(table.name)
        if cached is None:
            cached = self._bad[table.name] = set(table.raw.errors) | table.raw.uncached
        return cached

    # ---------------------------------------------------------------- Settings
    def _settings(self) -> Settings | None:
        table = self.tables["Settings"]
        read = self._reader(table)
        values: dict[str, object] = {}
        seen: dict[str, str] = {}
        for r in table.rows:
            name = read.text(table.value(r, "setting"), table.cell(r, "setting"),
                             single_line=True)
            if name is None:
                continue
            key = normalise(name)
            cell = table.cell(r, "value")
            spec = SETTINGS_BY_NAME.get(key)
            if spec is None:
                self.log.warning("unknown-setting", table.name, table.cell(r, "setting"),
                                 f"{table.name}!{table.cell(r, 'setting')}: {name!r} is not "
                                 "a kpireport setting; ignored"
                                 f"{did_you_mean(name, SETTINGS_BY_NAME)}")
                continue
            if key in seen:
                self.log.error("duplicate-setting", table.name, table.cell(r, "setting"),
                               f"{table.name}!{table.cell(r, 'setting')}: {key} is set twice "
                               f"(also {seen[key]})")
                continue
            seen[key] = table.cell(r, "setting")
            raw = table.value(r, "value")
            if is_blank(raw):
                continue
            value = self._setting_value(read, spec.kind, spec.choices, raw, cell, key)
            if value is not None:
                values[key] = value
        if "organization" not in values:
            self.log.error("missing-setting", table.name, "",
                           "Settings: organization is required (add a row: organization | "
                           "your organisation's name)")
            return None
        cap = values.get("score_cap", 1.5)
        green = values.get("rag_green", 1.0)
        amber = values.get("rag_amber", 0.9)
        if cap < 1:  # type: ignore[operator]
            self.log.error("bad-setting", table.name, seen.get("score_cap", ""),
                           "Settings: score_cap must be at least 100%")
        if amber > green:  # type: ignore[operator]
            self.log.error("bad-setting", table.name, seen.get("rag_amber", ""),
                           "Settings: rag_amber must not be above rag_green")
        if values.get("pdf_protection", "none") == "none":
            self.log.info("pdf-protection-off", table.name, seen.get("pdf_protection", ""),
                          "Settings: pdf_protection is none, so e-mailed PDFs are not "
                          "encrypted (set employee or all to protect them)")
        if "require_approval" in values:
            values["require_approval"] = values["require_approval"] == "yes"
        return Settings(**values)  # type: ignore[arg-type]

    def _setting_value(self, read: CellReader, kind: str, choices: tuple[str, ...],
                       raw: object, cell: str, key: str) -> object:
        if kind == "text":
            return read.text(raw, cell, single_line=True)
        if kind == "choice":
            return read.choice(raw, cell, choices)
        if kind == "percent":
            limit = 5.0 if key == "score_cap" else 2.0
            return read.fraction(raw, cell, limit=limit, what=key)
        if kind == "int":
            return read.integer(raw, cell, 1, 12)
        if kind == "month":
            return read.month(raw, cell)
        text = read.text(raw, cell, single_line=True)
        if text is None:
            return None
        if kind == "currency":
            return self._currency(text, cell)
        if kind == "locale":
            return self._locale(text, cell)
        return text

    def _currency(self, text: str, cell: str) -> str | None:
        from babel.numbers import list_currencies

        code = text.upper()
        if code not in list_currencies():
            self.log.error("bad-currency", "Settings", cell,
                           f"Settings!{cell}: {text!r} is not an ISO 4217 currency code "
                           "(e.g. USD, EUR, VND)")
            return None
        return code

    def _locale(self, text: str, cell: str) -> str | None:
        from babel import Locale, UnknownLocaleError

        try:
            return str(Locale.parse(text.replace("-", "_")))
        except (UnknownLocaleError, ValueError, TypeError):
            self.log.error("bad-locale", "Settings", cell,
                           f"Settings!{cell}: {text!r} is not a known locale (e.g. en_US, "
                           "vi_VN)")
            return None

    # ---------------------------------------------------------------- People
    def _people(self) -> dict[str, Person]:
        table = self.tables["People"]
        read = self._reader(table)
        people: dict[str, Person] = {}
        manager_cells: dict[str, tuple[str, str]] = {}
        first_cell: dict[str, str] = {}
        for r in table.rows:
            cell = table.cell(r, "employee_id")
            emp = read.text(table.value(r, "employee_id"), cell, single_line=True)
            name = read.text(table.value(r, "name"), table.cell(r, "name"), single_line=True)
            dept = read.text(table.value(r, "department"), table.cell(r, "department"),
                             single_line=True)
            for column in ("employee_id", "name", "department"):
                if is_blank(table.value(r, column)) and \
                        (r, table.columns[column]) not in self._bad_cells(table):
                    self._required(table, r, column)
            if emp is None:
                continue
            if emp.casefold() in first_cell:
                self.log.error("duplicate-id", table.name, cell,
                               f"{table.name}!{cell}: employee_id {emp!r} is used twice (also "
                               f"{first_cell[emp.casefold()]}; ids ignore case)")
                continue
            first_cell[emp.casefold()] = cell
            start = read.date(table.value(r, "start_date"), table.cell(r, "start_date"))
            end = read.date(table.value(r, "end_date"), table.cell(r, "end_date"))
            if start and end and end < start:
                self.log.error("bad-date-range", table.name, table.cell(r, "end_date"),
                               f"{table.name}!{table.cell(r, 'end_date')}: end_date {end} is "
                               f"before start_date {start}")
            salary = read.number(table.value(r, "base_salary"), table.cell(r, "base_salary"),
                                 percent_ok=False)
            if salary is not None and salary < 0:
                self.log.error("negative-value", table.name, table.cell(r, "base_salary"),
                               f"{table.name}!{table.cell(r, 'base_salary')}: base_salary "
                               "cannot be negative")
                salary = None
            manager = read.text(table.value(r, "manager_id"), table.cell(r, "manager_id"),
                                single_line=True)
            if manager is not None:
                manager_cells[emp.casefold()] = (manager, table.cell(r, "manager_id"))
            people[emp.casefold()] = Person(
                employee_id=emp, name=name or "", department=dept or "",
                email=read.email(table.value(r, "email"), table.cell(r, "email")),
                title=read.text(table.value(r, "title"), table.cell(r, "title"),
                                single_line=True),
                manager_id=None, base_salary=salary,
                target_bonus_pct=read.fraction(table.value(r, "target_bonus_pct"),
                                               table.cell(r, "target_bonus_pct"),
                                               what="target_bonus_pct"),
                start_date=start, end_date=end, pdf_password=self._pdf_password(table, r))
        self._resolve_managers(table, people, manager_cells)
        return {p.employee_id: p for p in people.values()}

    def _pdf_password(self, table: Table, r: int) -> str | None:
        """The People pdf_password of row r; problems name the cell, never the value."""
        from kpireport.protect import password_problem

        raw = table.value(r, "pdf_password")
        if is_blank(raw) or (r, table.columns.get("pdf_password")) in self._bad_cells(table):
            return None
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            problem = "must be text"
        else:
            text = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
            problem = password_problem(text)
            if problem is None:
                return text
        cell = table.cell(r, "pdf_password")
        self.log.error("bad-pdf-password", table.name, cell,
                       f"{table.name}!{cell}: the pdf_password {problem} (the value is not "
                       "shown)")
        return None

    def _resolve_managers(self, table: Table, people: dict[str, Person],
                          manager_cells: dict[str, tuple[str, str]]) -> None:
        self._resolve_parents(table, people, manager_cells, "manager_id", "manager",
                              "manager-cycle", "managers", lambda p: p.employee_id)

    def _resolve_parents(self, table: Table, items: dict, refs: dict[str, tuple[str, str]],
                         field: str, what: str, cycle_code: str, plural: str, ident) -> None:
        """Point each item at its parent (manager, parent goal): unknown ids and loops are
        errors; ``items`` is keyed by casefolded id and updated in place."""
        from dataclasses import replace

        links: dict[str, str] = {}
        for key, (parent, cell) in refs.items():
            target = items.get(parent.casefold())
            if target is None:
                hint = self._hint(what, parent, lambda: [ident(i) for i in items.values()])
                self.log.error("unknown-reference", table.name, cell,
                               f"{table.name}!{cell}: {what} {parent} is not in the "
                               f"{table.name} sheet{hint}")
                continue
            if ident(target).casefold() == key:
                self.log.error(cycle_code, table.name, cell,
                               f"{table.name}!{cell}: {parent} is its own {what}")
                continue
            links[key] = ident(target).casefold()
            items[key] = replace(items[key], **{field: ident(target)})
        for key, cycle in _cycles(links):
            cell = refs[key][1]
            names = " → ".join(ident(items[k]) for k in cycle)
            self.log.error(cycle_code, table.name, cell,
                           f"{table.name}!{cell}: {plural} form a loop ({names})")

    def _required(self, table: Table, row: int, column: str) -> None:
        cell = table.cell(row, column)
        self.log.error("missing-value", table.name, cell,
                       f"{table.name}!{cell}: {column} is required")

    # ---------------------------------------------------------------- Goals
    def _goals(self) -> dict[str, Goal]:
        table = self.tables.get("Goals")
        if table is None:
            return {}
        read = self._reader(table)
        goals: dict[str, Goal] = {}
        parents: dict[str, tuple[str, str]] = {}
        for r in table.rows:
            cell = table.cell(r, "goal_id")
            gid = read.text(table.value(r, "goal_id"), cell, single_line=True)
            text = read.text(table.value(r, "goal"), table.cell(r, "goal"))
            level = read.choice(table.value(r, "level"), table.cell(r, "level"),
                                ("strategic", "tactical", "operational"))
            for column in ("goal_id", "goal", "level"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if gid is None:
                continue
            if gid.casefold() in goals:
                self.log.error("duplicate-id", table.name, cell,
                               f"{table.name}!{cell}: goal_id {gid!r} is used twice")
                continue
            parent = read.text(table.value(r, "parent_goal_id"),
                               table.cell(r, "parent_goal_id"), single_line=True)
            if parent:
                parents[gid.casefold()] = (parent, table.cell(r, "parent_goal_id"))
            goals[gid.casefold()] = Goal(gid, text or "", level or "operational", None,
                                         read.text(table.value(r, "perspective"),
                                                   table.cell(r, "perspective")))
        self._resolve_parents(table, goals, parents, "parent_goal_id", "parent goal",
                              "goal-cycle", "goals", lambda g: g.goal_id)
        return {g.goal_id: g for g in goals.values()}

    # ---------------------------------------------------------------- KPIs
    def _kpis(self, goals: dict[str, Goal]) -> dict[str, Kpi]:
        table = self.tables["KPIs"]
        read = self._reader(table)
        kpis: dict[str, Kpi] = {}
        formulas: dict[str, tuple[formula_mod.Node, str]] = {}
        goal_keys = {g.casefold(): g for g in goals}
        for r in table.rows:
            cell = table.cell(r, "kpi_id")
            kid = read.text(table.value(r, "kpi_id"), cell, single_line=True)
            for column in ("kpi_id", "kpi", "unit", "direction"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if kid is None:
                continue
            if not KPI_ID.match(kid):
                self.log.error("bad-kpi-id", table.name, cell,
                               f"{table.name}!{cell}: kpi_id {kid!r} must start with a letter "
                               "and use only letters, digits and _ (at most 32)")
                continue
            if kid.casefold() in kpis:
                self.log.error("duplicate-id", table.name, cell,
                               f"{table.name}!{cell}: kpi_id {kid!r} is used twice (ids ignore "
                               "case)")
                continue
            agg = read.choice(table.value(r, "aggregation"), table.cell(r, "aggregation"),
                              ("sum", "average", "last", "min", "max"))
            text = read.text(table.value(r, "formula"), table.cell(r, "formula"),
                             single_line=True)
            if text is not None:
                try:
                    formulas[kid.casefold()] = (formula_mod.parse(text), table.cell(r, "formula"))
                except formula_mod.FormulaError as exc:
                    self.log.error("bad-formula", table.name, table.cell(r, "formula"),
                                   f"{table.name}!{table.cell(r, 'formula')}: {exc}")
            elif agg is None and is_blank(table.value(r, "aggregation")):
                self.log.error("missing-value", table.name, table.cell(r, "aggregation"),
                               f"{table.name}!{table.cell(r, 'aggregation')}: aggregation is "
                               "required unless the KPI has a formula")
            goal = read.text(table.value(r, "goal_id"), table.cell(r, "goal_id"),
                             single_line=True)
            if goal is not None:
                if goal.casefold() not in goal_keys:
                    self.log.error("unknown-reference", table.name, table.cell(r, "goal_id"),
                                   f"{table.name}!{table.cell(r, 'goal_id')}: goal {goal} is not "
                                   "in the Goals sheet"
                                   f"{self._hint('goal', goal, lambda: list(goals))}")
                    goal = None
                else:
                    goal = goal_keys[goal.casefold()]
            kpis[kid.casefold()] = Kpi(
                kpi_id=kid, kpi=read.text(table.value(r, "kpi"), table.cell(r, "kpi"),
                                          single_line=True) or kid,
                unit=read.choice(table.value(r, "unit"), table.cell(r, "unit"),
                                 ("number", "currency", "percent")) or "number",
                direction=read.choice(table.value(r, "direction"), table.cell(r, "direction"),
                                      ("higher", "lower", "range")) or "higher",
                aggregation=agg, formula=text, goal_id=goal,
                decimals=read.integer(table.value(r, "decimals"), table.cell(r, "decimals"),
                                      0, 6),
                description=read.text(table.value(r, "description"),
                                      table.cell(r, "description")))
        self._resolve_formulas(table, kpis, formulas)
        return {k.kpi_id: k for k in kpis.values()}

    def _resolve_formulas(self, table: Table, kpis: dict[str, Kpi],
                          formulas: dict[str, tuple[formula_mod.Node, str]]) -> None:
        from dataclasses import replace

        links: dict[str, set[str]] = {}
        for key, (node, cell) in formulas.items():
            names = {}
            for ref in sorted(node.refs()):
                target = kpis.get(ref.casefold())
                if target is None:
                    self.log.error("unknown-reference", table.name, cell,
                                   f"{table.name}!{cell}: the formula uses {ref}, which is not "
                                   "a kpi_id in the KPIs sheet"
                                   + self._hint("kpi", ref,
                                                lambda: [k.kpi_id for k in kpis.values()]))
                    continue
                names[ref] = target.kpi_id
            links[key] = {n.casefold() for n in names.values()}
            kpis[key] = replace(kpis[key], formula=_formula_text(formula_mod.rename(node, names)),
                                components=tuple(sorted(set(names.values()))))
        for key, refs in links.items():
            if self._formula_loops(key, links):
                self.log.error("formula-cycle", table.name, formulas[key][1],
                               f"{table.name}!{formulas[key][1]}: the formula of "
                               f"{kpis[key].kpi_id} refers to itself, directly or through "
                               "another formula")
                continue
            for ref in refs:
                if ref in formulas:
                    self.log.error("nested-formula", table.name, formulas[key][1],
                                   f"{table.name}!{formulas[key][1]}: {kpis[ref].kpi_id} is "
                                   "itself a formula KPI; use the KPIs it is made of")
                    break

    @staticmethod
    def _formula_loops(start: str, links: dict[str, set[str]]) -> bool:
        stack, seen = list(links.get(start, ())), set()
        while stack:
            node = stack.pop()
            if node == start:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(links.get(node, ()))
        return False

    # ---------------------------------------------------------------- Scorecards
    def _owner(self, table: Table, value: object, cell: str, people: dict[str, Person],
               read: CellReader) -> str | None:
        text = read.text(value, cell, single_line=True)
        if text is None:
            return None
        key = text.casefold()
        person = self._people_keys(people).get(key)
        department = self._department_keys(people).get(key)
        if key == COMPANY.casefold():
            return COMPANY
        if person is not None and department is not None:
            self.log.error("ambiguous-owner", table.name, cell,
                           f"{table.name}!{cell}: {text!r} is both an employee_id and a "
                           "department name; rename one of them")
            return None
        if person is None and department is None:
            def names() -> list[str]:
                return [p.employee_id for p in people.values()] + \
                    sorted(self._department_keys(people).values()) + [COMPANY]

            self.typo_owners[table.name].update(self._near("owner", text, names))
            self.log.error("unknown-owner", table.name, cell,
                           f"{table.name}!{cell}: owner {text!r} is not an employee_id, a "
                           f"department in People, or COMPANY{self._hint('owner', text, names)}")
            return None
        return person.employee_id if person else department

    def _people_keys(self, people: dict[str, Person]) -> dict[str, Person]:
        if not hasattr(self, "_pk"):
            self._pk = {p.employee_id.casefold(): p for p in people.values()}
        return self._pk

    def _department_keys(self, people: dict[str, Person]) -> dict[str, str]:
        if not hasattr(self, "_dk"):
            self._dk = {}
            for p in people.values():
                self._dk.setdefault(p.department.casefold(), p.department)
        return self._dk

    def _kpi_ref(self, table: Table, value: object, cell: str, kpis: dict[str, Kpi],
                 read: CellReader) -> Kpi | None:
        text = read.text(value, cell, single_line=True)
        if text is None:
            return None
        kpi = self._kpi_keys(kpis).get(text.casefold())
        if kpi is None:
            named = [k.kpi_id for k in kpis.values() if k.kpi.casefold() == text.casefold()]
            hint = f"; did you mean {named[0]} (the id of {text!r})?" if named else \
                self._hint("kpi", text, lambda: [k.kpi_id for k in kpis.values()])
            self.log.error("unknown-reference", table.name, cell,
                           f"{table.name}!{cell}: KPI {text} is not in the KPIs sheet{hint}")
        return kpi

    def _kpi_keys(self, kpis: dict[str, Kpi]) -> dict[str, Kpi]:
        if not hasattr(self, "_kk"):
            self._kk = {k.kpi_id.casefold(): k for k in kpis.values()}
        return self._kk

    def _scorecards(self, people: dict[str, Person], kpis: dict[str, Kpi]
                    ) -> list[ScorecardLine]:
        table = self.tables["Scorecards"]
        read = self._reader(table)
        lines: list[ScorecardLine] = []
        seen: dict[tuple[str, str], str] = {}
        weights: dict[str, list[tuple[float, str]]] = defaultdict(list)
        bad_weights: set[str] = set()
        owners = self._owner_lookup(people)
        kpi_keys = self._kpi_keys(kpis)
        bad_cells = self._bad_cells(table)
        number_columns = [(c, table.columns.get(c)) for c in
                          ("target", "threshold", "stretch", "target_max", "baseline")]
        required = [(c, table.columns[c]) for c in ("owner", "kpi_id", "weight", "target")]
        c_owner, c_kpi, c_weight = (table.columns[c] for c in ("owner", "kpi_id", "weight"))
        raw_rows = table.raw.rows
        for r in table.rows:
            row = raw_rows[r]
            width = len(row)

            def get(col: int | None, row=row, width=width) -> object:
                return row[col] if col is not None and col < width else None

            for column, col in required:
                value = get(col)
                if (value is None or value == "" or is_blank(value)) and \
                        (r, col) not in bad_cells:
                    self._required(table, r, column)
            owner_raw, kpi_raw, weight_raw = get(c_owner), get(c_kpi), get(c_weight)
            # Fast lookups for well-formed values; the slow path reports what is wrong.
            owner = owners.get(owner_raw.casefold()) if type(owner_raw) is str else None
            if owner is None:
                owner = self._owner(table, owner_raw, table.cell(r, "owner"), people, read)
            kpi = kpi_keys.get(kpi_raw.casefold()) if type(kpi_raw) is str else None
            if kpi is None:
                kpi = self._kpi_ref(table, kpi_raw, table.cell(r, "kpi_id"), kpis, read)
            if type(weight_raw) is float and 0 <= weight_raw <= 1:
                weight = weight_raw
            else:
                weight = read.fraction(weight_raw, table.cell(r, "weight"), what="weight")
            numbers = {}
            for c, col in number_columns:
                value = get(col)
                if value is None or value == "":
                    numbers[c] = None
                elif type(value) is float and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE and (
                        value >= MIN_MAGNITUDE or value <= -MIN_MAGNITUDE or value == 0):
                    numbers[c] = value  # in range (cells.MAX_MAGNITUDE); else read.number says
                else:
                    numbers[c] = read.number(value, table.cell(r, c))
            pair = None
            if owner is not None and not is_blank(kpi_raw):
                pair = (owner.casefold(), str(kpi_raw).strip().casefold())
            # One slip, one error: a row whose owner or kpi_id was reported as unknown does not
            # also make its owner's weights, or its Actuals and Targets rows, errors.
            if owner is not None and kpi is None and not is_blank(kpi_raw):
                self.reported_lines.add((owner.casefold(), ""))
            if owner is None and not is_blank(owner_raw):
                for near in self._near("owner", str(owner_raw), lambda: list(owners.values())):
                    self.reported_weights.add(near)
                    self.reported_lines.add((near.casefold(), ""))
                if kpi is not None:
                    self.reported_lines.add(("", kpi.kpi_id.casefold()))
            if owner is not None and weight is None and not is_blank(weight_raw):
                bad_weights.add(owner)
            if owner is not None and weight is not None and weight > 0 and \
                    pair not in self.line_keys:
                weights[owner].append((weight, r))
            if pair is not None:
                # Rows of a rejected line are not reported again as unknown in Actuals.
                self.line_keys.add(pair)
            if owner is None or kpi is None or weight is None or numbers["target"] is None:
                continue
            key = (owner, kpi.kpi_id)
            if key in seen:
                self.log.error("duplicate-line", table.name, table.cell(r, "kpi_id"),
                               f"{table.name}!{table.cell(r, 'kpi_id')}: {owner} already has "
                               f"{kpi.kpi_id} on row {seen[key]}")
                continue
            seen[key] = r + 1
            line = ScorecardLine(owner, kpi.kpi_id, weight, row=r + 1, **numbers)
            if self._line_order_ok(table, r, line, kpi):
                lines.append(line)
        for owner, items in weights.items():
            if owner in bad_weights or owner in self.reported_weights:
                continue  # a weight already reported as wrong; its sum would only repeat it
            total = sum(w for w, _ in items)
            if abs(total - 1) > WEIGHT_TOLERANCE:
                cells = [table.cell(r, "weight") for _, r in items]
                self.log.error("weights-not-100", table.name, cells[0],
                               f"{table.name}!{cells[0]}: the weights of {owner} add up to "
                               f"{total * 100:.4g}%, not 100% (cells {', '.join(cells)})")
        return lines

    def _line_order_ok(self, table: Table, r: int, line: ScorecardLine, kpi: Kpi) -> bool:
        def bad(code: str, column: str, text: str) -> bool:
            cell = table.cell(r, column)
            self.log.error(code, table.name, cell, f"{table.name}!{cell}: {text}")
            return False

        t, lo, hi = line.target, line.threshold, line.stretch
        if kpi.unit == "percent" and t > 0 and not self._percent_line_ok(table, r, line):
            return False
        if kpi.direction == "range":
            if line.target_max is None:
                hint = "" if "target_max" in table.columns else " (add a target_max column)"
                return bad("missing-target-max", "target_max",
                           f"{kpi.kpi_id} is a range KPI; target_max is required{hint}")
            if line.target_max < t:
                return bad("bad-target-max", "target_max",
                           f"target_max {line.target_max:g} is below target {t:g}")
            return True
        if t <= 0:
            return bad("target-not-positive", "target",
                       f"target must be above 0 for a {kpi.direction}-is-better KPI "
                       "(attainment divides by it)")
        if kpi.direction == "higher":
            if lo is not None and not lo < t:
                return bad("bad-threshold", "threshold",
                           f"threshold {lo:g} must be below target {t:g} (higher is better)")
            if hi is not None and not hi > t:
                return bad("bad-stretch", "stretch",
                           f"stretch {hi:g} must be above target {t:g} (higher is better)")
        else:
            if lo is not None and not lo > t:
                return bad("bad-threshold", "threshold",
                           f"threshold {lo:g} must be above target {t:g} (lower is better)")
            if hi is not None and not hi < t:
                return bad("bad-stretch", "stretch",
                           f"stretch {hi:g} must be below target {t:g} (lower is better)")
            if hi is not None and hi < 0:
                return bad("bad-stretch", "stretch", "stretch cannot be negative")
        return True

    # ---------------------------------------------------------------- Actuals / Targets
    def _month_rows(self, name: str, people: dict[str, Person] | None,
                    kpis: dict[str, Kpi], owners: dict[str, str]
                    ) -> dict[tuple[str, str], dict[Month, float]]:
        """Read Targets or Actuals (wide or long) into {(owner, kpi): {month: value}}."""
        table = self.tables[name]
        read = self._reader(table)
        values: dict[tuple[str, str], dict[Month, float]] = {}
        cells: dict[tuple[str, str], str] = {}
        long = "period" in table.columns
        if not long and not table.months and table.rows:
            self.log.error("missing-column", table.name, address(table.header_row, 0),
                           f"{table.name}: no month columns; add headers such as 2026-01 "
                           "(or the long layout: owner, kpi_id, period, actual)")
        owner_col, kpi_col = table.columns.get("owner"), table.columns.get("kpi_id")
        kpi_keys = self._kpi_keys(kpis)
        raw_rows = table.raw.rows
        bad = self._bad_cells(table)
        month_cols = sorted(table.months.items(), key=lambda kv: kv[1])
        for r in table.rows:
            row = raw_rows[r]
            owner_raw = row[owner_col] if owner_col is not None and owner_col < len(row) else None
            kpi_raw = row[kpi_col] if kpi_col is not None and kpi_col < len(row) else None
            if is_blank(owner_raw) or is_blank(kpi_raw):
                for column, raw in (("owner", owner_raw), ("kpi_id", kpi_raw)):
                    if is_blank(raw):
                        self._required(table, r, column)
                continue
            owner = owners.get(str(owner_raw).strip().casefold()) if isinstance(owner_raw, str) \
                else None
            if owner is None:
                owner = self._owner(table, owner_raw, table.cell(r, "owner"), people or {}, read)
                if owner is None:
                    continue
            kpi = kpi_keys.get(str(kpi_raw).strip().casefold()) if isinstance(kpi_raw, str) \
                else None
            if kpi is None:
                kpi = self._kpi_ref(table, kpi_raw, table.cell(r, "kpi_id"), kpis, read)
                if kpi is None:
                    # its line (or formula) is not told again that it lacks these actuals
                    self.typo_kpis[name].update(
                        (owner, k) for k in self._near("kpi", str(kpi_raw),
                                                       lambda: [k.kpi_id for k in kpis.values()]))
                    continue
            key = (owner, kpi.kpi_id)
            if long:
                month = self._long_value(table, read, r, key, values, cells)
                if month is not None and kpi.unit == "percent":
                    self.percent_cells[(name, key, month)] = r
                continue
            if key in cells:
                cell = table.cell(r, "owner")
                self.log.error("duplicate-line", table.name, cell,
                               f"{table.name}!{cell}: {owner} / {kpi.kpi_id} already has a row "
                               f"({cells[key]}); merge the two rows")
                continue
            cells[key] = table.cell(r, "owner")
            if kpi.unit == "percent":
                for month in table.months:
                    self.percent_cells[(name, key, month)] = r
            months = values.setdefault(key, {})
            width = len(row)
            for month, col in month_cols:  # the hot loop: ~120,000 cells for 1,000 people
                if col >= width:
                    break
                raw = row[col]
                if type(raw) is float:
                    if -MAX_MAGNITUDE <= raw <= MAX_MAGNITUDE and (
                            raw >= MIN_MAGNITUDE or raw <= -MIN_MAGNITUDE or raw == 0):
                        months[month] = raw  # finite and in range (NaN fails it)
                        continue
                elif raw == "" or raw is None:
                    continue
                if (r, col) in bad:
                    continue
                number = read.number(raw, address(r, col))
                if number is not None:
                    months[month] = number
        return values

    def _long_value(self, table: Table, read: CellReader, r: int, key: tuple[str, str],
                    values: dict, cells: dict) -> Month | None:
        month = read.month(table.value(r, "period"), table.cell(r, "period"))
        if month is None:
            if is_blank(table.value(r, "period")):
                self._required(table, r, "period")
            return None
        number = read.number(table.value(r, "actual"), table.cell(r, "actual"))
        if number is None:
            return None
        slot = (key, month)
        if slot in cells:
            cell = table.cell(r, "period")
            self.log.error("duplicate-actual", table.name, cell,
                           f"{table.name}!{cell}: {key[0]} / {key[1]} has a second value for "
                           f"{month_label(month)} (first on {cells[slot]})")
            return None
        cells[slot] = table.cell(r, "period")
        values.setdefault(key, {})[month] = number
        return month

    # ---------------------------------------------------------------- percent slips
    def _percent_slips(self, kpis: dict[str, Kpi], lines: list[ScorecardLine],
                       actuals: dict[tuple[str, str], dict[Month, float]],
                       targets: dict[tuple[str, str], dict[Month, float]]) -> None:
        """A percent KPI's value typed as a whole number where its line is in fractions.

        The rule compares each cell with the rest of its line. An actual or a monthly target
        above 1 and at least 10 times the line's target (actual 93 against a target of 90%)
        is the slip (threshold, stretch and target_max: ``_percent_line_ok``). A target above
        1 and at least 10 times the median of the line's actuals (target 90, actuals like
        93%) is the slip.
        A real percent above 100% keeps its scale (ROI 320% against 300%) and is valid;
        so is any value typed as text with a % sign.
        """
        sc = self.tables["Scorecards"]
        by_id = {k.kpi_id: k for k in kpis.values()}
        for line in lines:
            if by_id[line.kpi_id].unit != "percent" or line.target <= 0:
                continue
            key, r = (line.owner, line.kpi_id), line.row - 1
            typed = actuals.get(key, {})
            reference = line.target
            seen_like = sorted(actuals.get(key, {}).values())
            if _whole(line.target, sc.value(r, "target")) and seen_like and \
                    seen_like[len(seen_like) // 2] * 10 <= line.target:
                like = seen_like[len(seen_like) // 2]
                self._slip(sc.name, sc.cell(r, "target"), line.target,
                           f"target {_plain(line.target)} of {line.kpi_id}, a percent KPI "
                           f"whose actuals are like {_plain(like * 100)}%,")
                reference = line.target / 100
                typed = {}  # the actuals have the right scale
            for sheet, values, months in (("Actuals", actuals, typed),
                                          ("Targets", targets, targets.get(key, {}))):
                for month, value in sorted(months.items()):
                    if value > 1 and value >= 10 * reference and \
                            not self._typed_percent(sheet, key, month):
                        cell = self._percent_cell(sheet, key, month)
                        self._slip(sheet, cell, value,
                                   f"{_plain(value)} for {month_label(month)} of "
                                   f"{line.kpi_id}, a percent KPI whose target is "
                                   f"{_plain(reference * 100)}%,")
                        del values[key][month]

    def _percent_line_ok(self, table: Table, r: int, line: ScorecardLine) -> bool:
        """The Scorecards cells of a percent line agree in scale (see _percent_slips)."""
        bounds = {c: getattr(line, c) for c in ("threshold", "stretch", "target_max")
                  if getattr(line, c) is not None}
        for column, value in bounds.items():
            if _whole(value, table.value(r, column)) and value >= 10 * line.target:
                self._slip(table.name, table.cell(r, column), value,
                           f"{column} {_plain(value)} of {line.kpi_id}, a percent KPI whose "
                           f"target is {_plain(line.target * 100)}%,")
                return False
        positive = [v for v in bounds.values() if v > 0]
        if positive and _whole(line.target, table.value(r, "target")) and \
                max(positive) * 10 <= line.target:
            self._slip(table.name, table.cell(r, "target"), line.target,
                       f"target {_plain(line.target)} of {line.kpi_id}, a percent KPI whose "
                       f"{' and '.join(bounds)} {'are' if len(bounds) > 1 else 'is'} like "
                       f"{_plain(max(positive) * 100)}%,")
            return False
        return True

    def _slip(self, sheet: str, cell: str, value: float, what: str) -> None:
        self.log.error("percent-as-whole-number", sheet, cell,
                       f"{sheet}!{cell}: {what} looks like a whole percent; type "
                       f"{_plain(value)}% (or {_plain(value / 100)})")

    def _percent_raw(self, sheet: str, key: tuple[str, str], month: Month
                     ) -> tuple[int, int] | None:
        r = self.percent_cells.get((sheet, key, month))
        table = self.tables.get(sheet)
        if r is None or table is None:
            return None
        col = table.columns["actual"] if "period" in table.columns else table.months.get(month)
        return None if col is None else (r, col)

    def _percent_cell(self, sheet: str, key: tuple[str, str], month: Month) -> str:
        found = self._percent_raw(sheet, key, month)
        return address(*found) if found else ""

    def _typed_percent(self, sheet: str, key: tuple[str, str], month: Month) -> bool:
        found = self._percent_raw(sheet, key, month)
        if found is None:
            return False
        row = self.tables[sheet].raw.rows[found[0]]
        raw = row[found[1]] if found[1] < len(row) else None
        return isinstance(raw, str) and raw.strip().endswith("%")

    def _owner_lookup(self, people: dict[str, Person]) -> dict[str, str]:
        lookup = {COMPANY.casefold(): COMPANY}
        depts = self._department_keys(people)
        persons = self._people_keys(people)
        for key, dept in depts.items():
            if key not in persons:
                lookup[key] = dept
        for key, person in persons.items():
            if key not in depts:
                lookup[key] = person.employee_id
        return lookup

    def _actuals(self, people: dict[str, Person], kpis: dict[str, Kpi],
                 lines: list[ScorecardLine]) -> dict[tuple[str, str], dict[Month, float]]:
        values = self._month_rows("Actuals", people, kpis, self._owner_lookup(people))
        table = self.tables["Actuals"]
        by_id = {k.kpi_id: k for k in kpis.values()}
        allowed = _allowed_actuals(people, by_id, lines)
        row_of = _Lazy(lambda: self._row_cells(table))
        for key in list(values):
            owner, kid = key
            if by_id[kid].formula:
                cell = row_of(key)
                parts = ", ".join(by_id[kid].components)
                self.log.error("formula-has-actuals", table.name, cell,
                               f"{table.name}!{cell}: {kid} is a formula KPI, computed from "
                               f"{parts}; type these figures in rows for {parts} instead (or, to "
                               f"type {kid} itself, clear its formula in KPIs and give it an "
                               "aggregation)")
                del values[key]
            elif key not in allowed and not self._line_reported(owner, kid):
                cell = row_of(key)
                self.log.error("unknown-scorecard-line", table.name, cell,
                               f"{table.name}!{cell}: {owner} has no scorecard line that uses "
                               f"{kid}; add that line to Scorecards, or correct the owner or "
                               "kpi_id of this row")
                del values[key]
        self._check_components(people, by_id, lines, values)
        return values

    def _typo_in_actuals(self, owner: str, kpi_id: str) -> bool:
        """An Actuals row probably meant for this line was reported as mistyped."""
        return owner in self.typo_owners["Actuals"] or \
            (owner, kpi_id) in self.typo_kpis["Actuals"]

    def _line_reported(self, owner: str, kpi_id: str) -> bool:
        """The Scorecards row of this owner and KPI exists but was rejected (and reported)."""
        o, k = owner.casefold(), kpi_id.casefold()
        return (o, k) in self.line_keys or (o, "") in self.reported_lines \
            or ("", k) in self.reported_lines

    def _row_cells(self, table: Table) -> dict[tuple[str, str], str]:
        """First row of each (owner, kpi) pair, for messages (resolved case-insensitively)."""
        found: dict[tuple[str, str], str] = {}
        for r in table.rows:
            owner, kid = table.value(r, "owner"), table.value(r, "kpi_id")
            if is_blank(owner) or is_blank(kid):
                continue
            key = (str(owner).strip().casefold(), str(kid).strip().casefold())
            found.setdefault(key, table.cell(r, "owner"))
        return _Casefolded(found)  # type: ignore[return-value]

    def _check_components(self, people: dict[str, Person], kpis: dict[str, Kpi],
                          lines: list[ScorecardLine],
                          values: dict[tuple[str, str], dict[Month, float]]) -> None:
        table = self.tables["Scorecards"]
        persons = {p.employee_id for p in people.values()}
        members: dict[str, set[str]] = defaultdict(set)
        for p in people.values():
            members[p.department].add(p.employee_id)
            members[COMPANY].add(p.employee_id)
        for line in lines:
            kpi = kpis[line.kpi_id]
            if not kpi.formula:
                if line.owner in persons and (line.owner, kpi.kpi_id) not in values \
                        and not self._typo_in_actuals(line.owner, kpi.kpi_id):
                    cell = f"B{line.row}"
                    self.log.warning("no-actuals", table.name, cell,
                                     f"{table.name}!{cell}: {line.owner} / {kpi.kpi_id} has no "
                                     "actuals at all")
                continue
            for comp in kpi.components:
                if (line.owner, comp) in values:
                    continue
                if line.owner not in persons and any(
                        (m, comp) in values for m in members.get(line.owner, ())):
                    continue  # rolls up from the people
                if self._typo_in_actuals(line.owner, comp):
                    continue  # its Actuals row has a mistyped owner or kpi_id, reported
                cell = f"B{line.row}"
                self.log.error("missing-component-actuals", table.name, cell,
                               f"{table.name}!{cell}: {kpi.kpi_id} = {kpi.formula} needs actuals "
                               f"of {comp} for {line.owner}; add an Actuals row")

    def _targets(self, kpis: dict[str, Kpi], lines: list[ScorecardLine]
                 ) -> dict[tuple[str, str], dict[Month, float]]:
        if "Targets" not in self.tables:
            return {}
        table = self.tables["Targets"]
        people = {}
        values = self._month_rows("Targets", people, kpis, self._owner_lookup({}))
        known = {(line.owner, line.kpi_id): line for line in lines}
        by_id = {k.kpi_id: k for k in kpis.values()}
        row_of = _Lazy(lambda: self._row_cells(table))
        for key, months in list(values.items()):
            if key not in known and self._line_reported(*key):
                del values[key]  # its Scorecards row is reported already
                continue
            if key not in known:
                cell = row_of(key)
                self.log.error("unknown-scorecard-line", table.name, cell,
                               f"{table.name}!{cell}: {key[0]} / {key[1]} is not a scorecard "
                               "line; targets are phased only for scorecard lines")
                del values[key]
                continue
            if by_id[key[1]].direction != "range" and any(v <= 0 for v in months.values()):
                cell = row_of(key)
                self.log.error("target-not-positive", table.name, cell,
                               f"{table.name}!{cell}: monthly targets of {key[0]} / {key[1]} "
                               "must be above 0")
        return values

    # ---------------------------------------------------------------- Bands
    def _bands(self) -> list[Band]:
        table = self.tables["Bands"]
        read = self._reader(table)
        bands: list[Band] = []
        previous: float | None = None
        names: set[str] = set()
        for r in table.rows:
            name = read.text(table.value(r, "band"), table.cell(r, "band"), single_line=True)
            low = read.fraction(table.value(r, "min_score"), table.cell(r, "min_score"),
                                limit=5.0, what="min_score")
            payout = read.fraction(table.value(r, "bonus_payout"),
                                   table.cell(r, "bonus_payout"), limit=5.0,
                                   what="bonus_payout")
            raise_ = read.fraction(table.value(r, "salary_increase"),
                                   table.cell(r, "salary_increase"), what="salary_increase")
            for column, value in (("band", name), ("min_score", low), ("bonus_payout", payout)):
                if value is None and is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if name is None or low is None or payout is None:
                continue
            cell = table.cell(r, "min_score")
            if name.casefold() in names:
                self.log.error("duplicate-id", table.name, table.cell(r, "band"),
                               f"{table.name}!{table.cell(r, 'band')}: band {name!r} is listed "
                               "twice")
            names.add(name.casefold())
            if previous is None and low != 0:
                self.log.error("bands-first-not-zero", table.name, cell,
                               f"{table.name}!{cell}: the first band must start at 0% so every "
                               "score has a band")
            if previous is not None and low <= previous:
                self.log.error("bands-not-increasing", table.name, cell,
                               f"{table.name}!{cell}: min_score {low:.4g} must be above the "
                               f"band before ({previous:.4g}); sort the bands by min_score")
            previous = low
            bands.append(Band(name, low, payout, raise_ or 0.0))
        if not bands and not self.log.errors:
            self.log.error("missing-value", table.name, "A2",
                           f"{table.name}: at least one band is required")
        return bands

    # ---------------------------------------------------------------- Recipients / Comments
    def _recipients(self, people: dict[str, Person]) -> tuple[Recipient, ...] | None:
        table = self.tables.get("Recipients")
        if table is None:
            return None
        read = self._reader(table)
        found: list[Recipient] = []
        for r in table.rows:
            report = read.choice(table.value(r, "report"), table.cell(r, "report"),
                                 ("employee", "department", "company"))
            scope = read.text(table.value(r, "scope"), table.cell(r, "scope"), single_line=True)
            for column in ("report", "scope", "to"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if scope is not None and scope != "*":
                resolved = self._owner(table, scope, table.cell(r, "scope"), people, read)
                scope = resolved
            lists = {}
            for column in ("to", "cc", "bcc"):
                text = read.text(table.value(r, column), table.cell(r, column),
                                 single_line=True) or ""
                lists[column] = text
                for entry in split_addresses(text):
                    if entry.lower() not in TOKENS and not _email_ok(entry):
                        cell = table.cell(r, column)
                        hint = address_hint(entry) or did_you_mean(entry, TOKENS)
                        self.log.error("bad-email", table.name, cell,
                                       f"{table.name}!{cell}: {entry!r} is not a single "
                                       "e-mail address or {employee}, {manager}, {head}"
                                       f"{hint}")
            if report and scope and lists["to"]:
                found.append(Recipient(report, scope, lists["to"], lists["cc"], lists["bcc"]))
        return tuple(found) or None  # no data rows (as the template writes it): the defaults

    def _comments(self, people: dict[str, Person], kpis: dict[str, Kpi]) -> list[Comment]:
        table = self.tables.get("Comments")
        if table is None:
            return []
        read = self._reader(table)
        found: list[Comment] = []
        for r in table.rows:
            for column in ("owner", "period", "comment"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            owner = self._owner(table, table.value(r, "owner"), table.cell(r, "owner"),
                                people, read)
            period = read.month(table.value(r, "period"), table.cell(r, "period"))
            kpi = self._kpi_ref(table, table.value(r, "kpi_id"), table.cell(r, "kpi_id"),
                                kpis, read) if not is_blank(table.value(r, "kpi_id")) else None
            text = read.text(table.value(r, "comment"), table.cell(r, "comment"))
            author = read.text(table.value(r, "author"), table.cell(r, "author"),
                               single_line=True)
            if owner and period is not None and text:
                found.append(Comment(owner, period, kpi.kpi_id if kpi else None, author, text))
        return found

    # ---------------------------------------------------------------- period
    def _report_period(self, settings: Settings | None,
                       actuals: dict[tuple[str, str], dict[Month, float]],
                       lines: list[ScorecardLine], kpis: dict[str, Kpi]) -> Settings | None:
        if settings is None:
            return None
        if not self.need_period:
            return settings
        from dataclasses import replace

        latest = max((m for months in actuals.values() for m in months), default=None)
        period = settings.report_period
        if period is None:
            if latest is None:
                self.log.error("no-report-period", "Settings", "",
                               "Settings: report_period is blank and there are no actuals to "
                               "take the latest month from")
                return None
            settings = replace(settings, report_period=latest)
            self.log.info("report-period", "Settings", "",
                          f"report period {month_label(latest)} (the latest month with an "
                          "actual)")
        elif no_actuals_in_period(actuals, period):
            cell = self._setting_cell("report_period")
            self.log.error("no-actuals-in-period", "Settings", cell,
                           f"Settings!{cell}: report_period "
                           f"{no_actuals_in_period(actuals, period)}")
            return None
        elif latest is not None and latest > period:
            later = sorted({m for months in actuals.values() for m in months if m > period})
            self.log.warning("actual-after-period", "Actuals", "",
                             f"Actuals: there are actuals after the report period "
                             f"{month_label(period)} "
                             f"({', '.join(month_label(m) for m in later[:3])}"
                             f"{'…' if len(later) > 3 else ''}); they are not used")
        return settings


def no_actuals_in_period(actuals: dict[tuple[str, str], dict[Month, float]],
                         period: Month) -> str:
    """'' when someone has an actual in the month; otherwise why it cannot be reported."""
    if any(period in months for months in actuals.values()):
        return ""
    latest = max((m for months in actuals.values() for m in months), default=None)
    where = (f"the latest month with actuals is {month_label(latest)}" if latest is not None
             else "there are no actuals at all")
    return f"{month_label(period)}: nobody has an actual in that month; {where}"


def _whole(value: float, raw: object) -> bool:
    """Typed as a plain number above 1 (not as text with a % sign)."""
    return value > 1 and not (isinstance(raw, str) and raw.strip().endswith("%"))


def _plain(number: float) -> str:
    return f"{number:.6g}"


def _has_value(row: list[object], columns: list[int]) -> bool:
    width = len(row)
    for col in columns:
        if col >= width:
            return False
        value = row[col]
        if value is not None and value != "" and not (type(value) is str and not value.strip()):
            return True
    return False


class _Lazy:
    """The A1 cell of an (owner, kpi) row, looked up only when a message needs it."""

    def __init__(self, build) -> None:
        self._build, self._table = build, None

    def __call__(self, key: tuple[str, str]) -> str:
        if self._table is None:
            self._table = self._build()
        return self._table.get(key, "")


class _Casefolded(dict):
    """A dict keyed by casefolded (owner, kpi) pairs, looked up with canonical pairs."""

    def get(self, key, default=None):  # type: ignore[override]
        return super().get((key[0].casefold(), key[1].casefold()), default)


def _allowed_actuals(people: dict[str, Person], kpis: dict[str, Kpi],
                     lines: list[ScorecardLine]) -> set[tuple[str, str]]:
    """(owner, kpi) pairs an Actuals row may have: scorecard lines, their formula parts, and
    what people in a department (or the company) feed into its roll-up lines."""
    allowed: set[tuple[str, str]] = set()
    by_scope: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        kpi = kpis[line.kpi_id]
        used = set(kpi.components) if kpi.formula else {kpi.kpi_id}
        for kid in used:
            allowed.add((line.owner, kid))
            by_scope[line.owner].add(kid)
    for person in people.values():
        for kid in by_scope.get(person.department, set()) | by_scope.get(COMPANY, set()):
            allowed.add((person.employee_id, kid))
    return allowed


def _cycles(links: dict[str, str]):
    """Yield (start, path) for each loop in a child → parent map, once per loop."""
    reported: set[frozenset[str]] = set()
    for start in links:
        path, node = [start], links[start]
        seen = {start}
        while node in links and node not in seen:
            seen.add(node)
            path.append(node)
            node = links[node]
        if node == start or (node in seen and node in path):
            loop = path[path.index(node):]
            key = frozenset(loop)
            if key not in reported and start == min(loop):
                reported.add(key)
                yield start, loop + [loop[0]]


def split_addresses(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;,]", text or "") if part.strip()]


def _email_ok(text: str) -> bool:
    from kpireport.cells import EMAIL

    return bool(EMAIL.match(text))


def _formula_text(node: formula_mod.Node) -> str:
    if node.op == "num":
        return f"{node.value:g}"
    if node.op == "ref":
        return node.name
    if node.op == "neg":
        return f"-{_formula_text(node.left)}"  # type: ignore[arg-type]
    left = _formula_text(node.left)  # type: ignore[arg-type]
    right = _formula_text(node.right)  # type: ignore[arg-type]
    if node.right is not None and node.right.op in "+-" and node.op in "*/-":
        right = f"({right})"
    if node.left is not None and node.left.op in "+-" and node.op in "*/":
        left = f"({left})"
    return f"{left} {node.op} {right}"


__all__ = ["validate", "SETTINGS", "split_addresses"]
