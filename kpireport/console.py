"""Printing for the CLI: rich tables of issues and results (the library never prints)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from kpireport.issues import Issue

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
                          issue.code, issue.message)
        console.print(table)
    verdict = "[bold red]invalid[/]" if counts["error"] else "[bold green]valid[/]"
    console.print(f"{book.name}: {verdict} — {counts['error']} error(s), "
                  f"{counts['warning']} warning(s), {counts['info']} note(s)"
                  + ("" if show_all or not counts["info"] else " (--all shows the notes)"))
