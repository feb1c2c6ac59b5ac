"""Charts: the batched sparklines draw what a plain per-point loop draws."""

from __future__ import annotations

import random
import re

from kpireport.core.resources import builtin_templates
from kpireport.report import charts


def reference_path(values, low, high, width=96, height=24):
    """The sparkline maths written out point by point (y in tenths, rounded half up)."""
    if high == low:
        high, low = high + 1, low - 1
    n = max(len(values), 2)
    xs = [f"{2 + i * (width - 4) / (n - 1):.1f}" for i in range(n)]
    k = (height - 4) / (high - low) * 10
    base = (height - 2) * 10 + low * k + 0.5
    parts, pen = [], "M"
    for x, v in zip(xs, values):
        if v is None:
            pen = "M"
            continue
        parts.append(f"{pen}{x},{int(base - v * k) / 10:.1f}")
        pen = "L"
    return " ".join(parts)


def test_batched_sparklines_match_the_point_by_point_maths():
    rng = random.Random(7)
    lines = []
    for i in range(400):
        n = rng.choice([1, 2, 6, 12])
        values = [None if rng.random() < 0.15 else rng.uniform(-5e6, 5e6) * rng.random()
                  for _ in range(n)]
        targets = [None if rng.random() < 0.3 else rng.uniform(-1e3, 1e6) for _ in range(n)]
        if i % 10 == 0:
            values = [42.0] * n  # flat
            targets = [None] * n
        lines.append((values, targets, f"KPI <{i}>"))
    lines.append(([None, None], [1.0, 2.0], "no data"))
    drawn = charts.sparklines(lines)
    assert len(drawn) == len(lines)
    for (values, targets, label), svg in zip(lines, drawn):
        present = [v for v in values + targets if v is not None]
        if all(v is None for v in values):
            assert svg == ""
            continue
        paths = re.findall(r'<path d="([^"]*)"', svg)
        low, high = min(present), max(present)
        expected = [reference_path(values, low, high)]
        if any(t is not None for t in targets):
            expected.insert(0, reference_path(targets, low, high))
        assert paths == expected
        assert f"&lt;{label[5:-1]}&gt;" in svg  # the label is escaped
        ys = [float(y) for y in re.findall(r",(-?[\d.]+)", " ".join(paths))]
        assert all(2.0 <= y <= 22.0 for y in ys)
        last = max(i for i, v in enumerate(values) if v is not None)
        cx = re.search(r'<circle cx="([\d.]+)"', svg).group(1)
        assert cx == f"{2 + last * 92 / (max(len(values), 2) - 1):.1f}"


def test_single_sparkline_is_the_batch_of_one():
    values, targets = [1.0, None, 3.0, 2.5], [2.0, 2.0, 2.0, 2.0]
    assert charts.sparkline(values, targets, "x") == \
        charts.sparklines([(values, targets, "x"), ([None], [None], "y")])[0]


def reference_bullet(actual, target, threshold, stretch, target_max, direction, status, label,
                     width=150, height=22):
    """The bullet chart written out for one chart, as it was before batching."""
    if target is None:
        return ""
    points = [v for v in (actual, target, threshold, stretch, target_max) if v is not None]
    top = max(max(points), 0) * 1.12 or 1.0
    bottom = min(min(points), 0)
    span = top - bottom or 1.0

    def x(value):
        return (value - bottom) / span * width

    def f(value):
        return f"{int(value * 10 + 0.5) / 10:.1f}" if 0 <= value < 400 else f"{value:.1f}"

    if direction == "range":
        zones = [(bottom, target, "poor"), (target, target_max or target, "good"),
                 (target_max or target, top, "poor")]
    elif direction == "lower":
        good_end = stretch if stretch is not None else target * 0.85
        worst = threshold if threshold is not None else target * 1.15
        zones = [(bottom, good_end, "good"), (good_end, target, "good"),
                 (target, worst, "ok"), (worst, top, "poor")]
    else:
        low = threshold if threshold is not None else target * 0.85
        zones = [(bottom, low, "poor"), (low, target, "ok"), (target, top, "good")]
    rects = [(f(x(s)), f(x(e) - x(s)), c) for s, e, c in zones if e > s]
    if actual is not None:
        rects.append((f(x(min(actual, 0))), f(abs(x(actual) - x(0))),
                      f"{status} edge"))
    rects.append((f(x(target) - 1), "2.2", "ink"))
    return rects


