"""``pconv push``: publish a trained network on the Hugging Face Hub, with a model card.

The repo holds the safe pair (``model.safetensors`` and ``config.json``, see
:mod:`pconv.weights`) and ``README.md``, a model card built with ``huggingface_hub``'s
``ModelCard``/``ModelCardData``: the hub's metadata (licence, library, tags, datasets,
pipeline, the evaluation's overall figures as model-index results), the training data and
steps, the evaluation set behind the per-bucket table of a ``pconv evaluate`` report, the
limitations, the mask convention and how to load the model. Anyone loads it with
``Inpainter.from_pretrained("user/name")`` or ``--ckpt hf://user/name[@revision]``.
(``PyTorchModelHubMixin`` would rebuild the network from ``config.json`` by itself, around
the schema and shape checks of :mod:`pconv.weights.architecture`, so it is not used.)

    pconv push --ckpt run/last.ckpt --repo user/name --report eval/report.json
    pconv push --ckpt run/last.ckpt --repo user/name --local-dir card/   # write, don't upload

Uploading needs a token (``hf auth login`` or ``HF_TOKEN``); without one, or without a
network, the command says so in one line (exit code 2).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from pconv.utils.tool_args import OneLineParser

PROG = "pconv push"
CARD_FILE = "README.md"
_NOT_A_NUMBER = "–"
_HTTP_LIBRARIES = frozenset({"httpx", "httpx2", "httpcore", "requests", "urllib3"})


def report_table(report: dict[str, Any]) -> str:
    """A markdown table of the network's figures in a ``pconv evaluate`` report
    (``report.json``; the network is its first method): one line per row (hole-ratio bucket
    and border split, or mask preset, and ``all``), one column per metric, so that it fits a
    page; the baselines stay in the report."""
    metrics, method = report["metrics"], report["methods"][0]
    lines = [
        "| masks | split | images | hole ratio | " + " | ".join(metrics) + " |",
        "|" + "---|" * (4 + len(metrics)),
    ]
    for entry in (r for r in report["rows"] if r["method"] == method):
        cells = [entry.get(metric, math.nan) for metric in metrics]
        cells = [f"{value:.3f}" if math.isfinite(value) else _NOT_A_NUMBER for value in cells]
        key = entry["row"]
        label = "all" if key == "all" else entry.get("group", key)
        split = "" if key == "all" else entry.get("split", "")
        lines.append(
            f"| {label} | {split} | {entry['count']} | {entry['hole_ratio']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def public(config: Any) -> Any:
    """``config`` without the internal keys (``_instantiator`` and the like), at any depth."""
    if isinstance(config, dict):
        return {k: public(v) for k, v in config.items() if not str(k).startswith("_")}
    if isinstance(config, list):
        return [public(v) for v in config]
    return config


#: The model card's markdown, rendered by ``huggingface_hub.ModelCard.from_template`` (jinja2)
#: below the YAML metadata of its ``ModelCardData``.
CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ repo_id }}

An image-inpainting network with partial convolutions (Liu et al., ECCV 2018), trained with
pconv {{ version }}: a PConv U-Net with {{ net.levels }} levels and width multiplier
{{ net.width_mult }} (input normalisation `{{ net.normalization }}`).

## How to load

```python
from PIL import Image
from pconv import Inpainter

inpainter = Inpainter.from_pretrained("{{ repo_id }}")   # pin a revision: "{{ repo_id }}@<commit>"
filled = inpainter(Image.open("photo.png"), Image.open("mask.png"))
```

Command line: `pconv inpaint --ckpt hf://{{ repo_id }} photo.png mask.png -o filled.png`.
The weights are safetensors with the architecture in their metadata: loading them runs no code
from this repo.

## Inputs and the mask convention

{{ convention }}. Masks are 1 = valid, 0 = hole; mask files are black where the hole is. Any
image size works through `Inpainter` (reflect-padded to a multiple of {{ multiple }}, cropped
back); only hole pixels change.

## Training

{{ training }}

## Evaluation

{{ evaluation }}

## Limitations

- It fills holes from the pixels around them; it does not know what was there. Large holes
  come out blurry, and holes that touch the image border are harder (the table's border
  split).
- It was trained at {{ train_size }}: photos of very different size or content (faces,
  text, drawings, unless they were its training data) are filled less well.
- Its quality is what the table says on that data and those masks, nothing more. Do not use
  it to alter photographs of people in ways that deceive; check the training data's terms
  before any commercial use (licence: `{{ license }}`).

## Training config

```yaml
{{ config }}```
"""


