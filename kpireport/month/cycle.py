"""The month as a managed cycle: build → see what changed → approve → test-send → send.

Every step is a line of the run folder's audit trail (:mod:`kpireport.month.audit`). An approval
names the SHA-256 of every file it covers (:func:`run_hashes`); it holds while those files are
unchanged and it is not revoked. ``send`` refuses an unapproved or changed run when Settings
``require_approval`` is yes (:func:`require_approval`). A build keeps the previous build of the
same period in ``previous/`` (for ``diff RUN_DIR``) and, once a period was sent, refuses to
change it unless reopened (``build --reopen``): the build that was sent is kept in ``sent/``
and the reports re-sent after it are marked as corrections that say what changed.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from kpireport.core.errors import KpireportError, NotApproved, SentMonthChanged
from kpireport.deliver.messages import recorded_recipients
from kpireport.month import audit
from kpireport.month.diff import (
    _formatter,
    _outcome_changes,
    diff_runs,
    format_text,
    pool_text,
    summary_facts,
)
from kpireport.report.inputs import INPUTS_FILE
from kpireport.report.manifest import read_manifest
from kpireport.report.outputs import LEDGER, run_lock

PREVIOUS = "previous"  # the build before this one (results, inputs, hashes)
SENT = "sent"  # the build that was sent, kept when the period is reopened
HASHES_FILE = "hashes.json"
# What an approval covers: every file the build's manifest lists (results.json, payroll.csv,
# the recorded recipients, every report) but results.xlsx: it is made from results.json, and
# Excel's file carries the time it was written, so an unchanged rebuild would look changed.
NOT_APPROVED_FILES = frozenset({"results.xlsx"})
EXIT_NOT_APPROVED = 4  # `run BOOK --send` built, but the run awaits approval


# ---------------------------------------------------------------------------- what is approved
def run_hashes(run_dir: Path, manifest=None) -> dict[str, str]:
    """Path (relative, posix) → SHA-256 of every file an approval covers, as the build's
    manifest lists them; {} for a folder without a manifest."""

    try:
        manifest = manifest or read_manifest(run_dir)
    except KpireportError:
        return {}
    return {path: digest for path, digest in sorted(manifest.hashes().items())
            if path not in NOT_APPROVED_FILES}


def changed_on_disk(manifest) -> list[str]:
    """The covered files whose bytes are no longer the ones the manifest lists."""
    return [path for path in manifest.verify() if path not in NOT_APPROVED_FILES]


def check_run(run_dir: Path):
    """The manifest of ``run_dir`` if it is a run folder; a clear error if not."""

    return read_manifest(Path(run_dir))


def _name(value: str | None, what: str) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise KpireportError(f"{what} is blank; give a name (who is responsible for this step)")
    return text


def actor() -> str:
    """Who runs a step that has no --by (build, send): the login name."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without one)
        return "unknown"


# ---------------------------------------------------------------------------- approve / revoke
def approve(run_dir: str | Path, *, by: str, note: str | None = None,
            clock: Callable[[], dt.datetime] | None = None) -> dict:
    """Record that ``by`` approved exactly the files of ``run_dir`` as they are now; return the
    audit record."""

    run_dir = Path(run_dir)
    check_run(run_dir)
    by = _name(by, "--by (the approver)")
    with run_lock(run_dir):
        manifest = check_run(run_dir)
        changed = changed_on_disk(manifest)
        if changed:
            raise KpireportError(f"{run_dir}: {changed[0]} changed after the build (it is not "
                                 f"the file the manifest lists; {len(changed)} file(s) in all); "
                                 "nothing approved. Build again")
        return audit.append(run_dir, "approve", actor=by, reason=_note(note),
                            hashes=run_hashes(run_dir, manifest), clock=clock,
                            period=manifest.period,
                            workbook={"file": manifest.workbook_file,
                                      "sha256": manifest.workbook_sha256})


def revoke(run_dir: str | Path, *, by: str, note: str,
           clock: Callable[[], dt.datetime] | None = None) -> dict:
    """Withdraw the approval of ``run_dir`` (``note`` says why); return the audit record."""

    run_dir = Path(run_dir)
    check_run(run_dir)
    by = _name(by, "--by (who revokes)")
    note = _name(note, "--note (why the approval is withdrawn)")
    with run_lock(run_dir):
        trail = audit.verify(run_dir)
        if _approval_record(trail.records) is None or \
                _approval_record(trail.records)["action"] != "approve":  # type: ignore[index]
            raise KpireportError(f"{run_dir} has no approval to revoke")
        return audit.append(run_dir, "revoke", actor=by, reason=note, clock=clock,
                            hashes=run_hashes(run_dir))


