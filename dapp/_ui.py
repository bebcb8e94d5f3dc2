"""Streamlit pieces shared by the pages: the cached connection, the campaign picker, the
signer picker (a local account or a browser wallet), the wallet bridge, outcomes.

Session state (all keys are constants below):

* ``wallet_request``: the one EIP-1193 request the bridge should run (or None). A request
  carries an id; the bridge runs each id once and answers with ``{id, result | error}``;
* ``outcomes``: what each action ended with, shown by its page;
* ``member_key:<slot>``: the member key of a pledge or creation in progress, generated
  here, offered as a download, never rendered.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _state as S
import streamlit as st
import streamlit.components.v1 as components
from eth_utils.address import to_checksum_address

from spartacus._exceptions import SpartacusError
from spartacus.chain import CampaignClient, ChainClient
from spartacus.keys import KeyPair

WALLET_REQUEST = "wallet_request"
WALLET_HANDLED = "wallet_handled"
WALLET_USED = "wallet_used"
WALLET_ADDRESS = "wallet_address"
WALLET_CHAIN = "wallet_chain"
WALLET_NOTICE = "wallet_notice"
OUTCOMES = "outcomes"
INTENT = "intent"
CAMPAIGN = "campaign"
CAMPAIGN_TEXT = "campaign_text"
KEY_GENERATIONS = "key_generations"

_bridge = components.declare_component("spartacus_wallet", path=str(Path(__file__).parent / "wallet"))


# ─── Settings, connection, campaigns ─────────────────────────────────────────────────


def settings() -> S.Settings:
    return S.Settings.from_env()


@st.cache_resource(show_spinner="Connecting to the network…")
def _connection(network: str | None) -> S.Connection:
    return S.Connection(network)


def client() -> ChainClient:
    """The chain client, or a clear error and a stopped page when the node is unreachable."""
    s = settings()
    try:
        connection: S.Connection = _connection(s.network)
    except SpartacusError as exc:
        st.error(f"Cannot use the network {s.network_label}: {S.error_text(exc)}")
        st.caption("Start the local stack with `make run`, or set SPARTACUS_NETWORK to an Ape network or an RPC URL.")
        st.stop()
        raise  # unreachable: st.stop() raises
    return connection.client


@st.cache_resource(show_spinner=False)
def history_store(network: str | None) -> S.HistoryStore:
    return S.HistoryStore()


@st.cache_resource(show_spinner=False, max_entries=256)
def _campaign(network: str | None, address: str) -> tuple[CampaignClient, S.CampaignFacts]:
    c = CampaignClient(_connection(network).client, address)
    return c, S.CampaignFacts.read(c)


def campaign(address: str) -> tuple[CampaignClient, S.CampaignFacts]:
    """A campaign's client and facts, or a clear error and a stopped page."""
    client()  # connection errors first
    try:
        return _campaign(settings().network, address)
    except SpartacusError as exc:
        st.error(f"{address} is not a campaign on this network: {S.error_text(exc)}")
        st.stop()
        raise


def campaign_picker(label: str = "Campaign address") -> str | None:
    """The campaign of this page: ``?campaign=0x…`` (kept across pages), else typed in."""
    ss = st.session_state
    param: str | None = st.query_params.get(CAMPAIGN)
    if param and param != ss.get(CAMPAIGN):
        ss[CAMPAIGN] = param
        ss[CAMPAIGN_TEXT] = param
    elif CAMPAIGN_TEXT not in ss:
        ss[CAMPAIGN_TEXT] = ss.get(CAMPAIGN, "")
    text: str = st.text_input(label, key=CAMPAIGN_TEXT, placeholder="0x…")
    if not text.strip():
        st.info("Paste a campaign's address, or open one from the **Campaigns** page.")
        return None
    try:
        address = S.check_campaign_address(text)
    except SpartacusError as exc:
        st.error(S.error_text(exc))
        return None
    ss[CAMPAIGN] = address
    if st.query_params.get(CAMPAIGN) != address:
        st.query_params[CAMPAIGN] = address
    return address


def share_url(address: str) -> str:
    """The campaign page's address as a visitor would type it (relative when the host is unknown)."""
    from urllib.parse import urlsplit

    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 - no browser context (AppTest)
        url = ""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return f"{base}/?{CAMPAIGN}={address}"


