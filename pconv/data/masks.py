"""Irregular hole masks: a random brush-stroke generator, its presets and bucketed eval masks.

Convention (DESIGN.md): a mask is an H×W ``uint8`` array, 1 = valid pixel, 0 = hole.

:class:`StrokeMaskGenerator` draws polylines of random width with round joints (OpenCV draws
round caps at every vertex of a thick polyline), optionally plus filled boxes, ellipses and
circles. Sizes are given in pixels *at a reference size* (the shorter image side, 256 by
default) and scaled to the requested size, so one preset works at 256 and at 512.

Evaluation masks are deterministic: :func:`eval_mask` derives mask ``index`` of a split from
``(seed, index)`` alone, with :func:`bucketed_mask` steering the hole ratio into one of the
paper's buckets and the holes onto or away from the image border.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pconv.data.buckets import BUCKETS, NUM_BUCKETS

VALID = 1
HOLE = 0

#: Shape kinds :class:`StrokeMaskGenerator` can add besides strokes.
SHAPE_KINDS = ("box", "ellipse", "circle")
#: Number of evaluation splits: holes away from the border (0) and touching it (1).
NUM_BORDER_SPLITS = 2


#: The two colours of the checkerboard that shows holes in pictures (RGB uint8): magenta, the
#: app's brush colour, and black. A pattern, not one colour: a white hole vanished on white
#: backgrounds, and no photo region is a fine magenta-and-black checkerboard.
HOLE_PATTERN_COLOURS = ((255, 0, 255), (0, 0, 0))
#: Squares of the pattern: at least this many pixels, and about 1/64 of the shorter side.
HOLE_PATTERN_MIN_SQUARE = 4


def hole_pattern(height: int, width: int) -> np.ndarray:
    """The H×W×3 uint8 checkerboard that pictures show in place of hole pixels."""
    square = max(HOLE_PATTERN_MIN_SQUARE, min(height, width) // 64)
    rows, cols = np.indices((height, width)) // square
    colours = np.array(HOLE_PATTERN_COLOURS, dtype=np.uint8)
    return colours[(rows + cols) % 2]


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a uint8 {0,1} mask, in [0, 1]."""
    return 1.0 - cv2.countNonZero(mask) / mask.size


def touches_border(mask: np.ndarray) -> bool:
    """True when any hole pixel lies in the outermost row or column of the mask."""
    return bool(
        (mask[0] == HOLE).any()
        or (mask[-1] == HOLE).any()
        or (mask[:, 0] == HOLE).any()
        or (mask[:, -1] == HOLE).any()
    )


def _uniform_int(u: np.ndarray, low: int, high: int) -> np.ndarray:
    """Map uniforms in [0, 1) to integers in [low, high] (inclusive)."""
    return low + np.minimum((u * (high - low + 1)).astype(np.int64), high - low)


@dataclass(frozen=True)
class StrokeShapes:
    """What a batch of strokes is, before it is placed and scaled on a canvas.

    ``u``: the (count, columns) uniforms they come from; ``vertices``: points per stroke;
    ``widths``: brush widths at the reference size (count,); ``directions``: (2, count,
    segments) unit cos (plane 0) and sin (plane 1) of each segment; ``lengths``: (count,
    segments) at the reference size, 0 past a stroke's last vertex.
    """

    u: np.ndarray
    vertices: list[int]
    widths: np.ndarray
    directions: np.ndarray
    lengths: np.ndarray


