"""Results → the view model of each report: every label and number resolved here.

Templates receive read-only dicts of strings, tuples and chart SVG (:class:`FrozenDict`) and
only lay them out; colours are CSS classes that the templates style. The view models are small
and picklable, so they travel cheaply to worker processes or a Dask cluster, and their JSON is
the content hash of the render cache.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from decimal import Decimal, localcontext

from kpireport.core.i18n import COMPACT_FROM, N_, Formatter
from kpireport.core.money import round_money
from kpireport.core.names import base_name, safe_names
from kpireport.core.options import FORMATS
from kpireport.core.spec import COMPANY
from kpireport.report import charts
from kpireport.report.archive import Slicer, archive_meta
from kpireport.report.outlook_view import OutlookView
from kpireport.report.pool_view import payment_view, pool_view
from kpireport.report.viewmodel import FrozenDict, freeze
from kpireport.score.results import Results, employment
from kpireport.score.scoring import LineResult, OwnerScore, Window

STATUS_LABELS = {"green": N_("On track"), "amber": N_("At risk"), "red": N_("Off track"),
                 "none": N_("No data")}
STATUS_ICONS = {"green": "●", "amber": "▲", "red": "■", "none": "○"}
# The status as a word after a count: "7 scorecards: ● 2 on track · ▲ 1 at risk".
STATUS_WORDS = {"green": N_("on track"), "amber": N_("at risk"), "red": N_("off track"),
                "none": N_("no data")}
# Band bars are shaded in band order (charts.css: shade-0 light … shade-6 dark blue), never
# in the status colours: a middle band ("Meets") must not look like "At risk".
BAND_SHADES = 7
LEVEL_LABELS = {"strategic": N_("strategic"), "tactical": N_("tactical"),
                "operational": N_("operational")}
DIRECTION_LABELS = {"higher": N_("higher is better"), "lower": N_("lower is better"),
                    "range": N_("within range")}


def band_shade(index: int, count: int) -> str:
    """The shade class of band ``index`` of ``count``: evenly spread from light to dark."""
    if count <= 1:
        return "shade-3"
    return f"shade-{round(index * (BAND_SHADES - 1) / (count - 1))}"


def fraction_places(value: float | None, most: int = 4) -> int:
    """Decimals a fraction needs as a percent to print exactly: 0.25 → 0 (25%), 0.125 → 1."""
    if value is None:
        return 0
    for places in range(most + 1):
        if abs(round(value * 100, places) - value * 100) < 1e-9:
            return places
    return most


def exact_places(pay, currency: str) -> int:
    """Decimals of the payout percent with which the printed calculation multiplies out to
    the printed bonus (118.4% is not enough where 177,427,726 needs 118.35%)."""

    base = round_money(Decimal(repr(float(pay.base_salary))), currency)  # as printed
    pct = Decimal(repr(float(pay.target_bonus_pct)))
    share = Decimal(1) if pay.basis == "ytd" else Decimal(1) / Decimal(12)
    with localcontext() as ctx:
        ctx.prec = 40
        for places in range(1, 9):
            shown = Decimal(repr(round(pay.bonus_payout * 100, places))) / 100
            product = base * pct * share * shown * pay.days_employed / pay.days_in_period
            if round_money(product, currency) == pay.bonus:
                return places
    return 8


def fit(text: str) -> str:
    """The size class of a card's big figure: long amounts are set smaller so they stay
    inside a card (about 100 pt wide): '' up to 11 characters, then s, xs and xxs."""
    n = len(text)
    return "" if n <= 11 else "s" if n <= 14 else "xs" if n <= 17 else "xxs"


def slug(text: str) -> str:
    """A file-name-safe slug: 'Customer Success' → 'customer-success', 'Ban Giám đốc' →
    'ban-giam-doc'."""
    return base_name(text, lower=True, fallback="department")


def department_slugs(departments: list[str]) -> dict[str, str]:
    """File names of the department reports (see :func:`kpireport.core.names.safe_names`)."""
    return safe_names(departments, lower=True, fallback="department")


def employee_files(ids: list[str]) -> dict[str, str]:
    """File names of the employee reports: the id when it is a safe name, else a safe one."""
    return safe_names(ids, fallback="employee")


class ViewBuilder:
    """Builds the views of one Results, sharing the formatter and lookups."""

    def __init__(self, results: Results, formats: tuple[str, ...] = FORMATS, *,
                 archive: bool = False) -> None:
        self.r = results
        self.formats = formats
        self.archive = archive  # each report but the index carries its archive copy's data
        self._document: dict | None = None  # results.json, for statements and archive copies
        self._rules = ""  # the hash of the scoring rules and settings, for statements
        self._slicer: Slicer | None = None  # results.json by report, made with it
        s = results.book.settings
        self.fmt = Formatter(s.locale, s.currency)
        self._ = self.fmt.gettext
        self.goals = {g.goal_id: g for g in results.book.goals}
        self.people = {p.employee_id: p for p in results.book.people}
        period = results.scores.period
        self.period_label = self.fmt.month(period // 12, period % 12 + 1)
        start = results.scores.fiscal_start
        start_label = self.fmt.month(start // 12, start % 12 + 1)
        self.ytd_label = self._("Year to date") + f" ({start_label} – {self.period_label})"
        self.slugs = department_slugs(results.book.departments)
        self.files = employee_files([p.employee_id for p in results.book.people])
        # Per-line pieces that depend only on the locale, built once (10,000 lines a run).
        self._statuses = {code: FrozenDict(code=code, label=self._(label),
                                           icon=STATUS_ICONS[code])
                          for code, label in STATUS_LABELS.items()}
        self._directions = {d: self._(label) for d, label in DIRECTION_LABELS.items()}
        self._trend = self._("Year-to-date trend")
        self._charts: dict[tuple[str, str], tuple] | None = None
        self._explainer: tuple | None = None  # made on the first employee review
        self._outlook = OutlookView(self.fmt, results.book.kpis, self.period_label)
        self._short_months: dict[int, str] = {}
        self._kpi_names = {k.kpi_id: k.kpi for k in results.book.kpis}
        self._comments: dict[str, list] = defaultdict(list)
        for c in results.book.comments:
            if c.period == results.scores.period:
                self._comments[c.owner].append(c)

    # ------------------------------------------------------------------ common pieces
    def document(self) -> dict:
        """results.json of these results, made once: the statements slice it and the build
        writes it (never changed after it is made)."""
        if self._document is None:
            # lazy: this stage loads only when the command reaches it (start-up stays light)
            from kpireport.report.results_files import results_json

            # lazy: this stage loads only when the command reaches it (start-up stays light)
            from kpireport.report.statement import rules_sha256

            self._document = results_json(self.r)
            self._slicer = Slicer(self._document)
            self._rules = rules_sha256(self.r.book)
        return self._document

    def _finish(self, view: dict) -> FrozenDict:
        """The finished, read-only view: every report but the index carries its statement
        (attached to its PDF, its code in the footer; see kpireport.report.statement), and
        its archive copy's data if the build makes archive copies."""
        if view["kind"] != "index":
            # lazy: this stage loads only when the command reaches it (start-up stays light)
            from kpireport.report.statement import statement_meta

            document = self.document()
            results = self._slicer.of(view)
            view["statement"] = statement_meta(document, view, self._rules, results)
            if self.archive:
                view["archive"] = archive_meta(document, view, results)
        return freeze(view)

    def common(self, kind: str, title: str, depth: int) -> dict:
        s = self.r.book.settings
        up = "../" * depth
        return {"kind": kind, "title": title, "organization": s.organization,
                "report_title": s.report_title, "period": self.r.period,
                "period_label": self.period_label, "ytd_label": self.ytd_label,
                "lang": s.locale.split("_")[0], "locale": s.locale, "currency": s.currency,
                "index_href": f"{up}index.html", "company_href": f"{up}company.html",
                "source_file": self.r.book.source_file}

    def status(self, status: str) -> dict:
        """The status badge; one shared dict per status (views are read, never changed)."""
        return self._statuses[status]

    def score(self, value: float | None) -> str:
        return self.fmt.percent(value, 1)

    def window(self, w: Window, line: LineResult, actual: str | None = None,
               scale: tuple[float, str] | None = None) -> FrozenDict:
        kpi = line.kpi
        if scale is not None:
            actual = self._scaled(w.actual, scale)
        elif actual is None:
            actual = self.fmt.value(w.actual, kpi.unit, kpi.decimals)
        return FrozenDict(actual=actual, target=self._target_text(w, line, scale),
                          attainment=self.fmt.percent(w.attainment, 1),
                          score=self.score(w.score), status=self.status(w.status))

    def _target_text(self, w: Window, line: LineResult,
                     scale: tuple[float, str] | None = None) -> str:
        kpi = line.kpi

        def text(value):
            return self._scaled(value, scale) if scale is not None else \
                self.fmt.value(value, kpi.unit, kpi.decimals)

        if kpi.direction == "range" and w.target is not None:
            return f"{text(w.target)} – {text(w.target_max)}"
        return text(w.target)

    def _month_short(self, month: int) -> str:
        """A sparkline's end label: 'Apr', 'thg 4' (a handful of months a build: each is
        formatted once, not twice for each of 10,000 KPI rows)."""
        label = self._short_months.get(month)
        if label is None:
            # lazy: babel is loaded only where it is used (start-up stays light)
            from babel.dates import format_date

            label = format_date(dt.date(month // 12, month % 12 + 1, 1), "MMM",
                                locale=self.fmt.locale)
            self._short_months[month] = label
        return label

    def _row_scale(self, line: LineResult) -> tuple[float, str] | None:
        """One compact unit for every figure of a KPI row, from its largest (4,12 T ₫ beside
        0,44 T ₫, never beside 441 Tr ₫): (the power of 1,000, a pattern with {})."""
        if line.kpi.unit == "percent":
            return None
        values = [abs(v) for w in (line.month, line.ytd)
                  for v in (w.actual, w.target, w.target_max) if v is not None]
        if not values or max(values) < COMPACT_FROM:
            return None
        power = 10.0 ** (3 * int(math.log10(max(values)) // 3))
        sample = self.fmt.value(power, line.kpi.unit, 0, compact=True)
        one = sample.find("1")
        if one < 0:
            return None
        return power, sample[:one] + "{}" + sample[one + 1:]

    def _scaled(self, value: float | None, scale: tuple[float, str]) -> str:
        if value is None:
            return "—"
        power, pattern = scale
        return pattern.format(self.fmt.number(value / power, 2))

    def kpi_row(self, line: LineResult) -> FrozenDict:
        kpi = line.kpi
        goal = self.goals.get(line.goal_id or "")
        strategic = self.goals.get(line.strategic_goal_id or "")
        ytd_actual, bullet, spark = self._line_charts(line)
        scale = self._row_scale(line)
        return FrozenDict({
            "kpi_id": kpi.kpi_id, "name": kpi.kpi, "unit": kpi.unit,
            "direction": self._directions[kpi.direction],
            "formula": kpi.formula or "",
            "goal": goal.goal if goal else "", "goal_id": goal.goal_id if goal else "",
            "strategic": strategic.goal if strategic and strategic is not goal else "",
            "weight": self.fmt.percent(line.weight, 0),
            "scored": line.weight > 0,
            "rolled_up": line.rolled_up,
            "month": self.window(line.month, line, scale=scale),
            "ytd": self.window(line.ytd, line, actual=ytd_actual, scale=scale),
            "bullet": bullet,
            "spark": spark,
            "spark_from": self._month_short(line.history[0][0]) if spark else "",
            "spark_to": self._month_short(line.history[-1][0]) if spark else "",
        })

    def _line_charts(self, line: LineResult) -> tuple:
        """(year-to-date actual as text, bullet chart, sparkline) of a line. Charts are drawn
        in numpy batches: those of :meth:`draw_charts`, else every line of the build on
        first use (a line not drawn yet is drawn with the rest of its scorecard)."""
        found = self._charts.get((line.owner, line.kpi_id)) if self._charts else None
        if found is None:
            self.draw_charts(None if not self._charts else [line.owner])
            found = self._charts[(line.owner, line.kpi_id)]  # type: ignore[index]
        return found

    def draw_charts(self, owners: Iterable[str] | None = None, *, fresh: bool = False) -> None:
        """Draw the charts of these owners' lines (every line when None) in one batch; a
        share of the reports draws only the charts its reports show. ``fresh`` forgets the
        charts drawn before (a build draws a chunk of reports at a time: what it keeps does
        not grow with the number of reports)."""
        wanted = None if owners is None else set(owners)
        lines = [ln for o in self.r.owners if wanted is None or o.owner in wanted
                 for ln in o.lines]
        actuals = [self.fmt.value(ln.ytd.actual, ln.kpi.unit, ln.kpi.decimals) for ln in lines]
        bullets = charts.bullets([
            (ln.ytd.actual, ln.ytd.target, ln.ytd.threshold, ln.ytd.stretch,
             ln.ytd.target_max, ln.kpi.direction, ln.ytd.status, f"{ln.kpi.kpi}: {text}")
            for ln, text in zip(lines, actuals)])
        sparks = charts.sparklines([([a for _, a, _ in ln.history],
                                     [t for _, _, t in ln.history],
                                     f"{ln.kpi.kpi}: {self._trend}") for ln in lines])
        if self._charts is None or fresh:
            self._charts = {}
        self._charts.update({(ln.owner, ln.kpi_id): found
                             for ln, found in zip(lines, zip(actuals, bullets, sparks))})

    def summary(self, owner: OwnerScore) -> dict:
        return {"month_score": self.score(owner.month_score),
                "month_status": self.status(owner.month_status),
                "ytd_score": self.score(owner.ytd_score),
                "ytd_status": self.status(owner.ytd_status)}

    def no_data(self, owner: OwnerScore) -> list[str]:
        month = self._("this month")
        return [f"{ln.kpi.kpi} ({month})" if ln.ytd.score is not None else ln.kpi.kpi
                for ln in owner.lines if ln.month.score is None or ln.ytd.score is None]

    def comments(self, owner_id: str) -> list[dict]:
        kpis = self._kpi_names
        return [{"author": c.author or "", "kpi": kpis.get(c.kpi_id or "", ""),
                 "text": c.comment}
                for c in self._comments.get(owner_id, ())]

    # ------------------------------------------------------------------ employee
    def employee(self, owner: OwnerScore) -> FrozenDict:
        person = owner.person
        assert person is not None
        manager = self.people.get(person.manager_id or "")
        view = self.common("employee", f"{self.r.book.settings.report_title} — {person.name}", 1)
        view.update({
            "file": f"employees/{self.files[owner.owner]}",
            "person": {"id": person.employee_id, "name": person.name,
                       "title": person.title or "", "department": person.department,
                       "manager": manager.name if manager else "",
                       "department_href": f"../departments/{self.slugs[person.department]}.html"},
            "summary": self.summary(owner),
            "pay": self.pay(owner.owner),
            "payment": payment_view(self.r.payables.get(owner.owner),
                                    self.r.book.settings.bonus_payment, self.fmt),
            "kpis": [self.kpi_row(ln) for ln in owner.lines],
            "no_data": self.no_data(owner),
            "comments": self.comments(owner.owner),
            "explanation": self.explanation(owner.owner),
            "what_it_takes": self._outlook.view(self.r.outlooks.get(owner.owner)),
        })
        return self._finish(view)

    def explanation(self, employee_id: str) -> list[dict]:
        """The "How this was computed" page: the explanation of ``kpireport explain`` for the
        bonus-basis window, as titled steps (the cells read, the months, the rule with its
        figures), then the owner score and the band and bonus."""
        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.report.explanation import Wording

        # lazy: this stage loads only when the command reaches it (start-up stays light)
        from kpireport.score.explain import Explainer

        if self._explainer is None:
            self._explainer = Explainer(self.r), Wording(self.fmt)
        explainer, wording = self._explainer
        basis = (self.r.book.settings.bonus_basis,)
        doc = explainer.owner(employee_id, windows=basis)
        steps = []
        for block in wording.blocks(doc, windows=basis, compact=True):
            rows = [{"cells": list(r), "unused": r[0].endswith(" *"),
                     "total": i == len(block.rows) - 1 and block.total}
                    for i, r in enumerate(block.rows)]
            steps.append({"title": block.title, "lines": list(block.lines),
                          "head": list(block.head), "rows": rows, "notes": list(block.notes)})
        return steps

    def pay(self, employee_id: str) -> dict:
        pay = self.r.pay[employee_id]
        f = self.fmt
        basis = self._("year-to-date score") if pay.basis == "ytd" else self._("month score")
        payout_text = f.percent(pay.bonus_payout, 1)
        explanation = ""
        if pay.bonus is None:
            reason = (self._("No bonus: there is no score for this period.")
                      if pay.score is None else
                      self._("No bonus: base salary or target bonus is not set."))
            calculation = reason
        else:
            payout_text = f.percent(pay.bonus_payout,
                                    exact_places(pay, self.r.book.settings.currency))
            share = "" if pay.basis == "ytd" else " ÷ 12"
            days = self._("days")
            pct = f.percent(pay.target_bonus_pct, fraction_places(pay.target_bonus_pct))
            calculation = (f"{f.money(pay.base_salary)} × {pct}"
                           f"{share} × {payout_text} × "
                           f"{pay.days_employed}/{pay.days_in_period} {days} = "
                           f"{f.money(pay.bonus)}")
            explanation = self.payout_explanation(pay)
        return {"band": pay.band or "—", "basis": basis,
                "score": self.score(pay.score),
                "bonus_payout": payout_text,
                "bonus": f.money(pay.bonus), "target_bonus": f.money(pay.target_bonus),
                "bonus_size": fit(f.money(pay.bonus)),
                "salary_size": fit(f.money(pay.recommended_salary)),
                "calculation": calculation,
                "payout_explanation": explanation,
                "base_salary": f.money(pay.base_salary),
                "salary_increase": f.percent(pay.salary_increase, 1),
                "recommended_salary": f.money(pay.recommended_salary),
                "prorated": pay.days_employed < pay.days_in_window}

    def payout_explanation(self, pay) -> str:
        """Where a linear payout comes from: 'score 113.5%: payout interpolated between
        Meets (100.0% → 100%) and Exceeds (120.0% → 150%)'; '' for step bands."""
        s = self.r.book.settings
        bands = self.r.book.bands
        if s.band_mode != "linear" or pay.score is None or pay.band is None:
            return ""
        index = next(i for i, b in enumerate(bands) if b.band == pay.band)
        if index == len(bands) - 1:
            return self._("score {score}: above the last band the payout stays at "
                          "{payout}").format(score=self.score(pay.score),
                                             payout=self.fmt.percent(bands[index].bonus_payout, 0))
        low, high = bands[index], bands[index + 1]
        point = "{band} ({score} → {payout})"
        return self._("score {score}: payout interpolated between {low} and {high}").format(
            score=self.score(pay.score),
            low=point.format(band=low.band, score=self.fmt.percent(low.min_score, 1),
                             payout=self.fmt.percent(low.bonus_payout, 0)),
            high=point.format(band=high.band, score=self.fmt.percent(high.min_score, 1),
                              payout=self.fmt.percent(high.bonus_payout, 0)))

    # ------------------------------------------------------------------ department
    def department(self, name: str) -> FrozenDict:
        own = next((o for o in self.r.owners if o.owner_type == "department" and o.owner == name),
                   None)
        members = [o for o in self.r.owners if o.owner_type == "employee"
                   and o.department == name]
        team = list(self.r.departments[name].team)
        team.sort(key=lambda o: (o.ytd_score is None, -(o.ytd_score or 0), o.name))
        review = self._("Department review")
        view = self.common("department", f"{name} — {review}", 1)
        view.update({
            "file": f"departments/{self.slugs[name]}", "name": name,
            "headcount": len([p for p in self.r.book.people if p.department == name
                              and employment(p, self.r.scores.period) == "employed"]),
            "summary": self.summary(own) if own else None,
            "kpis": [self.kpi_row(ln) for ln in own.lines] if own else [],
            "no_data": self.no_data(own) if own else [],
            "team": [self.team_row(o, "../employees/") for o in team],
            "bands": self.band_chart(team),
            "top": self.extremes(team, best=True), "bottom": self.extremes(team, best=False),
            "comments": self.comments(name),
            # the cost includes leavers' pro-rated bonus (listed in payroll.csv, not here)
            "bonus_total": self.fmt.money(self._bonus_total(members)),
            "bonus_total_size": fit(self.fmt.money(self._bonus_total(members))),
        })
        return self._finish(view)

    def team_row(self, o: OwnerScore, prefix: str) -> dict:
        pay = self.r.pay.get(o.owner)
        person = o.person
        return {"id": o.owner, "name": o.name, "title": person.title if person else "",
                "department": o.department or "",
                "href": f"{prefix}{self.files[o.owner]}.html",
                "month_score": self.score(o.month_score),
                "ytd_score": self.score(o.ytd_score), "status": self.status(o.ytd_status),
                "band": pay.band if pay and pay.band else "—",
                "bonus": self.fmt.money(pay.bonus) if pay else "—"}

    def band_chart(self, team: list[OwnerScore]) -> dict:
        counts = Counter(self.r.pay[o.owner].band or self._("No score") for o in team
                         if o.owner in self.r.pay)
        names = [b.band for b in self.r.book.bands] + [self._("No score")]
        items = []
        for i, band in enumerate(names):
            if counts.get(band) or band != self._("No score"):
                shade = "no-score" if band == self._("No score") else \
                    band_shade(i, len(names) - 1)
                items.append((band, counts.get(band, 0), str(counts.get(band, 0)), shade))
        return {"svg": charts.bars(items, self._("Band distribution"), width=340, row=18,
                                   label_w=130),
                "rows": [{"band": n, "count": c} for n, c, _, _ in items]}

    def extremes(self, team: list[OwnerScore], best: bool, n: int = 3) -> list[dict]:
        """The n strongest (or weakest) scored KPI lines by year-to-date score. With fewer
        than 2n lines they are shared out, so no line appears in both lists."""
        lines = [(ln, o) for o in team for ln in o.lines if ln.ytd.score is not None
                 and ln.weight > 0]
        lines.sort(key=lambda p: (-p[0].ytd.score, p[1].owner, p[0].kpi_id))
        top = min(n, (len(lines) + 1) // 2)
        chosen = lines[:top] if best else lines[top:][::-1][:n]
        return [{"kpi": ln.kpi.kpi, "owner": o.name, "score": self.score(ln.ytd.score),
                 "status": self.status(ln.ytd.status)} for ln, o in chosen]

    def _bonus_total(self, team: list[OwnerScore]):
        amounts = [self.r.pay[o.owner].bonus for o in team if o.owner in self.r.pay]
        known = [a for a in amounts if a is not None]
        return sum(known) if known else None

    # ------------------------------------------------------------------ company
    def company(self) -> FrozenDict:
        own = next((o for o in self.r.owners if o.owner_type == "company"), None)
        everyone = [o for o in self.r.owners if o.owner_type == "employee"]
        employees = [o for o in everyone if o.owner not in self.r.absent]
        departments = []
        s = self.r.book.settings
        for dept in self.r.departments.values():
            paid = [o for o in everyone if o.department == dept.name]
            departments.append({
                "name": dept.name, "href": f"departments/{self.slugs[dept.name]}.html",
                "score": self.score(dept.ytd), "status": self.status(dept.status),
                "team_average": self.score(dept.team_average), "headcount": len(dept.team),
                "bonus": self.fmt.money(self._bonus_total(paid))})
        chart_items = [(d["name"], dept.ytd or 0.0, d["score"], dept.status)
                       for d, dept in zip(departments, self.r.departments.values())]
        review = self._("Company review")
        view = self.common("company", f"{s.organization} — {review}", 0)
        total = self._bonus_total(everyone)
        target_total = [self.r.pay[o.owner].target_bonus for o in everyone
                        if o.owner in self.r.pay and self.r.pay[o.owner].target_bonus is not None]
        view.update({
            "file": "company", "index_href": "index.html", "company_href": "company.html",
            "summary": self.summary(own) if own else None,
            "kpis": [self.kpi_row(ln) for ln in own.lines] if own else [],
            "no_data": self.no_data(own) if own else [],
            "cascade": self.cascade(),
            "departments": departments,
            "department_chart": charts.bars(chart_items,
                                            self._("Department year-to-date scores"),
                                            width=340, row=18, label_w=130,
                                            scale_max=max([1.5] + [v for _, v, _, _ in
                                                                   chart_items])),
            "bands": self.band_chart(employees),
            "headcount": len(employees),
            "bonus_total": self.fmt.money(total),
            "bonus_total_size": fit(self.fmt.money(total)),
            "bonus_target_total": self.fmt.money(sum(target_total) if target_total else None),
            "comments": self.comments(COMPANY),
            "pool": pool_view(self.r.pool, self.fmt, self.ytd_label, fit),
        })
        return self._finish(view)

    def cascade(self) -> list[dict]:
        """Strategic goals → the goals below them → the KPIs serving each, with status."""
        measured = self.r.kpis
        children: dict[str | None, list] = defaultdict(list)
        for g in self.r.book.goals:
            children[g.parent_goal_id].append(g)

        def kpis_of(goal_id: str) -> list[dict]:
            found = []
            for kpi in self.r.book.kpis:
                rollup = measured.get(kpi.kpi_id)
                if kpi.goal_id != goal_id or rollup is None:
                    continue
                found.append({"kpi": kpi.kpi, "score": self.score(rollup.ytd),
                              "status": self.status(rollup.status),
                              "owners": rollup.scorecards,
                              "split": " · ".join(
                                  f"{STATUS_ICONS[c]} {n} {self._(STATUS_WORDS[c])}"
                                  for c, n in rollup.by_status)})
            return found

        def node(goal, depth: int) -> dict:
            return {"id": goal.goal_id, "goal": goal.goal,
                    "level": self._(LEVEL_LABELS[goal.level]),
                    "perspective": goal.perspective or "", "kpis": kpis_of(goal.goal_id),
                    "children": [node(c, depth + 1) for c in children.get(goal.goal_id, [])
                                 if depth < 4]}

        return [node(g, 0) for g in children.get(None, [])]

    # ------------------------------------------------------------------ index
    def index(self, formats: tuple[str, ...] = FORMATS) -> FrozenDict:
        """The landing page: totals, every department's and person's month and year-to-date
        score, status, band and bonus, with links to the HTML and PDF of every report that
        the build writes."""
        reports = self._("Reports")
        view = self.common("index", f"{self.r.book.settings.organization} — {reports}", 0)
        everyone = [o for o in self.r.owners if o.owner_type == "employee"]
        employees = [o for o in everyone if o.owner not in self.r.absent]
        employees.sort(key=lambda o: (o.department or "", o.name))
        company = next((o for o in self.r.owners if o.owner_type == "company"), None)
        total = self._bonus_total(everyone)  # with leavers' pro-rated bonus, as payroll.csv
        departments = []
        for dept in self.r.departments.values():
            departments.append({
                "name": dept.name, **self._links(f"departments/{self.slugs[dept.name]}",
                                                 formats),
                "month_score": self.score(dept.month), "ytd_score": self.score(dept.ytd),
                "status": self.status(dept.status), "headcount": len(dept.team),
                "bonus": self.fmt.money(self._bonus_total(
                    [o for o in everyone if o.department == dept.name]))})
        view.update({
            "file": "index", "index_href": "index.html", "company_href": "company.html",
            "company": {**self._links("company", formats),
                        **(self.summary(company) if company else {})},
            "headcount": len(employees),
            "bonus_total": self.fmt.money(total),
            "bonus_total_size": fit(self.fmt.money(total)),
            "departments": departments,
            "employees": [{**self.team_row(o, "employees/"),
                           **self._links(f"employees/{self.files[o.owner]}", formats)}
                          for o in employees],
            "files": ["results.json", "results.xlsx", "payroll.csv"],
        })
        return self._finish(view)

    @staticmethod
    def _links(stem: str, formats: tuple[str, ...]) -> dict:
        """Links to a report's files that the build writes ('' for a format it does not)."""
        return {"href": f"{stem}.html" if "html" in formats else "",
                "pdf_href": f"{stem}.pdf" if "pdf" in formats else ""}


def report_specs(results: Results) -> list[tuple[str, str]]:
    """(kind, subject) of every report of a build: company, departments, employees with
    scorecards who worked in the report month (leavers and future joiners get none),
    index — the order reports are listed and rendered in."""
    return ([("company", "")] + [("department", d) for d in results.book.departments]
            + [("employee", o.owner) for o in results.owners if o.owner_type == "employee"
               and o.owner not in results.absent]
            + [("index", "")])


def build_view(builder: ViewBuilder, spec: tuple[str, str],
               formats: tuple[str, ...] = FORMATS) -> FrozenDict:
    kind, subject = spec
    if kind == "employee":
        return builder.employee(builder.r.owner(subject))
    if kind == "department":
        return builder.department(subject)
    return builder.company() if kind == "company" else builder.index(formats)


def all_views(results: Results, formats: tuple[str, ...] = FORMATS, *,
              archive: bool = False) -> list[FrozenDict]:
    """Every report of a build, in the order of :func:`report_specs` (the index links to the
    files of ``formats``; with ``archive`` each other report has its archive copy's data)."""
    builder = ViewBuilder(results, formats, archive=archive)
    return [build_view(builder, spec, formats) for spec in report_specs(results)]
