"""Charts: the batched sparklines draw what a plain per-point loop draws."""

from __future__ import annotations

import random
import re

from kpireport import charts


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
