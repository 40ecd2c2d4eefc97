"""Headless Chromium for UI tests: render a page (JavaScript included), return its DOM, save a screenshot.

`--virtual-time-budget` lets the page run its scripts and finish its network fetches before the
DOM is dumped and the screenshot taken, so a React app such as MLflow's UI is captured rendered,
without a DevTools client or any Python browser package.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium() -> str:
    """Debian's chromium binary; a missing one is a failed setup, not a reason to skip."""
    binary = shutil.which("chromium")
    if binary is None:
        raise RuntimeError("headless Chromium is not installed: run `apt-get install -y chromium` (make setup installs it when run as root)")
    return binary


def render(url: str, screenshot: Path, *, budget_ms: int = 15000, size: tuple[int, int] = (1600, 900),
           timeout_s: float = 90) -> str:
    """The page's DOM after `budget_ms` of (virtual) page time; its screenshot is written to `screenshot`."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:  # a fresh profile: no cached app state
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
             f"--virtual-time-budget={budget_ms}", f"--screenshot={screenshot}", "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout_s,
        )
    if done.returncode != 0 or not screenshot.is_file():
        raise RuntimeError(f"chromium failed on {url} (exit {done.returncode}): {done.stderr[-2000:]}")
    return done.stdout
