"""Turn raw cell values into typed values, reporting what is wrong with each cell.

Every function takes the raw value and the cell's place and returns the typed value or None;
problems go to the IssueLog with the sheet and A1 address.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import unicodedata

from kpireport.core.issues import HINT_ALONE, HINT_NEAR, HINT_ONE, OR, IssueLog
from kpireport.core.model import Month, month_of, parse_month

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
            form = "line-break" if pattern is not None and pattern.search(text) else "control"
            self.log.add("control-character", self.sheet, cell, form=form)
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
            self.log.add("not-finite", self.sheet, cell, form="number", value=value)
            return None
        if number != 0 and not MIN_MAGNITUDE <= abs(number) <= MAX_MAGNITUDE:
            self.log.add("out-of-range", self.sheet, cell, form="magnitude", value=number,
                         low=MIN_MAGNITUDE, high=MAX_MAGNITUDE)
            return None
        return number

    def _number_from_text(self, value: str, cell: str, percent_ok: bool) -> float | None:
        text = value.replace("\u00a0", "").replace(" ", "").strip()
        percent = text.endswith("%")
        if percent:
            text = text[:-1]
        if text.lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
            self.log.add("not-finite", self.sheet, cell, form="text", value=value)
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
        self.log.add("number-as-text", self.sheet, cell, value=value)
        return number

    def _not_number(self, cell: str, value: object) -> None:
        self.log.add("not-a-number", self.sheet, cell, value=value)

    def fraction(self, value: object, cell: str, *, limit: float = 1.0,
                 what: str = "percentage") -> float | None:
        """A percent-type value; a plain number above ``limit`` is a whole percent by mistake."""
        number = self.number(value, cell)
        if number is None:
            return None
        written_as_percent = isinstance(value, str) and value.strip().endswith("%")
        if number > limit and not written_as_percent:
            self.log.add("percent-as-whole-number", self.sheet, cell, form="cell", what=what,
                         value=number, fraction=number / 100)
            return None
        if number < 0:
            self.log.add("negative-value", self.sheet, cell, what=what)
            return None
        return number

    def integer(self, value: object, cell: str, low: int, high: int) -> int | None:
        number = self.number(value, cell, percent_ok=False)
        if number is None:
            return None
        if not number.is_integer() or not low <= number <= high:
            self.log.add("out-of-range", self.sheet, cell, form="integer", value=number,
                         low=low, high=high)
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
        self.log.add("not-a-date", self.sheet, cell, value=value)
        return None

    def month(self, value: object, cell: str) -> Month | None:
        if is_blank(value):
            return None
        found = month_from_header(value)
        if found is None:
            self.log.add("bad-period", self.sheet, cell, form="cell", value=value)
        return found

    # choices and addresses ----------------------------------------------------------------
    def choice(self, value: object, cell: str, choices: tuple[str, ...]) -> str | None:
        text = self.text(value, cell, single_line=True)
        if text is None:
            return None
        key = text.casefold()
        if key not in choices:
            self.log.add("bad-choice", self.sheet, cell, value=text, choices=", ".join(choices),
                         hint=did_you_mean(text, choices))
            return None
        return key

    def email(self, value: object, cell: str) -> str | None:
        text = self.text(value, cell, single_line=True)
        if text is None:
            return None
        if not EMAIL.match(text):
            self.log.add("bad-email", self.sheet, cell, form="address", value=text,
                         hint=address_hint(text))
            return None
        return text


def closest(text: str, candidates) -> list[str]:
    """The candidates (at most two, equally close) that a mistyped ``text`` most resembles."""

    key = text.strip().casefold()
    names = {str(c).casefold(): str(c) for c in candidates}
    same = [names[n] for n in names if n != key and _unpadded(n) == _unpadded(key)]
    if same:  # E02 for E002: the same letters and numbers, padded differently
        return sorted(same)[:2]
    # get_close_matches filters with the cheap upper bounds first (many ids stay fast)
    near = difflib.get_close_matches(key, [n for n in names if n != key], n=3, cutoff=0.7)
    scored = [(difflib.SequenceMatcher(None, key, name).ratio(), name) for name in near]
    best = [name for ratio, name in scored if ratio == scored[0][0]] if scored else []
    return sorted(names[n] for n in best[:2])


def _unpadded(key: str) -> str:
    return re.sub(r"0+(?=\d)", "", key.replace(" ", "").replace("_", "").replace("-", ""))


def did_you_mean(text: str, candidates, *, what: str = "") -> str:
    """'; did you mean SALES?' when a candidate is close to a mistyped ``text``."""
    best = closest(text, candidates)
    return HINT_NEAR.format(names=what + OR.join(best)) if best else ""


def address_hint(text: str) -> str:
    """Advice for an address typed with a display name (``Alice <alice@x.com>``)."""
    # lazy: email is loaded only where it is used (start-up stays light)
    from email.utils import getaddresses

    found = getaddresses([text])
    if len(found) == 1 and found[0][0] and EMAIL.match(found[0][1] or ""):
        return HINT_ALONE.format(address=found[0][1])
    if len(found) > 1:
        return HINT_ONE
    return ""


def month_from_header(value: object) -> Month | None:
    """A month column header: a date cell (any day), the text YYYY-MM (or YYYY-MM-DD), or a
    text that plainly names one month: ``2026-3``, ``03/2026``, ``3.2026``, ``2026/03``,
    ``Mar 2026``, ``March-2026``, ``Tháng 3/2026``, ``tháng 03 năm 2026``, ``T3/2026``."""
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
        return found if found is not None else _named_month(text)
    return None


_MONTH_NAMES = {name: number for number, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1)
    for name in names}
_SEP = r"\s*[-/.\s]\s*"
_YEAR_FIRST = re.compile(rf"^(\d{{4}}){_SEP}(\d{{1,2}})$")
_MONTH_FIRST = re.compile(rf"^(?:tháng|thang|thg|t)?\.?\s*(\d{{1,2}}){_SEP}(?:năm\s*|nam\s*)?"
                          rf"(\d{{4}})$")
_NAME_SHORT_YEAR = re.compile(r"^([a-z]+)\.?(?:\s*-\s*|\s*'|\s+')(\d{2})$")  # Excel's mmm-yy
_NAME_FIRST = re.compile(rf"^([a-z]+)\.?(?:{_SEP}|\s*)(\d{{4}})$")
_YEAR_NAME = re.compile(rf"^(\d{{4}}){_SEP}([a-z]+)\.?$")
_PERIOD_LIKE = re.compile(r"(^|\D)(19|20)\d{2}(\D|$)")


def _named_month(text: str) -> Month | None:
    """The month a header names in one of the unambiguous spellings people type."""

    key = " ".join(unicodedata.normalize("NFC", text).casefold().split())
    for pattern, year_at, month_at in ((_YEAR_FIRST, 1, 2), (_MONTH_FIRST, 2, 1),
                                       (_NAME_FIRST, 2, 1), (_YEAR_NAME, 1, 2),
                                       (_NAME_SHORT_YEAR, 2, 1)):
        match = pattern.match(key)
        if match is None:
            continue
        year, month = match.group(year_at), match.group(month_at)
        if len(year) == 2:
            year = f"20{year}"
        number = int(month) if month.isdigit() else _MONTH_NAMES.get(month)
        if number is not None and 1 <= number <= 12 and 1900 <= int(year) <= 2200:
            return month_of(int(year), number)
    return None


def looks_like_period(value: object) -> bool:
    """A header that is meant as a month or date (it has a year in it) but names no single
    month: ``01/03/2026``, ``Q1 2026``, ``2026-13``, a number (``2026.03``), a month without
    its year (``Mar``). Such a column must not be ignored."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True  # 2026.03, 202603, 3: a number is never a column name
    if not isinstance(value, str) or month_from_header(value) is not None:
        return False
    text = " ".join(value.casefold().split())
    if _MONTH_ALONE.match(text) or _NAME_NUMBER.match(text):
        return True  # "Mar", "Tháng 3", "Mar 26": a month without a year one can be sure of
    return len(text) <= 24 and not text.isdigit() and bool(_PERIOD_LIKE.search(text)) \
        and not any(ch.isalpha() for ch in _MONTH_WORDS.sub("", text))


_MONTH_ALONE = re.compile(r"^(?:(?:tháng|thang)\s*\d{1,2}|(?:" + "|".join(_MONTH_NAMES) + r")\.?)$")
_NAME_NUMBER = re.compile(r"^(?:" + "|".join(_MONTH_NAMES) + r")\.?\s*[-/.\s]?\s*\d{1,2}$")
_MONTH_WORDS = re.compile(r"tháng|thang|năm|nam|quý|quy|q|t|" + "|".join(
    sorted(_MONTH_NAMES, key=len, reverse=True)))

