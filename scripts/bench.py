"""Benchmark: ``python scripts/bench.py`` or ``make bench`` (not part of the test suite).

Every figure is measured in this run next to a baseline measured in the same run, because the
machine is shared and absolute times drift. Prints a table of stages (time, peak memory) and the
ratios the project promises, each with its limit and PASS/FAIL.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    stage: str
    seconds: float
    detail: str = ""
    peak: int = 0  # bytes: peak resident memory of the process tree while the stage ran


class _Progress(list):
    """Stage rows that also print as they complete (a long run shows where it is)."""

    def append(self, row: Row) -> None:
        if not row.peak:
            row.peak = LAST_PEAK
        super().append(row)
        print(f"  {row.stage}: {row.seconds:.3f} s {row.detail}", file=sys.stderr, flush=True)


class _PeakSampler:
    """Samples the resident memory of this process and its children every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            time.sleep(0.02)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss(os.getpid()))


LAST_PEAK = 0  # peak memory of the last timed() call, bytes


def timed(func: Callable, repeat: int = 1):
    """Best of ``repeat`` runs (the least disturbed by the rest of the machine); the peak
    memory of the process tree during the runs is left in LAST_PEAK."""
    global LAST_PEAK
    best, value = float("inf"), None
    with _PeakSampler() as sampler:
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter()
            value = func()
            best = min(best, time.perf_counter() - start)
    LAST_PEAK = sampler.peak
    return best, value


def _tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack += [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            continue
    return total


def peak_memory_of(cmd: list[str]) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run ``cmd``; return (seconds, peak RSS of its whole process tree, result)."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    return (time.perf_counter() - start, peak,
            subprocess.CompletedProcess(cmd, process.returncode, out, err))


def check_page_seconds(book_path: Path, repeat: int = 3) -> float:
    """Best time of the check page of ``book_path`` from the web app on uvicorn (loopback,
    in a thread), after one request that loads the app's templates."""
    import socket
    import urllib.request

    import uvicorn

    from kpireport.web.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(book_path.parent, port=port),
                                           host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}/books/{book_path.name}"

    def page() -> bytes:
        with urllib.request.urlopen(url, timeout=300) as response:
            return response.read()

    try:
        page()
        best, _ = timed(page, repeat=repeat)
    finally:
        server.should_exit = True
        thread.join(10)
    return best


def cold_html(book: Path, work: Path, repeat: int = 5) -> tuple[float, float, float, float]:
    """Median wall-clock seconds of ``kpireport check BOOK`` and of ``kpireport build BOOK
    --format html`` into a new folder (no render cache), each a whole process as a person
    runs it, taken in turns so that both see the same machine; then the median CPU seconds
    (user + system, child processes included) of each, which a loaded machine disturbs less.
    Prints each turn's ratio too (how much the machine moved during the run)."""
    walls: tuple[list[float], list[float]] = ([], [])
    cpus: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat):
        for which, args in ((0, ["check", str(book)]),
                            (1, ["build", str(book), "--format", "html", "--out",
                                 str(work / f"cold-{i}")])):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "kpireport", *args],
                                 capture_output=True, text=True)
            walls[which].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[which].append(after.ru_utime + after.ru_stime
                               - before.ru_utime - before.ru_stime)
            if run.returncode != 0:
                raise RuntimeError(f"kpireport {args[0]} failed: {run.stderr[-2000:]}")
    turns = " ".join(f"{b / c:.2f}" for c, b in zip(*walls))
    print(f"  each turn's build / check: {turns}", file=sys.stderr, flush=True)
    return (statistics.median(walls[0]), statistics.median(walls[1]),
            statistics.median(cpus[0]), statistics.median(cpus[1]))


def _weasyprint_only(paths: list[str], css_path: str) -> None:
    from weasyprint import CSS, HTML

    for path in paths:
        HTML(filename=path).write_pdf(stylesheets=[CSS(filename=css_path)])


def _chunks(items: list, n: int) -> list[list]:
    return [items[i::n] for i in range(n)]


