"""Pillow charts and grids."""

from __future__ import annotations

import numpy as np
import pytest

from pconv.evaluation.plots import (
    PANEL_SIZE,
    BarPanel,
    Panel,
    bar_charts,
    image_grid,
    line_charts,
    nice_ticks,
)


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.03, 0.55) == [0.0, 0.2, 0.4, 0.6]
    assert nice_ticks(17.2, 38.9) == [15.0, 20.0, 25.0, 30.0, 35.0, 40.0]
    assert nice_ticks(2.0, 2.0) == [1.4, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6]  # one value: centred


def test_line_charts_draw_each_series_in_its_colour():
    panels = [Panel("PSNR", "hole ratio", {"a": ([0.1, 0.5], [30, 20]), "b": ([0.1], [25])})]
    image = np.asarray(line_charts(panels))
    assert image.shape[1] == PANEL_SIZE[0]
    blue, orange = np.array([0x1F, 0x77, 0xB4]), np.array([0xFF, 0x7F, 0x0E])
    assert (image == blue).all(axis=2).sum() > 50  # the line of "a"
    assert (image == orange).all(axis=2).sum() > 10  # the marker of "b"


def test_image_grid_places_every_cell():
    red = np.zeros((10, 12, 3), np.uint8)
    red[..., 0] = 255
    grid = np.asarray(image_grid([[red, red], [red]]))
    assert (grid == [255, 0, 0]).all(axis=2).sum() == 3 * 10 * 12


def test_bar_charts_draw_one_bar_per_method_and_category_with_proportional_heights():
    panel = BarPanel("PSNR", ["thin\nratio 0.10", "thick\nratio 0.40"], {"a": [10, 20]})
    panel.series["b"] = [15, float("nan")]  # no bar for a missing value
    image = np.asarray(bar_charts([panel]))
    blue, orange = np.array([0x1F, 0x77, 0xB4]), np.array([0xFF, 0x7F, 0x0E])
    is_blue = (image == blue).all(axis=2)
    columns = np.nonzero(is_blue.any(axis=0))[0]
    gaps = np.nonzero(np.diff(columns) > 1)[0]
    assert len(gaps) == 1  # two blue bars, one per category
    first, second = columns[: gaps[0] + 1], columns[gaps[0] + 1 :]
    heights = [is_blue[:, c].sum() for c in (first[len(first) // 2], second[len(second) // 2])]
    assert heights[1] / heights[0] == pytest.approx(2.0, rel=0.03)  # bars start at zero
    is_orange = (image[: PANEL_SIZE[1]] == orange).all(axis=2)  # above the legend
    orange_columns = np.nonzero(is_orange.any(axis=0))[0]
    assert orange_columns.size and orange_columns.max() < second.min()  # only category 1
