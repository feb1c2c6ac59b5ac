"""``kpireport serve``: the month in a browser, over the same calls as the CLI.

Pages are rendered on the server (Jinja, in English or Vietnamese from the project's
catalogs); the only script is ``static/app.js``, which polls a job's progress and the send
ledger. Every page shows the command that does the same from a terminal. See
:mod:`kpireport.web.security` for what is checked on each request, and
:mod:`kpireport.web.actions` for what each action calls.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kpireport.core.errors import KpireportError
from kpireport.web import actions, labels, runview, security, start
from kpireport.web.errors import PageError
from kpireport.web.labels import _ as N_

HERE = Path(__file__).parent
LANGUAGES = ("en", "vi")
LOCALES = {"en": "en_US", "vi": "vi_VN"}


@lru_cache(maxsize=4)
def _environment(language: str):
    # lazy: jinja2 is loaded only where it is used (start-up stays light)
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.i18n import Formatter, translations

    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), extensions=["jinja2.ext.i18n"],
                      trim_blocks=True, lstrip_blocks=True)
    locale = LOCALES[language]
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = language
    env.filters["megabytes"] = lambda n: f"{n / 1e6:.1f} MB" if n >= 1e5 else \
        f"{n / 1e3:.0f} kB"
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M")
    env.filters["stamp"] = runview.when
    env.filters["number"] = lambda n: Formatter(locale, "USD").number(n)
    # a word of the program's (severity, report kind, delivery state) in the page's language
    env.filters["label"] = lambda word: labels.label(word, translations(locale).gettext)
    env.filters["summary"] = lambda facts: labels.summary(facts, translations(locale).gettext)
    return env


def _gettext(language: str):
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.i18n import translations

    return translations(LOCALES[language]).gettext


def _language(request: Request, locale: str | None = None) -> str:
    """The workbook's language when the page is about one, else the browser's."""
    if locale:
        return "vi" if locale.lower().startswith("vi") else "en"
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


class App:
    """The routes, over one :class:`~kpireport.web.actions.Workspace`."""

    def __init__(self, workspace: actions.Workspace, secret: bytes, token: str | None) -> None:
        self.ws = workspace
        self.secret = secret
        self.token = token

    # ------------------------------------------------------------------ helpers
    def page(self, request: Request, template_name: str, *, locale: str | None = None,
             status: int = 200, **context) -> HTMLResponse:
        language = _language(request, locale)
        template = _environment(language).get_template(template_name)
        session = request.scope.get("state", {}).get("session", "")
        html = template.render(csrf=security.csrf_token(self.secret, session),
                               folder=str(self.ws.folder), path=request.url.path,
                               running=self.ws.current if self.ws.current is not None
                               and self.ws.current.state == "running" else None,
                               **context)
        return HTMLResponse(html, status_code=status)

    async def form(self, request: Request, **limits):
        form = await request.form(**limits)
        security.check_csrf(self.secret, request.scope.get("state", {}).get("session", ""),
                            form.get("csrf") if isinstance(form.get("csrf"), str) else None,
                            request.headers.get("origin"), request.headers.get("host"))
        return form

    # ------------------------------------------------------------------ pages
    async def home(self, request: Request) -> Response:
        books = await run_in_threadpool(self.ws.books)
        runs = await run_in_threadpool(self.ws.runs)
        language = _language(request)
        return self.page(request, "home.html", books=books, runs=runs,
                         template_locales=start.LOCALES, currencies=start.CURRENCIES,
                         default_locale="vi_VN" if language == "vi" else "en_US",
                         samples=start.SAMPLES, year=dt.date.today().year,
                         command=actions.cli("check", self.ws.folder / "BOOK.xlsx"))

    async def login(self, request: Request) -> Response:
        offered = request.query_params.get("token", "")
        if not self.token:
            return RedirectResponse("/", 303)
        if not offered or not secrets.compare_digest(offered.encode(), self.token.encode()):
            return PlainTextResponse("Wrong or missing token: use the login link `kpireport "
                                     "serve` printed.", 401)
        response = RedirectResponse("/", 303)
        response.set_cookie(security.TOKEN_COOKIE, self.token, httponly=True,
                            samesite="strict", path="/")
        return response

    async def upload(self, request: Request) -> Response:
        form = await self.form(request, max_files=1, max_fields=4)
        upload = form.get("workbook")
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise PageError(400, N_("Choose a workbook (.xlsx) to upload."))
        name, report = await run_in_threadpool(self.ws.store_upload, upload.filename,
                                               upload.file)
        if name is None:
            return self.page(request, "check.html", status=422, report=report, name=None,
                             command=actions.cli("check", report.name))
        suffix = f"&unmarked={report.unmarked}" if report.unmarked else ""
        return RedirectResponse(f"{_book_url(name)}?version={report.version}{suffix}", 303)

    async def check(self, request: Request) -> Response:
        name = request.path_params["name"]
        version = _version(request)
        report = await run_in_threadpool(self.ws.check, name, version)
        versions = await run_in_threadpool(self.ws.versions, name)
        shown = version if version is not None else versions[0]["number"] if versions else 0
        # the page is in the workbook's language, and so are its messages and fixes
        rows = labels.issue_rows(report.issues, _gettext(_language(request, report.locale)))
        unmarked = request.query_params.get("unmarked", "")
        return self.page(request, "check.html", locale=report.locale, report=report, rows=rows,
                         name=name, version=shown, versions=versions,
                         at=f"?version={shown}", prepared=_prepared(request),
                         build_command=self.ws.build_command(name, version=version),
                         unmarked=int(unmarked) if unmarked.isdigit() else 0,
                         command=actions.cli("check", self.ws.book(name, version), "--annotate"),
                         prepare_command=actions.cli("prepare", self.ws.book(name, version)))

    async def annotated(self, request: Request) -> Response:
        name = request.path_params["name"]
        out = await run_in_threadpool(self.ws.annotated, name, _version(request))
        return FileResponse(out, filename=out.name, media_type=_XLSX)

    async def workbook(self, request: Request) -> Response:
        """A version of a workbook, under the name it was uploaded as."""
        path = self.ws.book(request.path_params["name"], _version(request))
        return FileResponse(path, filename=path.name, media_type=_XLSX)

    async def prepare(self, request: Request) -> Response:
        await self.form(request, max_files=0, max_fields=4)
        name = request.path_params["name"]
        prepared, report = await run_in_threadpool(start.prepare_version, self.ws, name,
                                                   _version(request))
        version = report.version if report is not None else _version(request)
        at = f"?version={version}" if version is not None else "?"
        return RedirectResponse(f"{_book_url(name)}{at}&prepared={prepared.rows}"
                                f"-{prepared.months}", 303)

    async def template(self, request: Request) -> Response:
        choice = start.TemplateChoice.of(_language(request), request.query_params)
        data = await run_in_threadpool(start.template_bytes, self.ws.private, choice)
        return _download(data, choice.filename)

    async def sample(self, request: Request) -> Response:
        name = request.path_params["name"]
        data = await run_in_threadpool(start.sample_bytes, self.ws.private, name)
        if request.method == "GET":
            return _download(data, start.SAMPLES[name])
        await self.form(request, max_files=0, max_fields=4)
        stored, report = await run_in_threadpool(self.ws.store_upload, start.SAMPLES[name],
                                                 io.BytesIO(data), origin="sample")
        return RedirectResponse(f"{_book_url(stored or name)}?version={report.version}", 303)

    async def build(self, request: Request) -> Response:
        form = await self.form(request, max_files=0, max_fields=6)
        name = request.path_params["name"]
        version = _version(request)
        reopen = None
        if form.get("reopen"):
            by, note = (str(form.get(k) or "").strip() for k in ("by", "note"))
            if not by or not note:
                raise PageError(400, N_("Type your name and why the month is reopened."))
            reopen = (by, note)
        # the language the check page was in (the workbook's), until the build reads it
        locale = LOCALES[_language(request, str(form.get("locale") or "") or None)]
        job = self.ws.start_build(name, version=version, reopen=reopen, locale=locale)
        return RedirectResponse(f"/jobs/{job.id}", 303)

    async def job(self, request: Request) -> Response:
        job = self._job(request)
        if job.kind == "build":
            command = self.ws.build_command(job.target, version=job.version, reopen=job.reopened
                                            or job.sent_month is not None)
            done = f"/runs/{job.period}" if job.period and job.state == "done" else None
        else:
            command = self.ws.send_command(job.target, test_to="ADDRESS" if job.kind == "test"
                                           else None)
            done = f"/runs/{job.target}/deliver"
        return self.page(request, "job.html", locale=job.locale, job=job, command=command,
                         done=done)

    async def job_json(self, request: Request) -> Response:
        job = self._job(request)
        data = job.as_dict()
        if job.state == "done" or job.kind != "build":
            data["next"] = f"/runs/{job.period}" if job.kind == "build" else \
                f"/runs/{job.target}/deliver"
        return JSONResponse(data)

    def _job(self, request: Request) -> actions.Job:
        job = self.ws.jobs.get(request.path_params["id"])
        if job is None:
            raise PageError(404, N_("No such job (the server was restarted since?); the runs "
                                       "it made are on the home page."))
        return job

    async def run(self, request: Request) -> Response:
        period = request.path_params["period"]
        summary = await run_in_threadpool(self.ws.run_summary, period)
        return self.page(request, "run.html", locale=summary["locale"], run=summary,
                         money=_money(summary), preview=request.query_params.get("preview"),
                         command=actions.cli("status", self.ws.run_dir(period)),
                         diff_command=actions.cli("diff", self.ws.run_dir(period)))

    async def deliver(self, request: Request) -> Response:
        period = request.path_params["period"]
        summary = await run_in_threadpool(self.ws.run_summary, period)
        passwords, plan = await run_in_threadpool(self.ws.deliver_facts, period)
        job = self.ws.current
        test_password = job.test_password if job is not None and job.kind == "test" \
            and job.target == period and job.state == "done" else None
        return self.page(request, "deliver.html", locale=summary["locale"], run=summary,
                         rows=summary["rows"], smtp=self.ws.smtp_summary(),
                         passwords=passwords, test_password=test_password, plan=plan,
                         passwords_command=self.ws.passwords_command(),
                         approve_command=self.ws.approve_command(period),
                         test_command=self.ws.send_command(period, test_to="ADDRESS"),
                         command=self.ws.send_command(period),
                         status_command=self.ws.status_command(period))

    async def delivery_json(self, request: Request) -> Response:
        run_dir = self.ws.run_dir(request.path_params["period"])

        def rows() -> list[dict]:
            # lazy: this stage loads only when the command reaches it (start-up stays light)
            from kpireport.month import cycle

            return runview.delivery(cycle.status(run_dir))

        rows = await run_in_threadpool(rows)
        gettext = _gettext(_language(request, runview.run_locale(run_dir)))
        for row in rows:
            row["label"] = labels.label(row["state"], gettext)
        job = self.ws.current
        data = job.as_dict() if job else None
        if data is not None and job.target != request.path_params["period"]:
            data["test_password"] = None  # another run's test
        return JSONResponse({"rows": rows, "job": data})

    async def approve(self, request: Request) -> Response:
        form = await self.form(request, max_files=0, max_fields=6)
        period = request.path_params["period"]
        by = str(form.get("by") or "").strip()
        if not by:
            raise PageError(400, N_("Type your name to approve."),
                            locale=runview.run_locale(self.ws.run_dir(period)))
        note = str(form.get("note") or "")
        if request.url.path.endswith("/revoke"):
            await run_in_threadpool(self.ws.revoke, period, by, note)
        else:
            await run_in_threadpool(self.ws.approve, period, by, note)
        return RedirectResponse(f"/runs/{period}/deliver", 303)

    async def send(self, request: Request) -> Response:
        form = await self.form(request, max_files=0, max_fields=6)
        period = request.path_params["period"]
        test_to = str(form.get("test_to") or "").strip() or None
        if request.url.path.endswith("/test-send") and not test_to:
            raise PageError(400, N_("Type the address the test goes to."),
                            locale=runview.run_locale(self.ws.run_dir(period)))
        if test_to is None and form.get("confirm") != "yes":
            # a deliberate send: what will go to whom, then a confirmation
            summary = await run_in_threadpool(self.ws.run_summary, period)
            passwords, plan = await run_in_threadpool(self.ws.deliver_facts, period)
            return self.page(request, "confirm_send.html", locale=summary["locale"],
                             run=summary, plan=plan, passwords=passwords,
                             command=self.ws.send_command(period))
        job = self.ws.start_send(period, test_to=test_to)
        return RedirectResponse(f"/runs/{period}/deliver?job={job.id}", 303)

    async def passwords(self, request: Request) -> Response:
        form = await self.form(request, max_files=0, max_fields=4)
        period = request.path_params["period"]
        text = await run_in_threadpool(self.ws.hand_out, period,
                                       everyone=bool(form.get("everyone")))
        return Response(text, media_type="text/csv; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="pdf-passwords-{period}.csv"'})

    async def preview(self, request: Request) -> Response:
        path = self.ws.run_file(request.path_params["period"], request.path_params["file"])
        if path.suffix == ".pdf":
            return FileResponse(path, media_type="application/pdf", filename=path.name,
                                headers={"content-security-policy": security.PREVIEW_CSP})
        return FileResponse(path, media_type="text/html; charset=utf-8",
                            headers={"content-security-policy": security.PREVIEW_CSP})

    # ------------------------------------------------------------------ errors
    async def error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, PageError):  # the app's own words, in the page's language
            status = exc.status_code
            message = exc.said(_gettext(_language(request, exc.locale)))
        elif isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
        elif isinstance(exc, actions.Busy):
            status, message = 409, str(exc)
        else:
            status, message = 400, str(exc)
        if request.url.path.endswith(".json"):
            english = str(exc.detail) if isinstance(exc, PageError) else message
            return JSONResponse({"error": english}, status_code=status)
        if status == 404 and message == "Not Found":  # no route: the router's own words
            message = _gettext(_language(request))(labels.NO_PAGE)
        return self.page(request, "error.html", status=status, message=message,
                         code=status, command=None)


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _version(request: Request) -> int | None:
    """The ``version`` a page or form is about (0: the file in the folder); None: the latest."""
    text = request.query_params.get("version", "")
    return int(text) if text.isdigit() and len(text) < 7 else None


def _prepared(request: Request) -> tuple[int, int] | None:
    """(rows, month columns) "Lay out my Actuals sheet" just added, from the redirect."""
    rows, _, months = request.query_params.get("prepared", "").partition("-")
    return (int(rows), int(months)) if rows.isdigit() and months.isdigit() else None


def _book_url(name: str) -> str:
    return "/books/" + quote(name, safe="")


def _download(data: bytes, filename: str) -> Response:
    return Response(data, media_type=_XLSX, headers={
        "content-disposition": f"attachment; filename=\"{filename}\""})


def _money(summary: dict) -> str:
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.i18n import Formatter

    return Formatter(summary["locale"], summary["currency"]).money(summary["bonus"])


def create_app(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8750,
               token: str | None = None, max_upload: int = security.DEFAULT_MAX_UPLOAD,
               secret: bytes | None = None) -> Starlette:
    """The ASGI app over ``folder``; ``token`` None on loopback means no login."""
    workspace = actions.Workspace(Path(folder))
    app = App(workspace, secret or secrets.token_bytes(32), token)
    routes = [
        Route("/", app.home),
        Route("/login", app.login),
        Route("/upload", app.upload, methods=["POST"]),
        Route("/books/{name}", app.check),
        Route("/books/{name}/annotated.xlsx", app.annotated),
        Route("/books/{name}/workbook.xlsx", app.workbook),
        Route("/books/{name}/prepare", app.prepare, methods=["POST"]),
        Route("/template.xlsx", app.template),
        Route("/samples/{name}.xlsx", app.sample),
        Route("/samples/{name}", app.sample, methods=["POST"]),
        Route("/books/{name}/build", app.build, methods=["POST"]),
        Route("/jobs/{id}.json", app.job_json),
        Route("/jobs/{id}", app.job),
        Route("/runs/{period}", app.run),
        Route("/runs/{period}/deliver", app.deliver),
        Route("/runs/{period}/delivery.json", app.delivery_json),
        Route("/runs/{period}/approve", app.approve, methods=["POST"]),
        Route("/runs/{period}/revoke", app.approve, methods=["POST"]),
        Route("/runs/{period}/test-send", app.send, methods=["POST"]),
        Route("/runs/{period}/send", app.send, methods=["POST"]),
        Route("/runs/{period}/passwords.csv", app.passwords, methods=["POST"]),
        Route("/runs/{period}/files/{file:path}", app.preview),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    allowed = security.loopback_hosts(port) if security.is_loopback(host) else None
    middleware = [Middleware(security.Guard, secret=app.secret, token=token,
                             allowed_hosts=allowed, max_body=max_upload)]
    starlette = Starlette(routes=routes, middleware=middleware,
                          exception_handlers={HTTPException: app.error,
                                              KpireportError: app.error})
    starlette.state.workspace = workspace
    return starlette


def serve(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8750,
          max_upload: int = security.DEFAULT_MAX_UPLOAD, echo=print) -> None:
    """Run the app with uvicorn until interrupted; print where to open it."""
    # lazy: uvicorn is loaded only where it is used (start-up stays light)
    import uvicorn

    token = security.server_token(host, dict(os.environ))
    app = create_app(folder, host=host, port=port, token=token, max_upload=max_upload)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    echo(f"kpireport serve: {Path(folder).resolve()} at {base}/")
    if token:
        echo(f"Open {base}/login?token={token}" + (
            "" if os.environ.get(security.TOKEN_ENV) else
            f"  (a new token each start; set {security.TOKEN_ENV} to keep one)"))
    echo("Press Ctrl-C to stop.")
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
