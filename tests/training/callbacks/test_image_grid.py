"""Validation grid rows: input with the hole painted, mask, output, composite, truth."""

import torch

from pconv.training.callbacks.image_grid import PANELS, grid_rows


def test_grid_rows_panels():
    image = torch.rand(2, 3, 8, 8)
    mask = torch.ones(2, 1, 8, 8)
    mask[:, :, 2:5, 3:6] = 0
    output = torch.rand(2, 3, 8, 8) * 1.4 - 0.2  # outside [0, 1] on purpose
    rows = grid_rows(image, mask, output)
    assert rows.shape == (2 * len(PANELS), 3, 8, 8)
    first = rows[: len(PANELS)]
    hole = mask[0, 0] == 0
    # Holes: a magenta/black checkerboard of 4-px squares (a white hole vanished on white).
    for row, col in hole.nonzero().tolist():
        want = [1.0, 0.0, 1.0] if (row // 4 + col // 4) % 2 == 0 else [0.0, 0.0, 0.0]
        assert first[0][:, row, col].tolist() == want
    assert torch.equal(first[0][:, ~hole], image[0][:, ~hole])
    assert torch.equal(first[1], mask[0].expand(3, 8, 8))
    assert torch.equal(first[2], output[0].clamp(0, 1))
    assert torch.equal(first[3][:, hole], output[0].clamp(0, 1)[:, hole])
    assert torch.equal(first[3][:, ~hole], image[0][:, ~hole])
    assert torch.equal(first[4], image[0])
    assert torch.equal(rows[len(PANELS) + 4], image[1])
