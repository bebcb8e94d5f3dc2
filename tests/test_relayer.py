"""The relayer service (`spartacus.relayer`) on a real anvil, over real HTTP, against bad input.

Requests are signed by fresh keys that hold no ether. Each refusal must be a clear one-line
sentence with the API's reason; each accepted request must run exactly once, also across a
relayer killed with SIGKILL mid-flood (a real subprocess, `spartacus relayer run`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from spartacus_cli import fund
from web3 import Web3

from spartacus.anvil import dev_key, free_port
from spartacus.chain import CampaignClient, CampaignConfig, ChainClient, FactoryClient, KeySigner, sort_keepers
from spartacus.forwarding import ForwardRequest, forwarder_nonce
from spartacus.keys import KeyPair
from spartacus.relayer import Limits, Relayer, serve

pytestmark = pytest.mark.anvil

DAY = 86400
DEPOSIT = 10**15
KEEPERS = sort_keepers([KeyPair.generate().public_key for _ in range(3)])
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# ─── Fixtures and helpers ───────────────────────────────────────────────────────────


def new_client(url: str) -> ChainClient:
    return ChainClient(Web3(Web3.HTTPProvider(url)))


@pytest.fixture(scope="module")
def factory(anvil_client: ChainClient) -> FactoryClient:
    deployed, _ = FactoryClient.deploy(anvil_client, KeySigner(dev_key(0)))
    return deployed


def make_campaign(client: ChainClient, factory: FactoryClient, deposit: int = 0) -> CampaignClient:
    config = CampaignConfig(
        title="Night shift",
        purpose="A fair rota",
        description="",
        plan="",
        threshold=1000,
        deadline=client.timestamp() + 7 * DAY,
        keepers=KEEPERS,
        keeper_threshold=2,
        deposit=deposit,
    )
    address, _ = factory.create(
        KeySigner(dev_key(1)), config, secrets.token_bytes(32), b"\x01" * 300, KeyPair.generate().compressed
    )
    return CampaignClient(client, address)


def _config_tuple(client: ChainClient) -> tuple[Any, ...]:
    return CampaignConfig("t", "p", "", "", 10, client.timestamp() + DAY, KEEPERS, 2).as_tuple()


def signed(
    client: ChainClient,
    factory: FactoryClient,
    key: KeyPair,
    to: str,
    data: bytes,
    value: int = 0,
    **fields: Any,
) -> ForwardRequest:
    forwarder = factory.forwarder
    request = ForwardRequest(
        sender=key.address,
        to=to,
        value=value,
        gas=fields.pop("gas", 400_000),
        nonce=fields.pop("nonce", forwarder_nonce(client, forwarder, key.address)),
        deadline=fields.pop("deadline", client.timestamp() + 3600),
        data=data,
    )
    return request.sign(fields.pop("signing_key", key).secret_bytes(), client.chain_id, forwarder)


def pledge_call(client: ChainClient) -> bytes:
    return client.contracts.encode_call(
        "Campaign", "pledge", [b"\x01" + os.urandom(299), KeyPair.generate().compressed]
    )


def post(url: str, body: Any, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url + "/relay", data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextmanager
def running(
    node_url: str,
    factory: FactoryClient,
    state: Path,
    limits: Limits | None = None,
    key: KeyPair | None = None,
    **options: Any,
) -> Iterator[tuple[str, Relayer]]:
    """An in-process relayer with its own connection and its own funded key, served on a free port."""
    client = new_client(node_url)
    if key is None:
        key = KeyPair.generate()
        fund(client, key.address, 10**20)
    forwarded = options.pop("forwarded_header", None)
    relayer = Relayer(client, KeySigner(key.secret_bytes()), factory.address, state, limits or Limits(), **options)
    stop, ready, bound = threading.Event(), threading.Event(), {}

    def on_ready(server: Any) -> None:
        bound["port"] = server.server_address[1]
        ready.set()

    thread = threading.Thread(
        target=serve,
        args=(relayer, "127.0.0.1", 0),
        kwargs={"stop": stop, "interval": 0.2, "on_ready": on_ready, "forwarded_header": forwarded},
        daemon=True,
    )
    thread.start()
    assert ready.wait(20), "the relayer did not start"
    try:
        yield f"http://127.0.0.1:{bound['port']}", relayer
    finally:
        stop.set()
        thread.join(20)
        relayer.close()


def refused(status: int, doc: Any, reason: str, code: int) -> str:
    """Checks a refusal's shape: the status, the reason, one sentence on one line."""
    assert (status, doc.get("reason")) == (code, reason), doc
    assert set(doc) == {"error", "reason"} and "\n" not in doc["error"] and len(doc["error"]) < 400, doc
    return str(doc["error"])


