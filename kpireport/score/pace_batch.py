"""What it takes for many plain KPIs at once: the edge of each level worked out in closed form
for every line together (sum, average and last are straight lines in the pace), then the steps
around it scored in one pass through scoring's own rule to read where the level turns
(kpireport.score.outlook uses it; a line whose edge is not among those steps is searched)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpireport.score.pace_search import formula_rows, plain_rows
from kpireport.score.scoring import AGG_CODES, DIRECTIONS, aggregate, attainment_and_score

# The steps scored around each worked-out edge, and the order they are read in: the edge,
# then outwards (one further each side, so each step's neighbour is scored too), each for
# edges found going up and going down.
AROUND = np.arange(-3, 4)
READ_ORDER = ((0, True, True), (1, True, True), (-1, True, True), (2, True, True),
              (-2, True, True))
# First the steps where an edge worked out exactly usually is (the guess rounds it: the first
# step up is the guess or the next, the last step down the guess or the one before), and
# only as far in the order as these steps can be read; the rest are read in full.
NEAR = np.arange(-1, 3)
NEAR_ORDER = ((0, True, True), (1, True, True), (-1, False, True))
CONDITIONS = 3  # threshold, target, stretch (a range KPI: its two ends, and a spare)


@dataclass(frozen=True)
class PlainLines:
    """Plain lines of open scorecards, one row each: monthly actuals (NaN where none) and
    levels, the months left, and each line's rule and pace precision."""

    values: np.ndarray  # lines × months
    rem: np.ndarray  # lines × months: the months left
    levels: list[np.ndarray]  # target, threshold, stretch, target_max: lines × months each
    codes: np.ndarray
    directions: np.ndarray
    places: np.ndarray  # decimals of the pace's steps (negative: tens, hundreds …)
    k_floor: np.ndarray
    k_top: np.ndarray


@dataclass(frozen=True)
class Edges:
    """Per line and condition (threshold, target, stretch; a range KPI: its low and high
    end): whether it holds at the floor and the top of the range, and the edge in steps —
    the first step that holds going up, or the last going down. ``solved`` is False for a
    line whose edges need the search."""

    at_floor: np.ndarray  # lines × CONDITIONS
    at_top: np.ndarray
    edge: np.ndarray
    solved: np.ndarray  # lines


def paces(ks: np.ndarray, places: np.ndarray) -> np.ndarray:
    """Steps → paces: a division or product by an exact power of ten, as the line solver's."""
    scale = (10.0 ** np.abs(places)).astype(float)
    return np.where(places >= 0, ks / scale, ks * scale)


def plain_edges(lines: PlainLines, cap: float, ts: float) -> Edges:
    """Every condition's edge of every line: the steps next to the worked-out edges scored in
    one pass, then the lines whose edge is not among them over more steps."""
    near = _plain_edges(lines, cap, ts, NEAR, NEAR_ORDER)
    rest = np.flatnonzero(~near.solved)
    if not rest.size:
        return near
    wider = _plain_edges(PlainLines(*(v[rest] for v in (lines.values, lines.rem)),
                                    [m[rest] for m in lines.levels],
                                    *(v[rest] for v in (lines.codes, lines.directions,
                                                        lines.places, lines.k_floor,
                                                        lines.k_top))),
                         cap, ts, AROUND, READ_ORDER)
    edge, solved = near.edge.copy(), near.solved.copy()
    edge[rest], solved[rest] = wider.edge, wider.solved
    return Edges(near.at_floor, near.at_top, edge, solved)


def _plain_edges(lines: PlainLines, cap: float, ts: float, offsets: np.ndarray,
                 order: tuple[tuple[int, bool, bool], ...]) -> Edges:
    n = len(lines.codes)
    # The year's target, threshold, stretch and target_max do not move with the pace.
    past = ~np.isnan(lines.values)
    year = aggregate(lines.levels[0], past | lines.rem, lines.codes, *lines.levels[1:])
    guess = _guesses(lines, year, cap, ts)  # lines × CONDITIONS, NaN where none
    floor, top = lines.k_floor[:, None], lines.k_top[:, None]
    around = _around(guess, offsets)
    ks = np.concatenate([floor, top, np.clip(around, floor, top)], axis=1)
    width = ks.shape[1]
    index = np.repeat(np.arange(n), width)
    flat = ks.reshape(-1)
    rem = lines.rem[index]
    values = np.where(rem, paces(flat, lines.places[index])[:, None], lines.values[index])
    a = aggregate(values, ~np.isnan(values), lines.codes[index])[0]
    t, lo, hi, tmax = (v[index] for v in year)
    _, score = attainment_and_score(lines.directions[index], a, t, lo, hi, tmax, cap, ts)
    holds = _holds(a, t, tmax, score, lines.directions[index], cap, ts).reshape(n, width, -1)
    return _read(holds[:, 0, :], holds[:, 1, :], holds[:, 2:, :], around, guess,
                 lines.k_floor, lines.k_top, lines.directions, offsets, order)


