"""The chain client: reads and writes Spartacus contracts over web3.py.

It works the same on Ape's in-process chain, anvil and a public network, and never imports
Ape: :mod:`spartacus._ape` (the one seam with Ape) connects networks, holds the user's
accounts and compiles the contracts, and hands this module a web3 connection.

* ``Contracts`` loads the compiled ABIs and bytecode (Ape's ``.build``);
* ``ChainClient`` sends transactions (gas estimation first, so a refusal comes back as the
  contract's custom error, translated into a sentence that says what to do; fees under a
  policy, stuck transactions replaced with the same nonce) and reads logs in chunks that
  adapt to what the node accepts;
* ``FactoryClient`` and ``CampaignClient`` are thin typed wrappers.

Reads accept a ``block`` so listeners can act on confirmed state only.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Protocol

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import event_abi_to_log_topic, function_abi_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)

from ._exceptions import (
    ChainError,
    ContractRevert,
    InputError,
    InsufficientFunds,
    RPCUnavailable,
    TransactionPending,
)
from ._fees import GWEI, FeePolicy, Fees, first_offer, format_wei, replacement
from .types import CampaignContext, LateJoiners, PledgeRecord, ReleaseRecord, Scope

__all__ = [
    "STATES",
    "BlockId",
    "CampaignClient",
    "CampaignConfig",
    "CampaignCreated",
    "ChainClient",
    "Contracts",
    "DecodedLog",
    "FactoryClient",
    "Journal",
    "KeySigner",
    "NonceTaken",
    "pledge_digest",
    "Sent",
    "Signer",
    "TxResult",
]

log = logging.getLogger("spartacus.chain")

ROOT = Path(__file__).resolve().parents[1]
STATES = ("open", "revealed", "expired", "cancelled")
# The contract's limits (Campaign.sol constants), checked here first for clearer errors.
MAX_THRESHOLD = 100_000
MAX_KEEPERS = 32
MAX_DURATION = 366 * 86400
PLEDGE_STATUSES = ("none", "live", "withdrawn")
BlockId = int | str  # a block number, or "latest" / "safe" / "finalized"


# ─── Compiled contracts ──────────────────────────────────────────────────────────────


def manifest_current(manifest: Path = ROOT / ".build" / "__local__.json") -> bool:
    """True if Ape's build manifest was compiled from exactly the sources on disk."""
    if not manifest.exists():
        return False
    built = json.loads(manifest.read_text()).get("sources", {})
    for src in (ROOT / "contracts").rglob("*.sol"):
        entry = built.get(src.relative_to(ROOT).as_posix())
        if entry is None or entry.get("content") != src.read_text():
            return False
    return True


def _abi_type(param: dict[str, Any]) -> str:
    """The canonical ABI type string of one parameter (tuples expanded)."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


@dataclass(frozen=True)
class DecodedLog:
    """One decoded event log."""

    event: str
    args: dict[str, Any]
    address: str
    block_number: int
    log_index: int
    tx_hash: str
    data: bytes = b""  # the log's data, exactly as the node returned it


class Contracts:
    """ABIs and bytecode of the Spartacus contracts, from Ape's build output."""

    def __init__(self, artifacts: dict[str, dict[str, Any]]) -> None:
        self._artifacts = artifacts
        self._events: dict[bytes, tuple[str, dict[str, Any]]] = {}
        self._errors: dict[bytes, tuple[str, dict[str, Any]]] = {}
        for artifact in artifacts.values():
            for item in artifact["abi"]:
                if item["type"] == "event":
                    self._events[bytes(event_abi_to_log_topic(item))] = (item["name"], item)
                elif item["type"] == "error":
                    self._errors[bytes(function_abi_to_4byte_selector(item))] = (item["name"], item)

    @classmethod
    @lru_cache(maxsize=1)
    def load(cls) -> Contracts:
        """The contracts of this repository, from Ape's build output (a fast JSON read). A build
        older than the sources is refused: :func:`spartacus._ape.ensure_built` (which every
        ``connect`` runs) compiles them first; this module never imports Ape."""
        manifest = ROOT / ".build" / "__local__.json"
        if not manifest_current(manifest):
            raise ChainError(
                f"{manifest} does not match contracts/ (changed since the last compile): run `make compile`"
            )
        types = json.loads(manifest.read_text())["contractTypes"]
        artifacts = {}
        for name in ("CampaignFactory", "Campaign", "Forwarder"):
            if name not in types:
                raise ChainError(f"{name} is missing from {manifest}: run `make compile`")
            artifacts[name] = {
                "abi": types[name]["abi"],
                "bytecode": (types[name].get("deploymentBytecode") or {}).get("bytecode"),
            }
        return cls(artifacts)

    def abi(self, name: str) -> list[dict[str, Any]]:
        return list(self._artifacts[name]["abi"])

    def bytecode(self, name: str) -> str:
        code = self._artifacts[name]["bytecode"]
        if not code:
            raise ChainError(f"no bytecode for {name}: run `make compile`")
        return str(code)

    def function(self, contract: str, name: str) -> dict[str, Any]:
        for item in self._artifacts[contract]["abi"]:
            if item["type"] == "function" and item["name"] == name:
                return dict(item)
        raise KeyError(f"{contract}.{name}")

    def encode_call(self, contract: str, name: str, args: Sequence[Any]) -> bytes:
        fn = self.function(contract, name)
        types = [_abi_type(p) for p in fn["inputs"]]
        selector = bytes(function_abi_to_4byte_selector(fn))  # type: ignore[arg-type]
        return selector + abi_encode(types, list(args))

    def decode_result(self, contract: str, name: str, data: bytes) -> tuple[Any, ...]:
        fn = self.function(contract, name)
        return tuple(abi_decode([_abi_type(p) for p in fn["outputs"]], data))

    def topic(self, event: str) -> HexBytes:
        for topic, (name, _) in self._events.items():
            if name == event:
                return HexBytes(topic)
        raise KeyError(event)

    def decode_log(self, log: Any) -> DecodedLog | None:
        """Decodes a raw log of one of our events; None for anything else."""
        topics = [bytes(t) for t in log["topics"]]
        if not topics or topics[0] not in self._events:
            return None
        name, abi = self._events[topics[0]]
        indexed = [p for p in abi["inputs"] if p["indexed"]]
        plain = [p for p in abi["inputs"] if not p["indexed"]]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=True):
            args[param["name"]] = abi_decode([_abi_type(param)], topic)[0]
        values = abi_decode([_abi_type(p) for p in plain], bytes(log["data"]))
        for param, value in zip(plain, values, strict=True):
            args[param["name"]] = value
        return DecodedLog(
            event=name,
            args=args,
            address=to_checksum_address(log["address"]),
            block_number=int(log["blockNumber"]),
            log_index=int(log["logIndex"]),
            tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
            data=bytes(log["data"]),
        )

    def decode_error(self, data: bytes) -> tuple[str, dict[str, Any]] | None:
        if len(data) < 4 or data[:4] not in self._errors:
            return None
        name, abi = self._errors[data[:4]]
        try:
            values = abi_decode([_abi_type(p) for p in abi["inputs"]], data[4:])
        except Exception:  # noqa: BLE001 - malformed revert data is reported as unknown
            return None
        args = {
            p["name"]: to_checksum_address(v) if p["type"] == "address" else v
            for p, v in zip(abi["inputs"], values, strict=True)
        }
        return name, args


