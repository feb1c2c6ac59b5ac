"""Where kpireport's own files are: the package folder and the built-in report templates."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # the kpireport package folder


def builtin_templates() -> Path:
    """The templates shipped in the package (or, in a source checkout, ../templates)."""
    packaged = PACKAGE / "templates"
    return packaged if packaged.is_dir() else PACKAGE.parent / "templates"
