"""``kpireport explain``: the whole path of a number, from the cells read to the rounded money.

:class:`Explainer` turns one owner's results into a plain, JSON-able document (schema
``kpireport/explain@1``): for each KPI and window the cells read, the months and their values,
the aggregation (or the formula with each component's aggregate), target, threshold and
stretch, the score rule and segment of SPEC §2.3 with the score it gives; the owner score with
its weights and their renormalisation (§2.4); the band and its edges, the payout (step, or the
two points of the linear interpolation), the days of proration, the exact bonus as a fraction
and its half-up rounding (§2.6–2.7). Every figure in it is the one the build used, so
``tests/test_explain.py`` recomputes each stated result from the document's own figures.

:func:`explanation_blocks` says the document in the workbook's language, as titled blocks of
lines and tables; the CLI prints them and every employee review lays them out as its
"How this was computed" page.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from kpireport.core.errors import UnknownSubject
from kpireport.core.i18n import N_, Formatter
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
        if not phased:  # the scorecard's every month
            same = (line.target, line.threshold, line.stretch, line.target_max)
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


# ---------------------------------------------------------------------------- in words
SEGMENT_WORDS = {
    "below-threshold": N_("worse than the threshold: 0"),
    "threshold-to-target": N_("between threshold and target: ts + (1 − ts) × distance from "
                              "the threshold ÷ (threshold to target)"),
    "target-to-stretch": N_("at or better than target, with a stretch: 1 + (cap − 1) × "
                            "distance past the target ÷ (target to stretch), at most cap"),
    "no-threshold-below": N_("worse than target, no threshold: the attainment"),
    "no-stretch-above": N_("at or better than target, no stretch: the attainment, at most cap"),
    "range": N_("range: 100% inside [target, target max], else 0"),
}
CELL_WORDS = {"actual": N_("actuals"), "target": N_("targets"), "threshold": N_("threshold"),
              "stretch": N_("stretch"), "target_max": N_("target max")}
STATUS_WORDS = {"green": N_("on track"), "amber": N_("at risk"), "red": N_("off track"),
                "none": N_("no data")}
AGGREGATION_WORDS = {"sum": N_("sum"), "average": N_("average"), "last": N_("last"),
                     "min": N_("min"), "max": N_("max")}


@dataclass(frozen=True)
class Block:
    """A titled part of an explanation: lines of text and, optionally, a table."""

    title: str
    lines: tuple[str, ...] = ()  # before the table
    head: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()  # after the table
    total: bool = False  # the table's last row is the window's aggregate


def explanation_blocks(doc: dict, *, windows: tuple[str, ...] = WINDOWS,
                       compact: bool = False) -> list[Block]:
    """The explanation in the workbook's language, as blocks the CLI prints and the review
    lays out. ``compact`` says each KPI's months as lines instead of a table (the review:
    a page, not a page per KPI; see :func:`_compact_lines`). A build that words many
    explanations keeps one :class:`Wording` instead (figures are formatted once)."""
    return Wording(Formatter(doc["locale"], doc["currency"])).blocks(
        doc, windows=windows, compact=compact)


FIGS_KEPT = 4096


class Wording:
    """Words explanations in one workbook's language. One per build: a figure that recurs
    (a target on every month and every review) is formatted once."""

    def __init__(self, formatter: Formatter) -> None:
        self.f = formatter
        self._figs: dict[tuple, str] = {}

    def blocks(self, doc: dict, *, windows: tuple[str, ...] = WINDOWS,
               compact: bool = False) -> list[Block]:
        """:func:`explanation_blocks` of ``doc``, written in this wording's language."""
        return _Words(doc, self, compact).blocks(windows)

    def fig(self, value: float | None, unit: str, decimals: int | None) -> str:
        """A KPI figure with enough decimals to check the arithmetic (up to 4)."""
        if value is None:
            return "—"
        key = (value, unit, decimals)
        text = self._figs.get(key)
        if text is None:
            if len(self._figs) >= FIGS_KEPT:  # bounded: actuals rarely recur
                self._figs.clear()
            text = self._figs[key] = self._fig(value, unit, decimals)
        return text

    def _fig(self, value: float, unit: str, decimals: int | None) -> str:
        if unit == "percent":
            return self.f.percent(value, 2)
        places = _places(value)
        if unit == "currency":
            whole = float(round(value, 4)).is_integer()
            return self.f.money(value, places=decimals if decimals is not None
                                else 0 if whole else max(places, 2))
        return self.f.number(value, places)


