"""The campaigns of the factory, or one campaign's public page (``/?campaign=0x…``)."""

from __future__ import annotations

from typing import Any

import _campaign as C
import _text as T
import _ui
import streamlit as st

from spartacus._exceptions import SpartacusError


def campaign_list() -> None:
    st.title("Campaigns")
    st.markdown(
        "Each campaign waits for **N** people. Pledges stay sealed — unreadable by anyone — until the "
        "N-th live pledge lands; then every member learns who the others are, at the same moment."
    )
    settings = _ui.settings()
    if not settings.factory:
        st.info("No factory is set: start the dApp with SPARTACUS_FACTORY=0x… (see `spartacus deploy`).")
    else:
        st.fragment(run_every=max(5.0, settings.refresh))(_rows)(settings.factory)
    with st.expander("Open a campaign by its address"):
        address = st.text_input("Campaign address", key="open_address", placeholder="0x…")
        if address.strip():
            try:
                _open_button(C.check_campaign_address(address), "Open this campaign", key="open_typed")
            except SpartacusError as exc:
                _ui.error(_ui.fail(exc))


def _open_button(address: str, label: str, key: str) -> None:
    """Opens a campaign's page: this same page with ``?campaign=`` (a page link to the page
    one is on does not navigate, so the query parameter is set and the whole app rerun)."""
    if st.button(label, key=key, icon=":material/arrow_forward:"):
        st.query_params["campaign"] = address
        st.rerun(scope="app")


def _rows(factory: str) -> None:
    try:
        rows = _ui.campaign_rows(factory)
    except Exception as exc:  # noqa: BLE001 - a node or a contract may fail in any way
        _ui.error(f"Cannot list the campaigns of factory {factory}: {_ui.fail(exc)}")
        return
    if not rows:
        st.info("No campaign yet: be the first.")
        st.page_link("pages/3_Create.py", label="Create a campaign", icon=":material/add_circle:")
        return
    for row in rows:
        with st.container(border=True):
            st.markdown(f"**{T.escape_md(row.title)}**")
            st.caption(T.escape_md(row.purpose))
            st.progress(row.progress, text=f"{row.count} of {row.threshold} live pledges")
            st.caption(T.state_text(row.state, row.deadline, row.now))
            _open_button(row.address, "Open", key=f"open:{row.address}")


def _all_campaigns() -> None:
    st.query_params.clear()


@st.dialog("Share this campaign")
def _share(address: str, title: str) -> None:
    st.caption("Anyone with this link can read the campaign and pledge; the QR code holds the same link.")
    _ui.share(address, title)


def campaign_page(address: str) -> None:
    settings = _ui.settings()
    _, facts = _ui.campaign(address)
    c = facts.config
    st.button("All campaigns", icon=":material/arrow_back:", type="tertiary", on_click=_all_campaigns)
    st.title(T.escape_md(c.title))
    st.markdown(f"**{T.escape_md(c.purpose)}**")
    trusted, untrusted_text = _ui.trusted(address)
    if not trusted:
        _ui.warning(untrusted_text)

    st.fragment(run_every=settings.refresh)(_live)(facts)
    _actions(facts)

    if c.description:
        st.subheader("Description")
        st.markdown(T.escape_md(c.description, multiline=True))
    if c.plan:
        st.subheader("Public plan")
        st.markdown(T.escape_md(c.plan, multiline=True))
    _what_happens(facts)
    _verify(facts)


