"""Reports on the page: every word inside the content area, no near-empty page, figures inside
their cards and cells — over both samples and a 300-person stress book (longest names, VND in
the hundreds of billions)."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from kpireport import api
from kpireport.cli.app import main
from kpireport.core.resources import builtin_templates
from kpireport.report.render import Renderer
from kpireport.report.views import ViewBuilder, build_view, report_specs
from kpireport.score.results import compute
from tests.conftest import need_tool

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
MM = 72 / 25.4
# print.css: @page { size: A4; margin: 17mm 13mm 15mm 13mm }
PAGE_W, PAGE_H = 595.28, 841.89
LEFT, RIGHT, TOP, BOTTOM = 13 * MM, PAGE_W - 13 * MM, 17 * MM, PAGE_H - 15 * MM
XHTML = "{http://www.w3.org/1999/xhtml}"
LONG_NAME = "Nguyễn Trần Hoàng Phương Thảo Bảo Ngọc Đức Lê Minh Quân"


def pdf_words(pdf: Path) -> list[list[tuple[float, float, float, float, str]]]:
    """Per page, every word's box (xMin, yMin, xMax, yMax, text) as pdftotext sees it."""
    out = subprocess.run([need_tool("pdftotext"), "-bbox-layout", str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", out))
    return [[(float(w.get("xMin")), float(w.get("yMin")), float(w.get("xMax")),
              float(w.get("yMax")), w.text or "") for w in page.iter(f"{XHTML}word")]
            for page in root.iter(f"{XHTML}page")]


def page_problems(pdf: Path) -> tuple[list[str], float, int]:
    """(problems, the rightmost word edge, pages) of one PDF: words outside the content area
    (the running head and the page footer sit in the margins, above and below it), and pages
    after the first whose body holds (almost) nothing."""
    problems, right = [], 0.0
    pages = pdf_words(pdf)
    for number, words in enumerate(pages, 1):
        for x0, _, x1, _, text in words:
            right = max(right, x1)
            if x0 < LEFT - 0.5 or x1 > RIGHT + 0.5:
                problems.append(f"{pdf.name} p{number}: {text!r} spans x {x0:.1f}–{x1:.1f}, "
                                f"outside {LEFT:.1f}–{RIGHT:.1f}")
        body = [w for w in words if TOP - 1 < w[1] and w[3] < BOTTOM + 1]
        if number > 1 and len(body) < 6:
            problems.append(f"{pdf.name} p{number} is near-empty: "
                            f"{' '.join(w[4] for w in body)!r}")
    return problems, right, len(pages)


def box_problems(document, name: str) -> list[str]:
    """WeasyPrint's layout boxes: every piece of text inside its card or table cell, every
    status pill inside its cell's padding (so it never touches the next column), and no page
    ending in a heading."""
    from weasyprint.formatting_structure import boxes

    problems: list[str] = []

    def classes(box) -> set[str]:
        element = getattr(box, "element", None)
        return set((element.get("class") or "").split()) if element is not None else set()

    def walk(box, frame, page: int):
        if isinstance(box, boxes.TableCellBox) or (
                isinstance(box, boxes.BlockBox) and "card" in classes(box)):
            frame = box
        if isinstance(box, boxes.TextBox) and frame is not None and box.text.strip():
            limit = frame.border_box_x() + frame.border_width()
            if box.position_x + box.width > limit + 0.5:
                problems.append(f"{name} p{page}: {box.text!r} ends at "
                                f"{box.position_x + box.width:.1f}, its box at {limit:.1f}")
        if "pill" in classes(box) and isinstance(frame, boxes.TableCellBox):
            limit = frame.content_box_x() + frame.width
            if box.position_x + box.margin_width() > limit + 0.5:
                problems.append(f"{name} p{page}: a status pill ends at "
                                f"{box.position_x + box.margin_width():.1f}, past its cell's "
                                f"padding at {limit:.1f}")
        for child in getattr(box, "children", ()) or ():
            walk(child, frame, page)

    for number, page in enumerate(document.pages, 1):
        walk(page._page_box, None, number)
        html = page._page_box.children[0]
        body = html.children[0] if html.children else None
        main = [b for b in (body.children if body else []) if getattr(b, "element_tag", "") ==
                "main"]
        blocks = [b for b in (main[0].children if main else [])
                  if getattr(b, "element_tag", None)]
        if blocks and blocks[-1].element_tag == "h2" and number < len(document.pages):
            problems.append(f"{name} p{number} ends with the heading "
                            f"{blocks[-1].element.text_content()!r}")
    return problems


def layout_documents(book: Path, only=None):
    """(report file, WeasyPrint document) of the reports of ``book`` (or those ``only``
    selects), laid out exactly as ``build`` prints them."""
    from weasyprint import HTML

    loaded, issues = api.load(book)
    builder = ViewBuilder(compute(loaded, issues))
    renderer = Renderer((builtin_templates(),))
    css, fonts, fetcher = renderer._print_setup()
    for spec in report_specs(builder.r):
        if spec[0] == "index" or (only and not only(spec)):
            continue
        view = build_view(builder, spec)
        html = renderer.html(view, for_pdf=True)
        yield view["file"], HTML(string=html, base_url=str(builtin_templates()) + "/",
                                 url_fetcher=fetcher.fetcher).render(stylesheets=[css],
                                                                     font_config=fonts)


@pytest.fixture
def sample_builds(sample_run):
    return {name: sample_run(name) for name in ("acme", "onlinecrm")}


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_every_word_of_every_sample_pdf_is_on_the_page(sample_builds, sample):
    pdfs = sorted(sample_builds[sample].rglob("*.pdf"))
    assert len(pdfs) >= 12
    problems = [p for pdf in pdfs for p in page_problems(pdf)[0]]
    assert problems == []


def test_small_departments_fit_one_page(sample_builds):
    from pypdf import PdfReader

    pages = {pdf.stem: len(PdfReader(pdf).pages)
             for run in sample_builds.values() for pdf in (run / "departments").glob("*.pdf")}
    # Sales (5 people, 2 KPIs), Customer Success (4), Ban Giám đốc (1), Kinh doanh (3)
    assert pages["sales"] == pages["customer-success"] == pages["ban-giam-doc"] == \
        pages["kinh-doanh"] == 1, pages
    # An employee review is one page; its "How this was computed" appendix starts on page 2.
    for run in sample_builds.values():
        for pdf in (run / "employees").glob("*.pdf"):
            texts = [page.extract_text() for page in PdfReader(pdf).pages]
            heading = [i for i, t in enumerate(texts) if "kpireport explain" in t]
            assert heading == [1], (pdf.name, heading)


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_cards_cells_and_pills_hold_their_text(sample):
    problems = [p for name, doc in layout_documents(SAMPLES / f"{sample}.xlsx")
                for p in box_problems(doc, name)]
    assert problems == []


def stress_book(tmp_path: Path, employees: int = 300) -> Path:
    """The synthetic sample as a person would push it: Vietnamese, VND, base salaries near a
    trillion đồng, the longest names, long department and KPI names."""
    path = tmp_path / "stress.xlsx"
    result = CliRunner().invoke(main, ["init", str(path), "--sample", "synthetic",
                                       "--employees", str(employees)])
    assert result.exit_code == 0, result.output
    book = load_workbook(path)
    for setting, value in book["Settings"].iter_rows(min_row=2, max_col=2):
        if setting.value == "currency":
            value.value = "VND"
        elif setting.value == "locale":
            value.value = "vi_VN"
        elif setting.value == "organization":
            value.value = "Tổng Công ty Cổ phần Đầu tư Phát triển Công nghệ Quốc tế Việt Nam"
    people = book["People"]
    header = [c.value for c in people[1]]
    name, dept, salary = (header.index(h) for h in ("name", "department", "base_salary"))
    renamed: dict[str, str] = {}
    for i, row in enumerate(people.iter_rows(min_row=2)):
        if row[0].value is None:
            break
        row[name].value = LONG_NAME if i % 2 == 0 else LONG_NAME.rsplit(" ", 3)[0]
        row[salary].value = 987_654_321_000 + 1_000 * i
        old = row[dept].value
        row[dept].value = renamed.setdefault(old, f"Phòng Chăm sóc Khách hàng Doanh nghiệp {old}")
    for sheet in ("Scorecards", "Actuals", "Targets"):
        if sheet in book.sheetnames:
            for (owner,) in book[sheet].iter_rows(min_row=2, max_col=1):
                owner.value = renamed.get(owner.value, owner.value)
    for _, kpi in book["KPIs"].iter_rows(min_row=2, max_col=2):
        if kpi.value:
            kpi.value = f"Tỷ lệ hoàn thành kế hoạch doanh thu thuần hợp nhất {kpi.value}"
    book.save(path)
    return path


@pytest.fixture(scope="session")
def stress_build(tmp_path_factory):
    """The 300-person stress book, built once per test session (PDFs on two workers)."""
    tmp = tmp_path_factory.mktemp("stress")
    book = stress_book(tmp)
    result = api.build(book, out=tmp / "reports", formats=("pdf",), workers=2)
    assert result.ok, result.failures
    return book, result.run_dir


def test_stress_book_every_pdf_on_the_page(stress_build):
    """One test over all 313 PDFs of the stress book (rendered once), plus the layout boxes
    of its company report, its largest department and its longest-named people."""
    book, run = stress_build
    import json

    pdfs = sorted(run.rglob("*.pdf"))
    cards = json.loads((run / "results.json").read_text())["scorecards"]
    here = sum(c["owner_type"] == "employee" and c.get("employment") in (None, "employed")
               for c in cards)  # people who left or start later get no review
    assert len(pdfs) == 1 + 12 + here and here > 250
    problems, right = [], 0.0
    for pdf in pdfs:
        found, edge, _ = page_problems(pdf)
        problems += found
        right = max(right, edge)
    assert problems == []
    assert right <= RIGHT + 0.5
    text = subprocess.run([need_tool("pdftotext"), str(run / "employees" / "E00001.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert LONG_NAME in " ".join(text.split())  # the name is printed whole, not cut
    picked = {("company", ""), ("employee", "E00001"), ("employee", "E00002")}
    dept = next(p for p in report_specs(compute(*api.load(book))) if p[0] == "department")
    picked.add(dept)
    problems = [p for name, doc in layout_documents(book, only=lambda s: s in picked)
                for p in box_problems(doc, name)]
    assert problems == []


# ---------------------------------------------------------------------------- exactness
def pdf_text(pdf: Path) -> str:
    out = subprocess.run([need_tool("pdftotext"), str(pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    return " ".join(out.replace("\xa0", " ").split())


def parse_number(text: str, locale: str) -> Decimal:
    """A number as printed in ``locale`` ('$1,234.50', '118,35%', '177.427.726 ₫')."""
    group, point = (".", ",") if locale.startswith("vi") else (",", ".")
    digits = re.sub(r"[^\d" + re.escape(group + point) + "-]", "", text)
    return Decimal(digits.replace(group, "").replace(point, "."))


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_printed_bonus_calculation_multiplies_out(sample_builds, sample):
    """On every employee report: base × target bonus × payout × days = the printed bonus,
    exactly to the currency's minor unit, and the same figure as results.json."""
    import json

    from kpireport.core.money import round_money

    run = sample_builds[sample]
    results = json.loads((run / "results.json").read_text())
    locale, currency = results["locale"], results["currency"]
    label = "Cách tính thưởng:" if locale.startswith("vi") else "Bonus calculation:"
    checked = linear = 0
    for card in results["scorecards"]:
        if card["owner_type"] != "employee" or card["bonus"] is None \
                or card.get("employment") not in (None, "employed"):  # no review: not there
            continue
        text = pdf_text(run / "employees" / f"{card['owner']}.pdf")
        calc = re.search(re.escape(label) + r" (.+?) = ([^()]+?) \(", text).group(1, 2)
        factors, printed = calc[0].split(" × "), parse_number(calc[1], locale)
        base, pct, payout = (parse_number(f, locale) for f in factors[:3])
        days, total = map(int, re.match(r"(\d+)/(\d+)", factors[3]).groups())
        share = Decimal(1) / 12 if "÷ 12" in factors[1] else Decimal(1)
        product = base * pct / 100 * share * payout / 100 * days / total
        assert round_money(product, currency) == printed, (card["owner"], calc)
        assert printed == round_money(Decimal(str(card["bonus"])), currency), card["owner"]
        checked += 1
        if "interpolated between" in text or "nội suy giữa" in text:
            linear += 1
    assert checked >= 8
    if sample == "onlinecrm":  # band_mode linear: every interpolated payout says where from
        assert linear >= 6


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_printed_actuals_agree_with_printed_attainment(sample, sample_run):
    """Every KPI row of every employee report: the attainment worked out from the actual and
    target as printed agrees with the printed attainment (to a percentage point), because
    actuals carry the KPI's decimals (4.1 hours, not 4)."""
    import lxml.html

    book, _ = api.load(SAMPLES / f"{sample}.xlsx")
    direction = {k.kpi: k.direction for k in book.kpis}
    run = sample_run(sample)
    locale = book.settings.locale
    rows = 0
    for page in sorted((run / "employees").glob("*.html")):
        doc = lxml.html.parse(str(page)).getroot()
        for tr in doc.xpath('//table[@class="kpis"]/tbody/tr'):
            cells = tr.findall("td")
            name = cells[0].xpath('.//div[@class="name"]')[0].text_content().strip()
            actual_cell = cells[4]
            target = actual_cell.xpath('.//div[@class="sub"]')[0].text_content().strip()
            actual = (actual_cell.text or "").strip()
            printed = cells[5].text_content().strip()
            if direction[name] == "range" or "—" in (actual, target, printed) or \
                    re.search(r"[A-Za-z]", actual.replace("T ₫", "").replace("Tr ₫", "")):
                continue
            a, t = parse_number(actual, locale), parse_number(target, locale)
            if a == 0 or t == 0:
                continue
            worked = (a / t if direction[name] == "higher" else t / a) * 100
            assert abs(worked - parse_number(printed, locale)) <= 1, (page.name, name, actual,
                                                                     target, printed)
            rows += 1
    assert rows >= 10
