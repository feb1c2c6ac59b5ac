"""A build's messages: one per report and recipient set, from the manifest's PDFs, with
the e-mail texts rendered from the templates; and the --dry-run outbox."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from pathlib import Path
from urllib.parse import quote

from kpireport.core.errors import DeliveryError, KpireportError
from kpireport.core.i18n import N_, Formatter
from kpireport.core.model import Book
from kpireport.deliver import protect
from kpireport.deliver.recipients import (
    RECIPIENTS_FILE,
    Recipients,
    clean_header,
    unique,
    validate_address,
)
from kpireport.report.manifest import FileEntry, Manifest, ReportEntry, read_manifest, sha256
from kpireport.report.render import inside, sandbox, template_dirs


# ---------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Outgoing:
    """One message: a report to one recipient set."""

    report: str  # e.g. employees/E001
    recipients: Recipients
    message: EmailMessage
    content_hash: str  # of the unencrypted PDF and the text: the same for every copy
    protected: bool = False  # an encrypted copy for its one recipient


@dataclass
class Plan:
    messages: list[Outgoing]
    problems: list[str]  # recipients that could not be resolved


def recorded_recipients(run_dir: Path, manifest: Manifest
                        ) -> list[tuple[ReportEntry, Recipients]]:
    """The build's PDF reports (manifest entries) with the recipients it recorded for them."""
    entry = manifest.data_file(RECIPIENTS_FILE)
    if entry is None:
        raise DeliveryError(f"{run_dir}: its manifest lists no {RECIPIENTS_FILE}; build again")
    try:
        record = json.loads(built_file(manifest, entry))
        recorded = []
        for r in record["reports"]:
            report = manifest.report(r["kind"], r["scope"])
            if report is None or report.pdf is None or report.stem != r["file"]:
                raise DeliveryError(f"{run_dir / RECIPIENTS_FILE} names a report its "
                                    f"manifest has no PDF of ({r['file']}); build again")
            recorded.append((report, Recipients(tuple(r["to"]), tuple(r["cc"]),
                                                tuple(r["bcc"]), tuple(r["problems"]))))
        return recorded
    except (KeyError, TypeError, ValueError) as exc:
        raise DeliveryError(f"{run_dir / RECIPIENTS_FILE}: damaged ({exc}); build "
                            "again") from None


def built_file(manifest: Manifest, entry: FileEntry) -> bytes:
    """The bytes of a file of the build, refused unless they are the ones its manifest lists
    (a file replaced by a link out of the folder, or edited since the build)."""

    path = manifest.path(entry)
    if not inside(path, [Path(os.path.realpath(manifest.run_dir))]):
        raise DeliveryError(f"{manifest.run_dir}: {entry.path} leads outside the run folder "
                            "(a link); build again")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DeliveryError(f"{manifest.run_dir}: cannot read {entry.path} "
                            f"({exc.strerror or exc}); build again") from None
    if len(data) != entry.size or sha256(data) != entry.sha256:
        raise DeliveryError(f"{manifest.run_dir}: {entry.path} changed after the build (it "
                            "is not the file its manifest lists); build again")
    return data


