"""Check a RawBook against SPEC §1–§2 and build the typed model.

``validate(raw)`` returns ``(book, issues)``. ``book`` is None when any error was found; every
problem is reported in one pass, each with its sheet and A1 cell. Every issue is made from the
catalogue (:mod:`kpireport.core.catalogue`).

The checks of each concern live in a module of their own, as mixins over the shared state
of :class:`~kpireport.read.validate.base.Checks`:

=====================  ==========================================================
``structure``          sheets, header rows, columns, Excel errors in used cells
``settings``           Settings, Bands and the report period
``people``             People and the Goals cascade
``kpis``               the KPIs catalogue and formulas
``scorecards``         Scorecards lines, weights, targets and bounds
``actuals``            Actuals and Targets (wide or long) and whose they are
``percents``           percent values typed as whole numbers
``recipients``         Recipients and Comments
=====================  ==========================================================
"""

from __future__ import annotations

from kpireport.core.issues import Issue
from kpireport.core.model import Book, CellIndex, cell_key
from kpireport.core.spec import SETTINGS
from kpireport.read.glyphs import check_glyphs
from kpireport.read.validate.actuals import ActualsChecks, _allowed_actuals
from kpireport.read.validate.kpis import KpiChecks
from kpireport.read.validate.payments import PaymentChecks
from kpireport.read.validate.people import PeopleChecks
from kpireport.read.validate.percents import PercentChecks
from kpireport.read.validate.recipients import RecipientChecks, split_addresses
from kpireport.read.validate.scorecards import ScorecardChecks
from kpireport.read.validate.settings import SettingsChecks, no_actuals_in_period
from kpireport.read.validate.structure import StructureChecks
from kpireport.read.workbook import RawBook

__all__ = ["validate", "locate_tables", "no_actuals_in_period", "split_addresses", "SETTINGS",
           "_allowed_actuals"]


def validate(raw: RawBook, *, need_period: bool = True) -> tuple[Book | None, list[Issue]]:
    """Validate every rule that can be checked before scoring.

    ``need_period=False`` (for ``import``, which brings the actuals) leaves out the checks
    that a month with actuals can be reported.
    """
    return _Validator(raw, need_period=need_period).run()


def locate_tables(raw: RawBook) -> dict:
    """The standard sheets of ``raw`` with their header and data rows, nothing checked (the
    input snapshot of kpireport.month.diff reads values by column through these)."""
    validator = _Validator(raw)
    validator._locate_sheets()
    return validator.tables


class _Validator(StructureChecks, SettingsChecks, PeopleChecks, KpiChecks, ScorecardChecks,
                 ActualsChecks, PercentChecks, RecipientChecks, PaymentChecks):
    def run(self) -> tuple[Book | None, list[Issue]]:
        if not self._structure():
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
        payments = self._payments(settings, people)
        self._cell_errors()
        check_glyphs(self.tables, self.log)
        if not self.log.valid or settings is None:
            return None, self.log.items
        book = Book(settings=settings, people=tuple(people.values()),
                    goals=tuple(goals.values()), kpis=tuple(kpis.values()),
                    scorecards=tuple(lines), bands=tuple(bands), actuals=actuals,
                    targets=targets, recipients=recipients, comments=tuple(comments),
                    payments=payments,
                    source_file=self.raw.path.name, source_sha256=self.raw.sha256,
                    source_path=str(self.raw.path), cells=cell_index(self.tables))
        return book, self.log.items


INDEXED = {"Actuals": ("owner", "kpi_id"), "Targets": ("owner", "kpi_id"),
           "Scorecards": ("owner", "kpi_id"), "People": ("employee_id",), "Bands": ("band",)}


def cell_index(tables: dict) -> CellIndex:
    """Where the values ``explain`` names are: rows by key, columns and month columns,
    indexed the first time a cell is asked for (see :class:`CellIndex`)."""
    return CellIndex(fill=lambda index: _fill_index(index, tables))


def _fill_index(index: CellIndex, tables: dict) -> None:
    for name, keys in INDEXED.items():
        table = tables.get(name)
        if table is None:
            continue
        index.sheets[name] = table.name
        index.months[name] = dict(table.months)
        for column, col in table.columns.items():
            index.columns[(name, column)] = col
        long = "period" in table.columns and name in ("Actuals", "Targets")
        for r in table.rows:
            key = (name, *(cell_key(table.value(r, k)) for k in keys))
            if long:
                key += (_period_key(table.value(r, "period")),)
            index.rows.setdefault(key, r)


def _period_key(value: object) -> str:
    if hasattr(value, "year") and hasattr(value, "month"):
        return f"{value.year:04d}-{value.month:02d}"
    return str(value).strip()[:7]
