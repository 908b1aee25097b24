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
reference, saying where the run's setup differs from the paper's; for a published network
(``--ckpt mmagic-places2``) its publisher's figures are noted as a labelled reference too.

Outputs in ``-o OUTDIR`` (existing ones are kept unless ``--overwrite``): ``report.csv`` and
``report.json`` (one entry per method × row and "all", plus the paper reference),
``metrics_vs_hole_ratio.png`` (paper track: one line per method) or ``metrics_by_preset.png``
(LaMa track: grouped bars) and ``examples.png`` (one item of each row, filled by every
method); the tables are printed, and logged to W&B with ``--wandb`` (offline, under
``OUTDIR``, when not logged in).

Python entry point (stable): ``report, examples = evaluate(methods, source, track, size,
per_row)`` (:mod:`pconv.evaluation.loop`) with ``methods`` a dict of name →
``method(image, mask) -> output`` (e.g. :func:`pconv.evaluation.loop.network_method` and
:func:`pconv.evaluation.baselines.baseline_method`), ``source`` an image source, ``track``
from :func:`pconv.evaluation.tracks.get_track`; then ``report.tables()`` (rich tables),
``report.rows`` and :func:`pconv.evaluation.report.write_outputs`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import ExitStack
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import track

from pconv.data.images import (
    IMAGE_EXTENSIONS,
    DataSourceError,
    ImageSource,
    SkippingReader,
    UnreadableImageError,
)
from pconv.data.nvidia_masks import FileEvalMasks
from pconv.data.sources import open_image_source
from pconv.evaluation.baselines import BASELINES, Method, baseline_method
from pconv.evaluation.loop import evaluate, network_method
from pconv.evaluation.report import log_to_wandb, output_files, write_outputs
from pconv.evaluation.tracks import (
    get_track,
)
from pconv.nn.unet import PConvUNet
from pconv.utils import tool_args
from pconv.utils.choices import OPTIONAL_METRICS
from pconv.utils.devices import resolve_device
from pconv.utils.files import check_writable
from pconv.utils.lock import folder_lock
from pconv.utils.memory import NET_BYTES_PER_PIXEL, check_fits, physical_memory
from pconv.utils.threads import choose_threads
from pconv.weights.errors import WeightsUnavailableError
from pconv.weights.load import load_network, resolve
from pconv.weights.named import reference_note

PROG = "pconv evaluate"
NETWORK_NAME = "pconv"
#: Rough peak memory of evaluating one image, bytes per pixel: the image, mask, each method's
#: output, composite and score maps (float32); the network adds
#: :data:`pconv.utils.memory.NET_BYTES_PER_PIXEL`. An estimate to refuse impossible sizes early.
IMAGE_BYTES_PER_PIXEL = 4 * 100


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
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        raise DataSourceError(
            f"--images {spec} is a single image; give a folder of images or a text file "
            "listing image paths, one a line"
        )
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


def check_memory(size: int, batch_size: int, net: PConvUNet | None, device: torch.device) -> None:
    """Refuse a ``--size``/``--batch-size`` whose estimated peak memory exceeds the device's
    total memory (see :data:`IMAGE_BYTES_PER_PIXEL`)."""
    per_pixel = IMAGE_BYTES_PER_PIXEL + (NET_BYTES_PER_PIXEL * net.width_mult if net else 0)
    if device.type == "cuda":
        available = torch.cuda.get_device_properties(device).total_memory
    else:
        available = physical_memory()
    check_fits(
        per_pixel * size * size * batch_size,
        available,
        f"--size {size} with --batch-size {batch_size} on {device.type}",
        "lower --size or --batch-size",
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

    threads = choose_threads(args.workers)
    if threads is not None:
        torch.set_num_threads(threads)
    # Every input and output is checked here, before any work or any file is written.
    stack = ExitStack()
    try:
        device = resolve_device(args.device)
        _check_numbers(args)
        baselines = _names(args.baselines, BASELINES, "baseline")
        optional = _names(args.optional_metrics, OPTIONAL_METRICS, "metric")
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
        # Last, so that a refused run leaves no folder behind: one evaluation at a time
        # writes into -o, and what it holds is checked again now that no other can write.
        stack.enter_context(folder_lock(args.output, "another `pconv evaluate`"))
        check_outputs(args.output, args.track, args.overwrite)
        check_writable(args.output)
    # DataSourceError and CheckpointError are ValueErrors; OSError: unreadable/unwritable,
    # FolderBusyError included.
    except (ValueError, WeightsUnavailableError, OSError) as error:
        stack.close()
        return fail(str(error))
    with stack:
        return _run(args, methods, source, eval_track, optional, device, console)


def _run(args, methods, source, eval_track, optional, device, console) -> int:
    """Evaluate and write the report into ``args.output`` (checked and held by the caller)."""
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
    published = reference_note(args.ckpt)
    if published:
        report.notes.append(published)
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
    for path in files.values():  # one per line: a list of paths would wrap mid-path
        console.print(f"wrote {path}", soft_wrap=True)
    return 0
