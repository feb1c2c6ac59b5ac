"""The PDF's look: every report renders to the same pixels as in kpireport's earlier form
(charts.css in a <style> inside each chart, cards and spark axes laid out by flex), the tag
tree reads in the same order, and a charts.css that cannot be resolved still styles the
charts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.resources import builtin_templates
from kpireport.report.chart_paint import ChartPaint
from tests.conftest import need_tool

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
# A rule the resolution refuses (a pseudo-class) and that styles nothing: with it, the built-in
# charts.css goes into each chart as a <style>, as kpireport did before charts were painted.
PER_CHART_STYLESHEET = "\nsvg rect:first-child { }\n"
# The print layout as it was: cards and spark axes in flex boxes.
FLEX_LAYOUT = """
.cards { display: flex; width: auto; border-spacing: 0; margin: 6px 0 8px; }
.card { display: block; } .employee .card.wide { width: auto; }
.spark-axis { display: flex; } .spark-axis > span:first-child, .spark-axis > span:last-child {
  float: none; }
"""


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """earlier_run("acme") → the run folder of the sample's PDFs in the earlier form."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            folder = tmp_path_factory.mktemp(f"earlier-{name}")
            runs[name] = _build(SAMPLES / f"{name}.xlsx", folder / "out",
                                _earlier_form(folder / "templates"))
        return runs[name]

    return get


def _earlier_form(folder: Path) -> Path:
    """A template folder that renders PDFs in kpireport's earlier form (see the docstring)."""
    builtin = builtin_templates()
    folder.mkdir()
    (folder / "charts.css").write_text((builtin / "charts.css").read_text()
                                       + PER_CHART_STYLESHEET)
    (folder / "print.css").write_text((builtin / "print.css").read_text() + FLEX_LAYOUT)
    shutil.copy(builtin / "report.css", folder / "report.css")  # beside print.css: @import
    shutil.copytree(builtin / "fonts", folder / "fonts")  # and its @font-face
    return folder


def test_the_builtin_charts_css_is_resolved():
    paint = ChartPaint.from_css((builtin_templates() / "charts.css").read_text())
    assert paint is not None
    svg = ('<svg class="bars"><title>t</title><text x="1" class="ink">a</text>'
           '<rect class="green edge" stroke-width="0.5" fill="#000"/><circle class="x"/></svg>')
    assert paint.apply("<p>" + svg + "</p>") == (
        '<p><svg class="bars"><title>t</title><text x="1" class="ink" fill="#1f2a36">a</text>'
        '<rect class="green edge" stroke-width="0.5" fill="#1b7a43" stroke="#1f2a36"/>'
        '<circle class="x"/></svg></p>')


def test_resolution_follows_the_cascade():
    """Specificity, then rule order, decides; the root <svg> is never styled (WeasyPrint
    styles only its descendants); a rule's value replaces the attribute of the same name,
    the style attribute is left for WeasyPrint to apply on top, as it does."""
    paint = ChartPaint.from_css(
        "g .a { fill: red } .a { fill: blue; stroke: green } * { opacity: .5 }"
        "svg { fill: black } text tspan { font-size: 8px } .a.b { fill: \"q&\" }")
    assert paint is not None
    out = paint.apply('<svg class="a"><g><rect class="a" fill="x" style="fill: pink"/>'
                      '<rect class="a b"/></g><text><tspan>t</tspan></text></svg>')
    assert out == ('<svg class="a"><g opacity=".5"><rect class="a" style="fill: pink"'
                   ' opacity=".5" fill="red" stroke="green"/><rect class="a b" opacity=".5"'
                   ' fill="&quot;q&amp;&quot;" stroke="green"/></g><text opacity=".5">'
                   '<tspan opacity=".5" font-size="8px">t</tspan></text></svg>')


@pytest.mark.parametrize("css", [
    "svg rect:first-child { fill: red }", "svg > rect { fill: red }", "svg + rect { fill: red }",
    "#a { fill: red }", "rect[x] { fill: red }", "svg rect::before { fill: red }",
    "@media print { svg .a { fill: red } }", "@import url(x.css);",
    "svg .a { fill: red !important }", "svg .a { fill: red; @x; }", "svg . { fill: red }",
    "svg|rect { fill: red }", ", svg .a { fill: red }"])
def test_what_cannot_be_resolved_is_refused(css):
    assert ChartPaint.from_css(css) is None


def _build(book: Path, out: Path, templates: Path | None = None) -> Path:
    result = api.build(book, out=out, formats=("pdf",), workers=1, templates=templates)
    assert result.ok, result.failures
    return result.run_dir


def _pixels(pdf: Path, folder: Path) -> list:
    """The pages of ``pdf`` at 150 dpi, as RGB arrays."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([need_tool("pdftoppm"), "-r", "150", "-png", str(pdf), str(folder / "p")],
                   check=True)
    return [np.asarray(Image.open(page).convert("RGB")) for page in sorted(folder.glob("*.png"))]


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_every_report_has_the_pixels_of_the_earlier_form(sample, sample_run, earlier_run,
                                                         tmp_path):
    """Tolerance: none — the resolved attributes are the attributes WeasyPrint derives from
    the per-chart stylesheet, and the table and floats put every box where flex did, so every
    pixel of every page at 150 dpi is the same."""
    import numpy as np

    need_tool("pdftoppm")
    painted = sample_run(sample)
    styled = earlier_run(sample)
    pdfs = sorted(p.relative_to(painted) for p in painted.rglob("*.pdf"))
    assert pdfs == sorted(p.relative_to(styled) for p in styled.rglob("*.pdf"))
    assert len(pdfs) > 10
    for i, pdf in enumerate(pdfs):
        new = _pixels(painted / pdf, tmp_path / f"new{i}")
        old = _pixels(styled / pdf, tmp_path / f"old{i}")
        assert len(new) == len(old), pdf
        for page, (a, b) in enumerate(zip(new, old), 1):
            assert a.shape == b.shape and np.array_equal(a, b), f"{pdf} page {page}"


def _struct_texts(pdf: Path) -> list[str]:
    """The texts of a tagged PDF in the order of its structure tree."""
    out = subprocess.run([need_tool("pdfinfo"), "-struct-text", str(pdf)], check=True,
                         capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip().startswith('"')]


@pytest.mark.parametrize("report", ["employees/E003.pdf", "company.pdf",
                                    "departments/sales.pdf"])
def test_the_tag_tree_reads_as_in_the_earlier_form(report, sample_run, earlier_run):
    """The cards as a table add grouping levels to the tag tree (a table's anonymous row),
    never a change of order."""
    texts = _struct_texts(sample_run("acme") / report)
    assert len(texts) > 40
    assert texts == _struct_texts(earlier_run("acme") / report)


def test_a_charts_css_that_cannot_be_resolved_still_colours_the_charts(tmp_path):
    """A custom charts.css with a pseudo-class goes into each chart as a <style>: the first
    zone of every bullet chart turns pure red in the PDF."""
    import numpy as np

    need_tool("pdftoppm")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "charts.css").write_text((builtin_templates() / "charts.css").read_text()
                                          + "\nsvg.bullet rect:first-of-type { fill: #ff0000 }\n")
    book = SAMPLES / "acme.xlsx"
    red = np.array([255, 0, 0])
    for name, folder in (("builtin", None), ("custom", templates)):
        pdf = _build(book, tmp_path / name, folder) / "employees" / "E003.pdf"
        pages = _pixels(pdf, tmp_path / f"png-{name}")
        reds = sum(int((page == red).all(axis=2).sum()) for page in pages)
        assert (reds > 100) == (name == "custom"), (name, reds)