def formula_edges(group: list, cap: float, ts: float) -> Edges:
    """The edges of a formula KPI's lines (its driver moving, the others at their pace so
    far), in two scoring passes over all of them: the ends of the range and two probes, then
    the steps next to where each level's straight line through the probes meets its edge
    (the lines whose edge is not there: again, over more steps)."""
    near = _formula_edges(group, cap, ts, NEAR, NEAR_ORDER)
    rest = np.flatnonzero(~near.solved)
    if not rest.size:
        return near
    wider = _formula_edges([group[i] for i in rest], cap, ts, AROUND, READ_ORDER)
    edge, solved = near.edge.copy(), near.solved.copy()
    edge[rest], solved[rest] = wider.edge, wider.solved
    return Edges(near.at_floor, near.at_top, edge, solved)


def _formula_edges(group: list, cap: float, ts: float, offsets: np.ndarray,
                   order: tuple[tuple[int, bool, bool], ...]) -> Edges:
    k_floor = np.array([sv.k_floor for sv in group])
    k_top = np.array([sv.k_top for sv in group])
    directions = np.array([sv.direction for sv in group])
    probes = np.array([sv._probes for sv in group], dtype=np.int64)
    ks = np.column_stack([k_floor, k_top, probes])
    a, t, lo, hi, tmax, score = _formula_rows(group, ks, cap, ts)
    ends = _holds(*(v[:, :2].ravel() for v in (a, t, tmax, score)), np.repeat(directions, 2),
                  cap, ts).reshape(len(group), 2, -1)
    edges = level_edges(t[:, 2], lo[:, 2], hi[:, 2], tmax[:, 2], directions, cap, ts)
    k1, k2 = probes[:, :1], probes[:, 1:]
    a1, a2 = a[:, 2:3], a[:, 3:4]
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = np.where(a2 != a1, k1 + (edges - a1) * (k2 - k1) / (a2 - a1), np.nan)
    guess = _steps(steps, k_top)
    around = _around(guess, offsets)
    near_ks = np.clip(around, k_floor[:, None], k_top[:, None])
    rows = _formula_rows(group, near_ks, cap, ts)
    width = near_ks.shape[1]
    near = _holds(*(rows[i].ravel() for i in (0, 1, 4, 5)), np.repeat(directions, width),
                  cap, ts).reshape(len(group), width, -1)
    return _read(ends[:, 0, :], ends[:, 1, :], near, around, guess, k_floor, k_top,
                 directions, offsets, order)


def _formula_rows(group: list, ks: np.ndarray, cap: float,
                  ts: float) -> tuple[np.ndarray, ...]:
    """``formula_rows`` of every line's paces ``ks`` (lines × paces in steps), as lines × paces
    each."""
    n, width = ks.shape
    first = group[0]
    index = np.repeat(np.arange(n), width)
    flat = paces(ks.reshape(-1), np.array([sv.places for sv in group])[index])
    rem = np.array([sv.rem for sv in group])[index]
    per_comp = {}
    for c in first.components:
        rows = np.array([sv.components[c] for sv in group])[index]
        fill = flat if c == first.driver else \
            np.array([sv.held.get(c, np.nan) for sv in group])[index]
        per_comp[c] = np.where(rem, fill[:, None], rows)
    levels = [np.array([sv.monthly[i] for sv in group])[index] for i in range(4)]
    directions = np.array([sv.direction for sv in group])[index]
    found = formula_rows(first.tree, per_comp, first.comp_codes, levels, directions, cap, ts)
    return tuple(v.reshape(n, width) for v in found)

