"""The bonus pool (company review) and an employee's payable now (employee review), resolved
to text, ready to lay out."""

from __future__ import annotations

from collections.abc import Callable

from kpireport.core.i18n import N_, Formatter
from kpireport.score.payments import Payable
from kpireport.score.pool import BonusPool


def pool_view(pool: BonusPool, fmt: Formatter, ytd_label: str,
              fit: Callable[[str], str] = lambda text: "") -> dict[str, str]:
    """Paid to date, earned to date and the year end projected, with their notes, as text;
    ``size`` is the cards' figure size class, from ``fit`` of the longest figure."""
    _ = fmt.gettext
    band = pool.projection
    if pool.paid_to_date is None:
        paid, paid_note = "—", _("no payments recorded")
    else:
        paid = fmt.money(pool.paid_to_date)
        paid_note = _("earned, not paid yet: {amount}").format(amount=fmt.money(pool.unpaid))
    if band.months_left == 0:
        likely = _("the fiscal year ends this month")
        method = ""
    else:
        likely = _("likely {low} – {high}").format(low=fmt.money(band.low),
                                                    high=fmt.money(band.high))
        method = _("Projected at the current pace: in each of {draws} draws (seeded, so the "
                   "same workbook gives the same range), every KPI of every employee repeats "
                   "one of its own months so far in each of the {months} month(s) left of "
                   "the fiscal year; each year is scored and paid as the reviews are. "
                   "Expected is the median; the range runs from the 10th to the 90th "
                   "percentile.").format(draws=band.draws, months=band.months_left)
    earned, expected = fmt.money(pool.earned_to_date), fmt.money(band.expected)
    return {"size": fit(max((paid, earned, expected), key=len)), "paid": paid,
            "paid_note": paid_note,
            "earned": earned, "earned_note": ytd_label,
            "expected": expected, "likely": likely,
            "low": fmt.money(band.low), "high": fmt.money(band.high),
            "months_left": str(band.months_left), "method": method}


SCHEDULE_WORDS = {"monthly": N_("bonuses are paid every month"),
                  "quarterly": N_("bonuses are paid in the last month of each fiscal quarter"),
                  "annual": N_("bonuses are paid in the last month of the fiscal year")}


def payment_view(line: Payable | None, schedule: str, fmt: Formatter) -> dict[str, str] | None:
    """An employee's payable now, earned and paid to date (SPEC §2.8) as the review says it;
    None without a payment schedule."""
    if line is None:
        return None
    _ = fmt.gettext
    if line.earned_to_date is None:
        note = _("No bonus: there is no score for this period.")
    elif line.clawback is not None:
        note = _("earned to date is {amount} less than paid to date: a clawback for approval, "
                 "never deducted by kpireport").format(amount=fmt.money(-line.clawback))
    elif not line.payment_month:
        note = _(SCHEDULE_WORDS[schedule]) + "; " + _("nothing is payable this month")
    else:
        note = _(SCHEDULE_WORDS[schedule])
    return {"payable": fmt.money(line.payable_now), "earned": fmt.money(line.earned_to_date),
            "paid": fmt.money(line.paid_to_date), "note": note,
            "clawback": "" if line.clawback is None else fmt.money(line.clawback)}
