"""The library's public calls: ``check``, ``load``, ``build`` and ``send``.

Each is one function with the options it needs; the CLI and the web app adapt them. The stages
they run live in the subpackages (kpireport.read, .score, .report, .deliver, .month).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kpireport.core.collector import bounded_step
from kpireport.core.errors import InvalidWorkbook, KpireportError
from kpireport.core.issues import Issue
from kpireport.core.model import Book
from kpireport.core.options import BuildOptions, SendOptions
from kpireport.read.validate import no_actuals_in_period, validate
from kpireport.read.workbook import RawBook, read_workbook
from kpireport.report.manifest import read_manifest
from kpireport.report.outputs import BuildResult, run_lock

if TYPE_CHECKING:
    from kpireport.deliver.send import SendOutcome
    from kpireport.deliver.transport import Transport
    from kpireport.report.manifest import ReportEntry
    from kpireport.score.results import Results


class Checked(tuple):
    """``(book, issues)`` of a checked workbook, unpacked as a pair; ``raw`` is the workbook as
    read (its cells), kept so that a build from it snapshots the inputs without reading the
    file again."""

    raw: RawBook | None

    def __new__(cls, book: Book | None, issues: list[Issue], raw: RawBook | None = None):
        self = super().__new__(cls, (book, issues))
        self.raw = raw
        return self


def check(path: str | Path, *, source_name: str | None = None) -> Checked:
    """Read and validate a workbook: the typed book (None if invalid) and every issue.

    ``source_name`` is the workbook's name as people know it, shown on every report, in
    results.json, the manifest and inputs.json (default: the file's own name). The web app
    passes the name a file was uploaded as, whatever name the stored copy has on disk.
    """
    with bounded_step():
        raw = read_workbook(path)
        book, issues = validate(raw)
    if book is not None and source_name:
        book = replace(book, source_file=source_name)
    return Checked(book, issues, raw)


def load(path: str | Path, *, period: int | None = None,
         source_name: str | None = None) -> Checked:
    """Read and validate; raise InvalidWorkbook when there are errors.

    ``period`` (a Month) overrides the workbook's report_period; ``source_name`` is
    :func:`check`'s.
    """
    checked = check(path, source_name=source_name)
    book, issues = checked
    if book is None:
        raise InvalidWorkbook(issues)
    if period is None:
        return checked
    return Checked(with_period(book, period), issues, checked.raw)


def with_period(book: Book, period: int) -> Book:
    """``book`` reporting on ``period`` (a Month) instead of its Settings' report_period."""
    problem = no_actuals_in_period(book.actuals, period)
    if problem:
        raise KpireportError(f"--period {problem}")
    return replace(book, settings=replace(book.settings, report_period=period))


# ---------------------------------------------------------------------------- explain
def explain(path: str | Path, owner: str, kpi: str | None = None, *,
            period: int | None = None) -> dict:
    """The whole path of an owner's numbers (or one KPI's), from the cells read to the rounded
    money, as a JSON-able document (schema ``kpireport/explain@1``; see docs/explain.md)."""
    # lazy: scoring is loaded only where it is used (start-up stays light)
    from kpireport.score.explain import Explainer

    # lazy: scoring is loaded only where it is used (start-up stays light)
    from kpireport.score.results import compute

    book, issues = load(path, period=period)
    return Explainer(compute(book, issues)).owner(owner, kpi)


def verify(pdf: str | Path, book: str | Path | None = None, *,
           password: str | None = None):
    """Verify a kpireport PDF (see docs/verify.md): the ``Verification`` when it is intact
    and, given ``book``, recomputes to the same figures; else raises ``NotVerified`` with the
    first difference in words."""
    # lazy: pikepdf and the statement reader load only on the path that needs them
    from kpireport.report.statement import verify_pdf

    return verify_pdf(pdf, book, password=password)


# ---------------------------------------------------------------------------- build
def build(source: str | Path | Checked, options: BuildOptions | None = None, *,
          submit: Callable | None = None, progress: Callable[[str], None] | None = None,
          on_start: Callable[[int], None] | None = None,
          clock: Callable[[], datetime] | None = None, **keys) -> BuildResult:
    """Check, score and write every file of SPEC §4 into ``options.out/<period>/``.

    ``source`` is a workbook path, or the ``(book, issues)`` that :func:`load` returned (so a
    caller that checked the workbook does not read it again). ``options`` is a
    :class:`~kpireport.core.options.BuildOptions`; keywords are a shorthand for one
    (``build(path, out="reports", formats=("html",))``), and an unknown one is refused.
    ``submit`` renders elsewhere (see :mod:`kpireport.report.cluster`; ``options.dask`` makes
    one), ``progress`` is called with each rendered report, ``on_start`` with how many will be,
    ``clock`` gives the build time of the manifest (UTC now by default).

    A report whose inputs (view model, templates, version, formats) are unchanged since the
    last build in the same folder is not rendered again; a report rendered in a worker process
    that takes longer than ``report_timeout`` seconds fails. The run folder is replaced as a
    whole (:mod:`kpireport.report.outputs`): if anything fails — a report, a write, a kill — the
    previous build's folder stays exactly as it was. ``archive`` also writes the PDF/A-3b
    copies of kpireport.report.archive into ``archive/``. The run folder's ``manifest.json``
    (:mod:`kpireport.report.manifest`, also ``BuildResult.manifest``) lists every file written,
    with its hash. The steps are :class:`kpireport.report.build.Build`'s; this call adds the
    managed month's gate (kpireport.month.cycle), the recipients of each report and, for
    protected PDFs, the password store (kpireport.deliver).
    """
    if options is None:
        options = BuildOptions.of(**keys)
    elif keys:
        raise KpireportError(f"give build options either as BuildOptions or as keywords, not "
                             f"both ({sorted(keys)[0]!r})")
    # lazy: `check` and `send` never load the build's modules (numpy, Jinja, the writers)
    from kpireport.deliver.protect import PasswordStore

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.deliver.recipients import RECIPIENTS_FILE, recipients_record

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month.cycle import BuildGate

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.report.build import Build

    if submit is None and options.dask:
        from kpireport.report.cluster import dask_submitter  # lazy: Dask is optional

        submit = dask_submitter(options.dask)
    checked = source if isinstance(source, tuple) else load(source, period=options.period)
    book, issues = checked
    if isinstance(source, tuple) and options.period is not None:
        book = with_period(book, options.period)
    passwords = None
    if book.settings.pdf_protection != "none":  # a damaged store stops the build first
        passwords = PasswordStore.open(Path(options.out))

    def gate(run_dir: Path) -> BuildGate:
        return BuildGate(run_dir, reopen_by=options.reopen_by,
                         reopen_note=options.reopen_note, clock=clock)

    def recipients(results: Results, reports: tuple[ReportEntry, ...]) -> dict[str, bytes]:
        return {RECIPIENTS_FILE: recipients_record(book, results.scores.period, reports)}

    paid = None
    if book.settings.bonus_payment != "none" and book.payments is None:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.month.payments import paid_from_runs

        paid = paid_from_runs(options.out, book)
    result = Build(book, list(issues), options, raw=getattr(checked, "raw", None), gate=gate,
                   extra_files=recipients, submit=submit, progress=progress, paid=paid,
                   on_start=on_start, **({"clock": clock} if clock else {})).run()
    if passwords is not None and result.ok:
        passwords.ensure(book)  # ready for `kpireport passwords` before the first send
    return result


def source_book(run_dir: Path, name: str | None = None) -> Path:
    """The workbook named in a build's manifest (``name``, if already read), looked for where
    a user would keep it."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.report.manifest import read_manifest

    name = name or read_manifest(run_dir).workbook_file
    for folder in (Path.cwd(), Path(run_dir).parent, Path(run_dir).parent.parent):
        if (folder / name).is_file():
            return folder / name
    raise KpireportError(f"cannot find {name}, the workbook of {run_dir}; give it with --book")


def send_book(run_dir: str | Path, book: str | Path | Book | None = None) -> Book:
    """The workbook to send ``run_dir`` with: ``book`` (a path, or a Book already loaded), or
    the one named in its manifest; refused unless it is byte for byte the workbook the run was
    built from (its sha256)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if isinstance(book, Book):
        loaded, path = book, Path(book.source_file)
    else:
        path = Path(book) if book is not None else source_book(run_dir,
                                                               manifest.workbook_file)
        loaded, _ = load(path)
    if loaded.source_sha256 != manifest.workbook_sha256:
        raise KpireportError(f"{path} is not the workbook {run_dir} was built from "
                             f"({manifest.workbook_file}, sha256 "
                             f"{manifest.workbook_sha256[:12]}…): send with that "
                             "workbook, or build again from this one")
    return loaded


# ---------------------------------------------------------------------------- send
@dataclass(frozen=True)
class SendResult:
    """What ``send`` did: the plan's warnings, and either the delivery outcome or (a dry run)
    the .eml files written."""

    run_dir: Path
    problems: tuple[str, ...]
    outcome: SendOutcome | None = None
    outbox: tuple[Path, ...] = ()
    # a test send of protected reports: the one password every test copy opens with
    test_password: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome is None or self.outcome.ok


def send(run_dir: str | Path, options: SendOptions | None = None, *,
         book: Book | None = None,
         transport: Transport | Callable[[], Transport] | None = None,
         clock: Callable[[], datetime] | None = None,
         progress: Callable[[str], None] | None = None,
         sleep: Callable[[float], None] | None = None, **keys) -> SendResult:
    """E-mail the reports of one build exactly once (or, ``dry_run``, write them to an outbox).

    ``options`` is a :class:`~kpireport.core.options.SendOptions` (keywords are a shorthand for
    one). ``book`` is the workbook already loaded (else ``options.book``, else the one the
    manifest names); it must be the one the run was built from. ``transport`` delivers the
    messages (required unless a dry run: e.g.
    ``kpireport.deliver.transport.SmtpTransport(SmtpSettings.from_env(os.environ))``), or a function
    that makes one, called only once there is something to send; ``clock``
    stamps the ledger and the audit trail. The run folder's lock is held throughout, so two
    sends never overlap.

    With Settings ``require_approval`` yes a run that is not approved as it is now is refused
    (:class:`~kpireport.core.errors.NotApproved`, nothing sent) unless it is a dry run or a test
    send (``options.test_to``: every message to that address, not counted as sent). Every
    send and test send is a line of the run folder's audit trail (kpireport.month.cycle).
    """
    # lazy: `check` and `build` never load e-mail's modules
    from kpireport.deliver.messages import plan_messages, write_outbox

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.deliver.protect import generate_password, require_handed_out

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.deliver.send import LEDGER, Ledger, send_messages

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month import cycle

    if options is None:
        options = SendOptions.of(**keys)
    elif keys:
        raise KpireportError(f"give send options either as SendOptions or as keywords, not "
                             f"both ({sorted(keys)[0]!r})")
    if transport is None and not options.dry_run:
        raise KpireportError("send needs a transport (an SMTP server) unless it is a dry run")
    run_dir = Path(run_dir)
    with run_lock(run_dir, shared=options.dry_run):
        loaded = send_book(run_dir, book if book is not None else options.book)
        if not options.dry_run and options.test_to is None:
            cycle.require_approval(run_dir, loaded.settings.require_approval)
            if options.require_handed_out:
                require_handed_out(loaded, run_dir.parent)
        test_password = None
        if options.test_to is not None and loaded.settings.pdf_protection != "none":
            test_password = options.test_password or generate_password()
        plan = plan_messages(loaded, run_dir, options.sender or "",
                             templates=options.templates, test_to=options.test_to,
                             only=options.only, corrections=cycle.corrections(run_dir),
                             test_password=test_password)
        problems = tuple(plan.problems)
        if options.dry_run:
            written = write_outbox(plan, options.outbox)  # type: ignore[arg-type]
            return SendResult(run_dir, problems, outbox=tuple(written),
                              test_password=test_password)
        if not hasattr(transport, "send"):
            transport = transport()  # type: ignore[operator]
        # a test send is never counted as sent
        ledger = Ledger(run_dir / LEDGER, clock=clock) if options.test_to is None \
            else cycle.NoLedger()
        try:
            outcome = send_messages(plan, transport, ledger, options.sender or "",
                                    resend=options.resend, retries=options.retries,
                                    backoff=options.backoff, progress=progress,
                                    **({"sleep": sleep} if sleep else {}))
        finally:
            ledger.close()
        cycle.record_send(run_dir, outcome, test_to=options.test_to, only=options.only,
                          clock=clock)
    return SendResult(run_dir, problems, outcome, test_password=test_password)
