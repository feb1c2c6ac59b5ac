"""The managed month end to end: build → diff → approve → test-send → send → reopen, against
a real SMTP server (aiosmtpd) on loopback, with the real command line."""

from __future__ import annotations

import email
import email.policy
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from kpireport.cli.app import main
from kpireport.deliver import messages
from kpireport.month import audit, cycle
from kpireport.month.diff import diff_runs
from tests.conftest import BASE

SENDER = "hr@test.example"


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def smtp_env(port: int) -> dict[str, str]:
    return {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
            "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER,
            "KPIREPORT_SMTP_BACKOFF": "0.01"}


def set_cell(book: Path, sheet: str, cell: str, value) -> None:
    workbook = openpyxl.load_workbook(book)
    workbook[sheet][cell] = value
    workbook.save(book)


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.fixture
def month(make_workbook, tmp_path):
    """A small workbook (Settings without require_approval: the default, yes) built once."""
    book = make_workbook("kpis.xlsx")
    out = tmp_path / "reports"
    built = invoke("build", book, "--out", out, "--format", "pdf", "--workers", "1")
    assert built.exit_code == 0, built.output
    assert "First build of 2026-02" in built.output
    return book, out, out / "2026-02"


def build(book: Path, out: Path, *extra):
    return invoke("build", book, "--out", out, "--format", "pdf", "--workers", "1", *extra)


def test_unapproved_is_refused_approved_is_delivered_rebuild_needs_a_new_approval(
        month, smtp):
    book, out, run = month
    handler, port = smtp()
    env = smtp_env(port)

    refused = invoke("send", run, env=env)
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "is not approved: nothing was sent" \
        in refused.output
    assert handler.messages == []

    approved = invoke("approve", run, "--by", "Lan Tran", "--note", "checked")
    assert approved.exit_code == 0, approved.output
    record = audit.verify(run).records[-1]
    assert record["action"] == "approve" and record["actor"] == "Lan Tran"
    assert record["reason"] == "checked"
    assert record["hashes"]["results.json"] == audit.file_hash(run / "results.json")
    assert record["hashes"]["employees/E2.pdf"] == audit.file_hash(run / "employees/E2.pdf")

    # a change before the send: the approval no longer covers the files
    set_cell(book, "Actuals", "D4", 130)  # Bob, REV, 2026-02: 95 → 130
    rebuilt = build(book, out)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Since the previous build: 1 input changed; 1 bonus changed, +$404.11 in total" \
        in rebuilt.output
    stale = invoke("send", run, env=env)
    assert stale.exit_code == 1 and "changed after Lan Tran approved it" in stale.output
    assert "file(s), e.g. " in stale.output and stale.output.count("\n") == 1
    assert handler.messages == []

    assert invoke("approve", run, "--by", "Lan Tran").exit_code == 0
    sent = invoke("send", run, env=env)
    assert sent.exit_code == 0, sent.output
    recipients = sorted(tuple(r) for r, _ in handler.messages)
    assert recipients == [("alice@x.example",), ("alice@x.example",), ("alice@x.example",),
                          ("bob@x.example", "alice@x.example")]
    for _, raw in handler.messages:
        message = parsed(raw)
        assert not message["Subject"].startswith(("[TEST]", "Correction"))
        assert next(message.iter_attachments()).get_content()[:5] == b"%PDF-"

    state = cycle.status(run)
    assert state["approval"]["state"] == "approved" and state["approval"]["valid"]
    assert state["delivery"]["counts"] == {"sent": 5}
    assert state["audit"]["valid"] and [r["action"] for r in state["audit"]["records"]] == [
        "build", "approve", "build", "approve", "send"]


