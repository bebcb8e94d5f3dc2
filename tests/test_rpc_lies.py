"""Keepers behind lying nodes (tests/rpcproxy.py in front of a real anvil), P1, P3, P4, P9.

A node, or whoever sits between it and a keeper on an ``http://`` RPC, tries to open pledges
before the threshold: it answers "revealed" for an open campaign and injects a ``Pledged``
log that carries its own member key; or it hides a ``Withdrawn`` log to get a withdrawn
pledge released. A keeper behind it checks the logs against the contract's storage, releases
nothing, and says so (error log, ``refused``, exit status 5 with ``--once``). A node that lies
about the storage too is caught by a second node (``--also-network``). Honest nodes get their
releases, and the keepers on honest nodes alone open every live pledge (P9).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rpcproxy import (
    Deployment,
    Liar,
    RpcProxy,
    assert_full_rosters,
    assert_published_once,
    create_campaign,
    deploy_at,
    own_anvil,
    pledge,
    spartacus,
    withdraw,
)
from web3 import Web3

from spartacus.chain import CampaignClient, ChainClient

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with own_anvil(tmp_path_factory.mktemp("lies")) as n:
        yield n


@pytest.fixture
def net(node: Any, tmp_path: Path) -> Deployment:
    return deploy_at(node.url, tmp_path)


def keeper_once(d: Deployment, i: int, url: str, *extra: str) -> Any:
    return spartacus(url, d.factory, d.cwd, "keeper", "run", "--key-file", f"keeper{i}.key", "--once", "--json",
                     "--state", str(d.cwd / f"keeper{i}-{abs(hash(url))}.sqlite"), *extra)  # fmt: skip


def releases(d: Deployment, campaign: str) -> list[Any]:
    return CampaignClient(d.client, campaign).releases()


def test_a_keeper_behind_a_node_that_forges_a_reveal_releases_nothing_and_says_so(net: Deployment) -> None:
    campaign = create_campaign(net, threshold=3)
    pledge(net, campaign, "Member 0")  # 2 of 3: open
    liar = Liar(net, campaign)
    with RpcProxy(net.url) as proxy:
        liar.tell(proxy)
        # The lie is served: a reader through this node sees the campaign revealed with 3 pledges.
        seen = CampaignClient(ChainClient(Web3(Web3.HTTPProvider(proxy.url))), campaign)
        assert seen.status().state == "revealed" and len(seen.pledges()) == 3
        for i in (0, 1):  # t = 2 keepers behind the liar: without the check, Mallory reads everyone
            out = keeper_once(net, i, proxy.url)
            assert out.returncode == 5, out.stderr
            assert "disagree with the contract's storage" in out.stderr and "refusing to release" in out.stderr
            assert "Traceback" not in out.stderr
            assert campaign in json.loads(out.stdout)["refused"]
        assert proxy.stats["lied"] > 0
        # Not a byte of a release reached the liar (its calldata would hold Mallory's grant).
        assert proxy.stats["eth_estimateGas"] == proxy.stats["eth_sendRawTransaction"] == 0
    assert releases(net, campaign) == []  # P1, P3: nothing opened below N


def test_a_keeper_behind_a_node_that_hides_a_withdrawal_releases_nothing(net: Deployment) -> None:
    campaign = create_campaign(net, threshold=4)
    pledge(net, campaign, "Member 0")
    gone = pledge(net, campaign, "Member 1")
    withdraw(net, campaign, gone)  # 2 of 4 again
    pledge(net, campaign, "Member 2")
    pledge(net, campaign, "Member 3")  # 4 of 4: revealed, without #2
    c = CampaignClient(net.client, campaign)
    assert c.status().state == "revealed"
    withdrawn = net.client.contracts.topic("Withdrawn")
    with RpcProxy(net.url) as proxy:
        proxy.hide_logs(campaign, bytes(withdrawn))
        seen = CampaignClient(ChainClient(Web3(Web3.HTTPProvider(proxy.url))), campaign)
        assert all(p.live for p in seen.pledges())  # the lie: the withdrawn pledge looks live
        out = keeper_once(net, 0, proxy.url)
        assert out.returncode == 5 and "live pledges in the logs" in out.stderr, out.stderr
        assert proxy.stats["eth_estimateGas"] == proxy.stats["eth_sendRawTransaction"] == 0
    assert releases(net, campaign) == []  # P4: never the withdrawn one, so nothing at all
    # Honest nodes: the keepers release the live pledges and never the withdrawn one.
    for i in (0, 1):
        assert keeper_once(net, i, net.url).returncode == 0
    published = assert_published_once(net.client, campaign)
    for what in published.values():
        assert gone not in what["shared"] and gone not in what["granted"]
    assert_full_rosters(net, campaign)


def test_keepers_on_honest_nodes_open_every_pledge_whatever_the_liar_says(net: Deployment) -> None:
    campaign = create_campaign(net, threshold=3)
    pledge(net, campaign, "Member 0")
    liar = Liar(net, campaign)
    with RpcProxy(net.url) as lying, RpcProxy(net.url) as honest:
        liar.tell(lying, storage=True)
        assert keeper_once(net, 0, lying.url, "--also-network", honest.url).returncode == 5
        assert releases(net, campaign) == []
        pledge(net, campaign, "Member 1")  # the real reveal
        # keeper 0 stays behind the liar (whose lies no longer match the chain); 1 and 2 are honest
        out = keeper_once(net, 0, lying.url, "--also-network", honest.url)
        assert out.returncode == 5 and "disagree" in out.stderr, out.stderr
        for i in (1, 2):
            assert keeper_once(net, i, honest.url).returncode == 0
    published = assert_published_once(net.client, campaign)
    assert all(max(w["shared"] + w["granted"]) <= 2 for w in published.values())  # Mallory's #3 never
    assert_full_rosters(net, campaign)  # P9: t honest keepers suffice


def test_a_storage_liar_is_caught_by_a_second_node_and_honest_nodes_agree(net: Deployment) -> None:
    campaign = create_campaign(net, threshold=3)
    pledge(net, campaign, "Member 0")
    liar = Liar(net, campaign)
    with RpcProxy(net.url) as lying, RpcProxy(net.url) as honest, RpcProxy(net.url) as other:
        liar.tell(lying, storage=True)
        # Either way round: whichever node lies, the two disagree and nothing is released.
        for primary, second in ((lying, honest), (honest, lying)):
            out = keeper_once(net, 0, primary.url, "--also-network", second.url)
            assert out.returncode == 5 and "the nodes disagree" in out.stderr, out.stderr
        assert releases(net, campaign) == []
        assert lying.stats["eth_estimateGas"] == lying.stats["eth_sendRawTransaction"] == 0
        pledge(net, campaign, "Member 1")  # the real reveal
        for i in (0, 1):  # two honest nodes agree: the keepers release
            out = keeper_once(net, i, honest.url, "--also-network", other.url)
            assert out.returncode == 0, out.stderr
        assert honest.stats["eth_getLogs"] and other.stats["eth_getLogs"]  # both were asked
    assert_published_once(net.client, campaign)
    assert_full_rosters(net, campaign)


def test_a_second_node_of_another_chain_is_refused(net: Deployment, tmp_path: Path) -> None:
    from spartacus.anvil import Anvil

    with Anvil(extra=["--chain-id", "1234", "--accounts", "1"]) as stranger:
        out = keeper_once(net, 0, net.url, "--also-network", stranger.url)
    assert out.returncode == 1 and "is chain 1234" in out.stderr and "Traceback" not in out.stderr
