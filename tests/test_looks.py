"""Looks (saved scene recipes): the CLI as a process, the API over HTTP (per API key), and the
photo helpers of the API (suggestions for a product photo, a scene described)."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

import synth
from services import Server, assert_error, create_product, photo_bytes, wait_job

KEY_A, KEY_B = "looks-key-alpha", "looks-key-bravo"
SCENE = {"prompt": "on a light oak table, pale teal wall, window light from the left, calm", "seed": 11,
         "size": "256x256", "n": 2, "margin": 0.15}


def _photo(tmp_path, name, colour):
    rgb, _ = synth.mug_photo((400, 300), color=colour, jpeg_quality=None)
    path = tmp_path / name
    Image.fromarray(rgb).save(path)
    return path


# -- CLI + file ---------------------------------------------------------------------------------
def test_cli_save_list_apply_across_two_products(tmp_path, cli):
    env = {"PACKSHOT_DATA_DIR": str(tmp_path / "data")}
    red, blue = _photo(tmp_path, "red.png", (180, 40, 40)), _photo(tmp_path, "blue.png", (40, 70, 160))
    r = cli("looks", "save", "teal-oak", "--prompt", SCENE["prompt"], "--seed", "11", "--size", "256x256",
            "-n", "2", "--margin", "0.15", env=env)
    assert r.returncode == 0, r.stderr
    listed = cli("looks", "list", "--json", env=env)
    looks = json.loads(listed.stdout)
    assert [lk["name"] for lk in looks] == ["teal-oak"] and looks[0]["request"]["seed"] == 11
    reqs = []
    for photo, out in ((red, "o_red"), (blue, "o_blue")):
        g = cli("generate", photo, "-o", tmp_path / out, "--look", "teal-oak", env=env)
        assert g.returncode == 0, g.stderr
        res = json.loads((tmp_path / out / "results.json").read_text())
        reqs.append(res["request"])
        assert [c["seed"] for c in res["candidates"]] and {c["seed"] for c in res["candidates"]} == {11, 12}
    assert reqs[0] == reqs[1]                     # every SKU: the same scene, light, canvas and seeds
    assert reqs[0]["prompt"] == SCENE["prompt"] and reqs[0]["margin"] == 0.15 and reqs[0]["size"] == "256x256"
    # an option given on the command line overrides the look; a canvas replaces the look's canvas
    g = cli("generate", red, "-o", tmp_path / "o_over", "--look", "teal-oak", "--seed", "5", "--preset", "etsy",
            "-n", "1", env=env)
    assert g.returncode == 0, g.stderr
    over = json.loads((tmp_path / "o_over" / "results.json").read_text())["request"]
    assert over["seed"] == 5 and over["preset"] == "etsy" and over["size"] is None
    assert over["prompt"] == SCENE["prompt"]
    # a look saved from a candidate of results.json takes its request and that candidate's seed
    s = cli("looks", "save", "from-red", "--from", tmp_path / "o_red" / "results.json", "--rank", "2", env=env)
    assert s.returncode == 0, s.stderr
    shown = json.loads(cli("looks", "show", "from-red", env=env).stdout)
    red_res = json.loads((tmp_path / "o_red" / "results.json").read_text())
    assert shown["request"]["seed"] == red_res["candidates"][1]["seed"]
    assert shown["request"]["prompt"] == SCENE["prompt"] and "segment" not in shown["request"]


def test_cli_bad_looks_are_one_line(tmp_path, cli):
    env = {"PACKSHOT_DATA_DIR": str(tmp_path / "data")}
    photo = _photo(tmp_path, "red.png", (180, 40, 40))
    for args, words in ((("generate", photo, "-o", tmp_path / "o", "--look", "nope"), ("unknown look 'nope'",)),
                        (("looks", "show", "nope"), ("unknown look 'nope'",)),
                        (("looks", "save", "bad/name", "--seed", "1"), ("look name 'bad/name'",)),
                        (("looks", "save", "x", "--from", tmp_path / "none.json"), ("none.json",))):
        r = cli(*args, env=env)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("packshot: error: ") and "Traceback" not in r.stderr
        assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "o").exists()          # nothing half-written


# -- API ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("looks") / "data", api_keys=(KEY_A, KEY_B),
                 env={"PACKSHOT_RATE_LIMIT_PER_MINUTE": 100000})
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-4000:]


def test_api_save_list_apply_per_key(server):
    with server.client(KEY_A) as a, server.client(KEY_B) as b:
        r = a.put("/api/v1/looks/teal oak", json={"request": SCENE, "fields": {"surface": "on a light oak table"}})
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "teal oak" and r.json()["request"]["seed"] == 11
        assert [lk["name"] for lk in a.get("/api/v1/looks").json()["items"]] == ["teal oak"]
        assert b.get("/api/v1/looks").json()["items"] == []            # another key's looks are not seen
        assert_error(b.get("/api/v1/looks/teal oak"), 404, "unknown look")
        p1 = create_product(a, "red mug", [photo_bytes(color=(180, 40, 40))])
        p2 = create_product(a, "blue mug", [photo_bytes(color=(40, 70, 160))])
        jobs = []
        for p in (p1, p2):
            j = a.post("/api/v1/jobs", json={"product_id": p["id"], "look": "teal oak"})
            assert j.status_code == 202, j.text
            jobs.append(wait_job(a, j.json()["id"]))
        assert all(j["status"] == "succeeded" for j in jobs), jobs
        r1, r2 = (j["request"] for j in jobs)
        assert r1 == r2 and r1["prompt"] == SCENE["prompt"] and r1["seed"] == 11 and r1["look"] is None
        results = [a.get(f"/api/v1/results/{j['result_ids'][0]}").json() for j in jobs]
        assert results[0]["parameters"] == results[1]["parameters"] or \
            {k: v for k, v in results[0]["parameters"].items() if k != "Scale"} == \
            {k: v for k, v in results[1]["parameters"].items() if k != "Scale"}
        # explicit fields win over the look
        j = a.post("/api/v1/jobs", json={"product_id": p1["id"], "look": "teal oak", "seed": 3, "n": 1})
        assert j.status_code == 202 and j.json()["request"]["seed"] == 3 and j.json()["request"]["size"] == "256x256"
        wait_job(a, j.json()["id"])
        # bad input: one line, 4xx
        p3 = create_product(b, "b's mug")
        assert_error(b.post("/api/v1/jobs", json={"product_id": p3["id"], "look": "teal oak"}), 422, "unknown look")
        assert_error(a.put("/api/v1/looks/x", json={"request": {"segment": {"points": [[1, 2]]}}}), 422, "segment")
        assert_error(a.put("/api/v1/looks/x", json={"request": {"n": 99}}), 422, "n")
        assert_error(a.put("/api/v1/looks/x", json={"fields": {"colour": "red"}}), 422, "colour")
        assert a.delete("/api/v1/looks/teal oak").status_code == 204
        assert_error(a.delete("/api/v1/looks/teal oak"), 404, "unknown look")


def test_api_suggestions_and_describe(server):
    with server.client(KEY_A) as a, server.client(KEY_B) as b:
        p = create_product(a, "red mug", [photo_bytes(color=(180, 40, 40))])
        photo_id = p["photos"][0]["id"]
        r = a.get(f"/api/v1/photos/{photo_id}/suggestions", params={"n": 3})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 3 and all(set(("surface", "surroundings", "background", "lighting", "mood", "prompt"))
                                       <= set(it) for it in items)
        assert a.get(f"/api/v1/photos/{photo_id}/suggestions", params={"n": 3}).json() == r.json()
        assert_error(b.get(f"/api/v1/photos/{photo_id}/suggestions"), 404)
        assert_error(a.get(f"/api/v1/photos/{photo_id}/suggestions", params={"n": 50}), 422, "n")
        buf = io.BytesIO()
        Image.fromarray(synth.backdrop(300, 400, (230, 215, 190), (120, 90, 60)).__mul__(255).astype("uint8")) \
            .save(buf, "PNG")
        d = a.post("/api/v1/prompts/describe", files={"photo": ("scene.png", buf.getvalue(), "image/png")})
        assert d.status_code == 200, d.text
        assert set(("surface", "surroundings", "background", "lighting", "mood", "prompt")) <= set(d.json())
        assert_error(a.post("/api/v1/prompts/describe", files={"photo": ("x.png", b"not an image", "image/png")}),
                     400)


# -- web app in real Chromium: suggest scenes, save a look, apply it on another product -------------
@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    from test_web import start_server, _sync_playwright

    _sync_playwright()  # skip (or fail on CI) before starting a server when chromium is missing
    srv = start_server(tmp_path_factory, "looks-web")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from test_web import CHROMIUM, CHROMIUM_ARGS, _sync_playwright

    with _sync_playwright()() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_web_suggest_save_and_apply_a_look(web_server, browser, tmp_path):
    from playwright.sync_api import expect

    from test_web import TIMEOUT_MS, VIEWPORT

    red, blue = _photo(tmp_path, "red.png", (180, 40, 40)), _photo(tmp_path, "blue.png", (40, 70, 160))
    p1, p2 = web_server.create_product("Red mug", red), web_server.create_product("Blue mug", blue)
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{web_server.url}/#/product/{p1['id']}/generate")
        # Suggest scenes: suggestions from the product photo; a click fills the prompt and its fields
        page.get_by_role("button", name="Suggest scenes").click()
        suggestions = page.get_by_role("list", name="Suggested scenes").get_by_role("button")
        expect(suggestions).to_have_count(6, timeout=TIMEOUT_MS)
        chosen = suggestions.nth(1)
        text = chosen.inner_text()
        chosen.click()
        prompt = page.locator(f"#prompt-{p1['id']}")
        expect(prompt).not_to_have_value("")
        assert prompt.input_value() in text
        surface = page.locator(f"#surface-{p1['id']}").input_value()
        assert surface and surface in prompt.input_value()
        # the scene's settings, then Save as look
        page.locator(f"#seed-{p1['id']}").fill("4242")
        page.locator(f"#n-{p1['id']}").fill("2")
        page.get_by_label("Look name").fill("spring catalogue")
        with page.expect_response(lambda r: "/api/v1/looks/" in r.url and r.request.method == "PUT") as saved:
            page.get_by_role("button", name="Save as look").click()
        assert saved.value.status == 200, saved.value.text()
        look = web_server.api("GET", "/api/v1/looks/spring%20catalogue")
        assert look["request"]["seed"] == 4242 and look["request"]["prompt"] == prompt.input_value()
        assert look["fields"]["surface"] == surface and "product_id" not in look["request"]
        # another product: Apply look fills its form; Generate sends the look's scene
        page.goto(f"{web_server.url}/#/product/{p2['id']}/generate")
        select = page.locator(f"#looks-{p2['id']}-saved")
        expect(select.locator("option", has_text="spring catalogue")).to_have_count(1)
        select.select_option("spring catalogue")
        page.get_by_role("button", name="Apply look").click()
        expect(page.locator(f"#prompt-{p2['id']}")).to_have_value(look["request"]["prompt"])
        expect(page.locator(f"#seed-{p2['id']}")).to_have_value("4242")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/jobs") and r.request.method == "POST") as job:
            page.get_by_role("button", name="Generate", exact=True).click()
        assert job.value.status == 202, job.value.text()
        sent = job.value.request.post_data_json
        assert sent["product_id"] == p2["id"]
        assert {k: v for k, v in sent.items() if k not in ("product_id", "photo_id")} == \
            {k: v for k, v in look["request"].items() if k in sent}
        assert sent["seed"] == 4242 and sent["n"] == 2 and sent["prompt"] == look["request"]["prompt"]
        page.screenshot(path=str(tmp_path / "looks.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()


def test_library_applies_a_look_from_the_settings_file(tmp_path):
    import packshot
    from packshot.config import Settings
    from packshot.looks import FileLooks, make_look

    settings = Settings(data_dir=tmp_path / "data")
    FileLooks.for_settings(settings).put(make_look("lib", {**SCENE, "n": 1}))
    rgb, _ = synth.mug_photo((400, 300), jpeg_quality=None)
    res = packshot.generate(rgb, look="lib", settings=settings)
    assert res.request.prompt == SCENE["prompt"] and res.request.seed == 11 and res.request.look is None
    assert res.candidates[0].image.shape[:2] == (256, 256)
    with pytest.raises(packshot.PackshotError, match="unknown look 'nope'"):
        packshot.generate(rgb, look="nope", settings=settings)
