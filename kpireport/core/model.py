"""The typed model of a valid workbook: frozen dataclasses, ids in their canonical spelling."""

from __future__ import annotations

import datetime as dt
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
    source_file: str = ""
    source_sha256: str = ""
    source_path: str = field(default="", repr=False, compare=False)  # where it was read from

    @property
    def departments(self) -> list[str]:
        return sorted({p.department for p in self.people})
