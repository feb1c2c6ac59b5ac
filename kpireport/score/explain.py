"""``kpireport explain``: the whole path of a number, from the cells read to the rounded money.

:class:`Explainer` turns one owner's results into a plain, JSON-able document (schema
``kpireport/explain@1``): for each KPI and window the cells read, the months and their values,
the aggregation (or the formula with each component's aggregate), target, threshold and
stretch, the score rule and segment of SPEC §2.3 with the score it gives; the owner score with
its weights and their renormalisation (§2.4); the band and its edges, the payout (step, or the
two points of the linear interpolation), the days of proration, the exact bonus as a fraction
and its half-up rounding (§2.6–2.7). Every figure in it is the one the build used, so
``tests/test_explain.py`` recomputes each stated result from the document's own figures.

:mod:`kpireport.report.explanation` says the document in the workbook's language.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

from kpireport.core.errors import UnknownSubject
from kpireport.core.model import Book, CellIndex, Month, first_day, last_day, month_label
from kpireport.core.money import minor_units, round_money
from kpireport.score.bands import EDGE_DECIMALS, band_for, exact_payout
from kpireport.score.results import Results
from kpireport.score.scoring import LineResult, MonthlyActuals, OwnerScore, Window

SCHEMA = "kpireport/explain@1"
SCORECARD_CELLS = ("weight", "target", "threshold", "stretch", "target_max")
WINDOWS = ("month", "ytd")


# ---------------------------------------------------------------------------- cells
def cell_range(cells: list[str]) -> str | None:
    """'Actuals!F14:H14' for cells of one row or column, else the cells listed."""
    if not cells:
        return None
    if len(cells) == 1:
        return cells[0]
    sheet = cells[0].rsplit("!", 1)[0]
    if all(c.rsplit("!", 1)[0] == sheet for c in cells):
        first, last = cells[0].rsplit("!", 1)[1], cells[-1].rsplit("!", 1)[1]
        rows = {c.rsplit("!", 1)[1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for c in cells}
        if len(rows) == 1:
            return f"{sheet}!{first}:{last}"
    return ", ".join(cells)


# ---------------------------------------------------------------------------- rules
def score_rule(direction: str, w: Window) -> str:
    """The segment of SPEC §2.3 that scored the window (``w.actual`` is not None)."""
    a, t, lo, hi = w.actual, w.target, w.threshold, w.stretch
    assert a is not None and t is not None
    if direction == "range":
        return "range"
    if direction == "higher":
        if a < t:
            return "no-threshold-below" if lo is None else \
                "below-threshold" if a < lo else "threshold-to-target"
        return "no-stretch-above" if hi is None else "target-to-stretch"
    if a > t:
        return "no-threshold-below" if lo is None else \
            "below-threshold" if a > lo else "threshold-to-target"
    return "no-stretch-above" if hi is None else "target-to-stretch"


def rule_score(direction: str, rule: str, a: float, t: float, lo: float | None,
               hi: float | None, tmax: float | None, cap: float, ts: float) -> float:
    """The score of ``rule`` from the window's figures (scalar SPEC §2.3, clipped to [0, cap])."""
    if direction == "range":
        return 1.0 if tmax is not None and t <= a <= tmax else 0.0
    att = attainment_of(direction, a, t, tmax, cap)
    if rule == "below-threshold":
        score = 0.0
    elif rule == "no-threshold-below":
        score = max(0.0, att)
    elif rule == "no-stretch-above":
        score = min(att, cap)
    elif rule == "threshold-to-target":
        assert lo is not None
        score = ts + (1 - ts) * ((a - lo) / (t - lo) if direction == "higher"
                                 else (lo - a) / (lo - t))
    else:
        assert hi is not None
        score = min(cap, 1 + (cap - 1) * ((a - t) / (hi - t) if direction == "higher"
                                         else (t - a) / (t - hi)))
    return min(max(score, 0.0), cap)


def attainment_of(direction: str, a: float, t: float, tmax: float | None, cap: float) -> float:
    if direction == "higher":
        return a / t
    if direction == "lower":
        return t / a if a > 0 else cap
    return 1.0 if tmax is not None and t <= a <= tmax else 0.0


