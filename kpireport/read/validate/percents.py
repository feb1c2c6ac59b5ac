"""A percent KPI's value typed as a whole number (93 where 93% is meant), found by scale."""

from __future__ import annotations

from kpireport.core.issues import AND
from kpireport.core.model import Kpi, Month, ScorecardLine, month_label
from kpireport.read.validate.base import Checks, Table
from kpireport.read.workbook import address


class PercentChecks(Checks):
    """Percent values typed as whole numbers, judged against their line."""

    def _percent_slips(self, kpis: dict[str, Kpi], lines: list[ScorecardLine],
                       actuals: dict[tuple[str, str], dict[Month, float]],
                       targets: dict[tuple[str, str], dict[Month, float]]) -> None:
        """A percent KPI's value typed as a whole number where its line is in fractions.

        The rule compares each cell with the rest of its line. An actual or a monthly target
        above 1 and at least 10 times the line's target (actual 93 against a target of 90%)
        is the slip (threshold, stretch and target_max: ``_percent_line_ok``). A target above
        1 and at least 10 times the median of the line's actuals (target 90, actuals like
        93%) is the slip.
        A real percent above 100% keeps its scale (ROI 320% against 300%) and is valid;
        so is any value typed as text with a % sign.
        """
        sc = self.tables["Scorecards"]
        by_id = {k.kpi_id: k for k in kpis.values()}
        for line in lines:
            if by_id[line.kpi_id].unit != "percent" or line.target <= 0:
                continue
            key, r = (line.owner, line.kpi_id), line.row - 1
            typed = actuals.get(key, {})
            reference = line.target
            seen_like = sorted(actuals.get(key, {}).values())
            if _whole(line.target, sc.value(r, "target")) and seen_like and \
                    seen_like[len(seen_like) // 2] * 10 <= line.target:
                like = seen_like[len(seen_like) // 2]
                self._slip(sc.name, sc.cell(r, "target"), line.target, "target",
                           kpi=line.kpi_id, like=like * 100)
                reference = line.target / 100
                typed = {}  # the actuals have the right scale
            for sheet, values, months in (("Actuals", actuals, typed),
                                          ("Targets", targets, targets.get(key, {}))):
                for month, value in sorted(months.items()):
                    if value > 1 and value >= 10 * reference and \
                            not self._typed_percent(sheet, key, month):
                        cell = self._percent_cell(sheet, key, month)
                        self._slip(sheet, cell, value, "month", month=month_label(month),
                                   kpi=line.kpi_id, target=reference * 100)
                        del values[key][month]

    def _percent_line_ok(self, table: Table, r: int, line: ScorecardLine) -> bool:
        """The Scorecards cells of a percent line agree in scale (see _percent_slips)."""
        bounds = {c: getattr(line, c) for c in ("threshold", "stretch", "target_max")
                  if getattr(line, c) is not None}
        for column, value in bounds.items():
            if _whole(value, table.value(r, column)) and value >= 10 * line.target:
                self._slip(table.name, table.cell(r, column), value, "bound", column=column,
                           kpi=line.kpi_id, target=line.target * 100)
                return False
        positive = [v for v in bounds.values() if v > 0]
        if positive and _whole(line.target, table.value(r, "target")) and \
                max(positive) * 10 <= line.target:
            self._slip(table.name, table.cell(r, "target"), line.target,
                       "target-bounds" if len(bounds) > 1 else "target-bound", kpi=line.kpi_id,
                       bounds=AND.join(bounds), like=max(positive) * 100)
            return False
        return True

    def _slip(self, sheet: str, cell: str, value: float, form: str, **fields: object) -> None:
        self.log.add("percent-as-whole-number", sheet, cell, form=form, value=value,
                     fraction=value / 100, **fields)

    def _percent_raw(self, sheet: str, key: tuple[str, str], month: Month
                     ) -> tuple[int, int] | None:
        r = self.percent_cells.get((sheet, key, month))
        table = self.tables.get(sheet)
        if r is None or table is None:
            return None
        col = table.columns["actual"] if "period" in table.columns else table.months.get(month)
        return None if col is None else (r, col)

    def _percent_cell(self, sheet: str, key: tuple[str, str], month: Month) -> str:
        found = self._percent_raw(sheet, key, month)
        return address(*found) if found else ""

    def _typed_percent(self, sheet: str, key: tuple[str, str], month: Month) -> bool:
        found = self._percent_raw(sheet, key, month)
        if found is None:
            return False
        row = self.tables[sheet].raw.rows[found[0]]
        raw = row[found[1]] if found[1] < len(row) else None
        return isinstance(raw, str) and raw.strip().endswith("%")


def _whole(value: float, raw: object) -> bool:
    """Typed as a plain number above 1 (not as text with a % sign)."""
    return value > 1 and not (isinstance(raw, str) and raw.strip().endswith("%"))
