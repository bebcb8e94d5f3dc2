"""The relayer behind fee spikes and with an empty wallet, with anvil's base-fee controls and a
real `spartacus relayer run` process.

A relayed pledge stuck behind a spike is replaced with the same nonce and a higher fee (never
above ``--max-fee-gwei``), is never left pending, and runs once: every version is journaled
before it is sent, all with the request's one nonce, so only one can be mined, across a SIGKILL
between two replacements too. A relayer out of funds keeps running: ``/health`` says 503, the
requests it cannot pay for are refused with a sentence that says so, its log names the address
and the amount needed, and it resumes by itself once funded.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address
from fee_helpers import Miner, low_base_fee, pool_has, spike
from hexbytes import HexBytes
from rpcproxy import Deployment, anvil_deployment, create_campaign, fund, wait_for

from spartacus._fees import GWEI
from spartacus.anvil import dev_key, free_port
from spartacus.chain import CampaignClient, KeySigner
from spartacus.forwarding import ForwardRequest, forwarder_nonce
from spartacus.keys import KeyPair

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with anvil_deployment(tmp_path_factory.mktemp("relayer-fees")) as d:
        yield d


# ─── The relayer, a client, and what the chain says ─────────────────────────────────


class RelayerProc:
    """`spartacus relayer run` as a process, on a fixed port (it keeps it across restarts)."""

    def __init__(self, d: Deployment, account: int, state: Path, log: Path, *extra: str) -> None:
        self.d, self.state, self.log = d, state, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [sys.executable, "-m", "spartacus.cli", "relayer", "run", "--account", f"TEST::{account}",
                     "--port", str(self.port), "--state", str(state), "--interval", "0.3", *extra]  # fmt: skip
        self.address = KeySigner(dev_key(account)).address
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, healthy: bool = True) -> RelayerProc:
        env = os.environ | {"SPARTACUS_NETWORK": self.d.url, "SPARTACUS_FACTORY": self.d.factory}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: self.answers(healthy), 60, "the relayer to answer /health")
        return self

    def answers(self, healthy: bool) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            status, _ = get(self.url + "/health")
        except OSError:
            return False
        return status == 200 or not healthy

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def text(self) -> str:
        return self.log.read_text()


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post(url: str, request: ForwardRequest) -> tuple[int, Any]:
    body = json.dumps(request.to_json()).encode()
    req = urllib.request.Request(url + "/relay", data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def relayed_pledge(d: Deployment, campaign: str) -> tuple[KeyPair, ForwardRequest]:
    """A pledge request signed by a fresh key that holds no ether."""
    key = KeyPair.generate()
    forwarder = _forwarder(d)
    data = d.client.contracts.encode_call(
        "Campaign", "pledge", [b"\x01" + os.urandom(299), KeyPair.generate().compressed]
    )
    request = ForwardRequest(key.address, campaign, 0, 400_000, forwarder_nonce(d.client, forwarder, key.address),
                             d.client.timestamp() + 3600, data)  # fmt: skip
    return key, request.sign(key.secret_bytes(), d.client.chain_id, forwarder)


def _forwarder(d: Deployment) -> str:
    from spartacus.chain import FactoryClient

    return FactoryClient(d.client, d.factory).forwarder


def executions(d: Deployment, signer: str) -> list[Any]:
    """The forwarder's ExecutedForwardRequest logs for ``signer``: one per request that ran."""
    topic = d.client.contracts.topic("ExecutedForwardRequest").to_0x_hex()
    logs = d.client.w3.eth.get_logs({"address": _forwarder(d), "fromBlock": d.factory_block, "topics": [topic]})
    return [lg for lg in logs if to_checksum_address(HexBytes(lg["topics"][1])[12:]) == signer]


def sent_count(d: Deployment, address: str) -> int:
    return int(d.client.w3.eth.get_transaction_count(to_checksum_address(address)))


