"""Speed on CPU: bf16-mixed training keeps the partial-convolution counts and the Gram
matrices in fp32; fp16 Grams do not overflow; channels_last and torch.compile train a tiny
model; training steps between log steps read nothing back from the device."""

from __future__ import annotations

import math
import types

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

import pconv.nn.partial_conv as partial_conv
from pconv.data.datamodule import InpaintingDataModule
from pconv.losses.inpainting import TERMS, InpaintingLoss, gram_matrix
from pconv.nn.partial_conv import PartialConv2d
from pconv.nn.unet import PConvUNet
from pconv.training.module import InpaintingModule

#: Small on purpose: bf16 convolutions are slow on CPUs without bf16 instructions.
SIZE = 32
LEVELS = 4
WIDTH = 0.125
STEPS = 2


def tiny_module(**kwargs) -> InpaintingModule:
    torch.manual_seed(0)
    return InpaintingModule(
        net=PConvUNet(levels=LEVELS, width_mult=WIDTH),
        loss=InpaintingLoss(vgg_weights=None),
        **kwargs,
    )


def sample_data() -> InpaintingDataModule:
    return InpaintingDataModule(
        source="samples",
        image_size=SIZE,
        batch_size=2,
        num_workers=0,
        val_masks_per_bucket=1,
        train_samples_per_epoch=2 * STEPS,
        pin_memory=False,
    )


class LossRecorder(L.Callback):
    """Every training step's loss terms, as Python floats."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        names = [f"train/loss/{name}" for name in (*TERMS, "total")]
        self.steps.append({name: float(trainer.callback_metrics[name]) for name in names})


def fit(module: InpaintingModule, precision: str = "32-true") -> LossRecorder:
    recorder = LossRecorder()
    trainer = L.Trainer(
        accelerator="cpu",
        precision=precision,
        max_steps=STEPS,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    trainer.fit(module, datamodule=sample_data())
    assert len(recorder.steps) == STEPS
    for step in recorder.steps:
        assert all(math.isfinite(value) for value in step.values()), step
    return recorder


def test_bf16_steps_are_finite_with_fp32_counts_masks_and_grams(monkeypatch, gram_dtypes):
    """bf16 autocast runs the convolutions in bf16 (checked, so the test cannot pass with
    autocast off) while the valid counts, updated masks and Gram matrices stay fp32."""
    conv_dtypes: dict[str, set] = {"count": set(), "features": set()}

    def spy_conv2d(x, weight, *args, **kwargs):
        out = F.conv2d(x, weight, *args, **kwargs)
        # The count convolution has the single-channel all-ones kernel.
        kind = "count" if weight.shape[:2] == (1, 1) else "features"
        conv_dtypes[kind].add(out.dtype)
        return out

    monkeypatch.setattr(partial_conv, "F", types.SimpleNamespace(conv2d=spy_conv2d))
    mask_dtypes = set()
    forward_masked = PartialConv2d.forward_masked

    def spy_forward_masked(self, masked_x, mask_sum):
        out, new_mask = forward_masked(self, masked_x, mask_sum)
        mask_dtypes.add(new_mask.dtype)
        return out, new_mask

    monkeypatch.setattr(PartialConv2d, "forward_masked", spy_forward_masked)
    module = tiny_module()
    vgg_dtypes = set()
    module.loss.vgg.register_forward_hook(lambda m, i, out: vgg_dtypes.update(f.dtype for f in out))

    fit(module, "bf16-mixed")

    assert conv_dtypes["features"] == {torch.bfloat16}
    assert vgg_dtypes == {torch.bfloat16}
    assert conv_dtypes["count"] == {torch.float32}
    assert mask_dtypes == {torch.float32}
    assert gram_dtypes == {torch.float32}


def test_fp16_gram_does_not_overflow():
    """Constant features c over C channels: every Gram entry is c²·HW / (C·H·W) = c²/C. With
    c = 200 on 64×64 the unnormalised sum (1.6e8) overflows fp16 (max 65504)."""
    c, channels, side = 200.0, 4, 64
    features = torch.full((1, channels, side, side), c, dtype=torch.float16)
    with torch.autocast("cpu", dtype=torch.float16):
        gram = gram_matrix(features)
    assert gram.dtype == torch.float32
    assert torch.equal(gram, torch.full((1, channels, channels), c * c / channels))


def test_channels_last_gives_the_same_output():
    reference, fast = tiny_module(), tiny_module(channels_last=True)
    convs = [m for m in fast.net.modules() if isinstance(m, PartialConv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    torch.manual_seed(1)
    image = torch.rand(2, 3, SIZE, SIZE)
    mask = (torch.rand(2, 1, SIZE, SIZE) > 0.3).float()
    with torch.no_grad():
        expected = reference.eval()(image, mask)
        got = fast.eval()(image, mask)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_compile_and_channels_last_train_in_place():
    module = tiny_module(compile=True, channels_last=True)
    fit(module)
    assert module.net._compiled_call_impl is not None
    # Compiled in place: checkpoint keys are the plain ones, loadable by load_network.
    assert not [k for k in module.state_dict() if "_orig_mod" in k]


def test_bf16_first_step_loss_matches_fp32():
    """Same weights, same first batch: bf16 changes the loss terms by rounding only."""
    fp32 = fit(tiny_module()).steps[0]
    low = fit(tiny_module(), "bf16-mixed").steps[0]
    for name, value in fp32.items():
        assert low[name] == pytest.approx(value, rel=0.05, abs=1e-4), name


#: Tensor methods that copy a value to the host: on a GPU, each waits for the device.
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
#: Steps between logger writes and NaN checks in the quiet run below.
QUIET_STEPS = 50
HOT_STEPS = 6


class HostReadCounter(L.Callback):
    """Counts host reads of tensors from the start of step 1 to the start of the last step
    (step 0 sets things up once)."""

    def __init__(self) -> None:
        self.active = False
        self.reads = 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.active = 0 < trainer.global_step < HOT_STEPS - 1


def count_host_reads(monkeypatch, tmp_path, nan_check_every: int) -> int:
    """Host reads during the middle steps of a run with the default progress bar and a
    logger that writes every ``QUIET_STEPS`` steps."""
    counter = HostReadCounter()
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            counter.reads += counter.active
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=HOT_STEPS,
        limit_val_batches=0,
        log_every_n_steps=QUIET_STEPS,
        logger=CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[counter],
    )
    data = sample_data()
    data.hparams.train_samples_per_epoch = 2 * HOT_STEPS  # no epoch end in between
    # SGD: Adam reads its step counter with .item(), but keeps it on the host by design.
    module = tiny_module(
        optimizer=lambda groups: torch.optim.SGD(groups, lr=1e-3),
        nan_check_every=nan_check_every,
    )
    trainer.fit(module, datamodule=data)
    monkeypatch.undo()
    return counter.reads


def test_no_host_reads_between_log_steps(monkeypatch, tmp_path):
    """No .item() or similar in the hot path: a training step that writes no logs and runs
    no NaN check reads nothing back from the device. A NaN check every step reads every step
    (which shows that the count sees reads)."""
    assert count_host_reads(monkeypatch, tmp_path, nan_check_every=QUIET_STEPS) == 0
    assert count_host_reads(monkeypatch, tmp_path, nan_check_every=1) > 0
