"""Small SVG line charts for the admin, drawn server-side (no plotting library in the web process)."""
from django.utils.html import escape

WIDTH, HEIGHT = 440, 200
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 26, 40  # room for the y labels, the title and the x labels
Y_TICKS = 4
MAX_X_LABELS = 10


def tick_label(value: float, span: float) -> str:
    return f"{value:.{3 if span < 0.1 else 2}f}"


def line_chart_svg(points: list[tuple[int, float]], *, title: str, x_label: str, y_label: str, mark_best: bool = False) -> str:
    """A line over integer x (epochs) with both axes, tick labels and axis titles; with
    `mark_best`, the highest point is ringed and labelled. "" for fewer than two points."""
    if len(points) < 2:
        return ""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    low, high = min(ys), max(ys)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 0.1
    low, high = low - pad, high + pad
    first, last = xs[0], xs[-1]
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at_x(x: float) -> float:
        return LEFT + (x - first) / max(last - first, 1) * plot_width

    def at_y(y: float) -> float:
        return TOP + (1 - (y - low) / (high - low)) * plot_height

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
        'style="background:#fff;border:1px solid #ddd;font:11px sans-serif">',
        f'<text x="{LEFT}" y="16" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_height}" stroke="#555"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_height}" x2="{LEFT + plot_width}" y2="{TOP + plot_height}" stroke="#555"/>',
    ]
    for tick in range(Y_TICKS + 1):
        value = low + (high - low) * tick / Y_TICKS
        y = at_y(value)
        parts.append(f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT + plot_width}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick_label(value, high - low)}</text>')
    step = max(1, -(-(last - first) // (MAX_X_LABELS - 1)))
    for x in range(first, last + 1, step):
        parts.append(f'<line x1="{at_x(x):.1f}" y1="{TOP + plot_height}" x2="{at_x(x):.1f}" y2="{TOP + plot_height + 4}" stroke="#555"/>')
        parts.append(f'<text x="{at_x(x):.1f}" y="{TOP + plot_height + 16}" text-anchor="middle">{x}</text>')
    parts.append(f'<text x="{LEFT + plot_width / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text transform="translate(12 {TOP + plot_height / 2:.1f}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    line = " ".join(f"{at_x(x):.1f},{at_y(y):.1f}" for x, y in points)
    parts.append(f'<polyline fill="none" stroke="#2456d6" stroke-width="2" points="{line}"/>')
    parts.extend(f'<circle cx="{at_x(x):.1f}" cy="{at_y(y):.1f}" r="2.5" fill="#2456d6"/>' for x, y in points)
    if mark_best:
        best_x, best_y = max(points, key=lambda point: (point[1], -point[0]))
        parts.append(f'<circle cx="{at_x(best_x):.1f}" cy="{at_y(best_y):.1f}" r="6" fill="none" stroke="#1a7f37" stroke-width="2"/>')
        parts.append(f'<text x="{LEFT + plot_width}" y="16" text-anchor="end" fill="#1a7f37">best: {best_y:.4f} at {x_label} {best_x}</text>')
    parts.append("</svg>")
    return "".join(parts)
