"""Inline SVG charts, drawn from numbers the view model already resolved.

Charts carry CSS classes, not colours: templates/charts.css colours them (a status, a zone, a
band shade), so a template author restyles them without touching Python. Every chart also
carries its meaning in text or shape, never in colour alone.
"""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup, escape

# The classes charts.css colours: statuses, bullet zones, ink (ticks, dots and text).
STATUSES = ("green", "amber", "red", "none")
ZONE_POOR, ZONE_OK, ZONE_GOOD = "poor", "ok", "good"
INK = "ink"


# Chart coordinates to one decimal, looked up: float formatting was most of the cost of
# drawing ~20,000 charts for 1,000 people. Rounds half up (a tie may land 0.1 away from
# format(x, ".1f"), which is invisible at this scale); outside 0–400 it formats.
_TENTHS = tuple(f"{i / 10:.1f}" for i in range(4001))


def _f(value: float) -> str:
    if 0 <= value < 400:
        return _TENTHS[int(value * 10 + 0.5)]
    return f"{value:.1f}"


def bullet(actual: float | None, target: float | None, threshold: float | None,
           stretch: float | None, target_max: float | None, direction: str, status: str,
           label: str, width: int = 150, height: int = 22) -> Markup:
    """Bullet chart: qualitative zones, the actual as a bar, the target as a tick."""
    return bullets([(actual, target, threshold, stretch, target_max, direction, status,
                     label)], width, height)[0]


_ZONE_CLASSES = (ZONE_POOR, ZONE_OK, ZONE_GOOD)
_POOR, _OK, _GOOD = range(3)
# Zones of each direction: (start, end, zone) as indexes into the per-chart value columns
# [bottom, top, target, target_max or target, stretch or target × 0.85,
#  threshold or target × 1.15, threshold or target × 0.85].
_ZONES = {
    "range": ((0, 2, _POOR), (2, 3, _GOOD), (3, 1, _POOR)),
    "lower": ((0, 4, _GOOD), (4, 2, _GOOD), (2, 5, _OK), (5, 1, _POOR)),
    "higher": ((0, 6, _POOR), (6, 2, _OK), (2, 1, _GOOD)),
}


def bullets(items: list[tuple], width: int = 150, height: int = 22) -> list[Markup]:
    """:func:`bullet` of many (actual, target, threshold, stretch, target_max, direction,
    status, label) at once: every coordinate in one numpy pass, then text.

    The scale runs from min(0, all values) to max(0, all values) × 1.12; missing
    thresholds and stretches are drawn at ±15% of the target.
    """
    # lazy: numpy is loaded only where it is used (start-up stays light)
    import numpy as np

    out: list[Markup] = [Markup("")] * len(items)
    drawn = [i for i, c in enumerate(items) if c[1] is not None]
    if not drawn:
        return out
    values = np.array([c[:5] for c in (items[i] for i in drawn)], dtype=float)
    actual, target, threshold, stretch, target_max = values.T
    top = np.fmax.reduce(values, axis=1)  # NaN-skipping
    top = np.maximum(top, 0) * 1.12
    top = np.where(top == 0, 1.0, top)
    bottom = np.minimum(np.fmin.reduce(values, axis=1), 0)
    span = top - bottom
    span = np.where(span == 0, 1.0, span)
    columns = np.stack([
        bottom, top, target,
        np.where(np.isnan(target_max) | (target_max == 0), target, target_max),
        np.where(np.isnan(stretch), target * 0.85, stretch),
        np.where(np.isnan(threshold), target * 1.15, threshold),
        np.where(np.isnan(threshold), target * 0.85, threshold)], axis=1)
    x = (columns - bottom[:, None]) / span[:, None] * width  # x of every column value
    with np.errstate(invalid="ignore"):
        bar_left = (np.minimum(actual, 0) - bottom) / span * width
        bar_width = np.abs((actual - bottom) / span * width - (0 - bottom) / span * width)
    tick = (target - bottom) / span * width - 1
    bar_left, bar_width, tick = _tenths(bar_left), _tenths(bar_width), _tenths(tick)
    zone_height = height - 6
    # The zone rectangles, zone by zone over the charts of each direction (in each chart's
    # zone order): which are drawn, and their x and width as text, in numpy passes.
    zones: list[list[str]] = [[] for _ in drawn]
    by_direction: dict[str, list[int]] = {}
    for j, i in enumerate(drawn):
        direction = items[i][5]
        by_direction.setdefault(direction if direction in _ZONES else "higher", []).append(j)
    for direction, members in by_direction.items():
        rows = np.array(members)
        for start, end, zone in _ZONES[direction]:
            chosen = rows[columns[rows, end] > columns[rows, start]]
            lefts = x[chosen, start]
            zone_class = _ZONE_CLASSES[zone]
            for j, left, span_text in zip(chosen.tolist(), _tenths(lefts),
                                          _tenths(x[chosen, end] - lefts)):
                zones[j].append(f'<rect x="{left}" y="3" width="{span_text}" '
                                f'height="{zone_height}" class="{zone_class}"/>')
    head = (f'<svg class="bullet" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
            'role="img" aria-label="')
    bar_y = f"{height / 2 - 3.5:.1f}"
    tail = f'" y="1" width="2.2" height="{height - 2}" class="{INK}"/></svg>'
    for j, i in enumerate(drawn):
        chart_actual, *_, status, label = items[i]
        text = escape(label)
        parts = [head, text, '"><title>', text, "</title>", *zones[j]]
        if chart_actual is not None:
            parts.append(f'<rect x="{bar_left[j]}" y="{bar_y}" width="{bar_width[j]}" '
                         f'height="7" class="{status if status in STATUSES else INK} edge" '
                         'stroke-width="0.6"/>')
        parts += ['<rect x="', tick[j], tail]
        out[i] = Markup("".join(parts))
    return out


