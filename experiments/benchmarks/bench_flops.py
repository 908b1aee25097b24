"""FLOPs per training image, ours against the naive baseline, and the achieved throughput.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
products; elementwise work is not counted) on fake tensors, so nothing is computed and the
count takes a second. A training image costs the U-Net forward and backward plus the loss:
VGG-16 on the output, the composite and the ground truth, its backward for the first two, and
the Gram matrices. Where ``results/train.json`` exists (``bench_train.py``, run just before by
``run_all.py``) the measured images/s turn into achieved TFLOP/s, and on a GPU of known peak
into the achieved fraction of that peak.

    python experiments/benchmarks/bench_flops.py [--sizes 256 512]
"""

from __future__ import annotations

import argparse
import sys

import torch
from harness import PAPER_LEVELS, print_table, read_result, write_result
from naive_pconv import NaiveInpaintingLoss, NaivePConvUNet
from torch._subclasses.fake_tensor import FakeTensorMode  # public meta tensors can't autocast
from torch.utils.flop_counter import FlopCounterMode

from pconv.losses import InpaintingLoss
from pconv.nn import PConvUNet

IMPLEMENTATIONS = {"ours": PConvUNet, "naive": NaivePConvUNet}
#: Dense bf16 tensor-core peaks in TFLOP/s (without sparsity) from NVIDIA's data sheets,
#: matched against ``torch.cuda.get_device_name()`` in this order (the first substring found
#: wins). Sources: H100/H200: "NVIDIA H100 Tensor Core GPU" and "NVIDIA H200 Tensor Core GPU"
#: data sheets (SXM, 1,979 TFLOPS with sparsity = 989 dense); GH200: "NVIDIA GH200 Grace
#: Hopper Superchip" data sheet; B200: "NVIDIA DGX B200" data sheet (per GPU, dense); A100:
#: "NVIDIA A100 Tensor Core GPU" data sheet; L40S, L4, A10G: the NVIDIA L40S, L4 and A10
#: data sheets.
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "H200": 989.4,
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
}
TERA = 1e12
GIGA = 1e9


def training_flops(
    impl: str, size: int, levels: int | None = None, width_mult: float = 1.0
) -> dict:
    """FLOPs of one training image of ``impl`` at ``size``, split by phase; ``levels``
    defaults to the paper's for ``size``."""
    counter = FlopCounterMode(display=False)  # its count restarts at every ``with``
    with FakeTensorMode():
        net = IMPLEMENTATIONS[impl](levels=levels or PAPER_LEVELS[size], width_mult=width_mult)
        loss = InpaintingLoss(vgg_weights=None)
        criterion = loss if impl == "ours" else NaiveInpaintingLoss(loss.vgg, loss.weights)
        image, mask = torch.rand(1, 3, size, size), torch.ones(1, 1, size, size)
        with counter:
            out = net(image, mask)
        result = {"unet_forward": counter.get_total_flops()}
        with counter:
            out.sum().backward(retain_graph=True)
        result["unet_backward"] = counter.get_total_flops()
        with counter:
            total = criterion(out, image, mask)["total"]
        result["loss_forward"] = counter.get_total_flops()
        with counter:
            total.backward()
        result["loss_backward"] = counter.get_total_flops() - result["unet_backward"]
    result["total"] = sum(result.values())
    return result


def gpu_peak_tflops(name: str | None) -> float | None:
    for key, peak in PEAK_BF16_TFLOPS.items():
        if name and key in name:
            return peak
    return None


def achieved(flops: dict, train: dict | None) -> list[dict]:
    """Achieved GFLOP/s (and fraction of the GPU's peak) of each run in ``train.json``."""
    if train is None:
        return []
    peak = gpu_peak_tflops(train["machine"].get("gpu")) if train["device"] == "cuda" else None
    rows = []
    for run in train["results"]:
        for impl in IMPLEMENTATIONS:
            speed = run[impl].get("images_per_s")
            if speed is None or str(run["size"]) not in flops[impl]:
                continue
            flops_per_s = flops[impl][str(run["size"])]["total"] * speed
            rows.append(
                {
                    "size": run["size"],
                    "mode": run["mode"],
                    "impl": impl,
                    "gflops_per_s": flops_per_s / GIGA,
                    "fraction_of_peak": flops_per_s / (peak * TERA) if peak else None,
                }
            )
    return rows


def run(args: argparse.Namespace) -> dict:
    flops = {
        impl: {str(size): training_flops(impl, size) for size in args.sizes}
        for impl in IMPLEMENTATIONS
    }
    table = []
    for size in args.sizes:
        ours, naive = flops["ours"][str(size)], flops["naive"][str(size)]
        for phase in ours:
            table.append(
                [
                    f"{size}: {phase.replace('_', ' ')}",
                    ours[phase] / GIGA,
                    naive[phase] / GIGA,
                    naive[phase] / ours[phase] if ours[phase] else None,
                ]
            )
    print_table(
        "GFLOPs per training image (U-Net fwd+bwd, VGG-16 + Gram fwd+bwd)",
        ["size: phase", "ours", "naive", "naive / ours"],
        table,
    )
    speeds = achieved(flops, read_result("train"))
    if speeds:
        print_table(
            "Achieved throughput (images/s from results/train.json)",
            ["config", "GFLOP/s", "fraction of peak"],
            [
                [f"{s['impl']} {s['size']} {s['mode']}", s["gflops_per_s"], s["fraction_of_peak"]]
                for s in speeds
            ],
        )
    payload = {"flops_per_image": flops, "achieved": speeds}
    print(f"wrote {write_result('flops', payload)}")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(PAPER_LEVELS))
    args = parser.parse_args(argv)
    if any(size not in PAPER_LEVELS for size in args.sizes):
        parser.exit(2, f"bench_flops: sizes must be among {list(PAPER_LEVELS)}\n")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
