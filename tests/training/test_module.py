"""InpaintingModule: hyper-parameters and checkpoints, optimizer groups, NaN stop, steps."""

import pytest
import torch
from torch.utils.data import DataLoader
from trainers import cpu_trainer

from pconv.losses import InpaintingLoss
from pconv.nn import PConvUNet
from pconv.training.module import ENCODER_BN_GROUP, InpaintingModule, NonFiniteLossError
from pconv.weights import load_network

SIZE = 64
LEVELS = 4


def tiny_module(**kwargs) -> InpaintingModule:
    net = PConvUNet(levels=LEVELS, width_mult=0.125)
    loss = InpaintingLoss(hole_weight=3.0, tv_weight=0.2, vgg_weights=None)
    return InpaintingModule(net=net, loss=loss, **kwargs)


def batches(n: int, nan_at: int | None = None) -> DataLoader:
    """``n`` single-image batches (one per step, no shuffle); image ``nan_at`` is NaN."""
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        image = torch.rand(3, SIZE, SIZE, generator=g)
        if i == nan_at:
            image[:, :4, :4] = float("nan")
        mask = torch.ones(1, SIZE, SIZE)
        mask[:, 16:40, 20:44] = 0
        items.append({"image": image, "mask": mask})
    return DataLoader(items, batch_size=1)


def test_python_built_module_round_trips_through_checkpoint(tmp_path):
    module = tiny_module()
    assert module.hparams["net"] == {
        "class_path": "pconv.nn.unet.PConvUNet",
        "init_args": {
            "levels": LEVELS,
            "width_mult": 0.125,
            "in_channels": 3,
            "normalization": "imagenet",
            "ratio_eps": 0.0,
        },
    }
    assert module.hparams["loss"]["init_args"]["hole_weight"] == 3.0
    assert not any(isinstance(v, torch.nn.Module) for v in module.hparams.values())

    t = cpu_trainer(tmp_path, 2)
    t.fit(module, batches(2))
    path = tmp_path / "model.ckpt"
    t.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert not any(k.startswith("loss.vgg.") for k in checkpoint["state_dict"])

    loaded = InpaintingModule.load_from_checkpoint(path)
    assert loaded.net.levels == LEVELS and loaded.net.width_mult == 0.125
    assert loaded.loss.weights["hole"] == 3.0 and loaded.loss.weights["tv"] == 0.2
    for key, value in module.net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key

    net = load_network(path)
    assert not hasattr(net, "loss") and not net.training
    image, mask = next(iter(batches(1)))["image"], next(iter(batches(1)))["mask"]
    module.eval()
    with torch.no_grad():
        assert torch.equal(net(image, mask), module.net(image, mask))


def test_optimizer_groups_exclude_vgg_and_isolate_encoder_bn():
    module = tiny_module()
    optimizer = module.configure_optimizers()
    groups = {g["name"]: g for g in optimizer.param_groups}
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    encoder_bn = {
        id(p) for block in module.net.encoder for p in block.bn.parameters()
    }  # level 1 has no BN (Identity): no parameters
    assert ids[ENCODER_BN_GROUP] == encoder_bn and len(encoder_bn) == 2 * (LEVELS - 1)
    assert ids["net"] | ids[ENCODER_BN_GROUP] == {id(p) for p in module.net.parameters()}
    assert not ids["net"] & ids[ENCODER_BN_GROUP]
    vgg = {id(p) for p in module.loss.parameters()}
    assert vgg and not vgg & (ids["net"] | ids[ENCODER_BN_GROUP])
    assert all(g["lr"] == 2e-4 for g in optimizer.param_groups)
    assert isinstance(optimizer, torch.optim.Adam)


def test_non_finite_loss_stops_naming_step_and_term(tmp_path):
    # The NaN enters at step 3 and is found at the check after step 4 (every 5 steps).
    module = tiny_module(nan_check_every=5)
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*valid") as stop:
        cpu_trainer(tmp_path, 8).fit(module, batches(8, nan_at=3))
    # No checkpoint was written before the NaN: no advice to resume from one.
    assert "start again (no checkpoint yet)" in str(stop.value)
    assert "resume" not in str(stop.value) and not list(tmp_path.rglob("*.ckpt"))


def test_predict_keeps_valid_pixels_and_passes_index():
    module = tiny_module().eval()
    batch = next(iter(batches(1)))
    batch["index"] = torch.tensor([7])
    with torch.no_grad():
        prediction = module.predict_step(batch, 0)
    valid = batch["mask"].expand_as(batch["image"]).bool()
    assert torch.equal(prediction["comp"][valid], batch["image"][valid])
    assert prediction["comp"].min() >= 0 and prediction["comp"].max() <= 1
    assert prediction["index"].tolist() == [7]
