"""Jinja → HTML → PDF, and rendering many reports in parallel.

The Jinja environment is sandboxed, autoescaping and strict about undefined names; it is built
once per process and locale. WeasyPrint gets a URL fetcher that reads only the template folders
and ``data:`` URIs, and the print stylesheet is parsed once per process.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from kpireport.core.collector import bounded_step
from kpireport.core.errors import TemplateError
from kpireport.core.i18n import translations
from kpireport.core.resources import builtin_templates
from kpireport.core.version import __version__
from kpireport.report import template_cache
from kpireport.report.chart_paint import ChartPaint
from kpireport.report.viewmodel import FrozenDict

TEMPLATES = {"employee": "employee.html", "department": "department.html",
             "company": "company.html", "index": "index.html"}
PRINT_CSS = "print.css"
CHARTS_CSS = "charts.css"
_SVG_START = re.compile(r"<svg\b[^>]*>")




def template_dirs(custom: Path | None) -> tuple[Path, ...]:
    dirs = [builtin_templates().resolve()]
    if custom is not None:
        custom = Path(custom)
        if not custom.is_dir():
            raise TemplateError(f"--templates {custom}: no such folder")
        dirs.insert(0, custom.resolve())
    return tuple(dirs)


def inside(path: Path, roots: Iterable[Path]) -> bool:
    """Whether ``path``, with every symlink resolved, is inside one of the (resolved) roots."""
    real = Path(os.path.realpath(path))
    return any(real == root or root in real.parents for root in roots)


def template_loader(dirs: tuple[Path, ...]):
    """Jinja's FileSystemLoader over ``dirs``, refusing any template whose real path (symlinks
    resolved) is outside them: a link in a custom folder cannot pull /etc/passwd or a private
    key into a report that gets e-mailed."""
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2 import FileSystemLoader

    roots = [Path(os.path.realpath(d)) for d in dirs]

    class InsideLoader(FileSystemLoader):
        def get_source(self, environment, template):
            source, filename, uptodate = super().get_source(environment, template)
            if filename is None or not inside(Path(filename), roots):
                raise TemplateError(f"template {template}: it is a link to "
                                    f"{os.path.realpath(filename or template)}, outside the "
                                    "template folders; kpireport does not read it")
            return source, filename, uptodate

    return InsideLoader([str(d) for d in dirs])


MAX_SEQUENCE = 10_000_000  # characters or items a template may make with * (e.g. "x" * n)
MAX_EXPONENT = 1_000


def _checked_binop(environment, context, operator, left, right):
    """``*`` and ``**`` in templates, refused where they would exhaust memory or a core in C
    code that no time limit interrupts (``"x" * 10**10``, ``7 ** 10**8``)."""
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2.exceptions import SecurityError

    if operator == "**":
        if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right!r} is too large for a template")
        return left ** right
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int) \
                and len(seq) * n > MAX_SEQUENCE:
            raise SecurityError(f"a template may not make a sequence of {len(seq) * n:,} "
                                f"items (limit {MAX_SEQUENCE:,})")
    return left * right


def _translate_literals(gettext: Callable[[str], str]):
    """A Jinja extension that translates ``_("literal")`` when the template is compiled.

    The report environment is built per locale, so a literal's translation is fixed for the
    life of the compiled template. The call becomes ``("translation" | safe)``, which Jinja
    folds into the template's static text: the same result as the i18n extension's run-time
    ``_()`` (translations are trusted markup and always %-formatted), without ~35,000 sandboxed
    calls per 1,000 reports. Calls with arguments are left to the run-time ``_()``.
    """
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2.ext import Extension

    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2.lexer import Token

    class TranslateLiterals(Extension):
        def filter_stream(self, stream):
            tokens = list(stream)
            if any(t.type == "name" and t.value == "_" and (i + 1 == len(tokens) or
                                                             tokens[i + 1].type != "lparen")
                   for i, t in enumerate(tokens)):
                return tokens  # `_` is (re)bound or passed around here: leave it to run time
            out: list = []
            i = 0
            while i < len(tokens):
                window = tokens[i:i + 4]
                if [t.type for t in window] == ["name", "lparen", "string", "rparen"] \
                        and window[0].value == "_" and (not out or out[-1].type != "dot"):
                    try:
                        text = gettext(window[2].value) % {}
                    except (TypeError, ValueError, KeyError):
                        text = None  # not a plain message: let the run-time _() report it
                    if text is not None:
                        line = window[0].lineno
                        out += [Token(line, "lparen", "("), Token(line, "string", text),
                                Token(line, "pipe", "|"), Token(line, "name", "safe"),
                                Token(line, "rparen", ")")]
                        i += 4
                        continue
                out.append(tokens[i])
                i += 1
            return out

    return TranslateLiterals


def sandbox(dirs: tuple[Path, ...], locale: str, *, mail: bool = False,
            fast_paths: bool = True):
    """The one Jinja sandbox of kpireport's templates, reports and e-mails alike: immutable,
    strict about undefined names, ``*``/``**`` bounded (:func:`_checked_binop`), templates
    loaded only from ``dirs`` (:func:`template_loader`), translated in ``locale``.

    Reports (``mail=False``) are HTML, compiled once per locale and cached; ``fast_paths=False``
    is stock Jinja (no compile-time translation of `_("literal")`) — tests check both
    render the same bytes. E-mails escape only their .html template and keep the final newline.
    """
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2 import StrictUndefined, select_autoescape

    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    fast = fast_paths and not mail

    class Sandbox(ImmutableSandboxedEnvironment):
        """Looks up keys of the view-model dicts first: ``k.name`` on a dict is an item, and
        trying (and failing) the attribute first costs an exception each."""

        intercepted_binops = frozenset(["*", "**"])
        call_binop = _checked_binop

        def getattr(self, obj, attribute):
            cls = type(obj)
            if (cls is FrozenDict or cls is dict) and attribute in obj:
                return obj[attribute]
            return super().getattr(obj, attribute)

    gettext = translations(locale)
    if mail:
        env = Sandbox(loader=template_loader(dirs), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                      keep_trailing_newline=True)
    else:
        env = Sandbox(
            loader=template_loader(dirs), autoescape=True, undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"] + ([_translate_literals(gettext.gettext)]
                                              if fast else []),
            trim_blocks=True, lstrip_blocks=True, auto_reload=False,
            bytecode_cache=template_cache.bytecode_cache(locale, fast_paths))
    env.install_gettext_translations(gettext, newstyle=True)  # type: ignore[attr-defined]
    return env


def _environment(locale: str, dirs: tuple[Path, ...], *, fast_paths: bool = True):
    """The report environment of one locale (see :func:`sandbox`)."""
    return sandbox(dirs, locale, fast_paths=fast_paths)


def check_templates(dirs: tuple[Path, ...], locale: str, renderer: Renderer | None = None
                    ) -> None:
    """Compile every report template now, so a syntax error stops the build before any work
    (in ``renderer``'s environment when given: the build renders with what was compiled)."""
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2 import TemplateError as JinjaError

    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2 import TemplateSyntaxError

    env = renderer.env(locale) if renderer is not None else _environment(locale, dirs)
    for name in list(TEMPLATES.values()) + ["base.html"]:
        try:
            env.get_template(name)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"template {exc.filename or exc.name}, line {exc.lineno}: "
                                f"{exc.message}") from None
        except JinjaError as exc:
            raise TemplateError(f"template {name}: {exc}") from None


