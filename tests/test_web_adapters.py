"""Trained models in the web app (issue 12), in a real headless Chromium against a real ``packshot
serve`` process whose model dir holds a tiny randomly initialised SD pipeline (``tiny-sd``):
open a product, train a model (few steps), watch the progress to the end, pick the model in the
generate form, generate, see the candidates; cancel a second training from its row.
"""
from __future__ import annotations

import re

import pytest

from services import Server, create_product, photo_bytes
from test_adapters_api import model_dir  # noqa: F401  (fixture: the tiny base in a model dir)
from test_web import browser, chromium_present, page, shot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dir):  # noqa: F811
    srv = Server(tmp_path_factory.mktemp("web-train") / "data",
                 env={"PACKSHOT_MODEL_DIR": str(model_dir), "PACKSHOT_DEVICE": "cpu",
                      "PACKSHOT_RATE_LIMIT_PER_MINUTE": 100000, "PACKSHOT_TEST_STEP_DELAY": "0.1"})
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-4000:]


def test_train_pick_the_model_and_generate(server, page):  # noqa: F811
    from playwright.sync_api import expect

    with server.client() as c:
        product = create_product(c, "Red mug", [photo_bytes(size=(160, 120), fmt="PNG", seed=i) for i in range(3)])
    page.goto(f"{server.url}/#/product/{product['id']}/generate")
    card = page.locator("section.adapters-card")
    expect(card.get_by_role("heading", name="Trained models")).to_be_visible()
    models = page.get_by_role("list", name="Trained models")
    expect(models).to_contain_text("No trained model yet")
    # the generate form offers no trained model yet
    expect(page.get_by_label("Trained model", exact=True)).to_be_hidden()

    # 1. train: base, method, steps -> 202, a row with live progress until done
    page.get_by_label("Base model").fill("tiny-sd")
    page.get_by_label("Method").select_option("lora")
    page.get_by_label("Steps", exact=True).first.fill("30")  # enough for the bar to be seen moving
    with page.expect_response(lambda r: r.url.endswith("/adapters") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Train a model").click()
    assert posted.value.status == 202, posted.value.text()
    adapter = posted.value.json()
    assert posted.value.request.post_data_json == {"base": "tiny-sd", "method": "lora", "steps": 30}
    row = page.locator(f"li.adapter[data-adapter-id='{adapter['id']}']")
    expect(row).to_contain_text("red-mug-lora")
    expect(row.get_by_role("progressbar")).to_be_visible(timeout=60_000)  # running: the bar follows the steps
    steps_seen = set()
    for _ in range(600):
        text = row.locator(".adapter-steps").inner_text()
        steps_seen.add(text)
        if "done" in row.locator(".badge").inner_text():
            break
        page.wait_for_timeout(100)
    expect(row.locator(".badge")).to_have_text("done", timeout=120_000)
    expect(row.locator(".adapter-steps")).to_have_text("step 30/30")
    assert re.fullmatch(r"\d+\.\d{4}", row.locator(".adapter-loss").inner_text())
    assert len(steps_seen) >= 3, steps_seen  # the progress was seen moving (SSE), not only the end
    shot(page, "train-done")

    # 2. pick it in the generate form, generate, see the candidates
    choice = page.get_by_label("Trained model", exact=True)
    expect(choice).to_be_visible()
    choice.select_option(adapter["id"])
    page.get_by_label("Adapter weight").fill("0.8")
    page.get_by_label("Prompt", exact=True).fill("<product> on a wooden table, soft light")
    page.get_by_label("Number of candidates").fill("2")
    page.get_by_label("Seed").fill("7")
    page.get_by_label("Canvas").select_option("size")
    page.get_by_label("Size", exact=True).fill("64x64")
    page.locator("details.subsection summary", has_text="Advanced").click()
    page.get_by_label("Steps", exact=True).last.fill("2")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/jobs") and r.request.method == "POST") as job_post:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert job_post.value.status == 202, job_post.value.text()
    sent = job_post.value.request.post_data_json
    assert sent["adapters"] == [f"{adapter['id']}:0.8"] and sent["engine"] == "diffusion" and sent["model"] == "tiny-sd"
    cards = page.get_by_role("list", name="Candidates").get_by_role("listitem")
    expect(cards).to_have_count(2, timeout=120_000)
    with server.client() as c:
        job = c.get(f"/api/v1/jobs/{job_post.value.json()['id']}").json()
        assert job["status"] == "succeeded", job
        params = c.get(f"/api/v1/results/{job['result_ids'][0]}").json()["parameters"]
        assert "red-mug-lora:0.8" in params["Adapters"] and params["Mode"] == "text2img"
    shot(page, "train-generated")

    # 3. a second training, cancelled from its row: nothing kept
    page.get_by_label("Steps", exact=True).first.fill("5000")
    with page.expect_response(lambda r: r.url.endswith("/adapters") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Train a model").click()
    second = posted.value.json()
    assert second["name"] == "red-mug-lora-2"  # default names are numbered within the product
    row2 = page.locator(f"li.adapter[data-adapter-id='{second['id']}']")
    expect(row2.locator(".adapter-steps")).not_to_have_text("step 0/5000", timeout=120_000)
    row2.get_by_role("button", name="Cancel").click()
    expect(row2.locator(".badge")).to_have_text("cancelled", timeout=60_000)
    assert not (server.data_dir / "adapters" / second["id"]).exists()
    # the generate form still offers only the finished model
    options = page.get_by_label("Trained model", exact=True).locator("option").all_inner_texts()
    assert options == ["None", "red-mug-lora (lora, tiny-sd)"], options
