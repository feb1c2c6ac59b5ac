"""What every check shares: the located sheets, the issue log and the id lookups."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from kpireport.core.issues import HINT_NEAR, OR, IssueLog
from kpireport.core.model import Kpi, Month, Person
from kpireport.core.spec import COMPANY, Sheet, normalise
from kpireport.read.cells import CellReader, closest, is_blank
from kpireport.read.workbook import RawBook, RawSheet, column_letter

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


class Checks:
    """The state of one validation; the checks of each sheet are mixins over it."""

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
        return HINT_NEAR.format(names=OR.join(best)) if best else ""

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

    def _required(self, table: Table, row: int, column: str) -> None:
        cell = table.cell(row, column)
        self.log.add("missing-value", table.name, cell, form="required", column=column)

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
            self.log.add("ambiguous-owner", table.name, cell, owner=text)
            return None
        if person is None and department is None:
            def names() -> list[str]:
                return [p.employee_id for p in people.values()] + \
                    sorted(self._department_keys(people).values()) + [COMPANY]

            self.typo_owners[table.name].update(self._near("owner", text, names))
            self.log.add("unknown-owner", table.name, cell, owner=text,
                         hint=self._hint("owner", text, names))
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
            self.log.add("unknown-reference", table.name, cell, what="KPI", id=text,
                         listed_in="KPIs", hint=hint)
        return kpi

    def _kpi_keys(self, kpis: dict[str, Kpi]) -> dict[str, Kpi]:
        if not hasattr(self, "_kk"):
            self._kk = {k.kpi_id.casefold(): k for k in kpis.values()}
        return self._kk

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
        return Casefolded(found)  # type: ignore[return-value]


def has_value(row: list[object], columns: list[int]) -> bool:
    width = len(row)
    for col in columns:
        if col >= width:
            return False
        value = row[col]
        if value is not None and value != "" and not (type(value) is str and not value.strip()):
            return True
    return False


class Lazy:
    """The A1 cell of an (owner, kpi) row, looked up only when a message needs it."""

    def __init__(self, build) -> None:
        self._build, self._table = build, None

    def __call__(self, key: tuple[str, str]) -> str:
        if self._table is None:
            self._table = self._build()
        return self._table.get(key, "")


class Casefolded(dict):
    """A dict keyed by casefolded (owner, kpi) pairs, looked up with canonical pairs."""

    def get(self, key, default=None):  # type: ignore[override]
        return super().get((key[0].casefold(), key[1].casefold()), default)
