"""The web app end to end in a real headless Chromium (Debian's /usr/bin/chromium driven by
playwright's Python package; no browser download) against a real ``packshot serve`` process.

One seller's session: create a product from a photo, refine the mask with clicks (mouse and
keyboard), generate with the studio engine, rate and save a candidate, download it, make
variations, find the candidate in History, reload and still find it. Screenshots go to
artifacts/web/ (CI artifacts) and the README's docs/screenshots/{generate,history}.png.

Without chromium the tests skip with a reason, except on CI (CI=true), where they fail.
"""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synth import mug_photo

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "web"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = Path(os.environ.get("PACKSHOT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000  # a busy 2-core CI machine: generous, the happy path takes a few seconds

pytestmark = pytest.mark.browser


def _missing(reason: str):
    """Skip, or fail on CI where the browser must be installed (.ci/run installs it)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run the browser tests)", pytrace=False)
    pytest.skip(reason)


def _sync_playwright():
    if not CHROMIUM.exists():
        _missing(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright's Python package is not installed (pip install -e '.[dev]')")
    return sync_playwright


# ---- a real server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m packshot serve`` on 127.0.0.1 with its own data dir; ``stop()`` ends it."""

    def __init__(self, data_dir: Path, log_path: Path, extra_args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        env.pop("PACKSHOT_API_KEYS", None)
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "packshot", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(data_dir), *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(data_dir))
        self._wait_ready()

    def _wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"packshot serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if json.load(r).get("status") == "ok":
                        return
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"packshot serve did not answer /health within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()

    # small JSON client for set-up and for checking what the page did
    def api(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def create_product(self, name: str, photo: Path) -> dict:
        """POST /api/v1/products (multipart) without extra client libraries."""
        boundary = "----packshot-test-boundary"
        parts = [
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n".encode(),
            (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{photo.name}\"\r\n"
             f"Content-Type: application/octet-stream\r\n\r\n").encode() + photo.read_bytes() + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        req = urllib.request.Request(f"{self.url}/api/v1/products", data=b"".join(parts), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)


def start_server(tmp_path_factory, name: str, *extra_args: str) -> Server:
    data_dir = tmp_path_factory.mktemp(f"{name}-data")
    return Server(data_dir, data_dir / "server.log", extra_args)


@pytest.fixture(scope="module", autouse=True)
def chromium_present():
    """Checked first, so a machine without the browser skips before starting any server."""
    _sync_playwright()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory, "web")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _sync_playwright()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context; page errors fail the test, console errors are kept for messages."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, accept_downloads=True,
                                  locale="en-GB", timezone_id="UTC", color_scheme="light")
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.errors = []
    pg.console_errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.requested = []
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), full_page=True)
    except Exception:  # the page may be gone if the test failed hard; the screenshot is a bonus
        pass
    context.close()
    assert not pg.errors, f"uncaught errors in the page: {pg.errors}"


