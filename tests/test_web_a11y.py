"""Every page of `kpireport serve`, for a Vietnamese workbook, in a real browser: axe-core finds
no violation on any app page nor on one report of each kind, and no English word is left on a
page about a Vietnamese workbook (names the user typed, codes and proper nouns aside).

axe-core comes from npm into .cache/axe (``make test-deps``); without it (or Chromium) these
tests skip, and fail under KPIREPORT_REQUIRE_TOOLS=1. Axe's findings per page are written to
$KPIREPORT_AXE_LOG when it is set (a JSON list), for the before/after numbers of a change.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.conftest import REQUIRE_TOOLS
from tests.test_web import SAMPLES
from tests.test_web_browser import chromium, mailbox, playwright, server  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 30_000

# What a Vietnamese page may show in Latin letters without diacritics: codes, units, the
# program's and formats' names, and words Vietnamese writes the same way.
ALLOWED = {
    "kpireport", "kpi", "kpis", "pdf", "csv", "xlsx", "html", "json", "smtp", "id", "ok",
    "email", "e-mail", "usd", "vnd", "ytd", "yyyy-mm", "excel", "libreoffice", "iso",
    "starttls", "tls", "ssl", "none", "http", "https", "localhost", "test", "bonus",
    "so", "do",  # Vietnamese as well: 'so với' (compared with), 'lý do' (reason)
}


def axe_script() -> str:
    if not AXE.is_file():
        message = f"axe-core is not installed ({AXE}): run `make test-deps`"
        if REQUIRE_TOOLS:
            pytest.fail(f"{message} (required in CI, KPIREPORT_REQUIRE_TOOLS=1)")
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


def axe(page, script: str) -> list[dict]:
    """axe-core's violations on the page as it is now (the run is bounded by a timeout)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=script)
    found = page.evaluate("""(ms) => Promise.race([
        axe.run(document, {resultTypes: ['violations']}),
        new Promise((_, reject) => setTimeout(() => reject(new Error('axe timed out')), ms))])
      .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
             nodes: v.nodes.map(n => n.target.join(' ') + ' → ' + n.failureSummary)})))""",
                          TIMEOUT_MS)
    return found


def vietnamese_book(path: Path, *, broken: bool) -> Path:
    """The acme sample as a Vietnamese workbook (locale vi_VN, VND), with a few slips."""
    book = load_workbook(SAMPLES / "acme.xlsx")
    settings = book["Settings"]
    for row in settings.iter_rows(min_row=2):
        if row[0].value == "locale":
            row[1].value = "vi_VN"
        if row[0].value == "currency":
            row[1].value = "VND"
    if broken:
        book["Scorecards"]["C2"] = "bốn mươi"  # an error: words for a weight
        book["People"]["D3"] = "thu.ha@"  # an error: not an e-mail address
        book["Settings"].append(["mau_sac", "xanh", ""])  # a warning: an unknown setting
    book.save(path)
    return path


def user_words(path: Path) -> set[str]:
    """Every word of the workbook's data (names, KPIs, bands, sheet and column names, the
    values of Settings): user data shows as typed, in any language. The README sheet and the
    explanations beside the settings are the template's prose, not data."""
    book = load_workbook(path, read_only=True)
    words = {w.lower() for name in book.sheetnames for w in re.findall(r"[A-Za-z]+", name)}
    for sheet in book.worksheets:
        if sheet.title in ("README", "Comments"):
            continue
        for row in sheet.iter_rows(values_only=True):
            data = row[:2] if sheet.title == "Settings" else row
            for value in data:
                if isinstance(value, str):
                    words.update(w.lower() for w in re.findall(r"[A-Za-z]+", value))
    return words


