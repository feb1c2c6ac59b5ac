"""The library calls the CLI makes: each is one function with the options it needs."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kpireport.errors import InvalidWorkbook, KpireportError
from kpireport.issues import Issue
from kpireport.model import Book

if TYPE_CHECKING:
    from kpireport.results import Results
from kpireport.validate import validate
from kpireport.workbook import read_workbook


@contextmanager
def _bulk_allocation():
    """Pause the cyclic garbage collector while a workbook becomes objects.

    Reading 1,000 people allocates ~300,000 lists, tuples and dataclasses, none in a cycle;
    the collector's passes over them were ~15% of read+validate. It runs again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check(path: str | Path) -> tuple[Book | None, list[Issue]]:
    """Read and validate a workbook: the typed book (None if invalid) and every issue."""
    with _bulk_allocation():
        return validate(read_workbook(path))


def load(path: str | Path, *, period: int | None = None) -> tuple[Book, list[Issue]]:
    """Read and validate; raise InvalidWorkbook when there are errors.

    ``period`` (a Month) overrides the workbook's report_period.
    """
    book, issues = check(path)
    if book is None:
        raise InvalidWorkbook(issues)
    if period is not None:
        from dataclasses import replace

        from kpireport.validate import no_actuals_in_period

        problem = no_actuals_in_period(book.actuals, period)
        if problem:
            raise KpireportError(f"--period {problem}")
        book = replace(book, settings=replace(book.settings, report_period=period))
    return book, issues


# ---------------------------------------------------------------------------- build
FORMATS = ("html", "pdf")


@dataclass
class BuildResult:
    run_dir: Path
    results: Results
    written: list[Path]
    rendered: int
    cached: int
    failures: dict[str, str]
    issues: list[Issue]

    @property
    def ok(self) -> bool:
        return not self.failures


def build(path: str | Path, *, out: str | Path = "reports", period: int | None = None,
          formats: tuple[str, ...] = FORMATS, templates: str | Path | None = None,
          workers: int | None = None, submit: Callable | None = None,
          progress: Callable[[str], None] | None = None,
          on_start: Callable[[int], None] | None = None,
          report_timeout: float | None = 60.0, archive: bool = False) -> BuildResult:
    """Check, score and write every file of SPEC §4 into ``out/<period>/``.

    A report whose inputs (view model, templates, version, formats) are unchanged since the
    last build in the same folder is not rendered again; a report that takes longer than
    ``report_timeout`` seconds to render fails (in the main thread of a local process; a
    cluster has its own stall limit). The run folder is replaced as a
    whole (:mod:`kpireport.outputs`): if anything fails — a report, a write, a kill — the
    previous build's folder stays exactly as it was. ``archive`` also writes the PDF/A-3b
    copies of kpireport.archive into ``archive/``.
    """
    from kpireport import render
    from kpireport.outputs import Staging, run_lock
    from kpireport.results import compute
    from kpireport.views import all_views

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise KpireportError(f"unknown format {unknown[0]!r}; use html, pdf or html,pdf")
    book, issues = load(path, period=period)
    passwords = None
    if book.settings.pdf_protection != "none":  # a damaged store stops the build first
        from kpireport.protect import PasswordStore

        passwords = PasswordStore.open(Path(out))
    dirs = render.template_dirs(Path(templates) if templates else None)
    render.check_templates(dirs, book.settings.locale)
    results = compute(book, issues)
    run_dir = Path(out) / results.period
    views = all_views(results, formats, archive=archive)
    fingerprint = render.template_fingerprint(dirs)
    with run_lock(run_dir):
        staging = Staging(run_dir)  # before rendering: a kill mid-render leaves only this
        try:
            result = _build_into(staging, book, results, views, issues, formats, dirs,
                                 fingerprint, workers, submit, progress, on_start,
                                 report_timeout)
        finally:
            staging.discard()
    if passwords is not None and result.ok:
        passwords.ensure(book)  # ready for `kpireport passwords` before the first send
    return result


