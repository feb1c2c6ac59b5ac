"""What it takes: the monthly pace the rest of the fiscal year needs (issue 30, point 3).

For each KPI of an employee's scorecard and each level — threshold, target, stretch — the one
monthly value which, typed in every month left in the fiscal year, makes the year-to-date window
at the fiscal year's last month reach that level; and, for the owner, the score, band, payout and
bonus if every KPI ends the year at that level. Every candidate pace is scored through scoring's
own aggregation and score rule (``aggregate``, ``attainment_and_score``, the formula evaluator),
so a stated pace is one the build itself would score as reaching the level.

The rules (docs/what-it-takes.md says them for readers):

- *Reaching* a level: the year-end year-to-date score, rounded to 6 decimals as scores are
  compared, is at least the level's score: threshold_score at the threshold (without a threshold,
  where the plain ratio earns it), 1 at the target, score_cap at the stretch (without a stretch,
  where the ratio reaches the cap). A range KPI has one level: within [target, target_max].
- The months left are those after the report month through the fiscal year's last month in
  which the person is employed; each has an actual, the pace.
- A month's value is never below 0 — unless the KPI already has a negative month (a profit),
  then there is no floor — and never above a million times the largest figure of the line.
  ``secured``: the level is reached at any pace in that range; ``out of reach``: at none.
- A formula KPI moves its first component (in the formula's reading order); every other
  component stays at its pace so far: its monthly mean over the months where the formula had a
  value.
- A pace is stated at the KPI's display precision and rounded so that it still reaches the level
  (up for "at least", down for "at most"); one step less would not reach it.
- With no month left (the fiscal year's last month, or a leaver's last month) the outlook is
  final: each level is ``reached`` or ``missed``.
- The owner at a level: every scored KPI ends the year exactly at that level (a KPI that can no
  longer reach it, at the highest level it still can, 0 if none; a range KPI at 1 when it can be
  within range), weights renormalised over the KPIs with data, as SPEC §2.4; band and payout by
  SPEC §2.6, the bonus by SPEC §2.7 at the fiscal year's end (bonus basis ``ytd`` only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property

import numpy as np

from kpireport.core import formula as formula_mod
from kpireport.core.model import (
    Book,
    Kpi,
    Month,
    Person,
    ScorecardLine,
    Settings,
    first_day,
    last_day,
)
from kpireport.score.bands import band_for, pay_for
from kpireport.score.pace_batch import (
    Edges,
    PlainLines,
    formula_edges,
    paces,
    plain_edges,
    score_formulas_together,
    score_together,
)
from kpireport.score.pace_search import first_true, formula_rows, plain_rows, reading_order
from kpireport.score.scoring import (
    AGG_CODES,
    DIRECTIONS,
    FiscalYear,
    LineResult,
    OwnerScore,
    Scores,
    aggregate,
    attainment_and_score,
)

LEVELS = ("threshold", "target", "stretch")
REACHABLE = ("pace", "secured", "reached")
SCALE = 1e6  # the highest pace: a million times the line's largest figure
SIGNIFICANT = 4  # a pace is stated to at most four significant digits of the line's scale


@dataclass(frozen=True)
class Need:
    """What one level of one KPI needs: a pace (at least / at most / between), or a state."""

    level: str  # threshold / target / stretch
    score: float  # the KPI's score at exactly this level
    state: str  # pace / secured / out_of_reach / reached / missed / no_data
    at_least: float | None = None
    at_most: float | None = None

    @property
    def reachable(self) -> bool:
        return self.state in REACHABLE


@dataclass(frozen=True)
class KpiOutlook:
    """The needs of one scorecard line; the pace is in ``unit`` at ``decimals`` (a percent's:
    of the percent), the driver's for a formula KPI."""

    kpi_id: str
    weight: float
    unit: str
    decimals: int
    driver: str | None  # formula KPIs: the component whose pace is stated
    held: tuple[tuple[str, float], ...]  # … and the others, at their pace so far
    needs: tuple[Need, ...]
    step: float  # the precision of the pace: one step less (more) would not reach