@dataclass
class Picked:
    """The campaign a page works on, with what every page shows about it."""

    address: str
    campaign: CampaignClient
    facts: S.CampaignFacts
    client: ChainClient
    live: S.Live


def campaign_header() -> Picked:
    """The campaign picker, then one line of status and a link to the campaign's page; stops the
    page when no campaign is chosen."""
    address = campaign_picker()
    if not address:
        st.stop()
    assert address is not None
    campaign_, facts = campaign(address)
    client_ = client()
    live = S.Live.read(client_, address)
    config = facts.config
    st.markdown(
        f"**{S.escape_md(config.title)}** — {live.state}, {live.count} of {config.threshold} live pledges · "
        f"{S.time_left_text(live.state, config.deadline, live.now)}"
    )
    campaign_link(address, label="About this campaign")
    return Picked(address, campaign_, facts, client_, live)


def campaign_link(address: str, label: str = "Campaign page", icon: str | None = ":material/campaign:") -> None:
    st.page_link("pages/0_Campaigns.py", label=label, icon=icon, query_params={CAMPAIGN: address})


# ─── Where sealing happens (P7) ──────────────────────────────────────────────────────


def served_locally() -> bool | None:
    """True when the browser reached this server on loopback; None when unknown (tests)."""
    try:
        host = st.context.headers.get("Host") or ""
    except Exception:  # noqa: BLE001 - no browser context (AppTest)
        return None
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "127.0.0.1", "[::1]")


def sealing_notice() -> None:
    local = served_locally()
    where = (
        "this dApp is served from this machine (loopback), so that process is yours"
        if local
        else "this page is served from another machine, whose operator could read your record before it is sealed"
        if local is False
        else "run the dApp on your own machine so that this process is yours"
    )
    text = (
        "**Where your record is sealed.** Your name and contact details are sealed by this app's server "
        f"process, not in the browser: {where}. Run the dApp locally for P7 (no plaintext leaves your "
        "machine): `streamlit run dapp/app.py`. A browser wallet only signs the already sealed transaction."
    )
    (st.info if local is not False else st.warning)(text, icon=":material/lock:")


# ─── Signing: local account or browser wallet ────────────────────────────────────────


@dataclass(frozen=True)
class Signing:
    kind: str  # "local" | "wallet"
    address: str
    alias: str | None = None
    passphrase: str | None = None


def signer_picker(c: ChainClient) -> Signing | None:
    """The account that will sign; None until one is usable (the reason is on screen)."""
    ss = st.session_state
    s = settings()
    mode = st.radio(
        "Sign with",
        ["A local account", "A browser wallet"],
        horizontal=True,
        key="sign_mode",
        on_change=_mode_changed,
        help="A local account signs in this app's process (SPARTACUS_ACCOUNT, or the test accounts of a local "
        "chain). A browser wallet (MetaMask or any EIP-1193 wallet) signs in your browser.",
    )
    if mode == "A local account":
        options = S.local_accounts(s, c.chain_id)
        if not options:
            st.warning(
                "No local account: start the dApp with SPARTACUS_ACCOUNT set to an Ape account alias, "
                "or sign with a browser wallet."
            )
            return None
        alias = st.selectbox(
            "Account",
            options,
            key="sign_account",
            format_func=lambda a: f"{a} · {S.short(S.account_address(a, c.chain_id))}",
        )
        try:
            address = S.account_address(alias, c.chain_id)
            secret = S.needs_passphrase(alias)
        except SpartacusError as exc:
            st.error(S.error_text(exc))
            return None
        passphrase = st.text_input("Passphrase of this Ape account", type="password") if secret else None
        return Signing("local", address, alias, passphrase)

    if not ss.get(WALLET_USED):  # the bridge is drawn before the page: draw it from the next run on
        ss[WALLET_USED] = True
        st.rerun()
    address = ss.get(WALLET_ADDRESS)
    if address:
        chain = ss.get(WALLET_CHAIN)
        st.success(f"Wallet connected: `{address}`", icon=":material/account_balance_wallet:")
        if chain and chain != c.chain_id:
            st.warning(
                f"Your wallet is on chain {chain}; this campaign is on chain {c.chain_id}. "
                "The wallet will be asked to switch when you send."
            )
    st.button(
        "Reconnect wallet" if address else "Connect browser wallet",
        on_click=_connect_wallet,
        icon=":material/link:",
        disabled=ss.get(WALLET_REQUEST) is not None,
    )
    notice = ss.pop(WALLET_NOTICE, None)
    if notice:
        st.error(notice)
    return Signing("wallet", address) if address else None


