"""The dApp in a real browser: Debian's headless Chromium driven by Playwright, against the
app served on loopback by ``streamlit run`` and a real anvil.

One journey: an organizer creates a campaign, two supporters pledge (a local account and a
browser wallet), a second tab sees the count change without a reload until the reveal, two
keepers run (``spartacus keeper run --once``), and a member opens the roster with the key
file the browser downloaded. The wallet is an injected EIP-1193 provider that forwards to
anvil's unlocked accounts (a mock only of MetaMask's UI, which cannot run here); it behaves
like MetaMask (no accounts until ``eth_requestAccounts``, ``on``/``removeListener``, and a
mode that rejects with code 4001).

Screenshots go to ``artifacts/`` (git-ignored). Without chromium or playwright the tests
skip, except in CI (``$CI`` set), where they fail.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spartacus.anvil import dev_key, free_port
from spartacus.chain import CampaignClient, ChainClient, FactoryClient, KeySigner

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
TIMEOUT_MS = 30_000


def _need(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _need("Debian's chromium is not installed: run tools/setup.sh --browser (or apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _need("the playwright package is not installed: pip install -e '.[dev]'")
    assert path is not None
    return path


# ─── The served app ──────────────────────────────────────────────────────────────────


@dataclass
class Live:
    url: str
    rpc: str
    factory: str
    client: ChainClient
    env: dict[str, str]
    tmp: Path

    def cli(self, *args: str) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "spartacus.cli", *args, "--json"],
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"spartacus {args[0]} failed: {proc.stderr}"
        return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def live(
    chromium: str, anvil_node: Any, anvil_client: ChainClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("dapp-browser")
    factory, _ = FactoryClient.deploy(anvil_client, KeySigner(dev_key(0)))
    env = os.environ | {"SPARTACUS_NETWORK": anvil_node.url, "SPARTACUS_FACTORY": factory.address}
    env.pop("SPARTACUS_ACCOUNT", None)
    w3 = anvil_client.w3
    probe = Live("", anvil_node.url, factory.address, anvil_client, env, tmp)
    keepers = []
    for i in range(3):
        out = probe.cli("keeper", "init", "--key-file", f"keeper{i}.key")
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": out["address"], "value": 10**18})
        keepers.append(out["public_key"])
    env |= {"SPARTACUS_KEEPERS": ",".join(keepers), "SPARTACUS_REFRESH": "1"}
    port = free_port()
    log = tmp / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", "dapp/app.py", "--server.headless=true",
               "--server.address=127.0.0.1", f"--server.port={port}", "--browser.gatherUsageStats=false",
               "--server.fileWatcherType=none"]  # fmt: skip
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"streamlit exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"streamlit did not answer: {log.read_text()}"
            time.sleep(0.1)
        yield Live(url, anvil_node.url, factory.address, anvil_client, env, tmp)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(chromium: str, live: Live) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        # Streamlit shows a "Page not found" dialog over the right page when a server's very
        # first session opens a page other than the default (streamlit#8860): open "/" first.
        warm = b.new_page()
        warm.goto(live.url)
        app_idle(warm)
        warm.close()
        yield b
        b.close()


# An EIP-1193 provider like MetaMask's, forwarding to anvil (whose accounts are unlocked).
# Permissions live in localStorage, per origin, as a real wallet's do.
WALLET = """
(() => {
  const cfg = %(cfg)s;
  let nextId = 0;
  const listeners = {};
  const connected = () => localStorage.getItem("fake-wallet-connected") === cfg.account;
  const fail = (code, message) => Object.assign(new Error(message), {code});
  async function rpc(method, params) {
    const response = await fetch(cfg.rpc, {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({jsonrpc: "2.0", id: ++nextId, method, params: params || []})});
    const body = await response.json();
    if (body.error) throw Object.assign(new Error(body.error.message), {code: body.error.code, data: body.error.data});
    return body.result;
  }
  window.ethereum = {
    isMetaMask: true,
    async request({method, params}) {
      switch (method) {
        case "eth_accounts": return connected() ? [cfg.account] : [];
        case "eth_requestAccounts":
          localStorage.setItem("fake-wallet-connected", cfg.account);
          (listeners.accountsChanged || []).forEach((f) => f([cfg.account]));
          return [cfg.account];
        case "eth_sendTransaction":
          if (!connected()) throw fail(4100, "The requested account has not been authorized by the user.");
          if (cfg.reject) throw fail(4001, "MetaMask Tx Signature: User denied transaction signature.");
          if (params[0].from.toLowerCase() !== cfg.account.toLowerCase()) throw fail(4100, "wrong from");
          return rpc(method, params);
        case "wallet_switchEthereumChain": return null;
        default: return rpc(method, params);
      }
    },
    on(event, fn) { (listeners[event] = listeners[event] || []).push(fn); return this; },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); return this; },
  };
})();
"""


def wallet_context(browser: Any, live: Live, account: str, *, reject: bool = False, **kwargs: Any) -> Any:
    context = browser.new_context(accept_downloads=True, **kwargs)
    cfg = json.dumps({"rpc": live.rpc, "account": account, "reject": reject})
    context.add_init_script(WALLET % {"cfg": cfg})
    return context


# ─── Page helpers: act, then wait for a stable element ───────────────────────────────


# Resolves once the app's script has not been running for 250 ms in a row: a widget's value
# reaches the server a moment after the event, so "not running" alone can be read too early.
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
    box.press("Tab")  # text inputs and areas send their value when they lose focus
    app_idle(page)


def pick(page: Any, box: Any, option: Any) -> None:
    """Opens a select box and clicks an option; again if a rerun closed the list meanwhile."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        box.locator("input").first.click()
        if not page.get_by_role("option").first.is_visible():
            page.keyboard.press("ArrowDown")  # a focused select opens its list on a key
        try:
            option.click(timeout=5_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            app_idle(page)
    page.keyboard.press("Escape")
    app_idle(page)


def choose(page: Any, label: str, option: str) -> None:
    from playwright.sync_api import expect

    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    pick(page, box, page.get_by_role("option", name=re.compile(re.escape(option))).first)
    expect(box.get_by_role("combobox")).to_have_value(re.compile(re.escape(option)))


def sign_with(page: Any, mode: str) -> None:
    page.get_by_test_id("stRadio").get_by_text(mode, exact=True).click()
    app_idle(page)


def save_key(page: Any, path: Path, label: str = "Save my member key file") -> None:
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text=label).click()
    download.value.save_as(path)
    path.chmod(0o600)  # as a careful user (and the CLI) keeps it
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stCheckbox").locator("input")).to_be_checked(timeout=TIMEOUT_MS)
    app_idle(page)


