"""Shared fixtures: role-named accounts and factories for campaigns and pledges.

Contract tests run on Ape's in-process chain (EthTester / py-evm). The contract
never parses sealed bytes, so these tests use opaque envelopes; the real
sealing is covered in the core package's tests and the end-to-end tests.
"""

from __future__ import annotations

import ast
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ape
import pytest
from ape.exceptions import CustomError
from ape_test.accounts import TestAccount
from eth_abi import encode as abi_encode
from eth_keys import keys as eth_keys
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SOLCX_BINARY_PATH", str(ROOT / ".solcx"))

DAY = 24 * 3600
MEMBERS, PUBLIC = 0, 1
KNOWN, ROSTER, CLOSED = 0, 1, 2
OPEN, REVEALED, EXPIRED, CANCELLED = 0, 1, 2, 3
NONE, LIVE, WITHDRAWN = 0, 1, 2


def keeper_pubkey_address(pub: bytes) -> str:
    return to_checksum_address(keccak(pub)[12:])


def make_keeper_keys(count: int, seed: int = 1) -> list[eth_keys.PrivateKey]:
    """Deterministic keeper keys, sorted by address as the contract requires."""
    privs = [eth_keys.PrivateKey(keccak(b"keeper-%d-%d" % (seed, i))) for i in range(count)]
    return sorted(privs, key=lambda k: int(k.public_key.to_canonical_address().hex(), 16))


def member_key() -> bytes:
    """A well-formed compressed public key (the contract checks only its shape)."""
    return bytes([2 + secrets.randbelow(2)]) + secrets.token_bytes(32)


def pledge_digest(member_key: bytes, envelope: bytes, count: int) -> bytes:
    """The 20 bytes `Campaign` stores for a pledge: keccak256 of its Pledged log's data."""
    return keccak(abi_encode(["bytes", "bytes", "uint256"], [member_key, envelope, count]))[:20]


def envelope(size: int = 400) -> bytes:
    return b"\x01" + secrets.token_bytes(size - 1)