def _note(note: str | None) -> str | None:
    text = " ".join((note or "").split())
    return text or None


def _results(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KpireportError(f"{run_dir}/results.json is unreadable ({exc}); build "
                             "again") from None


def _approval_record(records: list[dict]) -> dict | None:
    return next((r for r in reversed(records) if r.get("action") in ("approve", "revoke")),
                None)


def approval(run_dir: str | Path, *, trail: audit.Trail | None = None,
             hashes: dict[str, str] | None = None) -> dict:
    """Is ``run_dir`` approved as it is now? json-able: state (approved / not approved /
    revoked / changed / audit broken), valid, who, when, the note, the files changed since."""
    run_dir = Path(run_dir)
    trail = trail or audit.verify(run_dir)
    record = _approval_record(trail.records)
    state: dict = {"state": "not approved", "valid": False, "by": None, "at": None,
                   "note": None, "changed_files": []}
    if not trail.valid:
        state.update(state="audit broken", problem=trail.problem, broken_at=trail.broken_at)
        return state
    if record is None:
        return state
    state.update(by=record["actor"], at=record["time"], note=record.get("reason"))
    if record["action"] == "revoke":
        state["state"] = "revoked"
        return state

    try:
        manifest = read_manifest(run_dir)
        on_disk = changed_on_disk(manifest)
    except KpireportError:
        manifest, on_disk = None, ["manifest.json"]
    current = hashes if hashes is not None else run_hashes(run_dir, manifest)
    approved = record.get("hashes") or {}
    changed = sorted({name for name in set(current) | set(approved)
                      if current.get(name) != approved.get(name)} | set(on_disk))
    state.update(changed_files=changed, valid=not changed,
                 state="approved" if not changed else "changed")
    return state


def require_approval(run_dir: str | Path, required: bool = True) -> dict:
    """Raise NotApproved (one line: why, and what to do) unless ``run_dir`` may be sent."""
    run_dir = Path(run_dir)
    trail = audit.verify(run_dir)
    if not trail.valid:  # a send is recorded in the trail: a broken one stops it either way
        raise NotApproved(f"{run_dir}/{audit.AUDIT_FILE} is broken at line {trail.broken_at} "
                          f"({trail.problem}); nothing was sent. Restore it from a backup")
    state = approval(run_dir, trail=trail)
    if not required or state["valid"]:
        return state
    how = f"kpireport approve {run_dir} --by NAME"
    if state["state"] == "revoked":
        raise NotApproved(f"{run_dir}: the approval was revoked by {state['by']} at "
                          f"{state['at']} ({state['note']}); nothing was sent. Approve it "
                          f"again with: {how}")
    if state["state"] == "changed":
        files = state["changed_files"]
        raise NotApproved(f"{run_dir} changed after {state['by']} approved it at {state['at']} "
                          f"({len(files)} file(s), e.g. {files[0]}): nothing was sent. Review "
                          f"it (kpireport diff {run_dir}), then approve it again: {how}")
    raise NotApproved(f"{run_dir} is not approved: nothing was sent. Review it (kpireport "
                      f"status {run_dir}), then: {how} (or set Settings require_approval to "
                      "no for reports that carry no pay)")


# ---------------------------------------------------------------------------- sent or not
def ledger_rows(run_dir: Path, *, strict: bool = True
                ) -> list[tuple[str, str, str, str, str, str]]:
    """(report, recipient, content_hash, state, detail, updated) of the send ledger, oldest
    first; [] without one (or, not ``strict``, an unreadable one). Read-only: never creates
    the file."""

    path = Path(run_dir) / LEDGER
    if not path.is_file():
        return []
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=3.0)
        try:
            return db.execute("SELECT report, recipient, content_hash, state, detail, updated "
                              "FROM sends ORDER BY updated, rowid").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        if not strict:
            return []
        raise KpireportError(f"cannot read the send ledger {path}: {exc}") from None


def was_sent(run_dir: Path, trail: audit.Trail | None = None) -> bool:
    """Has this period been sent since it was last reopened (or ever, if never reopened)?"""
    records = (trail or audit.verify(run_dir)).records
    reopened = max((i for i, r in enumerate(records) if r.get("action") == "reopen"),
                   default=-1)
    if any(r.get("action") == "send" and (r.get("delivered") or 0) > 0
           for r in records[reopened + 1:]):
        return True
    # runs sent before kpireport kept the trail: the ledger says (the trail decides after)
    return reopened < 0 and any(row[3] == "sent" for row in ledger_rows(run_dir, strict=False))


