"""What the web app does, as calls into the same library functions the CLI makes.

A :class:`Workspace` is one working folder: its workbooks (``FOLDER/*.xlsx``), their runs
(``FOLDER/reports/<YYYY-MM>``, as ``kpireport build BOOK --out FOLDER/reports`` writes them)
and a private folder for uploads in progress and annotated copies
(``FOLDER/.kpireport-web``). Nothing the app needs to remember lives only in memory: runs,
the send ledger and the audit log are the library's files in the run folder, so a killed
server loses at most the progress bar of a job.

Building and sending are jobs in a background thread, one at a time for the whole app (a
second is refused with :class:`Busy`, and the library's run lock refuses a CLI build or send of
the same run meanwhile).

Approving, the run's state and its changes are :mod:`kpireport.month.cycle`'s calls; sending (for
real or as a test) is :func:`kpireport.api.send`, which holds the approval gate and writes the
audit line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.core.errors import KpireportError, SentMonthChanged, UnreadableWorkbook
from kpireport.core.issues import Issue
from kpireport.web.builds import build_elsewhere
from kpireport.web.labels import _
from kpireport.web.runview import _count, clawback_lines, delivery, pool_figures, run_locale
from kpireport.web.security import BOOK_NAME, PERIOD, RUN_FILE, child
from kpireport.web.versions import Library, shown_name, version_rows, workbook_rows

PRIVATE = ".kpireport-web"
OUT = "reports"


class Busy(KpireportError):
    """Another job (a build or a send) is running."""


@dataclass
class Job:
    """A build or a send in the background: what the progress page shows."""

    id: str
    kind: str  # build / send / test
    target: str  # the workbook's name, or the run's period
    state: str = "running"  # running / done / failed
    done: int = 0
    total: int | None = None
    message: str = ""
    period: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    locale: str = "en_US"  # the workbook's: the language of label and message
    # a build refused because the period was sent: {summary, changes} of what would change
    sent_month: dict | None = None
    reopened: bool = False  # a build with --reopen
    version: int | None = None  # a build: the version of the workbook (0: the folder's file)
    # a test send of protected reports: the password its copies open with, for the tester
    test_password: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """'Send done', 'Lần gửi: xong' …: the job's kind and state in its language."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.core.i18n import translations

        return translations(self.locale).gettext(JOB_LABELS[self.kind, self.state])

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "target": self.target, "state": self.state,
                "label": self.label, "done": self.done, "total": self.total,
                "message": self.message, "period": self.period,
                "sent_month": self.sent_month is not None,
                "test_password": self.test_password}


JOB_LABELS = {
    ("build", "running"): _("Build running"), ("build", "done"): _("Build done"),
    ("build", "failed"): _("Build failed"), ("send", "running"): _("Send running"),
    ("send", "done"): _("Send done"), ("send", "failed"): _("Send failed"),
    ("test", "running"): _("Test send running"), ("test", "done"): _("Test send done"),
    ("test", "failed"): _("Test send failed"),
}


def _gettext(locale: str):
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.i18n import translations

    return translations(locale).gettext


@dataclass(frozen=True)
class CheckReport:
    name: str
    issues: list[Issue]
    locale: str | None  # the workbook's, when it could be read
    unreadable: str | None = None  # the one-line answer for a file that is not a workbook
    unmarked: int = 0  # kpireport's marks taken off an uploaded marked copy
    version: int | None = None  # the version of the uploaded workbook this is

    @property
    def errors(self) -> int:
        return sum(i.severity == "error" for i in self.issues)

    @property
    def warnings(self) -> int:
        return sum(i.severity == "warning" for i in self.issues)

    @property
    def valid(self) -> bool:
        return self.unreadable is None and not self.errors


def cli(*words: str | Path) -> str:
    """The equivalent command line, quoted for a POSIX shell."""
    return " ".join(shlex.quote(str(w)) for w in ("kpireport", *words))


