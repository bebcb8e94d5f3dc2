"""The hosted dApp in a real browser: Debian's headless Chromium driven by Playwright, against
the app served on loopback by ``streamlit run`` and a real anvil.

One journey through the pages, every secret typed into the browser component: an organizer
creates a campaign from a browser wallet; a supporter pledges and withdraws; supporters pledge
walletless (the member key signs a forwarder request in the browser, a relayer sends it), from
a wallet, from a local account, and one with the Python core; keepers release (``spartacus
keeper run --once``); a member reads the roster and the instructions in the browser and
downloads the exports. Throughout, every WebSocket frame and HTTP request body the browser
sends to the Streamlit server is recorded, and none may contain what was typed (names,
contacts, messages, instructions), a member secret key, or a roster entry (P7).

The wallet is an injected EIP-1193 provider announced through EIP-6963 that forwards to
anvil's unlocked accounts (a mock only of a wallet's UI, which cannot run here). The relayer
is the real one, ``spartacus relayer run --account TEST::9`` in its own process: the
walletless paths run end to end (the browser signs, the dApp's server hands the request to
the relayer, the relayer simulates, sends and pays).

Screenshots go to ``artifacts/`` (git-ignored). Without chromium or playwright the tests skip,
except in CI (``$CI`` set), where they fail.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    ARTIFACTS,
    ROOT,
    TIMEOUT_MS,
    app_idle,
    chromium_path,
    component,
    fill,
    goto,
    launched,
    save_key,
    see,
    start_streamlit,
    stop,
    type_record,
)
from web3 import Web3

from spartacus.anvil import Anvil, dev_key, free_port
from spartacus.chain import CampaignClient, ChainClient, FactoryClient, KeySigner
from spartacus.envelope import PledgeContent, seal
from spartacus.keys import KIND_MEMBER, KeyPair, load_key_file

pytestmark = [pytest.mark.browser, pytest.mark.anvil]


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_path()


# ─── The relayer, the served app ─────────────────────────────────────────────────────

RELAYER_ACCOUNT = "TEST::9"


def start_relayer(env: dict[str, str], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The real relayer (``spartacus relayer run``), paying from TEST::9 and sponsoring deposits
    up to 0.01 ether, as the local stack runs it; answers once ``GET /health`` is 200."""
    port = free_port()
    command = [sys.executable, "-m", "spartacus.cli", "-v", "relayer", "run", "--account", RELAYER_ACCOUNT,
               "--port", str(port), "--state", str(tmp / "relayer.sqlite"), "--client-limit", "10000",
               "--sponsor-max-wei", str(10**16), "--interval", "0.5"]  # fmt: skip
    log = tmp / "relayer.log"
    proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the relayer exited: {log.read_text()}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the relayer did not answer /health: {log.read_text()}"
        time.sleep(0.1)


@dataclass
class Live:
    url: str
    rpc: str
    factory: str
    forwarder: str
    client: ChainClient
    env: dict[str, str]
    tmp: Path
    relayer: str
    keeper_keys: list[str]
    relay_service: KeyPair

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

    def relayed_by_the_relayer(self, pledger: str) -> bool:
        """True when ``pledger``'s pledge is a call of the forwarder, signed by ``pledger`` and
        sent by the relayer's own account."""
        from spartacus.forwarding import executed_request_tx

        found = executed_request_tx(self.client, self.forwarder, pledger, 0, 0)
        if found is None:
            return False
        tx = self.client.w3.eth.get_transaction(found)
        return bool(tx["from"] == KeySigner(dev_key(9)).address and tx["to"] == self.forwarder)


