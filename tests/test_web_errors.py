"""Errors in the web app are shown in the page (the role="alert" region), never a blank page:
a bad upload (the API's 4xx detail), no product found in a photo, an unknown product, a failed
job (job.error or the API's up-front 4xx), and a server that cannot be reached.

Same real Chromium and real ``packshot serve`` process as tests/test_web.py.
"""
from __future__ import annotations

import re
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from synth import mug_photo
from test_web import browser, chromium_present, page, server, shot, start_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def alert_of(page):
    return page.get_by_role("alert")


def test_non_image_upload_shows_the_api_detail(server, page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    bad = tmp_path / "notes.jpg"  # named like a photo, but it is text
    bad.write_text("these are my shopping notes, not a photo\n")
    # what the API itself says about it
    try:
        server.create_product("notes", bad)
        pytest.fail("the API accepted a text file as a photo")
    except urllib.error.HTTPError as e:
        assert 400 <= e.code < 500
        detail = __import__("json").loads(e.read())["detail"]
    page.goto(server.url + "/")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/products") and r.request.method == "POST") as resp:
        page.get_by_label("Product photo").set_input_files(str(bad))
    assert 400 <= resp.value.status < 500
    alert = alert_of(page)
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Upload failed")
    expect(alert).to_contain_text(detail)
    assert "HTTP" not in alert.inner_text()  # the readable detail, not a status line
    expect(page.get_by_role("heading", name="Products")).to_be_visible()  # still the page, not blank
    assert re.search(r"#/?$", page.url) or "#" not in page.url
    shot(page, "err-bad-upload")
    # the alert can be dismissed
    page.get_by_role("button", name="Dismiss error").click()
    expect(alert).to_be_hidden()


def test_no_product_found_is_explained(server, page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 400, 3), 236, np.uint8)).save(blank)  # an empty backdrop
    product = server.create_product("Empty backdrop", blank)
    page.goto(f"{server.url}/#/product/{product['id']}/generate")
    # the live preview finds nothing: the editor and the alert say so
    alert = alert_of(page)
    expect(alert).to_contain_text(re.compile("no product found", re.I))
    expect(page.get_by_text("No product found: click on the product")).to_be_visible()
    # committing it anyway: the API's 422 detail is shown
    with page.expect_response(lambda r: r.url.endswith("/cutout") and r.request.method == "PUT") as resp:
        page.get_by_role("button", name="Use this cutout").click()
    assert resp.value.status == 422
    detail = resp.value.json()["detail"]
    expect(alert).to_contain_text(detail)
    # generating anyway: the job (or the API up front) fails and says why
    page.get_by_label("Number of candidates").fill("1")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(alert).to_contain_text("Generation failed", timeout=60_000)
    expect(alert).to_contain_text(re.compile("no product found", re.I))
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    shot(page, "err-no-product")


def test_unknown_product_is_not_a_blank_page(server, page):  # noqa: F811
    from playwright.sync_api import expect

    page.goto(f"{server.url}/#/product/0123456789abcdef0123456789abcdef/generate")
    alert = alert_of(page)
    expect(alert).to_contain_text("0123456789abcdef0123456789abcdef")
    expect(page.get_by_role("heading", name="Something went wrong")).to_be_visible()
    page.get_by_role("link", name="Back to products").click()
    expect(page.get_by_role("heading", name="Products", level=1)).to_be_visible()


def test_failed_job_shows_its_error(server, page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    rgb, _ = mug_photo(size=(480, 360), seed=5)
    path = tmp_path / "mug.jpg"
    Image.fromarray(rgb).save(path, quality=90)
    product = server.create_product("Mug for a failing job", path)
    page.goto(f"{server.url}/#/product/{product['id']}/generate")
    missing = str(tmp_path / "no-such-model")
    page.get_by_label("Engine", exact=True).select_option("diffusion")
    page.get_by_text("Advanced").click()
    page.get_by_label("Model", exact=True).fill(missing)
    page.get_by_label("Prompt", exact=True).fill("on a wooden table")
    page.get_by_label("Number of candidates").fill("1")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/jobs") and r.request.method == "POST") as resp:
        page.get_by_role("button", name="Generate", exact=True).click()
    status = resp.value.status
    assert status == 202 or 400 <= status < 500, status
    alert = alert_of(page)
    # either the API refused the request up front (4xx detail) or the job failed (job.error):
    # both name the missing model path
    expect(alert).to_contain_text("no-such-model", timeout=60_000)
    expect(alert).to_contain_text("Generation failed")
    expect(page.locator(".job-error")).to_contain_text("no-such-model")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    if status == 202:
        job = server.api("GET", f"/api/v1/jobs/{resp.value.json()['id']}")
        assert job["status"] == "failed" and job["error"] and job["error"] in alert.inner_text()
    shot(page, "err-failed-job")


def test_server_unreachable_shows_an_error(tmp_path_factory, browser):  # noqa: F811
    from playwright.sync_api import expect

    srv = start_server(tmp_path_factory, "doomed")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        pg.goto(srv.url + "/")
        expect(pg.get_by_role("heading", name="Products", level=1)).to_be_visible()
        srv.stop()
        pg.evaluate("location.hash = '#/product/abc/generate'")
        alert = pg.get_by_role("alert")
        expect(alert).to_contain_text("Cannot reach the packshot server", timeout=20_000)
        expect(pg.get_by_role("button", name="Try again")).to_be_visible()
        shot(pg, "err-unreachable")
        assert not errors, errors
    finally:
        srv.stop()
        context.close()


def test_api_key_is_asked_for_and_used(tmp_path_factory, browser, tmp_path):  # noqa: F811
    """With API keys on, a 401 shows the "API key" field; once typed, everything works with it
    (images and downloads are fetched with the X-API-Key header)."""
    from playwright.sync_api import expect

    srv = start_server(tmp_path_factory, "keyed", "--api-key", "s3cret-key")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        rgb, _ = mug_photo(size=(400, 300), seed=9)
        photo = tmp_path / "mug.jpg"
        Image.fromarray(rgb).save(photo, quality=90)
        pg.goto(srv.url + "/")
        alert = pg.get_by_role("alert")
        expect(alert).to_contain_text("Could not load products")
        key = pg.get_by_label("API key")
        expect(key).to_be_visible()
        key.fill("wrong-key")
        key.press("Enter")
        expect(alert).to_be_visible()
        key.fill("s3cret-key")
        key.press("Enter")
        expect(pg.get_by_role("list", name="Products")).to_contain_text("No products yet")
        expect(alert).to_be_hidden()
        pg.get_by_label("Product photo").set_input_files(str(photo))
        pg.wait_for_url(re.compile(r"#/product/[0-9a-f]+/generate$"))
        canvas = pg.get_by_test_id("mask-canvas")
        pg.wait_for_function("el => Number(el.dataset.previews || 0) > 0", arg=canvas.element_handle())
        assert float(canvas.get_attribute("data-coverage")) > 0.05
        with pg.expect_download() as dl:
            pg.get_by_role("button", name="Download cutout").click()
        assert Image.open(dl.value.path()).mode == "RGBA"
        # the key stays in this browser: a reload needs no typing
        pg.reload()
        expect(pg.get_by_test_id("mask-canvas")).to_have_attribute("data-previews", re.compile(r"[1-9]"))
        assert not errors, errors
    finally:
        context.close()
        srv.stop()