def _training_text(data: dict[str, Any], progress: dict[str, Any]) -> str:
    keys = ("source", "image_size", "mask_preset", "mask_dir")
    parts = [f"{k}: `{data[k]}`" for k in keys if data.get(k) is not None]
    steps = progress.get("global_step")
    if steps is not None:
        parts.append(f"{steps} optimizer steps ({progress.get('epoch', '?')} epochs)")
    return (", ".join(parts) + ".") if parts else "The checkpoint records no data config."


def _evaluation_text(report: dict[str, Any] | None) -> str:
    if not report:
        return "No evaluation report was given (`pconv push --report eval/report.json`)."
    config = report.get("config", {})
    total = next((r["count"] for r in report["rows"] if r["row"] == "all"), "?")
    masks = f"mask files in `{config['masks']}`" if config.get("masks") else "generated masks"
    size = config.get("size", "?")
    return (
        f"`pconv evaluate`, track `{config.get('track', '?')}`: {total} images from "
        f"`{config.get('images') or 'the default set'}` at {size}×{size} px, {masks}, seed "
        f"{config.get('seed', '?')}. Values on the composite (ℓ1 in percent); the baselines' "
        "figures are in report.json.\n\n" + report_table(report)
    )


def _eval_results(report: dict[str, Any] | None, dataset: str) -> list:
    """The report's overall figures as the hub's model-index results."""
    from huggingface_hub import EvalResult

    if not report:
        return []
    method = report["methods"][0]
    overall = next((r for r in report["rows"] if r["row"] == "all" and r["method"] == method), {})
    return [
        EvalResult(
            task_type="image-to-image",
            task_name="Image inpainting",
            dataset_type=dataset,
            dataset_name=f"{dataset} ({report.get('config', {}).get('track', '?')} track)",
            metric_type=metric,
            metric_value=round(overall[metric], 3),
        )
        for metric in report["metrics"]
        if isinstance(overall.get(metric), int | float) and math.isfinite(overall[metric])
    ]


def model_card(
    repo_id: str,
    architecture: dict[str, Any],
    checkpoint: dict[str, Any],
    report: dict[str, Any] | None,
    license: str = "other",
    datasets: list[str] | None = None,
) -> str:
    """The README.md of a pushed model: ``ModelCardData`` metadata (licence, library, tags,
    datasets, pipeline, evaluation results) and the card's text."""
    import yaml
    from huggingface_hub import ModelCard, ModelCardData

    data = dict(checkpoint.get("datamodule_hyper_parameters", {}))
    datasets = datasets or ([str(data["source"])] if data.get("source") else [])
    card_data = ModelCardData(
        license=license,
        # The hub asks "other" licences for a name: here, the training data's terms.
        license_name="training-data-terms" if license == "other" else None,
        library_name="pconv",
        pipeline_tag="image-to-image",
        tags=["image-inpainting", "partial-convolutions", "pconv"],
        datasets=datasets or None,
        model_name=repo_id,
        eval_results=_eval_results(report, datasets[0] if datasets else "unspecified") or None,
    )
    hyper_parameters = public(dict(checkpoint.get("hyper_parameters", {})))
    config = yaml.safe_dump(
        {"model": hyper_parameters, "data": public(data)}, sort_keys=False, allow_unicode=True
    )
    card = ModelCard.from_template(
        card_data,
        template_str=CARD_TEMPLATE,
        repo_id=repo_id,
        version=architecture["pconv_version"],
        net=architecture["net"]["init_args"],
        convention=architecture["input_convention"],
        multiple=architecture["multiple"],
        training=_training_text(data, checkpoint),
        evaluation=_evaluation_text(report),
        train_size=f"{data['image_size']} px" if data.get("image_size") else "its crop size",
        license=license,
        config=config,
    )
    return str(card)


