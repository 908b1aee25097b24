"""``pconv evaluate``: the paper's per-bucket report for a checkpoint, next to classical baselines.

Every method (the network and the baselines of :mod:`pconv.evaluation.baselines`) sees the
same centre-cropped images with the same fixed masks of a track
(:mod:`pconv.evaluation.tracks`), and is scored the same way, by :mod:`pconv.metrics`: per
image on the composite (valid pixels from the input, holes from the method, clamped to
[0, 1]), then averaged per row.

- ℓ1 (%): mean absolute error on the [0, 1] scale, in percent;
- PSNR (dB): per image with data range 1, then the mean (not the PSNR of the pooled MSE);
- SSIM: gaussian window 11, sigma 1.5, data range 1, K1 0.01, K2 0.03 (Wang et al.).

Masks: the paper track's generated masks, or ``--masks DIR`` (e.g. NVIDIA's 12,000 test
masks, as in the paper's Table 1), bucketed by measured hole ratio and border contact at
``--size``; files outside every bucket get their own row, and "all" is the sum of the rows.
On the paper track the paper's own PConv figures are shown beside the run as a labelled
reference, saying where the run's setup differs from the paper's.

Outputs in ``-o OUTDIR`` (existing ones are kept unless ``--overwrite``): ``report.csv`` and
``report.json`` (one entry per method × row and "all", plus the paper reference),
``metrics_vs_hole_ratio.png`` (paper track: one line per method) or ``metrics_by_preset.png``
(LaMa track: grouped bars) and ``examples.png`` (the first item of each row, filled by every
method); the tables are printed, and logged to W&B with ``--wandb`` (offline, under
``OUTDIR``, when not logged in).

Python entry point (stable): ``report, examples = evaluate(methods, source, track, size,
per_row)`` with ``methods`` a dict of name → ``method(image, mask) -> output`` (e.g.
:func:`network_method` and :func:`pconv.evaluation.baselines.baseline_method`), ``source``
an image source, ``track`` from :func:`pconv.evaluation.tracks.get_track`; then
``report.tables()`` (rich tables), ``report.rows`` and :func:`write_outputs`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress, track
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from pconv import tool_args
from pconv.data.buckets import BUCKETS, bucket_label
from pconv.data.datasets import make_sample, spread_index
from pconv.data.images import (
    DataSourceError,
    ImageSource,
    SkippingReader,
    UnreadableImageError,
    open_image_source,
)
from pconv.data.nvidia_masks import FileEvalMasks
from pconv.data.transforms import eval_transform
from pconv.evaluation import optional_metrics
from pconv.evaluation.baselines import BASELINES, Method, baseline_method
from pconv.evaluation.plots import BarPanel, Panel, bar_charts, image_grid, line_charts, png_bytes
from pconv.evaluation.tracks import (
    NVIDIA_TEST_MASKS,
    OUTSIDE_ROW,
    PAPER_SIZE,
    PAPER_TABLE1,
    Track,
    get_track,
)
from pconv.inference import Inpainter, atomic_write
from pconv.metrics import PERCENT, composite, per_image_scores
from pconv.nn.unet import PConvUNet
from pconv.weights import WeightsUnavailableError, load_network, resolve

PROG = "pconv evaluate"


@dataclass(frozen=True)
class Column:
    """How a metric is shown: terminal title, chart title (plain font), direction, digits."""

    title: str
    chart_title: str
    higher_is_better: bool
    digits: int


#: Metric key -> how it is shown; digits follow the paper's Table 1.
COLUMNS = {
    "l1": Column("ℓ1 (%)", "L1 (%)", False, 2),
    "psnr": Column("PSNR (dB)", "PSNR (dB)", True, 2),
    "ssim": Column("SSIM", "SSIM", True, 3),
    "lpips": Column("LPIPS", "LPIPS", False, 3),
}
#: What each value of a report row means (written into report.json).
DEFINITIONS = {
    "l1": "mean absolute error on the [0, 1] scale, percent, per image on the composite",
    "psnr": "dB, 10*log10(1/MSE) per image on the composite (data range 1), then the mean",
    "ssim": "gaussian window 11, sigma 1.5, data range 1, K1 0.01, K2 0.03, on the composite",
    "lpips": "torchmetrics LPIPS (AlexNet), per image on the composite; lower is better",
    "hole_ratio": "mean fraction of hole pixels of the row's masks",
}
NETWORK_NAME = "pconv"
ALL_ROWS = "all"
#: Method name of the paper's figures in report.csv.
REFERENCE_NAME = "paper (reference)"
#: The paper's setup, as the reference's label states it.
PAPER_SETUP = "PConv, Liu et al. 2018, Table 1: Places2 val, 512 px, NVIDIA test masks"
#: Output files of an evaluation, by key; the chart's name depends on the track.
CHART_FILES = {"paper": "metrics_vs_hole_ratio.png", "lama": "metrics_by_preset.png"}
#: Rough peak memory of evaluating one image, bytes per pixel: the image, mask, each method's
#: output, composite and score maps (float32), and, per unit of the network's width, its
#: activations and convolution workspace. An estimate to refuse impossible sizes early.
IMAGE_BYTES_PER_PIXEL = 4 * 100
NET_BYTES_PER_PIXEL = 4 * 600
#: Metrics the paper's Table 1 reports (and the reference shows).
PAPER_METRICS = ("l1", "psnr", "ssim")


def _bucket_centres() -> dict[str, float]:
    """Bucket label -> the bucket's centre ratio, where the paper's figures are plotted."""
    return {bucket_label(b): (low + high) / 2 for b, (low, high) in enumerate(BUCKETS)}


#: Side of each picture in examples.png, pixels.
EXAMPLE_SIDE = 128
#: Hole pixels are shown in this colour in the "input" column of examples.png.
HOLE_COLOUR = (255, 255, 255)
_UINT8_MAX = 255.0


class EvalItems(Dataset):
    """Item ``index``: an image spread evenly over the source
    (:func:`pconv.data.datasets.spread_index`), resized and centre-cropped to ``size``, with
    the track's fixed mask ``index``; a sample dict (:func:`pconv.data.datasets.make_sample`)
    plus ``row`` and ``index``."""

    def __init__(
        self, source: ImageSource, track: Track, size: int, per_row: int, seed: int
    ) -> None:
        self.reader = SkippingReader(source, min_size=size)
        self.transform = eval_transform(size)
        self.track, self.size, self.seed = track, size, seed
        self.length = track.length(per_row)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = spread_index(index, self.length, len(self.reader))
        image = self.transform(image=self.reader(position))["image"]
        mask, row = self.track.mask(self.seed, index, self.size)
        return {
            **make_sample(image, mask),
            "row": torch.tensor(row, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
        }


@dataclass
class Report:
    """An evaluation's results. ``rows`` holds one dict per method × row and per method for
    all rows (``row == "all"``, the sum of the rows): ``method, row, group, split, count,
    hole_ratio`` (mean) and one value per metric key of :data:`COLUMNS` that was computed
    (ℓ1 in percent). ``reference`` (paper track): ``{"label": ..., "rows": [{"group",
    "l1", "psnr", "ssim"}, ...]}``, the paper's figures and how this run's setup differs."""

    config: dict
    metrics: list[str]
    methods: list[str]
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))
    rows: list[dict] = field(default_factory=list)
    fid: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reference: dict | None = None

    def value(self, method: str, row: str, metric: str) -> float:
        """The value of ``metric`` for ``method`` in row ``row`` (a row key or "all")."""
        return next(r[metric] for r in self.rows if r["method"] == method and r["row"] == row)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=True)

    def reference_value(self, group: str, metric: str) -> float | None:
        """The paper's value of ``metric`` for bucket ``group``, if it has one."""
        rows = self.reference["rows"] if self.reference else []
        return next((r[metric] for r in rows if r["group"] == group), None)

    def to_csv(self) -> str:
        """The rows, then the paper's reference rows (method "paper (reference)", row = the
        bucket, both border splits, no count)."""
        reference = [
            {"method": REFERENCE_NAME, "row": r["group"], "group": r["group"], "split": "both"}
            | {k: v for k, v in r.items() if k != "group"}
            for r in (self.reference["rows"] if self.reference else [])
        ]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows + reference)
        return buffer.getvalue()

    def tables(self) -> list[Table]:
        """One rich table per metric: rows × methods, the best value of a row in bold."""
        tables = []
        keys = list(dict.fromkeys(r["row"] for r in self.rows))
        first = {key: next(r for r in self.rows if r["row"] == key) for key in keys}
        paper = self.config["track"] == "paper"
        for metric in self.metrics:
            column = COLUMNS[metric]
            table = Table(title=f"{column.title} on the composite ({self.config['track']} track)")
            headers = ("hole ratio", "split") if paper else ("masks",)
            reference = self.reference and metric in PAPER_METRICS
            for header in (*headers, "images", *self.methods):
                table.add_column(header, justify="right")
            if reference:
                table.add_column("paper*", justify="right", style="dim")
                table.caption = f"* {self.reference['label']}"
            for key in keys:
                cells = _cells([self.value(m, key, metric) for m in self.methods], column)
                row = first[key]
                labels = (row["group"], row["split"]) if paper else (row["group"],)
                if key == ALL_ROWS:
                    labels = (ALL_ROWS, "")[: len(labels)]
                if reference:
                    value = self.reference_value(row["group"], metric)
                    cells.append("" if value is None else f"{value:.{column.digits}f}")
                table.add_row(*labels, str(row["count"]), *cells)
            tables.append(table)
        return tables

    def group_means(self, method: str, metric: str) -> dict[str, tuple[float, float, int]]:
        """Per group (hole-ratio bucket over both border splits, or LaMa preset) with images:
        ``(mean hole ratio, mean of metric, images)`` of ``method``. The outside-buckets row is
        no point on the hole-ratio axis and is left out."""
        skip = (ALL_ROWS, OUTSIDE_ROW.key)
        cells = [r for r in self.rows if r["method"] == method and r["row"] not in skip]
        means = {}
        for group in dict.fromkeys(r["group"] for r in cells):
            part = [r for r in cells if r["group"] == group and r["count"]]
            count = sum(r["count"] for r in part)
            if count:
                ratio, value = (
                    sum(r[k] * r["count"] for r in part) / count for k in ("hole_ratio", metric)
                )
                means[group] = (ratio, value, count)
        return means

    def chart(self) -> list[Panel]:
        """Paper track: one panel per metric, its mean per hole-ratio bucket against the
        bucket's mean hole ratio, one series per method, plus the paper's reference figures
        (at the bucket centres)."""
        panels = []
        for metric in self.metrics:
            panel = Panel(COLUMNS[metric].chart_title, "hole ratio")
            for method in self.methods:
                points = sorted(v[:2] for v in self.group_means(method, metric).values())
                panel.series[method] = ([x for x, _ in points], [y for _, y in points])
            values = [(g, self.reference_value(g, metric)) for g in _bucket_centres()]
            values = [(_bucket_centres()[g], v) for g, v in values if v is not None]
            if values:
                name = self.reference["label"]  # says where this run's setup differs
                panel.series[name] = ([x for x, _ in values], [y for _, y in values])
            panels.append(panel)
        return panels

    def bars(self) -> list[BarPanel]:
        """LaMa track: one panel per metric, a group of bars per preset (labelled with its
        measured mean hole ratio), one bar per method."""
        groups = [r["group"] for r in self.rows if r["method"] == self.methods[0]]
        groups = [g for g in groups if g != ALL_ROWS]
        ratios = self.group_means(self.methods[0], self.metrics[0])
        categories = [
            f"{g}\nratio {ratios[g][0]:.2f}" if g in ratios else f"{g}\nno items" for g in groups
        ]
        panels = []
        for metric in self.metrics:
            panel = BarPanel(COLUMNS[metric].chart_title, categories)
            for method in self.methods:
                means = self.group_means(method, metric)
                panel.series[method] = [means[g][1] if g in means else math.nan for g in groups]
            panels.append(panel)
        return panels

    def picture(self):
        """The chart of this report's track: lines against hole ratio, or grouped bars."""
        if self.config["track"] == "paper":
            return line_charts(self.chart())
        return bar_charts(self.bars())

    def compact_table(self, metric: str = "psnr") -> Table:
        """One table of ``metric``: a row per group (both border splits together) and for all
        images, a column per method, the best value of a row in bold."""
        column = COLUMNS[metric]
        images = self.config.get("images")
        on = f" on {images}" if images else ""
        table = Table(title=f"{column.title}{on} ({self.config['track']} track)")
        for header in ("masks", "images", *self.methods):
            table.add_column(header, justify="right")
        means = {m: self.group_means(m, metric) for m in self.methods}
        totals = [
            (self.value(m, ALL_ROWS, metric), self.value(m, ALL_ROWS, "count"))
            for m in self.methods
        ]
        lines = [
            (g, [means[m][g][1] for m in self.methods], n)
            for g, (_, _, n) in means[self.methods[0]].items()
        ]
        outside = {r["method"]: r for r in self.rows if r["row"] == OUTSIDE_ROW.key}
        if any(r["count"] for r in outside.values()):  # so that "all" is the sum of the rows
            values = [outside[m][metric] for m in self.methods]
            lines.append((OUTSIDE_ROW.group, values, outside[self.methods[0]]["count"]))
        lines.append((ALL_ROWS, [v for v, _ in totals], totals[0][1]))
        for label, values, count in lines:
            table.add_row(label, str(count), *_cells(values, column))
        return table


