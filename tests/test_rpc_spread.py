"""A campaign whose pledges spread over 50,000 blocks, end to end through a node that serves
eth_getLogs over 2,000 blocks at most (QuickNode's refusal): keepers (running processes),
`status`, `campaigns` and `roster` all work, no request asks past the cap once it is known, and
no scan starts before the factory's deployment block.

The scenario (``rpcproxy.spread_deployment``) is the one the relay's and the dApp's tests
reuse; see its docstring.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
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

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

CAP = 2_000


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spread]:
    with spread_deployment(
        tmp_path_factory.mktemp("spread"), blocks=50_000, pledges=6, caps=LogCaps("quicknode", max_range=CAP)
    ) as s:
        yield s


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

    served = [(a, b) for a, b, refused in proxy.log_queries if not refused and a is not None and b is not None]
    assert max(b - a + 1 for a, b in served) <= CAP
    assert min(a for a, _ in served) >= d.factory_block
    # Each process learns the cap once (or never, from the saved state): a few refusals in all.
    assert 1 <= proxy.stats["capped"] <= 12, dict(proxy.stats)
