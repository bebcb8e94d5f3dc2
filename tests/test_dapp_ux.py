# ruff: noqa: F811  (the fixtures `browser` and `chromium` are imported from test_dapp_browser)
"""The dApp as a newcomer and a crypto-native supporter meet it (issue 13), in a real browser:
Debian's headless Chromium driven by Playwright, against ``streamlit run`` on loopback, a real
anvil and the real relayer (``spartacus relayer run``).

Part one, what a new user hit: every address that is not a campaign gets one line and a way
back to the list; threshold 0 is out of range, not "empty"; the key-saved box is no trap and a
disabled button says why on the page; a key of another campaign is refused once and dropped;
the share link is there at once after Create; pledges count from one; "revealed" is said once;
the campaign page's call to action is a button labelled "Pledge"; the sealing notice says what
it means in words; the local account picker does not default to the deployer.

Part two, what a crypto-native supporter expects, with injected EIP-1193 wallets announced
through EIP-6963 (a mock only of a wallet's UI, which cannot run here; every call goes to
anvil): a wallet picker; an offer to add the network when the wallet does not know it
(``wallet_addEthereumChain`` with the configured name, RPC URL, currency and explorer); chains
by name; explorer links; a fee estimate shown before the wallet signs; a pending state
(submitted, then mined) with the transaction's link; a share button with a QR code that decodes
to the campaign's link.

The stack of this module is configured as a network other than the defaults:
``SPARTACUS_CHAIN_NAME``, ``SPARTACUS_RPC_PUBLIC_URL``, ``SPARTACUS_EXPLORER_URL`` and the
currency are set (the journey of ``test_dapp_browser.py`` runs without them: no explorer links).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import ROOT, TIMEOUT_MS, app_idle, component, goto, save_key, see, type_record
from test_dapp_browser import (  # noqa: F401  (the fixtures chromium and browser)
    ICON,
    Live,
    Traffic,
    a_wallet,
    browser,
    chromium,
    cli_campaign,
    component_frame,
    connect_wallet,
    send_with,
    serve_stack,
    wallet_context,
)

from spartacus.anvil import dev_key
from spartacus.chain import CampaignClient, KeySigner
from spartacus.keys import KIND_MEMBER, KeyPair, key_file_bytes, load_key_file

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

CHAIN_NAME = "Anvil Test Chain"
EXPLORER = "https://explorer.example"
CURRENCY = {"name": "Test Ether", "symbol": "TETH", "decimals": 18}
PROPERTY_CODE = re.compile(r"\bP[1-9]\b")
EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]+(Error|Exception)\b|Traceback")


@pytest.fixture(scope="module")
def live(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    env = {
        "SPARTACUS_CHAIN_NAME": CHAIN_NAME,
        "SPARTACUS_RPC_PUBLIC_URL": "{rpc}",
        "SPARTACUS_EXPLORER_URL": EXPLORER + "/",
        "SPARTACUS_CURRENCY_NAME": CURRENCY["name"],
        "SPARTACUS_CURRENCY_SYMBOL": CURRENCY["symbol"],
    }
    with serve_stack(tmp_path_factory.mktemp("dapp-ux"), env) as stack:
        yield stack


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def main_text(page: Any) -> str:
    return str(page.inner_text('[data-testid="stMain"]'))


def alerts(page: Any) -> list[str]:
    """The texts of the page's alerts (error, warning, info, success), without their icons."""
    box = page.locator('[data-testid="stMain"] [data-testid="stAlert"] [data-testid="stMarkdownContainer"]')
    return [t.strip() for t in box.all_inner_texts()]


def frame_text(page: Any) -> str:
    return str(component_frame(page).evaluate("document.body.innerText"))


