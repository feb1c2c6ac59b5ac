"""``kpireport prepare``: lay out Actuals and Targets rows from Scorecards, losing nothing.

Only rows and month columns that are missing are added; every existing cell stays as it was.
A backup copy is written before the workbook is saved (atomically) in place.
"""

from __future__ import annotations

import datetime as dt
import shutil
from copy import copy
from dataclasses import dataclass
from pathlib import Path

from kpireport.core.errors import KpireportError, OutputError
from kpireport.core.files import replacing
from kpireport.core.formula import FormulaError, parse
from kpireport.core.model import month_label, month_of
from kpireport.core.spec import COMPANY, SHEETS_BY_KEY, normalise
from kpireport.read.cells import month_from_header
from kpireport.read.workbook import read_workbook


@dataclass(frozen=True)
class PrepareResult:
    backup: Path
    rows_added: dict[str, int]
    months_added: dict[str, int]


def prepare_workbook(path: Path, *, year: int | None = None) -> PrepareResult:
    read_workbook(path)  # the same safety checks as `check`: refuse hostile or non-xlsx files
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl import load_workbook

    try:
        book = load_workbook(path)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise KpireportError(f"{path.name}: cannot be opened for editing ({exc})") from None
    sheets = {SHEETS_BY_KEY[normalise(ws.title)].name: ws for ws in book.worksheets
              if normalise(ws.title) in SHEETS_BY_KEY}
    if "Scorecards" not in sheets:
        raise KpireportError(f"{path.name}: there is no Scorecards sheet to lay out rows from")
    if "Actuals" not in sheets:
        raise KpireportError(f"{path.name}: there is no Actuals sheet")
    lines = _scorecard_lines(sheets["Scorecards"])
    formulas, components = _formula_kpis(sheets.get("KPIs"))
    people = _employee_ids(sheets.get("People"))
    start = _fiscal_start(sheets.get("Settings"))
    months = _months(sheets["Actuals"], year, start)
    actual_keys: list[tuple[str, str]] = []
    for owner, kpi in lines:
        if owner.casefold() not in people:
            continue  # departments and COMPANY roll up from their people
        for part in components.get(kpi.casefold(), [kpi]) if kpi.casefold() in formulas \
                else [kpi]:
            if (owner, part) not in actual_keys:
                actual_keys.append((owner, part))
    rows_added, months_added = {}, {}
    months_added["Actuals"] = _ensure_months(sheets["Actuals"], months)
    rows_added["Actuals"] = _ensure_rows(sheets["Actuals"], actual_keys)
    if "Targets" in sheets:
        months_added["Targets"] = _ensure_months(sheets["Targets"], months)
        rows_added["Targets"] = _ensure_rows(
            sheets["Targets"], [(o, k) for o, k in lines if k.casefold() not in formulas]
            + [(o, k) for o, k in lines if k.casefold() in formulas])
    catalogue = _kpi_catalogue(sheets.get("KPIs"))
    for name in ("Actuals", "Targets"):
        if name in sheets:
            _label_rows(sheets[name], catalogue)
    backup = _backup(path)
    _save(book, path)
    return PrepareResult(backup, rows_added, months_added)


HELPER_COLUMNS = ("kpi", "unit")  # written beside kpi_id; check ignores them (SPEC §1)
UNIT_FORMATS = {"percent": "0.0%", "currency": "#,##0.00"}


def _kpi_catalogue(ws) -> dict[str, tuple[str, str]]:
    """kpi_id (case-folded) → (display name, unit) from the KPIs sheet."""
    if ws is None:
        return {}
    return {str(kid).casefold(): (str(name or ""), str(unit or "").strip().lower())
            for _, (kid, name, unit) in _data_rows(ws, ("kpi_id", "kpi", "unit")) if kid}