class StrokeMaskGenerator:
    """Random brush-stroke masks: ``gen(rng, height, width) -> H×W uint8``, 1 valid, 0 hole.

    Every length below is in pixels at ``reference_size`` (the shorter image side) and is
    scaled linearly to the requested size.

    Args:
        min_strokes, max_strokes: number of strokes per mask (inclusive range).
        min_vertices, max_vertices: vertices per stroke (2 = a single segment).
        min_length, max_length: length of each segment.
        min_width, max_width: brush width of a stroke.
        max_turn: largest change of direction between two segments, radians.
        shape_probability: probability that a mask also gets filled shapes (with
            ``shapes_alone``: gets shapes instead of strokes).
        shapes_alone: a mask holds strokes or shapes, never both, as LaMa's mixed generator
            picks one kind per mask.
        clip_strokes: each segment ends inside the image (LaMa clips every end point), so a
            stroke turns at the edge instead of leaving the picture.
        max_hole_ratio: masks with a larger hole ratio are drawn again (LaMa's
            ``max_tamper_area``); None keeps every mask.
        min_shapes, max_shapes: number of shapes when it does.
        min_shape_size, max_shape_size: side of a box, diameter of a circle or ellipse axis.
        shape_kinds: which of :data:`SHAPE_KINDS` to draw from.
        reference_size: the image side the lengths above are given for.
        hole_range: (low, high) hole ratios. When set, each mask aims at a ratio drawn
            uniformly in (low, high] and strokes are added one at a time until it lands
            near it, inside the paper bucket of that ratio (:func:`steered_mask`,
            :func:`bucket_cell`), so every bucket gets exactly its width's share;
            ``min_strokes``/``max_strokes`` are then unused and shapes are not allowed.
    """

    def __init__(
        self,
        min_strokes: int = 1,
        max_strokes: int = 5,
        min_vertices: int = 2,
        max_vertices: int = 6,
        min_length: float = 10.0,
        max_length: float = 100.0,
        min_width: float = 5.0,
        max_width: float = 50.0,
        max_turn: float = math.pi / 2,
        shape_probability: float = 0.0,
        min_shapes: int = 1,
        max_shapes: int = 3,
        min_shape_size: float = 10.0,
        max_shape_size: float = 50.0,
        shape_kinds: Sequence[str] = SHAPE_KINDS,
        reference_size: int = 256,
        hole_range: tuple[float, float] | None = None,
        shapes_alone: bool = False,
        clip_strokes: bool = False,
        max_hole_ratio: float | None = None,
    ) -> None:
        unknown = set(shape_kinds) - set(SHAPE_KINDS)
        if unknown:
            raise ValueError(f"unknown shape kinds {sorted(unknown)}; valid: {SHAPE_KINDS}")
        if not 0 <= min_strokes <= max_strokes or not 2 <= min_vertices <= max_vertices:
            raise ValueError("need 0 <= min_strokes <= max_strokes and 2 <= min_vertices <= max")
        if hole_range is not None:
            if not 0 <= hole_range[0] < hole_range[1] <= 1:
                raise ValueError(f"hole_range must satisfy 0 <= low < high <= 1, got {hole_range}")
            if shape_probability > 0:
                raise ValueError("hole_range steers strokes only; set shape_probability=0")
        self.min_strokes, self.max_strokes = min_strokes, max_strokes
        self.min_vertices, self.max_vertices = min_vertices, max_vertices
        self.min_length, self.max_length = min_length, max_length
        self.min_width, self.max_width = min_width, max_width
        self.max_turn = max_turn
        self.shape_probability = shape_probability
        self.min_shapes, self.max_shapes = min_shapes, max_shapes
        self.min_shape_size, self.max_shape_size = min_shape_size, max_shape_size
        self.shape_kinds = tuple(shape_kinds)
        self.reference_size = reference_size
        self.hole_range = None if hole_range is None else tuple(hole_range)
        self.shapes_alone, self.clip_strokes = shapes_alone, clip_strokes
        if max_hole_ratio is not None and not 0 < max_hole_ratio <= 1:
            raise ValueError(f"max_hole_ratio must be in (0, 1], got {max_hole_ratio}")
        self.max_hole_ratio = max_hole_ratio

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A fresh H×W uint8 mask (1 valid, 0 hole)."""
        if self.hole_range is not None:
            low, high = self.hole_range
            target = high - rng.random() * (high - low)  # uniform in (low, high]
            # A mask lands just past its window's lower end, so a window across a bucket edge
            # would hand the upper bucket's share down: keep each mask in its target's bucket.
            cell_low, cell_high = bucket_cell(target, low, high)
            window = TARGET_WINDOW * (high - low) / 2
            return steered_mask(self, rng, height, width, cell_low, cell_high, None, target, window)
        while True:
            mask = self._draw(rng, height, width)
            if self.max_hole_ratio is None or hole_ratio(mask) <= self.max_hole_ratio:
                return mask

    def _draw(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        mask = np.full((height, width), VALID, np.uint8)
        if self.shapes_alone:
            # LaMa's choice of one kind: strokes with weight 1, shapes with shape_probability.
            if rng.random() < self.shape_probability / (1 + self.shape_probability):
                self.draw_shapes(mask, rng, int(rng.integers(self.min_shapes, self.max_shapes + 1)))
            else:
                self.draw_strokes(
                    mask, rng, int(rng.integers(self.min_strokes, self.max_strokes + 1))
                )
            return mask
        n_strokes = int(rng.integers(self.min_strokes, self.max_strokes + 1))
        self.draw_strokes(mask, rng, n_strokes)
        if self.shape_probability > 0 and rng.random() < self.shape_probability:
            self.draw_shapes(mask, rng, int(rng.integers(self.min_shapes, self.max_shapes + 1)))
        return mask

    def _scale(self, mask: np.ndarray) -> float:
        return min(mask.shape) / self.reference_size

    @property
    def stroke_columns(self) -> int:
        """Uniforms one stroke takes: start (2), vertices, width, then a turn and a length per
        segment."""
        return 4 + 2 * (self.max_vertices - 1)

    def stroke_shapes(self, u: np.ndarray) -> StrokeShapes:
        """The parts of the strokes of uniforms ``u`` (count, :attr:`stroke_columns`) that do
        not depend on the canvas: see :class:`StrokeShapes`.

        A steered mask calls this for every few strokes, and at this size a numpy call costs
        more than its arithmetic, so calls are few. Every value is the one the plain formula
        gives, bit for bit (``2u``, ``2π`` and ``2u - 1`` are exact), so masks never change.
        """
        segments = self.max_vertices - 1
        spread = self.max_vertices - self.min_vertices
        extra = np.minimum((u[:, 2] * (spread + 1)).astype(np.intp), spread)
        # Widths and lengths: low + u * (high - low), one column each, in one pass.
        low, span = _affine_rows(
            self.min_width, self.max_width, self.min_length, self.max_length, self.max_vertices
        )
        sized = low + u * span
        turns = (2 * u[:, 4 : 4 + segments] - 1) * self.max_turn
        # The first "turn" is the stroke's initial direction, uniform over the circle.
        turns[:, 0] = u[:, 4] * (2 * math.pi)
        angles = np.cumsum(turns, axis=1, out=turns)
        lengths = sized[:, 4 + segments :]
        # Segments past a stroke's last vertex have length 0: its last point repeats.
        lengths *= _live_segments(spread, self.min_vertices, segments)[extra]
        directions = np.empty((2, len(u), segments))
        np.cos(angles, out=directions[0])
        np.sin(angles, out=directions[1])
        return StrokeShapes(
            u=u,
            vertices=(extra + self.min_vertices).tolist(),
            widths=sized[:, 3],
            directions=directions,
            lengths=lengths,
        )

    def stroke_geometry(
        self,
        shapes: StrokeShapes,
        height: int,
        width: int,
        size_factor: float = 1.0,
        start_on_border: bool = False,
    ) -> tuple[np.ndarray, list[int]]:
        """``shapes`` placed on a ``height``×``width`` canvas: ``(points, widths)``.

        ``points`` is (count, max_vertices, 2) int32 x, y; stroke ``i`` uses its first
        ``shapes.vertices[i]`` points. ``widths`` are brush widths in pixels.
        ``size_factor`` multiplies widths and lengths (used to steer the hole ratio);
        ``start_on_border`` starts every stroke on a random point of the border.
        """
        u = shapes.u
        scale = min(height, width) / self.reference_size * size_factor
        # x and y planes, each contiguous: (2, count, max_vertices).
        points = np.empty((2, len(u), self.max_vertices))
        if start_on_border:
            points[:, :, 0] = _border_points(u[:, 0], u[:, 1], height, width).T
        else:
            points[:, :, 0] = u[:, :2].T * ((width,), (height,))
        np.multiply(shapes.directions, shapes.lengths * scale, out=points[:, :, 1:])
        if self.clip_strokes:
            bounds = ((width - 1,), (height - 1,))
            for k in range(1, self.max_vertices):  # each end clipped before the next starts
                ends = points[:, :, k]
                np.clip(ends + points[:, :, k - 1], 0, bounds, out=ends)
        else:
            np.cumsum(points, axis=2, out=points)
        # Python ints (round() halves to even, as np.rint): indexing with numpy scalars costs
        # more than drawing a short stroke.
        brush = [max(1, round(w * scale)) for w in shapes.widths.tolist()]
        np.rint(points, out=points)
        return points.transpose(1, 2, 0).astype(np.int32, order="C"), brush

    def draw_strokes(
        self,
        mask: np.ndarray,
        rng: np.random.Generator,
        count: int,
        size_factor: float = 1.0,
        start_on_border: bool = False,
    ) -> None:
        """Draw ``count`` strokes into ``mask`` in place (see :meth:`stroke_geometry`).

        All random numbers of a call come from one ``rng.random`` draw: per-call overhead,
        not rasterisation, dominates small strokes.
        """
        if count == 0:
            return
        shapes = self.stroke_shapes(rng.random((count, self.stroke_columns)))
        points, widths = self.stroke_geometry(shapes, *mask.shape, size_factor, start_on_border)
        for stroke, n, w in zip(points, shapes.vertices, widths, strict=True):
            cv2.polylines(mask, [stroke[:n]], False, HOLE, w)

    def draw_shapes(
        self, mask: np.ndarray, rng: np.random.Generator, count: int, size_factor: float = 1.0
    ) -> None:
        """Draw ``count`` filled boxes, ellipses or circles into ``mask`` in place."""
        if count == 0:
            return
        height, width = mask.shape
        scale = self._scale(mask) * size_factor
        u = rng.random((count, 6))
        kinds = _uniform_int(u[:, 0], 0, len(self.shape_kinds) - 1)
        span = self.max_shape_size - self.min_shape_size
        sizes = (self.min_shape_size + u[:, 1:3] * span) * scale
        centres = u[:, 3:5] * (width, height)
        angles = u[:, 5] * 180.0
        for kind, (sx, sy), (cx, cy), angle in zip(kinds, sizes, centres, angles, strict=True):
            name = self.shape_kinds[kind]
            if name == "box":
                top_left = (round(cx - sx / 2), round(cy - sy / 2))
                bottom_right = (round(cx + sx / 2), round(cy + sy / 2))
                cv2.rectangle(mask, top_left, bottom_right, HOLE, cv2.FILLED)
            else:
                axes = (round(sx / 2), round((sx if name == "circle" else sy) / 2))
                cv2.ellipse(
                    mask, (round(cx), round(cy)), axes, float(angle), 0, 360, HOLE, cv2.FILLED
                )


@functools.cache
def _live_segments(spread: int, min_vertices: int, segments: int) -> np.ndarray:
    """Row ``n``: 1.0 for the segments of a stroke of ``min_vertices + n`` vertices, 0.0 past
    them (a product with 1.0 or 0.0 is exact)."""
    vertices = np.arange(spread + 1)[:, None] + min_vertices
    return (np.arange(segments) < vertices - 1).astype(float)


@functools.cache
def _affine_rows(
    min_width: float, max_width: float, min_length: float, max_length: float, max_vertices: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, span)`` rows mapping stroke uniforms to widths (column 3) and segment lengths
    (the last ``max_vertices - 1`` columns); other columns pass through."""
    segments = max_vertices - 1
    low, span = np.zeros(4 + 2 * segments), np.ones(4 + 2 * segments)
    low[3], span[3] = min_width, max_width - min_width
    low[4 + segments :], span[4 + segments :] = min_length, max_length - min_length
    return low, span


