"""The reports of one build: their views, cache keys, rendering and files in the staging folder.

:func:`render_reports` turns every report of :func:`kpireport.views.report_specs` into its view
model, its render-cache key (kpireport.render.view_key) and, unless the previous build in the
run folder has the same key and files, its rendered files, written into the staging folder.

A cold HTML-only build (no render cache to reuse, no PDF, local, ``--workers`` not given) is
CPU-bound Python from the first view to the last file: its reports are dealt, a few at a
time, to whichever of this process and a forked child (:mod:`kpireport.forked`) is free, each
building, rendering and writing its own part on its own core. Everything else — PDF worker
pools, Dask, a rebuild that reuses the cache, ``--workers 1`` — is one share in this process,
as before. Either way the result is the same: the views in report order, every key, the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kpireport.manifest import FileEntry, sha256

if TYPE_CHECKING:
    from kpireport.results import ResultsFiles


@dataclass
class Share:
    """What rendering some reports gave: per report (in order) its view — from a child only
    the kind, file and archive fields the manifest needs — and key; the files written."""

    views: list[dict]
    keys: dict[str, str]
    rendered: list[str] = field(default_factory=list)  # report files rendered, not reused
    failures: dict[str, str] = field(default_factory=dict)
    written: dict[str, FileEntry] = field(default_factory=dict)


@dataclass
class Job:
    """The rendering of one build's reports into ``staging_dir``."""

    builder: object  # kpireport.views.ViewBuilder
    formats: tuple[str, ...]
    dirs: tuple[Path, ...]
    fingerprint: str
    old_keys: dict[str, str]  # the previous build's render cache
    run_dir: Path
    staging_dir: Path
    timeout: float | None = None
    renderer: object | None = None  # a kpireport.render.Renderer made before any fork

    def share(self, specs: list[tuple[str, str]], *, workers: int | None = 1,
              submit: Callable | None = None, progress: Callable[[str], None] | None = None,
              on_start: Callable[[int], None] | None = None, light: bool = False) -> Share:
        """Build, key and (where the cache has nothing) render and write these reports."""
        from kpireport import render
        from kpireport.outputs import write_file
        from kpireport.spec import COMPANY
        from kpireport.views import build_view

        # The charts of these reports' scorecards, in one batch (not every line of the build)
        self.builder.draw_charts(COMPANY if kind == "company" else subject  # type: ignore[attr-defined]
                                 for kind, subject in specs if kind != "index")
        views = [build_view(self.builder, spec, self.formats) for spec in specs]  # type: ignore[arg-type]
        keys = {v["file"]: render.view_key(v, self.formats, self.fingerprint) for v in views}
        fresh = [v for v in views if self.old_keys.get(v["file"]) != keys[v["file"]]
                 or not all((self.run_dir / name).exists()
                            for name in report_files(v, self.formats))]
        if on_start:
            on_start(len(fresh))
        outcome = render.render_views(fresh, self.formats, self.dirs, workers=workers,
                                      progress=progress, submit=submit, timeout=self.timeout,
                                      renderer=self.renderer)  # type: ignore[arg-type]
        written = {}
        if not outcome.failures:
            for name in sorted(outcome.files):
                data = outcome.files[name]
                write_file(self.staging_dir, name, data, self.run_dir)
                written[name] = FileEntry(name, sha256(data), len(data))
        if light:
            views = [{"kind": v["kind"], "file": v["file"], "archive": v.get("archive")}
                     for v in views]
        return Share(views, keys, [v["file"] for v in fresh], outcome.failures, written)


