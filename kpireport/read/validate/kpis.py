"""The KPIs catalogue: ids, units, directions, goals and formulas."""

from __future__ import annotations

from dataclasses import replace

from kpireport.core import formula as formula_mod
from kpireport.core.model import Goal, Kpi
from kpireport.read.cells import is_blank
from kpireport.read.validate.base import KPI_ID, Checks, Table


class KpiChecks(Checks):
    """KPI ids, units, directions, goals, and formulas resolved to their parts."""

    def _kpis(self, goals: dict[str, Goal]) -> dict[str, Kpi]:
        table = self.tables["KPIs"]
        read = self._reader(table)
        kpis: dict[str, Kpi] = {}
        formulas: dict[str, tuple[formula_mod.Node, str]] = {}
        goal_keys = {g.casefold(): g for g in goals}
        for r in table.rows:
            cell = table.cell(r, "kpi_id")
            kid = read.text(table.value(r, "kpi_id"), cell, single_line=True)
            for column in ("kpi_id", "kpi", "unit", "direction"):
                if is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if kid is None:
                continue
            if not KPI_ID.match(kid):
                self.log.add("bad-kpi-id", table.name, cell, id=kid)
                continue
            if kid.casefold() in kpis:
                self.log.add("duplicate-id", table.name, cell, form="kpi", id=kid)
                continue
            agg = read.choice(table.value(r, "aggregation"), table.cell(r, "aggregation"),
                              ("sum", "average", "last", "min", "max"))
            text = read.text(table.value(r, "formula"), table.cell(r, "formula"),
                             single_line=True)
            if text is not None:
                try:
                    formulas[kid.casefold()] = (formula_mod.parse(text), table.cell(r, "formula"))
                except formula_mod.FormulaError as exc:
                    self.log.add("bad-formula", table.name, table.cell(r, "formula"),
                                 error=str(exc))
            elif agg is None and is_blank(table.value(r, "aggregation")):
                self.log.add("missing-value", table.name, table.cell(r, "aggregation"),
                             form="aggregation")
            goal = read.text(table.value(r, "goal_id"), table.cell(r, "goal_id"),
                             single_line=True)
            if goal is not None:
                if goal.casefold() not in goal_keys:
                    self.log.add("unknown-reference", table.name, table.cell(r, "goal_id"),
                                 what="goal", id=goal, listed_in="Goals",
                                 hint=self._hint("goal", goal, lambda: list(goals)))
                    goal = None
                else:
                    goal = goal_keys[goal.casefold()]
            kpis[kid.casefold()] = Kpi(
                kpi_id=kid, kpi=read.text(table.value(r, "kpi"), table.cell(r, "kpi"),
                                          single_line=True) or kid,
                unit=read.choice(table.value(r, "unit"), table.cell(r, "unit"),
                                 ("number", "currency", "percent")) or "number",
                direction=read.choice(table.value(r, "direction"), table.cell(r, "direction"),
                                      ("higher", "lower", "range")) or "higher",
                aggregation=agg, formula=text, goal_id=goal,
                decimals=read.integer(table.value(r, "decimals"), table.cell(r, "decimals"),
                                      0, 6),
                description=read.text(table.value(r, "description"),
                                      table.cell(r, "description")))
        self._resolve_formulas(table, kpis, formulas)
        return {k.kpi_id: k for k in kpis.values()}

    def _resolve_formulas(self, table: Table, kpis: dict[str, Kpi],
                          formulas: dict[str, tuple[formula_mod.Node, str]]) -> None:
        links: dict[str, set[str]] = {}
        for key, (node, cell) in formulas.items():
            names = {}
            for ref in sorted(node.refs()):
                target = kpis.get(ref.casefold())
                if target is None:
                    self.log.add("unknown-reference", table.name, cell, form="formula",
                                 ref=ref, hint=self._hint(
                                     "kpi", ref, lambda: [k.kpi_id for k in kpis.values()]))
                    continue
                names[ref] = target.kpi_id
            links[key] = {n.casefold() for n in names.values()}
            kpis[key] = replace(kpis[key], formula=_formula_text(formula_mod.rename(node, names)),
                                components=tuple(sorted(set(names.values()))))
        for key, refs in links.items():
            if self._formula_loops(key, links):
                self.log.add("formula-cycle", table.name, formulas[key][1],
                             kpi=kpis[key].kpi_id)
                continue
            for ref in refs:
                if ref in formulas:
                    self.log.add("nested-formula", table.name, formulas[key][1],
                                 component=kpis[ref].kpi_id)
                    break

    @staticmethod
    def _formula_loops(start: str, links: dict[str, set[str]]) -> bool:
        stack, seen = list(links.get(start, ())), set()
        while stack:
            node = stack.pop()
            if node == start:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(links.get(node, ()))
        return False

def _formula_text(node: formula_mod.Node) -> str:
    if node.op == "num":
        return f"{node.value:g}"
    if node.op == "ref":
        return node.name
    if node.op == "neg":
        return f"-{_formula_text(node.left)}"  # type: ignore[arg-type]
    left = _formula_text(node.left)  # type: ignore[arg-type]
    right = _formula_text(node.right)  # type: ignore[arg-type]
    if node.right is not None and node.right.op in "+-" and node.op in "*/-":
        right = f"({right})"
    if node.left is not None and node.left.op in "+-" and node.op in "*/":
        left = f"({left})"
    return f"{left} {node.op} {right}"