def test_a_sent_month_is_reopened_and_changed_reports_go_out_as_corrections(month, smtp):
    book, out, run = month
    handler, port = smtp()
    env = smtp_env(port)
    assert invoke("approve", run, "--by", "Lan Tran").exit_code == 0
    assert invoke("send", run, env=env).exit_code == 0
    first = len(handler.messages)
    pdf_before = (run / "employees/E2.pdf").read_bytes()

    unchanged = build(book, out)  # nothing changed: allowed, the approval still holds
    assert unchanged.exit_code == 0, unchanged.output
    set_cell(book, "Actuals", "D4", 130)
    changed = build(book, out)
    assert changed.exit_code == 1
    assert "was already sent, and this build changes it; nothing was written" in changed.output
    assert (run / "employees/E2.pdf").read_bytes() == pdf_before

    assert build(book, out, "--reopen", "--by", "Lan Tran").exit_code == 2  # no --note
    reopened = build(book, out, "--reopen", "--by", "Lan Tran", "--note", "Bob's Feb deals")
    assert reopened.exit_code == 0, reopened.output
    assert [r["action"] for r in audit.verify(run).records][-2:] == ["reopen", "build"]
    assert audit.verify(run).records[-2]["reason"] == "Bob's Feb deals"
    refused = invoke("send", run, env=env)
    assert refused.exit_code == 1 and "changed after" in refused.output
    assert len(handler.messages) == first

    assert invoke("approve", run, "--by", "Lan Tran").exit_code == 0
    resent = invoke("send", run, env=env)
    assert resent.exit_code == 0, resent.output
    corrections = handler.messages[first:]
    subjects = sorted(parsed(raw)["Subject"] for _, raw in corrections)
    # Bob's review, the Sales department and the company changed; Alice's did not
    assert subjects == ["Correction: Company review: Test Co · February 2026",
                        "Correction: Department review: Sales · February 2026",
                        "Correction: Performance review: Bob · February 2026"]
    bob = next(parsed(raw) for r, raw in corrections if r[0] == "bob@x.example")
    text = bob.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert ("This corrects the review sent earlier for February 2026. What changed:\n"
            "- Your bonus changed from $808.22 to $1,212.33.\n"
            "- Your recommended salary changed from $51,500.00 to $52,500.00.\n"
            "- Your band changed from Meets to Exceeds.\n"
            "- Your year-to-date score changed from 97.5% to 115.0%.\n"
            "- Your score for the month changed from 95.0% to 130.0%.\n\n"
            "Attachment: Performance review - Bob - 2026-02.pdf (PDF)") in text
    html = bob.get_body(("html",)).get_content()
    assert "<li>Your bonus changed from $808.22 to $1,212.33.</li>" in html
    again = invoke("send", run, env=env)
    assert again.exit_code == 0 and len(handler.messages) == first + 3


def test_diff_names_the_changed_cell_and_the_bonus_moved(month):
    book, out, run = month
    set_cell(book, "Actuals", "D4", 130)
    set_cell(book, "Settings", "B2", "Test Co Ltd")
    assert build(book, out).exit_code == 0
    document = json.loads(invoke("diff", run, "--format", "json").output)
    assert [(c["sheet"], c["cell"], c["key"], c["field"], c["old"], c["new"])
            for c in document["inputs"]] == [
        ("Settings", "B2", "organization", "value", "Test Co", "Test Co Ltd"),
        ("Actuals", "D4", "E2 · REV", "2026-02", 95, 130)]
    top = document["outcomes"][0]
    assert (top["owner"], top["changes"]["bonus"]) == ("E2", {"old": 808.22, "new": 1212.33})
    assert document["bonus_total"]["change"] == pytest.approx(404.11)
    text = invoke("diff", run).output
    assert "Actuals!D4  E2 · REV · 2026-02: 95 → 130" in text
    assert "Bob (E2): bonus $808.22 → $1,212.33 (+$404.11)" in text
    assert "Total bonus cost:" in text and "(+$404.11)" in text
    # two run folders (or results.json files) compare the same way
    import shutil

    old = out.parent / "old"
    shutil.copytree(run / cycle.PREVIOUS, old)
    assert diff_runs(old / "results.json", run)["inputs"] == document["inputs"]
    # people added or gone
    workbook = openpyxl.load_workbook(book)
    workbook["People"].append(["E3", "Chi", "Sales", "chi@x.example", "E1", 40000, 0.1])
    workbook["Scorecards"].append(["E3", "REV", 1.0, 100, None, None])
    workbook["Actuals"].append(["E3", "REV", 50, 60])
    workbook.save(book)
    assert build(book, out).exit_code == 0
    added = diff_runs(run / cycle.PREVIOUS, run)
    assert ("People", "A4", "E3", "added") in [(c["sheet"], c["cell"], c["key"], c["change"])
                                               for c in added["inputs"]]
    assert any(o["owner"] == "E3" and o["change"] == "added" for o in added["outcomes"])