@dataclass(frozen=True)
class OwnerLevel:
    """The owner if every KPI ends the year at one level."""

    level: str
    score: float | None
    band: str | None
    bonus_payout: float | None
    bonus: Decimal | None
    reachable: bool  # every scored KPI can still reach the level


@dataclass(frozen=True)
class Outlook:
    owner: str
    year_end: Month
    months_left: tuple[Month, ...]
    kpis: tuple[KpiOutlook, ...]
    levels: tuple[OwnerLevel, ...]

    @property
    def final(self) -> bool:
        return not self.months_left


def outlooks(book: Book, scores: Scores) -> dict[str, Outlook]:
    """The outlook of every employee's scorecard (departments and the company have none)."""
    employees = [o for o in scores.owners if o.person is not None]
    if not employees:
        return {}
    year_end = scores.fiscal_start + 11
    kpis = {k.kpi_id: k for k in book.kpis}
    months_left = {o.owner: _months_left(o.person, scores.period, year_end) for o in employees}
    # The lines with months left, read over the whole fiscal year (none at the year's end).
    open_lines = [ln.line for o in employees if months_left[o.owner] for ln in o.lines]
    if open_lines:
        series = FiscalYear(book)
        levels = series.targets(open_lines)
        keys = list(dict.fromkeys(
            (ln.owner, c) for ln in open_lines
            for c in (kpis[ln.kpi_id].components if kpis[ln.kpi_id].formula
                      else (ln.kpi_id,))))
        past = np.arange(len(series.months)) <= scores.period - scores.fiscal_start
        sizes = np.abs(np.stack(levels))
        level_sizes = np.where(np.isfinite(sizes), sizes, 0.0).max(axis=(0, 2))
        known = dict(zip(keys, series.series(keys)))
    solvers: list = []
    row = 0
    for owner in employees:
        left = months_left[owner.owner]
        if not left:
            solvers += [_final(result, kpis[result.kpi_id], book) for result in owner.lines]
            continue
        rem = np.array([m in left for m in series.months])
        for result in owner.lines:
            monthly = tuple(arr[row] for arr in levels)
            row += 1
            solvers.append(_LineSolver(book, kpis, result.line, monthly, rem, past, known,
                                       float(level_sizes[row - 1])))
    open_solvers = [sv for sv in solvers if isinstance(sv, _LineSolver)]
    solved = _solve_plain([sv for sv in open_solvers if not sv.kpi.formula])
    score_together([sv for sv in open_solvers if not sv.kpi.formula and sv not in solved])
    solved.update(_solve_formulas([sv for sv in open_solvers if sv.kpi.formula]))
    score_formulas_together([sv for sv in open_solvers if sv.kpi.formula and sv not in solved])
    found = {}
    year = replace(book.settings, report_period=year_end)  # the settings at the year's end
    outlook_lines = iter(sv if isinstance(sv, KpiOutlook) else solved.get(sv) or sv.outlook()
                         for sv in solvers)
    for owner in employees:
        mine = [next(outlook_lines) for _ in owner.lines]
        left = months_left[owner.owner]
        found[owner.owner] = Outlook(
            owner.owner, year_end, left, tuple(mine),
            _owner_levels(book, year, owner, mine, scores.fiscal_start) if left else ())
    return found


def _solve_plain(solvers: list[_LineSolver]) -> dict[_LineSolver, KpiOutlook]:
    """The outlooks of the plain lines whose every edge lies where its closed form puts it,
    read from one scoring pass over all of them (the others are left to the searches)."""
    if not solvers:
        return {}
    first = solvers[0]
    lines = PlainLines(
        np.array([sv.values for sv in solvers]), np.array([sv.rem for sv in solvers]),
        [np.array([sv.monthly[i] for sv in solvers]) for i in range(4)],
        np.array([sv.code for sv in solvers]), np.array([sv.direction for sv in solvers]),
        np.array([sv.places for sv in solvers]), np.array([sv.k_floor for sv in solvers]),
        np.array([sv.k_top for sv in solvers]))
    return _from_edges(solvers, plain_edges(lines, first.cap, first.ts))


