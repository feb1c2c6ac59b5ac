"""kpireport: KPI workbook → scored monthly performance reviews."""

from __future__ import annotations

from kpireport.api import BuildResult, SendResult, build, check, explain, load, send, verify
from kpireport.core.errors import (
    DeliveryError,
    InvalidWorkbook,
    KpireportError,
    NotVerified,
    OutputError,
    TemplateError,
    UnreadableWorkbook,
)
from kpireport.core.issues import Issue
from kpireport.core.model import Book
from kpireport.core.options import BuildOptions, SendOptions
from kpireport.core.version import __version__
from kpireport.read.validate import validate
from kpireport.read.workbook import read_workbook
from kpireport.report.manifest import Manifest, ReportEntry, read_manifest

__all__ = [
    "Book", "BuildOptions", "BuildResult", "DeliveryError", "InvalidWorkbook", "Issue",
    "KpireportError", "Manifest", "OutputError", "ReportEntry", "SendOptions", "SendResult",
    "NotVerified", "TemplateError", "UnreadableWorkbook", "__version__", "build", "check",
    "explain", "load", "read_manifest", "read_workbook", "send", "validate", "verify",
]
