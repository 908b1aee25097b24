"""``pconv app``: a browser page to try a model on your own photo, next to the classical methods.

Pick a built-in sample photo or upload one, paint holes with the brush (its size is set in
the editor's toolbar) or upload a mask, and compare side by side: the input with its holes,
the network's raw output, its composite (valid pixels are the photo's own) and OpenCV's
Telea and Navier–Stokes inpainting. For a sample photo the unpainted photo is the ground
truth, so the page also shows each method's PSNR/SSIM on its composite (:mod:`pconv.metrics`).

Command line::

    pconv app --ckpt outputs/demo/checkpoints/last.ckpt   # http://127.0.0.1:7860

The server listens on 127.0.0.1 unless ``--host`` says otherwise, runs the model on the GPU
when there is one (``--device``) and serves one request at a time through Gradio's queue, so
concurrent users cannot exhaust its memory. Photos whose longer side exceeds ``--max-side``
are downscaled, with a note on the page; a file that is not an image gets a message on the
page. Gradio is the optional ``app`` extra: ``pip install 'pconv[app]'``.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from pconv.data.images import UnreadableImageError, decode_image
from pconv.data.masks import hole_pattern
from pconv.data.samples import (
    HELDOUT_PHOTOS,
    OTHER_NAMES,
    SAMPLE_NAMES,
    TRAIN_PHOTOS,
    sample_image,
)
from pconv.evaluation.baselines import BASELINES
from pconv.inference import BLACK, WHITE, Inpainter, InputError, encode_image, read_mask
from pconv.metrics import SSIM_KERNEL, per_image_scores
from pconv.utils import tool_args
from pconv.utils.devices import resolve_device
from pconv.utils.tool_args import DEFAULT_HOST, DEFAULT_MAX_SIDE, DEFAULT_PORT

# Gradio's usage analytics would call out to the network on every start (read when Gradio
# is imported, so set before: gradio is imported lazily, being an optional extra).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PROG = "pconv app"
#: Files above this many pixels are refused before decoding (a 50-megapixel photo decodes to
#: 150 MB; decompression bombs claim far more).
MAX_DECODE_PIXELS = 50_000_000
#: Gradio refuses larger uploads with a message on the page.
MAX_UPLOAD = "50mb"
#: Result panels, left to right.
PANELS = ("input with holes", "pconv output", "pconv composite", "Telea", "Navier–Stokes")
#: Methods scored on their composite, with their panel and baseline name (None: the network).
SCORED = {"pconv": "pconv composite", "Telea": "Telea", "Navier–Stokes": "Navier–Stokes"}
_BASELINE_OF = {"Telea": "telea", "Navier–Stokes": "ns"}
#: Brush colour of painted holes (and of holes read from a mask file) in the editor.
BRUSH_COLOR = (255, 0, 255)
BRUSH_SIZE = 24
_UINT8_MAX = 255
NO_MODEL = (
    "**No model loaded**: Telea and Navier–Stokes still run, the pconv panels stay empty. "
    "To get a model, train one on the built-in photos with `make demo` (a few minutes on a "
    "CPU), then start `pconv app --ckpt outputs/demo/checkpoints/last.ckpt`; "
    "or pass any checkpoint written by `pconv fit` as `--ckpt FILE`."
)


#: What each sample photo is to the demo model: (short label for the menu, sentence under
#: the scores). Held-out photos are the fair test; scores on a training photo flatter it.
SAMPLE_ROLES = {
    **{n: ("held out", "held out: the demo model never trained on it") for n in HELDOUT_PHOTOS},
    **{
        n: ("training photo", "a training photo of the demo model, so its scores flatter it")
        for n in TRAIN_PHOTOS
    },
    **{n: ("not a scene", "not a photograph of a scene (a test image)") for n in OTHER_NAMES},
}


def sample_choices() -> list[tuple[str, str]]:
    """The sample menu's (label, name) pairs: held-out photos first, each marked."""
    return [
        (f"{n} ({SAMPLE_ROLES[n][0]})", n) for n in (*HELDOUT_PHOTOS, *TRAIN_PHOTOS, *OTHER_NAMES)
    ]


class AppError(ValueError):
    """Bad input on the page; the message is the one line the user sees there."""