def _solve_formulas(solvers: list[_LineSolver]) -> dict[_LineSolver, KpiOutlook]:
    """The outlooks of the formula lines whose every edge lies where the straight line
    through two probes puts it, scored in two passes per formula KPI."""
    groups: dict[str, list[_LineSolver]] = {}
    for sv in solvers:
        if not sv._no_data:
            groups.setdefault(sv.kpi.kpi_id, []).append(sv)
    found: dict[_LineSolver, KpiOutlook] = {}
    for group in groups.values():
        found.update(_from_edges(group, formula_edges(group, group[0].cap, group[0].ts)))
    return found


def _from_edges(solvers: list[_LineSolver], edges: Edges) -> dict[_LineSolver, KpiOutlook]:
    """The needs of each solved line, as its solver would state them."""
    first = solvers[0]
    places = np.array([sv.places for sv in solvers])
    at_floor, at_top, edge = (x.tolist() for x in (edges.at_floor, edges.at_top, edges.edge))
    at_pace = paces(edges.edge, places[:, None]).tolist()  # the solver's _paces, all at once
    steps = paces(np.ones(len(solvers), dtype=np.int64), places).tolist()
    scores = {"threshold": first.ts, "target": 1.0, "stretch": first.cap}
    # A state without a pace is the same value on every line (Needs are frozen).
    plain = {(level, state): Need(level, scores[level], state) for level in LEVELS
             for state in ("secured", "out_of_reach")}
    found = {}
    for i in np.flatnonzero(edges.solved).tolist():
        sv = solvers[i]
        if sv.direction == DIRECTIONS["range"]:
            needs: tuple[Need, ...] = (_range_need(at_floor[i], at_top[i], edge[i],
                                                   at_pace[i]),)
        else:
            needs = tuple(
                plain[level, "secured" if at_floor[i][j] else "out_of_reach"]
                if at_floor[i][j] == at_top[i][j] else
                Need(level, scores[level], "pace", at_pace[i][j], None) if at_top[i][j] else
                Need(level, scores[level], "pace", None, at_pace[i][j])
                for j, level in enumerate(LEVELS))
        found[sv] = KpiOutlook(sv.kpi.kpi_id, sv.line.weight, sv.unit, sv.shown, sv.driver,
                               tuple(sorted(sv.held.items())), needs, steps[i])
    return found


def _range_need(at_floor: list[bool], at_top: list[bool], edge: list[int],
                at_pace: list[float]) -> Need:
    """A range KPI's one need from its two ends' conditions (the solver's ``_need``)."""
    low = high = None
    for j in range(2):
        if at_floor[j] and at_top[j]:
            continue
        if not at_floor[j] and not at_top[j]:
            return Need("target", 1.0, "out_of_reach")
        if at_top[j]:
            low = j if low is None or edge[j] > edge[low] else low
        else:
            high = j if high is None or edge[j] < edge[high] else high
    if low is None and high is None:
        return Need("target", 1.0, "secured")
    if low is not None and high is not None and edge[low] > edge[high]:
        return Need("target", 1.0, "out_of_reach")
    return Need("target", 1.0, "pace", None if low is None else at_pace[low],
                None if high is None else at_pace[high])


def _final(result: LineResult, kpi: Kpi, book: Book) -> KpiOutlook:
    """A line with no month left: its year to date is the year's, already scored by the
    build, so each level is reached or missed by that score."""
    s = book.settings
    if kpi.direction == "range":
        levels = (("target", 1.0),)
    else:
        levels = (("threshold", s.threshold_score), ("target", 1.0), ("stretch", s.score_cap))
    score = result.ytd.score
    needs = tuple(Need(level, need, "no_data" if score is None else
                       "reached" if round(score, 6) >= round(need, 6) else "missed")
                  for level, need in levels)
    shown, places = pace_decimals(kpi, [])
    return KpiOutlook(kpi.kpi_id, result.weight, kpi.unit, shown, None, (), needs,
                      10.0 ** -places)


def _months_left(person: Person | None, period: Month, year_end: Month) -> tuple[Month, ...]:
    """The months after ``period`` through ``year_end`` in which the person is employed."""
    return tuple(m for m in range(period + 1, year_end + 1)
                 if person is None or
                 ((person.start_date is None or person.start_date <= last_day(m)) and
                  (person.end_date is None or person.end_date >= first_day(m))))


