"""The real CLI as subprocesses on the sample photos: fit (via the `lightning` script),
test, predict, fine-tune from a checkpoint, --print_config, bad input."""

import csv
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
import skimage.data
import torch
import yaml
from PIL import Image

from pconv.data.buckets import NUM_BUCKETS
from pconv.training.cli import configure_wandb_mode, run, wandb_offline_reason
from pconv.training.module import InpaintingModule
from pconv.weights import load_network

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SIZE = 64
VAL_MASKS_PER_BUCKET = 1
EVAL_ITEMS = NUM_BUCKETS * 2 * VAL_MASKS_PER_BUCKET
FIT_STEPS = 4


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
                f"--trainer.default_root_dir={tmp_path}",
                f"--trainer.logger.init_args.save_dir={tmp_path}",
            ]
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pconv: VGG-16 ImageNet weights are not cached at")
    assert "model.loss.vgg_weights" in err[-1]


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
