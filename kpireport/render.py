"""Jinja → HTML → PDF, and rendering many reports in parallel.

The Jinja environment is sandboxed, autoescaping and strict about undefined names; it is built
once per process and locale. WeasyPrint gets a URL fetcher that reads only the template folders
and ``data:`` URIs, and the print stylesheet is parsed once per process.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from kpireport import __version__, template_cache
from kpireport.errors import TemplateError

TEMPLATES = {"employee": "employee.html", "department": "department.html",
             "company": "company.html", "index": "index.html"}
PRINT_CSS = "print.css"
CHARTS_CSS = "charts.css"
_SVG_START = re.compile(r"<svg\b[^>]*>")


def builtin_templates() -> Path:
    """The templates shipped in the package (or, in a source checkout, ../templates)."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "templates"


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
    from jinja2.ext import Extension
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


def _escape_output():
    """Autoescape for ``{{ … }}`` output: markupsafe's escape without building a Markup for
    each of the ~260,000 plain strings and ~40,000 charts of 1,000 reports (the output is
    joined into one str anyway). Anything else — numbers, None, undefined, objects with
    ``__html__`` — goes through markupsafe.escape."""
    from markupsafe import Markup, escape

    try:
        from markupsafe._speedups import _escape_inner
    except ImportError:  # a MarkupSafe without its C speedups, or a future layout
        return lambda value: str(escape(value))

    def escape_output(value):
        cls = value.__class__
        if cls is str:
            return _escape_inner(value)
        if cls is Markup:  # already safe (charts, macro output): as escape() would keep it
            return value
        return escape(value)

    return escape_output


def _code_generator():
    """Jinja's code generator, emitting :func:`_escape_output` for autoescaped output."""
    from jinja2.compiler import CodeGenerator

    class FastEscapeCodeGenerator(CodeGenerator):
        def _output_child_pre(self, node, frame, finalize) -> None:
            if frame.eval_ctx.volatile or not frame.eval_ctx.autoescape:
                return super()._output_child_pre(node, frame, finalize)
            self.write("environment.escape_output(")
            if finalize.src is not None:
                self.write(finalize.src)

    return FastEscapeCodeGenerator


def sandbox(dirs: tuple[Path, ...], locale: str, *, mail: bool = False,
            fast_paths: bool = True):
    """The one Jinja sandbox of kpireport's templates, reports and e-mails alike: immutable,
    strict about undefined names, ``*``/``**`` bounded (:func:`_checked_binop`), templates
    loaded only from ``dirs`` (:func:`template_loader`), translated in ``locale``.

    Reports (``mail=False``) are HTML, compiled once per locale and cached; ``fast_paths=False``
    is stock Jinja (compile-time translation and the output escape off) — tests check both
    render the same bytes. E-mails escape only their .html template and keep the final newline.
    """
    from jinja2 import StrictUndefined, select_autoescape
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from kpireport.i18n import translations
    from kpireport.viewmodel import FrozenDict

    fast = fast_paths and not mail

    class Sandbox(ImmutableSandboxedEnvironment):
        """Looks up keys of the view-model dicts first: ``k.name`` on a dict is an item, and
        trying (and failing) the attribute first costs an exception each."""

        if fast:
            code_generator_class = _code_generator()
            escape_output = staticmethod(_escape_output())

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
    from jinja2 import TemplateError as JinjaError
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
    """Raise :class:`ReportTimeout` in this thread after ``seconds`` (SIGALRM; only in the main
    thread of a process, which is where kpireport renders — elsewhere there is no limit)."""
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


def _remove_font_folder_at_exit(fonts) -> None:
    """WeasyPrint keeps a document's web fonts in a ``weasyprint-*`` folder of the temporary
    directory and removes it when its FontConfiguration is freed — which never happens in a
    render worker (kept until its process ends) nor after the command's fast exit
    (kpireport.cli.entry). This removes it when the process exits normally; a configuration
    freed before then removes its own, and its finalizer goes with it (nothing piles up in a
    long-running server)."""
    import weakref

    weakref.finalize(fonts, _remove_font_folder, weakref.ref(fonts))


