"""E-mail delivery: recipients, messages, transports and the exactly-once send ledger.

``plan_messages`` turns a build into messages (one per report and recipient set);
``send_messages`` delivers them through a transport, recording every recipient in a SQLite
ledger in the run folder: "sending" before the SMTP transaction, "sent" or "failed" after.
A re-run skips what was sent, retries what failed, and reports what is unknown (a run killed
mid-send) instead of sending it twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from kpireport import protect
from kpireport.cells import EMAIL
from kpireport.errors import DeliveryError
from kpireport.manifest import FileEntry, Manifest, ReportEntry, read_manifest, sha256
from kpireport.model import Book, Person
from kpireport.validate import split_addresses

LEDGER = ".send-ledger.sqlite"
RECIPIENTS_FILE = "recipients.json"
_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")


# ---------------------------------------------------------------------------- recipients
@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for address in self.to + self.cc + self.bcc:
            seen.setdefault(address.lower(), None)
        return tuple(seen)


class RecipientResolver:
    """SPEC §1 Recipients: rules from the sheet (or the defaults) and the tokens."""

    def __init__(self, book: Book, period: int | None = None) -> None:
        from kpireport.results import employment

        self.book = book
        # People not employed in the report month (left, not started) receive nothing.
        self.gone = {p.employee_id for p in book.people
                     if period is not None and employment(p, period) != "employed"}
        self.people = {p.employee_id: p for p in book.people if p.employee_id not in self.gone}

    def heads(self, department: str | None) -> list[Person]:
        """People of the department whose manager is blank, outside it or gone (None: the
        company)."""
        found = []
        for person in self.people.values():
            if department is not None and person.department != department:
                continue
            manager = self.people.get(person.manager_id or "")
            if manager is None or (department is not None and manager.department != department):
                found.append(person)
        return found

    def rules(self, report: str, scope: str, department: str | None) -> list:
        """The sheet's rules for this report; SPEC §1's defaults when the sheet is missing,
        has no data rows (the template writes only the header), or no row for this kind."""
        rows = [r for r in self.book.recipients or () if r.report == report]
        if not rows:
            defaults = {"employee": ("{employee}", "{manager}"), "department": ("{head}", ""),
                        "company": ("{head}", "")}
            to, cc = defaults[report]
            return [(to, cc, "")]
        for wanted in (scope, department, "*"):
            chosen = [(r.to, r.cc, r.bcc) for r in rows if wanted is not None and r.scope == wanted]
            if chosen:
                return chosen
        return []

    def resolve(self, report: str, scope: str) -> Recipients:
        person = self.people.get(scope) if report == "employee" else None
        department = person.department if person else scope if report == "department" else None
        lists: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
        problems: list[str] = []
        for rule in self.rules(report, scope, department):
            for kind, text in zip(("to", "cc", "bcc"), rule):
                for entry in split_addresses(text):
                    lists[kind] += self._expand(entry, report, person, department, problems)
        to = _unique(lists["to"])
        cc = [a for a in _unique(lists["cc"]) if a not in to]
        bcc = [a for a in _unique(lists["bcc"]) if a not in to and a not in cc]
        if not to and (cc or bcc):
            to, cc = cc[:1], cc[1:]
        return Recipients(tuple(to), tuple(cc), tuple(bcc), tuple(problems))

    def _expand(self, entry: str, report: str, person: Person | None, department: str | None,
                problems: list[str]) -> list[str]:
        token = entry.lower()
        if token == "{employee}":
            if person is None:
                return []
            return self._email(person, problems)
        if token == "{manager}":
            if person is not None and person.manager_id in self.gone:
                problems.append(f"{person.name}'s manager {person.manager_id} is no longer "
                                "employed; not sent to them")
                return []
            manager = self.people.get(person.manager_id or "") if person else None
            return self._email(manager, problems) if manager else []
        if token == "{head}":
            scope = None if report == "company" else department
            return [a for head in self.heads(scope) for a in self._email(head, problems)]
        return [validate_address(entry)]

    @staticmethod
    def _email(person: Person, problems: list[str]) -> list[str]:
        if not person.email:
            problems.append(f"{person.name} ({person.employee_id}) has no e-mail address")
            return []
        return [validate_address(person.email)]


def validate_address(text: str) -> str:
    """Exactly one plain address; anything ambiguous (display names, lists, CR/LF) is refused."""
    if not isinstance(text, str) or _LINE_BREAKS.search(text) or not EMAIL.match(text.strip()):
        raise DeliveryError(f"{text!r} is not a single valid e-mail address")
    return text.strip()


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return list(seen.values())


def clean_header(text: str) -> str:
    """Header text with every line break and control character replaced by a space."""
    return " ".join(_LINE_BREAKS.sub(" ", text).split())


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


def recipients_record(book: Book, period: int, reports: tuple[ReportEntry, ...]) -> bytes:
    """RECIPIENTS_FILE of a build: every PDF report with the recipients resolved now.

    ``send`` mails these addresses, so a workbook edited after the build (a new manager, a
    changed Recipients sheet) cannot redirect reports that were built (and approved) for
    others. ``period`` is the report month; ``reports`` the manifest's entries of the build.
    """
    from kpireport.model import month_label

    resolver = RecipientResolver(book, period)
    records = []
    for report in reports:
        if report.kind == "index" or report.pdf is None:
            continue
        try:
            r = resolver.resolve(report.kind, report.scope)
        except DeliveryError as exc:  # validation refuses bad addresses; kept as a problem
            r = Recipients((), problems=(str(exc),))
        records.append({"kind": report.kind, "scope": report.scope, "file": report.stem,
                        "name": report.name, "to": list(r.to), "cc": list(r.cc),
                        "bcc": list(r.bcc), "problems": list(r.problems)})
    record = {"schema": "kpireport/recipients@1", "period": month_label(period),
              "source": {"file": book.source_file, "sha256": book.source_sha256},
              "reports": records}
    return json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8")


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
    from kpireport.render import inside

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
                  templates: Path | None = None) -> Plan:
    """Build every message of the run folder (nothing is sent).

    The reports are the build's manifest's, the recipients the ones the build recorded; a
    report whose PDF is not the one the manifest lists (edited, replaced) stops the send.
    """
    from kpireport.render import template_dirs

    manifest = read_manifest(run_dir)
    sender = validate_address(sender)
    recorded = recorded_recipients(run_dir, manifest)
    if not recorded:
        raise DeliveryError(f"nothing to send: {run_dir} has no PDF reports (build with "
                            "--format pdf, or html,pdf)")
    env = _mail_environment(book.settings.locale, template_dirs(templates))
    protection = protect.Protection.start(book, run_dir.parent)
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
        context = _mail_context(book, kind, name, manifest.period, recipients, names)
        context.update(protected=protected, password_hint=protection.hint)
        subject = clean_header(env.get_template("email_subject.txt").render(**context))
        text = env.get_template("email_body.txt").render(**context)
        html = env.get_template("email_body.html").render(**context)
        filename = context["attachment"]
        digest = hashlib.sha256(pdf + subject.encode() + text.encode()).hexdigest()
        if not protected:
            message = _message(sender, recipients, subject, text, html, pdf, filename)
            messages.append(Outgoing(stem, recipients, message, digest))
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
                   "protected": True, "password_hint": protection.hint}  # greeted by name
            message = _message(sender, alone,
                               clean_header(env.get_template("email_subject.txt").render(**own)),
                               env.get_template("email_body.txt").render(**own),
                               env.get_template("email_body.html").render(**own),
                               encrypted, filename)
            messages.append(Outgoing(stem, alone, message, digest, protected=True))
    if not messages and unaddressed:
        raise DeliveryError(f"no recipient for {unaddressed} reports: {_why_nobody(book)}")
    if not messages:
        raise DeliveryError("nothing to send: no recipient of these reports has a PDF "
                            f"password ({problems[0] if problems else 'none'})")
    return Plan(messages, problems)


def _why_nobody(book: Book) -> str:
    """Why not one report of a build has an address (the usual first-month mistakes)."""
    if not any(p.email for p in book.people):
        return "People has no e-mail addresses (fill in the email column)"
    return ("the Recipients sheet gives none of them an address (its rows' tokens name "
            "people without e-mail); fix the rows or delete them to use the defaults")


def _mail_environment(locale: str, dirs: tuple[Path, ...]):
    from jinja2 import StrictUndefined, select_autoescape
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from kpireport.i18n import translations
    from kpireport.render import template_loader

    env = ImmutableSandboxedEnvironment(
        loader=template_loader(dirs),
        autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"], keep_trailing_newline=True)
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def _mail_context(book: Book, kind: str, name: str, period: str, recipients: Recipients,
                  names: dict[str, str]) -> dict[str, object]:
    """What the e-mail templates get: the localized period ('March 2026', 'Tháng 3/2026'),
    the names of the people the message is addressed to, and the attachment's name. No pay
    figure is ever part of it."""
    from kpireport.i18n import Formatter

    s = book.settings
    fmt = Formatter(s.locale, s.currency)
    year, month = map(int, period.split("-"))
    label = fmt.month(year, month)
    titles = {"employee": s.report_title, "department": fmt.gettext("Department review"),
              "company": fmt.gettext("Company review")}
    to_names = _unique([names[a.lower()] for a in recipients.to if a.lower() in names])
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
    import unicodedata

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
    from urllib.parse import quote

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


# ---------------------------------------------------------------------------- transports
class Transport(Protocol):
    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> dict[str, str]:
        """Deliver; return the refused recipients with the server's reason."""

    def close(self) -> None: ...


