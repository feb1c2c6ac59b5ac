"""Inline SVG charts, drawn from numbers the view model already resolved.

Colours are chosen so that greyscale printing keeps them apart (different lightness), and every
chart also carries its meaning in text or shape, never in colour alone.
"""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup, escape

# Status colours: distinct hue *and* lightness (green dark, amber light, red mid).
STATUS_COLOURS = {"green": "#1b7a43", "amber": "#f2b632", "red": "#c8372d", "none": "#9aa3ad"}
ZONE_POOR, ZONE_OK, ZONE_GOOD = "#e6e8eb", "#cfd4da", "#aeb6bf"
INK = "#1f2a36"


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
    if target is None:
        return Markup("")
    points = [v for v in (actual, target, threshold, stretch, target_max) if v is not None]
    top = max(max(points), 0) * 1.12 or 1.0
    bottom = min(min(points), 0)
    span = top - bottom or 1.0

    def x(value: float) -> float:
        return (value - bottom) / span * width

    zones = []
    if direction == "range":
        zones = [(bottom, target, ZONE_POOR), (target, target_max or target, ZONE_GOOD),
                 (target_max or target, top, ZONE_POOR)]
    elif direction == "lower":
        good_end = stretch if stretch is not None else target * 0.85
        worst = threshold if threshold is not None else target * 1.15
        zones = [(bottom, good_end, ZONE_GOOD), (good_end, target, ZONE_GOOD),
                 (target, worst, ZONE_OK), (worst, top, ZONE_POOR)]
    else:
        low = threshold if threshold is not None else target * 0.85
        zones = [(bottom, low, ZONE_POOR), (low, target, ZONE_OK), (target, top, ZONE_GOOD)]
    text = escape(label)
    parts = [f'<svg class="bullet" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
             f'role="img" aria-label="{text}"><title>{text}</title>']
    zone_height = height - 6
    for start, end, colour in zones:
        if end > start:
            left = (start - bottom) / span * width
            parts.append(f'<rect x="{_f(left)}" y="3" '
                         f'width="{_f((end - bottom) / span * width - left)}" '
                         f'height="{zone_height}" fill="{colour}"/>')
    if actual is not None:
        parts.append(f'<rect x="{_f(x(min(actual, 0)))}" y="{height / 2 - 3.5:.1f}" '
                     f'width="{_f(abs(x(actual) - x(0)))}" height="7" '
                     f'fill="{STATUS_COLOURS.get(status, INK)}" stroke="{INK}" '
                     'stroke-width="0.6"/>')
    parts.append(f'<rect x="{_f(x(target) - 1)}" y="1" width="2.2" height="{height - 2}" '
                 f'fill="{INK}"/></svg>')
    return Markup("".join(parts))


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
    import numpy as np

    out: list[Markup] = [Markup("")] * len(lines)
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
        head = (f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" '
                f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="')
        for j, i in enumerate(members):
            if not drawn[j]:
                continue
            text = escape(lines[i][2])
            parts = [head, text, '"><title>', text, "</title>"]
            if has_target[j]:
                parts += ['<path d="', _path(xs, rows_t[j]), '" fill="none" stroke="#8a94a0" '
                          'stroke-width="1" stroke-dasharray="2 2"/>']
            parts += ['<path d="', _path(xs, rows_v[j]), f'" fill="none" stroke="{INK}" '
                      f'stroke-width="1.4"/><circle cx="{xs[last[j]][:-1]}" '
                      f'cy="{_TENTHS[rows_v[j][last[j]]]}" r="2" fill="{INK}"/></svg>']
            out[i] = Markup("".join(parts))
    return out


def _path(xs: tuple[str, ...], tenths: list[int]) -> str:
    """An SVG path through (xs[i], tenths[i]); -1 (no data) lifts the pen."""
    if -1 not in tenths:
        return "M" + " L".join(map(str.__add__, xs, map(_TENTHS.__getitem__, tenths)))
    parts, pen = [], "M"
    for x, y in zip(xs, tenths):
        if y < 0:
            pen = "M"
            continue
        parts.append(pen + x + _TENTHS[y])
        pen = "L"
    return " ".join(parts)


def bars(items: list[tuple[str, float, str, str]], label: str, width: int = 520,
         row: int = 20, scale_max: float | None = None) -> Markup:
    """Horizontal bars: (label, value, value text, colour)."""
    if not items:
        return Markup("")
    label_w = 170
    top = scale_max or max(v for _, v, _, _ in items) or 1.0
    height = row * len(items) + 4
    usable = width - label_w - 70
    parts = [f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}"><title>{escape(label)}</title>']
    for i, (name, value, text, colour) in enumerate(items):
        y = 2 + i * row
        bar = max(value, 0) / top * usable
        parts.append(f'<text x="{label_w - 6}" y="{y + row * 0.68:.1f}" text-anchor="end" '
                     f'font-size="10" fill="{INK}">{escape(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{_f(bar)}" height="{row - 6}" '
                     f'fill="{colour}" stroke="{INK}" stroke-width="0.5"/>')
        parts.append(f'<text x="{label_w + bar + 5:.1f}" y="{y + row * 0.68:.1f}" '
                     f'font-size="10" fill="{INK}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
