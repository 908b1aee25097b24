"""Bucketed metrics against skimage's PSNR/SSIM and a literal ℓ1, cell by cell."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pconv.data.buckets import BUCKETS, NUM_BUCKETS
from pconv.metrics import BucketedInpaintingMetrics, numeric_table, results_table, table_rows

SIZE = 48


def reference_scores(comp: np.ndarray, gt: np.ndarray) -> tuple[float, float, float]:
    """PSNR, SSIM, ℓ1 (%) of one H×W×3 image pair in [0, 1], straight from skimage/numpy."""
    psnr = peak_signal_noise_ratio(gt, comp, data_range=1)
    ssim = structural_similarity(
        gt,
        comp,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=2,
    )
    return psnr, ssim, 100 * np.abs(comp - gt).mean()


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    n = 10
    target = rng.random((n, 3, SIZE, SIZE)).astype(np.float32)
    # Outputs outside [0, 1] check the clamp of the composite.
    output = (target + rng.normal(0, 0.2, target.shape)).astype(np.float32) * 1.1
    mask = (rng.random((n, 1, SIZE, SIZE)) > 0.3).astype(np.float32)
    bucket = np.array([0, 0, 1, 1, 1, 5, -1, 2, 2, 0])
    border = np.array([0, 1, 0, 0, 1, 1, 0, 1, 0, 0], dtype=bool)
    return target, output, mask, bucket, border


def test_cells_match_skimage_per_image_means(batch):
    target, output, mask, bucket, border = batch
    metric = BucketedInpaintingMetrics()
    # Two updates: the sums must accumulate across batches.
    for part in (slice(0, 4), slice(4, None)):
        metric.update(
            torch.from_numpy(output[part]),
            torch.from_numpy(target[part]),
            torch.from_numpy(mask[part]),
            torch.from_numpy(bucket[part]),
            torch.from_numpy(border[part]),
        )
    results = metric.compute()

    comp = np.clip(mask * target + (1 - mask) * output, 0, 1)
    ref = np.array(
        [
            reference_scores(comp[i].transpose(1, 2, 0), target[i].transpose(1, 2, 0))
            for i in range(10)
        ]
    )

    def check(prefix: str, selected: np.ndarray) -> None:
        key = lambda m: m if not prefix else f"{m}/{prefix}"  # noqa: E731
        assert results[key("count")].item() == selected.sum()
        if not selected.any():
            assert math.isnan(results[key("psnr")].item())
            return
        for column, metric_name in enumerate(("psnr", "ssim", "l1")):
            expected = ref[selected, column].mean()
            assert results[key(metric_name)].item() == pytest.approx(expected, rel=1e-4, abs=1e-4)

    check("", np.ones(10, dtype=bool))
    for b, (low, high) in enumerate(BUCKETS):
        label = f"bucket_{low:g}-{high:g}"
        check(label, bucket == b)
        check(f"{label}/border", (bucket == b) & border)
        check(f"{label}/no_border", (bucket == b) & ~border)
    check("outside_buckets", bucket == -1)
    check("outside_buckets/no_border", (bucket == -1) & ~border)
    assert "psnr/bucket_0.1-0.2" in results
    assert results["count"].item() == 10
    assert sum(results[f"count/bucket_{lo:g}-{hi:g}"].item() for lo, hi in BUCKETS) == 9


def test_outside_buckets_row_makes_the_rows_add_up(batch):
    """The image of bucket -1 gets its own row; "all" is the sum of the rows."""
    target, output, mask, bucket, border = batch
    metric = BucketedInpaintingMetrics()
    metric.update(*(torch.from_numpy(a) for a in (output, target, mask, bucket, border)))
    rows = table_rows(metric.compute())
    assert [r[0] for r in rows[-2:]] == ["outside buckets", "all"]
    assert rows[-2][1] == "1"
    assert sum(int(r[1]) for r in rows[:-1]) == int(rows[-1][1]) == 10
    comp = np.clip(mask * target + (1 - mask) * output, 0, 1)
    psnr = reference_scores(comp[6].transpose(1, 2, 0), target[6].transpose(1, 2, 0))[0]
    assert float(rows[-2][3]) == pytest.approx(psnr, abs=0.01)


def test_numeric_table_has_numbers_and_the_border_split(batch):
    target, output, mask, bucket, border = batch
    metric = BucketedInpaintingMetrics()
    metric.update(*(torch.from_numpy(a) for a in (output, target, mask, bucket, border)))
    rows = numeric_table(metric.compute())
    assert len(rows) == (NUM_BUCKETS + 1) * 3 + 1
    by_cell = {(r[0], r[1]): r for r in rows}
    # bucket 1 (0.1-0.2) holds images 2, 3 (no border) and 4 (border)
    assert [by_cell[("0.1-0.2", s)][2] for s in ("no_border", "border", "both")] == [2, 1, 3]
    assert by_cell[("0.4-0.5", "both")][2:] == [0, None, None, None]
    comp = np.clip(mask * target + (1 - mask) * output, 0, 1)
    ref = [
        reference_scores(comp[i].transpose(1, 2, 0), target[i].transpose(1, 2, 0)) for i in (2, 3)
    ]
    row = by_cell[("0.1-0.2", "no_border")]
    assert all(isinstance(v, float) for v in row[3:]) and isinstance(row[2], int)
    assert row[4] == pytest.approx(np.mean([r[0] for r in ref]), rel=1e-4)
    assert row[3] == pytest.approx(np.mean([r[2] for r in ref]), rel=1e-4)
    assert rows[-1][:3] == ["all", "both", 10]


def test_psnr_is_mean_of_per_image_psnr_not_pooled_mse():
    target = torch.zeros(2, 3, 16, 16)
    output = target.clone()
    output[0] += 0.1  # MSE 0.01 → 20 dB
    output[1] += 0.01  # MSE 1e-4 → 40 dB
    metric = BucketedInpaintingMetrics()
    metric.update(
        output,
        target,
        torch.zeros(2, 1, 16, 16),
        torch.tensor([0, 0]),
        torch.zeros(2, dtype=torch.bool),
    )
    assert metric.compute()["psnr"].item() == pytest.approx(30.0, abs=1e-3)
    # Pooling the MSE would give 10·log10(1 / 0.00505) ≈ 22.97 dB.


def test_reset_and_table(batch):
    target, output, mask, bucket, border = batch
    metric = BucketedInpaintingMetrics()
    metric.update(*(torch.from_numpy(a) for a in (output, target, mask, bucket, border)))
    table = results_table(metric.compute(), "test")
    assert table.row_count == NUM_BUCKETS + 2  # the buckets, outside buckets, all
    metric.reset()
    assert metric.compute()["count"].item() == 0
