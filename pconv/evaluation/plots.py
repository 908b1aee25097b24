"""Pictures of an evaluation, drawn with Pillow (no plotting library needed).

- :func:`line_charts`: side-by-side panels of metric vs hole ratio, one line per method.
- :func:`bar_charts`: side-by-side panels of grouped bars, one group per category (e.g. a
  LaMa mask preset), one bar per method: for rows that are not points on an axis.
- :func:`image_grid`: labelled rows × columns of images (examples, mask contact sheets).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Line colours, one per method in order (Tableau 10).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
FONT_SIZE = 14
PANEL_SIZE = (380, 300)
#: Plot-area margins inside a panel: left, top, right, bottom (room for ticks and labels).
MARGINS = (64, 34, 16, 48)
TICKS = 5
#: Relative step sizes a tick interval may take, times a power of ten.
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
LINE_WIDTH = 2
MARKER_RADIUS = 3
LEGEND_ROW = 24
GRID_GAP = 4
LABEL_WIDTH = 130
TITLE_HEIGHT = 22
BACKGROUND = "white"
INK = "black"
GRID_INK = "#dddddd"
FRAME_INK = "#999999"


@dataclass
class Panel:
    """One chart: ``series`` maps a method name to its (xs, ys); NaN ys are left out."""

    title: str
    x_label: str
    series: dict[str, tuple[Sequence[float], Sequence[float]]] = field(default_factory=dict)


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_SIZE)


def nice_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if not high > low:  # one value: centre it in a unit range
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(s * magnitude for s in NICE_STEPS if s * magnitude >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _tick_text(value: float) -> str:
    return f"{value:g}"


def _draw_panel(draw: ImageDraw.ImageDraw, origin: tuple[int, int], panel: Panel) -> None:
    font = _font()
    left, top = origin[0] + MARGINS[0], origin[1] + MARGINS[1]
    right = origin[0] + PANEL_SIZE[0] - MARGINS[2]
    bottom = origin[1] + PANEL_SIZE[1] - MARGINS[3]
    points = [
        (x, y)
        for xs, ys in panel.series.values()
        for x, y in zip(xs, ys, strict=True)
        if math.isfinite(y)
    ]
    xs_all = [x for x, _ in points] or [0.0]
    ys_all = [y for _, y in points] or [0.0]
    x_ticks = nice_ticks(min(xs_all), max(xs_all))
    y_ticks = nice_ticks(min(ys_all), max(ys_all))

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        fx = (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])
        fy = (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])
        return left + fx * (right - left), bottom - fy * (bottom - top)

    for x in x_ticks:
        px, _ = to_pixel(x, y_ticks[0])
        draw.line([(px, top), (px, bottom)], fill=GRID_INK)
        draw.text((px, bottom + 4), _tick_text(x), fill=INK, font=font, anchor="mt")
    for y in y_ticks:
        _, py = to_pixel(x_ticks[0], y)
        draw.line([(left, py), (right, py)], fill=GRID_INK)
        draw.text((left - 6, py), _tick_text(y), fill=INK, font=font, anchor="rm")
    draw.rectangle([left, top, right, bottom], outline=INK)
    centre = (left + right) / 2
    draw.text((centre, origin[1] + 8), panel.title, fill=INK, font=font, anchor="mt")
    draw.text((centre, bottom + 26), panel.x_label, fill=INK, font=font, anchor="mt")
    for colour, (xs, ys) in zip(PALETTE, panel.series.values(), strict=False):
        pixels = [to_pixel(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=LINE_WIDTH, joint="curve")
        for px, py in pixels:
            r = MARKER_RADIUS
            draw.ellipse([px - r, py - r, px + r, py + r], fill=colour)


def _sheet(panels: Sequence, draw_panel) -> Image.Image:
    """The panels side by side, drawn by ``draw_panel(draw, origin, panel)``, with one legend
    of the series (those of the first panel)."""
    names = list(panels[0].series) if panels else []
    width = PANEL_SIZE[0] * max(1, len(panels))
    image = Image.new("RGB", (width, PANEL_SIZE[1] + LEGEND_ROW * (len(names) + 1)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, panel in enumerate(panels):
        draw_panel(draw, (i * PANEL_SIZE[0], 0), panel)
    font = _font()
    for i, (name, colour) in enumerate(zip(names, PALETTE, strict=False)):
        y = PANEL_SIZE[1] + LEGEND_ROW * i + LEGEND_ROW // 2
        x = MARGINS[0]
        draw.line([(x, y), (x + 30, y)], fill=colour, width=LINE_WIDTH + 1)
        draw.text((x + 40, y), name, fill=INK, font=font, anchor="lm")
    return image


def line_charts(panels: Sequence[Panel]) -> Image.Image:
    """The panels side by side with one legend of the methods (those of the first panel)."""
    return _sheet(panels, _draw_panel)


@dataclass
class BarPanel:
    """Grouped bars: ``series`` maps a method name to one value per category (NaN: no bar);
    a category label may hold a second line after a newline."""

    title: str
    categories: Sequence[str]
    series: dict[str, Sequence[float]] = field(default_factory=dict)


#: Fraction of a category's slot that its bars fill.
BAR_GROUP_FILL = 0.8


def _draw_bars(draw: ImageDraw.ImageDraw, origin: tuple[int, int], panel: BarPanel) -> None:
    font = _font()
    left, top = origin[0] + MARGINS[0], origin[1] + MARGINS[1]
    right = origin[0] + PANEL_SIZE[0] - MARGINS[2]
    bottom = origin[1] + PANEL_SIZE[1] - MARGINS[3]
    values = [v for vs in panel.series.values() for v in vs if math.isfinite(v)] or [0.0]
    # Bars start at zero: their lengths are the values.
    y_ticks = nice_ticks(min(0.0, *values), max(0.0, *values))

    def to_y(value: float) -> float:
        return bottom - (value - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (bottom - top)

    for y in y_ticks:
        draw.line([(left, to_y(y)), (right, to_y(y))], fill=GRID_INK)
        draw.text((left - 6, to_y(y)), _tick_text(y), fill=INK, font=font, anchor="rm")
    draw.rectangle([left, top, right, bottom], outline=INK)
    draw.text(((left + right) / 2, origin[1] + 8), panel.title, fill=INK, font=font, anchor="mt")
    slot = (right - left) / max(1, len(panel.categories))
    bar = slot * BAR_GROUP_FILL / max(1, len(panel.series))
    for c, category in enumerate(panel.categories):
        x0 = left + c * slot + slot * (1 - BAR_GROUP_FILL) / 2
        for s, (colour, values) in enumerate(zip(PALETTE, panel.series.values(), strict=False)):
            if math.isfinite(values[c]):
                box = [x0 + s * bar, min(to_y(values[c]), to_y(0.0))]
                box += [x0 + (s + 1) * bar - 1, max(to_y(values[c]), to_y(0.0))]
                draw.rectangle(box, fill=colour)
        for line, text in enumerate(category.split("\n")):
            centre = left + (c + 0.5) * slot
            draw.text((centre, bottom + 4 + line * 16), text, fill=INK, font=font, anchor="mt")


def bar_charts(panels: Sequence[BarPanel]) -> Image.Image:
    """The bar panels side by side with one legend of the methods."""
    return _sheet(panels, _draw_bars)


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str] = (),
    row_labels: Sequence[str] = (),
) -> Image.Image:
    """Images (H×W×3 or H×W uint8, all the same size) in a labelled grid; rows may be short."""
    font = _font()
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    label_width = LABEL_WIDTH if row_labels else 0
    title_height = TITLE_HEIGHT if column_titles else 0
    sheet = Image.new(
        "RGB",
        (
            label_width + columns * (width + GRID_GAP),
            title_height + len(rows) * (height + GRID_GAP),
        ),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(column_titles):
        x = label_width + c * (width + GRID_GAP) + width / 2
        draw.text((x, title_height / 2), title, fill=INK, font=font, anchor="mm")
    for r, row in enumerate(rows):
        y = title_height + r * (height + GRID_GAP)
        if r < len(row_labels):
            draw.text((4, y + height / 2), row_labels[r], fill=INK, font=font, anchor="lm")
        for c, cell in enumerate(row):
            x = label_width + c * (width + GRID_GAP)
            sheet.paste(Image.fromarray(cell), (x, y))
            # A frame keeps white images (masks without holes near the edge) visible.
            draw.rectangle([x - 1, y - 1, x + width, y + height], outline=FRAME_INK)
    return sheet


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