def test_test_send_reaches_only_the_test_address_and_leaves_the_ledger_unsent(month, smtp):
    _, _, run = month
    handler, port = smtp()
    env = smtp_env(port)
    tested = invoke("send", run, "--test-to", "me@test.example", env=env)
    assert tested.exit_code == 0, tested.output
    assert len(handler.messages) == 4
    assert all(rcpts == ["me@test.example"] for rcpts, _ in handler.messages)
    for _, raw in handler.messages:
        message = parsed(raw)
        assert message["Subject"].startswith("[TEST] ") and message["Cc"] is None
        assert message["To"] == "me@test.example"
        assert next(message.iter_attachments()).get_content()[:5] == b"%PDF-"
    state = cycle.status(run)
    assert state["delivery"]["counts"] == {"not sent": 5}
    assert not state["sent"]
    assert audit.verify(run).records[-1]["action"] == "test-send"

    only = invoke("send", run, "--test-to", "me@test.example", "--only", "E2", env=env)
    assert only.exit_code == 0, only.output
    assert len(handler.messages) == 5
    assert parsed(handler.messages[-1][1])["Subject"] == \
        "[TEST] Performance review: Bob · February 2026 (copy for bob@x.example, " \
        "alice@x.example)"  # whose copy it is
    assert invoke("send", run, "--test-to", "me@test.example", "--only", "E9",
                  env=env).exit_code == 1
    assert invoke("send", run, env=env).exit_code == 1  # still not approved
    assert len(handler.messages) == 5


def test_an_edited_or_removed_audit_line_is_detected_and_stops_send(month, smtp):
    _, _, run = month
    handler, port = smtp()
    assert invoke("approve", run, "--by", "Lan Tran", "--note", "ok").exit_code == 0
    assert invoke("approve", run, "--by", "Minh Do", "--note", "ok too").exit_code == 0
    path = run / audit.AUDIT_FILE
    good = path.read_text()
    path.write_text(good.replace('"actor":"Lan Tran"', '"actor":"Someone Else"'))
    result = invoke("status", run)
    assert result.exit_code == 1
    assert "BROKEN at line 2: line 2 was edited after it was written" in result.output
    send = invoke("send", run, env=smtp_env(port))
    assert send.exit_code == 1 and "audit.jsonl is broken at line 2" in send.output
    assert handler.messages == []
    assert invoke("approve", run, "--by", "X").exit_code == 1

    lines = good.splitlines(keepends=True)
    path.write_text(lines[0] + lines[2])  # the middle line removed
    assert audit.verify(run).broken_at == 2
    path.write_text("".join(lines[:2]))  # the last line removed
    trail = audit.verify(run)
    assert trail.broken_at == 3 and "lines were removed" in trail.problem
    path.write_text(good)
    assert audit.verify(run).valid
    state = json.loads(invoke("status", run, "--format", "json").output)
    assert state["audit"] == {**state["audit"], "valid": True, "broken_at": None, "lines": 3}


