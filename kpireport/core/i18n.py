"""Translations and locale formatting.

Catalogs are gettext ``.po`` files in ``kpireport/locale/<lang>/LC_MESSAGES/kpireport.po``;
Babel compiles them in memory on first use, so no binary ``.mo`` file is committed.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations

from kpireport.core.money import minor_units

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "kpireport"
COMPACT_FROM = 100_000_000


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is used."""
    return message


# A CLDR date pattern, translated like any text (see Formatter.month).
MONTH_PATTERN = N_("MMMM y")


@lru_cache(maxsize=16)
def translations(locale: str) -> NullTranslations:
    """Compiled translations for ``locale`` (falls back to the language, then English)."""
    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel.messages.mofile import write_mo

    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel.messages.pofile import read_po

    parsed = Locale.parse(locale)
    for name in (str(parsed), parsed.language):
        po = LOCALE_DIR / name / "LC_MESSAGES" / f"{DOMAIN}.po"
        if po.exists():
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=name)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            return Translations(fp=buffer, domain=DOMAIN)
    return NullTranslations()


@dataclass(frozen=True)
class _Style:
    """The CLDR symbols and patterns of one locale, read from Babel once."""

    decimal: str
    group: str
    minus: str
    percent: str
    currency_prefix: tuple[str, str]  # (positive, negative), '¤' already replaced
    currency_suffix: tuple[str, str]
    digits: int  # the currency's minor units
    fast: bool  # grouping is plain thousands (3, 3); otherwise Babel formats
    # str.translate table from Python's ',' and '.' to the locale's (None: the same)
    table: dict[int, str] | None


@lru_cache(maxsize=32)
def _style(locale: str, currency: str) -> _Style:
    # lazy: babel is loaded only where it is used (start-up stays light)
    from babel.numbers import (
        get_currency_symbol,
        get_decimal_symbol,
        get_group_symbol,
        get_minus_sign_symbol,
    )

    parsed = Locale.parse(locale)
    pattern = parsed.currency_formats["standard"]
    symbol = get_currency_symbol(currency, locale)
    percent = parsed.number_symbols.get("latn", {}).get("percentSign", "%")
    decimal, group = get_decimal_symbol(locale), get_group_symbol(locale)
    table = None if (group, decimal) == (",", ".") else str.maketrans({",": group, ".": decimal})
    return _Style(decimal, group, get_minus_sign_symbol(locale), percent,
                  tuple(p.replace("¤", symbol).replace("-", "") for p in pattern.prefix),
                  tuple(p.replace("¤", symbol) for p in pattern.suffix),
                  minor_units(currency),
                  pattern.grouping == (3, 3) and parsed.decimal_formats[None].grouping == (3, 3),
                  table)


def _digits(value: float | Decimal, places: int, style: _Style) -> tuple[bool, str]:
    """(negative, grouped digits) rounded half-even like Babel (Decimal of the shortest repr).

    Floats whose shortest repr cannot hold a tie at ``places`` are rounded by float
    formatting, which then gives the same digits (no tie lies between a float and its repr).
    """
    if type(value) is float:
        text = repr(value)
        dot = text.find(".")
        if "e" not in text and "n" not in text and \
                not (dot >= 0 and len(text) - dot - 1 == places + 1 and text[-1] == "5"):
            formatted = format(value, _GROUPED[places]) if places < 10 else \
                f"{value:,.{places}f}"
            if formatted[0] == "-":
                digits = formatted[1:]
                return _NONZERO.search(digits) is not None, _localise(digits, style)
            return False, _localise(formatted, style)
    number = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    rounded = number.quantize(_QUANTUM[places], rounding=ROUND_HALF_EVEN)
    # A value that rounds to zero reads 0, never -0 (Decimal keeps the sign of -0.001 → -0.00).
    return rounded.is_signed() and bool(rounded), _localise(f"{abs(rounded):,.{places}f}", style)


_NONZERO = re.compile("[1-9]")
_MINUSES = "-\u2212\u2012\u2013\ufe63\uff0d"


def unsigned_zero(text: str) -> str:
    """``text`` without its minus sign when no digit of it is other than zero ('-0.00' → '0.00',
    '−$0' → '$0'): a figure that rounds to zero is zero, whichever side it came from."""
    if _NONZERO.search(text) is None and any(m in text for m in _MINUSES):
        return text.translate(_DROP_MINUS)
    return text


_DROP_MINUS = {ord(m): None for m in _MINUSES}
_QUANTUM = [Decimal(1).scaleb(-n) for n in range(10)]
_GROUPED = [f",.{n}f" for n in range(10)]  # format specs, built once (formatting is hot)
_POW10 = [10.0 ** n for n in range(10)]