def aggregate_values(values: list[float], aggregation: str) -> float:
    """One window's aggregate of the used months' values (``last``: the latest)."""
    if aggregation == "sum":
        return sum(values)
    if aggregation == "average":
        return sum(values) / len(values)
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    return values[-1]


# ---------------------------------------------------------------------------- the document
class Explainer:
    """Explanations of the owners of one Results (one instance per build: the monthly series
    and the cell index are shared)."""

    def __init__(self, results: Results) -> None:
        self.r = results
        self.book: Book = results.book
        self.cells: CellIndex = results.book.cells
        self.series = MonthlyActuals(results.book)
        self.months = list(self.series.months)
        self.kpis = {k.kpi_id: k for k in results.book.kpis}
        self._labels = {m: month_label(m) for m in self.months}
        self._owners: dict[str, OwnerScore] = {}
        for o in results.owners:
            self._owners.setdefault(o.owner.casefold(), o)

    def owner(self, owner_id: str, kpi_id: str | None = None, *,
              windows: tuple[str, ...] = WINDOWS) -> dict:
        """The explanation of ``owner_id`` (an employee id, department or COMPANY, matched
        ignoring case), or of one of its KPIs, for ``windows`` (both by default; a review
        explains its bonus basis only)."""
        owner = self._owners.get(owner_id.casefold())
        if owner is None:
            raise UnknownSubject(f"{owner_id} has no scorecard in this workbook")
        lines = list(owner.lines)
        if kpi_id is not None:
            lines = [ln for ln in lines if ln.kpi_id.casefold() == kpi_id.casefold()]
            if not lines:
                raise UnknownSubject(f"{kpi_id} is not on {owner.owner}'s scorecard")
        s = self.book.settings
        doc = {"schema": SCHEMA, "owner": owner.owner, "owner_type": owner.owner_type,
               "name": owner.name, "period": self.r.period,
               "fiscal_year_start": month_label(self.r.scores.fiscal_start),
               "currency": s.currency, "locale": s.locale,
               "source": {"file": self.book.source_file, "sha256": self.book.source_sha256},
               "settings": {"score_cap": s.score_cap, "threshold_score": s.threshold_score,
                            "missing_actuals": s.missing_actuals, "band_mode": s.band_mode,
                            "bonus_basis": s.bonus_basis, "rag_green": s.rag_green,
                            "rag_amber": s.rag_amber},
               "kpis": [self._line(ln, windows) for ln in lines],
               "owner_score": None if kpi_id is not None else
               {w: self._owner_score(owner, w) for w in windows},
               "pay": None}
        if kpi_id is None and owner.owner in self.r.pay:
            doc["pay"] = self._pay(owner)
        return doc

    # ------------------------------------------------------------------ a KPI line
    def _line(self, ln: LineResult, windows: tuple[str, ...]) -> dict:
        kpi, line = ln.kpi, ln.line
        bounds = self._monthly_bounds(ln)
        found = self.cells.cells("Scorecards", SCORECARD_CELLS, line.owner, line.kpi_id)
        scorecard = {"row": line.row, "target": line.target, "threshold": line.threshold,
                     "stretch": line.stretch, "target_max": line.target_max,
                     "cells": {c: found.get(c) for c in SCORECARD_CELLS
                               if getattr(line, c) is not None}}
        return {"kpi_id": kpi.kpi_id, "kpi": kpi.kpi, "unit": kpi.unit,
                "decimals": kpi.decimals, "direction": kpi.direction,
                "aggregation": None if kpi.formula else kpi.aggregation or "sum",
                "formula": kpi.formula, "weight": line.weight, "rolled_up": ln.rolled_up,
                "scorecard": scorecard,
                "windows": {w: self._window(ln, w, bounds, found) for w in windows}}

    def _window_months(self, name: str) -> list[Month]:
        return self.months[-1:] if name == "month" else self.months

    def _monthly_bounds(self, ln: LineResult) -> dict[Month, tuple]:
        """Each month's (target, threshold, stretch, target_max), phased by Targets (§1)."""
        line = ln.line
        phased = self.book.targets.get((line.owner, line.kpi_id), {})
        if not phased:  # the scorecard's every month (factor 1.0, as below)
            same = (line.target, *(None if v is None else v * 1.0
                                   for v in (line.threshold, line.stretch, line.target_max)))
            return dict.fromkeys(self.months, same)
        found = {}
        for m in self.months:
            target = phased.get(m, line.target)
            factor = target / line.target if line.target != 0 else 1.0
            found[m] = (target, *(None if v is None else v * factor
                                  for v in (line.threshold, line.stretch, line.target_max)))
        return found

    def _window(self, ln: LineResult, name: str, bounds: dict[Month, tuple],
                scorecard: dict[str, str]) -> dict:
        w: Window = getattr(ln, name)
        kpi = ln.kpi
        months = self._window_months(name)
        labels = self._labels
        doc: dict = {"months": [labels[m] for m in months]}
        target_cells = self.cells.month_cells("Targets", ln.owner, ln.kpi_id, months)
        scorecard_target = scorecard.get("target")
        if kpi.formula:
            comps = self._components(ln, months)
            common = [all(c["values"][i] is not None for c in comps)
                      for i in range(len(months))]
            monthly = dict(zip(self.months, (a for _, a, _ in ln.history)))
            used = [ok and monthly.get(m) is not None for ok, m in zip(common, months)]
            doc["components"] = comps
            actual_cells: list[str] = []
        else:
            values, rolled = self.series.of(ln.owner, ln.kpi_id)
            by_month = dict(zip(self.months, values))
            monthly = {m: by_month[m] for m in months}
            used = [monthly[m] is not None for m in months]
            cells = self.cells.month_cells("Actuals", ln.owner, ln.kpi_id, months)
            actual_cells = [cells[m] for m in months if m in cells]
            if rolled:
                doc["rolled_up_from"] = [
                    {"owner": member,
                     "cells": cell_range(list(self.cells.month_cells(
                         "Actuals", member, ln.kpi_id, months).values()))}
                    for member in self.series.members(ln.owner, ln.kpi_id)]
        rows = []
        for m, ok in zip(months, used):
            target, threshold, stretch, target_max = bounds[m]
            rows.append({"month": labels[m], "actual": monthly.get(m), "target": target,
                         "threshold": threshold, "stretch": stretch, "target_max": target_max,
                         "used": ok, "target_cell": target_cells.get(m, scorecard_target)})
        doc["rows"] = rows
        doc["cells"] = {"actual": cell_range(actual_cells),
                        "target": cell_range(list(target_cells.values())) or scorecard_target}
        for bound in ("threshold", "stretch", "target_max"):
            cell = scorecard.get(bound)
            if getattr(ln.line, bound) is not None and cell:
                doc["cells"][bound] = cell
        doc.update({"actual": w.actual, "target": w.target, "threshold": w.threshold,
                    "stretch": w.stretch, "target_max": w.target_max,
                    "attainment": w.attainment, "score": w.score, "status": w.status,
                    "rule": None if w.actual is None or w.target is None
                    else score_rule(kpi.direction, w)})
        return doc

    def _components(self, ln: LineResult, months: list[Month]) -> list[dict]:
        found = []
        for comp in ln.kpi.components:
            values, rolled = self.series.of(ln.owner, comp)
            by_month = dict(zip(self.months, values))
            cells = self.cells.month_cells("Actuals", ln.owner, comp, months)
            found.append({"kpi_id": comp, "aggregation": self.kpis[comp].aggregation or "sum",
                          "values": [by_month[m] for m in months], "rolled_up": rolled,
                          "cells": cell_range([cells[m] for m in months if m in cells])})
        common = [all(c["values"][i] is not None for c in found) for i in range(len(months))]
        for c in found:
            used = [v for v, ok in zip(c["values"], common) if ok]
            c["used"] = common
            c["value"] = aggregate_values(used, c["aggregation"]) if used else None
        return found

    # ------------------------------------------------------------------ owner, band, pay
    def _owner_score(self, owner: OwnerScore, name: str) -> dict:
        items = []
        for ln in owner.lines:
            score = getattr(ln, name).score
            items.append({"kpi_id": ln.kpi_id, "weight": ln.weight, "score": score,
                          "counted": ln.weight > 0 and score is not None})
        counted = [i for i in items if i["counted"]]
        total = sum(i["weight"] for i in counted)
        weighted = sum(i["weight"] * i["score"] for i in counted)
        score = getattr(owner, f"{name}_score")
        return {"items": items, "weight_total": total, "weighted_sum": weighted,
                "score": score, "status": getattr(owner, f"{name}_status"),
                "without_data": [i["kpi_id"] for i in items
                                 if i["weight"] > 0 and i["score"] is None]}

    def _pay(self, owner: OwnerScore) -> dict:
        pay = self.r.pay[owner.owner]
        person = owner.person
        assert person is not None
        s = self.book.settings
        bands = self.book.bands
        band = band_for(pay.score, bands)
        period = self.r.scores.period
        start = self.r.scores.fiscal_start if pay.basis == "ytd" else period
        doc: dict = {"basis": pay.basis, "score": pay.score,
                     "score_rounded": None if pay.score is None
                     else round(pay.score, EDGE_DECIMALS),
                     "band": None, "payout": None,
                     "base_salary": pay.base_salary, "target_bonus_pct": pay.target_bonus_pct,
                     "cells": {c: self.cells.cell("People", c, person.employee_id)
                               for c in ("base_salary", "target_bonus_pct", "start_date",
                                         "end_date")
                               if getattr(person, c) is not None},
                     "share": "1" if pay.basis == "ytd" else "1/12",
                     "start_date": _iso(person.start_date), "end_date": _iso(person.end_date),
                     "window": [first_day(start).isoformat(), last_day(period).isoformat()],
                     "days_employed": pay.days_employed, "days_in_period": pay.days_in_period,
                     "currency": s.currency, "minor_units": minor_units(s.currency),
                     "exact": None, "exact_decimal": None, "rounding": "half-up",
                     "bonus": None if pay.bonus is None else str(pay.bonus),
                     "salary_increase": pay.salary_increase,
                     "recommended_salary": None if pay.recommended_salary is None
                     else str(pay.recommended_salary)}
        if band is not None:
            index = bands.index(band)
            upper = bands[index + 1] if index + 1 < len(bands) else None
            doc["band"] = {"band": band.band, "min_score": band.min_score,
                           "cell": self.cells.cell("Bands", "min_score", band.band),
                           "next": None if upper is None else
                           {"band": upper.band, "min_score": upper.min_score}}
            exact = exact_payout(pay.score, bands, s.band_mode)
            assert exact is not None
            payout: dict = {"mode": s.band_mode, "value": pay.bonus_payout,
                            "exact": str(exact),
                            "cell": self.cells.cell("Bands", "bonus_payout", band.band)}
            if s.band_mode == "linear" and upper is not None:
                payout["from"] = [band.min_score, band.bonus_payout]
                payout["to"] = [upper.min_score, upper.bonus_payout]
            doc["payout"] = payout
            if pay.base_salary is not None and pay.target_bonus_pct is not None:
                amount = (_dec(pay.base_salary) * _dec(pay.target_bonus_pct)
                          * Fraction(doc["share"]) * exact
                          * Fraction(pay.days_employed, pay.days_in_period))
                doc["exact"] = str(amount)
                doc["exact_decimal"] = _decimal_text(amount, 10)
                assert round_money(amount, s.currency) == pay.bonus
        return doc


def _dec(value: float) -> Fraction:
    return Fraction(Decimal(repr(float(value))))


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _decimal_text(amount: Fraction, places: int) -> str:
    """The exact amount to ``places`` decimals, truncated, with '…' when it goes on."""
    scaled = abs(amount) * 10 ** places
    whole = scaled.numerator // scaled.denominator
    text = str(Decimal(whole).scaleb(-places))
    text = ("-" if amount < 0 else "") + text
    if scaled.denominator != 1 and whole != scaled:
        return text + "…"
    return text.rstrip("0").rstrip(".") if "." in text else text