def wait_mined(client: ChainClient, tx: str, timeout: float = 60) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        receipt = client.receipt(tx)
        if receipt is not None:
            return receipt
        time.sleep(0.05)
    raise AssertionError(f"{tx} not mined within {timeout} s")


def sent_count(client: ChainClient, address: str) -> int:
    return int(client.w3.eth.get_transaction_count(to_checksum_address(address)))


# ─── Health ─────────────────────────────────────────────────────────────────────────


def test_health_says_when_it_can_send(anvil_node, anvil_client, factory, tmp_path):
    with running(anvil_node.url, factory, tmp_path / "a.sqlite", Limits(sponsor_max_wei=DEPOSIT)) as (url, r):
        status, doc = get(url + "/health")
        assert status == 200 and doc["ok"] is True
        assert (doc["address"], doc["factory"], doc["forwarder"]) == (r.address, factory.address, factory.forwarder)
        assert doc["chain_id"] == anvil_client.chain_id and int(doc["balance"]) == 10**20
        assert doc["sponsor_max_wei"] == str(DEPOSIT)
        assert doc["rate_limits"]["client"]["requests"] == 30
        status, doc = get(url + "/nowhere")
        assert status == 404 and doc["reason"] == "malformed"
        # Browsers call it straight from the dApp's page: a CORS preflight is answered.
        preflight = urllib.request.Request(url + "/relay", method="OPTIONS")
        with urllib.request.urlopen(preflight, timeout=10) as response:
            assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "*"
            assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    broke = KeyPair.generate()  # an account with nothing to pay with
    with running(anvil_node.url, factory, tmp_path / "b.sqlite", key=broke) as (url, _r):
        status, doc = get(url + "/health")
        assert status == 503 and doc["ok"] is False and broke.address in doc["error"] and "fund" in doc["error"]


def test_node_down_is_unavailable(anvil_node, factory, tmp_path):
    with running(anvil_node.url, factory, tmp_path / "r.sqlite") as (url, r):
        r.client.w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}"))  # the node goes away
        status, doc = get(url + "/health")
        assert status == 503 and "cannot reach its node" in doc["error"]
        key = KeyPair.generate()
        body = ForwardRequest(key.address, KeyPair.generate().address, 0, 1, 0, 2**40, b"\x00" * 4).sign(
            key.secret_bytes(), 31337, factory.forwarder
        )
        status, doc, _ = post(url, body.to_json())
        refused(status, doc, "unavailable", 503)


# ─── Carried once ───────────────────────────────────────────────────────────────────