@pytest.fixture(scope="session")
def deployer(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture(scope="session")
def organizer(accounts: Any) -> Any:
    return accounts[1]


@pytest.fixture(scope="session")
def pledgers(accounts: Any) -> list[Any]:
    return [accounts[i] for i in range(2, 8)]


@pytest.fixture(scope="session")
def pledger(pledgers: list[Any]) -> Any:
    return pledgers[0]


@pytest.fixture(scope="session")
def stranger(accounts: Any) -> Any:
    return accounts[8]


@pytest.fixture(scope="session")
def beneficiary(accounts: Any) -> Any:
    return accounts[9]


@pytest.fixture(scope="session")
def keeper_keys() -> list[eth_keys.PrivateKey]:
    return make_keeper_keys(3)


@pytest.fixture(scope="session")
def keeper_accounts(keeper_keys: list[eth_keys.PrivateKey], accounts: Any) -> list[Any]:
    """Ape accounts for the keepers' keys, funded to pay for releases."""
    out = []
    for i, key in enumerate(keeper_keys):
        acct = TestAccount(index=100 + i, address_str=key.public_key.to_checksum_address(), private_key=key.to_hex())
        accounts[0].transfer(acct, 10**19)
        out.append(acct)
    return out


@pytest.fixture(scope="session")
def forwarder(project: Any, deployer: Any) -> Any:
    """The deployment's one trusted ERC-2771 forwarder (OpenZeppelin's ERC2771Forwarder)."""
    return deployer.deploy(project.Forwarder)


@pytest.fixture(scope="session")
def factory(project: Any, deployer: Any, forwarder: Any) -> Any:
    return deployer.deploy(project.CampaignFactory, forwarder.address)


@pytest.fixture
def make_config(keeper_keys: list[eth_keys.PrivateKey], chain: Any) -> Callable[..., dict[str, Any]]:
    def _make(**overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "title": "Night shift union drive",
            "purpose": "Organise the night shift",
            "description": "We meet when enough of us are in.",
            "plan": "Sign the card together.",
            "threshold": 3,
            "deadline": chain.pending_timestamp + 7 * DAY,
            "keepers": [k.public_key.to_bytes() for k in keeper_keys],
            "keeperThreshold": 2,
            "scope": MEMBERS,
            "lateJoiners": KNOWN,
            "deposit": 0,
            "beneficiary": "0x" + "00" * 20,
            "relay": b"",
            "relayNote": b"",
            "instructions": envelope(400),
        }
        config.update(overrides)
        return config

    return _make


@pytest.fixture
def make_campaign(
    factory: Any, organizer: Any, make_config: Callable[..., dict[str, Any]], project: Any
) -> Callable[..., Any]:
    def _make(sender: Any = None, value: int | None = None, **overrides: Any) -> Any:
        config = make_config(**overrides)
        sender = sender or organizer
        receipt = factory.createCampaign(
            config,
            secrets.token_bytes(32),
            envelope(),
            member_key(),
            sender=sender,
            value=config["deposit"] if value is None else value,
        )
        [created] = factory.CampaignCreated.from_receipt(receipt)
        return project.Campaign.at(created.campaign)

    return _make


@pytest.fixture
def campaign(make_campaign: Callable[..., Any]) -> Any:
    return make_campaign()


@pytest.fixture
def make_pledge() -> Callable[..., Any]:
    def _pledge(campaign: Any, who: Any, value: int | None = None, size: int = 400) -> Any:
        return campaign.pledge(
            envelope(size), member_key(), sender=who, value=campaign.deposit() if value is None else value
        )

    return _pledge


# ─── Exact revert assertions ─────────────────────────────────────────────────────────


def encode_error(contract: Any, name: str, **inputs: Any) -> bytes:
    """The revert data of custom error `name` of `contract` with these arguments."""
    abi = getattr(contract, name).abi
    assert {i.name for i in abi.inputs} == set(inputs), f"{name}: arguments {sorted(inputs)}"
    types = [i.canonical_type for i in abi.inputs]
    return keccak(text=abi.selector)[:4] + abi_encode(types, [inputs[i.name] for i in abi.inputs])


@contextmanager
def reverts_exactly(contract: Any, name: str, **inputs: Any) -> Iterator[Any]:
    """`ape.reverts(contract.<name>, **inputs)`, but exact.

    `ape.reverts` with an error class passes any revert Ape could not decode (a campaign
    error bubbling up through the factory or another contract) and ignores keyword names
    the error does not have. Here the error and all its arguments must match.
    """
    expected = encode_error(contract, name, **inputs)
    with ape.reverts() as info:
        yield info
    err = info.value
    if isinstance(err, CustomError):
        assert (type(err).__name__, dict(err.inputs)) == (name, inputs), f"expected {name}{inputs}, got {err!r}"
    else:
        assert _revert_bytes(err) == expected, f"expected {name}{inputs}, got {err!r}"


def _revert_bytes(err: Any) -> bytes:
    """The raw revert data of an error Ape could not decode (it shows it as hex, or as the
    repr of a bytes object)."""
    message = str(err.revert_message)
    if message.startswith(("b'", 'b"')):
        value = ast.literal_eval(message)
        assert isinstance(value, bytes)
        return value
    return bytes(HexBytes(message))


# ─── A real node (anvil) for integration tests ──────────────────────────────────────


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real anvil on a free loopback port, for the whole session; always stopped."""
    from spartacus.anvil import Anvil

    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with Anvil(extra=["--accounts", "10"], log=log) as node:
        yield node


@pytest.fixture(scope="session")
def anvil_client(anvil_node: Any) -> Any:
    from web3 import Web3

    from spartacus.chain import ChainClient

    return ChainClient(Web3(Web3.HTTPProvider(anvil_node.url)))


@pytest.fixture
def stack(anvil_node: Any, anvil_client: Any, tmp_path: Path) -> Any:
    """A fresh factory, three funded keeper keys (t = 2) and a CLI bound to them."""
    from spartacus_cli import deploy_with_keepers

    cli, keepers = deploy_with_keepers(anvil_node.url, anvil_client, tmp_path)
    (tmp_path / "instructions.txt").write_text("Meet at the north gate, Monday 6:00. Bring the cards.\n")
    return cli, keepers, anvil_client