def plan_messages(book: Book, run_dir: Path, sender: str, *,
                  templates: Path | None = None, test_to: str | None = None,
                  only: str | None = None, corrections: dict[str, dict] | None = None,
                  test_password: str | None = None) -> Plan:
    """Build every message of the run folder (nothing is sent).

    The reports are the build's manifest's, the recipients the ones the build recorded; a
    report whose PDF is not the one the manifest lists (edited, replaced) stops the send.
    ``only`` keeps the reports of one employee, department or COMPANY; ``test_to`` addresses
    every message to that one address instead, its subject marked as a test. After
    ``build --reopen`` a report that changed since the build that was sent is marked as a
    correction and says what changed (kpireport.month.cycle). ``test_password`` (a test
    send) is the one password every protected test copy opens with.
    """

    manifest = read_manifest(run_dir)
    sender = validate_address(sender)
    recorded = recorded_recipients(run_dir, manifest)
    if not recorded:
        raise DeliveryError(f"nothing to send: {run_dir} has no PDF reports (build with "
                            "--format pdf, or html,pdf)")
    if only is not None:
        recorded = select_entries(recorded, only, run_dir)
    test = Recipients((validate_address(test_to),)) if test_to is not None else None
    fixes = corrections or {}
    fmt = Formatter(book.settings.locale, book.settings.currency)
    env = _mail_environment(book.settings.locale, template_dirs(templates))
    protection = protect.Protection.start(book, run_dir.parent,
                                          test_password=test_password if test else None)
    names = {p.email.lower(): p.name for p in book.people if p.email}
    messages, problems = [], []
    unaddressed = 0
    for report, recipients in recorded:
        kind, stem, name = report.kind, report.stem, report.name
        problems += [f"{stem}: {p}" for p in recipients.problems]
        if not recipients.to:
            problems.append(f"{stem}: no recipient")
            unaddressed += 1
            continue
        pdf = built_file(manifest, report.pdf)
        protected = protect.applies(book.settings, kind)
        marks = {"test": test is not None, "correction": stem in fixes}
        context = _mail_context(book, kind, name, manifest.period, recipients, names)
        context.update(protected=protected, password_hint=protection.hint,
                       correction=correction_lines(fixes.get(stem), fmt,
                                                         protected=protected))
        subject = mark_subject(
            clean_header(env.get_template("email_subject.txt").render(**context)), fmt, **marks)
        text = env.get_template("email_body.txt").render(**context)
        html = env.get_template("email_body.html").render(**context)
        filename = context["attachment"]
        digest = hashlib.sha256(pdf + subject.encode() + text.encode()).hexdigest()
        if not protected:
            if test is not None:
                subject, text, html = whose_copy(fmt, recipients, subject, text, html)
            message = _message(sender, test or recipients, subject, text, html, pdf, filename)
            messages.append(Outgoing(stem, test or recipients, message, digest))
            continue
        # Each recipient gets a copy only their own password opens, as a message of its own.
        for address in recipients.all:
            encrypted = protection.encrypt(pdf, address)
            if encrypted is None:
                problems.append(f"{stem}: {address} has no PDF password (not a person in "
                                "People, or an address several people share); not sent")
                continue
            alone = Recipients((address,))
            own = {**_mail_context(book, kind, name, manifest.period, alone, names),
                   "protected": True, "password_hint": protection.hint,  # greeted by name
                   "correction": context["correction"]}
            own_subject = clean_header(env.get_template("email_subject.txt").render(**own))
            parts = (mark_subject(own_subject, fmt, **marks),
                     env.get_template("email_body.txt").render(**own),
                     env.get_template("email_body.html").render(**own))
            if test is not None:
                parts = whose_copy(fmt, alone, *parts)
            message = _message(sender, test or alone, *parts, encrypted, filename)
            messages.append(Outgoing(stem, test or alone, message, digest, protected=True))
    if not messages and unaddressed:
        raise DeliveryError(f"no recipient for {unaddressed} reports: {_why_nobody(book)}")
    if not messages:
        raise DeliveryError("nothing to send: no recipient of these reports has a PDF "
                            f"password ({problems[0] if problems else 'none'})")
    return Plan(messages, problems)


@dataclass(frozen=True)
class SendSummary:
    """What a send of a run would do, before it is done: per report kind, how many reports and
    messages, whether they are protected and carry pay; the messages and distinct recipients
    in all. A protected report is one message per recipient (each their own copy); another is
    one message to all of its recipients."""

    kinds: tuple[dict, ...]  # {kind, reports, messages, protected, pay}
    messages: int
    people: int  # distinct addresses
    unaddressed: int  # reports with no recipient (not sent)


def send_summary(book: Book, run_dir: Path) -> SendSummary:
    """The summary shown before a send (nothing is built or sent): from the build's recorded
    recipients and Settings ``pdf_protection``. Employee reviews carry pay (bonus, salary)."""
    manifest = read_manifest(run_dir)
    kinds: dict[str, dict] = {}
    people: set[str] = set()
    unaddressed = 0
    for report, recipients in recorded_recipients(run_dir, manifest):
        protected = protect.applies(book.settings, report.kind)
        row = kinds.setdefault(report.kind, {"kind": report.kind, "reports": 0, "messages": 0,
                                             "protected": protected,
                                             "pay": report.kind == "employee"})
        row["reports"] += 1
        if not recipients.to:
            unaddressed += 1
            continue
        people.update(a.lower() for a in recipients.all)
        row["messages"] += len(recipients.all) if protected else 1
    order = {"employee": 0, "department": 1, "company": 2}
    rows = tuple(sorted(kinds.values(), key=lambda r: order.get(r["kind"], 3)))
    return SendSummary(rows, sum(r["messages"] for r in rows), len(people), unaddressed)


def _why_nobody(book: Book) -> str:
    """Why not one report of a build has an address (the usual first-month mistakes)."""
    if not any(p.email for p in book.people):
        return "People has no e-mail addresses (fill in the email column)"
    return ("the Recipients sheet gives none of them an address (its rows' tokens name "
            "people without e-mail); fix the rows or delete them to use the defaults")


def _mail_environment(locale: str, dirs: tuple[Path, ...]):
    """The e-mail templates' environment: the reports' sandbox (render.sandbox)."""

    return sandbox(dirs, locale, mail=True)


