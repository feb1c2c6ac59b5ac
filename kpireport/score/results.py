"""Results of one build, and the machine-readable files of SPEC §4.

``compute`` joins scores and pay; ``results_json``, ``results_xlsx`` and ``payroll_csv`` turn
them into bytes, so the caller decides where (and how atomically) they are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from kpireport.core.issues import Issue
from kpireport.core.model import Book, Month, Person, first_day, last_day, month_label
from kpireport.core.spec import COMPANY
from kpireport.score.bands import Pay, pay_for
from kpireport.score.outlook import Outlook, outlooks
from kpireport.score.payments import SCHEDULES, Payable, paid_to_date, payables
from kpireport.score.pool import BonusPool, bonus_pool, earned_by_employee
from kpireport.score.scoring import (
    LineResult,
    OwnerScore,
    Scores,
    mean_score,
    score_book,
    status_of,
)

SCHEMA_ID = "kpireport/results@1"


@dataclass(frozen=True)
class Results:
    book: Book
    scores: Scores
    pay: dict[str, Pay]  # employee_id -> pay
    issues: tuple[Issue, ...]
    paid: dict[str, Decimal] | None = None  # bonus paid so far this fiscal year; None: no record

    @cached_property
    def pool(self) -> BonusPool:
        """The bonus pool: paid and earned to date, the year end projected (score/pool.py)."""
        return bonus_pool(self.book, self.scores, self.pay, self.paid)

    @cached_property
    def payables(self) -> dict[str, Payable]:
        """With a payment schedule, each employee's earned, paid and payable now (SPEC §2.8;
        score/payments.py); empty with ``bonus_payment`` none."""
        return payables(self.book, self.scores.fiscal_start,
                        earned_by_employee(self.book, self.scores, self.pay), self.paid,
                        list(self.pay))

    @property
    def schedule(self) -> bool:
        """Whether bonuses are paid on a schedule (``bonus_payment`` other than none)."""
        return self.book.settings.bonus_payment in SCHEDULES

    @property
    def period(self) -> str:
        return month_label(self.scores.period)

    @property
    def owners(self) -> tuple[OwnerScore, ...]:
        return self.scores.owners

    def owner(self, owner_id: str) -> OwnerScore:
        return self._by_owner[owner_id]

    @cached_property
    def outlooks(self) -> dict[str, Outlook]:
        """What the rest of the fiscal year takes, per employee (kpireport.score.outlook)."""
        return outlooks(self.book, self.scores)

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


def compute(book: Book, issues: list[Issue] | tuple[Issue, ...] = (), *,
            paid_from_runs: dict[str, Decimal] | None = None) -> Results:
    """Score the book and work out each employee's band, bonus and salary.

    ``paid_from_runs``: the bonus the fiscal year's earlier approved and sent runs made payable,
    per employee (kpireport.month.payments); a Payments sheet in the book wins over it."""
    scores = score_book(book)
    pay = {}
    for owner in scores.owners:
        if owner.person is not None:
            pay[owner.owner] = pay_for(owner.person, owner.month_score, owner.ytd_score,
                                       book.settings, book.bands, scores.fiscal_start)
    return Results(book, scores, pay, tuple(issues) + scores.issues,
                   paid_to_date(book, scores.fiscal_start, paid_from_runs))
