"""The bonus pool: paid to date, earned to date, and the year end projected at the current pace.

``earned_to_date`` is the sum of every employee's bonus earned so far in the fiscal year
(SPEC §2.7's ytd bonus; on the month basis the monthly bonuses of the year through the report
month). ``paid_to_date`` comes from the record of payments (SPEC §2.8), or is unknown.

The projection (docs/payments.md, "How the projection is made") is a seeded bootstrap: in each
of :data:`DRAWS` draws, every scorecard line of every employee takes, for each month left in
the fiscal year in which the person is employed, the actual of one of its own months so far
(chosen at random, each equally likely; a formula KPI's components from the same month). The
year is then scored by the functions scoring uses (:func:`~kpireport.score.scoring.aggregate`,
:func:`~kpireport.score.scoring.attainment_and_score`), the owner scores weighted as SPEC §2.4,
banded and paid as §2.6–2.7, and the draw's pool is the sum. Low, expected and high are the
10th, 50th and 90th percentiles of the draws' pools. The generator is seeded with
:data:`SEED`, so the same workbook gives the same band on every machine and every build.

Lines are sampled independently of each other: a KPI varies by its own month-to-month
variation, not by another's. A line with no actual yet stays without data, as it would be.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

import numpy as np

from kpireport.core import formula as formula_mod
from kpireport.core.model import Book, Month, Settings, first_day, last_day
from kpireport.core.money import minor_units, round_money
from kpireport.score.bands import Pay, days_employed, pay_for
from kpireport.score.scoring import (
    AGG_CODES,
    DIRECTIONS,
    FiscalYear,
    LineResult,
    Scores,
    aggregate,
    attainment_and_score,
)

SEED = 20261207  # the bootstrap's seed: the same workbook, the same band
DRAWS = 100  # draws of the year's remaining months
PERCENTILES = (10, 50, 90)  # low, expected, high
_CHUNK_CELLS = 2_000_000  # draws × lines × months scored at once (bounds the memory)


@dataclass(frozen=True)
class Projection:
    """The pool at the end of the fiscal year at the current pace: low / expected / high are
    the 10th / 50th / 90th percentiles of :data:`DRAWS` seeded draws (equal when no month is
    left)."""

    months_left: int
    low: Decimal
    expected: Decimal
    high: Decimal
    draws: int
    seed: int


@dataclass(frozen=True)
class BonusPool:
    """The company's bonus pool at the report month (money in the workbook's currency)."""

    currency: str
    earned_to_date: Decimal
    paid_to_date: Decimal | None  # None: no record of payments (bonus_payment none, no sheet)
    projection: Projection

    @property
    def unpaid(self) -> Decimal | None:
        """Earned but not paid yet (negative: more was paid than is earned now)."""
        return None if self.paid_to_date is None else self.earned_to_date - self.paid_to_date


def bonus_pool(book: Book, scores: Scores, pay: dict[str, Pay],
               paid: dict[str, Decimal] | None = None) -> BonusPool:
    """The pool of ``book`` scored as ``scores`` and paid as ``pay`` (see the module)."""
    currency = book.settings.currency
    earned = earned_by_employee(book, scores, pay)
    earned_total = sum(earned.values(), Decimal(0))
    paid_total = None if paid is None else sum(paid.values(), Decimal(0))
    projection = _Projector(book, scores, pay).run(earned_total)
    return BonusPool(currency, earned_total, paid_total, projection)


def earned_by_employee(book: Book, scores: Scores, pay: dict[str, Pay]) -> dict[str, Decimal]:
    """Each employee's bonus earned so far in the fiscal year (SPEC §2.8): the ytd bonus, or
    on the month basis the sum of the year's monthly bonuses through the report month."""
    if book.settings.bonus_basis != "month":
        return {owner: p.bonus for owner, p in pay.items() if p.bonus is not None}
    return _monthly_earned(book, scores, pay)


