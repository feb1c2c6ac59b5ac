"""Command line: parse options, call one library function, print, set the exit code."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import click

from kpireport.core.errors import KpireportError
from kpireport.core.options import parse_formats
from kpireport.core.version import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Turns library errors into one-line messages and unexpected ones into a hint."""

    def invoke(self, ctx: click.Context):


        if threading.current_thread() is threading.main_thread():
            # SIGTERM (kill, systemd, cron's timeout) stops a command like Ctrl-C: workers
            # killed, staging removed, the previous run folder untouched.
            signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except KpireportError as exc:
            raise click.ClickException(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:  # the one place an unexpected error is caught
            click.echo(f"Error: internal error ({type(exc).__name__}: {exc}). This is a bug "
                       "in kpireport; please report it with the command you ran "
                       "(set KPIREPORT_DEBUG=1 to see the traceback).", err=True)
            if os.environ.get("KPIREPORT_DEBUG"):
                raise
            sys.exit(1)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _report_timeout() -> float:

    text = os.environ.get("KPIREPORT_REPORT_TIMEOUT", "60")
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise click.UsageError(f"KPIREPORT_REPORT_TIMEOUT={text!r}: give seconds, e.g. 60")
    return value


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="kpireport")
def main() -> None:
    """Turn a KPI workbook into scored monthly performance reviews.

    \b
    Example:
      kpireport init kpis.xlsx --sample acme
      kpireport check kpis.xlsx
      kpireport build kpis.xlsx --out reports
    """


TRACKER_WARNINGS = "ignore::UserWarning:multiprocessing.resource_tracker"


def entry() -> None:
    """The ``kpireport`` command (the console script): :func:`main`, with multiprocessing's
    resource-tracker warning after Ctrl-C silenced."""
    # After Ctrl-C the PDF workers' semaphore may be gone before multiprocessing's resource
    # tracker (a process of its own, started with this interpreter's -W options) looks for
    # it; its "leaked semaphore" warnings then followed "Interrupted." on the terminal.
    sys.warnoptions.append(TRACKER_WARNINGS)
    main()


def _month(value: str | None) -> int | None:
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.model import parse_month

    if value is None:
        return None
    month = parse_month(value)
    if month is None:
        raise click.BadParameter(f"{value!r} is not a month; use YYYY-MM")
    return month


@main.command(context_settings=CONTEXT)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sample", type=click.Choice(["acme", "onlinecrm", "synthetic"]),
              help="Write a filled sample instead of the blank template.")
