"""SPEC §2.6–2.7: score → band, payout, bonus and recommended salary. Money is Decimal.

Every money amount is computed exactly — typed numbers become their shortest decimal form,
then exact rationals (``Fraction``), so ``÷ 12`` and ``÷ days`` never round in between — and
rounded half-up once, at the end, to the currency's minor unit (USD 2 decimals, VND 0).
705,000,000 × 12.5% ÷ 12 × 85% is exactly 6,242,187.5 and is paid 6,242,188.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from kpireport.core.model import Band, Month, Person, Settings, first_day, last_day
from kpireport.core.money import round_money

EDGE_DECIMALS = 6


@dataclass(frozen=True)
class Pay:
    """What an employee's score earns."""

    basis: str  # ytd / month
    score: float | None
    band: str | None
    bonus_payout: float | None
    salary_increase: float | None
    bonus: Decimal | None
    recommended_salary: Decimal | None
    base_salary: float | None
    target_bonus_pct: float | None
    days_employed: int
    days_in_period: int  # the denominator: days in the fiscal year (ytd) or the month
    days_in_window: int  # days from the start of the window through the report month
    target_bonus: Decimal | None  # the bonus at 100% payout for the basis period




def band_for(score: float | None, bands: tuple[Band, ...]) -> Band | None:
    """The last band whose min_score ≤ score, comparing after rounding to 6 decimals."""
    if score is None:
        return None
    rounded = round(score, EDGE_DECIMALS)
    chosen = None
    for band in bands:
        if round(band.min_score, EDGE_DECIMALS) <= rounded:
            chosen = band
    return chosen


def payout_for(score: float | None, bands: tuple[Band, ...], mode: str) -> float | None:
    """step: the band's payout; linear: interpolated between band points, flat above the last."""
    exact = exact_payout(score, bands, mode)
    return None if exact is None else float(exact)


def exact_payout(score: float | None, bands: tuple[Band, ...], mode: str) -> Fraction | None:
    """The payout as an exact rational (the linear interpolation never rounds)."""
    band = band_for(score, bands)
    if band is None or score is None:
        return None
    low, paid = _exact(band.min_score), _exact(band.bonus_payout)
    if mode != "linear":
        return paid
    index = bands.index(band)
    if index == len(bands) - 1:
        return paid
    upper = bands[index + 1]
    span = _exact(upper.min_score) - low
    share = (_exact(round(score, EDGE_DECIMALS)) - low) / span
    return paid + share * (_exact(upper.bonus_payout) - paid)


def days_employed(person: Person, start: dt.date, end: dt.date) -> int:
    """Days in [start, end] on which the person was employed (start/end dates inclusive)."""
    begin = max(start, person.start_date) if person.start_date else start
    finish = min(end, person.end_date) if person.end_date else end
    return max(0, (finish - begin).days + 1)


def pay_for(person: Person, month_score: float | None, ytd_score: float | None,
            settings: Settings, bands: tuple[Band, ...], fiscal_start: Month) -> Pay:
    """Band, payout, pro-rated bonus and recommended salary of one employee."""
    assert settings.report_period is not None
    period = settings.report_period
    basis = settings.bonus_basis
    score = ytd_score if basis == "ytd" else month_score
    if basis == "ytd":
        window_start, window_end = first_day(fiscal_start), last_day(period)
        days_total = (last_day(fiscal_start + 11) - first_day(fiscal_start)).days + 1
        share = Fraction(1)
    else:
        window_start, window_end = first_day(period), last_day(period)
        days_total = (window_end - window_start).days + 1
        share = Fraction(1, 12)
    employed = days_employed(person, window_start, window_end)
    band = band_for(score, bands)
    exact = exact_payout(score, bands, settings.band_mode)
    payout = None if exact is None else float(exact)
    base = _exact(person.base_salary)
    pct = _exact(person.target_bonus_pct)
    currency = settings.currency
    bonus = recommended = target_bonus = None
    if base is not None and pct is not None:
        prorated = base * pct * share * Fraction(employed, days_total)
        target_bonus = round_money(prorated, currency)
        if exact is not None:
            bonus = round_money(prorated * exact, currency)
    if base is not None and band is not None:
        recommended = round_money(base * (1 + _exact(band.salary_increase)), currency)
    return Pay(basis, score, band.band if band else None, payout,
               band.salary_increase if band else None, bonus, recommended,
               person.base_salary, person.target_bonus_pct, employed, days_total,
               (window_end - window_start).days + 1, target_bonus)


def _exact(value: float | None) -> Fraction | None:
    """A float typed in a spreadsheet as the number a person meant: its shortest decimal
    form (``repr``), never the binary value (0.85 is 85/100, not 0.84999999999999997779…)."""
    if value is None:
        return None
    return _exact_float(float(value))


@lru_cache(maxsize=4096)
def _exact_float(value: float) -> Fraction:
    # Salaries, bonus targets and band edges repeat across 1,000 people (Fractions are
    # immutable, so one may be shared).
    return Fraction(Decimal(repr(value)))
