"""The PDF month as users wait for it: ``python scripts/bench.py --pdf --employees 200``.

Prints, in one run, measured in turns so that both sides of each ratio see the same machine:

(a) CPU milliseconds per report, by kind, in the rendering process: kpireport's render worker
    (a :class:`~kpireport.report.render.RenderPool` of one process, its garbage-collector
    policy included) against WeasyPrint alone in a process of its own, rendering the same print
    HTML with a fresh HTML, stylesheet and font set-up per report (tagged PDF, as kpireport);
    and, as the "before", a render worker whose template folder restores kpireport's earlier
    form (charts.css in a <style> inside each chart, cards and spark axes in flex boxes);
(b) ``kpireport build --format html,pdf --workers 2`` of the synthetic book, a whole process,
    against WeasyPrint alone rendering the same reports' HTML files in 2 processes;
(c) the same build with ``--workers 1`` against ``--workers 2``;
(d) the peak resident memory of the build's process tree, for the book and for a book of a
    quarter of its people (flat in the number of reports).

The print HTML WeasyPrint alone gets is kpireport's, with charts.css in a ``<style>`` inside each
chart: WeasyPrint styles an inline SVG from nowhere else, so that is how a WeasyPrint user
colours these charts. (a) also shows WeasyPrint alone on the HTML with the charts painted by
attributes (kpireport.report.chart_paint), the form kpireport renders. CPU is read from
/proc/<pid>/stat (clock ticks); each turn renders a batch of reports per kind, so a tick is a
small part of a batch. Nothing waits for the machine to settle: the spread of three runs is
the honest figure.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

TICK = 1 / os.sysconf("SC_CLK_TCK")
KINDS = ("employee", "department", "company")
BATCH = {"employee": 8, "department": 3, "company": 2}  # reports per kind and turn
_SVG_START = re.compile(r"<svg\b[^>]*>")
# What a template folder adds to render PDFs in kpireport's earlier form: a charts.css rule the
# resolution refuses (so charts.css goes into each chart) and the flex layout of print.css.
EARLIER_CHARTS = "\nsvg rect:first-child { }\n"
EARLIER_PRINT = """
.cards { display: flex; width: auto; border-spacing: 0; margin: 6px 0 8px; }
.card { display: block; } .employee .card.wide { width: auto; }
.spark-axis { display: flex; } .spark-axis > span:first-child, .spark-axis > span:last-child {
  float: none; }
"""


def earlier_form(folder: Path, dirs) -> tuple[Path, ...]:
    """Template folders that render PDFs in kpireport's earlier form (the same pixels)."""
    builtin = dirs[-1]
    folder.mkdir()
    (folder / "charts.css").write_text((builtin / "charts.css").read_text() + EARLIER_CHARTS)
    (folder / "print.css").write_text((builtin / "print.css").read_text() + EARLIER_PRINT)
    shutil.copy(builtin / "report.css", folder / "report.css")
    shutil.copytree(builtin / "fonts", folder / "fonts")
    return (folder, *dirs)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK  # utime, stime


def _spawned_children() -> set[int]:
    """This process's multiprocessing workers (not its resource tracker)."""
    found = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as handle:
            for pid in map(int, handle.read().split()):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        if b"spawn_main" in cmdline.read():
                            found.add(pid)
                except OSError:
                    continue
    return found