def write_repo(
    spec: str,
    repo_id: str,
    folder: str | os.PathLike,
    report_path: Path | None,
    license: str = "other",
    datasets: list[str] | None = None,
) -> list[Path]:
    """Write the repo's files (safe pair and model card) into ``folder``; returns them."""
    from pconv.utils.files import atomic_write
    from pconv.weights.checkpoints import read_checkpoint
    from pconv.weights.load import load_network, resolve
    from pconv.weights.safetensors_pair import SAFETENSORS_FILE, architecture, save_safetensors

    report = None
    if report_path is not None:
        try:
            report = json.loads(report_path.read_text())
            report_table(report)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"report {report_path} is not a `pconv evaluate` report.json "
                f"({type(error).__name__}: {error})"
            ) from None
    path = resolve(spec)
    net = load_network(path)
    checkpoint = {} if path.suffix == ".safetensors" else read_checkpoint(path, mmap=True)
    folder = Path(folder)
    files = list(save_safetensors(net, folder / SAFETENSORS_FILE))
    card = model_card(repo_id, architecture(net), checkpoint, report, license, datasets)
    files.append(atomic_write(folder / CARD_FILE, card.encode()))
    return files


def upload(folder: Path, repo_id: str, private: bool) -> str:
    """Create ``repo_id`` if need be and upload ``folder``; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id, folder_path=folder, commit_message="pconv push: weights and model card"
    )
    return commit.commit_url


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog=PROG, description="Publish a trained network on the Hugging Face Hub."
    )
    parser.add_argument("--ckpt", help="checkpoint of `pconv fit` (or .safetensors, URL)")
    parser.add_argument("--repo", help="hub repo id, user/name")
    parser.add_argument("--report", type=Path, help="report.json of `pconv evaluate`")
    parser.add_argument(
        "--local-dir",
        type=Path,
        help="write the repo's files into this (new or empty) folder instead of uploading",
    )
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument(
        "--license",
        default="other",
        help="the card's licence id (apache-2.0, cc-by-nc-4.0, ...; default other: the "
        "training data's terms apply)",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        help="hub dataset id the network was trained on (repeatable; default: the "
        "checkpoint's data source)",
    )
    args = parser.parse_args(argv)

    def fail(message: str) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2

    if args.ckpt is None or args.repo is None:
        return fail("pass --ckpt PATH.ckpt (written by `pconv fit`) and --repo user/name")
    from pconv.weights.errors import CheckpointError, WeightsUnavailableError
    from pconv.weights.hub import parse_repo

    try:
        repo_id, revision = parse_repo(args.repo)
    except CheckpointError:
        return fail(f"--repo {args.repo} is not a hub repo id; give user/name")
    if revision:
        return fail(f"--repo {args.repo}: push to user/name, without @revision")
    if args.report is not None and not args.report.is_file():
        return fail(f"report {args.report} does not exist; write it with `pconv evaluate`")
    if args.local_dir is not None and args.local_dir.exists() and not args.local_dir.is_dir():
        return fail(f"--local-dir {args.local_dir} is a file; name a new or empty folder")
    if args.local_dir is not None and args.local_dir.exists() and any(args.local_dir.iterdir()):
        return fail(f"--local-dir {args.local_dir} is not empty; name a new or empty folder")
    if args.local_dir is None:
        from huggingface_hub import get_token

        if get_token() is None:
            return fail(
                "not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN "
                "(or write the repo's files with --local-dir DIR)"
            )
    card_args = (args.report, args.license, args.dataset)
    try:
        if args.local_dir is not None:
            files = write_repo(args.ckpt, repo_id, args.local_dir, *card_args)
            print(f"{PROG}: wrote {', '.join(str(f) for f in files)}")
            return 0
        with tempfile.TemporaryDirectory() as folder:
            write_repo(args.ckpt, repo_id, folder, *card_args)
            url = upload(Path(folder), repo_id, args.private)
    except (CheckpointError, WeightsUnavailableError, ValueError, OSError) as error:
        return fail(str(error))
    except Exception as error:  # the hub's HTTP, auth and transport errors
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        # Transport errors come from the hub's HTTP library, which changes between its
        # versions (requests, httpx, httpx2): recognised by their package.
        transport = type(error).__module__.split(".")[0] in _HTTP_LIBRARIES
        if not (transport or isinstance(error, HfHubHTTPError | OfflineModeIsEnabled)):
            raise
        cause = str(error).splitlines()[0] if str(error) else type(error).__name__
        return fail(
            f"cannot upload to {repo_id} ({cause}); check the network and your login "
            "(`hf auth whoami`), or write the files with --local-dir DIR"
        )
    print(f"{PROG}: pushed {repo_id}: {url}")
    return 0