def _label_rows(ws, catalogue: dict[str, tuple[str, str]]) -> None:
    """Put each row's KPI name and unit beside its kpi_id (inserting the two columns the
    first time), so a person sees "percent" on the row they type into; month cells of
    percent and currency rows get that unit's number format. Typed values are kept."""
    header = _header(ws)
    if "kpi_id" not in header:
        return
    missing = [name for name in HELPER_COLUMNS if name not in header]
    if missing:
        _insert_columns(ws, header["kpi_id"] + 1, missing)
        _extend_tables(ws)
        header = _header(ws)
    months = [c.column for c in ws[1] if month_from_header(c.value) is not None]
    for row in range(2, ws.max_row + 1):
        kid = ws.cell(row, header["kpi_id"]).value
        if kid in (None, "") or str(kid).casefold() not in catalogue:
            continue
        name, unit = catalogue[str(kid).casefold()]
        for column, value in zip(HELPER_COLUMNS, (name, unit)):
            cell = ws.cell(row, header[column])
            if cell.value in (None, ""):
                cell.value = value
        fmt = UNIT_FORMATS.get(unit)
        for column in months:
            cell = ws.cell(row, column)
            if fmt and cell.number_format == "General":
                cell.number_format = fmt


def _insert_columns(ws, at: int, names: list[str]) -> None:
    """Insert header columns ``names`` at column ``at``, moving the validations, widths and
    table columns to the right with the cells (openpyxl moves only the cells)."""
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.comments import Comment

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.styles import Font

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.utils import get_column_letter

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.worksheet.table import TableColumn

    n = len(names)
    last = ws.max_column
    widths = {c: ws.column_dimensions[get_column_letter(c)].width for c in range(at, last + 1)}
    ws.insert_cols(at, n)
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column + n)].width = width
    for validation in ws.data_validations.dataValidation:
        for cells in validation.sqref.ranges:
            if cells.min_col >= at:
                cells.shift(col_shift=n)
    template = ws.cell(1, at - 1)
    for offset, name in enumerate(names):
        cell = ws.cell(1, at + offset, name)
        _copy_style(template, cell)
        cell.font = Font(bold=True, color=template.font.color) if template.has_style else \
            Font(bold=True)
        cell.comment = Comment("Filled in by kpireport prepare from the KPIs sheet, for "
                               "reading; check ignores this column.", "kpireport")
        ws.column_dimensions[get_column_letter(at + offset)].width = 26 if name == "kpi" else 9
    for table in ws.tables.values():
        names_now = [str(ws.cell(1, c).value) for c in range(1, ws.max_column + 1)]
        table.tableColumns = [TableColumn(id=i + 1, name=name)
                              for i, name in enumerate(names_now)]
    if ws.freeze_panes:
        ws.freeze_panes = f"{get_column_letter(at + n)}2"


def _header(ws) -> dict[str, int]:
    found = {}
    for cell in ws[1]:
        if cell.value is not None:
            found.setdefault(normalise(cell.value), cell.column)
    return found


def _data_rows(ws, columns: tuple[str, ...]):
    header = _header(ws)
    if any(c not in header for c in columns):
        raise KpireportError(f"sheet {ws.title}: the columns {', '.join(columns)} are needed in "
                             "row 1")
    for row in range(2, ws.max_row + 1):
        values = [ws.cell(row, header[c]).value for c in columns]
        if all(v is not None and str(v).strip() for v in values):
            yield row, [str(v).strip() for v in values]


def _scorecard_lines(ws) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for _, (owner, kpi) in _data_rows(ws, ("owner", "kpi_id")):
        if owner.casefold() == COMPANY.casefold():
            owner = COMPANY
        if (owner, kpi) not in lines:
            lines.append((owner, kpi))
    return lines


def _formula_kpis(ws) -> tuple[set[str], dict[str, list[str]]]:
    if ws is None:
        return set(), {}

    header = _header(ws)
    formulas, components = set(), {}
    if "formula" not in header or "kpi_id" not in header:
        return formulas, components
    for row in range(2, ws.max_row + 1):
        kid, text = ws.cell(row, header["kpi_id"]).value, ws.cell(row, header["formula"]).value
        if kid and text and str(text).strip():
            formulas.add(str(kid).strip().casefold())
            try:
                components[str(kid).strip().casefold()] = sorted(parse(str(text)).refs())
            except FormulaError:
                components[str(kid).strip().casefold()] = []
    return formulas, components


