"""Pledge: your sealed record, a member key saved as a file, signed locally or by a wallet."""

from __future__ import annotations

import _state as S
import _ui
import streamlit as st

from spartacus._exceptions import SpartacusError

st.title("Pledge")
picked = _ui.campaign_header()
address, campaign, facts, client, live = picked.address, picked.campaign, picked.facts, picked.client, picked.live
config = facts.config
if live.state in ("expired", "cancelled"):
    st.error(f"This campaign is {live.state}: it takes no more pledges, and nothing will ever be revealed.")
    st.page_link("pages/2_Withdraw.py", label="Take back a deposit", query_params={"campaign": address})
    st.stop()
base = f"pledge:{address}"
outcome_key = _ui.outcome_key("pledge", address)
outcome = _ui.get_outcome(outcome_key)
if outcome and outcome.ok:
    f = outcome.facts
    st.success(
        f"Pledged: pledge #{f['index']}, the live count is now {f['count']} of {config.threshold}."
        + (" **The threshold is reached: the campaign is revealed.**" if f.get("revealed") else ""),
        icon=":material/check_circle:",
    )
    st.caption(f"Transaction `{f['tx']}` (block {f['block']}, {f['gas_used']:,} gas).")
    used = _ui.used_key(base)
    if used is not None:
        st.markdown("Keep your member key file safe: it is how you read the roster after the reveal.")
        _ui.key_download(used, address, "done:" + base, label="Save my member key file again")
    st.page_link(
        "pages/4_Member_area.py", label="Member area", icon=":material/badge:", query_params={"campaign": address}
    )
    st.button("Pledge from another account", on_click=_ui.clear_outcome, args=(outcome_key,))
    st.stop()

if live.state == "revealed":
    st.info(
        "The threshold is reached and the campaign goes on in public: a pledge now is released to the members "
        "as it arrives."
    )
_ui.sealing_notice()
st.subheader("What the other members will see")
st.caption("Only after the reveal, and only the members. Before that, nobody can read it.")
st.text_input("Your name (as the others will know you)", key="pledge_name", max_chars=200)
st.text_input("E-mail (optional)", key="pledge_email", help="The organizer's relay writes to this address.")
st.text_area(
    "Other contact fields (optional), one per line as key=value",
    key="pledge_contacts",
    placeholder="signal=+41 79 123 45 67\nmatrix=@me:example.org",
)
st.text_area("A message to the other members (optional)", key="pledge_message", max_chars=S.MESSAGE_MAX)

st.subheader("Sign")
if config.deposit:
    st.markdown(
        f"Your pledge locks a deposit of **{S.format_wei(config.deposit)}**; it comes back after a withdrawal, "
        "an expiry or a cancellation."
    )
signing = _ui.signer_picker(client)

slot, pair, saved = _ui.member_key_section(
    base,
    address,
    "A fresh key made for this pledge: the roster is encrypted to it. Save the file and keep it. It is "
    "never shown on screen; this app holds it only in this session's memory.",
)

pending = _ui.wallet_pending()
st.button(
    "Seal and pledge",
    type="primary",
    icon=":material/lock:",
    on_click=_ui.intend,
    args=("pledge",),
    disabled=pending or signing is None or not saved,
    help=None if saved else "Save your member key file first.",
)
if _ui.pop_intent("pledge") and signing is not None:
    _ui.clear_outcome(outcome_key)
    form = S.PledgeForm(
        name=st.session_state.get("pledge_name", ""),
        email=st.session_state.get("pledge_email", ""),
        contacts=st.session_state.get("pledge_contacts", ""),
        message=st.session_state.get("pledge_message", ""),
    )
    content, errors = S.validate_pledge(form)
    if errors:
        st.error("Please fix:\n\n" + "\n".join(f"- {S.escape_md(e)}" for e in errors), icon=":material/error:")
    else:
        try:
            with st.spinner("Sealing your record…"):
                prepared = S.prepare_pledge(campaign, content, pair, signing.address)
        except SpartacusError as exc:
            _ui.set_outcome(outcome_key, S.Outcome("pledge", False, S.error_text(exc)))
        else:
            _ui.submit(client, signing, prepared, key_slot=slot)
            if (done := _ui.get_outcome(outcome_key)) and done.ok:
                st.rerun()
_ui.show_error(outcome_key)