def _localise(text: str, style: _Style) -> str:
    table = style.table
    return text if table is None else text.translate(table)


@dataclass(frozen=True)
class Formatter:
    """Locale-aware formatting of the numbers, money, percents and dates of one workbook.

    Symbols and patterns come from Babel (CLDR); applying them is done here, because Babel's
    per-call pattern parsing dominated report building (236,000 calls for 1,000 people).
    ``tests/test_i18n.py`` checks the results against Babel's own functions, except that a
    value which rounds to zero at the precision shown reads 0 here, never -0 (Babel: '-0.0%').
    """

    locale: str
    currency: str
    style: _Style = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "style", _style(self.locale, self.currency))

    def gettext(self, message: str) -> str:
        return translations(self.locale).gettext(message)

    def number(self, value: float | None, decimals: int = 0) -> str:
        if value is None:
            return "—"
        style = self.style
        if not style.fast:
            pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
            return unsigned_zero(format_decimal(value, format=pattern, locale=self.locale))
        negative, digits = _digits(value, decimals, style)
        return style.minus + digits if negative else digits

    def percent(self, value: float | None, decimals: int = 1) -> str:
        if value is None:
            return "—"
        style = self.style
        if not style.fast:
            pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
            return unsigned_zero(format_percent(value, format=pattern, locale=self.locale))
        if type(value) is float and -1e6 < value < 1e6 and decimals <= 3:
            # value × 100 in floating point is within 3e-8 of the exact decimal product
            # Babel rounds; only a remainder within 0.001 of half a unit (checked in floating
            # point, off by far less) can round differently: those go the Decimal way.
            scaled = value * 100
            if abs(scaled * _POW10[decimals] % 1.0 - 0.5) > 1e-3:
                text = format(scaled, _GROUPED[decimals])
                if text[0] == "-" and _NONZERO.search(text) is not None:
                    return style.minus + _localise(text[1:], style) + style.percent
                if text[0] == "-":
                    text = text[1:]
                return _localise(text, style) + style.percent
        negative, digits = _digits(Decimal(repr(float(value))) * 100, decimals, style)
        return (style.minus if negative else "") + digits + style.percent

    def money(self, value: float | Decimal | None, *, places: int | None = None) -> str:
        """Money with the currency's minor units (or ``places``), e.g. $1,234.50, 10.000 ₫."""
        if value is None:
            return "—"
        style = self.style
        places = style.digits if places is None else places
        if not style.fast:
            return unsigned_zero(format_currency(
                value, self.currency, locale=self.locale,
                format=_whole_pattern(self.locale) if places == 0 else None,
                currency_digits=places != 0))
        negative, digits = _digits(value, places, style)
        side = 1 if negative else 0
        return (style.currency_prefix[side] if not negative else
                style.minus + style.currency_prefix[side]) + digits + style.currency_suffix[side]

    def date(self, value, fmt: str = "medium") -> str:
        return format_date(value, format=fmt, locale=self.locale)

    def month(self, year: int, month: int) -> str:

        # The pattern is in the catalog: Vietnamese reads 'tháng 3/2026', not 'tháng 3 2026'.
        pattern = self.gettext(MONTH_PATTERN)
        return format_date(dt.date(year, month, 1), format=pattern, locale=self.locale)

    def value(self, value: float | None, unit: str, decimals: int | None, *,
              compact: bool = False) -> str:
        """A KPI value in its unit; ``compact`` shortens 100 million and more (10,76 T ₫)."""
        if compact and value is not None and abs(value) >= COMPACT_FROM and unit != "percent":
            # lazy: babel is loaded only where it is used (start-up stays light)
            from babel.numbers import format_compact_currency, format_compact_decimal

            if unit == "currency":
                return unsigned_zero(format_compact_currency(
                    value, self.currency, locale=self.locale, fraction_digits=2))
            return unsigned_zero(format_compact_decimal(value, locale=self.locale,
                                                        fraction_digits=2))
        if unit == "percent":
            return self.percent(value, 1 if decimals is None else min(decimals, 2))
        if unit == "currency":
            return self.money(value, places=0 if decimals is None else decimals)
        if decimals is None:
            decimals = 0 if value is None or abs(value) >= 100 or float(value).is_integer() \
                else 2
        return self.number(value, decimals)


@lru_cache(maxsize=16)
def _whole_pattern(locale: str) -> str:
    """The locale's currency pattern without decimals (e.g. '¤#,##0' or '#,##0 ¤')."""
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    pattern = pattern.split(";")[0]
    return pattern.replace(".00", "").replace(",##0.0", ",##0")