def journal(state: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(requests: digest, status, account nonce, first hash, mined hash; versions: hash, nonce)."""
    with sqlite3.connect(state) as db:
        requests = db.execute("SELECT digest, status, account_nonce, tx_hash, mined_tx FROM requests").fetchall()
        versions = db.execute("SELECT tx_hash, account_nonce FROM versions ORDER BY created, rowid").fetchall()
    return requests, versions


def settled(state: Path) -> bool:
    return all(status != "sent" for _, status, *_ in journal(state)[0])


def ran_once(d: Deployment, relayer: RelayerProc, key: KeyPair, campaign: str, nonces_before: int) -> Any:
    """The request ran exactly once, in exactly one transaction of the relayer, which sent nothing else."""
    [executed] = executions(d, key.address)
    assert forwarder_nonce(d.client, _forwarder(d), key.address) == 1
    assert CampaignClient(d.client, campaign).pledge_of(key.address)[1] == "live"
    assert sent_count(d, relayer.address) == nonces_before + 1
    return d.client.w3.eth.get_transaction(executed["transactionHash"])


# ─── Fee spikes ─────────────────────────────────────────────────────────────────────


def test_a_relayed_pledge_stuck_behind_a_fee_spike_is_replaced_and_mined_once(net: Deployment, tmp_path: Path) -> None:
    campaign = create_campaign(net, threshold=10)
    low_base_fee(net)
    height, cap = 40 * GWEI, 200 * GWEI
    relayer = RelayerProc(net, 11, tmp_path / "r.sqlite", tmp_path / "r.log", "--stuck-blocks", "2",
                          "--max-fee-gwei", "200")  # fmt: skip
    fund(net.client, relayer.address, 10**19)
    before = sent_count(net, relayer.address)
    relayer.start()
    try:
        with Miner(net, spike(height, 30), trigger=lambda: pool_has(net, relayer.address)) as miner:
            key, request = relayed_pledge(net, campaign)
            status, doc = post(relayer.url, request)
            assert status == 200 and doc["status"] == "sent", doc
            wait_for(lambda: executions(net, key.address), 90, "the relayed pledge to run")
            assert miner.spiking, "the spike never hit the relayer's transaction: the test proves nothing"
            wait_for(lambda: settled(relayer.state), 30, "the journal to settle")
            _, after = get(relayer.url + f"/tx/{doc['tx']}")
        text = relayer.text()
    finally:
        relayer.stop()
    assert "replaced by" in text, text[-3000:]
    tx = ran_once(net, relayer, key, campaign, before)
    mined = tx["hash"].to_0x_hex()
    assert mined != doc["tx"] and height < tx["maxFeePerGas"] <= cap  # a replacement, within the cap
    requests, versions = journal(relayer.state)
    assert [r[1:] for r in requests] == [("mined", before, doc["tx"], mined)]
    assert len(versions) >= 2 and {v[1] for v in versions} == {before} and mined in {v[0] for v in versions}
    # The first version's hash, which the client was given, tells it where the request went.
    assert after["status"] == "mined" and after["mined_as"] == mined, after


def test_a_relayed_pledge_waits_at_the_fee_cap_and_is_mined_when_fees_fall(net: Deployment, tmp_path: Path) -> None:
    campaign = create_campaign(net, threshold=10)
    low_base_fee(net)
    cap = 12 * GWEI
    relayer = RelayerProc(net, 12, tmp_path / "r.sqlite", tmp_path / "r.log", "--stuck-blocks", "1",
                          "--max-fee-gwei", "12")  # fmt: skip
    fund(net.client, relayer.address, 10**19)
    before = sent_count(net, relayer.address)
    relayer.start()
    try:
        with Miner(net, spike(60 * GWEI, 6), trigger=lambda: pool_has(net, relayer.address)) as miner:
            key, request = relayed_pledge(net, campaign)
            status, doc = post(relayer.url, request)
            assert status == 200, doc
            wait_for(lambda: "waits at the fee cap" in relayer.text(), 60, "the relayer to wait at its cap")
            assert not executions(net, key.address)  # not mined while the fees are above the cap
            wait_for(lambda: executions(net, key.address), 120, "the relayed pledge to run once fees fall")
            assert miner.spiking
            wait_for(lambda: settled(relayer.state), 30, "the journal to settle")
    finally:
        relayer.stop()
    tx = ran_once(net, relayer, key, campaign, before)
    assert tx["maxFeePerGas"] <= cap
    assert all(v[1] == before for v in journal(relayer.state)[1])


def test_a_relayer_killed_between_replacements_sends_nothing_twice(net: Deployment, tmp_path: Path) -> None:
    """Fees that keep rising outbid every version, each replaced in turn; the relayer is SIGKILLed
    after its second replacement. The new process takes the journal over: it replaces the newest
    version again (same nonce), and exactly one version of the one transaction is mined."""
    campaign = create_campaign(net, threshold=10)
    low_base_fee(net)
    relayer = RelayerProc(net, 13, tmp_path / "r.sqlite", tmp_path / "r.log", "--stuck-blocks", "1")
    fund(net.client, relayer.address, 10**21)
    before = sent_count(net, relayer.address)
    relayer.start()
    hold = 20_000 * GWEI

    def rising(n: int) -> int:  # four times each block, then a plateau
        return min(10 * GWEI * 4**n, hold)

    try:
        with Miner(net, rising, trigger=lambda: pool_has(net, relayer.address)) as miner:
            key, request = relayed_pledge(net, campaign)
            status, doc = post(relayer.url, request)
            assert status == 200, doc
            wait_for(lambda: relayer.text().count("replaced by") >= 2, 60, "two replacements")
            relayer.kill()
            assert not executions(net, key.address), "mined before the kill: the test proves nothing"
            _, versions = journal(relayer.state)
            assert len(versions) >= 3 and {v[1] for v in versions} == {before}, versions  # every version, one nonce
            killed_with = len(versions)
            relayer.start()  # the fees stay high: the new process must replace again, not rebuild
            wait_for(lambda: executions(net, key.address), 90, "the relayed pledge to run")
            assert miner.spiking
            wait_for(lambda: settled(relayer.state), 30, "the journal to settle")
            again = post(relayer.url, request)  # the same request once more: its transaction, nothing sent
    finally:
        relayer.stop()
    tx = ran_once(net, relayer, key, campaign, before)
    requests, versions = journal(relayer.state)
    mined = tx["hash"].to_0x_hex()
    assert len(versions) > killed_with and {v[1] for v in versions} == {before}
    assert [r[1] for r in requests] == ["mined"] and requests[0][4] == mined
    assert again == (200, {"tx": mined, "status": "mined"})


# ─── An empty wallet ────────────────────────────────────────────────────────────────


def test_a_relayer_out_of_funds_keeps_running_and_resumes_when_funded(net: Deployment, tmp_path: Path) -> None:
    campaign = create_campaign(net, threshold=10)
    low_base_fee(net)
    relayer = RelayerProc(net, 14, tmp_path / "r.sqlite", tmp_path / "r.log")
    fund(net.client, relayer.address, 10**12)  # far less than one relayed pledge costs
    before = sent_count(net, relayer.address)
    relayer.start(healthy=False)
    try:
        status, health = get(relayer.url + "/health")
        assert status == 503 and relayer.address in health["error"] and "fund" in health["error"], health
        key, request = relayed_pledge(net, campaign)
        for _ in range(2):
            status, doc = post(relayer.url, request)
            assert (status, doc["reason"]) == (503, "unavailable"), doc
            assert "out of funds" in doc["error"] and relayer.address in doc["error"] and "\n" not in doc["error"]
        text = relayer.text()
        assert text.count("relayer out of funds") == 2 and relayer.address in text and "more" in text, text
        assert "Traceback" not in text
        assert relayer.proc is not None and relayer.proc.poll() is None, "the relayer stopped"
        assert sent_count(net, relayer.address) == before and not executions(net, key.address)
        fund(net.client, relayer.address, 10**19)  # funded: it resumes by itself
        wait_for(lambda: get(relayer.url + "/health")[0] == 200, 30, "/health to say it can send")
        status, doc = post(relayer.url, request)  # the very request it refused
        assert status == 200, doc
        wait_for(lambda: executions(net, key.address), 30, "the relayed pledge to run")
    finally:
        assert relayer.stop() == 0
    ran_once(net, relayer, key, campaign, before)
