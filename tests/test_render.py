"""Reports: view-model and HTML snapshots, real PDFs, Chromium, and the security walls."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader

from kpireport import api
from kpireport.report import render
from kpireport.report.views import ViewBuilder, all_views, slug
from kpireport.score.results import compute
from tests.conftest import BASE, Literal, need_tool

SNAPSHOTS = Path(__file__).parent / "snapshots"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
UPDATE = os.environ.get("KPIREPORT_UPDATE_SNAPSHOTS") == "1"


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with KPIREPORT_UPDATE_SNAPSHOTS=1"


def _build_sample(tmp_path_factory, name: str) -> Path:
    result = api.build(SAMPLES / f"{name}.xlsx", out=tmp_path_factory.mktemp(name), workers=2)
    assert result.ok, result.failures
    return result.run_dir


@pytest.fixture(scope="module")
def acme_build(tmp_path_factory):
    return _build_sample(tmp_path_factory, "acme")


@pytest.fixture(scope="module")
def crm_build(tmp_path_factory):
    return _build_sample(tmp_path_factory, "onlinecrm")


def spec_results(make_workbook):
    book, issues = api.load(make_workbook("spec.xlsx"))
    return compute(book, issues)


def test_view_model_snapshot(make_workbook):
    builder = ViewBuilder(spec_results(make_workbook))
    view = builder.employee(builder.r.owner("E1"))
    plain = {k: v for k, v in view.items()}
    plain["kpis"] = [{k: v for k, v in row.items() if k not in ("bullet", "spark")}
                     for row in view["kpis"]]
    # the workbook's hash differs with every save of the file (openpyxl stamps the time)
    plain["statement"] = {k: v for k, v in view["statement"].items() if k != "workbook"}
    snapshot("employee_E1.view.json", json.dumps(plain, indent=1, ensure_ascii=False) + "\n")


def test_html_fragment_snapshots(make_workbook, tmp_path):
    result = api.build(make_workbook("spec.xlsx"), out=tmp_path, formats=("html",), workers=1)
    html = (result.run_dir / "employees" / "E1.html").read_text()
    table = re.search(r'<table class="kpis">.*?</table>', html, re.S).group(0)
    snapshot("employee_E1.kpis.html", table + "\n")
    cards = re.search(r'<section class="cards">.*?</section>', html, re.S).group(0)
    snapshot("employee_E1.cards.html", cards + "\n")


def test_same_input_gives_byte_identical_html(make_workbook, tmp_path):
    book = make_workbook("spec.xlsx")
    a = api.build(book, out=tmp_path / "a", formats=("html",), workers=1)
    b = api.build(book, out=tmp_path / "b", formats=("html",), workers=2)
    for path in sorted(a.run_dir.rglob("*.html")):
        assert path.read_bytes() == (b.run_dir / path.relative_to(a.run_dir)).read_bytes()


def test_every_report_is_written(acme_build):
    names = {p.relative_to(acme_build).as_posix() for p in acme_build.rglob("*") if p.is_file()}
    assert {"index.html", "company.html", "company.pdf", "results.json", "results.xlsx",
            "payroll.csv", "departments/customer-success.pdf", "employees/E015.pdf"} <= names
    # every employee of the sample but Tom Becker, who left before the report month
    assert len([n for n in names if n.startswith("employees/") and n.endswith(".pdf")]) == 14
    assert "employees/E004.pdf" not in names


def test_employee_pdf_text_fonts_and_pages(acme_build):
    reader = PdfReader(acme_build / "employees" / "E003.pdf")
    assert 1 <= len(reader.pages) <= 2
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in ("Priya Nair", "Account Executive", "New revenue booked", "Exceeds",
                     "Bonus calculation", "Page 1 of", "Acme Analytics Inc."):
        assert expected in text, expected
    # its one embedded file is the statement `kpireport verify` reads (docs/verify.md)
    assert list(reader.attachments) == ["kpireport-statement.json"]
    fonts = _fonts(reader)
    assert fonts and all(embedded for _, embedded in fonts), fonts
    # Only the fonts kpireport ships: nothing depends on what the reader's machine has.
    assert {re.sub(r"^/[A-Z]{6}\+", "", name) for name, _ in fonts} <= {
        "Noto-Sans", "Noto-Sans-Bold", "KPI-Symbols", "KPI-Symbols-Bold"}, fonts


def _fonts(reader: PdfReader) -> list[tuple[str, bool]]:
    found = []
    for page in reader.pages:
        resources = page["/Resources"]
        for font in resources.get("/Font", {}).values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor else {}
            embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            found.append((str(font.get("/BaseFont")), embedded))
    return found


def test_vietnamese_pdf_keeps_diacritics_and_formats_vnd(crm_build):
    reader = PdfReader(crm_build / "employees" / "NV06.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")
    for expected in ("Đỗ Thị Mai Anh", "Đánh giá hiệu suất công việc", "Lượt tương tác",
                     "Thẻ điểm", "Trang 1 /", "₫"):
        assert expected in text, expected
    assert re.search(r"\d{1,3}(\.\d{3})+ ₫", text)
    from kpireport.core.i18n import Formatter

    vnd = Formatter("vi_VN", "VND")
    assert vnd.money(10_000_000_000).replace("\xa0", " ") == "10.000.000.000 ₫"
    assert vnd.value(10_764_000_000, "currency", 0, compact=True).replace("\xa0", " ") == \
        "10,76 T ₫"  # tables shorten 100 million and more; cards and files keep every digit


def test_pdftotext_reads_the_company_report(acme_build):
    tool = need_tool("pdftotext")
    text = subprocess.run([tool, "-layout", str(acme_build / "company.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Goal cascade" in text and "Departments" in text
    assert "TOTAL BONUS COST" in text  # card labels are set in capitals by the stylesheet


def test_index_opens_in_headless_chromium_without_console_errors(acme_build, tmp_path):
    chromium = need_tool("chromium")
    shot = tmp_path / "index.png"
    run = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", f"--screenshot={shot}", "--window-size=1200,1600",
         (acme_build / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower()], console
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
         (acme_build / "company.html").as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    assert "Goal cascade" in dom and 'href="departments/marketing.html"' in dom


def test_workbook_text_is_escaped(make_workbook, tmp_path):
    people = [r[:] for r in BASE["People"]]
    people[1][1] = Literal("<script>alert('x')</script><img src=x onerror=alert(1)>")
    comments = [["owner", "period", "comment"],
                ["E1", "2026-02", Literal("<iframe src='http://127.0.0.1:1/'></iframe>")]]
    result = api.build(make_workbook(People=people, Comments=comments), out=tmp_path,
                       formats=("html",), workers=1)
    html = (result.run_dir / "employees" / "E1.html").read_text()
    assert "<script>" not in html and "<iframe" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "&lt;iframe" in html


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        _Counter.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_url_fetcher_fetches_nothing_outside_the_templates(make_workbook, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for the report")
    custom = tmp_path / "tpl"
    custom.mkdir()
    (custom / "employee.html").write_text(
        "{% extends 'base.html' %}{% block content %}"
        f"<img src='http://127.0.0.1:{port}/a.png'>"
        f"<link rel='stylesheet' href='http://127.0.0.1:{port}/b.css'>"
        f"<img src='{secret.as_uri()}'><img src='file:///etc/hostname'>"
        f"<div style=\"background: url('http://127.0.0.1:{port}/c.png')\">x</div>"
        "{% endblock %}")
    try:
        result = api.build(make_workbook(), out=tmp_path / "out", formats=("pdf",),
                           templates=custom, workers=1)
    finally:
        server.shutdown()
    assert result.ok, result.failures
    assert _Counter.hits == []
    pdf = (result.run_dir / "employees" / "E1.pdf").read_bytes()
    assert b"not for the report" not in pdf


def test_sandbox_blocks_python_internals(make_workbook, tmp_path):
    custom = tmp_path / "tpl"
    custom.mkdir()
    (custom / "employee.html").write_text(
        "{% extends 'base.html' %}{% block content %}"
        "{{ ''.__class__.__mro__[1].__subclasses__() }}{% endblock %}")
    result = api.build(make_workbook(), out=tmp_path / "out", formats=("html",),
                       templates=custom, workers=1)
    assert not result.ok
    assert all("SecurityError" in m or "unsafe" in m for m in result.failures.values())


def test_template_syntax_error_names_file_and_line_before_any_work(make_workbook, tmp_path):
    from kpireport.core.errors import TemplateError

    custom = tmp_path / "tpl"
    custom.mkdir()
    (custom / "company.html").write_text("{% extends 'base.html' %}\n{% block content %}\n"
                                         "{% if %}\n{% endblock %}")
    with pytest.raises(TemplateError, match=r"company.html, line 3"):
        api.build(make_workbook(), out=tmp_path / "out", templates=custom, workers=1)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.html"))


def test_custom_template_overrides_by_file_name(make_workbook, tmp_path):
    custom = tmp_path / "tpl"
    custom.mkdir()
    (custom / "report.css").write_text("body { color: #123456; }")
    result = api.build(make_workbook(), out=tmp_path / "out", formats=("html",),
                       templates=custom, workers=1)
    assert "#123456" in (result.run_dir / "company.html").read_text()


def test_colliding_department_slugs_stay_apart():
    from kpireport.report.views import department_slugs

    assert department_slugs(["Sales", "sales!", "Ops"]) == {
        "Sales": "sales", "sales!": "sales-2", "Ops": "ops"}


def test_slugs_are_file_safe():
    assert slug("Customer Success") == "customer-success"
    assert slug("Kinh doanh") == "kinh-doanh"
    assert slug("Ban Giám đốc") == "ban-giam-doc"
    assert slug("../../etc") == "etc"


def test_all_views_are_small_and_picklable(make_workbook):
    import pickle

    views = all_views(spec_results(make_workbook))
    assert [v["kind"] for v in views] == ["company", "department", "employee", "employee",
                                          "index"]
    assert all(len(pickle.dumps(v)) < 50_000 for v in views)


def test_views_are_read_only_all_the_way_down(make_workbook):
    import pickle

    from kpireport.report.viewmodel import FrozenDict

    results = spec_results(make_workbook)
    views = all_views(results)
    employee = next(v for v in views if v["kind"] == "employee")
    for change in (lambda: employee.__setitem__("title", "x"), lambda: employee.pop("title"),
                   lambda: employee.update(title="x"), lambda: employee["person"].clear(),
                   lambda: employee["kpis"][0]["month"].setdefault("score", "x"),
                   lambda: employee["kpis"][0]["ytd"]["status"].__delitem__("code")):
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert type(employee["kpis"]) is tuple and type(employee["kpis"][0]) is FrozenDict
    copy = pickle.loads(pickle.dumps(employee))  # to worker processes and Dask
    assert copy == employee and type(copy) is FrozenDict
    assert type(copy["kpis"][0]["ytd"]["status"]) is FrozenDict
    # what a build adds is an option of the builder: the archive copy's data
    archived = all_views(results, archive=True)
    assert [v["archive"]["file"] for v in archived if v["kind"] != "index"] == [
        "archive/company.pdf", "archive/departments-sales.pdf", "archive/employees-E1.pdf",
        "archive/employees-E2.pdf"]
    assert "archive" not in archived[-1] and "archive" not in employee


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_fast_paths_render_what_stock_jinja_renders(sample):
    """Two fast paths change how templates compile: _("literal") is translated at compile
    time and output is escaped without a Markup per value. Every report of both samples
    (English and Vietnamese) must come out byte-identical to stock Jinja."""
    from kpireport.report import render

    book, issues = api.load(SAMPLES / f"{sample}.xlsx")
    views = all_views(compute(book, issues))
    dirs = render.template_dirs(None)
    fast = render.sandbox(dirs, book.settings.locale)
    slow = render.sandbox(dirs, book.settings.locale, fast_paths=False)
    compared = 0
    for view in views:
        name = render.TEMPLATES[view["kind"]]
        for for_pdf in (False, True):
            assert fast.get_template(name).render(**view, for_pdf=for_pdf) == \
                slow.get_template(name).render(**view, for_pdf=for_pdf), view["file"]
            compared += 1
    assert compared == 2 * len(views) > 20
    translated = fast.get_template("employee.html").render(
        **next(v for v in views if v["kind"] == "employee"), for_pdf=False)
    assert ("Thẻ điểm" if sample == "onlinecrm" else "Scorecard") in translated


def test_fast_paths_keep_jinja_rules(tmp_path):
    """Edge cases of the fast paths: %% and markup in a literal, calls with arguments, a
    method named _ on an object, an unknown message; escaping of text, quotes, numbers,
    None, Markup, macro output; and an undefined name still fails."""
    from jinja2 import UndefinedError
    from markupsafe import Markup

    from kpireport.report import render

    (tmp_path / "t.html").write_text(
        '{% macro m(x) %}<i>{{ x }}</i>{% endmacro %}'
        '{{ _("100%% done") }}|{{ _("a <b>") }}|{{ _("%(n)s left", n=3) }}|'
        '{{ d._("x") if false else "ok" }}|{{ _("Scorecard") }}|{{ _("Not in the catalog") }}|'
        '{{ text }}|{{ 1.5 }}|{{ none }}|{{ safe }}|{{ m(text) }}|{{ [text] | join(",") }}')
    (tmp_path / "u.html").write_text("{{ nothing }}")
    (tmp_path / "shadow.html").write_text(
        '{% set _ = d.get %}{{ _("Scorecard") }}|{% macro t(_) %}{{ _("x") }}{% endmacro %}')
    context = {"d": {}, "text": "<script>'R&D'\"</script>", "none": None,
               "safe": Markup("<b>bold</b>")}
    for locale in ("en_US", "vi_VN"):
        fast = render.sandbox((tmp_path,), locale)
        slow = render.sandbox((tmp_path,), locale, fast_paths=False)
        rendered = fast.get_template("t.html").render(**context)
        assert rendered == slow.get_template("t.html").render(**context)
        assert rendered.startswith("100% done|a <b>|3 left|ok|")
        assert "&lt;script&gt;&#39;R&amp;D&#39;&#34;&lt;/script&gt;|1.5|None|<b>bold</b>|" \
            "<i>&lt;script&gt;" in rendered
        with pytest.raises(UndefinedError):
            fast.get_template("u.html").render()
        shadowed = {"d": {"Scorecard": "own _"}}
        assert fast.get_template("shadow.html").render(**shadowed) == \
            slow.get_template("shadow.html").render(**shadowed) == "own _|"


def test_compiled_templates_are_kept_in_a_private_cache_folder(tmp_path, monkeypatch):
    """The cold build loads compiled templates from the user's cache folder; an edited
    template, another locale or a folder that others can write to never reuse them."""
    from kpireport.report import render, template_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("KPIREPORT_CACHE_DIR", str(cache))
    monkeypatch.setattr(template_cache, "_COMPILED", {})
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "t.html").write_text('{{ _("Scorecard") }}: {{ n }}')
    env = render.sandbox((templates,), "en_US")
    assert env.get_template("t.html").render(n=1) == "Scorecard: 1"
    (stored,) = (cache / "templates").iterdir()
    assert (cache / "templates").stat().st_mode & 0o777 == 0o700

    # a new process: nothing in memory, the compiled code comes from the folder
    monkeypatch.setattr(template_cache, "_COMPILED", {})
    stored.write_bytes(stored.read_bytes().replace(b"Scorecard", b"Scorec4rd"))
    assert render.sandbox((templates,), "en_US").get_template("t.html").render(n=2) \
        == "Scorec4rd: 2"  # (tampered with here only to prove the file is what runs)
    # another locale compiles its own translation; an edited template compiles again
    assert render.sandbox((templates,), "vi_VN").get_template("t.html").render(n=3) \
        == "Thẻ điểm: 3"
    (templates / "t.html").write_text('{{ _("Scorecard") }} = {{ n }}')
    assert render.sandbox((templates,), "en_US").get_template("t.html").render(n=4) \
        == "Scorecard = 4"

    (cache / "templates").chmod(0o777)
    assert template_cache.cache_folder() is None
    monkeypatch.setenv("KPIREPORT_CACHE_DIR", "off")
    assert template_cache.cache_folder() is None


def test_reports_are_the_same_from_a_warm_template_cache(make_workbook, tmp_path, monkeypatch):
    from kpireport.report import template_cache

    book = make_workbook("spec.xlsx")
    monkeypatch.setenv("KPIREPORT_CACHE_DIR", str(tmp_path / "cache"))
    built = []
    for run in ("cold", "warm"):
        monkeypatch.setattr(template_cache, "_COMPILED", {})
        result = api.build(book, out=tmp_path / run, formats=("html",), workers=1)
        built.append({p.relative_to(result.run_dir): p.read_bytes()
                      for p in result.run_dir.rglob("*.html")})
    assert len(built[0]) == 5 and built[0] == built[1]
    assert len(list((tmp_path / "cache" / "templates").iterdir())) >= 6


def test_pdfs_carry_no_links_into_this_machine(sample_run):
    """Links between reports resolve against the template folder: a PDF must not keep them
    (file:///…/templates/… is dead in an e-mailed copy and leaks local paths)."""
    import pikepdf

    run = sample_run("acme")
    templates = str(Path(render.__file__).resolve().parents[1] / "templates")
    pdfs = sorted(run.rglob("*.pdf"))
    assert len(pdfs) > 10
    for path in pdfs:
        with pikepdf.open(path) as pdf:
            for page in pdf.pages:
                for annot in page.get("/Annots", []):
                    uri = str(annot.get("/A", {}).get("/URI", ""))
                    assert not uri.startswith("file:"), (path.name, uri)
            text = b"".join(obj.read_bytes() for obj in pdf.objects
                            if isinstance(obj, pikepdf.Stream))
        assert templates.encode() not in text and templates.encode() not in path.read_bytes()


def test_reports_and_e_mails_share_one_sandbox(tmp_path):
    """E-mail templates get the reports' guards too: no unbounded * or **, no attribute
    writes, no templates from outside their folders."""
    from jinja2.exceptions import SecurityError

    (tmp_path / "email_subject.txt").write_text('{{ "x" * 10**8 }}')
    (tmp_path / "email_body.txt").write_text("{{ 7 ** 100000 }}")
    for mail in (False, True):
        env = render.sandbox((tmp_path,), "en_US", mail=mail)
        with pytest.raises(SecurityError):
            env.get_template("email_subject.txt").render()
        with pytest.raises(SecurityError):
            env.get_template("email_body.txt").render()
    (tmp_path / "plain.txt").write_text("{{ a }}<b>\n")
    (tmp_path / "page.html").write_text("{{ a }}<b>\n")
    mail = render.sandbox((tmp_path,), "en_US", mail=True)
    assert mail.get_template("plain.txt").render(a="<i>") == "<i><b>\n"  # text: as typed
    assert mail.get_template("page.html").render(a="<i>") == "&lt;i&gt;<b>\n"


def test_one_template_fingerprint_for_the_render_cache_and_dask(tmp_path):
    outside = tmp_path / "outside.css"
    outside.write_text("secret")
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "company.html").write_text("a")
    (folder / "link.css").symlink_to(outside)
    bundle = render.template_bundle((folder,))
    assert bundle == {"company.html": b"a"}  # the link out is never read
    before = render.template_fingerprint((folder,))
    assert before == render.bundle_fingerprint(bundle)
    (folder / "company.html").write_text("b")
    assert render.template_fingerprint((folder,)) != before