def _monthly_earned(book: Book, scores: Scores, pay: dict[str, Pay]) -> dict[str, Decimal]:
    """The month basis: each past month scored alone (its month window), paid by §2.7."""
    year = FiscalYear(book)
    s = book.settings
    lines = _employee_lines(scores)
    if not lines:
        return {}
    matrices = _LineSet(book, year, lines)
    month_scores = matrices.month_scores(matrices.past_actual())  # employees × past months
    earned: dict[str, Decimal] = {}
    people = {p.employee_id: p for p in book.people}
    for row, owner in enumerate(matrices.owners):
        if owner not in pay:
            continue
        total, known = Decimal(0), False
        for col, month in enumerate(year.months[:year.elapsed]):
            score = month_scores[row, col]
            monthly = pay_for(people[owner], None if np.isnan(score) else float(score),
                              None, _at(s, month), book.bands, scores.fiscal_start)
            if monthly.bonus is not None:
                total += monthly.bonus
                known = True
        if known:
            earned[owner] = total
    return earned


def _at(settings: Settings, month: Month) -> Settings:
    """``settings`` reporting on ``month`` (pay_for reads the month from them)."""
    return replace(settings, report_period=month)


def _employee_lines(scores: Scores) -> list[LineResult]:
    """The scored lines (weight > 0) of every employee, grouped by employee."""
    return [line for o in scores.owners if o.person is not None
            for line in o.lines if line.weight > 0]


class _LineSet:
    """The employees' scored lines over the fiscal year, as matrices (one row a line)."""

    def __init__(self, book: Book, year: FiscalYear, scored: list[LineResult]) -> None:
        lines = [r.line for r in scored]
        self.book, self.year, self.lines = book, year, lines
        s = book.settings
        kpis = {k.kpi_id: k for k in book.kpis}
        self.kpis = kpis
        n_months = len(year.months)
        self.elapsed = year.elapsed
        self.target, self.threshold, self.stretch, self.target_max = year.targets(lines)
        self.direction = np.array([DIRECTIONS[kpis[ln.kpi_id].direction] for ln in lines])
        self.formula_rows = [i for i, ln in enumerate(lines) if kpis[ln.kpi_id].formula]
        formula_set = set(self.formula_rows)
        self.plain_rows = [i for i in range(len(lines)) if i not in formula_set]
        self.codes = np.ones(len(lines), dtype=int)  # formula lines: their target is a mean
        self.codes[self.plain_rows] = [AGG_CODES[kpis[lines[i].kpi_id].aggregation or "sum"]
                                       for i in self.plain_rows]
        # plain lines: their monthly actuals; formula lines: each component's, and the
        # months where all components have one
        self.actual = np.full((len(lines), n_months), np.nan)
        if self.plain_rows:  # as scoring read them (zero-filled, rolled up): its history
            nan = np.nan
            self.actual[self.plain_rows, :self.elapsed] = [
                [nan if a is None else a for _, a, _ in scored[i].history]
                for i in self.plain_rows]
        self.components: dict[str, dict[str, np.ndarray]] = {}  # kpi -> comp -> rows × months
        self.formula_groups: dict[str, list[int]] = {}
        for i in self.formula_rows:
            self.formula_groups.setdefault(lines[i].kpi_id, []).append(i)
        present = ~np.isnan(self.actual)
        for kpi_id, rows in self.formula_groups.items():
            comps = kpis[kpi_id].components
            series = year.series([(lines[i].owner, c) for i in rows for c in comps])
            k = len(comps)
            per_comp = {c: series[j::k] for j, c in enumerate(comps)}
            common = np.logical_and.reduce([~np.isnan(v) for v in per_comp.values()])
            self.components[kpi_id] = {c: np.where(common, v, np.nan)
                                       for c, v in per_comp.items()}
            present[rows] = common
            tree = formula_mod.parse(kpis[kpi_id].formula or "")
            monthly, _ = formula_mod.evaluate(tree, self.components[kpi_id])
            self.actual[rows] = np.where(np.isfinite(monthly), monthly, np.nan)
            present[rows] &= np.isfinite(monthly)
        self.present = present
        owners = [ln.owner for ln in lines]
        self.owners: list[str] = list(dict.fromkeys(owners))
        first = {}
        for i, o in enumerate(owners):
            first.setdefault(o, i)
        self.starts = np.array([first[o] for o in self.owners])  # lines come by owner
        self.weight = np.array([ln.weight for ln in lines], dtype=float)
        employed = {o: year.employed(o) for o in self.owners}
        self.employed = np.array([employed[o] for o in owners], dtype=bool).reshape(
            len(lines), n_months)
        self.cap, self.ts = s.score_cap, s.threshold_score

    def past_actual(self) -> np.ndarray:
        return self.actual[:, :self.elapsed]

    def owner_scores(self, score: np.ndarray) -> np.ndarray:
        """SPEC §2.4 over the last axis's lines (grouped by owner): … × owners, NaN no data."""
        has = ~np.isnan(score)
        weighted = np.where(has, score * self.weight, 0.0)
        weights = np.where(has, self.weight, 0.0)
        total = np.add.reduceat(weighted, self.starts, axis=-1)
        count = np.add.reduceat(weights, self.starts, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)

    def month_scores(self, actual: np.ndarray) -> np.ndarray:
        """Each month alone (the month window) of ``actual`` (lines × months from the year's
        start): owners × months."""
        n = actual.shape[1]
        _, score = attainment_and_score(
            self.direction[:, None].repeat(n, axis=1), actual, self.target[:, :n],
            self.threshold[:, :n], self.stretch[:, :n], self.target_max[:, :n],
            self.cap, self.ts)
        return self.owner_scores(score.T).T


