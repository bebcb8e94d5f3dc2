"""Relayed calls (ERC-2771, P8): forwarder requests built, signed and checked; a client of the
relayer HTTP API; the command line's relayed flow, which loses nothing.

A Spartacus deployment trusts one forwarder (``contracts/Forwarder.sol``: OpenZeppelin's
``ERC2771Forwarder``). A request is the EIP-712 message

    ForwardRequest(address from,address to,uint256 value,uint256 gas,uint256 nonce,uint48 deadline,bytes data)

under the domain ``("Spartacus", "1", chain id, forwarder)``, signed by ``from``: here the
member key, whose address then is the pledger (or, for ``createCampaign``, the creator). Any
relayer can carry it to ``Forwarder.execute`` and pay the gas; the forwarder takes the nonce
from its own storage (``nonces(from)``), so a request runs once at most, and a change to any
field breaks the signature. A relayer can refuse or delay a request, never alter or replay it.

Nothing is lost (:func:`send_relayed`): before a request leaves this machine it is journaled
beside the member key file (``KEY.request.json``, mode 0600). A later run looks on-chain
first: if the forwarder's nonce moved past the journaled request, the request (or another of
the same nonce) ran, and its transaction is found from the forwarder's
``ExecutedForwardRequest`` log instead of signing anything; if not, the same signed request is
sent again, or, once it expired or a relayer refused it, the same call is signed again *with
the same nonce*, so at most one of the two can ever run.

Errors::

    ChainError
    └── RelayerError                         the relayer refused, is down, or answered garbage
        ├── RelayerRefused                   a refusal with a reason (``reason``, ``retry_after``)
        └── RelayerUnavailable (ConnectionError)
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.abi import function_abi_to_4byte_selector
from eth_utils.address import is_hex_address, to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from ._exceptions import ChainError, ContractRevert, InputError
from .chain import ChainClient, TxResult

__all__ = [
    "CARRIED",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "REQUEST_TTL",
    "ForwardRequest",
    "Journaled",
    "RelayedCall",
    "RelayerClient",
    "RelayerError",
    "RelayerRefused",
    "RelayerUnavailable",
    "as_forwarded",
    "estimate_call_gas",
    "executed_request_tx",
    "forwarder_nonce",
    "journal_path",
    "load_journal",
    "selector_of",
    "send_relayed",
]

DOMAIN_NAME = "Spartacus"
DOMAIN_VERSION = "1"
#: The calls a relayer carries: the factory's creation and a campaign's calls that name their caller.
CARRIED: Mapping[str, tuple[str, ...]] = {
    "CampaignFactory": ("createCampaign",),
    "Campaign": ("pledge", "withdraw", "refund", "cancel", "claimDeposits"),
}
#: Seconds a signed request stays valid (its ``deadline``); ``SPARTACUS_REQUEST_TTL`` overrides.
REQUEST_TTL = int(os.environ.get("SPARTACUS_REQUEST_TTL", "900"))
#: Largest ``data`` a request may carry (a creation with the largest texts fits).
MAX_DATA = 128 * 1024
_FIELDS = ("from", "to", "value", "gas", "nonce", "deadline", "data", "signature")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "ForwardRequest": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "gas", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint48"},
        {"name": "data", "type": "bytes"},
    ],
}


# ─── Errors ──────────────────────────────────────────────────────────────────────────


class RelayerError(ChainError):
    """The relayer refused the request, cannot be reached, or answered something else."""


class RelayerRefused(RelayerError):
    """The relayer refused the request: ``reason`` is the API's code, ``retry_after`` seconds (429)."""

    def __init__(self, message: str, *, reason: str, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, reason=reason, **context)
        self.reason = reason
        self.retry_after = retry_after


class RelayerUnavailable(RelayerError, ConnectionError):
    """The relayer cannot be reached, or says it cannot send now (503)."""


# ─── The request ─────────────────────────────────────────────────────────────────────


def selector_of(contracts: Any, contract: str, function: str) -> bytes:
    """The 4-byte selector of ``contract.function`` (from the compiled ABI)."""
    return bytes(function_abi_to_4byte_selector(contracts.function(contract, function)))


