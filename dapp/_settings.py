"""What the dApp reads from its environment, the chain connection, and the local accounts of
the machine that runs it (the local stack's test accounts, or ``SPARTACUS_ACCOUNT``).

Environment: ``SPARTACUS_NETWORK`` (an Ape network choice or an RPC URL), ``SPARTACUS_FACTORY``,
``SPARTACUS_RELAYER`` (a relayer's URL: walletless sending), ``SPARTACUS_RELAY_SERVICE`` (the
public key of a relay service organizers may name) and ``SPARTACUS_RELAY_NAME`` (its name),
``SPARTACUS_KEEPERS`` (known keepers' public keys, comma-separated), ``SPARTACUS_ACCOUNT``,
``SPARTACUS_REFRESH`` (seconds between live-count refreshes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_utils.address import to_checksum_address

from spartacus._exceptions import InputError
from spartacus.chain import ChainClient
from spartacus.keys import compress_public_key

__all__ = [
    "LOCAL_CHAIN_IDS",
    "Connection",
    "Settings",
    "account_address",
    "chain_now",
    "local_accounts",
    "local_signer",
]

LOCAL_CHAIN_IDS = frozenset({1337, 31337})


@dataclass(frozen=True)
class Settings:
    """What the dApp reads from its environment."""

    network: str | None
    factory: str | None
    account: str | None
    keepers: tuple[str, ...]
    refresh: float
    relayer: str | None = None
    relay_service: bytes | None = None
    relay_name: str | None = None
    relay_service_error: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        keepers = tuple(k.strip() for k in env.get("SPARTACUS_KEEPERS", "").split(",") if k.strip())
        try:
            refresh = max(0.5, float(env.get("SPARTACUS_REFRESH", "2")))
        except ValueError:
            refresh = 2.0
        relay_service, relay_error = None, None
        if env.get("SPARTACUS_RELAY_SERVICE", "").strip():
            try:
                relay_service = compress_public_key(env["SPARTACUS_RELAY_SERVICE"])
            except InputError as exc:
                relay_error = f"SPARTACUS_RELAY_SERVICE is not a public key ({exc.message})"
        return cls(
            network=env.get("SPARTACUS_NETWORK") or None,
            factory=env.get("SPARTACUS_FACTORY") or None,
            account=env.get("SPARTACUS_ACCOUNT") or None,
            keepers=keepers,
            refresh=refresh,
            relayer=(env.get("SPARTACUS_RELAYER") or "").strip().rstrip("/") or None,
            relay_service=relay_service,
            relay_name=(env.get("SPARTACUS_RELAY_NAME") or "").strip() or None,
            relay_service_error=relay_error,
        )

    @property
    def network_label(self) -> str:
        return self.network or "ethereum:local:foundry (the local stack)"


class Connection:
    """One open network connection (Ape's context stays entered for the server's life)."""

    def __init__(self, network: str | None) -> None:
        from spartacus._ape import connect

        self._context = connect(network)
        w3 = self._context.__enter__()
        self.client = ChainClient(w3, receipt_timeout=120.0)
        _ = self.client.chain_id  # fails here, with a clear message, when the node is down

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def chain_now(client: ChainClient) -> int:
    """The time a transaction sent now would see: the latest block's, or the clock's if later."""
    return max(int(time.time()), client.timestamp())


def local_accounts(settings: Settings, chain_id: int) -> list[str]:
    """The accounts this server may sign with: ``SPARTACUS_ACCOUNT``, and on a local chain its
    funded test accounts ``TEST::0`` to ``TEST::9``."""
    options = [settings.account] if settings.account else []
    if chain_id in LOCAL_CHAIN_IDS:
        options += [f"TEST::{i}" for i in range(10) if f"TEST::{i}" != settings.account]
    return options


@lru_cache(maxsize=64)
def account_address(alias: str, chain_id: int) -> str:
    if alias.upper().startswith("TEST::"):
        from spartacus._ape import signer_for

        return str(signer_for(alias, chain_id).address)
    from spartacus._ape import load_account

    return str(to_checksum_address(str(load_account(alias).address)))


def local_signer(alias: str, chain_id: int) -> Any:
    """A Signer for ``alias``: a test account, or an Ape account that signs through Ape (an
    account locked by a passphrase cannot sign from a page: use a wallet or the relayer)."""
    from spartacus._ape import ApeSigner, load_account, signer_for

    if alias.upper().startswith("TEST::"):
        return signer_for(alias, chain_id)
    account = load_account(alias)
    if hasattr(account, "keyfile"):
        raise InputError(
            f"the Ape account {alias!r} is locked by a passphrase, which this page never asks for: "
            "sign with a browser wallet or send through the relayer"
        )
    return ApeSigner(account)
