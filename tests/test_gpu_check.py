"""experiments/gpu/check.py: its dry run executes every section on the CPU and writes a
complete JSON; a failing section is reported while the others run; an existing result is
kept; the peak table and the targets read right."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "gpu" / "check.py"
spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
check = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = check  # dataclasses look their module up there
spec.loader.exec_module(check)

CUDA_TESTS = 9  # tests/test_cuda.py, parametrisations included


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One ``check.py --dry-run``: (its JSON, its stdout)."""
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout


def test_dry_run_runs_every_section(dry_run):
    payload, stdout = dry_run
    assert payload["dry_run"] is True and payload["device"] == "cpu"
    assert list(payload["sections"]) == list(check.SECTIONS)
    for name, section in payload["sections"].items():
        assert section["status"] == "ok", (name, section)
        assert section["seconds"] > 0
    assert "GPU check on cpu (dry run" in stdout


def test_dry_run_cuda_tests_skip_without_a_gpu(dry_run):
    tests = dry_run[0]["sections"]["correctness"]["tests"]
    assert len(tests) == CUDA_TESTS
    assert {t["outcome"] for t in tests} == {"skipped"}
    assert {t["message"] for t in tests} == {"needs a CUDA GPU"}
    assert any(t["name"].endswith("[16-mixed]") for t in tests)


def test_dry_run_training_figures(dry_run):
    section = dry_run[0]["sections"]["training"]
    configs = section["configs"]
    assert list(configs) == list(check.TRAIN_CONFIGS)
    for name, result in configs.items():
        assert len(result["times_ms"]) == check.DRY.steps
        assert result["ms_per_step"] == statistics.median(result["times_ms"])
        ms = result["ms_per_step"]
        assert result["images_per_s"] == pytest.approx(section["batch"] * 1e3 / ms)
        assert result["peak_memory_mib"] is None  # CPU: no device memory figure
        naive = configs["naive fp32"]["images_per_s"]
        assert result["x_naive_fp32"] == pytest.approx(result["images_per_s"] / naive), name
    assert configs["naive bf16 channels_last"]["x_naive_bf16"] == 1.0
    compiled = configs["pconv bf16 channels_last compiled"]
    assert compiled["compile"] and compiled["bf16"] and compiled["channels_last"]


def test_dry_run_mfu_inference_and_profile(dry_run):
    sections = dry_run[0]["sections"]
    mfu = sections["mfu"]
    assert mfu["peak"] == "unknown peak" and mfu["peak_bf16_tflops"] is None
    flops = mfu["flops_per_image"]
    # The naive port's multi-channel mask convolutions cost extra U-Net forward FLOPs.
    assert flops["naive"]["unet_forward"] > flops["ours"]["unet_forward"] > 0
    training = sections["training"]["configs"]
    for name, row in mfu["configs"].items():
        impl = training[name]["impl"]
        expected = flops[impl]["total"] * training[name]["images_per_s"] / 1e12
        assert row["achieved_tflops"] == pytest.approx(expected)
        assert row["mfu"] is None
    results = sections["inference"]["results"]
    assert set(results) == {"naive eager", "ours eager", "ours compiled", "ours onnxruntime"}
    for result in results.values():
        assert set(result["ms"]) == {"1", str(check.DRY.inference_batch)}
    assert results["ours onnxruntime"]["provider"] == "CPUExecutionProvider"
    profile = sections["profile"]
    assert set(profile["shares"]) == {"data", "U-Net", "VGG-16 loss", "optimizer"}
    assert sum(profile["shares"].values()) == pytest.approx(1.0)
    assert sum(profile["phases_ms"].values()) == pytest.approx(profile["step_ms"])
    assert 0 < len(profile["top_kernels"]) <= check.TOP_KERNELS
    targets = dry_run[0]["targets"]
    assert targets["mfu"]["met"] is None and targets["fp16_losses_finite"]["met"] is None


def test_a_failing_section_is_reported_and_the_json_kept_after_each(tmp_path, monkeypatch):
    out = tmp_path / "gpu.json"
    seen = {}

    def broken(plan, device):
        raise RuntimeError("boom\nsecond line")

    def mfu_after(plan, device, training):
        seen.update(json.loads(out.read_text())["sections"])  # written before this section
        return {"status": "ok"}

    monkeypatch.setattr(check, "correctness", broken)
    monkeypatch.setattr(check, "mfu", mfu_after)
    check.main(["--dry-run", "--out", str(out), "--sections", "correctness", "mfu"])
    sections = json.loads(out.read_text())["sections"]
    assert seen["correctness"]["error"] == "RuntimeError: boom"
    assert sections["correctness"]["status"] == "error"
    assert sections["mfu"]["status"] == "ok"


def test_an_existing_result_is_kept_without_overwrite(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    out.write_text('{"measured": "on a GPU"}\n')
    before = hashlib.sha256(out.read_bytes()).hexdigest()
    with pytest.raises(SystemExit) as exit_info:
        check.main(["--dry-run", "--out", str(out)])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message == f"gpu check: {out} exists; pass --overwrite to replace it or --out elsewhere"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_a_real_run_needs_a_gpu(capsys):
    with pytest.raises(SystemExit) as exit_info:
        check.main([])
    assert exit_info.value.code == 2
    assert "no CUDA device here" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H200", 989.4),
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("Tesla V100-SXM2-16GB", None),
    ],
)
def test_peak_by_device_name(name, peak):
    assert check.bench_flops.gpu_peak_tflops(name) == peak


def test_targets_read_the_sections():
    sections = {
        "training": {
            "configs": {
                "pconv bf16 channels_last": {"x_naive_fp32": 1.8},
                "pconv bf16 channels_last compiled": {"x_naive_fp32": 2.4},
            }
        },
        "mfu": {"configs": {"a": {"mfu": 0.31}, "b": {"mfu": 0.35}}},
        "correctness": {
            "tests": [
                {"name": "test_x[bf16-mixed]", "outcome": "failed"},
                {"name": "test_x[16-mixed]", "outcome": "passed"},
            ]
        },
    }
    targets = check.targets(sections)
    assert targets["bf16_speedup_over_naive_fp32"] == {"value": 2.4, "target": 2.0, "met": True}
    assert targets["mfu"] == {"value": 0.35, "target": 0.4, "met": False}
    assert targets["fp16_losses_finite"] == {"value": True, "met": True}


def test_a_rerun_of_some_sections_keeps_the_others(tmp_path):
    """``--overwrite --sections mfu``: the training and profile figures of the earlier run
    stay, and the MFU is computed from the kept training figures."""
    out = tmp_path / "gpu.json"
    training = {"status": "ok", "seconds": 1.0, "configs": {"naive fp32": {"impl": "naive"}}}
    training["configs"]["naive fp32"]["images_per_s"] = 2.0
    profile = {"status": "ok", "seconds": 1.0, "shares": {"data": 1.0}}
    earlier = {"device": "cpu", "dry_run": True, "sections": {"training": training}}
    earlier["sections"]["profile"] = profile
    out.write_text(json.dumps(earlier))
    check.main(["--dry-run", "--out", str(out), "--overwrite", "--sections", "mfu"])
    sections = json.loads(out.read_text())["sections"]
    assert sections["training"] == training and sections["profile"] == profile
    naive_flops = sections["mfu"]["flops_per_image"]["naive"]["total"]
    (row,) = sections["mfu"]["configs"].values()
    assert row["achieved_tflops"] == pytest.approx(naive_flops * 2.0 / 1e12)