def test_carries_a_pledge_signed_by_a_key_with_no_ether_once(anvil_node, anvil_client, factory, tmp_path):
    c = make_campaign(anvil_client, factory)
    key = KeyPair.generate()
    request = signed(anvil_client, factory, key, c.address, pledge_call(anvil_client))
    with running(anvil_node.url, factory, tmp_path / "r.sqlite") as (url, r):
        status, doc, _ = post(url, request.to_json())
        assert status == 200 and doc["status"] in ("sent", "mined"), doc
        receipt = wait_mined(anvil_client, doc["tx"])
        assert receipt["status"] == 1 and receipt["from"] == r.address
        assert c.pledge_of(key.address)[1] == "live" and anvil_client.balance(key.address) == 0
        assert get(url + f"/tx/{doc['tx']}") == (
            200,
            {"tx": doc["tx"], "status": "mined", "block": receipt["blockNumber"]},
        )
        assert get(url + "/tx/0x" + "ab" * 32)[1]["status"] == "unknown"
        sent = sent_count(anvil_client, r.address)
        # The same request again: its first transaction, nothing sent twice.
        for _ in range(2):
            status, again, _ = post(url, request.to_json())
            assert (status, again) == (200, {"tx": doc["tx"], "status": "mined"})
        assert sent_count(anvil_client, r.address) == sent
    # Replayed to another relayer (one that never saw it): refused, and nothing sent.
    with running(anvil_node.url, factory, tmp_path / "other.sqlite") as (url, r):
        status, doc, _ = post(url, request.to_json())
        assert "already used" in refused(status, doc, "nonce-used", 409)
        assert sent_count(anvil_client, r.address) == 0


def test_sponsors_deposits_up_to_its_limit(anvil_node, anvil_client, factory, tmp_path):
    cheap, dear = make_campaign(anvil_client, factory, DEPOSIT), make_campaign(anvil_client, factory, 2 * DEPOSIT)
    with running(anvil_node.url, factory, tmp_path / "r.sqlite", Limits(sponsor_max_wei=DEPOSIT)) as (url, r):
        key = KeyPair.generate()
        status, doc, _ = post(
            url, signed(anvil_client, factory, key, dear.address, pledge_call(anvil_client), 2 * DEPOSIT).to_json()
        )
        assert "at most 1000000000000000 wei" in refused(status, doc, "value-too-high", 403)
        status, doc, _ = post(
            url, signed(anvil_client, factory, key, cheap.address, pledge_call(anvil_client), DEPOSIT).to_json()
        )
        assert status == 200 and wait_mined(anvil_client, doc["tx"])["status"] == 1
        assert cheap.pledge_of(key.address) == (1, "live", True) and anvil_client.balance(key.address) == 0