def _weasyprint_alone(path: str, css_path: str) -> bytes:
    """One report the way a WeasyPrint user renders it: everything set up for this report."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    css = CSS(filename=css_path, font_config=fonts)
    return HTML(filename=path).write_pdf(stylesheets=[css], font_config=fonts, pdf_tags=True)


def _weasyprint_files(paths: list[str], css_path: str) -> int:
    return sum(len(_weasyprint_alone(path, css_path)) for path in paths)


def _pages(pdf: bytes) -> int:
    import io

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def write_print_html(views: list[dict], renderer, folder: Path, dirs) -> dict[str, list[str]]:
    """Every view's print HTML as a file in ``folder`` (with the fonts and stylesheets beside
    it), charts.css in each chart; and the same with the charts painted by attributes.
    Returns {"styled": paths, "painted": paths} in the order of ``views``."""
    from kpireport.report.chart_paint import ChartPaint

    css = next(d / "charts.css" for d in dirs if (d / "charts.css").exists()).read_text()
    style = "<style>" + css.replace("<", "\\3C ") + "</style>"
    paint = ChartPaint.from_css(css)
    folder.mkdir(parents=True)
    for name in ("print.css", "report.css"):
        shutil.copy(next(d / name for d in dirs if (d / name).exists()), folder / name)
    shutil.copytree(dirs[-1] / "fonts", folder / "fonts")
    paths: dict[str, list[str]] = {"styled": [], "painted": []}
    for view in views:
        html = renderer.html(view, for_pdf=True)
        stem = view["file"].replace("/", "_")
        forms = {"styled": _SVG_START.sub(lambda m: m.group(0) + style, html),
                 "painted": paint.apply(html) if paint is not None else html}
        for form, text in forms.items():
            path = folder / f"{stem}.{form}.html"
            path.write_text(text, encoding="utf-8")
            paths[form].append(str(path))
    return paths


def cpu_per_report(views: list[dict], paths: dict[str, list[str]], dirs, css_path: str,
                   turns: int, earlier_dirs) -> dict[str, dict[str, list[float]]]:
    """(a): {kind: {"kpireport"|"earlier"|"styled"|"painted": [ms per report, per turn]}}."""
    import multiprocessing

    from kpireport.report import render

    by_kind = {kind: [i for i, v in enumerate(views) if v["kind"] == kind][:BATCH[kind]]
               for kind in KINDS}
    ms: dict[str, dict[str, list[float]]] = {
        k: {"kpireport": [], "earlier": [], "styled": [], "painted": []}
        for k in KINDS if by_kind[k]}
    first = next(i for k in KINDS for i in by_kind[k])
    pools, workers = {}, {}
    for name, folders in (("kpireport", dirs), ("earlier", earlier_dirs)):
        before = _spawned_children()
        pools[name] = render.RenderPool(folders, ("pdf",), workers=1)
        pools[name].submit(views[first])
        (_, warm), = pools[name].drain()  # the worker's first report: its set-up, frozen
        assert isinstance(warm, dict), warm
        workers[name], = _spawned_children() - before
    before = _spawned_children()
    baseline = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        baseline.submit(_weasyprint_alone, paths["styled"][first], css_path).result()
        alone, = _spawned_children() - before
        for turn in range(turns):
            for kind, indexes in by_kind.items():
                if not indexes:
                    continue
                for name, pool in pools.items():
                    start = _cpu_seconds(workers[name])
                    pdfs = []
                    for i in indexes:  # one at a time: the worker renders nothing else
                        pool.submit(views[i])
                        (_, files), = pool.drain()
                        assert isinstance(files, dict), files
                        pdfs.append(files[views[i]["file"] + ".pdf"])
                    ms[kind][name].append((_cpu_seconds(workers[name]) - start)
                                          / len(indexes) * 1e3)
                for form in ("styled", "painted"):
                    start = _cpu_seconds(alone)
                    theirs = [baseline.submit(_weasyprint_alone, paths[form][i], css_path)
                              .result() for i in indexes]
                    ms[kind][form].append((_cpu_seconds(alone) - start) / len(indexes) * 1e3)
                    if turn == 0:  # the same documents: the same pages
                        assert list(map(_pages, pdfs)) == list(map(_pages, theirs)), kind
    finally:
        for pool in pools.values():
            pool.close()
        baseline.shutdown()
    return ms


def build_seconds(book: Path, out: Path, workers: int) -> tuple[float, int]:
    """(wall seconds, peak resident bytes of the process tree) of a whole
    ``kpireport build --format html,pdf`` into a new folder."""
    from bench import peak_memory_of

    seconds, peak, run = peak_memory_of(
        [sys.executable, "-m", "kpireport", "build", str(book), "--format", "html,pdf",
         "--workers", str(workers), "--out", str(out)])
    if run.returncode != 0:
        raise RuntimeError(f"kpireport build failed: {run.stderr[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds, peak


def weasyprint_two(paths: list[str], css_path: str) -> float:
    """Wall seconds of WeasyPrint alone rendering ``paths`` in 2 new processes."""
    import multiprocessing

    start = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_weasyprint_files, [paths[0::2], paths[1::2]], [css_path] * 2))
    return time.perf_counter() - start


def run(employees: int, turns: int, repeat: int, work: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    from kpireport import api
    from kpireport.data_in import samples, template
    from kpireport.report import render
    from kpireport.report.views import all_views
    from kpireport.score.results import compute

    def say(text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    book = template.write_workbook(work / "synthetic.xlsx", samples.synthetic(employees),
                                   force=True)
    small = template.write_workbook(work / "quarter.xlsx",
                                    samples.synthetic(max(employees // 4, 10)), force=True)
    loaded, issues = api.load(book)
    dirs = render.template_dirs(None)
    renderer = render.Renderer(dirs)
    views = [v for v in all_views(compute(loaded, issues), ("pdf",)) if v["kind"] != "index"]
    paths = write_print_html(views, renderer, work / "html", dirs)
    css_path = str(work / "html" / "print.css")
    say(f"{len(views)} PDF reports; (a) CPU per report, {turns} turns…")
    ms = cpu_per_report(views, paths, dirs, css_path, turns,
                        earlier_form(work / "earlier", dirs))

    walls: dict[str, list[float]] = {"w2": [], "w1": [], "alone": []}
    peaks: dict[str, list[int]] = {"book": [], "quarter": []}
    for turn in range(repeat):
        say(f"(b)–(d) turn {turn + 1} of {repeat}: build --workers 2…")
        seconds, peak = build_seconds(book, work / "out-w2", 2)
        walls["w2"].append(seconds)
        peaks["book"].append(peak)
        say(f"build --workers 2 {seconds:.1f} s; WeasyPrint alone, 2 processes…")
        walls["alone"].append(weasyprint_two(paths["styled"], css_path))
        say(f"WeasyPrint alone {walls['alone'][-1]:.1f} s; build --workers 1…")
        walls["w1"].append(build_seconds(book, work / "out-w1", 1)[0])
        say(f"build --workers 1 {walls['w1'][-1]:.1f} s; the quarter-size book…")
        peaks["quarter"].append(build_seconds(small, work / "out-q", 2)[1])

    med = statistics.median
    console = Console(width=120)
    table = Table(title=f"(a) CPU ms per report in the rendering process "
                        f"(median of {turns} turns; turn values in brackets)")
    for name in ("kind", "kpireport", "earlier form", "WeasyPrint alone", "ratio (≤ 0.6)",
                 "earlier ÷ alone", "alone, painted charts", "ratio"):
        table.add_column(name, justify="right")
    checks = []
    for kind, values in ms.items():
        ours, earlier, styled, painted = (med(values[k]) for k in
                                          ("kpireport", "earlier", "styled", "painted"))
        turns_text = ", ".join(f"{v:.0f}" for v in values["kpireport"])
        table.add_row(kind, f"{ours:.0f} [{turns_text}]", f"{earlier:.0f}", f"{styled:.0f}",
                      f"{ours / styled:.2f}", f"{earlier / styled:.2f}", f"{painted:.0f}",
                      f"{ours / painted:.2f}")
        checks.append((f"(a) {kind}: kpireport ÷ WeasyPrint alone, CPU", ours / styled,
                       "≤ 0.6", ours / styled <= 0.6))
    console.print(table)
    w2, w1, alone = med(walls["w2"]), med(walls["w1"]), med(walls["alone"])
    rows = Table(title=f"(b)–(d) whole builds, {employees} people, {len(views)} PDFs "
                       f"(median of {repeat})")
    for name in ("measure", "value", "limit", "result", "each turn"):
        rows.add_column(name)

    def each(tops: list[float], bottoms: list[float]) -> str:
        return ", ".join(f"{t / b:.2f}" for t, b in zip(tops, bottoms))

    turn_values = {"(b)": each(walls["w2"], walls["alone"]), "(c)": each(walls["w1"], walls["w2"]),
                   "(d)": each(peaks["book"], peaks["quarter"])}
    checks += [
        ("(b) build html,pdf --workers 2 ÷ WeasyPrint alone in 2 processes", w2 / alone,
         "≤ 0.75", w2 / alone <= 0.75),
        ("(c) build --workers 1 ÷ --workers 2", w1 / w2, "≥ 1.8", w1 / w2 >= 1.8),
        ("(d) peak memory of the tree, this book ÷ a quarter of it",
         med(peaks["book"]) / med(peaks["quarter"]), "≤ 1.15",
         med(peaks["book"]) / med(peaks["quarter"]) <= 1.15)]
    for name, value, limit, ok in checks:
        rows.add_row(name, f"{value:.3f}", limit, "[green]PASS[/]" if ok else "[red]FAIL[/]",
                     turn_values.get(name[:3], ""))
    console.print(rows)
    console.print(f"walls: build --workers 2 {w2:.1f} s, --workers 1 {w1:.1f} s, WeasyPrint "
                  f"alone {alone:.1f} s; peak memory {med(peaks['book']) / 2**20:.0f} MiB "
                  f"({employees} people), {med(peaks['quarter']) / 2**20:.0f} MiB (a quarter)")
    return 0 if all(ok for *_, ok in checks) else 1


def main(args) -> int:
    import tempfile

    if not Path("/proc/self/stat").exists():
        print("--pdf reads /proc (Linux)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="kpireport-bench-pdf-", dir=args.work))
    try:
        return run(args.employees, args.turns, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