def _live(facts: C.CampaignFacts) -> None:
    client = _ui.client()
    c = facts.config
    try:
        live = _ui.live(facts.address)
    except Exception as exc:  # noqa: BLE001 - a node or a contract may fail in any way
        _ui.error(f"Cannot read the campaign: {_ui.fail(exc)}")
        return
    badge = {"open": "blue", "revealed": "green", "expired": "gray", "cancelled": "gray"}[live.state]
    st.badge(live.state.upper(), color=badge)
    st.metric("Live pledges", f"{live.count} of {c.threshold}", help="The contract's pledgeCount(): live pledges.")
    st.progress(min(1.0, live.count / c.threshold), text=f"{live.count} of {c.threshold} live pledges")
    left = T.time_left_text(live.state, c.deadline, live.now)
    st.markdown(f"**Deadline:** {T.format_time(c.deadline)} — **{left}**")
    if live.state == "revealed":
        st.success(
            f"Revealed at block {live.reveal_block}: the members can now read the roster.",
            icon=":material/celebration:",
        )
    elif live.state == "expired":
        st.info("The deadline passed below the threshold: nothing will ever be revealed. Deposits come back.")
    elif live.state == "cancelled":
        st.info("The organizer cancelled the campaign: nothing will ever be revealed. Deposits come back.")
    st.subheader("The price of a fake count")
    st.markdown(T.escape_md(C.fake_cost_text(c.deposit, live.count, c.threshold, c.beneficiary)))
    forwarder = _ui.forwarder(client)
    if forwarder:
        try:
            relayed, total = _ui.history_store(_ui.settings().network).relayed(
                client, facts.address, forwarder, facts.created_block, live.block
            )
            st.markdown(T.escape_md(C.relayed_text(relayed, total)))
        except Exception as exc:  # noqa: BLE001
            _ui.error(f"Cannot count the relayed pledges: {_ui.fail(exc)}")

    # Last, as it reads every event once per server (then only new blocks): the count is on screen first.
    st.subheader("Live pledges over time")
    try:
        points = _ui.history_store(_ui.settings().network).points(
            client, facts.address, facts.created_block, live.block
        )
    except Exception as exc:  # noqa: BLE001 - a node or a contract may fail in any way
        _ui.error(f"Cannot read the campaign's events: {_ui.fail(exc)}")
        return
    _chart(client, facts, points, live)
    recount = points[-1][1] if points else 0
    if recount == live.count:
        st.caption(
            f"✓ Recomputed from {len(points)} Pledged/Withdrawn events: {recount}, the same as the contract's count."
        )
    else:  # a node lagging between the two reads: the next refresh settles it
        st.caption(f"Events give {recount}, the contract {live.count}: reading again shortly.")


def _actions(facts: C.CampaignFacts) -> None:
    """The call to action (a button labelled "Pledge" while the campaign takes pledges), then the
    other pages of the campaign, and the share button."""
    try:
        state = _ui.live(facts.address).state
    except Exception:  # noqa: BLE001 - the live part above says what failed
        state = "open"
    pledging = state == "open" or (state == "revealed" and facts.config.late_joiners.value != "closed")
    cols = st.columns([1, 1.4, 1.2, 1], vertical_alignment="center")
    with cols[0]:
        if pledging and st.button("Pledge", type="primary", icon=":material/how_to_vote:", key="cta_pledge"):
            st.switch_page("pages/1_Pledge.py", query_params={"campaign": facts.address})
    with cols[1]:
        st.page_link(
            "pages/2_Withdraw.py",
            label="Withdraw / refund",
            icon=":material/undo:",
            query_params={"campaign": facts.address},
        )
    with cols[2]:
        st.page_link(
            "pages/4_Member_area.py",
            label="Member area",
            icon=":material/badge:",
            query_params={"campaign": facts.address},
        )
    with cols[3]:
        if st.button("Share", icon=":material/share:", key="share"):
            _share(facts.address, facts.config.title)