def _mail_context(book: Book, kind: str, name: str, period: str, recipients: Recipients,
                  names: dict[str, str]) -> dict[str, object]:
    """What the e-mail templates get: the localized period ('March 2026', 'Tháng 3/2026'),
    the names of the people the message is addressed to, and the attachment's name. No pay
    figure is ever part of it."""

    s = book.settings
    fmt = Formatter(s.locale, s.currency)
    year, month = map(int, period.split("-"))
    label = fmt.month(year, month)
    titles = {"employee": s.report_title, "department": fmt.gettext("Department review"),
              "company": fmt.gettext("Company review")}
    to_names = unique([names[a.lower()] for a in recipients.to if a.lower() in names])
    return {"kind": kind, "name": clean_header(name), "period": period,
            "period_label": clean_header(label),
            "period_title": clean_header(label[:1].upper() + label[1:]),
            "organization": clean_header(s.organization),
            "report_title": clean_header(s.report_title),
            "report_name": clean_header(titles[kind]),
            "recipient_names": clean_header(_join_names(to_names, fmt.gettext("and"))),
            "attachment": attachment_name(titles[kind], name, period),
            "lang": s.locale.split("_")[0]}


def _join_names(names: list[str], conjunction: str) -> str:
    """'Priya Nair', 'Priya Nair and Marcus Chen', 'A, B and C'; '' for none or too many
    (a greeting to twelve people reads better as a plain 'Hello,')."""
    if not names or len(names) > 3:
        return ""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


# Letters NFKD does not take apart into an ASCII letter and marks.
_TRANSLITERATE = str.maketrans({"Đ": "D", "đ": "d", "Ø": "O", "ø": "o", "ß": "ss", "Æ": "AE",
                                "æ": "ae", "Œ": "OE", "œ": "oe", "Ł": "L", "ł": "l",
                                "Þ": "Th", "þ": "th", "ı": "i"})


def transliterate(text: str) -> str:
    """ASCII letters for a Unicode text: 'Lê Minh Đức' → 'Le Minh Duc' (never 'Le Minh uc')."""

    text = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    return text.encode("ascii", "ignore").decode()


def attachment_name(title: str, name: str, period: str) -> str:
    """'Performance review - Priya Nair - 2026-03.pdf': what the report is, whose, when.
    Characters no file system takes (/ \\ : * ? " < > |, controls) become spaces."""
    text = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', " ", f"{title} - {name} - {period}")
    return (" ".join(text.split()) or "report")[:120] + ".pdf"


def ascii_name(filename: str, limit: int = 60) -> str:
    """The ASCII fallback of an attachment name, transliterated, at most ``limit``
    characters (it must fit on one header line beside the Unicode name)."""
    stem = filename[:-4] if filename.lower().endswith(".pdf") else filename
    text = " ".join(re.sub(r"[^A-Za-z0-9 ._()-]+", "", transliterate(stem)).split())
    return (text[:limit - 4].rstrip(" -") or "report") + ".pdf"


UTF8_PREFIX = "utf-8''"


def _rfc2231(key: str, value: str) -> str:
    """``key="ascii fallback"; key*0*=utf-8''…; key*1*=…`` (RFC 2231), folded so that no line
    passes 78 characters and no character's bytes are split between two segments."""

    parts = [f'{key}="{ascii_name(value)}"']
    if value != ascii_name(value):
        width = 64 - len(key)
        segments, current = [], ""
        for char in value:
            encoded = quote(char, safe="")
            if len(current) + len(encoded) > width:
                segments.append(current)
                current = ""
            current += encoded
        segments.append(current)
        parts += [f"{key}*{i}*={UTF8_PREFIX if i == 0 else ''}{segment}"
                  for i, segment in enumerate(segments)]
    return ";\n ".join(parts)


def _message(sender: str, recipients: Recipients, subject: str, text: str, html: str,
             pdf: bytes, filename: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(addr_spec=sender)
    message["To"] = [Address(addr_spec=a) for a in recipients.to]
    if recipients.cc:
        message["Cc"] = [Address(addr_spec=a) for a in recipients.cc]
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=ascii_name(filename))
    # Both the Unicode name (RFC 2231, what mail programs show) and an ASCII fallback; set
    # raw because the email package keeps only one of the two when it parses a header.
    part = next(message.iter_attachments())
    del part["Content-Type"], part["Content-Disposition"]
    part.set_raw("Content-Type", "application/pdf;\n " + _rfc2231("name", filename))
    part.set_raw("Content-Disposition", "attachment;\n " + _rfc2231("filename", filename))
    return message


