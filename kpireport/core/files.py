"""Files written whole or not at all, and text that is safe in a spreadsheet.

Every file kpireport writes in place of another (a workbook saved after ``prepare`` or
``import``, the password store, the audit trail's head, a compiled template) is written to a
temporary file beside it and renamed over it: a reader, a crash or a full disk never leaves
half a file. This module is the one place that does it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula


@contextmanager
def replacing(target: Path, *, mode: int | None = None, suffix: str = ".tmp"
              ) -> Iterator[Path]:
    """A temporary path beside ``target``: write it in the body; it replaces ``target`` when
    the body ends without an error, and is removed otherwise. ``mode`` sets its permissions
    before anything is written (e.g. 0o600 for secrets); ``suffix`` is the temporary file's
    ending (a workbook checked before it replaces the original must end in .xlsx). Raises
    ``OSError``; the caller says what could not be written."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    temporary = Path(name)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        os.close(fd)
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(target: Path, data: bytes, *, mode: int | None = None,
                     sync: bool = False) -> None:
    """``data`` as the whole of ``target`` (see :func:`replacing`); ``sync`` waits until it is
    on disk before the rename (for records that must survive a power cut)."""
    with replacing(target, mode=mode) as temporary, open(temporary, "wb") as out:
        out.write(data)
        if sync:
            out.flush()
            os.fsync(out.fileno())


def safe_text(value: object) -> object:
    """Text that a spreadsheet would run as a formula, made plain with a leading quote
    (CSV/formula injection); anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
