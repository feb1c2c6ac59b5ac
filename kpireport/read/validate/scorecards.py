"""Scorecards: who is measured on what, with which weight, target and bounds."""

from __future__ import annotations

from collections import defaultdict

from kpireport.core.model import Kpi, Person, ScorecardLine
from kpireport.read.cells import MAX_MAGNITUDE, MIN_MAGNITUDE, is_blank
from kpireport.read.validate.base import WEIGHT_TOLERANCE, Checks, Table


class ScorecardChecks(Checks):
    """Scorecards lines: owner, KPI, weight, target and bounds in order."""

    def _scorecards(self, people: dict[str, Person], kpis: dict[str, Kpi]
                    ) -> list[ScorecardLine]:
        table = self.tables["Scorecards"]
        read = self._reader(table)
        lines: list[ScorecardLine] = []
        seen: dict[tuple[str, str], str] = {}
        weights: dict[str, list[tuple[float, str]]] = defaultdict(list)
        bad_weights: set[str] = set()
        owners = self._owner_lookup(people)
        kpi_keys = self._kpi_keys(kpis)
        bad_cells = self._bad_cells(table)
        number_columns = [(c, table.columns.get(c)) for c in
                          ("target", "threshold", "stretch", "target_max", "baseline")]
        required = [(c, table.columns[c]) for c in ("owner", "kpi_id", "weight", "target")]
        c_owner, c_kpi, c_weight = (table.columns[c] for c in ("owner", "kpi_id", "weight"))
        raw_rows = table.raw.rows
        for r in table.rows:
            row = raw_rows[r]
            width = len(row)

            def get(col: int | None, row=row, width=width) -> object:
                return row[col] if col is not None and col < width else None

            for column, col in required:
                value = get(col)
                if (value is None or value == "" or is_blank(value)) and \
                        (r, col) not in bad_cells:
                    self._required(table, r, column)
            owner_raw, kpi_raw, weight_raw = get(c_owner), get(c_kpi), get(c_weight)
            # Fast lookups for well-formed values; the slow path reports what is wrong.
            owner = owners.get(owner_raw.casefold()) if type(owner_raw) is str else None
            if owner is None:
                owner = self._owner(table, owner_raw, table.cell(r, "owner"), people, read)
            kpi = kpi_keys.get(kpi_raw.casefold()) if type(kpi_raw) is str else None
            if kpi is None:
                kpi = self._kpi_ref(table, kpi_raw, table.cell(r, "kpi_id"), kpis, read)
            if type(weight_raw) is float and 0 <= weight_raw <= 1:
                weight = weight_raw
            else:
                weight = read.fraction(weight_raw, table.cell(r, "weight"), what="weight")
            numbers = {}
            for c, col in number_columns:
                value = get(col)
                if value is None or value == "":
                    numbers[c] = None
                elif type(value) is float and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE and (
                        value >= MIN_MAGNITUDE or value <= -MIN_MAGNITUDE or value == 0):
                    numbers[c] = value  # in range (cells.MAX_MAGNITUDE); else read.number says
                else:
                    numbers[c] = read.number(value, table.cell(r, c))
            pair = None
            if owner is not None and not is_blank(kpi_raw):
                pair = (owner.casefold(), str(kpi_raw).strip().casefold())
            # One slip, one error: a row whose owner or kpi_id was reported as unknown does not
            # also make its owner's weights, or its Actuals and Targets rows, errors.
            if owner is not None and kpi is None and not is_blank(kpi_raw):
                self.reported_lines.add((owner.casefold(), ""))
            if owner is None and not is_blank(owner_raw):
                for near in self._near("owner", str(owner_raw), lambda: list(owners.values())):
                    self.reported_weights.add(near)
                    self.reported_lines.add((near.casefold(), ""))
                if kpi is not None:
                    self.reported_lines.add(("", kpi.kpi_id.casefold()))
            if owner is not None and weight is None and not is_blank(weight_raw):
                bad_weights.add(owner)
            if owner is not None and weight is not None and weight > 0 and \
                    pair not in self.line_keys:
                weights[owner].append((weight, r))
            if pair is not None:
                # Rows of a rejected line are not reported again as unknown in Actuals.
                self.line_keys.add(pair)
            if owner is None or kpi is None or weight is None or numbers["target"] is None:
                continue
            key = (owner, kpi.kpi_id)
            if key in seen:
                self.log.add("duplicate-line", table.name, table.cell(r, "kpi_id"),
                             form="scorecard", owner=owner, kpi=kpi.kpi_id, row=seen[key])
                continue
            seen[key] = r + 1
            line = ScorecardLine(owner, kpi.kpi_id, weight, row=r + 1, **numbers)
            if self._line_order_ok(table, r, line, kpi):
                lines.append(line)
        for owner, items in weights.items():
            if owner in bad_weights or owner in self.reported_weights:
                continue  # a weight already reported as wrong; its sum would only repeat it
            total = sum(w for w, _ in items)
            if abs(total - 1) > WEIGHT_TOLERANCE:
                cells = [table.cell(r, "weight") for _, r in items]
                self.log.add("weights-not-100", table.name, cells[0], owner=owner,
                             percent=total * 100, cells=", ".join(cells))
        return lines

    def _line_order_ok(self, table: Table, r: int, line: ScorecardLine, kpi: Kpi) -> bool:
        def bad(code: str, column: str, form: str = "", **fields: object) -> bool:
            self.log.add(code, table.name, table.cell(r, column), form=form, **fields)
            return False

        t, lo, hi = line.target, line.threshold, line.stretch
        if kpi.unit == "percent" and t > 0 and not self._percent_line_ok(table, r, line):
            return False
        if kpi.direction == "range":
            if line.target_max is None:
                form = "" if "target_max" in table.columns else "no-column"
                return bad("missing-target-max", "target_max", form, kpi=kpi.kpi_id)
            if line.target_max < t:
                return bad("bad-target-max", "target_max", target_max=line.target_max, target=t)
            return True
        if t <= 0:
            return bad("target-not-positive", "target", "line", direction=kpi.direction)
        if kpi.direction == "higher":
            if lo is not None and not lo < t:
                return bad("bad-threshold", "threshold", "higher", threshold=lo, target=t)
            if hi is not None and not hi > t:
                return bad("bad-stretch", "stretch", "higher", stretch=hi, target=t)
        else:
            if lo is not None and not lo > t:
                return bad("bad-threshold", "threshold", "lower", threshold=lo, target=t)
            if hi is not None and not hi < t:
                return bad("bad-stretch", "stretch", "lower", stretch=hi, target=t)
            if hi is not None and hi < 0:
                return bad("bad-stretch", "stretch", "negative")
        return True
