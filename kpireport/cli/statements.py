"""Commands that let a reader check a statement: explain, verify (the CLI only adapts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kpireport.cli.app import CONTEXT, _month, main


@main.command(context_settings=CONTEXT)
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("owner")
@click.argument("kpi", required=False)
@click.option("--period", metavar="YYYY-MM", help="Month to explain (default: the workbook's).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def explain(book: Path, owner: str, kpi: str | None, period: str | None, fmt: str) -> None:
    """Show every step of OWNER's numbers in BOOK: the cells read, the months and their
    aggregation, target, threshold and stretch, the score rule, the weights, the owner score,
    the band and its edges, the payout, the days of proration and the rounded bonus.

    OWNER is an employee id, a department or COMPANY; KPI narrows it to one scorecard line.
    The text is in the workbook's language.

    \b
    Example:
      kpireport explain kpis.xlsx E003
      kpireport explain kpis.xlsx E003 REV --period 2026-02
      kpireport explain kpis.xlsx Sales --format json > sales.json
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport import api

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.report.explanation import explanation_text

    doc = api.explain(book, owner, kpi, period=_month(period))
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        click.echo(explanation_text(doc), nl=False)


@main.command(context_settings=CONTEXT)
@click.argument("pdf", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--book", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The workbook: recompute the statement's figures from it.")
@click.option("--password", metavar="PW", help="The password of a protected copy.")
def verify(pdf: Path, book: Path | None, password: str | None) -> None:
    """Check that PDF is a kpireport statement as it was written and, given BOOK, that
    recomputing it gives the same figures.

    Prints `verified` (exit 0), or the first difference in words (exit 1). Works on
    protected copies (with --password) and on archive copies.

    \b
    Example:
      kpireport verify reports/2026-03/employees/E003.pdf --book kpis.xlsx
      kpireport verify E003-statement.pdf --password 'Xy7…'
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.errors import NotVerified

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.report.statement import verify_pdf

    try:
        result = verify_pdf(pdf, book, password=password)
    except NotVerified as exc:
        click.echo(f"not verified: {exc}", err=True)
        sys.exit(1)
    what = result.subject or result.kind
    recomputed = f", recomputed from {book.name}" if book is not None else \
        " (give --book to recompute the figures)"
    click.echo(f"verified: {pdf.name} — {what} {result.period}, code {result.code}{recomputed}")
    for note in result.notes:
        click.echo(f"note: {note}")
