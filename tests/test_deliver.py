"""E-mail delivery against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import functools
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult

from kpireport import api
from kpireport.core.errors import DeliveryError
from kpireport.core.model import Recipient
from kpireport.deliver import send as deliver
from kpireport.month import cycle
from tests.conftest import free_port

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
SENDER = "hr@acme.example"


@functools.lru_cache(maxsize=1)
def acme_book() -> Path:
    """The acme sample with Settings pdf_protection none: these tests are about delivery of
    plain messages (protected ones: tests/test_protect.py)."""
    import tempfile

    import openpyxl

    path = Path(tempfile.mkdtemp(prefix="kpireport-deliver-")) / "acme.xlsx"
    workbook = openpyxl.load_workbook(SAMPLES / "acme.xlsx")
    for row in workbook["Settings"].iter_rows(min_row=2):
        if row[0].value == "pdf_protection":
            row[1].value = "none"
    workbook.save(path)
    return path




@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("send")
    result = api.build(acme_book(), out=root / "reports", formats=("pdf",),
                       workers=2)
    assert result.ok
    cycle.approve(result.run_dir, by="HR tester")  # send mails approved runs only
    return result.run_dir


@pytest.fixture
def run_dir(built, tmp_path):
    import shutil

    copy = tmp_path / "2026-03"
    shutil.copytree(built, copy)
    return copy


def book():
    return api.load(acme_book())[0]


def send(run_dir: Path, port: int, *, transport=None, resend=False, sleep=lambda s: None,
         the_book=None):
    plan = deliver.plan_messages(the_book or book(), run_dir, SENDER)
    settings = deliver.SmtpSettings("127.0.0.1", port, security="none", sender=SENDER)
    ledger = deliver.Ledger(run_dir / deliver.LEDGER)
    try:
        return plan, deliver.send_messages(plan, transport or deliver.SmtpTransport(settings),
                                           ledger, SENDER, resend=resend, sleep=sleep)
    finally:
        ledger.close()


def cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "kpireport", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_every_report_reaches_the_right_people_with_the_pdf_intact(smtp, run_dir):
    handler, port = smtp()
    plan, outcome = send(run_dir, port)
    assert outcome.ok and not outcome.failed
    # 14 employees (Tom Becker left in January: no review) + 4 departments + company
    assert len(handler.messages) == len(plan.messages) == 19
    parsed = [(rcpts, email.message_from_bytes(raw, policy=email.policy.default))
              for rcpts, raw in handler.messages]
    rcpts, message = next(p for p in parsed if p[1]["To"] == "priya.nair@acme.example")
    assert sorted(rcpts) == ["marcus.chen@acme.example", "priya.nair@acme.example"]
    assert message["Cc"] == "marcus.chen@acme.example"
    assert "Priya Nair" in message["Subject"]
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "Performance review - Priya Nair - 2026-03.pdf"
    assert attachment.get_content() == (run_dir / "employees" / "E003.pdf").read_bytes()
    rcpts, company = next(p for p in parsed if p[1]["Subject"].startswith("Company review"))
    assert sorted(rcpts) == ["board@acme.example", "dana.whitfield@acme.example",
                             "people-ops@acme.example"]
    assert "people-ops" not in company.as_string()  # bcc travels only in the envelope


def test_second_run_sends_nothing(smtp, run_dir):
    handler, port = smtp()
    send(run_dir, port)
    first = len(handler.messages)
    _, outcome = send(run_dir, port)
    assert len(handler.messages) == first
    assert not outcome.sent and len(outcome.skipped) > 20


def test_refused_recipient_fails_and_a_rerun_delivers_only_that_one(smtp, run_dir):
    handler, port = smtp()
    handler.refuse = {"ava.rossi@acme.example"}
    run = cli("send", str(run_dir), "--book", str(acme_book()),
              env={"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
                   "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER})
    assert run.returncode == 3, run.stderr
    assert "550" in run.stdout and "1 failed" in run.stdout
    delivered = len(handler.messages)
    assert delivered == 19  # Ava's manager still got her review
    handler.refuse = set()
    _, outcome = send(run_dir, port)
    assert [r for _, r in outcome.sent] == ["ava.rossi@acme.example"]
    assert len(handler.messages) == delivered + 1
    assert handler.messages[-1][0] == ["ava.rossi@acme.example"]


def test_dropped_connection_is_reopened(smtp, run_dir):
    handler, port = smtp()
    handler.drop_after = 3
    _, outcome = send(run_dir, port)
    assert outcome.ok and len(outcome.sent) > 20
    assert len(handler.messages) == 19


def test_unreachable_server_retries_then_fails(run_dir):
    sleeps = []
    transport = deliver.SmtpTransport(deliver.SmtpSettings("127.0.0.1", free_port(),
                                                           security="none", timeout=2))
    plan, outcome = send(run_dir, 0, transport=transport, sleep=sleeps.append)
    assert sleeps == [1, 2, 4]  # one message's retries, then the run stops
    assert len(outcome.failed) == sum(len(m.recipients.all) for m in plan.messages)
    assert "cannot connect" in outcome.failed[0][2]
    assert all(reason.startswith("not sent: the run stopped") for _, _, reason in
               outcome.failed[len(plan.messages[0].recipients.all):])


def test_killed_mid_run_then_rerun_reports_unknown_and_sends_no_duplicates(smtp, run_dir):
    handler, port = smtp()
    handler.stall_on = 5
    env = {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
           "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER}
    process = subprocess.Popen([sys.executable, "-m", "kpireport", "send", str(run_dir),
                                "--book", str(acme_book())],
                               env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert handler.stalled.wait(60)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert len(handler.messages) == 4
    handler.stall_on = None
    rerun = cli("send", str(run_dir), "--book", str(acme_book()), env=env)
    assert rerun.returncode == 3
    assert "unknown" in rerun.stdout
    assert len(handler.messages) == 18  # every message but the one whose fate is unknown
    reports = [email.message_from_bytes(raw)["Subject"] for _, raw in handler.messages]
    assert len(reports) == len(set(reports))  # no duplicates
    forced = cli("send", str(run_dir), "--book", str(acme_book()), "--resend",
                 env=env)
    assert forced.returncode == 0


@pytest.fixture(scope="module")
def ca():
    import trustme

    return trustme.CA()


def tls_server(smtp, ca, **extra):
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    return smtp(tls_context=server_context, require_starttls=True, **extra)


def test_starttls_verifies_the_certificate(smtp, run_dir, ca):
    handler, port = tls_server(smtp, ca)
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    settings = deliver.SmtpSettings("127.0.0.1", port, security="starttls", context=trusted)
    _, outcome = send(run_dir, port, transport=deliver.SmtpTransport(settings))
    assert outcome.ok and len(handler.messages) == 19
    untrusted = deliver.SmtpSettings("127.0.0.1", port, security="starttls")
    with pytest.raises(DeliveryError, match="TLS|certificate"):
        send(run_dir, port, transport=deliver.SmtpTransport(untrusted), resend=True)


def test_auth_and_credentials_never_printed(smtp, run_dir, ca):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"hr" and auth_data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)

    handler, port = smtp(authenticator=authenticator, auth_require_tls=False)
    env = {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
           "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER,
           "KPIREPORT_SMTP_USER": "hr", "KPIREPORT_SMTP_PASSWORD": "wrong-pw"}
    bad = cli("send", str(run_dir), "--book", str(acme_book()), env=env)
    assert bad.returncode == 1 and "refused the login" in bad.stderr
    assert "wrong-pw" not in bad.stdout + bad.stderr
    env["KPIREPORT_SMTP_PASSWORD"] = "s3cret-pw"
    good = cli("send", str(run_dir), "--book", str(acme_book()), env=env)
    assert good.returncode == 0, good.stderr
    assert "s3cret-pw" not in good.stdout + good.stderr
    assert len(handler.messages) == 19


def test_message_over_the_size_limit_fails(smtp, run_dir):
    handler, port = smtp(data_size_limit=20_000)
    _, outcome = send(run_dir, port)
    assert not outcome.ok and outcome.failed
    assert all("552" in reason for _, _, reason in outcome.failed)


def test_header_injection_through_names_and_subjects(run_dir):
    evil = book()
    people = tuple(replace(p, name="Priya\r\nBcc: thief@evil.example") if p.employee_id ==
                   "E003" else p for p in evil.people)
    settings = replace(evil.settings, report_title="Review\nX-Injected: yes")
    evil = replace(evil, people=people, settings=settings)
    transport = deliver.MemoryTransport()
    plan, _ = send(run_dir, 0, transport=transport, the_book=evil)
    raw = b"".join(m.as_bytes() for m, _, _ in transport.sent)
    assert b"\nBcc: thief" not in raw and b"\nX-Injected" not in raw
    assert all("thief@evil.example" not in rcpts for _, _, rcpts in transport.sent)
    with pytest.raises(DeliveryError):
        deliver.validate_address("a@x.org)<b@y.org>")
    with pytest.raises(DeliveryError):
        deliver.validate_address("a@x.org\r\nBcc: b@y.org")


def test_recipients_sheet_tokens_and_defaults():
    b = book()
    resolver = deliver.RecipientResolver(b)
    assert resolver.resolve("employee", "E009").to == ("ava.rossi@acme.example",)
    assert resolver.resolve("employee", "E009").cc == ("hannah.lee@acme.example",)
    dept = resolver.resolve("department", "Marketing")
    assert dept.to == ("hannah.lee@acme.example",) and dept.cc == ("people-ops@acme.example",)
    defaults = deliver.RecipientResolver(replace(b, recipients=None))
    assert defaults.resolve("company", "COMPANY").to == ("dana.whitfield@acme.example",)
    scoped = replace(b, recipients=(Recipient("employee", "Sales", "{manager}", "", ""),
                                    Recipient("employee", "*", "{employee}", "", "")))
    resolver = deliver.RecipientResolver(scoped)
    assert resolver.resolve("employee", "E003").to == ("marcus.chen@acme.example",)
    assert resolver.resolve("employee", "E008").to == ("noah.kim@acme.example",)


def test_dry_run_writes_parseable_eml_and_sends_nothing(run_dir, tmp_path, smtp):
    handler, port = smtp()
    outbox = tmp_path / "outbox"
    run = cli("send", str(run_dir), "--book", str(acme_book()), "--dry-run",
              "--outbox", str(outbox), env={"KPIREPORT_SMTP_FROM": SENDER,
                                            "KPIREPORT_SMTP_HOST": "127.0.0.1",
                                            "KPIREPORT_SMTP_PORT": str(port)})
    assert run.returncode == 0, run.stderr
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 19 and handler.messages == []
    parsed = email.message_from_bytes((outbox / "employees__E015.eml").read_bytes(),
                                      policy=email.policy.default)
    assert parsed["To"] == "zoe.adams@acme.example"
    assert parsed["From"] == SENDER
    assert parsed.get_body(("plain",)).get_content().startswith("Hello Zoe Adams,")
    pdf = next(parsed.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content() == (run_dir / "employees" / "E015.pdf").read_bytes()
    assert not (run_dir / deliver.LEDGER).exists()


def test_plain_smtp_refused_off_loopback():
    with pytest.raises(DeliveryError, match="loopback"):
        deliver.SmtpSettings.from_env({"KPIREPORT_SMTP_HOST": "smtp.example.com",
                                       "KPIREPORT_SMTP_SECURITY": "none"})


def test_run_checks_builds_and_sends(smtp, tmp_path):
    import shutil

    handler, port = smtp()
    workbook = tmp_path / "acme.xlsx"
    shutil.copy(acme_book(), workbook)
    env = {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
           "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER}
    start = time.perf_counter()
    first = cli("run", str(workbook), "--out", str(tmp_path / "out"), "--send", "--workers",
                "2", env=env, timeout=300)
    # built, not sent: the run awaits approval (require_approval yes, the sample's setting)
    assert first.returncode == 4, first.stderr
    assert handler.messages == []
    assert cli("approve", str(tmp_path / "out" / "2026-03"), "--by", "HR").returncode == 0
    second = cli("run", str(workbook), "--out", str(tmp_path / "out"), "--send", env=env)
    assert second.returncode == 0, second.stderr
    assert len(handler.messages) == 19
    again = cli("run", str(workbook), "--out", str(tmp_path / "out"), "--send", env=env)
    assert again.returncode == 0 and len(handler.messages) == 19
    assert time.perf_counter() - start < 240


def test_email_templates_are_overridable(run_dir, tmp_path):
    custom = tmp_path / "tpl"
    custom.mkdir()
    (custom / "email_subject.txt").write_text("[{{ organization }}] {{ name }} {{ period }}\n")
    outbox = tmp_path / "outbox"
    run = cli("send", str(run_dir), "--book", str(acme_book()), "--dry-run",
              "--outbox", str(outbox), "--templates", str(custom),
              env={"KPIREPORT_SMTP_FROM": SENDER})
    assert run.returncode == 0, run.stderr
    parsed = email.message_from_bytes((outbox / "employees__E003.eml").read_bytes(),
                                      policy=email.policy.default)
    assert parsed["Subject"] == "[Acme Analytics Inc.] Priya Nair 2026-03"
    # the built-in body
    assert parsed.get_body(("plain",)).get_content().startswith("Hello Priya Nair,")
