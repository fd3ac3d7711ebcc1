"""``python tests/planted_cli.py ARGS``: packshot's real CLI (``packshot.cli.main``) in its own
process, with the test-only ``planted`` background engine registered (tests/planted_engine.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import planted_engine  # noqa: E402

from packshot.cli import main  # noqa: E402

if __name__ == "__main__":
    planted_engine.register()
    sys.exit(main(sys.argv[1:]))
