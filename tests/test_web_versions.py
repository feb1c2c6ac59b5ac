"""kpireport serve: workbooks by the names people gave them, with versions; the template, the
samples and "Lay out my Actuals sheet" from the browser (issue 29, points 3 and 4)."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
import urllib.parse

import pytest
from openpyxl import load_workbook

from tests.test_web import SAMPLES, Server, broken_acme

GENERATED = re.compile(r"team-\d{8}|v\d+/team|\.kpireport-web|[0-9a-f]{10}/v\d")


@pytest.fixture
def serve():
    """serve(folder) → a Server (tests/test_web.py's) on loopback, stopped after the test."""
    servers: list[Server] = []

    def start(folder, **options) -> Server:
        servers.append(Server(folder, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def acme_bytes(organization: str | None = None) -> bytes:
    """The acme sample, as a user's team.xlsx; ``organization`` changes Settings."""
    if organization is None:
        return (SAMPLES / "acme.xlsx").read_bytes()
    book = load_workbook(SAMPLES / "acme.xlsx")
    for row in book["Settings"].iter_rows():
        if row[0].value == "organization":
            row[1].value = organization
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload_team(server, book) -> tuple:
    """Upload the openpyxl ``book`` as team.xlsx and open its page: (client, the bytes)."""
    buffer = io.BytesIO()
    book.save(buffer)
    client = server.client(follow=False)
    client.get("/")
    client.upload("team.xlsx", buffer.getvalue())
    client.get("/books/team.xlsx")
    return client, buffer.getvalue()


def visible(body: bytes) -> str:
    """A page's text and its links (where a generated name would show)."""
    return body.decode("utf-8")


def wait_for_job(client, location: str) -> dict:
    job_id = location.rsplit("/", 1)[1]
    deadline = time.monotonic() + 240
    while True:
        _, _, body = client.get(f"/jobs/{job_id}.json")
        job = json.loads(body)
        if job["state"] != "running":
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)


def test_a_re_upload_of_the_same_name_is_a_new_version_not_a_new_row(serve, tmp_path):
    client = serve(tmp_path).client(follow=False)
    client.get("/")
    locations = []
    two = acme_bytes("Acme Two")
    for data in (acme_bytes(), acme_bytes(), two):
        status, head, _ = client.upload("team.xlsx", data)
        assert status == 303
        locations.append(head["location"])
    # the identical second upload is version 1 again; the changed one is version 2
    assert locations == ["/books/team.xlsx?version=1", "/books/team.xlsx?version=1",
                         "/books/team.xlsx?version=2"]
    status, _, home = client.get("/")
    assert status == 200
    assert re.findall(r'data-book="([^"]+)"', visible(home)) == ["team.xlsx"]
    assert 'data-versions="2"' in visible(home)
    status, _, page = client.get("/books/team.xlsx")
    text = visible(page)
    assert status == 200 and "<title>Check team.xlsx · kpireport</title>" in text
    assert re.findall(r'data-version-row="(\d+)"', text) == ["2", "1"]
    assert 'data-version="2"' in text and "ready to build" in text
    assert not GENERATED.search(re.sub(r"<pre><code>.*?</code></pre>", "", text, flags=re.S))
    # each version is kept as uploaded, under the name it was uploaded as
    for number, data in ((1, acme_bytes()), (2, two)):
        status, head, body = client.get(f"/books/team.xlsx/workbook.xlsx?version={number}")
        assert status == 200 and body == data
        assert head["content-disposition"].endswith('filename="team.xlsx"')
    assert [p.name for p in tmp_path.glob("*.xlsx")] == []  # nothing added to the folder
    assert client.get("/books/team.xlsx?version=7")[0] == 404


def test_a_fixed_marked_copy_is_a_version_of_the_workbook_it_marks(serve, tmp_path):
    broken = broken_acme(tmp_path.parent / "broken.xlsx").read_bytes()
    client = serve(tmp_path).client(follow=False)
    client.get("/")
    status, head, _ = client.upload("team.xlsx", broken)
    assert head["location"] == "/books/team.xlsx?version=1"
    status, head, marked = client.get("/books/team.xlsx/annotated.xlsx?version=1")
    assert status == 200 and head["content-disposition"].endswith('"team.checked.xlsx"')
    book = load_workbook(io.BytesIO(marked))
    book["Scorecards"]["C2"] = 0.4  # the fix
    buffer = io.BytesIO()
    book.save(buffer)
    status, head, _ = client.upload("team.checked.xlsx", buffer.getvalue())
    assert head["location"].startswith("/books/team.xlsx?version=2&unmarked=")
    _, _, page = client.get("/books/team.xlsx?version=2")
    assert "uploaded (a fixed marked copy)" in visible(page)
    assert re.findall(r'data-version-row="(\d+)"', visible(page)) == ["2", "1"]


def test_names_in_other_scripts_are_kept_and_unsafe_ones_are_not(serve, tmp_path):
    from kpireport.web.versions import shown_name

    assert shown_name("../../Bảng KPI (tháng 12).XLSX") == "Bảng KPI (tháng 12).xlsx"
    assert shown_name("C:\\Users\\hr\\team.checked.xlsx") == "team.xlsx"
    assert shown_name(".hidden.xlsx") == "upload.xlsx"
    assert shown_name("a<script>.xlsx") == "upload.xlsx"
    client = serve(tmp_path).client(follow=False)
    client.get("/")
    status, head, _ = client.upload("Bảng KPI.xlsx", acme_bytes())
    assert status == 303
    location = head["location"]
    assert urllib.parse.unquote(location) == "/books/Bảng KPI.xlsx?version=1"
    status, _, page = client.get(location)
    assert status == 200 and "<h1>Bảng KPI.xlsx" in visible(page)


def test_a_file_in_the_folder_and_uploads_of_its_name_are_one_workbook(serve, tmp_path):
    shutil.copy(SAMPLES / "acme.xlsx", tmp_path / "team.xlsx")
    client = serve(tmp_path).client(follow=False)
    _, _, home = client.get("/")
    assert 'data-versions="1"' in visible(home) and "a file in the folder" in visible(home)
    client.upload("team.xlsx", acme_bytes("Acme Two"))
    _, _, home = client.get("/")
    assert re.findall(r'data-book="([^"]+)"', visible(home)) == ["team.xlsx"]
    _, _, page = client.get("/books/team.xlsx")
    assert re.findall(r'data-version-row="(\d+)"', visible(page)) == ["1", "0"]
    _, _, page = client.get("/books/team.xlsx?version=0")
    assert "the file in the folder" in visible(page)
    assert (tmp_path / "team.xlsx").read_bytes() == acme_bytes()  # never changed


def test_reports_runs_and_files_name_the_workbook_as_uploaded(serve, tmp_path):
    """Built twice from the same upload: the run names team.xlsx and its version; every
    report shows team.xlsx; the second build renders nothing anew (identical reports)."""
    client = serve(tmp_path).client(follow=False)
    client.get("/")
    client.upload("team.xlsx", acme_bytes("Acme Two"))  # version 1
    client.upload("team.xlsx", acme_bytes())  # version 2
    client.get("/books/team.xlsx?version=2")
    status, head, _ = client.post("/books/team.xlsx/build?version=2")
    assert status == 303
    job = wait_for_job(client, head["location"])
    assert job["state"] == "done", job
    run_dir = tmp_path / "reports" / job["period"]
    results = json.loads((run_dir / "results.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert results["source"]["file"] == "team.xlsx"
    assert json.loads((run_dir / "inputs.json").read_text())["source"]["file"] == "team.xlsx"
    assert json.dumps(manifest).count("team-") == 0
    for report in run_dir.rglob("*.html"):
        text = report.read_text(encoding="utf-8")
        assert not GENERATED.search(text), report
        if report.name != "index.html":
            assert "Generated by kpireport from team.xlsx" in text, report
    _, _, page = client.get(f"/runs/{job['period']}")
    assert 'data-run-source>team.xlsx · version 2</a>' in visible(page)
    _, _, home = client.get("/")
    assert "team.xlsx · version 2" in visible(home)
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
              if p.suffix in (".html", ".pdf")}
    # the same contents uploaded again: the same version, the same reports
    status, head, _ = client.upload("team.xlsx", acme_bytes())
    assert head["location"] == "/books/team.xlsx?version=2"
    client.get("/books/team.xlsx")
    status, head, _ = client.post("/books/team.xlsx/build?version=2")
    job = wait_for_job(client, head["location"])
    assert job["state"] == "done" and "Rendered 0 report(s)" in job["message"], job
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*")
             if p.suffix in (".html", ".pdf")}
    assert after == before


@pytest.mark.parametrize("language, locale, currency", [("en", "en_US", "USD"),
                                                        ("vi", "vi_VN", "VND"),
                                                        ("en", "vi_VN", "EUR")])
def test_the_blank_template_downloads_in_the_pages_language(serve, tmp_path, language,
                                                            locale, currency):
    client = serve(tmp_path).client()
    status, _, home = client.get("/", headers={"accept-language": language})
    assert status == 200 and b"kpireport init" not in home
    status, head, data = client.get(
        f"/template.xlsx?locale={locale}&currency={currency}&year=2027",
        headers={"accept-language": language})
    assert status == 200
    assert head["content-disposition"] == \
        f'attachment; filename="kpi-template-2027-{locale}.xlsx"'
    book = load_workbook(io.BytesIO(data))
    settings = {row[0].value: row[1].value for row in book["Settings"].iter_rows(min_row=2)}
    assert settings["locale"] == locale and settings["currency"] == currency
    readme = [c.value for c in book["README"]["A"] if c.value]
    first = {"en": "kpireport workbook — how to fill it in",
             "vi": "Sổ tính kpireport — cách điền"}[language]
    assert readme[0] == first
    # the web steps come first, the commands second
    serve_line = next(i for i, t in enumerate(readme) if "kpireport serve" in t)
    prepare_line = next(i for i, t in enumerate(readme) if "kpireport prepare" in t)
    assert serve_line < prepare_line
    header = [c.value for c in book["Actuals"][1]]
    assert "2027-01" in [str(h)[:7] for h in header] or any(
        getattr(h, "year", None) == 2027 for h in header)
    assert client.get("/template.xlsx?locale=xx_XX")[0] == 400
    assert client.get("/template.xlsx?currency=BTC")[0] == 400


def test_a_sample_downloads_and_can_be_added_as_a_workbook(serve, tmp_path):
    client = serve(tmp_path).client(follow=False)
    client.get("/")
    status, head, data = client.get("/samples/onlinecrm.xlsx")
    assert status == 200 and head["content-disposition"].endswith('"onlinecrm.xlsx"')
    book = load_workbook(io.BytesIO(data))
    assert "Actuals" in book.sheetnames
    assert client.get("/samples/secret.xlsx")[0] == 400
    status, head, _ = client.post("/samples/acme")
    assert status == 303 and head["location"] == "/books/acme.xlsx?version=1"
    _, _, page = client.get(head["location"])
    assert "Ready to build" in visible(page) and "a sample" in visible(page)


def test_lay_out_my_actuals_sheet_makes_a_new_version(serve, tmp_path):
    from kpireport.data_in.template import write_template

    blank = write_template(tmp_path.parent / "blank.xlsx", year=2026)
    book = load_workbook(blank)
    rows = {"People": [["E1", "Ann", "Sales", "ann@example.com"]],
            "KPIs": [["REV", "Revenue", "currency", "higher", "sum"]],
            "Scorecards": [["E1", "REV", 1, 100]]}
    for sheet, values in rows.items():
        header = [c.value for c in book[sheet][1]]
        for r, row in enumerate(values, start=2):
            for column, value in zip(("employee_id", "name", "department", "email")
                                     if sheet == "People" else
                                     ("kpi_id", "kpi", "unit", "direction", "aggregation")
                                     if sheet == "KPIs" else
                                     ("owner", "kpi_id", "weight", "target"), row):
                book[sheet].cell(r, header.index(column) + 1, value)
    client, uploaded = upload_team(serve(tmp_path), book)
    status, head, _ = client.post("/books/team.xlsx/prepare?version=1")
    assert status == 303 and head["location"].startswith("/books/team.xlsx?version=2&prepared=")
    _, _, page = client.get(head["location"])
    assert "Laid out:" in visible(page) and "Actuals laid out" in visible(page)
    _, _, data = client.get("/books/team.xlsx/workbook.xlsx?version=2")
    actuals = load_workbook(io.BytesIO(data))["Actuals"]
    assert [actuals.cell(2, 1).value, actuals.cell(2, 2).value] == ["E1", "REV"]
    _, _, first = client.get("/books/team.xlsx/workbook.xlsx?version=1")
    assert first == uploaded  # the version it came from is unchanged
    # laid out already: nothing to add, no new version
    status, head, _ = client.post("/books/team.xlsx/prepare?version=2")
    assert head["location"] == "/books/team.xlsx?version=2&prepared=0-0"
    _, _, page = client.get(head["location"])
    assert "nothing to add" in visible(page)
    assert re.findall(r'data-version-row="(\d+)"', visible(page)) == ["2", "1"]


def test_prepare_of_a_book_without_scorecards_says_why(serve, tmp_path):
    book = load_workbook(SAMPLES / "acme.xlsx")
    del book["Scorecards"]
    client, _ = upload_team(serve(tmp_path), book)
    status, _, page = client.post("/books/team.xlsx/prepare")
    assert status == 400 and "there is no Scorecards sheet" in visible(page)
    assert "Traceback" not in visible(page)


def test_sent_reports_and_test_mails_name_the_uploaded_workbook(serve, smtp, tmp_path,
                                                                monkeypatch):
    """The e-mailed PDF's footer (and the mail) name team.xlsx, never the stored copy."""
    import email

    from pypdf import PdfReader

    handler, port = smtp()
    monkeypatch.setenv("KPIREPORT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("KPIREPORT_SMTP_PORT", str(port))
    monkeypatch.setenv("KPIREPORT_SMTP_SECURITY", "none")
    monkeypatch.setenv("KPIREPORT_SMTP_FROM", "hr@example.com")
    book = load_workbook(SAMPLES / "acme.xlsx")
    for row in book["Settings"].iter_rows():
        if row[0].value == "pdf_protection":
            row[1].value = "none"
    client, _ = upload_team(serve(tmp_path), book)
    _, head, _ = client.post("/books/team.xlsx/build")
    job = wait_for_job(client, head["location"])
    assert job["state"] == "done", job
    period = job["period"]
    client.get(f"/runs/{period}/deliver")
    status, head, _ = client.post(f"/runs/{period}/test-send", {"test_to": "me@example.com"})
    assert status == 303
    job_id = head["location"].rsplit("job=", 1)[1]
    job = wait_for_job(client, f"/jobs/{job_id}")
    assert job["state"] == "done", job
    assert handler.messages
    checked = 0
    for _, raw in handler.messages:
        message = email.message_from_bytes(raw)
        for part in message.walk():
            payload = part.get_payload(decode=True)
            if not payload:
                continue
            if part.get_content_type() == "application/pdf":
                text = " ".join(page.extract_text() for page in PdfReader(
                    io.BytesIO(payload)).pages)
                assert "team.xlsx" in text and not GENERATED.search(text)
                checked += 1
            else:
                assert not GENERATED.search(payload.decode("utf-8", "replace"))
    assert checked


def test_an_index_that_points_elsewhere_or_a_linked_folder_is_not_believed(tmp_path):
    from kpireport.web.versions import Library

    library = Library(tmp_path / "books")
    upload = tmp_path / "team.xlsx"
    shutil.copy(SAMPLES / "acme.xlsx", upload)
    book, version, new = library.add("team.xlsx", upload, origin="upload", errors=0,
                                     warnings=0)
    assert new and version.number == 1 and not upload.exists()
    assert library.file("team.xlsx", None) == book.folder / "v1" / "team.xlsx"
    assert library.file("team.xlsx", 0) is None  # version 0: the folder's own file
    index = book.folder / "workbook.json"
    good = index.read_text(encoding="utf-8")
    for field, value in (("file", "../../../secret.xlsx"), ("file", "v1/other.xlsx"),
                         ("number", "1; rm")):
        data = json.loads(good)
        data["versions"][0][field] = value
        index.write_text(json.dumps(data), encoding="utf-8")
        assert library.get("team.xlsx") is None and library.all() == [], (field, value)
    index.write_text(good, encoding="utf-8")
    assert [b.name for b in library.all()] == ["team.xlsx"]
    # a link in place of a workbook's folder is not followed
    moved = tmp_path / "elsewhere"
    book.folder.rename(moved)
    book.folder.symlink_to(moved)
    assert library.get("team.xlsx") is None and library.all() == []
