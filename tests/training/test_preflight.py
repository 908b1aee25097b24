"""Every bad-input case of a training config ends in one line and exit status 2 before
anything is written: existing files stay byte-identical, no new file appears."""

import hashlib
import os
import sys
from pathlib import Path

import pytest
import skimage.data
import torch
import yaml
from PIL import Image

from pconv.training.cli import run

ROOT = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A run folder holding a previous run's interrupt checkpoint and config, and a tiny
    config writing there with W&B (offline) and a CSV logger."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"global_step": 4, "state_dict": {}}, run_dir / "checkpoints" / "interrupted.ckpt")
    (run_dir / "config.yaml").write_text("previous: run\n")
    overlay = {
        "trainer": {
            "max_steps": 2,
            "default_root_dir": str(run_dir),
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.WandbLogger",
                    "init_args": {"project": "pconv-test", "save_dir": str(run_dir)},
                },
                {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": str(run_dir)},
                },
            ],
        },
        "model": {"net": {"init_args": {"levels": 4, "width_mult": 0.125}}},
        "data": {"image_size": 64, "num_workers": 2, "batch_size": 2, "val_masks_per_bucket": 1},
        "checkpoint": {"dirpath": str(run_dir / "checkpoints")},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(overlay))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(sys, "argv", ["pconv"])
    return tmp_path


def fails_with_one_line(workspace, capsys, *args: str, subcommand: str = "fit") -> str:
    before = snapshot(workspace)
    config = ["--config", str(ROOT / "configs/demo.yaml"), "--config", str(workspace / "tiny.yaml")]
    with pytest.raises(SystemExit) as stop:
        run([subcommand, *config, *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pconv: ") and "Traceback" not in "\n".join(err)
    assert snapshot(workspace) == before  # nothing written, nothing changed
    return err[-1]


def corrupt_file(path: Path, data: bytes = b"\x00garbage") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.optimizer.init_args.lr=-1"], "model.optimizer.init_args.lr=-1.0"),
        (["--model.optimizer.init_args.lr=1e400"], "model.optimizer.init_args.lr=inf"),
        (["--model.optimizer.init_args.lr=inf"], "lr=inf is not a usable number"),
        (["--model.optimizer.init_args.lr=nan"], "lr=nan is not a usable number"),
        (["--data.batch_size=0"], "data.batch_size"),
        (["--data.num_workers=-1"], "data.num_workers"),
        (["--data.image_size=-64"], "data.image_size"),
        (["--data.image_size=100"], "data.image_size=100 is not a multiple of 2**model.net"),
        (["--data.mask_preset=nonsense"], "data.mask_preset=nonsense"),
        (["--model.nan_check_every=0"], "model.nan_check_every"),
        (["--finetune.lr=-1"], "finetune.lr"),
        (["--finetune.at_step=-5"], "finetune.at_step"),
        (["--model.loss.init_args.hole_weight=-1"], "hole_weight"),
        (["--model.optimizer.init_args.lr=1e38"], "model.optimizer.init_args.lr=1e+38 is not a"),
        (["--model.loss.init_args.hole_weight=inf"], "model.loss.init_args.hole_weight=inf"),
        (["--model.loss.init_args.style_weight=1e300"], "style_weight=1e+300 is not a finite"),
        (["--finetune.lr=1e38"], "finetune.lr=1e+38 is not a finite number from 0 to 10"),
        (["--data.source=folder", "--data.root=/no/such/folder"], "/no/such/folder does not"),
        (["--model.net.init_args.levels=0"], '"model.net.init_args.levels": Not of type Pos'),
        (["--model.net.init_args.width_mult=0"], '"model.net.init_args.width_mult"'),
        (["--model.net.init_args.depth=3"], "Option 'depth' is not accepted"),
        (["--image_grid.num_images=0"], "image_grid.num_images"),
        (["--data.train_crop_scale=[2,1]"], "data.train_crop_scale"),
        (["--data.train_crop_scale=[0.5,0.1]"], "[0.5, 0.1] runs from high to low"),
        (["--trainer.logger=false"], "LearningRateMonitor but trainer.logger is false"),
        (["--trainer.accelerator=bogus"], "trainer.accelerator=bogus is not an accelerator"),
        (["--trainer.accelerator=tpu"], "trainer.accelerator=tpu: this machine has no such"),
    ],
)
def test_bad_value_gets_one_line(workspace, capsys, args, expected):
    assert expected in fails_with_one_line(workspace, capsys, *args)