def _chart(client: Any, facts: C.CampaignFacts, points: list[tuple[int, int]], live: C.Live) -> None:
    import altair as alt
    import pandas as pd

    store = _ui.history_store(_ui.settings().network)
    rows = C.chart_series(points, lambda b: store.block_time(client, b), live.now)
    threshold = facts.config.threshold
    data = pd.DataFrame(rows)
    top = max(threshold, int(data["live pledges"].max()) if len(data) else 0) + 1
    span = (rows[-1]["time"] - rows[0]["time"]).total_seconds() if rows else 0
    when = "%H:%M:%S" if span <= 7200 else "%d %b %H:%M" if span <= 3 * 86400 else "%d %b"
    line = (
        alt.Chart(data)
        .mark_line(interpolate="step-after", strokeWidth=3)
        .encode(
            x=alt.X("time:T", title=None, axis=alt.Axis(format=when, tickCount=5, labelOverlap=True)),
            y=alt.Y(
                "live pledges:Q",
                title="live pledges",
                scale=alt.Scale(domain=[0, top]),
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            tooltip=["time:T", "live pledges:Q", "block:Q"],
        )
    )
    limit = pd.DataFrame({"y": [threshold], "label": [f"threshold N = {threshold}"]})
    rule = alt.Chart(limit).mark_rule(color="#e4572e", strokeDash=[6, 4], strokeWidth=2).encode(y="y:Q")
    label = (
        alt.Chart(limit)
        .mark_text(align="left", dx=4, dy=-8, color="#e4572e", fontWeight="bold")
        .encode(y="y:Q", x=alt.value(0), text="label:N")
    )
    st.altair_chart((line + rule + label).properties(height=260), width="stretch")


def _what_happens(facts: C.CampaignFacts) -> None:
    c = facts.config
    n, t = len(c.keepers), c.keeper_threshold
    audience = "every member (each live pledger and the organizer)" if c.scope.value == "members" else "anyone"
    st.subheader("What happens when you pledge")
    st.markdown(
        f"""
1. You write the name and the contact details you want the other members to know, in your
   browser. A fresh **member key** is made there for this pledge; you save it as a file.
2. Your record is **sealed in your browser**: encrypted with a random key, and that key split among the {n} keepers so
   that any {t} of them are needed to open it. Nobody — not the organizer, not a keeper alone, not
   whoever runs this page — can read it now.
3. The sealed bytes go on-chain with your pledge{" and the deposit" if c.deposit else ""}; the live count goes
   up by one. The address that pledges is public on-chain; your identity is not. With no wallet, through
   a relayer, that address is your member key's own, new one, tied to nobody.
4. While the campaign is open you can **withdraw**: a withdrawn pledge is never revealed.
5. If the live count reaches **{c.threshold}** before the deadline, the campaign is revealed in that same
   transaction: the keepers release their shares and {audience} can read the whole roster and the
   organizer's instructions, all from the same block. If it never does, nothing is ever revealed.
"""
    )
    st.subheader("Deposit and keepers")
    if c.deposit:
        back = (
            f"after the reveal it goes to the beneficiary `{c.beneficiary}`"
            if c.beneficiary.lower() != C.ZERO_ADDRESS
            else "after the reveal it comes back to you"
        )
        st.markdown(
            f"Each pledge locks **{T.format_wei(c.deposit)}** ({c.deposit:,} wei). It comes back after a "
            f"withdrawal, an expiry or a cancellation; {back}."
        )
    else:
        st.markdown("This campaign asks **no deposit**.")
    st.markdown(f"**{t} of {n} keepers** are needed to open a pledge after the reveal:")
    st.markdown("\n".join(f"- {_ui.link('address', a)}" for a in facts.keeper_addresses))
    st.subheader("After the reveal")
    st.markdown(T.escape_md(C.late_joiner_text(c.late_joiners, c.deadline)))
    st.subheader("Who e-mails the members")
    s = _ui.settings()
    st.markdown(T.escape_md(C.relay_text(c, s.relay_service, s.relay_name)))


def _verify(facts: C.CampaignFacts) -> None:
    st.subheader("Verify it on-chain")
    link = _ui.link
    st.markdown(
        f"""
- {T.escape_md(_ui.chain_label())}: campaign contract {link("address", facts.address)}, created by
  {link("address", facts.creator)} in block {facts.created_block} (transaction {link("tx", facts.created_tx)})
  through factory {link("address", facts.factory)}.
- The live count is the contract's `pledgeCount()`; `state()`, `threshold()` and `deadline()` are views too.
- Anyone can recompute the count from the contract's events: `Pledged(index, pledger, memberKey, envelope,
  count)` and `Withdrawn(index, pledger, count)` each carry the count after them; `ThresholdReached` marks
  the reveal. The chart above is drawn from those events.
- From a terminal: `spartacus status {facts.address} --network <your RPC>`.
"""
    )


param = st.query_params.get("campaign")
if param:
    try:
        campaign_page(C.check_campaign_address(param))
    except SpartacusError as exc:
        _ui.error(_ui.fail(exc))
        _ui.back_to_list()
else:
    campaign_list()
