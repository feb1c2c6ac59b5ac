"""Who each report goes to: SPEC §1 Recipients, the tokens, and the record a build keeps."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kpireport.core.errors import DeliveryError
from kpireport.core.model import Book, Person, month_label
from kpireport.read.cells import EMAIL
from kpireport.read.validate import split_addresses
from kpireport.report.manifest import ReportEntry
from kpireport.score.results import employment

RECIPIENTS_FILE = "recipients.json"
_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")


# ---------------------------------------------------------------------------- recipients
@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for address in self.to + self.cc + self.bcc:
            seen.setdefault(address.lower(), None)
        return tuple(seen)


class RecipientResolver:
    """SPEC §1 Recipients: rules from the sheet (or the defaults) and the tokens."""

    def __init__(self, book: Book, period: int | None = None) -> None:

        self.book = book
        # People not employed in the report month (left, not started) receive nothing.
        self.gone = {p.employee_id for p in book.people
                     if period is not None and employment(p, period) != "employed"}
        self.people = {p.employee_id: p for p in book.people if p.employee_id not in self.gone}

    def heads(self, department: str | None) -> list[Person]:
        """People of the department whose manager is blank, outside it or gone (None: the
        company)."""
        found = []
        for person in self.people.values():
            if department is not None and person.department != department:
                continue
            manager = self.people.get(person.manager_id or "")
            if manager is None or (department is not None and manager.department != department):
                found.append(person)
        return found

    def rules(self, report: str, scope: str, department: str | None) -> list:
        """The sheet's rules for this report; SPEC §1's defaults when the sheet is missing,
        has no data rows (the template writes only the header), or no row for this kind."""
        rows = [r for r in self.book.recipients or () if r.report == report]
        if not rows:
            defaults = {"employee": ("{employee}", "{manager}"), "department": ("{head}", ""),
                        "company": ("{head}", "")}
            to, cc = defaults[report]
            return [(to, cc, "")]
        for wanted in (scope, department, "*"):
            chosen = [(r.to, r.cc, r.bcc) for r in rows if wanted is not None and r.scope == wanted]
            if chosen:
                return chosen
        return []

    def resolve(self, report: str, scope: str) -> Recipients:
        person = self.people.get(scope) if report == "employee" else None
        department = person.department if person else scope if report == "department" else None
        lists: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
        problems: list[str] = []
        for rule in self.rules(report, scope, department):
            for kind, text in zip(("to", "cc", "bcc"), rule):
                for entry in split_addresses(text):
                    lists[kind] += self._expand(entry, report, person, department, problems)
        to = unique(lists["to"])
        cc = [a for a in unique(lists["cc"]) if a not in to]
        bcc = [a for a in unique(lists["bcc"]) if a not in to and a not in cc]
        if not to and (cc or bcc):
            to, cc = cc[:1], cc[1:]
        return Recipients(tuple(to), tuple(cc), tuple(bcc), tuple(problems))

    def _expand(self, entry: str, report: str, person: Person | None, department: str | None,
                problems: list[str]) -> list[str]:
        token = entry.lower()
        if token == "{employee}":
            if person is None:
                return []
            return self._email(person, problems)
        if token == "{manager}":
            if person is not None and person.manager_id in self.gone:
                problems.append(f"{person.name}'s manager {person.manager_id} is no longer "
                                "employed; not sent to them")
                return []
            manager = self.people.get(person.manager_id or "") if person else None
            return self._email(manager, problems) if manager else []
        if token == "{head}":
            scope = None if report == "company" else department
            return [a for head in self.heads(scope) for a in self._email(head, problems)]
        return [validate_address(entry)]

    @staticmethod
    def _email(person: Person, problems: list[str]) -> list[str]:
        if not person.email:
            problems.append(f"{person.name} ({person.employee_id}) has no e-mail address")
            return []
        return [validate_address(person.email)]


def validate_address(text: str) -> str:
    """Exactly one plain address; anything ambiguous (display names, lists, CR/LF) is refused."""
    if not isinstance(text, str) or _LINE_BREAKS.search(text) or not EMAIL.match(text.strip()):
        raise DeliveryError(f"{text!r} is not a single valid e-mail address")
    return text.strip()


def unique(items: list[str]) -> list[str]:
    """The addresses (or names) once each, ignoring case, in their first spelling."""
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return list(seen.values())


def clean_header(text: str) -> str:
    """Header text with every line break and control character replaced by a space."""
    return " ".join(_LINE_BREAKS.sub(" ", text).split())


def recipients_record(book: Book, period: int, reports: tuple[ReportEntry, ...]) -> bytes:
    """RECIPIENTS_FILE of a build: every PDF report with the recipients resolved now.

    ``send`` mails these addresses, so a workbook edited after the build (a new manager, a
    changed Recipients sheet) cannot redirect reports that were built (and approved) for
    others. ``period`` is the report month; ``reports`` the manifest's entries of the build.
    """

    resolver = RecipientResolver(book, period)
    records = []
    for report in reports:
        if report.kind == "index" or report.pdf is None:
            continue
        try:
            r = resolver.resolve(report.kind, report.scope)
        except DeliveryError as exc:  # validation refuses bad addresses; kept as a problem
            r = Recipients((), problems=(str(exc),))
        records.append({"kind": report.kind, "scope": report.scope, "file": report.stem,
                        "name": report.name, "to": list(r.to), "cc": list(r.cc),
                        "bcc": list(r.bcc), "problems": list(r.problems)})
    record = {"schema": "kpireport/recipients@1", "period": month_label(period),
              "source": {"file": book.source_file, "sha256": book.source_sha256},
              "reports": records}
    # lazy: orjson is loaded only where it is used (start-up stays light)
    import orjson

    return orjson.dumps(record, option=orjson.OPT_INDENT_2)
