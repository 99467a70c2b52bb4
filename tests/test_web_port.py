"""Real-CUGAN in the browser (issue 21): the TF.js export, its JS tiling in Node, the page in Chromium.

Needs the web toolchain of ``scripts/setup_web.sh`` (the converter venv, ``npm ci`` in web/, the pinned
apt chromium) and Playwright from the dev extras; a missing piece fails with the step that installs it.
The browser test upscales a 700x500 crop of a Ren'Py background through the page's tiled path and
compares it with the TF port's ``tf_upscale(mode="exact")``; the TF reference runs in a thread while the
page works (the wasm backend uses one core of the two).
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from acg2vec_lab.models.real_cugan import tfjs_export, weights

pytestmark = [pytest.mark.assets, pytest.mark.slow]

MODEL = "models-se/up2x-conservative"
CHROMIUM = "/usr/bin/chromium"
CROP = (slice(100, 600), slice(200, 900))  # 500 rows x 700 columns of background 0 (1280x720)
BROWSER_TILE = 256


def _require_toolchain() -> None:
    try:
        tfjs_export.converter_path()
        tfjs_export.node_path()
        tfjs_export.check_node_modules()
    except tfjs_export.WebSetupError as exc:
        pytest.fail(str(exc))
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: {tfjs_export.SETUP_HINT} (its apt step installs the pinned chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("playwright is missing from .venv: run scripts/setup.sh (dev extras, pinned in requirements/lock.txt)")


def _u8diff(a, b) -> np.ndarray:
    assert a.shape == b.shape, (a.shape, b.shape)
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


@pytest.fixture(scope="module")
def exported() -> Path:
    _require_toolchain()
    return tfjs_export.export(MODEL)


@pytest.fixture(scope="module")
def server(exported):
    from acg2vec_lab.commands.serve_web import make_server

    tfjs_export.write_index()
    srv = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{server}?backend=wasm&model={MODEL}")
    pg.wait_for_function("['ready', 'error'].includes(document.getElementById('status').dataset.state)", timeout=60_000)
    assert pg.get_attribute("#status", "data-state") == "ready", pg.inner_text("#status")
    yield pg
    pg.close()
    assert not errors, errors


def _load_png(page, tmp_path: Path, img: np.ndarray, name: str) -> None:
    from PIL import Image

    path = tmp_path / name
    Image.fromarray(img).save(path)  # PNG: the browser decodes the same pixels PIL has
    page.set_input_files("#file", str(path))
    page.wait_for_function("document.getElementById('status').dataset.state === 'image'", timeout=30_000)


def _result(page) -> np.ndarray:
    from PIL import Image

    url = page.evaluate("document.getElementById('after').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_export_is_one_deduplicated_graph_with_stage_outputs(exported):
    meta = json.loads((exported / "meta.json").read_text())
    assert (meta["scale"], meta["margin"], meta["multiple"], meta["n_se"]) == (2, 18, 2, 4)
    assert meta["se_channels"] == [64, 128, 128, 64]
    model = json.loads((exported / "model.json").read_text())
    sig = model["signature"]
    assert set(sig["inputs"]) == {"xp", "alpha", "mean0", "mean1", "mean2", "mean3"}
    assert set(sig["outputs"]) == {"feat0", "feat1", "feat2", "feat3", "out"}
    assert [d["size"] for d in sig["inputs"]["xp"]["tensorShape"]["dim"]] == ["1", "-1", "-1", "3"]  # dynamic H, W
    # one copy of the 1,284,598 float32 parameters (plus a few shape constants), not one per stage
    n_bytes = sum((exported / p).stat().st_size for g in model["weightsManifest"] for p in g["paths"])
    assert 1_284_598 * 4 <= n_bytes < 1_284_598 * 4 + 4096, n_bytes
    ops = {n["op"] for n in model["modelTopology"]["node"]}
    assert "Conv2DBackpropInput" in ops and "_FusedConv2D" in ops
    assert tfjs_export.export(MODEL) == exported  # cached by name + code key


def test_node_tiling_below_128px_matches_whole_image(exported):
    """JS exact tiling (tile 32: 12 tiles on 100x70) == one whole-image tile == the TF port's forward."""
    from acg2vec_lab.models.real_cugan import convert, tiling
    from acg2vec_lab.models.real_cugan.geometry import from_network_range_float, quantize, to_network_range

    bg = weights.load_renpy(weights.renpy_image_paths()[0])
    sprite = weights.load_renpy(weights.renpy_image_paths()[4])
    imgs = [np.ascontiguousarray(bg[200:270, 300:400]), np.ascontiguousarray(sprite[120:157, 100:153])]  # 100x70, 53x37
    tiled, rep = tfjs_export.run_node(exported, imgs, tile=32)
    whole, _ = tfjs_export.run_node(exported, imgs, tile=100_000)  # one tile: the whole image
    torch_model, pro = weights.load_official(MODEL)
    tfm = convert.tf_from_torch(torch_model)
    for img, a, b in zip(imgs, tiled, whole):
        ref = quantize(from_network_range_float(tiling.tf_upscale(tfm, to_network_range(img, pro)[None])[0], pro))
        assert a.shape == (2 * img.shape[0], 2 * img.shape[1], 3)
        assert _u8diff(a, b).max() <= 1, "JS tiled vs JS whole"
        assert _u8diff(a, ref).max() <= 1, "JS tiled vs TF whole-image forward"
        assert _u8diff(b, ref).max() <= 1, "JS whole vs TF whole-image forward"
    assert rep["backend"] == "wasm"


