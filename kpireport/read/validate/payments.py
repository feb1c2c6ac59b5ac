"""The Payments sheet (SPEC §1, optional): bonus already paid, by person and month."""

from __future__ import annotations

from kpireport.core.model import Month, Payment, Person, Settings, month_label
from kpireport.read.cells import is_blank
from kpireport.read.validate.base import Checks


class PaymentChecks(Checks):
    """Payments rows: a known person, a month of the report month's fiscal year, an amount of
    0 or more (each problem named by its cell)."""

    def _payments(self, settings: Settings | None,
                  people: dict[str, Person]) -> tuple[Payment, ...] | None:
        table = self.tables.get("Payments")
        if table is None or not table.rows:  # no sheet, or no rows (as the template writes
            return None                       # it): paid to date comes from the runs
        read = self._reader(table)
        year = _fiscal_year(settings)
        found: list[Payment] = []
        ids = self._people_keys(people)
        for r in table.rows:
            for column in ("employee_id", "period", "amount"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            who_cell = table.cell(r, "employee_id")
            who = read.text(table.value(r, "employee_id"), who_cell, single_line=True)
            person = ids.get(who.casefold()) if who else None
            if who and person is None:
                self.log.add("unknown-reference", table.name, who_cell, what="employee_id",
                             id=who, listed_in="People",
                             hint=self._hint("person", who, lambda: list(people)))
            period_cell = table.cell(r, "period")
            period = read.month(table.value(r, "period"), period_cell)
            if period is not None and year is not None and not year[0] <= period <= year[1]:
                self.log.add("payment-outside-year", table.name, period_cell,
                             period=month_label(period), start=month_label(year[0]),
                             end=month_label(year[1]))
                period = None
            amount_cell = table.cell(r, "amount")
            amount = read.number(table.value(r, "amount"), amount_cell, percent_ok=False)
            if amount is not None and amount < 0:
                self.log.add("negative-value", table.name, amount_cell, what="amount")
                amount = None
            if person is not None and period is not None and amount is not None:
                found.append(Payment(person.employee_id, period, amount, r + 1))
        return tuple(found)


def _fiscal_year(settings: Settings | None) -> tuple[Month, Month] | None:
    """(first, last month) of the fiscal year of the report month; None when not known."""
    if settings is None or settings.report_period is None:
        return None
    period, start_month = settings.report_period, settings.fiscal_year_start_month
    first = period - (period % 12 - (start_month - 1)) % 12
    return first, first + 11
