"""A tiny inline-SVG bar chart for the HTML report (no plotting library, no network)."""
from __future__ import annotations

from html import escape

__all__ = ["histogram"]


def histogram(labels: list[str], counts: list[int], *, title: str, subtitle: str = "", width: int = 420,
              height: int = 200, bad_from: int | None = None) -> str:
    """Bars with their counts above and labels below; bars at index >= bad_from are drawn red."""
    n = max(len(counts), 1)
    top = max(max(counts, default=0), 1)
    left, bottom, head = 8, 34, 48 if subtitle else 34
    plot_h = height - bottom - head
    bar_w = (width - 2 * left) / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<rect width="{width}" height="{height}" fill="#fff" stroke="#ccc"/>',
             f'<text x="{width / 2:.1f}" y="15" text-anchor="middle" font-size="12" font-weight="bold">{escape(title)}</text>']
    if subtitle:
        parts.append(f'<text x="{width / 2:.1f}" y="30" text-anchor="middle" font-size="11">{escape(subtitle)}</text>')
    for i, c in enumerate(counts):
        h = (plot_h - 12) * c / top  # room for the count above the tallest bar
        x = left + i * bar_w
        y = head + plot_h - h
        color = "#c0392b" if bad_from is not None and i >= bad_from else "#2e86c1"
        parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{max(bar_w - 4, 1):.1f}" height="{h:.1f}" fill="{color}">'
                     f'<title>{escape(labels[i])}: {c}</title></rect>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 2:.1f}" text-anchor="middle" font-size="10">{c}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14:.1f}" text-anchor="middle" '
                     f'font-size="9">{escape(labels[i])}</text>')
    parts.append(f'<line x1="{left}" y1="{head + plot_h}" x2="{width - left}" y2="{head + plot_h}" stroke="#333"/>')
    parts.append("</svg>")
    return "".join(parts)
