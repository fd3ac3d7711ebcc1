"""Catalog runs and checks over HTTP against a real ``packshot serve``, on SQLite and PostgreSQL:
a batch from product ids and one from a CSV upload, progress over SSE, cancel, the report and the
zip, per-key isolation, bad CSVs as 4xx; ``POST /api/v1/check``."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from services import Server, assert_error, create_product, database_url, photo_bytes, postgres  # noqa: F401

KEY_A, KEY_B = "batch-key-alpha", "batch-key-bravo"
SPEC = {"prompt": "on a white marble table, soft light", "lifestyle": 2, "size": "256x256", "marketplace": "amazon"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    data = tmp_path_factory.mktemp(f"batch-api-{request.param}") / "data"
    srv = Server(data, database_url=database_url(request.param, request), api_keys=(KEY_A, KEY_B),
                 env={"PACKSHOT_RATE_LIMIT_PER_MINUTE": 100000})
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-4000:]


@pytest.fixture(scope="module")
def clients(server):
    with server.client(KEY_A) as a, server.client(KEY_B) as b:
        yield a, b


@pytest.fixture(scope="module")
def products(clients):
    a, b = clients
    mine = [create_product(a, f"mug-{i}", [photo_bytes(seed=i, color=c)])
            for i, c in enumerate([(180, 40, 40), (40, 90, 160), (30, 120, 60)])]
    theirs = create_product(b, "their mug")
    return mine, theirs


def _events(client, batch_id: str) -> list[dict]:
    out = []
    with client.stream("GET", f"/api/v1/batches/{batch_id}/events", timeout=300) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def test_batch_from_product_ids_with_sse_report_zip_and_isolation(clients, products):
    a, b = clients
    mine, theirs = products
    ids = [p["id"] for p in mine]
    r = a.post("/api/v1/batches", json={**SPEC, "product_ids": [*ids, theirs["id"], "nope"]})
    assert r.status_code == 201, r.text
    batch = r.json()
    items = {i["product_id"]: i for i in batch["items"]}
    assert items[theirs["id"]]["status"] == "failed" and "not found" in items[theirs["id"]]["reason"]
    assert "not found" in items["nope"]["reason"]
    # another key sees nothing of it
    assert_error(b.get(f"/api/v1/batches/{batch['id']}"), 404, "not found")
    assert_error(b.post(f"/api/v1/batches/{batch['id']}/cancel"), 404)
    assert_error(b.get(f"/api/v1/batches/{batch['id']}/download"), 404)

    events = _events(a, batch["id"])
    assert len(events) >= 2
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    final = events[-1]
    assert final["status"] == "failed"  # two rows could not run
    assert final["counts"] == {"succeeded": 3, "failed": 2}
    for it in final["items"]:
        if it["product_id"] in ids:
            assert it["status"] == "succeeded" and len(it["result_ids"]) == 3

    html = a.get(f"/api/v1/batches/{batch['id']}/report")
    assert html.status_code == 200 and html.text.count("<img") == 9 and "not found" in html.text
    z = a.get(f"/api/v1/batches/{batch['id']}/download")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        names = set(zf.namelist())
        summary = json.loads(zf.read("summary.json"))
        main = Image.open(io.BytesIO(zf.read(f"{ids[0]}/main.png")))
        life = Image.open(io.BytesIO(zf.read(f"{ids[0]}/lifestyle_02.png")))
    assert names == {"report.html", "summary.json"} | {f"{i}/{n}" for i in ids
                                                       for n in ("main.png", "lifestyle_01.png", "lifestyle_02.png")}
    assert main.size == (2000, 2000) and life.size == (256, 256)
    # each main image is checked by Amazon's rules; the verdicts are what the checker measures
    assert summary["counts"]["ok"] == 3
    made = [r for r in summary["skus"] if r["status"] == "ok"]
    assert summary["counts"]["main_passed"] == sum(r["check"]["passed"] for r in made)
    for rec in made:
        assert {x["check"] for x in rec["check"]["rules"]} >= {"size", "background", "fill", "text", "borders"}
        assert {x["status"] for x in rec["check"]["rules"] if x["check"] in ("size", "colour", "borders", "text")} \
            == {"pass"}


def test_batch_csv_upload_bad_csvs_and_cancel(clients, products):
    a, _ = clients
    mine, theirs = products
    csv = ("sku,product,prompt,preset\n"
           "A-1,mug-0,on slate,\n"
           "B-2,mug-1,,temu\n"
           f"C-3,{theirs['id']},,\n"
           "../x,mug-2,,\n")
    r = a.post("/api/v1/batches", files={"csv": ("c.csv", csv.encode(), "text/csv")},
               data={"lifestyle": "1", "size": "256x256"})
    assert r.status_code == 201, r.text
    items = {i["sku"]: i for i in r.json()["items"]}
    assert items["A-1"]["main_job"] and items["A-1"]["lifestyle_job"]
    assert "unknown preset 'temu'" in items["B-2"]["reason"]
    assert "not found" in items["C-3"]["reason"]
    assert "'../x'" in items["../x"]["reason"]
    # bad CSVs and bad fields: 4xx with one line naming the problem, nothing created
    before = len(a.get("/api/v1/jobs", params={"limit": 1000}).json()["items"])
    assert_error(a.post("/api/v1/batches", files={"csv": ("c.csv", b"name,picture\nx,y\n", "text/csv")}), 422,
                 "sku and product")
    assert_error(a.post("/api/v1/batches", files={"csv": ("c.csv", b"\xff\xfe\x00bad", "text/csv")}), 422, "UTF-8")
    assert_error(a.post("/api/v1/batches", files={"csv": ("c.csv", b"sku,product\n", "text/csv")}), 422, "no rows")
    assert_error(a.post("/api/v1/batches", files={"csv": ("c.csv", b"sku,product,colour\nA,b,c\n", "text/csv")}),
                 422, "colour")
    assert_error(a.post("/api/v1/batches", json={"product_ids": [mine[0]["id"]], "lifestyle": 99}), 422, "lifestyle")
    assert_error(a.post("/api/v1/batches", json={"product_ids": [mine[0]["id"]], "size": "big"}), 422, "big")
    assert_error(a.post("/api/v1/batches", json={"product_ids": []}), 422, "product_ids")
    assert len(a.get("/api/v1/jobs", params={"limit": 1000}).json()["items"]) == before

    # cancel: every job not finished is cancelled; the batch ends cancelled
    r = a.post("/api/v1/batches", json={**SPEC, "product_ids": [p["id"] for p in mine] * 1})
    bid = r.json()["id"]
    c = a.post(f"/api/v1/batches/{bid}/cancel")
    assert c.status_code == 200
    final = _events(a, bid)[-1]
    assert final["status"] == "cancelled", final
    assert final["counts"].get("cancelled", 0) >= 1
    for it in final["items"]:
        for k in ("main_job", "lifestyle_job"):
            assert a.get(f"/api/v1/jobs/{it[k]}").json()["status"] in ("cancelled", "succeeded")
    assert a.get(f"/api/v1/batches/{bid}/download").status_code == 200  # what finished is downloadable


def test_check_one_image_over_http(clients, tmp_path):
    a, _ = clients
    import packshot
    from synth import mug_photo

    rgb, _ = mug_photo((640, 480), jpeg_quality=None)
    img = packshot.generate(rgb, preset="amazon", n=1, seed=3).candidates[0].image
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    r = a.post("/api/v1/check", files={"image": ("main.png", buf.getvalue(), "image/png")},
               data={"marketplace": "amazon"})
    assert r.status_code == 200, r.text
    assert r.json()["passed"] and {x["status"] for x in r.json()["rules"]} == {"pass"}
    off = img.copy()
    off[np.all(img == 255, axis=2)] = 250
    buf = io.BytesIO()
    Image.fromarray(off).save(buf, "PNG")
    r = a.post("/api/v1/check", files={"image": ("off.png", buf.getvalue(), "image/png")},
               data={"marketplace": "walmart"})
    rules = {x["check"]: x for x in r.json()["rules"]}
    assert not r.json()["passed"] and rules["background"]["status"] == "fail"
    assert_error(a.post("/api/v1/check", files={"image": ("x.png", b"nope", "image/png")}), 400, "not an image")
    assert_error(a.post("/api/v1/check", files={"image": ("x.png", buf.getvalue(), "image/png")},
                        data={"marketplace": "temu"}), 422, "marketplace")


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # the page is the same on both databases
def test_catalog_page_runs_watches_and_downloads_in_chromium(server, clients, products, tmp_path):
    """The web app's Catalog page in a real Chromium: pick products, run, watch, download the zip."""
    from test_web import CHROMIUM, CHROMIUM_ARGS, _sync_playwright

    mine, _ = products
    sync_playwright = _sync_playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        context.add_init_script(f"localStorage.setItem('packshot.apiKey', {KEY_A!r})")
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.url}/#/catalog")
        page.wait_for_selector("#cat-run")
        for prod in mine[1:]:  # only the first product
            page.uncheck(f"#cat-{prod['id']}")
        page.fill("#cat-count", "1")
        page.select_option("#cat-size", "1024x1024")
        page.click("#cat-run")
        page.wait_for_selector("#cat-zip:not([hidden])", timeout=240_000)
        assert page.text_content("#cat-state").startswith("succeeded")
        assert page.locator("table.catalog-items tbody tr").count() == 1
        with page.expect_download() as dl:
            page.click("#cat-zip")
        path = tmp_path / "catalog.zip"
        dl.value.save_as(path)
        page.screenshot(path=str(tmp_path / "catalog.png"), full_page=True)
        browser.close()
    assert not errors, errors
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"report.html", "summary.json", f"{mine[0]['id']}/main.png",
                                      f"{mine[0]['id']}/lifestyle_01.png"}
