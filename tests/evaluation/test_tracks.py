"""Evaluation tracks: the paper track is the data layer's eval masks; LaMa masks are fixed."""

from __future__ import annotations

import numpy as np
import pytest

from pconv.data.masks import eval_mask
from pconv.evaluation.tracks import get_track

SIZE = 64
PAPER_BUCKETS = [(0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6)]


def test_paper_track_uses_eval_masks_and_names_rows_by_bucket_and_split():
    track = get_track("paper")
    assert len(track.rows) == 12 and track.length(3) == 36
    for index in range(12):
        mask, row = track.mask(5, index, SIZE)
        np.testing.assert_array_equal(mask, eval_mask(5, index, SIZE, SIZE, "paper")[0])
        ratio = 1 - mask.mean()
        low, high = PAPER_BUCKETS[index % 6]
        touches = bool((np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]]) == 0).any())
        assert low < ratio <= high
        assert track.rows[row].key == f"{low:g}-{high:g}_{'border' if touches else 'no_border'}"


def test_lama_track_masks_depend_on_seed_and_index_only():
    track = get_track("lama")
    assert [row.key for row in track.rows] == ["thin", "medium", "thick"]
    first, row = track.mask(1, 4, SIZE)
    assert row == 1  # rows cycle with the index
    np.testing.assert_array_equal(first, track.mask(1, 4, SIZE)[0])
    assert not np.array_equal(first, track.mask(2, 4, SIZE)[0])
    assert first.dtype == np.uint8 and set(np.unique(first)) <= {0, 1} and first.min() == 0


def test_unknown_track_is_named():
    with pytest.raises(ValueError, match="'places'"):
        get_track("places")
