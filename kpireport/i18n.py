"""Translations and locale formatting.

Catalogs are gettext ``.po`` files in ``kpireport/locale/<lang>/LC_MESSAGES/kpireport.po``;
Babel compiles them in memory on first use, so no binary ``.mo`` file is committed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kpireport"
COMPACT_FROM = 100_000_000


@lru_cache(maxsize=16)
def translations(locale: str) -> NullTranslations:
    """Compiled translations for ``locale`` (falls back to the language, then English)."""
    from babel.messages.mofile import write_mo
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
class Formatter:
    """Locale-aware formatting of the numbers, money, percents and dates of one workbook."""

    locale: str
    currency: str

    def gettext(self, message: str) -> str:
        return translations(self.locale).gettext(message)

    def number(self, value: float | None, decimals: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, value: float | None, decimals: int = 1) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
        return format_percent(value, format=pattern, locale=self.locale)

    def money(self, value: float | Decimal | None, *, whole: bool = False) -> str:
        if value is None:
            return "—"
        if whole:
            return format_currency(value, self.currency, locale=self.locale,
                                   format_type="standard", currency_digits=False,
                                   decimal_quantization=True,
                                   format=_whole_pattern(self.locale))
        return format_currency(value, self.currency, locale=self.locale)

    def date(self, value, fmt: str = "medium") -> str:
        return format_date(value, format=fmt, locale=self.locale)

    def month(self, year: int, month: int) -> str:
        import datetime as dt

        return format_date(dt.date(year, month, 1), format="MMMM y", locale=self.locale)

    def value(self, value: float | None, unit: str, decimals: int | None, *,
              compact: bool = False) -> str:
        """A KPI value in its unit; ``compact`` shortens 100 million and more (10,76 T ₫)."""
        if compact and value is not None and abs(value) >= COMPACT_FROM and unit != "percent":
            from babel.numbers import format_compact_currency, format_compact_decimal

            if unit == "currency":
                return format_compact_currency(value, self.currency, locale=self.locale,
                                               fraction_digits=2)
            return format_compact_decimal(value, locale=self.locale, fraction_digits=2)
        if unit == "percent":
            return self.percent(value, 1 if decimals is None else min(decimals, 2))
        if unit == "currency":
            places = 0 if decimals is None else decimals
            if value is None:
                return "—"
            return format_currency(value, self.currency, locale=self.locale,
                                   format=_whole_pattern(self.locale) if places == 0 else None,
                                   currency_digits=places != 0)
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
