"""Inpaint your own photos: the :class:`Inpainter` API and ``pconv inpaint``.

Any image size works: the image and its mask are **reflect-padded** at the bottom and right
to the next multiple of ``2**levels`` (the network's input constraint), the padded pixels
count as valid (they mirror real content, which gives the network context at the border),
and the output is cropped back. The whole image goes through the network at once, so memory
grows with the pixel count (no tiling).

Only hole pixels change: every valid pixel of the output is bit-identical to the input.

Command line::

    pconv inpaint --ckpt model.ckpt photo.jpg mask.png -o filled.png
    pconv inpaint --ckpt model.ckpt photos/ masks/ -o filled/      # masks matched by name

Mask files follow our convention (black = hole, white = valid) unless
``--mask-hole-value 255`` says that white is hole. Gray levels are thresholded at half range.
In a mask with transparent pixels, **transparent pixels (alpha < 128 of 255) are holes and
opaque ones valid**, whatever their colour: the usual reading of a mask painted on, or erased
from, a layer (an opaque black layer with transparent holes included).

Outputs keep the input's 16-bit samples and alpha channel where their format can
(:mod:`pconv.image_io`; a folder run writes PNGs, which keep both), and say so in one line
where it cannot. The tool never writes over an input, refuses an existing output unless
``--overwrite`` is given, and in folder mode refuses inputs that would share an output name
(``pic.jpg`` and ``pic.png`` both give ``pic.png``), all before any work.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pconv.data.images import IMAGE_EXTENSIONS, scan_images
from pconv.image_io import Photo, encode_photo, read_photo, writable_suffix
from pconv.nn.unet import PConvUNet
from pconv.utils import tool_args
from pconv.utils.choices import BLACK, WHITE
from pconv.utils.devices import resolve_device
from pconv.utils.files import atomic_write
from pconv.utils.progress import track
from pconv.weights.errors import WeightsUnavailableError
from pconv.weights.load import load_network, resolve

PROG = "pconv inpaint"
#: A mask pixel is white (:data:`WHITE`) at or above half range.
THRESHOLD = 128
#: A folder run writes PNGs: lossless, so valid pixels stay bit-identical.
OUTPUT_SUFFIX = ".png"
#: A 16-bit sample per 8-bit one: 255 × 257 = 65535.
_UINT16_PER_UINT8 = 257
_UINT8_MAX = 255.0
NEEDS_CHECKPOINT = (
    "a checkpoint is needed: pass --ckpt PATH.ckpt, a checkpoint written by `pconv fit` "
    "(under <default_root_dir>/<logger>/.../checkpoints/, e.g. last.ckpt)"
)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad N×C×H×W ``x`` at the bottom and right so H and W are multiples of
    ``multiple``. Pads longer than a side reflect repeatedly; a side of 1 is replicated."""
    while True:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % multiple, -width % multiple
        if not pad_h and not pad_w:
            return x
        if min(height, width) == 1:
            return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        # Reflection can add at most side - 1 pixels at a time.
        x = F.pad(x, (0, min(pad_w, width - 1), 0, min(pad_h, height - 1)), mode="reflect")


