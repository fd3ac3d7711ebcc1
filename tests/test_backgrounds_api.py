"""The seller's own background photo over HTTP (issue 17): upload it (POST /api/v1/backgrounds), run
a job with its ``background_id`` against a real ``packshot serve`` process, and get the product
placed on it: the photo's pixels outside the product and its shadow, the product's pixels exactly.
Another key's background is 404; a non-image upload is one 4xx line.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from services import Server, assert_error, create_product, wait_job
from test_grounding import _rgba, _room, pair_alpha

KEY_A, KEY_B = "key-bg-alpha-1", "key-bg-bravo-2"
W, H = 600, 400


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("bg-api") / "data", api_keys=(KEY_A, KEY_B),
                 env={"PACKSHOT_RATE_LIMIT_PER_MINUTE": 100000})
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-4000:]


def _upload(client, data: bytes, name: str = "room.png"):
    return client.post("/api/v1/backgrounds", files={"photo": (name, data, "application/octet-stream")})


def test_a_job_with_an_uploaded_background_keeps_its_pixels_and_the_product_exactly(server):
    alpha = pair_alpha(W, H)
    rgba = _rgba(alpha)
    room = _room(W, H)
    with server.client(KEY_A) as a:
        product = create_product(a, "shoes", [_png(rgba)])
        r = _upload(a, _png(room))
        assert r.status_code == 201, r.text
        bg = r.json()
        assert (bg["width"], bg["height"]) == (W, H)
        assert a.get(f"/api/v1/backgrounds/{bg['id']}").json()["id"] == bg["id"]
        r = a.post("/api/v1/jobs", json={"product_id": product["id"], "background_id": bg["id"], "n": 2,
                                          "seed": 1, "keep_framing": True})
        assert r.status_code == 202, r.text
        assert r.json()["request"]["background_id"] == bg["id"]
        job = wait_job(a, r.json()["id"])
        assert job["status"] == "succeeded", job
        assert len(job["result_ids"]) == 2
        opaque, clear = alpha >= 1.0, alpha <= 0.0
        for rid in job["result_ids"]:
            img = np.asarray(Image.open(io.BytesIO(a.get(f"/api/v1/results/{rid}/image").content))
                             .convert("RGB")).astype(int)
            assert img.shape == (H, W, 3)
            assert np.array_equal(img[opaque], rgba[..., :3][opaque].astype(int))  # the product, exactly
            diff = np.abs(img - room.astype(int)).sum(axis=2)
            assert (img[clear] <= room[clear].astype(int) + 1).all()  # only a shadow darkens the room
            assert int((clear & (diff > 0)).sum()) > 100  # there is a shadow
            assert (diff[:100] == 0).all()  # far above the product: the room, exactly
            res = a.get(f"/api/v1/results/{rid}").json()
            assert res["parameters"]["Background"] == "photo uploaded"
        # the blob stays while the background exists, even after the start-up sweep (restart)
        server.restart()
    with server.client(KEY_A) as a:
        assert a.get(f"/api/v1/backgrounds/{bg['id']}").status_code == 200
        r = a.post("/api/v1/jobs", json={"product_id": product["id"], "background_id": bg["id"], "n": 1,
                                          "seed": 2, "keep_framing": True})
        assert r.status_code == 202, r.text
        assert wait_job(a, r.json()["id"])["status"] == "succeeded"
        assert a.delete(f"/api/v1/backgrounds/{bg['id']}").status_code == 204
        assert_error(a.get(f"/api/v1/backgrounds/{bg['id']}"), 404, bg["id"])


def test_another_keys_background_is_not_found_and_a_non_image_is_one_line(server):
    with server.client(KEY_A) as a, server.client(KEY_B) as b:
        bg = _upload(a, _png(_room(200, 150))).json()
        assert_error(b.get(f"/api/v1/backgrounds/{bg['id']}"), 404, bg["id"])
        assert_error(b.delete(f"/api/v1/backgrounds/{bg['id']}"), 404, bg["id"])
        product_b = create_product(b, "mug")
        assert_error(b.post("/api/v1/jobs", json={"product_id": product_b["id"], "background_id": bg["id"]}),
                     404, bg["id"])
        assert_error(b.post("/api/v1/jobs", json={"product_id": product_b["id"], "background_id": "nope"}),
                     404, "nope")
        assert_error(b.post("/api/v1/jobs", json={"product_id": product_b["id"], "background": "/etc/passwd"}),
                     422, "background_id")
        r = _upload(a, b"this is not an image at all", "notes.txt")
        assert 400 <= r.status_code < 500
        assert_error(r, r.status_code, "background photo")
        assert a.get(f"/api/v1/backgrounds/{bg['id']}").status_code == 200  # untouched


# -- the web app: pick a background file, generate, a candidate appears (real Chromium) -------------
from test_web import browser, page, start_server  # noqa: E402,F401  (fixtures: Debian chromium via playwright)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    from test_web import _sync_playwright
    _sync_playwright()  # skip (fail on CI) before starting a server when the browser is missing
    srv = start_server(tmp_path_factory, "bg-web")
    yield srv
    srv.stop()


@pytest.mark.browser
def test_web_own_background_upload_generates_and_a_non_image_is_an_alert(web, page, tmp_path):
    import re

    from playwright.sync_api import expect

    shoes, room, notes = tmp_path / "shoes.png", tmp_path / "room.png", tmp_path / "notes.txt"
    Image.fromarray(_rgba(pair_alpha(480, 320))).save(shoes)
    Image.fromarray(_room(480, 320)).save(room)
    notes.write_text("not a photo")
    product = web.create_product("Shoes", shoes)
    page.goto(f"{web.url}/#/product/{product['id']}/generate")
    own = page.get_by_label("Own background")
    own.set_input_files(str(notes))
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("notes.txt")
    expect(page.get_by_role("alert")).to_contain_text("not an image")
    # claims to be a PNG: the server decodes it and refuses it, and the page says so in the alert
    own.set_input_files({"name": "broken.png", "mimeType": "image/png", "buffer": b"not a png at all"})
    with page.expect_response(lambda r: r.url.endswith("/api/v1/backgrounds")) as refused:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert 400 <= refused.value.status < 500
    expect(page.get_by_role("alert")).to_contain_text("background photo")

    own.set_input_files(str(room))
    page.get_by_label("Number of candidates").fill("1")
    page.get_by_label("Seed").fill("5")
    page.get_by_label("Canvas").select_option("keep")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/backgrounds") and r.request.method == "POST") as up, \
            page.expect_response(lambda r: r.url.endswith("/api/v1/jobs") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert up.value.status == 201, up.value.text()
    assert posted.value.status == 202, posted.value.text()
    assert posted.value.request.post_data_json["background_id"] == up.value.json()["id"]
    first = page.get_by_role("list", name="Candidates").get_by_role("img", name=re.compile(r"^Candidate 1"))
    expect(first).to_be_visible(timeout=90_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
    assert first.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [480, 320]
    job = web.api("GET", f"/api/v1/jobs/{posted.value.json()['id']}")
    assert job["status"] == "succeeded" and job["request"]["background_id"] == up.value.json()["id"]
    result = web.api("GET", f"/api/v1/results/{job['result_ids'][0]}")
    assert result["parameters"]["Background"] == "photo uploaded"


def test_a_queued_job_whose_background_was_deleted_fails_with_one_line(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("bg-deleted") / "data", api_keys=(KEY_A,),
                 env={"PACKSHOT_TEST_STEP_DELAY": 1.5})  # every progress call sleeps: the delete comes first
    srv.start()
    try:
        with srv.client(KEY_A) as a:
            product = create_product(a, "shoes", [_png(_rgba(pair_alpha(300, 200)))])
            bg = _upload(a, _png(_room(300, 200))).json()
            r = a.post("/api/v1/jobs", json={"product_id": product["id"], "background_id": bg["id"], "n": 1})
            assert r.status_code == 202, r.text
            assert a.delete(f"/api/v1/backgrounds/{bg['id']}").status_code == 204
            job = wait_job(a, r.json()["id"])
            assert job["status"] == "failed" and bg["id"] in job["error"] and "\n" not in job["error"], job
    finally:
        srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