def template_bundle(dirs: tuple[Path, ...]) -> dict[str, bytes]:
    """Every template file by relative path, as a build sees it: earlier folders override
    later ones; a link that leads outside the folders is left out (it is never read)."""
    bundle: dict[str, bytes] = {}
    for folder in reversed(dirs):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and inside(path, dirs):
                bundle[path.relative_to(folder).as_posix()] = path.read_bytes()
    return bundle


def bundle_fingerprint(bundle: dict[str, bytes]) -> str:
    """The hash of a template bundle and this kpireport version: the key of the render cache
    and of the templates a Dask worker holds."""
    digest = hashlib.sha256(__version__.encode() + b"\0")
    for name in sorted(bundle):
        digest.update(name.encode() + b"\0" + hashlib.sha256(bundle[name]).digest())
    return digest.hexdigest()


def template_fingerprint(dirs: tuple[Path, ...]) -> str:
    """Hash of the templates a build renders with (see :func:`bundle_fingerprint`)."""
    return bundle_fingerprint(template_bundle(dirs))


def _location(exc: BaseException, dirs: tuple[Path, ...]) -> str:
    """'template employee.html, line 12' from a Jinja traceback, when it runs through one."""
    tb = exc.__traceback__
    found = ""
    roots = [str(d) for d in dirs]
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if any(filename.startswith(r) for r in roots):
            found = f"template {Path(filename).name}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return found


