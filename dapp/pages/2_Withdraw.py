"""Withdraw a pledge before the reveal, take back a deposit, or (creator) cancel."""

from __future__ import annotations

import _state as S
import _ui
import streamlit as st

from spartacus._exceptions import SpartacusError

DONE = {
    "withdraw": "Withdrawn: your pledge will never be revealed.",
    "refund": "Refunded: your deposit is back in your account.",
    "cancel": "Cancelled: nothing will ever be revealed; pledgers can take back their deposits.",
}

st.title("Withdraw or refund")
picked = _ui.campaign_header()
address, campaign, facts, client, live = picked.address, picked.campaign, picked.facts, picked.client, picked.live
config = facts.config

for action, text in DONE.items():
    key = _ui.outcome_key(action, address)
    outcome = _ui.get_outcome(key)
    if outcome and outcome.ok:
        st.success(f"{text} (transaction `{outcome.facts['tx']}`)", icon=":material/check_circle:")
    _ui.show_error(key)

signing = _ui.signer_picker(client)
if signing is None:
    st.stop()

index, status, held = campaign.pledge_of(signing.address)
refundable = campaign.refundable(signing.address)
is_creator = signing.address.lower() == facts.creator.lower()
st.subheader("Your pledge")
if status == "none":
    st.markdown(f"`{signing.address}` has no pledge in this campaign.")
else:
    st.markdown(
        f"`{signing.address}`: pledge **#{index}**, **{status}**"
        + (" (you created this campaign)" if is_creator else "")
        + (f"; deposit held: {S.format_wei(config.deposit)}" if held else "")
    )
st.markdown(f"Refundable now: **{S.format_wei(refundable)}**")

pending = _ui.wallet_pending()
can_withdraw = live.state == "open" and status == "live" and not is_creator
st.button(
    "Withdraw my pledge",
    on_click=_ui.intend,
    args=("withdraw",),
    disabled=pending or not can_withdraw,
    icon=":material/undo:",
    help="Only while the campaign is open; a withdrawn pledge is never revealed.",
)
st.button(
    "Refund my deposit",
    on_click=_ui.intend,
    args=("refund",),
    disabled=pending or refundable == 0,
    icon=":material/payments:",
    help="After a withdrawal, an expiry, a cancellation, or a reveal without beneficiary.",
)
if is_creator and live.state == "open":
    st.subheader("Cancel the campaign")
    sure = st.checkbox("Yes, cancel it: nothing will ever be revealed", key="cancel_sure")
    st.button("Cancel the campaign", on_click=_ui.intend, args=("cancel",), disabled=pending or not sure)

for action in DONE:
    if _ui.pop_intent(action):
        key = _ui.outcome_key(action, address)
        _ui.clear_outcome(key)
        try:
            prepared = S.prepare_action(campaign, action, signing.address)
        except SpartacusError as exc:
            _ui.set_outcome(key, S.Outcome(action, False, S.error_text(exc)))
        else:
            _ui.submit(client, signing, prepared)
        st.rerun()
