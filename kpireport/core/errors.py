"""Exceptions kpireport raises for operational failures.

Problems in the user's *data* are not exceptions: they are :class:`kpireport.core.issues.Issue`
values collected into a report. Exceptions are for what stops the work as a whole::

    KpireportError                 base; the CLI prints ``str(exc)`` and exits 1
    ├── UnreadableWorkbook         not a workbook, encrypted, hostile or damaged file
    ├── InvalidWorkbook            validation found errors (carries the issues)
    ├── OutputError                an output path cannot be written
    ├── TemplateError              a report template is broken (names template and line)
    ├── DeliveryError              e-mail settings or transport failures
    ├── PasswordStoreError         the PDF password store is damaged or readable by others
    ├── AuditError                 the audit trail of a run folder is broken or unwritable
    ├── SentMonthChanged           build refused: it would change a period already sent
    ├── PasswordsNotHandedOut      send refused: a protected copy's password is not handed out
    ├── NotApproved                send refused: the run is not approved as it is now
    ├── UnknownSubject             explain: the owner or KPI is on no scorecard
    └── NotVerified                verify: the PDF is not intact, not kpireport's, or differs
"""

from __future__ import annotations


class KpireportError(Exception):
    """Base class of every error kpireport reports to the user."""


class UnreadableWorkbook(KpireportError):
    """The file cannot be read as an .xlsx workbook (the message says what it is)."""


class InvalidWorkbook(KpireportError):
    """Validation found errors; ``issues`` lists every one."""

    def __init__(self, issues: list) -> None:  # list[Issue]; avoids an import cycle
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        first = errors[0] if errors else None
        text = f"{len(errors)} error(s) in the workbook"
        if first is not None:
            text += f"; first: {first.message}"
        super().__init__(text + " (run `kpireport check` for the full list)")


class OutputError(KpireportError):
    """An output file or folder cannot be written."""


class TemplateError(KpireportError):
    """A report template is broken."""


class DeliveryError(KpireportError):
    """E-mail cannot be sent at all (bad settings, server unreachable)."""


class PasswordStoreError(KpireportError):
    """The PDF password store cannot be used (damaged, wrong mode); nothing is sent."""


class AuditError(KpireportError):
    """The audit trail (audit.jsonl) is broken or cannot be written; nothing is recorded."""


class NotApproved(KpireportError):
    """``send`` refused: require_approval is on and the run is not approved as it is now."""


class SentMonthChanged(KpireportError):
    """``build`` refused: the period was already sent and this build changes it (reopen it).

    ``period`` is the run's; ``summary`` says in one line what would change and ``changes``
    lists it (inputs with their cells, then outcomes by money moved), from ``diff``; ``facts``
    are the summary's numbers, to say it in another language (``month.diff.summary_in``)."""

    def __init__(self, message: str, *, period: str = "", summary: str = "",
                 changes: tuple[str, ...] = (), facts: dict | None = None) -> None:
        super().__init__(message)
        self.period = period
        self.summary = summary
        self.changes = tuple(changes)
        self.facts = dict(facts or {})


class PasswordsNotHandedOut(KpireportError):
    """``send`` refused: a recipient of a protected copy has a generated PDF password that was
    not handed out yet (``people``: their names)."""

    def __init__(self, message: str, people: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.people = tuple(people)


class UnknownSubject(KpireportError):
    """The owner or KPI asked about is not on any scorecard of the workbook."""


class NotVerified(KpireportError):
    """``verify``: the PDF is not a kpireport statement, not intact, or recomputes differently
    (the message is the first difference in words)."""
