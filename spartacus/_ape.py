"""The seam between Spartacus and Ape: the compiled project, networks, accounts.

Importing Ape is slow (seconds), so nothing here imports it at module level.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._exceptions import InputError, RPCUnavailable

ROOT = Path(__file__).resolve().parents[1]

# py-solc-x treats $SOLCX_BINARY_PATH/solc-v<version> as an installed compiler: the
# repository's solc-js shim (made by tools/setup.sh). A caller's own setting wins.
os.environ.setdefault("SOLCX_BINARY_PATH", str(ROOT / ".solcx"))

__all__ = ["ROOT", "ApeSigner", "connect", "load_account", "project", "signer_for"]


@lru_cache(maxsize=1)
def project() -> Any:
    """This repository as an Ape project (compiles the contracts if they changed)."""
    from ape import Project

    return Project(ROOT)


def _is_url(choice: str) -> bool:
    return choice.startswith(("http://", "https://", "ws://", "wss://")) or choice.endswith(".ipc")


@contextmanager
def connect(network: str | None) -> Iterator[Any]:
    """Connects to an Ape network choice (``ethereum:sepolia:node``) or an RPC URL.

    Yields the web3 connection. Without a choice, ``SPARTACUS_NETWORK`` or the local
    anvil of the stack (``ethereum:local:foundry``).
    """
    choice = network or os.environ.get("SPARTACUS_NETWORK") or "ethereum:local:foundry"
    if choice.startswith(("http://", "https://")):
        # A plain RPC URL needs none of Ape's network machinery (seconds saved per command).
        yield _http(choice)
        return

    from ape import networks
    from ape.exceptions import ApeException
    from ape.logging import logger

    # Ape reports on stdout; our commands keep stdout for their own output (JSON).
    if not os.environ.get("SPARTACUS_APE_VERBOSE"):
        logger.set_level("WARNING")
    try:
        with networks.parse_network_choice(choice) as provider:
            yield provider.web3
    except ApeException as exc:
        text = str(exc)
        if any(word in text.lower() for word in ("connect", "refused", "no (supported) node")):
            raise RPCUnavailable(
                f"cannot reach network {choice!r}: start the node or pass another --network ({text})"
            ) from exc
        raise InputError(f"network {choice!r}: {text}") from exc


def _http(url: str) -> Any:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    try:
        _ = w3.eth.chain_id  # fail here, with a clear message, if the node is down
    except Exception as exc:  # noqa: BLE001 - requests raises many kinds
        raise RPCUnavailable(
            f"cannot reach the node at {url} ({exc.__class__.__name__}): start it or pass another --network"
        ) from exc
    return w3


def load_account(alias: str) -> Any:
    """An Ape account by alias, or ``TEST::N`` for the N-th test account (local chains only)."""
    from ape import accounts

    if alias.upper().startswith("TEST::"):
        try:
            return accounts.test_accounts[int(alias.split("::", 1)[1])]
        except (ValueError, IndexError) as exc:
            raise InputError(f"{alias!r}: use TEST::0 to TEST::9 for test accounts") from exc
    try:
        return accounts.load(alias)
    except Exception as exc:  # noqa: BLE001 - Ape raises several kinds here
        known = ", ".join(sorted(accounts.aliases)) or "none"
        raise InputError(
            f"no Ape account {alias!r} (known: {known}): create one with `ape accounts generate {alias}`"
            f" or `ape accounts import {alias}`"
        ) from exc


class ApeSigner:
    """Signs with an Ape account (a keyfile alias asks for its passphrase, as Ape does)."""

    def __init__(self, account: Any) -> None:
        self._account = account

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign(self, tx: dict[str, Any]) -> bytes:
        from ape_ethereum.transactions import DynamicFeeTransaction, StaticFeeTransaction

        fields: dict[str, Any] = {
            "chain_id": tx["chainId"],
            "nonce": tx["nonce"],
            "gas_limit": tx["gas"],
            "value": tx.get("value", 0),
            "data": bytes(tx.get("data", b"")),
            "sender": self.address,
        }
        if tx.get("to"):
            fields["receiver"] = tx["to"]
        txn: Any
        if "maxFeePerGas" in tx:
            fields.update(max_fee=tx["maxFeePerGas"], max_priority_fee=tx["maxPriorityFeePerGas"])
            txn = DynamicFeeTransaction(**fields)
        else:
            txn = StaticFeeTransaction(**fields, gasPrice=tx["gasPrice"])
        signed = self._account.sign_transaction(txn)
        if signed is None:
            raise InputError("the account refused to sign the transaction")
        return bytes(signed.serialize_transaction())

    def __repr__(self) -> str:
        return f"ApeSigner({self.address})"


LOCAL_CHAIN_IDS = frozenset({1337, 31337})


def signer_for(alias: str, chain_id: int) -> Any:
    """A Signer for ``--account``: ``TEST::N`` (local chains only) or an Ape account alias."""
    from .anvil import dev_key
    from .chain import KeySigner

    if alias.upper().startswith("TEST::"):
        if chain_id not in LOCAL_CHAIN_IDS:
            raise InputError(f"{alias}: test accounts exist only on local chains; pass an Ape account alias")
        try:
            index = int(alias.split("::", 1)[1])
        except ValueError as exc:
            raise InputError(f"{alias!r}: write TEST::N with N a number, e.g. TEST::0") from exc
        return KeySigner(dev_key(index))
    return ApeSigner(load_account(alias))
