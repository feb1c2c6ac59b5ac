"""E-mail delivery, exactly once: the send ledger and ``send_messages``.

The stages before it have their own modules: :mod:`kpireport.deliver.recipients` (who gets
each report), :mod:`kpireport.deliver.messages` (``plan_messages`` turns a build's manifest into
messages, one per report and recipient set) and :mod:`kpireport.deliver.transport` (SMTP, in
memory).
``send_messages`` delivers them through a transport, recording every recipient in a SQLite
ledger in the run folder: "sending" before the SMTP transaction, "sent" or "failed" after.
A re-run skips what was sent, retries what failed, and reports what is unknown (a run killed
mid-send) instead of sending it twice.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.core.errors import DeliveryError

# The stages before the ledger live in their own modules; their names stay importable from
# here, where the CLI, the benchmarks and older scripts have always found them.
from kpireport.deliver.messages import (  # noqa: F401
    Outgoing,
    Plan,
    ascii_name,
    attachment_name,
    built_file,
    plan_messages,
    recorded_recipients,
    write_outbox,
)
from kpireport.deliver.recipients import (  # noqa: F401
    RECIPIENTS_FILE,
    RecipientResolver,
    Recipients,
    clean_header,
    recipients_record,
    validate_address,
)
from kpireport.deliver.transport import (  # noqa: F401
    MemoryTransport,
    PermanentFailure,
    SmtpSettings,
    SmtpTransport,
    TemporaryFailure,
    Transport,
    backoff_from_env,
)
from kpireport.report.outputs import LEDGER  # noqa: E402,F401 (the run folder's file names live there)


# ---------------------------------------------------------------------------- ledger
class Ledger:
    """Per (report, recipient, content hash): sending → sent / failed.

    Opening it checks that the run folder can be written and that no other program holds
    the database locked, so both are one clear line before anything is sent.
    """

    def __init__(self, path: Path, *, timeout: float = 3.0,
                 clock: Callable[[], dt.datetime] | None = None) -> None:

        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.path = Path(path)
        try:
            tempfile.TemporaryFile(dir=self.path.parent).close()
        except OSError as exc:
            raise DeliveryError(f"cannot send from {self.path.parent}: {exc.strerror or exc} "
                                "(the send ledger is kept in the run folder)") from None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=timeout)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("""CREATE TABLE IF NOT EXISTS sends (
                report TEXT NOT NULL, recipient TEXT NOT NULL, content_hash TEXT NOT NULL,
                state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL,
                PRIMARY KEY (report, recipient, content_hash))""")
            self.db.execute("BEGIN IMMEDIATE")  # can we write? (a lock held elsewhere: no)
            self.db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> DeliveryError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return DeliveryError(f"the send ledger {self.path} is locked by another program; "
                                 "close it and send again")
        return DeliveryError(f"cannot use the send ledger {self.path}: {text}")

    def state(self, item: Outgoing, recipient: str) -> str | None:
        try:
            row = self.db.execute(
                "SELECT state FROM sends WHERE report=? AND recipient=? AND content_hash=?",
                (item.report, recipient.lower(), item.content_hash)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return row[0] if row else None

    def mark(self, item: Outgoing, recipients: list[str], state: str, detail: str = "") -> None:
        now = self.clock().isoformat(timespec="seconds")
        try:
            with self.db:
                self.db.executemany(
                    "INSERT INTO sends VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(report, recipient, "
                    "content_hash) DO UPDATE SET state=excluded.state, detail=excluded.detail, "
                    "updated=excluded.updated",
                    [(item.report, r.lower(), item.content_hash, state, detail, now)
                     for r in recipients])
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        self.db.close()


@dataclass
class SendOutcome:
    sent: list[tuple[str, str]] = field(default_factory=list)  # (report, recipient)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # sent before
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (report, rcpt, reason)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # killed mid-send before

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unknown


def send_messages(plan: Plan, transport: Transport, ledger: Ledger, sender: str, *,
                  resend: bool = False, retries: int = 3, backoff: float = 1.0,
                  progress: Callable[[str], None] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> SendOutcome:
    """Send each message to the recipients the ledger has not seen it delivered to.

    A temporary failure (4xx, dropped connection, timeout) is retried ``retries`` times after
    ``backoff``, 2×, 4× … seconds, on a new connection when the old one is gone. When every
    attempt of a message failed because the server could not be reached or did not answer,
    the run stops there: the remaining messages are reported as failed ("not sent") without
    trying them, so a dead or stalled server costs the time of one message's retries.
    """
    outcome = SendOutcome()
    stopped: str | None = None
    try:
        for item in plan.messages:
            pending = []
            for recipient in item.recipients.all:
                state = None if resend else ledger.state(item, recipient)
                if state == "sent":
                    outcome.skipped.append((item.report, recipient))
                elif state == "sending":
                    outcome.unknown.append((item.report, recipient))
                else:
                    pending.append(recipient)
            if pending and stopped:
                outcome.failed += [(item.report, r, stopped) for r in pending]
            elif pending:
                unreachable = _deliver(item, pending, transport, ledger, sender, outcome,
                                       retries, backoff, sleep)
                if unreachable:
                    stopped = f"not sent: the run stopped after the server failed ({unreachable})"
            if progress:
                progress(item.report)
    finally:
        transport.close()
    return outcome


def _deliver(item, pending, transport, ledger, sender, outcome, retries, backoff,
             sleep) -> str | None:
    """Send one message; the reason when every attempt found the server unreachable."""
    ledger.mark(item, pending, "sending")
    attempt = 0
    all_unreachable = True
    while True:
        try:
            refused = transport.send(item.message, sender, pending)
            break
        except TemporaryFailure as exc:
            all_unreachable = all_unreachable and exc.unreachable
            attempt += 1
            if attempt > retries:
                ledger.mark(item, pending, "failed", str(exc))
                outcome.failed += [(item.report, r, str(exc)) for r in pending]
                return str(exc) if all_unreachable else None
            sleep(backoff * 2 ** (attempt - 1))
        except PermanentFailure as exc:
            ledger.mark(item, pending, "failed", str(exc))
            outcome.failed += [(item.report, r, str(exc)) for r in pending]
            return None
        except DeliveryError as exc:  # no connection at all: nothing of this message left
            ledger.mark(item, pending, "failed", str(exc))
            raise
    refused_lower = {r.lower(): reason for r, reason in refused.items()}
    delivered = [r for r in pending if r.lower() not in refused_lower]
    if delivered:
        ledger.mark(item, delivered, "sent")
        outcome.sent += [(item.report, r) for r in delivered]
    for recipient in pending:
        reason = refused_lower.get(recipient.lower())
        if reason is not None:
            ledger.mark(item, [recipient], "failed", reason)
            outcome.failed.append((item.report, recipient, reason))
    return None