def _border_points(u_side: np.ndarray, u_pos: np.ndarray, height: int, width: int) -> np.ndarray:
    """Points on the image border: side chosen by ``u_side``, position along it by ``u_pos``."""
    side = _uniform_int(u_side, 0, 3)
    x = np.where(side == 0, 0, np.where(side == 1, width - 1, u_pos * (width - 1)))
    y = np.where(side == 2, 0, np.where(side == 3, height - 1, u_pos * (height - 1)))
    return np.stack([x, y], axis=1)


#: Constructor arguments of the named presets (lengths at 256 px, scaled to the image).
#: ``paper`` spreads hole ratios uniformly over the paper's 1-60% range (every bucket gets
#: its share, (0.5, 0.6] included); ``thin``/``medium``/``thick`` follow LaMa's random mask
#: presets (strokes plus, for medium/thick, boxes).
MASK_PRESETS: dict[str, dict] = {
    "paper": dict(
        min_vertices=2,
        max_vertices=6,
        min_length=15.0,
        max_length=70.0,
        min_width=6.0,
        max_width=45.0,
        max_turn=math.pi / 2,
        hole_range=(0.01, 0.6),
    ),
    # LaMa's configs/data_gen/random_{thin,medium,thick}_256.yaml: strokes of 1-5 segments,
    # LaMa's lengths 10 + randint(max_len) and widths 5 + randint(max_width); boxes (LaMa's
    # box_proba 0.3 against irregular_proba 1) instead of strokes in about 23% of masks;
    # masks over half hole drawn again (max_tamper_area 0.5). LaMa turns by whole radians
    # from fixed directions; here a stroke turns by up to half a circle at each vertex.
    "thin": dict(
        min_strokes=4,
        max_strokes=50,
        min_vertices=2,
        max_vertices=6,
        min_length=10.0,
        max_length=49.0,
        min_width=5.0,
        max_width=14.0,
        max_turn=math.pi,
        clip_strokes=True,
        max_hole_ratio=0.5,
    ),
    "medium": dict(
        min_strokes=4,
        max_strokes=5,
        min_vertices=2,
        max_vertices=6,
        min_length=10.0,
        max_length=109.0,
        min_width=5.0,
        max_width=54.0,
        max_turn=math.pi,
        shape_probability=0.3,
        shapes_alone=True,
        min_shapes=1,
        max_shapes=5,
        min_shape_size=10.0,
        max_shape_size=49.0,
        shape_kinds=("box",),
        clip_strokes=True,
        max_hole_ratio=0.5,
    ),
    "thick": dict(
        min_strokes=1,
        max_strokes=5,
        min_vertices=2,
        max_vertices=6,
        min_length=10.0,
        max_length=209.0,
        min_width=5.0,
        max_width=104.0,
        max_turn=math.pi,
        shape_probability=0.3,
        shapes_alone=True,
        min_shapes=1,
        max_shapes=3,
        min_shape_size=30.0,
        max_shape_size=149.0,
        shape_kinds=("box",),
        clip_strokes=True,
        max_hole_ratio=0.5,
    ),
}


