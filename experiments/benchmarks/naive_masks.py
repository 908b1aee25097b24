"""The baseline of the ``paper`` mask preset: its steering loop as it was before issue 23,
kept literally.

After every stroke it copies the whole canvas (to undo an overshoot) and recounts the hole
ratio of the whole image, and it draws each stroke with its own one-stroke
:meth:`~pconv.data.masks.StrokeMaskGenerator.draw_strokes` call. Given the same random stream,
range and target it makes the same masks as :func:`pconv.data.masks.steered_mask`
(``tests/data/test_masks.py`` checks it); only the cost differs. :class:`NaivePaperMasks` is
the preset as it was: one window over the whole (0.01, 0.6] range, so (0.5, 0.6] got about
14% of the masks instead of 16.9%.
"""

from __future__ import annotations

import numpy as np

from pconv.data.masks import (
    MASK_PRESETS,
    MAX_ATTEMPTS,
    MAX_STALLED_STROKES,
    MAX_STROKES_PER_ATTEMPT,
    MIN_SIZE_FACTOR,
    NO_BORDER_MARGIN,
    OVERSHOOT_SHRINK,
    TARGET_WINDOW,
    VALID,
    MaskGenerationError,
    StrokeMaskGenerator,
    hole_ratio,
    touches_border,
)


def naive_steered_mask(
    generator: StrokeMaskGenerator,
    rng: np.random.Generator,
    height: int,
    width: int,
    low: float,
    high: float,
    border: bool | None = None,
    target: float | None = None,
) -> np.ndarray:
    """:func:`pconv.data.masks.steered_mask` with a whole-canvas copy and count per stroke."""
    if target is None:
        target = high - rng.random() * (high - low)
    half_window = TARGET_WINDOW * (high - low) / 2
    floor, ceiling = max(low, target - half_window), min(high, target + half_window)
    margin = 0 if border is not False else max(1, round(min(height, width) * NO_BORDER_MARGIN))
    for _ in range(MAX_ATTEMPTS):
        mask = np.full((height, width), VALID, np.uint8)
        canvas = mask[margin : height - margin, margin : width - margin]
        ratio, size_factor, on_border, stalled = 0.0, 1.0, bool(border), 0
        for _ in range(MAX_STROKES_PER_ATTEMPT):
            if ratio > floor or size_factor < MIN_SIZE_FACTOR or stalled > MAX_STALLED_STROKES:
                break
            before = canvas.copy()
            generator.draw_strokes(canvas, rng, 1, size_factor, start_on_border=on_border)
            new_ratio = hole_ratio(mask)
            if new_ratio > ceiling:
                canvas[...] = before
                size_factor *= OVERSHOOT_SHRINK
            else:
                stalled = stalled + 1 if new_ratio == ratio else 0
                ratio, on_border = new_ratio, False
        if floor < ratio <= ceiling and border in (None, touches_border(mask)):
            return mask
    raise MaskGenerationError(f"no mask in ({low}, {high}] at {height}x{width}")


class NaivePaperMasks:
    """``gen(rng, height, width)``: a ``paper`` preset mask through :func:`naive_steered_mask`."""

    def __init__(self) -> None:
        self.generator = StrokeMaskGenerator(**MASK_PRESETS["paper"])

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return naive_steered_mask(self.generator, rng, height, width, *self.generator.hole_range)
