"""What a recipient reads: subject and body with the localized period, their name and what is
attached, no pay figures; attachment names in Unicode (RFC 2231) with a transliterated ASCII
fallback. Messages go through a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import replace

import pytest

from kpireport import api
from kpireport.deliver import send as deliver
from tests.test_deliver import SAMPLES, SENDER


def delivered(smtp, run_dir, tmp_path, sample: str) -> list[email.message.EmailMessage]:
    import shutil

    run = tmp_path / sample  # a copy: sending writes its ledger into the run folder
    shutil.copytree(run_dir, run)
    handler, port = smtp()
    book = api.load(SAMPLES / f"{sample}.xlsx")[0]
    if not book.recipients:  # onlinecrm's Recipients sheet is empty: use the SPEC defaults
        book = replace(book, recipients=None)
    plan = deliver.plan_messages(book, run, SENDER)
    settings = deliver.SmtpSettings("127.0.0.1", port, security="none", sender=SENDER)
    ledger = deliver.Ledger(run / deliver.LEDGER)
    try:
        outcome = deliver.send_messages(plan, deliver.SmtpTransport(settings), ledger, SENDER,
                                        sleep=lambda s: None)
    finally:
        ledger.close()
    assert outcome.ok
    return [email.message_from_bytes(raw, policy=email.policy.default)
            for _, raw in handler.messages]


def unicode_filename(raw_part: bytes) -> tuple[str, str]:
    """(the RFC 2231 Unicode name, the plain ASCII name) of an attachment, as a mail program
    reads them from the raw header."""
    part = email.message_from_bytes(raw_part, policy=email.policy.compat32)
    fallback, unicode = None, None
    for key, value in part.get_params(header="content-disposition"):
        if key == "filename":
            if isinstance(value, tuple):
                unicode = email.utils.collapse_rfc2231_value(value)
            else:
                fallback = value
    return unicode or fallback, fallback


def body(message) -> str:
    return message.get_body(("plain",)).get_content()


def attachment_header(message) -> bytes:
    part = next(message.iter_attachments())
    return bytes(part)  # headers and the base64 payload, as sent


MONEY_OR_PERCENT = re.compile(r"[$₫%]|\d{1,3}([.,]\d{3})+")


@pytest.mark.parametrize("sample, period, employee, recipient, fallback, dept_file, company_file", [
    ("acme", "March 2026", "Priya Nair", "Priya Nair",
     "Performance review - Priya Nair - 2026-03.pdf",
     "Department review - Sales - 2026-03.pdf",
     "Company review - Acme Analytics Inc. - 2026-03.pdf"),
    ("onlinecrm", "tháng 10/2026", "Vũ Hải Đăng", "Vũ Hải Đăng",
     "Danh gia hieu suat cong viec - Vu Hai Dang - 2026-10.pdf",
     "Đánh giá phòng ban - Kinh doanh - 2026-10.pdf",
     "Đánh giá toàn công ty - Công ty Cổ phần OnlineCRM - 2026-10.pdf"),
])
def test_messages_say_who_what_and_when_without_pay(smtp, sample_run, tmp_path, sample, period,
                                                    employee, recipient, fallback, dept_file,
                                                    company_file):
    messages = delivered(smtp, sample_run(sample), tmp_path, sample)
    assert len(messages) >= 12
    for message in messages:
        text = body(message)
        html = message.get_body(("html",)).get_content()
        assert period in text and period in html
        assert period[:1].upper() + period[1:] in message["Subject"]
        # No pay figure, score or percentage in any body: they are in the PDF only.
        for part in (text, html, message["Subject"]):
            assert not MONEY_OR_PERCENT.search(re.sub(r"\d{4}-\d{2}", "", part)), part
        name, ascii_name = unicode_filename(attachment_header(message))
        assert name in text  # the body says what is attached
        assert ascii_name.isascii() and ascii_name.endswith(".pdf")
        assert all(len(line) <= 78 for line in attachment_header(message).split(b"\n")[:12])
    mine = next(m for m in messages if employee in m["Subject"])
    assert body(mine).splitlines()[0] in (f"Hello {recipient},", f"Kính gửi {recipient},")
    name, ascii_name = unicode_filename(attachment_header(mine))
    assert ascii_name == fallback and name.endswith(".pdf")
    assert employee in name  # the Unicode name keeps every diacritic
    names = {unicode_filename(attachment_header(m))[0] for m in messages}
    assert dept_file in names and company_file in names


def test_ascii_fallback_transliterates_rather_than_drops():
    assert deliver.ascii_name("Lê Minh Đức.pdf") == "Le Minh Duc.pdf"
    assert deliver.ascii_name("Đỗ Thị Mai Anh - Øre Straße.pdf") == \
        "Do Thi Mai Anh - Ore Strasse.pdf"
    long = deliver.attachment_name("Đánh giá hiệu suất công việc", "Nguyễn " * 20, "2026-10")
    assert len(deliver.ascii_name(long)) <= 60 and deliver.ascii_name(long).endswith(".pdf")
    assert "/" not in deliver.attachment_name("Review", "Sales/Marketing", "2026-10")
