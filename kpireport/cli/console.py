"""Printing for the CLI: rich tables of issues and results (the library never prints)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from kpireport.core.i18n import unsigned_zero
from kpireport.core.issues import Issue, in_table

STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def print_issues(book: Path, issues: list[Issue], *, show_all: bool = False,
                 console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=False)
    shown = [i for i in issues if show_all or i.severity != "info"]
    counts = {s: sum(i.severity == s for i in issues) for s in ("error", "warning", "info")}
    if shown:
        table = Table(show_lines=False, header_style="bold", expand=False)
        for name in ("severity", "where", "code", "message"):
            table.add_column(name, overflow="fold")
        for issue in shown:
            table.add_row(f"[{STYLE[issue.severity]}]{issue.severity}[/]", issue.location,
                          issue.code, in_table(issue))
        console.print(table)
    verdict = "[bold red]invalid[/]" if counts["error"] else "[bold green]valid[/]"
    console.print(f"{book.name}: {verdict} — {counts['error']} error(s), "
                  f"{counts['warning']} warning(s), {counts['info']} note(s)"
                  + ("" if show_all or not counts["info"] else " (--all shows the notes)"))


def print_import_plan(plan, *, dry_run: bool, console: Console | None = None) -> None:
    """The changes of an import as a table: owner, KPI, month, old → new."""
    # lazy: rich is loaded only where it is used (start-up stays light)
    from rich.markup import escape

    console = console or Console(highlight=False, soft_wrap=False)
    if plan.changes:
        table = Table(title="Dry run: nothing written" if dry_run else None, header_style="bold")
        for name in ("owner", "KPI", "month", "old", "new"):
            table.add_column(name, justify="right" if name in ("old", "new") else "left")
        for change in plan.changes:
            table.add_row(escape(change.owner), escape(change.kpi), change.period,
                          "—" if change.old is None else unsigned_zero(f"{change.old:,.12g}"),
                          unsigned_zero(f"{change.new:,.12g}"))
        console.print(table)
    extra = []
    if plan.new_rows:
        extra.append(f"{len(plan.new_rows)} new row(s)")
    if plan.new_months:
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.core.model import month_label

        extra.append("new month column(s) " + ", ".join(month_label(m) for m in plan.new_months))
    console.print(f"{plan.source.path.name}: {plan.source.records} record(s) "
                  f"({', '.join(plan.details)}), {plan.used} used, {len(plan.bad)} bad; "
                  f"{len(plan.changes)} value(s) to change, "
                  f"{len(plan.values) - len(plan.changes)} already as in the workbook"
                  + (f"; {', '.join(extra)}" if extra else ""))
