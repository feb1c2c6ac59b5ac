"""The library calls the CLI makes: each is one function with the options it needs."""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from kpireport import __version__
from kpireport.errors import InvalidWorkbook, KpireportError
from kpireport.issues import Issue
from kpireport.manifest import FILE_FORMATS, MANIFEST_FILE, Hasher, Manifest, ReportEntry
from kpireport.model import Book
from kpireport.options import FORMATS, BuildOptions, SendOptions  # noqa: F401 (FORMATS)
from kpireport.spec import COMPANY

if TYPE_CHECKING:
    from kpireport.deliver import SendOutcome
    from kpireport.manifest import Manifest
    from kpireport.results import Results
    from kpireport.transport import Transport
    from kpireport.workbook import RawBook
from kpireport.validate import validate
from kpireport.workbook import read_workbook


@contextmanager
def _bulk_allocation():
    """Pause the cyclic garbage collector while a workbook becomes objects.

    Reading 1,000 people allocates ~300,000 lists, tuples and dataclasses, none in a cycle;
    the collector's passes over them were ~15% of read+validate. It runs again afterwards,
    with what was allocated meanwhile counted as old (freeze, unfreeze: the oldest
    generation): the first young pass after a build would otherwise walk the millions of
    objects it made (~0.1 s), where the next full pass finds any cycle among them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


# Third-party modules a build needs and a check does not: ~0.15 s of imports (numpy alone
# ~0.09 s). A build from a file imports them in a thread while the workbook is read, in the
# time the reader waits for calamine (Rust, which releases the GIL). Reading a workbook
# imports none of them and none imports kpireport (tests/test_api.py checks both), so neither
# thread waits on an import lock the other holds; the thread is joined before the first fork,
# so no child inherits a lock held mid-import. The xlsx writer is not here: only the child
# that makes results.xlsx needs it (its import, ~45 ms with importlib.metadata, runs there).
BUILD_IMPORTS = ("numpy", "markupsafe", "jinja2", "jinja2.sandbox", "jinja2.ext",
                 "jinja2.compiler", "orjson", "fractions", "csv", "sqlite3", "ctypes.util")


@contextmanager
def _importing_beside(names: tuple[str, ...]):
    """Import ``names`` in a thread while the body runs; wait for it at the end."""
    import threading

    thread = threading.Thread(target=_import_all, args=(names,), name="kpireport-imports",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _import_all(names: tuple[str, ...]) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (the build's own import of it raises it again)
            pass


class Checked(tuple):
    """``(book, issues)`` of a checked workbook, unpacked as a pair; ``raw`` is the workbook as
    read (its cells), kept so that a build from it snapshots the inputs without reading the
    file again."""

    raw: RawBook | None

    def __new__(cls, book: Book | None, issues: list[Issue], raw: RawBook | None = None):
        self = super().__new__(cls, (book, issues))
        self.raw = raw
        return self


def check(path: str | Path) -> Checked:
    """Read and validate a workbook: the typed book (None if invalid) and every issue."""
    with _bulk_allocation():
        raw = read_workbook(path)
        book, issues = validate(raw)
    return Checked(book, issues, raw)


def load(path: str | Path, *, period: int | None = None) -> Checked:
    """Read and validate; raise InvalidWorkbook when there are errors.

    ``period`` (a Month) overrides the workbook's report_period.
    """
    checked = check(path)
    book, issues = checked
    if book is None:
        raise InvalidWorkbook(issues)
    if period is None:
        return checked
    return Checked(with_period(book, period), issues, checked.raw)


def with_period(book: Book, period: int) -> Book:
    """``book`` reporting on ``period`` (a Month) instead of its Settings' report_period."""
    from dataclasses import replace

    from kpireport.validate import no_actuals_in_period

    problem = no_actuals_in_period(book.actuals, period)
    if problem:
        raise KpireportError(f"--period {problem}")
    return replace(book, settings=replace(book.settings, report_period=period))


# ---------------------------------------------------------------------------- build
@dataclass
class BuildResult:
    run_dir: Path
    results: Results
    written: list[Path]
    rendered: int
    cached: int
    failures: dict[str, str]
    issues: list[Issue]
    manifest: Manifest | None = None  # None when the build failed

    @property
    def ok(self) -> bool:
        return not self.failures



