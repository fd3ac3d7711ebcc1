"""Shared fixtures: the shared data folder, the plain-backdrop set, a CLI runner, synthetic photos."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/synth.py and friends

SHARED = Path(os.environ.get("PACKSHOT_SHARED", ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data is missing ({SHARED_DATA}): real-photo tests need it")
    return SHARED_DATA


@pytest.fixture(scope="session")
def backdrop_set(shared_data, tmp_path_factory) -> Path:
    """The plain-backdrop cut-out set built by ../shared/tools/make_backdrop_set.py (built once)."""
    tool = SHARED / "tools" / "make_backdrop_set.py"
    if not tool.exists():
        pytest.skip(f"{tool} is missing")
    out = Path(os.environ.get("PACKSHOT_BACKDROP_SET", "")) if os.environ.get("PACKSHOT_BACKDROP_SET") \
        else tmp_path_factory.mktemp("backdrop_set")
    if not list(out.glob("*.alpha.png")):
        subprocess.run([sys.executable, str(tool), str(shared_data / "matting"), str(out)], check=True,
                       capture_output=True)
    return out


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """Run ``python -m packshot ARGS`` as a separate process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "packshot", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
