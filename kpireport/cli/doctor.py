"""``kpireport doctor``: what this machine has, what is missing, and what it costs."""

from __future__ import annotations

import os
import shutil
import socket
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    cost: str = ""  # what missing it costs


def diagnose() -> list[Finding]:
    """Look at the libraries and fonts kpireport relies on; import nothing heavy twice."""

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.resources import builtin_templates

    findings = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # lazy: weasyprint is loaded only where it is used (start-up stays light)
            import weasyprint

            # lazy: weasyprint is loaded only where it is used (start-up stays light)
            from weasyprint.text import ffi
        number = ffi.pango.pango_version()
        pango = f"{number // 10000}.{number // 100 % 100}.{number % 100}"
        findings.append(Finding("WeasyPrint", True, f"{weasyprint.__version__}, Pango {pango}"))
        subset = ffi.harfbuzz_subset is not None
        findings.append(Finding(
            "HarfBuzz subsetter (libharfbuzz-subset0)", subset,
            "found: fonts are subset in C" if subset else "missing: fonts are subset by "
            "fontTools in Python",
            "" if subset else "PDF output about 3x slower (measured 3.2x); apt-get install "
            "libharfbuzz-subset0"))
    except (OSError, ImportError) as exc:
        findings.append(Finding("WeasyPrint", False, f"cannot load: {exc}",
                                "no PDF reports; install Pango (apt-get install "
                                "libpango-1.0-0 libpangoft2-1.0-0)"))
    fonts = builtin_templates() / "fonts"
    needed = ["NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "KpiSymbols.ttf"]
    missing = [f for f in needed if not (fonts / f).exists()]
    findings.append(Finding("report fonts (shipped)", not missing,
                            "Noto Sans + KPI Symbols, embedded in every PDF" if not missing
                            else f"missing {', '.join(missing)}",
                            "" if not missing else "PDFs fall back to system fonts; "
                            "reinstall kpireport"))
    try:
        # lazy: lxml is loaded only where it is used (start-up stays light)
        import lxml  # noqa: F401

        findings.append(Finding("lxml", True, "openpyxl writes templates with lxml"))
    except ImportError:
        findings.append(Finding("lxml", False, "missing", "init and prepare ~20% slower"))
    try:
        # lazy: distributed is loaded only where it is used (start-up stays light)
        import distributed  # noqa: F401

        findings.append(Finding("Dask distributed (optional)", True, "build --dask works"))
    except ImportError:
        findings.append(Finding("Dask distributed (optional)", False, "not installed",
                                "no --dask; pip install 'kpireport[dask]'"))
    findings.append(Finding("CPU cores", True, f"{os.cpu_count()} (default --workers)"))
    for tool, use in (("pdftoppm", "tests: PDF to PNG"), ("chromium", "tests: HTML in a browser"),
                      ("soffice", "tests: LibreOffice round trip")):
        found = shutil.which(tool)
        findings.append(Finding(f"{tool} (optional)", bool(found), found or "not found",
                                "" if found else f"only for {use}"))
    return findings


def check_smtp(settings, sender: str | None) -> list[Finding]:
    """``doctor --smtp``: connect, EHLO, STARTTLS and AUTH as ``send`` would, and ask whether
    the sender is accepted (MAIL FROM, then RSET) — nothing is sent. One finding per step; the
    first step that fails ends the check. The password is never shown."""
    # lazy: smtplib is loaded only where it is used (start-up stays light)
    import smtplib

    # lazy: ssl is loaded only where it is used (start-up stays light)
    import ssl

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.errors import DeliveryError

    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.deliver.transport import _login

    s = settings
    found: list[Finding] = []
    where = f"{s.host}:{s.port}"

    def fail(step: str, detail: str, fix: str) -> list[Finding]:
        found.append(Finding(step, False, detail, fix))
        return found

    context = s.context or ssl.create_default_context()
    try:
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(timeout=s.timeout)
        smtp._host = s.host  # what SMTP(host) sets; STARTTLS verifies the name against it
        code, greeting = smtp.connect(s.host, s.port)  # (the constructor drops the greeting)
    except ssl.SSLError as exc:
        return fail("connect (TLS)", f"{where}: TLS failed: {exc.reason or exc}",
                    "check the port (465 for ssl) and the server's certificate")
    except (OSError, smtplib.SMTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if isinstance(exc, socket.timeout):
            reason = f"no answer within {s.timeout:g} s"
        return fail("connect", f"{where}: {reason}",
                    "check KPIREPORT_SMTP_HOST / _PORT and the firewall")
    try:
        banner = greeting.decode("utf-8", "replace").strip() if code == 220 else ""
        if code != 220:
            return fail("connect", f"{where} answered {code} instead of 220",
                        "is this an SMTP port?")
        found.append(Finding("connect", True, f"{where} ({s.security})" +
                             (f": {banner}" if banner else "")))
        code, _ = smtp.ehlo()
        if code != 250:
            return fail("EHLO", f"the server answered {code}", "the server does not speak ESMTP")
        found.append(Finding("EHLO", True, "offers " + (", ".join(
            k.upper() for k in smtp.esmtp_features) or "nothing")))
        if s.security == "starttls":
            if not smtp.has_extn("starttls"):
                return fail("STARTTLS", "not offered",
                            "use KPIREPORT_SMTP_SECURITY=ssl (port 465), or ask the mail admin")
            try:
                smtp.starttls(context=context)
            except ssl.SSLError as exc:
                return fail("STARTTLS", f"TLS failed: {exc.reason or exc}",
                            "the server's certificate is not trusted or not for this host "
                            "name")
            smtp.ehlo()
        if s.security in ("starttls", "ssl"):
            sock = smtp.sock
            version = sock.version() if hasattr(sock, "version") else "TLS"
            found.append(Finding("STARTTLS" if s.security == "starttls" else "TLS", True,
                                 f"{version}, certificate for {s.host} verified"))
        if s.user:
            if not s.password:
                return fail("AUTH", f"user {s.user!r} but KPIREPORT_SMTP_PASSWORD is not set",
                            "export KPIREPORT_SMTP_PASSWORD")
            try:
                _login(smtp, s.user, s.password)
            except smtplib.SMTPAuthenticationError as exc:
                return fail("AUTH", f"the server refused the login for {s.user!r} "
                            f"({exc.smtp_code})", "check KPIREPORT_SMTP_USER / _PASSWORD")
            except (DeliveryError, smtplib.SMTPException) as exc:
                return fail("AUTH", str(exc), "check the server's AUTH methods")
            found.append(Finding("AUTH", True, f"logged in as {s.user}"))
        else:
            found.append(Finding("AUTH", True, "not used (KPIREPORT_SMTP_USER is not set)"))
        if not sender:
            return fail("sender", "no sender", "set KPIREPORT_SMTP_FROM or --from")
        code, text = smtp.mail(sender)
        smtp.rset()
        if code != 250:
            answer = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            return fail("sender", f"MAIL FROM:<{sender}> refused: {code} {answer}",
                        "use an address this login may send as")
        found.append(Finding("sender", True, f"{sender} accepted (MAIL FROM, then RSET: "
                             "nothing was sent)"))
    except (OSError, smtplib.SMTPException) as exc:
        return fail("connection", f"lost: {exc}", "try again; check the server")
    finally:
        try:
            smtp.quit()
        except Exception:  # closing a connection the server already dropped
            smtp.close()
    return found
