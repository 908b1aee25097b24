"""``pconv push``: publish a trained network on the Hugging Face Hub, with a model card.

The repo holds the safe pair (``model.safetensors`` and ``config.json``, see
:mod:`pconv.weights`) and ``README.md``, a model card with the training config, the data,
the per-bucket table of a ``pconv evaluate`` report, the mask convention and how to load the
model. Anyone loads it with ``Inpainter.from_pretrained("user/name")`` or
``--ckpt hf://user/name[@revision]``.

    pconv push --ckpt run/last.ckpt --repo user/name --report eval/report.json
    pconv push --ckpt run/last.ckpt --repo user/name --local-dir card/   # write, don't upload

Uploading needs a token (``hf auth login`` or ``HF_TOKEN``).
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


def report_table(report: dict[str, Any]) -> str:
    """A markdown table of a ``pconv evaluate`` report (``report.json``): one line per row
    (hole-ratio bucket and border split, or mask preset, and ``all``), one column per
    metric × method."""
    metrics, methods = report["metrics"], report["methods"]
    columns = [f"{metric} ({method})" for metric in metrics for method in methods]
    lines = [
        "| masks | split | images | hole ratio | " + " | ".join(columns) + " |",
        "|" + "---|" * (4 + len(columns)),
    ]
    rows = list(dict.fromkeys(r["row"] for r in report["rows"]))
    for key in rows:
        entries = {r["method"]: r for r in report["rows"] if r["row"] == key}
        first = next(iter(entries.values()))
        cells = []
        for metric in metrics:
            for method in methods:
                value = entries.get(method, {}).get(metric, math.nan)
                cells.append(f"{value:.3f}" if math.isfinite(value) else _NOT_A_NUMBER)
        label = "all" if key == "all" else first.get("group", key)
        split = "" if key == "all" else first.get("split", "")
        lines.append(
            f"| {label} | {split} | {first['count']} | {first['hole_ratio']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def model_card(
    repo_id: str,
    architecture: dict[str, Any],
    hyper_parameters: dict[str, Any],
    data: dict[str, Any],
    report: dict[str, Any] | None,
) -> str:
    """The README.md of a pushed model (YAML front matter for the hub, then markdown)."""
    import yaml
    from huggingface_hub import ModelCardData

    front = ModelCardData(
        library_name="pconv",
        pipeline_tag="image-to-image",
        tags=["image-inpainting", "partial-convolutions", "pconv"],
    ).to_yaml()
    config = yaml.safe_dump(
        {"model": hyper_parameters, "data": data}, sort_keys=False, allow_unicode=True
    )
    evaluation = (
        f"Track `{report.get('config', {}).get('track', '?')}` of `pconv evaluate`, values on "
        "the composite:\n\n" + report_table(report)
        if report
        else "No evaluation report was given (`pconv push --report eval/report.json`)."
    )
    net = architecture["net"]["init_args"]
    return f"""---
{front}
---

# {repo_id}

An image-inpainting network with partial convolutions (Liu et al., ECCV 2018), trained with
pconv {architecture["pconv_version"]}: a PConv U-Net with {net["levels"]} levels and width
multiplier {net["width_mult"]}.

## How to load

```python
from PIL import Image
from pconv import Inpainter

inpainter = Inpainter.from_pretrained("{repo_id}")   # pin a revision: "{repo_id}@<commit>"
filled = inpainter(Image.open("photo.png"), Image.open("mask.png"))
```

Command line: `pconv inpaint --ckpt hf://{repo_id} photo.png mask.png -o filled.png`.
The weights are safetensors: loading them runs no code from this repo.

## Inputs and the mask convention

{architecture["input_convention"]}. Masks are 1 = valid, 0 = hole; mask files are black
where the hole is. Any image size works through `Inpainter` (reflect-padded to a multiple of
{architecture["multiple"]}, cropped back); only hole pixels change.

## Data

{_data_line(data)}

## Evaluation

{evaluation}

## Training config

```yaml
{config}```
"""


def _data_line(data: dict[str, Any]) -> str:
    if not data:
        return "The checkpoint does not record its data config."
    keys = ("source", "image_size", "mask_preset", "mask_dir")
    return ", ".join(f"{k}: `{data[k]}`" for k in keys if data.get(k) is not None) + "."


def write_repo(
    spec: str, repo_id: str, folder: str | os.PathLike, report_path: Path | None
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
    checkpoint = {} if path.suffix == ".safetensors" else read_checkpoint(path)
    hyper_parameters = dict(checkpoint.get("hyper_parameters", {}))
    data = dict(checkpoint.get("datamodule_hyper_parameters", {}))
    folder = Path(folder)
    files = list(save_safetensors(net, folder / SAFETENSORS_FILE))
    card = model_card(repo_id, architecture(net), hyper_parameters, data, report)
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
    try:
        if args.local_dir is not None:
            files = write_repo(args.ckpt, repo_id, args.local_dir, args.report)
            print(f"{PROG}: wrote {', '.join(str(f) for f in files)}")
            return 0
        with tempfile.TemporaryDirectory() as folder:
            write_repo(args.ckpt, repo_id, folder, args.report)
            url = upload(Path(folder), repo_id, args.private)
    except (CheckpointError, WeightsUnavailableError, ValueError, OSError) as error:
        return fail(str(error))
    except Exception as error:  # the hub's HTTP and auth errors
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        # The hub's HTTP client (httpx or requests, by version) raises its own network errors.
        network = type(error).__module__.split(".")[0] in ("httpx", "httpx2", "requests")
        if not (network or isinstance(error, HfHubHTTPError | OfflineModeIsEnabled)):
            raise
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        return fail(f"cannot upload to {repo_id} ({reason}); check the network and HF_ENDPOINT")
    print(f"{PROG}: pushed {repo_id}: {url}")
    return 0
