"""The ``kpireport`` command: click commands that adapt the library (kpireport.api) to a terminal.

``main`` (the click group) and ``entry`` (the console script) live in :mod:`kpireport.cli.app`;
the managed month's commands in :mod:`kpireport.cli.month` and the tools in
:mod:`kpireport.cli.tools` and the statement checks in :mod:`kpireport.cli.statements`
join the group when this package is imported.
"""

from kpireport.cli import month, statements, tools  # noqa: F401 (registers their commands on main)
from kpireport.cli.app import entry, main

__all__ = ["entry", "main"]
