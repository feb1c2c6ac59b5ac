"""Money: a currency's minor unit and half-up rounding to it, from exact amounts.

The one home of both rules (SPEC §2.6): scoring, the results files, the reports and ``diff``
all round and count decimals through here.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache


@lru_cache(maxsize=64)
def minor_units(currency: str) -> int:
    """Decimals of ``currency``'s minor unit (USD 2, VND 0, JPY 0); 2 for a code Babel does
    not know (validation has already named it)."""
    from babel.numbers import get_currency_precision  # lazy: Babel's data loads on first use

    try:
        return get_currency_precision(currency)
    except Exception:  # noqa: BLE001 (Babel raises several kinds for an unknown code)
        return 2


def round_money(amount: Decimal | Fraction, currency: str) -> Decimal:
    """Half-up (away from zero at a tie) to the currency's minor unit, from an exact amount."""
    places = minor_units(currency)
    if isinstance(amount, Decimal):
        return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    scaled = abs(amount) * 10 ** places
    units = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
    return Decimal(-units if amount < 0 else units).scaleb(-places)
