"""A real HTTP JSON-RPC proxy in front of anvil that behaves like the providers keepers meet.

``RpcProxy(upstream)`` listens on a loopback port (a thread per connection) and forwards every
JSON-RPC call, single or batched, to the node; its knobs, changeable while it runs:

* ``caps``: ``eth_getLogs`` refused past a block range or a result count, with each
  provider's own code and words (:data:`PROFILES`: Infura, Alchemy, Alchemy's free tier,
  QuickNode, reth; the numbers are parameters so that a test with 300 logs meets the cap);
* faults: ``drop`` (a share of requests whose connection closes with no answer, before the
  node sees them or after, so that a sent transaction's answer is lost), ``delay`` (seconds,
  a range), ``rate_limit`` (requests per second; beyond it HTTP 429 with ``Retry-After``),
  ``down`` (connections closed at once);
* lies: ``lie_call`` (answer an ``eth_call`` to an address and selector with chosen bytes:
  ``state()`` revealed, ``pledgeCount()``...), ``inject_logs`` (logs added to the matching
  ``eth_getLogs`` answers: a forged ``Pledged`` carrying the liar's member key), ``hide_logs``
  (an event left out: ``Withdrawn``). :func:`forged_pledge` and :func:`lie_revealed` build them.

``stats`` counts calls per method and what was refused, dropped or throttled.

:func:`spread_deployment` makes the scenario other tests reuse: anvil, a factory, three keeper
keys, and a campaign whose pledges are spread over 50,000 blocks (``anvil_mine`` between
them), with the proxy in front.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from spartacus_cli import fund

ROOT = Path(__file__).resolve().parents[1]

# ─── Providers' eth_getLogs limits ─────────────────────────────────────────────────────


def _k(n: int) -> str:
    return f"{n // 1000}K" if n >= 1000 and n % 1000 == 0 else str(n)


@dataclass(frozen=True)
class LogCaps:
    """What a provider refuses: ``max_range`` blocks per request (None: any), ``max_results``
    logs per answer (None: any). ``profile`` picks the words of the refusal."""

    profile: str = "infura"
    max_range: int | None = None
    max_results: int | None = None

    def check(self, first: int, last: int, logs: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The JSON-RPC error for eth_getLogs over ``[first, last]`` answering ``logs``, or None."""
        span = last - first + 1
        over_range = self.max_range is not None and span > self.max_range
        over_results = self.max_results is not None and len(logs) > self.max_results
        hint_last = self._hint_last(first, last, logs)
        return PROFILES[self.profile](self, first, last, span, over_range, over_results, hint_last)

    def _hint_last(self, first: int, last: int, logs: list[dict[str, Any]]) -> int:
        """The last block of the widest range from ``first`` that fits both caps."""
        end = last if self.max_range is None else min(last, first + self.max_range - 1)
        if self.max_results is not None:
            blocks = sorted(int(lg["blockNumber"], 16) for lg in logs)
            if len(blocks) > self.max_results:
                end = min(end, max(first, blocks[self.max_results] - 1))
        return end


def _infura(c: LogCaps, first: int, last: int, span: int, over_range: bool, over_results: bool, hint: int) -> Any:
    if over_results:
        return {
            "code": -32005,
            "message": f"query returned more than {c.max_results} results. Try with this block range "
            f"[{hex(first)}, {hex(hint)}].",
            "data": {"from": hex(first), "limit": c.max_results, "to": hex(hint)},
        }
    if over_range:
        return {"code": -32602, "message": f"range {first} - {last} exceeds limit of {c.max_range}"}
    return None


def _alchemy(c: LogCaps, first: int, last: int, span: int, over_range: bool, over_results: bool, hint: int) -> Any:
    # Alchemy serves any range up to max_range, and any range at all under max_results logs.
    if over_range and over_results:
        return {
            "code": -32602,
            "message": f"Log response size exceeded. You can make eth_getLogs requests with up to a "
            f"{_k(c.max_range or 0)} block range and no limit on the response size, or you can request any block "
            f"range with a cap of {_k(c.max_results or 0)} logs in the response. Based on your parameters, this "
            f"block range should work: [{hex(first)}, {hex(hint)}]",
        }
    return None


