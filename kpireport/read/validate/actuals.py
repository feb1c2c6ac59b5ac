"""Actuals and Targets (wide or long): values by owner, KPI and month, and whose they are."""

from __future__ import annotations

from collections import defaultdict

from kpireport.core.model import Kpi, Month, Person, ScorecardLine, month_label
from kpireport.core.spec import COMPANY
from kpireport.read.cells import MAX_MAGNITUDE, MIN_MAGNITUDE, CellReader, is_blank
from kpireport.read.validate.base import Checks, Lazy, Table
from kpireport.read.workbook import address


class ActualsChecks(Checks):
    """Actuals and Targets rows: owners, KPIs, months, and whose lines they feed."""

    def _month_rows(self, name: str, people: dict[str, Person] | None,
                    kpis: dict[str, Kpi], owners: dict[str, str]
                    ) -> dict[tuple[str, str], dict[Month, float]]:
        """Read Targets or Actuals (wide or long) into {(owner, kpi): {month: value}}."""
        table = self.tables[name]
        read = self._reader(table)
        values: dict[tuple[str, str], dict[Month, float]] = {}
        cells: dict[tuple[str, str], str] = {}
        long = "period" in table.columns
        if not long and not table.months and table.rows:
            self.log.add("missing-column", table.name, address(table.header_row, 0),
                         form="no-months")
        owner_col, kpi_col = table.columns.get("owner"), table.columns.get("kpi_id")
        kpi_keys = self._kpi_keys(kpis)
        raw_rows = table.raw.rows
        bad = self._bad_cells(table)
        month_cols = sorted(table.months.items(), key=lambda kv: kv[1])
        for r in table.rows:
            row = raw_rows[r]
            owner_raw = row[owner_col] if owner_col is not None and owner_col < len(row) else None
            kpi_raw = row[kpi_col] if kpi_col is not None and kpi_col < len(row) else None
            if is_blank(owner_raw) or is_blank(kpi_raw):
                for column, raw in (("owner", owner_raw), ("kpi_id", kpi_raw)):
                    if is_blank(raw):
                        self._required(table, r, column)
                continue
            owner = owners.get(str(owner_raw).strip().casefold()) if isinstance(owner_raw, str) \
                else None
            if owner is None:
                owner = self._owner(table, owner_raw, table.cell(r, "owner"), people or {}, read)
                if owner is None:
                    continue
            kpi = kpi_keys.get(str(kpi_raw).strip().casefold()) if isinstance(kpi_raw, str) \
                else None
            if kpi is None:
                kpi = self._kpi_ref(table, kpi_raw, table.cell(r, "kpi_id"), kpis, read)
                if kpi is None:
                    # its line (or formula) is not told again that it lacks these actuals
                    self.typo_kpis[name].update(
                        (owner, k) for k in self._near("kpi", str(kpi_raw),
                                                       lambda: [k.kpi_id for k in kpis.values()]))
                    continue
            key = (owner, kpi.kpi_id)
            if long:
                month = self._long_value(table, read, r, key, values, cells)
                if month is not None and kpi.unit == "percent":
                    self.percent_cells[(name, key, month)] = r
                continue
            if key in cells:
                cell = table.cell(r, "owner")
                self.log.add("duplicate-line", table.name, cell, form="rows", owner=owner,
                             kpi=kpi.kpi_id, first=cells[key])
                continue
            cells[key] = table.cell(r, "owner")
            if kpi.unit == "percent":
                for month in table.months:
                    self.percent_cells[(name, key, month)] = r
            months = values.setdefault(key, {})
            width = len(row)
            for month, col in month_cols:  # the hot loop: ~120,000 cells for 1,000 people
                if col >= width:
                    break
                raw = row[col]
                if type(raw) is float:
                    if -MAX_MAGNITUDE <= raw <= MAX_MAGNITUDE and (
                            raw >= MIN_MAGNITUDE or raw <= -MIN_MAGNITUDE or raw == 0):
                        months[month] = raw  # finite and in range (NaN fails it)
                        continue
                elif raw == "" or raw is None:
                    continue
                if (r, col) in bad:
                    continue
                number = read.number(raw, address(r, col))
                if number is not None:
                    months[month] = number
        return values

    def _long_value(self, table: Table, read: CellReader, r: int, key: tuple[str, str],
                    values: dict, cells: dict) -> Month | None:
        month = read.month(table.value(r, "period"), table.cell(r, "period"))
        if month is None:
            if is_blank(table.value(r, "period")):
                self._required(table, r, "period")
            return None
        number = read.number(table.value(r, "actual"), table.cell(r, "actual"))
        if number is None:
            return None
        slot = (key, month)
        if slot in cells:
            cell = table.cell(r, "period")
            self.log.add("duplicate-actual", table.name, cell, owner=key[0], kpi=key[1],
                         month=month_label(month), first=cells[slot])
            return None
        cells[slot] = table.cell(r, "period")
        values.setdefault(key, {})[month] = number
        return month

    def _actuals(self, people: dict[str, Person], kpis: dict[str, Kpi],
                 lines: list[ScorecardLine]) -> dict[tuple[str, str], dict[Month, float]]:
        values = self._month_rows("Actuals", people, kpis, self._owner_lookup(people))
        table = self.tables["Actuals"]
        by_id = {k.kpi_id: k for k in kpis.values()}
        allowed = _allowed_actuals(people, by_id, lines)
        row_of = Lazy(lambda: self._row_cells(table))
        for key in list(values):
            owner, kid = key
            if by_id[kid].formula:
                cell = row_of(key)
                parts = ", ".join(by_id[kid].components)
                self.log.add("formula-has-actuals", table.name, cell, kpi=kid, parts=parts)
                del values[key]
            elif key not in allowed and not self._line_reported(owner, kid):
                cell = row_of(key)
                self.log.add("unknown-scorecard-line", table.name, cell, form="actuals",
                             owner=owner, kpi=kid)
                del values[key]
        self._check_components(people, by_id, lines, values)
        return values

    def _typo_in_actuals(self, owner: str, kpi_id: str) -> bool:
        """An Actuals row probably meant for this line was reported as mistyped."""
        return owner in self.typo_owners["Actuals"] or \
            (owner, kpi_id) in self.typo_kpis["Actuals"]

    def _check_components(self, people: dict[str, Person], kpis: dict[str, Kpi],
                          lines: list[ScorecardLine],
                          values: dict[tuple[str, str], dict[Month, float]]) -> None:
        table = self.tables["Scorecards"]
        persons = {p.employee_id for p in people.values()}
        members: dict[str, set[str]] = defaultdict(set)
        for p in people.values():
            members[p.department].add(p.employee_id)
            members[COMPANY].add(p.employee_id)
        for line in lines:
            kpi = kpis[line.kpi_id]
            if not kpi.formula:
                if line.owner in persons and (line.owner, kpi.kpi_id) not in values \
                        and not self._typo_in_actuals(line.owner, kpi.kpi_id):
                    cell = f"B{line.row}"
                    self.log.add("no-actuals", table.name, cell, owner=line.owner,
                                 kpi=kpi.kpi_id)
                continue
            for comp in kpi.components:
                if (line.owner, comp) in values:
                    continue
                if line.owner not in persons and any(
                        (m, comp) in values for m in members.get(line.owner, ())):
                    continue  # rolls up from the people
                if self._typo_in_actuals(line.owner, comp):
                    continue  # its Actuals row has a mistyped owner or kpi_id, reported
                cell = f"B{line.row}"
                self.log.add("missing-component-actuals", table.name, cell, kpi=kpi.kpi_id,
                             formula=kpi.formula, component=comp, owner=line.owner)

    def _targets(self, kpis: dict[str, Kpi], lines: list[ScorecardLine]
                 ) -> dict[tuple[str, str], dict[Month, float]]:
        if "Targets" not in self.tables:
            return {}
        table = self.tables["Targets"]
        people = {}
        values = self._month_rows("Targets", people, kpis, self._owner_lookup({}))
        known = {(line.owner, line.kpi_id): line for line in lines}
        by_id = {k.kpi_id: k for k in kpis.values()}
        row_of = Lazy(lambda: self._row_cells(table))
        for key, months in list(values.items()):
            if key not in known and self._line_reported(*key):
                del values[key]  # its Scorecards row is reported already
                continue
            if key not in known:
                cell = row_of(key)
                self.log.add("unknown-scorecard-line", table.name, cell, form="targets",
                             owner=key[0], kpi=key[1])
                del values[key]
                continue
            if by_id[key[1]].direction != "range" and any(v <= 0 for v in months.values()):
                cell = row_of(key)
                self.log.add("target-not-positive", table.name, cell, form="monthly",
                             owner=key[0], kpi=key[1])
        return values


def _allowed_actuals(people: dict[str, Person], kpis: dict[str, Kpi],
                     lines: list[ScorecardLine]) -> set[tuple[str, str]]:
    """(owner, kpi) pairs an Actuals row may have: scorecard lines, their formula parts, and
    what people in a department (or the company) feed into its roll-up lines."""
    allowed: set[tuple[str, str]] = set()
    by_scope: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        kpi = kpis[line.kpi_id]
        used = set(kpi.components) if kpi.formula else {kpi.kpi_id}
        for kid in used:
            allowed.add((line.owner, kid))
            by_scope[line.owner].add(kid)
    for person in people.values():
        for kid in by_scope.get(person.department, set()) | by_scope.get(COMPANY, set()):
            allowed.add((person.employee_id, kid))
    return allowed