@pytest.mark.parametrize("workers", ["1", "2"])
def test_pdf_build_leaves_no_weasyprint_font_folder_behind(make_workbook, tmp_path, workers):
    """WeasyPrint's web-font folder (``weasyprint-*`` in the temporary directory) goes when the
    render process ends: the main process after its fast exit, and each worker."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    run = subprocess.run([sys.executable, "-m", "kpireport", "build", str(make_workbook()),
                          "--out", str(tmp_path / "out"), "--format", "pdf",
                          "--workers", workers],
                         capture_output=True, text=True, env={**os.environ, "TMPDIR": str(temp)})
    assert run.returncode == 0, run.stderr
    assert list((tmp_path / "out").rglob("*.pdf"))
    assert [p.name for p in temp.iterdir() if p.name.startswith("weasyprint-")] == []


def _undeclared(value, declared, path: str) -> list[str]:
    """Keys of ``value`` (a view, or a part of one) that its TypedDict does not declare, and
    declared keys it lacks, walking into nested TypedDicts and sequences of them."""
    import typing

    hints = typing.get_type_hints(declared)
    problems = [f"{path}.{key}: not declared" for key in value if key not in hints]
    for key, hint in hints.items():
        if key not in value:
            if key in declared.__required_keys__:
                problems.append(f"{path}.{key}: missing")
            continue
        inner = typing.get_args(hint)
        if value[key] is None:
            continue
        if typing.is_typeddict(hint):
            problems += _undeclared(value[key], hint, f"{path}.{key}")
        elif inner and typing.is_typeddict(inner[0]):
            for item in value[key]:
                problems += _undeclared(item, inner[0], f"{path}.{key}[]")
    return problems


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_every_view_has_exactly_the_keys_its_type_declares(sample):
    from kpireport.report.viewmodel import VIEW_TYPES

    book, issues = api.load(Path(__file__).resolve().parents[1] / "sample_workbooks"
                            / f"{sample}.xlsx")
    problems = []
    for view in all_views(compute(book, issues), archive=True):
        problems += _undeclared(view, VIEW_TYPES[view["kind"]], view["file"])
    assert sorted(set(problems)) == []
