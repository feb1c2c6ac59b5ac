"""The explanation of ``kpireport explain`` in words, in the workbook's language.

:func:`explanation_blocks` turns a document of :class:`kpireport.score.explain.Explainer` into
titled blocks of lines and tables; the CLI prints them (:func:`explanation_text`) and every
employee review lays them out as its "How this was computed" page, through one
:class:`Wording` per build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from kpireport.core.i18n import N_, Formatter
from kpireport.score.explain import WINDOWS

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
