"""Starting in a real browser (Playwright, the system Chromium) against a real `kpireport serve`:
the blank template downloaded in the page's language, filled in, "Lay out my Actuals sheet",
the laid-out version downloaded and filled, uploaded again as a new version of the same
workbook; a sample added and built; every page names the workbook as the user did.

Screenshots go to $KPIREPORT_SCREENSHOTS (default: the test's tmp folder) as start-NN-page.png.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.test_web_browser import chromium, playwright, serving

GENERATED = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}|\.kpireport-web/books/[^/ ]+/v\d")


@pytest.fixture
def app(tmp_path):
    """`kpireport serve FOLDER` on a free loopback port: (base URL, folder)."""
    folder = tmp_path / "month"
    folder.mkdir()
    with serving(folder, {**os.environ, "KPIREPORT_SERVE_WORKERS": "2"}) as base:
        yield base, folder


def fill(path: Path, sheet: str, rows: list[dict]) -> None:
    """Type ``rows`` under the header of ``sheet``, as a person would in Excel."""
    book = load_workbook(path)
    ws = book[sheet]
    header = [c.value for c in ws[1]]
    first = next((r for r in range(2, ws.max_row + 2)
                  if all(ws.cell(r, c).value in (None, "") for c in (1, 2))), 2)
    for offset, row in enumerate(rows):
        for column, value in row.items():
            ws.cell(first + offset, header.index(column) + 1, value)
    book.save(path)


def set_setting(path: Path, name: str, value: object) -> None:
    book = load_workbook(path)
    for row in book["Settings"].iter_rows(min_row=2):
        if row[0].value == name:
            row[1].value = value
    book.save(path)


def test_start_in_the_browser_from_the_blank_template(app, tmp_path):
    base, folder = app
    shots = Path(os.environ.get("KPIREPORT_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    with playwright()() as p:
        browser = p.chromium.launch(executable_path=chromium())
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                accept_downloads=True)

        def shot(name: str) -> None:
            page.screenshot(path=shots / f"start-{next(counter):02d}-{name}.png",
                            full_page=True)

        # a Vietnamese page: the template's texts in Vietnamese, VND, 2026
        page.goto(base + "/")
        assert page.locator("html").get_attribute("lang") == "vi"
        assert "kpireport init" not in page.content()
        assert page.locator("select[name=locale]").input_value() == "vi_VN"
        assert page.locator("select[name=currency]").input_value() == "VND"
        shot("home-vi")
        page.fill("input[name=year]", "2026")
        with page.expect_download() as download:
            page.click("[data-template] button[type=submit]")
        assert download.value.suggested_filename == "kpi-template-2026-vi_VN.xlsx"
        blank = tmp_path / "bang-kpi.xlsx"
        download.value.save_as(blank)
        book = load_workbook(blank)
        assert book["README"]["A1"].value == "Sổ tính kpireport — cách điền"
        readme = [c.value or "" for c in book["README"]["A"]]
        assert min(i for i, t in enumerate(readme) if "kpireport serve" in t) < \
            min(i for i, t in enumerate(readme) if "kpireport prepare" in t)
        settings = {r[0].value: r[1].value for r in book["Settings"].iter_rows(min_row=2)}
        assert (settings["locale"], settings["currency"]) == ("vi_VN", "VND")

        # an English page chooses its own locale and currency for the same template
        english = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US",
                                   accept_downloads=True)
        english.goto(base + "/")
        english.select_option("select[name=locale]", "en_GB")
        english.select_option("select[name=currency]", "EUR")
        with english.expect_download() as download:
            english.click("text=Download the blank template")
        download.value.save_as(tmp_path / "en-template.xlsx")
        other = load_workbook(tmp_path / "en-template.xlsx")
        assert other["README"]["A1"].value == "kpireport workbook — how to fill it in"
        settings = {r[0].value: r[1].value for r in other["Settings"].iter_rows(min_row=2)}
        assert (settings["locale"], settings["currency"]) == ("en_GB", "EUR")
        english.close()

        # HR fills in who is measured on what, but no Actuals rows yet
        team = tmp_path / "team.xlsx"
        blank.rename(team)
        set_setting(team, "organization", "Công ty Mẫu")
        set_setting(team, "report_period", "2026-02")
        fill(team, "People", [
            {"employee_id": "NV01", "name": "An", "department": "Kinh doanh",
             "email": "an@example.com", "base_salary": 240_000_000, "target_bonus_pct": 0.1},
            {"employee_id": "NV02", "name": "Bình", "department": "Kinh doanh",
             "email": "binh@example.com", "manager_id": "NV01", "base_salary": 180_000_000,
             "target_bonus_pct": 0.1}])
        fill(team, "KPIs", [{"kpi_id": "DS", "kpi": "Doanh số", "unit": "currency",
                             "direction": "higher", "aggregation": "sum"}])
        fill(team, "Scorecards", [{"owner": "NV01", "kpi_id": "DS", "weight": 1,
                                   "target": 100_000_000},
                                  {"owner": "NV02", "kpi_id": "DS", "weight": 1,
                                   "target": 80_000_000}])
        fill(team, "Bands", [{"band": "Chưa đạt", "min_score": 0, "bonus_payout": 0},
                             {"band": "Đạt", "min_score": 0.9, "bonus_payout": 1}])
        page.set_input_files("input[name=workbook]", str(team))
        page.click("form.upload button[type=submit]")
        page.wait_for_url(re.compile(r"/books/team\.xlsx\?version=1$"))
        assert page.title().startswith("Kiểm tra team.xlsx")
        shot("check-before-prepare")

        # "Lay out my Actuals sheet": a new version with a row per scorecard line
        page.click("[data-prepare] button")
        page.wait_for_url(re.compile(r"/books/team\.xlsx\?version=2&prepared=\d+-\d+$"))
        assert page.locator("[data-prepared]").count() == 1
        assert [r.get_attribute("data-version-row") for r in
                page.locator("[data-version-row]").all()] == ["2", "1"]
        shot("check-after-prepare")
        with page.expect_download() as download:
            page.click("[data-download-version]")
        assert download.value.suggested_filename == "team.xlsx"
        laid_out = tmp_path / "download" / "team.xlsx"
        download.value.save_as(laid_out)
        actuals = load_workbook(laid_out)["Actuals"]
        header = [str(c.value)[:7] for c in actuals[1]]
        rows = {(actuals.cell(r, 1).value, actuals.cell(r, 2).value): r
                for r in range(2, actuals.max_row + 1) if actuals.cell(r, 1).value}
        assert set(rows) == {("NV01", "DS"), ("NV02", "DS")}
        book = load_workbook(laid_out)
        for (owner, _), row in rows.items():
            for month, value in (("2026-01", 90e6), ("2026-02", 105e6)):
                book["Actuals"].cell(row, header.index(month) + 1,
                                     value if owner == "NV01" else value * 0.8)
        book.save(laid_out)

        # the filled copy, uploaded under the same name: version 3 of the same workbook
        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(laid_out))
        page.click("form.upload button[type=submit]")
        page.wait_for_url(re.compile(r"/books/team\.xlsx\?version=3$"))
        page.wait_for_selector(".verdict.good")
        shot("check-version-3")
        page.goto(base + "/")
        assert page.locator("tr[data-book]").count() == 1
        assert page.locator("[data-versions]").get_attribute("data-versions") == "3"
        shot("home-one-workbook-three-versions")

        # built: the run names team.xlsx and its version; no generated name anywhere
        page.goto(base + "/books/team.xlsx")
        page.click(".actions button.primary")
        page.wait_for_url(re.compile(r"/runs/2026-02$"), timeout=240_000)
        assert page.locator("[data-run-source]").inner_text() == "team.xlsx · phiên bản 3"
        assert not GENERATED.search(page.locator("main").inner_text())
        shot("run")
        report = (folder / "reports" / "2026-02" / "employees" / "NV01.html").read_text()
        assert "team.xlsx" in report and not GENERATED.search(report)

        # a sample to explore, without a file dialog
        page.goto(base + "/")
        with page.expect_download() as download:
            page.click("a[href='/samples/acme.xlsx']")
        download.value.save_as(tmp_path / "acme-sample.xlsx")
        assert "Actuals" in load_workbook(tmp_path / "acme-sample.xlsx").sheetnames
        page.click("form[action='/samples/onlinecrm'] button")
        page.wait_for_url(re.compile(r"/books/onlinecrm\.xlsx\?version=1$"))
        page.wait_for_selector(".verdict.good")
        shot("sample-added")
        browser.close()
    assert not list(folder.glob("*.xlsx"))  # the folder's own files are left alone
