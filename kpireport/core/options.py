"""The options of each library call, as one frozen object with its defaults.

``BuildOptions`` and ``SendOptions`` are what :func:`kpireport.api.build` and
:func:`kpireport.api.send` take; the CLI maps its flags onto them and the web app fills them from
forms. ``of(**keys)`` builds one from keywords and refuses a key it does not know, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kpireport.core.errors import KpireportError

FORMATS = ("html", "pdf")


def parse_formats(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"html,pdf"`` (or a sequence of names) as the formats of a build, in the order given,
    each once; an unknown or missing format is refused, naming it."""
    items = value.split(",") if isinstance(value, str) else list(value)
    formats = tuple(dict.fromkeys(str(v).strip().lower() for v in items if str(v).strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise KpireportError(f"unknown format {unknown[0] if unknown else ''!r}; use html, "
                             "pdf or html,pdf")
    return formats


class _Options:
    @classmethod
    def of(cls, **keys: Any):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(keys) - known)
        if unknown:
            raise KpireportError(f"unknown {cls.__name__} option {unknown[0]!r}; known: "
                                 + ", ".join(sorted(known)))
        return cls(**keys)


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


@dataclass(frozen=True)
class BuildOptions(_Options):
    """What ``build`` makes, and where.

    ``period`` (a Month) overrides Settings ``report_period``; ``dask`` is a scheduler address
    to render on; ``report_timeout`` is seconds per report in a local process (None: no limit).
    ``reopen_by`` and ``reopen_note`` rebuild a period that was already sent (kpireport.month.cycle:
    who reopens it and why; both or neither).
    """

    out: Path = Path("reports")
    period: int | None = None
    formats: tuple[str, ...] = FORMATS
    templates: Path | None = None
    workers: int | None = None
    dask: str | None = None
    archive: bool = False
    report_timeout: float | None = 60.0
    reopen_by: str | None = None
    reopen_note: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "templates", _path(self.templates))
        object.__setattr__(self, "formats", parse_formats(self.formats))
        if self.workers is not None and not 1 <= self.workers <= 256:
            raise KpireportError(f"workers must be 1 to 256, not {self.workers}")


@dataclass(frozen=True)
class SendOptions(_Options):
    """How ``send`` delivers a run folder.

    ``sender`` is the From address. ``book`` is the workbook (default: the one the manifest
    names, looked for beside the run). ``dry_run`` writes every message to ``outbox`` instead.
    ``resend`` sends again what the ledger says was sent. ``retries`` and ``backoff`` are the
    attempts of a temporarily failing message and the first wait between them, in seconds.
    ``test_to`` sends every message to that one address, marked as a test, needing no
    approval and never counted as sent; ``only`` keeps the reports of one employee id,
    department or COMPANY (kpireport.month.cycle). A test of protected reports encrypts every
    copy with ``test_password`` (default: a new one, returned in the result) so the tester can
    open them. ``require_handed_out`` refuses a send while someone would get a protected copy
    whose generated password was not handed out yet (the web app sets it).
    """

    sender: str | None = None
    book: Path | None = None
    templates: Path | None = None
    dry_run: bool = False
    outbox: Path | None = None
    resend: bool = False
    retries: int = 3
    backoff: float = 1.0
    test_to: str | None = None
    only: str | None = None
    test_password: str | None = field(default=None, repr=False)
    require_handed_out: bool = False

    def __post_init__(self) -> None:
        for name in ("book", "templates", "outbox"):
            object.__setattr__(self, name, _path(getattr(self, name)))
        if self.dry_run and self.outbox is None:
            raise KpireportError("a dry run needs an outbox folder (--outbox DIR)")
        if not self.sender:
            raise KpireportError("no sender: set KPIREPORT_SMTP_FROM or --from")
