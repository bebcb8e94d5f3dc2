"""Log reads through nodes that cap eth_getLogs, drop, delay and throttle (tests/rpcproxy.py in
front of a real anvil): every read returns exactly what the node holds, never asks past a cap
it has learnt, remembers the chunk (a keeper across restarts), and starts at the factory's
deployment block, never at block 0."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rpcproxy import (
    Deployment,
    LogCaps,
    RpcProxy,
    create_campaign,
    deploy,
    mine,
    pledge,
    spartacus,
    spartacus_json,
)
from web3 import Web3

from spartacus.chain import CampaignClient, ChainClient, _log_error_advice

# ─── The providers' words, read ──────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("message", "start", "stop", "advice"),
    [
        # Infura: a result cap with the range that fits
        (
            "-32005: query returned more than 10000 results. Try with this block range [0x64, 0x95].",
            100,
            5099,
            (50, False),
        ),
        # Alchemy: a result cap, any range up to 2K without one
        (
            "-32602: Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no"
            " limit on the response size, or you can request any block range with a cap of 10K logs in the response."
            " Based on your parameters, this block range should work: [0x0, 0x1f3]",
            0,
            4999,
            (500, False),
        ),
        (
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
            0,
            4999,
            (2000, False),
        ),
        # Alchemy's free tier: a hard range cap (its hint is no more than the cap)
        (
            "-32600: Under the Free tier plan, you can make eth_getLogs requests with up to a 10 block range. Based on"
            " your parameters, this block range should work: [0x3e8, 0x3f1]. Upgrade to PAYG for expanded block range.",
            1000,
            5999,
            (10, True),
        ),
        # QuickNode, reth, Infura's range refusal: hard caps
        ("-32614: eth_getLogs is limited to a 10,000 range", 0, 49_999, (10_000, True)),
        ("-32602: query exceeds max block range 100000", 0, 199_999, (100_000, True)),
        ("-32602: range 0 - 20000 exceeds limit of 10000", 0, 20_000, (10_000, True)),
        # reth and erigon: a result cap with a decimal range
        ("-32602: query exceeds max results 20000, retry with the range 5000-5600", 5000, 9999, (601, False)),
        # a node that says nothing useful: halve
        ("-32000: internal error", 0, 999, (500, False)),
        ("-32005: query returned more than 10000 results", 0, 0, (1, False)),
    ],
)
def test_a_refusal_says_what_to_ask_next(message: str, start: int, stop: int, advice: tuple[int, bool]) -> None:
    assert _log_error_advice(message, start, stop) == advice


# ─── Through the proxy, on a real anvil ──────────────────────────────────────────────


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """anvil with 500 blocks before the factory (so that a scan from block 0 shows), three funded
    keepers, and one campaign with 10 pledges 25 blocks apart, revealed by the last."""
    from spartacus.anvil import Anvil

    cwd = tmp_path_factory.mktemp("rpc-logs")
    with Anvil(extra=["--accounts", "10"], log=cwd / "anvil.log") as node:
        client = ChainClient(Web3(Web3.HTTPProvider(node.url)))
        mine(client, 500)
        d = deploy(node.url, client, cwd)
        campaign = create_campaign(d, threshold=11)
        for i in range(10):
            mine(client, 25)
            pledge(d, campaign, f"Member {i}")
        mine(client, 40)
        yield d


def via(proxy: RpcProxy, **kwargs: Any) -> ChainClient:
    return ChainClient(Web3(Web3.HTTPProvider(proxy.url)), **kwargs)


CAPS = [
    LogCaps("infura", max_results=3),
    LogCaps("alchemy", max_range=40, max_results=2),
    LogCaps("alchemy-free", max_range=10),
    LogCaps("quicknode", max_range=60),
    LogCaps("reth", max_results=2),
    LogCaps("reth", max_range=70),
    LogCaps("opaque", max_range=30),
]


@pytest.mark.anvil
@pytest.mark.parametrize("caps", CAPS, ids=lambda c: f"{c.profile}-{c.max_range}-{c.max_results}")
def test_reads_through_a_capped_node_are_complete_and_learn_the_cap(net: Deployment, caps: LogCaps) -> None:
    campaign = net.campaigns[0]
    expected = CampaignClient(net.client, campaign).pledges()
    with RpcProxy(net.url, caps=caps) as proxy:
        client = via(proxy)
        got = CampaignClient(client, campaign).pledges()
        assert [(p.index, p.pledger, p.envelope, p.live) for p in got] == [
            (p.index, p.pledger, p.envelope, p.live) for p in expected
        ]
        assert proxy.stats["capped"] >= 1, "the cap was never met: the test proves nothing"
        served = [(a, b) for a, b, refused in proxy.log_queries if not refused]
        if caps.max_range is not None and caps.profile != "alchemy":
            assert max(b - a + 1 for a, b in served) <= caps.max_range
        # The client remembers: a second read over the same blocks meets a range cap no more.
        proxy.log_queries.clear()
        again = CampaignClient(client, campaign).pledges()
        assert len(again) == len(expected)
        refused_again = sum(refused for *_, refused in proxy.log_queries)
        if caps.max_range is not None and caps.profile in ("alchemy-free", "quicknode", "reth"):
            assert client.log_range_limit == caps.max_range
            assert refused_again == 0


@pytest.mark.anvil
def test_every_scan_starts_at_the_factory_never_at_block_0(net: Deployment, tmp_path: Path) -> None:
    campaign = net.campaigns[0]
    organizer_key = "organizer-0.key"
    with RpcProxy(net.url, caps=LogCaps("quicknode", max_range=100)) as proxy:
        assert spartacus_json(proxy.url, net.factory, net.cwd, "status", campaign)["count"] == 11
        spartacus_json(proxy.url, net.factory, net.cwd, "campaigns")
        state = str(tmp_path / "k0.sqlite")
        spartacus_json(
            proxy.url, net.factory, net.cwd, "keeper", "run", "--key-file", "keeper0.key", "--once", "--state", state
        )
        spartacus_json(
            proxy.url, net.factory, net.cwd, "keeper", "run", "--key-file", "keeper1.key", "--once",
            "--state", str(tmp_path / "k1.sqlite"),
        )  # fmt: skip
        roster = spartacus_json(proxy.url, net.factory, net.cwd, "roster", campaign, "--member-key-file", organizer_key)
        assert len(roster["members"]) == 11 and roster["skipped"] == []
        starts = [a for a, _b, _refused in proxy.log_queries]
        assert starts and min(a for a in starts if a is not None) >= net.factory_block > 500


@pytest.mark.anvil
def test_a_keeper_keeps_the_chunk_its_node_accepts_across_restarts(net: Deployment, tmp_path: Path) -> None:
    state = tmp_path / "keeper.sqlite"
    with RpcProxy(net.url, caps=LogCaps("quicknode", max_range=50)) as proxy:
        args = ("keeper", "run", "--key-file", "keeper2.key", "--once", "--state", str(state))
        spartacus_json(proxy.url, net.factory, net.cwd, *args)
        assert proxy.stats["capped"] >= 1
        with sqlite3.connect(state) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        assert meta["log_range_limit"] == "50" and int(meta["log_chunk"]) <= 50
        proxy.log_queries.clear()
        spartacus_json(proxy.url, net.factory, net.cwd, *args)
        assert proxy.log_queries and not any(refused for *_, refused in proxy.log_queries)


@pytest.mark.anvil
def test_reads_survive_a_node_that_drops_delays_and_throttles(net: Deployment, tmp_path: Path) -> None:
    campaign = net.campaigns[0]
    for i in (0, 1):  # released (again: nothing twice) by two keepers straight on the node
        spartacus_json(
            net.url, net.factory, net.cwd, "keeper", "run", "--key-file", f"keeper{i}.key", "--once",
            "--state", str(tmp_path / f"k{i}.sqlite"),
        )  # fmt: skip
    with RpcProxy(
        net.url, caps=LogCaps("infura", max_results=4), drop=0.1, delay=(0, 0.02), rate_limit=30, seed=7
    ) as proxy:
        status = spartacus_json(proxy.url, net.factory, net.cwd, "status", campaign)
        roster = spartacus_json(
            proxy.url, net.factory, net.cwd, "roster", campaign, "--member-key-file", "organizer-0.key"
        )
        assert status["count"] == 11 and status["state"] == "revealed"
        assert len(roster["members"]) == 11
        assert proxy.stats["dropped"] >= 1 and proxy.stats["throttled"] >= 1, dict(proxy.stats)


@pytest.mark.anvil
def test_a_node_that_never_answers_gets_a_one_line_error(net: Deployment) -> None:
    with RpcProxy(net.url) as proxy:
        proxy.down = True
        out = spartacus(proxy.url, net.factory, net.cwd, "status", net.campaigns[0])
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "cannot reach the node" in out.stderr and "Traceback" not in out.stderr
