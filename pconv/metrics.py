"""Bucketed PSNR / SSIM / ℓ1 on the composited output, the paper's Table 1 layout.

Every figure is computed per image on the composite I_comp = M ⊙ I_gt + (1 − M) ⊙ I_out,
clamped to [0, 1], against I_gt, then averaged over the images of a cell:

- PSNR: 10·log10(1 / MSE) per image (data range 1), then the mean over images, as papers
  report it (torchmetrics' ``PeakSignalNoiseRatio(dim=None)`` would pool the MSE instead).
- SSIM: gaussian window 11, sigma 1.5, data range 1, K1 0.01, K2 0.03, mean over channels
  and the valid (unpadded) window positions: the settings of Wang et al. and of
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``.
- ℓ1: mean absolute error on the [0, 1] scale, reported in percent like the paper.

Cells are the hole-ratio buckets of :mod:`pconv.data.buckets` plus one "outside buckets" row
for ratios in no bucket, × {no border, border}; "all" is the sum of every row. The states are
fixed-size sums filled with ``index_add_``, so DDP sync is exact and never meets an empty
list on a rank.
"""

from __future__ import annotations

import torch
from rich.table import Table
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from pconv.data.buckets import NUM_BUCKETS, OUT_OF_RANGE, bucket_label

METRICS = ("psnr", "ssim", "l1")
SSIM_KERNEL = 11
SSIM_SIGMA = 1.5
DATA_RANGE = 1.0
#: ℓ1 is a fraction of the data range; the paper prints it in percent.
PERCENT = 100.0
#: MSE floor: a pixel-perfect image scores 10·log10(1 / 1e-10) = 100 dB instead of inf.
MIN_MSE = 1e-10
#: Border split names, indexed by ``border`` (False, True).
BORDER_SPLITS = ("no_border", "border")
#: Row of the state tensors that collects images whose hole ratio is in no bucket.
OUT_OF_RANGE_ROW = NUM_BUCKETS
#: Label of that row in tables; its cell name is ``outside_buckets``.
OUTSIDE_LABEL = "outside buckets"
ALL_LABEL = "all"