def read_rows(book_path: Path, rows: list, checks: list):
    """kpireport's read + validate against pandas + calamine reading every sheet of the same
    workbook, in turns (best of 5 each); (check seconds, book, issues)."""
    import pandas as pd

    from kpireport import api

    pandas_times, check_times = [], []
    for _ in range(5):
        seconds, frames = timed(lambda: pd.read_excel(book_path, sheet_name=None,
                                                      engine="calamine"))
        pandas_times.append(seconds)
        seconds, (book, issues) = timed(lambda: api.check(book_path))
        check_times.append(seconds)
    t_pandas, t_check = min(pandas_times), min(check_times)
    cells = sum(f.size for f in frames.values())
    rows.append(Row("baseline: pandas + calamine read every sheet", t_pandas, f"{cells:,} cells"))
    n_actuals = sum(len(v) for v in book.actuals.values())
    rows.append(Row("read + validate (kpireport check)", t_check, f"{n_actuals:,} actuals"))
    checks.append(("read+validate / pandas+calamine", t_check / t_pandas, "≤ 1.5",
                   t_check / t_pandas <= 1.5))
    return t_check, book, issues


def render_pdfs(views: list[dict], dirs: tuple[Path, ...], workers: int) -> list[str]:
    """The PDFs of ``views`` in kpireport's render pool (as a build renders them); the
    failures."""
    from kpireport.report.render import RenderPool

    pool = RenderPool(dirs, ("pdf",), workers)
    try:
        done = [result for view in views for _, result in pool.submit(view)] + \
            [result for _, result in pool.drain()]
    finally:
        pool.close()
    return [str(r) for r in done if isinstance(r, BaseException)]


def memory_rows(book_path: Path, work: Path, rows: list, checks: list, web_people: int) -> None:
    """Peak resident memory of the whole process tree of ``kpireport build --format html,pdf``
    at --workers 1 and 2 (promise: ≤ 400 MB each, whatever the number of reports), and the
    resident memory of this process — standing in for the web app's server — before and after
    the server's own way of building (``kpireport.web.builds``) a ``web_people``-person book
    (promise: back within 50 MB of its idle size)."""
    from kpireport.data_in import samples, template
    from kpireport.web.builds import build_elsewhere

    for workers in (1, 2):
        seconds, peak, run = peak_memory_of(
            [sys.executable, "-m", "kpireport", "build", str(book_path), "--format",
             "html,pdf", "--out", str(work / f"memory-{workers}"), "--workers", str(workers)])
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
        rows.append(Row(f"build --format html,pdf --workers {workers} (whole process tree)",
                        seconds, run.stdout.splitlines()[0] if run.stdout else "failed", peak))
        checks.append((f"peak memory, html,pdf, --workers {workers}, MB", peak / 1e6, "≤ 400",
                       peak / 1e6 <= 400 and run.returncode == 0))
        shutil.rmtree(work / f"memory-{workers}", ignore_errors=True)
    book = template.write_workbook(work / "web.xlsx", samples.synthetic(web_people), force=True)
    gc.collect()
    idle = _tree_rss(os.getpid())
    start = time.perf_counter()
    outcome = build_elsewhere(book, work / "web-out", 2, on_start=lambda n: None,
                              progress=lambda name: None, located=lambda locale: None)
    seconds = time.perf_counter() - start
    gc.collect()
    after = _tree_rss(os.getpid())
    rows.append(Row(f"web app's build of {web_people} people (server process)", seconds,
                    f"idle {idle / 1e6:.0f} MB, after {after / 1e6:.0f} MB; "
                    f"{outcome['rendered']} reports"))
    checks.append(("web server memory after a build − idle, MB", (after - idle) / 1e6, "≤ 50",
                   (after - idle) / 1e6 <= 50))