def test_bad_input_is_one_clear_line(month, tmp_path):
    _, _, run = month
    for args, text in [
            (("approve", tmp_path, "--by", "Lan"), "is not a run folder (no manifest.json)"),
            (("approve", tmp_path / "nope", "--by", "Lan"), "is not a folder"),
            (("approve", run, "--by", "  "), "--by (the approver) is blank"),
            (("approve", run, "--revoke", "--by", "Lan"), "--note (why the approval is "
                                                          "withdrawn) is blank"),
            (("approve", run, "--revoke", "--by", "Lan", "--note", "x"), "no approval to "
                                                                         "revoke"),
            (("status", tmp_path), "is not a run folder"),
            (("diff", run), "has no previous build")]:
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.count("\n") == 1 and text in result.output, result.output
    assert invoke("approve", run, "--by", "Lan").exit_code == 0
    revoked = invoke("approve", run, "--revoke", "--by", "Lan", "--note", "wrong month")
    assert revoked.exit_code == 0
    assert cycle.approval(run)["state"] == "revoked"
    refused = invoke("send", run, env={"KPIREPORT_SMTP_FROM": SENDER,
                                       "KPIREPORT_SMTP_HOST": "127.0.0.1"})
    assert refused.exit_code == 1 and "the approval was revoked by Lan" in refused.output


def test_two_sends_at_once_one_is_refused_nothing_twice(month, smtp):
    from kpireport.report.outputs import run_lock

    _, _, run = month
    handler, port = smtp()
    assert invoke("approve", run, "--by", "Lan").exit_code == 0
    with run_lock(run):  # another send holds the run folder
        proc = subprocess.run([sys.executable, "-m", "kpireport", "send", str(run)],
                              capture_output=True, text=True,
                              env={**os.environ, **smtp_env(port)}, timeout=120)
    assert proc.returncode == 1 and "in use by another kpireport build or send" in proc.stderr
    assert handler.messages == []
    assert invoke("send", run, env=smtp_env(port)).exit_code == 0
    assert invoke("send", run, env=smtp_env(port)).exit_code == 0
    assert len(handler.messages) == 4


def _append_many(run_dir: str, who: str) -> None:
    for i in range(40):
        audit.append(Path(run_dir), "test-send", actor=who, reason=str(i))


def test_concurrent_appends_keep_one_chain(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(tmp_path), name))
               for name in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    trail = audit.verify(tmp_path)
    assert trail.valid and len(trail.records) == 120
    assert [r["n"] for r in trail.records] == list(range(1, 121))