class Workspace:
    """One working folder of workbooks and runs."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise KpireportError(f"{folder}: no such folder")
        self.out = self.folder / OUT
        self.private = self.folder / PRIVATE
        self.library = Library(self.private / "books")  # uploads, by name, with versions
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.current: Job | None = None

    # ------------------------------------------------------------------ files
    def books(self) -> list[dict]:
        """The workbooks of the folder; one that is a link out of it, or unreadable, is listed
        as unavailable with the reason (and never opened)."""
        found = []
        for path in sorted(self.folder.glob("*.xlsx")):
            if path.name.startswith((".", "~$")) or not BOOK_NAME.match(path.name):
                continue
            reason = _outside(self.folder, path)
            if reason is None and not path.is_file():
                continue
            try:
                stat = path.lstat() if reason else path.stat()
            except OSError as exc:
                reason, stat = f"cannot be read ({exc.strerror or exc})", None
            found.append({"name": path.name, "size": stat.st_size if stat else 0,
                          "modified": dt.datetime.fromtimestamp(stat.st_mtime if stat else 0),
                          "unavailable": reason})
        return workbook_rows(self.library.all(), found)

    def book(self, name: str, version: int | None = None) -> Path:
        """The file of workbook ``name``: an uploaded version (the latest by default), or
        (version 0, or no upload of that name) the file of that name in the folder. The
        file's name is always ``name``."""
        stored = self.library.file(name, version)
        if stored is not None:
            return stored
        path = child(self.folder, name, BOOK_NAME)
        if not path.is_file():
            # lazy: starlette is loaded only where it is used (start-up stays light)
            from kpireport.web.errors import PageError

            raise PageError(404, _("No workbook {name} in this folder."), name=name)
        return path

    def versions(self, name: str) -> list[dict]:
        """Every version of workbook ``name`` (the folder's own file of that name: 0)."""
        in_folder = BOOK_NAME.match(name) and not _outside(self.folder, self.folder / name)
        return version_rows(self.library.get(name), self.folder / name if in_folder else None)

    def runs(self) -> list[dict]:
        if not self.out.is_dir():
            return []
        runs = []
        for path in sorted(self.out.iterdir(), reverse=True):
            if not PERIOD.match(path.name):
                continue
            reason = _outside(self.out, path)
            if reason is None:
                if not (path / "results.json").is_file():
                    continue
                try:
                    runs.append(self.run_summary(path.name, light=True))
                    continue
                except (KpireportError, OSError, ValueError) as exc:
                    reason = f"cannot be read ({exc})"
                except Exception as exc:  # noqa: BLE001 (one bad run never hides the others)
                    reason = f"cannot be read ({getattr(exc, 'detail', exc)})"
            runs.append({"period": path.name, "unavailable": reason})
        return runs

    def run_dir(self, period: str) -> Path:
        path = child(self.out, period, PERIOD) if self.out.is_dir() else None
        if path is None or not (path / "results.json").is_file():
            # lazy: starlette is loaded only where it is used (start-up stays light)
            from kpireport.web.errors import PageError

            raise PageError(404, _("No run {period} in this folder; build it first."),
                            period=period)
        return path

    def run_file(self, period: str, name: str) -> Path:
        """A report file of a run: only the files its manifest lists are served."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.report.manifest import read_manifest

        run_dir = self.run_dir(period)
        path = child(run_dir, name, RUN_FILE)
        try:
            listed = read_manifest(run_dir).hashes()
        except KpireportError:
            listed = {}
        if name not in listed or not path.is_file():
            # lazy: starlette is loaded only where it is used (start-up stays light)
            from kpireport.web.errors import PageError

            raise PageError(404, _("No such file."))
        return path

    # ------------------------------------------------------------------ check
    def store_upload(self, filename: str, source, *,
                     origin: str = "upload") -> tuple[str | None, CheckReport]:
        """Check an uploaded file like ``kpireport check``; when it is a workbook, keep it as
        the next version of the workbook of its name (:mod:`kpireport.web.versions`).
        ``source`` is a binary file object."""

        shown = shown_name(filename)
        staging = self.private / f"upload-{secrets.token_hex(8)}"
        staging.mkdir(parents=True)
        try:
            path = staging / shown
            with path.open("wb") as handle:
                shutil.copyfileobj(source, handle, 2**20)
            report = self._check(path)
            if report.unreadable is not None:
                return None, report
            unmarked = _unmark(path)
            if unmarked:  # a fixed copy of the marked workbook: checked again without marks
                report = self._check(path)
            _, version, _ = self.library.add(
                shown, path, origin="marked copy" if unmarked else origin,
                errors=report.errors, warnings=report.warnings)
            return shown, CheckReport(shown, report.issues, report.locale, unmarked=unmarked,
                                      version=version.number)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def check(self, name: str, version: int | None = None) -> CheckReport:
        return self._check(self.book(name, version))

    @staticmethod
    def _check(path: Path) -> CheckReport:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport import api

        try:
            book, issues = api.check(path)
        except UnreadableWorkbook as exc:
            return CheckReport(path.name, [], None, f"Error: {exc}")
        locale = book.settings.locale if book is not None else None
        return CheckReport(path.name, issues, locale)

    def annotated(self, name: str, version: int | None = None) -> Path:
        """A copy of the workbook with every issue marked (``check --annotate``)."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport import api

        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.data_in.annotate import annotate_workbook

        path = self.book(name, version)
        _, issues = api.check(path)
        folder = self.private / "annotated"
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{path.stem}.checked.xlsx"
        out.unlink(missing_ok=True)  # ours alone: no earlier copy to keep
        return annotate_workbook(path, issues, out).out

    # ------------------------------------------------------------------ jobs
    def _start(self, kind: str, target: str, work, locale: str = "en_US") -> Job:
        with self._lock:
            if self.current is not None and self.current.state == "running":
                raise Busy(f"a {self.current.kind} of {self.current.target} is running; wait "
                           "for it to finish")
            job = Job(secrets.token_hex(6), kind, target, locale=locale)
            self.jobs[job.id] = job
            self.current = job

        def run() -> None:
            try:
                work(job)
                job.state = "done"
            except SentMonthChanged as exc:
                job.period = exc.period or job.period
                job.sent_month = {"summary": exc.summary, "changes": list(exc.changes),
                                  "facts": exc.facts}
                job.state, job.message = "failed", str(exc)
            except KpireportError as exc:
                job.state, job.message = "failed", str(exc)
            except Exception as exc:  # shown on the page, not lost in a thread
                job.state = "failed"
                job.message = f"internal error ({type(exc).__name__}: {exc}); this is a bug"
            finally:
                job.finished = time.time()

        threading.Thread(target=run, name=f"kpireport-{kind}", daemon=True).start()
        return job

    def start_build(self, name: str, *, version: int | None = None,
                    reopen: tuple[str, str] | None = None, locale: str = "en_US") -> Job:
        """Build ``name`` like ``kpireport build``; ``reopen`` (by, note) like ``build --reopen
        --by NAME --note WHY``, for a period that was sent (audited by the library). The
        reports name the workbook ``name``, whatever its stored copy is called.
        ``locale``: the workbook's as its check found it, until the build reads it again."""
        path = self.book(name, version)

        def work(job: Job) -> None:
            def started(total: int) -> None:
                job.total = total

            def located(locale: str) -> None:
                job.locale = locale

            outcome = build_elsewhere(path, self.out, _workers(), on_start=started,
                                      progress=lambda _name: _advance(job), located=located,
                                      reopen=reopen, source_name=name)
            job.period = outcome["period"]
            if outcome["failures"]:
                first = sorted(outcome["failures"].values())[0]
                raise KpireportError(f"{len(outcome['failures'])} report(s) failed; nothing "
                                     f"was written (first: {first})")
            gettext = _gettext(job.locale)
            job.message = gettext("Rendered {rendered} report(s), {cached} unchanged").format(
                rendered=outcome["rendered"], cached=outcome["cached"])
            if outcome.get("leftover"):  # the previous build's folder was not fully removed
                job.message += f" ({outcome['leftover']})"

        job = self._start("build", name, work, locale)
        job.reopened = reopen is not None
        stored = self.library.get(name) if version is None else None
        job.version = stored.latest.number if stored is not None else version
        return job

    def build_command(self, name: str, *, version: int | None = None,
                      reopen: bool = False) -> str:
        words: tuple[str | Path, ...] = ("build", self.book(name, version), "--out", self.out)
        if reopen:
            words += ("--reopen", "--by", "NAME", "--note", "WHY")
        return cli(*words)

    # ------------------------------------------------------------------ runs
    def run_summary(self, period: str, *, light: bool = False) -> dict:
        run_dir = self.run_dir(period)
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
        cards = results.get("scorecards", [])
        employees = [c for c in cards if c.get("owner_type") == "employee"
                     and c.get("employment") in (None, "employed")]
        built = dt.datetime.fromtimestamp((run_dir / "results.json").stat().st_mtime)
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.month import cycle

        state = cycle.status(run_dir)
        rows = delivery(state)
        source = results.get("source") or {}
        stored = self.library.version_of(str(source.get("file", "")),
                                         str(source.get("sha256", "")))
        summary = {
            "period": period, "organization": results.get("organization", ""),
            "source": source.get("file", ""), "built": built,
            "version": stored[1].number if stored else None,
            "locale": results.get("locale") or "en_US",
            "currency": results.get("currency") or "USD",
            "employees": len(employees),
            "departments": sum(c.get("owner_type") == "department" for c in cards),
            "bonus": sum(c.get("bonus") or 0 for c in employees),
            "bands": _count(c.get("band") or "—" for c in employees),
            "issues": _count(i.get("severity", "") for i in results.get("issues", [])),
            "delivery": _count(row["state"] for row in rows),
            "approval": state["approval"],
            "require_approval": state["built"].get("require_approval") is not False,
            "changes": state["changes"],
            "pool": pool_figures(results.get("pool"), results.get("locale") or "en_US",
                                 results.get("currency") or "USD"),
            "clawbacks": clawback_lines(results),
        }
        summary["sendable"] = not summary["require_approval"] or state["approval"]["valid"]
        summary["recipients"] = len(rows)
        summary["sent"] = sum(row["state"] == "sent" for row in rows)
        summary["failed"] = sum(row["state"] in ("failed", "unknown") for row in rows)
        summary["left"] = summary["recipients"] - summary["sent"]
        summary["all_sent"] = bool(rows) and summary["left"] == 0
        if not light:
            summary["reports"] = self.reports(run_dir)
            summary["rows"] = rows
            # a department's review counts as a department, whether or not it has a scorecard
            summary["departments"] = sum(r["kind"] == "department"
                                         for r in summary["reports"])
        return summary

    @staticmethod
    def reports(run_dir: Path) -> list[dict]:
        """Every report of the build (its manifest) with the recipients the build recorded."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.deliver.messages import recorded_recipients

        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.report.manifest import read_manifest

        try:
            manifest = read_manifest(run_dir)
        except KpireportError:
            return []
        try:
            recipients = {entry.stem: r for entry, r in recorded_recipients(run_dir, manifest)}
        except KpireportError:
            recipients = {}
        reports = []
        for entry in manifest.reports:
            if entry.kind == "index":
                continue
            to = recipients.get(entry.stem)
            reports.append({"kind": entry.kind, "name": entry.name, "stem": entry.stem,
                            "to": list(to.to) if to else [], "cc": list(to.cc) if to else [],
                            "html": entry.html is not None, "pdf": entry.pdf is not None})
        return reports

    # ------------------------------------------------------------------ approve, send
    def approve(self, period: str, by: str, note: str | None) -> None:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.month import cycle

        cycle.approve(self.run_dir(period), by=by, note=note or None)

    def revoke(self, period: str, by: str, note: str) -> None:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.month import cycle

        cycle.revoke(self.run_dir(period), by=by, note=note)

    def approve_command(self, period: str) -> str:
        return cli("approve", self.run_dir(period), "--by", "NAME", "--note", "TEXT")

    def smtp_summary(self) -> dict:
        """The SMTP settings the sends will use, for the page (never the password)."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.deliver.transport import SmtpSettings

        environ = dict(os.environ)
        try:
            settings = SmtpSettings.from_env(environ)
        except KpireportError as exc:
            return {"ok": False, "problem": str(exc), "sender": environ.get(
                "KPIREPORT_SMTP_FROM", ""), "password": bool(environ.get(
                    "KPIREPORT_SMTP_PASSWORD"))}
        return {"ok": bool(settings.sender), "host": settings.host, "port": settings.port,
                "security": settings.security, "user": settings.user or "",
                "sender": settings.sender or "", "password": bool(settings.password),
                "problem": "" if settings.sender else "no sender: set KPIREPORT_SMTP_FROM"}

    def start_send(self, period: str, *, test_to: str | None = None) -> Job:
        run_dir = self.run_dir(period)
        book = self._run_book(run_dir)

        locale = run_locale(run_dir)

        def work(job: Job) -> None:
            job.period = period
            job.locale = locale
            result = send(run_dir, book, test_to=test_to,
                          progress=lambda _report: _advance(job))
            outcome = result.outcome
            job.test_password = result.test_password
            gettext = _gettext(job.locale)
            job.message = gettext("{sent} sent, {skipped} already sent, {failed} failed, "
                                  "{unknown} unknown").format(
                sent=len(outcome.sent), skipped=len(outcome.skipped),
                failed=len(outcome.failed), unknown=len(outcome.unknown))
            if test_to:
                job.message += " " + gettext("(a test: every message to {address}; not "
                                             "counted as sent)").format(address=test_to)
            if not outcome.ok:
                raise KpireportError(job.message)

        return self._start("test" if test_to else "send", period, work)

    def deliver_facts(self, period: str) -> tuple[object, object]:
        """(where the PDF passwords of the run's people stand, what a send would do):
        :class:`kpireport.deliver.protect.HandOutState` and
        :class:`kpireport.deliver.messages.SendSummary`, or the reason they are not known."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport import api

        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.deliver.messages import send_summary

        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.deliver.protect import hand_out_state

        run_dir = self.run_dir(period)
        try:
            book = api.send_book(run_dir, self._run_book(run_dir))
            return hand_out_state(book, self.out), send_summary(book, run_dir)
        except KpireportError as exc:
            return str(exc), str(exc)

    def hand_out(self, period: str, *, everyone: bool = False) -> str:
        """The passwords not handed out yet (``everyone``: all) as CSV, like ``kpireport
        passwords OUT --format csv [--all]``; they are recorded as handed out."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.deliver.protect import hand_out, hand_out_csv

        self.run_dir(period)
        return hand_out_csv(hand_out(self.out, everyone=everyone))

    def passwords_command(self) -> str:
        return cli("passwords", self.out, "--format", "csv")

    def send_command(self, period: str, *, test_to: str | None = None) -> str:
        run_dir = self.run_dir(period)
        if test_to:
            return cli("send", run_dir, "--test-to", test_to)
        return cli("send", run_dir, "--book", self._run_book(run_dir))

    def _run_book(self, run_dir: Path) -> Path:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport import api

        name, sha256 = _source(run_dir)
        stored = self.library.version_of(name, sha256)
        if stored is not None:  # the uploaded version it was built from
            return stored[0].path(stored[1])
        if name and BOOK_NAME.match(name) and (self.folder / name).is_file():
            return self.folder / name
        return api.source_book(run_dir)

    def status_command(self, period: str) -> str:
        return cli("status", self.run_dir(period))


