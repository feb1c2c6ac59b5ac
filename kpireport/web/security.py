"""What stands between the network and the working folder.

* **Where it listens.** 127.0.0.1 by default; there only the names of this machine are
  accepted in the ``Host`` header (a web page elsewhere cannot reach the app through a DNS name
  that points at 127.0.0.1). Any other address needs a token.
* **The token** comes from ``KPIREPORT_SERVE_TOKEN`` or is generated at start and printed as a
  login link; ``/login?token=…`` sets it as a cookie (HttpOnly, SameSite=Strict), and every
  other request without it is refused (401). A token set in the environment is required on
  loopback too.
* **CSRF.** Each browser gets a random session cookie; every form carries
  HMAC(secret, session), checked on every POST, and a POST whose ``Origin`` is another site is
  refused.
* **Request bodies** are counted as they arrive: over the limit (default 50 MB) → 413.
* **Paths.** A name from a request becomes a path only through :func:`child`: one pattern of
  allowed characters, no ``..`` part, and the real path (links resolved) inside the root.
* **Headers.** The app's pages allow scripts from the app only; report previews are served
  with a Content-Security-Policy that allows no script at all (:data:`PREVIEW_CSP`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser

from kpireport.web.errors import PageError
from kpireport.web.labels import _ as N_

TOKEN_ENV = "KPIREPORT_SERVE_TOKEN"
TOKEN_COOKIE = "kpireport_token"
SESSION_COOKIE = "kpireport_session"
DEFAULT_MAX_UPLOAD = 50 * 2**20

APP_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
           "frame-ancestors 'none'")
# Reports carry their CSS inline; no script of any kind, and a sandbox besides.
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
               "font-src 'self' data:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'self'; sandbox allow-same-origin")
COMMON_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                  "cross-origin-opener-policy": "same-origin", "cache-control": "no-store"}
_SESSION = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_token(host: str, environ: dict[str, str]) -> str | None:
    """The token every request must carry: the environment's, else a new one when ``host`` is
    not loopback, else none."""
    given = environ.get(TOKEN_ENV, "").strip()
    if given:
        if len(given) < 16:
            # lazy: this stage loads only when the command reaches it (start-up stays light)
            from kpireport.core.errors import KpireportError

            raise KpireportError(f"{TOKEN_ENV} is too short: use at least 16 characters "
                                 "(e.g. openssl rand -hex 16)")
        return given
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def loopback_hosts(port: int) -> set[str]:
    names = {"127.0.0.1", "localhost", "[::1]"}
    return names | {f"{n}:{port}" for n in names}


class Guard:
    """ASGI middleware: Host check, token, session cookie, body limit and headers."""

    def __init__(self, app, *, secret: bytes, token: str | None = None,
                 allowed_hosts: Iterable[str] | None = None,
                 max_body: int = DEFAULT_MAX_UPLOAD) -> None:
        self.app = app
        self.secret = secret
        self.token = token
        self.allowed_hosts = set(allowed_hosts) if allowed_hosts else None
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.allowed_hosts is not None and headers.get("host", "") not in self.allowed_hosts:
            await _plain(send, 400, "Unknown Host header: open the address the server printed.")
            return
        cookies = cookie_parser(headers.get("cookie", ""))
        if self.token and scope["path"] != "/login" and not self._authorised(cookies, headers):
            await _plain(send, 401, "Sign in with the login link `kpireport serve` printed "
                                    "(…/login?token=…).")
            return
        session = cookies.get(SESSION_COOKIE, "")
        new_session = not _SESSION.match(session)
        if new_session:
            session = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["session"] = session
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            await _plain(send, 413, too_large(self.max_body))
            return
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, too_large(self.max_body))
            return message

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for key, value in COMMON_HEADERS.items():
                    out.setdefault(key, value)
                out.setdefault("content-security-policy", APP_CSP)
                out.setdefault("x-frame-options", "SAMEORIGIN")
                if new_session:
                    out.append("set-cookie", f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; "
                                             "SameSite=Strict")
            await send(message)

        await self.app(scope, counted, send_with_headers)

    def _authorised(self, cookies: dict[str, str], headers: Headers) -> bool:
        offered = cookies.get(TOKEN_COOKIE, "")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered = auth[7:].strip()
        return bool(offered) and hmac.compare_digest(offered.encode(), self.token.encode())


def too_large(limit: int) -> str:
    return f"The upload is larger than {limit / 2**20:.0f} MB, the limit of this server."


async def _plain(send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            *[(k.encode(), v.encode()) for k, v in COMMON_HEADERS.items()]]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------- CSRF
def csrf_token(secret: bytes, session: str) -> str:
    return hmac.new(secret, f"csrf|{session}".encode(), hashlib.sha256).hexdigest()[:40]


def check_csrf(secret: bytes, session: str, offered: str | None, origin: str | None,
               host: str | None) -> None:
    """Refuse a form without this browser's token, or sent from another site (403)."""
    if origin and origin != "null" and host and origin.split("://", 1)[-1] != host:
        raise PageError(403, N_("This form was sent from another site; open the page again."))
    if not offered or not hmac.compare_digest(offered, csrf_token(secret, session)):
        raise PageError(403, N_("The form has expired or was not made by this server (CSRF "
                                "token missing or wrong); open the page again."))


# ---------------------------------------------------------------------------- paths
BOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()\-]{0,150}\.xlsx$")
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
RUN_FILE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-. ]+)*\.(html|pdf)$")


def child(root: Path, name: str, pattern: re.Pattern[str]) -> Path:
    """``root / name`` when ``name`` matches ``pattern``, has no ``..`` part and its real
    path (links resolved) is inside ``root``; otherwise 404, as if it did not exist."""
    if not pattern.match(name) or any(part in ("", ".", "..") for part in name.split("/")):
        raise PageError(404, N_("No such file."))
    path = root / name
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != real_root and real_root not in real.parents:
        raise PageError(404, N_("No such file."))
    return path


def safe_stem(filename: str, limit: int = 40) -> str:
    """Letters, digits, - and _ of an uploaded file's name (without its extension)."""
    stem = Path(filename.replace("\\", "/")).name.rsplit(".", 1)[0]
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:limit]
    return cleaned or "workbook"
