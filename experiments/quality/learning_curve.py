"""Does more training help? Held-out PSNR per hole-ratio bucket against training steps.

Trains with a pconv config (default: the demo's, on the training photos) and, every
``--every`` steps, scores the network on the held-out photos through the code path of
``pconv evaluate`` (:func:`pconv.evaluation.loop.evaluate`: same images, same fixed masks,
same metrics). Telea, Navier–Stokes and mean fill are scored once on the same items and drawn
as flat lines. After every point the results are rewritten, so a run cut short keeps its
curve:

- ``curve.json``: the settings, the baselines' PSNR per bucket and one entry per point
  (step, CPU seconds so far, PSNR per bucket and overall); data loads in-process
  (``num_workers=0``) so that the CPU seconds are all of the run's work;
- ``curve.png``: one panel per bucket, PSNR (dB) against training steps.

    nice -n 10 python experiments/quality/learning_curve.py --steps 6000 --every 500 \\
        -o experiments/quality/results [-- --trainer.some_key=value ...]

Everything after ``--`` goes to the training CLI (as for ``pconv fit``).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import lightning as L
from PIL import Image

from pconv.data.samples import sample_source
from pconv.evaluation.baselines import BASELINES, baseline_method
from pconv.evaluation.loop import evaluate
from pconv.evaluation.plots import BACKGROUND, Panel, line_charts, png_bytes
from pconv.evaluation.report import ALL_ROWS
from pconv.evaluation.tracks import get_track
from pconv.inference import Inpainter
from pconv.training.cli import make_cli
from pconv.training.module import InpaintingModule
from pconv.utils.files import atomic_write

NETWORK = "pconv"
METRIC = "psnr"
#: Panels per row of the picture.
PANELS_PER_ROW = 3


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads (the run loads data in-process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bucket_psnr(report, method: str) -> dict[str, float]:
    """Mean PSNR per bucket (both border splits) and over all items."""
    means = {group: value for group, (_, value, _) in report.group_means(method, METRIC).items()}
    return means | {ALL_ROWS: report.value(method, ALL_ROWS, METRIC)}


def picture(results: dict) -> Image.Image:
    """One panel per bucket: pconv's PSNR against steps, each baseline as a flat line."""
    steps = [point["step"] for point in results["points"]]
    span = [min(steps), max(max(steps), 1)]
    panels = []
    for group in results["baselines"][next(iter(results["baselines"]))]:
        panel = Panel(f"PSNR (dB), holes {group}", "training step")
        panel.series[NETWORK] = (steps, [p[METRIC][group] for p in results["points"]])
        for name, levels in results["baselines"].items():
            panel.series[name] = (span, [levels[group]] * 2)
        panels.append(panel)
    rows = [
        line_charts(panels[i : i + PANELS_PER_ROW]) for i in range(0, len(panels), PANELS_PER_ROW)
    ]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), BACKGROUND)
    for i, row in enumerate(rows):
        sheet.paste(row, (0, sum(r.height for r in rows[:i])))
    return sheet


class HeldOutCurve(L.Callback):
    """Scores the network on the held-out items every ``every`` steps and writes the results."""

    def __init__(self, every: int, out_dir: Path, size: int, per_row: int, settings: dict):
        self.every, self.out_dir, self.size, self.per_row = every, out_dir, size, per_row
        self.source, self.track = sample_source("heldout"), get_track("paper")
        self.start = time.monotonic()
        methods = {name: baseline_method(name) for name in BASELINES}
        report, _ = self._evaluate(methods)
        self.results = {
            "settings": settings,
            "images": "samples:heldout",
            "items": self.track.length(per_row),
            "baselines": {name: bucket_psnr(report, name) for name in BASELINES},
            "points": [],
        }

    def _evaluate(self, methods):
        return evaluate(methods, self.source, self.track, self.size, self.per_row, progress=False)

    def record(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        inpainter = Inpainter(module.net, module.device)
        report, _ = self._evaluate({NETWORK: lambda i, m: inpainter.predict(i, m).cpu()})
        module.train()  # Inpainter switched the network to eval mode
        point = {
            "step": trainer.global_step,
            "cpu_s": round(cpu_seconds(), 1),
            "wall_s": round(time.monotonic() - self.start, 1),
            METRIC: bucket_psnr(report, NETWORK),
        }
        self.results["points"].append(point)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.out_dir / "curve.json", json.dumps(self.results, indent=1).encode())
        atomic_write(self.out_dir / "curve.png", png_bytes(picture(self.results)))
        telea = self.results["baselines"]["telea"][ALL_ROWS]
        print(
            f"step {point['step']}: held-out PSNR {point[METRIC][ALL_ROWS]:.2f} dB "
            f"(telea {telea:.2f}), {point['cpu_s']:.0f} CPU s",
            flush=True,
        )

    def on_train_start(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        self.record(trainer, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every == 0 or step == trainer.max_steps:
            self.record(trainer, module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--steps", type=int, default=6000, help="training steps")
    parser.add_argument("--every", type=int, default=500, help="steps between points")
    parser.add_argument("--per-bucket", type=int, default=10, help="items per bucket × split")
    parser.add_argument("-o", "--output", type=Path, default=Path("experiments/quality/results"))
    parser.add_argument(
        "--run-dir", type=Path, default=Path("outputs/quality"), help="checkpoints and logs"
    )
    parser.add_argument("extra", nargs="*", help="training CLI keys (after --)")
    args = parser.parse_args()
    run_dir = args.run_dir
    cli_args = [
        "--config",
        args.config,
        f"--trainer.max_steps={args.steps}",
        f"--trainer.default_root_dir={run_dir}",
        "--trainer.logger.class_path=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.init_args={json.dumps({'save_dir': str(run_dir)})}",
        "--trainer.limit_val_batches=0",  # the curve is the validation
        "--checkpoint.monitor=null",
        f"--checkpoint.dirpath={run_dir / 'checkpoints'}",
        "--data.num_workers=0",
        "--image_grid.num_images=1",
        *args.extra,
    ]
    cli = make_cli(cli_args, save_config_callback=None, run=False)
    size = cli.datamodule.hparams.image_size
    settings = {"config": args.config, "steps": args.steps, "every": args.every, "cli": cli_args}
    curve = HeldOutCurve(args.every, args.output, size, args.per_bucket, settings)
    cli.trainer.callbacks.append(curve)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    print(f"wrote {args.output / 'curve.json'} and {args.output / 'curve.png'}")


if __name__ == "__main__":
    main()