def vietnamese_words() -> set[str]:
    """The Latin-letter words of the Vietnamese catalogs that their English originals do not
    use (Vietnamese spelled without marks: 'cho', 'theo'); a word both use (a setting's value,
    a loanword) is allowed only by name in ALLOWED or as the workbook's data."""
    from babel.messages.pofile import read_po

    words: set[str] = set()
    english: set[str] = set()
    for po in (ROOT / "kpireport" / "locale" / "vi" / "LC_MESSAGES").glob("*.po"):
        with po.open("rb") as handle:
            for message in read_po(handle, locale="vi"):
                for side, texts in ((words, message.string), (english, message.id)):
                    for text in texts if isinstance(texts, tuple) else (texts,):
                        side.update(w.lower() for w in re.findall(r"[A-Za-z]+", text or ""))
    return words - english


def english_left(page, allowed: set[str]) -> list[str]:
    """Words on the page that are plain ASCII letters and not allowed: English left over."""
    text = page.evaluate("() => document.body.innerText + ' ' + document.title + ' ' + "
                         "[...document.querySelectorAll('[title],[aria-label],[placeholder]')]"
                         ".map(e => [e.title, e.getAttribute('aria-label'), e.placeholder]"
                         ".join(' ')).join(' ')")
    # terminal commands, codes, cells, paths and addresses are not prose
    for block in page.locator("pre, code, .code, .cell, .folder").all_inner_texts():
        text = text.replace(block, " ")
    text = re.sub(r"\S+@\S+|\S+\.(xlsx|html|pdf|csv)\b|https?://\S+|/\S+|kpireport [a-z]+",
                  " ", text)
    words = re.findall(r"(?<![\w-])[A-Za-z][A-Za-z'-]*[A-Za-z](?![\w-])", text)
    return sorted({w for w in words if w.lower() not in allowed and not w.isupper()
                   and not re.fullmatch(r"[A-Z]\w*\d\w*", w)})


