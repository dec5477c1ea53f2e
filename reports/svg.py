"""Inline-SVG charts for the HTML report (no plotting library, no network): bar histograms, and
log-scale strips of error-to-bound ratios, one strip per ISA level."""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

__all__ = ["LOG_RANGE", "Strip", "histogram", "ratio_bins", "ratio_strips"]


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


LOG_RANGE = (-6, 2)  # decades drawn; smaller ratios share the leftmost bin, larger the rightmost
_PER_DECADE = 4
_N_LOG = (LOG_RANGE[1] - LOG_RANGE[0]) * _PER_DECADE


def ratio_bins(values: list[float]) -> list[int]:
    """Counts per bin: [exactly 0, then quarter decades (a, b] from 1e-6 to 1e2]; every value lands in one
    bin, and 1.0 (error equal to the bound, a pass) in the bin left of the 1.0 line."""
    bins = [0] * (1 + _N_LOG)
    for v in values:
        if v <= 0:
            bins[0] += 1
            continue
        i = math.ceil((math.log10(v) - LOG_RANGE[0]) * _PER_DECADE) - 1 if math.isfinite(v) else _N_LOG - 1
        bins[1 + min(max(i, 0), _N_LOG - 1)] += 1
    return bins


@dataclass
class Strip:
    """One ISA level's cases: worst error/bound ratios against the rigorous bound and its probable tier."""

    label: str
    rigorous: list[float]
    probable: list[float]
    caption: str


def ratio_strips(title: str, strips: list[Strip], *, width: int = 640) -> str:
    """Mirrored bar strips on a log axis: rigorous ratios up (red past 1.0), probable-tier ratios down
    (orange); a bin's height is its count over the strip's fullest bin, so one case is still visible."""
    left, right, head, strip_h, foot = 64, 8, 24, 62, 16
    height = head + strip_h * len(strips) + foot
    bin_w = (width - left - right) / (2 + _N_LOG)  # the 0 bin, a gap, then the log bins

    def x_of(log10: float) -> float:
        return left + bin_w * (2 + (log10 - LOG_RANGE[0]) * _PER_DECADE)

    def x_bin(i: int) -> float:
        return left + bin_w * (i + (i > 0))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="strip" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="4" y="15" font-size="13" font-weight="bold">{escape(title)}</text>']
    for d in range(LOG_RANGE[0], LOG_RANGE[1] + 1, 2):
        x = x_of(d)
        parts.append(f'<line x1="{x:.1f}" y1="{head}" x2="{x:.1f}" y2="{height - foot}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">'
                     f'{"1" if d == 0 else f"1e{d}"}</text>')
    parts.append(f'<text x="{left + bin_w / 2:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">0</text>')
    for k, s in enumerate(strips):
        top = head + k * strip_h
        half = (strip_h - 16) / 2 - 1
        mid = top + half + 1
        parts.append(f'<text x="4" y="{mid + 4:.1f}" font-size="12">{escape(s.label)}</text>'
                     f'<line x1="{left}" y1="{mid:.1f}" x2="{width - right}" y2="{mid:.1f}" stroke="#999"/>'
                     f'<text x="{left}" y="{top + strip_h - 3:.1f}" font-size="10.5" fill="#444">{escape(s.caption)}</text>')
        for values, up, color in ((s.rigorous, True, "#2e86c1"), (s.probable, False, "#e59866")):
            bins = ratio_bins(values)
            fullest = max(max(bins), 1)
            for i, n in enumerate(bins):
                if not n:
                    continue
                h = max(half * n / fullest, 1.5)
                fill = "#c0392b" if up and i > (0 - LOG_RANGE[0]) * _PER_DECADE else color
                parts.append(f'<rect x="{x_bin(i) + 0.5:.1f}" y="{mid - h if up else mid:.1f}" width="{bin_w - 1:.1f}" '
                             f'height="{h:.1f}" fill="{fill}"><title>{n}</title></rect>')
    one = x_of(0)
    parts.append(f'<line x1="{one:.1f}" y1="{head - 4}" x2="{one:.1f}" y2="{height - foot}" stroke="#c0392b" '
                 f'stroke-dasharray="4 2"/><text x="{one + 3:.1f}" y="{head - 6}" font-size="10" fill="#c0392b">'
                 'bound (1.0)</text></svg>')
    return "".join(parts)