def shot(page, name: str, *, docs: str | None = None, full_page: bool = False) -> Path:
    """Screenshot into artifacts/web/NAME.png; with PACKSHOT_UPDATE_SCREENSHOTS=1 also into
    docs/screenshots/DOCS.png for the README (so a plain test run leaves the tree clean)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('status')?.classList.remove('visible')")  # no toast in shots
    page.wait_for_timeout(250)  # its fade-out
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if docs and os.environ.get("PACKSHOT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{docs}.png"), full_page=full_page)
    return path


@pytest.fixture(scope="module")
def mug(tmp_path_factory):
    """A synthetic product photo (800x600 JPEG) and its true matte."""
    rgb, alpha = mug_photo(size=(800, 600), seed=3)
    path = tmp_path_factory.mktemp("photos") / "red-mug.jpg"
    Image.fromarray(rgb).save(path, quality=92)
    return path, alpha


def canvas_point(canvas, photo_xy, photo_size):
    """Photo pixel (x, y) -> a position inside the canvas element (CSS px)."""
    box = canvas.bounding_box()
    s = box["width"] / photo_size[0]
    return {"x": (photo_xy[0] + 0.5) * s, "y": (photo_xy[1] + 0.5) * s}


def wait_previews(page, canvas, more_than: int) -> int:
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.previews || 0) > n && !el.parentElement.classList.contains('busy')",
        arg=[canvas.element_handle(), more_than])
    return int(canvas.get_attribute("data-previews"))


# ---- the acceptance test ---------------------------------------------------------------------------

def test_seller_session(server, page, mug):
    from playwright.sync_api import expect

    photo_path, truth = mug
    h, w = truth.shape
    ys, xs = np.nonzero(truth > 0.5)
    body_xy = (int(np.percentile(xs, 30)), int(ys.mean()))  # on the mug's body
    truth_cover = float((truth > 0.5).mean())

    # 1. create a product from a photo -------------------------------------------------------------
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Products", level=1)).to_be_visible()
    expect(page.get_by_role("list", name="Products")).to_contain_text("No products yet")
    shot(page, "01-home-empty")
    page.get_by_label("Product name").fill("Red mug")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/products") and r.request.method == "POST") as created:
        page.get_by_label("Product photo").set_input_files(str(photo_path))
    assert created.value.status == 201, created.value.text()
    product = created.value.json()
    assert product["name"] == "Red mug" and len(product["photos"]) == 1
    page.wait_for_url(re.compile(rf"#/product/{product['id']}/generate$"))
    expect(page.get_by_role("heading", name="Red mug", level=1)).to_be_visible()
    expect(page.get_by_role("tab", name="Generate")).to_have_attribute("aria-selected", "true")

    # 2. refine the mask: the automatic cutout first, then clicks; the overlay follows ---------------
    canvas = page.get_by_test_id("mask-canvas")
    n = wait_previews(page, canvas, 0)
    auto_hash = canvas.get_attribute("data-mask-hash")
    auto_cover = float(canvas.get_attribute("data-coverage"))
    assert abs(auto_cover - truth_cover) < 0.08, (auto_cover, truth_cover)
    pixels_before = canvas.evaluate("c => c.toDataURL()")

    # a positive click on the body: the preview request carries the whole list, in photo pixels
    with page.expect_request(lambda r: r.url.endswith("/cutout/preview") and r.method == "POST") as req:
        canvas.click(position=canvas_point(canvas, body_xy, (w, h)))
    sent = req.value.post_data_json
    assert len(sent["points"]) == 1 and sent["neg_points"] == [] and sent["boxes"] == []
    assert abs(sent["points"][0][0] - body_xy[0]) <= 2 and abs(sent["points"][0][1] - body_xy[1]) <= 2, sent
    n = wait_previews(page, canvas, n)
    assert canvas.evaluate("c => c.toDataURL()") != pixels_before  # the point and new overlay are drawn

    # a negative (shift) click in the middle of the body must cut a hole: the mask changes
    hole_xy = (int(xs.mean()) - (xs.max() - xs.min()) // 10, int(ys.mean()))
    with page.expect_request(lambda r: r.url.endswith("/cutout/preview")) as req:
        canvas.click(position=canvas_point(canvas, hole_xy, (w, h)), modifiers=["Shift"])
    sent = req.value.post_data_json
    assert len(sent["points"]) == 1 and len(sent["neg_points"]) == 1, sent  # full list every time
    n = wait_previews(page, canvas, n)
    holed_hash = canvas.get_attribute("data-mask-hash")
    assert holed_hash != auto_hash
    assert float(canvas.get_attribute("data-coverage")) < auto_cover
    shot(page, "02-cutout-negative-click")

    # keyboard: Backspace undoes the negative point; arrow keys + Enter add a point at the crosshair
    canvas.focus()
    with page.expect_request(lambda r: r.url.endswith("/cutout/preview")) as req:
        page.keyboard.press("Backspace")
    assert req.value.post_data_json["neg_points"] == []
    n = wait_previews(page, canvas, n)
    assert canvas.get_attribute("data-mask-hash") != holed_hash
    with page.expect_request(lambda r: r.url.endswith("/cutout/preview")) as req:
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
    sent = req.value.post_data_json
    assert len(sent["points"]) == 2 and sent["points"][1][0] < w // 2, sent
    n = wait_previews(page, canvas, n)
    assert abs(float(canvas.get_attribute("data-coverage")) - truth_cover) < 0.08

    # a dragged box around the mug goes along too
    x0, y0, x1, y1 = xs.min() - 25, ys.min() - 25, xs.max() + 25, ys.max() + 25
    a, b = canvas_point(canvas, (x0, y0), (w, h)), canvas_point(canvas, (x1, y1), (w, h))
    cbox = canvas.bounding_box()
    with page.expect_request(lambda r: r.url.endswith("/cutout/preview")) as req:
        page.mouse.move(cbox["x"] + a["x"], cbox["y"] + a["y"])
        page.mouse.down()
        page.mouse.move(cbox["x"] + (a["x"] + b["x"]) / 2, cbox["y"] + (a["y"] + b["y"]) / 2, steps=4)
        page.mouse.move(cbox["x"] + b["x"], cbox["y"] + b["y"], steps=4)
        page.mouse.up()
    box_sent = req.value.post_data_json["boxes"]
    assert len(box_sent) == 1 and abs(box_sent[0][0] - x0) <= 3 and abs(box_sent[0][3] - y1) <= 3, box_sent
    n = wait_previews(page, canvas, n)
    assert abs(float(canvas.get_attribute("data-coverage")) - truth_cover) < 0.08

    # the cutout alone, as a transparent PNG
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download cutout").click()
    cut = Image.open(dl.value.path())
    assert dl.value.suggested_filename.endswith(".png") and cut.mode == "RGBA"
    cut_alpha = np.asarray(cut)[..., 3]
    assert cut_alpha.min() == 0 and cut_alpha.max() == 255

    # 3. generate with the studio engine -----------------------------------------------------------
    page.get_by_label("Prompt", exact=True).fill("on a white marble table, soft morning light from the left")
    page.get_by_label("Number of candidates").fill("2")
    page.get_by_label("Engine", exact=True).select_option("studio")
    page.get_by_label("Seed").fill("123")
    page.get_by_label("Canvas").select_option("size")
    page.get_by_label("Size", exact=True).fill("512x512")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/jobs") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert posted.value.status == 202, posted.value.text()
    job_req = posted.value.request.post_data_json
    assert job_req["engine"] == "studio" and job_req["n"] == 2 and job_req["seed"] == 123
    assert job_req["size"] == "512x512" and job_req["product_id"] == product["id"]
    job_id = posted.value.json()["id"]
    candidates = page.get_by_role("list", name="Candidates").get_by_role("img", name=re.compile(r"^Candidate"))
    expect(candidates).to_have_count(2, timeout=90_000)
    first = candidates.nth(0)
    expect(first).to_have_attribute("alt", re.compile(r"^Candidate 1, seed \d+, score \d\.\d\d$"))
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    assert first.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [512, 512]
    assert any(u.endswith(f"/api/v1/jobs/{job_id}/events") for u in page.requested)  # progress over SSE
    seeds = sorted(int(re.search(r"seed (\d+)", candidates.nth(i).get_attribute("alt")).group(1)) for i in range(2))
    assert seeds == [123, 124]
    # the job used the committed clicks: Generate applied them first
    clicks = page.evaluate(f"JSON.parse(localStorage.getItem('packshot.clicks.{product['photos'][0]['id']}'))")
    assert len(clicks["points"]) == 2 and len(clicks["boxes"]) == 1, clicks

    # 4. rate and save a candidate ------------------------------------------------------------------
    card = page.locator(".results-grid .result-card").nth(0)
    result_id = card.get_attribute("data-result-id")
    seed = int(card.get_attribute("data-seed"))
    with page.expect_response(lambda r: r.url.endswith(f"/results/{result_id}/rating")) as rated:
        card.get_by_role("radio", name="4 stars").check()
    assert rated.value.ok and rated.value.json()["rating"] == 4
    save = card.get_by_role("button", name="Save candidate 1")
    with page.expect_response(lambda r: r.url.endswith(f"/results/{result_id}/saved")) as saved:
        save.click()
    assert saved.value.ok and saved.value.json()["saved"] is True
    expect(save).to_have_attribute("aria-pressed", "true")
    stored = server.api("GET", f"/api/v1/results/{result_id}")
    assert stored["rating"] == 4 and stored["saved"] is True

    # download it as JPEG
    with page.expect_download() as dl:
        card.get_by_role("button", name="Download candidate 1 as JPEG").click()
    assert dl.value.suggested_filename.endswith(".jpg")
    assert Path(dl.value.path()).read_bytes()[:3] == b"\xff\xd8\xff"
    page.mouse.move(5, 5)
    shot(page, "03-generate", docs="generate", full_page=True)

    # variations: the same settings, seeds from seed + 100
    with page.expect_response(lambda r: r.url.endswith("/api/v1/jobs") and r.request.method == "POST") as posted:
        card.get_by_role("button", name="Variations of candidate 1").click()
    var_req = posted.value.request.post_data_json
    assert var_req["seed"] == seed + 100 and var_req["prompt"] == job_req["prompt"]
    assert var_req.get("size") == "512x512"
    # ranked by score: the seed + 100 candidate need not come first
    expect(page.get_by_role("img", name=re.compile(rf"^Candidate \d+, seed {seed + 100},"))).to_be_visible(timeout=90_000)

    # 5. find that candidate in History --------------------------------------------------------------
    page.get_by_role("tab", name="History").click()
    page.wait_for_url(re.compile(r"/history$"))
    history = page.get_by_role("list", name="Past results")
    expect(history.locator(".result-card")).to_have_count(4)
    mine = history.locator(f'[data-result-id="{result_id}"]')
    expect(mine).to_contain_text("on a white marble table")
    expect(mine).to_contain_text(f"seed {seed}")
    expect(mine.locator(".stars")).to_have_attribute("data-value", "4")
    expect(mine.get_by_role("button", name=re.compile("^Save"))).to_have_attribute("aria-pressed", "true")
    expect(mine.get_by_role("img", name=re.compile(r"^Candidate"))).to_be_visible()
    page.mouse.move(5, 5)
    shot(page, "04-history", docs="history", full_page=True)

    # filters: saved only, minimum rating
    page.get_by_label("Saved only").check()
    expect(history.locator(".result-card")).to_have_count(1)
    expect(history.locator(f'[data-result-id="{result_id}"]')).to_be_visible()
    page.get_by_label("Minimum rating").select_option("5")
    expect(history).to_contain_text("No result matches")
    page.get_by_label("Minimum rating").select_option("4")
    expect(history.locator(".result-card")).to_have_count(1)
    shot(page, "05-history-filtered")

    # 6. reload: the route, the filters and the candidate are still there -----------------------------
    page.reload()
    expect(page.get_by_role("tab", name="History")).to_have_attribute("aria-selected", "true")
    history = page.get_by_role("list", name="Past results")
    mine = history.locator(f'[data-result-id="{result_id}"]')
    expect(mine).to_be_visible()
    expect(mine.locator(".stars")).to_have_attribute("data-value", "4")
    expect(mine.get_by_role("button", name=re.compile("^Save"))).to_have_attribute("aria-pressed", "true")
    shot(page, "06-history-after-reload")

    # delete another result from History
    page.get_by_label("Saved only").uncheck()
    page.get_by_label("Minimum rating").select_option("")
    expect(history.locator(".result-card")).to_have_count(4)
    victim = history.locator(".result-card").nth(0)
    victim_id = victim.get_attribute("data-result-id")
    if victim_id == result_id:
        victim = history.locator(".result-card").nth(1)
        victim_id = victim.get_attribute("data-result-id")
    page.once("dialog", lambda d: d.accept())
    victim.get_by_role("button", name=re.compile("^Delete")).click()
    expect(history.locator(".result-card")).to_have_count(3)
    items = server.api("GET", f"/api/v1/products/{product['id']}/history")["items"]
    assert victim_id not in {r["id"] for r in items} and result_id in {r["id"] for r in items}

    # the gallery shows the product with its results
    page.get_by_role("link", name="Products", exact=True).click()
    card = page.get_by_role("list", name="Products").get_by_role("link", name=re.compile("Red mug"))
    expect(card).to_contain_text("3 results")
    shot(page, "07-home")
    # everything came from the packshot server itself: no CDN, no external font, works offline
    outside = [u for u in page.requested if not u.startswith((server.url, "blob:", "data:"))]
    assert not outside, outside


def test_drop_two_photos_pick_one_and_poll_without_sse(server, page, tmp_path):
    """Drag and drop two photos -> one product with a photo picker; the second photo is cut out
    and used by the job; with the event stream blocked, progress falls back to polling."""
    from playwright.sync_api import expect

    files = []
    for i, (colour, size) in enumerate((((40, 90, 180), (640, 480)), ((30, 140, 60), (480, 640)))):
        rgb, _ = mug_photo(size=size, color=colour, seed=10 + i)
        path = tmp_path / f"mug-{i + 1}.jpg"
        Image.fromarray(rgb).save(path, quality=90)
        files.append([path.name, base64.b64encode(path.read_bytes()).decode()])
    page.goto(server.url + "/")
    page.get_by_label("Product name").fill("Two-photo mug")
    transfer = page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const [name, b64] of files) {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          dt.items.add(new File([bytes], name, { type: "image/jpeg" }));
        }
        return dt;
      }""", files)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/products") and r.request.method == "POST") as created:
        page.get_by_test_id("dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    assert created.value.status == 201, created.value.text()
    product = created.value.json()
    assert len(product["photos"]) == 2
    second = product["photos"][1]

    picker = page.get_by_role("radiogroup", name="Photo")
    expect(picker.get_by_role("radio")).to_have_count(2)
    with page.expect_request(lambda r: f"/photos/{second['id']}/cutout/preview" in r.url):
        picker.get_by_role("radio").nth(1).check()
    canvas = page.get_by_test_id("mask-canvas")
    wait_previews(page, canvas, 0)
    box = canvas.bounding_box()
    assert abs(box["height"] / box["width"] - second["height"] / second["width"]) < 0.02  # portrait photo

    page.route("**/api/v1/jobs/*/events", lambda route: route.abort())
    page.get_by_label("Number of candidates").fill("1")
    page.get_by_label("Canvas").select_option("aspect:1:1")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/jobs") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert posted.value.request.post_data_json["photo_id"] == second["id"]
    job_id = posted.value.json()["id"]
    expect(page.get_by_role("img", name=re.compile(r"^Candidate 1, seed"))).to_be_visible(timeout=90_000)
    assert any(u.endswith(f"/api/v1/jobs/{job_id}") for u in page.requested)  # polled
    assert server.api("GET", f"/api/v1/jobs/{job_id}")["photo_id"] == second["id"]
    shot(page, "08-two-photos-polling")
