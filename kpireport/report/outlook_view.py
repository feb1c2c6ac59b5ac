"""The "What it takes" section of an employee review: the outlook (kpireport.score.outlook)
as resolved strings — one row per KPI with its pace for threshold, target and stretch, and the
owner's score, band and bonus at each level."""

from __future__ import annotations

from kpireport.core.i18n import N_, Formatter
from kpireport.core.model import Kpi, Month
from kpireport.score.outlook import LEVELS, KpiOutlook, Need, Outlook

LEVEL_HEADS = {"threshold": N_("Threshold"), "target": N_("Target"), "stretch": N_("Stretch")}
STATE_WORDS = {"secured": N_("secured"), "out_of_reach": N_("out of reach"),
               "reached": N_("reached"), "missed": N_("missed"), "no_data": N_("no data")}


class OutlookView:
    """Turns outlooks into the section's view, with the report's formatter and names."""

    def __init__(self, fmt: Formatter, kpis: tuple[Kpi, ...], period_label: str) -> None:
        self.fmt = fmt
        self._ = fmt.gettext
        self.names = {k.kpi_id: k.kpi for k in kpis}
        self.units = {k.kpi_id: k.unit for k in kpis}
        self.period_label = period_label

    def view(self, outlook: Outlook | None) -> dict | None:
        if outlook is None:
            return None
        _ = self._
        if outlook.final:
            intro = _("{period} closes the fiscal year: the year to date is final, each level "
                      "reached or missed.").format(period=self.period_label)
        else:
            left = outlook.months_left
            key = (N_("The monthly value each KPI needs in the month left ({months}) for the "
                      "year to date to reach each level.") if len(left) == 1 else
                   N_("The monthly value each KPI needs in each of the {count} months left "
                      "({months}) for the year to date to reach each level."))
            months = self._month(left[0]) if len(left) == 1 else \
                f"{self._month(left[0])} – {self._month(left[-1])}"
            intro = _(key).format(count=len(left), months=months)
        return {"intro": intro, "final": outlook.final,
                "heads": [_(LEVEL_HEADS[level]) for level in LEVELS],
                "rows": [self._row(k, outlook.final) for k in outlook.kpis],
                "owner": self._owner(outlook),
                "short": any(not lv.reachable for lv in outlook.levels)}

    def _month(self, month: Month) -> str:
        return self.fmt.month(month // 12, month % 12 + 1)

    def _row(self, kpi: KpiOutlook, final: bool) -> dict:
        _ = self._
        notes = []
        if kpi.driver and not final:
            held = ", ".join(
                _("{kpi} at {value} a month").format(
                    kpi=self.names.get(c, c), value=self.fmt.value(v, self._unit_of(c), None))
                for c, v in kpi.held)
            notes.append(_("pace of {kpi}").format(kpi=self.names.get(kpi.driver, kpi.driver))
                         + (f"; {held}" if held else ""))
        by_level = {n.level: n for n in kpi.needs}
        if len(kpi.needs) == 1:  # a range KPI: one level, within range
            notes.append(_("within range"))
            cells = [{"text": "·", "state": "na"}, self._cell(kpi, kpi.needs[0]),
                     {"text": "·", "state": "na"}]
        else:
            cells = [self._cell(kpi, by_level[level]) for level in LEVELS]
        return {"name": self.names.get(kpi.kpi_id, kpi.kpi_id), "note": " · ".join(notes),
                "cells": cells}

    def _unit_of(self, kpi_id: str) -> str:
        return self.units.get(kpi_id, "number")

    def _cell(self, kpi: KpiOutlook, need: Need) -> dict:
        if need.state != "pace":
            return {"text": self._(STATE_WORDS[need.state]), "state": need.state}

        def value(v: float) -> str:
            return self.fmt.value(v, kpi.unit, kpi.decimals)

        if need.at_least is not None and need.at_most is not None:
            text = f"{value(need.at_least)} – {value(need.at_most)}"
        elif need.at_least is not None:
            text = f"≥ {value(need.at_least)}"
        else:
            text = f"≤ {value(need.at_most)}"  # type: ignore[arg-type]
        return {"text": text, "state": "pace"}

    def _owner(self, outlook: Outlook) -> list[dict]:
        f = self.fmt
        return [{"score": f.percent(lv.score, 1) if lv.score is not None else "—",
                 "band": lv.band or "—",
                 "bonus": f.money(lv.bonus) if lv.bonus is not None else "—",
                 "short": not lv.reachable}
                for lv in outlook.levels]
