"""What changed between two builds: every input (with its sheet and cell) and every outcome.

A build writes ``inputs.json`` beside ``results.json``: every value of the standard sheets,
keyed by what it is (``Actuals`` · ``E003 · NEW_ARR`` · ``2026-03``) and with the cell it was
read from. Keys are semantic, not cell addresses, so a row inserted above does not make every
value below it "changed". :func:`diff_runs` compares two builds' inputs and results;
:func:`format_text` prints the comparison, :func:`summary_line` says it in one line.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from kpireport.core.errors import KpireportError
from kpireport.core.i18n import N_, Formatter
from kpireport.core.money import minor_units
from kpireport.report.inputs import (
    INPUTS_FILE,  # noqa: F401 (part of diff's API)
    ROW_KEYS,
    SCHEMA,
)

OUTCOME_FIELDS = ("bonus", "recommended_salary", "band", "ytd_score", "month_score",
                  "ytd_status", "month_status")
MONEY_FIELDS = ("bonus", "recommended_salary")


# ---------------------------------------------------------------------------- loading a build
def _build_files(where: str | Path) -> tuple[Path, dict, dict | None]:
    """(run folder, results.json, inputs.json or None) of a run folder or a results.json."""
    path = Path(where)
    folder = path if path.is_dir() else path.parent
    results_path = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
        results["scorecards"]  # noqa: B018 (the one key diff cannot do without)
    except FileNotFoundError:
        raise KpireportError(f"{path} is not a run folder (no results.json); build first, "
                             "or give a run folder such as reports/2026-03") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KpireportError(f"{results_path}: not a kpireport results file ({exc})") from None
    try:
        inputs = json.loads((folder / INPUTS_FILE).read_text(encoding="utf-8"))
        if inputs.get("schema") != SCHEMA or not isinstance(inputs.get("sheets"), dict):
            inputs = None
    except (OSError, ValueError, AttributeError):
        inputs = None
    return folder, results, inputs


# ---------------------------------------------------------------------------- comparing
def diff_runs(old: str | Path, new: str | Path) -> dict:
    """Every changed input and outcome between the builds ``old`` and ``new`` (run folders or
    their results.json), outcomes sorted by money moved; json-able."""
    old_dir, old_results, old_inputs = _build_files(old)
    new_dir, new_results, new_inputs = _build_files(new)
    inputs = (_input_changes(old_inputs, new_inputs)
              if old_inputs is not None and new_inputs is not None else None)
    outcomes = _outcome_changes(old_results, new_results)
    places = _places(new_results.get("currency") or "USD")
    total_old = _total(old_results, places)
    total_new = _total(new_results, places)
    document = {
        "old": _side(old_dir, old_results), "new": _side(new_dir, new_results),
        "currency": new_results.get("currency"), "locale": new_results.get("locale"),
        "inputs_recorded": inputs is not None, "inputs": inputs or [],
        "outcomes": outcomes,
        "bonuses_changed": sum(1 for o in outcomes if "bonus" in o["changes"]),
        "bonus_total": {"old": total_old, "new": total_new,
                        "change": float(Decimal(str(total_new)) - Decimal(str(total_old)))},
        "pool": {"old": old_results.get("pool"), "new": new_results.get("pool")},
    }
    document["summary"] = summary_line(document)
    return document


def _side(folder: Path, results: dict) -> dict:
    return {"run_dir": str(folder), "period": results.get("period"),
            "source": results.get("source")}


def _input_changes(old: dict, new: dict) -> list[dict]:
    def index(document: dict) -> dict[tuple[str, str, str], tuple[str, str, object]]:
        found = {}
        for sheet, rows in document["sheets"].items():
            for key, first, values in rows:
                folded = str(key).casefold()
                found[(sheet, folded, "")] = (key, first, None)  # the row: added / removed
                for column, (cell, value) in values.items():
                    found[(sheet, folded, column)] = (key, cell, value)
        return found

    before, after = index(old), index(new)
    rows_before = {(s, k) for s, k, c in before if c == ""}
    rows_after = {(s, k) for s, k, c in after if c == ""}
    changes: list[dict] = []
    for sheet, key in sorted(rows_before - rows_after):
        name, cell, _ = before[(sheet, key, "")]
        changes.append({"sheet": sheet, "key": name, "field": None, "cell": cell,
                        "change": "removed", "old": None, "new": None})
    for sheet, key in sorted(rows_after - rows_before):
        name, cell, _ = after[(sheet, key, "")]
        changes.append({"sheet": sheet, "key": name, "field": None, "cell": cell,
                        "change": "added", "old": None, "new": None})
    for slot in sorted(set(before) | set(after)):
        sheet, key, column = slot
        if column == "" or (sheet, key) not in rows_before & rows_after:
            continue
        was, now = before.get(slot), after.get(slot)
        old_value, new_value = (was[2] if was else None), (now[2] if now else None)
        if _same(old_value, new_value):
            continue
        name, cell, _ = now or was  # type: ignore[misc]
        if now is None:  # cleared: the cell is where it was
            cell = was[1]  # type: ignore[index]
        changes.append({"sheet": sheet, "key": name, "field": column, "cell": cell,
                        "change": "changed", "old": old_value, "new": new_value})
    order = {name: i for i, name in enumerate(ROW_KEYS)}
    changes.sort(key=lambda c: (order.get(c["sheet"], 99), c["change"] != "changed",
                                _cell_order(c["cell"])))
    return changes


def _cell_order(cell: str) -> tuple[int, str]:
    letters = cell.rstrip("0123456789")
    digits = cell[len(letters):]
    return (int(digits) if digits else 0, letters.rjust(3))


def _same(a: object, b: object) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def _outcome(card: dict) -> dict[str, object]:
    return {"bonus": card.get("bonus"), "recommended_salary": card.get("recommended_salary"),
            "band": card.get("band"),
            "ytd_score": (card.get("ytd") or {}).get("score"),
            "month_score": (card.get("month") or {}).get("score"),
            "ytd_status": (card.get("ytd") or {}).get("status"),
            "month_status": (card.get("month") or {}).get("status")}


def _outcome_changes(old: dict, new: dict) -> list[dict]:
    before = {c["owner"]: c for c in old.get("scorecards", [])}
    after = {c["owner"]: c for c in new.get("scorecards", [])}
    changes = []
    for owner in list(after) + [o for o in before if o not in after]:
        was, now = before.get(owner), after.get(owner)
        card = now or was
        values_before = _outcome(was) if was else {}
        values_after = _outcome(now) if now else {}
        fields = {}
        for name in OUTCOME_FIELDS:
            a, b = values_before.get(name), values_after.get(name)
            if not _same(a, b) and not (isinstance(a, float) and isinstance(b, float)
                                        and abs(a - b) < 1e-9):
                fields[name] = {"old": a, "new": b}
        if not fields and was and now:
            continue
        moved = sum(abs(_number(fields[m]["new"]) - _number(fields[m]["old"]))
                    for m in MONEY_FIELDS if m in fields)
        changes.append({"owner": owner, "owner_type": card["owner_type"],  # type: ignore[index]
                        "name": card.get("name"), "department": card.get("department"),  # type: ignore[union-attr]
                        "change": "added" if was is None else "removed" if now is None
                        else "changed", "changes": fields, "money_moved": round(moved, 6)})
    rank = {"employee": 0, "department": 1, "company": 2}
    changes.sort(key=lambda c: (-c["money_moved"], rank.get(c["owner_type"], 3),
                                -max((abs(_number(v["new"]) - _number(v["old"]))
                                      for k, v in c["changes"].items() if k.endswith("score")),
                                     default=0.0), str(c["owner"])))
    return changes


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else 0.0


def _places(currency: str) -> int:
    return minor_units(currency)


def _total(results: dict, places: int) -> float:
    total = sum((Decimal(str(c["bonus"])) for c in results.get("scorecards", [])
                 if isinstance(c.get("bonus"), (int, float))), Decimal(0))
    return float(round(total, places))


# ---------------------------------------------------------------------------- text
def _formatter(document: dict):

    try:
        return Formatter(document.get("locale") or "en_US", document.get("currency") or "USD")
    except Exception:  # a results.json from elsewhere: plain English formats
        return Formatter("en_US", "USD")


def signed_money(fmt, value: float) -> str:
    """+$12.00, −$3.50, or ±$0.00 for a change that rounds to nothing at the currency's unit."""
    shown = fmt.money(abs(value))
    if not any(c in "123456789" for c in shown):
        return "±" + shown
    return ("+" if value > 0 else "−") + shown