def _outside(root: Path, path: Path) -> str | None:
    """Why ``path`` (in ``root``) is not served: a link to a place outside the folder."""
    real = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        return f"a link to {real}, outside the working folder: not opened (copy it in instead)"
    return None


def _unmark(path: Path) -> int:
    """kpireport's marks (fills, notes, the Issues sheet) taken off an uploaded copy."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.data_in.annotate import unmark_workbook

    try:
        return unmark_workbook(path)
    except KpireportError:
        return 0  # the check reports the workbook as it is


def send(run_dir: Path, book_path: Path, *, test_to: str | None = None, progress=None):
    """What ``kpireport send RUN_DIR --book BOOK [--test-to ADDRESS]`` does: :func:`api.send`
    with the server's SMTP settings (a test goes to one address and is not counted as sent;
    its protected copies open with a test password the result carries). A real send is
    refused while someone's generated PDF password was not handed out."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport import api

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.options import SendOptions

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.deliver.transport import SmtpSettings, SmtpTransport, backoff_from_env

    environ = dict(os.environ)
    settings = SmtpSettings.from_env(environ)
    options = SendOptions(sender=settings.sender, book=book_path, test_to=test_to,
                          backoff=backoff_from_env(environ), require_handed_out=True)
    return api.send(run_dir, options, transport=lambda: SmtpTransport(settings),
                    progress=progress)


def _advance(job: Job) -> None:
    job.done += 1


def _source(run_dir: Path) -> tuple[str, str]:
    """(name, sha256) of the workbook a run was built from."""
    try:
        source = json.loads((run_dir / "results.json").read_text())["source"]
        return str(source["file"]), str(source["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return "", ""


def _workers() -> int | None:
    text = os.environ.get("KPIREPORT_SERVE_WORKERS")
    return int(text) if text and text.isdigit() and int(text) > 0 else None