def _build_into(staging, book, results, views, issues, formats, dirs, fingerprint, workers,
                submit, progress, on_start, report_timeout) -> BuildResult:
    from kpireport import render
    from kpireport.deliver import RECIPIENTS_FILE, recipients_record
    from kpireport.outputs import CACHE_FILE, cache_bytes, read_cache
    from kpireport.results import start_results_files

    run_dir = staging.run_dir
    old_keys = read_cache(run_dir)
    keys = {v["file"]: render.view_key(v, formats, fingerprint) for v in views}
    expected = {v["file"]: _report_files(v, formats) for v in views}
    fresh = [v for v in views if old_keys.get(v["file"]) != keys[v["file"]]
             or not all((run_dir / name).exists() for name in expected[v["file"]])]
    if on_start:
        on_start(len(fresh))
    # The results files are made beside the reports (on another core where it can).
    results_files = start_results_files(results)
    if "pdf" not in formats and workers is None:
        workers = 1  # Jinja takes ~0.6 ms a report: starting workers would cost more
    outcome = render.render_views(fresh, formats, dirs, workers=workers, progress=progress,
                                  submit=submit, timeout=report_timeout)
    files = results_files()
    if outcome.failures:
        return BuildResult(run_dir, results, [], len(fresh), len(views) - len(fresh),
                           outcome.failures, issues)
    for name, data in files.items():
        staging.write(name, data)
    for name in sorted(outcome.files):
        staging.write(name, outcome.files[name])
    staging.write(CACHE_FILE, cache_bytes(keys))
    rendered = {v["file"] for v in fresh}
    staging.keep({name for v in views if v["file"] not in rendered
                  for name in expected[v["file"]]})
    results_dict = json.loads(files["results.json"])
    staging.write(RECIPIENTS_FILE, recipients_record(book, results_dict, staging.dir))
    staging.carry_over()
    written = staging.commit()
    return BuildResult(run_dir, results, written, len(fresh), len(views) - len(fresh), {},
                       issues)


def _report_files(view: dict, formats: tuple[str, ...]) -> list[str]:
    names = []
    if "html" in formats or view["kind"] == "index":
        names.append(view["file"] + ".html")
    if "pdf" in formats and view["kind"] != "index":
        names.append(view["file"] + ".pdf")
    if view.get("archive"):
        names.append(view["archive"]["file"])
    return names


def source_book(run_dir: Path) -> Path:
    """The workbook named in a build's results.json, looked for where a user would keep it."""
    import json

    try:
        name = json.loads((Path(run_dir) / "results.json").read_text())["source"]["file"]
    except (OSError, ValueError, KeyError, TypeError):
        raise KpireportError(f"{run_dir}: no results.json; give the workbook with --book")
    for folder in (Path.cwd(), Path(run_dir).parent, Path(run_dir).parent.parent):
        if (folder / name).is_file():
            return folder / name
    raise KpireportError(f"cannot find {name}, the workbook of {run_dir}; give it with --book")


def send_book(run_dir: str | Path, book: str | Path | None = None) -> Book:
    """The workbook to send ``run_dir`` with: ``book``, or the one named in its results.json;
    refused unless it is byte for byte the workbook the run was built from (its sha256)."""
    run_dir = Path(run_dir)
    try:
        source = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["source"]
        built_from, built_hash = str(source["file"]), str(source["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise KpireportError(f"{run_dir}: no readable results.json; build the reports "
                             "first") from None
    path = Path(book) if book is not None else source_book(run_dir)
    loaded, _ = load(path)
    if loaded.source_sha256 != built_hash:
        raise KpireportError(f"{path} is not the workbook {run_dir} was built from "
                             f"({built_from}, sha256 {built_hash[:12]}…): send with that "
                             "workbook, or build again from this one")
    return loaded
