"""Turn raw cell values into typed values, reporting what is wrong with each cell.

Every function takes the raw value and the cell's place and returns the typed value or None;
problems go to the IssueLog with the sheet and A1 address.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from kpireport.issues import IssueLog
from kpireport.model import Month, month_of, parse_month

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile(r"[\r\n\t]")
_NUMBER_TEXT = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][+-]?\d+)?$")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def is_blank(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, str) and not value.strip())


# Numbers kpireport computes with: sums, ratios and money of values in this range stay exact
# enough and finite (a ratio of 1e15 / 1e-9 is 1e24; money is Decimal to 28 digits).
MAX_MAGNITUDE = 1e15
MIN_MAGNITUDE = 1e-9


class CellReader:
    """Typed access to cells of one sheet, logging problems as it goes."""

    def __init__(self, sheet: str, log: IssueLog) -> None:
        self.sheet, self.log = sheet, log

    # text ---------------------------------------------------------------------------------
    def text(self, value: object, cell: str, *, single_line: bool = False) -> str | None:
        if type(value) is str and value.isprintable() and value.strip() == value \
                and value and "\u00a0" not in value:
            return value  # the common case, checked without regular expressions
        if is_blank(value):
            return None
        if isinstance(value, bool):
            text = "TRUE" if value else "FALSE"
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))
        elif isinstance(value, (dt.datetime, dt.date)):
            text = value.isoformat()
        else:
            text = str(value)
        text = text.replace("\u00a0", " ").strip()
        pattern = _LINE_BREAK if single_line else None
        if _CONTROL.search(text) or (pattern is not None and pattern.search(text)):
            what = "a line break or tab" if pattern is not None and pattern.search(text) \
                else "an invisible control character"
            self.log.error("control-character", self.sheet, cell,
                           f"{self.sheet}!{cell}: the text contains {what}; retype the value")
            return None
        return text

    # numbers ------------------------------------------------------------------------------
    def number(self, value: object, cell: str, *, percent_ok: bool = True) -> float | None:
        if type(value) is float and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE and (
                value >= MIN_MAGNITUDE or value <= -MIN_MAGNITUDE or value == 0):
            return value  # finite and in range (NaN fails every comparison)
        if is_blank(value):
            return None
        if isinstance(value, bool):
            self._not_number(cell, value)
            return None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            number = self._number_from_text(value, cell, percent_ok)
            if number is None:
                return None
        else:
            self._not_number(cell, value)
            return None
        if not math.isfinite(number):
            self.log.error("not-finite", self.sheet, cell,
                           f"{self.sheet}!{cell}: {value} is not a finite number")
            return None
        if number != 0 and not MIN_MAGNITUDE <= abs(number) <= MAX_MAGNITUDE:
            self.log.error("out-of-range", self.sheet, cell,
                           f"{self.sheet}!{cell}: {number:g} is outside the range kpireport "
                           f"computes with (0, or {MIN_MAGNITUDE:g} to {MAX_MAGNITUDE:g} in "
                           "magnitude, either sign)")
            return None
        return number

    def _number_from_text(self, value: str, cell: str, percent_ok: bool) -> float | None:
        text = value.replace("\u00a0", "").replace(" ", "").strip()
        percent = text.endswith("%")
        if percent:
            text = text[:-1]
        if text.lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
            self.log.error("not-finite", self.sheet, cell,
                           f"{self.sheet}!{cell}: {value!r} is not a finite number")
            return None
        if not text or not _NUMBER_TEXT.match(text):
            self._not_number(cell, value)
            return None
        number = float(text.replace(",", ""))
        if percent:
            if not percent_ok:
                self._not_number(cell, value)
                return None
            return number / 100
        self.log.warning("number-as-text", self.sheet, cell,
                         f"{self.sheet}!{cell}: the number {value!r} is stored as text; "
                         "it was read as a number")
        return number

    def _not_number(self, cell: str, value: object) -> None:
        self.log.error("not-a-number", self.sheet, cell,
                       f"{self.sheet}!{cell}: {value!r} is not a number")

    def fraction(self, value: object, cell: str, *, limit: float = 1.0,
                 what: str = "percentage") -> float | None:
        """A percent-type value; a plain number above ``limit`` is a whole percent by mistake."""
        number = self.number(value, cell)
        if number is None:
            return None
        written_as_percent = isinstance(value, str) and value.strip().endswith("%")
        if number > limit and not written_as_percent:
            self.log.error("percent-as-whole-number", self.sheet, cell,
                           f"{self.sheet}!{cell}: {what} {_plain(number)} looks like a whole "
                           f"percent; write {_plain(number)}% or {_plain(number / 100)}")
            return None
        if number < 0:
            self.log.error("negative-value", self.sheet, cell,
                           f"{self.sheet}!{cell}: {what} cannot be negative")
            return None
        return number

    def integer(self, value: object, cell: str, low: int, high: int) -> int | None:
        number = self.number(value, cell, percent_ok=False)
        if number is None:
            return None
        if not number.is_integer() or not low <= number <= high:
            self.log.error("out-of-range", self.sheet, cell,
                           f"{self.sheet}!{cell}: {_plain(number)} must be a whole number "
                           f"from {low} to {high}")
            return None
        return int(number)

    # dates --------------------------------------------------------------------------------
    def date(self, value: object, cell: str) -> dt.date | None:
        if is_blank(value):
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()[:10])
            except ValueError:
                pass
        self.log.error("not-a-date", self.sheet, cell,
                       f"{self.sheet}!{cell}: {value!r} is not a date; type a date such as "
                       "2026-03-31")
        return None

    def month(self, value: object, cell: str) -> Month | None:
        if is_blank(value):
            return None
        found = month_from_header(value)
        if found is None:
            self.log.error("bad-period", self.sheet, cell,
                           f"{self.sheet}!{cell}: {value!r} is not a month; write YYYY-MM, "
                           "e.g. 2026-10")
        return found

    # choices and addresses ----------------------------------------------------------------
    def choice(self, value: object, cell: str, choices: tuple[str, ...]) -> str | None:
        text = self.text(value, cell, single_line=True)
        if text is None:
            return None
        key = text.casefold()
        if key not in choices:
            self.log.error("bad-choice", self.sheet, cell,
                           f"{self.sheet}!{cell}: {text!r} is not one of "
                           f"{', '.join(choices)}")
            return None
        return key

    def email(self, value: object, cell: str) -> str | None:
        text = self.text(value, cell, single_line=True)
        if text is None:
            return None
        if not EMAIL.match(text):
            self.log.error("bad-email", self.sheet, cell,
                           f"{self.sheet}!{cell}: {text!r} is not a single valid e-mail address")
            return None
        return text


def month_from_header(value: object) -> Month | None:
    """A month column header: a date cell (any day) or the text YYYY-MM (or YYYY-MM-DD)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return month_of(value.year, value.month)
    if isinstance(value, str):
        text = value.strip()
        found = parse_month(text[:7]) if len(text) in (7, 10) else None
        if found is not None and len(text) == 10:
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                return None
        return found
    return None


def _plain(number: float) -> str:
    return f"{number:g}"

