"""kpireport serve over real HTTP on loopback: pages, uploads, security, faults."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpireport.cli.app import main
from kpireport.web import security
from kpireport.web.app import create_app
from tests.conftest import free_port

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """A browser in a few lines: cookies, forms with the page's CSRF token, multipart."""

    def __init__(self, base: str, *, follow: bool = True) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(NoRedirect())
        self.opener = urllib.request.build_opener(*handlers)
        self.csrf = ""
        self.last_url = ""

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None,
                method: str | None = None) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {},
                                     method=method)
        try:
            with self.opener.open(req, timeout=120) as response:
                status, head, body = response.status, dict(response.headers), response.read()
                self.last_url = response.geturl()  # after redirects
        except urllib.error.HTTPError as exc:
            status, head, body = exc.code, dict(exc.headers), exc.read()
            self.last_url = exc.geturl()
        found = re.search(rb'name="csrf" value="([0-9a-f]+)"', body)
        if found:
            self.csrf = found.group(1).decode()
        return status, {k.lower(): v for k, v in head.items()}, body

    def get(self, path: str, **kwargs):
        return self.request(path, **kwargs)

    def post(self, path: str, fields: dict | None = None, *, csrf: bool = True,
             headers: dict | None = None):
        fields = dict(fields or {})
        if csrf:
            fields.setdefault("csrf", self.csrf)
        data = urllib.parse.urlencode(fields).encode()
        return self.request(path, data, {"content-type": "application/x-www-form-urlencoded",
                                         **(headers or {})})

    def upload(self, filename: str, content: bytes, *, csrf: bool = True):
        boundary = uuid.uuid4().hex
        parts = []
        if csrf:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n'
                         f"{self.csrf}\r\n".encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="workbook"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + content + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("/upload", body,
                            {"content-type": f"multipart/form-data; boundary={boundary}"})


