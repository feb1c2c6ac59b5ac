"""The web app's builds, each in a process of its own.

The server is a threaded process that runs for weeks: a build inside it would leave its memory
high after every month (the allocator keeps what a 1,000-person build touched) and would share
its cores with the pages. So each build runs in a spawned process (never a fork of the threaded
server) that reads, scores, renders (with its own PDF workers) and writes the run folder, and
tells the server its progress through a queue. When it ends, all of its memory is the system's
again.
"""

from __future__ import annotations

import multiprocessing
import queue as queues
from collections.abc import Callable
from pathlib import Path

from kpireport.core.errors import KpireportError, SentMonthChanged

WAIT = 1.0  # seconds between looks at a build process that has not said anything


def build_elsewhere(path: Path, out: Path, workers: int | None, *,
                    on_start: Callable[[int], None], progress: Callable[[str], None],
                    located: Callable[[str], None],
                    reopen: tuple[str, str] | None = None,
                    source_name: str | None = None) -> dict:
    """Build the workbook at ``path`` into ``out`` in a new process; its outcome
    ({period, rendered, cached, failures, leftover}). ``located`` gets the workbook's locale
    as soon as it is known; ``reopen`` is (by, note) of ``build --reopen``; ``source_name`` the
    workbook's name on the reports (see :func:`kpireport.api.check`). A failure of the
    build is raised here as a KpireportError with its message (SentMonthChanged, with what
    would change, when the period was sent)."""
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    # Not a daemon: the build starts PDF worker processes of its own.
    process = context.Process(target=_build, name="kpireport-build",
                              args=(str(path), str(out), workers, reopen, source_name, channel))
    process.start()
    try:
        while True:
            try:
                kind, value = channel.get(timeout=WAIT)
            except queues.Empty:
                if process.is_alive():
                    continue
                try:  # it may have said its last word just before it ended
                    kind, value = channel.get(timeout=WAIT)
                except queues.Empty:
                    raise KpireportError(f"the build stopped without a word (exit code "
                                         f"{process.exitcode}); nothing was written") from None
            if kind == "locale":
                located(value)
            elif kind == "total":
                on_start(value)
            elif kind == "done":
                progress(value)
            elif kind == "failed":
                raise KpireportError(value)
            elif kind == "sent":
                raise SentMonthChanged(value["message"], period=value["period"],
                                       summary=value["summary"], changes=value["changes"],
                                       facts=value["facts"])
            else:
                return value
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.terminate()
            process.join()
        channel.close()


def _build(path: str, out: str, workers: int | None, reopen: tuple[str, str] | None,
           source_name: str | None, channel) -> None:
    """In the build process: the same calls as ``kpireport build``."""
    from kpireport import api  # lazy: only in the build process
    from kpireport.core.options import BuildOptions

    try:
        checked = api.load(path, source_name=source_name)
        channel.put(("locale", checked[0].settings.locale))
        by, note = reopen or (None, None)
        options = BuildOptions(out=out, workers=workers, reopen_by=by, reopen_note=note)
        result = api.build(checked, options,
                           on_start=lambda n: channel.put(("total", n)),
                           progress=lambda name: channel.put(("done", name)))
        channel.put(("result", {"period": result.results.period, "rendered": result.rendered,
                                "cached": result.cached, "failures": result.failures,
                                "leftover": result.leftover}))
    except SentMonthChanged as exc:
        channel.put(("sent", {"message": str(exc), "period": exc.period,
                              "summary": exc.summary, "changes": list(exc.changes),
                              "facts": exc.facts}))
    except KpireportError as exc:
        channel.put(("failed", str(exc)))
    except Exception as exc:  # noqa: BLE001 (shown on the page, not lost in a process)
        channel.put(("failed", f"internal error ({type(exc).__name__}: {exc}); this is a bug"))