def _compact_lines(head: tuple[str, ...], months: list[tuple[str, bool, tuple]],
                   total: tuple[str, ...], fig: Callable[[float | None], str]) -> list[str]:
    """A KPI's month table as one line per column: 'target: 50,000 × 12 → 600,000'.
    ``months`` holds (label, used, raw values); a column whose used months all hold one
    value is formatted once."""
    unused = [label for label, ok, _ in months if not ok]
    used = [values for _, ok, values in months if ok]
    span = f"{months[0][0]} – {months[-1][0]}" if len(months) > 1 else \
        months[0][0] if months else ""
    lines = [f"{head[0]}: {span} ({len(used)})" + (f"; * {', '.join(unused)}" if unused else "")]
    for i, name in enumerate(head[1:]):
        raw = [values[i] for values in used]
        if not raw or all(v is None for v in raw):
            continue
        first = raw[0]
        shown = [fig(first)] if all(v == first for v in raw) and first is not None else \
            [fig(v) for v in raw]
        if len(shown) > 1 and len(set(shown)) == 1:  # distinct values that read the same
            shown = shown[:1]
        text = f"{shown[0]} × {len(raw)}" if len(shown) == 1 and len(raw) > 1 else \
            " · ".join(shown)
        lines.append(f"{name}: {text} → {total[0]} {total[i + 1]}")
    return lines


def explanation_text(doc: dict, *, windows: tuple[str, ...] = WINDOWS) -> str:
    """The explanation as plain text (``kpireport explain --format text``)."""
    out: list[str] = []
    for block in explanation_blocks(doc, windows=windows):
        out.append(block.title)
        out.extend(f"  {line}" for line in block.lines)
        if block.head:
            table = [block.head, *block.rows]
            widths = [max(len(r[i]) for r in table) for i in range(len(block.head))]
            for r in table:
                out.append("    " + "  ".join(c.rjust(w) if i else c.ljust(w)
                                             for i, (c, w) in enumerate(zip(r, widths)))
                           .rstrip())
        out.extend(f"  {line}" for line in block.notes)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _places(value: float) -> int:
    """The fewest decimals (at most 4) that show ``value`` as it reads rounded to 4: the
    decimals of the shortest repr of round(value, 4). (Rounding to fewer decimals than that
    repr has cannot give the same number; rounding to exactly that many gives it, since the
    value is within 0.00005 of it and numbers of that many decimals are ≥ 0.001 apart.)"""
    text = repr(round(value, 4))
    if "e" in text or "n" in text:  # huge, tiny or not a number: the careful way
        return next(p for p in range(5) if p == 4 or round(value, p) == round(value, 4))
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0")
    return len(decimals)