def load_inpainter(spec: str, device: str | None = None) -> Inpainter:
    """The model named by ``--ckpt`` (the one place the app loads weights)."""
    return Inpainter.from_pretrained(spec, device)


@dataclass(frozen=True)
class Photo:
    """The photo being inpainted: ``image`` H×W×3 uint8 RGB; ``truth``: it is its own ground
    truth under the holes (a sample photo), so methods can be scored on it; ``holes``: the
    holes of uploaded masks, H×W uint8 (1 valid), None before any."""

    image: np.ndarray
    name: str
    truth: bool
    holes: np.ndarray | None = None

    def shown(self) -> np.ndarray:
        """The editor's background: ``image`` with the uploaded holes in the brush colour.

        Uploaded holes go into the background rather than into an editor layer because
        Gradio places layers sent by the server off the image (it centres them on its
        default canvas)."""
        if self.holes is None:
            return self.image
        return np.where(self.holes[:, :, None] != 0, self.image, np.uint8(BRUSH_COLOR))


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: H×W×3 uint8 ``panels`` by :data:`PANELS` name (pconv's
    are None without a model); ``scores`` method → {"psnr" (dB), "ssim"} for sample photos."""

    panels: dict[str, np.ndarray | None]
    scores: dict[str, dict[str, float]] | None
    hole_ratio: float


def fit_size(image: np.ndarray, max_side: int, name: str) -> tuple[np.ndarray, list[str]]:
    """``image`` H×W×3 downscaled (area filter) so its longer side is at most ``max_side``,
    and the note saying so (none when it already fits)."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image, []
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    note = (
        f"{name} is {width}×{height}: downscaled to {size[0]}×{size[1]}, the app's limit "
        f"(`--max-side {max_side}`)"
    )
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), [note]


def open_photo(path: str | os.PathLike, max_side: int) -> tuple[Photo, list[str]]:
    """An uploaded photo, fitted to ``max_side``; raises :class:`AppError` for a file that is
    not an image or is too large to open."""
    name = Path(path).name
    data = Path(path).read_bytes()
    try:
        with Image.open(path) as header:  # reads the header only
            width, height = header.size
    except (OSError, ValueError, Image.DecompressionBombError):
        width = height = 0  # not for PIL; decode_image below decides
    if width * height > MAX_DECODE_PIXELS:
        raise AppError(
            f"{name} is {width}×{height}, more pixels than the app opens "
            f"({MAX_DECODE_PIXELS / 1e6:.0f} megapixels); downscale it first"
        )
    try:
        image = decode_image(data, name)
    except UnreadableImageError as error:
        raise AppError(f"{name} is not an image this app can read ({error.reason})") from None
    image, notes = fit_size(image, max_side, name)
    return Photo(image, name, truth=False), notes


def open_sample(name: str, max_side: int) -> tuple[Photo, list[str]]:
    """Built-in sample photo ``name`` (its own ground truth), fitted to ``max_side``."""
    if name not in SAMPLE_NAMES:
        raise AppError(f"unknown sample photo {name!r}; valid: {', '.join(SAMPLE_NAMES)}")
    image, notes = fit_size(sample_image(name), max_side, f"sample {name}")
    return Photo(image, name, truth=True), notes


def _resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """H×W ``mask`` resized to ``size`` (H, W) by nearest neighbour (keeps it binary)."""
    if mask.shape == size:
        return mask
    return cv2.resize(mask, size[::-1], interpolation=cv2.INTER_NEAREST)