# ---------------------------------------------------------------------------- the build's gate
class BuildGate:
    """What a build of ``run_dir`` must respect and record (use with the run lock held).

    :meth:`stage` runs on the complete staged folder just before it is swapped in: it refuses
    a changed build of a period that was sent (unless reopened), keeps the previous build in
    ``previous/`` and, on a reopen, the build that was sent in ``sent/``. :meth:`record`
    appends the reopen and build lines after the swap.
    """

    def __init__(self, run_dir: Path, *, reopen_by: str | None = None,
                 reopen_note: str | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.clock = clock
        self.reopen = reopen_by is not None or reopen_note is not None
        self.trail = audit.verify(self.run_dir)
        if not self.trail.valid:
            raise KpireportError(f"{self.run_dir}/{audit.AUDIT_FILE} is broken at line "
                                 f"{self.trail.broken_at} ({self.trail.problem}); nothing was "
                                 "built. Restore it from a backup")
        self.sent = was_sent(self.run_dir, self.trail)
        if self.reopen:
            self.by = _name(reopen_by, "--by (who reopens the period)")
            self.note = _name(reopen_note, "--note (why the period is reopened)")
            if not self.sent:
                raise KpireportError(f"{self.run_dir} has not been sent since it was built "
                                     "(or reopened); build it without --reopen")
        self.old_hashes = run_hashes(self.run_dir)
        self.new_hashes: dict[str, str] = {}
        self.changed = True

    def stage(self, staging, manifest=None) -> None:
        """Check and complete the staged folder (a kpireport.report.outputs.Staging); ``manifest``
        is the one staged there, if the caller has it (else it is read back)."""

        self.new_hashes = run_hashes(staging.dir, manifest)
        self.changed = self.new_hashes != self.old_hashes
        if self.sent and self.changed and not self.reopen:
            summary, changes, facts = self._would_change(staging.dir)
            raise SentMonthChanged(
                f"{self.run_dir} was already sent, and this build changes it; nothing was "
                f"written. To correct a sent month: kpireport build … --reopen --by NAME "
                "--note WHY (the reports sent again are marked as corrections)",
                period=self.run_dir.name, summary=summary, changes=changes, facts=facts)
        run_dir = self.run_dir
        if self.old_hashes:
            same = all(_same_file(run_dir / n, staging.dir / n)
                       for n in ("results.json", INPUTS_FILE))
            if same and (run_dir / PREVIOUS).is_dir():
                staging.keep(_files_under(run_dir, PREVIOUS))
            elif not same:
                self._snapshot(staging, PREVIOUS)
        if self.reopen and not self._baseline_kept():
            self._snapshot(staging, SENT)
        elif (run_dir / SENT).is_dir():
            staging.keep(_files_under(run_dir, SENT))

    def _would_change(self, staged: Path) -> tuple[str, tuple[str, ...], dict]:
        """What the refused build would change against the one in place (``diff``): its
        summary line, the lines of inputs and outcomes (without the folders' names) and the
        summary's numbers."""
        try:
            document = diff_runs(self.run_dir, staged)
        except KpireportError:
            return "", (), {}
        return (str(document["summary"]), tuple(format_text(document).splitlines()[1:]),
                summary_facts(document))

    def _baseline_kept(self) -> bool:
        """A reopened period reopened again before its correction was sent keeps the first
        baseline: the build people actually received."""
        return (self.run_dir / SENT).is_dir() and not self._sent_after_reopen()

    def _sent_after_reopen(self) -> bool:
        records = self.trail.records
        reopened = max((i for i, r in enumerate(records) if r.get("action") == "reopen"),
                       default=-1)
        return reopened < 0 or any(r.get("action") == "send" and (r.get("delivered") or 0) > 0
                                   for r in records[reopened + 1:])

    def _snapshot(self, staging, folder: str) -> None:

        for name in ("results.json", INPUTS_FILE):
            if (self.run_dir / name).is_file():
                staging.write(f"{folder}/{name}", (self.run_dir / name).read_bytes())
        staging.write(f"{folder}/{HASHES_FILE}",
                      json.dumps(self.old_hashes, indent=0, sort_keys=True).encode())

    def record(self, results: dict, require: bool) -> None:
        """The reopen and build lines of the trail, once the new build is in place."""
        if self.reopen:
            audit.append(self.run_dir, "reopen", actor=self.by, reason=self.note,
                         hashes=self.old_hashes, clock=self.clock,
                         period=results.get("period"))
        audit.append(self.run_dir, "build", actor=actor(),
                     reason=self.note if self.reopen else None, hashes=self.new_hashes,
                     clock=self.clock, period=results.get("period"),
                     workbook=results.get("source"), require_approval=require,
                     changed=self.changed)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _files_under(run_dir: Path, folder: str) -> set[str]:
    return {p.relative_to(run_dir).as_posix() for p in (run_dir / folder).rglob("*")
            if p.is_file()}


def previous_build(run_dir: str | Path) -> Path | None:
    """The previous build of the period that ``run_dir``'s build kept, if any."""
    previous = Path(run_dir) / PREVIOUS
    return previous if (previous / "results.json").is_file() else None


def with_previous(run_dir: str | Path) -> tuple[Path, Path]:
    """(previous build, run_dir) for ``diff RUN_DIR``; one clear line when either is missing."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file():
        raise KpireportError(f"{run_dir} is not a run folder (no results.json); give a run "
                             "folder such as reports/2026-03")
    previous = previous_build(run_dir)
    if previous is None:
        raise KpireportError(f"{run_dir} has no previous build of {run_dir.name} to compare "
                             "with; give two run folders: kpireport diff OLD NEW")
    return previous, run_dir


def build_summary(run_dir: str | Path) -> str:
    """One line against the previous build of the period: 'Since the previous build: 3
    bonuses changed, +$1,240.00 in total'."""

    run_dir = Path(run_dir)
    previous = previous_build(run_dir)
    if previous is None:
        return f"First build of {run_dir.name}: nothing to compare with yet."
    document = diff_runs(previous, run_dir)
    return f"Since the previous build: {document['summary']} (kpireport diff {run_dir})"


# ---------------------------------------------------------------------------- corrections
def corrections(run_dir: Path, manifest=None) -> dict[str, dict]:
    """After ``build --reopen``: report stem → what changed for its owner since the build
    that was sent ({'kind', 'fields': {name: {old, new}}}), for reports whose PDF changed."""

    run_dir = Path(run_dir)
    baseline = run_dir / SENT
    try:
        sent_hashes = json.loads((baseline / HASHES_FILE).read_text(encoding="utf-8"))
        sent_results = json.loads((baseline / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    manifest = manifest or read_manifest(run_dir)
    current = _results(run_dir)
    changes = {c["owner"]: c["changes"] for c in _outcome_changes(sent_results, current)}
    found = {}
    for report in manifest.reports:
        pdf = report.pdf
        was = sent_hashes.get(pdf.path) if pdf is not None else None
        if was is not None and pdf.sha256 != was:
            found[report.stem] = {"kind": report.kind, "fields": changes.get(report.scope, {})}
    return found


class NoLedger:
    """A ledger that remembers nothing: test sends are never counted as sent."""

    def state(self, item, recipient: str) -> None:
        return None

    def mark(self, item, recipients, state: str, detail: str = "") -> None:
        pass

    def close(self) -> None:
        pass


def record_send(run_dir: Path, outcome, *, test_to: str | None = None,
                only: str | None = None, clock: Callable[[], dt.datetime] | None = None,
                ) -> dict:
    """The send (or test-send) line of the trail."""
    details = {"delivered": len(outcome.sent), "failed": len(outcome.failed),
               "unknown": len(outcome.unknown), "skipped": len(outcome.skipped),
               "only": only}
    if test_to is not None:
        return audit.append(run_dir, "test-send", actor=actor(), reason=f"to {test_to}",
                            hashes=run_hashes(run_dir), clock=clock, to=test_to, **details)
    return audit.append(run_dir, "send", actor=actor(), hashes=run_hashes(run_dir),
                        clock=clock, **details)


# ---------------------------------------------------------------------------- status
def status(run_dir: str | Path) -> dict:
    """Built, changed, approved, delivered and the audit trail of ``run_dir``; json-able."""

    run_dir = Path(run_dir)
    manifest = check_run(run_dir)
    trail = audit.verify(run_dir)
    hashes = run_hashes(run_dir, manifest)
    builds = [r for r in trail.records if r.get("action") == "build"]
    last = builds[-1] if builds else None
    built = {"period": manifest.period,
             "workbook": {"file": manifest.workbook_file, "sha256": manifest.workbook_sha256},
             "files": len(hashes), "at": manifest.built_at,
             "by": last["actor"] if last else None,
             "require_approval": last.get("require_approval") if last else None,
             "builds": len(builds)}
    changes = None
    previous = previous_build(run_dir)
    if previous is not None:
        document = diff_runs(previous, run_dir)
        changes = {"summary": document["summary"], "facts": summary_facts(document),
                   "inputs": len(document["inputs"]),
                   "outcomes": len(document["outcomes"]),
                   "bonuses_changed": document["bonuses_changed"],
                   "bonus_total": document["bonus_total"]}
    latest: dict[tuple[str, str], tuple] = {}
    for row in ledger_rows(run_dir):
        latest[(row[0], row[1])] = row
    recipients = []
    try:
        recorded = recorded_recipients(run_dir, manifest)
    except KpireportError:  # damaged or edited: send says so; status still reports the rest
        recorded = []
    fixes = corrections(run_dir, manifest)
    sent = was_sent(run_dir, trail)
    for report, r in recorded:
        for address in r.all:
            row = latest.pop((report.stem, address.lower()), None)
            item = _delivery(report.stem, report.name, address, row)
            if not sent and report.stem in fixes and item["state"] == "sent":
                # reopened and corrected: what they have is the old report
                item["state"] = CORRECTION_NOT_SENT
            recipients.append(item)
    recipients += [_delivery(report, None, rcpt, row) for (report, rcpt), row in latest.items()]
    counts: dict[str, int] = {}
    for item in recipients:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    try:
        results = _results(run_dir)
    except KpireportError:
        results = {}
    return {"run_dir": str(run_dir), "built": built, "changes": changes,
            "pool": results.get("pool"), "currency": results.get("currency"),
            "locale": results.get("locale"),
            "approval": approval(run_dir, trail=trail, hashes=hashes),
            "sent": sent,
            "corrections": sorted(fixes),
            "delivery": {"counts": counts, "recipients": recipients},
            "audit": {**trail.as_dict(), "records": [
                {k: r.get(k) for k in ("n", "time", "action", "actor", "reason")}
                for r in trail.records]}}


CORRECTION_NOT_SENT = "correction not sent"  # sent before the reopen, corrected since


def _delivery(report: str, name: str | None, address: str, row) -> dict:
    state = "not sent" if row is None else {"sending": "unknown"}.get(row[3], row[3])
    return {"report": report, "name": name, "recipient": address, "state": state,
            "detail": row[4] if row else "", "updated": row[5] if row else None}


def format_status(document: dict) -> str:
    """The status as text, a few lines a person reads top to bottom."""
    built, approval_ = document["built"], document["approval"]
    workbook = built["workbook"] or {}
    lines = [f"Run folder: {document['run_dir']} ({built['period']})",
             f"Built: {built['at'] or 'unknown (before the audit trail)'}"
             + (f" by {built['by']}" if built["by"] else "")
             + f" from {workbook.get('file')} (sha256 {str(workbook.get('sha256'))[:12]}…), "
             f"{built['files']} file(s) covered by an approval"]
    changes = document["changes"]
    lines.append("Changes since the previous build: "
                 + (changes["summary"] if changes else "none kept (first build)"))
    if document.get("pool"):
        lines.append("Bonus pool: " + pool_text(_formatter(document), document["pool"]))
    state = approval_["state"]
    text = {"approved": f"approved by {approval_['by']} at {approval_['at']}, still valid",
            "changed": f"approved by {approval_['by']} at {approval_['at']}, NO LONGER VALID: "
                       f"{len(approval_['changed_files'])} file(s) changed since "
                       f"(e.g. {(approval_['changed_files'] or ['?'])[0]})",
            "revoked": f"revoked by {approval_['by']} at {approval_['at']}"
                       + (f" ({approval_['note']})" if approval_["note"] else ""),
            "not approved": "not approved",
            "audit broken": "unknown: the audit trail is broken"}[state]
    if approval_.get("note") and state == "approved":
        text += f" ({approval_['note']})"
    required = built.get("require_approval")
    lines.append(f"Approval: {text}" + ("" if required is not False
                                        else " (Settings require_approval: no)"))
    counts = document["delivery"]["counts"]
    lines.append("Delivery: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                  or "no recipients recorded"))
    for item in document["delivery"]["recipients"]:
        if item["state"] in ("failed", "unknown"):
            lines.append(f"  {item['state']}: {item['report']} → {item['recipient']}"
                         + (f" ({item['detail']})" if item["detail"] else ""))
    if document["corrections"]:
        lines.append(f"Corrections: {len(document['corrections'])} report(s) differ from the "
                     "build that was sent before the period was reopened")
    trail = document["audit"]
    lines.append(f"Audit trail: {trail['lines']} line(s), "
                 + ("chain verified" if trail["valid"] else
                    f"BROKEN at line {trail['broken_at']}: {trail['problem']}"))
    for record in trail["records"]:
        lines.append(f"  {record['n']:>3} {record['time']} {record['action']:<9} "
                     f"{record['actor']}" + (f" — {record['reason']}" if record["reason"]
                                             else ""))
    return "\n".join(lines)