def write_outbox(plan: Plan, outbox: Path) -> list[Path]:
    """--dry-run: every message as an .eml file a mail client opens; nothing is sent."""
    written = []
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        for item in plan.messages:
            stem = item.report.replace("/", "__")
            if item.protected:  # one message per recipient
                stem += "__" + re.sub(r"[^A-Za-z0-9@._-]", "_", item.recipients.to[0])
            path = outbox / (stem + ".eml")
            message = item.message
            if item.recipients.bcc:
                message = _with_bcc_header(message, item.recipients.bcc)
            path.write_bytes(message.as_bytes())
            written.append(path)
    except OSError as exc:
        raise DeliveryError(f"cannot write the outbox {outbox}: {exc.strerror or exc}") from None
    return written


def _with_bcc_header(message: EmailMessage, bcc: tuple[str, ...]) -> EmailMessage:

    preview = copy.deepcopy(message)
    preview["Bcc"] = [Address(addr_spec=a) for a in bcc]
    return preview


# ---------------------------------------------------------------------- corrections and tests
CORRECTION_ITEMS = {  # field: (employee wording, department / company wording)
    "bonus": (N_("Your bonus"), None),
    "recommended_salary": (N_("Your recommended salary"), None),
    "band": (N_("Your band"), None),
    "ytd_score": (N_("Your year-to-date score"), N_("The year-to-date score")),
    "month_score": (N_("Your score for the month"), N_("The score for the month")),
}


def correction_lines(change: dict | None, fmt, *, protected: bool) -> list[str]:
    """The localized sentences of a correction e-mail ('Your bonus changed from $5,917.81
    to $6,120.00.'); [] when the report is not a correction. A protected report's e-mail
    names what changed but no figure: the figures stay inside the encrypted PDF."""
    if not change:
        return []
    _ = fmt.gettext
    lines = []
    for name, (mine, theirs) in CORRECTION_ITEMS.items():
        value = change["fields"].get(name)
        what = mine if change["kind"] == "employee" else theirs
        if value is None or what is None:
            continue
        if protected:
            lines.append(_(N_("%(what)s changed.")) % {"what": _(what)})
            continue
        lines.append(_(N_("%(what)s changed from %(old)s to %(new)s.")) % {
            "what": _(what), "old": _figure(fmt, name, value["old"]),
            "new": _figure(fmt, name, value["new"])})
    if not lines:
        lines.append(_(N_("Figures in the review were updated.")))
    elif protected:
        lines.append(_(N_("The attached review has the new figures.")))
    return lines


def _figure(fmt, name: str, value: object) -> str:
    if value is None:
        return "—"
    if name in ("bonus", "recommended_salary"):
        return fmt.money(value)
    if name.endswith("score"):
        return fmt.percent(value, 1)
    return str(value)


def mark_subject(subject: str, fmt, *, test: bool, correction: bool) -> str:
    """'[TEST] Correction: Performance review: …': kept even by a custom subject template."""
    if correction:
        subject = f"{fmt.gettext(CORRECTION_MARK)} {subject}"
    if test:
        subject = f"{fmt.gettext(TEST_MARK)} {subject}"
    return subject


def whose_copy(fmt, recipients: Recipients, subject: str, text: str, html: str
               ) -> tuple[str, str, str]:
    """A test message says whose copy it is, in its subject and its first line, so two tests of
    the same report to different people can be told apart."""
    to = ", ".join(recipients.all)
    line = fmt.gettext(TEST_COPY_LINE).format(to=to)
    subject = clean_header(f"{subject} ({fmt.gettext(TEST_COPY_SUBJECT).format(to=to)})")
    banner = f"<p><strong>{escape(line)}</strong></p>"
    body = re.search(r"<body[^>]*>", html)
    html = html[:body.end()] + banner + html[body.end():] if body else banner + html
    return subject, f"{line}\n\n{text}", html


TEST_COPY_LINE = N_("Test copy of the message to {to}.")
TEST_COPY_SUBJECT = N_("copy for {to}")
CORRECTION_MARK = N_("Correction:")
TEST_MARK = N_("[TEST]")


def select_entries(entries: list, only: str, run_dir: Path) -> list:
    """The (report, recipients) ``--only`` names: an employee id, a department, COMPANY, or a
    file stem (employees/E003)."""
    key = only.strip().casefold()
    chosen = [(report, recipients) for report, recipients in entries
              if key in (report.scope.casefold(), report.stem.casefold(),
                         report.stem.rsplit("/", 1)[-1].casefold())]
    if not chosen:
        raise KpireportError(f"--only {only}: {run_dir} has no report for it (give an "
                             "employee id, a department name or COMPANY)")
    return chosen
