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

import numpy as np

from kpireport.core import formula as formula_mod
from kpireport.core.model import Book, Kpi, Month, Person, ScorecardLine, first_day, last_day
from kpireport.score.bands import band_for, pay_for
from kpireport.score.scoring import (
    AGG_CODES,
    DIRECTIONS,
    FiscalYearSeries,
    OwnerScore,
    Scores,
    aggregate,
    attainment_and_score,
)

LEVELS = ("threshold", "target", "stretch")
REACHABLE = ("pace", "secured", "reached")
SCALE = 1e6  # the highest pace: a million times the line's largest figure
SIGNIFICANT = 4  # a pace is stated to at most four significant digits of the line's scale
SEARCH_WIDTH = 64  # candidates scored at once while narrowing a search


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
    series = FiscalYearSeries(book, year_end)
    lines = [ln.line for o in employees for ln in o.lines]
    levels = series.levels(lines)
    kpis = {k.kpi_id: k for k in book.kpis}
    keys = list(dict.fromkeys(
        (ln.owner, c) for ln in lines
        for c in (kpis[ln.kpi_id].components if kpis[ln.kpi_id].formula else (ln.kpi_id,))))
    past = np.arange(len(series.months)) <= scores.period - scores.fiscal_start
    known = dict(zip(keys, np.where(past, series.actuals(keys), np.nan)))
    solvers, row, months_left = [], 0, {}
    for owner in employees:
        left = months_left[owner.owner] = _months_left(owner.person, scores.period, year_end)
        rem = np.array([m in left for m in series.months])
        for result in owner.lines:
            monthly = tuple(arr[row] for arr in levels)
            row += 1
            solvers.append(_LineSolver(book, kpis, result.line, monthly, rem, past, known))
    _score_together([sv for sv in solvers if not sv.kpi.formula])
    found, outlook_lines = {}, iter(sv.outlook() for sv in solvers)
    for owner in employees:
        mine = [next(outlook_lines) for _ in owner.lines]
        left = months_left[owner.owner]
        found[owner.owner] = Outlook(
            owner.owner, year_end, left, tuple(mine),
            _owner_levels(book, owner, mine, year_end, scores.fiscal_start) if left else ())
    return found


def _score_together(solvers: list[_LineSolver]) -> None:
    """Score the first candidates of many plain lines in one pass (10,000 lines of 1,000
    people: two numpy passes instead of 20,000 small ones); the searches then find them."""
    if not solvers:
        return
    window = np.array([~np.isnan(sv.values) | sv.rem for sv in solvers])
    codes = np.array([sv.code for sv in solvers])
    stacked = [np.array([sv.monthly[i] for sv in solvers]) for i in range(4)]
    year_levels = aggregate(stacked[0], window, codes, *stacked[1:])
    for i, sv in enumerate(solvers):
        sv._year_levels = tuple(float(v[i]) for v in year_levels)
    owners, candidates = [], []
    for i, sv in enumerate(solvers):
        ks = sv.first_candidates()
        owners += [i] * len(ks)
        candidates += ks
    if not candidates:
        return
    index = np.array(owners)
    places = np.array([sv.places for sv in solvers])[index]
    scale = 10.0 ** np.abs(places)  # exact powers of ten, as _paces divides or multiplies
    steps = np.array(candidates, dtype=np.int64)
    paces = np.where(places >= 0, steps / scale, steps * scale)
    base = np.array([sv.values for sv in solvers])[index]
    rem = np.array([sv.rem for sv in solvers])[index]
    values = np.where(rem, paces[:, None], base)
    rows = _plain_rows(values, codes[index], [m[index] for m in stacked],
                       np.array([solvers[i].direction for i in owners]),
                       solvers[0].cap, solvers[0].ts)
    table = np.column_stack(rows)
    for j, (i, k) in enumerate(zip(owners, candidates)):
        solvers[i]._cache[k] = table[j]


