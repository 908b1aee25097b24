"""The evaluation loop: every method on the same fixed items of a track, scored the same way.

Each item is an image of the source, centre-cropped, with the track's fixed mask; each method
fills it, and :mod:`pconv.metrics` scores the composite per image. The sums per row become a
:class:`pconv.evaluation.report.Report`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from torch.utils.data import DataLoader, Dataset

from pconv.data.datasets import make_sample, spread_index
from pconv.data.images import (
    ImageSource,
    SkippingReader,
)
from pconv.data.masks import hole_pattern
from pconv.data.transforms import eval_transform
from pconv.evaluation import optional_metrics
from pconv.evaluation.baselines import Method
from pconv.evaluation.report import ALL_ROWS, Report, paper_reference
from pconv.evaluation.tracks import (
    Track,
)
from pconv.inference import Inpainter
from pconv.metrics import PERCENT, composite, per_image_scores
from pconv.nn.unet import PConvUNet
from pconv.utils import tool_args

#: Side of each picture in examples.png, pixels.
EXAMPLE_SIDE = 128
_UINT8_MAX = 255.0


class EvalItems(Dataset):
    """Item ``index``: an image spread evenly over the source
    (:func:`pconv.data.datasets.spread_index`; a source smaller than the items is cycled
    within each row, so that every photo is in every row, mirrored at every other
    repetition), resized and centre-cropped to ``size``, with
    the track's fixed mask ``index``; a sample dict (:func:`pconv.data.datasets.make_sample`)
    plus ``row``, ``index`` and ``skipped``: the files passed over as unreadable to get this
    image, one ``"<path>: <reason>"`` a line (empty when none)."""

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
        # Generated masks cycle through the rows with the index; a file's row is its own.
        rows = len(self.track.rows) if self.track.file_masks is None else 1
        count = len(self.reader)
        image = self.reader(spread_index(index, self.length, count, rows=rows))
        if self.length > count and (index // rows // count) % 2:
            image = image[:, ::-1]  # a photo repeated in its row is mirrored every other time
        image = self.transform(image=np.ascontiguousarray(image))["image"]
        mask, row = self.track.mask(self.seed, index, self.size)
        return {
            **make_sample(image, mask),
            "row": torch.tensor(row, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "skipped": "\n".join(self.reader.drain()),
        }

    def shows_example(self, index: int, row: int) -> bool:
        """Whether item ``index``, of row ``row``, may picture its row in examples.png: the
        first of its row, except that where a small source cycles within each generated row,
        row ``r`` is shown by its ``r``-th item (modulo the images), so the pictures take
        turns over the photos instead of showing the same one in every row."""
        rows, count = len(self.track.rows), len(self.reader)
        if self.track.file_masks is not None or self.length <= count:
            return True
        return index // rows >= row % min(count, self.length // rows)


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
    Returns the report and, per row index, the example pictures of one item (its first, or
    see :meth:`EvalItems.shows_example`): masked
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
    skipped: set[str] = set()
    loader = DataLoader(items, batch_size=batch_size, num_workers=workers)
    console = Console(stderr=True)
    show = console.is_terminal if progress is None else progress
    with Progress(console=console, disable=not show, transient=True) as bar:
        task = bar.add_task(f"evaluating {', '.join(methods)}", total=len(items))
        for batch in loader:
            image, mask, rows = batch["image"], batch["mask"], batch["row"].numpy()
            skipped.update(line for text in batch["skipped"] for line in text.splitlines())
            np.add.at(sums.count, rows, 1)
            # Batch positions of the first item of each row not yet pictured.
            indices = batch["index"].tolist()
            first = {
                r: i
                for i, r in reversed(list(enumerate(rows.tolist())))
                if items.shows_example(indices[i], r)
            }
            new_rows = [i for r, i in first.items() if r not in examples]
            # The "input" column shows holes as pconv.data.masks.hole_pattern's checks.
            pattern = torch.from_numpy(hole_pattern(*image.shape[-2:])).permute(2, 0, 1)
            for i in new_rows:
                masked = torch.where(mask[i] > 0, image[i], pattern / _UINT8_MAX)
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
    if skipped:
        first = min(skipped)
        notes.append(
            f"{len(skipped)} unreadable image(s) of {images or 'the source'} were skipped, each "
            f"replaced by the next readable one (e.g. {first})"
        )
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