def test_refuses_bad_input_clearly_and_sends_nothing(anvil_node, anvil_client, factory, tmp_path):
    c = make_campaign(anvil_client, factory, DEPOSIT)
    other_factory, _ = FactoryClient.deploy(anvil_client, KeySigner(dev_key(0)))
    foreign = make_campaign(anvil_client, other_factory)
    # A factory someone else deployed that trusts this deployment's forwarder: its campaigns
    # would pass a simulation; only the check against our factory's CampaignCreated logs stops them.
    code = bytes.fromhex(anvil_client.contracts.bytecode("CampaignFactory").removeprefix("0x"))
    deployed = anvil_client.send(KeySigner(dev_key(0)), None, code + abi_encode(["address"], [factory.forwarder]))
    rogue_factory = FactoryClient(
        anvil_client, anvil_client.w3.eth.get_transaction_receipt(deployed.tx)["contractAddress"]
    )
    rogue = make_campaign(anvil_client, rogue_factory)
    assert rogue_factory.forwarder == factory.forwarder
    key, thief = KeyPair.generate(), KeyPair.generate()
    data = pledge_call(anvil_client)
    good = signed(anvil_client, factory, key, c.address, data, DEPOSIT)
    sig = good.signature
    high_s = sig[:32] + (SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    call = anvil_client.contracts.encode_call
    now = anvil_client.timestamp()

    def req(to: str, data: bytes = data, value: int = DEPOSIT, **kw: Any) -> ForwardRequest:
        return signed(anvil_client, factory, key, to, data, value, **kw)

    create_call = call(
        "CampaignFactory",
        "createCampaign",
        [_config_tuple(anvil_client), bytes(32), b"x", KeyPair.generate().compressed],
    )
    cases: list[tuple[str, Any, str, int, str]] = [
        ("not JSON", b"{nope", "malformed", 400, "not JSON"),
        ("a list", [1, 2], "malformed", 400, "JSON object"),
        ("a field missing", {k: v for k, v in good.to_json().items() if k != "gas"}, "malformed", 400, "lacks gas"),
        ("a number as a JSON number", good.to_json() | {"value": DEPOSIT}, "malformed", 400, "decimal string"),
        ("bad hex", good.to_json() | {"data": "0xzz"}, "malformed", 400, "hex"),
        ("a short signature", good.to_json() | {"signature": "0x1234"}, "malformed", 400, "65"),
        ("forged: signed by a thief", req(c.address, signing_key=thief), "bad-signature", 400, key.address),
        ("altered data", replace(good, data=pledge_call(anvil_client)), "bad-signature", 400, "sign the request again"),
        ("altered value", replace(good, value=0), "bad-signature", 400, "signature"),
        ("a malleated (high-s) signature", replace(good, signature=high_s), "bad-signature", 400, "signature"),
        ("expired", req(c.address, deadline=now - 1), "expired", 400, "deadline"),
        ("expiring now", req(c.address, deadline=now + 3), "expired", 400, "later deadline"),
        ("a nonce ahead", req(c.address, nonce=5), "malformed", 400, "nonce 0"),
        ("to an address with no code", req(key.address, value=0), "wrong-target", 403, "neither"),
        ("to the forwarder", req(factory.forwarder, value=0), "wrong-target", 403, "neither"),
        ("to another factory's campaign", req(foreign.address, value=0), "wrong-target", 403, "neither"),
        ("to another factory", req(other_factory.address, value=0), "wrong-target", 403, "neither"),
        ("to a look-alike campaign that trusts our forwarder", req(rogue.address, value=0), "wrong-target", 403,
         "neither"),
        ("to a look-alike factory", req(rogue_factory.address, create_call, 0), "wrong-target", 403, "neither"),
        ("a keeper release", req(c.address, call("Campaign", "release", [[], 0, b"x"]), 0),
         "wrong-function", 403, "only pledge, withdraw"),
        ("initialize", req(c.address, b"\x01\x02\x03\x04" + bytes(64), 0), "wrong-function", 403, "only pledge"),
        ("no calldata", req(c.address, b"", 0), "wrong-function", 403, "only pledge"),
        ("a factory view", req(factory.address, call("CampaignFactory", "predictCampaign", [key.address, b"s" * 32]),
                               0), "wrong-function", 403, "only createCampaign"),
        ("gas above the limit", req(c.address, gas=10**8), "malformed", 400, "limit"),
        ("a pledge with the wrong deposit", req(c.address, value=0), "would-revert", 422, "CampaignWrongDeposit"),
        ("a withdrawal with no pledge", req(c.address, call("Campaign", "withdraw", []), 0),
         "would-revert", 422, "CampaignNoLivePledge"),
        ("a cancel by a stranger", req(c.address, call("Campaign", "cancel", []), 0),
         "would-revert", 422, "CampaignNotCreator"),
        ("too little gas for its call", req(c.address, gas=30_000), "would-revert", 422, "gas"),
    ]  # fmt: skip
    with running(anvil_node.url, factory, tmp_path / "r.sqlite", Limits(sponsor_max_wei=DEPOSIT)) as (url, r):
        for what, body, reason, code, words in cases:
            payload = body.to_json() if isinstance(body, ForwardRequest) else body
            status, doc, _ = post(url, payload)
            assert words in refused(status, doc, reason, code), (what, doc)
        status, doc, _ = post(url, b"x" * (400 * 1024))
        refused(status, doc, "malformed", 413)
        assert sent_count(anvil_client, r.address) == 0  # nothing was ever sent
        assert forwarder_nonce(anvil_client, factory.forwarder, key.address) == 0
        status, doc, _ = post(url, good.to_json())  # and the good request still goes
        assert status == 200 and wait_mined(anvil_client, doc["tx"])["status"] == 1


# ─── Rate limits, and no client address kept ────────────────────────────────────────


def test_a_flood_over_the_rate_limits_is_refused(anvil_node, anvil_client, factory, tmp_path):
    c1, c2 = make_campaign(anvil_client, factory), make_campaign(anvil_client, factory)
    limits = Limits(client=4, campaign=2, window=3600)
    proxy = {"forwarded_header": "X-Forwarded-For"}
    with running(anvil_node.url, factory, tmp_path / "r.sqlite", limits, **proxy) as (url, _r):
        flood = {"X-Forwarded-For": "198.51.100.7"}
        answers = [post(url, b"{", flood) for _ in range(6)]  # every request counts, refused ones too
        assert [s for s, _, _ in answers] == [400] * 4 + [429] * 2
        status, doc, headers = answers[-1]
        assert "4 per 60 min" in refused(status, doc, "rate-limited", 429)
        assert 1 <= int(headers["Retry-After"]) <= 3600
        # Another client is not held back by the flood.
        assert post(url, b"{", {"X-Forwarded-For": "198.51.100.8"})[0] == 400

        # Per campaign: two relayed transactions, then refusals for that campaign only.
        for i in range(3):
            key = KeyPair.generate()
            status, doc, _ = post(
                url, signed(anvil_client, factory, key, c1.address, pledge_call(anvil_client)).to_json(),
                {"X-Forwarded-For": f"192.0.2.{i}"},
            )  # fmt: skip
            if i < 2:
                assert status == 200, doc
            else:
                assert "transactions to this campaign" in refused(status, doc, "rate-limited", 429)
        key = KeyPair.generate()
        status, doc, _ = post(
            url, signed(anvil_client, factory, key, c2.address, pledge_call(anvil_client)).to_json(),
            {"X-Forwarded-For": "192.0.2.9"},
        )  # fmt: skip
        assert status == 200, doc


def test_keeps_no_client_address_in_its_logs_or_state(anvil_node, anvil_client, factory, tmp_path, caplog, capfd):
    c = make_campaign(anvil_client, factory)
    client_ip = "203.0.113.77"
    state = tmp_path / "r.sqlite"
    caplog.set_level(logging.DEBUG)
    with running(anvil_node.url, factory, state, Limits(client=3), forwarded_header="X-Forwarded-For") as (url, _r):
        for _ in range(2):  # one carried, one refused (replay of a used nonce), one rate-limited
            key = KeyPair.generate()
            post(url, signed(anvil_client, factory, key, c.address, pledge_call(anvil_client)).to_json(),
                 {"X-Forwarded-For": client_ip})  # fmt: skip
        post(url, b"{", {"X-Forwarded-For": client_ip})
        assert post(url, b"{", {"X-Forwarded-For": client_ip})[0] == 429
    assert "rate-limited" in caplog.text and "carried pledge" in caplog.text  # it does log, but not that
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("r.sqlite"))
    for form in (client_ip, client_ip.replace(".", ""), bytes(int(x) for x in client_ip.split(".")).hex()):
        assert form not in caplog.text, f"the log names the client ({form})"
        assert form.encode() not in stored, f"the state names the client ({form})"
    assert bytes(int(x) for x in client_ip.split(".")) not in stored
    # Nor the address it sees itself (here loopback, as behind a proxy): no request log at all.
    out, err = capfd.readouterr()
    assert not re.search(r"\d+\.\d+\.\d+\.\d+ - - \[", out + err + caplog.text), "a request log names the client"
    assert client_ip not in out + err


