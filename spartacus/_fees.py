"""Transaction fees: what to offer first, and what to offer when a transaction is stuck.

Pure functions over integers (wei per gas), so the rules are tested without a chain; the
chain client (:class:`spartacus.chain.ChainClient`) applies them.

* A first offer is EIP-1559: ``max fee = 2 × base fee + tip`` (room for six full blocks of
  rising fees), never above the policy's cap. A chain without a base fee gets a legacy gas
  price instead.
* A replacement keeps the nonce and raises both the tip and the max fee by ``bump`` (25 %; geth
  and most nodes refuse a replacement that raises either by less than 10 %, anvil one that does
  not raise the max fee), and at least to what the current base fee needs. It never goes above
  the cap: when the cap leaves no room for a valid replacement there is none, and the
  transaction waits for fees to fall.

Only one transaction per nonce can ever be mined, so a replaced transaction is never
duplicated: at most one of its versions lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GWEI", "FeePolicy", "Fees", "first_offer", "format_wei", "replacement"]

GWEI = 10**9
#: A node refuses a replacement that does not raise the fees by at least this much (geth: 10 %).
MIN_BUMP_NUM, MIN_BUMP_DEN = 11, 10


@dataclass(frozen=True)
class FeePolicy:
    """How much a sender is willing to pay, and when it replaces a transaction.

    ``max_fee``: the most wei per gas any version of a transaction may offer (``None``: no cap);
    ``tip``: the priority fee to offer (``None``: the node's suggestion, at least 1 gwei where the
    node has none); ``bump``: the fraction by which a replacement raises both fees;
    ``stuck_blocks``: blocks mined without the transaction before it is replaced.
    """

    max_fee: int | None = None
    tip: int | None = None
    bump: float = 0.25
    stuck_blocks: int = 3

    def __post_init__(self) -> None:
        if self.max_fee is not None and self.max_fee <= 0:
            raise ValueError("the fee cap must be positive")
        if self.bump < 0.1:
            raise ValueError("a replacement must raise the fees by at least 10 % (nodes refuse less)")
        if self.stuck_blocks < 1:
            raise ValueError("stuck_blocks must be 1 or more")


@dataclass(frozen=True)
class Fees:
    """One offer: EIP-1559 (``max_fee``, ``tip``) or, on a chain without a base fee, a gas price
    (``legacy``: ``max_fee`` is the gas price, ``tip`` unused)."""

    max_fee: int
    tip: int
    legacy: bool = False

    def as_tx(self) -> dict[str, int]:
        if self.legacy:
            return {"gasPrice": self.max_fee}
        return {"maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.tip}

    @classmethod
    def of(cls, tx: dict[str, Any]) -> Fees:
        if "maxFeePerGas" in tx:
            return cls(int(tx["maxFeePerGas"]), int(tx["maxPriorityFeePerGas"]))
        return cls(int(tx["gasPrice"]), 0, legacy=True)


def _capped(value: int, policy: FeePolicy) -> int:
    return value if policy.max_fee is None else min(value, policy.max_fee)


def first_offer(base_fee: int | None, suggested_tip: int, policy: FeePolicy, gas_price: int = 0) -> Fees:
    """The fees of a new transaction; ``base_fee`` None means a legacy chain (``gas_price``)."""
    if base_fee is None:
        return Fees(_capped(gas_price, policy), 0, legacy=True)
    tip = policy.tip if policy.tip is not None else suggested_tip
    max_fee = _capped(2 * base_fee + tip, policy)
    return Fees(max_fee, min(tip, max_fee))


def _raised(value: int, bump: float) -> int:
    return max(int(value * (1 + bump)) + 1, -(-value * MIN_BUMP_NUM // MIN_BUMP_DEN))


def replacement(current: Fees, base_fee: int | None, suggested_tip: int, policy: FeePolicy) -> Fees | None:
    """The fees of a replacement for a transaction offering ``current``, or None when the cap
    leaves no room for one that nodes accept (both fees raised by at least 10 %)."""
    if current.legacy or base_fee is None:
        price = _capped(max(_raised(current.max_fee, policy.bump), 0), policy)
        return Fees(price, 0, legacy=True) if price * MIN_BUMP_DEN >= current.max_fee * MIN_BUMP_NUM else None
    wanted_tip = policy.tip if policy.tip is not None else suggested_tip
    tip = max(_raised(current.tip, policy.bump), wanted_tip)
    max_fee = _capped(max(_raised(current.max_fee, policy.bump), 2 * base_fee + tip), policy)
    tip = min(tip, max_fee)
    if max_fee * MIN_BUMP_DEN < current.max_fee * MIN_BUMP_NUM or tip * MIN_BUMP_DEN < current.tip * MIN_BUMP_NUM:
        return None
    return Fees(max_fee, tip)


def format_wei(wei: int) -> str:
    """``1.5e16`` → ``0.015 ETH``; small amounts in gwei."""
    if abs(wei) >= 10**15:
        return f"{wei / 10**18:.6g} ETH"
    return f"{wei / GWEI:.6g} gwei"