class _Words:
    def __init__(self, doc: dict, wording: Wording, compact: bool = False) -> None:
        self.doc = doc
        self.compact = compact
        self.wording = wording
        self.f = wording.f
        self._ = self.f.gettext

    def pct(self, value: float | None) -> str:
        return self.f.percent(value, 2)

    def fig(self, value: float | None, kpi: dict) -> str:
        return self.wording.fig(value, kpi["unit"], kpi.get("decimals"))

    def blocks(self, windows: tuple[str, ...]) -> list[Block]:
        _ = self._
        doc = self.doc
        start, period = doc["fiscal_year_start"], doc["period"]
        labels = {"month": _("Month") + f" {period}",
                  "ytd": _("Year to date") + f" {start} – {period}"}
        found = []
        for kpi in doc["kpis"]:
            for w in windows:
                found.append(self.kpi_block(kpi, kpi["windows"][w], labels[w]))
        if doc["owner_score"]:
            for w in windows:
                found.append(self.owner_block(doc["owner_score"][w], labels[w]))
        if doc["pay"]:
            found.append(self.pay_block(doc["pay"]))
        return found

    def kpi_block(self, kpi: dict, w: dict, label: str) -> Block:
        _ = self._
        title = f"{kpi['kpi_id']} — {kpi['kpi']} · {label}"
        lines = []
        cells = w["cells"]
        read = [f"{_(CELL_WORDS[b])} {cells[b]}" for b in CELL_WORDS if cells.get(b)]
        if any(read):
            lines.append(_("Cells read") + ": " + "; ".join(r for r in read if r))
        for source in w.get("rolled_up_from", ()):
            lines.append(_("Rolled up from {owner}").format(owner=source["owner"])
                         + (f": {source['cells']}" if source["cells"] else ""))
        head = (_("month"), _("actual"), _("target"), _("threshold"), _("stretch"))
        if kpi["direction"] == "range":
            head = (_("month"), _("actual"), _("target"), _("target max"))
        ranged = kpi["direction"] == "range"
        months = [(row["month"], row["used"],
                   (row["actual"], row["target"], row["target_max"]) if ranged else
                   (row["actual"], row["target"], row["threshold"], row["stretch"]))
                  for row in w["rows"]]
        notes = []
        if kpi["formula"]:
            agg = _("window")
            for comp in w["components"]:
                used = [self.fig(v, {"unit": "number"}) for v, ok in
                        zip(comp["values"], comp["used"]) if ok]
                where = f", {comp['cells']}" if comp["cells"] else ""
                lines.append(f"{comp['kpi_id']} ({_(AGGREGATION_WORDS[comp['aggregation']])}"
                             f"{where}): {' · '.join(used) or '—'} → "
                             f"{self.fig(comp['value'], {'unit': 'number'})}")
            values = {c["kpi_id"]: self.fig(c["value"], {"unit": "number"})
                      for c in w["components"]}
            text = re.sub(r"[A-Za-z][A-Za-z0-9_]*",
                          lambda m: next((v for k, v in values.items()
                                          if k.casefold() == m.group(0).casefold()),
                                         m.group(0)), kpi["formula"])
            notes.append(_("Formula") + f": {kpi['formula']} = {text} = "
                         f"{self.fig(w['actual'], kpi)}")
            notes.append(_("Target: the mean of the monthly targets of the months where the "
                           "formula has a value"))
        else:
            agg = _(AGGREGATION_WORDS[kpi["aggregation"]])
        rows = [] if self.compact and w["actual"] is not None else \
            [(label + ("" if ok else " *"), *(self.fig(v, kpi) for v in values))
             for label, ok, values in months]
        if w["actual"] is None:
            return Block(title, tuple(lines), head, tuple(rows),
                         (*notes, _("No data in this window: not scored.")))
        bounds = [w["actual"], w["target"]] + (
            [w["target_max"]] if ranged else [w["threshold"], w["stretch"]])
        total = (agg, *(self.fig(v, kpi) for v in bounds))
        if any(not r["used"] for r in w["rows"]):
            notes.append(_("* not used: no actual that month"))
        notes.append(_("Rule") + f": {self.direction(kpi)}; {_(SEGMENT_WORDS[w['rule']])}")
        notes.append(self.substituted(kpi, w))
        notes.append(_("Attainment {attainment} · score {score} · status {status}").format(
            attainment=self.pct(w["attainment"]), score=self.pct(w["score"]),
            status=_(STATUS_WORDS[w["status"]])))
        if self.compact:  # the review: a page, not a page per KPI
            lines += _compact_lines(head, months, total, lambda v: self.fig(v, kpi))
            return Block(title, tuple(lines), notes=tuple(notes))
        return Block(title, tuple(lines), head, (*rows, total), tuple(notes), total=True)

    def direction(self, kpi: dict) -> str:
        return {"higher": self._("higher is better"), "lower": self._("lower is better"),
                "range": self._("within a range")}[kpi["direction"]]

    def substituted(self, kpi: dict, w: dict) -> str:
        """The rule with the window's figures in it, and what it gives."""
        s = self.doc["settings"]
        cap, ts = self.pct(s["score_cap"]), self.pct(s["threshold_score"])
        a, t, lo, hi = (self.fig(w[k], kpi) for k in ("actual", "target", "threshold",
                                                       "stretch"))
        rule, higher = w["rule"], kpi["direction"] == "higher"
        if rule == "threshold-to-target":
            text = (f"{ts} + (100% − {ts}) × ({a} − {lo}) ÷ ({t} − {lo})" if higher else
                    f"{ts} + (100% − {ts}) × ({lo} − {a}) ÷ ({lo} − {t})")
        elif rule == "target-to-stretch":
            text = (f"min({cap}, 100% + ({cap} − 100%) × ({a} − {t}) ÷ ({hi} − {t}))" if higher
                    else f"min({cap}, 100% + ({cap} − 100%) × ({t} − {a}) ÷ ({t} − {hi}))")
        elif rule in ("no-threshold-below", "no-stretch-above"):
            text = f"{a} ÷ {t}" if higher else f"{t} ÷ {a}"
        elif rule == "range":
            text = f"{t} ≤ {a} ≤ {self.fig(w['target_max'], kpi)}"
        else:
            text = f"{a} {'<' if higher else '>'} {lo}"
        return f"= {text} = {self.pct(w['score'])}"

    def owner_block(self, o: dict, label: str) -> Block:
        _ = self._
        title = _("Owner score") + f" · {label}"
        rows = tuple((i["kpi_id"], self.pct(i["weight"]), self.pct(i["score"]),
                      self.f.number(i["weight"] * i["score"], 4) if i["counted"] else "—")
                     for i in o["items"])
        lines = [_("Σ weight × score ÷ Σ weight over the KPIs with data and weight above 0")]
        if o["score"] is None:
            lines.append(_("No KPI has data: no score."))
        else:
            lines.append(f"= {self.f.number(o['weighted_sum'], 4)} ÷ "
                         f"{self.f.number(o['weight_total'], 4)} = {self.pct(o['score'])}")
        if o["without_data"]:
            lines.append(_("Weights renormalised: no data for {kpis}").format(
                kpis=", ".join(o["without_data"])))
        return Block(title, (), (_("KPI"), _("weight"), _("score"), _("weight × score")), rows,
                     tuple(lines))

    def pay_block(self, p: dict) -> Block:
        _ = self._
        f = self.f
        lines = []
        if p["band"] is None:
            lines.append(_("No score: no band and no bonus."))
            return Block(_("Band and bonus"), notes=tuple(lines))
        band = p["band"]
        edge = _("{score} (rounded to 6 decimals) ≥ {band}'s minimum {minimum}").format(
            score=self.pct(p["score_rounded"]), band=band["band"],
            minimum=self.pct(band["min_score"]))
        if band["next"]:
            edge += "; " + _("below {band}'s {minimum}").format(
                band=band["next"]["band"], minimum=self.pct(band["next"]["min_score"]))
        lines.append(_("Band") + f": {band['band']} — {edge}")
        payout = p["payout"]
        if payout.get("from"):
            (x0, y0), (x1, y1) = payout["from"], payout["to"]
            score = self.pct(p["score_rounded"])
            lines.append(_("Payout (linear)") + f": {self.pct(y0)} + ({score} − {self.pct(x0)})"
                         f" ÷ ({self.pct(x1)} − {self.pct(x0)}) × ({self.pct(y1)} − "
                         f"{self.pct(y0)}) = {self.pct(payout['value'])}")
        else:
            lines.append(_("Payout") + f": {self.pct(payout['value'])} ("
                         + _("the band's payout") + ")")
        if p["exact"] is None:
            lines.append(_("No bonus: base salary or target bonus is not set."))
            return Block(_("Band and bonus"), notes=tuple(lines))
        window = _("window")
        employed = _("employed {start} – {end}").format(
            start=p["start_date"] or "…", end=p["end_date"] or "…")
        lines.append(_("Days") + f": {p['days_employed']} / {p['days_in_period']} "
                     f"({window} {p['window'][0]} – {p['window'][1]}; {employed})")
        share = "" if p["share"] == "1" else " ÷ 12"
        lines.append(_("Bonus") + f" = {f.money(p['base_salary'])} × "
                     f"{self.f.percent(p['target_bonus_pct'], 2)}{share} × "
                     f"{self.f.percent(float(Fraction(payout['exact'])), 4)} × "
                     f"{p['days_employed']}/{p['days_in_period']}")
        exact = p["exact"] if p["exact"] == p["exact_decimal"] else \
            f"{p['exact']} = {p['exact_decimal']}"
        lines.append(_("Exact") + f": {exact}")
        lines.append(_("Rounded half up to the currency's minor unit") +
                     f": {f.money(Decimal(p['bonus']))}")
        return Block(_("Band and bonus"), notes=tuple(lines))
