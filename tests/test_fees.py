"""The fee rules (spartacus._fees), without a chain: first offers, replacements nodes accept,
and the cap that no version of a transaction ever exceeds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spartacus._fees import GWEI, FeePolicy, Fees, first_offer, format_wei, replacement


def test_first_offer_leaves_room_for_rising_fees() -> None:
    fees = first_offer(10 * GWEI, 2 * GWEI, FeePolicy())
    assert fees == Fees(22 * GWEI, 2 * GWEI)
    assert fees.as_tx() == {"maxFeePerGas": 22 * GWEI, "maxPriorityFeePerGas": 2 * GWEI}


def test_first_offer_never_above_the_cap() -> None:
    fees = first_offer(100 * GWEI, 2 * GWEI, FeePolicy(max_fee=30 * GWEI))
    assert fees.max_fee == 30 * GWEI and fees.tip <= fees.max_fee


def test_a_chain_without_base_fee_gets_a_gas_price() -> None:
    fees = first_offer(None, 0, FeePolicy(max_fee=5 * GWEI), gas_price=7 * GWEI)
    assert fees.as_tx() == {"gasPrice": 5 * GWEI}
    assert Fees.of({"gasPrice": 3}) == Fees(3, 0, legacy=True)


def test_a_replacement_outbids_by_more_than_nodes_require() -> None:
    current = Fees(22 * GWEI, 2 * GWEI)
    better = replacement(current, 10 * GWEI, 2 * GWEI, FeePolicy())
    assert better is not None
    assert better.max_fee * 10 >= current.max_fee * 11 and better.tip * 10 >= current.tip * 11


def test_a_replacement_follows_a_base_fee_spike() -> None:
    better = replacement(Fees(22 * GWEI, 2 * GWEI), 80 * GWEI, 2 * GWEI, FeePolicy())
    assert better is not None and better.max_fee >= 2 * 80 * GWEI + better.tip


def test_no_replacement_when_the_cap_leaves_no_room() -> None:
    policy = FeePolicy(max_fee=30 * GWEI)
    assert replacement(Fees(30 * GWEI, 2 * GWEI), 80 * GWEI, 2 * GWEI, policy) is None
    # 10 % above 28 is 30.8: the cap of 30 cannot make a replacement a node accepts
    assert replacement(Fees(28 * GWEI, 2 * GWEI), 80 * GWEI, 2 * GWEI, policy) is None
    capped = replacement(Fees(20 * GWEI, 2 * GWEI), 80 * GWEI, 2 * GWEI, policy)
    assert capped is not None and capped.max_fee == 30 * GWEI


def test_policy_rejects_what_nodes_refuse() -> None:
    with pytest.raises(ValueError, match="10 %"):
        FeePolicy(bump=0.05)
    with pytest.raises(ValueError, match="positive"):
        FeePolicy(max_fee=0)


def test_amounts_read_in_words() -> None:
    assert format_wei(15 * 10**15) == "0.015 ETH"
    assert format_wei(3 * GWEI) == "3 gwei"


@given(
    base=st.integers(1, 10**12),
    tip=st.integers(0, 10**11),
    cap=st.one_of(st.none(), st.integers(1, 10**13)),
    spikes=st.lists(st.integers(1, 10**13), max_size=12),
)
def test_every_version_stays_under_the_cap_and_each_outbids_the_last(
    base: int, tip: int, cap: int | None, spikes: list[int]
) -> None:
    policy = FeePolicy(max_fee=cap)
    fees = first_offer(base, tip, policy)
    versions = [fees]
    for spike in spikes:
        better = replacement(versions[-1], spike, tip, policy)
        if better is not None:
            versions.append(better)
    for v in versions:
        assert v.tip <= v.max_fee
        assert cap is None or v.max_fee <= cap
    for old, new in zip(versions, versions[1:], strict=False):
        assert new.max_fee * 10 >= old.max_fee * 11 and new.tip * 10 >= old.tip * 11