def _cells(values: list[float], column: Column) -> list[str]:
    """Table cells of one row of a metric: the best value in bold, "–" for no value."""
    finite = [v for v in values if math.isfinite(v)]
    best = (max if column.higher_is_better else min)(finite, default=None)
    return [
        "–"
        if not math.isfinite(v)
        else f"[bold]{v:.{column.digits}f}[/]"
        if v == best and len(values) > 1
        else f"{v:.{column.digits}f}"
        for v in values
    ]


class _Sums:
    """Per method, per row: sums of each per-image score, of hole ratios, and counts."""

    def __init__(self, methods: list[str], metrics: list[str], rows: int) -> None:
        self.sums = {m: {k: np.zeros(rows) for k in (*metrics, "hole_ratio")} for m in methods}
        self.count = np.zeros(rows, dtype=np.int64)

    def add(self, method: str, rows: np.ndarray, scores: dict[str, np.ndarray]) -> None:
        for key, values in scores.items():
            np.add.at(self.sums[method][key], rows, values)

    def entry(self, method: str, indices: list[int]) -> dict:
        count = int(self.count[indices].sum())
        means = {
            key: float(sums[indices].sum() / count) if count else math.nan
            for key, sums in self.sums[method].items()
        }
        if "l1" in means:
            means["l1"] *= PERCENT
        return {"count": count, **means}