# ─── Concurrency and crashes ────────────────────────────────────────────────────────


def test_concurrent_requests_never_share_a_nonce(anvil_node, anvil_client, factory, tmp_path):
    c = make_campaign(anvil_client, factory)
    keys = [KeyPair.generate() for _ in range(12)]
    requests = [signed(anvil_client, factory, k, c.address, pledge_call(anvil_client)) for k in keys]
    with running(anvil_node.url, factory, tmp_path / "r.sqlite", Limits(client=100)) as (url, r):
        barrier, answers = threading.Barrier(len(requests)), [None] * len(requests)

        def send(i: int) -> None:
            barrier.wait()
            answers[i] = post(url, requests[i].to_json())  # type: ignore[call-overload]

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(a is not None and a[0] == 200 for a in answers), answers
        receipts = [wait_mined(anvil_client, a[1]["tx"]) for a in answers]  # type: ignore[index]
        assert all(rc["status"] == 1 for rc in receipts)
        nonces = sorted(int(anvil_client.w3.eth.get_transaction(rc["transactionHash"])["nonce"]) for rc in receipts)
        assert nonces == list(range(len(keys)))  # each its own nonce, no gap
        assert all(c.pledge_of(k.address)[1] == "live" for k in keys)


def test_a_crash_between_journal_and_broadcast_loses_nothing(anvil_node, anvil_client, factory, tmp_path):
    """The signed transaction is journaled, then the process dies before broadcasting it: the
    restarted relayer broadcasts those very bytes, and the request runs once."""
    c = make_campaign(anvil_client, factory)
    key, relayer_key = KeyPair.generate(), KeyPair.generate()
    fund(anvil_client, relayer_key.address, 10**20)
    request = signed(anvil_client, factory, key, c.address, pledge_call(anvil_client))
    state = tmp_path / "r.sqlite"
    client = new_client(anvil_node.url)
    first = Relayer(client, KeySigner(relayer_key.secret_bytes()), factory.address, state)

    def killed(raw: bytes) -> str:
        raise KeyboardInterrupt  # stands for SIGKILL, right after the journal's commit

    client.broadcast = killed  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.carry(request)
    first.close()
    with closing(sqlite3.connect(state)) as db:
        (tx,) = [row[0] for row in db.execute("SELECT tx_hash FROM requests")]
    assert anvil_client.receipt(tx) is None and sent_count(anvil_client, relayer_key.address) == 0

    again = Relayer(new_client(anvil_node.url), KeySigner(relayer_key.secret_bytes()), factory.address, state)
    try:
        assert wait_mined(anvil_client, tx)["status"] == 1  # re-broadcast at start, byte for byte
        assert again.carry(request) == {"tx": tx, "status": "mined"}  # the same request: its transaction
        assert sent_count(anvil_client, relayer_key.address) == 1
        assert c.pledge_of(key.address)[1] == "live"
    finally:
        again.close()


