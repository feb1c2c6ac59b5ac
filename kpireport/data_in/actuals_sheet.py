"""The Actuals sheet as ``kpireport import`` sees it: where each owner, KPI and month lives.

The same layout rules as the reader (the header is the first non-blank row, month headers are
date cells or ``YYYY-MM`` text, wide or long layout) are applied to the calamine rows for a
dry run and to the openpyxl cells when writing, so both agree on every cell.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from kpireport.core.errors import KpireportError, OutputError
from kpireport.core.files import replacing
from kpireport.core.model import Month, month_label
from kpireport.core.spec import normalise
from kpireport.data_in.annotate import load_for_editing, recalculate_on_open
from kpireport.data_in.prepare import _backup, _copy_style, _extend_tables
from kpireport.read.cells import is_blank, month_from_header
from kpireport.read.validate import validate
from kpireport.read.workbook import read_workbook


@dataclass(frozen=True)
class Change:
    owner: str
    kpi: str
    month: Month
    old: float | None
    new: float

    @property
    def period(self) -> str:
        return month_label(self.month)


class ActualsSheet:
    """Positions (0-based row, column) of the values in an Actuals sheet's rows."""

    def __init__(self, rows: list[list[object]] | list[tuple]) -> None:
        self.rows = rows
        self.header = next((r for r, row in enumerate(rows)
                            if any(not is_blank(v) for v in row)), None)
        self.columns: dict[str, int] = {}
        self.months: dict[Month, int] = {}
        if self.header is None:
            raise KpireportError("sheet Actuals: the header row (owner, kpi_id, months) is "
                                 "missing")
        for col, value in enumerate(rows[self.header]):
            if is_blank(value):
                continue
            month = month_from_header(value)
            if month is not None:
                self.months.setdefault(month, col)
            else:
                self.columns.setdefault(normalise(value), col)
        if "owner" not in self.columns or "kpi_id" not in self.columns:
            raise KpireportError("sheet Actuals: the columns owner and kpi_id are needed in the "
                                 "header row")
        self.long = "period" in self.columns and "actual" in self.columns
        self.lines: dict[tuple, int] = {}
        self.last_row = self.header
        for r in range(self.header + 1, len(rows)):
            row = rows[r]
            if any(not is_blank(v) for v in row):
                self.last_row = r
            owner, kpi = self._get(row, "owner"), self._get(row, "kpi_id")
            if is_blank(owner) or is_blank(kpi):
                continue
            key = (_key(owner), _key(kpi))
            if self.long:
                month = _month_of(self._get(row, "period"))
                if month is None:
                    continue
                key = (*key, month)
            self.lines.setdefault(key, r)
        self.last_column = max([c for c, v in enumerate(rows[self.header]) if not is_blank(v)])

    def _get(self, row, column: str) -> object:
        col = self.columns[column]
        return row[col] if col < len(row) else None

    def slot(self, owner: str, kpi: str, month: Month) -> tuple[int | None, int | None]:
        """(row, column) of a value; None where a row or month column must be added."""
        if self.long:
            row = self.lines.get((_key(owner), _key(kpi), month))
            return row, self.columns["actual"]
        return self.lines.get((_key(owner), _key(kpi))), self.months.get(month)

    def value(self, row: int | None, col: int | None) -> object:
        if row is None or col is None or col >= len(self.rows[row]):
            return None
        return self.rows[row][col]

    def diff(self, values: dict[tuple[str, str, Month], float]):
        """The changes (old → new), the rows and month columns that would be added."""
        changes, new_rows, new_months = [], [], []
        for (owner, kpi, month), new in sorted(values.items()):
            row, col = self.slot(owner, kpi, month)
            old = self.value(row, col)
            if row is None and (owner, kpi) not in new_rows and not self.long:
                new_rows.append((owner, kpi))
            if col is None and month not in new_months:
                new_months.append(month)
            if not _same(old, new):
                changes.append(Change(owner, kpi, month, _number(old), new))
        if self.long:
            new_rows = sorted({(c.owner, c.kpi) for c in changes
                               if self.slot(c.owner, c.kpi, c.month)[0] is None})
        return changes, new_rows, sorted(new_months)


def _key(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split()).casefold()


