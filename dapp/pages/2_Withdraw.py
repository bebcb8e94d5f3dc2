"""Withdraw, refund, cancel: the browser component builds the call for the button clicked and
sends it (a wallet, the relayer with the member key, or a local account); this page looks up the
pledge of the address the component names, and waits for the transaction."""

from __future__ import annotations

from typing import Any

import _text as T
import _ui
import streamlit as st
from eth_utils.address import is_address, to_checksum_address

DONE = {
    "withdraw": "Withdrawn: your pledge will never be revealed.",
    "refund": "Refunded: the deposit is back.",
    "cancel": "Cancelled: nothing will ever be revealed; pledgers can take back their deposits.",
}

st.title("Withdraw or refund")
picked = _ui.campaign_header()
address, campaign, facts, client, live = picked.address, picked.campaign, picked.facts, picked.client, picked.live
page = f"action:{address}"
done = _ui.last_outcome(page)
top = st.empty()  # always in its place, so the component below is never re-mounted
if done is not None and done.ok:
    top.success(f"{DONE[done.action]} {_ui.mined_text(done.facts)}", icon=":material/check_circle:")

ss = st.session_state
who_key = f"who:{address}"


def _who(pledger: str) -> dict[str, Any]:
    """The public facts of ``pledger``'s pledge, for the component."""
    index, status, held = campaign.pledge_of(pledger)
    refundable = campaign.refundable(pledger)
    forwarder = _ui.forwarder(client)
    nonce = 0
    if forwarder:
        (nonce,) = client.call("Forwarder", forwarder, "nonces", pledger)
    return {
        "address": pledger,
        "index": index,
        "status": status,
        "held": held,
        "refundable": str(refundable),
        "refundableText": T.format_wei(refundable, _ui.settings().currency_symbol),
        "isCreator": pledger.lower() == facts.creator.lower(),
        "nonce": int(nonce),
    }


who = ss.get(who_key)
if who is not None:
    try:
        who = _who(who["address"])  # fresh on every run: the state changes with each action
    except Exception as exc:  # noqa: BLE001
        top.error(T.escape_md(f"Cannot read the pledge of {who['address']}: {_ui.fail(exc)}"))
        who = None
value = _ui.component(
    "action",
    key=f"action-{address}",
    campaign=address,
    state=live.state,
    forwarder=_ui.forwarder(client),
    who=who,
    nonce=who["nonce"] if who else 0,
    outcome=_ui.outcome(page),
    **_ui.wallet_args(client),
)
if value and value.get("kind") == "who" and is_address(str(value.get("address", ""))):
    ss[who_key] = {"address": to_checksum_address(value["address"])}
    st.rerun()
if value and value.get("kind") == "sent" and value.get("action") in DONE:
    _ui.act(client, page, value, address, lambda f: "Done.")
_ui.show_outcome(page)
