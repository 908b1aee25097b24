"""Every ``pconv`` command against the generic mistakes a new user makes: a missing path, a
file where a folder belongs (and the reverse), a read-only output, zero, negative and NaN
numbers, an unknown or absent device. Each ends in ONE line on stderr and exit code 2, with
no traceback, and the user's files byte-identical (the README's promise)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from refusals import READ_ONLY, digests

from pconv.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["--config", str(ROOT / "configs" / "demo.yaml"), "--trainer.max_steps=1"]
#: A good ``pconv inpaint`` call; a later flag wins.
PAIR = ["--ckpt", "{ckpt}", "{w}/photo.png", "{w}/mask.png", "-o", "{w}/o.png"]

#: Per command: (what is wrong, argv with {w} the user's folder, {ro} a read-only folder and
#: {ckpt} a checkpoint there).
CASES = {
    "params": [
        ("levels zero", ["--levels", "0"]),
        ("levels negative", ["--levels", "-1"]),
        ("width zero", ["--width-mult", "0"]),
        ("width negative", ["--width-mult", "-1"]),
        ("width nan", ["--width-mult", "nan"]),
        ("width inf", ["--width-mult", "inf"]),
        ("width huge", ["--width-mult", "1e9"]),
        ("size zero", ["--size", "0"]),
    ],
    "inpaint": [
        ("missing image", ["--ckpt", "{ckpt}", "{w}/none.png", "{w}/mask.png", "-o", "{w}/o.png"]),
        ("missing ckpt", [*PAIR, "--ckpt", "{w}/none.ckpt"]),
        ("folder and file", ["--ckpt", "{ckpt}", "{w}/photos", "{w}/mask.png", "-o", "{w}/out"]),
        ("read-only output", [*PAIR, "-o", "{ro}/o.png"]),
        ("unknown device", [*PAIR, "--device", "bogus"]),
        ("absent device", [*PAIR, "--device", "cuda:99"]),
        ("hole value", [*PAIR, "--mask-hole-value", "nan"]),
    ],
    "evaluate": [
        ("missing images", ["--images", "{w}/none", "-o", "{w}/out"]),
        ("missing ckpt", ["--ckpt", "{w}/none.ckpt", "-o", "{w}/out"]),
        ("masks a file", ["--masks", "{w}/notes.txt", "-o", "{w}/out"]),
        ("output a file", ["-o", "{w}/notes.txt"]),
        ("read-only output", ["-o", "{ro}/out"]),
        ("size zero", ["--size", "0", "-o", "{w}/out"]),
        ("size negative", ["--size", "-1", "-o", "{w}/out"]),
        ("size nan", ["--size", "nan", "-o", "{w}/out"]),
        ("per-bucket zero", ["--per-bucket", "0", "-o", "{w}/out"]),
        ("batch negative", ["--batch-size", "-4", "-o", "{w}/out"]),
        ("unknown device", ["--device", "bogus", "-o", "{w}/out"]),
        ("absent device", ["--device", "cuda:99", "-o", "{w}/out"]),
    ],
    "masks": [
        ("output a file", ["export", "-o", "{w}/notes.txt"]),
        ("read-only output", ["export", "-o", "{ro}/masks"]),
        ("size zero", ["export", "-o", "{w}/m", "--size", "0"]),
        ("size negative", ["export", "-o", "{w}/m", "--size", "-5"]),
        ("size nan", ["export", "-o", "{w}/m", "--size", "nan"]),
        ("size huge", ["export", "-o", "{w}/m", "--size", "10000000"]),
        ("count zero", ["export", "-o", "{w}/m", "--per-bucket", "0"]),
    ],
    "prepare": [
        ("missing root", ["folder", "{w}/none", "-o", "{w}/shards"]),
        ("file for folder", ["folder", "{w}/photo.png", "-o", "{w}/shards"]),
        ("folder for list", ["filelist", "{w}/photos", "-o", "{w}/shards"]),
        ("output a file", ["folder", "{w}/photos", "-o", "{w}/notes.txt"]),
        ("read-only output", ["folder", "{w}/photos", "-o", "{ro}/shards", "--workers", "1"]),
        ("workers zero", ["folder", "{w}/photos", "-o", "{w}/shards", "--workers", "0"]),
        ("max-side negative", ["folder", "{w}/photos", "-o", "{w}/shards", "--max-side", "-1"]),
        ("fraction nan", ["folder", "{w}/photos", "-o", "{w}/shards", "--val-fraction", "nan"]),
    ],
    "export": [
        ("missing ckpt", ["--ckpt", "{w}/none.ckpt"]),
        ("ckpt a folder", ["--ckpt", "{w}/photos"]),
        ("read-only output", ["--ckpt", "{ckpt}", "--size", "32", "-o", "{ro}/m.onnx"]),
        ("output a folder", ["--ckpt", "{ckpt}", "--size", "32", "-o", "{w}/photos"]),
        ("size zero", ["--ckpt", "{ckpt}", "--size", "0"]),
        ("size negative", ["--ckpt", "{ckpt}", "--size", "-32"]),
        ("size nan", ["--ckpt", "{ckpt}", "--size", "nan"]),
        ("size huge", ["--ckpt", "{ckpt}", "--format", "torchscript", "--size", "100000"]),
    ],
    "push": [
        ("missing ckpt", ["--ckpt", "{w}/none.ckpt", "--repo", "u/n", "--local-dir", "{w}/repo"]),
        ("local-dir a file", ["--ckpt", "{ckpt}", "--repo", "u/n", "--local-dir", "{w}/notes.txt"]),
        ("missing report", ["--ckpt", "{ckpt}", "--repo", "u/n", "--report", "{w}/none.json"]),
        ("bad repo", ["--ckpt", "{ckpt}", "--repo", "bad repo//x"]),
    ],
    "weights": [
        ("unknown name", ["bogus"]),
        ("read-only output", ["vgg16", "--to", "{ro}/vgg16.pth"]),
    ],
    "app": [
        ("missing ckpt", ["--ckpt", "{w}/none.ckpt"]),
        ("port zero", ["--port", "0"]),
        ("port nan", ["--port", "nan"]),
        ("max-side negative", ["--max-side", "-1"]),
        ("host invalid", ["--host", "300.1.1.1"]),
        ("host not ours", ["--host", "192.0.2.1"]),  # TEST-NET-1: never this machine's
        ("unknown device", ["--ckpt", "{ckpt}", "--device", "bogus"]),
        ("absent device", ["--ckpt", "{ckpt}", "--device", "cuda:99"]),
    ],
    "fit": [
        ("missing root", [*DEMO, "--data.source=folder", "--data.root={w}/none"]),
        ("file for folder", [*DEMO, "--data.source=folder", "--data.root={w}/photo.png"]),
        ("batch zero", [*DEMO, "--data.batch_size=0"]),
        ("lr nan", [*DEMO, "--model.optimizer.init_args.lr=nan"]),
        ("unknown device", [*DEMO, "--trainer.accelerator=bogus"]),
    ],
    "validate": [("missing ckpt", [*DEMO, "--ckpt_path={w}/none.ckpt"])],
    "test": [("negative size", [*DEMO, "--data.image_size=-64"])],
    "predict": [("predictions a file", [*DEMO, "--prediction_writer.output_dir={w}/notes.txt"])],
}  # fmt: skip


def test_every_command_is_walked():
    assert CASES.keys() == COMMANDS.keys()


@pytest.fixture(scope="module")
def user(tmp_path_factory, tiny_checkpoint):
    """A user's folder: photo.png and mask.png, photos/ (two photos), notes.txt, a checkpoint."""
    root = tmp_path_factory.mktemp("user")
    photo = np.random.default_rng(0).integers(0, 256, (32, 48, 3), np.uint8)
    mask = np.full((32, 48), 255, np.uint8)
    mask[8:20, 10:30] = 0
    cv2.imwrite(str(root / "photo.png"), photo)
    cv2.imwrite(str(root / "mask.png"), mask)
    (root / "photos").mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(root / "photos" / f"{name}.png"), photo[:, ::-1])
    (root / "notes.txt").write_text("a user's notes\n")
    shutil.copy(tiny_checkpoint, root / "model.ckpt")
    return root