def make_mask_generator(preset: str, **overrides) -> StrokeMaskGenerator:
    """The generator of a named preset (see :data:`MASK_PRESETS`), with keyword overrides."""
    if preset not in MASK_PRESETS:
        raise ValueError(
            f"unknown mask preset {preset!r}; valid presets: {', '.join(sorted(MASK_PRESETS))}"
        )
    return StrokeMaskGenerator(**{**MASK_PRESETS[preset], **overrides})


#: Hole-free margin around masks of the "no border" split, as a fraction of the shorter side.
NO_BORDER_MARGIN = 1 / 64
#: Width of the window a bucketed mask's ratio must land in around its target, as a fraction
#: of the bucket's width: narrow enough to follow the target, wide enough to be quick.
TARGET_WINDOW = 0.1
#: Factor applied to stroke size after a stroke overshoots the target window.
OVERSHOOT_SHRINK = 0.5
#: Below this size factor a stroke barely adds pixels: start the mask over instead.
MIN_SIZE_FACTOR = 1 / 64
#: The golden ratio's fractional part: multiples of it, mod 1, fill [0, 1) evenly.
GOLDEN = (math.sqrt(5) - 1) / 2
#: The paper buckets' edges, ascending.
_BUCKET_EDGES = sorted({edge for bucket in BUCKETS for edge in bucket})
#: Tags the random stream of :func:`eval_mask`'s target offsets.
_TARGET_STREAM = 13
#: Bounds that keep :func:`bucketed_mask` finite.
MAX_STROKES_PER_ATTEMPT = 2000
MAX_ATTEMPTS = 20
#: Strokes in a row that add no hole pixel: the canvas is saturated, start over.
MAX_STALLED_STROKES = 50


