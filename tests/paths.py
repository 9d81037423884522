"""Where the tests find the repository's own files, wherever in tests/ a module sits."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
#: GSA's ICAM test card set, beside the clone (never copied into it).
ICAM_CARDS = ROOT.parent / "shared" / "icam-cards"
ICAM_MISSING = (
    None
    if (ICAM_CARDS / "cards").is_dir()
    else f"the ICAM test card set is not at {ICAM_CARDS} (shared/ beside the clone)"
)