class Server:
    """The app on uvicorn in a thread of the test process."""

    def __init__(self, folder: Path, **options) -> None:
        import uvicorn

        self.port = free_port()
        self.app = create_app(folder, port=self.port, **options)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        self.base = f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs) -> Client:
        return Client(self.base, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(folder: Path, **options) -> Server:
        server = Server(folder, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def broken_acme(path: Path) -> Path:
    """The acme sample with one mistake: a weight typed as words in Scorecards!C2."""
    from openpyxl import load_workbook

    book = load_workbook(SAMPLES / "acme.xlsx")
    book["Scorecards"]["C2"] = "forty"
    book.save(path)
    return path


def text(body: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body.decode("utf-8")))


# ---------------------------------------------------------------------------- pages
def test_check_page_lists_each_issue_with_its_cell_and_fix(serve, tmp_path):
    broken_acme(tmp_path / "kpis.xlsx")
    client = serve(tmp_path).client()
    status, _, body = client.get("/")
    assert status == 200 and b"kpis.xlsx" in body
    status, _, body = client.get("/books/kpis.xlsx")
    assert status == 200
    row = re.search(rb'<tr class="error">(.*?)</tr>', body, re.S).group(1)
    cells = [text(c).strip() for c in re.findall(rb"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[:3] == ["error", "Scorecards", "C2"]
    assert "forty" in cells[3] and cells[4] == "Type a number (no units or words in the cell)."
    assert b"Build the reports" not in body  # no build of an invalid workbook
    assert "kpireport check " + str(tmp_path / "kpis.xlsx") + " --annotate" in text(body)

    status, head, data = client.get("/books/kpis.xlsx/annotated.xlsx")
    assert status == 200 and head["content-disposition"].endswith('"kpis.checked.xlsx"')
    from io import BytesIO

    from openpyxl import load_workbook

    marked = load_workbook(BytesIO(data))
    assert marked.sheetnames[0] == "Issues"
    assert [c.value for c in marked["Issues"][2]][3:5] == ["Scorecards", "C2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".kpireport-web", "kpis.xlsx"]


def test_upload_is_checked_and_kept_as_a_version_of_its_name(serve, tmp_path):
    client = serve(tmp_path).client(follow=False)
    client.get("/")
    status, head, _ = client.upload("../../My KPIs (final).xlsx",
                                    (SAMPLES / "acme.xlsx").read_bytes())
    assert status == 303
    assert head["location"] == "/books/My%20KPIs%20%28final%29.xlsx?version=1"
    stored = list((tmp_path / ".kpireport-web" / "books").glob("*/v1/*.xlsx"))
    assert [p.name for p in stored] == ["My KPIs (final).xlsx"]
    assert stored[0].read_bytes() == (SAMPLES / "acme.xlsx").read_bytes()
    assert not list(tmp_path.glob("*.xlsx"))  # the folder's own files are left alone
    assert [p.name for p in (tmp_path / ".kpireport-web").iterdir()] == ["books"]  # no leftovers
    status, _, body = client.get(head["location"])
    assert status == 200 and b"Ready to build" in body


def test_a_non_workbook_gets_the_same_line_as_check(serve, tmp_path):
    notes = tmp_path.parent / "notes.xlsx"
    notes.write_text("owner,kpi\nE1,REV\n")
    cli = CliRunner().invoke(main, ["check", str(notes)])
    assert cli.exit_code == 1
    line = cli.output.strip()
    client = serve(tmp_path).client()
    client.get("/")
    status, _, body = client.upload("notes.xlsx", notes.read_bytes())
    assert status == 422
    shown = re.search(rb'<p class="oneline">(.*?)</p>', body, re.S).group(1).decode()
    assert shown == line.replace("'", "&#39;").replace('"', "&#34;")
    assert [p.name for p in tmp_path.iterdir()] == [".kpireport-web"]  # not kept


def test_uploads_over_the_limit_are_refused(serve, tmp_path):
    server = serve(tmp_path, max_upload=200_000)
    client = server.client()
    client.get("/")
    status, _, body = client.upload("big.xlsx", b"x" * 300_000)
    assert status == 413 and b"larger than" in body
    # without a declared length (chunked), the body is counted as it arrives
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/upload")
    connection.putheader("transfer-encoding", "chunked")
    connection.putheader("content-type", "multipart/form-data; boundary=b")
    connection.endheaders()
    head = (b'--b\r\nContent-Disposition: form-data; name="workbook"; filename="big.xlsx"'
            b"\r\n\r\n")
    chunk = b"x" * 65536
    try:
        connection.send(f"{len(head):x}\r\n".encode() + head + b"\r\n")
        for _ in range(5):
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before the rest arrives
    response = connection.getresponse()
    assert response.status == 413
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing was stored


# ---------------------------------------------------------------------------- security
def test_every_form_needs_this_browsers_csrf_token(serve, tmp_path):
    shutil.copy(SAMPLES / "acme.xlsx", tmp_path / "acme.xlsx")
    server = serve(tmp_path)
    client = server.client()
    client.get("/books/acme.xlsx")
    assert client.post("/books/acme.xlsx/build", csrf=False)[0] == 403
    assert client.post("/books/acme.xlsx/build", {"csrf": "0" * 40})[0] == 403
    other = server.client()
    other.get("/")
    assert client.post("/books/acme.xlsx/build", {"csrf": other.csrf})[0] == 403
    assert client.post("/books/acme.xlsx/build",
                       headers={"origin": "http://evil.example"})[0] == 403
    assert client.upload("acme.xlsx", b"PK", csrf=False)[0] == 403
    assert not (tmp_path / "reports").exists()  # nothing was built


def html_run(folder: Path) -> Path:
    """A real build of the acme sample (HTML only, quick) in FOLDER/reports."""
    from kpireport import api

    shutil.copy(SAMPLES / "acme.xlsx", folder / "acme.xlsx")
    result = api.build(folder / "acme.xlsx", out=folder / "reports", formats=("html",))
    assert result.ok
    return result.run_dir


def test_no_request_path_leaves_the_folder(serve, tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    run = html_run(folder)
    shutil.copy(SAMPLES / "acme.xlsx", tmp_path / "secret.xlsx")
    (tmp_path / "outside.html").write_text("<p>TOP-SECRET-CONTENT</p>")
    (run / "employees" / "E001.html").unlink()  # a listed report, now a link out of the folder
    (run / "employees" / "E001.html").symlink_to(tmp_path / "outside.html")
    (run / "employees" / "extra.html").write_text("<p>not of the build</p>")
    client = serve(folder).client()
    assert client.get("/runs/2026-03/files/employees/E002.html")[0] == 200
    assert client.get("/runs/2026-03/files/index.html")[0] == 200
    for path in ["/books/../secret.xlsx", "/books/..%2Fsecret.xlsx", "/books/%2E%2E%2Fsecret.xlsx",
                 "/books/..%2F..%2Fetc%2Fpasswd", "/books/secret.xlsx",
                 "/runs/2026-03/files/../../../outside.html",
                 "/runs/2026-03/files/..%2F..%2F..%2Foutside.html",
                 "/runs/2026-03/files/employees/..%2F..%2F..%2F..%2Foutside.html",
                 "/runs/2026-03/files/employees/E001.html",
                 "/runs/2026-03/files/employees/extra.html",
                 "/runs/2026-03/files/results.json", "/runs/2026-03/files/manifest.json",
                 "/runs/..%2F..%2F/files/outside.html", "/runs/2026-3/files/index.html",
                 "/static/..%2Fapp.py", "/static/../security.py", "/books/acme.xlsx%00.html"]:
        status, _, body = client.get(path)
        assert status in (404, 400), path
        assert b"TOP-SECRET" not in body and not body.startswith(b"PK"), path
        assert b"not of the build" not in body and b"class Guard" not in body, path


def test_previews_allow_no_script(serve, tmp_path):
    run = html_run(tmp_path)
    (run / "company.html").write_text("<script>alert(1)</script><p>report</p>")
    client = serve(tmp_path).client()
    status, head, _ = client.get("/runs/2026-03/files/company.html")
    assert status == 200 and head["content-type"].startswith("text/html")
    policy = dict(p.strip().split(" ", 1) for p in head["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    assert policy["sandbox"] == "allow-same-origin"  # no allow-scripts
    assert head["x-content-type-options"] == "nosniff"
    _, head, _ = client.get("/")
    assert "script-src 'self'" in head["content-security-policy"]


def test_loopback_refuses_other_host_names(serve, tmp_path):
    client = serve(tmp_path).client()
    assert client.get("/", headers={"host": "evil.example"})[0] == 400
    assert client.get("/", headers={"host": "localhost"})[0] == 200


def test_a_token_is_needed_for_every_request_and_the_login_link_sets_it(serve, tmp_path):
    token = "t" * 20
    server = serve(tmp_path, token=token)
    client = server.client(follow=False)
    assert client.get("/")[0] == 401
    assert client.get("/static/app.js")[0] == 401
    assert client.get("/login?token=wrong")[0] == 401
    status, head, _ = client.get(f"/login?token={token}")
    cookie = head["set-cookie"].lower()
    assert status == 303 and "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/")[0] == 200
    assert server.client().get("/", headers={"authorization": f"Bearer {token}"})[0] == 200


def test_serve_on_another_host_prints_a_login_link(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != security.TOKEN_ENV}
    process = subprocess.Popen([sys.executable, "-m", "kpireport", "serve", str(tmp_path),
                                "--host", "0.0.0.0", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        link = re.search(r"http://0\.0\.0\.0:\d+/login\?token=([\w-]{20,})", lines[1])
        assert link, lines
        client = Client(f"http://127.0.0.1:{port}", follow=False)
        for _ in range(100):
            try:
                status = client.get("/")[0]
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert status == 401
        assert client.get(f"/login?token={link.group(1)}")[0] == 303
        assert client.get("/")[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def test_a_short_token_from_the_environment_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path)],
                                env={security.TOKEN_ENV: "short"})
    assert result.exit_code == 1 and "too short" in result.output


def test_serve_help_ends_with_an_example():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    description = result.output.split("Options:")[0].rstrip().splitlines()
    assert description[-3].strip() == "Example:"
    assert description[-2].strip().startswith("kpireport serve kpis/")


# ---------------------------------------------------------------------------- languages
def test_pages_in_the_browsers_language_or_the_workbooks(serve, tmp_path):
    from kpireport.data_in import samples, template

    template.write_workbook(tmp_path / "vi.xlsx", samples.SAMPLES["onlinecrm"](), force=True)
    shutil.copy(SAMPLES / "acme.xlsx", tmp_path / "acme.xlsx")
    client = serve(tmp_path).client()
    _, _, english = client.get("/", headers={"accept-language": "en-GB,en;q=0.9"})
    _, _, vietnamese = client.get("/", headers={"accept-language": "vi-VN,vi;q=0.9,en;q=0.5"})
    assert b"Upload a workbook" in english and b'lang="en"' in english
    assert b'lang="vi"' in vietnamese and b"Upload a workbook" not in vietnamese
    from kpireport.core.i18n import translations

    assert translations("vi_VN").gettext("Upload a workbook").encode() in vietnamese
    locale = _settings_locale(tmp_path / "vi.xlsx")
    _, _, page = client.get("/books/vi.xlsx", headers={"accept-language": "en"})
    assert (b'lang="vi"' in page) == locale.startswith("vi")
    _, _, page = client.get("/books/acme.xlsx", headers={"accept-language": "vi"})
    assert b'lang="en"' in page  # the workbook's locale first


def _settings_locale(path: Path) -> str:
    from kpireport import api

    book, _ = api.check(path)
    return book.settings.locale


# ---------------------------------------------------------------------------- faults
def test_one_build_at_a_time_and_a_killed_server_loses_nothing(tmp_path):
    """Build through a real `kpireport serve`; a second build meanwhile is refused; kill -9
    the server; a new one shows the same run, from the files on disk."""
    shutil.copy(SAMPLES / "acme.xlsx", tmp_path / "acme.xlsx")

    def start() -> tuple[subprocess.Popen, Client]:
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "kpireport", "serve", str(tmp_path),
                                    "--port", str(port)], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "KPIREPORT_SERVE_WORKERS": "2"})
        assert "kpireport serve" in process.stdout.readline()
        client = Client(f"http://127.0.0.1:{port}", follow=False)
        for _ in range(100):
            try:
                client.get("/")
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        return process, client

    process, client = start()
    try:
        client.get("/books/acme.xlsx")
        status, head, _ = client.post("/books/acme.xlsx/build")
        assert status == 303
        job = head["location"]
        status, _, body = client.post("/books/acme.xlsx/build")
        assert status == 409 and b"is running" in body
        deadline = time.monotonic() + 240
        while True:
            state = json.loads(client.get(job + ".json")[2])
            if state["state"] != "running":
                break
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert state["state"] == "done", state
        assert state["done"] == state["total"] > 10
        status, _, first = client.get("/runs/2026-03")
        assert status == 200
    finally:
        process.kill()
        process.wait(10)
    run = tmp_path / "reports" / "2026-03"
    assert (run / "company.pdf").is_file() and (run / "results.json").is_file()
    process, client = start()
    try:
        status, _, again = client.get("/runs/2026-03")
        assert status == 200
        strip = lambda page: re.sub(rb'value="[0-9a-f]{40}"', b"", page)  # noqa: E731
        assert strip(again) == strip(first)
        assert b"2026-03" in client.get("/")[2]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def test_the_run_page_shows_the_changes_since_the_previous_build(serve, tmp_path):
    """Build, change one actual, build again: the run page says what changed (kpireport.month.cycle
    status), as `kpireport diff` would."""
    from openpyxl import load_workbook

    from kpireport import api

    book = tmp_path / "acme.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", book)
    assert api.build(book, out=tmp_path / "reports", formats=("html",)).ok
    client = serve(tmp_path).client()
    _, _, first = client.get("/runs/2026-03")
    assert b"This is the first build of the period" in first
    workbook = load_workbook(book)
    actuals = workbook["Actuals"]
    header = [c.value for c in actuals[1]]
    column = next(i for i, v in enumerate(header, 1) if str(v).startswith("2026-03"))
    actuals.cell(2, column).value = (actuals.cell(2, column).value or 0) * 2 + 1
    workbook.save(book)
    assert api.build(book, out=tmp_path / "reports", formats=("html",)).ok
    _, _, again = client.get("/runs/2026-03")
    summary = re.search(rb'<p class="changes-summary">(.*?)</p>', again, re.S)
    assert summary and summary.group(1).strip()
    assert re.search(rb"<b>1</b> input cell\(s\) changed", again)


def test_send_from_the_page_is_refused_until_the_run_is_approved(serve, smtp, tmp_path,
                                                                  monkeypatch):
    """The send button posts to the same api.send as the CLI: without an approval the job
    fails with the gate's line, nothing reaches the SMTP server and the ledger stays empty;
    after approving on the page it is delivered."""
    import json

    from kpireport import api

    handler, port = smtp()
    for key, value in {"HOST": "127.0.0.1", "PORT": str(port), "SECURITY": "none",
                       "FROM": "hr@acme.example"}.items():
        monkeypatch.setenv(f"KPIREPORT_SMTP_{key}", value)
    shutil.copy(SAMPLES / "acme.xlsx", tmp_path / "acme.xlsx")
    built = api.build(tmp_path / "acme.xlsx", out=tmp_path / "reports", formats=("pdf",),
                      workers=2)
    assert built.ok
    client = serve(tmp_path).client()

    def finish(response) -> dict:
        status, head, _ = response
        assert status == 200, status
        job = re.search(r"job=([0-9a-zA-Z_-]+)", client.last_url).group(1)
        deadline = time.monotonic() + 120
        while True:
            state = json.loads(client.get(f"/jobs/{job}.json")[2])
            if state["state"] != "running":
                return state
            assert time.monotonic() < deadline
            time.sleep(0.2)

    client.get("/runs/2026-03/deliver")
    status, _, body = client.post("/runs/2026-03/send")  # a summary and a confirmation first
    assert status == 200 and b"What will be sent" in body and b'name="confirm"' in body
    assert handler.messages == []
    state = finish(client.post("/runs/2026-03/send", {"confirm": "yes"}))
    assert state["state"] == "failed" and "is not approved" in state["message"], state
    assert handler.messages == [] and not (built.run_dir / ".send-ledger.sqlite").exists()
    client.get("/runs/2026-03/deliver")
    assert client.post("/runs/2026-03/approve", {"by": "Dana Whitfield",
                                                 "note": "checked"})[0] == 200
    # approved, but nobody has their PDF password yet: refused until they are handed out
    state = finish(client.post("/runs/2026-03/send", {"confirm": "yes"}))
    assert state["state"] == "failed" and "hand the passwords out first" in state["message"]
    assert handler.messages == []
    client.get("/runs/2026-03/deliver")
    status, head, body = client.post("/runs/2026-03/passwords.csv")
    assert status == 200 and head["content-type"].startswith("text/csv")
    assert body.decode().splitlines()[0] == "employee_id,name,email,password"
    status, _, body = client.post("/runs/2026-03/passwords.csv")  # once: nothing new now
    assert body.decode().splitlines() == ["employee_id,name,email,password"]
    client.get("/runs/2026-03/deliver")
    state = finish(client.post("/runs/2026-03/send", {"confirm": "yes"}))
    assert state["state"] == "done", state
    sent = int(re.match(r"(\d+) sent, 0 already sent, 0 failed", state["message"]).group(1))
    assert sent == sum(len(rcpts) for rcpts, _ in handler.messages) > 0
    log = (built.run_dir / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in log][-2:] == ["approve", "send"]


def test_job_states_and_messages_are_in_the_workbooks_language(serve, tmp_path):
    """A Vietnamese workbook's build: the progress label and the closing message come from
    the vi catalog, like the rest of its pages."""
    import json

    shutil.copy(SAMPLES / "onlinecrm.xlsx", tmp_path / "onlinecrm.xlsx")
    client = serve(tmp_path).client()
    client.get("/books/onlinecrm.xlsx")
    status, _, _ = client.post("/books/onlinecrm.xlsx/build")
    assert status == 200
    job = re.search(r"/jobs/([0-9a-zA-Z_-]+)", client.last_url).group(1)
    deadline = time.monotonic() + 180
    while (state := json.loads(client.get(f"/jobs/{job}.json")[2]))["state"] == "running":
        if state["total"] is not None:  # the workbook is read: its language is known
            assert state["label"] == "Đang tạo báo cáo"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["state"] == "done", state
    assert state["label"] == "Tạo báo cáo: xong"
    assert re.fullmatch(r"Đã tạo \d+ báo cáo, \d+ không đổi", state["message"]), state


def test_the_apps_own_refusals_are_in_the_pages_language(serve, tmp_path):
    """The app's own error words (not the library's) follow the page's language: the
    browser's, or the run's workbook's on a run page; JSON answers keep the English text."""
    from kpireport.core.i18n import translations

    vi = translations("vi_VN").gettext
    run = tmp_path / "reports" / "2026-03"
    run.mkdir(parents=True)
    (run / "results.json").write_text('{"locale": "vi_VN"}', encoding="utf-8")
    client = serve(tmp_path).client()
    client.get("/", headers={"accept-language": "vi"})
    status, _, page = client.get("/books/nothing.xlsx", headers={"accept-language": "vi"})
    assert status == 404
    assert vi("No workbook {name} in this folder.").format(name="nothing.xlsx") in text(page)
    assert "No workbook" not in text(page)
    # a run in Vietnamese: its refusal is Vietnamese even for an English browser
    status, _, page = client.post("/runs/2026-03/approve", {"by": " "},
                                  headers={"accept-language": "en"})
    assert status == 400
    assert vi("Type your name to approve.") in text(page)
    assert "Type your name" not in text(page)
    status, _, body = client.get("/runs/2099-01/delivery.json",
                                 headers={"accept-language": "vi"})
    assert status == 404 and b"No run 2099-01 in this folder" in body
