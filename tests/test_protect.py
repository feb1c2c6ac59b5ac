"""Protected PDFs, the password store and archive copies, used the way a person uses them."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

import openpyxl
import pikepdf
import pikepdf.pdfa
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from kpireport import api
from kpireport.cli.app import main
from tests.conftest import BASE, Handler, free_port


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def people_with_passwords(*passwords):
    """BASE People with a pdf_password column (Alice, Bob)."""
    rows = [BASE["People"][0] + ["pdf_password"]]
    for row, password in zip(BASE["People"][1:], passwords):
        rows.append(row + [password])
    return rows


def settings(**values):
    return BASE["Settings"] + [[k, v] for k, v in values.items()]


# ---------------------------------------------------------------------------- settings
def test_template_writes_employee_and_a_book_without_the_setting_keeps_none(tmp_path,
                                                                           make_workbook):
    path = tmp_path / "blank.xlsx"
    assert invoke("init", path).exit_code == 0
    sheet = openpyxl.load_workbook(path)["Settings"]
    values = {row[0]: row[1] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["pdf_protection"] == "employee"
    assert "pdf_password_hint" in values
    people = openpyxl.load_workbook(path)["People"]
    assert "pdf_password" in [c.value for c in people[1]]
    for sample in ("acme", "onlinecrm"):
        book, _ = api.load(f"sample_workbooks/{sample}.xlsx")
        assert book.settings.pdf_protection == "employee"

    book_path = make_workbook()  # BASE has no pdf_protection row
    book, issues = api.load(book_path)
    assert book.settings.pdf_protection == "none"
    assert [(i.severity, i.code) for i in issues if i.code == "pdf-protection-off"] == \
        [("info", "pdf-protection-off")]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["check", str(book_path), "--all"])
    assert result.exit_code == 0
    assert "pdf_protection is none, so e-mailed PDFs are not encrypted" in result.output
    protected = make_workbook(Settings=settings(pdf_protection="employee"))
    assert not [i for i in api.check(protected)[1] if i.code == "pdf-protection-off"]


def test_bad_pdf_password_names_the_cell_and_never_the_value(make_workbook):
    short, control = "abc1234", "good\tpass99"
    path = make_workbook(People=people_with_passwords(short, control),
                         Settings=settings(pdf_protection="employee"))
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    rows = [line for line in result.output.splitlines() if "bad-pdf-password" in line]
    assert "People!H2" in rows[0] and "the pdf_password is shorter than 8 characters" in rows[0]
    assert "People!H3" in rows[1] and "the pdf_password contains a control character" in rows[1]
    as_json = invoke("check", path, "--format", "json")
    doc = json.loads(as_json.output)
    assert [(i["sheet"], i["cell"], i["code"]) for i in doc["issues"]
            if i["severity"] == "error"] == [("People", "H2", "bad-pdf-password"),
                                             ("People", "H3", "bad-pdf-password")]
    for output in (result.output, as_json.output):
        assert short not in output and "good" not in output and "pass99" not in output
    build = CliRunner().invoke(main, ["build", str(path), "--out", str(path.parent / "out")])
    assert build.exit_code == 1 and short not in build.output and "pass99" not in build.output
    assert not (path.parent / "out").exists()


def test_a_number_typed_as_password_is_read_as_its_digits(make_workbook):
    path = make_workbook(People=people_with_passwords(12345678, None))
    book, _ = api.load(path)
    assert book.people[0].pdf_password == "12345678"
    assert "12345678" not in repr(book.people[0])


# ---------------------------------------------------------------------------- e-mail

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
SENDER = "hr@acme.example"
PRIYA_OWN = "Priya's own pass 2026"  # typed into People!pdf_password


@pytest.fixture
def server():
    handler, port = Handler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def acme_protected(tmp_path: Path, mode: str = "employee") -> Path:
    """The acme sample as HR would set it up: protection on, Priya typed her own password,
    and payroll (not a person in People) in cc of every employee review."""
    path = tmp_path / "acme.xlsx"
    workbook = openpyxl.load_workbook(SAMPLES / "acme.xlsx")
    for row in workbook["Settings"].iter_rows(min_row=2):
        if row[0].value == "pdf_protection":
            row[1].value = mode
        if row[0].value == "pdf_password_hint":
            row[1].value = "HR handed it to you on paper in January."
    people = workbook["People"]
    column = [c.value for c in people[1]].index("pdf_password") + 1
    for row in people.iter_rows(min_row=2):
        if row[0].value == "E003":
            people.cell(row=row[0].row, column=column, value=PRIYA_OWN)
    for row in workbook["Recipients"].iter_rows(min_row=2):
        if row[0].value == "employee":
            row[3].value = "{manager}; payroll@acme.example"
    workbook.save(path)
    return path


def smtp_env(port: int) -> dict[str, str]:
    return {**os.environ, "KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
            "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER}


def cli(*args, env=None) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "kpireport", *[str(a) for a in args]],
                          capture_output=True, text=True, env=env, timeout=300)


def attachment(raw: bytes) -> tuple[object, bytes]:
    message = message_from_bytes(raw, policy=policy.default)
    part = next(message.iter_attachments())
    return message, part.get_content()


def opens_with(pdf: bytes, password: str | None) -> bool:
    try:
        with pikepdf.open(io.BytesIO(pdf), password=password or ""):
            return True
    except pikepdf.PasswordError:
        return False


def readable_text(path: Path) -> str:
    """What a person (or grep) could read in an output file: xlsx unzipped, PDF text."""
    data = path.read_bytes()
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as archive:
            return "".join(archive.read(n).decode("utf-8", "replace")
                           for n in archive.namelist())
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        return "".join(page.extract_text() for page in reader.pages) + \
            data.decode("latin-1")
    return data.decode("utf-8", "replace")


def test_each_recipient_gets_a_copy_only_their_password_opens(tmp_path, server):
    handler, port = server
    book = acme_protected(tmp_path)
    out = tmp_path / "reports"
    logs = []
    for args in (("check", book, "--all"), ("build", book, "--out", out, "--workers", "2")):
        run = cli(*args)
        assert run.returncode == 0, run.stderr
        logs += [run.stdout, run.stderr]
    run_dir = out / "2026-03"
    store = out / ".kpireport-passwords.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600

    listed = cli("passwords", out, "--format", "csv")
    assert listed.returncode == 0, listed.stderr
    passwords = {r["employee_id"]: r["password"] for r in csv.DictReader(io.StringIO(
        listed.stdout))}
    assert "E003" not in passwords  # typed into the workbook: not generated, not listed
    assert len(passwords) == 14 and all(len(p) >= 12 for p in passwords.values())
    assert len(set(passwords.values())) == 14
    again = cli("passwords", out, "--format", "csv")  # handed out once: nothing new
    assert again.stdout.strip() == "employee_id,name,email,password"
    everyone = cli("passwords", out, "--all")
    assert everyone.returncode == 0 and "14 password(s)" in everyone.stdout

    dry = cli("send", run_dir, "--book", book, "--dry-run", "--outbox", tmp_path / "outbox",
              env=smtp_env(port))
    assert dry.returncode == 0, dry.stderr
    assert cli("approve", run_dir, "--by", "HR lead").returncode == 0
    sent = cli("send", run_dir, "--book", book, env=smtp_env(port))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    logs += [dry.stdout, dry.stderr, sent.stdout, sent.stderr]

    count = len(handler.messages)
    rerun = cli("send", run_dir, "--book", book, env=smtp_env(port))
    assert rerun.returncode == 0 and "0 sent" in rerun.stdout  # fresh encryption, same copy
    assert len(handler.messages) == count
    logs += [rerun.stdout, rerun.stderr]

    # payroll@ is no person: it has no password, is listed and gets nothing.
    assert "payroll@acme.example has no PDF password" in sent.stderr
    assert all("payroll@acme.example" not in rcpts for rcpts, _ in handler.messages)
    by_rcpt = {}
    for rcpts, raw in handler.messages:
        message, pdf = attachment(raw)
        if not opens_with(pdf, None):
            assert len(rcpts) == 1  # an encrypted copy is a message of its own
        by_rcpt.update({(str(message["Subject"]), r): (message, pdf) for r in rcpts})
    # 14 reviews (Tom Becker left) and 13 managers' copies
    assert sum(not opens_with(pdf, None) for _, pdf in by_rcpt.values()) == 14 + 13
    priya_subject = next(s for s, _ in by_rcpt if "Priya Nair" in s)
    priya_msg, priya_pdf = by_rcpt[(priya_subject, "priya.nair@acme.example")]
    manager_msg, manager_pdf = by_rcpt[(priya_subject, "marcus.chen@acme.example")]
    assert "Cc" not in priya_msg and str(manager_msg["To"]) == "marcus.chen@acme.example"

    assert not opens_with(priya_pdf, None) and not opens_with(priya_pdf, passwords["E002"])
    assert opens_with(priya_pdf, PRIYA_OWN)
    with pikepdf.open(io.BytesIO(priya_pdf), password=PRIYA_OWN) as pdf:
        assert (pdf.encryption.R, pdf.encryption.bits) == (6, 256)
        assert pdf.encryption.stream_method.name == "aesv3"  # AES-256
        assert pdf.allow.print_highres and pdf.allow.accessibility
        assert not pdf.allow.modify_other and not pdf.allow.extract
        assert not pdf.owner_password_matched  # the owner password is someone else's secret
        assert pdf.Root.MarkInfo.Marked and "/StructTreeRoot" in pdf.Root  # still tagged
        plain = io.BytesIO()
        pdf.save(plain)
    from pypdf import PdfReader

    assert "Priya Nair" in PdfReader(plain).pages[0].extract_text()
    assert opens_with(manager_pdf, passwords["E002"]) and not opens_with(manager_pdf, None)
    assert not opens_with(manager_pdf, PRIYA_OWN)
    # Department and company reviews stay unencrypted with pdf_protection = employee.
    assert len([pdf for pdf in {pdf for _, pdf in by_rcpt.values()}
                if opens_with(pdf, None)]) == 4 + 1

    body = priya_msg.get_body(("plain",)).get_content()
    assert "The attached PDF is protected with a password of your own." in body
    assert "HR handed it to you on paper in January." in body
    assert len(list((tmp_path / "outbox").glob("employees__E003__*.eml"))) == 2

    secrets_ = list(passwords.values()) + [PRIYA_OWN]
    outputs = [p for p in list(run_dir.rglob("*")) + list((tmp_path / "outbox").iterdir())
               if p.is_file()]
    assert any(p.suffix == ".eml" for p in outputs) and any(p.suffix == ".xlsx" for p in outputs)
    texts = {str(p): readable_text(p) for p in outputs}
    texts.update({f"log{i}": text for i, text in enumerate(logs)})
    texts.update({f"smtp{i}": raw.decode("latin-1") for i, (_, raw) in
                  enumerate(handler.messages)})
    for secret in secrets_:
        leaks = [name for name, text in texts.items() if secret in text]
        assert not leaks, leaks


def test_passwords_stay_the_same_month_after_month(make_workbook, tmp_path):
    out = tmp_path / "reports"
    book = make_workbook(Settings=settings(pdf_protection="employee"))
    assert invoke("build", book, "--out", out, "--period", "2026-01", "--format", "html"
                  ).exit_code == 0
    first = json.loads((out / ".kpireport-passwords.json").read_text())["people"]
    assert sorted(first) == ["E1", "E2"]
    people = [r[:] for r in BASE["People"]] + [["E3", "Cleo", "Sales", "cleo@x.example", "E1",
                                               40000, 0.1]]
    book = make_workbook(Settings=settings(pdf_protection="employee"), People=people)
    assert invoke("build", book, "--out", out, "--period", "2026-02", "--format", "html"
                  ).exit_code == 0
    second = json.loads((out / ".kpireport-passwords.json").read_text())["people"]
    assert {k: v["password"] for k, v in second.items() if k != "E3"} == \
        {k: v["password"] for k, v in first.items()}
    assert len(second["E3"]["password"]) >= 12
    listed = invoke("passwords", out, "--format", "csv").output.splitlines()
    assert [line.split(",")[0] for line in listed] == ["employee_id", "E1", "E2", "E3"]


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.chmod(0o644), "can be read by other users (mode 0644); run `chmod 600"),
    (lambda p: p.write_text('{"schema": "kpireport/pdf-passwords@1", "people": {"E1": '),
     "is damaged (JSONDecodeError); restore it from a backup"),
    (lambda p: p.write_text('{"schema": "kpireport/pdf-passwords@1", "people": {"E1": '
                            '{"password": "short"}}}'), "is damaged (the entry of E1)"),
    (lambda p: p.write_text('["not", "a", "store"]'), "is not a kpireport password store"),
])
def test_a_damaged_or_exposed_store_stops_everything(make_workbook, tmp_path, server, damage,
                                                     message):
    handler, port = server
    out = tmp_path / "reports"
    book = make_workbook(Settings=settings(pdf_protection="employee"))
    assert invoke("build", book, "--out", out, "--format", "pdf", "--workers", "1"
                  ).exit_code == 0
    assert invoke("approve", out / "2026-02", "--by", "HR lead").exit_code == 0
    store = out / ".kpireport-passwords.json"
    good = json.loads(store.read_text())["people"]
    damage(store)
    outcomes = [cli("send", out / "2026-02", "--book", book, env=smtp_env(port)),
                cli("send", out / "2026-02", "--book", book, "--dry-run", "--outbox",
                    tmp_path / "outbox", env=smtp_env(port)),
                cli("passwords", out),
                cli("build", book, "--out", out, "--period", "2026-01")]
    for run in outcomes:
        assert run.returncode == 1, run.stdout + run.stderr
        assert message in run.stderr and "Traceback" not in run.stderr
        assert not any(entry["password"] in run.stdout + run.stderr for entry in good.values())
    assert handler.messages == [] and not (tmp_path / "outbox").exists()
    assert not (out / "2026-01").exists()
    assert not (out / "2026-02" / ".send-ledger.sqlite").exists()


def test_passwords_without_a_store_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["passwords", str(tmp_path)])
    assert result.exit_code == 1 and "has no PDF password store yet" in result.output


def test_the_default_hint_is_in_the_report_language(make_workbook, tmp_path):
    book = make_workbook(Settings=settings(pdf_protection="all", locale="vi_VN"))
    out = tmp_path / "reports"
    assert invoke("build", book, "--out", out, "--format", "pdf", "--workers", "1"
                  ).exit_code == 0
    result = invoke("send", out / "2026-02", "--book", book, "--dry-run", "--outbox",
                    tmp_path / "outbox", "--from", SENDER)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    # all: department and company reviews are protected too, one copy per recipient
    assert files == ["company__alice@x.example.eml", "departments__sales__alice@x.example.eml",
                     "employees__E1__alice@x.example.eml", "employees__E2__alice@x.example.eml",
                     "employees__E2__bob@x.example.eml"]
    message = message_from_bytes((tmp_path / "outbox" / files[0]).read_bytes(),
                                 policy=policy.default)
    body = message.get_body(("plain",)).get_content()
    assert "Tệp PDF đính kèm được bảo vệ bằng mật khẩu riêng của bạn." in body
    assert "Phòng Nhân sự đã gửi riêng mật khẩu PDF cho bạn" in body
    assert not opens_with(attachment(message.as_bytes())[1], None)


# ---------------------------------------------------------------------------- archive
def test_build_archive_writes_pdfa_copies_with_their_results_attached(tmp_path):
    import hashlib

    import jsonschema
    from pypdf import PdfReader

    book = tmp_path / "acme.xlsx"
    book.write_bytes((SAMPLES / "acme.xlsx").read_bytes())
    out = tmp_path / "reports"
    run = cli("build", book, "--out", out, "--archive", "--workers", "2")
    assert run.returncode == 0, run.stderr
    run_dir = out / "2026-03"
    names = sorted(p.name for p in (run_dir / "archive").iterdir())
    # 19 reports: Tom Becker left, so he has no review
    assert len(names) == 19 and "employees-E003.pdf" in names and "company.pdf" in names
    schema = json.loads((Path(api.__file__).parent / "schemas" / "results-1.schema.json"
                         ).read_text())
    sha = hashlib.sha256(book.read_bytes()).hexdigest()
    from kpireport import __version__

    for name in names:
        with pikepdf.open(run_dir / "archive" / name) as pdf:
            assert not pdf.is_encrypted
            xmp = pdf.open_metadata()
            assert xmp.pdfa_status == "3B"
            # pikepdf's allowlist validator finds no PDF/A-3b violation (it does not judge
            # the chart gradients: patterns and shadings are "unsupported", not violations).
            report = pikepdf.pdfa.check(pdf, "3b")
            assert report.violations == ()
            assert {f.message for f in report.unsupported} <= {
                "patterns are not supported", "shadings are not supported"}
            assert xmp["dc:source"] == f"sha256:{sha}"
            assert xmp["xmp:CreatorTool"] == f"kpireport {__version__}"
            assert str(pdf.docinfo["/Creator"]) == f"kpireport {__version__}"  # Info = XMP
            # results.json and the statement that `kpireport verify` reads (docs/verify.md)
            assert sorted(pdf.attachments) == ["kpireport-statement.json", "results.json"]
            spec = pdf.attachments["results.json"]
            statement = pdf.attachments["kpireport-statement.json"]
            assert spec.obj.AFRelationship == statement.obj.AFRelationship == "/Data"
            assert sorted(f.objgen for f in pdf.Root.AF) == \
                sorted([spec.obj.objgen, statement.obj.objgen])  # associated files
            assert spec.get_file().mime_type == "application/json"
            attached = json.loads(spec.get_file().read_bytes())
            jsonschema.validate(attached, schema)
            assert attached["source"]["sha256"] == sha
        if name == "employees-E003.pdf":
            assert [c["owner"] for c in attached["scorecards"]] == ["E003"]
            full = json.loads((run_dir / "results.json").read_text())
            assert attached["scorecards"] == [c for c in full["scorecards"]
                                              if c["owner"] == "E003"]
            text = PdfReader(run_dir / "archive" / name).pages[0].extract_text()
            assert "Priya Nair" in text
        if name == "departments-sales.pdf":
            owners = {c["owner"] for c in attached["scorecards"]}
            assert "Sales" in owners and "E003" in owners and "E009" not in owners
        if name == "company.pdf":
            assert len(attached["scorecards"]) == 19
    # The e-mailed copies are tagged PDFs (screen readers can follow the tables).
    with pikepdf.open(run_dir / "employees" / "E003.pdf") as pdf:
        assert pdf.Root.MarkInfo.Marked and "/StructTreeRoot" in pdf.Root
        assert pdf.open_metadata().pdfa_status == ""
        assert pikepdf.pdfa.check(pdf, "3b").violations  # the validator does find faults

    # Archive copies are never e-mailed: every attachment is an encrypted or plain report.
    dry = cli("send", run_dir, "--book", book, "--dry-run", "--outbox", tmp_path / "outbox",
              "--from", SENDER)
    assert dry.returncode == 0, dry.stderr
    for eml in (tmp_path / "outbox").iterdir():
        _, pdf = attachment(eml.read_bytes())
        assert b"pdfaid" not in pdf and b"results.json" not in pdf

    again = cli("build", book, "--out", out, "--archive", "--workers", "2")
    assert "rendered 0 report(s), 20 unchanged" in again.stdout
    book.write_bytes(book.read_bytes())  # same bytes, same hash: still nothing to do
    assert "rendered 0 report(s)" in cli("build", book, "--out", out, "--archive").stdout


def test_generated_passwords_use_every_character_evenly():
    """280,000 characters: each of the 57 within 6 standard deviations of 1/57. Taking a
    byte modulo 57 without dropping the bytes from 228 up would make 28 of them 25% likelier."""
    from collections import Counter

    from kpireport.deliver.protect import ALPHABET, GENERATED_LENGTH, generate_password

    passwords = [generate_password() for _ in range(20_000)]
    assert {len(p) for p in passwords} == {GENERATED_LENGTH}
    counts = Counter("".join(passwords))
    assert set(counts) == set(ALPHABET)
    n = 20_000 * GENERATED_LENGTH
    expected = n / len(ALPHABET)
    sd = (n * (1 / len(ALPHABET)) * (1 - 1 / len(ALPHABET))) ** 0.5
    assert all(abs(c - expected) < 6 * sd for c in counts.values()), counts


def test_a_password_is_whole_even_when_random_bytes_run_high(monkeypatch):
    import secrets

    from kpireport.deliver.protect import ALPHABET, GENERATED_LENGTH, generate_password

    draws = iter([b"\xff" * 32, b"\xe4" * 20 + bytes(range(12)), bytes(range(12, 44))])
    monkeypatch.setattr(secrets, "token_bytes", lambda n: next(draws))
    assert generate_password() == "".join(ALPHABET[i] for i in range(GENERATED_LENGTH))
