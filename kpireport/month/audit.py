"""The tamper-evident audit trail of a run folder: ``RUN_DIR/audit.jsonl``.

One JSON object a line: ``n`` (its line number), ``time``, ``action`` (build, reopen, approve,
revoke, test-send, send), ``actor``, ``reason``, the ``hashes`` involved, ``prev`` (the hash of
the line before, ``null`` on the first) and ``hash`` (SHA-256 of the line's canonical JSON
without ``hash``). Editing a line breaks its own hash; removing one breaks the next line's
``prev``; removing the last lines is caught by ``.audit-head``, which keeps the number and the
hash of the last line. (Someone who rewrites every hash after an edit is not stopped by any of
this; keep a copy of ``.audit-head`` elsewhere if that matters.)

Appends hold an ``flock`` on the file, so two processes (an approve and a send) never
interleave or both chain onto the same line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.core.errors import AuditError
from kpireport.core.files import write_atomically

AUDIT_FILE = "audit.jsonl"
HEAD_FILE = ".audit-head"
ACTIONS = ("build", "reopen", "approve", "revoke", "test-send", "send")


def now_utc(clock: Callable[[], dt.datetime] | None = None) -> str:
    """ISO 8601 UTC to the second: the time every record carries."""
    moment = clock() if clock else dt.datetime.now(dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def record_hash(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


@dataclass
class Trail:
    """What :func:`verify` found: every record it could read, and where the chain breaks."""

    records: list[dict] = field(default_factory=list)
    broken_at: int | None = None  # 1-based line number
    problem: str | None = None

    @property
    def valid(self) -> bool:
        return self.broken_at is None

    def as_dict(self) -> dict:
        return {"valid": self.valid, "broken_at": self.broken_at, "problem": self.problem,
                "lines": len(self.records)}


def verify(run_dir: Path) -> Trail:
    """Read ``audit.jsonl`` and check every line's hash, the chain and the head."""
    path = Path(run_dir) / AUDIT_FILE
    trail = Trail()
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        lines = []
    except OSError as exc:
        trail.broken_at, trail.problem = 0, f"cannot read {path}: {exc.strerror or exc}"
        return trail
    if lines and lines[-1] == b"":
        lines.pop()
    prev = None
    for number, raw in enumerate(lines, start=1):
        problem = _line_problem(raw, number, prev)
        if problem:
            trail.broken_at, trail.problem = number, problem
            return trail
        record = json.loads(raw)
        trail.records.append(record)
        prev = record["hash"]
    head = _read_head(Path(run_dir))
    if head is not None and (head.get("lines"), head.get("hash")) != (len(lines), prev):
        trail.broken_at = len(lines) + 1 if (head.get("lines") or 0) > len(lines) \
            else len(lines)
        trail.problem = (f"{AUDIT_FILE} has {len(lines)} line(s) but {HEAD_FILE} says "
                         f"{head.get('lines')}: lines were removed or rewritten at the end")
    elif head is None and lines:
        trail.broken_at, trail.problem = len(lines), f"{HEAD_FILE} is missing or damaged"
    return trail


def _line_problem(raw: bytes, number: int, prev: str | None) -> str | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return f"line {number} is not JSON (edited or cut short)"
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        return f"line {number} has no hash"
    if record.get("n") != number:
        return f"line {number} says it is line {record.get('n')!r}: a line was removed or moved"
    if record_hash(record) != record["hash"]:
        return f"line {number} was edited after it was written (its hash does not match)"
    if record.get("prev") != prev:
        return f"line {number} does not follow line {number - 1} (a line was removed or edited)"
    return None


def _read_head(run_dir: Path) -> dict | None:
    try:
        head = json.loads((run_dir / HEAD_FILE).read_text(encoding="utf-8"))
        return head if isinstance(head, dict) else None
    except (OSError, ValueError):
        return None


@contextmanager
def _locked(path: Path):
    try:
        handle = open(path, "a+b")  # noqa: SIM115 (held for the with-block)
    except OSError as exc:
        raise AuditError(f"cannot write the audit trail {path}: {exc.strerror or exc}") from None
    try:
        try:
            import fcntl  # lazy: POSIX only

            fcntl.flock(handle, fcntl.LOCK_EX)  # waits: appends are short
        except ImportError:  # not POSIX: no locking (documented)
            pass
        yield handle
    finally:
        handle.close()


def append(run_dir: Path, action: str, *, actor: str, reason: str | None = None,
           hashes: dict[str, str] | None = None, clock: Callable[[], dt.datetime] | None = None,
           **details: object) -> dict:
    """Append one record to the chain and return it; refuse if the chain is already broken."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    run_dir = Path(run_dir)
    path = run_dir / AUDIT_FILE
    with _locked(path) as handle:
        trail = verify(run_dir)
        if not trail.valid:
            raise AuditError(f"{path} is broken at line {trail.broken_at} ({trail.problem}); "
                             "nothing was recorded. Restore the file from a backup, or move "
                             f"{AUDIT_FILE} and {HEAD_FILE} aside to start a new trail")
        last = trail.records[-1] if trail.records else None
        record = {"n": len(trail.records) + 1, "time": now_utc(clock), "action": action,
                  "actor": actor, "reason": reason, "hashes": dict(sorted((hashes or {})
                                                                           .items())),
                  **details, "prev": last["hash"] if last else None}
        record["hash"] = record_hash(record)
        line = canonical(record).encode("utf-8") + b"\n"
        try:
            handle.seek(0, os.SEEK_END)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
            _write_head(run_dir, record)
        except OSError as exc:
            raise AuditError(f"cannot write the audit trail {path}: "
                             f"{exc.strerror or exc}") from None
    return record


def _write_head(run_dir: Path, record: dict) -> None:
    write_atomically(run_dir / HEAD_FILE, (json.dumps(
        {"lines": record["n"], "hash": record["hash"]}) + "\n").encode("utf-8"))


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
