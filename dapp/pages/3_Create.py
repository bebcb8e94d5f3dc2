"""Create a campaign: public texts, threshold, deadline, keepers, deposit; sealed instructions."""

from __future__ import annotations

import _state as S
import _ui
import streamlit as st

from spartacus._exceptions import SpartacusError
from spartacus.chain import MAX_THRESHOLD, keeper_address
from spartacus.keys import parse_public_key

st.title("Create a campaign")
settings = _ui.settings()
client = _ui.client()
if not settings.factory:
    st.error("No factory is set: start the dApp with SPARTACUS_FACTORY=0x… (see `spartacus deploy`).")
    st.stop()

base = "create"
outcome_key = _ui.outcome_key("create", None)
outcome = _ui.get_outcome(outcome_key)
if outcome and outcome.ok:
    campaign = outcome.facts["campaign"]
    st.success(f"Campaign created at `{campaign}`: your sealed record is pledge #0.", icon=":material/celebration:")
    st.caption(f"Transaction `{outcome.facts['tx']}` (block {outcome.facts['block']}).")
    st.markdown("Share its page: supporters open it, read it, and pledge.")
    st.code(_ui.share_url(campaign), language=None, wrap_lines=True)
    _ui.campaign_link(campaign, label="Open the campaign page")
    used = _ui.used_key(base)
    if used is not None:
        st.markdown("Your member key reads the roster (and your instructions) after the reveal: keep it.")
        _ui.key_download(used, campaign, "done:" + base, label="Save my member key file again")
    st.button("Create another campaign", on_click=_ui.clear_outcome, args=(outcome_key,))
    st.stop()

st.subheader("In public")
st.caption("Everyone sees these, now and forever: they are written on-chain.")
st.text_input("Title", key="c_title", max_chars=S.TITLE_MAX)
st.text_input("Purpose: one sentence", key="c_purpose", max_chars=S.PURPOSE_MAX)
st.text_area("Description", key="c_description")
st.text_area("Public plan of action", key="c_plan")
st.number_input(
    "Threshold N: live pledges (yours included) that trigger the reveal",
    min_value=1,
    max_value=MAX_THRESHOLD,
    value=None,
    step=1,
    key="c_threshold",
    placeholder="e.g. 50",
)
st.text_input(
    "Deadline",
    value="+14d",
    key="c_deadline",
    help="ISO 8601 (2026-12-31T18:00Z) or a duration from now: +7d, +12h, +30m. At most 366 days.",
)
now = S.chain_now(client)
try:
    st.caption(f"Deadline: {S.format_time(S.parse_deadline_text(st.session_state.get('c_deadline', ''), now))}")
except SpartacusError as exc:
    st.caption(S.escape_md(S.error_text(exc)))

st.subheader("Keepers")
st.caption(
    "Keepers hold the keys that open pledges after the reveal; t of them are needed, fewer learn nothing. "
    "Choose people or services you trust not to collude, and who will be there at the reveal."
)


def _keeper_label(key: str) -> str:
    try:
        return f"{S.short(keeper_address(parse_public_key(key)))} · {key[:10]}…"
    except SpartacusError:
        return f"{key[:14]}… (not a public key)"


if settings.keepers:
    st.multiselect("Known keepers", list(settings.keepers), key="c_keepers", format_func=_keeper_label)
st.text_area(
    "Keeper public keys to add, one per line" if settings.keepers else "Keeper public keys, one per line",
    key="c_keepers_pasted",
    help="Each keeper's public key (from `spartacus keeper init`): 64 bytes in hex, 0x… .",
)
st.number_input(
    "Keeper threshold t: keepers needed to open a pledge",
    min_value=1,
    max_value=32,
    value=None,
    step=1,
    key="c_t",
    placeholder="e.g. 2",
)

st.subheader("Deposit and reveal")
st.text_input(
    "Deposit per pledge (ETH)",
    value="0",
    key="c_deposit",
    help="The price of a fake pledge: to fake the count alone, someone must lock deposit × missing pledges.",
)
st.radio(
    "Reveal the roster to",
    ["members", "public"],
    key="c_scope",
    horizontal=True,
    format_func=lambda s: "the members only" if s == "members" else "anyone who reads the chain",
)
st.text_input(
    "Beneficiary of the deposits after the reveal (optional)",
    key="c_beneficiary",
    placeholder="empty: deposits go back to the pledgers",
)

st.subheader("Sealed: you, and the instructions")
st.caption("Sealed like any pledge: the members read it only after the reveal. This is pledge #0.")
st.text_input("Your name (as the members will know you)", key="c_name", max_chars=200)
st.text_input("Your e-mail (optional)", key="c_email")
st.text_area("Other contact fields (optional), one per line as key=value", key="c_contacts")
st.text_area(
    "Instructions for the members",
    key="c_instructions",
    max_chars=S.INSTRUCTIONS_MAX,
    help="What the members should do once they are enough. Only they will read it.",
)

st.subheader("Sign")
_ui.sealing_notice()
signing = _ui.signer_picker(client)
slot, pair, saved = _ui.member_key_section(
    base, None, "Your own member key: it reads the roster after the reveal. It is never shown on screen."
)

pending = _ui.wallet_pending()
st.button(
    "Create the campaign",
    type="primary",
    icon=":material/rocket_launch:",
    on_click=_ui.intend,
    args=("create",),
    disabled=pending or signing is None or not saved,
)
if _ui.pop_intent("create") and signing is not None:
    _ui.clear_outcome(outcome_key)
    ss = st.session_state
    form = S.CreateForm(
        title=ss.get("c_title", ""),
        purpose=ss.get("c_purpose", ""),
        description=ss.get("c_description", ""),
        plan=ss.get("c_plan", ""),
        threshold=ss.get("c_threshold"),
        deadline=ss.get("c_deadline", ""),
        keepers_picked=ss.get("c_keepers", []),
        keepers_pasted=ss.get("c_keepers_pasted", ""),
        keeper_threshold=ss.get("c_t"),
        deposit=ss.get("c_deposit", ""),
        scope=ss.get("c_scope", "members"),
        beneficiary=ss.get("c_beneficiary", ""),
        name=ss.get("c_name", ""),
        email=ss.get("c_email", ""),
        contacts=ss.get("c_contacts", ""),
        instructions=ss.get("c_instructions", ""),
    )
    config, content, errors = S.validate_create(form, S.chain_now(client))
    if errors:
        st.error("Please fix:\n\n" + "\n".join(f"- {S.escape_md(e)}" for e in errors), icon=":material/error:")
    else:
        assert config is not None and content is not None
        try:
            with st.spinner("Sealing your record and the instructions…"):
                prepared = S.prepare_create(client, settings.factory, config, content, pair, signing.address)
        except SpartacusError as exc:
            _ui.set_outcome(outcome_key, S.Outcome("create", False, S.error_text(exc)))
        else:
            _ui.submit(client, signing, prepared, key_slot=slot)
            if (done := _ui.get_outcome(outcome_key)) and done.ok:
                st.rerun()
_ui.show_error(outcome_key)
