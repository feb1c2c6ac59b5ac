"""Finding the standard sheets, their header rows and columns; cells Excel could not compute."""

from __future__ import annotations

from kpireport.core.model import Month, month_label
from kpireport.core.spec import LONG_ACTUALS_COLUMNS, SHEETS, SHEETS_BY_KEY, Sheet, normalise
from kpireport.read.cells import (
    closest,
    did_you_mean,
    is_blank,
    looks_like_period,
    month_from_header,
)
from kpireport.read.validate.base import Checks, Table, has_value
from kpireport.read.workbook import RawSheet, address


class StructureChecks(Checks):
    """Which sheets and columns are there, and cells Excel could not compute."""

    def _structure(self) -> bool:
        """Locate the sheets; False when a required sheet or column is missing."""
        self._locate_sheets()
        missing = [s.name for s in SHEETS if s.required and s.name not in self.tables]
        unknown = [s.name for s in self.raw.sheets if normalise(s.name) not in SHEETS_BY_KEY]
        for name in missing:
            hint = did_you_mean(name, unknown)
            found = ", ".join(s.name for s in self.raw.sheets) or "none"
            if hint:
                self.log.add("missing-sheet", name, form="near", name=name, found=found,
                             hint=hint)
            else:
                self.log.add("missing-sheet", name, name=name, found=found)
        return not any(i.code in ("missing-sheet", "missing-column") for i in self.log.errors)

    def _locate_sheets(self) -> None:
        for raw in self.raw.sheets:
            spec = SHEETS_BY_KEY.get(normalise(raw.name))
            if spec is None:
                self.log.add("unknown-sheet", raw.name, name=raw.name)
                continue
            if spec.name in self.tables:
                self.log.add("duplicate-sheet", raw.name, first=self.tables[spec.name].name,
                             second=raw.name, standard=spec.name)
                continue
            if raw.hidden:
                self.log.add("hidden-sheet", raw.name, name=raw.name)
            table = self._locate_columns(spec, raw)
            if table is not None:
                self.tables[spec.name] = table
            for rng in raw.merged:
                self.log.add("merged-cells", raw.name, rng.split(":")[0], range=rng)

    def _locate_columns(self, spec: Sheet, raw: RawSheet) -> Table | None:
        header = next((r for r, cells in enumerate(raw.rows)
                       if any(not is_blank(v) for v in cells)), None)
        if header is None:
            if spec.required:
                self.log.add("missing-column", raw.name, "A1", form="empty-sheet",
                             name=raw.name,
                             columns=", ".join(c.name for c in spec.columns if c.required))
            return None
        known = {c.name: c for c in spec.columns}
        if spec.name == "Actuals":
            known.update({c.name: c for c in LONG_ACTUALS_COLUMNS})
        columns: dict[str, int] = {}
        months: dict[Month, int] = {}
        unknown_headers: dict[str, str] = {}
        for col, value in enumerate(raw.rows[header]):
            if is_blank(value):
                continue
            cell = address(header, col)
            month = month_from_header(value) if spec.month_columns else None
            if month is None and spec.month_columns and looks_like_period(value):
                self.log.add("bad-period", raw.name, cell, form="header",
                             header=str(value).strip())
                continue
            if month is not None:
                if month in months:
                    self.log.add("duplicate-column", raw.name, cell, form="month",
                                 month=month_label(month), first=address(header, months[month]))
                else:
                    months[month] = col
                continue
            key = normalise(value)
            match = next((name for name in known if name == key), None)
            if match is None:
                unknown_headers[str(value).strip()] = cell
            elif match in columns:
                self.log.add("duplicate-column", raw.name, cell, form="column", column=match,
                             first=address(header, columns[match]))
            else:
                columns[match] = col
        required = [c.name for c in spec.columns if c.required]
        if spec.name == "Actuals" and ("period" in columns or "actual" in columns):
            required += ["period", "actual"]
        for name in required:
            if name not in columns:
                near = closest(name, unknown_headers)
                hint = did_you_mean(name, unknown_headers)
                where = unknown_headers[near[0]] if len(near) == 1 else address(header, 0)
                if hint:
                    self.log.add("missing-column", raw.name, where, form="near", column=name,
                                 row=header + 1, hint=hint)
                else:
                    self.log.add("missing-column", raw.name, where, form="column", column=name,
                                 row=header + 1)
        self._unknown_columns(raw, unknown_headers, [n for n in known if n not in columns
                                                     and n not in required])
        used = sorted(set(columns.values()) | set(months.values()))
        flagged = {r for r, _ in raw.uncached} | {r for r, _ in raw.errors}
        rows = [r for r in range(header + 1, len(raw.rows))
                if has_value(raw.rows[r], used) or r in flagged]
        return Table(spec, raw, header, columns, months, rows)

    def _unknown_columns(self, raw: RawSheet, headers: dict[str, str],
                         missing: list[str]) -> None:
        """Helper columns are info notes; one that is nearly the name of an optional column
        not in the sheet (``end date``, ``threshhold``) is a warning: its values are ignored."""
        for text, cell in headers.items():
            near = closest(text, missing)
            if len(near) == 1:
                self.log.add("similar-column", raw.name, cell, header=text, column=near[0])
            else:
                self.log.add("unknown-column", raw.name, cell, header=text)

    def _cell_errors(self) -> None:
        """Excel error values and formulas without a cached value, in the cells we use."""
        for table in self.tables.values():
            used = set(table.columns.values()) | set(table.months.values())
            for (r, c), error in sorted(table.raw.errors.items()):
                if c in used and r > table.header_row:
                    cell = address(r, c)
                    self.log.add("excel-error", table.name, cell, error=error)
            for r, c in sorted(table.raw.uncached):
                if c in used and r > table.header_row:
                    cell = address(r, c)
                    self.log.add("formula-without-value", table.name, cell)
