"""Real parts the dApp's browser tests share: Debian's Chromium driven by Playwright, the app served
by ``streamlit run`` on loopback, and the few ways a test waits for a page (``goto``, ``see``,
``component``: on conditions, with a timeout, never a sleep).

Without chromium or playwright the tests skip, except in CI (``$CI`` set), where they fail.
Screenshots go to ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spartacus.anvil import free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
TIMEOUT_MS = 30_000
COMPONENT = 'iframe[src*="/component/_ui.spartacus/"]'


def need(reason: str) -> None:
    """Skips the test (fails it in CI): a part it needs is missing."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's chromium, once playwright and the dApp's browser module are there too."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        need("Debian's chromium is not installed: run tools/setup.sh --browser (or apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        need("the playwright package is not installed: pip install -e '.[dev]'")
    if not (ROOT / "dapp" / "component" / "build" / "spartacus.js").exists():
        need("the dApp's browser module is not built: run make setup")
    assert path is not None
    return path


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_streamlit(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``streamlit run dapp/app.py`` on a free loopback port; returns once its health check is ok."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "dapp/app.py", "--server.headless=true",
               "--server.address=127.0.0.1", f"--server.port={port}", "--browser.gatherUsageStats=false",
               "--server.fileWatcherType=none"]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, f"streamlit exited: {log.read_text()}"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.read() == b"ok":
                    return server, url
        except OSError:
            pass
        assert time.monotonic() < deadline, f"streamlit did not answer: {log.read_text()}"
        time.sleep(0.1)


@contextlib.contextmanager
def launch(chromium: str, url: str) -> Iterator[Any]:
    """Headless Chromium through Playwright, warmed on the app at ``url``."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        # Streamlit shows a "Page not found" dialog when a server's very first session opens a
        # page other than the default (streamlit#8860): open "/" first.
        warm = b.new_page()
        warm.goto(url)
        app_idle(warm)
        warm.close()
        try:
            yield b
        finally:
            b.close()


# Resolves once the app's script has not been running for 250 ms in a row.
SETTLED = """() => new Promise((resolve) => {
  const app = document.querySelector('[data-testid="stApp"]');
  let timer = null;
  const check = () => {
    clearTimeout(timer);
    if (app.getAttribute("data-test-script-state") !== "running") {
      timer = setTimeout(() => { observer.disconnect(); resolve(true); }, 250);
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(app, {attributes: true, attributeFilter: ["data-test-script-state"]});
  check();
})"""


def app_idle(page: Any) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=TIMEOUT_MS)
    page.evaluate(SETTLED)


def goto(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=TIMEOUT_MS)
    app_idle(page)


def see(where: Any, text: str | re.Pattern[str]) -> None:
    from playwright.sync_api import expect

    try:
        expect(where.get_by_text(text).first).to_be_visible(timeout=TIMEOUT_MS)
    except AssertionError:
        page = where if hasattr(where, "screenshot") else None
        if page is not None:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dapp-failure.png"), full_page=True)
            statuses = [f.evaluate("document.body.innerText") for f in page.frames if "/component/" in f.url]
            raise AssertionError(
                f"{text!r} not visible; page: {page.inner_text('body')[-1500:]!r}; "
                f"components: {[s[-800:] for s in statuses]!r}"
            ) from None
        raise


def component(page: Any) -> Any:
    """The browser component of the page (its frame, loaded)."""
    frame = page.frame_locator(COMPONENT)
    frame.locator("input, button").first.wait_for(timeout=TIMEOUT_MS)
    return frame
