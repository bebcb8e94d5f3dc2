"""Streamlit pieces shared by the pages: the cached connection, the campaign picker, the browser
component (where every secret lives), what the server does with the component's answers, and
the one way errors are shown (as text: they may quote a contract or a node).

Session state (keys are constants below):

* ``handled``: ids of component values already acted on (a value stays the component's value
  across reruns; each is acted on once);
* ``outcomes``: per page, the id the component sent and what it ended with;
* ``wallet_connected``: a wallet was connected in this session (the component then asks the
  wallet for its address without a prompt).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import _campaign as C
import _settings as K
import _text as T
import streamlit as st
import streamlit.components.v1 as components
from _send import Outcome, describe_result, send_value

from spartacus._exceptions import InputError, SpartacusError
from spartacus.chain import CampaignClient, ChainClient

HANDLED = "handled"
OUTCOMES = "outcomes"
WALLET_CONNECTED = "wallet_connected"
CAMPAIGN = "campaign"
CAMPAIGN_TEXT = "campaign_text"

COMPONENT = Path(__file__).parent / "component"
BUNDLE = COMPONENT / "build" / "spartacus.js"
_component = components.declare_component("spartacus", path=str(COMPONENT))


# ─── Text that strangers wrote ───────────────────────────────────────────────────────


def error(text: str) -> None:
    """An error sentence, shown as text (it may quote a contract, a node or a relayer)."""
    st.error(T.escape_md(text), icon=":material/error:")


def warning(text: str) -> None:
    st.warning(T.escape_md(text), icon=":material/warning:")


def fail(exc: BaseException) -> str:
    return T.error_text(exc)


# ─── Settings, connection, campaigns ─────────────────────────────────────────────────


def settings() -> K.Settings:
    return K.Settings.from_env()


@st.cache_resource(show_spinner="Connecting to the network…")
def _connection(network: str | None) -> K.Connection:
    return K.Connection(network)


def client() -> ChainClient:
    """The chain client, or a clear error and a stopped page when the node is unreachable."""
    s = settings()
    try:
        connection: K.Connection = _connection(s.network)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is told, never a traceback
        error(f"Cannot use the network {s.network_label}: {fail(exc)}")
        st.caption("Start the local stack with `make run`, or set SPARTACUS_NETWORK to an Ape network or an RPC URL.")
        st.stop()
        raise
    return connection.client


def chain_label() -> str:
    """``Sepolia (chain 11155111)``: the network by name (SPARTACUS_CHAIN_NAME, or a known chain's)."""
    return settings().chain_label(client().chain_id)


# ─── Public reads shared by every session (the node's load does not grow with viewers) ─
#
# The latest block is read at most once per refresh interval for the whole server, whatever
# the number of sessions watching (``_head``, keyed by the interval's number: a session that
# refreshes finds it cached when another session read it in the same interval); a campaign's
# live facts are read once per block (``_live_reads``), the list of campaigns once per block,
# and the count history once per block (``HistoryStore``).


@st.cache_data(show_spinner=False, max_entries=8)
def _head(network: str | None, interval: int) -> tuple[int, int]:
    return C.head(_connection(network).client)


def head(at_least: int = 0) -> tuple[int, int]:
    """``(latest block, now)``, shared by every session for one refresh interval; read again when
    the shared one is older than block ``at_least`` (a campaign created since: it has no code there)."""
    s = settings()
    client()
    got = _head(s.network, int(time.time() // s.refresh))
    if got[0] < at_least:
        fresh_head()
        got = _head(s.network, int(time.time() // s.refresh))
    return got


def fresh_head() -> None:
    """After a transaction of this session: the next read sees its block."""
    _head.clear()


@st.cache_data(show_spinner=False, max_entries=1024)
def _live_reads(network: str | None, address: str, block: int) -> C.Live:
    return C.Live.read(_connection(network).client, address, (block, 0))


def live(address: str, *, fresh: bool = False) -> C.Live:
    """A campaign's live state as of the shared latest block (one set of reads per block), for
    the pages people watch; ``fresh``: as of the latest block now, for a page someone acts on (it
    is read once per visit, and must not be a refresh interval late: a reveal, a release)."""
    if fresh:
        return C.Live.read(client(), address)
    block, now = head(_campaign(settings().network, address)[1].created_block)
    return dataclasses.replace(_live_reads(settings().network, address, block), now=now)


@st.cache_data(show_spinner=False, max_entries=64)
def _rows(network: str | None, factory: str, block: int) -> list[C.CampaignRow]:
    return C.campaign_rows(_connection(network).client, factory, (block, 0))


def campaign_rows(factory: str) -> list[C.CampaignRow]:
    """The factory's campaigns with their live state, as of the shared latest block."""
    block, now = head()
    return [dataclasses.replace(row, now=now) for row in _rows(settings().network, factory, block)]


@st.cache_resource(show_spinner=False)
def history_store(network: str | None) -> C.HistoryStore:
    return C.HistoryStore()


@st.cache_resource(show_spinner=False, max_entries=256)
def _campaign(network: str | None, address: str) -> tuple[CampaignClient, C.CampaignFacts]:
    c = CampaignClient(_connection(network).client, address)
    return c, C.CampaignFacts.read(c)


def campaign(address: str) -> tuple[CampaignClient, C.CampaignFacts]:
    """A campaign's client and facts, or one line that says what the address is (the factory, the
    forwarder, no contract, another contract), a way back to the list, and a stopped page."""
    c = client()
    s = settings()
    try:
        if s.factory and address.lower() in (s.factory.lower(), (forwarder(c) or "").lower()):
            raise InputError("not a campaign")  # said by not_a_campaign_text, with what it is
        return _campaign(s.network, address)
    except Exception as exc:  # noqa: BLE001 - a contract that is not a campaign may revert with anything
        error(
            C.not_a_campaign_text(
                address, exc, factory=s.factory, forwarder=forwarder(c) if s.factory else None, chain=chain_label()
            )
        )
        back_to_list()
        st.stop()
        raise


def _to_the_list() -> None:
    st.query_params.clear()
    st.session_state.pop(CAMPAIGN, None)
    st.session_state.pop(CAMPAIGN_TEXT, None)


def back_to_list(key: str = "back_to_list") -> None:
    """The button "All campaigns": the list of campaigns, from any page."""
    if st.button("All campaigns", icon=":material/arrow_back:", type="tertiary", key=key):
        _to_the_list()
        st.switch_page("pages/0_Campaigns.py")


@st.cache_data(show_spinner=False, ttl=30)
def _trusted(network: str | None, factory: str, address: str) -> bool:
    return C.created_by_factory(_connection(network).client, factory, address)


def trusted(address: str) -> tuple[bool, str]:
    """Whether this dApp's factory created the campaign, and the plain warning when it did not."""
    s = settings()
    if not s.factory:
        return False, (
            "This dApp has no factory configured (SPARTACUS_FACTORY), so it cannot tell whether this campaign is "
            "genuine. Do not pledge a deposit to it unless you checked the contract yourself."
        )
    try:
        ok = _trusted(s.network, s.factory, address)
    except Exception as exc:  # noqa: BLE001
        return False, f"Cannot check who created this campaign ({fail(exc)}): do not pledge to it now."
    if ok:
        return True, ""
    return False, (
        f"Warning: this campaign was NOT created by this dApp's factory {s.factory}. Its contract may not be a "
        "Spartacus campaign at all: it could keep your deposit, or never reveal. Do not pledge unless you trust "
        "whoever sent you this link."
    )


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
        address = C.check_campaign_address(text)
    except SpartacusError as exc:
        error(fail(exc))
        back_to_list()
        return None
    ss[CAMPAIGN] = address
    if st.query_params.get(CAMPAIGN) != address:
        st.query_params[CAMPAIGN] = address
    return address


def share_url(address: str) -> str:
    """The campaign page's address as a visitor would type it (relative when the host is unknown)."""
    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 - no browser context (AppTest)
        url = ""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return f"{base}/?{CAMPAIGN}={address}"


class Picked:
    """The campaign a page works on, with what every page shows about it."""

    def __init__(
        self, address: str, campaign: CampaignClient, facts: C.CampaignFacts, client: ChainClient, live: C.Live
    ):
        self.address, self.campaign, self.facts, self.client, self.live = address, campaign, facts, client, live


def campaign_header() -> Picked:
    """The campaign picker, then one line of status and a link to its page; stops without one."""
    address = campaign_picker()
    if not address:
        st.stop()
    assert address is not None
    campaign_, facts = campaign(address)
    client_ = client()
    try:
        now = live(address, fresh=True)
    except Exception as exc:  # noqa: BLE001
        error(f"Cannot read the campaign: {fail(exc)}")
        back_to_list()
        st.stop()
        raise
    config = facts.config
    st.markdown(
        f"**{T.escape_md(config.title)}** — {T.state_text(now.state, config.deadline, now.now)}, "
        f"{now.count} of {config.threshold} live pledges"
    )
    campaign_link(address, label="About this campaign")
    return Picked(address, campaign_, facts, client_, now)


def campaign_link(address: str, label: str = "Campaign page", icon: str | None = ":material/campaign:") -> None:
    st.page_link("pages/0_Campaigns.py", label=label, icon=icon, query_params={CAMPAIGN: address})


# ─── The browser component ───────────────────────────────────────────────────────────


def component(mode: str, key: str, **args: Any) -> dict[str, Any] | None:
    """Draws the browser component for ``mode`` with public ``args``; its new value, if any
    (each value is returned once)."""
    if not BUNDLE.exists():
        error("The dApp's browser module is not built: run `make setup` (it bundles dapp/js), then reload.")
        st.stop()
    ss = st.session_state
    value = _component(mode=mode, walletConnected=bool(ss.get(WALLET_CONNECTED)), key=key, default=None, **args)
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        return None
    handled: set[str] = ss.setdefault(HANDLED, set())
    if value["id"] in handled:
        return None
    handled.add(value["id"])
    if value.get("kind") == "wallet":
        ss[WALLET_CONNECTED] = True
        return None
    return value


def wallet_args(c: ChainClient) -> dict[str, Any]:
    """The public facts every sending component needs."""
    s = settings()
    accounts = []
    for alias in K.local_accounts(s, c.chain_id):
        try:
            accounts.append({"alias": alias, "address": K.account_address(alias, c.chain_id)})
        except Exception:  # noqa: BLE001 - an unusable account is simply not offered
            continue
    return {
        "chainId": c.chain_id,
        "relayer": bool(s.relayer),
        "localAccounts": accounts,
        "now": K.chain_now(c),
        "chainName": s.chain(c.chain_id),
        "chainNames": {str(k): v for k, v in K.CHAIN_NAMES.items()} | {str(c.chain_id): s.chain(c.chain_id)},
        "addChain": s.add_chain_params(c.chain_id),
        "explorer": s.explorer_url,
        "currency": s.currency_symbol,
    }


def link(kind: str, value: str, text: str | None = None) -> str:
    """Markdown for a transaction (``tx``) or an address (``address``): a link to the configured
    block explorer, else the value as code. ``value`` is a hex string we read or checked."""
    url = settings().explorer_link(kind, value)
    label = f"`{text or value}`"
    return f"[{label}]({url})" if url else label


def mined_text(facts: dict[str, Any]) -> str:
    """``Mined in block 12 (105,707 gas): transaction 0x…`` (linked to the explorer if one is set)."""
    return f"Mined in block {facts['block']} ({facts['gas_used']:,} gas): transaction {link('tx', facts['tx'])}."


def outcome(page: str) -> dict[str, Any] | None:
    """The outcome of this page's last action, for the component (``{id, ok, text}``)."""
    got: tuple[str, Outcome] | None = st.session_state.get(OUTCOMES, {}).get(page)
    return {"id": got[0], "ok": got[1].ok, "text": got[1].text} if got else None


def last_outcome(page: str) -> Outcome | None:
    got: tuple[str, Outcome] | None = st.session_state.get(OUTCOMES, {}).get(page)
    return got[1] if got else None


def clear_outcome(page: str) -> None:
    st.session_state.get(OUTCOMES, {}).pop(page, None)


def act(c: ChainClient, page: str, value: dict[str, Any], target: str, done: Any) -> None:
    """Sends (or waits for) a ``sent`` value of the component, records its outcome, reruns. While
    it waits, the page says the transaction is submitted, with its link."""
    action = str(value.get("action"))
    pending = st.empty()

    def submitted(tx: str) -> None:
        pending.info(
            f"Submitted: waiting for it to be mined… Transaction {link('tx', tx)}.", icon=":material/hourglass_top:"
        )

    try:
        with st.spinner("Sending…" if value.get("via") != "wallet" else "Waiting for it to be mined…"):
            result = send_value(c, settings(), value, action, target, submitted=submitted)
            facts = describe_result(action, result)
        outcome_ = Outcome(action, True, done(facts), facts)
        fresh_head()
    except Exception as exc:  # noqa: BLE001 - every failure is told as a sentence
        outcome_ = Outcome(action, False, fail(exc), {})
    st.session_state.setdefault(OUTCOMES, {})[page] = (value["id"], outcome_)
    st.rerun()


def show_outcome(page: str) -> Outcome | None:
    got = last_outcome(page)
    if got is not None and not got.ok:
        error(got.text)
    return got


# ─── Look ────────────────────────────────────────────────────────────────────────────

CSS = """
<style>
/* Addresses and hashes wrap at phone width instead of overflowing. */
.stMarkdown code, .stCaption code, .stAlert code { overflow-wrap: anywhere; white-space: normal; }
</style>
"""


def style() -> None:
    st.html(CSS)


@st.cache_data(show_spinner=False)
def _factory_facts(network: str | None, factory: str) -> tuple[str, str]:
    from spartacus.chain import FactoryClient

    f = FactoryClient(_connection(network).client, factory)
    (implementation,) = f.client.call("CampaignFactory", f.address, "implementation")
    return f.forwarder, str(implementation)


def factory_facts(factory: str) -> tuple[str, str]:
    """``(forwarder, implementation)`` of a factory, or a clear error and a stopped page."""
    try:
        return _factory_facts(settings().network, factory)
    except Exception as exc:  # noqa: BLE001
        error(f"{factory} is not a Spartacus factory on this network: {fail(exc)}")
        st.stop()
        raise


def forwarder(c: ChainClient) -> str | None:
    """The deployment's forwarder (walletless requests are signed for it)."""
    factory = settings().factory
    return factory_facts(factory)[0] if factory else None


def share(address: str, title: str) -> None:
    """The campaign's link as text (at once), then the component's QR code and copy button."""
    url = share_url(address)
    st.markdown(T.escape_md(url))
    component("share", key=f"share-{address}", url=url, title=title)