def test_batched_bullets_match_the_chart_by_chart_maths():
    rng = random.Random(11)
    items = []
    for i in range(600):
        direction = ("higher", "lower", "range")[i % 3]
        target = rng.choice([rng.uniform(0.1, 1e6), 100.0, 0.0 if direction == "range" else 5.0,
                             -50.0 if direction == "range" else 1.0])
        actual = None if rng.random() < 0.15 else rng.uniform(-0.5, 2.5) * (target or 1)
        threshold = None if rng.random() < 0.4 else target * (0.7 if direction == "higher"
                                                              else 1.3)
        stretch = None if rng.random() < 0.4 else target * (1.2 if direction == "higher"
                                                            else 0.8)
        target_max = (target + abs(target) * rng.random() if rng.random() < 0.8 else 0.0) \
            if direction == "range" else None
        status = rng.choice(["green", "amber", "red", "none"])
        items.append((actual, target, threshold, stretch, target_max, direction, status,
                      f"KPI {i} & co"))
    items.append((1.0, None, None, None, None, "higher", "none", "no target"))
    drawn = charts.bullets(items)
    for item, svg in zip(items, drawn):
        expected = reference_bullet(*item)
        if expected == "":
            assert svg == ""
            continue
        found = re.findall(r'<rect x="([-\d.]+)" y="[\d.]+" width="([-\d.]+)" '
                           r'height="\d+" class="([a-z -]+)"', svg)
        assert found == expected, item
        assert "KPI" in svg and "&amp; co" in svg
    assert charts.bullet(*items[0]) == drawn[0]


def test_colours_live_in_the_templates_not_in_python():
    """Charts carry classes; every class they use is coloured in templates/charts.css, and no
    hex colour is left in the chart or view code."""
    from pathlib import Path

    from kpireport.report import views

    css = (builtin_templates() / "charts.css").read_text()
    styled = set(re.findall(r"svg \.([a-z0-9-]+)[ ,]", css))
    drawn = "".join(map(str, charts.bullets([(5, 4, 3, 6, None, "higher", s, "x")
                                             for s in charts.STATUSES])))
    drawn += str(charts.sparkline([1, 2, 3], [2, 2, 2], "x"))
    drawn += str(charts.bars([("a", 1, "1", "shade-0"), ("b", 2, "2", "no-score")], "x"))
    used = {c for group in re.findall(r'class="([^"]+)"', drawn) for c in group.split()}
    assert used - {"bullet", "spark", "bars"} <= styled
    assert {views.band_shade(i, 5) for i in range(5)} | {"shade-3"} <= styled
    for module in (charts, views):
        source = Path(module.__file__).read_text()
        assert not re.findall(r'"#[0-9a-fA-F]{3,6}"', source), module.__name__


def test_tenths_in_one_pass_are_the_one_by_one_texts():
    import math

    import numpy as np

    from kpireport.report.charts import _f, _tenths

    values = [0.0, 0.04, 0.05, 0.15, 1.25, 12.345, 399.94, 399.95, 399.999, 400.0, 1234.56,
              -0.04, -0.05, -3.21, math.nan, math.inf, -math.inf, 1e-12]
    assert _tenths(np.array(values)) == [_f(v) for v in values]
    assert _tenths(np.array([], dtype=float)) == []


def test_a_path_looked_up_in_the_points_table_is_the_path_built_point_by_point():
    from kpireport.report.charts import _path, _points, _x_positions

    xs, points = _x_positions(12, 96), _points(12, 96, 24)
    for tenths in ([20] * 12, list(range(20, 240, 18))[:12], [0, 240] * 6, [241] * 12,
                   [5, -1, 7] + [9] * 9, [-2] * 12, [-300, 20] * 6):
        assert _path(xs, tenths, points) == _path(xs, tenths)
