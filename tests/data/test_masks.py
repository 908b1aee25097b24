import importlib.util
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PAPER_BUCKETS, edge_has_hole, paper_bucket

from pconv.data.masks import (
    MASK_PRESETS,
    MaskGenerationError,
    StrokeMaskGenerator,
    bucketed_mask,
    eval_mask,
    make_mask_generator,
    steered_mask,
)

PRESETS = ["paper", "thin", "medium", "thick"]
NAIVE_MASKS = Path(__file__).parents[2] / "experiments" / "benchmarks" / "naive_masks.py"


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize(("height", "width"), [(256, 256), (512, 512), (96, 128)])
def test_presets_make_binary_masks_of_the_requested_size(preset, height, width):
    gen = make_mask_generator(preset)
    rng = np.random.default_rng(0)
    masks = [gen(rng, height, width) for _ in range(20)]
    for mask in masks:
        assert mask.shape == (height, width) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
    ratios = [float((m == 0).mean()) for m in masks]
    assert min(ratios) > 0  # every mask has a hole
    assert max(ratios) < 1  # and valid pixels
    assert len({m.tobytes() for m in masks}) == len(masks)


def test_paper_preset_lands_in_the_bucket_of_its_target_and_fills_each_evenly():
    """A ``paper`` mask aims at 0.6 - u * 0.59, u the first uniform of its random stream, and
    lands in that ratio's bucket: so bucket 1 gets 0.09 / 0.59 = 15.3% of the masks and the
    others 0.1 / 0.59 = 16.9% each (15-18% over 3,000 masks); none falls outside."""
    gen = make_mask_generator("paper")
    low, high = MASK_PRESETS["paper"]["hole_range"]
    landed, aimed = [], []
    for index in range(3000):
        ratio = float((gen(np.random.default_rng([3, index]), 64, 64) == 0).mean())
        landed.append(paper_bucket(ratio))
        aimed.append(paper_bucket(high - np.random.default_rng([3, index]).random() * (high - low)))
    assert landed == aimed
    counts = Counter(landed)
    shares = [counts[b] / len(landed) for b in range(len(PAPER_BUCKETS))]
    assert all(0.15 <= share <= 0.18 for share in shares), shares
    assert counts[-1] == 0, counts