def _plain_rows(values: np.ndarray, codes: np.ndarray, levels: list[np.ndarray],
                directions: np.ndarray, cap: float, ts: float) -> tuple[np.ndarray, ...]:
    """(actual, target, threshold, stretch, target_max, score) of year-end windows, one per
    row of monthly values: scoring's aggregation and score rule."""
    windows = aggregate(values, ~np.isnan(values), codes, *levels)
    _, score = attainment_and_score(directions, *windows, cap, ts)
    return (*windows, score)


def _months_left(person: Person | None, period: Month, year_end: Month) -> tuple[Month, ...]:
    """The months after ``period`` through ``year_end`` in which the person is employed."""
    return tuple(m for m in range(period + 1, year_end + 1)
                 if person is None or
                 ((person.start_date is None or person.start_date <= last_day(m)) and
                  (person.end_date is None or person.end_date >= first_day(m))))


def pace_decimals(kpi: Kpi, known: np.ndarray) -> tuple[int, int]:
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
    values = known[~np.isnan(known)]
    whole = bool(np.all(np.floor(values) == values))
    return (0, 0) if whole else (2, 2)


class _LineSolver:
    """The needs of one line: its year as a function of the pace, and the searches."""

    def __init__(self, book: Book, kpis: dict[str, Kpi], line: ScorecardLine,
                 monthly: tuple[np.ndarray, ...], rem: np.ndarray, past: np.ndarray,
                 known: dict[tuple[str, str], np.ndarray]) -> None:
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
        known = values
        unit_kpi = kpis[self.driver] if self.driver else self.kpi
        self.unit = unit_kpi.unit
        self.shown, self.places = pace_decimals(unit_kpi, known)
        seen = np.concatenate([known[~np.isnan(known)]] +
                              [m[np.isfinite(m)] for m in monthly] +
                              [np.array(list(self.held.values()), dtype=float)])
        biggest = max(1.0, float(np.max(np.abs(seen))) if seen.size else 1.0)
        # No finer than four significant digits of the line's largest figure: 9,377,000,000 ₫
        # a month, not 9,376,988,001 ₫.
        coarsest = SIGNIFICANT - 1 - math.floor(math.log10(biggest))
        if coarsest < self.places:
            self.places = coarsest
            self.shown = max(0, coarsest - 2 if self.unit == "percent" else coarsest)
        self.k_top = math.floor(self._paces(np.array([SCALE * biggest]), inverse=True)[0])
        negative = bool(np.any(known[~np.isnan(known)] < 0))
        self.k_floor = -self.k_top if negative else 0
        self._cache: dict[int, np.ndarray] = {}  # pace in steps -> its year-end row
        self._year_levels: tuple[float, ...] | None = None
        self._guessed: dict[str, list[int | None]] = {}

    # ------------------------------------------------------------------ inputs
    def _formula_inputs(self, kpis: dict[str, Kpi],
                        known: dict[tuple[str, str], np.ndarray]) -> None:
        kpi = self.kpi
        self.tree = formula_mod.parse(kpi.formula or "")
        comps = list(kpi.components)
        order = _reading_order(self.tree)
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
        return _plain_rows(values, np.full(k, self.code),
                           [np.tile(m, (k, 1)) for m in self.monthly],
                           np.full(k, self.direction), self.cap, self.ts)

    def _formula_year(self, paces: np.ndarray) -> tuple[np.ndarray, ...]:
        k = len(paces)
        per_comp = {}
        for c, row in self.components.items():
            values = np.tile(row, (k, 1))
            if c == self.driver:
                values[:, self.rem] = paces[:, None]
            else:
                values[:, self.rem] = self.held.get(c, np.nan)
            per_comp[c] = values
        common = np.logical_and.reduce([~np.isnan(v) for v in per_comp.values()])
        monthly, _ = formula_mod.evaluate(self.tree, {c: np.where(common, v, np.nan)
                                                      for c, v in per_comp.items()})
        has_value = common & np.isfinite(monthly)
        aggs = {c: aggregate(v, common, np.full(k, self.comp_codes[c]))[0]
                for c, v in per_comp.items()}
        value, _ = formula_mod.evaluate(self.tree, aggs)
        value = np.where(np.isfinite(value), value, np.nan)
        levels = [np.tile(m, (k, 1)) for m in self.monthly]
        means = aggregate(levels[0], has_value, np.ones(k, dtype=int), *levels[1:])
        windows = [value, *means]
        return (*windows, self._score(windows))

    def _score(self, windows: list[np.ndarray]) -> np.ndarray:
        a, t, lo, hi, tmax = windows
        _, score = attainment_and_score(np.full(len(a), self.direction), a, t, lo, hi, tmax,
                                        self.cap, self.ts)
        return score

    def _rows(self, ks: np.ndarray) -> tuple[np.ndarray, ...]:
        """``_year`` of the paces ``ks`` (in steps), each pace scored once per line."""
        cache = self._cache
        wanted = ks.tolist()
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

    def _guess(self, level: str) -> list[int | None]:
        if self.kpi.formula or not self.rem.any():
            return [None, None]
        past = ~np.isnan(self.values)
        if self._year_levels is None:
            window = past | self.rem
            code = np.array([self.code])
            self._year_levels = tuple(float(v[0]) for v in aggregate(
                self.monthly[0][None], window[None], code,
                *(m[None] for m in self.monthly[1:])))
        t, lo, hi, tmax = self._year_levels
        lower = self.direction == DIRECTIONS["lower"]
        ts, cap = self.ts, self.cap
        if self.direction == DIRECTIONS["range"]:
            edges = [t, tmax]
        elif level == "target":
            edges = [t]
        elif level == "threshold":
            edges = [lo if not math.isnan(lo) else
                     (t / ts if ts > 0 else math.inf) if lower else ts * t]
        else:
            edges = [hi if not math.isnan(hi) else t / cap if lower else cap * t]
        known = self.values[past]
        total, count, months = float(known.sum()), int(past.sum()), int(self.rem.sum())
        found: list[int | None] = []
        for edge in edges:
            if self.code == AGG_CODES["sum"]:
                pace = (edge - total) / months
            elif self.code == AGG_CODES["average"]:
                pace = (edge * (count + months) - total) / months
            else:
                pace = edge
            found.append(round(float(self._paces(np.array([pace]), inverse=True)[0]))
                         if math.isfinite(pace) else None)
        return found

    # ------------------------------------------------------------------ the needs
    def outlook(self) -> KpiOutlook:
        levels = self._levels()
        guesses = {level: self._guesses(level) for level in levels}
        self._rows(np.array(self.first_candidates(), dtype=np.int64))
        needs = tuple(self._need(level, guesses[level]) for level in levels)
        step = float(self._paces(np.array([1]))[0])
        return KpiOutlook(self.kpi.kpi_id, self.line.weight, self.unit, self.shown, self.driver,
                          tuple(sorted(self.held.items())), needs, step)

    def _levels(self) -> tuple[str, ...]:
        return ("target",) if self.direction == DIRECTIONS["range"] else LEVELS

    def first_candidates(self) -> list[int]:
        """The paces (in steps) worth scoring first: the ends of the range and the steps
        around each level's worked-out edge; [0] with no month left."""
        if not self.rem.any():
            return [0]
        near = [k for level in self._levels() for g in self._guesses(level) if g is not None
                for k in range(g - 2, g + 3) if self.k_floor < k < self.k_top]
        return list(dict.fromkeys([self.k_floor, self.k_top, *near]))

    def _need(self, level: str, guesses: list[int | None]) -> Need:
        score = {"threshold": self.ts, "target": 1.0, "stretch": self.cap}[level]
        if self.direction == DIRECTIONS["range"]:
            score = 1.0
        if self.kpi.formula and len(self.held) < len(self.components) - 1:
            return Need(level, score, "no_data")
        if not self.rem.any():
            zero = np.array([0], dtype=np.int64)
            if np.isnan(self._rows(zero)[0][0]):
                return Need(level, score, "no_data")
            met = all(bool(c[0]) for c in self._conditions(level, zero))
            return Need(level, score, "reached" if met else "missed")
        ends = np.array([self.k_floor, self.k_top], dtype=np.int64)
        low, high = None, None
        for index, at_ends in enumerate(self._conditions(level, ends)):
            def holds(ks: np.ndarray, index: int = index) -> np.ndarray:
                return self._conditions(level, ks)[index]

            def fails(ks: np.ndarray, index: int = index) -> np.ndarray:
                return ~self._conditions(level, ks)[index]

            at_floor, at_top = bool(at_ends[0]), bool(at_ends[1])
            if at_floor and at_top:
                continue
            if not at_floor and not at_top:
                return Need(level, score, "out_of_reach")
            guess = guesses[index] if index < len(guesses) else None
            if at_top:  # reached from some pace upwards
                k = _first_true(holds, self.k_floor, self.k_top, guess)
                low = k if low is None else max(low, k)
            else:  # reached up to some pace
                k = _first_true(fails, self.k_floor, self.k_top, guess) - 1
                high = k if high is None else min(high, k)
        if low is None and high is None:
            return Need(level, score, "secured")
        if low is not None and high is not None and low > high:
            return Need(level, score, "out_of_reach")
        return Need(level, score, "pace",
                    None if low is None else float(self._paces(np.array([low]))[0]),
                    None if high is None else float(self._paces(np.array([high]))[0]))

    def _paces(self, ks: np.ndarray, *, inverse: bool = False) -> np.ndarray:
        """Steps of the pace's precision → paces (``inverse``: paces → steps): a division or
        product by an exact power of ten, so 98.1 is 981 / 10, not 981 × 0.1."""
        scale = float(10 ** abs(self.places))
        if (self.places >= 0) != inverse:
            return ks / scale
        return ks * scale


