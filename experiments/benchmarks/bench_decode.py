"""JPEG decoders on this machine: images/s on one thread and pixel agreement with Pillow.

Every decoder turns the same JPEG bytes into the H×W×3 uint8 RGB array the training pipeline
crops. The photos are the skimage.data ones, written with OpenCV at quality 90 (4:2:0 chroma,
as most ImageNet files) at two sizes: ImageNet's typical 500 px on the longer side, and their
own 300×451 to 500×741. Decoders:

- ``opencv``: :func:`pconv.data.images.decode_image`, what pconv uses (``cv2.imdecode`` then
  BGR to RGB);
- ``pillow``: ``Image.open(...).convert("RGB")`` and ``np.asarray``;
- ``torchvision``: ``torchvision.io.decode_jpeg`` and a permute to H×W×3;
- ``simplejpeg``: ``simplejpeg.decode_jpeg`` (``pip install simplejpeg``; skipped if missing);
- ``turbojpeg``: PyTurboJPEG (``pip install PyTurboJPEG`` and the system's libturbojpeg, e.g.
  Debian's ``libturbojpeg0``; skipped if missing).

Timings alternate between decoders round by round in one process (each round decodes every
photo once per decoder) and the median round counts, so load from other processes hits all
alike. Agreement: the largest and mean absolute difference from Pillow's pixels and the share
of values that differ at all. To show what a decoder is worth in training, the rest of a
training sample at 512 (random resized crop, flip, ``paper`` mask, tensors: ``TrainDataset``'s
path after the decode) is timed in the same rounds, and each decoder's share of the whole
path is printed. Writes ``results/decode.json``.

    python experiments/benchmarks/bench_decode.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import PIL
import torch
import torchvision
from harness import print_table, write_result
from PIL import Image, features

from pconv.data.datasets import make_sample, random_sample, sample_rng
from pconv.data.images import decode_image
from pconv.data.masks import make_mask_generator
from pconv.data.samples import PHOTO_NAMES, sample_image
from pconv.data.transforms import train_transform

JPEG_QUALITY = 90
IMAGENET_SIDE = 500
SAMPLE_SIZE = 512


def photos(longer_side: int | None) -> list[bytes]:
    """The skimage.data photos as JPEG bytes, resized to ``longer_side`` (None: as they are)."""
    encoded = []
    for name in PHOTO_NAMES:
        bgr = np.ascontiguousarray(sample_image(name)[:, :, ::-1])
        if longer_side is not None:
            scale = longer_side / max(bgr.shape[:2])
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        encoded.append(data.tobytes())
    return encoded


def pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def torchvision_io(data: bytes) -> np.ndarray:
    tensor = torchvision.io.decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    return tensor.permute(1, 2, 0).contiguous().numpy()


def decoders() -> tuple[dict[str, Callable[[bytes], np.ndarray]], dict[str, str]]:
    """The decoders this machine has, and each one's version."""
    found = {
        "opencv": lambda data: decode_image(data, "bench"),
        "pillow": pillow,
        "torchvision": torchvision_io,
    }
    versions = {
        "opencv": cv2.__version__,
        "pillow": f"{PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')})",
        "torchvision": torchvision.__version__,
    }
    try:
        import simplejpeg

        found["simplejpeg"] = simplejpeg.decode_jpeg
        versions["simplejpeg"] = simplejpeg.__version__
    except ImportError:
        pass
    try:
        from turbojpeg import TJPF_RGB, TurboJPEG

        turbo = TurboJPEG()
        found["turbojpeg"] = lambda data: turbo.decode(data, pixel_format=TJPF_RGB)
        versions["turbojpeg"] = "PyTurboJPEG with the system libturbojpeg"
    except (ImportError, OSError, RuntimeError):
        pass
    return found, versions


def agreement(decode: Callable[[bytes], np.ndarray], files: list[bytes]) -> dict[str, float]:
    """Largest and mean |difference| from Pillow, and the share of values that differ."""
    largest, total, differing, count = 0, 0.0, 0, 0
    for data in files:
        ours, reference = decode(data).astype(np.int16), pillow(data).astype(np.int16)
        assert ours.shape == reference.shape, (ours.shape, reference.shape)
        difference = np.abs(ours - reference)
        largest = max(largest, int(difference.max()))
        total += float(difference.sum())
        differing += int(np.count_nonzero(difference))
        count += difference.size
    return {"max_abs": largest, "mean_abs": total / count, "share_differing": differing / count}


def rates(found: dict, files: list[bytes], rounds: int) -> tuple[dict[str, float], float]:
    """Images/s of each decoder, and ms per image of the rest of a training sample: medians
    over ``rounds`` alternating rounds."""
    images = [decode_image(data, "bench") for data in files]
    transform, masks = train_transform(SAMPLE_SIZE), make_mask_generator("paper")

    def rest_of_sample() -> None:
        for index, image in enumerate(images):
            crop, mask = random_sample(
                image, transform, masks, SAMPLE_SIZE, sample_rng(0, 0, index, 0)
            )
            make_sample(crop, mask)

    steps = {
        name: lambda decode=decode: [decode(data) for data in files]
        for name, decode in found.items()
    }
    steps["rest of sample"] = rest_of_sample
    seconds = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step()
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - start)
    rest = seconds.pop("rest of sample")
    speed = {name: len(files) / statistics.median(times) for name, times in seconds.items()}
    return speed, 1000 * statistics.median(rest) / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    found, versions = decoders()
    results, rows = {}, []
    for label, side in (("imagenet-500", IMAGENET_SIDE), ("original", None)):
        files = photos(side)
        speed, rest_ms = rates(found, files, args.rounds)
        results[label] = {"rest_of_sample_ms": rest_ms}
        for name, decode in found.items():
            match = agreement(decode, files)
            decode_ms = 1000 / speed[name]
            share = decode_ms / (decode_ms + rest_ms)
            results[label][name] = {"images_per_s": speed[name], "share_of_sample": share, **match}
            rows.append([
                label, name, speed[name], speed[name] / speed["opencv"], 100 * share,
                1000 / (decode_ms + rest_ms), match["max_abs"], match["mean_abs"],
                100 * match["share_differing"],
            ])  # fmt: skip
    print_table(
        f"JPEG decode to RGB, 1 thread, median of {args.rounds} rounds; sample path at "
        f"{SAMPLE_SIZE} = decode + crop, flip, paper mask, tensors",
        ["photos", "decoder", "images/s", "× opencv", "% of sample path", "samples/s",
         "max |Δ| vs pillow", "mean |Δ|", "% values differing"],
        rows,
    )  # fmt: skip
    path = write_result("decode", {"versions": versions, "quality": JPEG_QUALITY, **results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
