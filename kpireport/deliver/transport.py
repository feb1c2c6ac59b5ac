"""Transports: SMTP (retries, deadlines, TLS) and an in-memory one for tests."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from kpireport.core.errors import DeliveryError


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
        # lazy: smtplib is loaded only where it is used (start-up stays light)
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
        # lazy: smtplib is loaded only where it is used (start-up stays light)
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
        # lazy: smtplib is loaded only where it is used (start-up stays light)
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
