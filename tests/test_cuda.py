"""CUDA-only correctness: mixed precision, channels_last, torch.compile and SyncBatchNorm on a
GPU. Marked ``cuda`` (``pytest -m cuda``) and skipped where no GPU is visible (see conftest);
``experiments/gpu/check.py`` runs them first.

- PartialConv2d under bf16 and fp16 autocast against the literal float64 evaluation of the
  paper's equation: the valid counts stay float32 and the holes exactly 0.
- The loss under autocast: Gram matrices in float32, no fp16 overflow where an fp16 Gram
  would overflow, every term close to the float64 loss.
- 20 steps of the paper model (8 levels, 512, batch 6) through the real CLI in ``bf16-mixed``
  and ``16-mixed``: every logged loss finite.
- channels_last and torch.compile: the same outputs and gradients as eager.
- The fine-tune switch under ``strategy=ddp, devices=1, sync_batchnorm=true``, through the
  CLI: encoder BatchNorms (SyncBatchNorm) bit-frozen, decoder BatchNorms training.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import pconv.nn.partial_conv as partial_conv
from pconv.losses.inpainting import TERMS, InpaintingLoss
from pconv.nn.partial_conv import PartialConv2d
from pconv.nn.unet import PConvUNet
from pconv.training.module import InpaintingModule, encoder_batch_norms

sys.path.insert(0, str(Path(__file__).parent / "nn"))
from test_partial_conv import literal_partial_conv  # noqa: E402

pytestmark = pytest.mark.cuda

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cuda"
ACCELERATOR = "gpu"
FP16_MAX = torch.finfo(torch.float16).max
#: Autocast precision → (rtol, atol) against float64; bf16 keeps 8 mantissa bits, fp16 11.
TOLERANCE = {torch.bfloat16: (3e-2, 3e-2), torch.float16: (4e-3, 4e-3)}
#: The paper model and batch of the CLI runs.
PAPER = {"size": 512, "levels": 8, "width_mult": 1.0, "batch": 6, "steps": 20}
#: A small network for the equivalence and fine-tune checks.
SMALL = {"size": 64, "levels": 4, "width_mult": 0.25, "batch": 4, "steps": 5}


def cli(overlay: dict, tmp: Path) -> subprocess.CompletedProcess:
    """``pconv fit --config configs/demo.yaml --config <overlay>`` in a fresh process."""
    path = tmp / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    env = dict(
        os.environ,
        WANDB_MODE="disabled",
        NO_ALBUMENTATIONS_UPDATE="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(__file__).parent)]),
    )
    command = [sys.executable, "-m", "pconv", "fit", "--config", "configs/demo.yaml"]
    return subprocess.run(
        [*command, "--config", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_overlay(tmp: Path, net: dict, precision: str, **sections) -> dict:
    """An overlay on configs/demo.yaml: one GPU, ``net``'s size, logs in CSV under ``tmp``."""
    overlay = {
        "trainer": {
            "accelerator": ACCELERATOR,
            "devices": 1,
            "precision": precision,
            "max_steps": net["steps"],
            "limit_val_batches": 0,
            "log_every_n_steps": 1,
            "default_root_dir": str(tmp),
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": str(tmp), "name": "csv"},
            },
        },
        "model": {
            "net": {"init_args": {"levels": net["levels"], "width_mult": net["width_mult"]}},
        },
        "data": {
            "image_size": net["size"],
            "batch_size": net["batch"],
            "num_workers": 4,
            "pin_memory": True,
        },
        "checkpoint": {"dirpath": str(tmp / "checkpoints"), "monitor": None},
        "prediction_writer": {"output_dir": str(tmp / "predictions")},
    }
    for key, values in sections.items():
        overlay.setdefault(key, {}).update(values)
    return overlay


