"""The relayer: a small HTTP service that carries signed forwarder requests and pays their gas (P8).

``spartacus relayer run --account A [--host H] [--port P] [--state PATH]`` serves:

* ``GET /health``: 200 ``{"ok": true, "address", "balance", "chain_id", "factory", "forwarder",
  "sponsor_max_wei", "rate_limits"}`` when it can send (node reachable, funded), else 503
  ``{"ok": false, "error"}``;
* ``POST /relay`` with a signed request (:class:`spartacus.forwarding.ForwardRequest`, as JSON):
  200 ``{"tx", "status": "sent" | "mined" | "known"}``, or a refusal ``{"error", "reason"}``
  (reasons below; 429 comes with ``Retry-After``);
* ``GET /tx/<hash>``: 200 ``{"tx", "status": "pending" | "mined" | "failed" | "unknown", "block"}``.

Checks, cheapest first, each refusal one sentence that says what to do:

==================  ====  ==================================================================
reason              HTTP  when
==================  ====  ==================================================================
``rate-limited``    429   more requests from this client, or relayed transactions to this
                          campaign, than the window allows
``malformed``       400   not the API's JSON; gas above this relayer's limit; a nonce ahead
``wrong-target``    403   not this deployment's factory nor one of its campaigns (checked
                          against the factory's ``CampaignCreated`` logs)
``wrong-function``  403   not ``createCampaign``, or not ``pledge``, ``withdraw``, ``refund``,
                          ``cancel``, ``claimDeposits``
``value-too-high``  403   a deposit above what this relayer sponsors
``expired``         400   a deadline passed, or too close to be mined in time
``bad-signature``   400   the signature is not ``from``'s over this request
``nonce-used``      409   the forwarder's nonce for ``from`` moved past the request's, or
                          another request of that nonce is being carried
``would-revert``    422   the simulation (``eth_call`` of ``execute`` from the relayer's own
                          address, then of the inner call) fails: the contract's own error,
                          decoded
``unavailable``     503   the node is unreachable, or the relayer cannot pay
==================  ====  ==================================================================

Sending: one lock around nonce, signature, journal and broadcast, so concurrent requests never
share a nonce; the nonce is the relayer's own counter (never below the node's pending count).
Every signed transaction is journaled (SQLite, synced) before it is broadcast; after a crash,
the journal's transactions are broadcast again (same bytes, same hash) or settled from their
receipts, never rebuilt: nothing is lost and nothing is sent twice. The same request sent again
gets its first transaction back (``known`` / ``mined``); and the forwarder's nonce makes any
request run once at most, whatever any relayer does.

Privacy: a client is known only by an HMAC of its IP address under a random key that lives in
memory and is replaced every rate-limit window; nothing about a client's address is logged or
stored (the standard library's request log is switched off).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from ._exceptions import ChainError, ContractRevert, InputError, RPCUnavailable, SpartacusError
from ._listener_state import check_identity, lock, transaction
from .chain import ChainClient, FactoryClient, Signer, _explain
from .forwarding import (
    CARRIED,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    ForwardRequest,
    as_forwarded,
    forwarder_nonce,
    selector_of,
)

__all__ = ["Limits", "Refusal", "Relayer", "RelayerServer", "serve"]

log = logging.getLogger("spartacus.relayer")

STATUS = {
    "malformed": 400,
    "bad-signature": 400,
    "expired": 400,
    "wrong-target": 403,
    "wrong-function": 403,
    "value-too-high": 403,
    "nonce-used": 409,
    "would-revert": 422,
    "rate-limited": 429,
    "unavailable": 503,
}
MAX_BODY = 300 * 1024
_TX_PATH = re.compile(r"^/tx/(0x[0-9a-fA-F]{64})$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (address TEXT PRIMARY KEY, block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (         -- every request carried, with its journaled transaction
    digest TEXT PRIMARY KEY,                  -- the request's EIP-712 hash (it covers the nonce)
    signer TEXT NOT NULL,                     -- the request's "from" (public on-chain once mined)
    request_nonce INTEGER NOT NULL,
    target TEXT NOT NULL,
    function TEXT NOT NULL,
    tx_hash TEXT NOT NULL UNIQUE,
    account_nonce INTEGER NOT NULL,
    raw BLOB NOT NULL,                        -- the signed transaction, journaled before broadcast
    status TEXT NOT NULL,                     -- sent | mined | failed | dropped
    block INTEGER,
    created REAL NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_signer ON requests (signer, request_nonce);
"""


