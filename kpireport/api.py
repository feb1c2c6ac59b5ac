"""The library calls the CLI makes: each is one function with the options it needs."""

from __future__ import annotations

from pathlib import Path

from kpireport.errors import InvalidWorkbook
from kpireport.issues import Issue
from kpireport.model import Book
from kpireport.validate import validate
from kpireport.workbook import read_workbook


def check(path: str | Path) -> tuple[Book | None, list[Issue]]:
    """Read and validate a workbook: the typed book (None if invalid) and every issue."""
    return validate(read_workbook(path))


def load(path: str | Path, *, period: int | None = None) -> tuple[Book, list[Issue]]:
    """Read and validate; raise InvalidWorkbook when there are errors.

    ``period`` (a Month) overrides the workbook's report_period.
    """
    book, issues = check(path)
    if book is None:
        raise InvalidWorkbook(issues)
    if period is not None:
        from dataclasses import replace

        book = replace(book, settings=replace(book.settings, report_period=period))
    return book, issues