def test_infinite_loss_weight_in_a_config_file(workspace, capsys):
    (workspace / "inf.yaml").write_text(
        "model:\n  loss:\n    init_args:\n      hole_weight: .inf\n"
    )
    line = fails_with_one_line(workspace, capsys, "--config", str(workspace / "inf.yaml"))
    assert "model.loss.init_args.hole_weight=inf is not a finite number from 0 to 1e+06" in line


@pytest.mark.parametrize(
    "key", ["checkpoint.dirpath", "trainer.default_root_dir", "interrupt.dirpath"]
)
def test_output_folder_inside_a_file(workspace, capsys, key):
    folder = workspace / "tiny.yaml" / "out"
    line = fails_with_one_line(workspace, capsys, f"--{key}={folder}")
    assert f"{key}={folder} cannot be a folder: {workspace / 'tiny.yaml'} is a file" in line


def test_logger_folder_inside_a_file(workspace, capsys):
    overlay = yaml.safe_load((workspace / "tiny.yaml").read_text())
    overlay["trainer"]["logger"][1]["init_args"]["save_dir"] = str(workspace / "tiny.yaml")
    (workspace / "tiny.yaml").write_text(yaml.safe_dump(overlay))
    line = fails_with_one_line(workspace, capsys)
    assert "trainer.logger[1].init_args.save_dir=" in line and "is a file" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_checkpoint_folder(workspace, capsys):
    folder = workspace / "run" / "checkpoints"
    folder.chmod(0o555)
    try:
        line = fails_with_one_line(workspace, capsys, f"--checkpoint.dirpath={folder / 'new'}")
    finally:
        folder.chmod(0o755)
    assert f"checkpoint.dirpath={folder / 'new'} is not writable ({folder}:" in line


def test_root_that_is_a_file_is_not_called_missing(workspace, capsys):
    line = fails_with_one_line(
        workspace, capsys, "--data.source=folder", f"--data.root={workspace / 'tiny.yaml'}"
    )
    assert "is a file, not a folder" in line and "does not exist" not in line


def test_folder_of_only_corrupt_images(workspace, capsys):
    for i in range(3):
        corrupt_file(workspace / "images" / f"{i}.jpg", b"\xff\xd8\xff broken")
    line = fails_with_one_line(
        workspace, capsys, "--data.source=folder", f"--data.root={workspace / 'images'}"
    )
    assert "none of the first 3 images" in line and "0.jpg" in line


def test_shards_fewer_than_a_batch(workspace, capsys):
    from pconv.data.prepare import prepare

    (workspace / "photos").mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        photo = getattr(skimage.data, name)()[:64, :64]
        Image.fromarray(photo).save(workspace / "photos" / f"{name}.png")
    for split in ("train", "val"):
        prepare("folder", str(workspace / "photos"), str(workspace / "shards"), split, 1)
    line = fails_with_one_line(
        workspace,
        capsys,
        "--data.source=shards",
        f"--data.root={workspace / 'shards'}",
        "--data.batch_size=4",
    )
    assert "data.batch_size=4 is more than the 3 images" in line


def test_empty_mask_dir(workspace, capsys):
    (workspace / "empty").mkdir()
    line = fails_with_one_line(workspace, capsys, f"--data.mask_dir={workspace / 'empty'}")
    assert "holds no image files; put mask PNGs" in line and "first 0" not in line


def test_mask_dir_of_corrupt_masks(workspace, capsys):
    corrupt_file(workspace / "masks" / "empty.png", b"")
    corrupt_file(workspace / "masks" / "cut.jpg", b"\xff\xd8\xff\xe0 cut")
    line = fails_with_one_line(workspace, capsys, f"--data.mask_dir={workspace / 'masks'}")
    assert "data.mask_dir" in line and "no readable mask" in line


def test_corrupt_vgg_weights(workspace, capsys):
    vgg = corrupt_file(workspace / "vgg16.pth")
    # The demo's perceptual and style weights are 0, so no VGG is built unless one is asked for.
    line = fails_with_one_line(
        workspace,
        capsys,
        f"--model.loss.init_args.vgg_weights={vgg}",
        "--model.loss.init_args.perceptual_weight=0.05",
    )
    assert f"VGG-16 weights file {vgg} is unreadable" in line


@pytest.mark.parametrize("key", ["--ckpt_path", "--model.init_from"])
def test_corrupt_checkpoint(workspace, capsys, key):
    bad = corrupt_file(workspace / "bad.ckpt")
    line = fails_with_one_line(workspace, capsys, f"{key}={bad}")
    assert f"checkpoint {bad} is unreadable" in line


@pytest.mark.parametrize("key", ["--ckpt_path", "--model.init_from"])
def test_checkpoint_of_another_architecture(workspace, capsys, tiny_checkpoint, key):
    line = fails_with_one_line(
        workspace, capsys, f"{key}={tiny_checkpoint}", "--model.net.levels=5"
    )
    assert "levels=5 (checkpoint: 4)" in line


