"""`packshot batch` through the CLI as a process: 12 photos (9 rendered + the 3 seller photos read in
place), kill -9 at about half-way and a restart give exactly the full set once; bad rows fail alone;
report.html renders in a real Chromium with every image shown."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from synth import mug_photo

SELLER = ("nivedkris_product1_shaving_soap/product1.jpg", "nivedkris_product3_aftershave_bottle/product3.jpg",
          "nivedkris_product4_loafers/product4.jpg")
COLOURS = [(180, 40, 40), (40, 90, 160), (30, 120, 60), (200, 150, 30), (90, 40, 120), (20, 20, 20),
           (220, 90, 140), (60, 160, 170), (120, 80, 40)]
FAST = ("--size", "512x512", "--lifestyle", "2")
SET = {"main.png", "lifestyle_01.png", "lifestyle_02.png", "sku.json"}


def _ok_count(out: Path) -> int:
    n = 0
    for p in out.glob("*/sku.json"):
        try:
            n += json.loads(p.read_text())["status"] == "ok"
        except (OSError, ValueError, KeyError):
            pass
    return n


@pytest.fixture(scope="module")
def photos(tmp_path_factory, shared_data):
    """12 photos: 9 rendered mugs, and symlinks to the 3 seller photos (read in place, never copied)."""
    d = tmp_path_factory.mktemp("photos")
    backdrops = ["white", "grey", "paper", "pastel"]
    for i, col in enumerate(COLOURS):
        rgb, _ = mug_photo((480, 360), backdrops[i % 4], col, seed=i, jpeg_quality=None)
        Image.fromarray(rgb).save(d / f"mug-{i:02d}.jpg", quality=92)
    for rel in SELLER:
        src = shared_data / "seed_products" / rel
        (d / f"seller-{src.stem}.jpg").symlink_to(src)
    return d


@pytest.fixture(scope="module")
def killed_and_resumed(photos, tmp_path_factory):
    """Run, kill -9 once about half the SKUs are done, run again; return (out, first, second)."""
    out = tmp_path_factory.mktemp("batch") / "out"
    cmd = [sys.executable, "-m", "packshot", "batch", str(photos), "-o", str(out), "--workers", "2", *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _ok_count(out) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before half-way: " + proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # the workers die with their parent (PR_SET_PDEATHSIG)
    first = {p.parent.name: (p.stat().st_mtime_ns, json.loads(p.read_text())) for p in out.glob("*/sku.json")}
    assert 6 <= sum(r["status"] == "ok" for _, r in first.values()) < 12
    before = {p: p.stat().st_mtime_ns for sku in first for p in (out / sku).iterdir()}
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return out, first, before, second, cmd


def test_kill_and_restart_gives_the_full_set_once(killed_and_resumed):
    out, first, before, second, cmd = killed_and_resumed
    assert second.returncode == 0, second.stdout + second.stderr
    skus = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(skus) == 12
    for sku in skus:
        names = {p.name for p in (out / sku).iterdir()}
        assert names == SET, (sku, names)  # no duplicates, no temp files
        for name in SET - {"sku.json"}:
            with Image.open(out / sku / name) as im:
                im.load()  # whole files
                assert im.size == ((2000, 2000) if name == "main.png" else (512, 512))
    # the SKUs done before the kill were not made again: same files, untouched
    done_before = [s for s, (_, r) in first.items() if r["status"] == "ok"]
    for sku in done_before:
        for p in (out / sku).iterdir():
            assert p.stat().st_mtime_ns == before[p], p
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"skus": 12, "ok": 12, "failed": 0, "images": 36, "main_passed": 12}
    assert summary["this_run"]["skipped"] == len(done_before)
    assert summary["this_run"]["made"] == 12 - len(done_before)
    assert f"{12 - len(done_before)} made now, {len(done_before)} already done" in second.stdout
    # the main images pass Amazon's rules; every SKU has its check in the summary
    for rec in summary["skus"]:
        assert rec["check"]["passed"], rec["check"]
        assert rec["cutout"]["engine"]
    # a third run has nothing to do
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and "0 made now, 12 already done" in third.stdout


def test_report_renders_every_image_in_chromium(killed_and_resumed, tmp_path):
    from test_web import CHROMIUM, CHROMIUM_ARGS, _sync_playwright

    out = killed_and_resumed[0]
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    sync_playwright = _sync_playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert len(imgs) == 36
    assert all(c and w > 0 for c, w, _ in imgs), [a for c, w, a in imgs if not (c and w > 0)]
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    with Image.open(shot) as im:
        assert im.size[0] == 1280 and im.size[1] > 900


def test_bad_rows_fail_alone(photos, tmp_path, cli):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((photos / "mug-00.jpg").read_bytes()[:2500])
    csv = tmp_path / "catalog.csv"
    csv.write_text(
        "sku,photo,prompt,look,preset,hints\n"
        f"good-1,{photos / 'mug-00.jpg'},on white marble,,,\n"
        f"corrupt,{broken},,,,\n"
        f"bad-preset,{photos / 'mug-01.jpg'},,,temu,\n"
        f"good-2,{photos / 'mug-02.jpg'},,,ebay,box=40;point=x\n"
        f"good-3,{photos / 'mug-02.jpg'},,,ebay,\"box=60,40,420,340\"\n"
        f"good-3,{photos / 'mug-03.jpg'},,,,\n"
        f"no-look,{photos / 'mug-03.jpg'},,autumn-set,,\n"
        "missing,nowhere.jpg,,,,\n"
        f"../escape,{photos / 'mug-04.jpg'},,,,\n")
    out = tmp_path / "out"
    r = cli("batch", csv, "-o", out, "--size", "256x256", "--lifestyle", "1",
            env={"PACKSHOT_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 1, r.stdout + r.stderr
    summary = json.loads((out / "summary.json").read_text())
    by = {}
    for rec in summary["skus"]:
        by.setdefault(rec["sku"], []).append(rec)
    assert [x["status"] for x in by["good-1"]] == ["ok"]
    assert by["good-3"][0]["status"] == "ok" and by["good-3"][0]["preset"] == "ebay"
    reasons = {sku: recs[-1].get("reason", "") for sku, recs in by.items()}
    assert "broken.jpg" in reasons["corrupt"] and "truncated" in reasons["corrupt"]
    assert "unknown preset 'temu'" in reasons["bad-preset"]
    assert "box=40" in reasons["good-2"]
    assert "appears twice" in by["good-3"][1]["reason"]
    assert "unknown look 'autumn-set'" in reasons["no-look"]
    assert "nowhere.jpg" in reasons["missing"] and "no such file" in reasons["missing"]
    assert "'../escape'" in reasons["../escape"]
    assert summary["counts"]["ok"] == 2 and summary["counts"]["failed"] == 7
    assert not (tmp_path / "escape").exists()
    assert {p.name for p in (out / "good-1").iterdir()} == {"main.png", "lifestyle_01.png", "sku.json"}
    html = (out / "report.html").read_text()
    assert html.count("<img") == 4 and "unknown preset &#x27;temu&#x27;" in html
    # the first row's own prompt was used for its lifestyle image
    assert json.loads((out / "good-1" / "sku.json").read_text())["prompt"] == "on white marble"


def test_bad_input_exits_2_and_writes_nothing(tmp_path, cli):
    csv = tmp_path / "c.csv"
    csv.write_text("name,picture\nA,a.jpg\n")
    r = cli("batch", csv, "-o", tmp_path / "out")
    assert r.returncode == 2 and "needs the columns sku and photo" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
    r = cli("batch", tmp_path / "nothing", "-o", tmp_path / "out")
    assert r.returncode == 2 and "no such folder or CSV" in r.stderr
    r = cli("batch", csv, "-o", tmp_path / "out", "--marketplace", "temu")
    assert r.returncode == 2 and "unknown marketplace 'temu'" in r.stderr
    assert not (tmp_path / "out").exists()
    os.makedirs(tmp_path / "empty")
    r = cli("batch", tmp_path / "empty", "-o", tmp_path / "out")
    assert r.returncode == 2 and "no photos" in r.stderr
