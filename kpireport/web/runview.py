"""What a run's pages show: its language, its delivery table, its bonus pool and clawbacks,
formatted from the run folder's files (results.json and the send ledger's state)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path


def run_locale(run_dir: Path) -> str:
    try:
        return str(json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
                   .get("locale") or "en_US")
    except (OSError, ValueError, AttributeError):
        return "en_US"


def delivery(state: dict) -> list[dict]:
    """Every recipient of the run with its state (sent, failed, not sent …), from
    :func:`kpireport.month.cycle.status`."""
    return [{"report": r["report"], "name": r.get("name"), "recipient": r["recipient"],
             "state": r["state"], "detail": r.get("detail") or "",
             "updated": when(r.get("updated"))}
            for r in state["delivery"]["recipients"]]


def when(stamp: str | None) -> str:
    """An ISO 8601 time of the ledger or the audit log as people read it (UTC)."""
    if not stamp:
        return ""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo else "")


def pool_figures(pool: object, locale: str, currency: str) -> dict | None:
    """results.json's bonus pool as the run and approve pages show it (None: not recorded,
    a build made before kpireport kept it)."""
    if not isinstance(pool, dict) or not isinstance(pool.get("projection"), dict):
        return None
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.i18n import Formatter

    fmt = Formatter(locale, currency)
    band = pool["projection"]
    return {"paid": fmt.money(pool.get("paid_to_date")),
            "earned": fmt.money(pool.get("earned_to_date")),
            "expected": fmt.money(band.get("expected")), "low": fmt.money(band.get("low")),
            "high": fmt.money(band.get("high")), "months_left": band.get("months_left") or 0}


def clawback_lines(results: dict) -> list[dict]:
    """The clawback lines of results.json (with bonus_payment), as the approve step lists
    them: kpireport never deducts one."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.core.i18n import Formatter

    fmt = Formatter(results.get("locale") or "en_US", results.get("currency") or "USD")
    return [{"name": c.get("name"), "owner": c.get("owner"),
             "earned": fmt.money(c.get("earned_to_date")), "paid": fmt.money(c.get("paid_to_date")),
             "clawback": fmt.money(c["clawback"])}
            for c in results.get("scorecards", [])
            if isinstance(c, dict) and isinstance(c.get("clawback"), (int, float))]


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
