"""SPEC §2: windows, aggregation, attainment, scores, owner scores and roll-ups.

Pure functions over the model, vectorised with numpy: every scorecard line of every owner is a
row of a (lines × months) matrix, so scoring 10,000 lines is a handful of array operations.

Rules the SPEC leaves open, decided here (and in docs/scoring.md):
- a formula KPI is evaluated over the months in which *all* its components have an actual, so a
  ratio of sums never mixes a numerator and a denominator from different months;
- scores are compared with the RAG and band thresholds after rounding to 6 decimals.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from kpireport.core import formula as formula_mod
from kpireport.core.issues import Issue, issue
from kpireport.core.model import Book, Kpi, Month, Person, ScorecardLine, first_day, last_day
from kpireport.core.spec import COMPANY

AGG_CODES = {"sum": 0, "average": 1, "last": 2, "min": 3, "max": 4}
DIRECTIONS = {"higher": 0, "lower": 1, "range": 2}


@dataclass(frozen=True)
class Window:
    """One KPI line in one window (month or year-to-date)."""

    actual: float | None = None
    target: float | None = None
    threshold: float | None = None
    stretch: float | None = None
    target_max: float | None = None
    attainment: float | None = None
    score: float | None = None
    status: str = "none"


@dataclass(frozen=True)
class LineResult:
    owner: str
    kpi: Kpi
    line: ScorecardLine
    goal_id: str | None
    strategic_goal_id: str | None
    month: Window
    ytd: Window
    history: tuple[tuple[Month, float | None, float | None], ...]  # (month, actual, target)
    rolled_up: bool

    @property
    def kpi_id(self) -> str:
        return self.kpi.kpi_id

    @property
    def weight(self) -> float:
        return self.line.weight


@dataclass(frozen=True)
class OwnerScore:
    owner: str
    owner_type: str  # employee / department / company
    name: str
    department: str | None
    month_score: float | None
    month_status: str
    ytd_score: float | None
    ytd_status: str
    lines: tuple[LineResult, ...]
    person: Person | None = None


@dataclass(frozen=True)
class Scores:
    period: Month
    fiscal_start: Month
    owners: tuple[OwnerScore, ...]
    issues: tuple[Issue, ...]


def fiscal_year_start(period: Month, start_month: int) -> Month:
    """First month of the fiscal year that contains ``period``."""
    offset = (period % 12 - (start_month - 1)) % 12
    return period - offset


def status_of(score: float | None, green: float, amber: float) -> str:
    if score is None:
        return "none"
    rounded = round(score, 6)
    return "green" if rounded >= green else "amber" if rounded >= amber else "red"


def mean_score(scores: Iterable[float | None]) -> float | None:
    """The mean of the known scores; None when none is known (a team's average, a KPI's
    average over the scorecards that measure it)."""
    known = [v for v in scores if v is not None]
    return sum(known) / len(known) if known else None


def score_book(book: Book) -> Scores:
    """Score every scorecard line and owner of ``book`` for its report period."""
    return _Scorer(book).run()


class MonthlyActuals:
    """The monthly actuals scoring uses for one (owner, base KPI) over the fiscal year to the
    report month: as typed, zero-filled (``missing_actuals = zero``) or rolled up (§2.5).

    ``kpireport explain`` reads them through here, so it shows the numbers that were scored.
    """

    def __init__(self, book: Book) -> None:
        self._scorer = _Scorer(book)
        self.months: tuple[Month, ...] = tuple(self._scorer.months)

    def of(self, owner: str, kpi_id: str) -> tuple[list[float | None], bool]:
        """(one value or None per month, whether it was rolled up from the owner's people)."""
        matrix, rolled = self._scorer._series([(owner, kpi_id)])
        return [None if math.isnan(v) else float(v) for v in matrix[0]], bool(rolled[0])

    def members(self, owner: str, kpi_id: str) -> list[str]:
        """The people whose actuals a roll-up of ``owner`` (a department or COMPANY) adds."""
        actuals = self._scorer.book.actuals
        return [m for m in self._scorer.members.get(owner, ()) if actuals.get((m, kpi_id))]


class FiscalYearSeries:
    """Monthly actuals and levels over the whole fiscal year ending ``year_end``, read as
    scoring at that month would read them (Targets phasing, zero-fill, scaled thresholds).

    ``kpireport.score.outlook`` asks of them what the rest of the year needs.
    """

    def __init__(self, book: Book, year_end: Month) -> None:
        settings = replace(book.settings, report_period=year_end)
        self._scorer = _Scorer(replace(book, settings=settings))
        self.months: tuple[Month, ...] = tuple(self._scorer.months)

    def levels(self, lines: list[ScorecardLine]) -> tuple[np.ndarray, ...]:
        """(target, threshold, stretch, target_max) of each line by month (NaN: not set)."""
        return self._scorer._targets(lines)

    def actuals(self, keys: list[tuple[str, str]]) -> np.ndarray:
        """The monthly actuals of (owner, base KPI) pairs (NaN: no actual)."""
        return self._scorer._series(keys)[0]


def attainment_and_score(direction: np.ndarray, actual: np.ndarray, target: np.ndarray,
                         threshold: np.ndarray, stretch: np.ndarray, target_max: np.ndarray,
                         cap: float, ts: float) -> tuple[np.ndarray, np.ndarray]:
    """SPEC §2.3 over arrays; NaN threshold / stretch means "not set", NaN actual "no data"."""
    a, t, lo, hi = actual, target, threshold, stretch
    with np.errstate(divide="ignore", invalid="ignore"):
        higher_att = a / t
        lower_att = np.where(a > 0, t / a, cap)
        range_att = ((a >= t) & (a <= target_max)).astype(float)
        # higher is better
        below = np.where(np.isnan(lo), np.maximum(0.0, higher_att),
                         np.where(a < lo, 0.0, ts + (1 - ts) * (a - lo) / (t - lo)))
        above = np.where(np.isnan(hi), np.minimum(higher_att, cap),
                         np.minimum(cap, 1 + (cap - 1) * (a - t) / (hi - t)))
        higher_score = np.where(a < t, below, above)
        # lower is better: the mirror image
        worse = np.where(np.isnan(lo), np.maximum(0.0, lower_att),
                         np.where(a > lo, 0.0, ts + (1 - ts) * (lo - a) / (lo - t)))
        better = np.where(np.isnan(hi), np.minimum(lower_att, cap),
                          np.minimum(cap, 1 + (cap - 1) * (t - a) / (t - hi)))
        lower_score = np.where(a > t, worse, better)
    attainment = np.select([direction == 0, direction == 1], [higher_att, lower_att], range_att)
    score = np.select([direction == 0, direction == 1], [higher_score, lower_score], range_att)
    missing = np.isnan(a)
    attainment[missing] = np.nan
    score[missing] = np.nan
    return attainment, np.clip(score, 0.0, cap)


def aggregate(values: np.ndarray, mask: np.ndarray, codes: np.ndarray,
              *others: np.ndarray) -> list[np.ndarray]:
    """Aggregate each row of ``values`` over the months in ``mask`` by its code, and each of
    ``others`` (targets, thresholds …) the same way over the same months."""
    out = []
    has = mask.any(axis=1)
    n = values.shape[1]
    last_index = n - 1 - np.argmax(mask[:, ::-1], axis=1)
    rows = np.arange(values.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        for matrix in (values, *others):
            masked = np.where(mask, matrix, np.nan)
            count = (~np.isnan(masked)).sum(axis=1)
            total = np.where(count > 0, np.nansum(masked, axis=1), np.nan)
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
            result = np.select(
                [codes == 0, codes == 1, codes == 2, codes == 3],
                [total, mean, matrix[rows, last_index], np.nanmin(masked, axis=1)],
                np.nanmax(masked, axis=1))
            result = np.where(has, result, np.nan)
            out.append(result)
    return out


class _quiet:
    """Silence numpy's all-NaN-slice warnings (an empty window is "no data", by design)."""

    def __enter__(self):

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


class _Scorer:
    def __init__(self, book: Book) -> None:
        self.book = book
        self.s = book.settings
        assert self.s.report_period is not None
        self.period: Month = self.s.report_period
        self.start = fiscal_year_start(self.period, self.s.fiscal_year_start_month)
        self.months = list(range(self.start, self.period + 1))
        self.kpis = {k.kpi_id: k for k in book.kpis}
        self.people = {p.employee_id: p for p in book.people}
        self.issues: list[Issue] = []
        self.members: dict[str, list[str]] = defaultdict(list)
        for person in book.people:
            self.members[person.department].append(person.employee_id)
            self.members[COMPANY].append(person.employee_id)

    # ------------------------------------------------------------------ series
    def _series(self, keys: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Monthly actuals for (owner, base kpi) pairs; roll-ups for departments / COMPANY.
        Returns the matrix and a flag per row telling whether it was rolled up.

        Rows are plain lists (a month with no actual NaN) made into one matrix at the end:
        setting ~120,000 numpy cells one by one was a fifth of scoring 1,000 people."""
        n, months = len(self.months), self.months
        rows: list = []
        rolled = np.zeros(len(keys), dtype=bool)
        actuals, people, nan = self.book.actuals, self.people, math.nan
        empty = [nan] * n
        for row, key in enumerate(keys):
            values = actuals.get(key)
            if values:
                rows.append([values.get(m, nan) for m in months])
            elif key[0] not in people:
                rows.append(self._roll_up(key, n))
                rolled[row] = True
            else:
                rows.append(empty)
        matrix = np.array(rows, dtype=float).reshape(len(keys), n)
        if self.s.missing_actuals == "zero":
            employed = np.array([self._employed(owner) for owner, _ in keys]).reshape(len(keys), n)
            matrix = np.where(np.isnan(matrix) & employed, 0.0, matrix)
        return matrix, rolled

    def _roll_up(self, key: tuple[str, str], n: int) -> list[float]:
        owner, kpi_id = key
        months, nan, actuals = self.months, math.nan, self.book.actuals
        rows = [[values.get(m, nan) for m in months]
                for member in self.members.get(owner, ())
                if (values := actuals.get((member, kpi_id)))]
        if not rows:
            return [nan] * n
        stack = np.array(rows, dtype=float)
        agg = self.kpis[kpi_id].aggregation
        with _quiet():
            if agg == "average":
                result = np.nanmean(stack, axis=0)
            elif agg == "min":
                result = np.nanmin(stack, axis=0)
            elif agg == "max":
                result = np.nanmax(stack, axis=0)
            else:
                present = ~np.isnan(stack).all(axis=0)
                result = np.where(present, np.nansum(stack, axis=0), np.nan)
        return result.tolist()

    def _employed(self, owner: str) -> list[bool]:
        person = self.people.get(owner)
        if person is None:
            return [True] * len(self.months)
        return [(person.start_date is None or person.start_date <= last_day(m)) and
                (person.end_date is None or person.end_date >= first_day(m))
                for m in self.months]

    # ------------------------------------------------------------------ targets
    def _targets(self, lines: list[ScorecardLine]) -> tuple[np.ndarray, ...]:
        n = len(self.months)
        base = np.array([ln.target for ln in lines], dtype=float)
        target = np.repeat(base[:, None], n, axis=1)
        for row, ln in enumerate(lines):
            phased = self.book.targets.get((ln.owner, ln.kpi_id))
            if phased:
                for col, month in enumerate(self.months):
                    if month in phased:
                        target[row, col] = phased[month]
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(base[:, None] != 0, target / base[:, None], 1.0)

        def scaled(values: list[float | None]) -> np.ndarray:
            arr = np.array([np.nan if v is None else v for v in values], dtype=float)
            return arr[:, None] * factor

        return (target, scaled([ln.threshold for ln in lines]),
                scaled([ln.stretch for ln in lines]), scaled([ln.target_max for ln in lines]))

    # ------------------------------------------------------------------ run
    def run(self) -> Scores:
        lines = list(self.book.scorecards)
        n_lines, n = len(lines), len(self.months)
        target, threshold, stretch, target_max = self._targets(lines)
        actual = np.full((n_lines, n), np.nan)  # monthly actual (formula: evaluated)
        mask = np.zeros((n_lines, n), dtype=bool)
        codes = np.zeros(n_lines, dtype=int)
        rolled = np.zeros(n_lines, dtype=bool)
        plain = [i for i, ln in enumerate(lines) if not self.kpis[ln.kpi_id].formula]
        series, series_rolled = self._series([(lines[i].owner, lines[i].kpi_id) for i in plain])
        actual[plain] = series
        mask[plain] = ~np.isnan(series)
        rolled[plain] = series_rolled
        codes[plain] = [AGG_CODES[self.kpis[lines[i].kpi_id].aggregation or "sum"]
                        for i in plain]
        windows = {}
        last = np.zeros(n, dtype=bool)
        last[-1] = True
        for name, window in (("month", last), ("ytd", np.ones(n, dtype=bool))):
            values = aggregate(actual, mask & window, codes, target, threshold, stretch,
                               target_max)
            windows[name] = values
        plain_set = set(plain)
        formula_rows = [i for i in range(n_lines) if i not in plain_set]
        if formula_rows:
            self._formulas(lines, formula_rows, target, threshold, stretch, target_max,
                           actual, rolled, windows, last)
        direction = np.array([DIRECTIONS[self.kpis[ln.kpi_id].direction] for ln in lines])
        results = {}
        for name, (a, t, lo, hi, tmax) in windows.items():
            att, score = attainment_and_score(direction, a, t, lo, hi, tmax,
                                              self.s.score_cap, self.s.threshold_score)
            results[name] = (a, t, lo, hi, tmax, att, score)
        return self._assemble(lines, results, actual, target, rolled)

    def _formulas(self, lines, rows, target, threshold, stretch, target_max, actual, rolled,
                  windows, last) -> None:
        by_kpi: dict[str, list[int]] = defaultdict(list)
        for i in rows:
            by_kpi[lines[i].kpi_id].append(i)
        for kpi_id, idx in by_kpi.items():
            kpi = self.kpis[kpi_id]
            tree = formula_mod.parse(kpi.formula or "")
            comps = list(kpi.components)
            keys = [(lines[i].owner, c) for i in idx for c in comps]
            series, was_rolled = self._series(keys)
            k = len(comps)
            per_comp = {c: series[j::k] for j, c in enumerate(comps)}
            rolled[idx] = was_rolled.reshape(len(idx), k).any(axis=1)
            common = np.logical_and.reduce([~np.isnan(per_comp[c]) for c in comps])
            monthly, _ = formula_mod.evaluate(tree, {c: np.where(common, per_comp[c], np.nan)
                                                     for c in comps})
            actual[idx] = monthly
            has_value = common & np.isfinite(monthly)
            for name, window in (("month", last), ("ytd", np.ones_like(last))):
                win_mask = common & window
                agg = {c: aggregate(per_comp[c], win_mask,
                                    np.full(len(idx), AGG_CODES[self.kpis[c].aggregation
                                                                or "sum"]))[0]
                       for c in comps}
                value, by_zero = formula_mod.evaluate(tree, agg)
                value = np.where(np.isfinite(value), value, np.nan)
                target_mask = has_value & window
                means = aggregate(target[idx], target_mask, np.ones(len(idx), dtype=int),
                                  threshold[idx], stretch[idx], target_max[idx])
                a, t, lo, hi, tmax = windows[name]
                a[idx] = value
                for arr, mean in zip((t, lo, hi, tmax), means):
                    arr[idx] = mean
                for pos in np.flatnonzero(by_zero):
                    line = lines[idx[pos]]
                    self.issues.append(issue(
                        "division-by-zero", "Scorecards", f"B{line.row}", owner=line.owner,
                        kpi=kpi_id, window=name, formula=kpi.formula))

    # ------------------------------------------------------------------ assemble
    def _assemble(self, lines, results, actual, target, rolled) -> Scores:
        goals = {g.goal_id: g for g in self.book.goals}
        s = self.s
        # Plain Python lists (None for no data) once, instead of numpy scalars per line.
        # ... and per window its rows: (actual, target, …, score) of each line (zip, in C).
        rows = {name: list(zip(*(_none_for_nan(arr) for arr in arrays)))
                for name, arrays in results.items()}
        actual_rows = _none_for_nan(actual)
        target_rows = _none_for_nan(target)
        green, amber = s.rag_green, s.rag_amber
        windows = {name: [Window(*values, status_of(values[6], green, amber))
                          for values in window_rows] for name, window_rows in rows.items()}
        months, month_windows, ytd_windows = self.months, windows["month"], windows["ytd"]
        strategic: dict[str | None, str | None] = {}
        by_owner: dict[str, list[LineResult]] = defaultdict(list)
        for i, ln in enumerate(lines):
            kpi = self.kpis[ln.kpi_id]
            goal_id = kpi.goal_id
            if goal_id not in strategic:
                strategic[goal_id] = _strategic(goal_id, goals)
            by_owner[ln.owner].append(LineResult(
                ln.owner, kpi, ln, goal_id, strategic[goal_id], month_windows[i],
                ytd_windows[i], tuple(zip(months, actual_rows[i], target_rows[i])),
                bool(rolled[i])))
        owners = []
        for owner, owner_lines in by_owner.items():
            person = self.people.get(owner)
            kind = "employee" if person else "company" if owner == COMPANY else "department"
            month_score = owner_score([(x.weight, x.month.score) for x in owner_lines])
            ytd_score = owner_score([(x.weight, x.ytd.score) for x in owner_lines])
            owners.append(OwnerScore(
                owner, kind,
                person.name if person else s.organization if kind == "company" else owner,
                person.department if person else owner if kind == "department" else None,
                month_score, status_of(month_score, s.rag_green, s.rag_amber),
                ytd_score, status_of(ytd_score, s.rag_green, s.rag_amber),
                tuple(owner_lines), person))
        order = {"company": 0, "department": 1, "employee": 2}
        owners.sort(key=lambda o: (order[o.owner_type], o.owner))
        return Scores(self.period, self.start, tuple(owners), tuple(self.issues))


def owner_score(items: list[tuple[float, float | None]]) -> float | None:
    """SPEC §2.4: weights renormalise over the KPIs that have data; weight 0 is not scored."""
    scored = [(w, s) for w, s in items if w > 0 and s is not None]
    total = sum(w for w, _ in scored)
    if not scored or total <= 0:
        return None
    return sum(w * s for w, s in scored) / total


def _strategic(goal_id: str | None, goals: dict) -> str | None:
    seen = set()
    current = goals.get(goal_id) if goal_id else None
    top = None
    while current is not None and current.goal_id not in seen:
        seen.add(current.goal_id)
        if current.level == "strategic":
            return current.goal_id
        top = current
        current = goals.get(current.parent_goal_id) if current.parent_goal_id else None
    return top.goal_id if top is not None and top.level == "strategic" else None


def _none_for_nan(values: np.ndarray) -> list:
    """``values`` as (nested) lists of Python floats, None where not finite (NaN, ±inf)."""
    plain = values.astype(object)
    plain[~np.isfinite(values)] = None
    return plain.tolist()
