"""The report of an evaluation: rows per method × hole-ratio bucket, tables, charts and files.

:class:`Report` holds the scores (:func:`pconv.evaluation.loop.evaluate` fills it) and the
paper's reference figures; :func:`write_outputs` writes ``report.csv``, ``report.json``, the
chart and ``examples.png``; :func:`log_to_wandb` logs them to Weights & Biases.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table

from pconv.data.buckets import BUCKETS, bucket_label
from pconv.evaluation.plots import BarPanel, Panel, bar_charts, image_grid, line_charts, png_bytes
from pconv.evaluation.tracks import (
    NVIDIA_TEST_MASKS,
    OUTSIDE_ROW,
    PAPER_SIZE,
    PAPER_TABLE1,
    Track,
)
from pconv.utils.files import atomic_write


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
ALL_ROWS = "all"
#: Method name of the paper's figures in report.csv.
REFERENCE_NAME = "paper (reference)"
#: The paper's setup, as the reference's label states it.
PAPER_SETUP = "PConv, Liu et al. 2018, Table 1: Places2 val, 512 px, NVIDIA test masks"
#: Output files of an evaluation, by key; the chart's name depends on the track.
CHART_FILES = {"paper": "metrics_vs_hole_ratio.png", "lama": "metrics_by_preset.png"}
#: Metrics the paper's Table 1 reports (and the reference shows).
PAPER_METRICS = ("l1", "psnr", "ssim")


def _bucket_centres() -> dict[str, float]:
    """Bucket label -> the bucket's centre ratio, where the paper's figures are plotted."""
    return {bucket_label(b): (low + high) / 2 for b, (low, high) in enumerate(BUCKETS)}


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
            # "border" yes/no, not the CSV's no_border/border: the table stays within 80
            # columns with four methods, the paper's column and the outside-buckets row.
            headers = ("hole ratio", "border") if paper else ("masks",)
            reference = self.reference and metric in PAPER_METRICS
            for header in (*headers, "images", *self.methods):
                table.add_column(header, justify="right")
            if reference:
                table.add_column("paper*", justify="right", style="dim")
                table.caption = f"* {self.reference['label']}"
            for key in keys:
                cells = _cells([self.value(m, key, metric) for m in self.methods], column)
                row = first[key]
                border = _BORDER_CELLS.get(row["split"], "")
                labels = (row["group"], border) if paper else (row["group"],)
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


#: The border split of a row as the terminal table shows it.
_BORDER_CELLS = {"no_border": "no", "border": "yes"}


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
        from pconv.training.cli import configure_wandb_mode

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