def _alchemy_free(c: LogCaps, first: int, last: int, span: int, over_range: bool, over_results: bool, hint: int) -> Any:
    if over_range:
        return {
            "code": -32600,
            "message": f"Under the Free tier plan, you can make eth_getLogs requests with up to a {c.max_range} "
            f"block range. Based on your parameters, this block range should work: [{hex(first)}, {hex(hint)}]. "
            "Upgrade to PAYG for expanded block range.",
        }
    return None


def _quicknode(c: LogCaps, first: int, last: int, span: int, over_range: bool, over_results: bool, hint: int) -> Any:
    if over_range:
        return {"code": -32614, "message": f"eth_getLogs is limited to a {c.max_range:,} range"}
    if over_results:
        return {"code": -32614, "message": f"eth_getLogs and eth_newFilter are limited to {c.max_results:,} results"}
    return None


def _reth(c: LogCaps, first: int, last: int, span: int, over_range: bool, over_results: bool, hint: int) -> Any:
    if over_range:
        return {"code": -32602, "message": f"query exceeds max block range {c.max_range}"}
    if over_results:
        return {
            "code": -32602,
            "message": f"query exceeds max results {c.max_results}, retry with the range {first}-{hint}",
        }
    return None


def _opaque(c: LogCaps, first: int, last: int, span: int, over_range: bool, over_results: bool, hint: int) -> Any:
    """A node that refuses without saying why or how much (the client can only halve)."""
    if over_range or over_results:
        return {"code": -32000, "message": "internal error"}
    return None


PROFILES: dict[str, Callable[..., dict[str, Any] | None]] = {
    "infura": _infura,
    "alchemy": _alchemy,
    "alchemy-free": _alchemy_free,
    "quicknode": _quicknode,
    "reth": _reth,
    "opaque": _opaque,
}


# ─── The proxy ─────────────────────────────────────────────────────────────────────────


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client killed mid-request (the soak does it on purpose)
        super().handle_error(request, client_address)


@dataclass
class _Lies:
    calls: dict[tuple[str, bytes], bytes] = field(default_factory=dict)  # (to, selector) -> return data
    call_fns: list[Callable[[dict[str, Any], str], bytes | None]] = field(default_factory=list)
    injected: list[dict[str, Any]] = field(default_factory=list)
    hidden: set[tuple[str, str]] = field(default_factory=set)  # (address, topic0)


