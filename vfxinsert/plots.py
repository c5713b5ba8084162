"""Line plots for the QC report, drawn with numpy and Pillow (no plotting library is a dependency).

A plot has a framed axis box, ticks at round values (1, 2 or 5 times a power of ten) with their
labels and light grid lines on both axes, a title and axis labels.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: Plot size in pixels.
PLOT_SIZE_PX = (520, 280)
LINE_COLOUR = (40, 40, 40)
CHANNEL_COLOURS = ((220, 60, 60), (60, 170, 60), (70, 110, 230))  # R, G, B curves
_GRID = (228, 228, 228)


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values inside [lo, hi]: a step of 1, 2 or 5 x 10^k giving about ``target`` ticks."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    power = 10.0 ** math.floor(math.log10((hi - lo) / target))

    def ticks(step: float) -> list[float]:
        first = math.ceil(lo / step - 1e-9) * step
        return [first + i * step for i in range(int(math.floor((hi - first) / step + 1e-9)) + 1)]

    # the finest round step that gives at most target + 1 ticks (a span always holds 3 or more)
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0) if len(ticks(m * power)) <= target + 1)
    return [0.0 if abs(t) < step * 1e-9 else float(f"{t:.12g}") for t in ticks(step)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def plot_png(series: Sequence[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]], *, title: str,
             x_label: str, y_label: str, diagonal: bool = False) -> np.ndarray:
    """A line plot of ``(x, y, colour)`` series as an (H, W, 3) uint8 image.

    Non-finite points are dropped. ``diagonal``: a light y = x reference line (identity curve).
    """
    from PIL import Image, ImageDraw

    width, height = PLOT_SIZE_PX
    left, right, top, bottom = 66, 14, 24, 40
    pts = []
    for x, y, colour in series:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        finite = np.isfinite(x) & np.isfinite(y)
        if finite.any():
            pts.append((x[finite], y[finite], colour))
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((left, 6), title, fill=LINE_COLOUR)
    box = (left, top, width - right, height - bottom)
    if pts:
        xs = np.concatenate([x for x, _, _ in pts])
        ys = np.concatenate([y for _, y, _ in pts])
        x0, x1 = float(xs.min()), float(xs.max())
        y0, y1 = float(ys.min()), float(ys.max())
        if diagonal:
            y0, y1 = min(y0, x0), max(y1, x1)
        x1 = x1 if x1 > x0 else x0 + 1.0
        y1 = y1 if y1 > y0 else y0 + 1.0

        def to_px(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
            px = left + (x - x0) / (x1 - x0) * (width - right - left)
            py = height - bottom - (y - y0) / (y1 - y0) * (height - bottom - top)
            return list(zip(px.tolist(), py.tolist()))

        for t in nice_ticks(x0, x1):
            (px, _), = to_px(np.array([t]), np.array([y0]))
            draw.line((px, top, px, height - bottom), fill=_GRID)
            draw.line((px, height - bottom, px, height - bottom + 4), fill=LINE_COLOUR)
            text = _label(t)
            draw.text((px - 3 * len(text), height - bottom + 6), text, fill=LINE_COLOUR)
        for t in nice_ticks(y0, y1):
            (_, py), = to_px(np.array([x0]), np.array([t]))
            draw.line((left, py, width - right, py), fill=_GRID)
            draw.line((left - 4, py, left, py), fill=LINE_COLOUR)
            text = _label(t)
            draw.text((left - 6 - 6 * len(text), py - 5), text, fill=LINE_COLOUR)
        if diagonal:
            lo, hi = max(x0, y0), min(x1, y1)
            if hi > lo:
                draw.line(to_px(np.array([lo, hi]), np.array([lo, hi])), fill=(170, 170, 170), width=1)
        for x, y, colour in pts:
            line = to_px(x, y)
            if len(line) == 1:
                draw.point(line, fill=colour)
            else:
                draw.line(line, fill=colour, width=1)
    draw.rectangle(box, outline=LINE_COLOUR)
    draw.text(((width - len(x_label) * 6) // 2, height - 14), x_label, fill=LINE_COLOUR)
    draw.text((4, 8), y_label[:10], fill=LINE_COLOUR)
    return np.asarray(image)

