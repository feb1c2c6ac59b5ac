"""The pieces of "What it takes" that score candidate paces and search for an edge:
year-end windows by scoring's own aggregation and score rule, and a batched search over
monotone conditions (kpireport.score.outlook uses them)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kpireport.core import formula as formula_mod
from kpireport.score.scoring import aggregate, attainment_and_score

SEARCH_WIDTH = 64  # candidates scored at once while narrowing a search


def formula_rows(tree: formula_mod.Node, per_comp: dict[str, np.ndarray],
                 codes: dict[str, int], levels: list[np.ndarray], directions: np.ndarray,
                 cap: float, ts: float) -> tuple[np.ndarray, ...]:
    """The year-end windows of a formula KPI, one per row of monthly component values: each
    component aggregated over the months where all have a value, then the formula; the target
    the mean of the monthly targets where the formula has a value (scoring's rules)."""
    k = len(directions)
    common = np.logical_and.reduce([~np.isnan(v) for v in per_comp.values()])
    monthly, _ = formula_mod.evaluate(tree, {c: np.where(common, v, np.nan)
                                             for c, v in per_comp.items()})
    has_value = common & np.isfinite(monthly)
    aggs = {c: aggregate(v, common, np.full(k, codes[c]))[0] for c, v in per_comp.items()}
    value, _ = formula_mod.evaluate(tree, aggs)
    value = np.where(np.isfinite(value), value, np.nan)
    means = aggregate(levels[0], has_value, np.ones(k, dtype=int), *levels[1:])
    windows = [value, *means]
    _, score = attainment_and_score(directions, *windows, cap, ts)
    return (*windows, score)


def plain_rows(values: np.ndarray, codes: np.ndarray, levels: list[np.ndarray],
                directions: np.ndarray, cap: float, ts: float) -> tuple[np.ndarray, ...]:
    """(actual, target, threshold, stretch, target_max, score) of year-end windows, one per
    row of monthly values: scoring's aggregation and score rule."""
    windows = aggregate(values, ~np.isnan(values), codes, *levels)
    _, score = attainment_and_score(directions, *windows, cap, ts)
    return (*windows, score)


def first_true(holds: Callable[[np.ndarray], np.ndarray], lo: int, hi: int,
               guess: int | None = None) -> int:
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


def reading_order(node: formula_mod.Node) -> list[str]:
    """The formula's references left to right (the first is the component that moves)."""
    if node.op == "ref":
        return [node.name]
    found: list[str] = []
    for child in (node.left, node.right):
        if child is not None:
            found += reading_order(child)
    return found