@click.option("--employees", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Size of the synthetic sample.")
@click.option("--year", type=click.IntRange(1990, 2100),
              help="Fiscal year whose twelve months head Targets and Actuals.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--locale", "locale_", metavar="LOCALE",
              help="Language of the instructions, notes and prompts (e.g. vi_VN); also the "
                   "Settings locale of a blank template. Sheet and column names stay English.")
@click.option("--currency", metavar="CODE",
              help="Settings currency of a blank template (ISO 4217, e.g. EUR); by default "
                   "the currency of --locale's country (vi_VN: VND), else USD.")
def init(path: Path, sample: str | None, employees: int, year: int | None, force: bool,
         locale_: str | None, currency: str | None) -> None:
    """Write the blank standard template (or a sample) to PATH.

    \b
    Example:
      kpireport init kpis.xlsx --year 2026
      kpireport init kpis.xlsx --locale vi_VN
      kpireport init kpis.xlsx --locale vi_VN --currency USD
      kpireport init acme.xlsx --sample acme
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.data_in import samples, template

    if locale_ is not None and not template.has_template_texts(locale_):
        raise click.BadParameter(
            f"{locale_!r} has no template texts; available: "
            f"{', '.join(template.template_locales())}", param_hint="--locale")
    if currency is not None and sample is not None:
        raise click.BadParameter("a sample has its own currency; --currency is for the blank "
                                 "template", param_hint="--currency")
    if currency is not None and not template.is_currency(currency):
        raise click.BadParameter(f"{currency!r} is not an ISO 4217 currency code (e.g. USD, "
                                 "EUR, VND)", param_hint="--currency")
    if sample is None:
        written = template.write_template(path, year=year, force=force, locale=locale_,
                                          currency=currency)
    else:
        if sample == "synthetic":
            data = samples.synthetic(employees, year=year or 2025)
        else:
            data = samples.SAMPLES[sample]()
        written = template.write_workbook(path, data, force=force, locale=locale_)
    click.echo(f"Wrote {written}")


@main.command(context_settings=CONTEXT)
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--year", type=click.IntRange(1990, 2100),
              help="Add the twelve month columns of this fiscal year.")
def prepare(book: Path, year: int | None) -> None:
    """Lay out one Actuals (and Targets) row per scorecard line, keeping every value.

    A backup copy BOOK.bak.xlsx is written before the workbook is saved.

    \b
    Example:
      kpireport prepare kpis.xlsx --year 2026
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.data_in.prepare import prepare_workbook

    result = prepare_workbook(book, year=year)
    for sheet, rows in result.rows_added.items():
        click.echo(f"{sheet}: {rows} row(s) and {result.months_added.get(sheet, 0)} month "
                   "column(s) added")
    click.echo(f"Backup: {result.backup}")


@main.command(context_settings=CONTEXT)
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list info notes.")
@click.option("--annotate", metavar="[OUT.xlsx]", is_flag=False, flag_value="",
              default=None, help="Also write a copy of BOOK (default BOOK.checked.xlsx) with "
              "every issue marked on its cell and an Issues sheet.")
def check(book: Path, fmt: str, show_all: bool, annotate: str | None) -> None:
    """Validate BOOK and list every problem with its sheet and cell.

    Exit 0 when there are no errors (warnings allowed), 1 otherwise.

    \b
    Example:
      kpireport check kpis.xlsx
      kpireport check kpis.xlsx --format json > issues.json
      kpireport check kpis.xlsx --annotate          # writes kpis.checked.xlsx
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport import api

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.errors import UnreadableWorkbook

    try:
        _, issues = api.check(book)
    except UnreadableWorkbook as exc:
        if fmt == "json":
            click.echo(json.dumps({"valid": False, "issues": [
                {"severity": "error", "code": "unreadable-file", "sheet": "", "cell": "",
                 "message": str(exc)}]}, ensure_ascii=False, indent=2))
            sys.exit(1)
        raise
    errors = sum(i.severity == "error" for i in issues)
    annotated = None
    if annotate is not None:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.data_in.annotate import annotate_workbook

        annotated = annotate_workbook(book, issues, Path(annotate) if annotate else None)
    if fmt == "json":
        click.echo(json.dumps({"valid": errors == 0, "issues": [i.as_dict() for i in issues]},
                              ensure_ascii=False, indent=2))
    else:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.cli.console import print_issues

        print_issues(book, issues, show_all=show_all)
    if annotated is not None:
        click.echo(f"Annotated copy: {annotated.out} ({annotated.marked} cell(s) marked, "
                   f"{annotated.listed} issue(s) listed"
                   + (f", {annotated.cleared} old mark(s) cleared" if annotated.cleared else "")
                   + ")", err=fmt == "json")
        if annotated.kept:
            click.echo(f"The earlier copy had been edited and saved: kept as {annotated.kept}",
                       err=fmt == "json")
        if annotated.not_kept:
            click.echo("Warning: not kept in the copy (openpyxl cannot write them back): "
                       + ", ".join(annotated.not_kept), err=True)
    sys.exit(1 if errors else 0)


def _formats(value: str) -> tuple[str, ...]:
    try:
        return parse_formats(value)
    except KpireportError:
        raise click.BadParameter(f"{value!r}: use html, pdf or html,pdf") from None


def _do_build(book: Path | tuple, period: str | None, out: Path, fmt: str,
              templates: Path | None, workers: int | None, dask: str | None,
              archive: bool = False, reopen: tuple[str | None, str | None] = (None, None)):
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport import api

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.options import BuildOptions

    options = BuildOptions(out=out, period=_month(period), formats=_formats(fmt),
                           templates=templates, workers=workers, dask=dask, archive=archive,
                           report_timeout=_report_timeout(), reopen_by=reopen[0],
                           reopen_note=reopen[1])
    if not sys.stderr.isatty():  # no bar to draw (cron, a pipe): not even rich.progress
        result = api.build(book, options)
    else:
        # lazy: rich is loaded only where it is used (start-up stays light)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task("Rendering reports", total=None)
            result = api.build(book, options, on_start=lambda n: bar.update(task, total=n),
                               progress=lambda name: bar.advance(task))
    if result.failures:
        for _name, message in sorted(result.failures.items()):
            click.echo(f"Error: {message}", err=True)
        click.echo(f"Error: {len(result.failures)} report(s) failed; nothing was written "
                   f"(the previous files in {result.run_dir} are unchanged).", err=True)
        sys.exit(1)
    warnings = [i for i in result.issues if i.severity == "warning"]
    click.echo(f"Scored {len(result.results.owners)} scorecards for {result.results.period}; "
               f"rendered {result.rendered} report(s), {result.cached} unchanged"
               + (f"; {len(warnings)} warning(s) (see kpireport check)" if warnings else ""))
    click.echo(f"Reports: {result.run_dir / 'index.html'}")
    if result.leftover:
        click.echo(f"Note: {result.leftover}", err=True)
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month.cycle import build_summary

    click.echo(build_summary(result.run_dir))
    return result


BUILD_OPTIONS = [
    click.option("--period", metavar="YYYY-MM", help="Month to report (default: Settings)."),
    click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="reports",
                 show_default=True, help="Folder for the reports (a YYYY-MM folder inside)."),
]


def _build_options(func):
    for option in reversed(BUILD_OPTIONS):
        func = option(func)
    return func


@main.command(context_settings=CONTEXT)
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path))
@_build_options
@click.option("--format", "fmt", default="html,pdf", show_default=True,
              help="Report formats: html, pdf or html,pdf.")
@click.option("--templates", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of templates that override the built-in ones by file name.")
@click.option("--workers", type=click.IntRange(1, 256),
              help="Processes that render reports (default: all cores).")
@click.option("--dask", metavar="ADDRESS", help="Render on a Dask cluster, e.g. tcp://host:8786.")
@click.option("--archive", is_flag=True, help="Also write PDF/A-3b copies with their results "
              "attached into RUN_DIR/archive/ (never e-mailed).")
@click.option("--reopen", is_flag=True, help="Rebuild a period that was already sent (with "
              "--by and --note; audited). Reports sent again are marked as corrections.")
@click.option("--by", "by", metavar="NAME", help="With --reopen: who reopens the period.")
@click.option("--note", metavar="TEXT", help="With --reopen: why.")
def build(book: Path, period: str | None, out: Path, fmt: str, templates: Path | None,
          workers: int | None, dask: str | None, archive: bool, reopen: bool,
          by: str | None, note: str | None) -> None:
    """Score BOOK and write results.json, results.xlsx, payroll.csv and the reports.

    \b
    Example:
      kpireport build kpis.xlsx --out reports
      kpireport build kpis.xlsx --period 2026-10 --format pdf --workers 4
      kpireport build kpis.xlsx --archive      # and the PDF/A copies to keep
      kpireport build kpis.xlsx --reopen --by "Lan Tran" --note "March actuals corrected"
    """
    if (by is not None or note is not None) and not reopen:
        raise click.UsageError("--by and --note go with --reopen")
    if reopen and (not (by or "").strip() or not (note or "").strip()):
        raise click.UsageError("--reopen needs --by NAME and --note TEXT (who reopens the "
                               "period, and why)")
    _do_build(book, period, out, fmt, templates, workers, dask, archive,
              reopen=(by, note) if reopen else (None, None))


SMTP_OPTIONS = [
    click.option("--smtp-host", help="SMTP server (default: $KPIREPORT_SMTP_HOST)."),
    click.option("--smtp-port", help="SMTP port (default: $KPIREPORT_SMTP_PORT, or 587/465/25)."),
    click.option("--smtp-user", help="SMTP login (default: $KPIREPORT_SMTP_USER); the password "
                 "is read only from $KPIREPORT_SMTP_PASSWORD."),
    click.option("--smtp-security", type=click.Choice(["starttls", "ssl", "none"]),
                 help="starttls (default), ssl, or none (loopback only)."),
    click.option("--from", "sender", help="Sender address (default: $KPIREPORT_SMTP_FROM)."),
]


def _smtp_options(func):
    for option in reversed(SMTP_OPTIONS):
        func = option(func)
    return func


DRY_RUN_SENDER = "kpireport@example.invalid"  # a preview needs no real sender (RFC 2606 name)


def _do_send(run_dir: Path, book_path: Path | None, dry_run: bool, outbox: Path | None,
             resend: bool, smtp: dict, templates: Path | None = None, book=None,
             test_to: str | None = None, only: str | None = None) -> None:

    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.console import Console

    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.table import Table

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport import api

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.options import SendOptions

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.deliver.transport import SmtpSettings, SmtpTransport, backoff_from_env

    if dry_run and outbox is None:
        raise click.UsageError("--dry-run needs --outbox DIR")
    sender = smtp.get("sender") or os.environ.get("KPIREPORT_SMTP_FROM")
    if not sender and dry_run:
        sender = DRY_RUN_SENDER
        click.echo(f"Note: no sender set (KPIREPORT_SMTP_FROM or --from); the preview uses "
                   f"From: {sender}", err=True)
    if not sender:
        raise click.UsageError("no sender: set KPIREPORT_SMTP_FROM or --from")
    environ = dict(os.environ)
    options = SendOptions(sender=sender, book=book_path, templates=templates, dry_run=dry_run,
                          outbox=outbox, resend=resend, backoff=backoff_from_env(environ),
                          test_to=test_to, only=only)
    result = api.send(run_dir, options, book=book,
                      transport=lambda: SmtpTransport(SmtpSettings.from_env(environ, **smtp)))
    for problem in result.problems:
        click.echo(f"Warning: {problem}", err=True)
    if dry_run:
        click.echo(f"Dry run: wrote {len(result.outbox)} message(s) to {outbox}; nothing was "
                   "sent.")
        return
    outcome = result.outcome
    assert outcome is not None
    console = Console(stderr=False, highlight=False)
    table = Table(title="E-mail summary", show_lines=False)
    for column in ("report", "recipient", "result"):
        table.add_column(column)
    for report, rcpt in outcome.sent:
        table.add_row(report, rcpt, "[green]sent[/]")
    for report, rcpt in outcome.skipped:
        table.add_row(report, rcpt, "[dim]already sent[/]")
    for report, rcpt, reason in outcome.failed:
        table.add_row(report, rcpt, f"[red]failed[/]: {reason}")
    for report, rcpt in outcome.unknown:
        table.add_row(report, rcpt, "[yellow]unknown[/]: a previous run stopped while sending; "
                      "check the mailbox, then use --resend to send again")
    console.print(table)
    console.print(f"{len(outcome.sent)} sent, {len(outcome.skipped)} already sent, "
                  f"{len(outcome.failed)} failed, {len(outcome.unknown)} unknown"
                  + (f" (a test: every message went to {test_to} alone; the ledger does not "
                     "count them as sent)" if test_to else ""))
    if result.test_password:
        console.print(f"The protected test copies open with the test password "
                      f"{result.test_password} (this test only; employees' own passwords are "
                      "never used for a test)")
    if not outcome.ok:
        sys.exit(3)


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--book", type=click.Path(dir_okay=False, path_type=Path),
              help="The workbook the reports were built from (recipients, names).")
@click.option("--dry-run", is_flag=True, help="Write the messages to --outbox; send nothing.")
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the .eml files of --dry-run.")
@click.option("--resend", is_flag=True, help="Send again what the ledger says was sent.")
@click.option("--templates", type=click.Path(file_okay=False, path_type=Path),
              help="Folder whose email_subject.txt / email_body.txt / email_body.html override "
                   "the built-in ones.")
@click.option("--test-to", metavar="ADDRESS", help="Send every message to ADDRESS alone, "
              "subject marked as a test; needs no approval and is not counted as sent.")
@click.option("--only", metavar="ID", help="Only the reports of this employee id, department "
              "or COMPANY.")
@_smtp_options
def send(run_dir: Path, book: Path | None, dry_run: bool, outbox: Path | None, resend: bool,
         templates: Path | None, test_to: str | None, only: str | None, **smtp) -> None:
    """E-mail the reports of one build (RUN_DIR, e.g. reports/2026-10) to their stakeholders.

    Every message is sent exactly once: a re-run skips what was sent and retries what failed.
    With Settings require_approval yes (the default) only a run approved as it is now is
    sent (kpireport approve). Exit 0 when everything was sent, 3 when any message failed,
    1 when the run is not approved, or the build has reports but not one of them has a
    recipient.

    \b
    Example:
      kpireport init kpis.xlsx --sample acme
      kpireport build kpis.xlsx --out reports
      kpireport send reports/2026-03 --book kpis.xlsx --dry-run --outbox outbox
      export KPIREPORT_SMTP_HOST=smtp.example.com KPIREPORT_SMTP_FROM=hr@example.com
      kpireport approve reports/2026-03 --by "HR lead"
      kpireport doctor --smtp && kpireport send reports/2026-03 --book kpis.xlsx

    Before approving, send every message to yourself: send RUN_DIR --test-to ADDRESS
    [--only E003] (subjects marked [TEST]; nothing counted as sent).
    """
    smtp = {k.removeprefix("smtp_"): v for k, v in smtp.items() if v}
    _do_send(run_dir, book, dry_run, outbox, resend, smtp, templates, test_to=test_to,
             only=only)


@main.command(context_settings=CONTEXT)
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path))
@_build_options
@click.option("--send", "do_send", is_flag=True, help="E-mail the reports after the build.")
@click.option("--dry-run", is_flag=True,
              help="Write every message to --outbox as .eml after the build; send nothing.")
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the .eml files of --dry-run.")
@click.option("--workers", type=click.IntRange(1, 256), help="Rendering processes.")
@click.option("--dask", metavar="ADDRESS", help="Render on a Dask cluster.")
@click.option("--templates", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of templates that override the built-in reports and e-mails.")
@_smtp_options
def run(book: Path, period: str | None, out: Path, do_send: bool, dry_run: bool,
        outbox: Path | None, workers: int | None, dask: str | None, templates: Path | None,
        **smtp) -> None:
    """The monthly job: check BOOK, build the reports, and (with --send) e-mail them.

    Stops at the first stage that fails. --dry-run --outbox DIR runs the whole month but
    writes the messages as .eml files instead of sending them. With --send and Settings
    require_approval yes, a run that is not approved as built is not sent: the job says
    what to approve and exits 4.

    \b
    Example:
      kpireport run kpis.xlsx --out reports --dry-run --outbox outbox
      kpireport run kpis.xlsx --out reports --send     # e.g. from cron on the 3rd
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport import api

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.cli.console import print_issues

    if dry_run and outbox is None:
        raise click.UsageError("--dry-run needs --outbox DIR")
    if dry_run and do_send:
        raise click.UsageError("use --send or --dry-run, not both")

    checked = api.check(book)  # read and validated once, for the build and the send
    loaded, issues = checked
    if loaded is None:
        print_issues(book, issues)
        sys.exit(1)
    result = _do_build(checked, period, out, "html,pdf", templates, workers, dask)
    if do_send and loaded.settings.require_approval:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.month.cycle import EXIT_NOT_APPROVED, approval

        state = approval(result.run_dir)
        if not state["valid"] and state["state"] != "audit broken":
            click.echo(f"Not sent: {result.run_dir} awaits approval ({state['state']}). "
                       f"Review it: kpireport diff {result.run_dir}; approve it: kpireport "
                       f"approve {result.run_dir} --by NAME; then send: kpireport send "
                       f"{result.run_dir} (or run this job again).", err=True)
            sys.exit(EXIT_NOT_APPROVED)
    if do_send or dry_run:
        smtp = {k.removeprefix("smtp_"): v for k, v in smtp.items() if v}
        _do_send(result.run_dir, book, dry_run, outbox, False, smtp, templates, book=loaded)