def _mode_changed() -> None:
    if st.session_state.get("sign_mode") == "A browser wallet":
        st.session_state[WALLET_USED] = True


def _connect_wallet() -> None:
    st.session_state[WALLET_USED] = True
    st.session_state[WALLET_REQUEST] = {
        "id": uuid.uuid4().hex,
        "method": "eth_requestAccounts",
        "params": [],
        "action": "connect",
    }


def wallet_bridge() -> None:
    """Renders the wallet bridge (once, first on every page, so it keeps its place) and
    acts on its answer. Called by ``app.py`` before the page."""
    ss = st.session_state
    request = ss.get(WALLET_REQUEST)
    if not (ss.get(WALLET_USED) or request):
        return
    public = {k: request[k] for k in ("id", "method", "params", "chainId") if k in request} if request else None
    value = _bridge(request=public, key="spartacus_wallet", default=None)
    if not (request and isinstance(value, dict) and value.get("id") == request["id"]):
        return
    handled: set[str] = ss.setdefault(WALLET_HANDLED, set())
    if request["id"] in handled:
        return
    handled.add(request["id"])
    ss[WALLET_REQUEST] = None
    _wallet_answer(request, value)


def _wallet_answer(request: dict[str, Any], value: dict[str, Any]) -> None:
    ss = st.session_state
    error = value.get("error")
    if request["method"] == "eth_requestAccounts":
        accounts = value.get("result") or []
        if error:
            ss[WALLET_NOTICE] = S.wallet_error_text(error, request["method"])
        elif not accounts:
            ss[WALLET_NOTICE] = "The wallet shared no account: unlock it, then connect again."
        else:
            ss[WALLET_ADDRESS] = to_checksum_address(accounts[0])
            ss[WALLET_CHAIN] = int(str(value.get("chainId") or "0x0"), 16)
        return
    action, key = request["action"], request["outcome"]
    if error:
        set_outcome(key, S.Outcome(action, False, S.wallet_error_text(error, request["method"])))
        return
    tx_hash = str(value.get("result"))
    c = client()
    with st.spinner(f"Your wallet sent transaction {S.short(tx_hash)}: waiting for it to be mined…"):
        try:
            result = c.wait(tx_hash)
        except SpartacusError as exc:
            set_outcome(key, S.Outcome(action, False, S.error_text(exc)))
            return
    _finish(key, action, result, request.get("key_slot"))


def wallet_pending() -> bool:
    """While the wallet has a transaction to answer: a notice and a way out."""
    request = st.session_state.get(WALLET_REQUEST)
    if not request or request["method"] != "eth_sendTransaction":
        return False
    st.info("Confirm the transaction in your wallet…", icon=":material/hourglass_top:")
    st.button("Forget this request", on_click=lambda: st.session_state.update({WALLET_REQUEST: None}))
    return True


# ─── Actions ─────────────────────────────────────────────────────────────────────────


def outcome_key(action: str, campaign: str | None) -> str:
    return action if action == "create" else f"{action}:{campaign}"


def set_outcome(key: str, outcome: S.Outcome) -> None:
    st.session_state.setdefault(OUTCOMES, {})[key] = outcome


def get_outcome(key: str) -> S.Outcome | None:
    outcome: S.Outcome | None = st.session_state.get(OUTCOMES, {}).get(key)
    return outcome


def clear_outcome(key: str) -> None:
    st.session_state.get(OUTCOMES, {}).pop(key, None)


def intend(action: str) -> None:
    """A button's on_click: record the intent; the page acts on it in its own run."""
    st.session_state[INTENT] = action


def pop_intent(action: str) -> bool:
    if st.session_state.get(INTENT) == action:
        st.session_state[INTENT] = None
        return True
    return False