#: Strokes taken from the random stream at once while steering: about what a mask needs.
STROKE_BLOCK = 24
#: Pixels beyond half the brush width that OpenCV's round stroke ends may cover.
BOX_PAD = 2


class _StrokeFeed:
    """The strokes of one steered mask, one at a time, each with the box it can change.

    Per-call numpy overhead, not drawing, dominates a one-stroke :meth:`draw_strokes` call,
    so uniforms come from ``rng`` ``STROKE_BLOCK`` strokes at a time, their shapes are
    computed once per block and their placement once per block and size factor. Row k of a
    block holds the uniforms the k-th one-stroke ``rng.random`` draw would get, so masks are
    those of drawing strokes one by one.
    """

    def __init__(
        self, generator: StrokeMaskGenerator, rng: np.random.Generator, height: int, width: int
    ) -> None:
        self.generator, self.rng, self.height, self.width = generator, rng, height, width
        self.row = self.rows = 0
        self.key: tuple[float, bool] | None = None

    def next(
        self, size_factor: float, on_border: bool
    ) -> tuple[np.ndarray, int, tuple[int, int, int, int]]:
        """The next stroke: ``(points, brush width, (x0, y0, x1, y1))``, the box clipped to
        the canvas and holding every pixel the stroke can cover."""
        if self.row == self.rows:
            u = self.rng.random((STROKE_BLOCK, self.generator.stroke_columns))
            self.shapes = self.generator.stroke_shapes(u)
            self.row, self.rows, self.key = 0, STROKE_BLOCK, None
        if self.key != (size_factor, on_border):
            self.points, self.widths = self.generator.stroke_geometry(
                self.shapes, self.height, self.width, size_factor, on_border
            )
            self.key = (size_factor, on_border)
        row, self.row = self.row, self.row + 1
        stroke = self.points[row, : self.shapes.vertices[row]]
        brush = self.widths[row]
        x, y, w, h = cv2.boundingRect(stroke)
        pad = brush // 2 + BOX_PAD
        box = (
            max(x - pad, 0),
            max(y - pad, 0),
            min(x + w + pad, self.width),
            min(y + h + pad, self.height),
        )
        return stroke, brush, box