def pace_decimals(kpi: Kpi, known: list[float]) -> tuple[int, int]:
    """(decimals of the pace as shown, decimals of its value): a KPI's own ``decimals``, else
    as its figures are shown — a percent to 0.1%, money in whole units, a number whole when its
    months are whole numbers, else to 0.01."""
    if kpi.unit == "percent":
        shown = 1 if kpi.decimals is None else min(kpi.decimals, 2)
        return shown, shown + 2
    if kpi.decimals is not None:
        return kpi.decimals, kpi.decimals
    if kpi.unit == "currency":
        return 0, 0
    whole = all(math.isinf(v) or v.is_integer() for v in known if v == v)
    return (0, 0) if whole else (2, 2)


class _LineSolver:
    """The needs of one line: its year as a function of the pace, and the searches."""

    def __init__(self, book: Book, kpis: dict[str, Kpi], line: ScorecardLine,
                 monthly: tuple[np.ndarray, ...], rem: np.ndarray, past: np.ndarray,
                 known: dict[tuple[str, str], np.ndarray], level_size: float) -> None:
        s = book.settings
        self.cap, self.ts = s.score_cap, s.threshold_score
        self.kpi = kpis[line.kpi_id]
        self.line = line
        self.direction = DIRECTIONS[self.kpi.direction]
        self.monthly = monthly  # target, threshold, stretch, target_max by month
        self.rem = rem
        self.past = past
        self.driver: str | None = None
        self.held: dict[str, float] = {}
        if self.kpi.formula:
            self._formula_inputs(kpis, known)
            values = self.components[self.driver]
        else:
            values = self.values = known[(line.owner, line.kpi_id)]
            self.code = AGG_CODES[self.kpi.aggregation or "sum"]
        typed = [v for v in values.tolist() if v == v]  # plain floats: a dozen at most
        unit_kpi = kpis[self.driver] if self.driver else self.kpi
        self.unit = unit_kpi.unit
        self.shown, self.places = pace_decimals(unit_kpi, typed)
        biggest = max(1.0, level_size, max(map(abs, typed)) if typed else 1.0,
                      *(abs(v) for v in self.held.values()))
        # No finer than four significant digits of the line's largest figure: 9,377,000,000 ₫
        # a month, not 9,376,988,001 ₫.
        coarsest = SIGNIFICANT - 1 - math.floor(math.log10(biggest))
        if coarsest < self.places:
            self.places = coarsest
            self.shown = max(0, coarsest - 2 if self.unit == "percent" else coarsest)
        scale = float(10 ** abs(self.places))
        top = SCALE * biggest
        self.k_top = math.floor(top / scale if self.places < 0 else top * scale)
        negative = any(v < 0 for v in typed)
        self.k_floor = -self.k_top if negative else 0
        self._cache: dict[int, np.ndarray] = {}  # pace in steps -> its year-end row
        self._year_levels: tuple[float, ...] | None = None
        self._guessed: dict[str, list[int | None]] = {}
        self._flags: dict[tuple[str, int, int], bool] = {}  # (level, condition, k) -> holds
        self._first: list[int] | None = None
        # Scored together with other lines: (pace in steps -> row, the rows, the flags).
        self._scored: tuple[dict[int, int], np.ndarray, dict] = ({}, np.empty((0, 6)), {})

    # ------------------------------------------------------------------ inputs
    def _formula_inputs(self, kpis: dict[str, Kpi],
                        known: dict[tuple[str, str], np.ndarray]) -> None:
        kpi = self.kpi
        self.tree = formula_mod.parse(kpi.formula or "")
        comps = list(kpi.components)
        order = reading_order(self.tree)
        names = {c.casefold(): c for c in comps}
        self.driver = next((names[r.casefold()] for r in order if r.casefold() in names),
                           comps[0])
        self.components = {c: known[(self.line.owner, c)] for c in comps}
        self.comp_codes = {c: AGG_CODES[kpis[c].aggregation or "sum"] for c in comps}
        common = np.logical_and.reduce([~np.isnan(v) for v in self.components.values()])
        for c in comps:
            if c != self.driver:
                values = self.components[c][common]
                if not values.size:
                    values = self.components[c][~np.isnan(self.components[c])]
                if values.size:
                    self.held[c] = float(values.mean())

    # ------------------------------------------------------------------ scoring a pace
    def _year(self, paces: np.ndarray) -> tuple[np.ndarray, ...]:
        """(actual, target, threshold, stretch, target_max, score) of the year-end window for
        each pace, through scoring's own aggregation and score rule."""
        k = len(paces)
        if self.kpi.formula:
            return self._formula_year(paces)
        values = np.tile(self.values, (k, 1))
        values[:, self.rem] = paces[:, None]
        return plain_rows(values, np.full(k, self.code),
                           [np.tile(m, (k, 1)) for m in self.monthly],
                           np.full(k, self.direction), self.cap, self.ts)

    def _formula_year(self, paces: np.ndarray) -> tuple[np.ndarray, ...]:
        k = len(paces)
        per_comp = {c: self._component(c, np.tile(row, (k, 1)), paces)
                    for c, row in self.components.items()}
        return formula_rows(self.tree, per_comp, self.comp_codes,
                             [np.tile(m, (k, 1)) for m in self.monthly],
                             np.full(k, self.direction), self.cap, self.ts)

    def _component(self, c: str, values: np.ndarray, paces: np.ndarray) -> np.ndarray:
        """A component's months with the months left filled: the pace for the driver, the
        pace so far for the others."""
        values[:, self.rem] = paces[:, None] if c == self.driver else self.held.get(c, np.nan)
        return values

    def _score(self, windows: list[np.ndarray]) -> np.ndarray:
        a, t, lo, hi, tmax = windows
        _, score = attainment_and_score(np.full(len(a), self.direction), a, t, lo, hi, tmax,
                                        self.cap, self.ts)
        return score

    def _rows(self, ks: np.ndarray) -> tuple[np.ndarray, ...]:
        """``_year`` of the paces ``ks`` (in steps), each pace scored once per line."""
        cache = self._cache
        wanted = ks.tolist()
        slot, table, _ = self._scored
        for k in wanted:
            if k not in cache and k in slot:
                cache[k] = table[slot[k]]
        missing = [k for k in dict.fromkeys(wanted) if k not in cache]
        if missing:
            fresh = np.column_stack(self._year(self._paces(np.array(missing, dtype=np.int64))))
            for i, k in enumerate(missing):
                cache[k] = fresh[i]
        return tuple(np.array([cache[k] for k in wanted]).T)

    def _conditions(self, level: str, ks: np.ndarray) -> list[np.ndarray]:
        """Each monotone condition the level needs, per pace (range: two, else one)."""
        a, t, _lo, _hi, tmax, score = self._rows(ks)
        with np.errstate(invalid="ignore"):
            if self.direction == DIRECTIONS["range"]:
                return [a >= t, a <= tmax]
            need = {"threshold": self.ts, "target": 1.0, "stretch": self.cap}[level]
            return [np.round(score, 6) >= round(need, 6)]

    def _guesses(self, level: str) -> list[int | None]:
        """Where each condition of the level turns, worked out directly for a plain KPI (the
        search then only confirms it); None for a formula KPI."""
        if level not in self._guessed:
            self._guessed[level] = self._guess(level)
        return self._guessed[level]

    @cached_property
    def _no_data(self) -> bool:
        """A formula whose other components have no month yet: no pace to hold them at."""
        return bool(self.kpi.formula) and len(self.held) < len(self.components) - 1

    @cached_property
    def _so_far(self) -> tuple[float, int, int]:
        """(sum of the actuals so far, their count, the months left) of a plain line."""
        past = ~np.isnan(self.values)
        return float(self.values[past].sum()), int(past.sum()), int(self.rem.sum())

    def _guess(self, level: str) -> list[int | None]:
        if not self.rem.any():
            return [None, None]
        if self.kpi.formula:
            return self._formula_guess(level)
        past = ~np.isnan(self.values)
        if self._year_levels is None:
            window = past | self.rem
            code = np.array([self.code])
            self._year_levels = tuple(float(v[0]) for v in aggregate(
                self.monthly[0][None], window[None], code,
                *(m[None] for m in self.monthly[1:])))
        total, count, months = self._so_far
        found: list[int | None] = []
        for edge in self._edges(level, *self._year_levels):
            if self.code == AGG_CODES["sum"]:
                pace = (edge - total) / months
            elif self.code == AGG_CODES["average"]:
                pace = (edge * (count + months) - total) / months
            else:
                pace = edge
            scale = 10 ** abs(self.places)
            steps = pace * scale if self.places >= 0 else pace / scale
            found.append(round(steps) if math.isfinite(steps) else None)
        return found

    def _formula_guess(self, level: str) -> list[int | None]:
        """Where the straight line through the two probes meets each edge (exact when the
        driver enters the formula linearly, as in a ratio of sums; else the search goes on)."""
        (k1, k2), cache = self._probes, self._cache
        if k1 not in cache or k2 not in cache:
            return [None, None]
        a1, a2 = float(cache[k1][0]), float(cache[k2][0])
        found: list[int | None] = []
        for edge in self._edges(level, *(float(v) for v in cache[k1][1:5])):
            steps = k1 + (edge - a1) * (k2 - k1) / (a2 - a1) if a2 != a1 else math.nan
            found.append(round(steps) if math.isfinite(steps) else None)
        return found

    @cached_property
    def _probes(self) -> tuple[int, int]:
        """Two paces of a formula's driver (in steps): its pace so far and half as much again."""
        known = self.components[self.driver] if self.driver else np.array([])
        known = known[~np.isnan(known)]
        pace = float(known.mean()) if known.size else 1.0
        scale = 10 ** abs(self.places)
        k1 = round(pace * scale if self.places >= 0 else pace / scale)
        k1 = min(max(k1, self.k_floor + 1), self.k_top - 2)
        return k1, min(k1 + max(1, abs(k1) // 2), self.k_top - 1)

    def _edges(self, level: str, t: float, lo: float, hi: float, tmax: float) -> list[float]:
        """The year's actual at which each condition of ``level`` turns (range: both ends)."""
        lower = self.direction == DIRECTIONS["lower"]
        ts, cap = self.ts, self.cap
        if self.direction == DIRECTIONS["range"]:
            return [t, tmax]
        if level == "target":
            return [t]
        if level == "threshold":
            return [lo if not math.isnan(lo) else
                    (t / ts if ts > 0 else math.inf) if lower else ts * t]
        return [hi if not math.isnan(hi) else t / cap if lower else cap * t]

    # ------------------------------------------------------------------ the needs
    def outlook(self) -> KpiOutlook:
        levels = self._levels()
        guesses = {level: self._guesses(level) for level in levels}
        needs = tuple(self._need(level, guesses[level]) for level in levels)
        step = float(self._paces(np.array([1]))[0])
        return KpiOutlook(self.kpi.kpi_id, self.line.weight, self.unit, self.shown, self.driver,
                          tuple(sorted(self.held.items())), needs, step)

    def _levels(self) -> tuple[str, ...]:
        return ("target",) if self.direction == DIRECTIONS["range"] else LEVELS

    def first_candidates(self) -> list[int]:
        """The paces (in steps) worth scoring first: the ends of the range and the steps
        around each level's worked-out edge; [0] with no month left."""
        if self._first is None:
            if self.kpi.formula:  # the probes; the steps around the edges come after
                near = list(self._probes) if self.rem.any() else []
            else:
                near = [k for level in self._levels() for g in self._guesses(level)
                        if g is not None for k in range(g - 2, g + 3)
                        if self.k_floor < k < self.k_top]
            self._first = list(dict.fromkeys([self.k_floor, self.k_top, *near]))
        return self._first

    def _need(self, level: str, guesses: list[int | None]) -> Need:
        score = {"threshold": self.ts, "target": 1.0, "stretch": self.cap}[level]
        if self.direction == DIRECTIONS["range"]:
            score = 1.0
        if self._no_data:
            return Need(level, score, "no_data")
        if not self.rem.any():
            zero = np.array([0], dtype=np.int64)
            if np.isnan(self._rows(zero)[0][0]):
                return Need(level, score, "no_data")
            met = all(bool(c[0]) for c in self._conditions(level, zero))
            return Need(level, score, "reached" if met else "missed")
        low, high = None, None
        for index in range(2 if self.direction == DIRECTIONS["range"] else 1):
            at_floor = self._holds(level, index, self.k_floor)
            at_top = self._holds(level, index, self.k_top)
            if at_floor and at_top:
                continue
            if not at_floor and not at_top:
                return Need(level, score, "out_of_reach")
            guess = guesses[index] if index < len(guesses) else None
            k = self._edge(level, index, guess, upward=at_top)
            if at_top:  # reached from some pace upwards
                low = k if low is None else max(low, k)
            else:  # reached up to some pace
                high = k if high is None else min(high, k)
        if low is None and high is None:
            return Need(level, score, "secured")
        if low is not None and high is not None and low > high:
            return Need(level, score, "out_of_reach")
        return Need(level, score, "pace",
                    None if low is None else float(self._paces(np.array([low]))[0]),
                    None if high is None else float(self._paces(np.array([high]))[0]))

    def _holds(self, level: str, index: int, k: int) -> bool:
        """Whether condition ``index`` of ``level`` holds at pace ``k`` (in steps)."""
        slot, _, flags = self._scored
        j = slot.get(k)
        if j is not None:
            return flags[(level, index)][j]
        known = self._flags.get((level, index, k))
        if known is None:
            known = bool(self._conditions(level, np.array([k], dtype=np.int64))[index][0])
            self._flags[(level, index, k)] = known
        return known

    def _edge(self, level: str, index: int, guess: int | None, *, upward: bool) -> int:
        """The first pace (upward) or the last pace (downward) at which the condition holds:
        read from the steps around the worked-out guess when the edge is among them, else
        searched."""
        holds = self._holds
        if guess is not None:
            for k in (guess, guess + 1, guess - 1, guess + 2, guess - 2):
                if not self.k_floor < k < self.k_top:
                    continue
                if upward and holds(level, index, k) and not holds(level, index, k - 1):
                    return k
                if not upward and holds(level, index, k) and not holds(level, index, k + 1):
                    return k

        def test(ks: np.ndarray) -> np.ndarray:
            found = self._conditions(level, ks)[index]
            return found if upward else ~found

        k = first_true(test, self.k_floor, self.k_top, guess)
        return k if upward else k - 1

    def _paces(self, ks: np.ndarray, *, inverse: bool = False) -> np.ndarray:
        """Steps of the pace's precision → paces (``inverse``: paces → steps): a division or
        product by an exact power of ten, so 98.1 is 981 / 10, not 981 × 0.1."""
        scale = float(10 ** abs(self.places))
        if (self.places >= 0) != inverse:
            return ks / scale
        return ks * scale


def _owner_levels(book: Book, year: Settings, owner: OwnerScore,
                  outlook_lines: list[KpiOutlook], fiscal_start: Month) -> tuple[OwnerLevel, ...]:
    s = book.settings
    scores = {"threshold": s.threshold_score, "target": 1.0, "stretch": s.score_cap}
    person = owner.person
    assert person is not None
    found = []
    scored = [(kpi, {n.level: n for n in kpi.needs}) for kpi in outlook_lines
              if kpi.weight > 0 and not any(n.state == "no_data" for n in kpi.needs)]
    for index, level in enumerate(LEVELS):
        total = weighted = 0.0
        reachable = True
        for kpi, by_level in scored:
            if len(kpi.needs) == 1:  # a range KPI: in range or not
                earned = 1.0 if kpi.needs[0].reachable else 0.0
                reachable &= kpi.needs[0].reachable
            else:
                reached = [lv for lv in LEVELS[:index + 1] if by_level[lv].reachable]
                earned = scores[reached[-1]] if reached else 0.0
                reachable &= by_level[level].reachable
            total += kpi.weight
            weighted += kpi.weight * earned
        if total <= 0:
            found.append(OwnerLevel(level, None, None, None, None, False))
            continue
        score = weighted / total
        band = band_for(score, book.bands)
        pay = pay_for(person, score, score, year, book.bands, fiscal_start)
        found.append(OwnerLevel(level, score, band.band if band else None, pay.bonus_payout,
                                pay.bonus if s.bonus_basis == "ytd" else None, reachable))
    return tuple(found)
