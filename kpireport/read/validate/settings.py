"""Settings, Bands and the report period."""

from __future__ import annotations

from dataclasses import replace

from kpireport.core.issues import PERIOD_LATEST, PERIOD_NOBODY, PERIOD_NONE
from kpireport.core.model import Band, Kpi, Month, ScorecardLine, Settings, month_label
from kpireport.core.spec import SETTINGS_BY_NAME, normalise
from kpireport.read.cells import CellReader, did_you_mean, is_blank
from kpireport.read.validate.base import Checks


class SettingsChecks(Checks):
    """Settings values, the Bands table, and which month is reported."""

    def _settings(self) -> Settings | None:
        table = self.tables["Settings"]
        read = self._reader(table)
        values: dict[str, object] = {}
        seen: dict[str, str] = {}
        for r in table.rows:
            name = read.text(table.value(r, "setting"), table.cell(r, "setting"),
                             single_line=True)
            if name is None:
                continue
            key = normalise(name)
            cell = table.cell(r, "value")
            spec = SETTINGS_BY_NAME.get(key)
            if spec is None:
                self.log.add("unknown-setting", table.name, table.cell(r, "setting"),
                             name=name, hint=did_you_mean(name, SETTINGS_BY_NAME))
                continue
            if key in seen:
                self.log.add("duplicate-setting", table.name, table.cell(r, "setting"),
                             setting=key, first=seen[key])
                continue
            seen[key] = table.cell(r, "setting")
            raw = table.value(r, "value")
            if is_blank(raw):
                continue
            value = self._setting_value(read, spec.kind, spec.choices, raw, cell, key)
            if value is not None:
                values[key] = value
        if "organization" not in values:
            self.log.add("missing-setting", table.name)
            return None
        if "require_approval" in values:
            values["require_approval"] = values["require_approval"] == "yes"
        settings = Settings(**values)  # type: ignore[arg-type]  (defaults: model.Settings)
        if settings.score_cap < 1:
            self.log.add("bad-setting", table.name, seen.get("score_cap", ""), form="score-cap")
        if settings.rag_amber > settings.rag_green:
            self.log.add("bad-setting", table.name, seen.get("rag_amber", ""), form="rag-order")
        if settings.pdf_protection == "none":
            self.log.add("pdf-protection-off", table.name, seen.get("pdf_protection", ""))
        return settings

    def _setting_value(self, read: CellReader, kind: str, choices: tuple[str, ...],
                       raw: object, cell: str, key: str) -> object:
        if kind == "text":
            return read.text(raw, cell, single_line=True)
        if kind == "choice":
            return read.choice(raw, cell, choices)
        if kind == "percent":
            limit = 5.0 if key == "score_cap" else 2.0
            return read.fraction(raw, cell, limit=limit, what=key)
        if kind == "int":
            return read.integer(raw, cell, 1, 12)
        if kind == "month":
            return read.month(raw, cell)
        text = read.text(raw, cell, single_line=True)
        if text is None:
            return None
        if kind == "currency":
            return self._currency(text, cell)
        if kind == "locale":
            return self._locale(text, cell)
        return text

    def _currency(self, text: str, cell: str) -> str | None:
        # lazy: babel is loaded only where it is used (start-up stays light)
        from babel.numbers import list_currencies

        code = text.upper()
        if code not in list_currencies():
            self.log.add("bad-currency", "Settings", cell, value=text)
            return None
        return code

    def _locale(self, text: str, cell: str) -> str | None:
        # lazy: babel is loaded only where it is used (start-up stays light)
        from babel import Locale, UnknownLocaleError

        try:
            return str(Locale.parse(text.replace("-", "_")))
        except (UnknownLocaleError, ValueError, TypeError):
            self.log.add("bad-locale", "Settings", cell, value=text)
            return None

    # ---------------------------------------------------------------- Bands
    def _bands(self) -> list[Band]:
        table = self.tables["Bands"]
        read = self._reader(table)
        bands: list[Band] = []
        previous: float | None = None
        names: set[str] = set()
        for r in table.rows:
            name = read.text(table.value(r, "band"), table.cell(r, "band"), single_line=True)
            low = read.fraction(table.value(r, "min_score"), table.cell(r, "min_score"),
                                limit=5.0, what="min_score")
            payout = read.fraction(table.value(r, "bonus_payout"),
                                   table.cell(r, "bonus_payout"), limit=5.0,
                                   what="bonus_payout")
            raise_ = read.fraction(table.value(r, "salary_increase"),
                                   table.cell(r, "salary_increase"), what="salary_increase")
            for column, value in (("band", name), ("min_score", low), ("bonus_payout", payout)):
                if value is None and is_blank(table.value(r, column)):
                    self._required(table, r, column)
            if name is None or low is None or payout is None:
                continue
            cell = table.cell(r, "min_score")
            if name.casefold() in names:
                self.log.add("duplicate-id", table.name, table.cell(r, "band"), form="band",
                             id=name)
            names.add(name.casefold())
            if previous is None and low != 0:
                self.log.add("bands-first-not-zero", table.name, cell)
            if previous is not None and low <= previous:
                self.log.add("bands-not-increasing", table.name, cell, low=low,
                             previous=previous)
            previous = low
            bands.append(Band(name, low, payout, raise_ or 0.0))
        if not bands and not self.log.errors:
            self.log.add("missing-value", table.name, "A2", form="no-bands")
        return bands

    # ---------------------------------------------------------------- period
    def _report_period(self, settings: Settings | None,
                       actuals: dict[tuple[str, str], dict[Month, float]],
                       lines: list[ScorecardLine], kpis: dict[str, Kpi]) -> Settings | None:
        if settings is None:
            return None
        if not self.need_period:
            return settings

        latest = max((max(months) for months in actuals.values() if months), default=None)
        period = settings.report_period
        if period is None:
            if latest is None:
                self.log.add("no-report-period", "Settings")
                return None
            settings = replace(settings, report_period=latest)
            self.log.add("report-period", "Settings", month=month_label(latest))
        elif no_actuals_in_period(actuals, period):
            cell = self._setting_cell("report_period")
            self.log.add("no-actuals-in-period", "Settings", cell,
                         reason=no_actuals_in_period(actuals, period))
            return None
        elif latest is not None and latest > period:
            later = sorted({m for months in actuals.values() for m in months if m > period})
            self.log.add("actual-after-period", "Actuals", period=month_label(period),
                         later=", ".join(month_label(m) for m in later[:3])
                         + ("…" if len(later) > 3 else ""))
        return settings


def no_actuals_in_period(actuals: dict[tuple[str, str], dict[Month, float]],
                         period: Month) -> str:
    """'' when someone has an actual in the month; otherwise why it cannot be reported."""
    if any(period in months for months in actuals.values()):
        return ""
    latest = max((m for months in actuals.values() for m in months), default=None)
    where = (PERIOD_LATEST.format(month=month_label(latest)) if latest is not None
             else PERIOD_NONE)
    return PERIOD_NOBODY.format(month=month_label(period), where=where)
