"""The typed model of a valid workbook: frozen dataclasses, ids in their canonical spelling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Month = int  # year * 12 + (month - 1): consecutive months are consecutive integers


def month_of(year: int, month: int) -> Month:
    return year * 12 + month - 1


def month_label(month: Month) -> str:
    """2026*12+9 → '2026-10'."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def parse_month(text: str) -> Month | None:
    """'2026-10' → Month, or None when the text is not YYYY-MM."""
    text = text.strip()
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        return None
    month = int(text[5:])
    return month_of(int(text[:4]), month) if 1 <= month <= 12 else None


def first_day(month: Month) -> dt.date:
    return dt.date(month // 12, month % 12 + 1, 1)


def last_day(month: Month) -> dt.date:
    return first_day(month + 1) - dt.timedelta(days=1)


@dataclass(frozen=True)
class Settings:
    organization: str
    currency: str = "USD"
    locale: str = "en_US"
    fiscal_year_start_month: int = 1
    report_period: Month | None = None
    missing_actuals: str = "skip"
    score_cap: float = 1.5
    threshold_score: float = 0.5
    rag_green: float = 1.0
    rag_amber: float = 0.9
    band_mode: str = "step"
    bonus_basis: str = "ytd"
    report_title: str = "Performance review"
    require_approval: bool = True  # send only an approved, unchanged run (SPEC §3.1)
    pdf_protection: str = "none"  # none / employee / all
    pdf_password_hint: str | None = None  # None: the localized default
    bonus_payment: str = "none"  # none / monthly / quarterly / annual (SPEC §2.8)


@dataclass(frozen=True)
class Person:
    employee_id: str
    name: str
    department: str
    email: str | None = None
    title: str | None = None
    manager_id: str | None = None
    base_salary: float | None = None
    target_bonus_pct: float | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    # Never printed: kept out of repr (tracebacks, debug output) and of every output file.
    pdf_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Goal:
    goal_id: str
    goal: str
    level: str
    parent_goal_id: str | None = None
    perspective: str | None = None


@dataclass(frozen=True)
class Kpi:
    kpi_id: str
    kpi: str
    unit: str
    direction: str
    aggregation: str | None = None
    formula: str | None = None
    goal_id: str | None = None
    decimals: int | None = None
    description: str | None = None
    components: tuple[str, ...] = ()  # kpi_ids the formula uses


@dataclass(frozen=True)
class ScorecardLine:
    owner: str
    kpi_id: str
    weight: float
    target: float
    threshold: float | None = None
    stretch: float | None = None
    target_max: float | None = None
    baseline: float | None = None
    row: int = 0  # Excel row in Scorecards, for messages


@dataclass(frozen=True)
class Band:
    band: str
    min_score: float
    bonus_payout: float
    salary_increase: float = 0.0


@dataclass(frozen=True)
class Payment:
    """A row of the Payments sheet: bonus already paid to a person in a month."""

    employee_id: str
    period: Month
    amount: float
    row: int = 0  # Excel row in Payments, for messages


@dataclass(frozen=True)
class Recipient:
    report: str
    scope: str
    to: str
    cc: str = ""
    bcc: str = ""


@dataclass(frozen=True)
class Comment:
    owner: str
    period: Month
    kpi_id: str | None
    author: str | None
    comment: str


def cell_key(value: object) -> str:
    """A row key as the index compares it: trimmed, case-folded, 1001.0 read as 1001."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold() if value is not None else ""


def _sheet_ref(sheet: str) -> str:
    """A sheet name as Excel writes it in a reference ('My sheet' needs quotes)."""
    plain = sheet.replace("_", "").isalnum()
    return sheet if plain else "'" + sheet.replace("'", "''") + "'"


@dataclass(frozen=True)
class CellIndex:
    """Where the standard sheets' values are: A1 addresses by sheet, row key and column.

    Validation gives it the sheets it located and ``fill``, which indexes them the first time
    a cell is asked for (``kpireport explain`` and the reviews' "How this was computed"
    page): a check that explains nothing does not pay for indexing ~30,000 rows. An empty
    index names none."""

    sheets: dict[str, str] = field(default_factory=dict)  # standard name -> name in the book
    rows: dict[tuple, int] = field(default_factory=dict)  # (sheet, key…) -> 0-based row
    columns: dict[tuple[str, str], int] = field(default_factory=dict)  # (sheet, column) -> col
    months: dict[str, dict[Month, int]] = field(default_factory=dict)  # sheet -> month -> col
    fill: Callable[[CellIndex], None] | None = field(default=None, repr=False, compare=False)
    _filled: list[bool] = field(default_factory=list, repr=False, compare=False)

    def _ready(self) -> None:
        if self.fill is not None and not self._filled:
            self._filled.append(True)
            self.fill(self)

    def cell(self, sheet: str, column: str, *key: str) -> str | None:
        """'Scorecards!D5' for the ``column`` cell of the row of ``key``, or None."""
        return self.cells(sheet, (column,), *key).get(column)

    def cells(self, sheet: str, columns: Iterable[str], *key: str) -> dict[str, str]:
        """:meth:`cell` of each of ``columns`` of the row of ``key`` (those that exist)."""
        self._ready()
        row = self.rows.get((sheet, *map(cell_key, key)))
        if row is None:
            return {}
        ref = None
        found = {}
        for column in columns:
            col = self.columns.get((sheet, column))
            if col is not None:
                ref = ref or _sheet_ref(self.sheets[sheet])
                found[column] = f"{ref}!{_a1(row, col)}"
        return found

    def month_cells(self, sheet: str, owner: str, kpi_id: str,
                    months: list[Month]) -> dict[Month, str]:
        """The cell of each month's value of (owner, kpi) in Actuals or Targets."""
        self._ready()
        if sheet not in self.sheets:
            return {}
        ref = _sheet_ref(self.sheets[sheet])
        found = {}
        owner_key, kpi_key = cell_key(owner), cell_key(kpi_id)
        row = self.rows.get((sheet, owner_key, kpi_key))
        if row is not None:
            cols = self.months.get(sheet, {})
            for m in months:
                if m in cols:
                    found[m] = f"{ref}!{_a1(row, cols[m])}"
        else:
            col = self.columns.get((sheet, "actual"))
            if col is None:
                return found
            for m in months:
                r = self.rows.get((sheet, owner_key, kpi_key, month_label(m)))
                if r is not None:
                    found[m] = f"{ref}!{_a1(r, col)}"
        return found


def _a1(row: int, col: int) -> str:
    letters, index = "", col + 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


@dataclass(frozen=True)
class Book:
    """Everything kpireport needs from a valid workbook."""

    settings: Settings
    people: tuple[Person, ...]
    goals: tuple[Goal, ...]
    kpis: tuple[Kpi, ...]
    scorecards: tuple[ScorecardLine, ...]
    bands: tuple[Band, ...]
    actuals: dict[tuple[str, str], dict[Month, float]] = field(default_factory=dict)
    targets: dict[tuple[str, str], dict[Month, float]] = field(default_factory=dict)
    recipients: tuple[Recipient, ...] | None = None
    comments: tuple[Comment, ...] = ()
    payments: tuple[Payment, ...] | None = None  # None: no Payments sheet
    source_file: str = ""
    source_sha256: str = ""
    source_path: str = field(default="", repr=False, compare=False)  # where it was read from
    cells: CellIndex = field(default_factory=lambda: CellIndex(), repr=False, compare=False)

    @property
    def departments(self) -> list[str]:
        return sorted({p.department for p in self.people})
