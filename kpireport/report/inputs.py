"""``inputs.json``: every value of the workbook's standard sheets, with its cell, as built.

``kpireport diff`` compares two builds' snapshots (kpireport.month.diff); the build makes one
from the cells its check already read, so the workbook is read once.
"""

from __future__ import annotations

import datetime as dt

import orjson

from kpireport.core.errors import KpireportError
from kpireport.core.model import month_label
from kpireport.read.cells import is_blank
from kpireport.read.validate import locate_tables
from kpireport.read.workbook import address, column_letter, read_workbook

INPUTS_FILE = "inputs.json"
SCHEMA = "kpireport/inputs@1"
# The columns that say which row a value belongs to, per sheet (the rest are its values).
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "Settings": ("setting",), "People": ("employee_id",), "Goals": ("goal_id",),
    "KPIs": ("kpi_id",), "Scorecards": ("owner", "kpi_id"), "Targets": ("owner", "kpi_id"),
    "Actuals": ("owner", "kpi_id"), "Bands": ("band",), "Recipients": ("report", "scope"),
    "Comments": ("owner", "period", "kpi_id")}
NOT_RECORDED = {("Settings", "meaning"), ("People", "pdf_password")}  # help text; a secret


# ---------------------------------------------------------------------------- the snapshot
def input_snapshot(raw, shown: str | None = None) -> dict:
    """Every value of the standard sheets of a RawBook, keyed by sheet, row key and field;
    ``shown`` is the workbook's name as people know it (default: its file's)."""

    sheets: dict[str, list[list[object]]] = {}
    for name, table in locate_tables(raw).items():
        rows = sheets.setdefault(name, [])
        keys = ROW_KEYS.get(name, ())
        if name == "Actuals" and "period" in table.columns:
            keys = ("owner", "kpi_id", "period")
        fields = [(column, col) for column, col in table.columns.items()
                  if column not in keys and (name, column) not in NOT_RECORDED]
        fields += [(month_label(month), col) for month, col in sorted(table.months.items())]
        located = [(column, col, column_letter(col)) for column, col in fields]
        seen: dict[str, int] = {}
        for r in table.rows:
            key = " · ".join(_text(table.value(r, k)) for k in keys if k in table.columns)
            if not key.strip(" ·"):
                continue
            seen[key.casefold()] = seen.get(key.casefold(), 0) + 1
            if seen[key.casefold()] > 1:
                key += f" #{seen[key.casefold()]}"
            row = table.raw.rows[r]
            first = address(r, min(table.columns.get(k, 0) for k in keys) if keys else 0)
            values = {}
            number = str(r + 1)
            for column, col, letters in located:
                value = row[col] if col < len(row) else None
                if type(value) is float and value == value and abs(value) != _INF:  # most
                    values[column] = [letters + number, value]
                elif not is_blank(value):
                    values[column] = [letters + number, _plain(value)]
            rows.append([key, first, values])
    return {"schema": SCHEMA, "source": {"file": shown or raw.path.name, "sha256": raw.sha256},
            "sheets": sheets}


def inputs_bytes(book, raw=None) -> bytes:
    """``inputs.json`` of the workbook ``book`` was read from: from ``raw``, the cells the check
    read (see :class:`kpireport.api.Checked`), else read again from its ``source_path`` and
    refused if the file is no longer the workbook (its sha256) the build read a moment ago."""

    if raw is not None and raw.sha256 == book.source_sha256:
        document = input_snapshot(raw, book.source_file)
    elif not book.source_path:  # a Book made in code: nothing to snapshot
        document = {"schema": SCHEMA, "source": {"file": book.source_file,
                                                 "sha256": book.source_sha256}, "sheets": None}
    else:
        raw = read_workbook(book.source_path)
        if raw.sha256 != book.source_sha256:
            raise KpireportError(f"{book.source_path} changed while the reports were being "
                                 "built; build again")
        document = input_snapshot(raw, book.source_file)
    return orjson.dumps(document) + b"\n"


_INF = float("inf")


def _text(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime("%Y-%m")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else " ".join(str(value).split())


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat() if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value if value == value and abs(value) != float("inf") else str(value)
    return str(value)
