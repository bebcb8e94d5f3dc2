"""A campaign whose pledges spread over 50,000 blocks, end to end through a node that serves
eth_getLogs over 2,000 blocks at most (QuickNode's refusal): keepers (running processes),
`status`, `campaigns` and `roster`, the organizer's relay (`relay run` as a process, e-mailing
every member through a real aiosmtpd server) and the dApp's pages (``streamlit run`` read in
Debian's Chromium through Playwright: the list, the campaign page, the member area) all work;
no request asks past the cap once it is known, and no scan starts before the factory's
deployment block.

The scenario (``rpcproxy.spread_deployment``) is built once for the module; see its docstring.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from browser_helpers import chromium_path, component, goto, launched, see, start_streamlit, stop
from relay_helpers import Cli, Mailbox, Proc
from rpcproxy import (
    LogCaps,
    Spread,
    assert_full_rosters,
    assert_published_once,
    keeper_process,
    spartacus_json,
    spread_deployment,
    wait_for,
)

from spartacus.chain import CampaignClient
from spartacus.relay import relay_status

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

CAP = 2_000


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spread]:
    with spread_deployment(
        tmp_path_factory.mktemp("spread"), blocks=50_000, pledges=6, caps=LogCaps("quicknode", max_range=CAP)
    ) as s:
        yield s


@pytest.fixture(scope="module")
def released(spread: Spread) -> Spread:
    """The campaign with two keepers' releases (t = 2): the keepers' test's, or made here, by
    `keeper run --once` on the node itself (kept out of the proxy's record)."""
    d = spread.deployment
    c = CampaignClient(d.client, spread.campaign)
    for i in (0, 1):
        if i not in {r.keeper_index for r in c.releases()}:
            spartacus_json(d.url, d.factory, d.cwd, "keeper", "run", "--key-file", f"keeper{i}.key", "--once")
    return spread


def assert_scans_within_cap(spread: Spread, queries: Sequence[tuple[int | None, int | None, bool]]) -> None:
    """Every eth_getLogs asked for a block range that starts at the factory's deployment block or
    later (never at 0, never "earliest"), and none served was wider than the cap."""
    assert queries, "no eth_getLogs went through the proxy"
    assert all(a is not None and a >= spread.deployment.factory_block for a, _, _ in queries), queries
    served = [(a, b) for a, b, refused in queries if not refused and a is not None and b is not None]
    assert max(b - a + 1 for a, b in served) <= CAP


def assert_cap_learned_once(spread: Spread, queries: Sequence[tuple[int | None, int | None, bool]]) -> None:
    """One process's reads: within the cap, and at most one refusal (the one that taught it the
    cap); any later request past the cap would be refused again."""
    assert_scans_within_cap(spread, queries)
    refused = [(a, b) for a, b, r in queries if r]
    assert len(refused) <= 1, f"asked past the cap after learning it: {refused}"


def email_of(name: str) -> str:
    """The e-mail address ``spread_deployment`` gives each member in its record."""
    return "olga@example.org" if name == "Olga Organizer" else f"{name.lower().replace(' ', '.')}@example.org"


def test_the_scenario_spreads_over_50_000_blocks(spread: Spread) -> None:
    d = spread.deployment
    assert spread.last_block - d.factory_block >= 50_000
    c = CampaignClient(d.client, spread.campaign)
    blocks = [p.block_number for p in c.pledges()]
    assert blocks[-1] - blocks[0] >= 35_000 and c.status().state == "revealed"


def test_keepers_status_and_roster_through_a_capped_node(spread: Spread) -> None:
    d, proxy, campaign = spread.deployment, spread.proxy, spread.campaign
    status = d.cli(proxy.url, "status", campaign)
    assert (status["state"], status["count"], status["threshold"]) == ("revealed", 7, 7)
    [listed] = d.cli(proxy.url, "campaigns")["campaigns"]
    assert listed["address"] == campaign and listed["count"] == 7

    procs: list[Any] = []
    try:
        for i in (0, 1):
            procs.append(
                keeper_process(proxy.url, d.factory, d.cwd, f"keeper{i}.key", "--interval", "0.5",
                               log=d.cwd / f"keeper{i}.log")
            )  # fmt: skip
        c = CampaignClient(d.client, campaign)
        wait_for(lambda: len({r.keeper_index for r in c.releases()}) == 2, 180, "both keepers' releases")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    assert_published_once(d.client, campaign)
    roster = spartacus_json(proxy.url, d.factory, d.cwd, "roster", campaign, "--member-key-file", "organizer-0.key")
    assert len(roster["members"]) == 7 and roster["skipped"] == []
    assert_full_rosters(d, campaign)

    assert_scans_within_cap(spread, proxy.log_queries)
    # Each process learns the cap once (or never, from the saved state): a few refusals in all.
    assert 1 <= proxy.stats["capped"] <= 12, dict(proxy.stats)


def test_the_count_history_keeps_to_a_learned_cap(spread: Spread) -> None:
    """The one-request count history is never asked past a cap the client has learned."""
    from web3 import Web3

    from spartacus.chain import ChainClient

    c = CampaignClient(ChainClient(Web3(Web3.HTTPProvider(spread.proxy.url))), spread.campaign)
    created = c.created.block_number  # its read of the factory's logs meets the cap, once
    assert c.client.log_range_limit == CAP
    mark = len(spread.proxy.log_queries)
    history = c.count_history()
    assert [count for _, count in history] == list(range(1, len(history) + 1)) and history[-1][1] == 7
    queries = spread.proxy.log_queries[mark:]
    assert_scans_within_cap(spread, queries)
    assert not [q for q in queries if q[2]] and min(a for a, _, _ in queries if a is not None) == created


def test_the_relay_emails_every_member_once_through_a_capped_node(released: Spread) -> None:
    """The organizer's own relay (the campaign names no relay service), as a process."""
    d, proxy, campaign = released.deployment, released.proxy, released.campaign
    names = {name for _key, _index, name in d.members[campaign]}
    state = d.cwd / "organizer-relay.sqlite"
    mark = len(proxy.log_queries)
    with Mailbox() as box:
        relay = Proc(Cli(proxy.url, d.factory, d.cwd), "relay", "run", campaign, "--member-key-file", "organizer-0.key",
                     "--smtp-host", "127.0.0.1", "--smtp-port", str(box.port), "--state", str(state),
                     "--interval", "0.2", "--settle", "0")  # fmt: skip
        try:
            relay.wait_for(f"batch 0 of {campaign}: {len(names)} new member", timeout=120)
            box.wait_for(len(names), timeout=120)
            wait_for(lambda: relay_status(state, campaign)["counts"]["delivered"] == len(names), 60, "delivered rows")
            # Two more passes (each reads the head once): a pass after the last delivery has run whole.
            passes = proxy.stats["eth_blockNumber"]
            wait_for(lambda: proxy.stats["eth_blockNumber"] >= passes + 2, 60, "two more passes of the relay")
        finally:
            code = relay.terminate()
        assert code == 0, relay.output()
    assert box.by_recipient() == Counter({email_of(n): 1 for n in names}), relay.output()
    for received in box.received:
        msg = received.message
        assert msg["X-Spartacus-Kind"] == "roster"
        text = str(msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        assert all(n in text for n in names), (received.rcpt_tos, text)
    assert_cap_learned_once(released, released.proxy.log_queries[mark:])


@pytest.mark.browser
def test_the_dapps_pages_through_a_capped_node(released: Spread, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The list, the campaign page (live count and state, every pledge of the 50,000 blocks
    recounted from the events) and the member area (the roster read in the browser with the
    organizer's member key file), with the dApp's network set to the proxy."""
    d, proxy, campaign = released.deployment, released.proxy, released.campaign
    chromium = chromium_path()
    c = CampaignClient(d.client, campaign)
    status, pledges = c.status(), c.pledges()
    names = [name for _key, _index, name in d.members[campaign]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARTACUS_")} | {
        "SPARTACUS_NETWORK": proxy.url,
        "SPARTACUS_FACTORY": d.factory,
        "SPARTACUS_REFRESH": "1",
    }
    mark, calls = len(proxy.log_queries), proxy.stats["eth_call"]
    server, url = start_streamlit(env, tmp_path_factory.mktemp("dapp") / "streamlit.log")
    try:
        with launched(chromium, url) as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            goto(page, url)
            see(page, "Night shift 0")
            see(page, f"{status.count} of {status.threshold} live pledges")

            goto(page, f"{url}/?campaign={campaign}")
            see(page, "REVEALED")
            see(page, f"Revealed at block {status.reveal_block}")
            see(page, f"✓ Recomputed from {len(pledges)} Pledged/Withdrawn events: {status.count}, the same as")
            see(page, f"None of the {len(pledges)} pledges so far came through a relayer")

            goto(page, f"{url}/member?campaign={campaign}")
            frame = component(page)
            frame.locator('input[name="member-key-file"]').set_input_files(str(d.cwd / "organizer-0.key"))
            see(frame, f"The roster: {len(names)} members")
            table = frame.get_by_test_id("roster")
            for name in names:
                see(table, name)
    finally:
        stop(server)
    queries = proxy.log_queries[mark:]
    assert proxy.stats["eth_call"] > calls  # the live state was read through the proxy
    # The events were read through it too, as far as the last pledge and the keepers' releases.
    served = [(a, b) for a, b, refused in queries if not refused and a is not None and b is not None]
    last = max(r.block_number for r in c.releases())
    assert any(a <= pledges[0].block_number <= b for a, b in served)
    assert any(a <= last <= b for a, b in served)
    assert_cap_learned_once(released, queries)
