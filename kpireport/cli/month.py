"""Commands of the managed month: diff, approve, status (the CLI only adapts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kpireport.cli.app import CONTEXT, main


@main.command("diff", context_settings=CONTEXT)
@click.argument("old", type=click.Path(exists=True, path_type=Path))
@click.argument("new", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def diff_(old: Path, new: Path | None, fmt: str) -> None:
    """What changed between two builds: every input with its sheet and cell, every result.

    OLD and NEW are run folders (or their results.json). With RUN_DIR alone, it is compared
    with the previous build of the same period (kept in RUN_DIR/previous/). People are
    listed by money moved (bonus and recommended salary), with the total bonus cost change.

    \b
    Example:
      kpireport diff reports/2026-03
      kpireport diff reports/2026-02 reports/2026-03 --format json > changes.json
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month.cycle import with_previous

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month.diff import diff_runs, format_text

    if new is None:
        old, new = with_previous(old)
    document = diff_runs(old, new)
    if fmt == "json":
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        click.echo(format_text(document))


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--by", "by", metavar="NAME", required=True, help="Who approves (or revokes).")
@click.option("--note", metavar="TEXT", help="Why; required with --revoke.")
@click.option("--revoke", is_flag=True, help="Withdraw the approval.")
def approve(run_dir: Path, by: str, note: str | None, revoke: bool) -> None:
    """Approve exactly the files of RUN_DIR as they are now, for send.

    Records the SHA-256 of results.json, payroll.csv, the recipients and every report, the
    time, the approver and the note in RUN_DIR/audit.jsonl. A rebuild that changes any of
    them needs a new approval. --revoke --note TEXT withdraws it. With a payment schedule
    (Settings bonus_payment), every clawback line is listed: kpireport never deducts one.

    \b
    Example:
      kpireport diff reports/2026-03
      kpireport approve reports/2026-03 --by "Lan Tran" --note "checked against payroll"
      kpireport approve reports/2026-03 --revoke --by "Lan Tran" --note "E004 disputes Q1"
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month import cycle

    if revoke:
        record = cycle.revoke(run_dir, by=by, note=note or "")
        click.echo(f"Approval of {run_dir} revoked by {record['actor']} at {record['time']}.")
        return
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month.payments import clawback_text

    record = cycle.approve(run_dir, by=by, note=note)
    for line in clawback_text(run_dir):
        click.echo(line)
    click.echo(f"Approved {run_dir}: {len(record['hashes'])} file(s) by {record['actor']} at "
               f"{record['time']} (audit line {record['n']}). Send it: kpireport send "
               f"{run_dir}")


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def status(run_dir: Path, fmt: str) -> None:
    """Where RUN_DIR is in the month: built, changed, approved, delivered; the audit trail.

    Exit 0, or 1 when the audit trail is broken (the line where it breaks is named).

    \b
    Example:
      kpireport status reports/2026-03
      kpireport status reports/2026-03 --format json
    """
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month import cycle

    document = cycle.status(run_dir)
    if fmt == "json":
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        click.echo(cycle.format_status(document))
    if not document["audit"]["valid"]:
        sys.exit(1)