def submit(c: ChainClient, signing: Signing, prepared: S.Prepared, key_slot: str | None = None) -> None:
    """Sends ``prepared``: now with a local account, or through the wallet bridge."""
    key = outcome_key(prepared.action, prepared.campaign)
    if signing.kind == "local":
        assert signing.alias is not None
        with st.spinner("Signing and sending, then waiting for the transaction to be mined…"):
            try:
                signer = S.local_signer(signing.alias, c.chain_id, signing.passphrase)
                result = S.send_local(c, signer, prepared)
            except SpartacusError as exc:
                set_outcome(key, S.Outcome(prepared.action, False, S.error_text(exc)))
                return
        _finish(key, prepared.action, result, key_slot)
        return
    try:
        tx = S.wallet_transaction(c, prepared)
    except SpartacusError as exc:
        set_outcome(key, S.Outcome(prepared.action, False, S.error_text(exc)))
        return
    st.session_state[WALLET_REQUEST] = {
        "id": uuid.uuid4().hex,
        "method": "eth_sendTransaction",
        "params": [tx],
        "chainId": hex(c.chain_id),
        "action": prepared.action,
        "outcome": key,
        "key_slot": key_slot,
    }
    st.rerun()


def _finish(key: str, action: str, result: Any, key_slot: str | None) -> None:
    facts = S.describe_result(action, result)
    if key_slot:  # the key is now in use: keep it for downloads; the next one is a new key
        ss = st.session_state
        base, _, generation = key_slot.rpartition("#")
        if key_slot in ss:
            ss["done:" + base] = ss[key_slot]
        ss.setdefault(KEY_GENERATIONS, {})[base] = int(generation) + 1
    set_outcome(key, S.Outcome(action, True, "", facts))


def show_error(key: str) -> None:
    outcome = get_outcome(key)
    if outcome and not outcome.ok:
        st.error(outcome.text, icon=":material/error:")


# ─── Member keys ─────────────────────────────────────────────────────────────────────


def key_slot(base: str) -> str:
    """The session key under which the next member key for ``base`` lives (a new one after each use)."""
    return f"{base}#{st.session_state.get(KEY_GENERATIONS, {}).get(base, 0)}"


def used_key(base: str) -> KeyPair | None:
    """The member key of the last successful pledge or creation for ``base``."""
    pair: KeyPair | None = st.session_state.get("done:" + base)
    return pair


def member_key(slot: str) -> KeyPair:
    """The member key of the pledge (or creation) being prepared: one per slot, kept until used."""
    ss = st.session_state
    if slot not in ss:
        ss[slot] = KeyPair.generate()
    pair: KeyPair = ss[slot]
    return pair


def key_download(pair: KeyPair, campaign: str | None, slot: str, label: str = "Save my member key file") -> None:
    """The key as a file (the format of ``spartacus.keys``); its content is never on screen."""
    st.download_button(
        label,
        data=S.member_key_file(pair),
        file_name=S.key_file_name(campaign),
        mime="application/octet-stream",
        icon=":material/key:",
        on_click=_mark_saved,
        args=(slot,),
        key=f"download:{slot}",
    )


def _mark_saved(slot: str) -> None:
    st.session_state["saved:" + slot] = True


def member_key_section(base: str, campaign: str | None, text: str) -> tuple[str, KeyPair, bool]:
    """ "Your member key": a key for this form, offered only as a download; returns its session
    slot, the key, and whether the user confirmed saving it."""
    st.subheader("Your member key")
    st.markdown(text)
    slot = key_slot(base)
    pair = member_key(slot)
    key_download(pair, campaign, slot)
    return slot, pair, key_saved_checkbox(slot)


def key_saved_checkbox(slot: str) -> bool:
    return bool(
        st.checkbox(
            "I have saved my member key file (without it I cannot read the roster)",
            key="saved:" + slot,
        )
    )


# ─── Look ────────────────────────────────────────────────────────────────────────────

CSS = """
<style>
/* Addresses and hashes wrap at phone width instead of overflowing. */
.stMarkdown code, .stCaption code, .stAlert code { overflow-wrap: anywhere; white-space: normal; }
</style>
"""


def style() -> None:
    st.html(CSS)
