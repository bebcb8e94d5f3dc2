"""What the server does with what the browser component sends it: only public things.

* ``{"kind": "sent", "via": "wallet", "tx"}``: a transaction the wallet sent; the server waits
  for it;
* ``{"kind": "sent", "via": "relayer", "request"}``: a forwarder request signed by the member
  key in the browser; the server hands it to the relayer (``SPARTACUS_RELAYER``, see the
  relayer API) and waits for its transaction;
* ``{"kind": "sent", "via": "local", "account", "to", "data", "value"}``: calldata built in the
  browser (ciphertext only), signed by a local account of this machine (the local stack).

Every call is checked against the action of the page that rendered the component (its target
and its function), so that a page only ever sends what it offers.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _settings import Settings, local_accounts, local_signer
from eth_utils.abi import function_abi_to_4byte_selector
from eth_utils.address import is_address, to_checksum_address

from spartacus._exceptions import ChainError, InputError
from spartacus.chain import ChainClient, TxResult

__all__ = ["ACTIONS", "Outcome", "describe_result", "relay_request", "send_value"]

#: action -> (contract, function)
ACTIONS = {
    "pledge": ("Campaign", "pledge"),
    "withdraw": ("Campaign", "withdraw"),
    "refund": ("Campaign", "refund"),
    "cancel": ("Campaign", "cancel"),
    "create": ("CampaignFactory", "createCampaign"),
}
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


@dataclass
class Outcome:
    """What a page shows after an action: a success (facts) or an error sentence."""

    action: str
    ok: bool
    text: str
    facts: dict[str, Any]


def _selector(client: ChainClient, action: str) -> bytes:
    contract, name = ACTIONS[action]
    return bytes(function_abi_to_4byte_selector(client.contracts.function(contract, name)))  # type: ignore[arg-type]


def relay_request(relayer: str, request: dict[str, Any], timeout: float = 30.0) -> str:
    """``POST {relayer}/relay``; the transaction hash, or an InputError that says what to do."""
    body = json.dumps(request).encode()
    http = urllib.request.Request(relayer + "/relay", data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(http, timeout=timeout) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read()).get("error")
        except (ValueError, AttributeError):
            error = None
        raise InputError(
            f"the relayer refused the request (HTTP {exc.code}): {error or 'no reason given'}"
            + (" Wait a little, then try again." if exc.code == 429 else "")
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InputError(
            f"the relayer at {relayer} cannot be reached ({exc.__class__.__name__}): try again later, or send with a "
            "browser wallet; nothing was sent"
        ) from None
    tx = answer.get("tx") if isinstance(answer, dict) else None
    if not isinstance(tx, str) or not _TX_HASH.fullmatch(tx):
        raise InputError("the relayer answered without a transaction hash: try again later, or send with a wallet")
    return tx


def _await_relayed(
    client: ChainClient, settings: Settings, request: dict[str, Any], tx: str, from_block: int
) -> TxResult:
    """The relayer's transaction once mined, or the version that replaced it (same nonce, a higher
    fee: a relayer replaces a transaction stuck behind a fee spike), found by the request it ran."""
    from spartacus.chain import FactoryClient
    from spartacus.forwarding import ForwardRequest, await_forwarded

    if not settings.factory:
        return client.wait(tx)
    forwarder = FactoryClient(client, settings.factory).forwarder
    return await_forwarded(client, forwarder, ForwardRequest.from_json(request), tx, from_block, 0.5)


def _nothing(tx: str) -> None:
    pass


def send_value(
    client: ChainClient,
    settings: Settings,
    value: dict[str, Any],
    action: str,
    target: str,
    submitted: Callable[[str], None] = _nothing,
) -> TxResult:
    """Sends (or waits for) what the component sent for ``action`` to ``target``; ``submitted``
    is told the transaction's hash as soon as it is known, before it is mined."""
    if value.get("action") != action or action not in ACTIONS:
        raise InputError(f"this page sends {action} only")
    via = value.get("via")
    if via == "wallet":
        tx = str(value.get("tx") or "")
        if not _TX_HASH.fullmatch(tx):
            raise InputError("the wallet answered without a transaction hash: check the wallet, then try again")
        submitted(tx)
        return client.wait(tx)
    if via == "relayer":
        if not settings.relayer:
            raise InputError("no relayer is configured here (SPARTACUS_RELAYER): send with a wallet")
        request = value.get("request")
        if not isinstance(request, dict) or not is_address(str(request.get("to", ""))):
            raise InputError("the signed request is malformed: sign it again")
        if to_checksum_address(request["to"]) != to_checksum_address(target):
            raise InputError(f"the signed request is not addressed to {target}: refused")
        data = str(request.get("data") or "")
        if not _HEX.fullmatch(data) or bytes.fromhex(data[2:])[:4] != _selector(client, action):
            raise InputError(f"the signed request is not a call of {ACTIONS[action][1]}: refused")
        head = client.head()
        tx = relay_request(settings.relayer, request)
        submitted(tx)
        return _await_relayed(client, settings, request, tx, head)
    if via == "local":
        alias = str(value.get("account") or "")
        if alias not in local_accounts(settings, client.chain_id):
            raise InputError(f"{alias!r} is not a local account of this dApp")
        to, data = str(value.get("to") or ""), str(value.get("data") or "")
        if not is_address(to) or to_checksum_address(to) != to_checksum_address(target):
            raise InputError(f"the call is not addressed to {target}: refused")
        if not _HEX.fullmatch(data) or bytes.fromhex(data[2:])[:4] != _selector(client, action):
            raise InputError(f"the call is not a call of {ACTIONS[action][1]}: refused")
        try:
            amount = int(str(value.get("value", "0")))
        except ValueError:
            raise InputError("the call's value is not an amount of wei") from None
        signer = local_signer(alias, client.chain_id)
        tx = client.broadcast(signer.sign(client.prepare(signer, target, bytes.fromhex(data[2:]), amount)))
        submitted(tx)
        return client.wait(tx)
    raise ChainError(f"unknown way to send: {via!r}")


def describe_result(action: str, result: TxResult) -> dict[str, Any]:
    """The facts a page shows after a mined transaction."""
    out: dict[str, Any] = {"tx": result.tx, "gas_used": result.gas_used, "block": result.block_number}
    if action == "pledge":
        events = result.events("Pledged")
        if not events:
            raise ChainError(f"transaction {result.tx} made no pledge: check it on the network")
        out |= {"index": int(events[0].args["index"]), "count": int(events[0].args["count"])}
        out["revealed"] = bool(result.events("ThresholdReached"))
    elif action == "create":
        events = result.events("CampaignCreated")
        if not events:
            raise ChainError(f"transaction {result.tx} created no campaign: check it on the network")
        out["campaign"] = to_checksum_address(events[0].args["campaign"])
    return out
