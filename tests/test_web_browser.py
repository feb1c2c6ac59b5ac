"""The month in a real browser (Playwright driving the system Chromium) against a real
`kpireport serve` and a real SMTP server on loopback.

Screenshots of every page are written to $KPIREPORT_SCREENSHOTS (default: the test's tmp
folder) as NN-page.png, for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_TOOLS, Handler, need_tool
from tests.test_web import SAMPLES, broken_acme, free_port

CHROMIUM = "/usr/bin/chromium"


def chromium() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    return need_tool("chromium")  # fails under KPIREPORT_REQUIRE_TOOLS=1, else skips


def playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRE_TOOLS:
            pytest.fail("playwright is required in CI (KPIREPORT_REQUIRE_TOOLS=1): "
                        "pip install -e '.[dev]'")
        pytest.skip("playwright is not installed")
    return sync_playwright


@pytest.fixture
def mailbox():
    from aiosmtpd.controller import Controller

    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def server(tmp_path, mailbox):
    _, smtp_port = mailbox
    folder = tmp_path / "month"
    folder.mkdir()
    port = free_port()
    env = {**os.environ, "KPIREPORT_SMTP_HOST": "127.0.0.1",
           "KPIREPORT_SMTP_PORT": str(smtp_port), "KPIREPORT_SMTP_SECURITY": "none",
           "KPIREPORT_SMTP_FROM": "hr@acme.example", "KPIREPORT_SMTP_USER": "",
           "KPIREPORT_SMTP_PASSWORD": "pw-never-shown-5150", "KPIREPORT_SERVE_WORKERS": "2"}
    env.pop("KPIREPORT_SERVE_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "kpireport", "serve", str(folder),
                                "--port", str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/", timeout=2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield base, folder
    process.send_signal(signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_the_whole_month_in_a_browser(server, mailbox, tmp_path):
    base, folder = server
    handler, _ = mailbox
    shots = Path(os.environ.get("KPIREPORT_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    broken = broken_acme(tmp_path / "acme-march.xlsx")
    fixed = tmp_path / "fixed" / "acme-march.xlsx"
    fixed.parent.mkdir()
    shutil.copy(SAMPLES / "acme.xlsx", fixed)
    counter = iter(range(1, 100))
    scripts_ran = []

    with playwright()() as p:
        browser = p.chromium.launch(executable_path=chromium())
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        page.on("console", lambda m: scripts_ran.append(m.text) if "PWNED" in m.text else None)

        def shot(name: str) -> None:
            page.screenshot(path=shots / f"{next(counter):02d}-{name}.png", full_page=True)

        page.goto(base + "/")
        assert page.locator("h1").inner_text() == "This month's reviews"
        shot("home")

        # a workbook with a mistake: the error row names the cell
        page.set_input_files("input[name=workbook]", str(broken))
        page.click("text=Upload and check")
        page.wait_for_url(re.compile(r"/books/acme-march-\d{8}-\d{6}-[0-9a-f]{6}\.xlsx$"))
        row = page.locator("table.issues tr.error").first
        cells = row.locator("td").all_inner_texts()
        assert cells[:3] == ["error", "Scorecards", "C2"] and "forty" in cells[3]
        assert page.locator("text=Build the reports").count() == 0
        with page.expect_download() as download:
            page.click("text=Download the workbook with every issue marked")
        assert download.value.suggested_filename.endswith(".checked.xlsx")
        shot("check-with-an-error")

        # a file that is not a workbook: the one line of `kpireport check`
        notes = tmp_path / "notes.xlsx"
        notes.write_text("owner,kpi\n")
        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(notes))
        page.click("text=Upload and check")
        assert page.locator(".oneline").inner_text().startswith(
            "Error: notes.xlsx: this is a text file")
        shot("not-a-workbook")

        # the fixed workbook → build with a progress bar → the run page
        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(fixed))
        page.click("text=Upload and check")
        page.wait_for_selector("text=Ready to build")
        shot("check-ready")
        page.click("text=Build the reports")
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))
        page.wait_for_selector("progress[data-progress]")
        page.locator("[data-status]", has_text=re.compile(r"Rendering reports [1-9]")).wait_for(
            timeout=120_000)
        assert int(page.locator("progress").get_attribute("max") or 0) > 1 or \
            page.locator("progress").evaluate("bar => bar.max") > 1
        shot("build-progress")
        page.wait_for_url(re.compile(r"/runs/2026-03$"), timeout=240_000)
        assert "Acme Analytics Inc." in page.locator("h1").inner_text()
        stats = page.locator(".stat .label").all_inner_texts()
        assert "people reviewed" in stats and "bonus in total" in stats
        shot("run")

        # a preview in the page, served with a policy that runs no script
        page.click(".reportlist >> text=Marcus Chen")
        frame = page.frame(name="preview")
        frame.wait_for_url(re.compile(r"/files/employees/.+\.html$"))
        frame.wait_for_selector("h1")
        assert "Marcus Chen" in frame.locator("h1").inner_text()
        assert frame.evaluate("1 + 1") == 2  # (evaluate runs outside the page's CSP)
        shot("run-preview")
        # a report edited to carry a script (the manifest lists it): the preview runs none
        report = folder / "reports" / "2026-03" / "employees" / "E003.html"
        original = report.read_bytes()
        report.write_text("<h1>hostile</h1><script>console.log('PWNED')</script>"
                          "<img src=x onerror=\"console.log('PWNED')\">")
        page.goto(base + "/runs/2026-03/files/employees/E003.html")
        page.wait_for_selector("h1")
        page.wait_for_timeout(300)
        report.write_bytes(original)
        page.go_back()
        pdf_link = page.locator(".reportlist li", has_text="Marcus Chen").locator("a.pdf")
        with page.expect_download() as download:
            pdf_link.click()
        pdf = Path(download.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF")

        # approve → test → send, with the status from the ledger
        page.click("text=Approve and send →")
        page.wait_for_url(re.compile(r"/runs/2026-03/deliver$"))
        assert "pw-never-shown-5150" not in page.content()
        assert page.locator("text=set (not shown)").count() == 1
        shot("deliver-before")
        page.fill("input[name=by]", "Dana Whitfield")
        page.fill("input[name=note]", "Checked against payroll")
        page.click("text=Approve these reports")
        page.wait_for_selector(".badge.ok")
        assert "Dana Whitfield" in page.locator(".card").first.inner_text()

        page.fill("input[name=test_to]", "me@acme.example")
        page.click("text=Send the test")
        page.wait_for_selector("[data-job-status]:has-text('Test send done')", timeout=120_000)
        tests = list(handler.messages)
        assert tests and all(rcpts == ["me@acme.example"] for rcpts, _ in tests)
        assert all(b"[TEST]" in content for _, content in tests)
        assert page.locator("tbody[data-rows] .badge.sent").count() == 0  # not counted
        shot("deliver-after-test")

        page.click("text=Send the reports")
        # (starts with: "Test send done" of the test above contains "send done")
        page.wait_for_function("() => (document.querySelector('[data-job-status]') || {})"
                               ".textContent?.startsWith('Send done')", timeout=180_000)
        page.wait_for_selector("tbody[data-rows] .badge.sent")
        states = page.locator("tbody[data-rows] td:nth-child(4)").all_inner_texts()
        assert states and set(states) == {"sent"}, states
        real = handler.messages[len(tests):]
        assert len(states) == sum(len(rcpts) for rcpts, _ in real)
        shot("deliver-sent")

        # the same pages in Vietnamese for a Vietnamese browser (the run's locale is English)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        page.goto(base + "/")
        assert page.locator("html").get_attribute("lang") == "vi"
        assert page.locator("h1").inner_text() == "Đánh giá tháng này"
        shot("home-vi")
        browser.close()
    assert scripts_ran == []
    assert sorted(p.name for p in shots.iterdir())[0] == "01-home.png"
