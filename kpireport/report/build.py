"""One build: a checked workbook → every file of SPEC §4 in ``<out>/<period>/``, swapped in whole.

A :class:`Build` owns what a build needs — the checked book and the cells it was read from,
the options, the renderer, the staging folder — and :meth:`Build.run` goes through it in order:

1. compile the templates (a syntax error stops the build before any work);
2. score the book (:func:`kpireport.score.results.compute`);
3. with the run folder's lock held, render every report into a staging folder
   (:mod:`kpireport.report.reportset`), write the results files, the inputs snapshot, the
   render cache, the files later stages record (``extra_files``) and the manifest;
4. let the ``gate`` (the managed month's rules, :class:`kpireport.month.cycle.BuildGate`) see
   the staged folder, then swap it in (:class:`kpireport.report.outputs.Staging`).

If anything fails — a report, a write, a kill — the previous build's folder stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from kpireport.core.collector import bounded_step
from kpireport.core.issues import Issue
from kpireport.core.model import Book
from kpireport.core.options import BuildOptions
from kpireport.core.spec import COMPANY
from kpireport.core.version import __version__
from kpireport.read.workbook import RawBook
from kpireport.report import render
from kpireport.report.inputs import INPUTS_FILE, inputs_bytes
from kpireport.report.manifest import FILE_FORMATS, MANIFEST_FILE, Hasher, Manifest, ReportEntry
from kpireport.report.outputs import (
    CACHE_FILE,
    BuildResult,
    Staging,
    cache_bytes,
    read_cache,
    run_lock,
)
from kpireport.report.reportset import Job, Share, render_reports, report_files
from kpireport.report.results_files import results_files
from kpireport.report.views import ViewBuilder, report_specs
from kpireport.score.results import Results, compute


class Gate(Protocol):
    """What a build of a run folder must respect and record (kpireport.month.cycle.BuildGate)."""

    def stage(self, staging: Staging, manifest: Manifest) -> None:
        """Check the complete staged folder before it is swapped in (raise to refuse it)."""

    def record(self, results: dict, require: bool) -> None:
        """Record the build once it is in place."""


@dataclass
class Build:
    """The build of one checked workbook (see the module's docstring).

    ``raw`` is the workbook as the check read it (the inputs snapshot is made from it, so the
    file is read once). ``gate`` makes the run folder's :class:`Gate` once the folder is known
    and locked; ``extra_files`` gives files that later stages need recorded with the build (the
    recipients of each report), from the results and the manifest's report entries. ``submit``
    renders elsewhere (a Dask cluster, :mod:`kpireport.report.cluster`), ``progress`` is called
    with each rendered report, ``on_start`` with how many will be, ``clock`` stamps the manifest,
    ``paid`` is what the fiscal year's earlier approved and sent runs made payable, per employee.
    """

    book: Book
    issues: list[Issue]
    options: BuildOptions
    raw: RawBook | None = None
    gate: Callable[[Path], Gate] | None = None
    extra_files: Callable[[Results, tuple[ReportEntry, ...]], dict[str, bytes]] | None = None
    submit: Callable | None = None
    progress: Callable[[str], None] | None = None
    on_start: Callable[[int], None] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    paid: dict | None = None  # bonus the year's earlier sent runs made payable (SPEC §2.8)

    def run(self) -> BuildResult:
        options = self.options
        dirs = render.template_dirs(options.templates)
        # This process's renderer (templates compiled once) has no time limit: only the
        # built-in templates render here; anything else renders in workers, under the limit.
        renderer = render.Renderer(dirs)
        render.check_templates(dirs, self.book.settings.locale, renderer)
        with bounded_step():
            results = compute(self.book, self.issues, paid_from_runs=self.paid)
        run_dir = Path(options.out) / results.period
        with run_lock(run_dir):
            gate = self.gate(run_dir) if self.gate is not None else None
            staging = Staging(run_dir)  # before rendering: a kill mid-render leaves only this
            try:
                result = self._into(staging, results, renderer, dirs, gate)
            finally:
                staging.discard()
            if result.ok and gate is not None:
                gate.record({"period": results.period, "source": {
                    "file": self.book.source_file, "sha256": self.book.source_sha256}},
                    self.book.settings.require_approval)
        return result

    def _into(self, staging: Staging, results: Results, renderer: render.Renderer,
              dirs: tuple[Path, ...], gate: Gate | None) -> BuildResult:
        formats = self.options.formats
        run_dir = staging.run_dir
        builder = ViewBuilder(results, formats, archive=self.options.archive)
        job = Job(builder, formats, dirs, render.template_fingerprint(dirs),
                  read_cache(run_dir), run_dir, staging.dir, self.options.report_timeout,
                  renderer)
        share = render_reports(job, report_specs(results), workers=self.options.workers,
                               submit=self.submit, progress=self.progress,
                               on_start=self.on_start)
        cached = len(share.views) - len(share.rendered)
        if share.failures:
            return BuildResult(run_dir, results, [], len(share.rendered), cached,
                               share.failures, self.issues)
        hasher = Hasher(staging.dir)
        files = results_files(results, document=builder.document())
        files[INPUTS_FILE] = inputs_bytes(self.book, self.raw)
        for name, data in files.items():
            staging.write(name, data)
            hasher.written(name, data)
        staging.adopt(sorted(share.written))  # the reports, written as they were rendered
        hasher.known.update(share.written)
        staging.write(CACHE_FILE, cache_bytes(share.keys))
        rendered = set(share.rendered)
        expected = {v["file"]: report_files(v, formats) for v in share.views}
        staging.keep({name for v in share.views if v["file"] not in rendered
                      for name in expected[v["file"]]})
        reports = manifest_reports(results, share, expected, hasher)
        extra = self.extra_files(results, reports) if self.extra_files is not None else {}
        for name, data in extra.items():
            staging.write(name, data)
            hasher.written(name, data)
        manifest = Manifest(
            period=results.period, run_dir=run_dir,
            built_at=self.clock().isoformat(timespec="seconds"), kpireport_version=__version__,
            workbook_file=self.book.source_file, workbook_sha256=self.book.source_sha256,
            formats=tuple(formats), reports=reports,
            data=tuple(hasher.entry(name) for name in (*files, *extra)))
        staging.write(MANIFEST_FILE, manifest.to_bytes())
        staging.carry_over()
        if gate is not None:
            gate.stage(staging, manifest)  # a sent period changed without --reopen stops here
        written = staging.commit()
        return BuildResult(run_dir, results, written, len(share.rendered), cached, {},
                           self.issues, manifest, staging.leftover)


def manifest_reports(results: Results, share: Share, expected: dict[str, list[str]],
                     hasher: Hasher) -> tuple[ReportEntry, ...]:
    """The manifest's entry of every report, in the build's order (:func:`report_specs`)."""
    s = results.book.settings
    people = {p.employee_id: p for p in results.book.people}
    entries = []
    for (kind, subject), view in zip(report_specs(results), share.views, strict=True):
        if kind == "employee":
            person = people[subject]
            scope, name, department = subject, person.name, person.department
        elif kind == "department":
            scope, name, department = subject, subject, subject
        elif kind == "company":
            scope, name, department = COMPANY, s.organization, None
        else:
            scope, name, department = "", s.report_title, None
        files = []
        for path in expected[view["file"]]:
            fmt = "archive" if path.startswith("archive/") else path.rsplit(".", 1)[1]
            entry = hasher.entry(path)
            if entry is not None:
                files.append((fmt, entry))
        entries.append(ReportEntry(kind, scope, name, department, view["file"],
                                   tuple(sorted(files, key=lambda f: FILE_FORMATS.index(f[0])))))
    return tuple(entries)
