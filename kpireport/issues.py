"""Problems found in a workbook, as values (frictionless style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Issue:
    """One problem: a stable ``code``, where it is and what to do about it."""

    severity: str
    code: str
    sheet: str
    cell: str
    message: str

    @property
    def location(self) -> str:
        if self.sheet and self.cell:
            return f"{self.sheet}!{self.cell}"
        return self.sheet or "workbook"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class IssueLog:
    """Collects issues while reading and validating."""

    def __init__(self) -> None:
        self.items: list[Issue] = []

    def error(self, code: str, sheet: str, cell: str, message: str) -> None:
        self.items.append(Issue("error", code, sheet, cell, message))

    def warning(self, code: str, sheet: str, cell: str, message: str) -> None:
        self.items.append(Issue("warning", code, sheet, cell, message))

    def info(self, code: str, sheet: str, cell: str, message: str) -> None:
        self.items.append(Issue("info", code, sheet, cell, message))

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.items if i.severity == "error"]

    @property
    def valid(self) -> bool:
        return not any(i.severity == "error" for i in self.items)


def flatten(issues: list[Issue], fields: tuple[str, ...] = ("sheet", "cell", "code")) -> list:
    """Issues as a flat table of the given fields, for tests and quick looks."""
    return [tuple(getattr(i, f) for f in fields) for i in issues]