# ─── Refusals, in words ──────────────────────────────────────────────────────────────


def _explain(name: str, args: dict[str, Any]) -> str:
    state = STATES[args["state"]] if "state" in args and args["state"] < len(STATES) else None
    messages: dict[str, Callable[[], str]] = {
        "CampaignWrongState": lambda: {
            "expired": "the campaign expired below its threshold: nothing more can happen but refunds (`refund`)",
            "cancelled": "the campaign was cancelled: nothing more can happen but refunds (`refund`)",
            "revealed": "the campaign is already revealed: this is only possible before the reveal",
            "open": "the campaign is not revealed yet: this is only possible after the reveal",
        }[state or "open"],
        "CampaignWrongDeposit": lambda: (
            f"wrong deposit: sent {args['sent']} wei, the campaign requires {args['required']} wei"
            " (0 if an earlier deposit of yours is still held)"
        ),
        "CampaignAlreadyPledged": lambda: (
            f"{args['pledger']} already has a live pledge (#{args['index']}) here: one per address"
        ),
        "CampaignNoLivePledge": lambda: f"{args['caller']} has no live pledge in this campaign",
        "CampaignCreatorCannotWithdraw": lambda: "the creator cannot withdraw: use `cancel` to call the campaign off",
        "CampaignInvalidEnvelope": lambda: f"sealed pledge of {args['length']} bytes: it must be 1 to {args['max']}",
        "CampaignInvalidMemberKey": lambda: "the member key must be a 33-byte compressed secp256k1 public key",
        "CampaignNotCreator": lambda: f"{args['caller']} is not the campaign's creator",
        "CampaignNothingToRefund": lambda: (
            f"nothing to refund to {args['caller']} now (a live pledge is refundable after expiry, cancellation,"
            " or a reveal without beneficiary; withdraw first while the campaign is open)"
        ),
        "CampaignTransferFailed": lambda: f"sending {args['amount']} wei to {args['to']} failed; it stays owed",
        "CampaignNotKeeper": lambda: f"{args['caller']} is not keeper #{args['keeperIndex']} of this campaign",
        "CampaignKeeperSetMismatch": lambda: "the keeper set given is not the campaign's",
        "CampaignInvalidRelease": lambda: f"release of {args['length']} bytes: it must be 1 to {args['max']}",
        "CampaignNotBeneficiary": lambda: f"{args['caller']} is not the campaign's beneficiary",
        "CampaignAlreadyInitialized": lambda: "the campaign is already initialised",
        "CampaignInvalidThreshold": lambda: f"threshold {args['threshold']}: it must be 1 to {args['max']}",
        "CampaignInvalidDeadline": lambda: (
            f"deadline {args['deadline']} must be after now ({args['now_']}) and no later than {args['latest']}"
        ),
        "CampaignInvalidKeeperCount": lambda: f"{args['count']} keepers: a campaign needs 1 to {args['max']}",
        "CampaignInvalidKeeperKey": lambda: f"keeper #{args['index']} is not a 64-byte public key",
        "CampaignKeepersNotSorted": lambda: f"keeper #{args['index']} is out of order or a duplicate",
        "CampaignInvalidKeeperThreshold": lambda: (
            f"keeper threshold {args['t']}: it must be between 1 and the number of keepers ({args['n']})"
        ),
        "FactoryCloneFailed": lambda: "a campaign already exists for this creator and salt: use another salt",
        "CampaignClosedToLateJoiners": lambda: (
            "the campaign is revealed and takes no more pledges (its organizer closed it to late joiners)"
        ),
        "CampaignInvalidRelayKey": lambda: "the relay key must be a 33-byte compressed secp256k1 public key",
        "CampaignInvalidRelayNote": lambda: (
            f"note to the relay of {args['length']} bytes: at most {args['max']}, and only with a relay"
        ),
        "CampaignInvalidInstructions": lambda: (
            f"sealed instructions of {args['length']} bytes: at most {args['max']}; shorten them"
        ),
        "ERC2771ForwarderInvalidSigner": lambda: (
            "the relayed request's signature is not its signer's: sign it again with the key that pledges"
        ),
        "ERC2771ForwarderExpiredRequest": lambda: "the relayed request expired: sign a new one",
        "ERC2771ForwarderMismatchedValue": lambda: (
            f"the relayer sent {args['msgValue']} wei with a request for {args['requestedValue']} wei"
        ),
        "ERC2771UntrustfulTarget": lambda: f"{args['target']} does not trust this deployment's forwarder",
        "InvalidAccountNonce": lambda: (
            f"the request's nonce {args['currentNonce']} was already used: it was relayed before, never twice"
        ),
    }
    explain = messages.get(name)
    return explain() if explain else f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})"


# ─── Signers ─────────────────────────────────────────────────────────────────────────


class Signer(Protocol):
    """Something that signs transactions for one address."""

    @property
    def address(self) -> str: ...

    def sign(self, tx: dict[str, Any]) -> bytes:
        """Signs a complete transaction dict (web3 field names); returns raw bytes."""
        ...