class MaskGenerationError(RuntimeError):
    """A bucketed mask could not be made within the attempt budget."""


def bucketed_mask(
    generator: StrokeMaskGenerator,
    rng: np.random.Generator,
    height: int,
    width: int,
    bucket: int,
    border: bool,
    target: float | None = None,
) -> np.ndarray:
    """An H×W uint8 mask whose hole ratio lies in ``BUCKETS[bucket]`` (low, high], close to
    ``target`` (default: drawn uniformly in the bucket; see :func:`steered_mask`).

    With ``border=True`` a hole touches the image border (the first stroke starts on it);
    with ``border=False`` holes keep a margin of ``NO_BORDER_MARGIN`` of the shorter side.
    """
    if not 0 <= bucket < NUM_BUCKETS:
        raise ValueError(f"bucket must be in 0..{NUM_BUCKETS - 1}, got {bucket}")
    return steered_mask(generator, rng, height, width, *BUCKETS[bucket], border, target)


def steered_mask(
    generator: StrokeMaskGenerator,
    rng: np.random.Generator,
    height: int,
    width: int,
    low: float,
    high: float,
    border: bool | None = None,
    target: float | None = None,
    half_window: float | None = None,
) -> np.ndarray:
    """An H×W uint8 mask of ``generator``'s strokes whose hole ratio lies in (low, high].

    The mask aims at ``target`` (default: drawn uniformly in (low, high]) and lands within
    ``half_window`` of it (default: ``TARGET_WINDOW`` of the range's width over 2; the window
    is clipped to the range), so ratios spread
    over the whole range instead of piling up at its lower edge. Strokes are added one at a
    time until the ratio passes the window's lower end; a stroke that overshoots its upper
    end is erased and retried smaller; only the pixels of a stroke's box are counted and
    restored. ``border`` True/False: a hole must / must not touch the image border (see
    :func:`bucketed_mask`); None: either. The loop is bounded (``MAX_ATTEMPTS`` ×
    ``MAX_STROKES_PER_ATTEMPT``) and raises :class:`MaskGenerationError`.
    """
    if target is None:
        target = high - rng.random() * (high - low)  # uniform in (low, high]
    if half_window is None:
        half_window = TARGET_WINDOW * (high - low) / 2
    floor, ceiling = max(low, target - half_window), min(high, target + half_window)
    margin = 0 if border is not False else max(1, round(min(height, width) * NO_BORDER_MARGIN))
    size = height * width
    feed = _StrokeFeed(generator, rng, max(0, height - 2 * margin), max(0, width - 2 * margin))
    for _ in range(MAX_ATTEMPTS):
        mask = np.full((height, width), VALID, np.uint8)
        # Strokes drawn into this view cannot reach the margin: OpenCV clips to the view.
        canvas = mask[margin : height - margin, margin : width - margin]
        valid, ratio, size_factor, on_border, stalled = size, 0.0, 1.0, bool(border), 0
        for _ in range(MAX_STROKES_PER_ATTEMPT):
            if ratio > floor or size_factor < MIN_SIZE_FACTOR or stalled > MAX_STALLED_STROKES:
                break
            stroke, brush, (x0, y0, x1, y1) = feed.next(size_factor, on_border)
            # A stroke changes pixels inside its box only: count and undo just those.
            region = canvas[y0:y1, x0:x1]
            region_valid = cv2.countNonZero(region)
            # Only a stroke that could overshoot (by turning its whole box into hole) needs
            # the box kept to undo it; most early strokes cannot.
            if 1.0 - (valid - region_valid) / size > ceiling:
                before = region.copy()
            cv2.polylines(canvas, [stroke], False, HOLE, brush)
            new_valid = valid - (region_valid - cv2.countNonZero(region))
            new_ratio = 1.0 - new_valid / size  # the arithmetic of hole_ratio(mask)
            if new_ratio > ceiling:
                region[...] = before
                size_factor *= OVERSHOOT_SHRINK
            else:
                stalled = stalled + 1 if new_valid == valid else 0
                valid, ratio, on_border = new_valid, new_ratio, False
        if floor < ratio <= ceiling and (border is None or border == touches_border(mask)):
            return mask
    raise MaskGenerationError(
        f"no mask with hole ratio in ({low}, {high}] and border={border} at {height}x{width} "
        f"after {MAX_ATTEMPTS} attempts with {generator!r}"
    )


