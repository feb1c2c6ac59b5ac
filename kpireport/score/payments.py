"""SPEC §2.8, payable now: with a payment schedule, what each employee has earned so far in the
fiscal year, what has been paid, and what is payable this month (or to be clawed back).

``earned_to_date`` is :func:`kpireport.score.pool.earned_by_employee`. ``paid_to_date`` is the
sum of the Payments rows of the fiscal year before the report month when the workbook has a
Payments sheet (it wins), otherwise the ``payable_now`` of the fiscal year's earlier approved
and sent runs (read from their run folders by :mod:`kpireport.month.payments` and handed in).
In a payment month the difference is payable when it is 0 or more, and a **clawback** when it
is negative — never deducted silently: ``payable_now`` is 0 and the clawback is its own line,
which ``approve`` lists and payroll.csv marks. Outside payment months nothing is payable.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kpireport.core.model import Book, Month
from kpireport.core.money import round_money

SCHEDULES = ("monthly", "quarterly", "annual")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Payable:
    """One employee's payment line for the report month (money in the workbook's currency)."""

    earned_to_date: Decimal | None  # None: no score yet, so no bonus (never a silent 0)
    paid_to_date: Decimal
    payable_now: Decimal | None  # 0 outside payment months; None when nothing is earned
    clawback: Decimal | None  # earned − paid when negative in a payment month, else None
    payment_month: bool


def payment_month(schedule: str, period: Month, fiscal_start: Month) -> bool:
    """Whether bonuses are paid in ``period``: every month, the last month of each fiscal
    quarter, or the last month of the fiscal year."""
    position = period - fiscal_start  # 0 … 11
    return (schedule == "monthly" or (schedule == "quarterly" and position % 3 == 2)
            or (schedule == "annual" and position == 11))


def paid_to_date(book: Book, fiscal_start: Month,
                 from_runs: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
    """Bonus paid per employee in the fiscal year before the report month: the Payments sheet
    when the workbook has one, else ``from_runs`` (earlier approved and sent runs) with a
    schedule; None when nothing records payments (``bonus_payment`` none, no sheet)."""
    period = book.settings.report_period
    assert period is not None
    currency = book.settings.currency
    if book.payments is not None:
        paid: dict[str, Decimal] = {p.employee_id: ZERO for p in book.people}
        for row in book.payments:
            if fiscal_start <= row.period < period:
                paid[row.employee_id] = paid.get(row.employee_id, ZERO) + \
                    Decimal(repr(row.amount))
        return {who: round_money(amount, currency) for who, amount in paid.items()}
    if book.settings.bonus_payment not in SCHEDULES:
        return None
    runs = from_runs or {}
    return {p.employee_id: round_money(runs.get(p.employee_id, ZERO), currency)
            for p in book.people}


def payables(book: Book, fiscal_start: Month, earned: dict[str, Decimal],
             paid: dict[str, Decimal] | None, employees: list[str]) -> dict[str, Payable]:
    """Each employee's payment line; empty without a schedule (``bonus_payment`` none)."""
    schedule = book.settings.bonus_payment
    if schedule not in SCHEDULES:
        return {}
    period = book.settings.report_period
    assert period is not None
    due = payment_month(schedule, period, fiscal_start)
    paid = paid or {}
    nothing = round_money(ZERO, book.settings.currency)  # 0.00 in USD, 0 in VND
    lines = {}
    for employee in employees:
        so_far = paid.get(employee, nothing)
        made = earned.get(employee)
        if made is None:
            lines[employee] = Payable(None, so_far, None, None, due)
            continue
        difference = made - so_far
        if not due:
            lines[employee] = Payable(made, so_far, nothing, None, due)
        elif difference >= 0:
            lines[employee] = Payable(made, so_far, difference, None, due)
        else:
            lines[employee] = Payable(made, so_far, nothing, difference, due)
    return lines
