"""kpireport: KPI workbook → scored monthly performance reviews."""

from __future__ import annotations

__version__ = "0.1.0"

from kpireport.api import check, load
from kpireport.errors import (
    DeliveryError,
    InvalidWorkbook,
    KpireportError,
    OutputError,
    TemplateError,
    UnreadableWorkbook,
)
from kpireport.issues import Issue
from kpireport.model import Book
from kpireport.validate import validate
from kpireport.workbook import read_workbook

__all__ = [
    "Book", "DeliveryError", "InvalidWorkbook", "Issue", "KpireportError", "OutputError",
    "TemplateError", "UnreadableWorkbook", "__version__", "check", "load", "read_workbook",
    "validate",
]
