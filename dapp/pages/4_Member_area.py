"""Member area: with your member key file, the roster and the instructions once revealed."""

from __future__ import annotations

from typing import Any

import _state as S
import _ui
import streamlit as st

from spartacus._exceptions import SpartacusError
from spartacus.roster import Roster, build_roster, find_member_index
from spartacus.types import Scope

TABLE_MAX = 200

st.title("Member area")
picked = _ui.campaign_header()
address, campaign, facts, client, live = picked.address, picked.campaign, picked.facts, picked.client, picked.live
config = facts.config

public = config.scope is Scope.PUBLIC
upload = st.file_uploader(
    "Your member key file" + (" (not needed: this campaign reveals to anyone)" if public else ""),
    key="member_key_upload",
    help="The .key file you saved when you pledged (or created the campaign). It stays in this app's memory "
    "for this session only.",
)
key = None
if upload is not None:
    try:
        key = S.parse_member_key_file(upload.getvalue(), upload.name)
    except SpartacusError as exc:
        st.error(S.error_text(exc))

pledges = campaign.pledges(to_block=live.block)
mine = find_member_index(pledges, key.compressed) if key is not None else None
if key is not None:
    if mine is None:
        st.warning("This key is in no pledge of this campaign: it cannot read the roster. Is it the right file?")
    else:
        record = next(p for p in pledges if p.index == mine)
        st.markdown(f"Your key belongs to pledge **#{mine}** ({'live' if record.live else 'withdrawn'}).")

if live.state == "open":
    left = S.time_left_text(live.state, config.deadline, live.now)
    st.info(
        f"**Not revealed yet: {live.count} of {config.threshold} live pledges, {left}.** Nothing can be read "
        "yet, by anyone. When the live count reaches the threshold, the keepers release their shares "
        f"({config.keeper_threshold} of {len(config.keepers)} are needed) and every member — you too — can read "
        "the whole roster and the organizer's instructions here, with this key file. Until then you can "
        "still withdraw. If the deadline passes first, nothing is ever revealed.",
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

releases = campaign.releases(to_block=live.block)
keepers_done = len({r.keeper_index for r in releases})
st.success(f"Revealed at block {live.reveal_block}.", icon=":material/celebration:")
if key is None and not public:
    st.info("Upload your member key file to read the roster.")
    st.stop()
if keepers_done < config.keeper_threshold:
    st.info(
        f"{keepers_done} of the {config.keeper_threshold} keepers needed have released their shares so far: "
        "the roster opens when enough have. Come back in a few minutes."
    )
    st.button("Check again", icon=":material/refresh:")
    st.stop()


def _roster() -> Roster:
    """Rebuilt from the chain once per (campaign, key, block) in this session, never shared."""
    signature = (address, key.compressed if key else None, live.block)
    cached: Any = st.session_state.get("roster_cache")
    if cached and cached[0] == signature:
        roster: Roster = cached[1]
        return roster
    roster = build_roster(facts.context(), pledges, releases, key, facts.creator)
    st.session_state["roster_cache"] = (signature, roster)
    return roster


try:
    with st.spinner("Opening the roster…"):
        roster = _roster()
except SpartacusError as exc:
    st.error(S.error_text(exc))
    st.stop()

st.subheader(f"The roster: {len(roster.members)} members")
if len(roster.members) <= TABLE_MAX:  # HTML text: screen readers read it, people copy from it
    st.table(S.roster_rows(roster, markdown=True), hide_index=True, border="horizontal")
else:  # a large roster: a scrollable grid (drawn on a canvas, so never Markdown)
    st.dataframe(S.roster_rows(roster), hide_index=True, width="stretch")
c1, c2 = st.columns(2)
with c1:
    st.download_button(
        "Download CSV",
        data=S.roster_csv(roster),
        file_name=f"roster-{address[2:10].lower()}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )
with c2:
    st.download_button(
        "Download vCards",
        data=S.roster_vcards(roster, config.title),
        file_name=f"roster-{address[2:10].lower()}.vcf",
        mime="text/vcard",
        icon=":material/contacts:",
        on_click="ignore",
    )
st.subheader("The organizer's instructions")
if roster.instructions:
    st.text(roster.instructions)
else:
    st.caption("None could be read (the organizer's pledge is not open yet, or carries none).")
if roster.skipped:
    with st.expander(f"{len(roster.skipped)} pledges could not be read"):
        st.markdown("\n".join(f"- #{s.index}: {S.escape_md(s.reason)}" for s in roster.skipped))
if len(keepers_done_list := sorted({r.keeper_index for r in releases})) < len(config.keepers):
    st.caption(f"Keepers who released: {', '.join(f'#{i}' for i in keepers_done_list)} of {len(config.keepers)}.")
