"""Every issue code kpireport reports, in one table (frictionless style).

The table is ``catalogue.toml`` beside this module (its header says what each key means):
for each stable kebab-case ``code`` a ``severity``, a short ``title``, the ``fix`` (what to do,
as the annotated workbook's notes say it) and one or more message templates with named fields,
filled by :func:`kpireport.core.issues.issue`. A code with several templates names them (``form``):
``duplicate-id`` says "employee_id … is used twice" or "band … is listed twice".

A template never names the issue's own place: the sheet and cell are the issue's fields, and
the message shown begins with them (``People!E3: manager E99 is not …``) as ``where`` says:
:data:`CELL` (``Sheet!A1``), :data:`SHEET` (``Sheet``), :data:`NOWHERE` (nothing), or a template
of its own over the fields (``merged-cells`` names the whole range).

Titles, fixes and message templates are written in English here and translated by the
project's catalogs (``kpireport/locale``): :func:`extract` hands them to Babel's extraction, and
:func:`kpireport.core.issues.text_in` fills a template in the language of a workbook. The table
in docs/issue-codes.md is tested against this one (tests/test_catalogue.py).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

TABLE = Path(__file__).with_name("catalogue.toml")
SEVERITIES = ("error", "warning", "info")
STAGES = ("read", "check", "build")  # when it is found: reading the file, check, build
CELL, SHEET, NOWHERE = "{sheet}!{cell}", "{sheet}", ""
PLACE_FIELDS = frozenset({"sheet", "cell"})
_WHERE = {"cell": CELL, "sheet": SHEET, "none": NOWHERE}
_KEYS = {"severity", "stage", "title", "fix", "where", "message", "messages", "where-of"}
UNKNOWN_FIX = "See the table of issue codes in the documentation (docs/issue-codes.md)."


class CatalogueError(LookupError):
    """An issue was made with a code, form or fields the catalogue does not have, or the
    table itself is malformed. A programming error, never the user's: the tests make every
    form at least once."""


def _names(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


@dataclass(frozen=True)
class Form:
    """One message template and where its message says the issue is."""

    text: str
    where: str = CELL

    @cached_property
    def fields(self) -> frozenset[str]:
        """The named fields the message needs (not the issue's sheet and cell)."""
        return (_names(self.text) | _names(self.where)) - PLACE_FIELDS


@dataclass(frozen=True)
class Entry:
    code: str
    severity: str
    title: str
    fix: str
    forms: Mapping[str, Form]
    stage: str = "check"


def _entry(code: str, row: dict) -> Entry:
    unknown = set(row) - _KEYS
    if unknown or not {"severity", "title", "fix"} <= set(row) \
            or row["severity"] not in SEVERITIES or row.get("stage", "check") not in STAGES:
        raise CatalogueError(f"{TABLE.name} [{code}]: {row}")
    texts = dict(row.get("messages", {}))
    if "message" in row:
        texts = {"": row["message"], **texts}
    where_of = row.get("where-of", {})
    if set(where_of) - set(texts):
        raise CatalogueError(f"{TABLE.name} [{code}]: where-of names no message")

    def where(form: str) -> str:
        value = where_of.get(form, row.get("where", "cell"))
        return _WHERE.get(value, value)

    forms = {name: Form(text, where(name)) for name, text in texts.items()}
    return Entry(code, row["severity"], row["title"], row["fix"], MappingProxyType(forms),
                 row.get("stage", "check"))


def load(path: Path = TABLE) -> tuple[Entry, ...]:
    """The catalogue's entries, in the order of the table."""
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return tuple(_entry(code, row) for code, row in table.items())


ENTRIES: tuple[Entry, ...] = load()
CATALOGUE: Mapping[str, Entry] = MappingProxyType({e.code: e for e in ENTRIES})


def extract(fileobj, keywords, comment_tags, options):
    """Babel extraction of the table's titles, fixes and templates (``babel.cfg`` names it):
    (line, funcname, message, comments) for each, so the catalogs translate them."""
    table = tomllib.loads(fileobj.read().decode("utf-8"))
    for code, row in table.items():
        texts = [row.get("title"), row.get("fix"), row.get("message"),
                 *dict(row.get("messages", {})).values()]
        for text in texts:
            if text:
                yield 0, None, text, [f"issue code {code}"]
    yield 0, None, UNKNOWN_FIX, []


def fix_for(code: str) -> str:
    """What to do about an issue of ``code`` (for a code not here, a pointer to the
    documentation's table)."""
    entry = CATALOGUE.get(code)
    return entry.fix if entry is not None else UNKNOWN_FIX
