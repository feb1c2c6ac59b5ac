"""The reports of one build: their views, cache keys, rendering and files in the staging folder.

:func:`render_reports` turns every report of :func:`kpireport.report.views.report_specs` into
its view model and render-cache key (:func:`kpireport.report.render.view_key`) and, unless the
previous build in the run folder has the same key and files, renders it and writes its files
into the staging folder as soon as they are made.

Reports are built a chunk at a time and nothing of a report is kept once its files are written
but what the manifest needs (kind, file, archive copy, hashes): the build's memory does not grow
with the number of reports. HTML-only reports from the built-in templates render in this
process (Jinja takes ~0.6 ms a report; starting workers would cost more); PDF reports, archive
copies and reports from a custom template folder (whose loops run under the report time limit)
render in worker processes
(:mod:`kpireport.report.render`), at most a few per worker in flight; a Dask ``submit`` takes
the work elsewhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.core.collector import bounded_step
from kpireport.core.spec import COMPANY
from kpireport.report import render
from kpireport.report.manifest import FileEntry, sha256
from kpireport.report.outputs import write_file
from kpireport.report.views import ViewBuilder, build_view

CHUNK = 64  # reports whose views (and charts, drawn in one batch) are built at a time


@dataclass
class Share:
    """What rendering the reports gave: per report (in order) the fields of its view that the
    manifest needs (kind, file, archive) and its key; the files written."""

    views: list[dict]
    keys: dict[str, str]
    rendered: list[str] = field(default_factory=list)  # report files rendered, not reused
    failures: dict[str, str] = field(default_factory=dict)
    written: dict[str, FileEntry] = field(default_factory=dict)


@dataclass
class Job:
    """The rendering of one build's reports into ``staging_dir``."""

    builder: ViewBuilder
    formats: tuple[str, ...]
    dirs: tuple[Path, ...]
    fingerprint: str
    old_keys: dict[str, str]  # the previous build's render cache
    run_dir: Path
    staging_dir: Path
    timeout: float | None = None
    renderer: render.Renderer | None = None  # this process's (templates compiled once)

    def views(self, specs: list[tuple[str, str]]) -> list[dict]:
        """The views of these reports, their charts drawn in one batch."""
        self.builder.draw_charts((COMPANY if kind == "company" else subject
                                  for kind, subject in specs if kind != "index"), fresh=True)
        return [build_view(self.builder, spec, self.formats) for spec in specs]

    def key(self, view: dict) -> str:
        return render.view_key(view, self.formats, self.fingerprint)

    def stale(self, view: dict, key: str) -> bool:
        """Whether the previous build has nothing to reuse for this report."""
        return self.old_keys.get(view["file"]) != key or not all(
            (self.run_dir / name).exists() for name in report_files(view, self.formats))


def _chunks(specs: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(specs), CHUNK):
        yield specs[start:start + CHUNK]


def render_reports(job: Job, specs: list[tuple[str, str]], *, workers: int | None,
                   submit: Callable | None = None,
                   progress: Callable[[str], None] | None = None,
                   on_start: Callable[[int], None] | None = None) -> Share:
    """Build, key and (where the render cache has nothing) render and write every report."""
    stale: set[int] | None = None  # None: every report (no previous build to reuse)
    if job.old_keys:  # a rebuild: which reports changed (built again below to render them)
        stale = set()
        for n, chunk in enumerate(_chunks(specs)):
            with bounded_step():
                for i, view in enumerate(job.views(chunk), start=n * CHUNK):
                    if job.stale(view, job.key(view)):
                        stale.add(i)
    if on_start:
        on_start(len(specs) if stale is None else len(stale))
    share = Share([], {})
    sink = _sink(job, share, workers, submit, progress,
                 len(specs) if stale is None else len(stale))
    try:
        for n, chunk in enumerate(_chunks(specs)):
            with bounded_step():  # a chunk's views: its own step, apart from the rendering
                views = job.views(chunk)
                for view in views:
                    share.keys[view["file"]] = job.key(view)
                    share.views.append({"kind": view["kind"], "file": view["file"],
                                        "archive": view.get("archive")})
            for i, view in enumerate(views, start=n * CHUNK):
                if stale is None or i in stale:
                    sink.add(view)
        sink.finish()
    finally:
        sink.close()
    return share


class _Sink(ABC):
    """Where a stale report's view goes to be rendered; its files go to :meth:`done`."""

    def __init__(self, job: Job, share: Share, progress: Callable[[str], None] | None) -> None:
        self.job, self.share, self.progress = job, share, progress

    def done(self, view: dict, result: dict[str, bytes] | BaseException) -> None:
        share = self.share
        if isinstance(result, BaseException):
            share.failures[view["file"]] = str(result)
        elif not share.failures:  # after a failure nothing more is written: the build fails
            for name in sorted(result):
                data = result[name]
                write_file(self.job.staging_dir, name, data, self.job.run_dir)
                share.written[name] = FileEntry(name, sha256(data), len(data))
            share.rendered.append(view["file"])
        if self.progress:
            self.progress(view["file"])

    @abstractmethod
    def add(self, view: dict) -> None:
        """Take one stale report's view to be rendered."""

    def finish(self) -> None:  # noqa: B027 (a default: nothing to wait for)
        """Every report added has been rendered (or has failed)."""

    def close(self) -> None:  # noqa: B027 (a default: nothing to stop)
        """Stop whatever still runs (after an error or an interrupt)."""


class _HereSink(_Sink):
    """Renders in this process, report by report, each a bounded step of its own
    (:func:`kpireport.report.render.render_in_place`)."""

    def add(self, view: dict) -> None:
        job = self.job
        if job.renderer is None:
            job.renderer = render.Renderer(job.dirs)  # built-in templates: no time limit here
        try:
            result: dict[str, bytes] | BaseException = render.render_in_place(
                job.renderer, view, job.formats)
        except Exception as exc:  # one report's failure does not stop the others
            result = exc
        self.done(view, result)


class _PoolSink(_Sink):
    """Renders in worker processes (:class:`kpireport.report.render.RenderPool`)."""

    def __init__(self, job: Job, share: Share, progress, workers: int) -> None:
        super().__init__(job, share, progress)
        self.pool = render.RenderPool(job.dirs, job.formats, workers, job.timeout)

    def add(self, view: dict) -> None:
        for done_view, result in self.pool.submit(view):
            self.done(done_view, result)

    def finish(self) -> None:
        for done_view, result in self.pool.drain():
            self.done(done_view, result)

    def close(self) -> None:
        self.pool.close()


class _SubmitSink(_Sink):
    """Hands every stale view to ``submit`` at the end (a Dask cluster)."""

    def __init__(self, job: Job, share: Share, progress, submit: Callable) -> None:
        super().__init__(job, share, progress)
        self.submit, self.views = submit, []

    def add(self, view: dict) -> None:
        self.views.append(view)

    def finish(self) -> None:
        self.submit(self.views, self.job.formats, self.job.dirs, self.done)


def _sink(job: Job, share: Share, workers: int | None, submit: Callable | None,
          progress: Callable[[str], None] | None, count: int) -> _Sink:
    if submit is not None:
        return _SubmitSink(job, share, progress, submit)
    custom = len(job.dirs) > 1  # a custom template folder: its loops run under a time limit
    if "pdf" not in job.formats and not job.builder.archive and not custom:
        return _HereSink(job, share, progress)
    return _PoolSink(job, share, progress,
                     max(1, min(workers or render.default_workers(), count)))


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