def bucket_cell(ratio: float, low: float, high: float) -> tuple[float, float]:
    """The part of (low, high] inside the paper bucket holding ``ratio`` (or between the
    buckets' outer edges and ``low``/``high``, for ratios outside them)."""
    index = bisect.bisect_left(_BUCKET_EDGES, ratio)  # _BUCKET_EDGES[index - 1] < ratio
    cell_low = max(low, _BUCKET_EDGES[index - 1]) if index > 0 else low
    cell_high = min(high, _BUCKET_EDGES[index]) if index < len(_BUCKET_EDGES) else high
    return cell_low, cell_high


def eval_mask(
    seed: int, index: int, height: int, width: int, preset: str = "paper"
) -> tuple[np.ndarray, int, bool]:
    """Evaluation mask ``index`` of the split seeded ``seed``: ``(mask, bucket, border)``.

    Depends on ``(seed, index)`` only, so it is identical in every run, rank and worker.
    Index ``i`` has bucket ``i % NUM_BUCKETS`` and border ``(i // NUM_BUCKETS) % 2 == 1``, so
    any ``NUM_BUCKETS * NUM_BORDER_SPLITS * n`` consecutive indices cover every bucket and
    both splits ``n`` times. The k-th mask of a (bucket, border) cell aims at the hole ratio
    at fraction ``(offset + k * GOLDEN) mod 1`` of its bucket, ``offset`` uniform per seed
    and cell: uniform like a random draw, but spread evenly over the bucket for any ``n``
    (a few dozen random draws per bucket leave visible clumps).
    """
    bucket = index % NUM_BUCKETS
    border = (index // NUM_BUCKETS) % NUM_BORDER_SPLITS == 1
    cells = NUM_BUCKETS * NUM_BORDER_SPLITS
    offset = np.random.default_rng([seed, _TARGET_STREAM, index % cells]).random()
    low, high = BUCKETS[bucket]
    target = high - (offset + (index // cells) * GOLDEN) % 1.0 * (high - low)
    rng = np.random.default_rng([seed, index])
    mask = bucketed_mask(make_mask_generator(preset), rng, height, width, bucket, border, target)
    return mask, bucket, border


class GeneratedEvalMasks:
    """``masks(index) -> (mask, bucket, border)``: :func:`eval_mask` of a seed, size and
    preset, as an object DataLoader workers can pickle."""

    def __init__(self, seed: int, size: int, preset: str = "paper") -> None:
        self.seed, self.size, self.preset = seed, size, preset

    def __call__(self, index: int) -> tuple[np.ndarray, int, bool]:
        return eval_mask(self.seed, index, self.size, self.size, self.preset)