class Inpainter:
    """A trained network ready to fill holes in images of any size.

    ``inpainter(image, mask)`` returns the kind of image it is given:

    - PIL: ``image`` any mode (converted to RGB), ``mask`` a PIL image like a mask file
      (white = valid, black = hole; thresholded at half range) or a numpy mask as below;
      returns an RGB PIL image;
    - numpy: ``image`` H×W×3 uint8 RGB, ``mask`` H×W (bool or integer, nonzero = valid);
      returns H×W×3 uint8 (read-only arrays are fine);
    - tensors: ``image`` 3×H×W or N×3×H×W float in [0, 1], ``mask`` H×W, 1×H×W or
      N×1×H×W (> 0.5 = valid); returns a float tensor shaped like ``image``.

    Valid pixels of the result are exactly those of ``image``; hole pixels come from the
    network, clamped to [0, 1].
    """

    def __init__(self, net: PConvUNet, device: str | torch.device | None = None) -> None:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.net = net.to(device).eval()
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(
        cls, spec: str | os.PathLike, device: str | torch.device | None = None
    ) -> Inpainter:
        """Load a trained network (no VGG needed) from a ``pconv fit`` checkpoint, a
        safetensors pair or folder, a hub repo (``user/name[@revision]`` or ``hf://…``) or
        an ``https://…[#sha256=…]`` URL; see :mod:`pconv.weights`."""
        return cls(load_network(resolve(spec, bare_repo_ids=True)), device)

    #: The older name: any weights spec works.
    from_checkpoint = from_pretrained

    @torch.no_grad()
    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw network output N×3×H×W (not composited) for any H×W; inputs as ``__call__``."""
        height, width = image.shape[-2:]
        multiple = self.net.multiple
        padded_image = pad_to_multiple(image.to(self.device, torch.float32), multiple)
        padded_mask = pad_to_multiple(mask.to(self.device, torch.float32), multiple)
        return self.net(padded_image, padded_mask)[..., :height, :width]

    def __call__(self, image, mask):
        from PIL import Image

        if isinstance(image, Image.Image):
            if isinstance(mask, Image.Image):
                mask = np.asarray(mask.convert("L")) >= THRESHOLD
            rgb = np.asarray(image.convert("RGB"))
            return Image.fromarray(self._call_numpy(rgb, np.asarray(mask)))
        if isinstance(image, np.ndarray):
            return self._call_numpy(image, np.asarray(mask))
        return self._call_tensor(image, torch.as_tensor(mask))

    def _call_numpy(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be H×W×3 uint8 RGB, got {image.shape} {image.dtype}")
        _check_mask_size(image.shape[:2], mask.shape)
        valid = mask != 0
        # A copy: torch warns about (and must not share) read-only arrays, e.g. from PIL.
        tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]
        mask_tensor = torch.from_numpy(valid)[None, None]
        output = self.predict(tensor.float() / _UINT8_MAX, mask_tensor)[0]
        filled = (output.clamp(0, 1) * _UINT8_MAX).round().byte().permute(1, 2, 0).cpu().numpy()
        return np.where(valid[:, :, None], image, filled)

    def _call_tensor(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batched = image.dim() == 4
        images = image if batched else image[None]
        masks = mask.reshape(-1, 1, *mask.shape[-2:]) if mask.dim() < 4 else mask
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"image must be 3×H×W or N×3×H×W, got {tuple(image.shape)}")
        _check_mask_size(tuple(images.shape[-2:]), tuple(masks.shape[-2:]))
        valid = masks.to(images.device) > 0.5
        output = self.predict(images, valid).to(images.device, images.dtype).clamp(0, 1)
        result = torch.where(valid, images, output)
        return result if batched else result[0]


def _check_mask_size(image_size: tuple[int, ...], mask_size: tuple[int, ...]) -> None:
    if tuple(mask_size) != tuple(image_size):
        raise ValueError(
            f"mask size {tuple(mask_size)} differs from image size {tuple(image_size)}"
        )


class InputError(ValueError):
    """Bad command-line input; the message is the one line the user sees."""


def read_mask(path: Path, hole_value: int) -> tuple[np.ndarray, int]:
    """A mask file as H×W uint8 (1 valid, 0 hole) and its count of gray (non-binary) pixels.

    ``hole_value`` is the file value that means hole: 0 (black, our convention) or 255.
    Colour files use their darkest channel; files holding only 0 and 1 are scaled to 0/255;
    16-bit files are scaled to 8 bits. In a file with transparent pixels (alpha < 128) the
    alpha alone decides: transparent is hole, opaque is valid.
    """
    photo = read_photo(path)
    if photo.alpha is not None:
        opaque = photo.alpha8 >= THRESHOLD
        if not opaque.any():
            raise InputError(
                f"mask {path} is fully transparent, and transparent mask pixels are holes; "
                "make the valid region opaque"
            )
        if not opaque.all():  # transparency marks the holes: the colour is paint, not mask
            return opaque.astype(np.uint8), 0
    gray = photo.colour8.min(axis=2)
    if gray.max() == 1:
        gray = gray * WHITE
    gray_pixels = int(np.count_nonzero((gray != BLACK) & (gray != WHITE)))
    white = gray >= THRESHOLD
    valid = ~white if hole_value == WHITE else white
    if not valid.any():
        colour, other, advice = (
            ("black", "white", "pass --mask-hole-value 255")
            if hole_value == BLACK
            else ("white", "black", "leave out --mask-hole-value 255")
        )
        raise InputError(
            f"mask {path} marks every pixel as hole ({colour} = hole); if {other} means hole "
            f"in your masks, {advice}"
        )
    return valid.astype(np.uint8), gray_pixels


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """H×W×3 uint8 RGB or H×W gray, encoded in the format of ``suffix`` (e.g. ``.png``)."""
    ok, buffer = cv2.imencode(
        suffix, np.ascontiguousarray(image[:, :, ::-1] if image.ndim == 3 else image)
    )
    if not ok:
        raise InputError(f"cannot write images of type {suffix!r}; use .png")
    return buffer.tobytes()


def _same_file(a: Path, b: Path) -> bool:
    """Whether existing path ``a`` is ``b`` (links, ``..`` and case-folding included)."""
    return a.exists() and b.exists() and os.path.samefile(a, b)


def _names(paths: list[Path], limit: int = 5) -> str:
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _pairs(image: Path, mask: Path, out: Path) -> list[tuple[Path, Path, Path]]:
    """(image, mask, output) files of a run on one file or on matching folders."""
    for role, path in (("image", image), ("mask", mask)):
        if not path.exists():
            raise InputError(f"{role} {path} does not exist")
    if image.is_file():
        if not mask.is_file():
            raise InputError(f"image {image} is a file, so the mask must be a file too: {mask}")
        # An existing folder, or a path without a file type, is an output folder.
        into_folder = out.is_dir() or not out.suffix
        target = out / f"{image.stem}{OUTPUT_SUFFIX}" if into_folder else out
        return [(image, mask, target)]
    if not mask.is_dir():
        raise InputError(f"image {image} is a folder, so the mask must be a folder too: {mask}")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file, but the inputs are folders; give a folder")
    for role, folder in (("image", image), ("mask", mask)):
        if _same_file(out, folder):
            raise InputError(
                f"output folder {out} is the {role} folder; choose another -o so that the "
                "originals are kept"
            )
        if out.resolve().is_relative_to(folder.resolve()):
            raise InputError(
                f"output folder {out} lies inside the {role} folder {folder}, so a later run "
                "over it would read the results as inputs; choose -o outside it"
            )
    masks: dict[Path, Path] = {}
    for path in scan_images(mask):
        name = path.relative_to(mask).with_suffix("")
        if name in masks:
            raise InputError(
                f"masks {masks[name]} and {path} both match images named {name}; keep one"
            )
        masks[name] = path
    pairs, sources = [], {}
    for path in scan_images(image):
        name = path.relative_to(image).with_suffix("")
        if name not in masks:
            raise InputError(
                f"no mask for {path} in {mask}: expected {mask / name}.png (any of "
                f"{', '.join(IMAGE_EXTENSIONS)})"
            )
        target = out / name.with_suffix(OUTPUT_SUFFIX)
        sources.setdefault(target, []).append(path)
        pairs.append((path, masks[name], target))
    if not pairs:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {image}")
    shared = {target: paths for target, paths in sources.items() if len(paths) > 1}
    if shared:
        listed = "; ".join(f"{_names(p)} -> {t}" for t, p in shared.items())
        raise InputError(
            f"{len(shared)} output name(s) would be shared by several images ({listed}); "
            "rename those images or inpaint them separately"
        )
    return pairs


def _check_outputs(pairs: list[tuple[Path, Path, Path]], output: Path, overwrite: bool) -> None:
    """Refuse outputs that are inputs, unwritable file types, and existing outputs (unless
    ``overwrite``), before any work."""
    target = pairs[0][2]
    if not writable_suffix(target):
        writable = [s for s in IMAGE_EXTENSIONS if writable_suffix(f"x{s}")]
        raise InputError(
            f"cannot write images of type {target.suffix!r} (-o {output}); use one of "
            f"{', '.join(writable)}"
        )
    inputs = {p for image, mask, _ in pairs for p in (image, mask)}
    existing = [out for _, _, out in pairs if out.exists()]
    for out in existing:
        if out.is_dir():
            raise InputError(f"output {out} is a folder; give an image file name")
        for path in inputs:
            if _same_file(out, path):
                raise InputError(
                    f"output {out} is the input {path}; choose another -o so that the original "
                    "is kept"
                )
    if existing and not overwrite:
        raise InputError(
            f"{_names(existing)} already exist{'s' * (len(existing) == 1)}; pass --overwrite "
            "to replace them, or choose another -o"
        )


def read_pair(
    image_path: Path, mask_path: Path, hole_value: int
) -> tuple[Photo, np.ndarray, list[str]]:
    """An image file, its mask (H×W uint8, 1 valid) and notes for the user; raises
    :class:`InputError` (or :class:`UnreadableImageError`) naming a file that cannot be used."""
    photo = read_photo(image_path)
    mask, gray_pixels = read_mask(mask_path, hole_value)
    height, width = photo.colour.shape[:2]
    if mask.shape != (height, width):
        raise InputError(
            f"mask {mask_path} is {mask.shape[1]}×{mask.shape[0]} but image {image_path} is "
            f"{width}×{height}; give a mask of the same size"
        )
    notes = []
    if gray_pixels:
        side = "hole" if hole_value == WHITE else "valid"
        notes.append(
            f"mask {mask_path} is not binary ({gray_pixels} gray pixels); thresholded at "
            f"{THRESHOLD} (>= {THRESHOLD} is {side})"
        )
    return photo, mask, notes


def inpaint_file(
    inpainter: Inpainter, image_path: Path, mask_path: Path, out_path: Path, hole_value: int
) -> list[str]:
    """Inpaint one file pair and write the result atomically; returns notes for the user.

    Valid pixels keep the input's exact samples (16-bit included) and the alpha channel is
    copied unchanged; hole pixels get the network's 8-bit fill (scaled ×257 for 16-bit).
    """
    photo, mask, notes = read_pair(image_path, mask_path, hole_value)
    fill = inpainter(photo.rgb8, mask)
    if photo.colour.dtype == np.uint16:
        fill = fill.astype(np.uint16) * np.uint16(_UINT16_PER_UINT8)
    colour = np.where(mask[:, :, None] == 1, photo.colour, fill)
    data, format_notes = encode_photo(colour, photo.alpha, out_path)
    atomic_write(out_path, data)
    return notes + format_notes


def main(argv: list[str] | None = None) -> int:
    args = tool_args.inpaint().parse_args(argv)

    def fail(message: str) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2

    if args.ckpt is None:
        return fail(NEEDS_CHECKPOINT)
    try:
        device = resolve_device(args.device)
        pairs = _pairs(args.image, args.mask, args.output)
        _check_outputs(pairs, args.output, args.overwrite)
        if len(pairs) > 1:
            # Every input is read once before any output is written, so a bad file found
            # late does not leave half the results (and a rerun needing --overwrite). The
            # files are read again below rather than held: a folder may not fit in memory.
            for image, mask, _ in track(pairs, "checking inputs"):
                read_pair(image, mask, args.mask_hole_value)
        inpainter = Inpainter.from_pretrained(args.ckpt, device)
        for image, mask, out in track(pairs, "inpainting") if len(pairs) > 1 else pairs:
            for note in inpaint_file(inpainter, image, mask, out, args.mask_hole_value):
                print(f"{PROG}: note: {note}", file=sys.stderr)
    # ValueError: InputError, CheckpointError and --device; OSError: unreadable/unwritable.
    except (ValueError, WeightsUnavailableError, OSError) as error:
        return fail(str(error))
    print(f"{PROG}: wrote {len(pairs)} image(s) to {args.output}")
    return 0
