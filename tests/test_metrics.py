"""Bucketed metrics against skimage's PSNR/SSIM and a literal ℓ1, cell by cell."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pconv.data.buckets import BUCKETS, NUM_BUCKETS
from pconv.metrics import BucketedInpaintingMetrics, results_table

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
    assert "psnr/bucket_0.1-0.2" in results
    assert results["count"].item() == 10  # the out-of-range image counts overall only
    assert sum(results[f"count/bucket_{lo:g}-{hi:g}"].item() for lo, hi in BUCKETS) == 9


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
    assert table.row_count == NUM_BUCKETS + 1
    metric.reset()
    assert metric.compute()["count"].item() == 0