def open_page(page: Any, url: str) -> None:
    """Like ``goto``, for pages that may have no title (an address that is not a campaign)."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stMainBlockContainer"]', timeout=TIMEOUT_MS)
    app_idle(page)


def mined(live: Live) -> None:
    live.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


# ─── Part one: what a new user hit ───────────────────────────────────────────────────


def test_addresses_that_are_not_campaigns_get_one_line_and_a_way_back(page: Any, live: Live) -> None:
    """The factory's address (printed in every footer), the forwarder's, an address with no code and
    garbage text: on the campaign page and on the pages that take a campaign, one line that says what
    the address is (or is not), nothing of Python, and a button back to the list."""
    empty = "0x000000000000000000000000000000000000dEaD"
    cases = [
        ("", live.factory, "is this dApp's factory, not a campaign"),
        ("pledge", live.factory, "is this dApp's factory, not a campaign"),
        ("", live.forwarder, "is this deployment's forwarder"),
        ("member", live.forwarder, "is this deployment's forwarder"),
        ("", live.relay_service.address, "There is no contract at"),
        ("withdraw", empty, "There is no contract at"),
        ("", "garbage", "'garbage' is not an address"),
        ("pledge", "0x1234", "'0x1234' is not an address"),
    ]
    goto(page, live.url)
    for path, address, says in cases:
        open_page(page, f"{live.url}/{path}?campaign={address}")
        shown = alerts(page)
        assert len(shown) == 1, (path, address, shown)
        [line] = shown
        assert says in line and "\n" not in line, (path, address, line)
        assert not EXCEPTION_NAME.search(line) and "spartacus campaigns" not in line, line
        if address.startswith("0x") and len(address) == 42:
            assert line.count(address) == 1, line  # said once
        assert "Traceback" not in main_text(page)
        page.get_by_role("button", name="All campaigns").click()
        see(page, "Open a campaign by its address")  # the list
        assert "campaign=" not in page.url


def test_threshold_zero_is_out_of_range_not_empty(page: Any, live: Live) -> None:
    goto(page, f"{live.url}/create")
    from test_dapp_browser import fill

    fill(page, "Title", "Zero")
    fill(page, "Purpose: one sentence", "A threshold of nobody")
    fill(page, "Threshold N: live pledges (yours included) that trigger the reveal", "0")
    see(page, "Threshold N: 0: it must be 1 to 100,000 live pledges (yours included)")
    assert "Threshold N is empty" not in main_text(page)
    fill(page, "Threshold N: live pledges (yours included) that trigger the reveal", "100001")
    see(page, "Threshold N: 100001: it must be 1 to 100,000 live pledges (yours included)")


def test_the_key_saved_box_is_no_trap_and_a_disabled_button_says_why_on_the_page(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    campaign = cli_campaign(live, "trap")
    goto(page, f"{live.url}/pledge?campaign={campaign}")
    frame = component(page)
    seal = frame.get_by_role("button", name="Seal and pledge")
    send_with(frame, "A browser wallet")
    expect(seal).to_be_disabled()
    expect(frame.get_by_test_id("why-disabled")).to_have_text(re.compile("connect a wallet"))  # no wallet here
    send_with(frame, "No wallet: send through the relayer")
    expect(seal).to_be_disabled()
    why = frame.get_by_test_id("why-disabled")
    expect(why).to_have_text(re.compile("save your member key file first"))
    expect(why).to_be_visible()
    type_record(frame, "Tess")
    save_key(page, frame, live.tmp / "tess.key")
    expect(seal).to_be_enabled()
    expect(why).to_be_hidden()
    # The label invites a click: it must not untick the box and lock the button again.
    box = frame.get_by_text("I have saved my member key file").bounding_box()
    page.mouse.click(box["x"] + 10, box["y"] + box["height"] / 2)  # a person's click, wherever the box is
    expect(frame.locator('input[name="key-saved"]')).to_be_checked()
    expect(seal).to_be_enabled()


def test_a_key_of_another_campaign_is_refused_once_and_dropped(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    campaign = cli_campaign(live, "onekey")
    other = cli_campaign(live, "otherkey")
    live.cli(
        "pledge",
        campaign,
        "--name",
        "Uma",
        "--member-key-file",
        "uma.key",
        "--relayer",
        live.relayer,
        "--network",
        live.rpc,
    )  # fmt: skip  (walletless: the pledger is the member key's address)
    goto(page, f"{live.url}/withdraw?campaign={campaign}")
    frame = component(page)
    send_with(frame, "No wallet: send through the relayer")
    key_input = frame.locator('input[name="member-key-file"]')
    key_input.set_input_files(str(live.tmp / "uma.key"))
    see(frame, re.compile(r"pledge #2, live"))
    key_input.set_input_files(str(live.tmp / "otherkey.key"))  # the organizer's key of another campaign
    see(frame, "a member key serves one campaign only")
    assert frame_text(page).count("a member key serves one campaign only") == 1
    assert "otherkey.key is the member key of campaign " + other in frame_text(page)  # the file's name as it is
    expect(frame.get_by_text("Signing address")).to_have_count(0)  # the earlier key is dropped, not used
    expect(frame.get_by_role("button", name="Withdraw my pledge")).to_be_disabled()

    # The member area, after the reveal, with a key of this campaign that made no pledge: said once.
    revealed = cli_campaign(live, "notmine", threshold=2)
    live.cli("pledge", revealed, "--name", "Vic", "--member-key-file", "vic.key", "--account", "TEST::6",
             "--network", live.rpc)  # fmt: skip
    for i in (0, 1):
        live.cli("keeper", "run", "--key-file", f"keeper{i}.key", "--once")
    stranger = live.tmp / "nobody.key"
    stranger.write_bytes(key_file_bytes(KeyPair.generate(), KIND_MEMBER, campaign=revealed, chain_id=31337))
    goto(page, f"{live.url}/member?campaign={revealed}")
    frame = component(page)
    for _ in range(2):
        frame.locator('input[name="member-key-file"]').set_input_files(str(stranger))
        see(frame, "This key is not a member of the campaign")
        assert frame_text(page).count("not a member of the campaign") == 1, frame_text(page)


def test_the_share_link_is_there_at_once_after_create(page: Any, live: Live) -> None:
    """Streamlit loads some elements' code lazily: a code block waits for its syntax highlighter (the
    empty boxes a newcomer saw for seconds). That script is held while the campaign is created:
    the link must not wait for it."""
    from test_dapp_browser import fill

    goto(page, f"{live.url}/create")
    fill(page, "Title", "Share at once")
    fill(page, "Purpose: one sentence", "Shared as soon as it exists")
    fill(page, "Threshold N: live pledges (yours included) that trigger the reveal", "3")
    fill(page, "Keeper public keys to add, one per line", "\n".join(live.keeper_keys))
    fill(page, "Keeper threshold t: keepers needed to open a pledge", "2")
    frame = component(page)
    send_with(frame, "No wallet: send through the relayer")
    save_key(page, frame, live.tmp / "share-organizer.key")
    type_record(frame, "Sam")
    frame.locator('textarea[name="instructions"]').fill("Share it.")
    held: list[Any] = []
    lazy = re.compile(r"/static/js/StreamlitSyntaxHighlighter\.[^/]*\.js")
    page.route(lazy, lambda route: held.append(route))
    try:
        frame.get_by_role("button", name="Create the campaign").click()
        see(page, "Campaign created at")
        key = load_key_file(live.tmp / "share-organizer.key", KIND_MEMBER)
        link = f"{live.url}/?campaign={key.campaign}"
        page.get_by_test_id("stMain").get_by_text(link, exact=True).first.wait_for(timeout=5000)
        assert "pledge #1" in main_text(page)  # the organizer's record: the first pledge
    finally:
        page.unroute(lazy)
        for route in held:
            route.continue_()


def test_pledges_count_from_one_and_revealed_is_said_once(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    campaign = cli_campaign(live, "counting", threshold=2)  # the organizer's record is pledge #1
    goto(page, f"{live.url}/pledge?campaign={campaign}")
    frame = component(page)
    send_with(frame, "No wallet: send through the relayer")
    type_record(frame, "Wes", "wes@example.org")
    save_key(page, frame, live.tmp / "wes.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(page, "Pledged: pledge #2, the live count is now 2 of 2")
    goto(page, f"{live.url}/withdraw?campaign={campaign}")
    frame = component(page)
    send_with(frame, "No wallet: send through the relayer")
    frame.locator('input[name="member-key-file"]').set_input_files(str(live.tmp / "wes.key"))
    see(frame, re.compile(r"pledge #2, live"))
    for i in (0, 1):
        live.cli("keeper", "run", "--key-file", f"keeper{i}.key", "--once")
    goto(page, f"{live.url}/member?campaign={campaign}")
    frame = component(page)
    frame.locator('input[name="member-key-file"]').set_input_files(str(live.tmp / "wes.key"))
    see(frame, "Your key belongs to pledge #2.")
    rows = frame.get_by_test_id("roster").locator("tbody tr")
    expect(rows).to_have_count(2)
    assert [r.locator("td").first.inner_text() for r in rows.all()] == ["1", "2"]
    # The list of campaigns says "revealed" once per campaign.
    goto(page, live.url)
    title = page.locator("strong", has_text=re.compile("^counting$"))
    card = (
        page.get_by_test_id("stVerticalBlock").filter(has=title).filter(has_not=page.get_by_test_id("stVerticalBlock"))
    )
    expect(card).to_have_count(1)
    assert card.inner_text().count("revealed") == 1, card.inner_text()


def test_the_campaign_page_calls_to_action_with_a_pledge_button(page: Any, live: Live) -> None:
    campaign = cli_campaign(live, "button")
    goto(page, f"{live.url}/?campaign={campaign}")
    button = page.get_by_test_id("stMain").get_by_role("button", name="Pledge", exact=True)
    button.wait_for(timeout=TIMEOUT_MS)
    button.click()
    page.wait_for_url(re.compile(r"/pledge\?campaign=" + campaign), timeout=TIMEOUT_MS)
    component(page).get_by_role("button", name="Seal and pledge").wait_for(timeout=TIMEOUT_MS)


# Collects every text the component's status line shows (a notice can last a few milliseconds),
# in the top page, which outlives the component.
WATCH_STATUS = """() => {
  const seen = window.parent.__statuses = [];
  const note = () => document.querySelectorAll('[role=status]').forEach((el) => {
    if (el.textContent && seen[seen.length - 1] !== el.textContent) seen.push(el.textContent);
  });
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_the_sealing_notice_says_what_it_means_and_local_accounts_skip_the_deployer(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    campaign = cli_campaign(live, "notice")
    goto(page, f"{live.url}/pledge?campaign={campaign}")
    frame = component(page)
    send_with(frame, "A local account of the machine that runs this dApp")
    picker = frame.locator('select[name="account"]')
    deployer = KeySigner(dev_key(0)).address
    assert picker.input_value() != "TEST::0", "the picker defaults to the deployer"
    expect(picker.locator("option:checked")).not_to_contain_text(deployer)
    default = picker.input_value()
    type_record(frame, "Xan")
    save_key(page, frame, live.tmp / "xan.key")
    component_frame(page).evaluate(WATCH_STATUS)
    frame.get_by_role("button", name="Seal and pledge").click()
    see(page, "Pledged: pledge #2")
    statuses = page.evaluate("window.__statuses")
    sealing = [s for s in statuses if "Sealing" in s]
    assert sealing and all("in this browser" in s and "encrypted" in s for s in sealing), statuses
    assert not [s for s in statuses if PROPERTY_CODE.search(s)], statuses
    assert not PROPERTY_CODE.search(main_text(page))
    index = int(default.split("::")[1])
    assert CampaignClient(live.client, campaign).pledge_of(KeySigner(dev_key(index)).address)[1] == "live"


# ─── Part two: wallets and transactions as in the dApps supporters know ──────────────


def test_a_wallet_picker_offers_to_add_the_network_and_names_chains(browser: Any, live: Live) -> None:
    """Two wallets announced: one refuses the connection (4001), one does not know the chain
    (it is on Ethereum and answers 4902 to a switch): the page names both chains and offers to
    add this one, with the configured name, RPC URL, currency and explorer."""
    from playwright.sync_api import expect

    campaign = cli_campaign(live, "picker")
    account = KeySigner(dev_key(7)).address
    wallets = [
        a_wallet(account, chainKnown=False),
        {
            "name": "Careful Wallet",
            "rdns": "org.example.careful",
            "account": account,
            "rejectConnect": True,
            "icon": ICON,
        },
    ]
    context = wallet_context(browser, live, account, Traffic(live.url), wallets=wallets)
    page = context.new_page()
    try:
        goto(page, f"{live.url}/pledge?campaign={campaign}")
        see(page, f"{CHAIN_NAME} (chain 31337)")  # the footer names the chain
        frame = component(page)
        send_with(frame, "A browser wallet")
        see(frame, "2 wallets found in this browser: choose one")
        for name in ("Test Wallet", "Careful Wallet"):
            button = frame.get_by_role("button", name=f"Connect {name}")
            expect(button.locator("img")).to_have_count(1)  # the wallet's own icon (EIP-6963)
        frame.get_by_role("button", name="Connect Careful Wallet").click()
        see(frame, "You rejected the request in your wallet: nothing was sent.")
        frame.get_by_role("button", name="Connect Test Wallet").click()
        see(frame, f"Wallet connected: {account}")
        see(frame, f"Test Wallet is on Ethereum (chain 1); this campaign is on {CHAIN_NAME} (chain 31337)")
        expect(frame.get_by_role("button", name="Seal and pledge")).to_be_disabled()
        expect(frame.get_by_test_id("why-disabled")).to_have_text(re.compile(f"switch the wallet to {CHAIN_NAME}"))
        frame.get_by_role("button", name=f"Switch Test Wallet to {CHAIN_NAME}").click()
        see(frame, f"Test Wallet does not know {CHAIN_NAME} yet")
        frame.get_by_role("button", name=f"Add {CHAIN_NAME} to Test Wallet").click()
        see(frame, f"Test Wallet is on {CHAIN_NAME}.")
        calls = component_frame(page).evaluate("window.__walletCalls")
        [added] = [c["params"][0] for c in calls if c["method"] == "wallet_addEthereumChain"]
        assert added == {
            "chainId": "0x7a69",
            "chainName": CHAIN_NAME,
            "rpcUrls": [live.rpc],
            "nativeCurrency": CURRENCY,
            "blockExplorerUrls": [EXPLORER],
        }
        assert all(c["wallet"] == "Test Wallet" for c in calls if c["method"] != "eth_requestAccounts")
        type_record(frame, "Yan")
        save_key(page, frame, live.tmp / "yan.key")
        expect(frame.get_by_role("button", name="Seal and pledge")).to_be_enabled()
    finally:
        context.close()


def test_a_wallet_pledge_shows_its_fee_before_signing_then_submitted_then_mined(browser: Any, live: Live) -> None:
    """The fee estimate (gas × gas price, in the chain's currency) is on the page when the wallet is
    asked to sign; then the transaction is submitted (its explorer link shown) and not yet mined
    (anvil mines on request here), then mined."""
    campaign = cli_campaign(live, "pending")
    account = KeySigner(dev_key(8)).address
    context = wallet_context(browser, live, account, Traffic(live.url))
    page = context.new_page()
    w3 = live.client.w3
    try:
        goto(page, f"{live.url}/pledge?campaign={campaign}")
        frame = component(page)
        send_with(frame, "A browser wallet")
        connect_wallet(page, frame, account)
        type_record(frame, "Zoe")
        save_key(page, frame, live.tmp / "zoe.key")
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        frame.get_by_role("button", name="Seal and pledge").click()
        see(page, "Submitted: waiting for it to be mined")
        calls = component_frame(page).evaluate("window.__walletCalls")
        methods = [c["method"] for c in calls]
        assert methods.index("eth_estimateGas") < methods.index("eth_sendTransaction"), methods
        [send] = [c for c in calls if c["method"] == "eth_sendTransaction"]
        tx = send["params"][0]
        gas = int(w3.eth.estimate_gas({"from": account, "to": tx["to"], "data": tx["data"], "value": 0}))
        shown = re.search(r"Fee estimate: about ([0-9.]+) TETH \(([0-9,]+) gas × ([0-9.]+) gwei\)", send["shown"])
        assert shown, send["shown"]
        fee, shown_gas, gwei = float(shown[1]), int(shown[2].replace(",", "")), float(shown[3])
        assert abs(shown_gas - gas) <= gas * 0.05
        assert fee == pytest.approx(shown_gas * gwei * 1e-9, rel=0.01)
        [hash_] = [c for c in w3.eth.get_block("pending", full_transactions=True)["transactions"]]
        tx_hash = hash_["hash"].to_0x_hex()
        link = page.locator(f'a[href="{EXPLORER}/tx/{tx_hash}"]')
        link.first.wait_for(timeout=TIMEOUT_MS)
        assert CampaignClient(live.client, campaign).pledge_of(account)[1] == "none"  # not mined yet
        mined(live)
        see(page, "Pledged: pledge #2")
        see(page, re.compile(r"Mined in block \d+"))
        page.locator(f'a[href="{EXPLORER}/tx/{tx_hash}"]').first.wait_for(timeout=TIMEOUT_MS)
        # The campaign page links its contract, its creator and its creation on the explorer.
        goto(page, f"{live.url}/?campaign={campaign}")
        c = CampaignClient(live.client, campaign)
        for href in (f"address/{campaign}", f"address/{c.created.creator}", f"tx/{c.created.tx}"):
            page.locator(f'a[href="{EXPLORER}/{href}"]').first.wait_for(timeout=TIMEOUT_MS)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        context.close()


def _qr_decoder() -> str:
    """The QR decoder of the `qr` package (the encoder's own), as a script for a blank page."""
    out = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "esbuild"), str(ROOT / "node_modules" / "qr" / "decode.js"),
         "--bundle", "--format=iife", "--global-name=QRDecode", "--log-level=error"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return out.stdout


DECODE = """async (src) => {
  const img = new Image();
  img.src = src;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return QRDecode.default({width: data.width, height: data.height, data: data.data});
}"""


def test_the_share_button_shows_the_link_and_a_qr_code_that_decodes_to_it(browser: Any, live: Live) -> None:
    campaign = cli_campaign(live, "shared")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page = context.new_page()
    try:
        goto(page, f"{live.url}/?campaign={campaign}")
        page.get_by_test_id("stMain").get_by_role("button", name="Share").click()
        link = f"{live.url}/?campaign={campaign}"
        dialog = page.get_by_role("dialog")
        dialog.get_by_text(link, exact=True).wait_for(timeout=TIMEOUT_MS)
        frame = component_frame(page)
        qr = frame.locator('svg[data-testid="qr"]')
        qr.wait_for(timeout=TIMEOUT_MS)
        assert qr.get_attribute("aria-label") == f"QR code of {link}"
        png = qr.screenshot()
        blank = context.new_page()
        blank.add_script_tag(content=_qr_decoder())
        decoded = blank.evaluate(DECODE, "data:image/png;base64," + base64.b64encode(png).decode())
        assert decoded == link
        frame.get_by_role("button", name="Copy link").click()
        frame.get_by_text("Copied").wait_for(timeout=TIMEOUT_MS)
        assert page.evaluate("navigator.clipboard.readText()") == link
    finally:
        context.close()


def test_the_page_shows_no_explorer_link_where_none_is_configured(tmp_path: Path) -> None:
    """The local chain has no explorer unless configured: links then stay plain text."""
    import sys

    sys.path.insert(0, str(ROOT / "dapp"))
    import _settings as K

    local = K.Settings.from_env({"SPARTACUS_NETWORK": "http://127.0.0.1:8545"})
    assert local.explorer_url is None and local.explorer_link("tx", "0x" + "ab" * 32) is None
    assert local.chain_label(31337) == "Anvil (local) (chain 31337)"
    assert local.rpc_public_url == "http://127.0.0.1:8545"  # loopback: the same machine's browser
    remote = K.Settings.from_env({"SPARTACUS_NETWORK": "https://rpc.example/v3/SECRET-KEY"})
    assert remote.rpc_public_url is None  # a private RPC URL (it may hold a key) is never offered to wallets
    named = K.Settings.from_env({"SPARTACUS_EXPLORER_URL": "https://scan.example/", "SPARTACUS_CHAIN_NAME": "Mine"})
    assert named.explorer_link("address", "0x" + "cd" * 20) == "https://scan.example/address/0x" + "cd" * 20
    assert named.chain_label(11155111) == "Mine (chain 11155111)"
    bad = K.Settings.from_env({"SPARTACUS_EXPLORER_URL": "javascript:alert(1)"})
    assert bad.explorer_url is None and "SPARTACUS_EXPLORER_URL" in (bad.config_error or "")
    assert json.loads(json.dumps(named.add_chain_params(11155111)))["chainName"] == "Mine"


def derived_key(live: Live, campaign: str, account: str) -> KeyPair:
    """The member key derive.js documents, made here from anvil's own signature of the message:
    HKDF-SHA256(r ‖ s, salt "spartacus/member-key/v1", info "<chain>:<campaign>", 48 bytes),
    reduced to [1, n-1]."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    message = (
        f"Spartacus member key, v1\n\nCampaign: {campaign}\nChain: 31337\n\n"
        "Signing this makes your member key for this one campaign. It sends nothing and costs nothing.\n"
        "Sign it only on a Spartacus page: whoever holds this signature can read the roster as you."
    )
    answer = live.client.w3.provider.make_request("personal_sign", ["0x" + message.encode().hex(), account])  # type: ignore[arg-type]
    signature = bytes.fromhex(answer["result"][2:])
    okm = HKDF(hashes.SHA256(), 48, b"spartacus/member-key/v1", f"31337:{campaign}".encode()).derive(signature[:64])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    return KeyPair.from_secret((int.from_bytes(okm, "big") % (n - 1) + 1).to_bytes(32, "big"))


def test_a_member_key_made_from_a_wallet_signature_is_checked_twice_and_opens_the_roster(
    browser: Any, live: Live
) -> None:
    """The optional key with no file: a wallet that signs differently each time is caught by the
    second signature before anything is sealed or sent; a deterministic one makes the key the
    derivation documents, and signing again in the member area opens the roster."""
    from playwright.sync_api import expect

    campaign = cli_campaign(live, "derived", threshold=2)
    c = CampaignClient(live.client, campaign)
    account = KeySigner(dev_key(4)).address

    def start(**wallet: Any) -> tuple[Any, Any, Any]:
        context = wallet_context(browser, live, account, Traffic(live.url), wallets=[a_wallet(account, **wallet)])
        page = context.new_page()
        goto(page, f"{live.url}/pledge?campaign={campaign}")
        frame = component(page)
        send_with(frame, "A browser wallet")
        connect_wallet(page, frame, account)
        frame.get_by_label("Make it from my wallet's signature: no file to keep").check()
        see(frame, "Where this fails: it needs a wallet that signs the same message the same way every time")
        return context, page, frame

    context, page, frame = start(nondeterministic=True)
    try:
        frame.get_by_role("button", name="Sign with my wallet to make my member key").click()
        see(frame, "signed the same message differently the second time: it does not sign deterministically")
        expect(frame.get_by_role("button", name="Seal and pledge")).to_be_disabled()
        why = frame.get_by_test_id("why-disabled")
        expect(why).to_have_text(re.compile("sign with your wallet to make your member"))
        calls = [call["method"] for call in component_frame(page).evaluate("window.__walletCalls")]
        assert calls.count("personal_sign") == 2 and "eth_sendTransaction" not in calls, calls
        assert c.status().total_pledges == 1  # nothing was sent
    finally:
        context.close()

    context, page, frame = start()
    try:
        frame.get_by_role("button", name="Sign with my wallet to make my member key").click()
        expected = derived_key(live, campaign, account)
        see(frame, f"the same both times: {expected.address}")
        type_record(frame, "Ivo", "ivo@example.org")
        frame.get_by_role("button", name="Seal and pledge").click()
        see(page, "Pledged: pledge #2")
        [pledge] = [p for p in c.pledges() if p.pledger == account]
        assert pledge.member_key == expected.compressed  # the key the documented derivation makes
        for i in (0, 1):
            live.cli("keeper", "run", "--key-file", f"keeper{i}.key", "--once")
        goto(page, f"{live.url}/member?campaign={campaign}")
        frame = component(page)
        frame.get_by_role("button", name="Sign with Test Wallet").click()
        see(frame, "Your key belongs to pledge #2.")
        expect(frame.get_by_test_id("roster").get_by_text("Ivo", exact=True)).to_be_visible()
    finally:
        context.close()