def _thumbnail(image: torch.Tensor) -> np.ndarray:
    array = (image.clamp(0, 1) * _UINT8_MAX).round().byte().permute(1, 2, 0).numpy()
    return cv2.resize(array, (EXAMPLE_SIDE, EXAMPLE_SIDE), interpolation=cv2.INTER_AREA)


def paper_reference(track: Track, size: int, images: str | None) -> dict:
    """The paper's figures (:data:`pconv.evaluation.tracks.PAPER_TABLE1`) with a label that
    says where this run differs from the paper's setup: images (assumed to be Places2 when
    their name says so), size and masks (NVIDIA's set has 12,000 files)."""
    differences = []
    if not images or "places" not in images.lower():
        differences.append(f"images {images or '(not named)'}")
    if size != PAPER_SIZE:
        differences.append(f"{size} px")
    if track.file_masks is None:
        differences.append("generated masks")
    else:
        files = sum(track.file_masks.counts) + len(track.file_masks.skipped)
        if files != NVIDIA_TEST_MASKS:
            differences.append(f"{files} mask files, not NVIDIA's {NVIDIA_TEST_MASKS:,}")
    setup = f"this run differs: {', '.join(differences)}" if differences else "same setup"
    return {
        "label": f"paper: {PAPER_SETUP} ({setup})",
        "rows": [{"group": group} | values for group, values in PAPER_TABLE1.items()],
    }