def _remove_font_folder(ref) -> None:
    import shutil

    folder = getattr(ref(), "_folder", None)  # made when the first font is added
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


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
            from weasyprint import CSS
            from weasyprint.text.fonts import FontConfiguration

            self._fetcher = SafeFetcher(self.dirs)
            self._fonts = FontConfiguration()
            _remove_font_folder_at_exit(self._fonts)
            self._css = CSS(filename=str(self._template_file(PRINT_CSS)),
                            url_fetcher=self._fetcher.fetcher, font_config=self._fonts)
            css = self._template_file(CHARTS_CSS).read_text(encoding="utf-8")
            self._chart_style = "<style>" + css.replace("<", "\\3C ") + "</style>"
        return self._css, self._fonts, self._fetcher

    def layout(self, html: str):
        """The laid-out WeasyPrint document of one report's print HTML.

        WeasyPrint styles an inline SVG only from a <style> inside it, never from the page,
        so charts.css goes into each chart; browsers read it from the page."""
        from weasyprint import HTML

        css, fonts, fetcher = self._print_setup()
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
                    if "pdf" in formats:
                        files[view["file"] + ".pdf"] = document.write_pdf(pdf_tags=True)
                    if archive:
                        from kpireport.archive import write_archive

                        files[archive["file"]] = write_archive(document, archive)
        except Exception as exc:
            where = _location(exc, self.dirs)
            raise TemplateError(f"{view['file']}: {where + ': ' if where else ''}"
                                f"{type(exc).__name__}: {exc}") from None
        return files


# ---------------------------------------------------------------------------- parallel
_WORKER: Renderer | None = None


def _init_worker(dirs: tuple[Path, ...], timeout: float | None = None,
                 parent: int | None = None) -> None:
    global _WORKER
    # Ctrl-C reaches the whole process group: the main process stops the workers itself,
    # so they ignore it (no traceback per worker). They die with the main process, however
    # it dies (kill -9 included), instead of finishing their queue for nobody.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent or os.getppid())
    _WORKER = Renderer(dirs, timeout)


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` (the process that started it) ends, however it
    ends (kill -9 included)."""
    try:  # Linux: the kernel sends SIGKILL when the parent exits
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died already (while this worker started up)
        os._exit(1)

    def watch() -> None:  # elsewhere (and as a second line): poll for a new parent
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _render_task(view: dict, formats: tuple[str, ...]) -> dict[str, bytes]:
    assert _WORKER is not None
    return _WORKER.render(view, formats)


@dataclass
class RenderOutcome:
    files: dict[str, bytes]
    failures: dict[str, str]  # report file → error message


def view_key(view: dict, formats: tuple[str, ...], fingerprint: str) -> str:
    """Content hash of a report's inputs: view model, formats, templates and version."""
    import orjson

    payload = orjson.dumps(view, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                           default=str)
    return hashlib.sha256(f"{fingerprint}|{','.join(formats)}|".encode() + payload).hexdigest()


def render_views(views: list[dict], formats: tuple[str, ...], dirs: tuple[Path, ...], *,
                 workers: int | None = None, progress: Callable[[str], None] | None = None,
                 submit: Callable | None = None, timeout: float | None = None,
                 renderer: Renderer | None = None) -> RenderOutcome:
    """Render every view; one failure does not stop the others. ``submit`` lets another
    executor (a Dask client) take the work: it is called as submit(views, formats, dirs,
    on_done) and must call on_done(view, files_or_exception) for each view."""
    files: dict[str, bytes] = {}
    failures: dict[str, str] = {}

    def done(view: dict, result) -> None:
        if isinstance(result, BaseException):
            failures[view["file"]] = str(result)
        else:
            files.update(result)
        if progress:
            progress(view["file"])

    if submit is not None:
        submit(views, formats, dirs, done)
    else:
        workers = workers or os.cpu_count() or 1
        if workers <= 1 or len(views) <= 1:
            renderer = renderer or Renderer(dirs, timeout)
            for view in views:
                try:
                    done(view, renderer.render(view, formats))
                except Exception as exc:
                    done(view, exc)
        else:
            _render_pool(views, formats, dirs, workers, done, timeout)
    return RenderOutcome(files, failures)


def _render_pool(views, formats, dirs, workers, done, timeout) -> None:
    """Render in worker processes. An interrupt (Ctrl-C, SIGTERM turned into one by the CLI)
    or any other way out kills the workers at once instead of waiting for their queue."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(views)), mp_context=context,
                               initializer=_init_worker,
                               initargs=(dirs, timeout, os.getpid()))
    try:
        futures = {pool.submit(_render_task, view, formats): view for view in views}
        for future in as_completed(futures):
            view = futures[future]
            try:
                done(view, future.result())
            except Exception as exc:
                done(view, exc)
    except BaseException:
        _kill_pool(pool)
        raise
    pool.shutdown()


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
    for process in processes:
        process.join(2)