class RpcProxy:
    """An HTTP JSON-RPC proxy on loopback in front of ``upstream`` (see the module docstring)."""

    def __init__(
        self,
        upstream: str,
        *,
        caps: LogCaps | None = None,
        drop: float = 0.0,
        drop_after: float = 0.0,
        delay: tuple[float, float] = (0.0, 0.0),
        rate_limit: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.caps = caps
        self.drop = drop
        self.drop_after = drop_after
        self.delay = delay
        self.rate_limit = rate_limit
        self.down = False
        self.lies = _Lies()
        self.stats: Counter[str] = Counter()
        #: every eth_getLogs range asked for, and whether it was refused
        self.log_queries: list[tuple[int | None, int | None, bool]] = []
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._window: list[float] = []
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without this, Nagle and delayed ACKs
                # add 40 ms to every call
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                proxy._handle(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RpcProxy:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ── lies ──

    def lie_call(self, to: str, selector: bytes, answer: bytes) -> None:
        """Answers every ``eth_call`` to ``to`` whose data starts with ``selector`` with ``answer``."""
        self.lies.calls[(to.lower(), bytes(selector))] = bytes(answer)

    def lie_calls(self, fn: Callable[[dict[str, Any], str], bytes | None]) -> None:
        """``fn(call, block)`` answers an ``eth_call`` (bytes) or lets it through (None)."""
        self.lies.call_fns.append(fn)

    def inject_logs(self, logs: Sequence[dict[str, Any]]) -> None:
        """Adds raw logs (JSON-RPC shape) to every eth_getLogs answer whose filter they match."""
        self.lies.injected.extend(logs)

    def hide_logs(self, address: str, topic0: bytes) -> None:
        self.lies.hidden.add((address.lower(), "0x" + bytes(topic0).hex()))

    def honest(self) -> None:
        """Stops every lie."""
        self.lies = _Lies()

    # ── plumbing ──

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _throttled(self) -> bool:
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        with self._lock:
            self._window = [t for t in self._window if now - t < 1.0]
            if len(self._window) >= self.rate_limit:
                return True
            self._window.append(now)
        return False

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        if self.down:
            self.stats["down"] += 1
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.drop and self.rng.random() < self.drop:
            self.stats["dropped"] += 1
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if self._throttled():
            self.stats["throttled"] += 1
            payload = json.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32005, "message": "rate limit exceeded"}}
            ).encode()
            handler.send_response(429)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Retry-After", "1")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        low, high = self.delay
        if high > 0:
            time.sleep(self.rng.uniform(low, high))
        try:
            request = json.loads(body)
        except ValueError:  # the client died mid-request
            handler.close_connection = True
            return
        if isinstance(request, list):
            answer: Any = [self._call(item) for item in request]
        else:
            answer = self._call(request)
        if self.drop_after and self.rng.random() < self.drop_after:
            self.stats["dropped_after"] += 1  # the node did it; the client never hears so
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = json.dumps(answer).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _upstream(self, request: dict[str, Any]) -> dict[str, Any]:
        response = self._session().post(self.upstream, json=request, timeout=60)
        response.raise_for_status()
        return dict(response.json())

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        method = request.get("method", "")
        params = request.get("params") or []
        self.stats[method] += 1
        rid = request.get("id")
        if method == "eth_call" and params:
            forged = self._lie_call(params[0], params[1] if len(params) > 1 else "latest")
            if forged is not None:
                self.stats["lied"] += 1
                return {"jsonrpc": "2.0", "id": rid, "result": "0x" + forged.hex()}
        answer = self._upstream(request)
        if method != "eth_getLogs" or "result" not in answer:
            return answer
        query = params[0] if params else {}
        logs = self._doctor_logs(query, list(answer["result"]))
        first, last = self._range(query)
        if self.caps is not None and first is not None and last is not None:
            error = self.caps.check(first, last, logs)
            if error is not None:
                self.stats["capped"] += 1
                self.log_queries.append((first, last, True))
                return {"jsonrpc": "2.0", "id": rid, "error": error}
        self.log_queries.append((first, last, False))
        return {"jsonrpc": "2.0", "id": rid, "result": logs}

    def _range(self, query: dict[str, Any]) -> tuple[int | None, int | None]:
        def number(tag: Any) -> int | None:
            if isinstance(tag, str) and tag.startswith("0x"):
                return int(tag, 16)
            if isinstance(tag, int):
                return tag
            return None

        first = number(query.get("fromBlock"))
        last = number(query.get("toBlock"))
        if last is None and first is not None:
            head = self._upstream({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})
            last = int(head["result"], 16)
        return first, last

    def _lie_call(self, call: dict[str, Any], block: Any) -> bytes | None:
        data = bytes.fromhex(str(call.get("data") or call.get("input") or "0x")[2:])
        to = str(call.get("to", "")).lower()
        for fn in self.lies.call_fns:
            forged = fn(call, str(block))
            if forged is not None:
                return forged
        return self.lies.calls.get((to, data[:4]))

    def _doctor_logs(self, query: dict[str, Any], logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lies = self.lies
        if lies.hidden:
            logs = [lg for lg in logs if (lg["address"].lower(), lg["topics"][0]) not in lies.hidden]
        if lies.injected:
            first, last = self._range(query)
            for forged in lies.injected:
                if _matches(query, forged, first, last):
                    logs.append(forged)
            logs.sort(key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)))
        return logs