def build(source: str | Path | Checked, options: BuildOptions | None = None, *,
          submit: Callable | None = None, progress: Callable[[str], None] | None = None,
          on_start: Callable[[int], None] | None = None,
          clock: Callable[[], datetime] | None = None, **keys) -> BuildResult:
    """Check, score and write every file of SPEC §4 into ``options.out/<period>/``.

    ``source`` is a workbook path, or the ``(book, issues)`` that :func:`load` returned (so a
    caller that checked the workbook does not read it again). ``options`` is a
    :class:`~kpireport.options.BuildOptions`; keywords are a shorthand for one
    (``build(path, out="reports", formats=("html",))``), and an unknown one is refused.
    ``submit`` renders elsewhere (see :mod:`kpireport.cluster`; ``options.dask`` makes one),
    ``progress`` is called with each rendered report, ``on_start`` with how many will be,
    ``clock`` gives the build time of the manifest (UTC now by default).

    A report whose inputs (view model, templates, version, formats) are unchanged since the
    last build in the same folder is not rendered again; a report that takes longer than
    ``report_timeout`` seconds to render fails (in the main thread of a local process; a
    cluster has its own stall limit). The run folder is replaced as a
    whole (:mod:`kpireport.outputs`): if anything fails — a report, a write, a kill — the
    previous build's folder stays exactly as it was. ``archive`` also writes the PDF/A-3b
    copies of kpireport.archive into ``archive/``. The run folder's ``manifest.json``
    (:mod:`kpireport.manifest`, also ``BuildResult.manifest``) lists every file written, with
    its hash.
    """
    if options is None:
        options = BuildOptions.of(**keys)
    elif keys:
        raise KpireportError(f"give build options either as BuildOptions or as keywords, not "
                             f"both ({sorted(keys)[0]!r})")
    if submit is None and options.dask:
        from kpireport.cluster import dask_submitter

        submit = dask_submitter(options.dask)
    with _bulk_allocation():
        return _build(source, options, submit, progress, on_start, clock)


def _build(source, options, submit, progress, on_start, clock) -> BuildResult:
    out, formats, period = options.out, options.formats, options.period
    if isinstance(source, tuple):
        checked = source
    else:
        with _importing_beside(BUILD_IMPORTS):
            checked = load(source, period=period)
    from kpireport import render
    from kpireport.outputs import Staging, run_lock
    from kpireport.results import ResultsFiles, compute
    from kpireport.views import ViewBuilder

    book, issues = checked
    if isinstance(source, tuple) and period is not None:
        book = with_period(book, period)
    raw = getattr(checked, "raw", None)
    from kpireport import forked
    from kpireport.diff import INPUTS_FILE, inputs_bytes

    # The snapshot of the inputs that `diff` compares (from the cells already read) needs
    # only the book: it is made on the other core while this one scores.
    inputs = forked.start(lambda: inputs_bytes(book, raw), name="inputs")
    passwords = None
    if book.settings.pdf_protection != "none":  # a damaged store stops the build first
        from kpireport.protect import PasswordStore

        passwords = PasswordStore.open(Path(out))
    dirs = render.template_dirs(options.templates)
    renderer = render.Renderer(dirs, options.report_timeout)  # its templates, compiled once
    render.check_templates(dirs, book.settings.locale, renderer)
    results = compute(book, issues)
    made = ResultsFiles(results)  # beside the reports (kpireport.reportset)

    def results_files() -> dict[str, bytes]:
        return {**made.wait(), INPUTS_FILE: inputs()}

    run_dir = Path(out) / results.period
    builder = ViewBuilder(results, formats, archive=options.archive)
    fingerprint = render.template_fingerprint(dirs)
    with run_lock(run_dir):
        from kpireport.cycle import BuildGate

        gate = BuildGate(run_dir, reopen_by=options.reopen_by, reopen_note=options.reopen_note,
                         clock=clock)
        staging = Staging(run_dir)  # before rendering: a kill mid-render leaves only this
        try:
            result = _build_into(staging, book, results, builder, issues, formats, dirs,
                                 fingerprint, options.workers, submit, progress, on_start,
                                 renderer, clock or _utc_now, gate, made, results_files)
        finally:
            staging.discard()
        if result.ok:
            gate.record({"period": results.period, "source": {
                "file": book.source_file, "sha256": book.source_sha256}},
                book.settings.require_approval)
    if passwords is not None and result.ok:
        passwords.ensure(book)  # ready for `kpireport passwords` before the first send
    return result