def mask_from_layers(layers: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """The holes painted in the editor's ``layers`` (H×W×4 RGBA, any paint is a hole) as an
    H×W uint8 mask of ``size``, 1 = valid."""
    valid = np.ones(size, np.uint8)
    for layer in layers:
        painted = (layer[:, :, 3] if layer.ndim == 3 and layer.shape[2] == 4 else layer) > 0
        if painted.ndim == 3:
            painted = painted.any(axis=2)
        valid &= _resized_mask((~painted).astype(np.uint8), size)
    return valid


def open_mask(
    path: str | os.PathLike, size: tuple[int, int], hole_value: int = BLACK
) -> tuple[np.ndarray, list[str]]:
    """An uploaded mask file as H×W uint8 (1 valid) of the photo's ``size`` (H, W).

    ``hole_value``: the file value meaning hole, 0 (black, our convention) or 255. A mask of
    another size is resized to the photo's (nearest neighbour), with a note.
    """
    name = Path(path).name
    try:
        mask, gray_pixels = read_mask(Path(path), hole_value)
    except UnreadableImageError as error:
        raise AppError(f"mask {name} is not an image this app can read ({error.reason})") from None
    except InputError:
        other = "white" if hole_value == BLACK else "black"
        raise AppError(
            f"mask {name} marks every pixel as hole; if {other} means hole in it, choose "
            f"{other} under 'holes in mask files are'"
        ) from None
    notes = []
    if gray_pixels:
        notes.append(f"mask {name} is not binary: {gray_pixels} gray pixels thresholded at half")
    if mask.shape != size:
        notes.append(
            f"mask {name} is {mask.shape[1]}×{mask.shape[0]}: resized to the photo's "
            f"{size[1]}×{size[0]}"
        )
    return _resized_mask(mask, size), notes


def compare(inpainter: Inpainter | None, photo: Photo, mask: np.ndarray) -> Comparison:
    """Inpaint ``photo`` under H×W uint8 ``mask`` (1 valid) with the network (when given),
    Telea and Navier–Stokes; raises :class:`AppError` for a mask with no hole or no valid
    pixel. Composites keep every valid pixel of the photo bit-identical."""
    image = photo.image
    valid = mask != 0
    hole_ratio = 1 - float(valid.mean())
    if valid.all():
        raise AppError("there are no holes: paint some on the photo, or upload a mask")
    if not valid.any():
        raise AppError("the holes cover the whole photo: leave some of it unpainted")
    panels: dict[str, np.ndarray | None] = {
        "input with holes": np.where(valid[:, :, None], image, hole_pattern(*mask.shape)),
        "pconv output": None,
        "pconv composite": None,
    }
    if inpainter is not None:
        tensor = torch.from_numpy(image.astype(np.float32) / _UINT8_MAX).permute(2, 0, 1)[None]
        raw = inpainter.predict(tensor, torch.from_numpy(valid)[None, None])
        output = (raw[0].clamp(0, 1) * _UINT8_MAX).round().byte().permute(1, 2, 0).cpu().numpy()
        panels["pconv output"] = output
        panels["pconv composite"] = np.where(valid[:, :, None], image, output)
    for panel, baseline in _BASELINE_OF.items():
        panels[panel] = np.where(valid[:, :, None], image, BASELINES[baseline](image, mask))
    # SSIM needs a full window somewhere in the image.
    scores = _scores(panels, image) if photo.truth and min(mask.shape) > SSIM_KERNEL else None
    return Comparison(panels, scores, hole_ratio)


def _scores(panels: dict[str, np.ndarray | None], truth: np.ndarray) -> dict[str, dict]:
    """PSNR/SSIM of each scored method's composite against ``truth`` (all uint8 H×W×3)."""
    methods = [m for m, panel in SCORED.items() if panels[panel] is not None]

    def batch(images: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / _UINT8_MAX

    composites = batch([panels[SCORED[m]] for m in methods])
    scores = per_image_scores(composites, batch([truth] * len(methods)))
    return {
        m: {"psnr": float(scores["psnr"][i]), "ssim": float(scores["ssim"][i])}
        for i, m in enumerate(methods)
    }


def scores_markdown(comparison: Comparison, sample: str | None = None) -> str:
    """The scores of ``comparison`` as a Markdown table ("" when it has none); ``sample``:
    the sample photo's name, to say whether the demo model trained on it."""
    if comparison.scores is None:
        return ""
    rows = [
        f"| {method} | {s['psnr']:.2f} | {s['ssim']:.4f} |"
        for method, s in comparison.scores.items()
    ]
    return "\n".join(
        [
            "| composite | PSNR (dB) | SSIM |",
            "|---|---:|---:|",
            *rows,
            "",
            "Each composite against the sample photo (the ground truth).",
            *([f"**{sample}** is {SAMPLE_ROLES[sample][1]}."] if sample in SAMPLE_ROLES else []),
        ]
    )


def _notes_markdown(notes: list[str]) -> str:
    return "\n".join(f"- {note}" for note in notes)


class App:
    """The page's event handlers around one model (``inpainter`` None: no model loaded).

    Every handler returns its outputs and puts user errors in the notes (Markdown) instead
    of raising, so the page shows a message and the server keeps running.
    """

    def __init__(
        self, inpainter: Inpainter | None, max_side: int = DEFAULT_MAX_SIDE, model: str = ""
    ) -> None:
        self.inpainter = inpainter
        self.max_side = max_side
        self.model = model
        self.downloads = Path(tempfile.mkdtemp(prefix="pconv-app-"))

    @staticmethod
    def _editor(photo: Photo) -> dict:
        """The editor's value for ``photo``: uploaded holes shown, nothing painted yet."""
        return {"background": photo.shown(), "layers": [], "composite": photo.shown()}

    def _show(self, photo: Photo, notes: list[str]):
        """Editor value, photo state and notes for a newly opened photo."""
        return self._editor(photo), photo, _notes_markdown([f"opened {photo.name}", *notes])

    def load_sample(self, name: str):
        """Handler: a sample photo was picked → (editor value, photo, notes)."""
        try:
            return self._show(*open_sample(name, self.max_side))
        except AppError as error:
            return None, None, f"**{error}**"

    def load_photo(self, path: str | None):
        """Handler: a photo was uploaded → (editor value, photo, notes)."""
        if path is None:
            return None, None, ""
        try:
            return self._show(*open_photo(path, self.max_side))
        except AppError as error:
            return None, None, f"**{error}**"

    def load_mask(self, path: str | None, holes: str, photo: Photo | None, editor: dict | None):
        """Handler: a mask was uploaded → (editor value, photo with the mask's holes added to
        those painted so far, notes)."""
        if photo is None:
            return editor, photo, "**open a photo first, then upload its mask**"
        if path is None:
            return editor, photo, ""
        try:
            hole_value = WHITE if holes == "white" else BLACK
            mask, notes = open_mask(path, photo.image.shape[:2], hole_value)
            photo = replace(photo, holes=mask & self._holes(photo, editor))
        except AppError as error:
            return editor, photo, f"**{error}**"
        notes = [f"holes of mask {Path(path).name} added", *notes]
        return self._editor(photo), photo, _notes_markdown(notes)

    @staticmethod
    def _holes(photo: Photo, editor: dict | None) -> np.ndarray:
        """H×W uint8 mask (1 valid) of ``photo``'s uploaded holes and those painted; raises
        :class:`AppError` for an editor value that holds no image layers (sent through the
        API by hand, not by the page)."""
        layers = (editor.get("layers") if isinstance(editor, dict) else None) or []
        if (editor is not None and not isinstance(editor, dict)) or not isinstance(layers, list):
            raise AppError("the editor value is not the page's {background, layers} images")
        if not all(
            isinstance(a, np.ndarray) and a.ndim in (2, 3) and a.dtype != object for a in layers
        ):
            raise AppError("a layer of the editor value is not an image (H×W or H×W×4 pixels)")
        painted = mask_from_layers(layers, photo.image.shape[:2])
        return painted if photo.holes is None else painted & photo.holes

    def run(self, photo: Photo | None, editor: dict | None):
        """Handler: Inpaint → (five panels, scores, download file, notes)."""
        empty = (None,) * len(PANELS)
        if photo is None:
            return *empty, "", None, "**pick a sample photo or upload one first**"
        try:
            comparison = compare(self.inpainter, photo, self._holes(photo, editor))
        except AppError as error:
            return *empty, "", None, f"**{error}**"
        except torch.OutOfMemoryError:
            height, width = photo.image.shape[:2]
            message = f"out of memory on a {width}×{height} photo; restart with a lower --max-side"
            return *empty, "", None, f"**{message}**"
        download = None
        notes = [f"holes: {comparison.hole_ratio:.1%} of the photo"]
        if self.inpainter is None:
            notes.append(NO_MODEL)
        else:
            folder = Path(tempfile.mkdtemp(dir=self.downloads))
            download = folder / f"{Path(photo.name).stem}_pconv.png"
            download.write_bytes(encode_image(comparison.panels["pconv composite"], ".png"))
        panels = tuple(comparison.panels[name] for name in PANELS)
        scores = scores_markdown(comparison, photo.name if photo.truth else None)
        return *panels, scores, download, _notes_markdown(notes)


def build_page(app: App):
    """The Gradio page of ``app`` (a ``gr.Blocks``; :func:`serve` starts it)."""
    import gradio as gr

    with gr.Blocks(title="pconv") as page:
        gr.Markdown(
            "## pconv: inpainting with partial convolutions\n"
            + (f"Model: `{app.model}` on {app.inpainter.device}" if app.inpainter else NO_MODEL)
        )
        photo = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                editor = gr.ImageEditor(
                    label="Paint the holes (brush size: the brush menu in the toolbar)",
                    type="numpy",
                    image_mode="RGBA",
                    sources=(),
                    transforms=(),
                    layers=False,
                    format="png",
                    brush=gr.Brush(
                        default_size=BRUSH_SIZE,
                        colors=["#{:02x}{:02x}{:02x}".format(*BRUSH_COLOR)],
                        color_mode="fixed",
                    ),
                    height=520,
                    elem_id="editor",
                )
            with gr.Column(scale=1):
                sample = gr.Dropdown(
                    sample_choices(), value=None, label="Sample photo", elem_id="sample"
                )
                upload = gr.UploadButton("Upload a photo", type="filepath", elem_id="photo")
                holes = gr.Radio(["black", "white"], value="black", label="Holes in mask files are")
                mask_upload = gr.UploadButton("Upload a mask", type="filepath", elem_id="mask")
                run = gr.Button("Inpaint", variant="primary", elem_id="run")
                notes = gr.Markdown(elem_id="notes")
                scores = gr.Markdown(elem_id="scores")
                download = gr.DownloadButton(
                    "Download the pconv composite (PNG)", value=None, elem_id="download"
                )
        with gr.Row():
            panels = [
                gr.Image(
                    label=name, format="png", interactive=False, height=256, elem_id=f"panel{i}"
                )
                for i, name in enumerate(PANELS)
            ]

        sample.input(app.load_sample, sample, [editor, photo, notes], api_name="load_sample")
        upload.upload(app.load_photo, upload, [editor, photo, notes], api_name="load_photo")
        mask_upload.upload(
            app.load_mask,
            [mask_upload, holes, photo, editor],
            [editor, photo, notes],
            api_name="load_mask",
        )
        run.click(app.run, [photo, editor], [*panels, scores, download, notes], api_name="run")
    return page


def serve(page, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """Start ``page`` (from :func:`build_page`) in the background with Gradio's queue serving
    one request at a time; returns its URL. ``page.close()`` stops it."""
    page.queue(default_concurrency_limit=1)
    _, url, _ = page.launch(
        server_name=host,
        server_port=port,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=True,
        quiet=True,
    )
    return url


def listen_problem(host: str, port: int) -> str | None:
    """What keeps the page from listening on ``host:port``, said for the flag at fault (Gradio
    blames the port for any failure), or None."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError):
        return f"--host {host} is not an address or a host name; use e.g. {DEFAULT_HOST}"
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return f"port {port} is in use on {host}; pick another --port"
            return (
                f"--host {host} is not an address of this machine ({error.strerror}); use "
                f"{DEFAULT_HOST}, or 0.0.0.0 for every address"
            )
    return None


def main(argv: list[str] | None = None) -> int:
    args = tool_args.app().parse_args(argv)

    def fail(message: str) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2

    try:
        import gradio  # noqa: F401
    except ImportError:
        return fail("the app needs Gradio: pip install 'pconv[app]'")
    inpainter = None
    if args.ckpt is not None:
        try:
            inpainter = load_inpainter(args.ckpt, resolve_device(args.device))
        except (ValueError, OSError) as error:  # a checkpoint or --device that cannot work
            return fail(str(error))
    problem = listen_problem(args.host, args.port)
    if problem:
        return fail(problem)
    page = build_page(App(inpainter, args.max_side, args.ckpt or ""))
    try:
        url = serve(page, args.host, args.port)
    except OSError as error:
        return fail(f"cannot listen on {args.host}:{args.port} ({error}); pick another --port")
    model = f"{args.ckpt} on {inpainter.device}" if inpainter else "no model (baselines only)"
    print(f"{PROG}: serving {model} at {url} (Ctrl-C stops)", flush=True)
    if args.host != DEFAULT_HOST:
        print(f"{PROG}: listening on {args.host}: anyone who can reach it can use the page")
    page.block_thread()
    return 0
