"""Member area: the member key file is opened in the browser component, which rebuilds the roster
and the instructions there from the campaign's public logs (passed to it from here), and makes
the CSV and vCard exports. The key never reaches this server, nor does the roster."""

from __future__ import annotations

from typing import Any

import _text as T
import _ui
import streamlit as st
from _campaign import context_props

from spartacus.types import Scope

st.title("Member area")
picked = _ui.campaign_header()
address, campaign, facts, client, live = picked.address, picked.campaign, picked.facts, picked.client, picked.live
config = facts.config

if live.state == "open":
    left = T.time_left_text(live.state, config.deadline, live.now)
    st.info(
        f"**Not revealed yet: {live.count} of {config.threshold} live pledges, {left}.** Nothing can be read "
        "yet, by anyone. When the live count reaches the threshold, the keepers release their shares "
        f"({config.keeper_threshold} of {len(config.keepers)} are needed) and every member — you too — can read "
        "the whole roster and the organizer's instructions here, in your browser, with your member key file. "
        "Until then you can still withdraw. If the deadline passes first, nothing is ever revealed.",
        icon=":material/hourglass_top:",
    )
    st.stop()
if live.state in ("expired", "cancelled"):
    st.warning(
        f"The campaign is {live.state} below its threshold: nothing will ever be revealed, to anyone. "
        "Take back your deposit, if any, on the Withdraw or refund page.",
        icon=":material/block:",
    )
    st.page_link("pages/2_Withdraw.py", label="Withdraw or refund", query_params={"campaign": address})
    st.stop()

st.success(f"Revealed at block {live.reveal_block}.", icon=":material/celebration:")


@st.cache_data(show_spinner="Reading the campaign's logs…", max_entries=64)
def _logs(network: str | None, campaign_address: str, block: int) -> dict[str, Any]:
    """The public logs the browser needs, as of ``block`` (the same for every visitor)."""
    c, _ = _ui._campaign(network, campaign_address)
    return {
        "pledges": [
            {
                "index": p.index,
                "pledger": p.pledger,
                "memberKey": "0x" + p.member_key.hex(),
                "envelope": "0x" + p.envelope.hex(),
                "live": p.live,
                "late": p.late,
                "blockNumber": p.block_number,
            }
            for p in c.pledges(to_block=block)
        ],
        "releases": [
            {
                "keeperIndex": r.keeper_index,
                "keeper": r.keeper,
                "data": "0x" + r.data.hex(),
                "blockNumber": r.block_number,
                "logIndex": r.log_index,
            }
            for r in c.releases(to_block=block)
        ],
    }


try:
    logs = _logs(_ui.settings().network, address, live.block)
except Exception as exc:  # noqa: BLE001
    _ui.error(f"Cannot read the campaign's logs: {_ui.fail(exc)}")
    st.stop()
keepers_done = sorted({r["keeperIndex"] for r in logs["releases"]})
if len(keepers_done) < config.keeper_threshold:
    st.info(
        f"{len(keepers_done)} of the {config.keeper_threshold} keepers needed have released their shares so far: "
        "the roster opens when enough have. Come back in a few minutes."
    )
    st.button("Check again", icon=":material/refresh:")
    st.stop()

ctx = facts.context()
st.caption(
    "Open your member key file below: it is read in this browser, which rebuilds the roster and the instructions "
    "from the campaign's public logs. Neither your key nor the roster is ever sent to this server."
    if config.scope is Scope.MEMBERS
    else "This campaign reveals to anyone: the roster is rebuilt in your browser, no key needed."
)
_ui.component(
    "member",
    key=f"member-{address}",
    chainId=ctx.chain_id,
    **context_props(ctx),
    creator=facts.creator,
    instructions="0x" + config.instructions.hex(),
    title=config.title,
    pledges=logs["pledges"],
    releases=logs["releases"],
)
if len(keepers_done) < len(config.keepers):
    st.caption(f"Keepers who released: {', '.join(f'#{i}' for i in keepers_done)} of {len(config.keepers)}.")