def _employee_ids(ws) -> set[str]:
    if ws is None:
        return set()
    return {e.casefold() for _, (e,) in _data_rows(ws, ("employee_id",))}


def _fiscal_start(ws) -> int:
    if ws is None:
        return 1
    for _, (name, value) in _data_rows(ws, ("setting", "value")):
        if normalise(name) == "fiscal_year_start_month":
            try:
                return min(max(int(float(value)), 1), 12)
            except ValueError:
                return 1
    return 1


def _months(ws, year: int | None, start: int) -> list[int]:
    if year is None:
        existing = [m for m in (month_from_header(c.value) for c in ws[1]) if m is not None]
        if existing:
            return []  # month columns are there already; only rows are laid out
        year = dt.date.today().year
    first = month_of(year, start)
    return list(range(first, first + 12))


def _ensure_months(ws, months: list[int]) -> int:
    present = {month_from_header(c.value) for c in ws[1]}
    added = 0
    column = max((c.column for c in ws[1] if c.value is not None), default=0) + 1
    for month in months:
        if month in present:
            continue
        ws.cell(1, column, month_label(month))
        _copy_style(ws.cell(1, column - 1), ws.cell(1, column))
        column += 1
        added += 1
    _extend_tables(ws)
    return added


def _ensure_rows(ws, keys: list[tuple[str, str]]) -> int:
    existing = {(o.casefold(), k.casefold()) for _, (o, k) in _data_rows(ws, ("owner", "kpi_id"))}
    header = _header(ws)
    last = max((row for row in range(1, ws.max_row + 1)
                if any(ws.cell(row, c).value not in (None, "") for c in header.values())),
               default=1)
    added = 0
    for owner, kpi in keys:
        if (owner.casefold(), kpi.casefold()) in existing:
            continue
        last += 1
        ws.cell(last, header["owner"], owner)
        ws.cell(last, header["kpi_id"], kpi)
        existing.add((owner.casefold(), kpi.casefold()))
        added += 1
    _extend_tables(ws)
    return added


def _copy_style(src, dst) -> None:

    if src.has_style:
        dst.font, dst.fill, dst.alignment = copy(src.font), copy(src.fill), copy(src.alignment)
        dst.border = copy(src.border)


def _extend_tables(ws) -> None:
    """Grow each table on the sheet to the used range, naming new header columns."""
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.utils import get_column_letter

    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from openpyxl.worksheet.table import TableColumn

    for table in ws.tables.values():
        last_col = max((c.column for c in ws[1] if c.value is not None), default=1)
        last_row = max(ws.max_row, 2)
        table.ref = f"A1:{get_column_letter(last_col)}{last_row}"
        if table.autoFilter is not None:
            table.autoFilter.ref = table.ref
        names = [str(ws.cell(1, c).value) for c in range(1, last_col + 1)]
        have = len(table.tableColumns)
        for index in range(have, last_col):
            table.tableColumns.append(TableColumn(id=index + 1, name=names[index]))


def _backup(path: Path) -> Path:
    backup = path.with_name(f"{path.stem}.bak{path.suffix}")
    number = 2
    while backup.exists():
        backup = path.with_name(f"{path.stem}.bak-{number}{path.suffix}")
        number += 1
    try:
        shutil.copy2(path, backup)
    except OSError as exc:
        raise OutputError(f"cannot write the backup {backup}: {exc.strerror}") from None
    return backup


def _save(book, path: Path) -> None:
    try:
        with replacing(path) as temporary:
            book.save(temporary)
    except OSError as exc:
        raise OutputError(f"cannot save {path}: {exc.strerror or exc}") from None