def composite(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """I_comp = M ⊙ I_gt + (1 − M) ⊙ I_out, clamped to [0, 1]; N×3×H×W like ``target``."""
    return (mask * target + (1 - mask) * output).clamp(0, 1)


def per_image_scores(comp: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """PSNR (dB), SSIM and ℓ1 (fraction) of each image: dict of N-vectors in float32."""
    comp, target = comp.float(), target.float()
    mse = (comp - target).pow(2).flatten(1).mean(1)
    # torchmetrics averages its SSIM map over the reflect-padded border too; the standard
    # (Wang et al., skimage) averages only positions whose window lies inside the image.
    _, ssim_map = structural_similarity_index_measure(
        comp,
        target,
        gaussian_kernel=True,
        sigma=SSIM_SIGMA,
        kernel_size=SSIM_KERNEL,
        data_range=DATA_RANGE,
        return_full_image=True,
    )
    half = SSIM_KERNEL // 2
    return {
        "psnr": 10 * torch.log10(DATA_RANGE**2 / mse.clamp_min(MIN_MSE)),
        "ssim": ssim_map[..., half:-half, half:-half].flatten(1).mean(1),
        "l1": (comp - target).abs().flatten(1).mean(1),
    }


def cell_name(bucket: int, border: int | None = None) -> str:
    """Name of a bucket (both border splits) or a bucket × split cell in metric keys, e.g.
    ``bucket_0.1-0.2`` or ``bucket_0.1-0.2/border``; keys read ``psnr/bucket_0.1-0.2``.
    ``OUT_OF_RANGE`` (or ``OUT_OF_RANGE_ROW``) is ``outside_buckets``."""
    inside = 0 <= bucket < NUM_BUCKETS
    name = f"bucket_{bucket_label(bucket)}" if inside else "outside_buckets"
    return name if border is None else f"{name}/{BORDER_SPLITS[border]}"


class BucketedInpaintingMetrics(Metric):
    """PSNR, SSIM and ℓ1 per hole-ratio bucket × border split, exact under DDP.

    ``update(output, target, mask, bucket, border)``: ``output`` N×3×H×W raw network output
    on the [0, 1] scale (composited and clamped here), ``target`` N×3×H×W in [0, 1],
    ``mask`` N×1×H×W (1 = valid), ``bucket`` N long (``OUT_OF_RANGE`` allowed), ``border``
    N bool.

    States (float64, shape ``[NUM_BUCKETS + 1, 2]``: bucket rows, the last one for
    out-of-range ratios; columns no border / border): ``sum_psnr``, ``sum_ssim``,
    ``sum_l1`` (fractions) and ``count``.

    ``compute()`` returns a dict of 0-d tensors: overall ``psnr``, ``ssim``, ``l1`` (percent)
    and ``count`` over every image, then per bucket (both splits) and per bucket × split,
    the out-of-range row included, under ``<metric>/<cell name>`` keys (:func:`cell_name`),
    plus ``count/<cell name>``. Empty cells give NaN.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        shape = (NUM_BUCKETS + 1, len(BORDER_SPLITS))
        for name in (*(f"sum_{m}" for m in METRICS), "count"):
            self.add_state(name, torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor,
        bucket: torch.Tensor,
        border: torch.Tensor,
    ) -> None:
        with torch.autocast(device_type=output.device.type, enabled=False):
            comp = composite(output.float(), target.float(), mask.float())
            scores = per_image_scores(comp, target)
        rows = torch.where(bucket == OUT_OF_RANGE, OUT_OF_RANGE_ROW, bucket).long()
        cells = rows * len(BORDER_SPLITS) + border.long()
        for metric in METRICS:
            state = getattr(self, f"sum_{metric}")
            state.view(-1).index_add_(0, cells, scores[metric].to(state.dtype))
        self.count.view(-1).index_add_(0, cells, torch.ones_like(cells, dtype=self.count.dtype))

    def _mean(self, metric: str, index: tuple = ()) -> torch.Tensor:
        total = getattr(self, f"sum_{metric}")[index].sum()
        mean = total / self.count[index].sum()
        return mean * PERCENT if metric == "l1" else mean

    def compute(self) -> dict[str, torch.Tensor]:
        cells: dict[str | None, tuple] = {None: ()}
        for b in range(NUM_BUCKETS + 1):  # the buckets, then the out-of-range row
            cells[cell_name(b)] = (b,)
            cells.update({cell_name(b, s): (b, s) for s in range(len(BORDER_SPLITS))})
        results = {}
        for cell, index in cells.items():
            results.update({result_key(m, cell): self._mean(m, index) for m in METRICS})
            results[result_key("count", cell)] = self.count[index].sum()
        return {k: v.float() for k, v in results.items()}


#: Columns of :func:`table_rows`, in the paper's units.
TABLE_COLUMNS = ("hole ratio", "images", "ℓ1 (%)", "PSNR (dB)", "SSIM")


def result_key(metric: str, cell: str | None = None) -> str:
    """Key of a :meth:`BucketedInpaintingMetrics.compute` result: ``psnr`` over all images,
    ``psnr/<cell name>`` for a cell (``count`` likewise)."""
    return metric if cell is None else f"{metric}/{cell}"


def _row_labels() -> list[tuple[int, str]]:
    """(state row, label) of every table row but "all": the buckets, then outside buckets."""
    return [(b, bucket_label(b)) for b in range(NUM_BUCKETS)] + [(OUT_OF_RANGE_ROW, OUTSIDE_LABEL)]


def table_rows(results: dict[str, torch.Tensor]) -> list[list[str]]:
    """Rows of :meth:`BucketedInpaintingMetrics.compute` results under ``TABLE_COLUMNS``:
    one per bucket (both border splits), one for images outside every bucket, then one for
    all images (the sum of the rows above); "–" for empty cells."""
    cells = [(cell_name(row), label) for row, label in _row_labels()]
    rows = []
    for cell, label in [*cells, (None, ALL_LABEL)]:
        count = int(results[result_key("count", cell)])
        if count == 0:
            rows.append([label, "0", "–", "–", "–"])
            continue
        l1, psnr, ssim = (results[result_key(m, cell)] for m in ("l1", "psnr", "ssim"))
        rows.append([label, str(count), f"{l1:.2f}", f"{psnr:.2f}", f"{ssim:.3f}"])
    return rows


def results_table(results: dict[str, torch.Tensor], title: str) -> Table:
    """:func:`table_rows` as a rich table, for the console."""
    table = Table(title=title)
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="right")
    for row in table_rows(results):
        table.add_row(*row)
    return table


def compact_lines(results: dict[str, torch.Tensor], title: str) -> list[str]:
    """:func:`table_rows` as plain lines for a log: ``title`` and all images first, then
    one line per bucket (both border splits) and one for images outside every bucket."""
    *buckets, overall = table_rows(results)
    lines = []
    for label, count, l1, psnr, ssim in [overall, *buckets]:
        if count == "0":
            lines.append(f"  {label:>15}: no images")
            continue
        lines.append(f"  {label:>15}: PSNR {psnr} dB  SSIM {ssim}  ℓ1 {l1} %  ({count} images)")
    return [title, *lines]


#: Columns of :func:`numeric_table`: labels, then numbers W&B can plot.
NUMERIC_COLUMNS = ("hole_ratio", "border_split", "images", "l1_percent", "psnr_db", "ssim")


def numeric_table(results: dict[str, torch.Tensor]) -> list[list]:
    """Rows of :meth:`BucketedInpaintingMetrics.compute` results under ``NUMERIC_COLUMNS``:
    per bucket (then outside buckets) × border split (``no_border``, ``border``, ``both``),
    then all images; counts are ints, metrics floats (None for empty cells)."""
    rows = []
    cells = [
        (label, split, cell_name(row, s) if s is not None else cell_name(row))
        for row, label in _row_labels()
        for s, split in [*enumerate(BORDER_SPLITS), (None, "both")]
    ]
    for label, split, cell in [*cells, (ALL_LABEL, "both", None)]:
        count = int(results[result_key("count", cell)])
        values = [float(results[result_key(m, cell)]) for m in ("l1", "psnr", "ssim")]
        rows.append([label, split, count, *(v if count else None for v in values)])
    return rows