def render_reports(job: Job, specs: list[tuple[str, str]], *, workers: int | None,
                   submit: Callable | None = None,
                   progress: Callable[[str], None] | None = None,
                   on_start: Callable[[int], None] | None = None,
                   beside: ResultsFiles | None = None) -> Share:
    """Every report of ``specs``, split with a forked child when that is faster (above).
    ``beside`` (the build's results files) is made by that child before it takes reports,
    else started in a child of its own before this process renders."""
    if not _split(job, specs, workers, submit):
        if beside is not None:
            beside.start()
        if workers is None and "pdf" not in job.formats:
            workers = 1  # Jinja takes ~0.6 ms a report: starting workers would cost more
        return job.share(specs, workers=workers, submit=submit, progress=progress,
                         on_start=on_start)
    from kpireport import forked, render

    if job.renderer is None:  # templates loaded once, before the fork, for both processes
        job.renderer = render.Renderer(job.dirs, job.timeout)
        env = job.renderer.env(job.builder.r.book.settings.locale)  # type: ignore[attr-defined]
        for name in render.TEMPLATES.values():
            env.get_template(name)
    if on_start:
        on_start(len(specs))  # no cache: every report is rendered
    deal = _Deal(_deal_order(specs))
    if beside is not None:
        beside.before_fork()

    def child() -> tuple[dict[str, bytes] | None, list[tuple[list[int], Share]]]:
        # The results files first: meanwhile this process takes the first runs of reports.
        return (beside.make() if beside is not None else None,
                deal.take(job, specs, light=True))

    try:
        wait = forked.start(child, name="reports")
        own = deal.take(job, specs, progress=progress)
        made, other = wait()  # a child that died: its work is done here (forked)
        if beside is not None:
            beside.given(made)  # type: ignore[arg-type]
    finally:
        deal.close()
    if progress:
        for _, share in other:
            for name in share.rendered:
                progress(name)
    views: list[dict | None] = [None] * len(specs)
    parts = own + other
    for positions, share in parts:
        for i, view in zip(positions, share.views):
            views[i] = view
    missing = [i for i, view in enumerate(views) if view is None]
    if missing:  # a child that died took them with it: render them here
        share = job.share([specs[i] for i in missing], progress=progress)
        parts.append((missing, share))
        for i, view in zip(missing, share.views):
            views[i] = view
    return Share(views, {k: v for _, p in parts for k, v in p.keys.items()},  # type: ignore[arg-type]
                 [name for _, p in parts for name in p.rendered],
                 {k: v for _, p in parts for k, v in p.failures.items()},
                 {k: v for _, p in parts for k, v in p.written.items()})


class _Deal:
    """The reports of a split build, dealt in small runs to whichever process is free: this
    one and the child each take the next run from one pipe, written whole before the fork (a
    read of 8 bytes is atomic; a process that dies takes no lock with it). A fixed deal left
    one process waiting for the other on this shared, noisy machine. Runs shrink towards the
    end (a quarter of what is left, at least 4 reports), so the process that finishes first
    waits for a few reports of the other, not for a whole run."""

    def __init__(self, order: list[int]) -> None:
        import struct

        self.order = order  # the positions of the reports, in the order they are dealt
        self.runs = _runs(len(order))
        self.read_end, write_end = os.pipe()
        try:
            os.write(write_end, b"".join(struct.pack("=II", start, size)
                                         for start, size in self.runs))
        finally:
            os.close(write_end)  # the last run taken, a read finds the end

    def take(self, job: Job, specs: list[tuple[str, str]], *, light: bool = False,
             progress: Callable[[str], None] | None = None) -> list[tuple[list[int], Share]]:
        """Render runs until none is left: (positions, share) of each."""
        import struct

        done = []
        while len(token := os.read(self.read_end, 8)) == 8:
            start, size = struct.unpack("=II", token)
            positions = self.order[start:start + size]
            done.append((positions, job.share([specs[i] for i in positions], light=light,
                                              progress=progress)))
        return done

    def close(self) -> None:
        os.close(self.read_end)


def _deal_order(specs: list[tuple[str, str]]) -> list[int]:
    """The index first (the longest report to render: a row for everyone), then the others in
    their order: the last run dealt is a few small reports, not one that keeps the other
    process waiting."""
    first = [i for i, (kind, _) in enumerate(specs) if kind == "index"]
    return first + [i for i, (kind, _) in enumerate(specs) if kind != "index"]


MAX_RUNS = 512  # 8 bytes each: 4 KiB, which a new pipe always holds (written before any read)


def _runs(n: int) -> list[tuple[int, int]]:
    """(start, size) of the runs of ``n`` reports: up to 32 at a time (more when there are
    so many that 512 runs would not hold them), then a quarter of what is left, at least 4."""
    most = max(4, min(32, n // 16), -(-n // (MAX_RUNS // 2)))
    runs, start = [], 0
    while start < n:
        size = min(most, max(4, (n - start) // 4), n - start)
        runs.append((start, size))
        start += size
    return runs


SPLIT_MIN = 8  # fewer reports than this render faster than a fork starts


def _split(job: Job, specs: list, workers: int | None, submit: Callable | None) -> bool:
    from kpireport import forked

    return (forked.available()  # a thread would share this process's core (the GIL)
            and not job.old_keys and submit is None and workers is None
            and "pdf" not in job.formats and not getattr(job.builder, "archive", False)
            and len(specs) >= SPLIT_MIN)


def report_files(view: dict, formats: tuple[str, ...]) -> list[str]:
    """The files of one report, as the build writes them."""
    names = []
    if "html" in formats or view["kind"] == "index":
        names.append(view["file"] + ".html")
    if "pdf" in formats and view["kind"] != "index":
        names.append(view["file"] + ".pdf")
    if view.get("archive"):
        names.append(view["archive"]["file"])
    return names
