"""Labels say what they mean: month or year to date, status counts in words, sparkline months,
band colours by band order, strongest and weakest lists apart, one compact unit per row, and
Vietnamese that keeps targets (chỉ tiêu) and goals (mục tiêu) apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kpireport import api
from kpireport.core.resources import builtin_templates
from kpireport.report import charts
from kpireport.report.views import ViewBuilder, all_views
from kpireport.score.results import compute

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


@pytest.fixture(scope="module", params=["acme", "onlinecrm"])
def builder(request):
    return ViewBuilder(compute(*api.load(SAMPLES / f"{request.param}.xlsx")))


def test_strongest_and_weakest_never_show_the_same_line(builder):
    for dept in builder.r.book.departments:
        view = builder.department(dept)
        top = {(k["kpi"], k["owner"]) for k in view["top"]}
        bottom = {(k["kpi"], k["owner"]) for k in view["bottom"]}
        assert top and not top & bottom, dept
        scores = [float(k["score"].rstrip("%").replace(",", ".")) for k in view["top"]] + \
            [float(k["score"].rstrip("%").replace(",", ".")) for k in view["bottom"][::-1]]
        assert scores == sorted(scores, reverse=True)  # strongest first, weakest last


def test_band_colours_follow_band_order_not_status(builder):
    """Bars carry classes; templates/charts.css gives them their colours."""
    css = (builtin_templates() / "charts.css").read_text()
    colour = dict(re.findall(r"svg \.([a-z0-9-]+) \{ fill: (#[0-9a-f]{6}); \}", css))
    items = builder.band_chart([o for o in builder.r.owners if o.owner_type == "employee"])
    svg = str(items["svg"])
    classes = re.findall(r'<rect [^>]*class="([a-z0-9-]+) edge"', svg)
    assert "fill=" not in svg and all(c in colour for c in classes)
    fills = [colour[c] for c in classes]
    bands = [b.band for b in builder.r.book.bands]
    assert len(fills) >= len(bands)
    assert not set(fills) & {colour[status] for status in charts.STATUSES}

    def lightness(colour: str) -> float:
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return 0.299 * r + 0.587 * g + 0.114 * b

    shades = [lightness(c) for c in fills[:len(bands)]]
    assert shades == sorted(shades, reverse=True) and len(set(shades)) == len(shades)


def test_cascade_counts_in_words_and_scores_marked_year_to_date(builder):
    words = {"en_US": "on track", "vi_VN": "đạt tiến độ"}[builder.r.book.settings.locale]
    def walk(nodes):
        for g in nodes:
            yield from g["kpis"]
            yield from walk(g["children"])

    splits = [k["split"] for k in walk(builder.cascade())]
    assert splits and all(re.search(r"[●▲■○] \d+ \w", s) for s in splits)
    assert any(words in s for s in splits)


def test_sparklines_name_their_first_and_last_month(builder):
    rows = [r for v in all_views(builder.r) if v["kind"] == "employee" for r in v["kpis"]]
    labelled = [r for r in rows if r["spark"]]
    assert labelled and all(r["spark_from"] and r["spark_to"] for r in labelled)
    first = {"acme": ("Apr", "Mar"), "onlinecrm": ("thg 1", "thg 10")}
    name = "acme" if builder.r.book.settings.locale == "en_US" else "onlinecrm"
    assert (labelled[0]["spark_from"], labelled[0]["spark_to"]) == first[name]


def test_one_compact_unit_per_row(builder):
    for view in all_views(builder.r):
        for row in view.get("kpis", []):
            texts = [row[w][k] for w in ("month", "ytd") for k in ("actual", "target")]
            units = {re.sub(r"[\d.,\s\u00a0–-]", "", t) for t in texts if t != "—"}
            assert len(units) <= 1, (view["file"], row["name"], texts)


def test_vietnamese_wording_in_the_reports(sample_run):
    run = sample_run("onlinecrm")
    for page in run.rglob("*.html"):
        text = page.read_text()
        assert "ngày làm việc" not in text, page.name  # days are calendar days
        assert "Thực tế / mục tiêu" not in text and "thưởng mục tiêu" not in text
    employee = (run / "employees" / "NV01.html").read_text()
    assert "Thực tế / chỉ tiêu" in employee and "Mục tiêu:" in employee  # target vs goal
    assert "số ngày (theo lịch)" in employee
    company = (run / "company.html").read_text()
    assert "Điểm lũy kế năm các phòng ban" in company and "tháng 10/2026" in company
