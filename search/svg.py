"""Small server-side SVG charts for the analytics dashboard: bars or lines over labelled
x positions (days, versions, bins), with titled axes, ticks and a legend."""
import math

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 56
COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1")
MAX_X_LABELS = 10


def nice_ticks(high: float, *, count: int = 5) -> list[float]:
    """0 and round steps (1, 2 or 5 × 10^n) up to at least `high`."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    return [round(step * index, 10) for index in range(math.ceil(high / step - 1e-9) + 1)]


def tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.001 or value == 0 else f"{value:.1e}"


def chart(*, title: str, x_labels: list[str], series: dict[str, list[float | None]], x_title: str, y_title: str, kind: str = "line") -> SafeString:
    """An SVG chart; `kind` is "line" (one line per series, gaps at None) or "bar" (the first series)."""
    values = [value for points in series.values() for value in points if value is not None]
    ticks = nice_ticks(max(values, default=0.0))
    top_value = ticks[-1]
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(x_labels), 1)

    def x(index: int) -> float:
        return LEFT + slot * (index + 0.5)

    def y(value: float) -> float:
        return TOP + plot_height * (1 - value / top_value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e2e8f0"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick_label(tick)}</text>')
    every = max(1, math.ceil(len(x_labels) / MAX_X_LABELS))
    for index, label in enumerate(x_labels):
        if index % every == 0:
            parts.append(f'<line x1="{x(index):.1f}" x2="{x(index):.1f}" y1="{TOP + plot_height}" y2="{TOP + plot_height + 4}" stroke="#4a5568"/>')
            parts.append(f'<text class="tick" x="{x(index):.1f}" y="{TOP + plot_height + 16}" text-anchor="middle">{escape(label)}</text>')
    parts += [
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_height}" stroke="#4a5568"/>',
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_height}" y2="{TOP + plot_height}" stroke="#4a5568"/>',
        f'<text class="axis-title" x="{LEFT + plot_width / 2}" y="{HEIGHT - 12}" text-anchor="middle">{escape(x_title)}</text>',
        f'<text class="axis-title" transform="translate(14 {TOP + plot_height / 2}) rotate(-90)" text-anchor="middle">{escape(y_title)}</text>',
    ]
    if kind == "bar":
        points = next(iter(series.values()), [])
        for index, value in enumerate(points):
            if value:
                parts.append(
                    f'<rect x="{x(index) - slot * 0.4:.1f}" y="{y(value):.1f}" width="{slot * 0.8:.1f}" height="{TOP + plot_height - y(value):.1f}" fill="{COLOURS[0]}">'
                    f"<title>{escape(x_labels[index])}: {value:g}</title></rect>"
                )
    else:
        for number, (name, points) in enumerate(series.items()):
            colour = COLOURS[number % len(COLOURS)]
            runs, run = [], []
            for index, value in enumerate(points):
                if value is None:
                    runs.append(run)
                    run = []
                else:
                    run.append(f"{x(index):.1f},{y(value):.1f}")
            runs.append(run)
            for run in runs:
                if len(run) > 1:
                    parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2"/>')
                for point in run:
                    cx, cy = point.split(",")
                    parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            if len(series) > 1:
                legend_x = LEFT + 8 + number * 130
                parts.append(f'<rect x="{legend_x}" y="{TOP - 12}" width="10" height="10" fill="{colour}"/>')
                parts.append(f'<text x="{legend_x + 14}" y="{TOP - 3}">{escape(name)}</text>')
    if not values:
        parts.append(f'<text x="{LEFT + plot_width / 2}" y="{TOP + plot_height / 2}" text-anchor="middle" fill="#718096">no data yet</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
