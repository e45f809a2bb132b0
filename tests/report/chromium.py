"""Debian's Chromium for the report tests: where it is, how it starts, why it cannot.

Playwright does not download a browser here: the tests drive the system's
``/usr/bin/chromium``, which ``make browser`` (a dependency of ``make test``)
installs. Without it a browser test fails, naming what is missing, rather
than skipping. The flags keep Chromium off the network it would otherwise
call at start-up (this machine's closed network refuses it, many times over).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}


def missing_tools() -> str | None:
    """Why the browser cannot start, or None. The test fails (not skips) with this message."""
    if not CHROMIUM.is_file():
        return (
            f"{CHROMIUM} is missing: run `make browser` to install Debian's chromium"
            " (`make test` does it for you)."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: run `make setup` (pip install -e '.[dev]')."
    return None