def _around(guess: np.ndarray, offsets: np.ndarray = AROUND) -> np.ndarray:
    """The steps scored around each condition's guess: lines × (CONDITIONS · offsets)."""
    centre = np.where(np.isfinite(guess), guess, 0).astype(np.int64)
    return (centre[:, :, None] + offsets).reshape(len(guess), -1)


def _holds(a: np.ndarray, t: np.ndarray, tmax: np.ndarray, score: np.ndarray,
           directions: np.ndarray, cap: float, ts: float) -> np.ndarray:
    """Each condition at each scored pace (the line solver's tests): candidates × CONDITIONS."""
    rounded = np.round(score, 6)
    ranged = directions == DIRECTIONS["range"]
    with np.errstate(invalid="ignore"):
        return np.stack([np.where(ranged, a >= t, rounded >= round(ts, 6)),
                         np.where(ranged, a <= tmax, rounded >= 1.0),
                         np.where(ranged, False, rounded >= round(cap, 6))], axis=1)


def _read(at_floor: np.ndarray, at_top: np.ndarray, near: np.ndarray, around: np.ndarray,
          guess: np.ndarray, k_floor: np.ndarray, k_top: np.ndarray,
          directions: np.ndarray, offsets: np.ndarray = AROUND,
          order: tuple[tuple[int, bool, bool], ...] = READ_ORDER) -> Edges:
    """Where each condition turns among the steps around its guess, read in the line
    solver's order (the guess, then outwards) as far as ``order`` goes, each step read only
    for the edges (up, down) whose neighbour was scored; ``near``: lines × steps ×
    CONDITIONS."""
    n = len(directions)
    finite = np.isfinite(guess)
    floor, top = k_floor[:, None], k_top[:, None]
    width = len(offsets)
    near = near.reshape(n, CONDITIONS, width, CONDITIONS)
    near = near[:, np.arange(CONDITIONS), :, np.arange(CONDITIONS)].transpose(1, 0, 2)
    steps = around.reshape(n, CONDITIONS, width)
    upward = at_top & ~at_floor
    edge = np.zeros((n, CONDITIONS), dtype=np.int64)
    found = np.zeros((n, CONDITIONS), dtype=bool)
    blocked = np.zeros((n, CONDITIONS), dtype=bool)  # an earlier step could not be read
    where = {int(o): i for i, o in enumerate(offsets)}
    for offset, up, down in order:
        i = where[offset]
        k = steps[:, :, i]
        readable = np.where(upward, up, down)
        inside = (floor < k) & (k < top)
        turns = np.where(upward, near[:, :, i] & ~near[:, :, max(i - 1, 0)],
                         near[:, :, i] & ~near[:, :, min(i + 1, width - 1)])
        take = finite & readable & ~blocked & inside & turns & ~found
        edge = np.where(take, k, edge)
        found |= take
        blocked |= ~readable
    needed = at_floor != at_top  # the level turns somewhere in the range
    used = np.ones((n, CONDITIONS), dtype=bool)
    used[:, 2] = directions != DIRECTIONS["range"]
    solved = ~(needed & used & ~found).any(axis=1)
    return Edges(at_floor, at_top, edge, solved)


def level_edges(t: np.ndarray, lo: np.ndarray, hi: np.ndarray, tmax: np.ndarray,
                directions: np.ndarray, cap: float, ts: float) -> np.ndarray:
    """The year's actual at which each condition turns: lines × CONDITIONS (the solver's
    ``_edges``; a range KPI: target and target_max, and NaN)."""
    lower = directions == DIRECTIONS["lower"]
    ranged = directions == DIRECTIONS["range"]
    with np.errstate(invalid="ignore", divide="ignore"):
        threshold = np.where(~np.isnan(lo), lo,
                             np.where(lower, t / ts if ts > 0 else np.inf, ts * t))
        stretch = np.where(~np.isnan(hi), hi, np.where(lower, t / cap, cap * t))
        return np.stack([np.where(ranged, t, threshold), np.where(ranged, tmax, t),
                         np.where(ranged, np.nan, stretch)], axis=1)