class KeySigner:
    """Signs with a raw private key (a keeper's key file, or a test account)."""

    def __init__(self, private_key: bytes) -> None:
        from eth_account import Account

        self._account = Account.from_key(private_key)

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign(self, tx: dict[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(tx).raw_transaction)

    def __repr__(self) -> str:
        return f"KeySigner({self.address})"


# ─── The client ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction and the events it emitted."""

    tx: str
    gas_used: int
    block_number: int
    logs: list[DecodedLog] = field(default_factory=list)

    def events(self, name: str) -> list[DecodedLog]:
        return [log for log in self.logs if log.event == name]


class NonceTaken(ChainError):
    """The nonce of a transaction was used by another transaction of the same sender (sent from
    elsewhere with the same key): none of this transaction's versions can be mined any more."""


class _FeeTooLow(ChainError):
    """The node refused a transaction whose fees are below what the next block needs."""


class _Underpriced(ChainError):
    """The node refused a replacement that does not outbid the version it already holds."""


class _NonceTooLow(ChainError):
    """The node refused a transaction whose nonce is already used."""


@dataclass(frozen=True)
class Sent:
    """One signed version of a transaction: the unsigned fields (web3 names), its hash and bytes."""

    tx: dict[str, Any]
    tx_hash: str
    raw: bytes


#: Called with each version of a transaction before it is broadcast, so that a crash re-sends it
#: rather than building another (a keeper's or relayer's journal).
Journal = Callable[[Sent], None]

# Providers' answers to an eth_getLogs they will not serve (TOOLCHAIN.md lists them):
# a suggested range, as hex (Infura, Alchemy: "Try with this block range [0x.., 0x..]") or as
# decimals (reth, erigon: "retry with the range 100-200");
_HINT_HEX = re.compile(r"\[\s*(0x[0-9a-f]+)\s*,\s*(0x[0-9a-f]+)\s*\]")
_HINT_DEC = re.compile(r"retry with the range (\d+)\s*-\s*(\d+)")
# a hard cap on the range (QuickNode "limited to a 10,000 range", Alchemy's free tier "up to a
# 10 block range", reth "exceeds max block range 100000", "exceeds limit of 10000");
_RANGE_CAPS = (
    re.compile(r"limited to an? ([\d,]+)(k?) (?:block )?range"),
    re.compile(r"up to an? ([\d,]+)(k?) block range"),
    re.compile(r"max block range:? ([\d,]+)(k?)"),
    re.compile(r"exceeds limit of ([\d,]+)(k?)"),
)
# and throttling, which is neither (Infura says -32005 for both: the words tell them apart).
_THROTTLED = ("rate limit", "too many requests", "request rate", "exceeded its compute units", "capacity")


def _number(digits: str, k: str) -> int:
    return int(digits.replace(",", "")) * (1000 if k else 1)


def _log_error_advice(message: str, start: int, stop: int) -> tuple[int, bool]:
    """From a refused eth_getLogs over ``[start, stop]``: the chunk to try next, and whether it is a
    hard cap on the range (never to grow past) rather than a result-count limit (dense blocks)."""
    text = message.lower()
    size = stop - start + 1
    hinted = None
    for pattern, base in ((_HINT_HEX, 16), (_HINT_DEC, 10)):
        if m := pattern.search(text):
            first, last = int(m.group(1), base), int(m.group(2), base)
            if first <= start <= last < stop:
                hinted = last - start + 1
                break
    if "response size" not in text and "results" not in text:  # the words of a range cap
        for pattern in _RANGE_CAPS:
            if (m := pattern.search(text)) and 0 < (cap := _number(m.group(1), m.group(2))) < size:
                return min(cap, hinted or cap), True
    if hinted is not None:
        return hinted, False
    if (m := _RANGE_CAPS[1].search(text)) and 0 < (cap := _number(m.group(1), m.group(2))) < size:
        return cap, False  # Alchemy: any result count within this range
    return max(1, size // 2), False


def _throttled(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _THROTTLED)


def _rpc_message(exc: BaseException) -> str:
    """The node's own words (web3 wraps them as a dict's repr)."""
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict):
            return f"{error.get('code')}: {error.get('message')}"
    return str(exc)


LOCAL_CHAIN_IDS = frozenset({1337, 31337})


class ChainClient:
    """Transactions and adaptive log reads over one web3 connection.

    Log reads go in chunks of blocks that follow what the node accepts: a refusal shrinks the
    chunk (to the provider's own hint when it gives one, else by half), an empty chunk grows it
    (never past a range cap the node has shown), and the client remembers both
    (``log_chunk``, ``log_range_limit``) for its later reads; a listener saves them in its state.

    Transactions follow ``fees`` (:class:`spartacus._fees.FeePolicy`): one that stays unmined for
    ``stuck_blocks`` blocks, or that the node drops, is replaced with the same nonce and higher
    fees up to the cap; one whose sender cannot pay raises :class:`InsufficientFunds` before it
    is signed.
    """

    def __init__(
        self,
        w3: Web3,
        contracts: Contracts | None = None,
        *,
        log_chunk: int = 5_000,
        log_chunk_max: int = 100_000,
        log_range_limit: int | None = None,
        receipt_timeout: float = 180.0,
        fees: FeePolicy | None = None,
        poll_interval: float | None = None,
    ) -> None:
        self.w3 = w3
        self.contracts = contracts or Contracts.load()
        self.log_chunk_max = log_chunk_max
        self.log_range_limit = log_range_limit
        self.log_chunk = self._clamp(log_chunk)
        self.receipt_timeout = receipt_timeout
        self.fee_policy = fees or FeePolicy()
        self._poll_interval = poll_interval

    @cached_property
    def chain_id(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.chain_id))

    @property
    def poll_interval(self) -> float:
        """Seconds between receipt polls: short on a local dev chain, a fraction of a block elsewhere."""
        if self._poll_interval is None:
            self._poll_interval = 0.1 if self.chain_id in LOCAL_CHAIN_IDS else 2.0
        return self._poll_interval

    def head(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number))

    def timestamp(self, block: BlockId = "latest") -> int:
        return int(self._rpc(lambda: self.w3.eth.get_block(block)["timestamp"]))  # type: ignore[arg-type]

    def balance(self, address: str) -> int:
        return int(self._rpc(lambda: self.w3.eth.get_balance(to_checksum_address(address))))

    def _rpc(self, call: Callable[[], Any], *, retries: int = 5) -> Any:
        """One node call, retried a few times (0.25 s apart, doubling) when the connection drops or
        the node throttles: every call made here is idempotent (reads, and signed bytes whose
        second sending changes nothing). What outlasts the retries becomes
        :class:`RPCUnavailable`, and callers back off."""
        delay = 0.25
        for attempt in range(retries + 1):
            try:
                return call()
            except Web3RPCError as exc:
                if not _throttled(exc):
                    raise
                if attempt == retries:
                    raise RPCUnavailable(
                        f"the node keeps rate-limiting requests ({_rpc_message(exc)}): slow down or use another"
                        " provider",
                        cause=str(exc),
                    ) from exc
            except (ConnectionError, OSError, TimeoutError) as exc:
                if attempt == retries:
                    status = getattr(getattr(exc, "response", None), "status_code", None)
                    what = "rate-limited: HTTP 429" if status == 429 else exc.__class__.__name__
                    raise RPCUnavailable(
                        f"cannot reach the node ({what}): check --network and that the node is up",
                        cause=str(exc),
                    ) from exc
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    # Reads

    def call(self, contract: str, address: str, name: str, *args: Any, block: BlockId = "latest") -> tuple[Any, ...]:
        data = self.contracts.encode_call(contract, name, args)
        tx = {"to": to_checksum_address(address), "data": HexBytes(data)}
        raw = self._rpc(lambda: self.w3.eth.call(tx, block))  # type: ignore[arg-type]
        if not raw:
            raise ChainError(f"{address} has no {contract} code (wrong address or network?)", address=address)
        return self.contracts.decode_result(contract, name, bytes(raw))

    def within_log_range(self, first: int, last: int) -> bool:
        """Whether one eth_getLogs over ``[first, last]`` stays within the range cap the node has
        shown (any range while none is known): a read in one request asks no wider than that."""
        return self.log_range_limit is None or last - first + 1 <= self.log_range_limit

    def _clamp(self, chunk: int) -> int:
        top = self.log_chunk_max if self.log_range_limit is None else min(self.log_chunk_max, self.log_range_limit)
        return max(1, min(chunk, top))

    def log_pages(
        self,
        address: str | None,
        events: Sequence[str],
        *,
        from_block: int,
        to_block: BlockId = "latest",
        topics: Sequence[Any] = (),
    ) -> Iterator[tuple[int, list[DecodedLog]]]:
        """Our events in ``[from_block, to_block]``, oldest first, one chunk at a time: yields the
        last block each chunk covers with its logs (empty chunks too), so a scan can save its
        position as it goes."""
        end = self.head() if isinstance(to_block, str) else to_block
        topic0 = [self.contracts.topic(e).to_0x_hex() for e in events]
        start = from_block
        while start <= end:
            stop = min(end, start + self.log_chunk - 1)
            params: dict[str, Any] = {"fromBlock": start, "toBlock": stop, "topics": [topic0, *topics]}
            if address:
                params["address"] = to_checksum_address(address)
            try:
                raw = self._rpc(lambda p=params: self.w3.eth.get_logs(p))  # type: ignore[misc]
            except (Web3RPCError, ValueError) as exc:
                if stop == start:
                    raise ChainError(
                        f"the node refuses eth_getLogs even for block {start} alone ({_rpc_message(exc)}):"
                        " use another provider",
                        cause=str(exc),
                    ) from exc
                chunk, hard = _log_error_advice(_rpc_message(exc), start, stop)
                if hard:
                    self.log_range_limit = chunk
                self.log_chunk = self._clamp(min(chunk, stop - start))
                continue
            page = [
                d
                for d in (
                    self.contracts.decode_log(lg)
                    for lg in sorted(raw, key=lambda lg: (lg["blockNumber"], lg["logIndex"]))
                )
                if d is not None
            ]
            if not raw and stop - start + 1 == self.log_chunk:
                self.log_chunk = self._clamp(self.log_chunk * 2)  # sparse: read wider next time
            yield stop, page
            start = stop + 1

    def logs(
        self,
        address: str | None,
        events: Sequence[str],
        *,
        from_block: int,
        to_block: BlockId = "latest",
        topics: Sequence[Any] = (),
    ) -> Iterator[DecodedLog]:
        """Our events in ``[from_block, to_block]``, oldest first (``from_block`` is required:
        scans start where the contracts were deployed, never at block 0)."""
        for _stop, page in self.log_pages(address, events, from_block=from_block, to_block=to_block, topics=topics):
            yield from page

    # Writes

    def send(
        self, signer: Signer, to: str | None, data: bytes, value: int = 0, *, journal: Journal | None = None
    ) -> TxResult:
        """Estimates, signs, sends and waits for one transaction (replacing it while it is stuck);
        raises ContractRevert on refusal."""
        return self.send_prepared(signer, self.prepare(signer, to, data, value), journal=journal)

    def prepare(self, signer: Signer, to: str | None, data: bytes, value: int = 0) -> dict[str, Any]:
        """A complete transaction, gas estimated: a refusal surfaces here as the contract's error."""
        tx: dict[str, Any] = {"from": signer.address, "data": HexBytes(data), "value": value}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        try:
            gas = self._rpc(lambda: self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
        except (ContractLogicError, ContractCustomError, Web3RPCError, ValueError) as exc:
            raise self._revert(exc) from exc
        tx.update(self.offer().as_tx())
        tx["gas"] = int(gas * 1.2) + 10_000  # estimates can be tight for the reveal path
        sender = to_checksum_address(signer.address)
        tx["nonce"] = self._rpc(lambda: self.w3.eth.get_transaction_count(sender, "pending"))
        tx["chainId"] = self.chain_id
        return tx

    def offer(self) -> Fees:
        """The fees of a new transaction now, under the fee policy."""
        base = self._base_fee()
        price = int(self._rpc(lambda: self.w3.eth.gas_price)) if base is None else 0
        return first_offer(base, self._tip(), self.fee_policy, gas_price=price)

    def _base_fee(self, *, next_block: bool = False) -> int | None:
        """The latest block's base fee; with ``next_block``, the higher of it and the pending
        block's (where the node says: what a replacement must pay to get in now)."""
        block = self._rpc(lambda: self.w3.eth.get_block("latest"))
        base = block.get("baseFeePerGas")
        if base is None:
            return None
        if next_block:
            try:
                pending = self._rpc(lambda: self.w3.eth.get_block("pending")).get("baseFeePerGas")
            except (Web3RPCError, ValueError):
                pending = None
            return max(int(base), int(pending or 0))
        return int(base)

    def _tip(self) -> int:
        if self.fee_policy.tip is not None:
            return self.fee_policy.tip
        try:
            return int(self._rpc(lambda: self.w3.eth.max_priority_fee))
        except (Web3RPCError, ValueError):
            return GWEI

    def check_funds(self, tx: dict[str, Any]) -> None:
        """Raises :class:`InsufficientFunds` when the sender cannot pay ``tx`` at its max fee."""
        sender = to_checksum_address(tx["from"])
        price = int(tx.get("maxFeePerGas", tx.get("gasPrice", 0)))
        needed = int(tx["gas"]) * price + int(tx.get("value", 0))
        balance = self.balance(sender)
        if balance < needed:
            raise InsufficientFunds(
                f"{sender} needs {format_wei(needed - balance)} more to send this transaction (it may cost up to"
                f" {format_wei(needed)}, the balance is {format_wei(balance)}): fund it",
                address=sender,
                needed=needed,
                balance=balance,
            )

    def broadcast(self, raw: bytes) -> str:
        """Sends signed bytes; sending the same bytes again is harmless (same hash)."""
        try:
            return HexBytes(self._rpc(lambda: self.w3.eth.send_raw_transaction(raw))).to_0x_hex()
        except Web3RPCError as exc:
            text = _rpc_message(exc)
            low = text.lower()
            if "already known" in low or "already imported" in low or "already in the mempool" in low:
                return HexBytes(keccak(raw)).to_0x_hex()
            if "insufficient funds" in low:
                raise InsufficientFunds(
                    f"the sender cannot pay for this transaction ({text}): fund it", cause=text
                ) from exc
            if "replacement" in low and "underpriced" in low:
                raise _Underpriced(f"the node holds a better-paying version: {text}") from exc
            if "nonce too low" in low or "nonce is too low" in low or "already used" in low:
                raise _NonceTooLow(f"the nonce is already used: {text}") from exc
            if "base fee" in low or "underpriced" in low or "fee cap" in low or "max fee per gas less" in low:
                raise _FeeTooLow(f"fees too low for the next block: {text}") from exc
            raise ChainError(f"the node refused the transaction: {text}") from exc

    def receipt(self, tx_hash: str) -> Any | None:
        try:
            return self._rpc(lambda: self.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
        except TransactionNotFound:
            return None

    def _known(self, tx_hash: str) -> bool:
        try:
            return self._rpc(lambda: self.w3.eth.get_transaction(HexBytes(tx_hash))) is not None
        except TransactionNotFound:
            return False

    def wait(self, tx_hash: str) -> TxResult:
        """Waits for a sent transaction; raises if it is not mined in time or reverted."""
        try:
            receipt = self._rpc(
                lambda: self.w3.eth.wait_for_transaction_receipt(
                    HexBytes(tx_hash), self.receipt_timeout, self.poll_interval
                )
            )
        except TimeExhausted as exc:
            raise TransactionPending(
                f"transaction {tx_hash} was not mined within {self.receipt_timeout:.0f} s:"
                " check it on the network before retrying",
                tx=tx_hash,
                hashes=[tx_hash],
            ) from exc
        return self._result(tx_hash, receipt)

    def _result(self, tx_hash: str, receipt: Any) -> TxResult:
        if receipt["status"] != 1:
            raise ContractRevert(
                f"transaction {tx_hash} reverted on-chain (the state changed since it was prepared): retry",
                tx=tx_hash,
            )
        logs = [d for d in (self.contracts.decode_log(lg) for lg in receipt["logs"]) if d is not None]
        return TxResult(
            tx=tx_hash,
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
            logs=logs,
        )

    def sign(self, signer: Signer, tx: dict[str, Any]) -> Sent:
        raw = signer.sign(tx)
        return Sent(tx=dict(tx), tx_hash=HexBytes(keccak(raw)).to_0x_hex(), raw=raw)

    def send_prepared(
        self, signer: Signer, tx: dict[str, Any], *, journal: Journal | None = None, timeout: float | None = None
    ) -> TxResult:
        """Signs ``tx`` (after checking that its sender can pay), journals it, broadcasts it, and
        waits for it, replacing it while it is stuck (:meth:`wait_replacing`)."""
        self.check_funds(tx)
        sent = self.sign(signer, tx)
        if journal is not None:
            journal(sent)
        return self.wait_replacing(signer, [sent], journal=journal, timeout=timeout, broadcast=True)

    def wait_replacing(
        self,
        signer: Signer,
        versions: Sequence[Sent],
        *,
        journal: Journal | None = None,
        timeout: float | None = None,
        broadcast: bool = True,
    ) -> TxResult:
        """Waits until one version of a transaction (all with one nonce) is mined, and returns it.

        Re-broadcasts the newest version when the node has dropped it; after ``stuck_blocks``
        blocks without it, or when the node refuses its fees, signs a replacement (same nonce,
        fees raised, never above the cap) and journals it before sending it. Raises
        :class:`TransactionPending` (every version kept) after ``timeout`` seconds,
        :class:`NonceTaken` when another transaction used the nonce, :class:`InsufficientFunds`
        when a replacement cannot be paid for (the versions sent stay valid)."""
        if not versions:
            raise ValueError("nothing to wait for")
        versions = list(versions)
        nonce = int(versions[-1].tx["nonce"])
        sender = to_checksum_address(versions[-1].tx["from"])
        timeout = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        policy = self.fee_policy
        stuck = False
        if broadcast:
            stuck = self._send_version(versions[-1])
        sent_at = seen = self.head()
        repriced_at: int | None = None  # at most one replacement per block: no runaway bidding
        warned = False
        while True:
            if (result := self._mined(versions)) is not None:
                return result
            if self._rpc(lambda: self.w3.eth.get_transaction_count(sender, "latest")) > nonce:
                for _ in range(3):  # a receipt a lagging node has not served yet?
                    time.sleep(self.poll_interval * 5)
                    if (result := self._mined(versions)) is not None:
                        return result
                raise NonceTaken(
                    f"nonce {nonce} of {sender} was used by another transaction (is this key used elsewhere?):"
                    f" {len(versions)} version(s) of this one can no longer be mined",
                    nonce=nonce,
                    hashes=[v.tx_hash for v in versions],
                )
            if time.monotonic() >= deadline:
                raise TransactionPending(
                    f"transaction {versions[-1].tx_hash} (nonce {nonce}) is not mined after {timeout:.0f} s; it is"
                    " kept and waited for again",
                    tx=versions[-1].tx_hash,
                    hashes=[v.tx_hash for v in versions],
                )
            head = self.head()
            if head != seen:
                seen = head
                if not self._known(versions[-1].tx_hash):  # dropped (an evicting pool, a restarted node)
                    stuck = self._send_version(versions[-1]) or stuck
            if (stuck and repriced_at != head) or head - sent_at >= policy.stuck_blocks:
                current = Fees.of(versions[-1].tx)
                better = replacement(current, self._base_fee(next_block=True), self._tip(), policy)
                repriced_at = sent_at = head
                if better is None:
                    if not warned:
                        log.warning(
                            "transaction %s (nonce %d) waits at the fee cap (%s per gas): it is mined when fees"
                            " fall, or raise the cap",
                            versions[-1].tx_hash,
                            nonce,
                            format_wei(current.max_fee),
                        )
                        warned = True
                    if stuck:  # refused at the cap: offer it again, one block later
                        stuck = self._send_version(versions[-1])
                else:
                    tx = dict(versions[-1].tx) | better.as_tx()
                    self.check_funds(tx)
                    version = self.sign(signer, tx)
                    if journal is not None:
                        journal(version)
                    versions.append(version)
                    log.warning(
                        "transaction %s (nonce %d) stuck: replaced by %s offering %s per gas",
                        versions[-2].tx_hash,
                        nonce,
                        version.tx_hash,
                        format_wei(better.max_fee),
                    )
                    stuck = self._send_version(version)
            time.sleep(self.poll_interval)

    def _mined(self, versions: Sequence[Sent]) -> TxResult | None:
        for version in reversed(versions):
            receipt = self.receipt(version.tx_hash)
            if receipt is not None:
                return self._result(version.tx_hash, receipt)
        return None

    def _send_version(self, version: Sent) -> bool:
        """Broadcasts one version; True when the node refused it for its fees (replace it)."""
        try:
            self.broadcast(version.raw)
        except _FeeTooLow as exc:
            log.info("transaction %s: %s", version.tx_hash, exc.message)
            return True
        except (_Underpriced, _NonceTooLow):
            return False  # another version is in the pool, or mined: the wait loop sees which
        return False

    def _revert(self, exc: Exception) -> ChainError:
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        raw: bytes | None = None
        if isinstance(data, str) and data.startswith("0x"):
            raw = bytes.fromhex(data[2:])
        elif isinstance(data, bytes | bytearray):
            raw = bytes(data)
        decoded = self.contracts.decode_error(raw) if raw else None
        if decoded:
            name, args = decoded
            return ContractRevert(f"refused: {_explain(name, args)}", error=name, args=args)
        text = str(exc)
        if "insufficient funds" in text.lower():
            return InsufficientFunds("the account cannot pay for this transaction: fund it, then retry", cause=text)
        return ContractRevert(f"refused by the chain: {text}", error=None, args={})


# ─── Factory and campaign ────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class CampaignConfig:
    """What a creator chooses (``ICampaign.Config``)."""

    title: str
    purpose: str
    description: str
    plan: str
    threshold: int
    deadline: int
    keepers: tuple[bytes, ...]  # 64-byte public keys, in on-chain (address) order
    keeper_threshold: int
    scope: Scope = Scope.MEMBERS
    late_joiners: LateJoiners = LateJoiners.KNOWN
    deposit: int = 0
    beneficiary: str = "0x" + "00" * 20
    relay: bytes = b""  # the relay service's 33-byte compressed key, or empty
    relay_note: bytes = b""  # a note sealed to the relay's key (spartacus.relaynote), or empty
    instructions: bytes = b""  # the sealed instructions (spartacus.envelope)

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.title,
            self.purpose,
            self.description,
            self.plan,
            self.threshold,
            self.deadline,
            list(self.keepers),
            self.keeper_threshold,
            self.scope.code,
            self.late_joiners.code,
            self.deposit,
            to_checksum_address(self.beneficiary),
            bytes(self.relay),
            bytes(self.relay_note),
            bytes(self.instructions),
        )

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> CampaignConfig:
        (title, purpose, description, plan, threshold, deadline, keepers, t, scope, late, deposit, beneficiary, relay,
         relay_note, instructions) = raw  # fmt: skip
        return cls(
            title=title,
            purpose=purpose,
            description=description,
            plan=plan,
            threshold=int(threshold),
            deadline=int(deadline),
            keepers=tuple(bytes(k) for k in keepers),
            keeper_threshold=int(t),
            scope=Scope.from_code(int(scope)),
            late_joiners=LateJoiners.from_code(int(late)),
            deposit=int(deposit),
            beneficiary=to_checksum_address(beneficiary),
            relay=bytes(relay),
            relay_note=bytes(relay_note),
            instructions=bytes(instructions),
        )


@dataclass(frozen=True)
class CampaignCreated:
    campaign: str
    creator: str
    config: CampaignConfig
    block_number: int
    tx: str


def pledge_digest(log_data: bytes, instructions: bytes | None = None) -> bytes:
    """The 20 bytes ``Campaign`` stores for a pledge: keccak256 of its ``Pledged`` log's data; for
    pledge 0 (the creator's), keccak256 of that hash and of the sealed instructions' hash."""
    h = bytes(keccak(log_data))
    if instructions is not None:
        h = bytes(keccak(h + bytes(keccak(instructions))))
    return h[:20]


def keeper_address(public_key: bytes) -> str:
    return to_checksum_address(keccak(public_key)[12:])


def sort_keepers(public_keys: Sequence[bytes]) -> tuple[bytes, ...]:
    """Keeper keys in the order the contract requires (ascending address)."""
    return tuple(sorted(public_keys, key=lambda k: int.from_bytes(keccak(k)[12:], "big")))


class FactoryClient:
    """A deployed ``CampaignFactory``."""

    def __init__(self, client: ChainClient, address: str) -> None:
        self.client = client
        self.address = to_checksum_address(address)

    @classmethod
    def deploy(cls, client: ChainClient, signer: Signer) -> tuple[FactoryClient, TxResult]:
        """Deploys the deployment's ERC-2771 forwarder, then the factory that trusts it; the
        result is the factory's transaction (``block_number`` is where scans start)."""
        forwarder_code = bytes.fromhex(client.contracts.bytecode("Forwarder").removeprefix("0x"))
        forwarder = client.send(signer, None, forwarder_code)
        forwarder_address = client.w3.eth.get_transaction_receipt(HexBytes(forwarder.tx))["contractAddress"]
        code = bytes.fromhex(client.contracts.bytecode("CampaignFactory").removeprefix("0x"))
        result = client.send(signer, None, code + abi_encode(["address"], [forwarder_address]))
        receipt = client.w3.eth.get_transaction_receipt(HexBytes(result.tx))
        return cls(client, str(receipt["contractAddress"])), result

    @cached_property
    def forwarder(self) -> str:
        """The ERC-2771 forwarder the factory and its campaigns trust."""
        (address,) = self.client.call("CampaignFactory", self.address, "trustedForwarder")
        return to_checksum_address(address)

    def predict(self, creator: str, salt: bytes) -> str:
        (address,) = self.client.call("CampaignFactory", self.address, "predictCampaign", creator, salt)
        return to_checksum_address(address)

    def create(
        self, signer: Signer, config: CampaignConfig, salt: bytes, envelope: bytes, member_key: bytes
    ) -> tuple[str, TxResult]:
        data = self.client.contracts.encode_call(
            "CampaignFactory", "createCampaign", [config.as_tuple(), salt, envelope, member_key]
        )
        result = self.client.send(signer, self.address, data, value=config.deposit)
        [created] = result.events("CampaignCreated")
        return to_checksum_address(created.args["campaign"]), result

    @cached_property
    def deployed_at(self) -> int:
        """The factory's deployment block (scans never start before it)."""
        (block,) = self.client.call("CampaignFactory", self.address, "deployedAt")
        return int(block)

    def campaigns(self, from_block: int | None = None, to_block: BlockId = "latest") -> list[CampaignCreated]:
        start = self.deployed_at if from_block is None else max(from_block, self.deployed_at)
        return [
            _created(log)
            for log in self.client.logs(self.address, ["CampaignCreated"], from_block=start, to_block=to_block)
        ]


def _created(log: DecodedLog) -> CampaignCreated:
    return CampaignCreated(
        campaign=to_checksum_address(log.args["campaign"]),
        creator=to_checksum_address(log.args["creator"]),
        config=CampaignConfig.from_tuple(log.args["config"]),
        block_number=log.block_number,
        tx=log.tx_hash,
    )


@dataclass(frozen=True)
class CampaignStatus:
    address: str
    state: str
    count: int
    threshold: int
    deadline: int
    total_pledges: int
    reveal_block: int
    deposit: int
    creator: str
    scope: Scope
    keeper_threshold: int
    keeper_count: int
    block: int
    late_joiners: LateJoiners = LateJoiners.KNOWN
    relay_tag: bytes = bytes(12)

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "state": self.state,
            "count": self.count,
            "threshold": self.threshold,
            "deadline": self.deadline,
            "total_pledges": self.total_pledges,
            "reveal_block": self.reveal_block or None,
            "deposit": self.deposit,
            "creator": self.creator,
            "scope": self.scope.value,
            "keeper_threshold": self.keeper_threshold,
            "keeper_count": self.keeper_count,
            "late_joiners": self.late_joiners.value,
            "block": self.block,
        }