def _naive_masks():
    """``experiments/benchmarks/naive_masks.py``: the steering loop that copies and recounts
    the whole canvas after every stroke."""
    spec = importlib.util.spec_from_file_location("naive_masks", NAIVE_MASKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("preset", ["paper", "thick"])
@pytest.mark.parametrize(("height", "width"), [(64, 64), (96, 128)])
def test_steering_counts_only_a_stroke_box_yet_makes_the_whole_image_recount_masks(
    preset, height, width
):
    """Counting and restoring only a stroke's box and drawing strokes from blocks of the random
    stream make, from the same seed, exactly the masks of the literal loop that recounts the
    whole image after every stroke: same ratios, same overshoot decisions, same stream."""
    naive = _naive_masks().naive_steered_mask
    gen = make_mask_generator(preset)
    for seed in range(40):
        for bucket, border in [(seed % 6, (None, False, True)[seed % 3]), (5, True)]:
            low, high = PAPER_BUCKETS[bucket]
            ours = steered_mask(gen, np.random.default_rng(seed), height, width, low, high, border)
            literal = naive(gen, np.random.default_rng(seed), height, width, low, high, border)
            assert np.array_equal(ours, literal), (seed, bucket, border)


def test_eval_masks_spread_over_their_buckets():
    """A mask's position inside its bucket (0 = lower edge, 1 = upper) is spread like a
    uniform draw, not piled up at the lower edge."""
    positions = {b: [] for b in range(len(PAPER_BUCKETS))}
    for index in range(360):  # 60 masks per bucket, both border splits
        mask, bucket, _ = eval_mask(0, index, 96, 96)
        low, high = PAPER_BUCKETS[bucket]
        positions[bucket].append((float((mask == 0).mean()) - low) / (high - low))
    for bucket, values in positions.items():
        q25, q75 = np.percentile(values, [25, 75])
        assert 0.4 <= np.mean(values) <= 0.6, (bucket, np.mean(values))
        assert q25 <= 0.35 and q75 >= 0.65, (bucket, q25, q75)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_scale_with_image_size(preset):
    """Lengths are relative to the image: the hole ratio barely changes from 256 to 512.
    Mask i has the same random stream at both sizes, so only the scaling differs."""
    gen = make_mask_generator(preset)
    means = []
    for size in (256, 512):
        streams = (np.random.default_rng([2, i]) for i in range(150))
        means.append(np.mean([(gen(rng, size, size) == 0).mean() for rng in streams]))
    assert abs(means[0] - means[1]) < 0.04, means


def test_shapes_are_drawn_as_filled_holes():
    gen = StrokeMaskGenerator(
        min_strokes=0, max_strokes=0, shape_probability=1.0, min_shapes=1, max_shapes=1,
        min_shape_size=40, max_shape_size=40, shape_kinds=("box",),
    )  # fmt: skip
    mask = gen(np.random.default_rng(3), 256, 256)
    rows, cols = np.nonzero(mask == 0)
    # one axis-aligned filled 40×40 box (clipped where it leaves the image)
    box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert (box == 0).all() and max(box.shape) == 41


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown mask preset 'huge'.*medium.*paper.*thick.*thin"):
        make_mask_generator("huge")
    assert set(MASK_PRESETS) == set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("size", [64, 256])
def test_bucketed_masks_hit_every_bucket_and_border_split(preset, size):
    gen = make_mask_generator(preset)
    rng = np.random.default_rng(4)
    for bucket, (low, high) in enumerate(PAPER_BUCKETS):
        for border in (False, True):
            mask = bucketed_mask(gen, rng, size, size, bucket, border)
            ratio = float((mask == 0).mean())
            assert low < ratio <= high, (bucket, border, ratio)
            assert edge_has_hole(mask) == border


def test_bucketed_mask_fails_clearly_when_impossible():
    # 4×4 without border holes leaves at most the inner 2×2 = 25% as hole: bucket 5 is out.
    with pytest.raises(MaskGenerationError, match=r"\(0.5, 0.6\] and border=False at 4x4"):
        bucketed_mask(make_mask_generator("paper"), np.random.default_rng(0), 4, 4, 5, False)
    with pytest.raises(ValueError, match="bucket must be in 0..5"):
        bucketed_mask(make_mask_generator("paper"), np.random.default_rng(0), 64, 64, 6, True)


def test_eval_masks_cover_buckets_and_splits_evenly():
    n_per_bucket = 2
    items = [eval_mask(7, i, 64, 64) for i in range(6 * 2 * n_per_bucket)]
    assert Counter((b, br) for _, b, br in items) == {
        (b, br): n_per_bucket for b in range(6) for br in (False, True)
    }
    for index, (mask, bucket, border) in enumerate(items):
        assert bucket == index % 6
        assert paper_bucket(float((mask == 0).mean())) == bucket
        assert edge_has_hole(mask) == border


def test_eval_masks_depend_on_seed_and_index_only():
    first = [eval_mask(3, i, 64, 80, "thin")[0] for i in range(12)]
    # interleave other draws: global numpy state and call order must not matter
    np.random.seed(123)
    eval_mask(4, 0, 64, 80, "thin")
    again = [eval_mask(3, i, 64, 80, "thin")[0] for i in reversed(range(12))][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other_seed = eval_mask(4, 5, 64, 80, "thin")[0]
    assert not np.array_equal(first[5], other_seed)


# A literal port of LaMa's random masks (advimman/lama, saicinpainting/training/data/masks.py:
# make_random_irregular_mask, make_random_rectangle_mask, MixedMaskGenerator's choice of one
# kind; bin/gen_mask_dataset.py's max_tamper_area) with its configs/data_gen/random_*_256.yaml.
LAMA_256 = {
    "thin": (dict(min_times=4, max_times=50, max_width=10, max_len=40), 0, None),
    "medium": (
        dict(min_times=4, max_times=5, max_width=50, max_len=100),
        0.3,
        dict(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5),
    ),
    "thick": (
        dict(min_times=1, max_times=5, max_width=100, max_len=200),
        0.3,
        dict(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
    ),
}


def lama_irregular(rs, size, max_width, max_len, min_times, max_times, max_angle=4):
    mask = np.zeros((size, size), np.float32)
    for i in range(rs.randint(min_times, max_times + 1)):
        start_x, start_y = rs.randint(size), rs.randint(size)
        for _ in range(1 + rs.randint(5)):
            angle = 0.01 + rs.randint(max_angle)
            if i % 2 == 0:
                angle = 2 * 3.1415926 - angle
            length = 10 + rs.randint(max_len)
            brush_w = 5 + rs.randint(max_width)
            end_x = int(np.clip(start_x + length * np.sin(angle), 0, size))
            end_y = int(np.clip(start_y + length * np.cos(angle), 0, size))
            cv2.line(mask, (start_x, start_y), (end_x, end_y), 1.0, brush_w)
            start_x, start_y = end_x, end_y
    return mask


def lama_boxes(rs, size, margin, bbox_min_size, bbox_max_size, min_times, max_times):
    mask = np.zeros((size, size), np.float32)
    bbox_max_size = min(bbox_max_size, size - margin * 2)
    for _ in range(rs.randint(min_times, max_times + 1)):
        box_w, box_h = rs.randint(bbox_min_size, bbox_max_size, size=2)
        x = rs.randint(margin, size - margin - box_w + 1)
        y = rs.randint(margin, size - margin - box_h + 1)
        mask[y : y + box_h, x : x + box_w] = 1
    return mask


def lama_mean_hole_ratio(preset: str, size: int, count: int) -> float:
    strokes, box_proba, boxes = LAMA_256[preset]
    rs, ratios = np.random.RandomState(0), []
    while len(ratios) < count:
        if boxes and rs.rand() < box_proba / (1 + box_proba):
            mask = lama_boxes(rs, size, **boxes)
        else:
            mask = lama_irregular(rs, size, **strokes)
        if mask.mean() <= 0.5:  # max_tamper_area
            ratios.append(mask.mean())
    return float(np.mean(ratios))


@pytest.mark.parametrize("preset", ["thin", "medium", "thick"])
def test_lama_presets_match_lamas_own_masks(preset):
    """Mean hole ratio of 300 masks at 256 px within 0.03 of LaMa's own generator's (its
    figures: thin 0.29, medium 0.23, thick 0.27); no mask over half hole."""
    generator, rng = make_mask_generator(preset), np.random.default_rng(0)
    ratios = [1 - generator(rng, 256, 256).mean() for _ in range(300)]  # 1 = valid
    assert max(ratios) <= 0.5
    assert abs(np.mean(ratios) - lama_mean_hole_ratio(preset, 256, 300)) < 0.03