def _guesses(lines: PlainLines, year: list[np.ndarray], cap: float, ts: float) -> np.ndarray:
    """Where each condition turns, in steps, worked out directly: the year's level at the
    level's edge, less the actuals so far, spread over the months left."""
    past = ~np.isnan(lines.values)
    edges = level_edges(*year, lines.directions, cap, ts)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(past, lines.values, 0.0).sum(axis=1)[:, None]
        count = past.sum(axis=1)[:, None]
        months = lines.rem.sum(axis=1)[:, None]
        codes = lines.codes[:, None]
        pace = np.where(codes == AGG_CODES["sum"], (edges - total) / months,
                        np.where(codes == AGG_CODES["average"],
                                 (edges * (count + months) - total) / months, edges))
        scale = (10.0 ** np.abs(lines.places)).astype(float)[:, None]
        steps = np.where(lines.places[:, None] >= 0, pace * scale, pace / scale)
        return _steps(steps, lines.k_top)


def _steps(steps: np.ndarray, k_top: np.ndarray) -> np.ndarray:
    """Whole steps (half to even, as ``round``); NaN beyond the range, where a guess is no
    help (and would not fit the steps' integers)."""
    bound = np.abs(k_top).astype(float)[:, None] + 10
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(steps) <= bound, np.rint(steps), np.nan)

# The lines the closed forms leave to the search: their first candidates scored together.
def score_together(solvers: list) -> None:
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
    owners, candidates, slots = [], [], []
    for i, sv in enumerate(solvers):
        ks = sv.first_candidates()
        slots.append(dict(zip(ks, range(len(candidates), len(candidates) + len(ks)))))
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
    rows = plain_rows(values, codes[index], [m[index] for m in stacked],
                       np.array([solvers[i].direction for i in owners]),
                       solvers[0].cap, solvers[0].ts)
    table = np.column_stack(rows)
    # Each level's conditions at every candidate, as plain booleans the searches read.
    a, t, _lo, _hi, tmax, score = rows
    rounded = np.round(score, 6)
    cap, ts = solvers[0].cap, solvers[0].ts
    ranged = np.array([sv.direction == DIRECTIONS["range"] for sv in solvers])[index]
    with np.errstate(invalid="ignore"):
        flags = {("target", 0): np.where(ranged, a >= t, rounded >= 1.0).tolist(),
                 ("target", 1): (a <= tmax).tolist(),
                 ("threshold", 0): (rounded >= round(ts, 6)).tolist(),
                 ("stretch", 0): (rounded >= round(cap, 6)).tolist()}
    for sv, slot in zip(solvers, slots):
        sv._scored = (slot, table, flags)


def score_formulas_together(solvers: list) -> None:
    """Score every formula line's candidates in passes per formula KPI: the ends of the range
    and two probes (its driver's pace so far, and half as much again), then the steps around
    the edge each level's straight line through the probes points to."""
    groups: dict[str, list] = {}
    for sv in solvers:
        if not sv._no_data:
            groups.setdefault(sv.kpi.kpi_id, []).append(sv)
    for group in groups.values():
        score_formula_group(group, {sv: sv.first_candidates() for sv in group})
        score_formula_group(group, {sv: [k for level in sv._levels()
                                          for g in sv._guesses(level) if g is not None
                                          for k in range(g - 2, g + 3)
                                          if sv.k_floor < k < sv.k_top and k not in sv._cache]
                                     for sv in group})


def score_formula_group(group: list, wanted: dict) -> None:
    owners = [sv for sv in group for _ in wanted[sv]]
    if not owners:
        return
    steps = [k for sv in group for k in wanted[sv]]
    paces = np.array([float(sv._paces(np.array([k]))[0]) for sv, k in zip(owners, steps)])
    first = group[0]
    per_comp = {}
    rem = np.array([sv.rem for sv in owners])
    for c in first.components:
        rows = np.array([sv.components[c] for sv in owners])
        fill = paces if c == first.driver else \
            np.array([sv.held.get(c, np.nan) for sv in owners])
        per_comp[c] = np.where(rem, fill[:, None], rows)
    levels = [np.array([sv.monthly[i] for sv in owners]) for i in range(4)]
    rows = formula_rows(first.tree, per_comp, first.comp_codes, levels,
                        np.array([sv.direction for sv in owners]), first.cap, first.ts)
    table = np.column_stack(rows)
    for j, (sv, k) in enumerate(zip(owners, steps)):
        sv._cache[k] = table[j]