def _build_into(staging, book, results, builder, issues, formats, dirs, fingerprint, workers,
                submit, progress, on_start, renderer, clock, gate,
                made, results_files) -> BuildResult:
    from kpireport.outputs import CACHE_FILE, cache_bytes, read_cache
    from kpireport.recipients import RECIPIENTS_FILE, recipients_record
    from kpireport.reportset import Job, render_reports, report_files
    from kpireport.views import report_specs

    run_dir = staging.run_dir
    job = Job(builder, formats, dirs, fingerprint, read_cache(run_dir), run_dir, staging.dir,
              renderer.timeout, renderer)
    share = render_reports(job, report_specs(results), workers=workers, submit=submit,
                           progress=progress, on_start=on_start, beside=made)
    views = share.views
    files = results_files()
    if share.failures:
        return BuildResult(run_dir, results, [], len(share.rendered),
                           len(views) - len(share.rendered), share.failures, issues)
    hasher = Hasher(staging.dir)
    for name, data in files.items():
        staging.write(name, data)
        hasher.written(name, data)
    staging.adopt(sorted(share.written))  # the reports, written as they were rendered
    hasher.known.update(share.written)
    staging.write(CACHE_FILE, cache_bytes(share.keys))
    rendered = set(share.rendered)
    expected = {v["file"]: report_files(v, formats) for v in views}
    staging.keep({name for v in views if v["file"] not in rendered
                  for name in expected[v["file"]]})
    reports = _manifest_reports(results, views, expected, hasher)
    record = recipients_record(book, results.scores.period, reports)
    staging.write(RECIPIENTS_FILE, record)
    hasher.written(RECIPIENTS_FILE, record)
    manifest = Manifest(
        period=results.period, run_dir=run_dir, built_at=clock().isoformat(timespec="seconds"),
        kpireport_version=__version__, workbook_file=book.source_file,
        workbook_sha256=book.source_sha256, formats=tuple(formats), reports=reports,
        data=tuple(hasher.entry(name) for name in (*files, RECIPIENTS_FILE)))
    staging.write(MANIFEST_FILE, manifest.to_bytes())
    staging.carry_over()
    gate.stage(staging, manifest)  # a sent period changed without --reopen stops here
    written = staging.commit()
    return BuildResult(run_dir, results, written, len(share.rendered),
                       len(views) - len(share.rendered), {}, issues, manifest)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _manifest_reports(results: Results, views: list[dict], expected: dict[str, list[str]],
                      hasher: Hasher) -> tuple[ReportEntry, ...]:
    """The manifest's entry of every report, in the build's order (views follow
    :func:`kpireport.views.report_specs`)."""
    from kpireport.views import report_specs

    s = results.book.settings
    people = {p.employee_id: p for p in results.book.people}
    entries = []
    for (kind, subject), view in zip(report_specs(results), views, strict=True):
        if kind == "employee":
            person = people[subject]
            scope, name, department = subject, person.name, person.department
        elif kind == "department":
            scope, name, department = subject, subject, subject
        elif kind == "company":
            scope, name, department = COMPANY, s.organization, None
        else:
            scope, name, department = "", s.report_title, None
        files = []
        for path in expected[view["file"]]:
            fmt = "archive" if path.startswith("archive/") else path.rsplit(".", 1)[1]
            entry = hasher.entry(path)
            if entry is not None:
                files.append((fmt, entry))
        entries.append(ReportEntry(kind, scope, name, department, view["file"],
                                   tuple(sorted(files, key=lambda f: FILE_FORMATS.index(f[0])))))
    return tuple(entries)


def source_book(run_dir: Path, name: str | None = None) -> Path:
    """The workbook named in a build's manifest (``name``, if already read), looked for where
    a user would keep it."""
    from kpireport.manifest import read_manifest

    name = name or read_manifest(run_dir).workbook_file
    for folder in (Path.cwd(), Path(run_dir).parent, Path(run_dir).parent.parent):
        if (folder / name).is_file():
            return folder / name
    raise KpireportError(f"cannot find {name}, the workbook of {run_dir}; give it with --book")


def send_book(run_dir: str | Path, book: str | Path | Book | None = None) -> Book:
    """The workbook to send ``run_dir`` with: ``book`` (a path, or a Book already loaded), or
    the one named in its manifest; refused unless it is byte for byte the workbook the run was
    built from (its sha256)."""
    from kpireport.manifest import read_manifest

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

    ``options`` is a :class:`~kpireport.options.SendOptions` (keywords are a shorthand for
    one). ``book`` is the workbook already loaded (else ``options.book``, else the one the
    manifest names); it must be the one the run was built from. ``transport`` delivers the
    messages (required unless a dry run: e.g.
    ``kpireport.transport.SmtpTransport(SmtpSettings.from_env(os.environ))``), or a function
    that makes one, called only once there is something to send; ``clock``
    stamps the ledger and the audit trail. The run folder's lock is held throughout, so two
    sends never overlap.

    With Settings ``require_approval`` yes a run that is not approved as it is now is refused
    (:class:`~kpireport.errors.NotApproved`, nothing sent) unless it is a dry run or a test
    send (``options.test_to``: every message to that address, not counted as sent). Every
    send and test send is a line of the run folder's audit trail (kpireport.cycle).
    """
    from kpireport import cycle
    from kpireport.deliver import LEDGER, Ledger, send_messages
    from kpireport.messages import plan_messages, write_outbox
    from kpireport.outputs import run_lock

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
        plan = plan_messages(loaded, run_dir, options.sender or "",
                             templates=options.templates, test_to=options.test_to,
                             only=options.only)
        problems = tuple(plan.problems)
        if options.dry_run:
            written = write_outbox(plan, options.outbox)  # type: ignore[arg-type]
            return SendResult(run_dir, problems, outbox=tuple(written))
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
    return SendResult(run_dir, problems, outcome)
