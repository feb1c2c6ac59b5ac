"""SPEC §2.6–2.7: score → band, payout, bonus and recommended salary. Money is Decimal.

Every money amount is computed exactly and rounded half-up once, at the end, to the currency's
minor unit (USD 2 decimals, VND 0).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from kpireport.model import Band, Month, Person, Settings, first_day, last_day

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


def minor_units(currency: str) -> int:
    from babel.numbers import get_currency_precision

    return get_currency_precision(currency)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit."""
    quantum = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


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
    band = band_for(score, bands)
    if band is None or score is None:
        return None
    if mode != "linear":
        return band.bonus_payout
    index = bands.index(band)
    if index == len(bands) - 1:
        return band.bonus_payout
    upper = bands[index + 1]
    span = upper.min_score - band.min_score
    share = (round(score, EDGE_DECIMALS) - band.min_score) / span
    return band.bonus_payout + share * (upper.bonus_payout - band.bonus_payout)


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
        share = Decimal(1)
    else:
        window_start, window_end = first_day(period), last_day(period)
        days_total = (window_end - window_start).days + 1
        share = Decimal(1) / Decimal(12)
    employed = days_employed(person, window_start, window_end)
    band = band_for(score, bands)
    payout = payout_for(score, bands, settings.band_mode)
    base = _dec(person.base_salary)
    pct = _dec(person.target_bonus_pct)
    currency = settings.currency
    bonus = recommended = target_bonus = None
    with localcontext() as ctx:
        ctx.prec = 40
        if base is not None and pct is not None:
            target_bonus = round_money(base * pct * share * employed / days_total, currency)
            if payout is not None:
                exact = base * pct * share * _dec(payout) * employed / days_total
                bonus = round_money(exact, currency)
        if base is not None and band is not None:
            recommended = round_money(base * (1 + _dec(band.salary_increase)), currency)
    return Pay(basis, score, band.band if band else None, payout,
               band.salary_increase if band else None, bonus, recommended,
               person.base_salary, person.target_bonus_pct, employed, days_total,
               (window_end - window_start).days + 1, target_bonus)


def _dec(value: float | None) -> Decimal | None:
    """A float typed in a spreadsheet as the Decimal a person meant (repr is shortest)."""
    if value is None:
        return None
    return Decimal(repr(float(value)))
