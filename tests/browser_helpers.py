"""Helpers shared by the tests that drive the dApp in a real browser (Debian's headless Chromium
through Playwright): finding Chromium, launching it, and acting on Streamlit's pages (act, then
wait for a stable element, never for a fixed time).

Used by ``test_dapp_browser.py``, ``test_dapp_ux.py`` and ``test_relay_stack.py`` (the dApp of
``make run``). Without chromium or playwright the callers skip, except in CI (``$CI`` set), where
they fail.
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


def _need(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's Chromium, once playwright and the dApp's browser module are there (else skip)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _need("Debian's chromium is not installed: run tools/setup.sh --browser (or apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _need("the playwright package is not installed: pip install -e '.[dev]'")
    if not (ROOT / "dapp" / "component" / "build" / "spartacus.js").exists():
        _need("the dApp's browser module is not built: run make setup")
    assert path is not None
    return path


@contextlib.contextmanager
def launched(chromium: str, dapp_url: str) -> Iterator[Any]:
    """Headless Chromium, with the dApp at ``dapp_url`` opened once."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        # Streamlit shows a "Page not found" dialog when a server's very first session opens a
        # page other than the default (streamlit#8860): open "/" first.
        warm = b.new_page()
        warm.goto(dapp_url)
        app_idle(warm)
        warm.close()
        try:
            yield b
        finally:
            b.close()


# ─── Page helpers: act, then wait for a stable element ───────────────────────────────

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


def fill(page: Any, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")  # Streamlit inputs send their value when they lose focus
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


def save_key(page: Any, frame: Any, path: Path) -> bytes:
    with page.expect_download() as download:
        frame.get_by_role("button", name="Save my member key file").click()
    download.value.save_as(path)
    path.chmod(0o600)  # as a careful user (and the CLI) keeps it
    from playwright.sync_api import expect

    expect(frame.locator('input[name="key-saved"]')).to_be_checked()
    return path.read_bytes()


def type_record(frame: Any, name: str, email: str = "", contacts: str = "", message: str = "") -> None:
    frame.locator('input[name="name"]').fill(name)
    frame.locator('input[name="email"]').fill(email)
    frame.locator('textarea[name="contacts"]').fill(contacts)
    if message:
        frame.locator('textarea[name="message"]').fill(message)


# ─── The served app ──────────────────────────────────────────────────────────────────


def start_streamlit(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``streamlit run dapp/app.py`` on a free loopback port, once its health check answers ok."""
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


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