def summary_line(document: dict) -> str:
    """'3 bonuses changed, +$1,240.00 in total' (and how many inputs and scores changed)."""
    fmt = _formatter(document)
    bonuses = document["bonuses_changed"]
    others = sum(1 for o in document["outcomes"] if "bonus" not in o["changes"])
    inputs = len(document["inputs"])
    parts = []
    if document["inputs_recorded"] and inputs:
        parts.append(f"{inputs} input{'s' if inputs != 1 else ''} changed")
    if bonuses:
        parts.append(f"{bonuses} bonus{'es' if bonuses != 1 else ''} changed, "
                     f"{signed_money(fmt, document['bonus_total']['change'])} in total")
    if others:
        parts.append(f"{others} other result{'s' if others != 1 else ''} changed "
                     "(scores, bands, status)")
    return "; ".join(parts) if parts else "no change"


# summary_in's parts: a count each, in a language without plurals as in one with them
SUMMARY_INPUTS = N_("input cells changed: {n}")
SUMMARY_BONUSES = N_("bonuses changed: {n}, {total} in total")
SUMMARY_OTHERS = N_("other results changed (scores, bands, status): {n}")
SUMMARY_NONE = N_("no change")


def summary_facts(document: dict) -> dict:
    """The numbers of :func:`summary_line` (the bonus total already formatted), for
    :func:`summary_in` to say in another language."""
    return {"inputs": len(document["inputs"]) if document["inputs_recorded"] else 0,
            "bonuses": document["bonuses_changed"],
            "total": signed_money(_formatter(document), document["bonus_total"]["change"]),
            "others": sum(1 for o in document["outcomes"] if "bonus" not in o["changes"])}