def test_the_monthly_job_sends_only_an_approved_run(tmp_path, smtp):
    from tests.conftest import write_xlsx

    handler, port = smtp()
    book = write_xlsx(tmp_path / "kpis.xlsx", BASE)
    out = tmp_path / "reports"
    env = {**os.environ, **smtp_env(port)}
    job = [sys.executable, "-m", "kpireport", "run", str(book), "--out", str(out), "--send",
           "--workers", "1"]
    first = subprocess.run(job, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == cycle.EXIT_NOT_APPROVED == 4, first.stderr
    assert "awaits approval (not approved)" in first.stderr
    assert f"kpireport approve {out / '2026-02'} --by NAME" in first.stderr
    assert handler.messages == [] and (out / "2026-02" / "company.pdf").is_file()
    assert invoke("approve", out / "2026-02", "--by", "Lan").exit_code == 0
    second = subprocess.run(job, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert len(handler.messages) == 4
    third = subprocess.run(job, capture_output=True, text=True, env=env, timeout=300)
    assert third.returncode == 0 and len(handler.messages) == 4  # nothing twice


def test_require_approval_no_sends_without_approval(make_workbook, tmp_path, smtp):
    handler, port = smtp()
    settings = BASE["Settings"] + [["require_approval", "no"]]
    book = make_workbook("digest.xlsx", Settings=settings)
    out = tmp_path / "reports"
    result = invoke("run", book, "--out", out, "--send", "--workers", "1",
                    env=smtp_env(port))
    assert result.exit_code == 0, result.output
    assert len(handler.messages) == 4
    assert cycle.status(out / "2026-02")["built"]["require_approval"] is False
    assert audit.verify(out / "2026-02").records[-1]["action"] == "send"


def test_correction_lines_are_localized_and_protected_ones_carry_no_figure():
    from kpireport.core.i18n import Formatter

    change = {"kind": "employee", "fields": {"bonus": {"old": 5917.81, "new": 6120.0},
                                             "band": {"old": "Meets", "new": "Exceeds"}}}
    en = Formatter("en_US", "USD")
    assert messages.correction_lines(change, en, protected=False) == [
        "Your bonus changed from $5,917.81 to $6,120.00.",
        "Your band changed from Meets to Exceeds."]
    assert messages.correction_lines(change, en, protected=True) == [
        "Your bonus changed.", "Your band changed.", "The attached review has the new figures."]
    vi = Formatter("vi_VN", "VND")
    lines = messages.correction_lines({"kind": "employee", "fields": {
        "bonus": {"old": 5_000_000, "new": 6_000_000}}}, vi, protected=False)
    assert lines == ["Tiền thưởng của bạn đã thay đổi từ 5.000.000\xa0₫ thành 6.000.000\xa0₫."]
    assert messages.mark_subject("Đánh giá", vi, test=True, correction=True) == \
        "[THỬ NGHIỆM] Đính chính: Đánh giá"


def test_a_protected_correction_names_what_changed_but_no_figure(make_workbook, tmp_path,
                                                                 smtp):
    handler, port = smtp()
    settings = BASE["Settings"] + [["pdf_protection", "employee"]]
    book = make_workbook("kpis.xlsx", Settings=settings)
    out = tmp_path / "reports"
    run = out / "2026-02"
    assert build(book, out).exit_code == 0
    assert invoke("approve", run, "--by", "Lan").exit_code == 0
    assert invoke("send", run, env=smtp_env(port)).exit_code == 0
    set_cell(book, "Actuals", "D4", 130)
    assert build(book, out, "--reopen", "--by", "Lan", "--note", "Feb deals").exit_code == 0
    assert invoke("approve", run, "--by", "Lan").exit_code == 0
    outbox = tmp_path / "outbox"
    dry = invoke("send", run, "--dry-run", "--outbox", outbox, env={"KPIREPORT_SMTP_FROM":
                                                                    SENDER})
    assert dry.exit_code == 0, dry.output
    bob = parsed((outbox / "employees__E2__bob@x.example.eml").read_bytes())
    assert bob["Subject"] == "Correction: Performance review: Bob · February 2026"
    text = bob.get_body(("plain",)).get_content()
    assert "- Your bonus changed.\n- Your recommended salary changed.\n- Your band changed." \
        in text and "- The attached review has the new figures." in text
    assert "$" not in text and "%" not in text
    alice = parsed((outbox / "employees__E1__alice@x.example.eml").read_bytes())
    assert not alice["Subject"].startswith("Correction")


def test_the_library_send_holds_the_same_gate(make_workbook, tmp_path):
    from kpireport import api
    from kpireport.core.errors import NotApproved
    from kpireport.deliver.transport import MemoryTransport

    built = api.build(make_workbook("kpis.xlsx"), out=tmp_path / "reports", formats=("pdf",),
                      workers=1)
    transport = MemoryTransport()
    with pytest.raises(NotApproved, match="is not approved: nothing was sent"):
        api.send(built.run_dir, sender=SENDER, transport=transport)
    tested = api.send(built.run_dir, sender=SENDER, transport=transport,
                      test_to="me@test.example", only="COMPANY")
    assert [rcpts for _, _, rcpts in transport.sent] == [["me@test.example"]]
    assert tested.outcome.sent == [("company", "me@test.example")]
    record = cycle.approve(built.run_dir, by="Lan")
    assert record["n"] == 3 and audit.verify(built.run_dir).records[1]["action"] == "test-send"
    sent = api.send(built.run_dir, sender=SENDER, transport=transport, only="E2")
    assert sent.ok and [r for r, _ in sent.outcome.sent] == ["employees/E2", "employees/E2"]
    assert cycle.status(built.run_dir)["delivery"]["counts"] == {"sent": 2, "not sent": 3}


def test_the_build_record_holds_the_hashes_of_the_manifest_on_disk(month):
    """The gate takes the staged manifest from the build (not read back): the audit's build
    line must still cover exactly the files the written manifest lists."""
    _, _, run = month
    records = audit.verify(run).records
    assert [r["action"] for r in records] == ["build"]
    assert records[0]["hashes"] == cycle.run_hashes(run) != {}
