"""Fine-tune switch: frozen encoder BN (statistics and affine), training decoder BN, LRs,
and resume before and after the switch, on a tiny model in-process."""

import copy

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader
from trainers import cpu_trainer

from pconv.losses import InpaintingLoss
from pconv.nn import PConvUNet
from pconv.training.callbacks import FinetuneSwitch
from pconv.training.module import ENCODER_BN_GROUP, InpaintingModule

SIZE = 64
STEPS = 6
SWITCH_AT = 3
LR = 1e-2  # large, so that any update of a parameter that should be frozen shows
FINETUNE_LR = 3e-3


def loader() -> DataLoader:
    """One batch of two images per epoch: every checkpoint falls on an epoch boundary, so a
    resumed run sees exactly the batches of an uninterrupted one."""
    g = torch.Generator().manual_seed(0)
    items = [
        {
            "image": torch.rand(3, SIZE, SIZE, generator=g),
            "mask": (torch.rand(1, SIZE, SIZE, generator=g) > 0.3).float(),
        }
        for _ in range(2)
    ]
    return DataLoader(items, batch_size=2)


def module() -> InpaintingModule:
    torch.manual_seed(0)
    return InpaintingModule(
        net=PConvUNet(levels=4, width_mult=0.125),
        loss=InpaintingLoss(vgg_weights=None),
        optimizer=lambda groups: torch.optim.Adam(groups, lr=LR),
        nan_check_every=1,
    )


def bn_state(net: PConvUNet, part: str) -> dict[str, torch.Tensor]:
    """Every BatchNorm tensor (weight, bias, running mean/var) of the encoder or decoder."""
    return {
        k: v.clone()
        for k, v in getattr(net, part).state_dict().items()
        if ".bn." in k and "num_batches" not in k
    }


class Snapshot(L.Callback):
    """Records the network's BN state and the LRs just before each optimizer step."""

    def __init__(self):
        self.encoder, self.decoder, self.lrs = {}, {}, {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        step = trainer.global_step
        self.encoder[step] = bn_state(module.net, "encoder")
        self.decoder[step] = bn_state(module.net, "decoder")
        self.lrs[step] = {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups}


def fit(tmp_path, model, steps, ckpt_path=None, switch=None):
    switch = switch or FinetuneSwitch(at_step=SWITCH_AT, lr=FINETUNE_LR)
    snapshot = Snapshot()
    trainer = cpu_trainer(tmp_path, steps, enable_checkpointing=False, callbacks=[switch, snapshot])
    trainer.fit(model, loader(), ckpt_path=ckpt_path)
    return trainer, switch, snapshot


def assert_equal_states(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model = module()
    _, switch, snapshot = fit(tmp_path_factory.mktemp("full"), model, STEPS)
    return model, switch, snapshot


def test_switch_freezes_encoder_bn_and_sets_lrs(uninterrupted):
    model, switch, snapshot = uninterrupted
    assert switch.switched_at_step == SWITCH_AT
    final_encoder = bn_state(model.net, "encoder")
    # Before the switch the encoder BNs trained; from the switch on nothing of them changes.
    assert not torch.equal(
        snapshot.encoder[0]["1.bn.running_mean"], snapshot.encoder[SWITCH_AT]["1.bn.running_mean"]
    )
    assert not torch.equal(
        snapshot.encoder[0]["1.bn.weight"], snapshot.encoder[SWITCH_AT]["1.bn.weight"]
    )
    assert_equal_states(final_encoder, snapshot.encoder[SWITCH_AT])
    # Decoder BNs keep training: statistics and affine parameters move after the switch.
    final_decoder = bn_state(model.net, "decoder")
    for key, value in snapshot.decoder[SWITCH_AT].items():
        assert not torch.equal(final_decoder[key], value), key
    assert snapshot.lrs[SWITCH_AT - 1] == {"net": LR, ENCODER_BN_GROUP: LR}
    for step in range(SWITCH_AT, STEPS):
        assert snapshot.lrs[step] == {"net": FINETUNE_LR, ENCODER_BN_GROUP: 0.0}
    assert all(
        not m.training for m in model.net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )


@pytest.mark.parametrize("stop_at", [SWITCH_AT - 2, SWITCH_AT + 1], ids=["before", "after"])
def test_resume_matches_uninterrupted_run(tmp_path, uninterrupted, stop_at):
    reference, _, _ = uninterrupted
    model = module()
    trainer, _, _ = fit(tmp_path, model, stop_at)
    path = tmp_path / "stop.ckpt"
    trainer.save_checkpoint(path)

    resumed = module()
    _, switch, snapshot = fit(
        tmp_path,
        resumed,
        STEPS,
        ckpt_path=path,
        switch=FinetuneSwitch(at_step=SWITCH_AT, lr=FINETUNE_LR),
    )
    assert switch.switched_at_step == SWITCH_AT
    for step in range(max(stop_at, SWITCH_AT), STEPS):
        assert snapshot.lrs[step] == {"net": FINETUNE_LR, ENCODER_BN_GROUP: 0.0}
    for key, value in reference.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, msg=key)


def test_switch_at_step_zero_never_touches_encoder_bn(tmp_path):
    model = module()
    before = copy.deepcopy(bn_state(model.net, "encoder"))
    _, switch, snapshot = fit(tmp_path, model, 3, switch=FinetuneSwitch(at_step=0, lr=FINETUNE_LR))
    assert switch.switched_at_step == 0
    assert snapshot.lrs[0] == {"net": FINETUNE_LR, ENCODER_BN_GROUP: 0.0}
    assert_equal_states(bn_state(model.net, "encoder"), before)


SCHEDULERS = {
    "cosine": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS),
    "onecycle": lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=STEPS),
    "linear": lambda opt: torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.1, total_iters=STEPS),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_frozen_encoder_bn_never_moves_under_a_scheduler(tmp_path, name):
    model = module()
    model.scheduler_factory = SCHEDULERS[name]
    _, switch, snapshot = fit(tmp_path, model, STEPS)
    assert switch.switched_at_step == SWITCH_AT
    # Affine parameters and statistics alike, at every step after the switch.
    for step in range(SWITCH_AT, STEPS):
        assert_equal_states(snapshot.encoder[step], snapshot.encoder[SWITCH_AT])
    assert_equal_states(bn_state(model.net, "encoder"), snapshot.encoder[SWITCH_AT])
    # The rest follows the schedule from the fine-tune lr, not from the initial one.
    assert snapshot.lrs[SWITCH_AT]["net"] == pytest.approx(FINETUNE_LR)
    assert all(snapshot.lrs[s]["net"] <= FINETUNE_LR * 1.5 for s in range(SWITCH_AT, STEPS))
