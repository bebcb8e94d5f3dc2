"""Fee spikes and empty wallets, with anvil's base-fee controls and real keeper processes.

A release stuck behind a fee spike is replaced with the same nonce and a higher fee (never
above ``--max-fee-gwei``), is never left pending, and never published twice: every version is
journaled before it is sent, and only one of them can be mined, across a SIGKILL too. A keeper
out of funds keeps running, says which address needs how much, and resumes by itself.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fee_helpers import Miner, low_base_fee, pool_has, rpc, spike
from rpcproxy import (
    Deployment,
    anvil_deployment,
    assert_full_rosters,
    assert_published_once,
    create_campaign,
    fund,
    keeper_process,
    pledge,
    spartacus,
    wait_for,
)

from spartacus._fees import GWEI
from spartacus.chain import CampaignClient

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with anvil_deployment(tmp_path_factory.mktemp("fees")) as d:
        yield d


def journal(state: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(state) as db:
        return db.execute("SELECT nonce, tx_hash, tx FROM inflight").fetchall()


def mined_release(d: Deployment, campaign: str, keeper: str) -> list[Any]:
    """The release transactions of ``keeper`` in ``campaign``, as mined."""
    c = CampaignClient(d.client, campaign)
    txs = []
    for log in d.client.logs(campaign, ["Released"], from_block=c.created.block_number):
        if log.args["keeper"].lower() == keeper.lower():
            txs.append(d.client.w3.eth.get_transaction(log.tx_hash))
    return txs


def one_nonce_per_release(d: Deployment, keeper: str) -> None:
    """Every transaction the keeper ever sent is one mined release: no version of any release
    landed twice, and no nonce was spent on anything else."""
    releases = sum(len(mined_release(d, campaign, keeper)) for campaign in d.campaigns)
    assert int(rpc(d, "eth_getTransactionCount", keeper, "latest"), 16) == releases


def run_keeper(d: Deployment, tmp_path: Path, i: int, *extra: str) -> tuple[Any, Path, Path]:
    log, state = tmp_path / f"keeper{i}.log", tmp_path / f"keeper{i}.sqlite"
    proc = keeper_process(
        d.url, d.factory, d.cwd, f"keeper{i}.key", "--interval", "0.3", "--state", str(state), *extra, log=log
    )
    return proc, log, state


def stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - a hung keeper fails the test below
            proc.kill()
            proc.wait()


def test_a_release_stuck_behind_a_fee_spike_is_replaced_and_mined_once(net: Deployment, tmp_path: Path) -> None:
    campaign = create_campaign(net, threshold=2)
    pledge(net, campaign, "Member 0")  # the reveal
    low_base_fee(net)
    keeper = net.keepers[0]["address"]
    height, cap = 40 * GWEI, 200 * GWEI
    with Miner(net, spike(height, 30), trigger=lambda: pool_has(net, keeper)) as miner:
        proc, log, state = run_keeper(net, tmp_path, 0, "--stuck-blocks", "2", "--max-fee-gwei", "200")
        try:
            wait_for(lambda: mined_release(net, campaign, keeper), 90, "the release to be mined")
            assert miner.spiking, "the spike never hit the keeper's transaction: the test proves nothing"
            wait_for(lambda: not journal(state), 30, "the journal to empty")
        finally:
            stop(proc)
    text = log.read_text()
    assert "replaced by" in text, text[-3000:]
    [tx] = mined_release(net, campaign, keeper)
    assert height < tx["maxFeePerGas"] <= cap
    one_nonce_per_release(net, keeper)
    assert_published_once(net.client, campaign)


def test_a_release_waits_at_the_fee_cap_and_is_mined_when_fees_fall(net: Deployment, tmp_path: Path) -> None:
    campaign = create_campaign(net, threshold=2)
    pledge(net, campaign, "Member 0")
    low_base_fee(net)
    keeper = net.keepers[1]["address"]
    cap = 12 * GWEI
    with Miner(net, spike(60 * GWEI, 6), trigger=lambda: pool_has(net, keeper)) as miner:
        proc, log, state = run_keeper(net, tmp_path, 1, "--stuck-blocks", "1", "--max-fee-gwei", "12")
        try:
            wait_for(lambda: mined_release(net, campaign, keeper), 120, "the release to be mined")
            assert miner.spiking
        finally:
            stop(proc)
    text = log.read_text()
    assert "waits at the fee cap" in text, text[-3000:]
    txs = mined_release(net, campaign, keeper)
    assert len(txs) == 1 and txs[0]["maxFeePerGas"] <= cap
    one_nonce_per_release(net, keeper)
    assert_published_once(net.client, campaign)


def test_a_keeper_killed_between_replacements_never_publishes_twice(net: Deployment, tmp_path: Path) -> None:
    campaign = create_campaign(net, threshold=2)
    pledge(net, campaign, "Member 0")
    low_base_fee(net)
    keeper = net.keepers[2]["address"]
    # A spike that outlasts the keeper: it is killed right after journaling a replacement.
    with Miner(net, spike(40 * GWEI, 10_000), trigger=lambda: pool_has(net, keeper)):
        proc, log, state = run_keeper(net, tmp_path, 2, "--stuck-blocks", "2")
        try:
            wait_for(lambda: "replaced by" in log.read_text(), 90, "a replacement")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            stop(proc)
        versions = journal(state)
        assert len(versions) >= 2 and len({v[0] for v in versions}) == 1, versions  # one nonce, every version
    # Fees fall; a new process takes the journal over: one version is mined, nothing is rebuilt.
    low_base_fee(net)
    proc, log, state = run_keeper(net, tmp_path, 2)
    try:
        wait_for(lambda: mined_release(net, campaign, keeper), 60, "the release to be mined")
        wait_for(lambda: not journal(state), 30, "the journal to empty")
    finally:
        stop(proc)
    assert len(mined_release(net, campaign, keeper)) == 1
    one_nonce_per_release(net, keeper)
    assert_published_once(net.client, campaign)


def test_a_keeper_out_of_funds_keeps_running_and_resumes_when_funded(net: Deployment, tmp_path: Path) -> None:
    members = 50
    campaign = create_campaign(net, threshold=members + 1)
    for i in range(members):
        pledge(net, campaign, f"Member {i}")
    c = CampaignClient(net.client, campaign)
    assert c.status().state == "revealed"
    keeper = net.keepers[0]["address"]
    # --once says who to fund and by how much, in one line
    fund(net.client, keeper, 0)
    out = spartacus(net.url, net.factory, net.cwd, "keeper", "run", "--key-file", "keeper0.key", "--once",
                    "--state", str(tmp_path / "once.sqlite"))  # fmt: skip
    assert out.returncode == 1 and keeper in out.stderr and "more to send" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1
    # A running keeper, in the smallest transactions (a few pledges each: about 12 of them), with
    # funds for one or two: the wallet runs dry half-way through the reveal.
    low_base_fee(net)
    one_release = 80_000 * net.client.offer().max_fee
    fund(net.client, keeper, one_release * 16 // 10)
    proc, log, state = run_keeper(net, tmp_path, 0, "--max-release-bytes", "313")

    def mine_count() -> int:
        return len(mined_release(net, campaign, keeper))

    try:
        wait_for(lambda: "keeper out of funds" in log.read_text(), 60, "the out-of-funds report")
        stalled = mine_count()
        assert stalled >= 1, "no release before the wallet ran dry: the test proves nothing"
        text = log.read_text()
        assert keeper in text and "more to send" in text
        wait_for(lambda: log.read_text().count("keeper out of funds") >= 3, 60, "the report at every pass")
        assert proc.poll() is None, "the keeper stopped"
        assert mine_count() == stalled
        key_index = c.context().keepers.index(bytes.fromhex(net.keepers[0]["public_key"][2:]))
        assert len(published_by_keeper(net, campaign, key_index)) < members + 1  # half released
        fund(net.client, keeper, 10**19)  # funded again: it resumes by itself
        wait_for(lambda: len(published_by_keeper(net, campaign, key_index)) == members + 1, 120, "every share")
        wait_for(lambda: not journal(state), 30, "the journal to empty")
    finally:
        stop(proc)
    assert proc.returncode == 0
    keeper_b = keeper_process(net.url, net.factory, net.cwd, "keeper1.key", "--once", "--state", str(tmp_path / "b"))
    keeper_b.communicate(timeout=120)
    assert_published_once(net.client, campaign)
    assert_full_rosters(net, campaign)
    one_nonce_per_release(net, keeper)


def published_by_keeper(d: Deployment, campaign: str, key_index: int) -> set[int]:
    return set(assert_published_once(d.client, campaign).get(key_index, {}).get("shared", []))
