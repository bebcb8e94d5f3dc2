"""The relayer: a small HTTP service that carries signed forwarder requests and pays their gas (P8).

``spartacus relayer run --account A [--host H] [--port P] [--state PATH]`` serves:

* ``GET /health``: 200 ``{"ok": true, "address", "balance", "chain_id", "factory", "forwarder",
  "sponsor_max_wei", "rate_limits"}`` when it can send (node reachable, funded), else 503
  ``{"ok": false, "error"}``;
* ``POST /relay`` with a signed request (:class:`spartacus.forwarding.ForwardRequest`, as JSON):
  200 ``{"tx", "status": "sent" | "mined" | "known"}``, or a refusal ``{"error", "reason"}``
  (reasons below; 429 comes with ``Retry-After``);
* ``GET /tx/<hash>``: 200 ``{"tx", "status": "pending" | "mined" | "failed" | "unknown", "block"}``;
  for a version that another version of the same transaction replaced, the request's status, and
  ``"mined_as"``: the hash of the version that was mined.

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
share a nonce; the nonce is the relayer's own counter (never below the node's pending count),
and each accepted request has one, so transactions go out pipelined. Every signed transaction is
journaled (SQLite, synced) before it is broadcast; after a crash, the journal's transactions are
broadcast again (same bytes, same hash) or settled from their receipts, never rebuilt: nothing
is lost and nothing is sent twice. The same request sent again gets its transaction back
(``known`` / ``mined``); and the forwarder's nonce makes any request run once at most, whatever
any relayer does.

Fees (``relayer run --max-fee-gwei --stuck-blocks``, the :class:`spartacus._fees.FeePolicy` of
the chain client): a transaction not mined after ``stuck_blocks`` blocks (the lowest waiting
nonce; a later one only when its own fee cannot get it into the next block), or refused by the
node for its fees, is replaced: a new version with the same nonce and both fees raised
(:func:`spartacus._fees.replacement`), journaled beside the earlier ones before it is sent, at
most one a block. The journal holds every version; only one can ever be mined, and a receipt of
any settles the request. At the cap no replacement is made: the newest version waits, and is
mined when fees fall. After a restart the newest version is sent again, or replaced.

Funds: a request this relayer cannot pay for (its balance below the transaction's gas at its
max fee) is refused with 503 ``unavailable``, in a sentence that says the relayer is out of
funds; the log names the address and the amount it needs (at every refusal); ``/health`` says
503 meanwhile. Nothing stops: once the account is funded, requests are carried again.

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from ._exceptions import ChainError, ContractRevert, InputError, InsufficientFunds, RPCUnavailable, SpartacusError
from ._fees import Fees, format_wei, replacement
from ._listener_state import check_identity, lock, transaction, tx_from_json, tx_json
from .chain import (
    ChainClient,
    FactoryClient,
    Sent,
    Signer,
    _explain,
    _FeeTooLow,
    _NonceTooLow,
    _Underpriced,
)
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
CREATE TABLE IF NOT EXISTS versions (         -- every signed version of a request's transaction
    tx_hash TEXT PRIMARY KEY,
    digest TEXT NOT NULL,                     -- the request it carries (requests.digest)
    account_nonce INTEGER NOT NULL,           -- the request's: one nonce, so only one version can be mined
    raw BLOB NOT NULL,                        -- journaled before it is broadcast
    tx TEXT,                                  -- its fields (JSON), to re-price it
    created REAL NOT NULL,
    sent_block INTEGER                        -- the head when it was first broadcast (NULL: not yet)
);
CREATE INDEX IF NOT EXISTS versions_by_digest ON versions (digest);
"""
# Columns added since the first relayer state files, and the versions those files' rows stand for.
_MIGRATIONS = {"requests": {"mined_tx": "TEXT"}}
_LEGACY_VERSIONS = """
INSERT OR IGNORE INTO versions (tx_hash, digest, account_nonce, raw, tx, created, sent_block)
SELECT tx_hash, digest, account_nonce, raw, NULL, created, NULL FROM requests WHERE status = 'sent'
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
            self._stuck: set[str] = set()  # versions the node refused for their fees: replace them
            self._repriced: dict[str, int] = {}  # request -> the block of its last replacement (one a block)
            self._cap_warned: set[str] = set()
            self._gone: Counter[str] = Counter()  # request -> passes its nonce was used with no receipt seen
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
            for table, columns in _MIGRATIONS.items():
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            db.execute(_LEGACY_VERSIONS)
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
        """The answer for a request carried already: its mined version, or its newest one."""
        key = HexBytes(digest).to_0x_hex()
        with self._db_lock:
            row = self.db.execute("SELECT tx_hash, status, mined_tx FROM requests WHERE digest = ?", (key,)).fetchone()
        if row is None:
            return None
        first, status, mined_tx = row
        hashes = [v[1] for v in self._versions(key)] or [first]
        if status == "sent":  # settle it now rather than at the next pass
            status = self._settle_mined(key, hashes) or "sent"
            if status != "sent":
                with self._db_lock:
                    (mined_tx,) = self.db.execute("SELECT mined_tx FROM requests WHERE digest = ?", (key,)).fetchone()
        if status in ("dropped", "failed"):  # it did not run: it may be carried again
            return None
        if status == "mined":
            return {"tx": mined_tx or first, "status": "mined"}
        return {"tx": hashes[-1], "status": "known"}

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
            except InsufficientFunds as exc:
                raise self._out_of_funds(exc) from None
            except ContractRevert as exc:  # the state moved since the simulation
                raise Refusal("would-revert", f"the call would fail now: {exc.message}") from None
            except RPCUnavailable:
                raise
            except ChainError as exc:
                raise Refusal("unavailable", f"the relayer cannot send now ({exc.message}): try later") from None
            tx["nonce"] = self._next_nonce
            try:
                self.client.check_funds(tx)
            except InsufficientFunds as exc:
                raise self._out_of_funds(exc) from None
            sent = self.client.sign(self.signer, tx)
            self.journal(request, digest, function, sent)
            self._next_nonce += 1
            try:
                self.client.broadcast(sent.raw)
            except RPCUnavailable:
                log.warning("node unreachable while sending %s: kept in the journal, sent again later", sent.tx_hash)
                return sent.tx_hash  # sent_block stays NULL: sent again at the next pass
            except _FeeTooLow as exc:
                # Fees rose past this offer since it was made: kept, and re-priced at the next pass
                # (up to the cap), like a transaction that a spike leaves behind.
                log.warning("transaction %s: %s; kept, re-priced at the next pass", sent.tx_hash, exc.message)
                self._stuck.add(sent.tx_hash)
                return sent.tx_hash
            except ChainError as exc:
                # The node's answer to a first sending can be lost and the bytes sent again (the
                # client retries): "nonce too low" then says that the first one was mined.
                try:
                    landed = self.client.receipt(sent.tx_hash) is not None or self.client._known(sent.tx_hash)
                except RPCUnavailable:
                    return sent.tx_hash  # not known either way: kept, and sent again at the next pass
                if landed:
                    self._sent_at_block(sent.tx_hash)
                    return sent.tx_hash
                # Refused by the node: never in its pool. Unjournal it; on a stale nonce, resync once.
                self._unjournal(digest)
                self._next_nonce -= 1
                if isinstance(exc, InsufficientFunds):
                    raise self._out_of_funds(exc) from None
                if attempt == 1 and (isinstance(exc, _NonceTooLow) or "nonce" in exc.message.lower()):
                    self._sync_nonce()
                    continue
                raise Refusal("unavailable", f"the node refused the relayer's transaction ({exc.message})") from None
            self._sent_at_block(sent.tx_hash)
            return sent.tx_hash
        raise AssertionError("unreachable")  # pragma: no cover

    def _out_of_funds(self, exc: InsufficientFunds) -> Refusal:
        """Logs who to fund and by how much (at every refusal, so the operator sees it), and the
        refusal a client gets meanwhile; the relayer keeps running and resumes once funded."""
        if "needed" in exc.context:
            needed, balance = int(exc.context["needed"]), int(exc.context["balance"])
        else:  # the node said so before a transaction was made: what /health asks for
            balance = self.client.balance(self.address)
            needed = self.min_balance if self.min_balance is not None else 300_000 * self._fee_per_gas()
        short = max(needed - balance, 1)
        log.error(
            "relayer out of funds: %s needs %s more (%d wei; balance %s, this transaction may cost up to %s): fund"
            " it; requests are refused meanwhile (503), and it resumes by itself once funded",
            self.address,
            format_wei(short),
            short,
            format_wei(balance),
            format_wei(needed),
        )
        return Refusal(
            "unavailable",
            f"this relayer is out of funds ({self.address} needs {format_wei(short)} more): try later,"
            " or use another relayer",
        )

    def journal(self, request: ForwardRequest, digest: bytes, function: str, sent: Sent) -> None:
        """Records a request and the first signed version of its transaction, on disk, before it
        is broadcast."""
        now = self.clock()
        key = HexBytes(digest).to_0x_hex()
        nonce = int(sent.tx["nonce"])
        with self._db_lock, transaction(self.db) as db:
            # A request whose earlier transaction failed or was dropped did not run: carried anew.
            db.execute(
                "DELETE FROM versions WHERE digest IN"
                " (SELECT digest FROM requests WHERE digest = ? AND status IN ('failed', 'dropped'))",
                (key,),
            )
            db.execute("DELETE FROM requests WHERE digest = ? AND status IN ('failed', 'dropped')", (key,))
            db.execute(
                "INSERT INTO requests (digest, signer, request_nonce, target, function, tx_hash, account_nonce, raw,"
                " status, created, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'sent', ?, ?)",
                (key, request.sender, request.nonce, request.to, function, sent.tx_hash, nonce, sent.raw, now, now),
            )
            self._insert_version(db, key, sent, now)

    def _insert_version(self, db: sqlite3.Connection, digest: str, sent: Sent, now: float) -> None:
        db.execute(
            "INSERT INTO versions (tx_hash, digest, account_nonce, raw, tx, created) VALUES (?, ?, ?, ?, ?, ?)",
            (sent.tx_hash, digest, int(sent.tx["nonce"]), sent.raw, tx_json(sent.tx), now),
        )

    def _unjournal(self, digest: bytes) -> None:
        key = HexBytes(digest).to_0x_hex()
        with self._db_lock, transaction(self.db) as db:
            db.execute("DELETE FROM versions WHERE digest = ?", (key,))
            db.execute("DELETE FROM requests WHERE digest = ?", (key,))

    def _sent_at_block(self, tx_hash: str, head: int | None = None) -> None:
        """A version's first broadcast: the block its stuck count starts from."""
        try:
            block = self.client.head() if head is None else head
        except RPCUnavailable:
            return  # counted from the next pass instead
        with self._db_lock:
            self.db.execute(
                "UPDATE versions SET sent_block = ? WHERE tx_hash = ? AND sent_block IS NULL", (block, tx_hash)
            )

    def _versions(self, digest: str) -> list[tuple[Sent | None, str, bytes, int | None]]:
        """A request's versions, oldest first: (the version with its fields, or None for a row
        from before re-pricing; its hash; its bytes; the block it was first sent at)."""
        with self._db_lock:
            rows = self.db.execute(
                "SELECT tx_hash, raw, tx, sent_block FROM versions WHERE digest = ? ORDER BY created, rowid", (digest,)
            ).fetchall()
        out: list[tuple[Sent | None, str, bytes, int | None]] = []
        for tx_hash, raw, tx, sent_block in rows:
            sent = Sent(tx_from_json(tx), tx_hash, bytes(raw)) if tx is not None else None
            out.append((sent, tx_hash, bytes(raw), sent_block))
        return out

    def _settle_mined(self, digest: str, hashes: list[str]) -> str | None:
        """Records the request as mined (or failed) if one of its versions has a receipt; its status."""
        for tx_hash in reversed(hashes):
            receipt = self.client.receipt(tx_hash)
            if receipt is not None:
                status = "mined" if receipt["status"] == 1 else "failed"
                with self._db_lock:
                    self.db.execute(
                        "UPDATE requests SET status = ?, block = ?, mined_tx = ? WHERE digest = ?",
                        (status, int(receipt["blockNumber"]), tx_hash, digest),
                    )
                if status == "failed":
                    log.warning("transaction %s failed on-chain (the state moved after its simulation)", tx_hash)
                self._gone.pop(digest, None)
                self._repriced.pop(digest, None)
                return status
        return None

    def settle(self, *, rebroadcast_all: bool = False) -> None:
        """One pass over the journal, in nonce order: a receipt of any version settles a request;
        a version the node dropped, or not mined for a while (all of them after a restart), is
        broadcast again, byte for byte; one stuck for ``stuck_blocks`` blocks, or refused for its
        fees, is replaced by a new version with the same nonce and higher fees (journaled before it
        is sent, never above the cap; at the cap it waits for fees to fall)."""
        with self._db_lock:
            rows = self.db.execute(
                "SELECT digest, signer, request_nonce, account_nonce, sent_at FROM requests"
                " WHERE status = 'sent' ORDER BY account_nonce"
            ).fetchall()
        if not rows:
            return
        now = self.clock()
        head = self.client.head()
        mined_nonce = int(self.client._rpc(lambda: self.client.w3.eth.get_transaction_count(self.address, "latest")))
        first_waiting = True
        for digest, signer, request_nonce, account_nonce, sent_at in rows:
            versions = self._versions(digest)
            if not versions:  # pragma: no cover - every journaled request has its first version
                continue
            hashes = [v[1] for v in versions]
            if self._settle_mined(digest, hashes) is not None:
                continue
            if mined_nonce > account_nonce:
                self._nonce_used(digest, hashes, signer, request_nonce, account_nonce)
                continue
            newest, newest_hash, newest_raw, sent_block = versions[-1]
            refused = newest_hash in self._stuck
            waited = sent_block is not None and head - sent_block >= self.client.fee_policy.stuck_blocks
            due = (refused or waited) and newest is not None and self._repriced.get(digest) != head
            if due and newest is not None and (first_waiting or refused or self._below_next_block(newest)):
                self._repriced[digest] = head
                if self._replace(digest, newest, head):
                    first_waiting = False
                    continue
            first_waiting = False
            unanswered = sent_block is None  # never seen taken by the node (its answer lost, say)
            if rebroadcast_all or refused or unanswered or now - sent_at >= self.rebroadcast_after:
                self._rebroadcast(digest, newest_hash, newest_raw, head, now)

    def _below_next_block(self, version: Sent) -> bool:
        """Whether this version cannot get into the next block by its own fee (a later nonce that
        waits only for an earlier one is not replaced for that)."""
        base = self.client._base_fee(next_block=True)
        return base is not None and Fees.of(version.tx).max_fee < base

    def _replace(self, digest: str, current: Sent, head: int) -> bool:
        """Signs, journals and broadcasts a better-paying version of ``current``; False when the
        cap leaves no room for one (or it cannot be paid for): the current version then waits."""
        policy = self.client.fee_policy
        fees = Fees.of(current.tx)
        better = replacement(fees, self.client._base_fee(next_block=True), self.client._tip(), policy)
        if better is None:
            if current.tx_hash not in self._cap_warned:
                self._cap_warned.add(current.tx_hash)
                log.warning(
                    "transaction %s (nonce %d) waits at the fee cap (%s per gas): it is mined when fees fall,"
                    " or raise --max-fee-gwei",
                    current.tx_hash,
                    int(current.tx["nonce"]),
                    format_wei(fees.max_fee),
                )
            return False
        tx = dict(current.tx) | better.as_tx()
        try:
            self.client.check_funds(tx)
        except InsufficientFunds as exc:
            self._out_of_funds(exc)
            return False
        with self._send_lock:
            version = self.client.sign(self.signer, tx)
            with self._db_lock, transaction(self.db) as db:
                self._insert_version(db, digest, version, self.clock())
                db.execute("UPDATE requests SET sent_at = ? WHERE digest = ?", (self.clock(), digest))
            log.warning(
                "transaction %s (nonce %d) stuck: replaced by %s offering %s per gas",
                current.tx_hash,
                int(tx["nonce"]),
                version.tx_hash,
                format_wei(better.max_fee),
            )
            self._stuck.discard(current.tx_hash)
            if self._broadcast_version(version.tx_hash, version.raw):
                self._sent_at_block(version.tx_hash, head)
        return True

    def _rebroadcast(self, digest: str, tx_hash: str, raw: bytes, head: int, now: float) -> None:
        if self._broadcast_version(tx_hash, raw):
            self._sent_at_block(tx_hash, head)
        with self._db_lock:
            self.db.execute("UPDATE requests SET sent_at = ? WHERE digest = ?", (now, digest))

    def _broadcast_version(self, tx_hash: str, raw: bytes) -> bool:
        """Sends one journaled version; True when the node holds it (or had it already)."""
        try:
            self.client.broadcast(raw)
        except _FeeTooLow as exc:
            self._stuck.add(tx_hash)  # replaced at the next pass, in another block
            log.info("transaction %s: %s", tx_hash, exc.message)
            return False
        except (_Underpriced, _NonceTooLow):
            return False  # a better version is in the pool, or one is mined: the next pass sees which
        except InsufficientFunds as exc:
            self._out_of_funds(exc)
            return False
        except RPCUnavailable:
            raise
        except ChainError as exc:
            log.warning("journaled %s not sent again yet: %s", tx_hash, exc.message)
            return False
        self._stuck.discard(tx_hash)
        return True

    def _nonce_used(self, digest: str, hashes: list[str], signer: str, request_nonce: int, account_nonce: int) -> None:
        """The request's nonce is used, yet no version has a receipt: a node that lags behind its
        own blocks, for a pass or two; after three passes, another transaction took the nonce (this
        key is used elsewhere) and the request is dropped (it may be carried again if it did not run)."""
        self._gone[digest] += 1
        if self._gone[digest] < 3:
            return
        del self._gone[digest]
        ran = forwarder_nonce(self.client, self.forwarder, signer) > request_nonce
        log.warning(
            "journaled request of nonce %d (versions %s): the relayer's nonce %d went to another transaction (%s):"
            " dropped",
            request_nonce,
            ", ".join(hashes),
            account_nonce,
            "the request ran in another transaction" if ran else "the request did not run",
        )
        with self._db_lock:
            self.db.execute("UPDATE requests SET status = 'dropped' WHERE digest = ?", (digest,))

    def _request_of(self, tx_hash: str) -> tuple[str, str, str | None, int | None] | None:
        """(digest, status, mined_tx, block) of the request one of whose versions is ``tx_hash``."""
        with self._db_lock:
            row = self.db.execute(
                "SELECT r.digest, r.status, r.mined_tx, r.block FROM versions v JOIN requests r ON r.digest = v.digest"
                " WHERE v.tx_hash = ?",
                (tx_hash,),
            ).fetchone()
            if row is None:  # a settled request of a state file from before versions
                row = self.db.execute(
                    "SELECT digest, status, mined_tx, block FROM requests WHERE tx_hash = ?", (tx_hash,)
                ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), row[2], row[3])

    def tx_status(self, tx_hash: str) -> dict[str, Any]:
        """``GET /tx/<hash>``; for a version replaced by another, the request's status, and
        ``mined_as``: the version that was mined."""
        tx_hash = tx_hash.lower()
        receipt = self.client.receipt(tx_hash)
        if receipt is not None:
            status = "mined" if receipt["status"] == 1 else "failed"
            return {"tx": tx_hash, "status": status, "block": int(receipt["blockNumber"])}
        found = self._request_of(tx_hash)
        if found is None:
            return {"tx": tx_hash, "status": "unknown", "block": None}
        digest, status, mined_tx, block = found
        if status == "sent":
            status = self._settle_mined(digest, [v[1] for v in self._versions(digest)]) or "sent"
            if status != "sent":
                _, status, mined_tx, block = self._request_of(tx_hash) or found
        if status == "sent":
            return {"tx": tx_hash, "status": "pending", "block": None}
        if status == "mined" and mined_tx is not None:
            return {"tx": tx_hash, "status": "mined", "block": block, "mined_as": mined_tx}
        return {"tx": tx_hash, "status": "failed", "block": None}


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
            except SpartacusError as exc:  # a node that answers oddly: the next pass tries again
                log.error("journal pass failed: %s; retrying", exc.message)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
