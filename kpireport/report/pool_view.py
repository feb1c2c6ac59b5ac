"""The bonus pool as the company review and the web app show it (resolved, ready to lay out)."""

from __future__ import annotations

from collections.abc import Callable

from kpireport.core.i18n import Formatter
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
    return {"size": fit(max((paid, earned, expected), key=len)), "paid": paid, "paid_note": paid_note,
            "earned": earned, "earned_note": ytd_label,
            "expected": expected, "likely": likely,
            "low": fmt.money(band.low), "high": fmt.money(band.high),
            "months_left": str(band.months_left), "method": method}