def test_browser_cancel_stops_a_run(page, tmp_path):
    img = weights.load_renpy(weights.renpy_image_paths()[0])[200:300, 300:420]
    _load_png(page, tmp_path, np.ascontiguousarray(img), "cancel.png")
    page.fill("#tile", "32")
    page.click("#run")
    page.wait_for_function("document.getElementById('progress').value >= 1", timeout=60_000)
    page.click("#cancel")
    page.wait_for_function("['cancelled', 'done'].includes(document.getElementById('status').dataset.state)",
                           timeout=60_000)
    assert page.get_attribute("#status", "data-state") == "cancelled"
    assert page.evaluate("document.getElementById('progress').value < document.getElementById('progress').max")
    assert page.is_enabled("#run") and not page.is_enabled("#cancel")


def test_browser_tiled_700x500_matches_tf_port(page, tmp_path):
    from acg2vec_lab.models.real_cugan import convert

    img = np.ascontiguousarray(weights.load_renpy(weights.renpy_image_paths()[0])[CROP])
    assert img.shape == (500, 700, 3)
    torch_model, _ = weights.load_official(MODEL)
    tfm = convert.tf_from_torch(torch_model)
    ref: dict = {}

    def reference():  # the TF port on the other core while the page works
        ref["out"], ref["seconds"] = tfjs_export.tf_reference(MODEL, [img], tile=BROWSER_TILE, model=tfm)

    worker = threading.Thread(target=reference)
    worker.start()
    try:
        _load_png(page, tmp_path, img, "crop700x500.png")
        page.fill("#tile", str(BROWSER_TILE))
        t0 = time.perf_counter()
        page.click("#run")
        page.wait_for_function("['done', 'error', 'cancelled'].includes(document.getElementById('status').dataset.state)",
                               timeout=900_000)
        wall = time.perf_counter() - t0
        assert page.get_attribute("#status", "data-state") == "done", page.inner_text("#status")
        last = page.evaluate("window.realcuganPage.last")
        out = _result(page)
        page.fill("#slider", "50")
        shot = tmp_path / "web_port_700x500.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.get_attribute("#save", "download").endswith(".png") and not page.is_hidden("#save")
    finally:
        worker.join()
    assert last["tiles"] == 6 and last["backend"] == "wasm"
    d = _u8diff(out, ref["out"][0])
    mp = img.shape[0] * img.shape[1] / 1e6
    timing = {"crop": "700x500", "tile": BROWSER_TILE, "max_uint8_diff": int(d.max()), "mean_uint8_diff": float(d.mean()),
              "browser_s": last["seconds"], "browser_s_per_mp": last["seconds"] / mp, "browser_wall_s": wall,
              "tf_exact_s": ref["seconds"][0], "tf_exact_s_per_mp": ref["seconds"][0] / mp,
              "wasm_threads": last.get("threads")}
    (tmp_path / "web_port_timing.json").write_text(json.dumps(timing, indent=2))
    if os.environ.get("ACG2VEC_RUN_DIR"):
        run = Path(os.environ["ACG2VEC_RUN_DIR"])
        run.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, run / shot.name)
        (run / "web_port_timing.json").write_text(json.dumps(timing, indent=2))
    print("WEB PORT", json.dumps(timing))
    assert shot.stat().st_size > 10_000
    assert d.max() <= 2, timing
