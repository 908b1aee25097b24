"""The evaluation loop's items: which photo lands in which row."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from pconv.data.samples import HELDOUT_PHOTOS, sample_image, sample_source
from pconv.data.transforms import eval_transform
from pconv.evaluation.loop import EvalItems
from pconv.evaluation.tracks import get_track

SIZE = 32


@pytest.mark.parametrize(("track_name", "per_row"), [("paper", 4), ("lama", 2)])
def test_every_held_out_photo_is_in_every_row(track_name, per_row):
    """Two photos and 12 rows: plain cycling gave each row one photo. Each (row, photo) cell
    must hold per_row / 2 items, half of them mirrored when a photo repeats in its row."""
    track = get_track(track_name)
    items = EvalItems(sample_source("heldout"), track, SIZE, per_row, seed=0)
    transform = eval_transform(SIZE)
    # Every candidate picture an item may show: each photo, as it is and mirrored.
    candidates = {
        (name, mirrored): torch.from_numpy(transform(image=np.ascontiguousarray(picture))["image"])
        for name in HELDOUT_PHOTOS
        for mirrored, picture in (
            (False, sample_image(name)),
            (True, sample_image(name)[:, ::-1]),
        )
    }
    cells = Counter()
    for index in range(len(items)):
        item = items[index]
        shown = (item["image"].permute(1, 2, 0) * 255).round().to(torch.uint8)
        (found,) = [key for key, image in candidates.items() if torch.equal(shown, image)]
        cells[int(item["row"]), found[0], found[1]] += 1
    per_photo = per_row // len(HELDOUT_PHOTOS)
    want = {
        (row, name, mirrored): 1
        for row in range(len(track.rows))
        for name in HELDOUT_PHOTOS
        for mirrored in (False, True)[:per_photo]
    }
    assert dict(cells) == want


def test_example_pictures_take_turns_over_the_photos():
    """examples.png shows one item per row: with two photos cycling in every row, the rows
    alternate between them (the first item of every row would always be the same photo)."""
    from pconv.evaluation.baselines import baseline_method
    from pconv.evaluation.loop import evaluate

    track = get_track("paper")
    methods = {"mean": baseline_method("mean")}
    _, examples = evaluate(methods, sample_source("heldout"), track, SIZE, 2, progress=False)
    truths = [examples[row][-1] for row in range(len(track.rows))]
    assert all(np.array_equal(truths[row], truths[row % 2]) for row in range(len(truths)))
    assert not np.array_equal(truths[0], truths[1])
