"""The real CLI as subprocesses on the sample photos: fit (via the `lightning` script),
test, predict, fine-tune from a checkpoint, --print_config, bad input."""

import csv
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import skimage.data
import torch
import yaml
from PIL import Image

from pconv.data.buckets import NUM_BUCKETS, bucket_label
from pconv.training.cli import configure_wandb_mode, run, wandb_offline_reason
from pconv.training.module import InpaintingModule
from pconv.weights import load_network

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SIZE = 64
VAL_MASKS_PER_BUCKET = 1
EVAL_ITEMS = NUM_BUCKETS * 2 * VAL_MASKS_PER_BUCKET
FIT_STEPS = 4
BUCKET_LABELS = [bucket_label(b) for b in range(NUM_BUCKETS)]


def run_cli(script: str, *args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    # No credentials anywhere: the CLI must choose offline mode by itself.
    env.update(HOME=str(home), NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="2")
    result = subprocess.run(
        [str(BIN / script), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def overlay(tmp: Path) -> Path:
    """A config on top of configs/demo.yaml: tiny, fast, W&B offline plus a CSV logger."""
    config = {
        "trainer": {
            "max_steps": FIT_STEPS,
            "val_check_interval": 2,
            "log_every_n_steps": 1,
            "default_root_dir": str(tmp),
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.WandbLogger",
                    "init_args": {"project": "pconv-test", "save_dir": str(tmp)},
                },
                {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": str(tmp), "name": "csv"},
                },
            ],
        },
        "model": {"net": {"init_args": {"levels": 4, "width_mult": 0.125}}},
        "data": {
            "image_size": SIZE,
            "batch_size": 2,
            "num_workers": 0,
            "val_masks_per_bucket": VAL_MASKS_PER_BUCKET,
            "train_samples_per_epoch": 8,
        },
        "prediction_writer": {"output_dir": str(tmp / "predictions")},
        "progress_log": {"every_n_steps": 1},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def csv_keys(tmp: Path, version: int) -> set[str]:
    with open(tmp / "csv" / f"version_{version}" / "metrics.csv") as file:
        return set(next(csv.reader(file)))


def checkpoint_files(tmp: Path, name: str) -> list[Path]:
    return sorted(tmp.rglob(name), key=lambda p: p.stat().st_mtime)


def bn_tensors(state: dict, part: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(f"net.{part}.") and ".bn." in k}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real `lightning fit` of a few steps with validation: (tmp dir, overlay, output)."""
    tmp = tmp_path_factory.mktemp("cli")
    config = overlay(tmp)
    result = run_cli(
        "lightning", "fit", "--config", "configs/demo.yaml", "--config", str(config), home=tmp
    )
    return tmp, config, result


def test_lightning_console_script_is_ours():
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="lightning")
    assert entry.value == "pconv.cli:lightning_main"
    assert "pconv.cli" in (BIN / "lightning").read_text()


def test_fit_logs_bucketed_metrics_offline_and_checkpoints(trained):
    tmp, _, result = trained
    keys = csv_keys(tmp, 0)
    expected = {
        "val/psnr",
        "val/ssim",
        "val/l1",
        "val/count",
        "val/psnr/bucket_0.1-0.2",
        "val/ssim/bucket_0.5-0.6/border",
        "val/l1/bucket_0.01-0.1/no_border",
        "val/count/bucket_0.3-0.4",
        "val/loss/total",
        "train/loss/total",
        "train/loss/style_comp",
        "train/weighted/hole",
        "train/finetune",
        "lr-Adam/net",
        "lr-Adam/encoder_bn",
    }
    assert expected <= keys, expected - keys
    (run_dir,) = (tmp / "wandb").glob("offline-run-*")
    assert b"val/psnr/bucket_0.1-0.2" in next(run_dir.glob("*.wandb")).read_bytes()
    assert f"wandb sync {run_dir}" in result.stderr
    assert checkpoint_files(tmp, "last.ckpt") and checkpoint_files(tmp, "best-step*.ckpt")
    assert list((tmp / "images").glob("val_step*.png"))
    with open(tmp / "csv" / "version_0" / "metrics.csv") as file:
        counts = [row["val/count"] for row in csv.DictReader(file) if row["val/count"]]
    assert counts and all(float(c) == EVAL_ITEMS for c in counts)


def csv_rows(tmp: Path, version: int, key: str) -> list[dict[str, str]]:
    """The rows of a CSVLogger run that hold ``key``."""
    with open(tmp / "csv" / f"version_{version}" / "metrics.csv") as file:
        return [row for row in csv.DictReader(file) if row[key]]


PROGRESS_LINE = re.compile(
    rf"step (\d+)/{FIT_STEPS}  epoch 0  [\d.]+ img/s  loss ([\d.]+)  lr 1\.0e-03  ETA \d+:\d\d:\d\d"
)


def test_piped_fit_prints_progress_lines(trained):
    """stdout is a pipe here: a plain line per step (progress_log.every_n_steps=1), whose
    loss is the logged one."""
    tmp, _, result = trained
    lines = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    matches = [PROGRESS_LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    assert [int(m[1]) for m in matches] == list(range(1, FIT_STEPS + 1))
    logged = [float(row["train/loss/total"]) for row in csv_rows(tmp, 0, "train/loss/total")]
    assert [float(m[2]) for m in matches] == pytest.approx(logged, abs=1e-4)


def test_fit_prints_validation_results_per_bucket(trained):
    tmp, _, result = trained
    out = result.stdout
    rows = csv_rows(tmp, 0, "val/psnr")
    assert out.count("validation at step") == len(rows) == FIT_STEPS // 2
    for row, block in zip(rows, out.split("validation at step ")[1:], strict=True):
        head, *lines = block.splitlines()[: NUM_BUCKETS + 3]
        assert f"loss {float(row['val/loss/total']):.4f}" in head
        overall = f"all: PSNR {float(row['val/psnr']):.2f} dB  SSIM {float(row['val/ssim']):.3f}"
        assert overall in lines[0] and f"({EVAL_ITEMS} images)" in lines[0]
        for bucket, line in zip(BUCKET_LABELS, lines[1:], strict=False):
            cell = f"bucket_{bucket}"
            psnr, count = float(row[f"val/psnr/{cell}"]), int(float(row[f"val/count/{cell}"]))
            assert line.strip().startswith(f"{bucket}: PSNR {psnr:.2f} dB"), line
            assert line.endswith(f"({count} images)")


def test_test_then_predict_from_checkpoint(trained):
    tmp, config, _ = trained
    last = str(checkpoint_files(tmp, "last.ckpt")[-1])
    # A CLI-written checkpoint rebuilds from its saved config alone, with and without loss.
    module = InpaintingModule.load_from_checkpoint(last)
    assert module.net.levels == 4 and module.loss.vgg_weights is None
    net = load_network(last)
    for key, value in module.net.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key

    common = ["--config", "configs/demo.yaml", "--config", str(config), "--ckpt_path", last]
    (fit_config,) = tmp.glob("pconv-test/*/config.yaml")  # in the fit's own run folder
    assert fit_config.parent == Path(last).parent.parent
    fit_bytes = fit_config.read_bytes()
    result = run_cli("pconv", "test", *common, home=tmp)
    # The config that trained the checkpoint differs from it in no value; class paths are
    # compared as the classes they name (pconv.nn.PConvUNet is pconv.nn.unet.PConvUNet).
    assert "resumes with the checkpoint's model values" not in result.stderr, result.stderr
    assert fit_config.read_bytes() == fit_bytes  # never overwritten by another stage
    (test_config,) = tmp.glob("pconv-test/*/test-config.yaml")
    assert test_config.parent != fit_config.parent
    assert oct(fit_config.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    assert "test metrics" in result.stdout and "0.1-0.2" in result.stdout
    assert {"test/psnr", "test/ssim/bucket_0.2-0.3", "test/l1"} <= csv_keys(tmp, 1)

    run_cli("pconv", "predict", *common, home=tmp)
    pngs = sorted((tmp / "predictions").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(EVAL_ITEMS)]
    assert Image.open(pngs[0]).size == (SIZE, SIZE)


def test_validate_prints_the_bucket_table(trained):
    tmp, config, _ = trained
    last = str(checkpoint_files(tmp, "last.ckpt")[-1])
    args = ["--config", "configs/demo.yaml", "--config", str(config), "--ckpt_path", last]
    out = run_cli("pconv", "validate", *args, home=tmp).stdout
    assert "validation metrics on the composite" in out
    for bucket in BUCKET_LABELS:
        assert re.search(rf"{re.escape(bucket)}\s*│\s*{VAL_MASKS_PER_BUCKET * 2}\s*│", out), out


def test_finetune_config_starts_from_weights_with_frozen_encoder_bn(trained):
    tmp, config, _ = trained
    init = checkpoint_files(tmp, "last.ckpt")[-1]
    before = set(checkpoint_files(tmp, "last.ckpt"))
    run_cli(
        "pconv",
        "fit",
        "--config",
        "configs/demo.yaml",
        "--config",
        "configs/finetune.yaml",
        "--config",
        str(config),
        f"--model.init_from={init}",
        "--trainer.max_steps=4",
        home=tmp,
    )
    (finetuned,) = set(checkpoint_files(tmp, "last.ckpt")) - before
    start = torch.load(init, weights_only=True)
    end = torch.load(finetuned, weights_only=True)
    assert end["global_step"] == 4  # fresh counters, not the initial run's
    for key, value in bn_tensors(start["state_dict"], "encoder").items():
        assert torch.equal(end["state_dict"][key], value), key
    decoder_end = bn_tensors(end["state_dict"], "decoder")
    for key, value in bn_tensors(start["state_dict"], "decoder").items():
        if "running_mean" in key or "weight" in key:
            assert not torch.equal(decoder_end[key], value), key
    lrs = {g["name"]: g["lr"] for g in end["optimizer_states"][0]["param_groups"]}
    assert lrs == {"net": 5e-5, "encoder_bn": 0.0}


def test_print_config_shows_the_paper_settings(tmp_path):
    env_root = "/datasets/imagenet-test"
    os.environ["IMAGENET_ROOT"] = env_root
    try:
        result = run_cli(
            "lightning", "fit", "--config", "configs/initial.yaml", "--print_config", home=tmp_path
        )
    finally:
        del os.environ["IMAGENET_ROOT"]
    config = yaml.safe_load(result.stdout)
    assert config["model"]["net"]["init_args"]["levels"] == 8
    assert config["model"]["optimizer"]["class_path"] == "torch.optim.Adam"
    assert config["model"]["optimizer"]["init_args"]["lr"] == 2e-4
    loss = config["model"]["loss"]["init_args"]
    assert (loss["valid_weight"], loss["hole_weight"], loss["perceptual_weight"]) == (1, 6, 0.05)
    assert (loss["style_weight"], loss["tv_weight"], loss["vgg_weights"]) == (120, 0.1, "imagenet")
    data = config["data"]
    assert (data["image_size"], data["batch_size"], data["root"]) == (512, 6, env_root)
    assert config["finetune"]["lr"] == 5e-5


def test_bad_input_gets_one_line(tmp_path):
    missing = tmp_path / "nothing.ckpt"
    result = run_cli(
        "pconv",
        "fit",
        "--config",
        "configs/demo.yaml",
        f"--model.init_from={missing}",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        home=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert f"checkpoint {missing} does not exist" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_cli(
        "pconv",
        "fit",
        "--config",
        "configs/demo.yaml",
        "--config",
        "configs/finetune.yaml",
        home=tmp_path,
        check=False,
    )
    assert result.returncode == 2 and "model.init_from names no checkpoint" in result.stderr

    result = run_cli(
        "pconv",
        "fit",
        "--config",
        "configs/demo.yaml",
        "--model.loss.hole_wieght=3",
        home=tmp_path,
        check=False,
    )
    assert result.returncode == 2 and "hole_wieght" in result.stderr


def test_wandb_goes_offline_without_credentials_or_server(tmp_path, monkeypatch):
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert "not logged in" in wandb_offline_reason()

    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login user password key\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    assert "unreachable" in wandb_offline_reason()

    configure_wandb_mode()
    assert os.environ["WANDB_MODE"] == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    configure_wandb_mode()  # the user's choice stands
    assert os.environ["WANDB_MODE"] == "disabled"


def test_sweep_style_keys_reach_the_config(capsys):
    args = [
        "fit",
        "--config",
        "configs/initial.yaml",
        "--model.loss.hole_weight=3",
        "--model.net.levels=7",
        "--model.optimizer.lr=1e-4",
        "--finetune.at_step=1000",
        "--print_config",
    ]
    with pytest.raises(SystemExit) as exit_info:
        run(args)
    assert exit_info.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["loss"]["init_args"]["hole_weight"] == 3
    assert config["model"]["loss"]["init_args"]["style_weight"] == 120  # the rest stays
    assert config["model"]["net"]["init_args"]["levels"] == 7
    assert config["model"]["optimizer"]["init_args"]["lr"] == 1e-4
    assert config["finetune"]["at_step"] == 1000


def test_offline_vgg_weights_end_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    """jsonargparse wraps errors raised while building model.loss; the CLI unwraps them."""
    import urllib.error

    from pconv.training.cli import run

    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(sys, "argv", ["pconv"])
    with pytest.raises(SystemExit) as stop:
        run(
            [
                "fit",
                "--config",
                str(ROOT / "configs/demo.yaml"),
                "--model.loss.vgg_weights=imagenet",
                # The demo's perceptual and style weights are 0: no VGG unless one is used.
                "--model.loss.perceptual_weight=0.05",
                f"--trainer.default_root_dir={tmp_path}",
                f"--trainer.logger.init_args.save_dir={tmp_path}",
            ]
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pconv: VGG-16 ImageNet weights are not cached at")
    assert "model.loss.vgg_weights" in err[-1]


def offline_run_ids(tmp: Path) -> list[str]:
    """The W&B run id of each offline run folder (``offline-run-<time>-<id>``)."""
    return [path.name.rsplit("-", 1)[1] for path in (tmp / "wandb").glob("offline-run-*")]


def test_resumed_fit_continues_the_wandb_run_and_a_new_fit_does_not(trained):
    tmp, config, result = trained
    # The fit's W&B run id names its offline folder (printed) and its run folder.
    run_id = re.search(r"wandb sync \S+/offline-run-\d+_\d+-(\w+)$", result.stderr, re.M)[1]
    last = tmp / "pconv-test" / run_id / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["wandb_run_id"] == run_id
    common = ["fit", "--config", "configs/demo.yaml", "--config", str(config)]

    before = offline_run_ids(tmp)
    resume = [f"--ckpt_path={last}", f"--trainer.max_steps={FIT_STEPS + 2}"]
    run_cli("pconv", *common, *resume, home=tmp)
    # One new offline folder, of the same run (`wandb sync` appends it in start order).
    assert sorted(offline_run_ids(tmp)) == sorted([*before, run_id])
    newest = max(tmp.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    saved = torch.load(newest, weights_only=True)
    assert saved["global_step"] == FIT_STEPS + 2 and saved["wandb_run_id"] == run_id

    before = offline_run_ids(tmp)
    run_cli("pconv", *common, "--trainer.max_steps=1", home=tmp)
    (fresh,) = set(offline_run_ids(tmp)) - set(before)
    assert len(offline_run_ids(tmp)) == len(before) + 1


def test_ddp_overlay_has_one_progress_bar_and_progress_lines(tmp_path, monkeypatch):
    """configs/ddp.yaml once added a second progress bar, which Lightning refuses."""
    from lightning.pytorch.callbacks import ProgressBar

    from pconv.training.callbacks.console import ProgressLog
    from pconv.training.cli import make_cli

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(sys, "argv", ["pconv"])
    configs = [
        "--config",
        str(ROOT / "configs/demo.yaml"),
        "--config",
        str(ROOT / "configs/ddp.yaml"),
    ]
    cpu = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.strategy=auto"]
    cpu += ["--trainer.precision=32-true", "--trainer.sync_batchnorm=false"]
    trainer = make_cli(
        [*configs, *cpu, f"--trainer.default_root_dir={tmp_path}"], run=False
    ).trainer
    assert len([c for c in trainer.callbacks if isinstance(c, ProgressBar)]) == 1
    (log,) = [c for c in trainer.callbacks if isinstance(c, ProgressLog)]
    assert (log.every_n_steps, log.every_s, log.when) == (50, 60.0, "auto")


def test_a_new_slurm_job_resuming_continues_the_checkpoints_wandb_run(
    tmp_path, capsys, monkeypatch
):
    """A new job (another job id, so another configured id) given --ckpt_path of an earlier
    job's checkpoint logs to the checkpoint's run, and says so."""
    from types import SimpleNamespace

    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from lightning.pytorch.loggers import WandbLogger

    from pconv.training.cli import continue_wandb_run

    # Other tests play other ranks; rank 0 starts the W&B run.
    monkeypatch.setattr(rank_zero_only, "rank", 0)

    logger = WandbLogger(save_dir=str(tmp_path), offline=True, id="slurm-5678", resume="allow")
    trainer = SimpleNamespace(loggers=[logger], is_global_zero=True)
    continue_wandb_run(trainer, "slurm-1234")
    err = capsys.readouterr().err
    assert "continuing the checkpoint's W&B run slurm-1234, not the configured id slurm-5678" in err
    assert err.count("\n") == 1
    try:
        assert logger.version == logger.experiment.id == "slurm-1234"
    finally:
        logger.experiment.finish()
    assert [p.name[-10:] for p in (tmp_path / "wandb").glob("offline-run-*")] == ["slurm-1234"]


def test_fit_streams_shards_that_pconv_prepare_wrote_to_a_bucket(tmp_path, s3_bucket):
    """`pconv prepare -o s3://…` then `pconv fit --data.root s3://…`, both as subprocesses
    reaching the loopback server through the AWS variables only."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):  # four different 96 px crops of one real photo
        Image.fromarray(skimage.data.astronaut()[64 * i : 64 * i + 96, 96:192]).save(
            photos / f"{i}.png"
        )
    url = f"s3://{s3_bucket}/shards"
    for split in ("train", "val"):
        run_cli("pconv", "prepare", "folder", str(photos), "-o", url, "--splits", split,
                "--workers", "1", home=tmp_path)  # fmt: skip
    config = overlay(tmp_path)
    run_cli(
        "pconv", "fit", "--config", "configs/demo.yaml", "--config", str(config),
        "--data.source=shards", f"--data.root={url}", "--trainer.max_steps=2", home=tmp_path,
    )  # fmt: skip
    (last,) = checkpoint_files(tmp_path, "last.ckpt")
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert csv_keys(tmp_path, 0) >= {"train/loss/total", "val/psnr"}