class CampaignClient:
    """One ``Campaign`` clone."""

    def __init__(self, client: ChainClient, address: str) -> None:
        self.client = client
        try:
            self.address = to_checksum_address(address)
        except ValueError as exc:
            raise InputError(f"{address!r} is not an address: pass the campaign's 0x… address") from exc

    def _call(self, name: str, *args: Any, block: BlockId = "latest") -> Any:
        try:
            out = self.client.call("Campaign", self.address, name, *args, block=block)
        except (ContractLogicError, ContractCustomError, DecodingError) as exc:
            raise self._not_a_campaign() from exc
        except ChainError as exc:
            if "has no Campaign code" in exc.message:
                raise InputError(
                    f"there is no contract at {self.address} on this network: check the address, and --network; "
                    "`spartacus campaigns` lists the factory's campaigns",
                    address=self.address,
                ) from exc
            raise
        return out[0] if len(out) == 1 else out

    def _not_a_campaign(self) -> InputError:
        return InputError(
            f"{self.address} is not a Spartacus campaign (its code does not answer as one; the factory's own "
            "address, or another contract?): pass a campaign's address; `spartacus campaigns` lists them",
            address=self.address,
        )

    def check_factory(self, factory: str) -> None:
        """:class:`InputError` unless this campaign was created by ``factory`` (a campaign of another
        factory, or a look-alike contract, may be a trap: it could take deposits or harvest records)."""
        mine = self.factory
        if mine.lower() != to_checksum_address(factory).lower():
            raise InputError(
                f"campaign {self.address} was not created by the configured factory {to_checksum_address(factory)} "
                f"(its factory is {mine}): it may be a fake made to take deposits or harvest identities; check the "
                "link you were given, or pass --factory with its factory if you trust it",
                address=self.address,
            )
        try:
            _ = self.created
        except ChainError as exc:
            raise InputError(
                f"campaign {self.address} has no creation record in factory {mine}: it is not a real campaign of "
                "it; do not pledge to it",
                address=self.address,
            ) from exc

    def status(self, block: BlockId = "latest") -> CampaignStatus:
        number = self.client.head() if block == "latest" else block
        assert isinstance(number, int)
        return CampaignStatus(
            address=self.address,
            state=STATES[self._call("state", block=number)],
            count=self._call("pledgeCount", block=number),
            threshold=self._call("threshold", block=number),
            deadline=self._call("deadline", block=number),
            total_pledges=self._call("totalPledges", block=number),
            reveal_block=self._call("revealBlock", block=number),
            deposit=self._call("deposit", block=number),
            creator=to_checksum_address(self._call("creator", block=number)),
            scope=Scope.from_code(self._call("scope", block=number)),
            keeper_threshold=self._call("keeperThreshold", block=number),
            keeper_count=self._call("keeperCount", block=number),
            block=number,
            late_joiners=LateJoiners.from_code(self._call("lateJoiners", block=number)),
            relay_tag=bytes(self._call("relayTag", block=number)),
        )

    def pledge_of(self, address: str, block: BlockId = "latest") -> tuple[int, str, bool]:
        """``(index, status, deposit held)`` of ``address``'s pledge."""
        index, status, held, _late, _digest = self._call("pledgeOf", to_checksum_address(address), block=block)
        return int(index), PLEDGE_STATUSES[status], bool(held)

    def pledge_record(self, address: str, block: BlockId = "latest") -> tuple[int, str, bool, bool, bytes]:
        """``(index, status, deposit held, late, digest)``: the contract's storage for ``address``."""
        index, status, held, late, digest = self._call("pledgeOf", to_checksum_address(address), block=block)
        return int(index), PLEDGE_STATUSES[status], bool(held), bool(late), bytes(digest)

    def pledge_records(
        self, pledgers: Sequence[str], block: BlockId = "latest", batch_size: int = 200
    ) -> list[tuple[int, str, bool, bool, bytes]]:
        """:meth:`pledge_record` of many pledgers, in JSON-RPC batches (one call each where the node
        refuses batches)."""
        contracts, w3 = self.client.contracts, self.client.w3
        out: list[tuple[int, str, bool, bool, bytes]] = []
        for start in range(0, len(pledgers), batch_size):
            chunk = [to_checksum_address(a) for a in pledgers[start : start + batch_size]]
            txs = [
                {"to": self.address, "data": HexBytes(contracts.encode_call("Campaign", "pledgeOf", [a]))}
                for a in chunk
            ]
            raws: list[Any] | None
            try:
                with w3.batch_requests() as batch:
                    for tx in txs:
                        batch.add(w3.eth.call(tx, block))  # type: ignore[arg-type]
                    raws = list(self.client._rpc(batch.execute))
            except (Web3RPCError, ValueError, TypeError, AttributeError, NotImplementedError):
                raws = None
            if raws is None or len(raws) != len(chunk):
                out.extend(self.pledge_record(a, block) for a in chunk)
                continue
            for raw in raws:
                index, status, held, late, digest = contracts.decode_result("Campaign", "pledgeOf", bytes(raw))
                out.append((int(index), PLEDGE_STATUSES[status], bool(held), bool(late), bytes(digest)))
        return out

    def refundable(self, address: str) -> int:
        return int(self._call("refundableOf", to_checksum_address(address)))

    @cached_property
    def factory(self) -> str:
        return to_checksum_address(self._call("factory"))

    @cached_property
    def created(self) -> CampaignCreated:
        """The creation event: config, keepers, creator (texts live only there)."""
        topic = HexBytes(abi_encode(["address"], [self.address])).to_0x_hex()
        start = FactoryClient(self.client, self.factory).deployed_at
        for log in self.client.logs(self.factory, ["CampaignCreated"], from_block=start, topics=[topic]):
            return _created(log)
        raise ChainError(f"no CampaignCreated event for {self.address}: is it a Spartacus campaign?")

    def context(self) -> CampaignContext:
        config = self.created.config
        return CampaignContext(
            chain_id=self.client.chain_id,
            campaign=self.address,
            keepers=config.keepers,
            keeper_threshold=config.keeper_threshold,
            scope=config.scope,
            late_joiners=config.late_joiners,
            relay=config.relay or None,
        )

    def pledges(self, to_block: BlockId = "latest") -> list[PledgeRecord]:
        """Every pledge, with liveness and lateness as of ``to_block`` (from events only)."""
        records: dict[int, PledgeRecord] = {}
        withdrawn: set[int] = set()
        reveal_index: int | None = None
        start = self.created.block_number
        events = ["Pledged", "Withdrawn", "ThresholdReached"]
        for log in self.client.logs(self.address, events, from_block=start, to_block=to_block):
            if log.event == "ThresholdReached":
                reveal_index = int(log.args["lastIndex"])
                continue
            index = int(log.args["index"])
            if log.event == "Pledged":
                withdrawn.discard(index)
                records[index] = PledgeRecord(
                    index=index,
                    pledger=to_checksum_address(log.args["pledger"]),
                    member_key=bytes(log.args["memberKey"]),
                    envelope=bytes(log.args["envelope"]),
                    block_number=log.block_number,
                    log_data=log.data,
                )
            else:
                withdrawn.add(index)
        return [
            PledgeRecord(
                **{
                    **r.__dict__,
                    "live": r.index not in withdrawn,
                    "late": reveal_index is not None and r.index > reveal_index,
                }
            )
            for _, r in sorted(records.items())
        ]

    def releases(self, from_block: int | None = None, to_block: BlockId = "latest") -> list[ReleaseRecord]:
        start = self.created.block_number if from_block is None else from_block
        return [
            ReleaseRecord(
                keeper_index=int(log.args["keeperIndex"]),
                keeper=to_checksum_address(log.args["keeper"]),
                data=bytes(log.args["data"]),
                block_number=log.block_number,
                log_index=log.log_index,
            )
            for log in self.client.logs(self.address, ["Released"], from_block=start, to_block=to_block)
        ]

    def count_history(self, from_block: int | None = None, to_block: int | None = None) -> list[tuple[int, int]]:
        """(block, live count) after every pledge and withdrawal, oldest first: recomputable by anyone.

        Reads the count word straight from each log's data, so the sealed bytes beside it are never
        decoded (about 6 times faster on a big campaign); if the node refuses the range in one
        request, or has shown a cap it exceeds, falls back to the chunked, decoded read.
        """
        start = self.created.block_number if from_block is None else from_block
        end = self.client.head() if to_block is None else to_block
        fast = self._count_words(start, end)
        if fast is not None:
            return fast
        return [
            (log.block_number, int(log.args["count"]))
            for log in self.client.logs(self.address, ["Pledged", "Withdrawn"], from_block=start, to_block=end)
        ]

    def _count_words(self, start: int, end: int) -> list[tuple[int, int]] | None:
        """``Pledged`` data is ``[offset memberKey][offset envelope][count]...``, ``Withdrawn`` data
        is ``[count]`` (ICampaign's ABI). None if the node refuses or answers in another shape, or
        has shown a range cap that ``[start, end]`` exceeds (never asked past it)."""
        if not self.client.within_log_range(start, end):
            return None
        pledged = self.client.contracts.topic("Pledged")
        withdrawn = self.client.contracts.topic("Withdrawn")
        query = {
            "address": self.address,
            "fromBlock": start,
            "toBlock": end,
            "topics": [[pledged.to_0x_hex(), withdrawn.to_0x_hex()]],
        }
        try:
            logs = self.client.w3.eth.get_logs(query)  # type: ignore[arg-type]
            out = []
            for log in sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"])):
                topic, data = HexBytes(log["topics"][0]), bytes(log["data"])
                word = data[64:96] if topic == pledged else data[0:32] if topic == withdrawn else b""
                if len(word) != 32:
                    return None
                out.append((int(log["blockNumber"]), int.from_bytes(word, "big")))
            return out
        except (Web3RPCError, ValueError, OSError, KeyError, TypeError):
            return None

    # Writes

    def _send(self, signer: Signer, name: str, *args: Any, value: int = 0) -> TxResult:
        data = self.client.contracts.encode_call("Campaign", name, args)
        return self.client.send(signer, self.address, data, value=value)

    def pledge(self, signer: Signer, envelope: bytes, member_key: bytes, value: int) -> TxResult:
        return self._send(signer, "pledge", envelope, member_key, value=value)

    def withdraw(self, signer: Signer) -> TxResult:
        return self._send(signer, "withdraw")

    def refund(self, signer: Signer) -> TxResult:
        return self._send(signer, "refund")

    def cancel(self, signer: Signer) -> TxResult:
        return self._send(signer, "cancel")

    def claim_deposits(self, signer: Signer) -> TxResult:
        return self._send(signer, "claimDeposits")

    def encode_release(self, keeper_index: int, data: bytes) -> bytes:
        keeper_set = [keeper_address(k) for k in self.created.config.keepers]
        return self.client.contracts.encode_call("Campaign", "release", [keeper_set, keeper_index, data])

    def release(self, signer: Signer, keeper_index: int, data: bytes) -> TxResult:
        return self.client.send(signer, self.address, self.encode_release(keeper_index, data))
