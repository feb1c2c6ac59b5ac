"""The reports of one build: their views, cache keys, rendering and files in the staging folder.

:func:`render_reports` turns every report of :func:`kpireport.views.report_specs` into its view
model, its render-cache key (kpireport.render.view_key) and, unless the previous build in the
run folder has the same key and files, its rendered files, written into the staging folder.

A cold HTML-only build (no render cache to reuse, no PDF, local, ``--workers`` not given) is
CPU-bound Python from the first view to the last file: its reports are dealt to this process
(3 in 5) and a forked child (2 in 5, as the other core also makes the results files;
:mod:`kpireport.forked`), each building, rendering and writing its own part on its own
core. Everything else — PDF worker pools, Dask, a rebuild that reuses the cache,
``--workers 1`` — is one share in this process, as before. Either way the
result is the same: the views in report order, every key, the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kpireport.manifest import FileEntry, sha256


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
                   on_start: Callable[[int], None] | None = None) -> Share:
    """Every report of ``specs``, split with a forked child when that is faster (above)."""
    if not _split(job, specs, workers, submit):
        if workers is None and "pdf" not in job.formats:
            workers = 1  # Jinja takes ~0.6 ms a report: starting workers would cost more
        return job.share(specs, workers=workers, submit=submit, progress=progress,
                         on_start=on_start)
    from kpireport import forked, render

    if job.renderer is None:  # templates loaded once, before the fork, for both halves
        job.renderer = render.Renderer(job.dirs, job.timeout)
        env = job.renderer.env(job.builder.r.book.settings.locale)  # type: ignore[attr-defined]
        for name in render.TEMPLATES.values():
            env.get_template(name)
    if on_start:
        on_start(len(specs))  # no cache: every report is rendered
    theirs_at = _child_positions(len(specs))
    mine = [spec for i, spec in enumerate(specs) if i not in theirs_at]
    theirs = [spec for i, spec in enumerate(specs) if i in theirs_at]
    wait = forked.start(lambda: job.share(theirs, light=True), name="reports")
    own = job.share(mine, progress=progress)
    other = wait()
    if progress:
        for name in other.rendered:
            progress(name)
    own_views, other_views = iter(own.views), iter(other.views)
    views = [next(other_views if i in theirs_at else own_views) for i in range(len(specs))]
    return Share(views, {**own.keys, **other.keys}, own.rendered + other.rendered,
                 {**own.failures, **other.failures}, {**own.written, **other.written})


# The child's part of a split: 2 reports in 5. The other core also makes the results files
# (kpireport.results.start_results_files, ~20% of the reports' CPU), so an even deal left this
# process waiting for the child.
CHILD_EVERY, CHILD_TAKES = 5, (1, 3)


def _child_positions(n: int) -> frozenset[int]:
    return frozenset(i for i in range(n) if i % CHILD_EVERY in CHILD_TAKES)

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
