"""Debian's Chromium, headless, driven by Playwright, for the page tests (live view, report).

Playwright's own browser download is never used (the machine has no route to it): setup
installs the `chromium` package and Playwright launches that executable.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

# Without the background-networking flags Chromium keeps dialling Google's hosts, which a closed
# network refuses; --no-sandbox because CI runs the tests as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The system Chromium; its absence is a failed setup, not a skipped test."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("chromium is not installed: run `make setup` (it installs Debian's chromium)")


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A fresh headless Chromium (Playwright gives it a new, empty profile), closed on exit."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