def test_a_lost_answer_to_a_sent_transaction_loses_nothing(anvil_node, anvil_client, factory, tmp_path):
    """The node takes (and mines) the relayer's transaction but its answer is lost; the same bytes
    sent again meet "nonce too low". The relayer keeps the transaction journaled, answers with
    it, and the request runs once (found by the soak, through a proxy that loses answers)."""
    c = make_campaign(anvil_client, factory)
    key = KeyPair.generate()
    request = signed(anvil_client, factory, key, c.address, pledge_call(anvil_client))
    with running(anvil_node.url, factory, tmp_path / "r.sqlite") as (url, r):
        real = r.client.broadcast

        def answer_lost(raw: bytes) -> str:
            real(raw)  # the node takes it (and mines it at once); its answer never comes back
            return real(raw)  # sent again, as a client does when an answer is lost

        r.client.broadcast = answer_lost  # type: ignore[method-assign]
        status, doc, _ = post(url, request.to_json())
        assert status == 200 and doc["status"] == "sent", doc
        assert wait_mined(anvil_client, doc["tx"])["status"] == 1
        r.client.broadcast = real  # type: ignore[method-assign]
        assert post(url, request.to_json())[:2] == (200, {"tx": doc["tx"], "status": "mined"})
        assert sent_count(anvil_client, r.address) == 1 and c.pledge_of(key.address)[1] == "live"
        with closing(sqlite3.connect(tmp_path / "r.sqlite")) as db:
            assert db.execute("SELECT tx_hash, status FROM requests").fetchall() == [(doc["tx"], "mined")]


