"""People (ids, dates, salaries, managers, PDF passwords) and the Goals cascade."""

from __future__ import annotations

from dataclasses import replace

from kpireport.core.issues import PASSWORD_CONTROL, PASSWORD_SHORT, PASSWORD_TEXT
from kpireport.core.model import Goal, Person
from kpireport.read.cells import is_blank
from kpireport.read.validate.base import Checks, Table

MIN_LENGTH = 8  # a PDF password's least length (Settings pdf_protection)


def password_problem(text: str) -> str | None:
    """What is wrong with a password (None: nothing), worded without the value."""
    if len(text) < MIN_LENGTH:
        return PASSWORD_SHORT.format(n=MIN_LENGTH)
    if any(not ch.isprintable() for ch in text):
        return PASSWORD_CONTROL
    return None


class PeopleChecks(Checks):
    """People and Goals: unique ids, resolved managers and parent goals, no loops."""

    def _people(self) -> dict[str, Person]:
        table = self.tables["People"]
        read = self._reader(table)
        people: dict[str, Person] = {}
        manager_cells: dict[str, tuple[str, str]] = {}
        first_cell: dict[str, str] = {}
        for r in table.rows:
            cell = table.cell(r, "employee_id")
            emp = read.text(table.value(r, "employee_id"), cell, single_line=True)
            name = read.text(table.value(r, "name"), table.cell(r, "name"), single_line=True)
            dept = read.text(table.value(r, "department"), table.cell(r, "department"),
                             single_line=True)
            for column in ("employee_id", "name", "department"):
                if is_blank(table.value(r, column)) and \
                        (r, table.columns[column]) not in self._bad_cells(table):
                    self._required(table, r, column)
            if emp is None:
                continue
            if emp.casefold() in first_cell:
                self.log.add("duplicate-id", table.name, cell, form="employee", id=emp,
                             first=first_cell[emp.casefold()])
                continue
            first_cell[emp.casefold()] = cell
            start = read.date(table.value(r, "start_date"), table.cell(r, "start_date"))
            end = read.date(table.value(r, "end_date"), table.cell(r, "end_date"))
            if start and end and end < start:
                self.log.add("bad-date-range", table.name, table.cell(r, "end_date"), end=end,
                             start=start)
            salary = read.number(table.value(r, "base_salary"), table.cell(r, "base_salary"),
                                 percent_ok=False)
            if salary is not None and salary < 0:
                self.log.add("negative-value", table.name, table.cell(r, "base_salary"),
                             what="base_salary")
                salary = None
            manager = read.text(table.value(r, "manager_id"), table.cell(r, "manager_id"),
                                single_line=True)
            if manager is not None:
                manager_cells[emp.casefold()] = (manager, table.cell(r, "manager_id"))
            people[emp.casefold()] = Person(
                employee_id=emp, name=name or "", department=dept or "",
                email=read.email(table.value(r, "email"), table.cell(r, "email")),
                title=read.text(table.value(r, "title"), table.cell(r, "title"),
                                single_line=True),
                manager_id=None, base_salary=salary,
                target_bonus_pct=read.fraction(table.value(r, "target_bonus_pct"),
                                               table.cell(r, "target_bonus_pct"),
                                               what="target_bonus_pct"),
                start_date=start, end_date=end, pdf_password=self._pdf_password(table, r))
        self._resolve_managers(table, people, manager_cells)
        return {p.employee_id: p for p in people.values()}

    def _pdf_password(self, table: Table, r: int) -> str | None:
        """The People pdf_password of row r; problems name the cell, never the value."""

        raw = table.value(r, "pdf_password")
        if is_blank(raw) or (r, table.columns.get("pdf_password")) in self._bad_cells(table):
            return None
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            problem = PASSWORD_TEXT
        else:
            text = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
            problem = password_problem(text)
            if problem is None:
                return text
        cell = table.cell(r, "pdf_password")
        self.log.add("bad-pdf-password", table.name, cell, problem=problem)
        return None

    def _resolve_managers(self, table: Table, people: dict[str, Person],
                          manager_cells: dict[str, tuple[str, str]]) -> None:
        self._resolve_parents(table, people, manager_cells, "manager_id", "manager",
                              "manager-cycle", lambda p: p.employee_id)

    def _resolve_parents(self, table: Table, items: dict, refs: dict[str, tuple[str, str]],
                         field: str, what: str, cycle_code: str, ident) -> None:
        """Point each item at its parent (manager, parent goal): unknown ids and loops are
        errors; ``items`` is keyed by casefolded id and updated in place."""
        links: dict[str, str] = {}
        for key, (parent, cell) in refs.items():
            target = items.get(parent.casefold())
            if target is None:
                hint = self._hint(what, parent, lambda: [ident(i) for i in items.values()])
                self.log.add("unknown-reference", table.name, cell, what=what, id=parent,
                             listed_in=table.name, hint=hint)
                continue
            if ident(target).casefold() == key:
                self.log.add(cycle_code, table.name, cell, form="own", id=parent)
                continue
            links[key] = ident(target).casefold()
            items[key] = replace(items[key], **{field: ident(target)})
        for key, cycle in cycles(links):
            cell = refs[key][1]
            names = " → ".join(ident(items[k]) for k in cycle)
            self.log.add(cycle_code, table.name, cell, form="loop", path=names)

    # ---------------------------------------------------------------- Goals
    def _goals(self) -> dict[str, Goal]:
        table = self.tables.get("Goals")
        if table is None:
            return {}
        read = self._reader(table)
        goals: dict[str, Goal] = {}
        parents: dict[str, tuple[str, str]] = {}
        for r in table.rows:
            cell = table.cell(r, "goal_id")
            gid = read.text(table.value(r, "goal_id"), cell, single_line=True)
            text = read.text(table.value(r, "goal"), table.cell(r, "goal"))
            level = read.choice(table.value(r, "level"), table.cell(r, "level"),
                                ("strategic", "tactical", "operational"))
            for column in ("goal_id", "goal", "level"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if gid is None:
                continue
            if gid.casefold() in goals:
                self.log.add("duplicate-id", table.name, cell, form="goal", id=gid)
                continue
            parent = read.text(table.value(r, "parent_goal_id"),
                               table.cell(r, "parent_goal_id"), single_line=True)
            if parent:
                parents[gid.casefold()] = (parent, table.cell(r, "parent_goal_id"))
            goals[gid.casefold()] = Goal(gid, text or "", level or "operational", None,
                                         read.text(table.value(r, "perspective"),
                                                   table.cell(r, "perspective")))
        self._resolve_parents(table, goals, parents, "parent_goal_id", "parent goal",
                              "goal-cycle", lambda g: g.goal_id)
        return {g.goal_id: g for g in goals.values()}

def cycles(links: dict[str, str]):
    """Yield (start, path) for each loop in a child → parent map, once per loop."""
    reported: set[frozenset[str]] = set()
    for start in links:
        path, node = [start], links[start]
        seen = {start}
        while node in links and node not in seen:
            seen.add(node)
            path.append(node)
            node = links[node]
        if node == start or (node in seen and node in path):
            loop = path[path.index(node):]
            key = frozenset(loop)
            if key not in reported and start == min(loop):
                reported.add(key)
                yield start, loop + [loop[0]]