def _matches(query: dict[str, Any], log: dict[str, Any], first: int | None, last: int | None) -> bool:
    block = int(log["blockNumber"], 16)
    if first is not None and block < first or last is not None and block > last:
        return False
    address = query.get("address")
    if address:
        wanted = [address] if isinstance(address, str) else list(address)
        if log["address"].lower() not in {a.lower() for a in wanted}:
            return False
    for want, have in zip(query.get("topics") or [], log["topics"], strict=False):
        if want is None:
            continue
        options = [want] if isinstance(want, str) else list(want)
        if have.lower() not in {o.lower() for o in options}:
            return False
    return True


# ─── Lies that a node could tell about a campaign ────────────────────────────────────


def selector(signature: str) -> bytes:
    return bytes(keccak(text=signature)[:4])


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def raw_log(address: str, topics: Sequence[bytes], data: bytes, block: int, log_index: int = 0x77) -> dict[str, Any]:
    """A log in the JSON-RPC shape, as a node sends it."""
    return {
        "address": to_checksum_address(address).lower(),
        "topics": ["0x" + bytes(t).hex() for t in topics],
        "data": "0x" + data.hex(),
        "blockNumber": hex(block),
        "blockHash": "0x" + secrets.token_hex(32),
        "transactionHash": "0x" + secrets.token_hex(32),
        "transactionIndex": "0x0",
        "logIndex": hex(log_index),
        "removed": False,
    }


def forged_pledge(
    campaign: str, index: int, pledger: str, member_key: bytes, envelope: bytes, count: int, block: int
) -> dict[str, Any]:
    """A ``Pledged`` log the campaign never emitted (the liar's own member key)."""
    topic = keccak(text="Pledged(uint256,address,bytes,bytes,uint256)")
    data = abi_encode(["bytes", "bytes", "uint256"], [member_key, envelope, count])
    return raw_log(
        campaign, [topic, word(index), bytes(12) + bytes.fromhex(pledger[2:])], data, block, log_index=0x70 + index
    )


def forged_reveal(campaign: str, count: int, last_index: int, block: int) -> dict[str, Any]:
    topic = keccak(text="ThresholdReached(uint256,uint256)")
    return raw_log(campaign, [topic], word(count) + word(last_index), block, log_index=0x7F)


def lie_revealed(proxy: RpcProxy, campaign: str, reveal_block: int) -> None:
    """The node says the campaign is revealed at ``reveal_block`` (state() and revealBlock())."""
    proxy.lie_call(campaign, selector("state()"), word(1))
    proxy.lie_call(campaign, selector("revealBlock()"), word(reveal_block))


class Liar:
    """What a lying node says about one open campaign: revealed, with one more pledge, its own
    (``member``: the liar's member key; its envelope sealed to the real keepers, so their shares
    open). ``storage``: it lies about the contract's storage too, consistently."""

    def __init__(self, d: Deployment, campaign: str) -> None:
        from spartacus.chain import CampaignClient, pledge_digest
        from spartacus.envelope import PledgeContent, seal
        from spartacus.keys import KeyPair

        c = CampaignClient(d.client, campaign)
        self.campaign = campaign
        status = c.status()
        self.index, self.count, self.block = status.total_pledges, status.count + 1, d.client.head()
        self.account, self.member = KeyPair.generate(), KeyPair.generate()
        envelope = seal(
            PledgeContent(name="Mallory", contact={}), c.context(), self.member, pledger=self.account.address
        )
        self.logs = [
            forged_pledge(campaign, self.index, self.account.address, self.member.compressed, envelope, self.count,
                          self.block),
            forged_reveal(campaign, self.count, self.index, self.block),
        ]  # fmt: skip
        self.digest = pledge_digest(bytes.fromhex(self.logs[0]["data"][2:]))

    def tell(self, proxy: RpcProxy, *, storage: bool = False) -> None:
        lie_revealed(proxy, self.campaign, self.block)
        proxy.inject_logs(self.logs)
        if not storage:
            return
        proxy.lie_call(self.campaign, selector("pledgeCount()"), word(self.count))
        proxy.lie_call(self.campaign, selector("totalPledges()"), word(self.index + 1))
        liar = self.account.address.lower()[2:]
        record = abi_encode(["uint256", "uint8", "bool", "bool", "bytes20"], [self.index, 1, False, False, self.digest])

        def pledge_of(call: dict[str, Any], _block: str) -> bytes | None:
            data = str(call.get("data") or call.get("input") or "")
            if str(call.get("to", "")).lower() == self.campaign.lower() and data.lower().endswith(liar):
                return record if data.startswith("0x" + selector("pledgeOf(address)").hex()) else None
            return None

        proxy.lie_calls(pledge_of)


