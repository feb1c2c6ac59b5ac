"""index.html is a landing page: totals, every department's and person's month and YTD score,
status, band and bonus, and links to the HTML and PDF of every report the build wrote."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest

from kpireport import api
from kpireport.core.i18n import Formatter

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


def rows(doc, table_class: str) -> list[list]:
    return [tr.findall("td") for tr in
            doc.xpath(f'//table[contains(@class, "{table_class}")]/tbody/tr')]


@pytest.mark.parametrize("sample", ["acme", "onlinecrm"])
def test_index_lists_every_report_with_scores_bonus_and_working_links(sample, sample_run):
    run = sample_run(sample)
    results = json.loads((run / "results.json").read_text())
    fmt = Formatter(results["locale"], results["currency"])
    doc = lxml.html.parse(str(run / "index.html")).getroot()
    text = " ".join(doc.text_content().replace("\xa0", " ").split())
    everyone = [c for c in results["scorecards"] if c["owner_type"] == "employee"]
    total = sum(c["bonus"] for c in everyone if c["bonus"] is not None)  # leavers' pay too
    people = [c for c in everyone if c.get("employment") in (None, "employed")]
    assert fmt.money(total).replace("\xa0", " ") in text
    cards = [" ".join(c.text_content().split()) for c in doc.xpath('//div[@class="card"]')]
    assert any(c.endswith(f" {len(people)}") for c in cards), cards
    by_name = {c["name"]: c for c in people}
    employee_rows = rows(doc, "index-people")
    assert len(employee_rows) == len(people)
    for cells in employee_rows:
        card = by_name[cells[0].text_content().strip()]
        values = [c.text_content().replace("\xa0", " ").strip() for c in cells]
        assert values[2] == fmt.percent(card["month"]["score"], 1).replace("\xa0", " ")
        assert values[3] == fmt.percent(card["ytd"]["score"], 1).replace("\xa0", " ")
        assert values[5] == (card["band"] or "—")
        assert values[6] == fmt.money(card["bonus"]).replace("\xa0", " ")
        assert card["ytd"]["status"] in cells[4].xpath(".//span")[0].get("class")
    links = [a.get("href") for a in doc.xpath("//a[@href]")]
    for card in people:
        assert f"employees/{card['owner']}.html" in links
        assert f"employees/{card['owner']}.pdf" in links
    dept_links = [a.get("href") for row in rows(doc, "index-depts") for a in row[-1].xpath("a")]
    assert len(dept_links) == 2 * len(rows(doc, "index-depts"))
    assert "company.html" in links and "company.pdf" in links
    for href in links:  # every link points at a file the build wrote
        if not href.startswith(("http", "#")):
            assert (run / href).is_file(), href


def test_html_only_build_links_no_pdf(tmp_path):
    run = api.build(SAMPLES / "acme.xlsx", out=tmp_path, formats=("html",), workers=1).run_dir
    links = lxml.html.parse(str(run / "index.html")).getroot().xpath("//a/@href")
    assert not [h for h in links if h.endswith(".pdf")]
    assert all((run / h).is_file() for h in links)