@dataclass(frozen=True)
class Limits:
    """What a relayer accepts (``relayer run`` options)."""

    client: int = 30  # requests per client per window (every POST counts, refused ones too)
    campaign: int = 300  # relayed transactions per campaign (or creations, for the factory) per window
    window: float = 3600.0  # seconds
    sponsor_max_wei: int = 0  # the largest deposit (request value) it pays
    max_gas: int = 3_000_000  # the largest request gas it carries
    deadline_margin: int = 10  # seconds a request must still be valid for

    def as_json(self) -> dict[str, Any]:
        return {
            "client": {"requests": self.client, "window_seconds": self.window},
            "campaign": {"transactions": self.campaign, "window_seconds": self.window},
        }


class Refusal(Exception):
    """A request refused, with the API's reason code and a sentence that says what to do."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.retry_after = reason, message, retry_after

    @property
    def status(self) -> int:
        return STATUS[self.reason]

    def as_json(self) -> dict[str, Any]:
        return {"error": self.message, "reason": self.reason}


class _Window:
    """Fixed-window counters, in memory only. ``secret`` is replaced with every window, so
    keyed hashes of client addresses cannot be linked from one window to the next."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._epoch = -1
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.secret = b""

    def _roll(self) -> float:
        now = self.clock()
        epoch = int(now // self.window)
        if epoch != self._epoch:
            self._epoch, self._counts, self.secret = epoch, {}, secrets.token_bytes(32)
        return (epoch + 1) * self.window - now

    def client_id(self, address: str) -> str:
        with self._lock:
            self._roll()
            return hmac.new(self.secret, address.encode(), hashlib.sha256).hexdigest()[:32]

    def over(self, key: str) -> float | None:
        """Seconds until the window ends if ``key`` used its limit, else None."""
        with self._lock:
            left = self._roll()
            return max(1.0, left) if self._counts.get(key, 0) >= self.limit else None

    def hit(self, key: str) -> float | None:
        """Counts one for ``key``; like :meth:`over` if the limit was already used (no count then)."""
        with self._lock:
            left = self._roll()
            if self._counts.get(key, 0) >= self.limit:
                return max(1.0, left)
            self._counts[key] = self._counts.get(key, 0) + 1
            return None


def _seconds(value: float) -> str:
    return f"{int(value)} s" if value < 120 else f"{int(value // 60)} min"


class Relayer:
    """Carries requests for one factory's deployment, from one funded account."""

    def __init__(
        self,
        client: ChainClient,
        signer: Signer,
        factory: str,
        state_path: str | Path,
        limits: Limits = Limits(),
        *,
        min_balance: int | None = None,
        rebroadcast_after: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.signer, self.limits = client, signer, limits
        self.address = to_checksum_address(signer.address)
        self.factory = FactoryClient(client, factory)
        self.forwarder = self.factory.forwarder
        self.chain_id = client.chain_id
        self.min_balance = min_balance
        self.rebroadcast_after = rebroadcast_after
        self.clock = clock
        self.clients = _Window(limits.client, limits.window, clock)
        self.campaigns = _Window(limits.campaign, limits.window, clock)
        contracts = client.contracts
        self._factory_selectors = {selector_of(contracts, "CampaignFactory", f): f for f in CARRIED["CampaignFactory"]}
        self._campaign_selectors = {selector_of(contracts, "Campaign", f): f for f in CARRIED["Campaign"]}
        self._check_domain()
        self._send_lock = threading.Lock()
        self._db_lock = threading.RLock()
        self._scan_lock = threading.Lock()
        self.state_path = Path(state_path)
        self._lock_fd = lock(self.state_path, "relayer")
        try:
            self.db = self._open()
            check_identity(
                self.db,
                self.state_path,
                {"relayer": self.address, "factory": self.factory.address, "chain_id": str(self.chain_id)},
            )
            self._next_nonce = 0
            self.settle(rebroadcast_all=True)  # after a crash: what was journaled goes out again
            self._sync_nonce()
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _open(self) -> sqlite3.Connection:
        path = self.state_path
        try:
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot use {path} as the relayer's state ({exc}): pass another --state") from exc
        return db

    def close(self) -> None:
        with self._db_lock:
            self.db.close()
        os.close(self._lock_fd)

    def _check_domain(self) -> None:
        """The forwarder must be this deployment's: its EIP-712 domain is the one requests are signed for."""
        out = self.client.call("Forwarder", self.forwarder, "eip712Domain")
        name, version, chain_id, verifying = out[1], out[2], int(out[3]), to_checksum_address(out[4])
        if (name, version, chain_id, verifying) != (DOMAIN_NAME, DOMAIN_VERSION, self.chain_id, self.forwarder):
            raise ChainError(
                f"the factory's forwarder {self.forwarder} has the EIP-712 domain ({name}, {version}, {chain_id}),"
                f" not ({DOMAIN_NAME}, {DOMAIN_VERSION}, {self.chain_id}): is --factory a Spartacus factory?"
            )

    # ─── Nonces ────────────────────────────────────────────────────────────────────

    def _sync_nonce(self) -> None:
        pending = int(self.client._rpc(lambda: self.client.w3.eth.get_transaction_count(self.address, "pending")))
        with self._db_lock:
            (top,) = self.db.execute("SELECT MAX(account_nonce) FROM requests").fetchone()
        self._next_nonce = max(self._next_nonce, pending, -1 if top is None else int(top) + 1)

    # ─── The API ───────────────────────────────────────────────────────────────────

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            balance = self.client.balance(self.address)
            need = self.min_balance if self.min_balance is not None else 300_000 * self._fee_per_gas()
        except RPCUnavailable:
            return 503, {"ok": False, "error": "the relayer cannot reach its node: try later, or another relayer"}
        if balance < need:
            return 503, {
                "ok": False,
                "error": f"the relayer's account {self.address} holds {balance} wei, less than the {need} wei it needs"
                " to send: its operator must fund it (use another relayer meanwhile)",
            }
        return 200, {
            "ok": True,
            "address": self.address,
            "balance": str(balance),
            "chain_id": self.chain_id,
            "factory": self.factory.address,
            "forwarder": self.forwarder,
            "sponsor_max_wei": str(self.limits.sponsor_max_wei),
            "rate_limits": self.limits.as_json(),
        }

    def _fee_per_gas(self) -> int:
        return int(self.client._rpc(lambda: self.client.w3.eth.gas_price))

    def relay(self, body: bytes, client: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One ``POST /relay``: (HTTP status, JSON body, extra headers). ``client`` is the client's
        network address, used only to count its requests under a keyed hash."""
        try:
            retry = self.clients.hit(self.clients.client_id(client))
            if retry is not None:
                raise Refusal(
                    "rate-limited",
                    f"too many requests from your address: this relayer takes {self.limits.client} per"
                    f" {_seconds(self.limits.window)} from one client; retry in {_seconds(retry)},"
                    " or use another relayer",
                    retry,
                )
            try:
                doc = json.loads(body)
                request = ForwardRequest.from_json(doc)
            except (ValueError, UnicodeDecodeError) as exc:
                message = exc.message if isinstance(exc, InputError) else "the body is not JSON"
                raise Refusal("malformed", f"{message}: send the forward request as the relayer API says") from None
            return 200, self.carry(request), {}
        except Refusal as refusal:
            log.info("refused (%s): %s", refusal.reason, refusal.message)
            headers = {"Retry-After": str(int(refusal.retry_after))} if refusal.retry_after else {}
            return refusal.status, refusal.as_json(), headers
        except RPCUnavailable:
            down = Refusal("unavailable", "the relayer cannot reach its node: try later, or another relayer")
            return down.status, down.as_json(), {}
        except SpartacusError as exc:  # a node that answers oddly, say: one line, never a traceback
            log.warning("request not carried: %s", exc.message)
            down = Refusal("unavailable", f"the relayer cannot carry requests now ({exc.message}): try later")
            return down.status, down.as_json(), {}

    def carry(self, request: ForwardRequest) -> dict[str, Any]:
        """Checks ``request`` and sends it; raises :class:`Refusal`."""
        digest = request.digest(self.chain_id, self.forwarder)
        known = self._known(digest)
        if known is not None:
            return known
        function = self._function(request)
        if request.value > self.limits.sponsor_max_wei:
            raise Refusal(
                "value-too-high",
                f"the request carries {request.value} wei; this relayer sponsors deposits of at most"
                f" {self.limits.sponsor_max_wei} wei: use a relayer that sponsors it, or send the call yourself",
            )
        if request.gas > self.limits.max_gas:
            raise Refusal("malformed", f"gas {request.gas} is above this relayer's limit of {self.limits.max_gas}")
        now = self.client.timestamp()
        if request.deadline < now + self.limits.deadline_margin:
            raise Refusal(
                "expired",
                f"the request's deadline {request.deadline} is past or within {self.limits.deadline_margin} s"
                f" (chain time {now}): sign it again with a later deadline",
            )
        if request.signer(self.chain_id, self.forwarder) != request.sender:
            raise Refusal(
                "bad-signature",
                f"the signature is not {request.sender}'s over this request (for forwarder {self.forwarder},"
                f" chain {self.chain_id}): sign the request again with the key of its 'from'",
            )
        nonce = forwarder_nonce(self.client, self.forwarder, request.sender)
        if request.nonce < nonce:
            raise Refusal(
                "nonce-used",
                f"nonce {request.nonce} of {request.sender} was already used (the forwarder is at {nonce}): this"
                " request, or another of that nonce, ran already; check the chain before signing anything new",
            )
        if request.nonce > nonce:
            raise Refusal(
                "malformed", f"nonce {request.nonce} is ahead of the forwarder's ({nonce}): sign with nonce {nonce}"
            )
        retry = self.campaigns.over(request.to)
        if retry is not None:
            raise self._campaign_limited(request, retry)
        self._simulate(request)
        with self._send_lock:
            known = self._known(digest)
            if known is not None:
                return known
            with self._db_lock:
                busy = self.db.execute(
                    "SELECT tx_hash FROM requests WHERE signer = ? AND request_nonce = ? AND status = 'sent'",
                    (request.sender, request.nonce),
                ).fetchone()
            if busy:
                raise Refusal(
                    "nonce-used",
                    f"another request of {request.sender} with nonce {request.nonce} is being carried (tx {busy[0]}):"
                    " wait for it, then check the chain",
                )
            retry = self.campaigns.hit(request.to)
            if retry is not None:
                raise self._campaign_limited(request, retry)
            tx_hash = self._send(request, digest, function)
        log.info("carried %s to %s: tx %s", function, request.to, tx_hash)
        return {"tx": tx_hash, "status": "sent"}

    def _campaign_limited(self, request: ForwardRequest, retry: float) -> Refusal:
        what = "creations" if request.to == self.factory.address else "transactions to this campaign"
        return Refusal(
            "rate-limited",
            f"this relayer carries at most {self.limits.campaign} {what} per {_seconds(self.limits.window)};"
            f" retry in {_seconds(retry)}, or use another relayer",
            retry,
        )

    def _known(self, digest: bytes) -> dict[str, Any] | None:
        with self._db_lock:
            row = self.db.execute(
                "SELECT tx_hash, status FROM requests WHERE digest = ?", (HexBytes(digest).to_0x_hex(),)
            ).fetchone()
        if row is None:
            return None
        tx_hash, status = row
        if status == "sent":  # settle it now rather than at the next pass
            receipt = self.client.receipt(tx_hash)
            if receipt is not None:
                status = "mined" if receipt["status"] == 1 else "failed"
                self._mark(tx_hash, status, int(receipt["blockNumber"]))
        if status in ("dropped", "failed"):  # it did not run: it may be carried again
            return None
        return {"tx": tx_hash, "status": "mined" if status == "mined" else "known"}

    def _function(self, request: ForwardRequest) -> str:
        selector = request.data[:4]
        if request.to == self.factory.address:
            function = self._factory_selectors.get(selector)
            if function is None:
                raise Refusal(
                    "wrong-function",
                    "of the factory this relayer carries only createCampaign: send other calls yourself",
                )
            return function
        if not self.is_campaign(request.to):
            raise Refusal(
                "wrong-target",
                f"{request.to} is neither factory {self.factory.address} nor one of its campaigns: this relayer"
                " carries requests for that deployment only",
            )
        function = self._campaign_selectors.get(selector)
        if function is None:
            raise Refusal(
                "wrong-function",
                "of a campaign this relayer carries only pledge, withdraw, refund, cancel and claimDeposits",
            )
        return function

    def is_campaign(self, address: str) -> bool:
        """Whether the factory created ``address`` (its ``CampaignCreated`` logs, indexed here)."""
        address = to_checksum_address(address)
        if self._campaign_known(address):
            return True
        with self._scan_lock:
            with self._db_lock:
                row = self.db.execute("SELECT value FROM meta WHERE key = 'scanned'").fetchone()
            start = int(row[0]) + 1 if row else self.factory.deployed_at
            head = self.client.head()
            if start <= head:
                found = [(c.campaign, c.block_number) for c in self.factory.campaigns(from_block=start, to_block=head)]
                with self._db_lock, transaction(self.db) as db:
                    db.executemany("INSERT OR IGNORE INTO campaigns (address, block) VALUES (?, ?)", found)
                    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('scanned', ?)", (str(head),))
        return self._campaign_known(address)

    def _campaign_known(self, address: str) -> bool:
        with self._db_lock:
            return self.db.execute("SELECT 1 FROM campaigns WHERE address = ?", (address,)).fetchone() is not None

    # ─── Simulation ────────────────────────────────────────────────────────────────

    def _execute_data(self, request: ForwardRequest) -> bytes:
        return self.client.contracts.encode_call("Forwarder", "execute", [request.execute_args()])

    def _simulate(self, request: ForwardRequest) -> None:
        """``eth_call`` of ``execute`` from this relayer's address; a failure becomes a Refusal that
        names the contract's own error (the forwarder's, or the inner call's)."""
        tx = {
            "from": self.address,
            "to": self.forwarder,
            "data": HexBytes(self._execute_data(request)),
            "value": request.value,
        }
        try:
            self.client._rpc(lambda: self.client.w3.eth.call(tx, "latest"))  # type: ignore[arg-type]
            return
        except (ContractLogicError, ContractCustomError, Web3RPCError, ValueError) as exc:
            err = self.client._revert(exc)  # the contract's own error, decoded, if it is one
        if not isinstance(err, ContractRevert):  # this relayer cannot pay
            raise Refusal("unavailable", "the relayer cannot pay for this request now: try later, or another relayer")
        name, args = err.context.get("error"), err.context.get("args") or {}
        if name == "ERC2771ForwarderInvalidSigner":
            raise Refusal("bad-signature", f"the forwarder rejects the signature ({_explain(name, args)})")
        if name == "ERC2771ForwarderExpiredRequest":
            raise Refusal("expired", "the request expired: sign it again with a later deadline")
        if name == "ERC2771UntrustfulTarget":
            raise Refusal("wrong-target", f"{request.to} does not trust this deployment's forwarder")
        if name == "FailedCall":
            raise Refusal("would-revert", self._inner_error(request))
        if name is None:
            raise Refusal("would-revert", f"the call would fail ({err.message[:200]}): check it, or send it yourself")
        raise Refusal("would-revert", f"the call would revert with {name}: {_explain(name, args)}")

    def _inner_error(self, request: ForwardRequest) -> str:
        """Why the call the forwarder makes fails: the target's own error, from an ``eth_call`` as the
        forwarder (``data ‖ from``, the request's gas and value)."""
        tx, override = as_forwarded(self.forwarder, request.sender, request.to, request.data, request.value)
        tx["gas"] = request.gas
        try:
            if override is None:
                self.client._rpc(lambda: self.client.w3.eth.call(tx, "latest"))  # type: ignore[arg-type]
            else:
                self.client._rpc(lambda: self.client.w3.eth.call(tx, "latest", override))  # type: ignore[arg-type]
        except (ContractLogicError, ContractCustomError, Web3RPCError, ValueError) as exc:
            err = self.client._revert(exc)
            name = err.context.get("error")
            if name is not None:
                return f"the call would revert with {name}: {_explain(name, err.context.get('args') or {})}"
            if "gas" in str(exc).lower():
                return f"the request's gas ({request.gas}) is too low for this call: sign it again with more"
            return f"the call would revert ({str(exc)[:160]}): check it before signing it again"
        return f"the call needs more than the request's gas ({request.gas}): sign it again with more gas"

    # ─── Sending, journaled ────────────────────────────────────────────────────────

    def _send(self, request: ForwardRequest, digest: bytes, function: str) -> str:
        """Under the send lock: signs the relayer's transaction, journals it, broadcasts it."""
        data = self._execute_data(request)
        for attempt in (1, 2):
            try:
                tx = self.client.prepare(self.signer, self.forwarder, data, value=request.value)
            except ContractRevert as exc:  # the state moved since the simulation
                raise Refusal("would-revert", f"the call would fail now: {exc.message}") from None
            except RPCUnavailable:
                raise
            except ChainError as exc:  # e.g. this relayer cannot pay
                raise Refusal("unavailable", f"the relayer cannot send now ({exc.message}): try later") from None
            tx["nonce"] = self._next_nonce
            raw = self.signer.sign(tx)
            tx_hash = HexBytes(keccak(raw)).to_0x_hex()
            self.journal(request, digest, function, tx_hash, int(tx["nonce"]), raw)
            self._next_nonce += 1
            try:
                self.client.broadcast(raw)
            except RPCUnavailable:
                log.warning("node unreachable while sending %s: kept in the journal, sent again later", tx_hash)
                return tx_hash
            except ChainError as exc:
                # Refused by the node: never in its pool. Unjournal it; on a stale nonce, resync once.
                with self._db_lock:
                    self.db.execute("DELETE FROM requests WHERE tx_hash = ?", (tx_hash,))
                self._next_nonce -= 1
                if attempt == 1 and "nonce" in exc.message.lower():
                    self._sync_nonce()
                    continue
                raise Refusal("unavailable", f"the node refused the relayer's transaction ({exc.message})") from None
            return tx_hash
        raise AssertionError("unreachable")  # pragma: no cover

    def journal(
        self, request: ForwardRequest, digest: bytes, function: str, tx_hash: str, account_nonce: int, raw: bytes
    ) -> None:
        """Records a signed transaction, on disk, before it is broadcast."""
        now = self.clock()
        with self._db_lock, transaction(self.db) as db:
            # A request whose earlier transaction failed or was dropped did not run: carried anew.
            db.execute(
                "DELETE FROM requests WHERE digest = ? AND status IN ('failed', 'dropped')",
                (HexBytes(digest).to_0x_hex(),),
            )
            db.execute(
                "INSERT INTO requests (digest, signer, request_nonce, target, function, tx_hash, account_nonce, raw,"
                " status, created, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'sent', ?, ?)",
                (
                    HexBytes(digest).to_0x_hex(),
                    request.sender,
                    request.nonce,
                    request.to,
                    function,
                    tx_hash,
                    account_nonce,
                    raw,
                    now,
                    now,
                ),
            )

    def settle(self, *, rebroadcast_all: bool = False) -> None:
        """One pass over the journal: receipts settle transactions; those not mined for a while (all
        of them after a restart) are broadcast again, byte for byte."""
        with self._db_lock:
            rows = self.db.execute(
                "SELECT tx_hash, raw, sent_at, signer, request_nonce, account_nonce FROM requests"
                " WHERE status = 'sent' ORDER BY account_nonce"
            ).fetchall()
        now = self.clock()
        for tx_hash, raw, sent_at, signer, request_nonce, account_nonce in rows:
            receipt = self.client.receipt(tx_hash)
            if receipt is not None:
                status = "mined" if receipt["status"] == 1 else "failed"
                self._mark(tx_hash, status, int(receipt["blockNumber"]))
                if status == "failed":
                    log.warning("transaction %s failed on-chain (the state moved after its simulation)", tx_hash)
                continue
            if not rebroadcast_all and now - sent_at < self.rebroadcast_after:
                continue
            try:
                self.client.broadcast(bytes(raw))
            except ChainError as exc:
                if isinstance(exc, RPCUnavailable):
                    raise
                mined_nonce = int(self.client._rpc(lambda: self.client.w3.eth.get_transaction_count(self.address)))
                if mined_nonce > account_nonce and self.client.receipt(tx_hash) is None:
                    ran = forwarder_nonce(self.client, self.forwarder, signer) > request_nonce
                    log.warning(
                        "journaled %s was replaced on-chain (%s): dropped",
                        tx_hash,
                        "the request ran in another transaction" if ran else "the request did not run",
                    )
                    self._mark(tx_hash, "dropped", None)
                else:
                    log.warning("journaled %s not sent again yet: %s", tx_hash, exc.message)
                continue
            with self._db_lock:
                self.db.execute("UPDATE requests SET sent_at = ? WHERE tx_hash = ?", (now, tx_hash))

    def _mark(self, tx_hash: str, status: str, block: int | None) -> None:
        with self._db_lock:
            self.db.execute("UPDATE requests SET status = ?, block = ? WHERE tx_hash = ?", (status, block, tx_hash))

    def tx_status(self, tx_hash: str) -> dict[str, Any]:
        tx_hash = tx_hash.lower()
        receipt = self.client.receipt(tx_hash)
        if receipt is not None:
            status = "mined" if receipt["status"] == 1 else "failed"
            return {"tx": tx_hash, "status": status, "block": int(receipt["blockNumber"])}
        with self._db_lock:
            row = self.db.execute("SELECT status FROM requests WHERE tx_hash = ?", (tx_hash,)).fetchone()
        if row is None:
            return {"tx": tx_hash, "status": "unknown", "block": None}
        return {"tx": tx_hash, "status": "pending" if row[0] == "sent" else "failed", "block": None}


# ─── HTTP ────────────────────────────────────────────────────────────────────────────


class RelayerServer(ThreadingHTTPServer):
    """The relayer's HTTP server: one thread per connection."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        relayer: Relayer,
        *,
        forwarded_header: str | None = None,
        cors: str = "*",
        max_connections: int = 64,
    ) -> None:
        self.relayer, self.forwarded_header, self.cors = relayer, forwarded_header, cors
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, at most ``max_connections`` at once: beyond, a short 503."""
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Logs a failed request without the client's address (the base class prints it)."""
        log.exception("a request failed")


class _Handler(BaseHTTPRequestHandler):
    server: RelayerServer
    server_version = "spartacus-relayer"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Off: the standard library would log every client's address."""

    def _client(self) -> str:
        header = self.server.forwarded_header
        if header:
            value = self.headers.get(header)
            if value:
                return value.split(",")[-1].strip()  # the hop the proxy itself saw
        return str(self.client_address[0])

    def _send(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.server.cors:
            self.send_header("Access-Control-Allow-Origin", self.server.cors)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._send(status, {"error": message, "reason": reason})

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(204)
        if self.server.cors:
            self.send_header("Access-Control-Allow-Origin", self.server.cors)
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        relayer = self.server.relayer
        try:
            if self.path == "/health":
                status, doc = relayer.health()
                self._send(status, doc)
                return
            match = _TX_PATH.match(self.path)
            if match:
                self._send(200, relayer.tx_status(match.group(1)))
                return
        except RPCUnavailable:
            self._refuse(503, "unavailable", "the relayer cannot reach its node: try later, or another relayer")
            return
        self._refuse(404, "malformed", "no such endpoint: GET /health, POST /relay, GET /tx/<hash>")

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/relay":
            self._refuse(404, "malformed", "no such endpoint: POST /relay")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._refuse(411, "malformed", "send the request with a Content-Length")
            return
        if int(length) > MAX_BODY:
            self.close_connection = True
            self._refuse(413, "malformed", f"the body is over {MAX_BODY // 1024} KiB: no request is that large")
            return
        body = self.rfile.read(int(length))
        try:
            status, doc, headers = self.server.relayer.relay(body, self._client())
        except Exception:  # a bug, not the client's fault: logged (without the client), answered
            log.exception("a request failed")
            self._refuse(503, "unavailable", "the relayer failed on this request: try later, or another relayer")
            return
        self._send(status, doc, headers)


def serve(
    relayer: Relayer,
    host: str,
    port: int,
    *,
    stop: threading.Event,
    interval: float = 2.0,
    forwarded_header: str | None = None,
    on_ready: Callable[[RelayerServer], None] | None = None,
) -> None:
    """Serves until ``stop`` is set; settles the journal every ``interval`` seconds."""
    server = RelayerServer((host, port), relayer, forwarded_header=forwarded_header)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    if on_ready is not None:
        on_ready(server)
    try:
        while not stop.wait(interval):
            try:
                relayer.settle()
            except RPCUnavailable as exc:
                log.warning("node unreachable (%s); retrying", exc.message)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