def test_every_page_is_accessible_and_in_the_workbooks_language(server, mailbox, tmp_path):  # noqa: F811
    base, folder = server
    script = axe_script()
    broken = vietnamese_book(tmp_path / "sach-loi.xlsx", broken=True)
    fixed = vietnamese_book(tmp_path / "kpi-thang.xlsx", broken=False)
    allowed = ALLOWED | user_words(broken) | vietnamese_words()
    results: dict[str, list[dict]] = {}
    english: dict[str, list[str]] = {}
    wrong: list[str] = []  # what else is wrong, reported after the whole walk

    with playwright()() as p:
        browser = p.chromium.launch(executable_path=chromium())
        # bypass_csp: axe is injected as a script, which the pages' policies rightly forbid
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                      bypass_csp=True, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)

        shots = os.environ.get("KPIREPORT_SCREENSHOTS")

        def look(name: str, *, language: bool = True) -> None:
            page.wait_for_load_state("load")
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=Path(shots) / f"a11y-{len(results):02d}-{name}.png",
                                full_page=True)
            results[name] = axe(page, script)
            # colour is never the only signal: every badge says its state in words
            mute = page.locator(".badge").evaluate_all(
                "els => els.filter(e => !e.textContent.trim()).length")
            if mute:
                wrong.append(f"{name}: {mute} badge(s) with colour alone")
            if language:
                english[name] = english_left(page, allowed)

        # the detector finds English where it is: the same page for an English browser
        english_page = browser.new_page(locale="en-US")
        english_page.goto(base + "/")
        assert {"Upload", "workbook"} <= set(english_left(english_page, allowed))
        english_page.close()

        page.goto(base + "/")
        look("home")
        page.goto(base + "/nowhere")
        look("not-found")

        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(broken))
        page.click("form[action='/upload'] button[type=submit]")
        page.wait_for_selector("table.issues")
        look("check-errors")
        # the message never repeats the place its row names in the sheet and cell columns
        for row in page.locator("table.issues tbody tr").all():
            cells = row.locator("td").all_inner_texts()
            if cells[2] and f"{cells[1]}!{cells[2]}" in cells[3]:
                wrong.append(f"the message repeats its place: {cells}")
        severities = set(page.locator("table.issues .badge").all_inner_texts())
        if not severities or severities & {"error", "warning", "info"}:
            wrong.append(f"severities in English: {severities}")

        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(fixed))
        page.click("form[action='/upload'] button[type=submit]")
        page.wait_for_selector("form[action*='/build'] button")
        look("check-ready")
        page.click("form[action*='/build'] button")
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))
        look("job-build")
        # the progress is labelled and its status announced
        if page.locator("progress[data-progress]").count():
            if not page.locator("progress[data-progress]").get_attribute("aria-label"):
                wrong.append("the progress bar has no label")
            if page.locator("[data-status][aria-live=polite][role=status]").count() != 1:
                wrong.append("the job's status is not announced")
        page.wait_for_url(re.compile(r"/runs/\d{4}-\d{2}$"), timeout=240_000)
        run_url = page.url
        look("run")
        kinds = set(page.locator(".reportlist .kind").all_inner_texts())
        if not kinds or kinds & {"employee", "department", "company"}:
            wrong.append(f"report kinds in English: {kinds}")

        page.goto(run_url + "/deliver")
        look("deliver-before")
        page.fill("input[name=by]", "Nguyễn Thu Hà")
        page.click("form[action$='/approve'] button")
        page.wait_for_selector(".badge.ok")
        with page.expect_download():
            page.click("form[action$='/passwords.csv'] button.primary")
        page.wait_for_selector("[data-passwords-ready]")
        look("deliver-approved")
        page.click("button[data-send-state=send]")
        page.wait_for_selector("[data-send-summary]")
        look("confirm-send")
        page.click("form:has(input[name=confirm]) button.primary")
        page.wait_for_selector("[data-send-state=nothing-left]", timeout=180_000)
        page.wait_for_selector("tbody[data-rows] .badge.sent")
        look("deliver-sent")
        if page.locator("tbody[data-rows][aria-live]").count() != 1 or \
                page.locator("[data-job-status][aria-live]").count() != 1:
            wrong.append("the delivery table or the send's status is not announced")
        states = set(page.locator("tbody[data-rows] .badge").all_inner_texts())
        if not states or "sent" in states:
            wrong.append(f"delivery states in English: {states}")

        # a correction after the send: the build is refused, in red with words, on its page
        corrected = tmp_path / "corrected" / fixed.name
        corrected.parent.mkdir()
        book = load_workbook(fixed)
        book["Actuals"]["N4"] = 45000
        book.save(corrected)
        page.goto(base + "/")
        page.set_input_files("input[name=workbook]", str(corrected))
        page.click("form[action='/upload'] button[type=submit]")
        page.click("form[action*='/build'] button")
        page.locator(".job.failed [role=alert]").wait_for(timeout=240_000)
        look("job-refused")
        if page.locator(".job.failed .badge.error").count() != 1:
            wrong.append("the failure has no red badge")

        # one report of each kind, as the preview shows it (its policy runs no script, so
        # this context bypasses it to run axe)
        run_dir = folder / "reports" / run_url.rsplit("/", 1)[-1]
        for kind, pattern in (("employee", "employees/*.html"),
                              ("department", "departments/*.html"), ("company", "company*.html")):
            report = sorted(run_dir.glob(pattern))[0].relative_to(run_dir).as_posix()
            page.goto(f"{run_url}/files/{report}")
            look(f"report-{kind}", language=False)
        browser.close()

    log = os.environ.get("KPIREPORT_AXE_LOG")
    if log:
        Path(log).write_text(json.dumps({"axe": results, "english": english, "wrong": wrong,
                                         "at": time.strftime("%Y-%m-%dT%H:%M:%S")},
                                        ensure_ascii=False, indent=1), encoding="utf-8")
    assert wrong == []
    assert {name: found for name, found in results.items() if found} == {}
    assert {name: words for name, words in english.items() if words} == {}
