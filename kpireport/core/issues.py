"""Problems found in a workbook, as values (frictionless style).

An :class:`Issue` is made from the catalogue (:mod:`kpireport.core.catalogue`) by :func:`issue`:
its code gives the severity and the message template, its fields fill the template. The sheet
and cell are the issue's own fields; ``text`` never repeats them, and ``message`` puts them in
front of it the way ``kpireport check`` has always shown it (``People!E3: manager E99 …``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kpireport.core.catalogue import CATALOGUE, CELL, SEVERITIES, CatalogueError, fix_for

__all__ = ["Issue", "IssueLog", "CatalogueError", "issue", "flatten", "fix_for", "SEVERITIES"]


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