@dataclass(frozen=True)
class ForwardRequest:
    """One ERC-2771 forward request; ``signature`` empty until signed."""

    sender: str  # the request's "from": the signer, who becomes the caller
    to: str
    value: int
    gas: int
    nonce: int
    deadline: int
    data: bytes
    signature: bytes = b""

    def typed_data(self, chain_id: int, forwarder: str) -> dict[str, Any]:
        """The full EIP-712 message, for ``encode_typed_data(full_message=...)``."""
        return {
            "types": _TYPES,
            "primaryType": "ForwardRequest",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": to_checksum_address(forwarder),
            },
            "message": {
                "from": to_checksum_address(self.sender),
                "to": to_checksum_address(self.to),
                "value": self.value,
                "gas": self.gas,
                "nonce": self.nonce,
                "deadline": self.deadline,
                "data": self.data,
            },
        }

    def digest(self, chain_id: int, forwarder: str) -> bytes:
        """The 32-byte EIP-712 hash that is signed (the request's identity: it covers the nonce)."""
        signable = encode_typed_data(full_message=self.typed_data(chain_id, forwarder))
        return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))

    def sign(self, private_key: bytes, chain_id: int, forwarder: str) -> ForwardRequest:
        signable = encode_typed_data(full_message=self.typed_data(chain_id, forwarder))
        signed = Account.sign_message(signable, private_key)
        return replace(self, signature=bytes(signed.signature))

    def signer(self, chain_id: int, forwarder: str) -> str | None:
        """The address that signed this request, as the forwarder would recover it; None for a
        signature the forwarder rejects (wrong length, ``v`` not 27/28, high ``s``: EIP-2)."""
        sig = self.signature
        if len(sig) != 65 or sig[64] not in (27, 28):
            return None
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
        if not (0 < r < _SECP256K1_N and 0 < s <= _SECP256K1_N // 2):
            return None
        signable = encode_typed_data(full_message=self.typed_data(chain_id, forwarder))
        try:
            return str(Account.recover_message(signable, signature=sig))
        except Exception:  # noqa: BLE001 - any failure to recover is "not a valid signature"
            return None

    def execute_args(self) -> tuple[Any, ...]:
        """The ``ForwardRequestData`` tuple of ``Forwarder.execute`` (the nonce is the forwarder's)."""
        return (
            to_checksum_address(self.sender),
            to_checksum_address(self.to),
            self.value,
            self.gas,
            self.deadline,
            self.data,
            self.signature,
        )

    def to_json(self) -> dict[str, Any]:
        """The relayer API's body (big integers as decimal strings)."""
        return {
            "from": to_checksum_address(self.sender),
            "to": to_checksum_address(self.to),
            "value": str(self.value),
            "gas": str(self.gas),
            "nonce": str(self.nonce),
            "deadline": self.deadline,
            "data": HexBytes(self.data).to_0x_hex(),
            "signature": HexBytes(self.signature).to_0x_hex(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> ForwardRequest:
        """Parses the relayer API's body strictly; InputError names the first bad field."""
        if not isinstance(doc, dict):
            raise InputError(
                "the body must be a JSON object with from, to, value, gas, nonce, deadline, data, signature"
            )
        missing = [k for k in ("from", "to", "value", "gas", "nonce", "deadline", "data", "signature") if k not in doc]
        if missing:
            raise InputError(f"the request lacks {', '.join(missing)}: send every field of the forward request")
        extra = sorted(set(doc) - set(_FIELDS))
        if extra:
            raise InputError(f"unknown field(s) {', '.join(extra)}: send only the forward request's fields")
        deadline = doc["deadline"]
        if isinstance(deadline, bool) or not isinstance(deadline, int) or not 0 <= deadline < 2**48:
            raise InputError("deadline must be an integer unix time (uint48)")
        data = _hex_field(doc, "data", MAX_DATA)
        signature = _hex_field(doc, "signature", 65)
        if len(signature) != 65:
            raise InputError(f"signature is {len(signature)} bytes: an EIP-712 signature is 65 (r, s, v)")
        return cls(
            sender=_address_field(doc, "from"),
            to=_address_field(doc, "to"),
            value=_uint_field(doc, "value"),
            gas=_uint_field(doc, "gas"),
            nonce=_uint_field(doc, "nonce"),
            deadline=deadline,
            data=data,
            signature=signature,
        )


def _address_field(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str) or not is_hex_address(value):
        raise InputError(f"{name} must be a 0x-prefixed 20-byte hex address")
    return to_checksum_address(value)


def _uint_field(doc: dict[str, Any], name: str) -> int:
    value = doc[name]
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 78:
        raise InputError(f"{name} must be a decimal string (an unsigned integer)")
    number = int(value)
    if number >= 2**256:
        raise InputError(f"{name} does not fit in 256 bits")
    return number


def _hex_field(doc: dict[str, Any], name: str, limit: int) -> bytes:
    value = doc[name]
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise InputError(f"{name} must be 0x-prefixed hex of whole bytes")
    if len(value) > 2 + 2 * limit:
        raise InputError(f"{name} is over {limit:,} bytes: this relayer carries nothing larger")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(f"{name} must be 0x-prefixed hex of whole bytes") from None


# ─── Chain reads ─────────────────────────────────────────────────────────────────────


def forwarder_nonce(client: ChainClient, forwarder: str, sender: str, block: Any = "latest") -> int:
    (nonce,) = client.call("Forwarder", forwarder, "nonces", to_checksum_address(sender), block=block)
    return int(nonce)


def as_forwarded(
    forwarder: str, sender: str, to: str, data: bytes, value: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The call exactly as the forwarder makes it (``data ‖ sender``, from the forwarder), for an
    ``eth_call`` or ``eth_estimateGas``, and the state override that lends the forwarder ``value``."""
    tx: dict[str, Any] = {
        "from": to_checksum_address(forwarder),
        "to": to_checksum_address(to),
        "data": HexBytes(data + bytes.fromhex(to_checksum_address(sender)[2:])),
        "value": value,
    }
    return tx, ({tx["from"]: {"balance": hex(value)}} if value else None)


def estimate_call_gas(client: ChainClient, forwarder: str, sender: str, to: str, data: bytes, value: int) -> int:
    """Gas of the call as the forwarder makes it, so that a refusal surfaces here, before anything
    is signed, as the contract's own error."""
    tx, override = as_forwarded(forwarder, sender, to, data, value)
    try:
        if override is None:
            return int(client._rpc(lambda: client.w3.eth.estimate_gas(tx)))  # type: ignore[arg-type]
        return int(client._rpc(lambda: client.w3.eth.estimate_gas(tx, "latest", override)))  # type: ignore[arg-type]
    except (ContractLogicError, ContractCustomError) as exc:
        raise client._revert(exc) from exc
    except (Web3RPCError, ValueError, TypeError) as exc:
        if override is None:
            raise client._revert(exc) from exc
        # A node without state overrides on eth_estimateGas: a generous bound from the calldata
        # (the relayer simulates the call with exactly this gas and says so if it is too low).
        return 150_000 + 50 * len(data)


def executed_request_tx(client: ChainClient, forwarder: str, sender: str, nonce: int, from_block: int) -> str | None:
    """The transaction in which the forwarder ran ``sender``'s request ``nonce`` (its
    ``ExecutedForwardRequest`` log), searched from ``from_block``; None if not found."""
    topic = HexBytes(bytes(12) + bytes.fromhex(to_checksum_address(sender)[2:])).to_0x_hex()
    for log in client.logs(forwarder, ["ExecutedForwardRequest"], from_block=from_block, topics=[topic]):
        if int(log.args["nonce"]) == nonce and log.args["success"]:
            return log.tx_hash
    return None


# ─── The relayer API client ──────────────────────────────────────────────────────────


@dataclass
class RelayerClient:
    """A client of one relayer's HTTP API (``spartacus relayer run``)."""

    url: str
    timeout: float = 30.0
    _base: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"--relayer {self.url!r}: give the relayer's http:// or https:// URL")
        self._base = self.url.rstrip("/")

    def health(self) -> dict[str, Any]:
        status, doc = self._request("GET", "/health")
        if status != 200 or not isinstance(doc, dict) or doc.get("ok") is not True:
            error = doc.get("error") if isinstance(doc, dict) else None
            raise RelayerUnavailable(
                f"the relayer at {self.url} cannot send now ({error or f'HTTP {status}'}): try later or another relayer"
            )
        return doc

    def relay(self, request: ForwardRequest) -> dict[str, Any]:
        """Sends a signed request; returns ``{"tx", "status"}`` or raises a RelayerError."""
        status, doc = self._request("POST", "/relay", request.to_json())
        if status == 200:
            tx = doc.get("tx") if isinstance(doc, dict) else None
            if not _is_tx_hash(tx) or doc.get("status") not in ("sent", "mined", "known"):
                raise self._garbage(f"HTTP 200 without a transaction hash: {_shorten(doc)}")
            return {"tx": str(tx).lower(), "status": doc["status"]}
        if isinstance(doc, dict) and isinstance(doc.get("error"), str) and isinstance(doc.get("reason"), str):
            if status == 503 or doc["reason"] == "unavailable":
                raise RelayerUnavailable(
                    f"the relayer at {self.url} cannot send now: {doc['error']} (try later, or another --relayer)"
                )
            retry = doc.get("retry_after")
            raise RelayerRefused(
                f"the relayer refused the request ({doc['reason']}): {doc['error']}",
                reason=doc["reason"],
                retry_after=float(retry) if isinstance(retry, int | float) else None,
            )
        raise self._garbage(f"HTTP {status}: {_shorten(doc)}")

    def tx(self, tx_hash: str) -> dict[str, Any]:
        status, doc = self._request("GET", f"/tx/{tx_hash}")
        if status != 200 or not isinstance(doc, dict) or "status" not in doc:
            raise self._garbage(f"HTTP {status}: {_shorten(doc)}")
        return doc

    def _garbage(self, what: str) -> RelayerError:
        return RelayerError(
            f"the relayer at {self.url} answered something that is not the Spartacus relayer API ({what}):"
            " check the --relayer URL, or use another relayer"
        )

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self._base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310 - the user's relayer
                status, raw = int(response.status), response.read(1 << 20)
        except urllib.error.HTTPError as exc:
            status, raw = int(exc.code), exc.read(1 << 20)
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            doc = _json_or_none(raw)
            if isinstance(doc, dict) and retry_after and retry_after.isdigit():
                doc.setdefault("retry_after", int(retry_after))
            return status, doc if doc is not None else raw[:200]
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RelayerUnavailable(
                f"cannot reach the relayer at {self.url} ({reason}): check the URL, try later, or use another relayer",
                cause=str(exc),
            ) from exc
        doc = _json_or_none(raw)
        return status, doc if doc is not None else raw[:200]


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_tx_hash(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        return False
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        return False
    return True


def _shorten(doc: Any) -> str:
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes) else json.dumps(doc)[:200]
    return " ".join(text.split())[:120] or "an empty body"


# ─── The relayed flow of the command line ────────────────────────────────────────────


@dataclass(frozen=True)
class Journaled:
    """A signed request as journaled beside the member key file."""

    action: str
    chain_id: int
    forwarder: str
    request: ForwardRequest
    from_block: int
    extra: dict[str, Any]
    #: a relayer refused it (so it was not sent by that relayer; it may still be signed anew)
    refused: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "refused": self.refused,
            "action": self.action,
            "chain_id": self.chain_id,
            "forwarder": self.forwarder,
            "from_block": self.from_block,
            "request": self.request.to_json(),
            "extra": self.extra,
        }


def journal_path(member_key_file: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(member_key_file)}.request.json")


def load_journal(path: Path) -> Journaled | None:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path} is not a readable journal of a signed request ({exc}): move it away only if you know"
            " the request was never sent (it names the signed request that may still run)"
        ) from exc
    try:
        return Journaled(
            action=str(doc["action"]),
            chain_id=int(doc["chain_id"]),
            forwarder=to_checksum_address(doc["forwarder"]),
            request=ForwardRequest.from_json(doc["request"]),
            from_block=int(doc["from_block"]),
            extra=dict(doc.get("extra") or {}),
            refused=bool(doc.get("refused", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path} is not a journal of a signed request ({exc}): move it away") from exc


def save_journal(path: Path, entry: Journaled) -> None:
    """Writes the journal atomically, owner-only, synced: on disk before the request leaves."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.write(fd, (json.dumps(entry.to_json(), indent=1) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class RelayedCall:
    """What a relayed command asks: the call, its value, and what to journal beside it."""

    to: str
    data: bytes
    value: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def send_relayed(
    client: ChainClient,
    relayer: RelayerClient,
    forwarder: str,
    private_key: bytes,
    journal: Path,
    action: str,
    build: Callable[[Journaled | None], RelayedCall],
    *,
    say: Callable[[str], None] = lambda _text: None,
    poll: float = 0.5,
) -> TxResult:
    """Signs a call with ``private_key`` and has ``relayer`` carry it; waits for it on-chain.

    ``build`` makes the call of ``action``; it receives the journaled entry of an earlier run of
    the same action whose request did not run (to reuse its sealed bytes unless a relayer refused
    it, and what it journaled beside it, ``extra``), or None. Returns the mined
    transaction (also when an earlier run's request had already run). See the module docstring
    for why nothing is lost and nothing runs twice.
    """
    sender = Account.from_key(private_key).address
    chain_id = client.chain_id
    nonce = forwarder_nonce(client, forwarder, sender)
    earlier = load_journal(journal)
    reuse: Journaled | None = None
    if earlier is not None:
        if (earlier.chain_id, earlier.forwarder.lower()) != (chain_id, forwarder.lower()):
            raise InputError(f"{journal} journals a request for another chain or forwarder: move it away")
        if earlier.request.nonce < nonce:
            # It ran, or another request of its nonce did: report it, never sign it again.
            tx = executed_request_tx(client, forwarder, sender, earlier.request.nonce, earlier.from_block)
            journal.unlink(missing_ok=True)
            if tx is not None and earlier.action == action:
                say(f"an earlier run's request already ran, in {tx}")
                return client.wait(tx)
        elif earlier.request.nonce == nonce and earlier.action == action:
            reuse = earlier
    call = build(reuse)
    head = client.head()
    if (
        reuse is not None
        and not reuse.refused
        and reuse.request.deadline > client.timestamp() + 60
        and (reuse.request.to, reuse.request.data, reuse.request.value) == (call.to, call.data, call.value)
    ):
        request = reuse.request  # the very bytes an earlier run may have sent: sent again, unchanged
        from_block = reuse.from_block
    else:
        gas = estimate_call_gas(client, forwarder, sender, call.to, call.data, call.value)
        unsigned = ForwardRequest(
            sender=sender,
            to=call.to,
            value=call.value,
            gas=int(gas * 1.25) + 20_000,
            nonce=nonce,  # the same nonce as any earlier, unrun request: at most one of them runs
            deadline=client.timestamp() + REQUEST_TTL,
            data=call.data,
        )
        request = unsigned.sign(private_key, chain_id, forwarder)
        from_block = reuse.from_block if reuse is not None else head
    entry = Journaled(action, chain_id, forwarder, request, from_block, call.extra)
    save_journal(journal, entry)
    try:
        answer = relayer.relay(request)
    except RelayerRefused:
        # Not sent by this relayer: the next run may sign the call anew, with the same nonce.
        save_journal(journal, replace(entry, refused=True))
        raise
    except RelayerError as exc:
        raise RelayerError(
            f"{exc.message}. The signed request is kept in {journal}: run the same command again to check"
            " the chain and send it again (it never runs twice)"
        ) from exc
    say(f"relayer: {answer['status']} {answer['tx']}")
    result = await_forwarded(client, forwarder, request, answer["tx"], from_block, poll)
    journal.unlink(missing_ok=True)
    return result


def await_forwarded(
    client: ChainClient, forwarder: str, request: ForwardRequest, tx: str, from_block: int, poll: float
) -> TxResult:
    """The request's transaction once mined: the relayer's hash, or whatever transaction ran the
    request (a relayer may replace its transaction, or another relayer may carry the request)."""
    deadline = time.monotonic() + client.receipt_timeout
    while True:
        if client.receipt(tx) is not None:
            return client.wait(tx)
        if forwarder_nonce(client, forwarder, request.sender) > request.nonce:
            ran = executed_request_tx(client, forwarder, request.sender, request.nonce, from_block)
            if ran is not None:
                return client.wait(ran)
            raise ContractRevert(
                f"request nonce {request.nonce} of {request.sender} was used without this call taking effect"
                " (another request of that nonce ran, or a relayer's batch ran it into a failing call):"
                " check the campaign (`spartacus status`), then run the command again"
            )
        if client.timestamp() > request.deadline:
            raise ChainError(
                f"the relayer's transaction {tx} did not run the request before it expired: nothing happened;"
                " run the command again (or use another --relayer)",
                tx=tx,
            )
        if time.monotonic() > deadline:
            raise ChainError(
                f"the relayer's transaction {tx} is not mined after {client.receipt_timeout:.0f} s: run the same"
                " command again later to check and finish (the request never runs twice)",
                tx=tx,
            )
        time.sleep(poll)
