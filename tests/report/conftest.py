"""One Chromium per test worker, shared by every browser test of the report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, missing_tools


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium, or None when it cannot start (each test then fails with the reason)."""
    if missing_tools() is not None:
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
