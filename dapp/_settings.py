"""What the dApp reads from its environment, the chain connection, and the local accounts of
the machine that runs it (the local stack's test accounts, or ``SPARTACUS_ACCOUNT``).

Environment: ``SPARTACUS_NETWORK`` (an Ape network choice or an RPC URL), ``SPARTACUS_FACTORY``,
``SPARTACUS_RELAYER`` (a relayer's URL: walletless sending), ``SPARTACUS_RELAY_SERVICE`` (the
public key of a relay service organizers may name) and ``SPARTACUS_RELAY_NAME`` (its name),
``SPARTACUS_KEEPERS`` (known keepers' public keys, comma-separated), ``SPARTACUS_ACCOUNT``,
``SPARTACUS_REFRESH`` (seconds between live-count refreshes).

The chain, as wallets and visitors see it (every detail configurable, per network):
``SPARTACUS_CHAIN_NAME`` (default: the usual name of a well-known chain id, else "chain N"),
``SPARTACUS_RPC_PUBLIC_URL`` (the RPC URL offered to a wallet that does not know the chain;
default: ``SPARTACUS_NETWORK`` when it is a loopback URL, the local stack's, else none: the
server's own RPC URL may hold an API key), ``SPARTACUS_EXPLORER_URL`` (a block explorer:
``/tx/HASH`` and ``/address/ADDR`` links; none by default), ``SPARTACUS_CURRENCY_NAME``,
``SPARTACUS_CURRENCY_SYMBOL`` and ``SPARTACUS_CURRENCY_DECIMALS`` (the native currency: Ether,
ETH, 18).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from eth_utils.address import to_checksum_address

from spartacus._exceptions import InputError
from spartacus.chain import ChainClient
from spartacus.keys import compress_public_key

__all__ = [
    "CHAIN_NAMES",
    "LOCAL_CHAIN_IDS",
    "Connection",
    "Settings",
    "account_address",
    "chain_now",
    "local_accounts",
    "local_signer",
]

LOCAL_CHAIN_IDS = frozenset({1337, 31337})
#: Names of well-known chains, the defaults of ``SPARTACUS_CHAIN_NAME``.
CHAIN_NAMES = {
    1: "Ethereum",
    10: "OP Mainnet",
    100: "Gnosis",
    137: "Polygon",
    8453: "Base",
    17000: "Holesky",
    42161: "Arbitrum One",
    84532: "Base Sepolia",
    421614: "Arbitrum Sepolia",
    560048: "Hoodi",
    11155111: "Sepolia",
    11155420: "OP Sepolia",
    1337: "Local chain",
    31337: "Anvil (local)",
}
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|::1)$")


def _http_url(text: str | None) -> str | None:
    """``text`` when it is an http(s) URL (no scripts, no credentials), without a trailing slash."""
    text = (text or "").strip().rstrip("/")
    if not text:
        return None
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or "@" in parts.netloc
        or any(c in text for c in "\"' <>")
    ):
        raise ValueError(text)
    return text


def _loopback_url(text: str | None) -> str | None:
    try:
        url = _http_url(text)
    except ValueError:
        return None
    return url if url and _LOOPBACK.match(urlsplit(url).hostname or "") else None


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
    chain_name: str | None = None
    rpc_public_url: str | None = None
    explorer_url: str | None = None
    currency_name: str = "Ether"
    currency_symbol: str = "ETH"
    currency_decimals: int = 18
    config_error: str | None = None

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
        problems = []
        urls: dict[str, str | None] = {}
        for name in ("SPARTACUS_RPC_PUBLIC_URL", "SPARTACUS_EXPLORER_URL"):
            try:
                urls[name] = _http_url(env.get(name))
            except ValueError:
                urls[name] = None
                problems.append(f"{name} is not an http(s) URL: it is ignored")
        try:
            decimals = int(env.get("SPARTACUS_CURRENCY_DECIMALS") or 18)
        except ValueError:
            decimals = 18
            problems.append("SPARTACUS_CURRENCY_DECIMALS is not a whole number: 18 is used")
        network = env.get("SPARTACUS_NETWORK") or None
        return cls(
            network=network,
            factory=env.get("SPARTACUS_FACTORY") or None,
            account=env.get("SPARTACUS_ACCOUNT") or None,
            keepers=keepers,
            refresh=refresh,
            relayer=(env.get("SPARTACUS_RELAYER") or "").strip().rstrip("/") or None,
            relay_service=relay_service,
            relay_name=(env.get("SPARTACUS_RELAY_NAME") or "").strip() or None,
            relay_service_error=relay_error,
            chain_name=(env.get("SPARTACUS_CHAIN_NAME") or "").strip() or None,
            rpc_public_url=urls["SPARTACUS_RPC_PUBLIC_URL"] or _loopback_url(network),
            explorer_url=urls["SPARTACUS_EXPLORER_URL"],
            currency_name=(env.get("SPARTACUS_CURRENCY_NAME") or "").strip() or "Ether",
            currency_symbol=(env.get("SPARTACUS_CURRENCY_SYMBOL") or "").strip() or "ETH",
            currency_decimals=decimals,
            config_error="; ".join(problems) or None,
        )

    @property
    def network_label(self) -> str:
        return self.network or "ethereum:local:foundry (the local stack)"

    def chain(self, chain_id: int) -> str:
        """The chain's name: ``SPARTACUS_CHAIN_NAME``, else a well-known chain's, else ``chain N``."""
        return self.chain_name or CHAIN_NAMES.get(chain_id) or f"chain {chain_id}"

    def chain_label(self, chain_id: int) -> str:
        """``Sepolia (chain 11155111)``: the name, and the id wallets show."""
        name = self.chain(chain_id)
        return name if name == f"chain {chain_id}" else f"{name} (chain {chain_id})"

    def explorer_link(self, kind: str, value: str) -> str | None:
        """The explorer's page of a transaction (``tx``) or an address (``address``), if one is set."""
        if not self.explorer_url or kind not in ("tx", "address") or not re.fullmatch(r"0x[0-9a-fA-F]+", value):
            return None
        return f"{self.explorer_url}/{kind}/{value}"

    def add_chain_params(self, chain_id: int) -> dict[str, Any]:
        """The EIP-3085 ``wallet_addEthereumChain`` parameter for this network (no RPC URL: none)."""
        params: dict[str, Any] = {
            "chainId": hex(chain_id),
            "chainName": self.chain(chain_id),
            "rpcUrls": [self.rpc_public_url] if self.rpc_public_url else [],
            "nativeCurrency": {
                "name": self.currency_name,
                "symbol": self.currency_symbol,
                "decimals": self.currency_decimals,
            },
        }
        if self.explorer_url:
            params["blockExplorerUrls"] = [self.explorer_url]
        return params


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


#: The local stack's test accounts, the first offered first: TEST::0 deploys, TEST::1 organizes
#: the demo campaign and TEST::9 pays for the relayer, so they come last.
TEST_ACCOUNT_ORDER = (2, 3, 4, 5, 6, 7, 8, 1, 0, 9)


def local_accounts(settings: Settings, chain_id: int) -> list[str]:
    """The accounts this server may sign with: ``SPARTACUS_ACCOUNT``, and on a local chain its
    funded test accounts (``TEST_ACCOUNT_ORDER``: never the deployer first)."""
    options = [settings.account] if settings.account else []
    if chain_id in LOCAL_CHAIN_IDS:
        options += [f"TEST::{i}" for i in TEST_ACCOUNT_ORDER if f"TEST::{i}" != settings.account]
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