class SafeFetcher:
    """A WeasyPrint URL fetcher that reads only files under ``allowed`` and data: URIs."""

    def __init__(self, allowed: Iterable[Path]) -> None:
        # lazy: weasyprint is loaded only where it is used (start-up stays light)
        from weasyprint.urls import URLFetcher

        self.allowed = [Path(p).resolve() for p in allowed]
        self.refused: list[str] = []
        outer = self

        class _Fetcher(URLFetcher):
            def fetch(self, url, headers=None):
                outer.check(url)
                return super().fetch(url, headers)

        self.fetcher = _Fetcher(allowed_protocols=("file", "data"), allow_redirects=False)

    def check(self, url: str) -> None:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return
        if scheme == "file":
            path = Path(unquote(urlparse(url).path)).resolve()
            if any(path == root or root in path.parents for root in self.allowed):
                return
        self.refused.append(url)
        raise ValueError(f"kpireport does not fetch {url!r}")


class ReportTimeout(Exception):
    """A report took longer than its time limit (a runaway template loop)."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`ReportTimeout` in this thread after ``seconds`` (SIGALRM, in the main
    thread of a render worker: a process kpireport started; a renderer in any other process
    has no time limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise ReportTimeout(f"stopped after {seconds:g} s (a runaway loop in a template? "
                            "the limit is KPIREPORT_REPORT_TIMEOUT)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Renderer:
    """Renders views to HTML and PDF; one per process, reused for every report."""

    dirs: tuple[Path, ...]
    timeout: float | None = None  # seconds per report
    _envs: dict[str, object] = field(default_factory=dict)
    _css: object | None = None
    _fonts: object | None = None
    _fetcher: SafeFetcher | None = None
    _chart_style: str | None = None
    _chart_paint: ChartPaint | None = None

    def env(self, locale: str):
        if locale not in self._envs:
            self._envs[locale] = _environment(locale, self.dirs)
        return self._envs[locale]

    def html(self, view: dict, *, for_pdf: bool = False) -> str:
        template = self.env(view["locale"]).get_template(TEMPLATES[view["kind"]])  # type: ignore[attr-defined]
        return template.render(**view, for_pdf=for_pdf)

    def _template_file(self, name: str) -> Path:
        path = next(d / name for d in self.dirs if (d / name).exists())
        if not inside(path, self.dirs):
            raise TemplateError(f"template {name}: it is a link outside the template "
                                "folders; kpireport does not read it")
        return path

    def _print_setup(self):
        if self._css is None:
            # lazy: weasyprint is loaded only where it is used (start-up stays light)
            from weasyprint import CSS

            # lazy: weasyprint is loaded only where it is used (start-up stays light)
            from weasyprint.text.fonts import FontConfiguration

            self._fetcher = SafeFetcher(self.dirs)
            self._fonts = FontConfiguration()
            self._css = CSS(filename=str(self._template_file(PRINT_CSS)),
                            url_fetcher=self._fetcher.fetcher, font_config=self._fonts)
            css = self._template_file(CHARTS_CSS).read_text(encoding="utf-8")
            self._chart_paint = ChartPaint.from_css(css)
            self._chart_style = "<style>" + css.replace("<", "\\3C ") + "</style>"
        return self._css, self._fonts, self._fetcher

    def layout(self, html: str):
        """The laid-out WeasyPrint document of one report's print HTML.

        WeasyPrint styles an inline SVG only from a <style> inside it, never from the page
        (browsers read charts.css from the page). charts.css, resolved once, becomes the
        charts' own attributes (:mod:`~kpireport.report.chart_paint`: the same attributes
        WeasyPrint would derive, without parsing the stylesheet again for every chart); a
        charts.css that cannot be resolved goes into each chart as a <style>."""
        # lazy: weasyprint is loaded only where it is used (start-up stays light)
        from weasyprint import HTML

        css, fonts, fetcher = self._print_setup()
        if self._chart_paint is not None:
            html = self._chart_paint.apply(html)
        else:
            style = self._chart_style
            html = _SVG_START.sub(lambda m: m.group(0) + style, html)
        document = HTML(string=html, base_url=str(self.dirs[0]) + "/",
                        url_fetcher=fetcher.fetcher).render(  # type: ignore[union-attr]
                            stylesheets=[css], font_config=fonts)
        for page in document.pages:
            # A report's links to the other reports resolve against the template folder
            # (the base URL that finds fonts and styles): in a PDF they would point into this
            # machine's installation (file:///…/templates/…) — dead in an e-mailed copy, and
            # a leak of local paths. The PDF keeps the text, without those links.
            page.links = [link for link in page.links if not str(link[1]).startswith("file:")]
        return document

    def pdf(self, html: str) -> bytes:
        """A tagged PDF (pdf_tags: screen readers can follow the tables)."""
        return self.layout(html).write_pdf(pdf_tags=True, uncompressed_pdf=False)

    def render(self, view: dict, formats: tuple[str, ...]) -> dict[str, bytes]:
        """The files of one report: {'employees/E001.html': b'...', ...}."""
        files: dict[str, bytes] = {}
        try:
            with time_limit(self.timeout):
                if "html" in formats or view["kind"] == "index":
                    files[view["file"] + ".html"] = self.html(view).encode("utf-8")
                archive = view.get("archive")
                if ("pdf" in formats or archive) and view["kind"] != "index":
                    # Laid out once, written as the tagged PDF and, with --archive, as PDF/A-3b.
                    document = self.layout(self.html(view, for_pdf=True))
                    # lazy: this stage loads only when the command reaches it (start-up stays light)
                    from kpireport.report.statement import seal

                    sealed = view.get("statement")
                    if "pdf" in formats:
                        pdf = document.write_pdf(pdf_tags=True)
                        files[view["file"] + ".pdf"] = seal(pdf, sealed) if sealed else pdf
                    if archive:
                        # lazy: only archive copies need it (pikepdf)
                        from kpireport.report.archive import write_archive

                        pdf = write_archive(document, archive)
                        files[archive["file"]] = seal(pdf, sealed, archive=True) \
                            if sealed else pdf
        except Exception as exc:
            where = _location(exc, self.dirs)
            raise TemplateError(f"{view['file']}: {where + ': ' if where else ''}"
                                f"{type(exc).__name__}: {exc}") from None
        return files


def render_in_place(renderer: Renderer, view: dict, formats: tuple[str, ...]
                    ) -> dict[str, bytes]:
    """One report in a process kpireport does not own (the build's own process, a Dask
    worker), with the per-report garbage-collector policy in its bounded form
    (:func:`~kpireport.core.collector.bounded_step`): no automatic collection while the report
    renders; one collection of the young generations after it, which frees the report's
    cycles and moves what the renderer set up during its first report (stylesheets, fonts,
    compiled templates) into the oldest generation, where no later report's collection walks
    it. ``gc.freeze`` would also spare the full collections of the rest of the process, but it
    is process-wide: only kpireport's own render workers use it (:func:`_render_task`)."""
    with bounded_step():
        return renderer.render(view, formats)