def relayer_process(url: str, factory: str, state: Path, account: str, log: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    argv = [sys.executable, "-m", "spartacus.cli", "-v", "relayer", "run", "--account", account, "--port", str(port),
            "--state", str(state), "--client-limit", "10000", "--interval", "0.2"]  # fmt: skip
    proc = subprocess.Popen(
        argv,
        env=os.environ | {"SPARTACUS_NETWORK": url, "SPARTACUS_FACTORY": factory},
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    proc.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert proc.poll() is None, log.read_text()
        try:
            if get(proc.url + "/health")[0] == 200:  # type: ignore[attr-defined]
                return proc
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the relayer did not answer /health")


def test_a_relayer_killed_mid_flood_runs_every_accepted_request_once(anvil_node, anvil_client, factory, tmp_path):
    """24 clients send at once, each retrying (the same signed request) until it gets an answer;
    the relayer is killed with SIGKILL twice while they do. In the end every request ran exactly
    once, in exactly one of the relayer's transactions, and none failed."""
    campaigns = [make_campaign(anvil_client, factory) for _ in range(2)]
    account = "TEST::17"  # a dev key no other test uses, funded here
    relayer_address = KeySigner(dev_key(17)).address
    fund(anvil_client, relayer_address, 10**20)
    start_nonce = sent_count(anvil_client, relayer_address)
    start_block = anvil_client.head()
    keys = [KeyPair.generate() for _ in range(24)]
    requests = [
        signed(anvil_client, factory, k, campaigns[i % 2].address, pledge_call(anvil_client))
        for i, k in enumerate(keys)
    ]
    state, log = tmp_path / "relayer.sqlite", tmp_path / "relayer.log"
    answers: dict[int, tuple[int, Any]] = {}
    answered = threading.Condition()
    target = {"url": ""}

    def client(i: int) -> None:
        end = time.monotonic() + 240
        while time.monotonic() < end:
            try:
                status, doc, _ = post(target["url"], requests[i].to_json(), timeout=20)
            except OSError:  # down, reset mid-answer, or not up yet: the same request again
                time.sleep(0.05)
                continue
            if status == 503:
                time.sleep(0.1)
                continue
            with answered:
                answers[i] = (status, doc)
                answered.notify_all()
            return

    def wait_answers(n: int) -> None:
        with answered:
            assert answered.wait_for(lambda: len(answers) >= n, timeout=180), f"{len(answers)} answers"

    proc = relayer_process(anvil_node.url, factory.address, state, account, log)
    target["url"] = proc.url  # type: ignore[attr-defined]
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(requests))]
    for t in threads:
        t.start()
    kills = 0
    for after in (5, 14):
        wait_answers(after)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        kills += 1
        proc = relayer_process(anvil_node.url, factory.address, state, account, log)
        target["url"] = proc.url  # type: ignore[attr-defined]
    try:
        for t in threads:
            t.join(240)
        assert len(answers) == len(requests), f"only {len(answers)} answers"
        assert all(status == 200 for status, _ in answers.values()), answers
        txs = {doc["tx"] for _, doc in answers.values()}
        assert len(txs) == len(requests)  # one transaction per request, never two
        assert all(wait_mined(anvil_client, tx)["status"] == 1 for tx in txs)
        for key in keys:
            assert forwarder_nonce(anvil_client, factory.forwarder, key.address) == 1
        topic = anvil_client.contracts.topic("ExecutedForwardRequest")
        logs = anvil_client.w3.eth.get_logs(
            {"address": factory.forwarder, "fromBlock": start_block, "topics": [topic.to_0x_hex()]}
        )
        ran = [to_checksum_address(HexBytes(lg["topics"][1])[12:]) for lg in logs]
        assert sorted(ran) == sorted(k.address for k in keys)  # each request ran once
        assert sent_count(anvil_client, relayer_address) - start_nonce == len(requests)  # and nothing else was sent
        assert kills == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