class _Projector:
    """The seeded bootstrap of the module's docstring."""

    def __init__(self, book: Book, scores: Scores, pay: dict[str, Pay]) -> None:
        self.book, self.scores, self.pay = book, scores, pay
        self.year = FiscalYear(book)
        self.earned = 0.0

    def run(self, earned: Decimal) -> Projection:
        self.earned = float(earned)
        year = self.year
        left = len(year.months) - year.elapsed
        currency = self.book.settings.currency
        lines = [ln for ln in _employee_lines(self.scores) if ln.owner in self.pay]
        if left == 0 or not lines:
            return Projection(left, earned, earned, earned, 0, SEED)
        pools = self.pools(_LineSet(self.book, year, lines), DRAWS)
        values = np.percentile(pools, PERCENTILES, method="linear")
        low, mid, high = (round_money(Fraction(Decimal(repr(float(v)))), currency)
                          for v in values)
        return Projection(left, low, mid, high, DRAWS, SEED)

    def pools(self, ls: _LineSet, draws: int) -> np.ndarray:
        """The year-end pool of each of ``draws`` draws (floats, in currency units)."""
        rng = np.random.default_rng(SEED)
        n_lines = len(ls.lines)
        elapsed = ls.elapsed
        left = ls.actual.shape[1] - elapsed
        seen = ls.present[:, :elapsed]
        counts = seen.sum(axis=1)
        future = ls.employed[:, elapsed:] & (counts > 0)[:, None]
        # each line's observed months first, in order (a pick j < counts[i] names months[i, j])
        months = np.argsort(~seen, axis=1, kind="stable")
        width = elapsed
        pay = _PayRule(self.book, ls, self.pay, self.earned, future)
        chunk = max(1, _CHUNK_CELLS // max(1, n_lines * left))
        every_month = bool(np.all((counts == elapsed) | (counts == 0)))
        line_base = (np.arange(n_lines) * width)[None, :, None]
        scale = counts.astype(np.uint64)[None, :, None]
        out = []
        for begin in range(0, draws, chunk):
            size = min(chunk, draws - begin)
            # one draw per (draw, line, month left): which of the line's months so far that
            # month repeats (a line with none: never used — its months are not drawn)
            if every_month:  # the common case: every line has every month so far
                pick = rng.integers(0, elapsed, size=(size, n_lines, left), dtype=np.uint8)
                out.append(pay.pools(pick))
                continue
            # a line with fewer months: ⌊r·count / 2³²⌋ of a uniform 32-bit r (equally
            # likely to within 2⁻³²)
            r = rng.integers(0, 1 << 32, size=(size, n_lines, left), dtype=np.uint64)
            pick = ((r * scale) >> np.uint64(32)).astype(np.intp)
            out.append(pay.pools(months.ravel()[line_base + pick]))
        return np.concatenate(out)


class _PayRule:
    """The year end of each draw, scored and paid (SPEC §2.3–2.7, vectorised over draws)."""

    def __init__(self, book: Book, ls: _LineSet, pay: dict[str, Pay], earned: float,
                 future: np.ndarray) -> None:
        s = book.settings
        self.ls, self.basis, self.mode = ls, s.bonus_basis, s.band_mode
        self.future = future  # lines × months left: where a month is drawn
        self.earned = earned  # the month basis: what the months so far have earned
        bands = book.bands
        self.edges = np.array([round(b.min_score, 6) for b in bands])
        self.payouts = np.array([b.bonus_payout for b in bands])
        self.scale = 10 ** minor_units(s.currency)
        people = {p.employee_id: p for p in book.people}
        year = ls.year
        start, end = first_day(year.months[0]), last_day(year.months[-1])
        d_year = (end - start).days + 1
        base = []
        monthly = []
        for owner in ls.owners:
            p, person = pay[owner], people[owner]
            target = (p.base_salary or 0.0) * (p.target_bonus_pct or 0.0)
            if p.base_salary is None or p.target_bonus_pct is None:
                target = np.nan
            base.append(target * days_employed(person, start, end) / d_year)
            if self.basis == "month":
                monthly.append([target / 12 * days_employed(person, first_day(m), last_day(m))
                                / ((last_day(m) - first_day(m)).days + 1)
                                for m in year.months[year.elapsed:]])
        self.year_bonus = np.array(base)  # at 100% payout, for the ytd basis
        left = len(year.months) - year.elapsed
        # month basis only: each month left's bonus at 100% payout, owners × months left
        self.month_bonus = np.array(monthly, dtype=float).reshape(len(monthly), left)
        # the year window's targets: over the months with an actual, drawn ones included
        mask = np.concatenate([ls.present[:, :ls.elapsed], future], axis=1)
        _, *self.year_targets = aggregate(np.zeros_like(ls.target), mask, ls.codes, ls.target,
                                          ls.threshold, ls.stretch, ls.target_max)

    def payout(self, score: np.ndarray) -> np.ndarray:
        """SPEC §2.6 over an array of owner scores (NaN: no score, no payout)."""
        rounded = np.round(score, 6)
        index = np.searchsorted(self.edges, np.nan_to_num(rounded, nan=-1.0), side="right") - 1
        valid = (index >= 0) & ~np.isnan(rounded)
        index = np.maximum(index, 0)
        paid = self.payouts[index]
        if self.mode == "linear" and len(self.edges) > 1:
            upper = np.minimum(index + 1, len(self.edges) - 1)
            span = self.edges[upper] - self.edges[index]
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(span > 0, (rounded - self.edges[index]) / span, 0.0)
            paid = np.where(upper > index, paid + share * (self.payouts[upper] - paid), paid)
        return np.where(valid, paid, np.nan)

    def money(self, amount: np.ndarray) -> np.ndarray:
        """Half-up to the currency's minor unit, per person (NaN: no bonus, counts 0)."""
        rounded = np.floor(np.abs(amount) * self.scale + 0.5 - 1e-9) / self.scale
        return np.where(np.isnan(amount), 0.0, np.sign(amount) * rounded)

    def pools(self, source: np.ndarray) -> np.ndarray:
        """The pool of each draw; ``source`` (draws × lines × months left) names the month
        so far that each month left repeats."""
        if self.basis == "month":
            return self._monthly(source)
        ls = self.ls
        actual = self._ytd_actuals(source)
        draws = actual.shape[0]
        t, lo, hi, tmax = self.year_targets
        _, score = attainment_and_score(ls.direction[None], actual, t[None], lo[None],
                                        hi[None], tmax[None], ls.cap, ls.ts)
        owner = ls.owner_scores(score.reshape(draws, -1))
        bonus = self.money(self.year_bonus[None, :] * self.payout(owner))
        return bonus.sum(axis=1)

    def _drawn(self, monthly: np.ndarray, rows: np.ndarray, source: np.ndarray, *,
               masked: bool = True) -> np.ndarray:
        """draws × rows × months left: the value of ``monthly`` (rows × months) in the month
        each month left repeats; NaN where none is drawn (``masked`` False: left as picked,
        for a caller that weighs by ``future`` itself)."""
        elapsed = self.ls.elapsed
        flat = monthly[:, :elapsed].ravel()
        picked = flat[(np.arange(len(rows)) * elapsed)[None, :, None] + source[:, rows]]
        return np.where(self.future[rows][None], picked, np.nan) if masked else picked

    def _ytd_actuals(self, source: np.ndarray) -> np.ndarray:
        """draws × lines: each line's year-to-date actual at the year's end."""
        ls = self.ls
        draws, n_lines = source.shape[0], len(ls.lines)
        out = np.full((draws, n_lines), np.nan)
        if ls.plain_rows:
            rows = np.array(ls.plain_rows)
            out[:, rows] = year_aggregate(ls.codes[rows], ls.actual[rows, :ls.elapsed],
                                          self._drawn(ls.actual[rows], rows, source,
                                                      masked=False), self.future[rows])
        for kpi_id, rows in ls.formula_groups.items():
            idx = np.array(rows)
            comps = {}
            for comp, matrix in ls.components[kpi_id].items():
                code = np.full(len(idx), AGG_CODES[ls.kpis[comp].aggregation or "sum"])
                comps[comp] = year_aggregate(code, matrix[:, :ls.elapsed],
                                             self._drawn(matrix, idx, source, masked=False),
                                             self.future[idx])
            tree = formula_mod.parse(ls.kpis[kpi_id].formula or "")
            with np.errstate(invalid="ignore", divide="ignore"):
                value, _ = formula_mod.evaluate(tree, comps)
            out[:, idx] = np.where(np.isfinite(value), value, np.nan)
        return out

    def _monthly(self, source: np.ndarray) -> np.ndarray:
        """The month basis: the bonus earned so far plus each month left scored alone."""
        ls = self.ls
        draws = source.shape[0]
        rows = np.arange(len(ls.lines))
        drawn = self._drawn(ls.actual, rows, source)  # formula lines: the monthly value
        total = np.full(draws, self.earned)
        for k in range(drawn.shape[2]):
            col = ls.elapsed + k
            _, score = attainment_and_score(
                ls.direction[None], drawn[:, :, k], ls.target[None, :, col],
                ls.threshold[None, :, col], ls.stretch[None, :, col],
                ls.target_max[None, :, col], ls.cap, ls.ts)
            owner = ls.owner_scores(score)
            total += self.money(self.month_bonus[None, :, k] * self.payout(owner)).sum(axis=1)
        return total


def year_aggregate(codes: np.ndarray, past: np.ndarray, drawn: np.ndarray,
                   future: np.ndarray) -> np.ndarray:
    """draws × rows: SPEC §2.2's aggregate of each row over the whole year, from its months so
    far (``past``: rows × months, NaN none) and the months drawn (``drawn``: draws × rows ×
    months left, each a value of one of the row's months so far; only those where ``future``,
    rows × months left, count) — what :func:`~kpireport.score.scoring.aggregate` gives over
    the joined months, worked from each side's sum, count, last, min and max so that the draws
    never copy the months so far (one pass over the draws for a sum or an average)."""
    has_past = ~np.isnan(past)
    weights = future.astype(drawn.dtype)
    count = has_past.sum(axis=1) + future.sum(axis=1)
    total = np.where(has_past, past, 0.0).sum(axis=1)[None] + \
        np.einsum("drk,rk->dr", drawn, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(codes[None] == AGG_CODES["average"], total / count[None], total)
    for name, pick in (("last", None), ("min", np.fmin), ("max", np.fmax)):
        rows = np.flatnonzero(codes == AGG_CODES[name])
        if len(rows) == 0:
            continue
        (past_value,) = aggregate(past[rows], has_past[rows], codes[rows])
        sub = np.where(future[rows][None], drawn[:, rows], np.nan)
        sub_has = ~np.isnan(sub)
        if pick is None:  # the latest month with a value: a drawn one, else the past's
            n = sub.shape[2]
            last_col = n - 1 - np.argmax(sub_has[..., ::-1], axis=2)
            latest = np.take_along_axis(sub, last_col[..., None], axis=2)[..., 0]
            value = np.where(sub_has.any(axis=2), latest, past_value[None])
        else:
            with np.errstate(invalid="ignore"):
                extreme = pick.reduce(sub, axis=2) \
                    if sub.shape[2] else np.full(sub.shape[:2], np.nan)
            value = pick(extreme, past_value[None])
        out[:, rows] = value
    return np.where(count[None] > 0, out, np.nan)