def _first_true(holds, lo: int, hi: int, guess: int | None = None) -> int:
    """The smallest k in (lo, hi] where ``holds`` is true, for ``holds`` false at lo, true at
    hi and monotone between: first the five steps around ``guess``, then ``SEARCH_WIDTH``
    candidates scored at once per round."""
    first = guess is not None
    while hi - lo > 1:
        if first:
            ks = np.arange(guess - 2, guess + 3, dtype=np.int64)
            first = False
        elif lo >= 0 and hi > 4096 * (lo + 1):  # far apart: the order of magnitude first
            ks = np.unique(np.geomspace(lo + 1, hi, SEARCH_WIDTH + 1).round().astype(np.int64))
        else:
            ks = np.unique(np.linspace(lo, hi, SEARCH_WIDTH + 1).round().astype(np.int64))
        ks = ks[(ks > lo) & (ks < hi)]
        if not ks.size:
            break
        ok = holds(ks)
        trues = ks[ok]
        if trues.size:
            hi = int(trues.min())
        falses = ks[~ok]
        below = falses[falses < hi]
        if below.size:
            lo = int(below.max())
    return hi


def _reading_order(node: formula_mod.Node) -> list[str]:
    """The formula's references left to right (the first is the component that moves)."""
    if node.op == "ref":
        return [node.name]
    found: list[str] = []
    for child in (node.left, node.right):
        if child is not None:
            found += _reading_order(child)
    return found


def _owner_levels(book: Book, owner: OwnerScore, outlook_lines: list[KpiOutlook],
                  year_end: Month, fiscal_start: Month) -> tuple[OwnerLevel, ...]:
    s = book.settings
    scores = {"threshold": s.threshold_score, "target": 1.0, "stretch": s.score_cap}
    person = owner.person
    assert person is not None
    year = replace(s, report_period=year_end)
    found = []
    for index, level in enumerate(LEVELS):
        total = weighted = 0.0
        reachable = True
        for kpi in outlook_lines:
            if kpi.weight <= 0 or any(n.state == "no_data" for n in kpi.needs):
                continue
            by_level = {n.level: n for n in kpi.needs}
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