# ─── Processes and CLI through the proxy ──────────────────────────────────────────────


def spartacus(url: str, factory: str, cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Runs the real command with ``--network url`` (through the environment)."""
    env = os.environ | {"SPARTACUS_NETWORK": url, "SPARTACUS_FACTORY": factory}
    return subprocess.run(
        [sys.executable, "-m", "spartacus.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spartacus_json(url: str, factory: str, cwd: Path, *args: str) -> Any:
    out = spartacus(url, factory, cwd, *args, "--json")
    assert out.returncode == 0, f"spartacus {args[0]} failed: {out.stderr}"
    return json.loads(out.stdout)


def keeper_process(
    url: str, factory: str, cwd: Path, key_file: str, *extra: str, log: Path | None = None
) -> subprocess.Popen[str]:
    """``spartacus -vv keeper run`` as a process (output to ``log``, else a pipe)."""
    env = os.environ | {"SPARTACUS_NETWORK": url, "SPARTACUS_FACTORY": factory, "PYTHONUNBUFFERED": "1"}
    out: Any = open(log, "a") if log else subprocess.PIPE  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", "spartacus.cli", "-vv", "keeper", "run", "--key-file", key_file, *extra],
        cwd=cwd,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Polls ``condition`` until it is truthy (returns it) or fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# ─── Deployments for the tests ───────────────────────────────────────────────────────


@dataclass
class Deployment:
    """A factory with funded keepers on one anvil (key files ``keeper0.key``... in ``cwd``)."""

    url: str  # the node itself
    client: Any  # ChainClient on the node itself
    cwd: Path
    factory: str
    factory_block: int
    keepers: list[dict[str, str]]  # {"public_key", "address"} per key file, in file order
    campaigns: list[str] = field(default_factory=list)
    members: dict[str, list[tuple[Any, int, str]]] = field(default_factory=dict)  # campaign -> (key, index, name)
    pledgers: dict[str, dict[int, Any]] = field(default_factory=dict)  # campaign -> index -> pledger KeyPair

    def cli(self, url: str, *args: str) -> Any:
        return spartacus_json(url, self.factory, self.cwd, *args)


@contextlib.contextmanager
def own_anvil(cwd: Path) -> Iterator[Any]:
    """A module's own anvil (10 funded accounts), its log in ``cwd``; always stopped."""
    from spartacus.anvil import Anvil

    with Anvil(extra=["--accounts", "10"], log=cwd / "anvil.log") as node:
        yield node


def deploy_at(url: str, cwd: Path) -> Deployment:
    """:func:`deploy` through a plain web3 connection to ``url``."""
    from web3 import Web3

    from spartacus.chain import ChainClient

    return deploy(url, ChainClient(Web3(Web3.HTTPProvider(url))), cwd)


@contextlib.contextmanager
def anvil_deployment(cwd: Path) -> Iterator[Deployment]:
    """:func:`own_anvil` with :func:`deploy`'s factory and funded keepers on it."""
    with own_anvil(cwd) as node:
        yield deploy_at(node.url, cwd)


def deploy(url: str, client: Any, cwd: Path, keepers: int = 3) -> Deployment:
    """A new factory and ``keepers`` keeper key files made with the real command, funded."""
    from spartacus.anvil import dev_key
    from spartacus.chain import FactoryClient, KeySigner

    factory, result = FactoryClient.deploy(client, KeySigner(dev_key(0)))
    made = []
    for i in range(keepers):
        out = spartacus_json(url, factory.address, cwd, "keeper", "init", "--key-file", f"keeper{i}.key")
        fund(client, out["address"], 10**19)
        made.append(out)
    (cwd / "instructions.txt").write_text("Meet at the north gate, Monday 6:00. Bring the cards.\n")
    return Deployment(url, client, cwd, factory.address, result.block_number, made)


def create_campaign(d: Deployment, threshold: int, keeper_threshold: int = 2, **extra: str) -> str:
    """A campaign created with the real command (organizer TEST::1, key ``organizer-N.key``)."""
    from spartacus.keys import KIND_MEMBER, load_key_file

    n = len(d.campaigns)
    args = [
        "create", "--title", f"Night shift {n}", "--purpose", "A fair rota",
        "--threshold", str(threshold), "--deadline", extra.pop("deadline", "+7d"),
        "--keeper-threshold", str(keeper_threshold),
        "--name", "Olga Organizer", "--contact", "email=olga@example.org",
        "--instructions-file", "instructions.txt", "--member-key-file", f"organizer-{n}.key",
        "--account", "TEST::1",
    ]  # fmt: skip
    for k in d.keepers:
        args += ["--keeper", k["public_key"]]
    for key, value in extra.items():
        args += [f"--{key}", value]
    campaign = str(d.cli(d.url, *args)["campaign"])
    d.campaigns.append(campaign)
    d.members[campaign] = [(load_key_file(d.cwd / f"organizer-{n}.key", KIND_MEMBER), 0, "Olga Organizer")]
    d.pledgers[campaign] = {}
    return campaign


def pledge(d: Deployment, campaign: str, name: str) -> int:
    """A real sealed pledge from a fresh funded account, through the library; returns its index."""
    from spartacus.chain import CampaignClient, KeySigner
    from spartacus.envelope import PledgeContent, seal
    from spartacus.keys import KeyPair

    c = CampaignClient(d.client, campaign)
    account, member = KeyPair.generate(), KeyPair.generate()
    fund(d.client, account.address, 10**18)
    content = PledgeContent(name=name, contact={"email": f"{name.lower().replace(' ', '.')}@example.org"})
    envelope = seal(content, c.context(), member, pledger=account.address)
    result = c.pledge(KeySigner(account.secret_bytes()), envelope, member.compressed, c.status().deposit)
    index = int(result.events("Pledged")[0].args["index"])
    d.members[campaign].append((member, index, name))
    d.pledgers[campaign][index] = account
    return index


def withdraw(d: Deployment, campaign: str, index: int) -> None:
    from spartacus.chain import CampaignClient, KeySigner

    CampaignClient(d.client, campaign).withdraw(KeySigner(d.pledgers[campaign][index].secret_bytes()))
    d.members[campaign] = [m for m in d.members[campaign] if m[1] != index]


def mine(client: Any, blocks: int) -> None:
    """``blocks`` empty blocks at once (anvil_mine)."""
    client.w3.provider.make_request("anvil_mine", [hex(blocks)])


def published(client: Any, campaign: str) -> dict[int, dict[str, list[int]]]:
    """Per keeper index: every pledge index it shared and granted, repeats included (index sets
    are in clear), and its instructions and relay records. A keeper that never publishes twice
    has no repeats."""
    from spartacus.chain import CampaignClient
    from spartacus.release import (
        GrantsRecord,
        InstructionsRecord,
        PublicSharesRecord,
        RelayRecord,
        SharesRecord,
        parse_release,
    )

    out: dict[int, dict[str, list[int]]] = {}
    for rel in CampaignClient(client, campaign).releases():
        mine_ = out.setdefault(rel.keeper_index, {"shared": [], "granted": [], "instructions": [], "relay": []})
        for rec in parse_release(rel.data):
            if isinstance(rec, SharesRecord | PublicSharesRecord):
                mine_["shared"] += rec.indices
            elif isinstance(rec, GrantsRecord):
                mine_["granted"] += rec.indices
            elif isinstance(rec, InstructionsRecord):
                mine_["instructions"].append(rec.key_id)
            elif isinstance(rec, RelayRecord):
                mine_["relay"].append(rec.key_id)
    return out


def assert_published_once(client: Any, campaign: str) -> dict[int, dict[str, list[int]]]:
    """No keeper published a share, a grant or the instructions twice."""
    seen = published(client, campaign)
    for k, what in seen.items():
        for kind, indices in what.items():
            assert len(indices) == len(set(indices)), f"keeper #{k} published {kind} twice: {sorted(indices)}"
    return seen


def assert_full_rosters(d: Deployment, campaign: str, client: Any | None = None) -> None:
    """Every live member reads every live member, and the instructions."""
    from spartacus.chain import CampaignClient
    from spartacus.roster import build_roster

    c = CampaignClient(client or d.client, campaign)
    ctx, pledges, releases, status = c.context(), c.pledges(), c.releases(), c.status()
    names = {name for _key, _i, name in d.members[campaign]}
    for key, index, _name in d.members[campaign]:
        roster = build_roster(ctx, pledges, releases, key, status.creator, instructions=c.created.config.instructions)
        assert {m.name for m in roster.members} == names, (
            f"member #{index} reads {sorted(m.name for m in roster.members)}"
        )
        assert roster.skipped == [] and roster.instructions, (index, roster.skipped)


# anvil 1.7.1 mines each empty block in time that grows with the chain under its default
# hardfork (Prague's block-hash history, EIP-2935, and kept states): 50,000 blocks take many
# minutes. Cancun without old states mines them in seconds; logs and receipts stay readable,
# historical state beyond the last 256 blocks does not (nothing here reads it).
SPREAD_ANVIL = ("--accounts", "10", "--hardfork", "cancun", "--prune-history", "256")


@dataclass
class Spread:
    """:func:`spread_deployment`'s result."""

    deployment: Deployment
    campaign: str
    proxy: RpcProxy
    first_block: int
    last_block: int


@contextlib.contextmanager
def spread_deployment(
    cwd: Path,
    *,
    blocks: int = 50_000,
    pledges: int = 6,
    threshold: int | None = None,
    caps: LogCaps | None = None,
    anvil_args: Sequence[str] = SPREAD_ANVIL,
) -> Iterator[Spread]:
    """A new anvil, a factory with three funded keepers (t = 2), and a campaign whose creation
    and ``pledges`` pledges are spread evenly over ``blocks`` blocks after the factory's, with an
    :class:`RpcProxy` in front (by default QuickNode-like, 2,000 blocks per eth_getLogs). The
    campaign's threshold is ``pledges + 1`` (revealed by the last pledge) unless given."""
    from web3 import Web3

    from spartacus.anvil import Anvil
    from spartacus.chain import ChainClient

    with Anvil(extra=list(anvil_args), log=cwd / "anvil.log") as node:
        client = ChainClient(Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60})))
        d = deploy(node.url, client, cwd)
        step = blocks // (pledges + 2)
        mine(client, step)
        campaign = create_campaign(d, threshold=threshold or pledges + 1)
        first = client.head()
        for i in range(pledges):
            mine(client, step)
            pledge(d, campaign, f"Member {i}")
        mine(client, step)
        with RpcProxy(node.url, caps=caps or LogCaps("quicknode", max_range=2_000)) as proxy:
            yield Spread(d, campaign, proxy, first, client.head())