class TemporaryFailure(Exception):
    """A 4xx answer or a dropped connection: worth retrying. ``unreachable``: the server could
    not be reached or did not answer in time (refused, 4xx greeting, timeout)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class PermanentFailure(Exception):
    """A 5xx answer for the whole message (too big, sender refused …)."""


@dataclass
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"  # starttls / ssl / none
    user: str | None = None
    password: str | None = None
    sender: str | None = None
    timeout: float = 30.0  # seconds per network operation; an attempt gets 3× this in all
    context: ssl.SSLContext | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str], **overrides) -> SmtpSettings:
        get = lambda key: environ.get(f"KPIREPORT_SMTP_{key}") or None  # noqa: E731
        security = (overrides.get("security") or get("SECURITY") or "starttls").lower()
        if security not in ("starttls", "ssl", "none"):
            raise DeliveryError(f"KPIREPORT_SMTP_SECURITY={security!r}: use starttls, ssl or none")
        host = overrides.get("host") or get("HOST")
        if not host:
            raise DeliveryError("no SMTP server: set KPIREPORT_SMTP_HOST or --smtp-host")
        port_text = overrides.get("port") or get("PORT") or {"ssl": 465, "starttls": 587,
                                                             "none": 25}[security]
        try:
            port = int(port_text)
        except ValueError:
            raise DeliveryError(f"SMTP port {port_text!r} is not a number") from None
        if security == "none" and not _loopback(host):
            raise DeliveryError(f"plain SMTP (security none) is allowed only on loopback, not "
                                f"{host}; use starttls or ssl")
        timeout = _seconds("KPIREPORT_SMTP_TIMEOUT", get("TIMEOUT"), 30.0)
        return cls(host=host, port=port, security=security,
                   user=overrides.get("user") or get("USER"), password=get("PASSWORD"),
                   sender=overrides.get("sender") or get("FROM"), timeout=timeout)


def _seconds(name: str, text: str | None, default: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise DeliveryError(f"{name}={text!r}: give seconds, e.g. {default:g}")
    return value


def backoff_from_env(environ: dict[str, str]) -> float:
    """KPIREPORT_SMTP_BACKOFF: the first retry's wait in seconds (then doubled), default 1."""
    return _seconds("KPIREPORT_SMTP_BACKOFF", environ.get("KPIREPORT_SMTP_BACKOFF") or None, 1.0)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpTransport:
    """One SMTP connection for the whole run, reopened if the server drops it.

    Every attempt (connecting, or one message) is bounded: ``timeout`` per network operation
    and three times that in all, so a server that stalls or trickles bytes costs a known time.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp = None

    def _connect(self):
        import smtplib

        s = self.settings
        context = s.context or ssl.create_default_context()
        smtp = (smtplib.SMTP_SSL(timeout=s.timeout, context=context) if s.security == "ssl"
                else smtplib.SMTP(timeout=s.timeout))
        smtp._host = s.host  # the TLS server name; set by the constructor only when it connects
        try:
            with _deadline(smtp, 3 * s.timeout):
                code, text = smtp.connect(s.host, s.port)
                if code != 220:
                    smtp.close()
                    if 400 <= code < 500:
                        raise TemporaryFailure(f"the server is not ready: {_answer(code, text)}",
                                               unreachable=True)
                    raise DeliveryError(f"the SMTP server {s.host}:{s.port} refused the "
                                        f"connection: {_answer(code, text)}")
                if s.security == "starttls":
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        smtp.close()
                        raise DeliveryError(f"{s.host}:{s.port} does not offer STARTTLS")
                    smtp.starttls(context=context)
                smtp.ehlo()
                if s.user:
                    _login(smtp, s.user, s.password or "")
        except smtplib.SMTPAuthenticationError:
            smtp.close()
            raise DeliveryError(f"the SMTP server {s.host} refused the login for user "
                                f"{s.user!r}") from None
        except ssl.SSLError as exc:
            smtp.close()
            raise DeliveryError(f"TLS with {s.host}:{s.port} failed: {exc.reason or exc}") from None
        except smtplib.SMTPResponseException as exc:
            smtp.close()
            if 400 <= exc.smtp_code < 500:
                raise TemporaryFailure(f"the server is not ready: "
                                       f"{_answer(exc.smtp_code, exc.smtp_error)}",
                                       unreachable=True) from None
            raise DeliveryError(f"the SMTP server {s.host}:{s.port} refused the connection: "
                                f"{_answer(exc.smtp_code, exc.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise TemporaryFailure(f"cannot connect to the SMTP server {s.host}:{s.port}: "
                                   f"{_reason(exc)}", unreachable=True) from None
        return smtp

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> dict[str, str]:
        import smtplib

        if self._smtp is None:
            self._smtp = self._connect()
        try:
            with _deadline(self._smtp, 3 * self.settings.timeout):
                refused = self._smtp.send_message(message, from_addr=sender,
                                                  to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            return {r: _answer(code, text) for r, (code, text) in exc.recipients.items()}
        except smtplib.SMTPServerDisconnected as exc:
            self._smtp = None
            raise TemporaryFailure(f"the server closed the connection ({exc})") from None
        except smtplib.SMTPResponseException as exc:
            self._reset()
            if 400 <= exc.smtp_code < 500:
                raise TemporaryFailure(_answer(exc.smtp_code, exc.smtp_error)) from None
            raise PermanentFailure(_answer(exc.smtp_code, exc.smtp_error)) from None
        except TimeoutError:
            self._drop()
            raise TemporaryFailure(f"the server did not answer within {self.settings.timeout:g} s",
                                   unreachable=True) from None
        except OSError as exc:
            self._drop()
            raise TemporaryFailure(f"network error ({_reason(exc)})") from None
        return {r: _answer(code, text) for r, (code, text) in refused.items()}

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    def _reset(self) -> None:
        try:
            self._smtp.rset()  # type: ignore[union-attr]
        except Exception:  # the connection is gone; the next send reconnects
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                with _deadline(self._smtp, self.settings.timeout):
                    self._smtp.quit()
            except Exception:  # closing a dead connection is not an error worth reporting
                pass
            self._smtp = None


@contextmanager
def _deadline(smtp, seconds: float) -> Iterator[None]:
    """Cut the connection after ``seconds`` in all: the socket timeout bounds each read, this
    bounds a server that answers one byte at a time. The cut surfaces as a timeout."""
    import socket

    fired = threading.Event()

    def cut() -> None:
        fired.set()
        sock = getattr(smtp, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    except (OSError, EOFError) as exc:
        if fired.is_set() and not isinstance(exc, TimeoutError):
            raise TimeoutError(f"no complete answer within {seconds:g} s") from None
        raise
    except Exception as exc:
        import smtplib

        if fired.is_set() and isinstance(exc, smtplib.SMTPServerDisconnected):
            raise TimeoutError(f"no complete answer within {seconds:g} s") from None
        raise
    finally:
        timer.cancel()


def _login(smtp, user: str, password: str) -> None:
    """AUTH with the first mechanism both sides know; one failure is final (no fallback
    round-trips that some servers answer by hanging)."""
    advertised = (smtp.esmtp_features.get("auth") or "").upper().split()
    smtp.user, smtp.password = user, password
    for name, method in (("PLAIN", smtp.auth_plain), ("LOGIN", smtp.auth_login),
                         ("CRAM-MD5", smtp.auth_cram_md5)):
        if name in advertised:
            smtp.auth(name, method)
            return
    raise DeliveryError("the SMTP server offers no login method kpireport knows "
                        f"({' '.join(advertised) or 'none'}); unset KPIREPORT_SMTP_USER?")


def _answer(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class MemoryTransport:
    """Keeps messages in a list: for tests and previews."""

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.sent: list[tuple[EmailMessage, str, list[str]]] = []
        self.refuse = refuse or {}

    def send(self, message, sender, recipients):
        refused = {r: self.refuse[r] for r in recipients if r in self.refuse}
        self.sent.append((message, sender, [r for r in recipients if r not in refused]))
        return refused

    def close(self) -> None:
        pass


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
    import copy

    preview = copy.deepcopy(message)
    preview["Bcc"] = [Address(addr_spec=a) for a in bcc]
    return preview


# ---------------------------------------------------------------------------- ledger
class Ledger:
    """Per (report, recipient, content hash): sending → sent / failed.

    Opening it checks that the run folder can be written and that no other program holds
    the database locked, so both are one clear line before anything is sent.
    """

    def __init__(self, path: Path, *, timeout: float = 3.0) -> None:
        import tempfile

        self.path = Path(path)
        try:
            tempfile.TemporaryFile(dir=self.path.parent).close()
        except OSError as exc:
            raise DeliveryError(f"cannot send from {self.path.parent}: {exc.strerror or exc} "
                                "(the send ledger is kept in the run folder)") from None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=timeout)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("""CREATE TABLE IF NOT EXISTS sends (
                report TEXT NOT NULL, recipient TEXT NOT NULL, content_hash TEXT NOT NULL,
                state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL,
                PRIMARY KEY (report, recipient, content_hash))""")
            self.db.execute("BEGIN IMMEDIATE")  # can we write? (a lock held elsewhere: no)
            self.db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> DeliveryError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return DeliveryError(f"the send ledger {self.path} is locked by another program; "
                                 "close it and send again")
        return DeliveryError(f"cannot use the send ledger {self.path}: {text}")

    def state(self, item: Outgoing, recipient: str) -> str | None:
        try:
            row = self.db.execute(
                "SELECT state FROM sends WHERE report=? AND recipient=? AND content_hash=?",
                (item.report, recipient.lower(), item.content_hash)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return row[0] if row else None

    def mark(self, item: Outgoing, recipients: list[str], state: str, detail: str = "") -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        try:
            with self.db:
                self.db.executemany(
                    "INSERT INTO sends VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(report, recipient, "
                    "content_hash) DO UPDATE SET state=excluded.state, detail=excluded.detail, "
                    "updated=excluded.updated",
                    [(item.report, r.lower(), item.content_hash, state, detail, now)
                     for r in recipients])
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        self.db.close()


@dataclass
class SendOutcome:
    sent: list[tuple[str, str]] = field(default_factory=list)  # (report, recipient)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # sent before
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (report, rcpt, reason)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # killed mid-send before

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unknown


def send_messages(plan: Plan, transport: Transport, ledger: Ledger, sender: str, *,
                  resend: bool = False, retries: int = 3, backoff: float = 1.0,
                  progress: Callable[[str], None] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> SendOutcome:
    """Send each message to the recipients the ledger has not seen it delivered to.

    A temporary failure (4xx, dropped connection, timeout) is retried ``retries`` times after
    ``backoff``, 2×, 4× … seconds, on a new connection when the old one is gone. When every
    attempt of a message failed because the server could not be reached or did not answer,
    the run stops there: the remaining messages are reported as failed ("not sent") without
    trying them, so a dead or stalled server costs the time of one message's retries.
    """
    outcome = SendOutcome()
    stopped: str | None = None
    try:
        for item in plan.messages:
            pending = []
            for recipient in item.recipients.all:
                state = None if resend else ledger.state(item, recipient)
                if state == "sent":
                    outcome.skipped.append((item.report, recipient))
                elif state == "sending":
                    outcome.unknown.append((item.report, recipient))
                else:
                    pending.append(recipient)
            if pending and stopped:
                outcome.failed += [(item.report, r, stopped) for r in pending]
            elif pending:
                unreachable = _deliver(item, pending, transport, ledger, sender, outcome,
                                       retries, backoff, sleep)
                if unreachable:
                    stopped = f"not sent: the run stopped after the server failed ({unreachable})"
            if progress:
                progress(item.report)
    finally:
        transport.close()
    return outcome


def _deliver(item, pending, transport, ledger, sender, outcome, retries, backoff,
             sleep) -> str | None:
    """Send one message; the reason when every attempt found the server unreachable."""
    ledger.mark(item, pending, "sending")
    attempt = 0
    all_unreachable = True
    while True:
        try:
            refused = transport.send(item.message, sender, pending)
            break
        except TemporaryFailure as exc:
            all_unreachable = all_unreachable and exc.unreachable
            attempt += 1
            if attempt > retries:
                ledger.mark(item, pending, "failed", str(exc))
                outcome.failed += [(item.report, r, str(exc)) for r in pending]
                return str(exc) if all_unreachable else None
            sleep(backoff * 2 ** (attempt - 1))
        except PermanentFailure as exc:
            ledger.mark(item, pending, "failed", str(exc))
            outcome.failed += [(item.report, r, str(exc)) for r in pending]
            return None
        except DeliveryError as exc:  # no connection at all: nothing of this message left
            ledger.mark(item, pending, "failed", str(exc))
            raise
    refused_lower = {r.lower(): reason for r, reason in refused.items()}
    delivered = [r for r in pending if r.lower() not in refused_lower]
    if delivered:
        ledger.mark(item, delivered, "sent")
        outcome.sent += [(item.report, r) for r in delivered]
    for recipient in pending:
        reason = refused_lower.get(recipient.lower())
        if reason is not None:
            ledger.mark(item, [recipient], "failed", reason)
            outcome.failed.append((item.report, recipient, reason))
    return None