# ----------------------------------------------------------------------------- partial conv
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_partial_conv_under_autocast_matches_float64(monkeypatch, dtype):
    count_dtypes = set()

    def spy_conv2d(x, weight, *args, **kwargs):
        out = F.conv2d(x, weight, *args, **kwargs)
        if weight.shape[:2] == (1, 1):  # the single-channel all-ones count kernel
            count_dtypes.add(out.dtype)
        return out

    monkeypatch.setattr(partial_conv, "F", types.SimpleNamespace(conv2d=spy_conv2d))
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 6, 12, 12, generator=generator, dtype=torch.float64) * 2 - 1
    mask = (torch.rand(2, 1, 12, 12, generator=generator) > 0.4).double()
    mask[:, :, 2:8, 2:8] = 0  # windows wholly in the hole: the new mask has zeros
    conv = PartialConv2d(6, 5, 3, stride=1, padding=1)
    weight, bias = conv.weight.detach().double(), conv.bias.detach().double()
    expected, expected_mask = literal_partial_conv(
        x.numpy(), mask.numpy(), weight.numpy(), bias.numpy(), 1, 1, 1
    )
    conv = conv.to(DEVICE)
    with torch.autocast(DEVICE, dtype=dtype):
        out, new_mask = conv(x.float().to(DEVICE), mask.float().to(DEVICE))

    assert out.dtype == dtype  # autocast was on
    assert count_dtypes == {torch.float32}
    assert new_mask.dtype == torch.float32
    np.testing.assert_array_equal(new_mask.cpu().numpy(), expected_mask)
    assert (expected_mask == 0).any()
    holes = (new_mask == 0).expand_as(out)
    assert torch.count_nonzero(out[holes]) == 0
    rtol, atol = TOLERANCE[dtype]
    torch.testing.assert_close(out.cpu().double(), torch.from_numpy(expected), rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- loss
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_loss_under_autocast_keeps_grams_fp32_and_matches_float64(gram_dtypes, dtype):
    """VGG's first convolution scaled by 16 (so are its features, the biases being zero):
    pool1's unnormalised Gram sums exceed fp16's 65504, so an fp16 Gram would overflow."""
    torch.manual_seed(0)
    loss = InpaintingLoss(vgg_weights=None)
    first = next(m for m in loss.vgg.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.mul_(16)
    size = 128
    output, target = torch.rand(2, 3, size, size), torch.rand(2, 3, size, size)
    mask = torch.ones(2, 1, size, size)
    mask[:, :, 32:96, 40:100] = 0
    reference = copy.deepcopy(loss).double()
    expected = reference(output.double(), target.double(), mask.double())
    pool1 = reference.vgg(target.double())[0].flatten(2)
    assert (pool1 @ pool1.transpose(1, 2)).max() > FP16_MAX  # the premise: fp16 would overflow

    gram_dtypes.clear()  # only the autocast pass below counts, not the float64 reference
    vgg_dtypes = set()
    loss.vgg.register_forward_hook(lambda m, i, out: vgg_dtypes.update(f.dtype for f in out))
    loss = loss.to(DEVICE)
    with torch.autocast(DEVICE, dtype=dtype):
        got = loss(output.to(DEVICE), target.to(DEVICE), mask.to(DEVICE))

    assert vgg_dtypes == {dtype}
    assert gram_dtypes == {torch.float32}
    for name in (*TERMS, "total"):
        assert torch.isfinite(got[name]), name
        assert got[name].item() == pytest.approx(expected[name].item(), rel=5e-2), name


# ----------------------------------------------------------------------------- CLI training
def logged_losses(tmp: Path) -> list[float]:
    with open(tmp / "csv" / "version_0" / "metrics.csv") as file:
        return [float(r["train/loss/total"]) for r in csv.DictReader(file) if r["train/loss/total"]]


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_paper_model_trains_through_the_cli_with_finite_losses(tmp_path, precision):
    overlay = run_overlay(tmp_path, PAPER, precision, model={"channels_last": True})
    result = cli(overlay, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    losses = logged_losses(tmp_path)
    assert len(losses) == PAPER["steps"]
    assert all(math.isfinite(value) for value in losses), losses


# ----------------------------------------------------------------------------- layouts, compile
def small_module(**kwargs) -> InpaintingModule:
    torch.manual_seed(0)
    net = PConvUNet(levels=SMALL["levels"], width_mult=SMALL["width_mult"])
    return InpaintingModule(net=net, loss=InpaintingLoss(vgg_weights=None), **kwargs).to(DEVICE)


def output_and_grads(module: InpaintingModule, image, mask):
    """Training-mode output and the gradients of the total loss for every net parameter."""
    module.train()
    output = module(image, mask)
    module.loss(output, image, mask)["total"].backward()
    grads = {name: p.grad.clone() for name, p in module.net.named_parameters()}
    return output.detach(), grads


@pytest.fixture
def exact_fp32():
    """No TF32 in convolutions and matrix products while the test runs."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield
    finally:
        torch.set_float32_matmul_precision(previous)


@pytest.mark.parametrize("variant", ["channels_last", "compile"])
def test_channels_last_and_compile_match_eager(exact_fp32, variant):
    """TF32 would round differently in each variant, hence exact fp32 math."""
    generator = torch.Generator().manual_seed(1)
    shape = (SMALL["batch"], 1, SMALL["size"], SMALL["size"])
    image = torch.rand(SMALL["batch"], 3, *shape[2:], generator=generator).to(DEVICE)
    mask = (torch.rand(shape, generator=generator) > 0.3).float().to(DEVICE)
    eager = small_module()
    fast = small_module(**{variant: True})
    fast.configure_model()  # where Lightning compiles the network
    if variant == "compile":
        assert fast.net._compiled_call_impl is not None
    expected, expected_grads = output_and_grads(eager, image, mask)
    got, grads = output_and_grads(fast, image, mask)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=1e-3, atol=1e-4, msg=name)


# ----------------------------------------------------------------------------- fine-tuning
def batch_norm_state(module: L.LightningModule, encoder: bool) -> dict[str, torch.Tensor]:
    """Parameters and buffers of the encoder's (or the decoder's) BatchNorms, on the CPU."""
    encoder_ids = {id(bn) for bn in encoder_batch_norms(module.net)}
    state = {}
    for name, bn in module.net.named_modules():
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm) and (
            (id(bn) in encoder_ids) == encoder
        ):
            for key, value in bn.state_dict().items():
                state[f"{name}.{key}"] = value.detach().cpu().clone()
    return state


class BatchNormProbe(L.Callback):
    """Saves the BatchNorm states at the start and the end of training to ``<path>``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.record: dict = {}

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.record.update(
            strategy=type(trainer.strategy).__name__,
            world_size=trainer.world_size,
            encoder_types=sorted({type(bn).__name__ for bn in encoder_batch_norms(module.net)}),
            encoder_start=batch_norm_state(module, encoder=True),
            decoder_start=batch_norm_state(module, encoder=False),
        )

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.record.update(
            encoder_end=batch_norm_state(module, encoder=True),
            decoder_end=batch_norm_state(module, encoder=False),
        )
        torch.save(self.record, self.path)


def test_finetune_switch_under_ddp_sync_batchnorm(tmp_path, tiny_checkpoint):
    """``tiny_checkpoint`` (conftest) is the initial-phase checkpoint."""
    probe = tmp_path / "bn.pt"
    net = {**SMALL, "levels": 4, "width_mult": 0.125}  # tiny_checkpoint's network
    overlay = run_overlay(
        tmp_path,
        net,
        "32-true",
        trainer={
            "strategy": "ddp",
            "sync_batchnorm": True,
            "callbacks+": [
                {"class_path": "test_cuda.BatchNormProbe", "init_args": {"path": str(probe)}}
            ],
        },
        model={"init_from": tiny_checkpoint},
        finetune={"at_step": 0},
    )
    result = cli(overlay, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = torch.load(probe, weights_only=False)
    assert record["strategy"] == "DDPStrategy" and record["world_size"] == 1
    assert record["encoder_types"] == ["SyncBatchNorm"]
    assert record["encoder_start"] and record["decoder_start"]
    for name, value in record["encoder_start"].items():
        assert torch.equal(record["encoder_end"][name], value), name
    changed = [
        name
        for name, value in record["decoder_start"].items()
        if not torch.equal(record["decoder_end"][name], value)
    ]
    decoder_kinds = {name.rsplit(".", 1)[1] for name in changed}
    assert {"weight", "bias", "running_mean", "running_var"} <= decoder_kinds