def summary_in(facts: dict, gettext) -> str:
    """:func:`summary_line` from its :func:`summary_facts`, in the language of ``gettext``."""
    parts = []
    if facts["inputs"]:
        parts.append(gettext(SUMMARY_INPUTS).format(n=facts["inputs"]))
    if facts["bonuses"]:
        parts.append(gettext(SUMMARY_BONUSES).format(n=facts["bonuses"], total=facts["total"]))
    if facts["others"]:
        parts.append(gettext(SUMMARY_OTHERS).format(n=facts["others"]))
    return "; ".join(parts) if parts else gettext(SUMMARY_NONE)


def _value(fmt, name: str, value: object) -> str:
    if value is None:
        return "—"
    if name in MONEY_FIELDS and isinstance(value, (int, float)):
        return fmt.money(value)
    if name.endswith("score") and isinstance(value, (int, float)):
        return fmt.percent(value, 1)
    return str(value)


LABELS = {"bonus": "bonus", "recommended_salary": "recommended salary", "band": "band",
          "ytd_score": "ytd score", "month_score": "month score", "ytd_status": "ytd status",
          "month_status": "month status"}


def format_text(document: dict) -> str:
    """The comparison as a person reads it: inputs with cells, then people by money moved."""
    fmt = _formatter(document)
    old, new = document["old"], document["new"]
    lines = [f"{old['run_dir']} → {new['run_dir']} ({new['period']}): "
             f"{document['summary']}"]
    if not document["inputs_recorded"]:
        lines.append("Inputs: not recorded by one of these builds (built before kpireport "
                     "kept inputs.json); only the results are compared.")
    elif document["inputs"]:
        lines.append(f"Inputs ({len(document['inputs'])} changed):")
        for c in document["inputs"]:
            where = f"{c['sheet']}!{c['cell']}"
            if c["change"] == "changed":
                lines.append(f"  {where}  {c['key']} · {c['field']}: "
                             f"{_input_text(c['old'])} → {_input_text(c['new'])}")
            else:
                lines.append(f"  {where}  {c['key']}: row {c['change']}")
    else:
        lines.append("Inputs: no change.")
    if document["outcomes"]:
        lines.append(f"Results ({len(document['outcomes'])} changed, by money moved):")
        for o in document["outcomes"]:
            who = f"{o['name']} ({o['owner']})" if o["owner_type"] == "employee" \
                else str(o["name"])
            if o["change"] != "changed":
                lines.append(f"  {who}: {o['change']}")
                continue
            parts = []
            for name, v in o["changes"].items():
                text = f"{LABELS[name]} {_value(fmt, name, v['old'])} → " \
                       f"{_value(fmt, name, v['new'])}"
                if name in MONEY_FIELDS and isinstance(v["old"], (int, float)) and \
                        isinstance(v["new"], (int, float)):
                    text += f" ({signed_money(fmt, v['new'] - v['old'])})"
                parts.append(text)
            lines.append(f"  {who}: " + "; ".join(parts))
    else:
        lines.append("Results: no change.")
    total = document["bonus_total"]
    lines.append(f"Total bonus cost: {fmt.money(total['old'])} → {fmt.money(total['new'])} "
                 f"({signed_money(fmt, total['change'])})")
    pools = document.get("pool") or {}
    if pools.get("new"):
        lines.append("Bonus pool: " + pool_text(fmt, pools["new"], pools.get("old")))
    return "\n".join(lines)


def pool_text(fmt, pool: dict, old: dict | None = None) -> str:
    """results.json's bonus pool in one line (with ``old``, what moved since that build):
    'paid to date —; earned to date $1.00; projected at year end $2.00 (likely …)'."""

    def money(part: dict | None, *keys: str) -> float | None:
        for key in keys:
            part = part.get(key) if isinstance(part, dict) else None
        return part if isinstance(part, (int, float)) else None  # type: ignore[return-value]

    def figure(*keys: str) -> str:
        new_value, text = money(pool, *keys), _value(fmt, "bonus", money(pool, *keys))
        old_value = money(old, *keys) if old else None
        if old_value is not None and new_value is not None and old_value != new_value:
            text = f"{_value(fmt, 'bonus', old_value)} → {text} " \
                   f"({signed_money(fmt, new_value - old_value)})"
        return text

    band = pool.get("projection") or {}
    text = (f"paid to date {figure('paid_to_date')}; earned to date "
            f"{figure('earned_to_date')}; projected at year end "
            f"{figure('projection', 'expected')}")
    left = band.get("months_left")
    if left:
        text += (f" (likely {_value(fmt, 'bonus', band.get('low'))} – "
                 f"{_value(fmt, 'bonus', band.get('high'))}, {left} month"
                 f"{'s' if left != 1 else ''} left)")
    return text


def _input_text(value: object) -> str:
    if value is None:
        return "(blank)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if not isinstance(value, str) else repr(value)
