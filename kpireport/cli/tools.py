"""Commands around the month: import, passwords, doctor, serve (the CLI only adapts)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kpireport.cli.app import CONTEXT, _smtp_options, main


@main.command("import", context_settings=CONTEXT)
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--book", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The workbook whose Actuals sheet receives the values.")
@click.option("--map", "mapping", type=click.Path(dir_okay=False, path_type=Path),
              help="Mapping file (TOML), or the name of a shipped example (hubspot-deals, "
              "salesforce-opportunities, ad-campaigns, cloudpro-tickets); without it SOURCE "
              "must be owner,kpi_id,period,actual.")
@click.option("--dry-run", is_flag=True, help="Show the changes (old → new); write nothing.")
@click.option("--skip-bad-rows", is_flag=True,
              help="Import the good records even when some cannot be mapped.")
def import_(source: Path, book: Path, mapping: Path | None, dry_run: bool,
            skip_bad_rows: bool) -> None:
    """Write monthly actuals from a CRM or ad-platform export (CSV or .xlsx) into BOOK.

    A backup BOOK.bak.xlsx is written first; only the mapped Actuals cells change.

    \b
    Example:
      kpireport import deals.csv --book kpis.xlsx --map hubspot-deals --dry-run
      kpireport import campaigns.csv --book kpis.xlsx --map my-campaigns.toml
      kpireport import actuals-long.csv --book kpis.xlsx
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.cli.console import print_import_plan

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.data_in.importer import apply_import, plan_import

    plan = plan_import(source, book, mapping)
    shown = 20
    for record in plan.bad[:shown]:
        click.echo(f"{'Warning' if skip_bad_rows else 'Error'}: {source.name} "
                   f"{record.unit} {record.line}: {record.reason}", err=True)
    if len(plan.bad) > shown:
        click.echo(f"… and {len(plan.bad) - shown} more bad record(s)", err=True)
    if plan.bad and not skip_bad_rows:
        click.echo(f"Error: {len(plan.bad)} record(s) cannot be imported; nothing was written "
                   "(fix them, or use --skip-bad-rows to import the others).", err=True)
        sys.exit(1)
    for (owner, kpi), count in sorted(plan.unscored.items()):
        click.echo(f"Warning: {owner} has no scorecard line for {kpi} (nor a department or "
                   f"company line it rolls up into): {count} record(s) left out", err=True)
    print_import_plan(plan, dry_run=dry_run)
    if dry_run or not plan.changes:
        return
    backup, not_kept = apply_import(plan)
    if not_kept:
        click.echo("Warning: not kept in the workbook (openpyxl cannot write them back; the "
                   f"backup has them): {', '.join(not_kept)}", err=True)
    click.echo(f"Wrote {len(plan.changes)} value(s) into {book} (backup: {backup})")


@main.command(context_settings=CONTEXT)
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "csv"]), default="text",
              show_default=True)
@click.option("--all", "everyone", is_flag=True,
              help="List every generated password again, not only the new ones.")
def passwords(out_dir: Path, fmt: str, everyone: bool) -> None:
    """List the generated PDF passwords of OUT_DIR (the --out folder of build), for hand-out.

    Each password is listed once: later runs list only passwords generated since (new
    people); --all lists everyone again. Passwords typed into the People sheet
    (pdf_password) are not listed. Hand them out through another channel than e-mail.

    \b
    Example:
      kpireport passwords reports --format csv > passwords.csv
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.deliver.protect import hand_out

    rows = hand_out(out_dir, everyone=everyone)
    if fmt == "csv":
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.deliver.protect import hand_out_csv

        click.echo(hand_out_csv(rows), nl=False)
        return
    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.console import Console

    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.markup import escape

    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.table import Table

    console = Console(highlight=False)
    if rows:
        table = Table(title="PDF passwords")
        for column in ("employee_id", "name", "email", "password"):
            table.add_column(column, no_wrap=column == "password")
        for row in rows:
            table.add_row(escape(row.employee_id), escape(row.name), escape(row.email),
                          escape(row.password))
        console.print(table)
    console.print(f"{len(rows)} password(s)" + ("" if everyone else
                  " not handed out before; --all lists everyone"))


@main.command(context_settings=CONTEXT)
@click.option("--smtp", "smtp_check", is_flag=True,
              help="Connect to the configured SMTP server (EHLO, STARTTLS, AUTH, sender) and "
                   "say what works; nothing is sent. Exit 1 if a step fails.")
@_smtp_options
def doctor(smtp_check: bool, **smtp) -> None:
    """Report what kpireport finds on this machine, what is missing and what it costs.

    \b
    Example:
      kpireport doctor
      KPIREPORT_SMTP_HOST=smtp.example.com KPIREPORT_SMTP_FROM=hr@example.com \\
        kpireport doctor --smtp
    """

    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.console import Console

    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.markup import escape

    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.table import Table

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.cli.doctor import check_smtp, diagnose

    if smtp_check:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.deliver import send as deliver

        options = {k.removeprefix("smtp_"): v for k, v in smtp.items() if v}
        settings = deliver.SmtpSettings.from_env(dict(os.environ), **options)
        findings = check_smtp(settings, settings.sender)
        table = Table(title=f"SMTP check: {settings.host}:{settings.port} (nothing is sent)")
        for column in ("step", "status", "detail", "to fix"):
            table.add_column(column)
        for item in findings:
            table.add_row(escape(item.name), "[green]ok[/]" if item.ok else "[red]failed[/]",
                          escape(item.detail), escape(item.cost))
        Console(highlight=False).print(table)
        if not all(item.ok for item in findings):
            sys.exit(1)
        return
    table = Table(title="kpireport doctor")
    for column in ("component", "status", "detail", "if missing"):
        table.add_column(column)
    for item in diagnose():
        table.add_row(escape(item.name), "[green]ok[/]" if item.ok else "[yellow]missing[/]",
                      escape(item.detail), escape(item.cost))
    Console(highlight=False).print(table)


@main.command(context_settings=CONTEXT)
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path),
                default=".")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback requires a login token "
                   "($KPIREPORT_SERVE_TOKEN, or one printed at start).")
@click.option("--port", type=click.IntRange(1, 65535), default=8750, show_default=True)
@click.option("--max-upload", metavar="MB", type=click.IntRange(1, 200), default=50,
              show_default=True, help="Largest workbook an upload may be.")
def serve(folder: Path, host: str, port: int, max_upload: int) -> None:
    """Run the month in a browser: check, build, review, approve and send the workbooks of
    FOLDER (runs go to FOLDER/reports), with the command line of each step shown.

    \b
    Example:
      kpireport serve kpis/                 # then open http://127.0.0.1:8750/
      KPIREPORT_SERVE_TOKEN=$(openssl rand -hex 16) kpireport serve kpis/ --host 0.0.0.0
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.web.app import serve as serve_folder

    serve_folder(folder, host=host, port=port, max_upload=max_upload * 2**20, echo=click.echo)
