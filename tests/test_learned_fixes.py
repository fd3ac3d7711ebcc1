"""Issue 10 follow-up (H10b): what the learned cut-out broke or left visibly wrong, checked through
the real entry points with the REAL u2netp weights (pulled once per session, see test_learned).
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image
from test_learned import u2netp_dir  # noqa: F401  (session fixture: the real u2netp, pulled via the CLI)


# -- 1. a photo with no product: "no product found", exit 2, for auto and learned ---------------------
@pytest.mark.parametrize("engine", ["auto", "learned"])
@pytest.mark.parametrize("size,grey", [((200, 150), 240), ((400, 300), 236)])
def test_blank_photo_is_no_product_found(engine, size, grey, tmp_path, u2netp_dir):  # noqa: F811
    blank = tmp_path / "blank.png"
    Image.new("RGB", size, (grey,) * 3).save(blank)
    out = tmp_path / "c.png"
    r = run_cli("cutout", str(blank), "-o", str(out), "--engine", engine,
                env={"PACKSHOT_MODEL_DIR": str(u2netp_dir)})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no product found" in r.stderr.lower() and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