def _month_of(value: object) -> Month | None:
    return month_from_header(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _same(old: object, new: float) -> bool:
    number = _number(old)
    return number is not None and isinstance(old, (int, float)) and \
        math.isclose(number, new, rel_tol=1e-12, abs_tol=1e-12)


# Helper columns people keep beside the ids (SPEC §1), filled in on rows the import adds.
HELPER_COLUMNS = {"owner_name": ("owner_name", "owner name", "name"),
                  "kpi": ("kpi", "kpi_name", "kpi name"), "unit": ("unit",)}


def write_actuals(path: Path, values: dict[tuple[str, str, Month], float], sources_sheet: str,
                  sources_header: tuple[str, ...], source_row: list,
                  labels: dict[str, dict[str, str]] | None = None) -> tuple[Path, list[str]]:
    """Write ``values`` into the Actuals sheet of ``path``: backup first, atomic save.

    ``labels`` gives the texts of helper columns (owner_name, kpi, unit) for added rows.
    Returns the backup's path and what openpyxl could not keep.
    """

    workbook, not_kept = load_for_editing(path)
    ws = next((w for w in workbook.worksheets if normalise(w.title) == "actuals"), None)
    if ws is None:
        raise KpireportError(f"{path.name}: there is no Actuals sheet")
    layout = ActualsSheet([list(r) for r in ws.iter_rows(values_only=True)])
    header_row = layout.header + 1
    next_column = layout.last_column + 2  # 1-based, after the last used header
    next_row = layout.last_row + 2
    added_rows: dict[tuple, int] = {}
    for (owner, kpi, month), new in sorted(values.items()):
        row, col = layout.slot(owner, kpi, month)
        if col is None:
            col = next_column - 1
            before = ws.cell(header_row, next_column - 1)
            header = ws.cell(header_row, next_column, month_label(month))
            if isinstance(before.value, (dt.date, dt.datetime)):  # dates head the months here
                header.value = dt.datetime(month // 12, month % 12 + 1, 1)
                header.number_format = before.number_format
            _copy_style(before, header)
            layout.months[month] = col
            next_column += 1
        if row is None:
            key = (owner.casefold(), kpi.casefold()) + ((month,) if layout.long else ())
            row = added_rows.get(key)
            if row is None:
                row = next_row - 1
                next_row += 1
                ws.cell(row + 1, layout.columns["owner"] + 1, owner)
                ws.cell(row + 1, layout.columns["kpi_id"] + 1, kpi)
                if layout.long:
                    ws.cell(row + 1, layout.columns["period"] + 1, month_label(month))
                for kind, names in HELPER_COLUMNS.items():
                    column = next((layout.columns[n] for n in names if n in layout.columns),
                                  None)
                    text = (labels or {}).get(kind, {}).get(owner if kind == "owner_name"
                                                            else kpi)
                    if column is not None and text:
                        ws.cell(row + 1, column + 1, text).data_type = "s"
                added_rows[key] = row
                if layout.long:
                    layout.lines[(_key(owner), _key(kpi), month)] = row
                else:
                    layout.lines[(_key(owner), _key(kpi))] = row
        cell = ws.cell(row + 1, col + 1)
        if _same(cell.value, new):
            continue
        if not cell.has_style and row > layout.header + 1:
            cell.number_format = ws.cell(row, col + 1).number_format
        cell.value = int(new) if new.is_integer() and abs(new) < 2**53 else new
    if header_row == 1:
        _extend_tables(ws)
    _record_source(workbook, sources_sheet, sources_header, source_row)
    return _save_if_still_valid(workbook, path), not_kept


def _save_if_still_valid(workbook, path: Path) -> Path:
    """Save next to ``path``, check the result as ``check`` would, then back up and replace.

    Whatever the import wrote (a month header the reader reads differently, a value it
    refuses), a workbook that would not pass ``check`` is never left in place.
    """
    recalculate_on_open(workbook)
    with replacing(path, suffix=".xlsx") as temporary:
        try:
            workbook.save(temporary)
        except OSError as exc:
            raise OutputError(f"cannot save {path}: {exc.strerror or exc}") from None
        _, issues = validate(read_workbook(temporary))
        errors = [i for i in issues if i.severity == "error"]
        formulas = [i for i in errors if i.code == "formula-without-value"]
        if formulas:
            raise KpireportError(
                f"{path.name} was not changed: it has formulas in cells kpireport reads (e.g. "
                f"{formulas[0].sheet}!{formulas[0].cell}) and openpyxl, which writes the file, "
                "cannot keep their values; replace them by values (or import into a copy and "
                "open and save it in Excel)")
        if errors:
            raise KpireportError(f"{path.name} was not changed: with the imported values it "
                                 f"would not pass check ({errors[0].message})")
        backup = _backup(path)  # then the checked copy replaces the workbook
    return backup


def _record_source(workbook, name: str, header: tuple[str, ...], row: list) -> None:
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles import Font

    ws = next((w for w in workbook.worksheets if normalise(w.title) == normalise(name)), None)
    if ws is None:
        ws = workbook.create_sheet(name)
        ws.append(list(header))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for letter, width in zip("ABCDEF", (28, 66, 22, 10, 14, 28)):
            ws.column_dimensions[letter].width = width
        ws.freeze_panes = "A2"
    ws.append(row)
    for cell in ws[ws.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"  # a file name never becomes a formula