# ---------------------------------------------------------------------------- parallel
def default_workers() -> int:
    """Worker processes a PDF build uses when ``--workers`` is not given: one per core."""
    return os.cpu_count() or 1


def view_key(view: dict, formats: tuple[str, ...], fingerprint: str) -> str:
    """Content hash of a report's inputs: view model, formats, templates and version."""
    import orjson  # lazy: only a build keys reports

    statement = view.get("statement")
    if statement:  # the workbook's hash is sealed in, not rendered: not part of the key
        view = {**view, "statement": {k: v for k, v in statement.items() if k != "workbook"}}
    payload = orjson.dumps(view, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                           default=str)
    return hashlib.sha256(f"{fingerprint}|{','.join(formats)}|".encode() + payload).hexdigest()


class RenderPool:
    """Worker processes that render reports, started by the build and stopped with it.

    Workers are spawned (never forked from the caller, which may be a threaded server), each
    with one :class:`Renderer` for its whole life and the garbage-collector policy of
    :func:`_render_task`. At most ``IN_FLIGHT`` reports per worker are queued at a time, so
    the views waiting to be rendered never pile up in memory. A report that fails raises in its
    worker and comes back as that report's error; a worker that dies, or a report that does not
    come back within its time limit plus ``GRACE`` seconds, stops the pool with a
    :class:`~kpireport.core.errors.TemplateError` naming the report (nothing is redone
    silently).
    """

    IN_FLIGHT = 4
    GRACE = 30.0

    def __init__(self, dirs: tuple[Path, ...], formats: tuple[str, ...], workers: int,
                 timeout: float | None = None) -> None:
        import multiprocessing  # lazy: only a build with PDFs starts workers

        self.formats = formats
        self.limit = max(1, workers) * self.IN_FLIGHT
        self.wait_seconds = (timeout or 600.0) + self.GRACE
        self.pending: dict = {}
        # The workers' temporary files (WeasyPrint's font folders) go here, removed by close()
        # however the workers ended (a terminated worker runs no finalizer).
        self.scratch = tempfile.mkdtemp(prefix="kpireport-render-")
        self.pool = ProcessPoolExecutor(max_workers=max(1, workers),
                                        mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker,
                                        initargs=(dirs, timeout, os.getpid(), self.scratch))

    def submit(self, view: dict) -> list[tuple[dict, dict[str, bytes] | BaseException]]:
        """Queue one report; what finished meanwhile (waiting while the queue is full)."""
        self.pending[self.pool.submit(_render_task, view, self.formats)] = view
        finished = []
        while len(self.pending) >= self.limit:
            finished += self._collect()
        return finished

    def drain(self) -> list[tuple[dict, dict[str, bytes] | BaseException]]:
        """Wait for every queued report."""
        finished = []
        while self.pending:
            finished += self._collect()
        return finished

    def _collect(self) -> list[tuple[dict, dict[str, bytes] | BaseException]]:


        done, _ = wait(self.pending, timeout=self.wait_seconds, return_when=FIRST_COMPLETED)
        if not done:
            stuck = next(iter(self.pending.values()))["file"]
            raise TemplateError(f"{stuck}: no report came back from the render workers in "
                                f"{self.wait_seconds:g} s; the build was stopped")
        finished = []
        for future in done:
            view = self.pending.pop(future)
            try:
                finished.append((view, future.result()))
            except BrokenProcessPool:
                raise TemplateError(f"{view['file']}: a render worker died (out of memory, or "
                                    "killed); the build was stopped") from None
            except Exception as exc:  # that report's own error, raised in the worker
                finished.append((view, exc))
        return finished

    def close(self) -> None:
        """Stop the workers: at once if reports are still queued (an error or an interrupt),
        else after they have exited normally."""
        if self.pending:
            # The executor has no public way to stop a worker mid-task before Python 3.14
            # (terminate_workers); its process table is read, not changed.
            processes = list((getattr(self.pool, "_processes", None) or {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(2)
                if process.is_alive():
                    process.kill()
            self.pending.clear()
        self.pool.shutdown(wait=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


# The renderer of a worker process (set by _init_worker; a worker is kpireport's own process).
_WORKER: Renderer | None = None
_RENDERED = 0


def _init_worker(dirs: tuple[Path, ...], timeout: float | None, parent: int,
                 scratch: str | None = None) -> None:
    global _WORKER
    if scratch is not None:  # this worker's temporary files, in the pool's folder
        tempfile.tempdir = scratch
    # Ctrl-C reaches the whole process group: the build stops the workers itself, so they
    # ignore it (no traceback per worker). They end with the build's process however it ends
    # (kill -9 included) instead of finishing their queue for nobody.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with(parent)
    _WORKER = Renderer(dirs, timeout)
    # A worker ends through multiprocessing, which runs its finalizers but not atexit:
    # WeasyPrint removes its font folder when the renderer's font configuration is freed.
    from multiprocessing.util import Finalize  # lazy: only in a worker process

    Finalize(None, _close_worker, exitpriority=10)


def _close_worker() -> None:
    import gc  # lazy: only in a worker process

    global _WORKER
    _WORKER = None
    gc.unfreeze()
    gc.collect()


def _end_with(parent: int) -> None:
    """Have the kernel end this worker when ``parent`` ends (Linux); elsewhere a thread
    watches for a new parent."""
    try:
        import ctypes  # lazy: only in a worker process

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _render_task(view: dict, formats: tuple[str, ...]) -> dict[str, bytes]:
    """One report in a worker, with the worker's garbage-collector policy: what the worker set
    up once (fonts, stylesheets, compiled templates) is collected and frozen after its first
    report, so no later pass walks it; no automatic collection while a report renders; one
    collection after each report, so the worker's memory stays flat however many it renders."""
    import gc  # lazy: only in a worker process

    global _RENDERED
    assert _WORKER is not None
    gc.disable()
    try:
        return _WORKER.render(view, formats)
    finally:
        gc.collect()
        if _RENDERED == 0:
            gc.freeze()
        _RENDERED += 1
        gc.enable()