class _Done(Exception):
    """The stages asked for are measured (``--cold-html-only``)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__)
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--pdf-reports", type=int, default=200)
    parser.add_argument("--scale", default="100,1000,5000",
                        help="company sizes for the scaling table ('' to skip)")
    parser.add_argument("--skip-full-build", action="store_true",
                        help="skip the memory rows (html+pdf builds at 1 and 2 workers)")
    parser.add_argument("--cold-html-only", action="store_true",
                        help="measure only the end-to-end `build --format html` ÷ `check`")
    parser.add_argument("--read-only", action="store_true",
                        help="measure only read + validate against pandas + calamine")
    parser.add_argument("--memory-only", action="store_true",
                        help="measure only the peak memory of `build --format html,pdf` at "
                             "--workers 1 and 2, and the web app's server around a build")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs of each whole process in the end-to-end measures (median; "
                             "default 5, with --pdf 1)")
    parser.add_argument("--pdf", action="store_true",
                        help="measure only the PDF month (scripts/bench_pdf.py): CPU per "
                             "report against WeasyPrint alone, whole builds, workers, memory")
    parser.add_argument("--turns", type=int, default=3,
                        help="with --pdf: turns of the CPU-per-report measure (median)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()),
                        help="folder to write the workbook and builds in (removed afterwards)")
    args = parser.parse_args(argv)
    if args.pdf:
        import bench_pdf  # beside this file

        args.repeat = args.repeat or 1
        return bench_pdf.main(args)
    args.repeat = args.repeat or 5

    from kpireport import api
    from kpireport.data_in import samples, template
    from kpireport.report import render
    from kpireport.report.results_files import payroll_csv, results_json_bytes, results_xlsx
    from kpireport.report.views import all_views
    from kpireport.score.results import compute

    work = Path(tempfile.mkdtemp(prefix="kpireport-bench-", dir=args.work))
    rows: list[Row] = _Progress()
    checks: list[tuple[str, float, str, bool]] = []
    scaling: list[tuple] = []
    try:
        seconds, book_path = timed(lambda: template.write_workbook(
            work / "synthetic.xlsx", samples.synthetic(args.employees), force=True))
        rows.append(Row(f"generate synthetic workbook ({args.employees} people)", seconds,
                        f"{book_path.stat().st_size / 1e6:.1f} MB"))
        if args.read_only:
            read_rows(book_path, rows, checks)
            raise _Done
        if args.memory_only:
            memory_rows(book_path, work, rows, checks, args.pdf_reports)
            raise _Done
        cold_check, cold_build, cpu_check, cpu_build = cold_html(book_path, work, args.repeat)
        for i in range(args.repeat):
            shutil.rmtree(work / f"cold-{i}", ignore_errors=True)
        rows.append(Row("`kpireport check` (whole process)", cold_check,
                        f"median of {args.repeat}; CPU {cpu_check:.2f} s"))
        rows.append(Row("`kpireport build --format html` into a new folder (whole process)",
                        cold_build, f"median of {args.repeat}; CPU {cpu_build:.2f} s "
                        f"(CPU ratio {cpu_build / cpu_check:.2f})"))
        cold = ("end to end: build --format html / check (processes)", cold_build / cold_check,
                "≤ 6", cold_build / cold_check <= 6)
        if args.cold_html_only:
            checks.append(cold)
            raise _Done

        t_check, book, issues = read_rows(book_path, rows, checks)
        t_cli, _ = timed(lambda: subprocess.run(
            [sys.executable, "-m", "kpireport", "check", str(book_path)], capture_output=True),
            repeat=3)
        rows.append(Row("`kpireport check` (a fresh process)", t_cli))
        t_page = check_page_seconds(book_path)
        rows.append(Row("check page of `kpireport serve` (GET, server running)", t_page,
                        f"{t_page / t_check:.2f}× read+validate in-process"))
        checks.append(("serve's check page / kpireport check", t_page / t_cli, "≤ 2",
                       t_page / t_cli <= 2))

        t_score, results = timed(lambda: compute(book, issues), repeat=3)
        rows.append(Row(f"score {args.employees} people (+ bands and pay)", t_score,
                        f"{len(book.scorecards):,} scorecard lines"))
        checks.append((f"scoring {args.employees} people, seconds", t_score, "< 1",
                       t_score < 1))

        dirs = render.template_dirs(None)
        renderer = render.Renderer(dirs)

        def html_all():
            views = all_views(results)
            return views, [renderer.html(v) for v in views]

        renderer.html(all_views(results)[0])  # compile templates once, as a worker would
        t_html, (views, pages) = timed(html_all, repeat=3)
        rows.append(Row(f"HTML of {len(views)} reports (views + Jinja, 1 process)", t_html,
                        f"{sum(len(p) for p in pages) / 1e6:.1f} MB"))
        checks.append(("HTML for all reports / read+validate (in process)", t_html / t_check,
                       "≤ 3", t_html / t_check <= 3))
        checks.append(cold)

        def results_files():
            return [results_json_bytes(results), results_xlsx(results), payroll_csv(results)]

        t_files, files = timed(results_files)
        rows.append(Row("results files (results.json, results.xlsx, payroll.csv)", t_files,
                        f"{sum(len(f) for f in files) / 1e6:.1f} MB"))

        pdf_views = [v for v in views if v["kind"] == "employee"][:args.pdf_reports]
        html_dir = work / "html"
        html_dir.mkdir()
        paths = []
        for view in pdf_views:
            path = html_dir / (view["file"].replace("/", "_") + ".html")
            path.write_text(renderer.html(view, for_pdf=True))
            paths.append(str(path))
        css_path = str(next(d / "print.css" for d in dirs if (d / "print.css").exists()))
        # The HTML files live outside the template folder; give them the fonts beside them.
        shutil.copytree(dirs[-1] / "fonts", html_dir / "fonts")
        shutil.copy(dirs[-1] / "report.css", html_dir / "report.css")
        shutil.copy(css_path, html_dir / "print.css")

        def weasy_two():
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(2, mp_context=context) as pool:
                list(pool.map(_weasyprint_only, _chunks(paths, 2),
                              [str(html_dir / "print.css")] * 2))

        t_weasy, _ = timed(weasy_two)
        rows.append(Row(f"baseline: WeasyPrint alone, {len(paths)} PDFs, 2 processes",
                        t_weasy))
        t_pdf2, failures = timed(lambda: render_pdfs(pdf_views, dirs, 2))
        assert not failures, failures
        rows.append(Row(f"kpireport PDF, {len(pdf_views)} reports, 2 workers", t_pdf2))
        t_pdf1, _ = timed(lambda: render_pdfs(pdf_views, dirs, 1))
        rows.append(Row(f"kpireport PDF, {len(pdf_views)} reports, 1 worker", t_pdf1))
        checks.append(("PDF 2 workers / WeasyPrint alone 2 processes", t_pdf2 / t_weasy,
                       "≤ 1.25", t_pdf2 / t_weasy <= 1.25))
        checks.append(("speed-up 2 workers vs 1 worker", t_pdf1 / t_pdf2, "≥ 1.7",
                       t_pdf1 / t_pdf2 >= 1.7))

        small = template.write_workbook(work / "rebuild.xlsx",
                                        samples.synthetic(args.pdf_reports), force=True)
        t_first, first = timed(lambda: api.build(small, out=work / "rebuild", workers=2))
        rows.append(Row(f"first build, {args.pdf_reports} people, html+pdf", t_first,
                        f"{first.rendered} reports rendered"))
        t_again, again = timed(lambda: api.build(small, out=work / "rebuild", workers=2))
        rows.append(Row("rebuild with nothing changed", t_again,
                        f"{again.rendered} rendered, {again.cached} unchanged"))
        checks.append(("rebuild unchanged / first build", t_again / t_first, "≤ 0.15",
                       t_again / t_first <= 0.15))

        # PDF protection: the same messages made with and without pdf_protection; the
        # difference (per-recipient AES-256 copies, the password store) against the build.
        from dataclasses import replace

        from kpireport.deliver import send as deliver

        protected_book, _ = api.load(small)
        protected_book = replace(protected_book, recipients=None,  # the default recipients
                                 settings=replace(protected_book.settings,
                                                  pdf_protection="employee"))
        plain_book = replace(protected_book, settings=replace(protected_book.settings,
                                                              pdf_protection="none"))
        sender = "bench@example.com"
        t_plain, plain = timed(lambda: deliver.plan_messages(plain_book, first.run_dir, sender),
                               repeat=3)
        rows.append(Row("messages of that build, pdf_protection none", t_plain,
                        f"{len(plain.messages)} messages"))
        t_protected, protected = timed(lambda: deliver.plan_messages(
            protected_book, first.run_dir, sender), repeat=3)
        copies = sum(m.protected for m in protected.messages)
        rows.append(Row("messages of that build, pdf_protection employee", t_protected,
                        f"{len(protected.messages)} messages, {copies} encrypted copies"))
        added = max(t_protected - t_plain, 0.0)
        checks.append((f"protection added / first build of {args.pdf_reports} people",
                       added / t_first, "≤ 0.10", added / t_first <= 0.10))

        t_results, _ = timed(lambda: api.build(book_path, out=work / "html-only",
                                               formats=("html",), workers=2))
        rows.append(Row(f"build html only, {args.employees} people (results files too)",
                        t_results))

        if not args.skip_full_build:
            memory_rows(book_path, work, rows, checks, args.pdf_reports)

        for size in [int(s) for s in args.scale.split(",") if s.strip()]:
            path = template.write_workbook(work / f"scale{size}.xlsx", samples.synthetic(size),
                                           force=True)
            t_rv, (b, iss) = timed(lambda path=path: api.check(path))
            if b is None:
                print(f"synthetic workbook of {size} is invalid:",
                      [i.message for i in iss if i.severity == "error"][:5], file=sys.stderr)
                continue
            t_sc, res = timed(lambda b=b, iss=iss: compute(b, iss))
            t_h, _ = timed(lambda res=res: [renderer.html(v) for v in all_views(res)])
            scaling.append((size, len(b.scorecards), t_rv, t_sc, t_h))
    except _Done:
        pass
    finally:
        shutil.rmtree(work, ignore_errors=True)

    _print(rows, checks, scaling, t_pdf2 / max(len(pdf_views), 1) if scaling else 0.0)
    return 0 if all(ok for *_, ok in checks) else 1


def _print(rows, checks, scaling, pdf_per_report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"kpireport benchmark — {os.cpu_count()} cores, Python "
                  f"{sys.version.split()[0]}, benchmark process peak {peak_self:,.0f} MiB")
    table = Table(title="Stages")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("peak MiB", justify="right")
    table.add_column("detail")
    for row in rows:
        table.add_row(row.stage, f"{row.seconds:.3f}", f"{row.peak / 2**20:,.0f}", row.detail)
    console.print(table)
    console.print("peak MiB: resident memory of the benchmark process and its workers while "
                  "the stage ran (it includes what earlier stages still hold).")
    ratios = Table(title="Ratios against baselines measured in this run")
    for name in ("measure", "value", "limit", "result"):
        ratios.add_column(name)
    for name, value, limit, ok in checks:
        ratios.add_row(name, f"{value:.3f}", limit, "[green]PASS[/]" if ok else "[red]FAIL[/]")
    console.print(ratios)
    if scaling:
        scale = Table(title="Scaling (read+validate, score, HTML in one process; PDF estimated "
                            "at the measured per-report cost with 2 workers)")
        for name in ("people", "scorecard lines", "read+validate s", "score s", "HTML s",
                     "PDF s (est.)"):
            scale.add_column(name, justify="right")
        for size, lines, t_rv, t_sc, t_h in scaling:
            scale.add_row(f"{size:,}", f"{lines:,}", f"{t_rv:.2f}", f"{t_sc:.2f}", f"{t_h:.2f}",
                          f"{pdf_per_report * (size + size // 25 + 2):.0f}")
        console.print(scale)


if __name__ == "__main__":
    sys.exit(main())