def _tenths(values) -> list[str]:
    """:func:`_f` of every value of a numpy array, looked up in one pass."""
    # lazy: numpy is loaded only where it is used (start-up stays light)
    import numpy as np

    with np.errstate(invalid="ignore"):
        inside = (values >= 0) & (values < 400)
        index = np.where(inside, values * 10 + 0.5, 0).astype(np.int64)
    texts = _tenths_array()[index].tolist()
    for k in np.flatnonzero(~inside).tolist():  # outside 0–400, or NaN: formatted
        texts[k] = f"{float(values[k]):.1f}"
    return texts


@lru_cache(maxsize=1)
def _tenths_array():
    # lazy: numpy is loaded only where it is used (start-up stays light)
    import numpy as np

    return np.array(_TENTHS, dtype=object)


@lru_cache(maxsize=64)
def _x_positions(n: int, width: int) -> tuple[str, ...]:
    return tuple(f"{2 + i * (width - 4) / (n - 1):.1f}," for i in range(n))


def sparkline(values: list[float | None], targets: list[float | None], label: str,
              width: int = 96, height: int = 24) -> Markup:
    """Monthly actuals as a line, the monthly target as a dashed line; gaps where no data."""
    return sparklines([(values, targets, label)], width, height)[0]


def sparklines(lines: list[tuple[list[float | None], list[float | None], str]],
               width: int = 96, height: int = 24) -> list[Markup]:
    """:func:`sparkline` of many (values, targets, label) at once.

    The coordinates of every line are computed in one numpy pass (report building draws
    ~10,000 sparklines of 12 months each for 1,000 people); y = bottom - (v - low) × scale,
    in tenths, rounded half up and looked up in _TENTHS.
    """
    # lazy: numpy is loaded only where it is used (start-up stays light)
    import numpy as np

    out: list[Markup] = [Markup("")] * len(lines)
    labels: dict[str, Markup] = {}  # a KPI's label, escaped once (the trend is the same)
    by_length: dict[int, list[int]] = {}
    for i, (values, targets, _) in enumerate(lines):
        if len(targets) != len(values):
            raise ValueError("a sparkline needs one target per value")
        by_length.setdefault(len(values), []).append(i)
    for n, members in by_length.items():
        if n == 0:
            continue
        v = np.array([lines[i][0] for i in members], dtype=float).reshape(len(members), n)
        t = np.array([lines[i][1] for i in members], dtype=float).reshape(len(members), n)
        has_value = ~np.isnan(v)
        drawn = has_value.any(axis=1)
        both = np.concatenate([v, t], axis=1)
        low, high = np.fmin.reduce(both, axis=1), np.fmax.reduce(both, axis=1)  # NaN-skipping
        with np.errstate(all="ignore"):
            flat = high == low
            high, low = np.where(flat, high + 1, high), np.where(flat, low - 1, low)
            k = (height - 4) / (high - low) * 10
            base = (height - 2) * 10 + low * k + 0.5
            tenths_v = np.floor(base[:, None] - v * k[:, None])
            tenths_t = np.floor(base[:, None] - t * k[:, None])
        rows_v = np.where(np.isnan(tenths_v), -1, tenths_v).astype(np.int64).tolist()
        rows_t = np.where(np.isnan(tenths_t), -1, tenths_t).astype(np.int64).tolist()
        last = (n - 1 - np.argmax(has_value[:, ::-1], axis=1)).tolist()
        has_target = (~np.isnan(t)).any(axis=1).tolist()
        xs = _x_positions(max(n, 2), width)
        points = _points(max(n, 2), width, height)
        head = (f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" '
                f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="')
        for j, i in enumerate(members):
            if not drawn[j]:
                continue
            label = lines[i][2]
            text = labels.get(label)
            if text is None:
                text = labels[label] = escape(label)
            parts = [head, text, '"><title>', text, "</title>"]
            if has_target[j]:
                parts += ['<path d="', _path(xs, rows_t[j], points), '" class="target" '
                          'stroke-width="1" stroke-dasharray="2 2"/>']
            parts += ['<path d="', _path(xs, rows_v[j], points), '" class="line" '
                      f'stroke-width="1.4"/><circle cx="{xs[last[j]][:-1]}" '
                      f'cy="{_TENTHS[rows_v[j][last[j]]]}" r="2" class="{INK}"/></svg>']
            out[i] = Markup("".join(parts))
    return out


@lru_cache(maxsize=64)
def _points(n: int, width: int, height: int) -> tuple[tuple[str, ...], ...]:
    """Every "x,y" text a sparkline of ``n`` months can pass through: per month, by y in
    tenths (0 to ``height``)."""
    return tuple(tuple(x + y for y in _TENTHS[:height * 10 + 1])
                 for x in _x_positions(n, width))


def _path(xs: tuple[str, ...], tenths: list[int],
          points: tuple[tuple[str, ...], ...] | None = None) -> str:
    """An SVG path through (xs[i], tenths[i]); -1 (no data) lifts the pen. ``points``
    (:func:`_points`) holds the texts of points inside the chart, looked up at once."""
    if -1 not in tenths:
        if points is not None and 0 <= min(tenths) and max(tenths) < len(points[0]):
            return "M" + " L".join(map(tuple.__getitem__, points, tenths))
        return "M" + " L".join(map(str.__add__, xs, map(_TENTHS.__getitem__, tenths)))
    parts, pen = [], "M"
    for x, y in zip(xs, tenths):
        if y < 0:
            pen = "M"
            continue
        parts.append(pen + x + _TENTHS[y])
        pen = "L"
    return " ".join(parts)


def _label_lines(text: str, limit: int) -> list[str]:
    """``text`` wrapped at spaces into at most two lines of ``limit`` characters; what does
    not fit ends in an ellipsis (the full name stays in the chart's tooltip)."""
    lines: list[str] = []
    rest = text
    while rest and len(lines) < 2:
        if len(rest) <= limit:
            lines.append(rest)
            rest = ""
            break
        cut = rest.rfind(" ", 0, limit + 1)
        cut = cut if cut > 0 else limit
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        lines[-1] = lines[-1][:limit - 1].rstrip(" ·,-") + "…"
    return lines


def bars(items: list[tuple[str, float, str, str]], label: str, width: int = 520,
         row: int = 20, scale_max: float | None = None, label_w: int = 170) -> Markup:
    """Horizontal bars: (label, value, value text, class of the bar's colour); names longer
    than the label column allows take two lines, then end in an ellipsis."""
    if not items:
        return Markup("")
    top = scale_max or max(v for _, v, _, _ in items) or 1.0
    limit = int((label_w - 6) / 5.9)  # characters of Noto Sans at 10 px
    labels = [_label_lines(name, limit) for name, _, _, _ in items]
    if any(len(lines) > 1 for lines in labels):
        row = max(row, 26)
    height = row * len(items) + 4
    usable = width - label_w - 70
    parts = [f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}"><title>{escape(label)}</title>']
    for i, (name, value, text, colour_class) in enumerate(items):
        y = 2 + i * row
        bar = max(value, 0) / top * usable
        lines = labels[i]
        if len(lines) == 1:
            parts.append(f'<text x="{label_w - 6}" y="{y + row * 0.5 + 3.5:.1f}" '
                         'text-anchor="end" font-size="10">'
                         f'{escape(lines[0])}</text>')
        else:
            parts.append(f'<text x="{label_w - 6}" y="{y + row * 0.5 - 1:.1f}" '
                         f'text-anchor="end" font-size="9"><title>{escape(name)}'
                         f'</title><tspan x="{label_w - 6}">{escape(lines[0])}</tspan>'
                         f'<tspan x="{label_w - 6}" dy="10">{escape(lines[1])}</tspan></text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{_f(bar)}" height="{row - 6}" '
                     f'class="{colour_class} edge" stroke-width="0.5"/>')
        parts.append(f'<text x="{label_w + bar + 5:.1f}" y="{y + row * 0.5 + 3.5:.1f}" '
                     f'font-size="10">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
