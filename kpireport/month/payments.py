"""Paid to date from the run folders (SPEC §2.8): the ``payable_now`` of the fiscal year's
earlier runs that were approved and sent.

A month counts with the build that was sent: the run folder's own results when the month was
sent since it was built (or last reopened), else — reopened and rebuilt, the correction not
sent yet — the build that was sent before the reopen, kept in ``sent/`` (kpireport.month.cycle).
A month that was built but never sent paid nothing.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from kpireport.core.model import Book, month_label
from kpireport.month import audit
from kpireport.month.cycle import SENT, approval, was_sent


def paid_from_runs(out: str | Path, book: Book) -> dict[str, Decimal]:
    """Per employee, the ``payable_now`` of the runs under ``out`` of the fiscal year of
    ``book``'s report month, before it, that were approved and sent."""
    period = book.settings.report_period
    assert period is not None
    start = period - (period % 12 - (book.settings.fiscal_year_start_month - 1)) % 12
    paid: dict[str, Decimal] = {}
    for month in range(start, period):
        document = sent_results(Path(out) / month_label(month))
        for card in (document or {}).get("scorecards", []):
            amount = card.get("payable_now") if isinstance(card, dict) else None
            if card.get("owner_type") == "employee" and isinstance(amount, (int, float)) \
                    and not isinstance(amount, bool):
                owner = str(card.get("owner"))
                paid[owner] = paid.get(owner, Decimal(0)) + Decimal(repr(float(amount)))
    return paid


def sent_results(run_dir: Path) -> dict | None:
    """results.json of the build of ``run_dir`` that was approved and sent (None: none was)."""
    if not (run_dir / "results.json").is_file():
        return None
    trail = audit.verify(run_dir)
    if not trail.valid:
        return None
    if was_sent(run_dir, trail):
        builds = [r for r in trail.records if r.get("action") == "build"]
        required = builds[-1].get("require_approval") is not False if builds else True
        if required and not approval(run_dir, trail=trail)["valid"]:
            return None
        return _read(run_dir / "results.json")
    if (run_dir / SENT / "results.json").is_file():
        return _read(run_dir / SENT / "results.json")
    return None


def _read(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def clawbacks(run_dir: str | Path) -> list[dict]:
    """The clawback lines of a run (results.json): owner, name, earned, paid, clawback —
    what ``approve`` lists; kpireport never deducts them."""
    document = _read(Path(run_dir) / "results.json") or {}
    return [{"owner": c.get("owner"), "name": c.get("name"),
             "earned_to_date": c.get("earned_to_date"), "paid_to_date": c.get("paid_to_date"),
             "clawback": c.get("clawback")}
            for c in document.get("scorecards", [])
            if isinstance(c, dict) and isinstance(c.get("clawback"), (int, float))]


def clawback_text(run_dir: str | Path) -> list[str]:
    """The clawback lines as ``approve`` prints them (none: an empty list)."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month.diff import _formatter

    document = _read(Path(run_dir) / "results.json") or {}
    fmt = _formatter(document)
    found = clawbacks(run_dir)
    if not found:
        return []
    lines = [f"Clawback: {len(found)} employee(s) earned less than they were paid this "
             "fiscal year; nothing is deducted (payroll.csv marks them in its clawback column):"]
    for c in found:
        lines.append(f"  {c['name']} ({c['owner']}): earned {fmt.money(c['earned_to_date'])}, "
                     f"paid {fmt.money(c['paid_to_date'])}, clawback "
                     f"{fmt.money(c['clawback'])}")
    return lines
