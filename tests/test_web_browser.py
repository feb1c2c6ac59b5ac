"""The month in a real browser (Playwright driving the system Chromium) against a real
`kpireport serve` and a real SMTP server on loopback.

Screenshots of every page are written to $KPIREPORT_SCREENSHOTS (default: the test's tmp
folder) as NN-page.png, for a person to look at.
"""

from __future__ import annotations

import contextlib
import csv
import email
import email.policy
import io
import json
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
from openpyxl import load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import PatternFill

from tests.conftest import REQUIRE_TOOLS, Handler, need_tool
from tests.test_web import broken_acme, free_port

CHROMIUM = "/usr/bin/chromium"


def parse_mail(content: bytes):
    return email.message_from_bytes(content, policy=email.policy.default)


def attachment(message) -> bytes:
    return next(p.get_content() for p in message.iter_attachments()
                if p.get_content_type() == "application/pdf")


def opens(pdf: bytes, password: str) -> bool:
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(pdf), password=password):
            return True
    except pikepdf.PasswordError:
        return False


def pdf_text(pdf: bytes, password: str) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    reader.decrypt(password)
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


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


@contextlib.contextmanager
def serving(folder: Path, env: dict):
    """`kpireport serve FOLDER` on a free loopback port with ``env`` (no token): its base
    URL once it answers; stopped with Ctrl-C afterwards."""
    port = free_port()
    env = dict(env)
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
    try:
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def server(tmp_path, mailbox):
    _, smtp_port = mailbox
    folder = tmp_path / "month"
    folder.mkdir()
    env = {**os.environ, "KPIREPORT_SMTP_HOST": "127.0.0.1",
           "KPIREPORT_SMTP_PORT": str(smtp_port), "KPIREPORT_SMTP_SECURITY": "none",
           "KPIREPORT_SMTP_FROM": "hr@acme.example", "KPIREPORT_SMTP_USER": "",
           "KPIREPORT_SMTP_PASSWORD": "pw-never-shown-5150", "KPIREPORT_SERVE_WORKERS": "2"}
    with serving(folder, env) as base:
        yield base, folder


