"""Problems found in a workbook, as values (frictionless style).

An :class:`Issue` is made from the catalogue (:mod:`kpireport.core.catalogue`) by :func:`issue`:
its code gives the severity and the message template, its fields fill the template. The sheet
and cell are the issue's own fields; ``text`` never repeats them, and ``message`` puts them in
front of it the way ``kpireport check`` has always shown it (``People!E3: manager E99 …``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from kpireport.core.catalogue import CATALOGUE, CELL, SEVERITIES, CatalogueError, fix_for

__all__ = ["Issue", "IssueLog", "CatalogueError", "issue", "flatten", "fix_for", "SEVERITIES",
           "text_in", "fix_in", "title_in", "in_table", "Gettext"]

Gettext = Callable[[str], str]


def N_(message: str) -> str:
    """Mark a phrase for the catalogs (it is translated in :func:`text_in`)."""
    return message


# Parts of messages the checks compose in code (a hint after the value, why a password or a
# report period is unusable). Made from these templates, they are translated with the message.
HINT_NEAR = N_("; did you mean {names}?")
HINT_ALONE = N_("; type the address alone: {address}")
HINT_ONE = N_("; type one address per cell")
PASSWORD_SHORT = N_("is shorter than {n} characters")
PASSWORD_CONTROL = N_("contains a control character (a line break, tab or invisible character)")
PASSWORD_TEXT = N_("must be text")
PERIOD_NOBODY = N_("{month}: nobody has an actual in that month; {where}")
PERIOD_LATEST = N_("the latest month with actuals is {month}")
PERIOD_NONE = N_("there are no actuals at all")
PHRASES = (HINT_NEAR, HINT_ALONE, HINT_ONE, PASSWORD_SHORT, PASSWORD_CONTROL, PASSWORD_TEXT,
           PERIOD_NOBODY, PERIOD_LATEST, PERIOD_NONE)
# single words a check puts in a message: what a reference is, a KPI's direction
WORDS = frozenset({N_("goal"), N_("manager"), N_("higher"), N_("lower")})
# the joiners of the lists a check puts in a message: the names a hint offers ("A or B") and
# the bounds a percent slip names ("threshold and stretch")
OR, AND = N_(" or "), N_(" and ")
JOINED = {"names": OR, "bounds": AND}


@dataclass(frozen=True)
class Issue:
    """One problem: a stable ``code``, where it is, and the message filled from ``fields``."""

    severity: str
    code: str
    sheet: str
    cell: str
    text: str  # the message without its place
    where: str = ""  # the place the message begins with ("People!E3", "Settings", "")
    form: str = ""  # which of the code's message templates
    # the values the message was filled from (a plain dict, so that issues pickle)
    fields: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def message(self) -> str:
        return f"{self.where}: {self.text}" if self.where else self.text

    @property
    def location(self) -> str:
        if self.sheet and self.cell:
            return f"{self.sheet}!{self.cell}"
        return self.sheet or "workbook"

    @property
    def fix(self) -> str:
        return fix_for(self.code)

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "sheet": self.sheet,
                "cell": self.cell, "message": self.message}


def issue(code: str, sheet: str = "", cell: str = "", *, form: str = "",
          **fields: object) -> Issue:
    """The issue ``code`` at ``sheet``/``cell``, its message filled from ``fields``.

    Raises :class:`CatalogueError` for a code or form the catalogue lacks, and for a field the
    template needs but was not given, or was given but is not used.
    """
    entry = CATALOGUE.get(code)
    if entry is None:
        raise CatalogueError(f"issue code {code!r} is not in the catalogue")
    template = entry.forms.get(form)
    if template is None:
        raise CatalogueError(f"issue {code!r} has no message form {form!r} "
                             f"(forms: {', '.join(map(repr, entry.forms))})")
    names = template.fields
    given = set(fields)
    if given != names:
        missing, extra = sorted(names - given), sorted(given - names)
        raise CatalogueError(f"issue {code!r} (form {form!r}): "
                             + "; ".join(part for part in (
                                 f"missing field(s) {', '.join(missing)}" if missing else "",
                                 f"unknown field(s) {', '.join(extra)}" if extra else "")
                                 if part))
    where = template.where
    if where == CELL and not cell:
        where = "{sheet}"
    return Issue(entry.severity, code, sheet, cell, template.text.format(**fields),
                 where.format(sheet=sheet, cell=cell, **fields), form, fields)


def text_in(item: Issue, gettext: Gettext) -> str:
    """The issue's message (without its place) in the language of ``gettext``: the
    catalogue's template translated, filled with the issue's fields (their composed phrases
    translated too). An issue whose fields were not kept (read back from a file) keeps its
    text."""
    entry = CATALOGUE.get(item.code)
    form = entry.forms.get(item.form) if entry is not None else None
    if form is None or not form.fields <= set(item.fields):
        return item.text
    fields = {name: _phrase(value, gettext, name) if isinstance(value, str) else value
              for name, value in item.fields.items()}
    return gettext(form.text).format(**fields)


def in_table(item: Issue, text: str | None = None) -> str:
    """The message (``text``, by default the issue's own) for a table whose columns already
    show the issue's sheet and cell: without that place. A place of its own (a merged range)
    stays in front."""
    text = item.text if text is None else text
    if item.where and item.where not in (item.location, item.sheet):
        return f"{item.where}: {text}"
    return text


def fix_in(code: str, gettext: Gettext) -> str:
    """What to do about an issue of ``code``, in the language of ``gettext``."""
    return gettext(fix_for(code))


def title_in(code: str, gettext: Gettext) -> str:
    """The short title of ``code`` in the language of ``gettext`` (the code when unknown)."""
    entry = CATALOGUE.get(code)
    return gettext(entry.title) if entry is not None else code


def _phrase(value: str, gettext: Gettext, name: str = "") -> str:
    if value in WORDS:
        return gettext(value)
    if name in JOINED:  # a list the check joined: its items as they are, the joiner translated
        return gettext(JOINED[name]).join(value.split(JOINED[name]))
    for template, pattern in _patterns():
        match = pattern.fullmatch(value)
        if match is not None:
            parts = {k: _phrase(v, gettext, k) for k, v in match.groupdict().items()}
            return gettext(template).format(**parts)
    return value


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each phrase template as a pattern that reads its fields back from a composed phrase."""
    compiled = []
    for template in PHRASES:
        pattern = "".join(re.escape(literal) + (f"(?P<{name}>.+?)" if name else "")
                          for literal, name, _, _ in string.Formatter().parse(template))
        compiled.append((template, re.compile(pattern, re.S)))
    return tuple(compiled)


class IssueLog:
    """Collects issues while reading and validating."""

    def __init__(self) -> None:
        self.items: list[Issue] = []

    def add(self, code: str, sheet: str = "", cell: str = "", *, form: str = "",
            **fields: object) -> None:
        """Record the catalogue's issue ``code`` (see :func:`issue`)."""
        self.items.append(issue(code, sheet, cell, form=form, **fields))

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.items if i.severity == "error"]

    @property
    def valid(self) -> bool:
        return not any(i.severity == "error" for i in self.items)


def flatten(issues: list[Issue], fields: tuple[str, ...] = ("sheet", "cell", "code")) -> list:
    """Issues as a flat table of the given fields, for tests and quick looks."""
    return [tuple(getattr(i, f) for f in fields) for i in issues]