@pytest.mark.parametrize(
    ("command", "argv"),
    [(command, argv) for command, cases in CASES.items() for _, argv in cases],
    ids=[f"{command}: {what}" for command, cases in CASES.items() for what, _ in cases],
)
def test_a_generic_mistake_is_one_line_and_exit_2(user, command, argv, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pconv"])
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(user)
    fill = {"w": user, "ro": READ_ONLY, "ckpt": user / "model.ckpt"}
    argv = [command, *(a.format(**fill) for a in argv)]
    before = digests(user)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("pconv"), err
    assert digests(user) == before


def test_push_to_an_unreachable_hub_is_one_line(user, tmp_path):
    import os
    import socket
    import subprocess

    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = os.environ | {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_TOKEN": "hf_none"}
    env.pop("HF_HUB_OFFLINE", None)
    argv = ["push", "--ckpt", str(user / "model.ckpt"), "--repo", "user/name"]
    before = digests(user)
    run = subprocess.run(
        [sys.executable, "-m", "pconv", *argv],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("pconv push: cannot upload to user/name (")
    assert digests(user) == before


def test_an_unwritable_torch_cache_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", "/proc/nope")  # cannot be created, even by root
    assert main(["weights", "vgg16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pconv weights: cannot store the vgg16 weights in /proc/nope")
    assert err.count("\n") == 1 and "set TORCH_HOME to a writable folder" in err


def test_an_unreachable_hub_is_one_line_without_retries(user, tmp_path):
    import os
    import socket
    import subprocess

    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = os.environ | {
        "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_CACHE": str(tmp_path / "cache")
    }  # fmt: skip
    env.pop("HF_HUB_OFFLINE", None)
    argv = ["export", "--ckpt", "hf://someone/model", "-o", str(tmp_path / "m.onnx")]
    run = subprocess.run(
        [sys.executable, "-m", "pconv", *argv],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Retrying" not in run.stderr, run.stderr
    assert "hub repo someone/model is neither cached nor reachable (the hub cannot be" in run.stderr
