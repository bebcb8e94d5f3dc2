"""Spartacus dApp: create campaigns, watch the live count, pledge, withdraw, read the roster.

    streamlit run dapp/app.py     # SPARTACUS_NETWORK (Ape network or RPC URL), SPARTACUS_FACTORY

A campaign's page is ``/?campaign=0x…``. Everything chain-related is read from the contracts
and their events. Every secret (a pledge's record, the organizer's instructions, member keys,
the roster) is made and read in the visitor's browser, inside the dApp's component
(``dapp/js``): this server receives only what is public anyway.
"""

from __future__ import annotations

import _text as T
import _ui
import streamlit as st

st.set_page_config(page_title="Spartacus", page_icon=":material/groups:", layout="centered")
_ui.style()

page = st.navigation(
    [
        st.Page("pages/0_Campaigns.py", title="Campaigns", icon=":material/groups:", default=True),
        st.Page("pages/1_Pledge.py", title="Pledge", icon=":material/how_to_vote:", url_path="pledge"),
        st.Page("pages/2_Withdraw.py", title="Withdraw or refund", icon=":material/undo:", url_path="withdraw"),
        st.Page("pages/3_Create.py", title="Create a campaign", icon=":material/add_circle:", url_path="create"),
        st.Page("pages/4_Member_area.py", title="Member area", icon=":material/badge:", url_path="member"),
    ],
    position="top",
)
page.run()

settings = _ui.settings()
_ui.client()
st.divider()
st.caption(  # the server's own RPC URL is never shown (it may hold an API key): the one offered to wallets is
    f"Network: {T.escape_md(_ui.chain_label())}"
    + (f" · RPC {T.escape_md(settings.rpc_public_url)}" if settings.rpc_public_url else "")
    + (
        f" · factory {_ui.link('address', settings.factory)}"
        if settings.factory
        else " · no factory set (SPARTACUS_FACTORY)"
    )
    + (" · relayer configured" if settings.relayer else "")
)
if settings.config_error:
    _ui.warning(settings.config_error)