def test_ckpt_path_names_the_overridden_keys(workspace, capsys, tiny_checkpoint):
    # The run stops at the (missing) data root right after reading the checkpoint.
    fails_with_one_line(
        workspace,
        capsys,
        f"--ckpt_path={tiny_checkpoint}",
        "--model.loss.init_args.hole_weight=99",
        "--data.source=folder",
        "--data.root=/no/such/folder",
        subcommand="validate",
    )


def test_key_conflict_message(workspace, capsys, tiny_checkpoint):
    with pytest.raises(SystemExit):
        run(
            [
                "validate",
                "--config",
                str(ROOT / "configs/demo.yaml"),
                "--config",
                str(workspace / "tiny.yaml"),
                f"--ckpt_path={tiny_checkpoint}",
                "--model.loss.init_args.hole_weight=99",
                "--data.source=folder",
                "--data.root=/no/such/folder",
            ]
        )
    lines = [line for line in capsys.readouterr().err.splitlines() if "--ckpt_path" in line]
    assert len(lines) == 1
    assert "model.loss.init_args.hole_weight=99.0 -> 6.0" in lines[0]
    assert "checkpoint's model values" in lines[0]


def test_folder_source_without_val_root_is_refused_for_training(workspace, capsys):
    """Validation on the training images would be silent and wrong: refused, naming the key
    and both ways out; a val_root that does not exist is named too."""
    import cv2
    import numpy as np

    images = workspace / "photos"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), np.full((64, 64, 3), 40 * i, np.uint8))
    line = fails_with_one_line(workspace, capsys, "--data.source=folder", f"--data.root={images}")
    assert "data.val_root" in line and f"pconv prepare folder {images}" in line
    line = fails_with_one_line(
        workspace,
        capsys,
        "--data.source=folder",
        f"--data.root={images}",
        f"--data.val_root={workspace / 'no-such-val'}",
    )
    assert "data.val_root" in line and "no-such-val" in line


def test_predict_never_overwrites_earlier_predictions(workspace, capsys):
    out = workspace / "predictions"
    out.mkdir()
    (out / "000000.png").write_bytes(b"yesterday's prediction")
    line = fails_with_one_line(
        workspace, capsys, f"--prediction_writer.output_dir={out}", subcommand="predict"
    )
    assert "already holds 1 prediction(s) (000000.png)" in line
    assert "--prediction_writer.overwrite=true" in line


def test_a_shard_checkpoint_of_another_worker_count_is_refused_before_the_run():
    from pconv.training.preflight import PreflightError, check_resume_data

    # What Lightning stores for a LitData loader read by 2 workers.
    loader = {"dataset": {"num_workers": 2, "batch_size": 2}, "current_epoch": 1}
    checkpoint = {"loops": {"fit_loop": {"state_dict": {"combined_loader": [loader]}}}}
    with pytest.raises(PreflightError, match=r"--ckpt_path: .*data.num_workers=0.*=2$"):
        check_resume_data(checkpoint, {"source": "shards", "num_workers": 0})
    check_resume_data(checkpoint, {"source": "shards", "num_workers": 2})
    check_resume_data(checkpoint, {"source": "folder", "num_workers": 0})  # no shard stream


def test_shards_in_a_missing_bucket(workspace, capsys, s3_endpoint):
    line = fails_with_one_line(
        workspace, capsys, "--data.source=shards", "--data.root=s3://no-such-bucket/shards"
    )
    assert "bucket 'no-such-bucket' does not exist at http://127.0.0.1:" in line


def test_shards_missing_from_a_bucket(workspace, capsys, s3_bucket):
    line = fails_with_one_line(
        workspace, capsys, "--data.source=shards", f"--data.root=s3://{s3_bucket}/shards"
    )
    assert f"no LitData shards at s3://{s3_bucket}/shards/train (index.json missing)" in line


def test_shards_with_refused_credentials(workspace, capsys, s3_bucket, s3_wrong_keys):
    line = fails_with_one_line(
        workspace, capsys, "--data.source=shards", f"--data.root=s3://{s3_bucket}/shards"
    )
    assert "refused the credentials (403); set AWS_ACCESS_KEY_ID" in line


def test_shards_at_an_unreachable_endpoint(workspace, capsys, s3_unreachable):
    line = fails_with_one_line(
        workspace, capsys, "--data.source=shards", "--data.root=s3://bucket/shards"
    )
    assert f"cannot reach {s3_unreachable}; check AWS_ENDPOINT_URL" in line
