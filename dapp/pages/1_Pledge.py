"""Pledge: the record is typed, sealed and sent in the browser component; this page passes it
the campaign's public facts and waits for the transaction."""

from __future__ import annotations

import _text as T
import _ui
import streamlit as st
from _campaign import context_props

st.title("Pledge")
picked = _ui.campaign_header()
address, facts, client, live = picked.address, picked.facts, picked.client, picked.live
config = facts.config
if live.state in ("expired", "cancelled"):
    _ui.error(f"This campaign is {live.state}: it takes no more pledges, and nothing will ever be revealed.")
    st.page_link("pages/2_Withdraw.py", label="Take back a deposit", query_params={"campaign": address})
    st.stop()
if live.state == "revealed" and config.late_joiners.value == "closed":
    _ui.error("This campaign is revealed and closed to late joiners: it takes no more pledges.")
    st.stop()
trusted, untrusted_text = _ui.trusted(address)
if not trusted:
    _ui.warning(untrusted_text)  # plainly, before anything can be sent
if live.state == "revealed":
    st.info(
        "The threshold is reached and the campaign goes on in public. "
        + {
            "known": "A pledge now is revealed to the members and receives the instructions, not the earlier roster.",
            "roster": "A pledge now receives the roster; its deposit stays locked until the deadline.",
        }.get(config.late_joiners.value, "")
    )
if config.deposit:
    st.markdown(
        f"Your pledge locks a deposit of **{T.format_wei(config.deposit, _ui.settings().currency_symbol)}**; it comes "
        "back after a withdrawal, an expiry or a cancellation."
    )

page = f"pledge:{address}"
done = _ui.last_outcome(page)
if done is not None and done.ok:
    f = done.facts
    st.success(
        f"Pledged: pledge #{f['index'] + 1}, the live count is now {f['count']} of {config.threshold}."
        + (" The threshold is reached: the campaign is revealed." if f.get("revealed") else ""),
        icon=":material/check_circle:",
    )
    st.markdown(_ui.mined_text(f))
    st.markdown("Keep your member key file safe: it is how you read the roster after the reveal.")
    st.page_link(
        "pages/4_Member_area.py", label="Member area", icon=":material/badge:", query_params={"campaign": address}
    )
    st.button("Pledge again (another key, another address)", on_click=_ui.clear_outcome, args=(page,))
    st.stop()

s = _ui.settings()
ctx = facts.context()
value = _ui.component(
    "pledge",
    key=f"pledge-{address}",
    **context_props(ctx),
    deposit=str(config.deposit),
    forwarder=_ui.forwarder(client),
    trusted=trusted,
    untrustedText=untrusted_text,
    outcome=_ui.outcome(page),
    **_ui.wallet_args(client),
)
if value and value.get("kind") == "sent":
    _ui.act(client, page, value, address, lambda f: f"Pledged: pledge #{f['index'] + 1}, mined in block {f['block']}.")
_ui.show_outcome(page)