def test_the_whole_month_in_a_browser(server, mailbox, tmp_path):
    base, folder = server
    handler, _ = mailbox
    shots = Path(os.environ.get("KPIREPORT_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    broken = broken_acme(tmp_path / "acme-march.xlsx")
    fixed = tmp_path / "fixed" / "acme-march.xlsx"  # the marked copy, fixed by hand
    fixed.parent.mkdir()
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
        page.wait_for_url(re.compile(r"/books/acme-march\.xlsx\?version=1$"))
        assert page.title() == "Check acme-march.xlsx · kpireport"  # the name it was given
        row = page.locator("table.issues tr.error").first
        cells = row.locator("td").all_inner_texts()
        assert cells[:3] == ["error", "Scorecards", "C2"] and "forty" in cells[3]
        assert page.locator("text=Build the reports").count() == 0
        with page.expect_download() as download:
            page.click("text=Download the workbook with every issue marked")
        assert download.value.suggested_filename.endswith(".checked.xlsx")
        shot("check-with-an-error")
        # the person fixes the marked cell in the marked copy and keeps a note of their own
        download.value.save_as(tmp_path / "marked.xlsx")
        marked = load_workbook(tmp_path / "marked.xlsx")
        assert "Issues" in marked.sheetnames
        assert marked["Scorecards"]["C2"].fill.fgColor.rgb == "FFFFC7CE"
        marked["Scorecards"]["C2"] = 0.4
        marked["People"]["B2"].comment = Comment("Dana's own reminder", "Dana")
        marked["People"]["B3"].fill = PatternFill("solid", fgColor="FF00B0F0")
        marked.save(fixed)

        # a file that is not a workbook: the one line of `kpireport check`
        notes = tmp_path / "notes.xlsx"
        notes.write_text("owner,kpi\n")
        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(notes))
        page.click("text=Upload and check")
        assert page.locator(".oneline").inner_text().startswith(
            "Error: notes.xlsx: this is a text file")
        shot("not-a-workbook")

        # the fixed marked copy: kpireport's marks come off, the person's own stay → ready
        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(fixed))
        page.click("text=Upload and check")
        page.wait_for_selector("text=Ready to build")
        assert "marks came off 1 cell(s)" in page.locator("[data-unmarked]").inner_text()
        assert page.locator("table.issues td", has_text="Issues").count() == 0
        assert page.url.endswith("/books/acme-march.xlsx?version=2&unmarked=1")
        assert page.locator("[data-version-row]").count() == 2  # one workbook, two versions
        stored = load_workbook(next(folder.glob(".kpireport-web/books/*/v2/acme-march.xlsx")))
        assert "Issues" not in stored.sheetnames
        assert stored["Scorecards"]["C2"].fill.fill_type is None
        assert stored["Scorecards"]["C2"].comment is None
        assert stored["People"]["B2"].comment.text.startswith("Dana's own reminder")
        assert stored["People"]["B3"].fill.fgColor.rgb == "FF00B0F0"
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
        assert page.locator("[data-run-source]").inner_text() == "acme-march.xlsx · version 2"
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

        # PDF passwords: nobody has theirs yet, so the send is refused until they are handed out
        pending = page.locator("[data-passwords-pending]")
        assert "cannot open their reports yet" in pending.inner_text()
        assert "Marcus Chen" in pending.inner_text()
        assert page.locator("button:has-text('Send the reports')").is_disabled()
        refused = page.request.post(base + "/runs/2026-03/send", form={
            "csrf": page.locator("input[name=csrf]").first.get_attribute("value"),
            "confirm": "yes"})
        job_id = refused.url.rsplit("job=", 1)[-1]
        for _ in range(100):
            refused_job = page.request.get(f"{base}/jobs/{job_id}.json").json()
            if refused_job["state"] != "running":
                break
            time.sleep(0.1)
        assert refused_job["state"] == "failed" and "password" in refused_job["message"]
        assert handler.messages == []

        # a test send: its protected copies open with the test password the page shows
        page.goto(base + "/runs/2026-03/deliver")
        page.fill("input[name=test_to]", "me@acme.example")
        page.click("text=Send the test")
        page.wait_for_selector("[data-job-status]:has-text('Test send done')", timeout=120_000)
        page.wait_for_selector("[data-test-password]:not([hidden])")
        test_password = page.locator("[data-test-password-value]").inner_text().strip()
        assert len(test_password) >= 8
        tests = list(handler.messages)
        assert tests and all(rcpts == ["me@acme.example"] for rcpts, _ in tests)
        assert all(b"[TEST]" in content for _, content in tests)
        assert page.locator("tbody[data-rows] .badge.sent").count() == 0  # not counted
        marcus = next(m for m in (parse_mail(c) for _, c in tests)
                      if "Marcus Chen" in m["Subject"])
        assert "test password" in marcus.get_body(("plain",)).get_content()
        # every test message says whose copy it is, in its subject and its first line
        e002 = [m for m in (parse_mail(c) for _, c in tests)
                if m["Subject"].startswith("[TEST] Performance review: Marcus Chen")]
        assert len(e002) == 2 and len({m["Subject"] for m in e002}) == 2
        assert {m.get_body(("plain",)).get_content().splitlines()[0] for m in e002} == {
            "Test copy of the message to marcus.chen@acme.example.",
            "Test copy of the message to dana.whitfield@acme.example."}
        assert opens(attachment(marcus), test_password)
        assert not opens(attachment(marcus), "not-the-password")
        shot("deliver-after-test")

        # hand the passwords out once, as CSV (the same as `kpireport passwords`)
        with page.expect_download() as download:
            page.click("text=/Download the \\d+ new password/")
        assert download.value.suggested_filename == "pdf-passwords-2026-03.csv"
        handed = list(csv.DictReader(io.StringIO(
            Path(download.value.path()).read_text(encoding="utf-8"))))
        assert {"Marcus Chen", "Dana Whitfield"} <= {r["name"] for r in handed}
        page.wait_for_selector("[data-passwords-ready]")  # the page reloads after the download
        assert page.locator("button:has-text('Send the reports')").is_enabled()
        shot("deliver-passwords-handed-out")

        # a deliberate send: what goes to whom, then a confirmation
        page.click("text=Send the reports")
        page.wait_for_selector("[data-send-summary]")
        summary = page.locator("[data-send-summary] tbody tr").all_inner_texts()
        employee_row = next(r for r in summary if r.startswith("employee"))
        assert "yes: bonus and salary" in employee_row and "protected" in employee_row
        planned = int(page.locator("[data-send-total] b").first.inner_text())
        shot("confirm-send")
        page.click("text=/Yes, send \\d+ message/")
        # (starts with: "Test send done" of the test above contains "send done")
        page.wait_for_function("() => (document.querySelector('[data-job-status]') || {})"
                               ".textContent?.startsWith('Send done')", timeout=180_000)
        page.wait_for_selector("tbody[data-rows] .badge.sent")
        states = page.locator("tbody[data-rows] td:nth-child(4)").all_inner_texts()
        assert states and set(states) == {"sent"}, states
        real = handler.messages[len(tests):]
        assert len(states) == sum(len(rcpts) for rcpts, _ in real)
        assert planned == len(real)  # the summary said how many messages
        page.wait_for_selector("[data-send-state=nothing-left]")  # the page shows the new state
        assert page.locator("[data-send-state=nothing-left]").is_disabled()
        assert page.locator("[data-run-sent]").count() == 1
        marcus_password = next(r["password"] for r in handed if r["name"] == "Marcus Chen")
        to_marcus = next(parse_mail(c) for r, c in real if r == ["marcus.chen@acme.example"])
        assert opens(attachment(to_marcus), marcus_password)
        # the review names the workbook as it was uploaded, never the stored copy
        footer = pdf_text(attachment(to_marcus), marcus_password)
        assert "Generated by kpireport from acme-march.xlsx" in footer
        assert not re.search(r"acme-march-\d{8}|v\d+/acme|kpireport-web",
                             footer + to_marcus.as_string())
        shot("deliver-sent")
        page.goto(base + "/runs/2026-03")
        assert page.locator("[data-nothing-left]").count() == 1
        assert page.locator("text=Approve and send →").count() == 0
        departments = page.locator(".reportlist li.department").count()
        assert departments > 0
        stat = page.locator(".stat", has=page.locator(".label", has_text="departments"))
        assert stat.locator(".value").inner_text() == str(departments)
        shot("run-sent")

        # a correction after the send: the build is refused in red, says what would change,
        # and "Reopen and rebuild" (name and reason, audited) builds it as `build --reopen`
        corrected = tmp_path / "corrected" / "acme-march.xlsx"
        corrected.parent.mkdir()
        book = load_workbook(fixed)
        book["Actuals"]["N4"] = 45000  # E002 REV, 2026-03 (was 41528.96)
        book.save(corrected)
        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(corrected))
        page.click("text=Upload and check")
        page.wait_for_selector("text=Ready to build")
        page.click("text=Build the reports")
        failure = page.locator(".job.failed [role=alert]")
        failure.wait_for(timeout=240_000)
        assert "already sent" in failure.inner_text()
        assert page.locator("progress").count() == 0  # no full bar over a failure
        assert page.locator(".job.failed .badge.error").count() == 1
        would = page.locator("pre.changes").inner_text()
        assert "Actuals!N4" in would and "41528.96" in would and "45000" in would
        assert page.locator("text=Back to the workbook").count() == 1
        assert "--reopen --by NAME --note WHY" in page.locator(".cli pre").inner_text()
        shot("build-refused-sent-month")
        page.fill("form.reopen input[name=by]", "Dana Whitfield")
        page.fill("form.reopen input[name=note]", "March revenue of E002 corrected")
        page.click("form.reopen button:has-text('Reopen and rebuild')")
        page.wait_for_url(re.compile(r"/runs/2026-03$"), timeout=240_000)
        trail = [json.loads(line) for line in
                 (folder / "reports" / "2026-03" / "audit.jsonl").read_text().splitlines()]
        reopen = [r for r in trail if r["action"] == "reopen"]
        assert len(reopen) == 1 and reopen[0]["actor"] == "Dana Whitfield"
        assert reopen[0]["reason"] == "March revenue of E002 corrected"
        shot("run-after-reopen")
        page.click("text=Approve and send →")
        page.fill("input[name=by]", "Dana Whitfield")
        page.click("text=Approve these reports")
        page.wait_for_selector(".badge.ok")
        before = len(handler.messages)
        page.click("text=Send the reports")
        page.click("text=/Yes, send \\d+ message/")
        page.wait_for_function("() => (document.querySelector('[data-job-status]') || {})"
                               ".textContent?.startsWith('Send done')", timeout=180_000)
        again = [parse_mail(c) for _, c in handler.messages[before:]]
        assert again and all(m["Subject"].startswith("Correction:") for m in again)
        page.wait_for_selector("[data-send-state=nothing-left]", timeout=60_000)
        shot("deliver-correction-sent")

        # a stray link in FOLDER (a workbook and a run folder pointing outside it): listed as
        # unavailable with the reason; every other page and run keeps working
        elsewhere = tmp_path / "elsewhere"
        shutil.copytree(folder / "reports" / "2026-03", elsewhere / "2026-02",
                        ignore=shutil.ignore_patterns("*.pdf"))
        shutil.copy(corrected, elsewhere / "payroll-link.xlsx")
        (folder / "reports" / "2026-02").symlink_to(elsewhere / "2026-02")
        (folder / "payroll-link.xlsx").symlink_to(elsewhere / "payroll-link.xlsx")
        response = page.goto(base + "/")
        assert response.status == 200
        unavailable = page.locator("tr[data-unavailable]").all_inner_texts()
        assert len(unavailable) == 2, unavailable
        assert all("outside the working folder" in row for row in unavailable)
        assert any("payroll-link.xlsx" in row for row in unavailable)
        assert any("2026-02" in row for row in unavailable)
        assert page.locator("a[href='/runs/2026-03']").count() == 1
        shot("home-with-stray-links")
        assert page.goto(base + "/runs/2026-02").status == 404
        assert page.goto(base + "/books/payroll-link.xlsx").status == 404
        assert page.goto(base + "/runs/2026-03").status == 200
        assert page.goto(base + "/runs/2026-03/deliver").status == 200

        # the same pages in Vietnamese for a Vietnamese browser (the run's locale is English)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        page.goto(base + "/")
        assert page.locator("html").get_attribute("lang") == "vi"
        assert page.locator("h1").inner_text() == "Đánh giá tháng này"
        shot("home-vi")
        browser.close()
    assert scripts_ran == []
    assert sorted(p.name for p in shots.iterdir())[0] == "01-home.png"
