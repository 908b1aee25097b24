"""``pconv app``: its functions directly, the running server through gradio_client, and one
end-to-end run in headless Chromium (skipped, with the reason, when Chromium cannot start)."""

from __future__ import annotations

import hashlib
import socket
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pconv import app as app_module
from pconv.app import (
    NO_MODEL,
    PANELS,
    App,
    AppError,
    compare,
    fit_size,
    load_inpainter,
    main,
    mask_from_layers,
    open_mask,
    open_photo,
    open_sample,
    sample_choices,
    scores_markdown,
)
from pconv.data.samples import sample_image
from pconv.weights import load_network

#: Photos are downscaled to this longer side in every test: the tiny net's input stays small.
SIDE = 64
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_png(path: Path, image: np.ndarray) -> Path:
    ok, data = cv2.imencode(".png", image[:, :, ::-1] if image.ndim == 3 else image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def _read_png(path: str | Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.fixture(scope="module")
def inpainter(tiny_checkpoint):
    return load_inpainter(tiny_checkpoint, "cpu")


@pytest.fixture(scope="module")
def astronaut():
    """The astronaut sample at SIDE×SIDE, as the app opens it."""
    photo, _ = open_sample("astronaut", SIDE)
    return photo


def _square_holes(size: int = SIDE) -> np.ndarray:
    """H×W uint8 mask (1 valid) with a square hole, touching no border."""
    mask = np.ones((size, size), np.uint8)
    mask[20:40, 16:44] = 0
    return mask


def _painted_layer(mask: np.ndarray) -> np.ndarray:
    """An RGBA editor layer with brush paint (any opaque colour) over the holes of ``mask``."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask == 0] = (255, 0, 255, 255)
    return layer


# --- the app's functions ------------------------------------------------------------------


def test_painted_mask_gives_pconv_and_baselines_with_valid_pixels_kept(
    inpainter, astronaut, tiny_checkpoint
):
    holes = _square_holes()
    mask = mask_from_layers([_painted_layer(holes)], astronaut.image.shape[:2])
    np.testing.assert_array_equal(mask, holes)

    comparison = compare(inpainter, astronaut, mask)
    image, valid = astronaut.image, holes.astype(bool)
    assert comparison.hole_ratio == pytest.approx(20 * 28 / SIDE**2)
    for name in PANELS[1:]:
        panel = comparison.panels[name]
        assert panel.shape == image.shape and panel.dtype == np.uint8
        if name != "pconv output":
            # Composites: every valid pixel bit-identical to the photo.
            np.testing.assert_array_equal(panel[valid], image[valid])
    # Input panel: holes a magenta/black checkerboard of 4-px squares, the rest the photo.
    panel = comparison.panels["input with holes"]
    for row, col in zip(*np.nonzero(~valid), strict=True):
        want = (255, 0, 255) if (row // 4 + col // 4) % 2 == 0 else (0, 0, 0)
        assert tuple(panel[row, col]) == want
    np.testing.assert_array_equal(panel[valid], image[valid])

    # The network's output, computed here straight from the checkpoint's U-Net (64 is a
    # multiple of 2**levels, so no padding is involved).
    net = load_network(tiny_checkpoint).eval()
    with torch.no_grad():
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
        raw = net(x, torch.from_numpy(holes)[None, None].float())[0]
    expected = (raw.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(comparison.panels["pconv output"], expected)
    np.testing.assert_array_equal(comparison.panels["pconv composite"][~valid], expected[~valid])
    telea = cv2.inpaint(image, 1 - holes, 3, cv2.INPAINT_TELEA)
    np.testing.assert_array_equal(comparison.panels["Telea"], telea)

    # Scores: skimage's PSNR and Gaussian SSIM (Wang et al.'s settings) on each composite.
    for method, panel in (("pconv", "pconv composite"), ("Navier–Stokes", "Navier–Stokes")):
        comp = comparison.panels[panel].astype(np.float64) / 255
        truth = image.astype(np.float64) / 255
        psnr = peak_signal_noise_ratio(truth, comp, data_range=1)
        ssim = structural_similarity(
            truth,
            comp,
            channel_axis=2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
        )
        assert comparison.scores[method]["psnr"] == pytest.approx(psnr, abs=1e-3)
        assert comparison.scores[method]["ssim"] == pytest.approx(ssim, abs=1e-4)


def test_run_handler_writes_the_composite_png_and_merges_uploaded_and_painted_holes(
    inpainter, astronaut, tmp_path
):
    app = App(inpainter, SIDE)
    uploaded = np.full((SIDE, SIDE), 255, np.uint8)
    uploaded[2:10, 2:10] = 0  # a second hole, from a mask file (black = hole)
    mask_file = _write_png(tmp_path / "mask.png", uploaded)
    editor, photo, notes = app.load_mask(str(mask_file), "black", astronaut, None)
    assert "holes of mask mask.png added" in notes
    assert photo.holes[5, 5] == 0 and photo.holes[30, 30] == 1
    # The editor shows the uploaded holes in its background (not as a misplaced layer).
    assert editor["layers"] == [] and (editor["background"][5, 5] == (255, 0, 255)).all()

    painted = {"background": editor["background"], "layers": [_painted_layer(_square_holes())]}
    *panels, scores, download, notes = app.run(photo, painted)
    both = _square_holes()
    both[2:10, 2:10] = 0
    assert f"{1 - both.mean():.1%}" in notes
    composite = dict(zip(PANELS, panels, strict=True))["pconv composite"]
    np.testing.assert_array_equal(_read_png(download), composite)
    np.testing.assert_array_equal(composite[both == 1], astronaut.image[both == 1])
    assert not np.array_equal(composite[both == 0], astronaut.image[both == 0])
    assert "| pconv |" in scores and "| Telea |" in scores


def test_samples_list_held_out_photos_first_and_scores_say_which_kind(inpainter):
    choices = sample_choices()
    assert [name for _, name in choices[:2]] == ["chelsea", "coffee"]  # the held-out photos
    labels = dict((name, label) for label, name in choices)
    assert labels["coffee"] == "coffee (held out)"
    assert labels["astronaut"] == "astronaut (training photo)"
    mask = _square_holes()
    for name, says in (("coffee", "never trained on it"), ("astronaut", "flatter")):
        photo, _ = open_sample(name, 64)
        text = scores_markdown(
            compare(inpainter, photo, mask[: photo.image.shape[0], : photo.image.shape[1]]), name
        )
        assert says in text.splitlines()[-1] and name in text.splitlines()[-1]


def test_no_model_runs_the_baselines_and_says_how_to_get_one(astronaut):
    mask = _painted_layer(_square_holes())
    *panels, scores, download, notes = App(None, SIDE).run(astronaut, {"layers": [mask]})
    by_name = dict(zip(PANELS, panels, strict=True))
    assert by_name["pconv output"] is None and by_name["pconv composite"] is None
    assert by_name["Telea"] is not None and by_name["Navier–Stokes"] is not None
    assert download is None and NO_MODEL in notes and "make demo" in NO_MODEL
    assert "| pconv |" not in scores and "| Telea |" in scores


@pytest.mark.parametrize(
    ("editor", "message"),
    [
        ({"background": "not an image", "layers": ["not an image"]}, "is not an image"),
        ({"background": None, "layers": [[1, 2]]}, "is not an image"),
        ("a string", "is not the page's {background, layers} images"),
    ],
)
def test_an_editor_value_of_no_images_gets_a_message(astronaut, editor, message):
    *panels, scores, download, notes = App(None, SIDE).run(astronaut, editor)
    assert message in notes and download is None and all(p is None for p in panels)


def test_uploaded_photo_is_downscaled_with_a_note_and_has_no_scores(inpainter, tmp_path):
    big = cv2.resize(sample_image("chelsea"), (300, 200), interpolation=cv2.INTER_AREA)
    path = _write_png(tmp_path / "cat.png", big)
    photo, notes = open_photo(path, 100)
    assert photo.image.shape == (67, 100, 3) and not photo.truth
    assert notes == ["cat.png is 300×200: downscaled to 100×67, the app's limit (`--max-side 100`)"]
    expected = cv2.resize(big, (100, 67), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(photo.image, expected)
    mask = np.ones((67, 100), np.uint8)
    mask[10:30, 40:60] = 0
    assert compare(inpainter, photo, mask).scores is None
    assert fit_size(big, 300, "x") == (big, [])


def test_bad_uploads_get_a_message_and_leave_the_files_alone(astronaut, tmp_path, monkeypatch):
    app = App(None, SIDE)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    before = _sha(text)
    editor, photo, notes = app.load_photo(str(text))
    assert editor is None and photo is None
    assert notes.startswith("**notes.png is not an image this app can read (")
    editor, photo, notes = app.load_mask(str(text), "black", astronaut, {"layers": []})
    assert photo is astronaut and "mask notes.png is not an image this app can read" in notes
    assert _sha(text) == before

    black = _write_png(tmp_path / "black.png", np.zeros((SIDE, SIDE), np.uint8))
    _, _, notes = app.load_mask(str(black), "black", astronaut, None)
    assert "marks every pixel as hole; if white means hole in it, choose white" in notes
    _, _, notes = app.load_mask(str(black), "black", None, None)
    assert notes == "**open a photo first, then upload its mask**"

    monkeypatch.setattr(app_module, "MAX_DECODE_PIXELS", 1000)
    with pytest.raises(AppError, match="black.png is 64×64, more pixels than the app opens"):
        open_photo(black, SIDE)

    *_, notes = app.run(astronaut, {"layers": []})
    assert notes == "**there are no holes: paint some on the photo, or upload a mask**"
    everything = _painted_layer(np.zeros((SIDE, SIDE), np.uint8))
    *_, notes = app.run(astronaut, {"layers": [everything]})
    assert notes == "**the holes cover the whole photo: leave some of it unpainted**"
    *_, notes = app.run(None, None)
    assert notes == "**pick a sample photo or upload one first**"
    assert app.load_sample("nope")[2].startswith("**unknown sample photo 'nope'")


def test_mask_files_of_another_size_are_resized_and_white_holes_read(tmp_path):
    mask = np.zeros((32, 32), np.uint8)  # white = hole, half the size of the photo
    mask[8:16, 8:24] = 255
    path = _write_png(tmp_path / "m.png", mask)
    valid, notes = open_mask(path, (SIDE, SIDE), hole_value=255)
    expected = np.ones((SIDE, SIDE), np.uint8)
    expected[16:32, 16:48] = 0
    np.testing.assert_array_equal(valid, expected)
    assert notes == ["mask m.png is 32×32: resized to the photo's 64×64"]


def test_main_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    missing = tmp_path / "none.ckpt"
    assert main(["--ckpt", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pconv app: checkpoint {missing} does not exist") and "\n" not in err
    assert not missing.exists()


def test_main_refuses_an_unusable_device_in_one_line(tiny_checkpoint, capsys):
    assert main(["--ckpt", tiny_checkpoint, "--device", "nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pconv app: --device nonsense is not a device name")
    assert "\n" not in err


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("300.1.1.1", "--host 300.1.1.1 is not an address or a host name"),
        ("192.0.2.1", "--host 192.0.2.1 is not an address of this machine"),
    ],
)
def test_a_host_that_cannot_be_listened_on_is_named(host, message, capsys):
    assert main(["--host", host]) == 2
    err = capsys.readouterr().err
    assert message in err and "pick another --port" not in err and err.count("\n") == 1, err


# --- the running server -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(inpainter):
    """The app with the tiny model, served on 127.0.0.1 by :func:`pconv.app.serve`."""
    pytest.importorskip("gradio")
    page = app_module.build_page(App(inpainter, SIDE, "tiny.ckpt"))
    url = app_module.serve(page, "127.0.0.1", _free_port())
    yield url
    page.close()


def test_server_through_gradio_client(server, astronaut, tmp_path):
    from gradio_client import Client, handle_file

    assert server.startswith("http://127.0.0.1:")
    client = Client(server, verbose=False)
    mask = np.where(_square_holes() == 1, 255, 0).astype(np.uint8)
    mask_file = _write_png(tmp_path / "holes.png", mask)

    editor, notes = client.predict("astronaut", api_name="/load_sample")
    assert "opened astronaut" in notes
    np.testing.assert_array_equal(_read_png(editor["background"]), astronaut.image)
    empty = {"background": handle_file(editor["background"]), "layers": [], "composite": None}
    editor, notes = client.predict(
        handle_file(str(mask_file)), "black", empty, api_name="/load_mask"
    )
    assert "holes of mask holes.png added" in notes
    shown = {"background": handle_file(editor["background"]), "layers": [], "composite": None}
    *panels, scores, download, notes = client.predict(shown, api_name="/run")
    valid = _square_holes().astype(bool)
    composite = _read_png(download)
    np.testing.assert_array_equal(composite[valid], astronaut.image[valid])
    np.testing.assert_array_equal(_read_png(panels[2]), composite)
    assert "| pconv |" in scores and "holes: 13.7% of the photo" in notes

    text = tmp_path / "photo.jpg"
    text.write_text("not a photo")
    _, notes = client.predict(handle_file(str(text)), api_name="/load_photo")
    assert "photo.jpg is not an image this app can read" in notes
    # The server keeps serving after the bad upload.
    _, notes = client.predict("coffee", api_name="/load_sample")
    assert "opened coffee" in notes


# --- a real browser -----------------------------------------------------------------------


@pytest.fixture
def browser_page():
    """A page in headless Chromium from the system's packages; skips when it cannot start."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="pconv-chromium-"),  # a fresh profile
                executable_path=CHROMIUM,
                args=CHROMIUM_FLAGS,
                headless=True,
                viewport={"width": 1400, "height": 1000},
            )
        except playwright_api.Error as error:
            pytest.skip(f"Chromium cannot start: {str(error).splitlines()[0]}")
        yield context.pages[0] if context.pages else context.new_page()
        context.close()


def test_browser_end_to_end(server, browser_page, tmp_path):
    page = browser_page
    timeout = 120_000
    mask = np.where(_square_holes() == 1, 255, 0).astype(np.uint8)
    mask_file = _write_png(tmp_path / "holes.png", mask)

    page.goto(server, timeout=timeout)
    page.click("#sample input", timeout=timeout)
    page.get_by_role("option", name="astronaut").click()
    page.wait_for_selector("#notes :text('opened astronaut')", timeout=timeout)
    with page.expect_file_chooser() as chooser:
        page.click("#mask")
    chooser.value.set_files(str(mask_file))
    page.wait_for_selector("#notes :text('holes of mask holes.png added')", timeout=timeout)
    page.click("#run")
    result = page.wait_for_selector("#panel2 img", timeout=timeout)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=result)
    assert result.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [SIDE, SIDE]
    assert "| pconv |" not in page.inner_text("#scores")  # rendered as a table
    assert "pconv" in page.inner_text("#scores")
    screenshot = tmp_path / "app.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert cv2.imread(str(screenshot)) is not None
