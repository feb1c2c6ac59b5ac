"""Shared fixtures: every test builds its own small workbook in a few lines."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

REQUIRE_TOOLS = os.environ.get("KPIREPORT_REQUIRE_TOOLS") == "1"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "calamine-tests"


def need_tool(name: str) -> str:
    """Path of an external tool; skip when absent, except in CI where absence fails."""
    path = shutil.which(name)
    if path is None:
        if REQUIRE_TOOLS:
            pytest.fail(f"{name} is required in CI (KPIREPORT_REQUIRE_TOOLS=1) but not found")
        pytest.skip(f"{name} is not installed")
    return path


def soffice(tmp_path: Path) -> list[str]:
    """LibreOffice headless, with a profile of its own (parallel test workers don't clash)."""
    return [need_tool("soffice"), f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}",
            "--headless"]


BASE: dict[str, list[list[object]]] = {
    "Settings": [["setting", "value"], ["organization", "Test Co"],
                 ["report_period", "2026-02"]],
    "People": [["employee_id", "name", "department", "email", "manager_id", "base_salary",
                "target_bonus_pct"],
               ["E1", "Alice", "Sales", "alice@x.example", None, 60000, 0.1],
               ["E2", "Bob", "Sales", "bob@x.example", "E1", 50000, 0.1]],
    "KPIs": [["kpi_id", "kpi", "unit", "direction", "aggregation", "formula"],
             ["REV", "Revenue", "currency", "higher", "sum", None],
             ["CAC", "Customer acquisition cost", "currency", "lower", "average", None]],
    "Scorecards": [["owner", "kpi_id", "weight", "target", "threshold", "stretch"],
                   ["E1", "REV", 0.6, 100, 80, 120],
                   ["E1", "CAC", 0.4, 50, None, None],
                   ["E2", "REV", 1.0, 100, None, None]],
    "Actuals": [["owner", "kpi_id", "2026-01", "2026-02"],
                ["E1", "REV", 90, 130], ["E1", "CAC", 40, 60], ["E2", "REV", 100, 95]],
    "Bands": [["band", "min_score", "bonus_payout", "salary_increase"],
              ["Below", 0, 0, 0], ["Meets", 0.95, 1, 0.03], ["Exceeds", 1.1, 1.5, 0.05]],
}


class Literal(str):
    """Text written as a plain string cell even when it starts with '=' (not a formula)."""


def write_xlsx(path: Path, sheets: dict[str, list[list[object]] | None]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        if rows is None:
            continue
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
            for cell, value in zip(sheet[sheet.max_row], row):
                if isinstance(value, Literal):
                    cell.data_type = "s"
    book.save(path)
    return path


@pytest.fixture
def make_workbook(tmp_path):
    """make_workbook(People=[...], Actuals=None, ...) → path of BASE with those sheets replaced
    (None removes a sheet)."""
    counter = {"n": 0}

    def make(name: str | None = None, **sheets):
        counter["n"] += 1
        merged = {**BASE, **sheets}
        return write_xlsx(tmp_path / (name or f"book{counter['n']}.xlsx"), merged)

    return make


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """sample_run("acme") → the run folder of a full build (HTML and PDF) of a committed
    sample, built once per test session (per worker); tests only read it."""
    from kpireport import api

    samples = Path(__file__).resolve().parents[1] / "sample_workbooks"
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            result = api.build(samples / f"{name}.xlsx",
                               out=tmp_path_factory.mktemp(f"sample-{name}"), workers=2)
            assert result.ok, result.failures
            runs[name] = result.run_dir
        return runs[name]

    return get


# ---------------------------------------------------------------------------- SMTP on loopback
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler:
    """Records every message; can refuse recipients, drop connections or stall."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: set[str] = set()
        self.drop_after: int | None = None  # drop the connection after this many messages
        self.dropped = False
        self.stall_on: int | None = None  # hang on this message number (1-based)
        self.stalled = threading.Event()
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        if self.drop_after is not None and len(self.messages) == self.drop_after \
                and not self.dropped:
            self.dropped = True
            server.transport.close()  # the server goes away between two messages
            return "421 4.3.2 shutting down"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import asyncio

        with self.lock:
            number = len(self.messages) + 1
        if self.stall_on == number:
            self.stalled.set()
            await asyncio.sleep(60)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


@pytest.fixture
def smtp():
    """smtp(handler=None, **controller options) → (handler, port): a real SMTP server
    (aiosmtpd) on loopback, stopped after the test."""
    servers = []

    def start(handler=None, **kwargs):
        from aiosmtpd.controller import Controller

        handler = handler or Handler()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        servers.append(controller)
        return handler, port

    yield start
    for controller in servers:
        controller.stop()
