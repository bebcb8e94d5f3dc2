"""Create a campaign. The public fields are Streamlit widgets (they go on-chain in clear anyway);
the organizer's record and instructions are typed in the browser component, which predicts the
campaign's address, makes the member key file, seals both (and the note to a relay service), and
builds and sends the creation."""

from __future__ import annotations

import _forms as F
import _settings as K
import _text as T
import _ui
import streamlit as st

from spartacus.chain import keeper_address
from spartacus.keys import parse_public_key

st.title("Create a campaign")
settings = _ui.settings()
client = _ui.client()
if not settings.factory:
    _ui.error("No factory is set: start the dApp with SPARTACUS_FACTORY=0x… (see `spartacus deploy`).")
    st.stop()
forwarder, implementation = _ui.factory_facts(settings.factory)

page = "create"
done = _ui.last_outcome(page)
if done is not None and done.ok:
    campaign = done.facts["campaign"]
    st.success(f"Campaign created at `{campaign}`: your sealed record is pledge #1.", icon=":material/celebration:")
    st.markdown(_ui.mined_text(done.facts))
    _ui.campaign_link(campaign, label="Open the campaign page")
    st.markdown("Share its page: supporters open it, read it, and pledge.")
    _ui.share(campaign, str(st.session_state.get("c_title", "")))
    st.markdown("Your member key file reads the roster (and your instructions) after the reveal: keep it.")
    st.button("Create another campaign", on_click=_ui.clear_outcome, args=(page,))
    st.stop()

st.subheader("In public")
st.caption("Everyone sees these, now and forever: they are written on-chain.")
st.text_input("Title", key="c_title", max_chars=F.TITLE_MAX)
st.text_input("Purpose: one sentence", key="c_purpose", max_chars=F.PURPOSE_MAX)
st.text_area("Description", key="c_description")
st.text_area("Public plan of action", key="c_plan")
st.number_input(  # no bounds here: out of range is told below, in words (Streamlit would keep the last value)
    "Threshold N: live pledges (yours included) that trigger the reveal",
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
now = K.chain_now(client)
try:
    st.caption(f"Deadline: {T.format_time(F.parse_deadline_text(st.session_state.get('c_deadline', ''), now))}")
except Exception as exc:  # noqa: BLE001
    st.caption(T.escape_md(_ui.fail(exc)))

st.subheader("Keepers")
st.caption(
    "Keepers hold the keys that open pledges after the reveal; t of them are needed, fewer learn nothing. "
    "Choose people or services you trust not to collude, and who will be there at the reveal."
)


def _keeper_label(key: str) -> str:
    try:
        return f"{T.short(keeper_address(parse_public_key(key)))} · {key[:10]}…"
    except Exception:  # noqa: BLE001
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
st.radio(
    "Late joiners (pledges after the reveal)",
    ["known", "roster", "closed"],
    key="c_late",
    format_func=lambda s: {
        "known": "known: revealed to the members, they get the instructions, not the earlier roster",
        "roster": "roster: they get the roster too; their deposit stays locked until the deadline",
        "closed": "closed: no pledge after the reveal",
    }[s],
)
st.text_input(
    "Beneficiary of the deposits after the reveal (optional)",
    key="c_beneficiary",
    placeholder="empty: deposits go back to the pledgers",
)

st.subheader("Who e-mails the members")
relay_options = (["service"] if settings.relay_service else []) + ["own", "none"]
service_label = (
    f"the relay service {settings.relay_name or ''} (public key 0x{settings.relay_service.hex()})".replace("  ", " ")
    if settings.relay_service
    else ""
)
st.radio(
    "At the reveal, every member gets the roster and the instructions by e-mail from",
    relay_options,
    key="c_relay",
    format_func=lambda s: {
        "service": service_label,
        "own": "my own relay: I run `spartacus relay run` later, with my member key and my SMTP server",
        "none": "nobody: no e-mail; members read the roster in the member area",
    }[s],
)
if settings.relay_service_error:
    _ui.warning(settings.relay_service_error)
relay_choice = st.session_state.get("c_relay", relay_options[0])
if relay_choice == "service":
    st.info(
        T.escape_md(
            f"You name {service_label} in the campaign. Keepers will grant it the roster like a member's key: it reads "
            "the roster after the reveal (never before) to e-mail every member, and it does not count towards N. "
            "Your own contact is sealed to it, so that it can write to you about your campaign."
        ),
        icon=":material/mail:",
    )
elif relay_choice == "own":
    st.info(
        "Nobody else reads the roster: after creating, run `spartacus relay run CAMPAIGN --member-key-file "
        "YOUR.key --smtp-host …` on a machine of yours (the member key file is the one you save below).",
        icon=":material/mail:",
    )

ss = st.session_state
form = F.CreateForm(
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
    late_joiners=ss.get("c_late", "known"),
    beneficiary=ss.get("c_beneficiary", ""),
    relay=relay_choice,
)
config, errors = F.validate_create(form, now, settings.relay_service)
problems = st.empty()  # always in its place, so the component below is never re-mounted (it holds your key)
if errors and any(ss.get(k) for k in ("c_title", "c_purpose", "c_threshold", "c_t", "c_keepers_pasted", "c_keepers")):
    problems.error("Before you can create it, please fix:\n\n" + "\n".join(f"- {T.escape_md(e)}" for e in errors))

st.subheader("Sealed, in your browser")
value = _ui.component(
    "create",
    key="create",
    factory=settings.factory,
    implementation=implementation,
    forwarder=forwarder,
    config=config,
    scope=form.scope,
    lateJoiners=form.late_joiners,
    relayService=relay_choice == "service",
    outcome=_ui.outcome(page),
    **_ui.wallet_args(client),
)
if value and value.get("kind") == "sent" and value.get("action") == "create":
    _ui.act(client, page, value, settings.factory, lambda f: f"Campaign created at {f['campaign']}.")
_ui.show_outcome(page)
