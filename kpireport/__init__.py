"""kpireport: KPI workbook → scored monthly performance reviews."""

from __future__ import annotations

__version__ = "0.1.0"

from kpireport.api import BuildResult, SendResult, build, check, load, send
from kpireport.errors import (
    DeliveryError,
    InvalidWorkbook,
    KpireportError,
    OutputError,
    TemplateError,
    UnreadableWorkbook,
)
from kpireport.issues import Issue
from kpireport.manifest import Manifest, ReportEntry, read_manifest
from kpireport.model import Book
from kpireport.options import BuildOptions, SendOptions
from kpireport.validate import validate
from kpireport.workbook import read_workbook

__all__ = [
    "Book", "BuildOptions", "BuildResult", "DeliveryError", "InvalidWorkbook", "Issue",
    "KpireportError", "Manifest", "OutputError", "ReportEntry", "SendOptions", "SendResult",
    "TemplateError", "UnreadableWorkbook", "__version__", "build", "check", "load",
    "read_manifest", "read_workbook", "send", "validate",
]
