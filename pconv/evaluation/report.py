"""``pconv evaluate``: the paper's per-bucket report for a checkpoint, next to classical baselines.

Every method (the network and the baselines of :mod:`pconv.evaluation.baselines`) sees the
same centre-cropped images with the same fixed masks of a track
(:mod:`pconv.evaluation.tracks`), and is scored the same way, by :mod:`pconv.metrics`: per
image on the composite (valid pixels from the input, holes from the method, clamped to
[0, 1]), then averaged per row.

- ℓ1 (%): mean absolute error on the [0, 1] scale, in percent;
- PSNR (dB): per image with data range 1, then the mean (not the PSNR of the pooled MSE);
- SSIM: gaussian window 11, sigma 1.5, data range 1, K1 0.01, K2 0.03 (Wang et al.).

Outputs in ``-o OUTDIR``: ``report.csv`` and ``report.json`` (one entry per method × row and
"all"), ``metrics_vs_hole_ratio.png`` (one line per method) and ``examples.png`` (the first
item of each row, filled by every method); the tables are printed, and logged to W&B with
``--wandb``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from pconv.data.datasets import make_sample
from pconv.data.images import DataSourceError, ImageSource, SkippingReader, open_image_source
from pconv.data.transforms import eval_transform
from pconv.evaluation import optional_metrics
from pconv.evaluation.baselines import BASELINES, Method, baseline_method
from pconv.evaluation.plots import Panel, image_grid, line_charts, png_bytes
from pconv.evaluation.tracks import TRACK_NAMES, Track, get_track
from pconv.inference import Inpainter, atomic_write
from pconv.metrics import PERCENT, composite, per_image_scores
from pconv.weights import CheckpointError, load_network

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
DEFAULT_BASELINES = ",".join(BASELINES)
DEFAULT_SIZE = 512
DEFAULT_PER_ROW = 10
DEFAULT_BATCH = 8
DEFAULT_WORKERS = 2
#: Side of each picture in examples.png, pixels.
EXAMPLE_SIDE = 128
#: Hole pixels are shown in this colour in the "input" column of examples.png.
HOLE_COLOUR = (255, 255, 255)
_UINT8_MAX = 255.0


class EvalItems(Dataset):
    """Item ``index``: image ``index % len(source)``, resized and centre-cropped to
    ``size``, with the track's fixed mask ``index``; a sample dict
    (:func:`pconv.data.datasets.make_sample`) plus ``row`` and ``index``."""

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
        image = self.transform(image=self.reader(index))["image"]
        mask, row = self.track.mask(self.seed, index, self.size)
        return {
            **make_sample(image, mask),
            "row": torch.tensor(row, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
        }


@dataclass
class Report:
    """An evaluation's results. ``rows`` holds one dict per method × row and per method for
    all rows (``row == "all"``): ``method, row, group, split, count, hole_ratio`` (mean) and
    one value per metric key of :data:`COLUMNS` that was computed (ℓ1 in percent)."""

    config: dict
    metrics: list[str]
    methods: list[str]
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))
    rows: list[dict] = field(default_factory=list)
    fid: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def value(self, method: str, row: str, metric: str) -> float:
        """The value of ``metric`` for ``method`` in row ``row`` (a row key or "all")."""
        return next(r[metric] for r in self.rows if r["method"] == method and r["row"] == row)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=True)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
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
            for header in (*headers, "images", *self.methods):
                table.add_column(header, justify="right")
            for key in keys:
                cells = _cells([self.value(m, key, metric) for m in self.methods], column)
                row = first[key]
                labels = (row["group"], row["split"]) if paper else (row["group"],)
                if key == ALL_ROWS:
                    labels = (ALL_ROWS, "")[: len(labels)]
                table.add_row(*labels, str(row["count"]), *cells)
            tables.append(table)
        return tables

    def group_means(self, method: str, metric: str) -> dict[str, tuple[float, float, int]]:
        """Per group (hole-ratio bucket with both border splits, or LaMa preset) that has
        images: ``(mean hole ratio, mean of metric, images)`` of ``method``."""
        cells = [r for r in self.rows if r["row"] != ALL_ROWS and r["count"]]
        means = {}
        for group in dict.fromkeys(r["group"] for r in cells):
            part = [r for r in cells if r["method"] == method and r["group"] == group]
            count = sum(r["count"] for r in part)
            ratio, value = (
                sum(r[k] * r["count"] for r in part) / count for k in ("hole_ratio", metric)
            )
            means[group] = (ratio, value, count)
        return means

    def chart(self) -> list[Panel]:
        """One panel per metric: its mean per group (hole-ratio bucket, both border splits, or
        LaMa preset) against the group's mean hole ratio, one series per method."""
        panels = []
        for metric in self.metrics:
            panel = Panel(COLUMNS[metric].chart_title, "hole ratio")
            for method in self.methods:
                points = sorted(v[:2] for v in self.group_means(method, metric).values())
                panel.series[method] = ([x for x, _ in points], [y for _, y in points])
            panels.append(panel)
        return panels

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


