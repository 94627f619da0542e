"""Where the tests find the repository and the shared example images (never copied into the repository)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data/examples beside the checkout (CI clones with ../shared next to it).
EXAMPLES = REPO.parent / "shared" / "data" / "examples"