def network_method(net: PConvUNet, device: torch.device | str) -> Method:
    """The network as an evaluation method: ``method(image, mask) -> output`` on the CPU."""
    inpainter = Inpainter(net, torch.device(device))
    return lambda image, mask: inpainter.predict(image, mask).cpu()


def evaluate(
    methods: dict[str, Method],
    source: ImageSource,
    track: Track,
    size: int,
    per_row: int,
    seed: int = 0,
    batch_size: int = tool_args.EVAL_BATCH,
    workers: int = 0,
    optional: tuple[str, ...] = (),
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    images: str | None = None,
) -> tuple[Report, dict[int, list[np.ndarray]]]:
    """Score every method on the track's fixed items.

    ``optional`` names metrics of :mod:`pconv.evaluation.optional_metrics` to add when their
    weights are available (a note otherwise). ``progress``: show a bar (None: when stderr is
    a terminal). ``images`` names the images in the config and the paper reference's label.
    Returns the report and, per row index, the example pictures of its first item: masked
    input, each method's composite, ground truth.
    """
    device = torch.device(device)
    items = EvalItems(source, track, size, per_row, seed)
    notes, metrics = [], ["l1", "psnr", "ssim"]
    lpips = fids = None
    if "lpips" in optional:
        note = optional_metrics.lpips_weights_note()
        if note is None:
            lpips = optional_metrics.LpipsScorer(device)
            metrics.append("lpips")
        notes.append(note)
    if "fid" in optional:
        note = optional_metrics.fid_weights_note()
        if note is None:
            fids = {name: optional_metrics.new_fid(device) for name in methods}
        notes.append(note)
    sums = _Sums(list(methods), metrics, len(track.rows))
    examples: dict[int, list[np.ndarray]] = {}
    loader = DataLoader(items, batch_size=batch_size, num_workers=workers)
    console = Console(stderr=True)
    show = console.is_terminal if progress is None else progress
    with Progress(console=console, disable=not show, transient=True) as bar:
        task = bar.add_task(f"evaluating {', '.join(methods)}", total=len(items))
        for batch in loader:
            image, mask, rows = batch["image"], batch["mask"], batch["row"].numpy()
            np.add.at(sums.count, rows, 1)
            # Batch positions of the first item of each row not yet pictured.
            first = {r: i for i, r in reversed(list(enumerate(rows.tolist())))}
            new_rows = [i for r, i in first.items() if r not in examples]
            hole_colour = torch.tensor(HOLE_COLOUR).view(3, 1, 1) / _UINT8_MAX
            for i in new_rows:
                masked = torch.where(mask[i] > 0, image[i], hole_colour)
                examples[int(rows[i])] = [_thumbnail(masked)]
            for name, method in methods.items():
                with torch.no_grad():
                    comp = composite(method(image, mask).float().cpu(), image, mask)
                scores = {k: v.numpy() for k, v in per_image_scores(comp, image).items()}
                scores["hole_ratio"] = batch["hole_ratio"].numpy()
                if lpips is not None:
                    scores["lpips"] = lpips(comp, image).numpy()
                sums.add(name, rows, scores)
                if fids is not None:
                    fids[name].update(image.to(device), real=True)
                    fids[name].update(comp.to(device), real=False)
                for i in new_rows:
                    examples[int(rows[i])].append(_thumbnail(comp[i]))
            for i in new_rows:
                examples[int(rows[i])].append(_thumbnail(image[i]))
            bar.advance(task, len(rows))

    config = {"track": track.name, "size": size, "per_row": per_row, "seed": seed}
    if track.file_masks is not None:
        config |= {
            "masks": str(track.file_masks.root),
            "mask_hole_value": track.file_masks.hole_value,
        }
    report = Report(
        config=config | {"images": images},
        metrics=metrics,
        methods=list(methods),
        notes=[n for n in notes if n],
        reference=paper_reference(track, size, images) if track.name == "paper" else None,
    )
    for name in methods:
        for index, row in enumerate(track.rows):
            report.rows.append(
                {"method": name, "row": row.key, "group": row.group, "split": row.split}
                | sums.entry(name, [index])
            )
        report.rows.append(
            {"method": name, "row": ALL_ROWS, "group": ALL_ROWS, "split": ALL_ROWS}
            | sums.entry(name, list(range(len(track.rows))))
        )
        if fids is not None:
            report.fid[name] = float(fids[name].compute())
    return report, examples