def see(page: Any, text: str | re.Pattern[str]) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text(text).first).to_be_visible(timeout=TIMEOUT_MS)


def shot(page: Any, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport grows to fit it."""
    size = page.viewport_size
    page.wait_for_function("!document.querySelector('[data-testid=stSkeleton]')", timeout=TIMEOUT_MS)
    tables = page.get_by_test_id("stDataFrame")
    for i in range(tables.count()):
        tables.nth(i).locator("canvas").first.wait_for(timeout=TIMEOUT_MS)
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    charts = page.get_by_test_id("stVegaLiteChart")
    for i in range(charts.count()):  # drawn (SVG marks), not an empty frame
        charts.nth(i).locator("svg.marks").wait_for(timeout=TIMEOUT_MS)
    app_idle(page)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size(size)


# ─── The journey ─────────────────────────────────────────────────────────────────────


def test_campaign_journey_in_a_real_browser(browser: Any, live: Live) -> None:
    from playwright.sync_api import expect

    keys = live.tmp
    olga_address = KeySigner(dev_key(1)).address
    organizer = wallet_context(browser, live, olga_address, viewport={"width": 1200, "height": 900})
    page = organizer.new_page()

    # 1. The organizer creates a campaign from a browser wallet, keepers picked from the list.
    goto(page, f"{live.url}/create")
    fill(page, "Title", "Night shift union drive")
    fill(page, "Purpose: one sentence", "Win a fair night-shift rota, together")
    fill(page, "Description", "We are many; alone, none of us can ask. Together we can.")
    fill(page, "Public plan of action", "When we are three, we meet and sign the letter together.")
    fill(page, "Threshold N: live pledges (yours included) that trigger the reveal", "3")
    fill(page, "Deadline", "+7d")
    for _ in range(3):
        pick(page, page.get_by_test_id("stMultiSelect"), page.get_by_role("option").first)
    fill(page, "Keeper threshold t: keepers needed to open a pledge", "2")
    fill(page, "Deposit per pledge (ETH)", "0.01")
    fill(page, "Your name (as the members will know you)", "Olga Organizer")
    fill(page, "Your e-mail (optional)", "olga@example.org")
    fill(page, "Instructions for the members", "Meet at the north gate, Monday 6:00. Bring the cards.")
    sign_with(page, "A browser wallet")
    page.get_by_role("button", name="Connect browser wallet").click()
    see(page, f"Wallet connected: {olga_address}")
    save_key(page, keys / "organizer.key")
    page.get_by_role("button", name="Create the campaign").click()
    see(page, "Campaign created at")
    campaign = re.search(r"0x[0-9a-fA-F]{40}", page.get_by_text("Campaign created at").first.inner_text()).group(0)
    see(page, f"{live.url}/?campaign={campaign}")  # the link to share, with this server's address
    shot(page, "dapp-create-done.png")
    c = CampaignClient(live.client, campaign)
    assert (c.status().count, c.status().deposit, c.status().keeper_count) == (1, 10**16, 3)
    assert c.status().creator == olga_address

    # 2. A second tab (dark theme) watches the campaign page; it is never reloaded.
    watcher_context = browser.new_context(color_scheme="dark", viewport={"width": 1200, "height": 900})
    watcher = watcher_context.new_page()
    goto(watcher, live.url)  # the campaigns list, then the campaign's own page
    card = watcher.get_by_test_id("stVerticalBlock").filter(has_text="Night shift union drive").last
    expect(card.get_by_text("1 of 3 live pledges")).to_be_visible(timeout=TIMEOUT_MS)
    expect(card.get_by_text(re.compile(r"open · 6 d 23 h left|open · 7 d 0 h left"))).to_be_visible()
    shot(watcher, "dapp-campaigns-dark.png")
    card.get_by_role("button", name="Open").click()
    expect(watcher).to_have_url(re.compile(re.escape(f"?campaign={campaign}")), timeout=TIMEOUT_MS)
    see(watcher, "1 of 3 live pledges")
    see(watcher, "Night shift union drive")
    see(watcher, "0.02 ETH")  # the price of faking the 2 missing pledges
    see(watcher, "2 of 3 keepers")
    watcher.evaluate("window.__sameDocument = true")

    # 3. Ana pledges with a local account (TEST::2), in a browser without a wallet.
    ana_context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = ana_context.new_page()
    goto(page, f"{live.url}/pledge?campaign={campaign}")
    see(page, "sealed by this app's server process")
    fill(page, "Your name (as the others will know you)", "Ana")
    fill(page, "E-mail (optional)", "ana@example.org")
    choose(page, "Account", "TEST::2")
    save_key(page, keys / "ana.key")
    page.get_by_role("button", name="Seal and pledge").click()
    see(page, "the live count is now 2 of 3")
    see(watcher, "2 of 3 live pledges")  # pushed by the page's own refresh, no reload

    # 4. Ben pledges from a browser wallet (anvil account 3, through the injected provider).
    ben_address = KeySigner(dev_key(3)).address
    ben_context = wallet_context(browser, live, ben_address, viewport={"width": 1200, "height": 900})
    ben = ben_context.new_page()
    goto(ben, f"{live.url}/pledge?campaign={campaign}")
    sign_with(ben, "A browser wallet")
    ben.get_by_role("button", name="Connect browser wallet").click()
    see(ben, f"Wallet connected: {ben_address}")
    fill(ben, "Your name (as the others will know you)", "Ben")
    fill(ben, "Other contact fields (optional), one per line as key=value", "signal=+41 79 333 33 33")
    save_key(ben, keys / "ben.key")
    ben.get_by_role("button", name="Seal and pledge").click()
    see(ben, "the live count is now 3 of 3")
    see(ben, "The threshold is reached: the campaign is revealed.")
    shot(ben, "dapp-pledge-wallet-done.png")
    assert c.pledges()[2].pledger == ben_address

    # 5. The watcher sees the reveal, still without a reload.
    see(watcher, "3 of 3 live pledges")
    see(watcher, "REVEALED")
    see(watcher, "Revealed at block")
    assert watcher.evaluate("window.__sameDocument") is True
    shot(watcher, "dapp-campaign-revealed-dark.png")

    # 6. Two keepers release (the real command), then Ana reads the roster with her key file.
    for i in (0, 1):
        assert live.cli("keeper", "run", "--key-file", f"keeper{i}.key", "--once")["released"] == {campaign: 3}
    goto(page, f"{live.url}/member?campaign={campaign}")
    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(str(keys / "ana.key"))
    see(page, "The roster: 3 members")
    see(page, "Meet at the north gate, Monday 6:00. Bring the cards.")
    table = page.get_by_test_id("stTable")
    for name in ("Olga Organizer", "ana@example.org", "+41 79 333 33 33"):
        expect(table.get_by_text(name, exact=True)).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["name"], r["email"]) for r in rows] == [
        ("Olga Organizer", "olga@example.org"),
        ("Ana", "ana@example.org"),
        ("Ben", ""),
    ]
    assert rows[2]["signal"] == "+41 79 333 33 33"
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="Download vCards").click()
    assert Path(download.value.path()).read_text().count("BEGIN:VCARD") == 3
    shot(page, "dapp-member-roster.png")
    # The downloaded key file is the CLI's format: the console command reads the same roster.
    roster = live.cli("roster", campaign, "--member-key-file", str(keys / "ben.key"))
    assert [m["name"] for m in roster["members"]] == ["Olga Organizer", "Ana", "Ben"]

    # 7. Phone width, dark theme: readable, nothing wider than the screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True)
    small = phone.new_page()
    goto(small, f"{live.url}/?campaign={campaign}")
    see(small, "3 of 3 live pledges")
    expect(small.get_by_text("What happens when you pledge")).to_be_visible()
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    shot(small, "dapp-campaign-phone-dark.png")
    goto(small, f"{live.url}/member?campaign={campaign}")
    small.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(str(keys / "organizer.key"))
    see(small, "The roster: 3 members")
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    shot(small, "dapp-member-phone-dark.png")
    light_phone = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="light", is_mobile=True)
    light = light_phone.new_page()
    goto(light, f"{live.url}/?campaign={campaign}")
    see(light, "3 of 3 live pledges")
    assert light.evaluate("document.documentElement.scrollWidth") <= 390
    shot(light, "dapp-campaign-phone-light.png")
    light.get_by_role("button", name="All campaigns").click()
    expect(light.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    assert "campaign=" not in light.url
    for context in (organizer, ana_context, watcher_context, ben_context, phone, light_phone):
        context.close()


def test_a_rejected_wallet_transaction_is_reported_and_nothing_is_sent(browser: Any, live: Live) -> None:
    factory = FactoryClient(live.client, live.factory)
    [created, *_] = sorted(factory.campaigns(), key=lambda e: e.block_number, reverse=True)
    campaign = created.campaign
    before = CampaignClient(live.client, campaign).status().count
    eve = KeySigner(dev_key(5)).address
    context = wallet_context(browser, live, eve, reject=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    goto(page, f"{live.url}/pledge?campaign={campaign}")
    sign_with(page, "A browser wallet")
    page.get_by_role("button", name="Connect browser wallet").click()
    see(page, f"Wallet connected: {eve}")
    fill(page, "Your name (as the others will know you)", "Eve")
    save_key(page, live.tmp / "eve.key")
    page.get_by_role("button", name="Seal and pledge").click()
    see(page, "You rejected the transaction in your wallet: nothing was sent.")
    shot(page, "dapp-wallet-rejected.png")
    assert CampaignClient(live.client, campaign).status().count == before
    assert CampaignClient(live.client, campaign).pledge_of(eve)[1] == "none"
    context.close()