@contextlib.contextmanager
def serve_stack(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[Live]:
    """anvil, the factory, three keepers, the real relayer and the dApp (``streamlit run``); in
    ``extra_env``'s values, ``{rpc}`` is anvil's URL."""
    with Anvil(extra=["--accounts", "10"], log=tmp / "anvil.log") as node:
        client = ChainClient(Web3(Web3.HTTPProvider(node.url)))
        factory, _ = FactoryClient.deploy(client, KeySigner(dev_key(0)))
        env = os.environ | {"SPARTACUS_NETWORK": node.url, "SPARTACUS_FACTORY": factory.address}
        kept = ("SPARTACUS_NETWORK", "SPARTACUS_FACTORY")
        for name in [k for k in env if k.startswith("SPARTACUS_") and k not in kept]:
            env.pop(name)
        relay_service = KeyPair.generate()
        relayer, relayer_url = start_relayer(env, tmp)
        try:
            probe = Live("", node.url, factory.address, factory.forwarder, client, env, tmp, relayer_url, [],
                         relay_service)  # fmt: skip
            keepers = []
            for i in range(3):
                out = probe.cli("keeper", "init", "--key-file", f"keeper{i}.key")
                fund = {"from": client.w3.eth.accounts[0], "to": out["address"], "value": 10**18}
                client.w3.eth.send_transaction(fund)  # type: ignore[arg-type]
                keepers.append(out["public_key"])
            env |= {
                "SPARTACUS_KEEPERS": ",".join(keepers),
                "SPARTACUS_REFRESH": "1",
                "SPARTACUS_RELAYER": relayer_url,
                "SPARTACUS_RELAY_SERVICE": "0x" + relay_service.compressed.hex(),
                "SPARTACUS_RELAY_NAME": "Union office",
            } | {k: v.replace("{rpc}", node.url) for k, v in (extra_env or {}).items()}
            server, url = start_streamlit(env, tmp / "streamlit.log")
            try:
                yield Live(url, node.url, factory.address, factory.forwarder, client, env, tmp, relayer_url, keepers,
                           relay_service)  # fmt: skip
            finally:
                stop(server)
        finally:
            stop(relayer)


@pytest.fixture(scope="module")
def live(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with serve_stack(tmp_path_factory.mktemp("dapp-browser")) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser(chromium: str, live: Live) -> Iterator[Any]:
    with launched(chromium, live.url) as b:
        yield b


# Wallets announced through EIP-6963, MetaMask-like: no accounts until eth_requestAccounts;
# by default two (the first forwards to anvil's unlocked accounts, the second refuses
# everything). Each wallet of ``cfg.wallets`` may not know the chain at first (it is then on
# chain 1 and answers wallet_switchEthereumChain with 4902 until wallet_addEthereumChain), or
# reject requests with 4001 (``reject``: transactions; ``rejectConnect``: the connection too), or
# sign messages with fresh randomness each time (``nondeterministic``, as some hardware and
# smart-contract wallets; otherwise anvil signs, deterministically).
# Every call is recorded in window.__walletCalls of the frame that made it, with the text that
# frame showed at that moment.
WALLET = """
(() => {
  const cfg = %(cfg)s;
  let nextId = 0;
  window.__walletCalls = [];
  const fail = (code, message) => Object.assign(new Error(message), {code});
  async function rpc(method, params) {
    const response = await fetch(cfg.rpc, {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({jsonrpc: "2.0", id: ++nextId, method, params: params || []})});
    const body = await response.json();
    if (body.error) throw Object.assign(new Error(body.error.message), {code: body.error.code, data: body.error.data});
    return body.result;
  }
  const make = (w) => {
    const key = (k) => `test-wallet:${w.rdns}:${k}`;
    const connected = () => sessionStorage.getItem(key("connected")) === w.account;
    const chainOf = () => sessionStorage.getItem(key("chain")) || (w.chainKnown === false ? "0x1" : cfg.chainId);
    const knows = (id) => id === "0x1" || w.chainKnown !== false || sessionStorage.getItem(key("added")) === id;
    return {
      async request({method, params}) {
        window.__walletCalls.push({wallet: w.name, method, params: params || [],
          shown: document.body ? document.body.innerText : ""});
        if (w.refuseAll) throw fail(4001, "no");
        switch (method) {
          case "eth_accounts": return connected() ? [w.account] : [];
          case "eth_requestAccounts":
            if (w.rejectConnect) throw fail(4001, "User rejected the request.");
            sessionStorage.setItem(key("connected"), w.account);
            return [w.account];
          case "eth_chainId": return chainOf();
          case "wallet_switchEthereumChain": {
            const id = params[0].chainId.toLowerCase();
            if (!knows(id)) throw fail(4902, `Unrecognized chain ID "${id}". Try adding the chain first.`);
            sessionStorage.setItem(key("chain"), id);
            return null;
          }
          case "wallet_addEthereumChain": {
            if (w.rejectAdd) throw fail(4001, "User rejected the request.");
            sessionStorage.setItem(key("added"), params[0].chainId.toLowerCase());
            sessionStorage.setItem(key("chain"), params[0].chainId.toLowerCase());
            return null;
          }
          case "eth_estimateGas": case "eth_gasPrice": case "eth_blockNumber": case "eth_getTransactionReceipt":
            if (chainOf() !== cfg.chainId) throw fail(-32603, "the test wallet only reaches chain " + cfg.chainId);
            return rpc(method, params);
          case "personal_sign": {
            if (!connected()) throw fail(4100, "The requested account has not been authorized by the user.");
            if (w.nondeterministic) {  // as a wallet that signs with fresh randomness each time
              const bytes = crypto.getRandomValues(new Uint8Array(65));
              return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
            }
            return rpc(method, params);  // anvil signs for its unlocked accounts (RFC 6979: deterministic)
          }
          case "eth_sendTransaction":
            if (!connected()) throw fail(4100, "The requested account has not been authorized by the user.");
            if (chainOf() !== cfg.chainId) throw fail(-32603, "sent on the wrong chain: " + chainOf());
            if (w.reject) throw fail(4001, "User denied transaction signature.");
            if (params[0].from.toLowerCase() !== w.account.toLowerCase()) throw fail(4100, "wrong from");
            return rpc(method, params);
          default: throw fail(4200, "unsupported by the test wallet: " + method);
        }
      },
      on() { return this; },
      removeListener() { return this; },
    };
  };
  const wallets = cfg.wallets.map((w, i) => ({
    info: {uuid: String(i + 1), name: w.name, icon: w.icon || "data:,", rdns: w.rdns}, provider: make(w)}));
  const announce = () => {
    for (const w of wallets) {
      window.dispatchEvent(new CustomEvent("eip6963:announceProvider", {detail: Object.freeze(w)}));
    }
  };
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
"""

SVG = b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'><rect width='1' height='1' fill='#0a0'/></svg>"
ICON = "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()


def a_wallet(account: str, **kw: Any) -> dict[str, Any]:
    """One wallet of the WALLET script: ``chainKnown``, ``reject``, ``rejectConnect``, ``refuseAll``,
    ``nondeterministic``."""
    return {"name": "Test Wallet", "rdns": "org.example.testwallet", "account": account, "icon": ICON} | kw


@dataclass
class Traffic:
    """Every WebSocket frame and HTTP request body the browser sent to the Streamlit server."""

    origin: str
    frames: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def attach(self, context: Any) -> None:
        def on_page(page: Any) -> None:
            page.on("websocket", self._ws)

        context.on("page", on_page)
        for page in context.pages:
            on_page(page)
        context.on("request", self._request)

    def _ws(self, ws: Any) -> None:
        if ws.url.startswith(self.origin.replace("http", "ws")):
            ws.on("framesent", lambda p: self.frames.append(p if isinstance(p, bytes) else p.encode()))

    def _request(self, request: Any) -> None:
        if request.url.startswith(self.origin) and request.post_data_buffer:
            self.bodies.append(bytes(request.post_data_buffer))

    def leaks(self, markers: list[str]) -> list[str]:
        found = []
        for marker in markers:
            needle = marker.encode()
            for blob in self.frames + self.bodies:
                if needle in blob or needle.lower() in blob.lower():
                    found.append(marker)
                    break
        return found


def wallet_context(
    browser: Any,
    live: Live,
    account: str,
    traffic: Traffic,
    *,
    reject: bool = False,
    wallets: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> Any:
    """A browser context with injected wallets: by default Test Wallet (``account``) and a Second
    Wallet that refuses everything."""
    if wallets is None:
        second = {"name": "Second Wallet", "rdns": "org.example.second", "account": account, "refuseAll": True}
        wallets = [a_wallet(account, reject=reject), second]
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900}, **kw)
    cfg = {"rpc": live.rpc, "chainId": hex(live.client.chain_id), "wallets": wallets}
    context.add_init_script(WALLET % {"cfg": json.dumps(cfg)})
    traffic.attach(context)
    return context


# ─── Page helpers of this module (the shared ones are in browser_helpers.py) ──────────


def send_with(frame: Any, choice: str) -> None:
    frame.get_by_label(choice, exact=True).check()


def connect_wallet(page: Any, frame: Any, address: str) -> None:
    frame.get_by_role("button", name="Connect Test Wallet").click()
    see(frame, f"Wallet connected: {address}")
    app_idle(page)


def shot(page: Any, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport grows to fit it."""
    size = page.viewport_size
    app_idle(page)
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    app_idle(page)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size(size)


def secret_hex(key_file: bytes) -> str:
    return json.loads(key_file)["private_key"][2:]


def cli_campaign(live: Live, name: str, threshold: int = 10) -> str:
    """A campaign made with the CLI (the Python core), for tests that need one as a backdrop."""
    (live.tmp / f"{name}.txt").write_text("Gate 3, 6:00.\n")
    keepers = [arg for k in live.keeper_keys for arg in ("--keeper", k)]
    out = live.cli(
        "create", "--factory", live.factory, "--title", name, "--purpose", "A backdrop", "--description", "",
        "--plan", "", "--threshold", str(threshold), "--deadline", "+7d", *keepers, "--keeper-threshold", "2",
        "--name", "Olga", "--contact", "email=olga@example.org", "--instructions-file", f"{name}.txt",
        "--member-key-file", f"{name}.key", "--account", "TEST::1", "--network", live.rpc,
    )  # fmt: skip
    return str(out["campaign"])


# ─── The journey ─────────────────────────────────────────────────────────────────────

M = "QX7"  # in every marker: a string nobody else types
OLGA = {"name": f"Olga {M}Organizer", "email": f"olga.{M.lower()}@example.org"}
INSTRUCTIONS = f"Meet at the north gate {M}, Monday 6:00.\nBring the cards."
DAN = {"name": f"Dan {M}Withdrawn", "email": f"dan.{M.lower()}@example.org"}
ANA = {"name": f"Ana {M}Relayed", "email": f"ana.{M.lower()}@example.org", "message": f"Walletless {M}, no trace."}
BEN = {"name": f"Ben {M}Wallet", "contacts": f"matrix=@ben.{M.lower()}:example.org"}
CY = {"name": f"Cy {M}Local", "email": f"cy.{M.lower()}@example.org"}
EVE = {"name": f"Eve {M}Python", "email": f"eve.{M.lower()}@example.org"}


@pytest.mark.slow  # about a minute: the whole journey, five pledges, a reveal
def test_a_whole_campaign_through_the_hosted_page_sends_no_secret_to_the_server(browser: Any, live: Live) -> None:
    from playwright.sync_api import expect

    keys = live.tmp
    traffic = Traffic(live.url)
    olga_address = KeySigner(dev_key(1)).address
    organizer = wallet_context(browser, live, olga_address, traffic)
    page = organizer.new_page()

    # 1. The organizer creates a campaign from a browser wallet: public fields in Streamlit,
    #    the record and the instructions in the component.
    goto(page, f"{live.url}/create")
    fill(page, "Title", "Night shift union drive")
    fill(page, "Purpose: one sentence", "Win a fair night-shift rota, together")
    fill(page, "Threshold N: live pledges (yours included) that trigger the reveal", "5")
    fill(page, "Deadline", "+7d")
    fill(page, "Keeper public keys to add, one per line", "\n".join(live.keeper_keys))
    fill(page, "Keeper threshold t: keepers needed to open a pledge", "2")
    fill(page, "Deposit per pledge (ETH)", "0.01")
    page.get_by_text("my own relay: I run", exact=False).first.click()
    app_idle(page)
    frame = component(page)
    send_with(frame, "A browser wallet")
    see(frame, "Second Wallet")  # several wallets, found through EIP-6963
    connect_wallet(page, frame, olga_address)
    see(frame, "Your campaign's address will be")
    predicted = re.search(r"0x[0-9a-fA-F]{40}", frame.get_by_text("Your campaign's address will be").inner_text())
    assert predicted is not None
    olga_file = save_key(page, frame, keys / "organizer.key")
    type_record(frame, OLGA["name"], OLGA["email"])
    frame.locator('textarea[name="instructions"]').fill(INSTRUCTIONS)
    frame.get_by_role("button", name="Create the campaign").click()
    see(page, "Campaign created at")
    campaign = re.search(r"0x[0-9a-fA-F]{40}", page.get_by_text("Campaign created at").first.inner_text()).group(0)
    assert campaign == predicted.group(0)  # predicted in the browser, as CampaignFactory.predictCampaign
    assert load_key_file(keys / "organizer.key", KIND_MEMBER, campaign=campaign, chain_id=31337)
    see(page, f"{live.url}/?campaign={campaign}")
    shot(page, "dapp-create-done.png")
    c = CampaignClient(live.client, campaign)
    status = c.status()
    assert (status.count, status.deposit, status.keeper_count, status.creator) == (1, 10**16, 3, olga_address)
    assert c.created.config.instructions  # sealed apart from the organizer's record

    # 2. The campaign page: the late-joiner policy, who e-mails, relayed pledges.
    goto(page, f"{live.url}/?campaign={campaign}")
    see(page, "1 of 5 live pledges")
    see(page, re.compile("is revealed to the members and receives the organizer's instructions, but not the earlier"))
    see(page, re.compile("names no relay service"))
    see(page, re.compile("The one pledge so far did not come through a relayer"))

    # 3. Dan pledges from a wallet, then withdraws on the Withdraw page.
    dan_address = KeySigner(dev_key(5)).address
    dan_context = wallet_context(browser, live, dan_address, traffic)
    dan = dan_context.new_page()
    goto(dan, f"{live.url}/pledge?campaign={campaign}")
    frame = component(dan)
    send_with(frame, "A browser wallet")
    connect_wallet(dan, frame, dan_address)
    type_record(frame, DAN["name"], DAN["email"])
    dan_file = save_key(dan, frame, keys / "dan.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(dan, "the live count is now 2 of 5")
    goto(dan, f"{live.url}/withdraw?campaign={campaign}")
    frame = component(dan)
    send_with(frame, "A browser wallet")
    connect_wallet(dan, frame, dan_address)
    see(frame, re.compile(r"pledge #2, live"))  # the organizer's record is #1
    frame.get_by_role("button", name="Withdraw my pledge").click()
    see(dan, "Withdrawn: your pledge will never be revealed.")
    assert c.pledge_of(dan_address)[1] == "withdrawn"
    frame = component(dan)
    see(frame, re.compile(r"pledge #2, withdrawn"))
    frame.get_by_role("button", name="Refund my deposit").click()
    see(dan, "Refunded: the deposit is back.")

    # 4. Ana pledges with no wallet at all: her member key signs in the browser, a relayer sends.
    ana_context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    traffic.attach(ana_context)
    ana = ana_context.new_page()
    goto(ana, f"{live.url}/pledge?campaign={campaign}")
    frame = component(ana)
    send_with(frame, "No wallet: send through the relayer")
    type_record(frame, ANA["name"], ANA["email"], message=ANA["message"])
    ana_file = save_key(ana, frame, keys / "ana.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(ana, "the live count is now 2 of 5")
    ana_key = load_key_file(keys / "ana.key", KIND_MEMBER, campaign=campaign)
    assert live.relayed_by_the_relayer(ana_key.address)  # signed by her key, sent by the relayer's account
    assert c.pledge_of(ana_key.address)[1] == "live"  # the pledger is the member key's own address
    assert live.client.balance(ana_key.address) == 0  # which never held any ether

    # 5. Ben pledges from a wallet, Cy from a local account of the machine, Eve with the Python core.
    ben_address = KeySigner(dev_key(3)).address
    ben_context = wallet_context(browser, live, ben_address, traffic)
    ben = ben_context.new_page()
    goto(ben, f"{live.url}/pledge?campaign={campaign}")
    frame = component(ben)
    send_with(frame, "A browser wallet")
    connect_wallet(ben, frame, ben_address)
    type_record(frame, BEN["name"], contacts=BEN["contacts"])
    ben_file = save_key(ben, frame, keys / "ben.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(ben, "the live count is now 3 of 5")
    cy = ana_context.new_page()
    goto(cy, f"{live.url}/pledge?campaign={campaign}")
    frame = component(cy)
    send_with(frame, "A local account of the machine that runs this dApp")
    frame.locator('select[name="account"]').select_option("TEST::4")
    type_record(frame, CY["name"], CY["email"])
    cy_file = save_key(cy, frame, keys / "cy.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(cy, "the live count is now 4 of 5")
    assert c.pledge_of(KeySigner(dev_key(4)).address)[1] == "live"
    eve = KeyPair.generate()
    eve_signer = KeySigner(dev_key(6))
    envelope = seal(PledgeContent(EVE["name"], {"email": EVE["email"]}), c.context(), eve, pledger=eve_signer.address)
    c.pledge(eve_signer, envelope, eve.compressed, 10**16)
    assert c.status().state == "revealed"

    # 6. Two keepers release (the real command); keeper 2 never does.
    for i in (0, 1):
        assert live.cli("keeper", "run", "--key-file", f"keeper{i}.key", "--once")["released"] == {campaign: 5}

    # 7. Ana reads the roster and the instructions in her browser, and downloads the exports.
    goto(ana, f"{live.url}/member?campaign={campaign}")
    frame = component(ana)
    frame.locator('input[name="member-key-file"]').set_input_files(str(keys / "ana.key"))
    see(frame, "The roster: 5 members")
    see(frame, "Meet at the north gate")
    table = frame.get_by_test_id("roster")
    for text in (OLGA["name"], ANA["email"], BEN["name"], f"@ben.{M.lower()}:example.org", CY["name"], EVE["name"]):
        expect(table.get_by_text(text, exact=True)).to_be_visible()
    expect(table.get_by_text(DAN["name"])).to_have_count(0)  # withdrawn: never revealed
    assert frame.get_by_test_id("instructions").inner_text() == INSTRUCTIONS
    with ana.expect_download() as download:
        frame.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["name"] for r in rows] == [OLGA["name"], ANA["name"], BEN["name"], CY["name"], EVE["name"]]
    assert rows[1]["message"] == ANA["message"]
    assert rows[2]["matrix"] == f"'@ben.{M.lower()}:example.org"  # a cell a spreadsheet would run, defused
    with ana.expect_download() as download:
        frame.get_by_role("button", name="Download vCards").click()
    assert Path(download.value.path()).read_text().count("BEGIN:VCARD") == 5
    shot(ana, "dapp-member-roster.png")

    # 8. Browser-sealed envelopes open in Python: the CLI reads the same roster with Ben's file.
    roster = live.cli("roster", campaign, "--member-key-file", str(keys / "ben.key"))
    assert [m["name"] for m in roster["members"]] == [r["name"] for r in rows]
    assert roster["instructions"] == INSTRUCTIONS
    # A key file of another campaign is refused in the browser, with a clear message.
    goto(ana, f"{live.url}/member?campaign={campaign}")
    other = KeyPair.generate()
    stranger = keys / "stranger.key"
    from spartacus.keys import key_file_bytes

    stranger.write_bytes(key_file_bytes(other, KIND_MEMBER, campaign="0x" + "11" * 20, chain_id=31337))
    frame = component(ana)
    frame.locator('input[name="member-key-file"]').set_input_files(str(stranger))
    see(frame, re.compile("a member key serves one campaign only"))

    # The bundle the page ran is the one built here (README, "Hosting the dApp").
    import hashlib

    with urllib.request.urlopen(f"{live.url}/component/_ui.spartacus/build/spartacus.js") as r:
        served = hashlib.sha256(r.read()).hexdigest()
    assert served == hashlib.sha256((ROOT / "dapp" / "component" / "build" / "spartacus.js").read_bytes()).hexdigest()

    # 9. Nothing typed, no member secret and no roster entry ever reached the Streamlit server.
    markers = [*OLGA.values(), INSTRUCTIONS.split("\n")[0], *DAN.values(), *ANA.values(), *BEN.values(), *CY.values()]
    markers += [secret_hex(f) for f in (olga_file, dan_file, ana_file, ben_file, cy_file)]
    markers += [EVE["name"], EVE["email"], "0x" + eve.secret_bytes().hex()]
    assert len(traffic.frames) > 20, "the recorder saw no WebSocket traffic"
    assert traffic.leaks(markers) == []
    for context in (organizer, dan_context, ana_context, ben_context):
        context.close()


def test_a_rejected_wallet_transaction_is_reported_and_nothing_is_sent(browser: Any, live: Live) -> None:
    campaign = cli_campaign(live, "rejected")
    before = CampaignClient(live.client, campaign).status().total_pledges
    eve = KeySigner(dev_key(7)).address
    traffic = Traffic(live.url)
    context = wallet_context(browser, live, eve, traffic, reject=True)
    page = context.new_page()
    goto(page, f"{live.url}/pledge?campaign={campaign}")
    frame = component(page)
    send_with(frame, "A browser wallet")
    connect_wallet(page, frame, eve)
    type_record(frame, "Eve Rejecting")
    save_key(page, frame, live.tmp / "eve-rejected.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(frame, "You rejected the request in your wallet: nothing was sent.")
    assert CampaignClient(live.client, campaign).status().total_pledges == before
    context.close()


# ─── A foreign window cannot steer the component ─────────────────────────────────────

FOREIGN = """<!doctype html>
<html><body>
<iframe id="app" src="%(src)s" width="1100" height="2600"></iframe>
<script>
// Posts a forged Streamlit render to every frame below `w` (cross-origin frames still take
// postMessage), as a hostile page that framed or opened the dApp would.
function forge(w, args) {
  let n = 0;
  const visit = (win) => {
    for (let i = 0; i < win.frames.length; i++) {
      win.frames[i].postMessage({isStreamlitMessage: true, type: "streamlit:render", args: args}, "*");
      n++;
      visit(win.frames[i]);
    }
  };
  visit(w);
  return n;
}
window.forgeFramed = (args) => forge(window, args);
window.openApp = (url) => { window.opened = window.open(url, "_blank"); return true; };
window.forgeOpened = (args) => forge(window.opened, args);
</script>
</body></html>"""


def serve_foreign(html: str) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            raw = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def component_frame(page: Any) -> Any:
    """The component's frame object, wherever it is nested."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "/component/_ui.spartacus/" in frame.url:
                frame.wait_for_selector("button, input", timeout=TIMEOUT_MS)
                return frame
        page.wait_for_timeout(100)
    raise AssertionError("the dApp's component frame never loaded")


def test_a_foreign_window_that_frames_or_opens_the_dapp_cannot_make_it_call_the_wallet(
    browser: Any, live: Live
) -> None:
    campaign = cli_campaign(live, "framed")
    c = CampaignClient(live.client, campaign)
    victim = KeySigner(dev_key(8)).address
    attacker = KeyPair.generate()
    forged = {
        "mode": "pledge",
        "walletConnected": True,
        "chainId": 31337,
        "campaign": attacker.address,  # a contract of the attacker's
        "keepers": ["0x" + attacker.public_key.hex()],  # a keeper set the attacker holds alone
        "t": 1,
        "scope": "members",
        "lateJoiners": "known",
        "deposit": "0",
        "trusted": True,
        "relayer": False,
        "localAccounts": [],
        "now": int(time.time()),
    }
    traffic = Traffic(live.url)
    context = wallet_context(browser, live, victim, traffic)
    server = serve_foreign(FOREIGN % {"src": f"{live.url}/pledge?campaign={campaign}"})
    try:
        foreign = context.new_page()
        foreign.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        # 1. Framed: the victim connects a wallet in the framed dApp; the foreign page then swaps
        #    the campaign and keepers; the victim pledges. The pledge goes to the real campaign.
        frame = component_frame(foreign)
        frame.get_by_label("A browser wallet", exact=True).check()
        frame.get_by_role("button", name="Connect Test Wallet").click()
        frame.get_by_text(f"Wallet connected: {victim}").wait_for(timeout=TIMEOUT_MS)
        frame.evaluate("window.__walletCalls = []")
        assert foreign.evaluate("(args) => window.forgeFramed(args)", forged) >= 2
        frame.locator('input[name="name"]').fill("Victim of a framing page")
        with foreign.expect_download():
            frame.get_by_role("button", name="Save my member key file").click()
        frame.get_by_role("button", name="Seal and pledge").click()
        frame.get_by_text("Submitted: waiting").or_(frame.get_by_text("Pledged")).first.wait_for(timeout=TIMEOUT_MS)
        calls = frame.evaluate("window.__walletCalls")
        sends = [call for call in calls if call["method"] == "eth_sendTransaction"]
        assert [s["params"][0]["to"].lower() for s in sends] == [campaign.lower()], calls
        assert all(call["method"] != "eth_accounts" for call in calls), calls
        deadline = time.monotonic() + 60
        while c.pledge_of(victim)[1] != "live":
            assert time.monotonic() < deadline, "the victim's pledge never reached the real campaign"
            time.sleep(0.2)

        # 2. Opened: the foreign page opens the dApp in a new window and posts a forged render (another
        #    page, "a wallet was connected") that would ask the wallet for its accounts; nothing
        #    reaches the wallet until the user clicks.
        with context.expect_page() as opened_info:
            foreign.evaluate("(url) => window.openApp(url)", f"{live.url}/withdraw?campaign={campaign}")
        opened = opened_info.value
        frame = component_frame(opened)
        assert foreign.evaluate("(args) => window.forgeOpened(args)", forged) >= 1
        frame.get_by_label("A browser wallet", exact=True).check()
        frame.get_by_role("button", name="Connect Test Wallet").click()
        frame.get_by_text(f"Wallet connected: {victim}").wait_for(timeout=TIMEOUT_MS)
        calls = frame.evaluate("window.__walletCalls")
        assert calls and calls[0]["method"] == "eth_requestAccounts", calls  # the click's, and nothing before
        assert all(call["method"] != "eth_accounts" for call in calls), calls  # nor after
    finally:
        server.shutdown()
        context.close()


def test_an_organizer_with_no_wallet_names_a_relay_service_and_a_foreign_campaign_is_flagged(
    browser: Any, live: Live
) -> None:
    from playwright.sync_api import expect

    from spartacus.keys import unwrap

    traffic = Traffic(live.url)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    traffic.attach(context)
    page = context.new_page()
    goto(page, f"{live.url}/create")
    see(page, f"the relay service Union office (public key 0x{live.relay_service.compressed.hex()})")
    see(page, re.compile("it reads the roster after the reveal"))
    fill(page, "Title", "Walletless drive")
    fill(page, "Purpose: one sentence", "Created with no wallet")
    fill(page, "Threshold N: live pledges (yours included) that trigger the reveal", "3")
    fill(page, "Keeper public keys to add, one per line", "\n".join(live.keeper_keys))
    fill(page, "Keeper threshold t: keepers needed to open a pledge", "2")
    frame = component(page)
    expect(frame.get_by_label("No wallet: send through the relayer", exact=True)).to_be_checked()  # no wallet here
    key_file = save_key(page, frame, live.tmp / "walletless-organizer.key")
    type_record(frame, f"Rosa {M}Relay", f"rosa.{M.lower()}@example.org")
    frame.locator('textarea[name="instructions"]').fill(f"Stay home {M}.")
    frame.get_by_role("button", name="Create the campaign").click()
    see(page, "Campaign created at")
    campaign = re.search(r"0x[0-9a-fA-F]{40}", page.get_by_text("Campaign created at").first.inner_text()).group(0)
    member = load_key_file(live.tmp / "walletless-organizer.key", KIND_MEMBER, campaign=campaign, chain_id=31337)
    c = CampaignClient(live.client, campaign)
    assert c.status().creator == member.address and live.client.balance(member.address) == 0
    config = c.created.config
    assert config.relay == live.relay_service.compressed
    note = json.loads(unwrap(live.relay_service, config.relay_note))  # sealed in the browser to the relay only
    assert note == {"campaign": campaign, "contact": {"email": f"rosa.{M.lower()}@example.org"},
                    "name": f"Rosa {M}Relay", "v": 1}  # fmt: skip
    goto(page, f"{live.url}/?campaign={campaign}")
    see(page, re.compile("E-mail: the relay service Union office"))
    see(page, "Anvil (local) (chain 31337)")  # the chain by name
    assert page.locator('a[href*="/tx/0x"], a[href*="/address/0x"]').count() == 0  # no explorer configured: no links

    # A walletless pledge, then a walletless withdrawal signed with the saved key file (nonce 1).
    goto(page, f"{live.url}/pledge?campaign={campaign}")
    frame = component(page)
    type_record(frame, f"Pia {M}Twice")
    pia_file = save_key(page, frame, live.tmp / "pia.key")
    frame.get_by_role("button", name="Seal and pledge").click()
    see(page, "the live count is now 2 of 3")
    pia = load_key_file(live.tmp / "pia.key", KIND_MEMBER, campaign=campaign)
    goto(page, f"{live.url}/withdraw?campaign={campaign}")
    frame = component(page)
    frame.locator('input[name="member-key-file"]').set_input_files(str(live.tmp / "pia.key"))
    see(frame, re.compile(r"pledge #2, live"))  # the organizer's record is #1
    frame.get_by_role("button", name="Withdraw my pledge").click()
    see(page, "Withdrawn: your pledge will never be revealed.")
    assert c.pledge_of(pia.address)[1] == "withdrawn" and live.client.balance(pia.address) == 0
    goto(page, f"{live.url}/?campaign={campaign}")
    see(page, re.compile("2 of the 2 pledges so far came through a relayer"))

    # A campaign of another factory: the pledge form says so, and sends nothing until acknowledged.
    other, _ = FactoryClient.deploy(live.client, KeySigner(dev_key(0)))
    (live.tmp / "foreign.txt").write_text("x\n")
    keepers = [arg for k in live.keeper_keys for arg in ("--keeper", k)]
    foreign = live.cli(
        "create", "--factory", other.address, "--title", "Lookalike", "--purpose", "p", "--threshold", "3",
        "--deadline", "+7d", *keepers, "--keeper-threshold", "2", "--name", "Mallory", "--instructions-file",
        "foreign.txt", "--member-key-file", "foreign.key", "--account", "TEST::1", "--network", live.rpc,
    )["campaign"]  # fmt: skip
    goto(page, f"{live.url}/pledge?campaign={foreign}")
    see(page, re.compile("NOT created by this dApp's factory"))
    frame = component(page)
    see(frame, re.compile("NOT created by this dApp's factory"))
    save_key(page, frame, live.tmp / "foreign-pledger.key")
    type_record(frame, "Careful Cem")
    seal_button = frame.get_by_role("button", name="Seal and pledge")
    expect(seal_button).to_be_disabled()
    frame.get_by_label("I understand, and still want to pledge to it").check()
    expect(seal_button).to_be_enabled()
    markers = [f"Rosa {M}Relay", f"rosa.{M.lower()}@example.org", f"Stay home {M}.", secret_hex(key_file)]
    markers += [f"Pia {M}Twice", secret_hex(pia_file)]
    assert traffic.leaks(markers) == []
    context.close()


def test_the_pledge_form_fits_a_phone_in_both_themes(browser: Any, live: Live) -> None:
    campaign = cli_campaign(live, "phone")
    for scheme in ("dark", "light"):
        context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme, is_mobile=True)
        page = context.new_page()
        goto(page, f"{live.url}/pledge?campaign={campaign}")
        frame = component(page)
        frame.locator('input[name="name"]').wait_for()
        app_idle(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        inner = component_frame(page)
        assert inner.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
        assert "null" not in inner.evaluate("document.body.innerText").split()
        shot(page, f"dapp-pledge-phone-{scheme}.png")
        context.close()
