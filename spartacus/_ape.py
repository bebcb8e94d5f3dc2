"""The seam between Spartacus and Ape: the compiled project, networks, accounts.

The seam runs one way: this module uses :mod:`spartacus.chain`, which never imports Ape.

Importing Ape and its plugins takes seconds, so nothing here imports it at module level, and
:func:`connect` does not import it at all for the networks that need none of it: an RPC URL,
and the local anvil (``ethereum:local:foundry``), which is resolved to its URL the way
ape-foundry resolves it (``APE_FOUNDRY_HOST``, else ``foundry: host:`` in the project's or the
user's ``ape-config.yaml``, else ``http://127.0.0.1:8545``). Every other choice goes through
Ape's network machinery, as does a foundry network that Ape would start itself.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from ._exceptions import InputError, RPCUnavailable

ROOT = Path(__file__).resolve().parents[1]

# py-solc-x treats $SOLCX_BINARY_PATH/solc-v<version> as an installed compiler: the
# repository's solc-js shim (made by tools/setup.sh). A caller's own setting wins.
os.environ.setdefault("SOLCX_BINARY_PATH", str(ROOT / ".solcx"))

__all__ = [
    "DEFAULT_NETWORK",
    "ROOT",
    "ApeSigner",
    "connect",
    "ensure_built",
    "load_account",
    "project",
    "resolve_rpc_url",
    "signer_for",
]

log = logging.getLogger("spartacus.net")

DEFAULT_NETWORK = "ethereum:local:foundry"
FOUNDRY_DEFAULT_HOST = "http://127.0.0.1:8545"  # ape-foundry's own default
T = TypeVar("T")


@lru_cache(maxsize=1)
def project() -> Any:
    """This repository as an Ape project (compiles the contracts if they changed)."""
    from ape import Project

    return Project(ROOT)


def ensure_built() -> None:
    """Compiles the contracts through Ape when the build is older than the sources (a JSON
    read otherwise: no Ape import)."""
    from .chain import manifest_current

    if not manifest_current():
        project().load_contracts()  # compiles what changed and rewrites the manifest


def _is_url(choice: str) -> bool:
    return choice.startswith(("http://", "https://", "ws://", "wss://")) or choice.endswith(".ipc")


def _foundry_settings() -> dict[str, Any]:
    """The ``foundry:`` section Ape would use: the project's config (the working directory's,
    as Ape reads it) over the user's (``$APE_DATA_FOLDER`` or ``~/.ape``)."""
    import yaml

    data_folder = Path(os.environ.get("APE_DATA_FOLDER") or Path.home() / ".ape")
    merged: dict[str, Any] = {}
    for folder in (data_folder, Path.cwd()):
        for name in ("ape-config.yaml", "ape-config.yml"):
            path = folder / name
            if not path.is_file():
                continue
            try:
                config = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError):
                return {"unreadable": True}
            section = config.get("foundry") if isinstance(config, dict) else None
            if isinstance(section, dict):
                merged |= section
            break
    return merged


def resolve_rpc_url(choice: str) -> tuple[str, bool] | None:
    """The RPC URL of a network choice that needs no Ape, and whether Ape would start a node
    there if none answers; None when only Ape can connect it."""
    if _is_url(choice):
        return (choice, False) if choice.startswith(("http://", "https://")) else None
    parts = choice.split(":")
    if len(parts) != 3 or parts[0] not in ("", "ethereum") or parts[1] != "local" or parts[2] != "foundry":
        return None
    if env_host := os.environ.get("APE_FOUNDRY_HOST"):
        host, manage = env_host, False
    else:
        settings = _foundry_settings()
        if settings.get("unreadable") or any(k.startswith("fork") for k in settings):
            return None
        host = settings.get("host") or FOUNDRY_DEFAULT_HOST
        manage = bool(settings.get("manage_process", True))
        if not isinstance(host, str) or host == "auto" or "$" in host:
            return None
    if not host.startswith("http"):  # ape-foundry's normalisation
        host = f"http://{host}" if "127.0.0.1" in host or "localhost" in host else f"https://{host}"
    local = "127.0.0.1" in host or "localhost" in host
    if local and ":" not in host.split("://", 1)[1]:
        host += ":8545"
    return host, manage and local