def output_files(track_name: str, out_dir: Path) -> dict[str, Path]:
    """The files an evaluation on ``track_name`` writes into ``out_dir``, by key."""
    names = {"csv": "report.csv", "json": "report.json", "plot": CHART_FILES[track_name]}
    return {key: out_dir / name for key, name in (names | {"examples": "examples.png"}).items()}


def write_outputs(
    report: Report, examples: dict[int, list[np.ndarray]], track: Track, out_dir: Path
) -> dict[str, Path]:
    """Write report.csv, report.json, the chart and examples.png (atomically, replacing
    files of the same name: check with :func:`check_outputs` first)."""
    row_labels = [track.rows[r].key for r in sorted(examples)]
    grid = image_grid(
        [examples[r] for r in sorted(examples)],
        ["input", *report.methods, "ground truth"],
        row_labels,
    )
    paths = output_files(track.name, out_dir)
    data = {
        "csv": report.to_csv().encode(),
        "json": report.to_json().encode(),
        "plot": png_bytes(report.picture()),
        "examples": png_bytes(grid),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    return {key: atomic_write(paths[key], data[key]) for key in paths}


def log_to_wandb(
    report: Report, files: dict[str, Path], project: str, out_dir: Path | None = None
) -> str | None:
    """Log the report to a W&B run, its files under ``out_dir`` (default: W&B's own choice).

    With no ``WANDB_MODE`` set, a machine that is not logged in (or cannot reach the server)
    logs offline without a prompt, as ``pconv fit`` does. Returns a note (where an offline
    run is, or why logging failed); logging never stops the evaluation."""
    try:
        import wandb

        # Imported here: the trainer CLI (Lightning) is only needed for W&B.
        from pconv.trainer_cli import configure_wandb_mode

        configure_wandb_mode()
        run = wandb.init(
            project=project,
            job_type="evaluation",
            config=report.config,
            dir=str(out_dir) if out_dir is not None else None,
        )
        columns = list(report.rows[0])
        run.log(
            {
                "evaluation/table": wandb.Table(
                    columns=columns, data=[[r[c] for c in columns] for r in report.rows]
                ),
                "evaluation/plot": wandb.Image(str(files["plot"])),
                "evaluation/examples": wandb.Image(str(files["examples"])),
            }
        )
        run.summary.update(
            {
                f"evaluation/{r['method']}/{metric}": r[metric]
                for r in report.rows
                if r["row"] == ALL_ROWS
                for metric in report.metrics
            }
            | {f"evaluation/{method}/fid": value for method, value in report.fid.items()}
        )
        offline, run_dir = getattr(run, "offline", False), run.dir
        run.finish()
    except Exception as error:  # W&B raises many types (usage, network, auth): report any
        return f"W&B logging failed ({type(error).__name__}: {error}); the files are written"
    if offline:
        run_dir = Path(run_dir).parent  # the run's folder, not its files/ sub-folder
        return f"W&B run saved offline in {run_dir}; upload it with: wandb sync {run_dir}"
    return None


def _names(text: str, valid: tuple[str, ...] | dict, what: str) -> tuple[str, ...]:
    """Comma-separated names, "none" for none; ValueError naming any unknown one."""
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; valid: {', '.join(valid)}")
    return names


def open_images(spec: str) -> ImageSource:
    """``samples`` (every sample photo), ``samples:SPLIT`` (e.g. ``samples:heldout``, see
    :mod:`pconv.data.samples`), a folder of images (searched recursively) or a file list."""
    kind, _, split = spec.partition(":")
    if kind == "samples":
        return open_image_source("samples", split=split or None)
    path = Path(spec)
    if path.is_file():
        source = open_image_source("filelist", spec)
    elif path.is_dir():
        source = open_image_source("folder", spec)
    else:
        raise DataSourceError(
            f"--images {spec} is neither 'samples', a folder of images nor a file list"
        )
    with warnings.catch_warnings():  # one line below, not one warning per bad file
        warnings.simplefilter("ignore")
        try:
            SkippingReader(source)(0)
        except UnreadableImageError as error:
            raise DataSourceError(
                f"--images {spec}: no readable image among the first ones ({error}); "
                "check the files"
            ) from None
    return source


def check_outputs(out_dir: Path, track_name: str, overwrite: bool) -> None:
    """Refuse, before any work, an ``-o`` that is a file or lies under one, and report files
    of an earlier evaluation there unless ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"-o {out_dir} is a file; pass a folder for the report")
    parent = next((p for p in out_dir.parents if p.exists()), None)
    if not out_dir.exists() and parent is not None and not parent.is_dir():
        raise ValueError(f"-o {out_dir} lies under {parent}, which is a file; pass a folder")
    existing = [p.name for p in output_files(track_name, out_dir).values() if p.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"-o {out_dir} already holds {', '.join(existing)}; pass --overwrite to replace "
            "them, or another -o"
        )


def _gib(size: float) -> str:
    return f"{size / 2**30:,.1f} GiB"


def check_memory(size: int, batch_size: int, net: PConvUNet | None, device: torch.device) -> None:
    """Refuse a ``--size``/``--batch-size`` whose estimated peak memory exceeds the device's
    total memory (see :data:`IMAGE_BYTES_PER_PIXEL`)."""
    per_pixel = IMAGE_BYTES_PER_PIXEL + (NET_BYTES_PER_PIXEL * net.width_mult if net else 0)
    needed = per_pixel * size * size * batch_size
    if device.type == "cuda":
        available = torch.cuda.get_device_properties(device).total_memory
    else:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ValueError(
            f"--size {size} with --batch-size {batch_size} needs about {_gib(needed)} "
            f"(estimated), more than the {_gib(available)} of {device.type} memory; "
            "lower --size or --batch-size"
        )


def _check_numbers(args: argparse.Namespace) -> None:
    for flag, value, least in (
        ("--size", args.size, 1),
        ("--per-bucket", args.per_bucket, 1),
        ("--batch-size", args.batch_size, 1),
        ("--workers", args.workers, 0),
    ):
        if value < least:
            raise ValueError(f"{flag} must be at least {least}, got {value}")


def main(argv: list[str] | None = None) -> int:
    args = tool_args.evaluate().parse_args(argv)
    console = Console()
    err = Console(stderr=True)

    def fail(message: str) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # Every input and output is checked here, before any work or any file is written.
    try:
        _check_numbers(args)
        baselines = _names(args.baselines, BASELINES, "baseline")
        optional = _names(args.optional_metrics, optional_metrics.OPTIONAL_METRICS, "metric")
        if args.ckpt is None and not baselines:
            raise ValueError(
                "nothing to evaluate: pass --ckpt PATH.ckpt (a checkpoint written by "
                "`pconv fit`) and/or --baselines"
            )
        if args.masks is not None and args.track != "paper":
            raise ValueError("--masks works with --track paper (the paper's buckets)")
        check_outputs(args.output, args.track, args.overwrite)
        methods: dict[str, Method] = {}
        net = None
        if args.ckpt is not None:
            net = load_network(resolve(args.ckpt, bare_repo_ids=True))
            net.check_size(args.size, args.size)
            methods[NETWORK_NAME] = network_method(net, device)
        check_memory(args.size, args.batch_size, net, device)
        methods.update({name: baseline_method(name) for name in baselines})
        source = open_images(args.images)
        file_masks = None
        if args.masks is not None:
            file_masks = FileEvalMasks(
                args.masks,
                args.size,
                args.mask_hole_value,
                args.per_bucket,
                lambda results, total: track(
                    results,
                    total=total,
                    description="reading masks",
                    console=err,
                    disable=not err.is_terminal,
                    transient=True,
                ),
            )
            console.print(file_masks.summary(), soft_wrap=True)
            if file_masks.polarity_warning:
                err.print(
                    f"warning: {file_masks.polarity_warning} (--mask-hole-value)", soft_wrap=True
                )
        eval_track = get_track(args.track, file_masks)
    # DataSourceError and CheckpointError are ValueErrors; OSError: unreadable/unwritable.
    except (ValueError, WeightsUnavailableError, OSError) as error:
        return fail(str(error))

    report, examples = evaluate(
        methods,
        source,
        eval_track,
        args.size,
        args.per_bucket,
        args.seed,
        args.batch_size,
        args.workers,
        optional,
        device,
        images=args.images,
    )
    report.config |= {"checkpoint": str(args.ckpt) if args.ckpt else None}
    for table in [report.compact_table()] if args.compact else report.tables():
        console.print(table)
    for method, value in report.fid.items():
        console.print(f"FID {method}: {value:.2f}")
    files = write_outputs(report, examples, eval_track, args.output)
    wandb_note = None
    if args.wandb:
        wandb_note = log_to_wandb(report, files, args.wandb_project, args.output)
    for note in [*report.notes, wandb_note] if wandb_note else report.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
