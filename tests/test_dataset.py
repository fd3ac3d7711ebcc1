"""Training-set export from a real service's store: the CLI as a process, 🤗 datasets loading it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from services import Server, create_product, photo_bytes, wait_job

KEY_A, KEY_B = "dataset-key-alpha", "dataset-key-bravo"
JOB = {"n": 3, "size": "320x256", "seed": 21, "prompt": "on a white marble table, pale teal wall, soft light"}


@pytest.fixture(scope="module")
def store_with_ratings(tmp_path_factory):
    """A served store: key A has two products (rated, saved and unrated results), key B one."""
    data = tmp_path_factory.mktemp("dataset") / "data"
    srv = Server(data, api_keys=(KEY_A, KEY_B), env={"PACKSHOT_RATE_LIMIT_PER_MINUTE": 100000})
    srv.start()
    picked: dict[str, dict] = {}
    try:
        with srv.client(KEY_A) as a, srv.client(KEY_B) as b:
            pa1 = create_product(a, "red mug", [photo_bytes(color=(180, 40, 40))])
            pa2 = create_product(a, "blue mug", [photo_bytes(color=(40, 70, 160), seed=1)])
            pb = create_product(b, "green mug", [photo_bytes(color=(40, 150, 60), seed=2)])
            jobs = {}
            for client, p in ((a, pa1), (a, pa2), (b, pb)):
                j = client.post("/api/v1/jobs", json={"product_id": p["id"], **JOB})
                assert j.status_code == 202, j.text
                jobs[p["id"]] = wait_job(client, j.json()["id"])
                assert jobs[p["id"]]["status"] == "succeeded", jobs[p["id"]]
            r1, r2, r3 = jobs[pa1["id"]]["result_ids"]
            assert a.put(f"/api/v1/results/{r1}/rating", json={"stars": 5}).status_code == 200
            assert a.put(f"/api/v1/results/{r2}/rating", json={"stars": 2}).status_code == 200   # too low
            s1, s2, _ = jobs[pa2["id"]]["result_ids"]
            assert a.put(f"/api/v1/results/{s1}/saved", json={"saved": True}).status_code == 200  # saved, unrated
            assert a.put(f"/api/v1/results/{s2}/rating", json={"stars": 4}).status_code == 200
            for rid in jobs[pb["id"]]["result_ids"]:                                          # B rates all 5
                assert b.put(f"/api/v1/results/{rid}/rating", json={"stars": 5}).status_code == 200
            picked = {"a": {r1, s1, s2}, "b": set(jobs[pb["id"]]["result_ids"]), "pa1": pa1["id"], "pa2": pa2["id"],
                      "pb": pb["id"], "colours": {pa1["id"]: (180, 40, 40), pa2["id"]: (40, 70, 160)}}
        yield srv, picked
    finally:
        srv.stop()


def test_export_loads_with_datasets_and_masks_align(store_with_ratings, tmp_path, cli):
    import datasets

    srv, picked = store_with_ratings
    out = tmp_path / "train"
    r = cli("dataset", "export", out, "--api-key", KEY_A, "--data-dir", srv.data_dir, "--min-rating", "4")
    assert r.returncode == 0, r.stderr
    assert "wrote 3 rows" in r.stdout
    lines = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert {x["result_id"] for x in lines} == picked["a"]          # key B's products never exported
    assert picked["b"].isdisjoint({p.name for p in out.iterdir()})
    for x in lines:
        folder = out / x["result_id"]
        assert sorted(p.name for p in folder.iterdir()) == ["caption.json", "image.png", "mask.png"]
        cap = json.loads((folder / "caption.json").read_text())
        assert cap["seed"] == x["seed"] and cap["rating"] == x["rating"] and cap["prompt"] == JOB["prompt"]
        assert cap["fields"]["surface"] == "on a white marble surface" and "teal" in cap["fields"]["background"]
    ds = datasets.load_dataset("imagefolder", data_dir=str(out), split="train")
    assert ds.num_rows == 3
    assert {"image", "mask", "text", "surface", "surroundings", "background", "lighting", "mood", "rating",
            "seed"} <= set(ds.column_names)
    for row in ds:
        img = np.asarray(row["image"].convert("RGB")).astype(int)
        mask = np.asarray(row["mask"])
        assert mask.shape == img.shape[:2]
        inside, outside = mask >= 250, mask <= 5
        assert inside.mean() > 0.05 and outside.mean() > 0.3
        want = np.array(picked["colours"][row["product_id"]])
        # the product's own colour (shaded: 0.65..1.0 of it) fills the mask; the scene outside differs
        ratio = img[inside].mean(axis=0) / want
        assert np.all((ratio > 0.6) & (ratio < 1.1)), (row["product_id"], img[inside].mean(axis=0))
        near = np.abs(img - img[inside].mean(axis=0)).sum(-1) < 60
        assert near[outside].mean() < 0.05 and near[inside].mean() > 0.9
    assert sorted(r for r in ds["rating"] if r is not None) == [4, 5] and None in ds["rating"]


def test_export_filters_and_errors(store_with_ratings, tmp_path, cli):
    srv, picked = store_with_ratings
    only = tmp_path / "only"
    r = cli("dataset", "export", only, "--api-key", KEY_A, "--data-dir", srv.data_dir, "--products", picked["pa2"],
            "--min-rating", "5")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (only / "metadata.jsonl").read_text().splitlines()]
    assert [x["product_id"] for x in rows] == [picked["pa2"]] and rows[0]["saved"] is True  # the saved one
    # another key's product: refused without saying whose it is; nothing written
    bad = cli("dataset", "export", tmp_path / "bad", "--api-key", KEY_A, "--data-dir", srv.data_dir,
              "--products", picked["pb"])
    assert bad.returncode == 2 and bad.stderr.strip().startswith("packshot: error: no product")
    assert not (tmp_path / "bad").exists()
    assert len(bad.stderr.strip().splitlines()) == 1
    # no key: a keyed server's rows are not exported
    none = cli("dataset", "export", tmp_path / "none", "--data-dir", srv.data_dir)
    assert none.returncode == 0 and "wrote 0 rows" in none.stdout
    again = cli("dataset", "export", only, "--api-key", KEY_A, "--data-dir", srv.data_dir)
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    rating = cli("dataset", "export", tmp_path / "r", "--data-dir", srv.data_dir, "--min-rating", "9")
    assert rating.returncode == 2 and "min rating must be 1..5, got 9" in rating.stderr