@contextmanager
def connect(
    network: str | None,
    *,
    wait: bool = False,
    interval: float = 5.0,
    max_backoff: float = 30.0,
    stop: threading.Event | None = None,
) -> Iterator[Any]:
    """Connects to an Ape network choice (``ethereum:sepolia:node``) or an RPC URL, and makes
    sure the contracts are built. Yields the web3 connection.

    Without a choice, ``SPARTACUS_NETWORK`` or the local anvil of the stack
    (``ethereum:local:foundry``). With ``wait``, a node that does not answer is waited for,
    retrying with the listeners' backoff (``interval`` doubling up to ``max_backoff``) until it
    does or ``stop`` is set (then :class:`RPCUnavailable`).
    """
    choice = network or os.environ.get("SPARTACUS_NETWORK") or DEFAULT_NETWORK
    ensure_built()
    resolved = resolve_rpc_url(choice)
    if resolved is not None:
        url, ape_would_start = resolved
        try:
            w3 = _retrying(lambda: _http(url, choice), wait and not ape_would_start, interval, max_backoff, stop)
        except RPCUnavailable:
            if not ape_would_start:
                raise
        else:
            yield w3
            return
    with _retrying(lambda: _ape_network(choice), wait, interval, max_backoff, stop) as w3:
        yield w3


def _retrying(
    attempt: Callable[[], T], wait: bool, interval: float, max_backoff: float, stop: threading.Event | None
) -> T:
    """``attempt()``; with ``wait``, again after each RPCUnavailable, with a doubling delay."""
    delay = interval
    while True:
        try:
            return attempt()
        except RPCUnavailable as exc:
            if not wait or (stop is not None and stop.is_set()):
                raise
            log.warning("node unreachable (%s); retrying in %.3g s", exc.message, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                threading.Event().wait(delay)
            delay = min(max(delay, interval) * 2, max_backoff)


def pin_chain_id(w3: Any) -> None:
    """Ask the node for its chain id once for the connection's life: web3 asks it before many
    calls, and its own request cache is per thread, so a server that runs each request in a new
    thread (Streamlit) asked again every time (40 % of the dApp's requests). A node whose chain
    id changed under a running process would be another network: the first answer stands."""
    from web3.middleware import Web3Middleware

    pinned: dict[str, Any] = {}
    lock = threading.Lock()

    class PinnedChainId(Web3Middleware):
        def wrap_make_request(self, make_request: Any) -> Any:
            def middleware(method: str, params: Any) -> Any:
                if method != "eth_chainId":
                    return make_request(method, params)
                with lock:
                    if "result" not in pinned:
                        response = make_request(method, params)
                        if "result" not in response:
                            return response
                        pinned["result"] = response["result"]
                return {"jsonrpc": "2.0", "id": 0, "result": pinned["result"]}

            return middleware

    w3.middleware_onion.add(PinnedChainId, "spartacus_pinned_chain_id")


def _http(url: str, choice: str) -> Any:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    pin_chain_id(w3)
    for attempt in range(3):  # a dropped connection is not a node that is down
        try:
            _ = w3.eth.chain_id  # fail here, with a clear message, if the node is down
            return w3
        except Exception as exc:  # noqa: BLE001 - requests raises many kinds
            if attempt == 2:
                shown = url if url == choice else f"{url} ({choice})"
                raise RPCUnavailable(
                    f"cannot reach the node at {shown} ({exc.__class__.__name__}): start it or pass another --network"
                ) from exc
            threading.Event().wait(0.25 * 2**attempt)
    raise AssertionError("unreachable")


def _ape_network(choice: str) -> AbstractContextManager[Any]:
    """Enters Ape's network context for ``choice`` now (so that failing to connect is an
    attempt that can be retried), and returns a context that leaves it."""
    from ape import networks
    from ape.exceptions import ApeException
    from ape.logging import logger

    # Ape reports on stdout; our commands keep stdout for their own output (JSON).
    if not os.environ.get("SPARTACUS_APE_VERBOSE"):
        logger.set_level("WARNING")
    context = networks.parse_network_choice(choice)
    try:
        provider = context.__enter__()
    except ApeException as exc:
        text = str(exc)
        if any(word in text.lower() for word in ("connect", "refused", "no (supported) node")):
            raise RPCUnavailable(
                f"cannot reach network {choice!r}: start the node or pass another --network ({text})"
            ) from exc
        raise InputError(f"network {choice!r}: {text}") from exc

    @contextmanager
    def entered() -> Iterator[Any]:
        try:
            yield provider.web3
        finally:
            context.__exit__(None, None, None)

    return entered()


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