def evaluate(
    methods: dict[str, Method],
    source: ImageSource,
    track: Track,
    size: int,
    per_row: int,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    workers: int = 0,
    optional: tuple[str, ...] = (),
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[Report, dict[int, list[np.ndarray]]]:
    """Score every method on the track's fixed items.

    ``optional`` names metrics of :mod:`pconv.evaluation.optional_metrics` to add when their
    weights are available (a note otherwise). Returns the report and, per row index, the
    example pictures of its first item: masked input, each method's composite, ground truth.
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
    with Progress(disable=not progress, transient=True) as bar:
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

    report = Report(
        config={"track": track.name, "size": size, "per_row": per_row, "seed": seed},
        metrics=metrics,
        methods=list(methods),
        notes=[n for n in notes if n],
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


def write_outputs(
    report: Report, examples: dict[int, list[np.ndarray]], track: Track, out_dir: Path
) -> dict[str, Path]:
    """Write report.csv, report.json, metrics_vs_hole_ratio.png and examples.png."""
    row_labels = [track.rows[r].key for r in sorted(examples)]
    grid = image_grid(
        [examples[r] for r in sorted(examples)],
        ["input", *report.methods, "ground truth"],
        row_labels,
    )
    files = {
        "csv": (out_dir / "report.csv", report.to_csv().encode()),
        "json": (out_dir / "report.json", report.to_json().encode()),
        "plot": (out_dir / "metrics_vs_hole_ratio.png", png_bytes(line_charts(report.chart()))),
        "examples": (out_dir / "examples.png", png_bytes(grid)),
    }
    return {name: atomic_write(path, data) for name, (path, data) in files.items()}


def log_to_wandb(report: Report, files: dict[str, Path], project: str) -> str | None:
    """Log the report to a W&B run (mode from the environment, e.g. ``WANDB_MODE=offline``);
    returns a note when logging failed, which never stops the evaluation."""
    try:
        import wandb

        run = wandb.init(project=project, job_type="evaluation", config=report.config)
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
        run.finish()
    except Exception as error:  # W&B raises many types (usage, network, auth): report any
        return f"W&B logging failed ({type(error).__name__}: {error}); the files are written"
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
        return open_image_source("filelist", spec)
    if path.is_dir():
        return open_image_source("folder", spec)
    raise DataSourceError(
        f"--images {spec} is neither 'samples', a folder of images nor a file list"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, help="checkpoint written by `pconv fit`")
    parser.add_argument(
        "--images",
        default="samples",
        help="'samples' (default), 'samples:heldout', an image folder or file list",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="square crop side")
    parser.add_argument(
        "--per-bucket",
        type=int,
        default=DEFAULT_PER_ROW,
        help="images per row: per bucket × border split (paper) or per preset (lama)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed masks")
    parser.add_argument("--track", choices=TRACK_NAMES, default="paper")
    parser.add_argument(
        "--baselines",
        default=DEFAULT_BASELINES,
        help=f"comma-separated, or 'none' (default {DEFAULT_BASELINES})",
    )
    parser.add_argument(
        "--optional-metrics",
        default=",".join(optional_metrics.OPTIONAL_METRICS),
        help="lpips,fid when their weights are cached; 'none' to skip",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="loader workers")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument(
        "--compact",
        action="store_true",
        help="print one PSNR table, a row per hole-ratio bucket (the files are unchanged)",
    )
    parser.add_argument("--wandb", action="store_true", help="also log to Weights & Biases")
    parser.add_argument("--wandb-project", default="pconv")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()

    def fail(message: str) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        if args.per_bucket < 1:
            raise ValueError(f"--per-bucket must be at least 1, got {args.per_bucket}")
        baselines = _names(args.baselines, BASELINES, "baseline")
        optional = _names(args.optional_metrics, optional_metrics.OPTIONAL_METRICS, "metric")
        if args.ckpt is None and not baselines:
            raise ValueError(
                "nothing to evaluate: pass --ckpt PATH.ckpt (a checkpoint written by "
                "`pconv fit`) and/or --baselines"
            )
        methods: dict[str, Method] = {}
        if args.ckpt is not None:
            net = load_network(args.ckpt)
            net.check_size(args.size, args.size)
            inpainter = Inpainter(net, device)
            methods[NETWORK_NAME] = lambda image, mask: inpainter.predict(image, mask).cpu()
        methods.update({name: baseline_method(name) for name in baselines})
        source = open_images(args.images)
        track = get_track(args.track)
    except (ValueError, CheckpointError, OSError) as error:  # DataSourceError is a ValueError
        return fail(str(error))

    report, examples = evaluate(
        methods,
        source,
        track,
        args.size,
        args.per_bucket,
        args.seed,
        args.batch_size,
        args.workers,
        optional,
        device,
    )
    report.config |= {"images": args.images, "checkpoint": str(args.ckpt) if args.ckpt else None}
    for table in [report.compact_table()] if args.compact else report.tables():
        console.print(table)
    for method, value in report.fid.items():
        console.print(f"FID {method}: {value:.2f}")
    files = write_outputs(report, examples, track, args.output)
    wandb_note = log_to_wandb(report, files, args.wandb_project) if args.wandb else None
    for note in [*report.notes, wandb_note] if wandb_note else report.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
