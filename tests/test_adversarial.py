"""Adversarial tests of the campaign contracts on Ape's in-process chain (issue 7).

What an attacker can try against the contracts, and what must hold afterwards:

* a sybil flood: many accounts pledging then withdrawing, round after round; and what the
  deposit costs an attacker who fires a reveal with sybils, by beneficiary setting;
* races against the deadline, several transactions in the block at deadline - 1 and at the
  deadline;
* front-running the threshold-crossing pledge (two pledgers for the last spot, a copied
  pledge, a withdrawal or a cancel in the same block, a pledge and withdrawal in one
  transaction) and a replayed envelope;
* keeper releases before the reveal, from a keeper of another campaign, with forged keeper
  sets, relayed through a contract, or replayed by a stranger;
* malformed and oversized calldata, ether where none belongs, and ether forced in.

Unit tests of each refusal live in ``test_campaign.py``; re-entrancy and reverting
receivers in ``test_reentrancy.py``; these tests do not repeat them.

Same-block races: with auto-mining off, EthereumTester queues transactions and mines them
in one block, in the order sent, when auto-mining is switched back on (:func:`one_block`).
Each queued transaction carries its gas limit (an estimate against the state before the
block would say nothing). EthereumTester checks nonces against the last mined block, so one
account sends at most one transaction per block here.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from ape_test.accounts import TestAccount
from conftest import (
    CANCELLED,
    EXPIRED,
    LIVE,
    OPEN,
    REVEALED,
    WITHDRAWN,
    envelope,
    make_keeper_keys,
    member_key,
    pledge_digest,
    reverts_exactly,
)
from eth_abi import encode as abi_encode
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak
from hexbytes import HexBytes

D = 10**15  # the deposit used throughout: 0.001 ether
GAS = 1_000_000  # gas limit of queued and raw transactions
ZERO = "0x" + "00" * 20


# ─── Helpers ─────────────────────────────────────────────────────────────────────────


@contextmanager
def one_block(chain: Any, timestamp: int | None = None) -> Iterator[list[Any]]:
    """Mines every transaction sent inside in one block, in the order sent, at ``timestamp``.

    Append each transaction's (pending) receipt to the list yielded; after the block it holds
    the mined receipts, failed ones included.
    """
    sent: list[Any] = []
    if timestamp is not None:
        chain.pending_timestamp = timestamp
    chain.provider.auto_mine = False
    try:
        yield sent
    finally:
        chain.provider.auto_mine = True  # mines the queued transactions, in one block
    sent[:] = [chain.provider.get_receipt(r.txn_hash) for r in sent]
    assert len({r.block_number for r in sent}) <= 1, "the transactions did not share a block"


def block_timestamp(chain: Any, number: int) -> int:
    return int(chain.provider.web3.eth.get_block(number)["timestamp"])


def books(campaign: Any, people: list[Any]) -> dict[str, Any]:
    """Everything the campaign records, for before/after comparisons."""
    return {
        "count": campaign.pledgeCount(),
        "total": campaign.totalPledges(),
        "state": campaign.state(),
        "reveal_block": campaign.revealBlock(),
        "balance": campaign.balance,
        "claimable": campaign.claimableDeposits(),
        "pledges": {p.address: tuple(campaign.pledgeOf(p)) for p in people},
        "refundable": {p.address: campaign.refundableOf(p) for p in people},
    }


def send_raw(sender: Any, to: Any, data: bytes, value: int = 0) -> Any:
    """A mined transaction carrying exactly ``data``: no estimate, no revert check."""
    return sender.transfer(to, value, data=data, gas_limit=GAS, raise_on_revert=False)


def revert_data(chain: Any, sender: Any, to: Any, data: bytes, value: int = 0) -> bytes | None:
    """The revert data of ``data`` sent as an ``eth_call``; None if the call succeeds.

    EthereumTester reports the revert data only in its message (``execution reverted: b'..'``).
    """
    call = {"from": sender.address, "to": str(to), "data": HexBytes(data), "value": value}
    try:
        chain.provider.web3.eth.call(call)
    except TransactionFailed as exc:
        text = str(exc.args[0]).removeprefix("execution reverted: ")
        return bytes(ast.literal_eval(text))
    return None


def error_data(contract: Any, name: str, *args: Any) -> bytes:
    """The ABI encoding of custom error ``name(args)`` of ``contract``."""
    types = [i.canonical_type for i in getattr(contract, name).abi.inputs]
    return keccak(text=f"{name}({','.join(types)})")[:4] + abi_encode(types, list(args))


def events_since(event: Any, chain: Any, since: int) -> list[Any]:
    """``event``'s logs from block ``since`` to the head (EthereumTester scans every block
    asked for, so tests ask from the campaign's creation only)."""
    return list(event.range(since, chain.blocks.head.number + 1))


def count_from_events(campaign: Any, chain: Any, since: int) -> int:
    """The live count recomputed from the events alone, as anyone can."""
    return len(events_since(campaign.Pledged, chain, since)) - len(events_since(campaign.Withdrawn, chain, since))


def calldata_gas(data: bytes) -> int:
    return sum(4 if b == 0 else 16 for b in data)


def proxy_copy_gas(size: int) -> int:
    """What the EIP-1167 clone spends copying ``size`` bytes of calldata into memory before
    it delegates: 3 gas a word to copy, and the memory (3 a word plus words² / 512)."""
    words = -(-size // 32)
    return 3 * words + 3 * words + words * words // 512


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


SEL_PLEDGE = keccak(text="pledge(bytes,bytes)")[:4]
SEL_WITHDRAW = keccak(text="withdraw()")[:4]
SEL_RELEASE = keccak(text="release(address[],uint256,bytes)")[:4]


def pledge_calldata(env: bytes, mk: bytes) -> bytes:
    return SEL_PLEDGE + abi_encode(["bytes", "bytes"], [env, mk])


def release_calldata(keeper_set: list[str], index: int, data: bytes) -> bytes:
    return SEL_RELEASE + abi_encode(["address[]", "uint256", "bytes"], [keeper_set, index, data])


def keeper_set(keys: list[Any]) -> list[str]:
    return [k.public_key.to_checksum_address() for k in keys]


@pytest.fixture
def fund(deployer: Any) -> Callable[[Any, int], None]:
    def _fund(who: Any, amount: int = 10**18) -> None:
        deployer.transfer(who, amount)

    return _fund


@pytest.fixture
def new_accounts(accounts: Any, fund: Callable[[Any, int], None]) -> Callable[[int], list[Any]]:
    """``n`` fresh funded accounts (the sybils)."""

    def _make(n: int) -> list[Any]:
        out = [accounts.generate_test_account() for _ in range(n)]
        for a in out:
            fund(a, 10**18)
        return out

    return _make


# ─── Sybil flood ─────────────────────────────────────────────────────────────────────

FLOOD = 24
ROUNDS = 3


def test_sybil_flood_keeps_the_books_exact(make_campaign, new_accounts, organizer, chain, record_property):
    """FLOOD accounts pledge then withdraw, ROUNDS times: the count follows every step, the
    threshold is never reached, and every deposit is owed back and held, never more."""
    sybils = new_accounts(FLOOD)
    campaign = make_campaign(threshold=FLOOD + 2, deposit=D)  # creator + the whole flood = N - 1
    since = chain.blocks.head.number
    start = {s.address: s.balance for s in sybils}
    fees = dict.fromkeys(start, 0)
    peak_locked = 0
    for rnd in range(ROUNDS):
        for i, s in enumerate(sybils):
            # After the first round the held deposit is reused: a sybil never pays twice.
            r = campaign.pledge(envelope(200), member_key(), sender=s, value=D if rnd == 0 else 0)
            fees[s.address] += r.total_fees_paid
            [ev] = campaign.Pledged.from_receipt(r)
            assert (ev.index, ev.count) == (1 + rnd * FLOOD + i, 2 + i)  # the count follows every step
            assert not campaign.ThresholdReached.from_receipt(r)
        assert campaign.pledgeCount() == FLOOD + 1 and campaign.state() == OPEN
        # The price of the flood: one deposit per sybil, locked while it is pledged.
        peak_locked = campaign.balance - D
        assert peak_locked == FLOOD * D
        for i, s in enumerate(sybils):
            r = campaign.withdraw(sender=s)
            fees[s.address] += r.total_fees_paid
            assert campaign.Withdrawn.from_receipt(r)[0].count == FLOOD - i
        assert campaign.pledgeCount() == 1 and campaign.totalPledges() == 1 + (rnd + 1) * FLOOD
        # Deposits held == deposits owed: each sybil's (refundable) and the creator's (live).
        assert campaign.balance == sum(campaign.refundableOf(s) for s in sybils) + D

    assert campaign.state() == OPEN and campaign.revealBlock() == 0
    assert count_from_events(campaign, chain, since) == campaign.pledgeCount() == 1
    assert not events_since(campaign.ThresholdReached, chain, since)
    assert campaign.pledgeOf(organizer)[:3] == (0, LIVE, True)
    for s in sybils:
        assert campaign.pledgeOf(s)[1:3] == (WITHDRAWN, True)
        fees[s.address] += campaign.refund(sender=s).total_fees_paid
        assert s.balance == start[s.address] - fees[s.address]  # all back, minus gas
    assert campaign.balance == D  # only the creator's, for its live pledge

    gas = sum(fees.values())
    record_property("sybil_flood_size", FLOOD)
    record_property("sybil_flood_locked_wei", peak_locked)
    record_property("sybil_flood_fees_wei_per_round", gas // ROUNDS)


@pytest.mark.parametrize("beneficiary_kind", ["none", "third_party", "organizer"])
def test_what_a_sybil_reveal_costs_the_attacker(
    make_campaign, new_accounts, pledgers, organizer, beneficiary, beneficiary_kind
):
    """An attacker fires the reveal early with SYBILS fake pledges (a trap for the two honest
    pledgers). What the deposits cost it depends only on where they go after the reveal:
    back to pledgers (nothing), to a third party (one deposit per sybil), or to the organizer,
    which, if it runs the sybils itself, loses nothing and takes the honest deposits too."""
    sybils = new_accounts(3)
    honest = pledgers[:2]
    to = {"none": ZERO, "third_party": beneficiary.address, "organizer": organizer.address}[beneficiary_kind]
    campaign = make_campaign(threshold=6, deposit=D, beneficiary=to)
    for who in honest:
        campaign.pledge(envelope(), member_key(), sender=who, value=D)
    for s in sybils:
        campaign.pledge(envelope(), member_key(), sender=s, value=D)
    assert campaign.state() == REVEALED and campaign.pledgeCount() == 6

    got_back = 0
    for s in sybils:
        owed = campaign.refundableOf(s)
        if owed:
            campaign.refund(sender=s)
        got_back += owed
    taken = campaign.claimableDeposits()
    if taken:
        claimer = beneficiary if beneficiary_kind == "third_party" else organizer
        campaign.claimDeposits(sender=claimer)
    sybil_cost = len(sybils) * D - got_back
    if beneficiary_kind == "none":
        assert (sybil_cost, taken) == (0, 0)
        for who in [organizer, *honest]:
            campaign.refund(sender=who)
    elif beneficiary_kind == "third_party":
        assert (sybil_cost, taken) == (3 * D, 6 * D)
    else:
        # The organizer-attacker pays 3 D for its sybils and takes all 6 deposits back:
        # a net gain of the two honest pledgers' deposits.
        assert (sybil_cost, taken) == (3 * D, 6 * D)
        assert taken - sybil_cost - D == 2 * D
    assert campaign.balance == 0


# ─── Racing the deadline ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize("offset", [-1, 0], ids=["deadline-1s", "deadline"])
def test_crowded_block_at_the_deadline(make_campaign, pledgers, organizer, chain, offset):
    """Four pledges share one block; the second would cross N = 3. In the block at
    deadline - 1 all land and the second reveals; in the block at the deadline all fail and
    nothing is revealed."""
    campaign = make_campaign(threshold=3, deposit=D)
    racers = pledgers[:4]
    before = books(campaign, [organizer, *racers])
    balances = {p.address: p.balance for p in racers}
    with one_block(chain, campaign.deadline() + offset) as txs:
        for who in racers:
            txs.append(campaign.pledge(envelope(), member_key(), sender=who, value=D, gas_limit=GAS))
    assert block_timestamp(chain, txs[0].block_number) == campaign.deadline() + offset

    if offset < 0:
        assert [r.failed for r in txs] == [False] * 4
        counts = [campaign.Pledged.from_receipt(r)[0].count for r in txs]
        assert counts == [2, 3, 4, 5]
        reached = [campaign.ThresholdReached.from_receipt(r) for r in txs]
        assert [len(x) for x in reached] == [0, 1, 0, 0]
        assert (reached[1][0].count, reached[1][0].lastIndex) == (3, 2)
        assert campaign.revealBlock() == txs[1].block_number
        chain.mine()  # the deadline passes: the reveal stays
        assert campaign.state() == REVEALED and campaign.pledgeCount() == 5
        assert campaign.balance == 5 * D
    else:
        assert [r.failed for r in txs] == [True] * 4
        # Only the clock moved: the campaign expired below N, the creator's deposit is refundable.
        after = books(campaign, [organizer, *racers])
        assert after == {
            **before,
            "state": EXPIRED,
            "refundable": {**before["refundable"], organizer.address: D},
        }
        for who, r in zip(racers, txs, strict=True):
            assert who.balance == balances[who.address] - r.total_fees_paid
        with reverts_exactly(campaign, "CampaignWrongState", state=EXPIRED):
            campaign.pledge(envelope(), member_key(), sender=racers[1], value=D)
        assert campaign.refundableOf(organizer) == D  # below N at the deadline: refunds only


@pytest.mark.parametrize("offset", [-1, 0], ids=["deadline-1s", "deadline"])
def test_withdraw_racing_the_deadline_loses_nothing(make_campaign, pledger, chain, offset):
    """A withdrawal in the last second lands; at the deadline it is refused, but the
    campaign has expired below N, so the deposit comes back all the same."""
    campaign = make_campaign(deposit=D)
    campaign.pledge(envelope(), member_key(), sender=pledger, value=D)
    with one_block(chain, campaign.deadline() + offset) as txs:
        txs.append(campaign.withdraw(sender=pledger, gas_limit=GAS))
    [r] = txs
    assert r.failed is (offset == 0)
    assert campaign.pledgeOf(pledger)[1] == (LIVE if offset == 0 else WITHDRAWN)
    chain.mine()
    assert campaign.state() == EXPIRED and campaign.revealBlock() == 0
    assert campaign.refundableOf(pledger) == D
    campaign.refund(sender=pledger)
    assert campaign.refundableOf(pledger) == 0


# ─── Front-running the threshold-crossing pledge ─────────────────────────────────────


@pytest.mark.parametrize("first", [0, 1], ids=["a-first", "b-first"])
def test_two_pledgers_race_for_the_last_spot(make_campaign, pledgers, chain, first):
    """Both land in one block: the first in block order fires the reveal, the second is
    counted after it. Nothing is lost, and the reveal fires exactly once."""
    campaign = make_campaign(threshold=3, deposit=D)
    since = chain.blocks.head.number
    campaign.pledge(envelope(), member_key(), sender=pledgers[2], value=D)  # count 2: one spot left
    a, b = pledgers[0], pledgers[1]
    racers = [a, b] if first == 0 else [b, a]
    with one_block(chain) as txs:
        for who in racers:
            txs.append(campaign.pledge(envelope(), member_key(), sender=who, value=D, gas_limit=GAS))
    assert not any(r.failed for r in txs)
    [p0], [p1] = (campaign.Pledged.from_receipt(r) for r in txs)
    assert (p0.pledger, p0.index, p0.count) == (racers[0].address, 2, 3)
    assert (p1.pledger, p1.index, p1.count) == (racers[1].address, 3, 4)
    [reached] = campaign.ThresholdReached.from_receipt(txs[0])
    assert (reached.count, reached.lastIndex) == (3, 2)
    assert not campaign.ThresholdReached.from_receipt(txs[1])
    assert campaign.revealBlock() == txs[0].block_number
    assert len(events_since(campaign.ThresholdReached, chain, since)) == 1
    assert campaign.pledgeOf(a)[1] == campaign.pledgeOf(b)[1] == LIVE
    assert campaign.pledgeCount() == count_from_events(campaign, chain, since) == 4
    assert campaign.balance == 4 * D


def test_copied_pledge_front_running_the_victim_is_just_another_pledge(make_campaign, pledgers, stranger, chain):
    """A front-runner copies a pending pledge's calldata (envelope and member key) and gets in
    first. Its copy counts as its own pledge and pays its own deposit; the victim's pledge
    still lands, after the reveal the copy fired. (What the copy reveals: see
    ``test_replayed_envelope_of_a_withdrawn_pledge_is_never_released``.)"""
    campaign = make_campaign(threshold=3, deposit=D)
    campaign.pledge(envelope(), member_key(), sender=pledgers[2], value=D)
    victim = pledgers[0]
    data = pledge_calldata(envelope(), member_key())
    with one_block(chain) as txs:
        txs.append(stranger.transfer(campaign, D, data=data, gas_limit=GAS))
        txs.append(victim.transfer(campaign, D, data=data, gas_limit=GAS))
    copy, original = txs
    assert not copy.failed and not original.failed
    assert campaign.ThresholdReached.from_receipt(copy)
    # The same sealed bytes and member key; the digests differ only by the count in the log.
    assert campaign.Pledged.from_receipt(copy)[0].envelope == campaign.Pledged.from_receipt(original)[0].envelope
    assert campaign.pledgeCount() == 4 and campaign.balance == 4 * D


@pytest.mark.parametrize("withdraw_first", [False, True], ids=["pledge-first", "withdraw-first"])
def test_withdraw_racing_the_crossing_pledge(make_campaign, pledgers, chain, withdraw_first):
    """N = 4 with 3 live pledges; in one block, one of them withdraws and a newcomer pledges.
    Pledge first: the reveal fires and the withdrawal is refused (the leaver is a member).
    Withdraw first: the count stays at 3 and nothing is revealed. Either way the count is the
    live pledges, and the reveal happened iff the live count reached N."""
    campaign = make_campaign(threshold=4, deposit=D)
    since = chain.blocks.head.number
    leaver, newcomer = pledgers[0], pledgers[1]
    for who in (leaver, pledgers[2]):
        campaign.pledge(envelope(), member_key(), sender=who, value=D)
    order = ["leaving", "crossing"] if withdraw_first else ["crossing", "leaving"]
    send = {
        "crossing": lambda: campaign.pledge(envelope(), member_key(), sender=newcomer, value=D, gas_limit=GAS),
        "leaving": lambda: campaign.withdraw(sender=leaver, gas_limit=GAS),
    }
    with one_block(chain) as txs:
        txs.extend(send[kind]() for kind in order)  # block order is sending order
    by_kind = dict(zip(order, txs, strict=True))
    assert not by_kind["crossing"].failed
    live = sum(campaign.pledgeOf(p)[1] == LIVE for p in [leaver, newcomer, pledgers[2]]) + 1
    assert campaign.pledgeCount() == live == count_from_events(campaign, chain, since)
    if withdraw_first:
        assert not by_kind["leaving"].failed
        assert (live, campaign.state(), campaign.revealBlock()) == (3, OPEN, 0)
        assert not campaign.ThresholdReached.from_receipt(by_kind["crossing"])
        assert campaign.refundableOf(leaver) == D
    else:
        assert by_kind["leaving"].failed
        assert (live, campaign.state()) == (4, REVEALED)
        assert campaign.ThresholdReached.from_receipt(by_kind["crossing"])
        assert campaign.pledgeOf(leaver)[1] == LIVE  # too late: a member now
        assert campaign.refundableOf(leaver) == D  # no beneficiary: deposits go back after the reveal


@pytest.mark.parametrize("cancel_first", [False, True], ids=["pledge-first", "cancel-first"])
def test_cancel_racing_the_crossing_pledge(make_campaign, pledgers, organizer, chain, cancel_first):
    """The organizer tries to call the campaign off as the crossing pledge arrives: whichever
    is first in the block wins, and the other is refused."""
    campaign = make_campaign(threshold=2, deposit=D)
    send = [
        lambda: campaign.pledge(envelope(), member_key(), sender=pledgers[0], value=D, gas_limit=GAS),
        lambda: campaign.cancel(sender=organizer, gas_limit=GAS),
    ]
    with one_block(chain) as txs:
        txs.extend(tx() for tx in (send[::-1] if cancel_first else send))
    assert [r.failed for r in txs] == [False, True]
    if cancel_first:
        assert (campaign.state(), campaign.pledgeCount(), campaign.revealBlock()) == (CANCELLED, 1, 0)
        assert campaign.balance == D and campaign.refundableOf(organizer) == D
    else:
        assert (campaign.state(), campaign.pledgeCount()) == (REVEALED, 2)
        assert campaign.balance == 2 * D


def test_flash_pledge_cannot_touch_the_count(make_campaign, project, stranger, chain):
    """A contract pledges and withdraws in one transaction. Below N the count is back where
    it was by the end of the transaction; at N the reveal fires, the withdrawal is refused,
    and the attacker either reverts everything or stays a member: it cannot fire the reveal
    and leave."""
    campaign = make_campaign(threshold=3, deposit=D)
    attacker = project.FlashPledger.deploy(sender=stranger, value=10 * D)

    r = attacker.flash(campaign, envelope(), member_key(), D, False, sender=stranger)
    assert [e.count for e in campaign.Pledged.from_receipt(r)] == [2]
    assert [e.count for e in campaign.Withdrawn.from_receipt(r)] == [1]
    assert campaign.pledgeCount() == 1 and campaign.state() == OPEN
    assert campaign.refundableOf(attacker) == D and campaign.balance == 2 * D

    campaign.pledge(envelope(), member_key(), sender=stranger, value=D)  # count 2: the next one crosses
    before = books(campaign, [attacker, stranger])
    with reverts_exactly(campaign, "CampaignWrongState", state=REVEALED):
        attacker.flash(campaign, envelope(), member_key(), 0, False, sender=stranger)
    assert books(campaign, [attacker, stranger]) == before

    r = attacker.flash(campaign, envelope(), member_key(), 0, True, sender=stranger)
    [refused] = attacker.WithdrawRefused.from_receipt(r)
    assert bytes(refused.reason) == error_data(campaign, "CampaignWrongState", REVEALED)
    assert campaign.ThresholdReached.from_receipt(r)
    assert campaign.pledgeOf(attacker)[1] == LIVE and campaign.state() == REVEALED
    assert campaign.pledgeCount() == 3


def test_copied_create_campaign_gets_another_address(factory, organizer, stranger, make_config, project, chain):
    """A front-runner copying a createCampaign transaction cannot take the creator's address:
    the salt is scoped to the sender. Both campaigns exist; the creator's is where it
    predicted, with the creator as pledge 0."""
    salt = b"\x11" * 32
    predicted = factory.predictCampaign(organizer, salt)
    config = make_config()
    env, mk = envelope(), member_key()
    with one_block(chain) as txs:
        txs.append(factory.createCampaign(config, salt, env, mk, sender=stranger, gas_limit=2 * GAS))
        txs.append(factory.createCampaign(config, salt, env, mk, sender=organizer, gas_limit=2 * GAS))
    assert not any(r.failed for r in txs)
    copied, original = (factory.CampaignCreated.from_receipt(r)[0] for r in txs)
    assert original.campaign == predicted != copied.campaign
    assert project.Campaign.at(predicted).creator() == organizer.address
    assert project.Campaign.at(copied.campaign).creator() == stranger.address


# ─── A replayed envelope (P4) ────────────────────────────────────────────────────────


def test_replayed_envelope_of_a_withdrawn_pledge_is_never_released(
    make_campaign, factory, organizer, pledgers, stranger, keeper_keys, keeper_accounts, chain, tmp_path
):
    """Real sealing, the real keeper and the real roster reader: the victim pledges and
    withdraws; an attacker replays the victim's envelope and member key from its own
    address; the reveal comes. No keeper publishes a share (or a grant) of the withdrawn
    pledge or of the replay, and nobody's roster holds the victim."""
    from web3 import Web3

    from spartacus.chain import CampaignClient, ChainClient
    from spartacus.envelope import PledgeContent, seal
    from spartacus.keeper import Keeper
    from spartacus.keys import KeyPair
    from spartacus.release import published_by
    from spartacus.roster import build_roster

    client = ChainClient(Web3(chain.provider.web3.provider))
    campaign = make_campaign(threshold=3)
    reader = CampaignClient(client, campaign.address)
    ctx = reader.context()

    def pledge(who: Any, name: str) -> KeyPair:
        key = KeyPair.generate()
        content = PledgeContent(name, {"email": f"{name.lower()}@example.org"})
        env = seal(content, ctx, key, pledger=who.address)
        campaign.pledge(env, key.compressed, sender=who)
        return key

    victim_key = pledge(pledgers[0], "Victim")
    campaign.withdraw(sender=pledgers[0])
    [logged] = [p for p in reader.pledges() if p.pledger == pledgers[0].address]
    campaign.pledge(logged.envelope, logged.member_key, sender=stranger)  # the replay
    member_key_ = pledge(pledgers[1], "Member")
    assert campaign.state() == REVEALED
    by_index = {p.pledger: p.index for p in reader.pledges()}
    victim, replay, member = by_index[pledgers[0].address], by_index[stranger.address], by_index[pledgers[1].address]

    for i, key in enumerate(keeper_keys[:2]):
        keeper = Keeper(client, KeyPair.from_secret(key.to_bytes()), factory.address, tmp_path / f"k{i}.db")
        report = keeper.run_once()
        keeper.close()
        assert replay in {index for index, _ in report.skipped[campaign.address]}  # refused, and said so
        done = published_by(reader.releases(), i, keeper.key.address)
        assert member in done.shared and member in done.granted[0]
        assert victim not in done.shared and replay not in done.shared
        assert victim not in done.granted[0] | done.granted[1] and replay not in done.granted[0] | done.granted[1]
    roster = build_roster(ctx, reader.pledges(), reader.releases(), member_key_, organizer.address)
    assert victim_key.compressed == logged.member_key
    names = [m.name for m in roster.members]
    assert "Member" in names and "Victim" not in names
    assert replay in {s.index for s in roster.skipped}


# ─── Keeper releases ─────────────────────────────────────────────────────────────────


@pytest.fixture(scope="session")
def other_keeper_keys() -> list[Any]:
    return make_keeper_keys(3, seed=5)


@pytest.fixture(scope="session")
def other_keeper_accounts(other_keeper_keys: list[Any], accounts: Any) -> list[Any]:
    """Funded accounts for a second, unrelated keeper set."""
    out = []
    for i, key in enumerate(other_keeper_keys):
        acct = TestAccount(index=200 + i, address_str=key.public_key.to_checksum_address(), private_key=key.to_hex())
        accounts[0].transfer(acct, 10**19)
        out.append(acct)
    return out


def test_keeper_of_another_campaign_cannot_release(
    make_campaign, pledgers, keeper_keys, keeper_accounts, other_keeper_keys, other_keeper_accounts
):
    ours = make_campaign(threshold=2)
    theirs = make_campaign(threshold=2, keepers=[k.public_key.to_bytes() for k in other_keeper_keys])
    for c in (ours, theirs):
        c.pledge(envelope(), member_key(), sender=pledgers[0])
        assert c.state() == REVEALED
    kset, other_set = keeper_set(keeper_keys), keeper_set(other_keeper_keys)
    intruder = other_keeper_accounts[1]
    # Its own keeper set, which it may use on its own campaign, is not ours.
    with reverts_exactly(ours, "CampaignKeeperSetMismatch"):
        ours.release(other_set, 1, b"\x01", sender=intruder)
    # Our keeper set: it sits in no slot of it.
    for i in range(3):
        with reverts_exactly(ours, "CampaignNotKeeper", caller=intruder.address, keeperIndex=i):
            ours.release(kset, i, b"\x01", sender=intruder)
    # Each keeper may release on its own campaign only.
    theirs.release(other_set, 1, b"\x01", sender=intruder)
    ours.release(kset, 1, b"\x01", sender=keeper_accounts[1])
    with reverts_exactly(theirs, "CampaignNotKeeper", caller=keeper_accounts[1].address, keeperIndex=1):
        theirs.release(other_set, 1, b"\x01", sender=keeper_accounts[1])


FORGED_SETS: dict[str, Callable[[list[str], str], tuple[list[str], int]]] = {
    "attacker-in-slot-1": lambda k, a: ([k[0], a, k[2]], 1),
    "attacker-in-slot-2": lambda k, a: ([k[0], k[1], a], 2),
    "attacker-only": lambda k, a: ([a], 0),
    "attacker-appended": lambda k, a: ([*k, a], 3),
    "attacker-prepended": lambda k, a: ([a, *k], 0),
    "reordered": lambda k, a: ([k[1], k[0], k[2]], 0),
    "duplicated": lambda k, a: ([k[0], k[0], k[1], k[2]], 0),
    "empty": lambda k, a: ([], 0),
}


@pytest.mark.parametrize("forgery", sorted(FORGED_SETS))
def test_forged_keeper_sets_are_refused(
    make_campaign, pledgers, keeper_keys, keeper_accounts, stranger, chain, forgery
):
    """A keeper set is checked against the campaign's hash before anything else: no forged
    set lets the attacker (or a keeper in another slot) release."""
    campaign = make_campaign(threshold=2)
    campaign.pledge(envelope(), member_key(), sender=pledgers[0])
    forged, index = FORGED_SETS[forgery](keeper_set(keeper_keys), stranger.address)
    senders = [stranger, *keeper_accounts] if stranger.address not in forged else [stranger]
    for who in senders:
        with reverts_exactly(campaign, "CampaignKeeperSetMismatch"):
            campaign.release(forged, index, b"\x01", sender=who)
    assert not events_since(campaign.Released, chain, campaign.revealBlock())


def test_keeper_cannot_release_into_an_open_campaign_with_the_same_keepers(
    make_campaign, pledgers, keeper_keys, keeper_accounts
):
    """Keepers shared by two campaigns: the reveal of one opens nothing on the other."""
    revealed, still_open = make_campaign(threshold=2), make_campaign(threshold=3)
    revealed.pledge(envelope(), member_key(), sender=pledgers[0])
    still_open.pledge(envelope(), member_key(), sender=pledgers[0])
    kset = keeper_set(keeper_keys)
    revealed.release(kset, 0, b"\x01" * 64, sender=keeper_accounts[0])
    for i, k in enumerate(keeper_accounts):
        with reverts_exactly(still_open, "CampaignWrongState", state=OPEN):
            still_open.release(kset, i, b"\x01" * 64, sender=k)


@pytest.mark.parametrize("release_first", [True, False], ids=["release-first", "pledge-first"])
def test_release_in_the_block_of_the_reveal(
    make_campaign, pledgers, keeper_keys, keeper_accounts, chain, release_first
):
    """A keeper's release ordered before the crossing pledge, in the same block, is refused;
    ordered after it, it lands."""
    campaign = make_campaign(threshold=2)
    kset = keeper_set(keeper_keys)
    send = [
        lambda: campaign.release(kset, 0, b"\x05" * 64, sender=keeper_accounts[0], gas_limit=GAS),
        lambda: campaign.pledge(envelope(), member_key(), sender=pledgers[0], gas_limit=GAS),
    ]
    with one_block(chain) as txs:
        txs.extend(tx() for tx in (send if release_first else send[::-1]))
    release_receipt = txs[0] if release_first else txs[1]
    assert campaign.state() == REVEALED
    assert release_receipt.failed is release_first
    assert len(campaign.Released.from_receipt(release_receipt)) == (0 if release_first else 1)


def test_release_relayed_or_replayed_by_a_non_keeper_is_refused(
    make_campaign, pledgers, keeper_keys, keeper_accounts, stranger, project, chain
):
    """The release must come from the keeper's own address: a contract relaying it (even one
    the keeper deployed) and a stranger replaying a keeper's exact calldata are refused."""
    campaign = make_campaign(threshold=2)
    campaign.pledge(envelope(), member_key(), sender=pledgers[0])
    kset = keeper_set(keeper_keys)
    data = release_calldata(kset, 0, b"\x07" * 100)

    relay = project.FlashPledger.deploy(sender=keeper_accounts[0])
    expected = error_data(campaign, "CampaignNotKeeper", relay.address, 0)
    with reverts_exactly(relay, "FlashPledgerCallFailed", index=0, reason=expected):
        relay.batch([campaign.address], [data], [0], sender=keeper_accounts[0])

    r = keeper_accounts[0].transfer(campaign, 0, data=data)  # the keeper's own, accepted
    assert campaign.Released.from_receipt(r)[0].keeper == keeper_accounts[0].address
    replay = send_raw(stranger, campaign, data)
    assert replay.failed
    assert revert_data(chain, stranger, campaign, data) == error_data(
        campaign, "CampaignNotKeeper", stranger.address, 0
    )


# ─── Malformed and oversized calldata ────────────────────────────────────────────────

ENV = b"\x01" + bytes(range(1, 100))  # 100 bytes, no zero byte after the first
MK = b"\x02" + b"\x5a" * 32
CANONICAL = pledge_calldata(ENV, MK)  # selector | 0x40 | 0xe0 | 100 | env (128) | 33 | mk (64)
ENV_OFFSET_AT, ENV_LENGTH_AT, MK_OFFSET_AT, MK_LENGTH_AT = 4, 4 + 64, 4 + 32, 4 + 0xE0


def patch(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + word(value) + data[at + 32 :]


MALFORMED_PLEDGES: dict[str, bytes] = {
    "short-selector": SEL_PLEDGE[:3],
    "selector-only": SEL_PLEDGE,
    "head-only": CANONICAL[: 4 + 64],
    "cut-inside-envelope": CANONICAL[: ENV_LENGTH_AT + 32 + 50],
    "member-key-short-by-a-byte": CANONICAL[: MK_LENGTH_AT + 32 + 32],
    "envelope-offset-at-the-end": patch(CANONICAL, ENV_OFFSET_AT, len(CANONICAL) - 4),
    "envelope-offset-2^64": patch(CANONICAL, ENV_OFFSET_AT, 2**64),
    "envelope-offset-max": patch(CANONICAL, ENV_OFFSET_AT, 2**256 - 1),
    "envelope-offset-misaligned": patch(CANONICAL, ENV_OFFSET_AT, 0x41),
    "member-key-offset-past-the-end": patch(CANONICAL, MK_OFFSET_AT, 0x1000),
    "envelope-length-one-past-the-end": patch(CANONICAL, ENV_LENGTH_AT, len(CANONICAL) - ENV_LENGTH_AT - 32 + 1),
    "envelope-length-2^32": patch(CANONICAL, ENV_LENGTH_AT, 2**32),
    "member-key-length-max": patch(CANONICAL, MK_LENGTH_AT, 2**256 - 1),
    "member-key-length-one-past-the-end": patch(CANONICAL, MK_LENGTH_AT, 65),
    "garbage-120kb": SEL_PLEDGE + bytes([0xAB]) * 120_000,
}


@pytest.mark.parametrize("case", sorted(MALFORMED_PLEDGES))
def test_malformed_pledge_calldata_reverts_and_changes_nothing(make_campaign, pledger, organizer, chain, case):
    """The ABI decoder refuses each (empty revert data: no custom error is reached), on-chain
    too, and the campaign's books are untouched; the sender pays only gas."""
    campaign = make_campaign(deposit=D)
    data = MALFORMED_PLEDGES[case]
    before, balance = books(campaign, [organizer, pledger]), pledger.balance
    assert revert_data(chain, pledger, campaign, data, D) == b""
    r = send_raw(pledger, campaign, data, D)
    assert r.failed and not r.logs
    assert books(campaign, [organizer, pledger]) == before
    assert pledger.balance == balance - r.total_fees_paid


@pytest.mark.parametrize(
    "case,extra",
    [("1-byte", b"\x01"), ("31-bytes", b"\xff" * 31), ("32-bytes", bytes(32)), ("a-fake-argument", word(0x40) * 3)],
    ids=["1-byte", "31-bytes", "32-zero-bytes", "a-fake-argument"],
)
def test_trailing_bytes_change_nothing(make_campaign, pledgers, case, extra):
    """Bytes after the last argument are ignored: the pledge is the same pledge, and costs
    exactly their calldata gas more (and the clone's copy of them)."""
    # Two campaigns in the same state, the same pledger: the only difference is the calldata.
    one, two = make_campaign(deposit=D, threshold=10), make_campaign(deposit=D, threshold=10)
    plain = pledgers[0].transfer(one, D, data=CANONICAL)
    padded = pledgers[0].transfer(two, D, data=CANONICAL + extra)
    a, b = one.Pledged.from_receipt(plain)[0], two.Pledged.from_receipt(padded)[0]
    assert (bytes(a.envelope), bytes(a.memberKey)) == (bytes(b.envelope), bytes(b.memberKey)) == (ENV, MK)
    assert (a.index, a.count) == (b.index, b.count) == (1, 2)
    assert one.pledgeOf(pledgers[0]) == two.pledgeOf(pledgers[0])
    assert bytes(two.pledgeOf(pledgers[0])[4]) == pledge_digest(MK, ENV, 2)
    assert books(one, pledgers[:1]) == books(two, pledgers[:1])
    copy = proxy_copy_gas(len(CANONICAL) + len(extra)) - proxy_copy_gas(len(CANONICAL))
    assert padded.gas_used - plain.gas_used == calldata_gas(extra) + copy


def test_missing_tail_padding_is_the_same_pledge(make_campaign, pledger):
    """The last argument's zero padding may be left off (the decoder checks the bytes it
    reads, not the padding): the same pledge, 31 bytes of calldata cheaper."""
    campaign = make_campaign()
    r = pledger.transfer(campaign, 0, data=CANONICAL[: -(64 - 33)])
    [ev] = campaign.Pledged.from_receipt(r)
    assert (bytes(ev.envelope), bytes(ev.memberKey), ev.count) == (ENV, MK, 2)


def test_offset_into_the_head_decodes_other_bytes_consistently(make_campaign, pledger):
    """An offset may point anywhere inside the calldata: the envelope is then whatever bytes
    it designates (here the head itself), and the event and the stored digest agree on
    exactly those bytes; nothing is ambiguous."""
    campaign = make_campaign()
    data = patch(CANONICAL, ENV_OFFSET_AT, 0x20)  # the length is read from the member key's offset word
    args = data[4:]
    designated = args[0x40 : 0x40 + 0xE0]
    r = pledger.transfer(campaign, 0, data=data)
    [ev] = campaign.Pledged.from_receipt(r)
    assert bytes(ev.envelope) == designated and bytes(ev.memberKey) == MK
    assert bytes(campaign.pledgeOf(pledger)[4]) == pledge_digest(MK, designated, 2)


def test_trailing_bytes_on_withdraw_and_release_change_nothing(
    make_campaign, pledgers, keeper_keys, keeper_accounts, chain
):
    campaign = make_campaign(threshold=3)
    campaign.pledge(envelope(), member_key(), sender=pledgers[0])
    r = pledgers[0].transfer(campaign, 0, data=SEL_WITHDRAW + b"\xde\xad")
    assert campaign.Withdrawn.from_receipt(r)[0].count == 1
    for who in pledgers[1:3]:
        campaign.pledge(envelope(), member_key(), sender=who)
    assert campaign.state() == REVEALED
    data = release_calldata(keeper_set(keeper_keys), 2, b"\x09" * 40)
    r = keeper_accounts[2].transfer(campaign, 0, data=data + b"\x00" * 7)
    [ev] = campaign.Released.from_receipt(r)
    assert (ev.keeperIndex, bytes(ev.data)) == (2, b"\x09" * 40)


def test_malformed_release_calldata_reverts(make_campaign, pledgers, keeper_keys, keeper_accounts, chain):
    """A keeper's own release with a dirty address word, a truncated payload, or a keeper-set
    length past the end: each refused, and no Released event."""
    campaign = make_campaign(threshold=2)
    campaign.pledge(envelope(), member_key(), sender=pledgers[0])
    keeper = keeper_accounts[0]
    kset = keeper_set(keeper_keys)
    good = release_calldata(kset, 0, b"\x09" * 40)
    # Layout: selector | 0x60 | index | bytes offset | 3 | k0 | k1 | k2 | 40 | data
    set_at = 4 + 0x60
    dirty = good[: set_at + 32] + b"\x01" + good[set_at + 33 :]  # k0 with a dirty upper byte
    cases = {
        "dirty-address": dirty,
        "payload-cut": good[:-30],
        "set-length-past-the-end": patch(good, set_at, 1000),
        "payload-length-max": patch(good, set_at + 4 * 32, 2**256 - 1),
    }
    for name, data in cases.items():
        assert revert_data(chain, keeper, campaign, data) == b"", name
        assert send_raw(keeper, campaign, data).failed, name
    assert not events_since(campaign.Released, chain, campaign.revealBlock())


def test_oversized_arguments_are_refused_cheaply(
    make_campaign, pledger, keeper_keys, keeper_accounts, organizer, stranger
):
    """A 100 KB member key, and a 2,000-address keeper set, are refused by the first check
    that looks at them, with the contract's error, and change nothing."""
    campaign = make_campaign(threshold=2)
    before = books(campaign, [organizer, pledger])
    with reverts_exactly(campaign, "CampaignInvalidMemberKey"):
        campaign.pledge(envelope(), b"\x02" * 100_000, sender=pledger, gas_limit=5 * GAS)
    assert books(campaign, [organizer, pledger]) == before
    campaign.pledge(envelope(), member_key(), sender=pledger)
    huge = keeper_set(keeper_keys) + [f"0x{i:040x}" for i in range(1, 2_000)]
    with reverts_exactly(campaign, "CampaignKeeperSetMismatch"):
        campaign.release(huge, 0, b"\x01", sender=keeper_accounts[0], gas_limit=5 * GAS)


@pytest.mark.parametrize(
    "case",
    ["unknown-selector", "factory-selector", "empty-with-ether", "withdraw-with-ether", "release-with-ether"],
)
def test_calls_that_match_nothing_revert(make_campaign, pledgers, organizer, keeper_keys, chain, case):
    """No fallback and no receive: an unknown selector, a factory function's selector, and
    ether with empty calldata or on a non-payable function all revert and change nothing."""
    campaign = make_campaign(deposit=D, threshold=5)
    sender = pledgers[0]
    campaign.pledge(envelope(), member_key(), sender=sender, value=D)
    data, value = {
        "unknown-selector": (b"\xde\xad\xbe\xef" + word(1), 0),
        "factory-selector": (keccak(text="predictCampaign(address,bytes32)")[:4] + word(0) * 2, 0),
        "empty-with-ether": (b"", D),
        "withdraw-with-ether": (SEL_WITHDRAW, 1),
        "release-with-ether": (release_calldata(keeper_set(keeper_keys), 0, b"\x01"), 1),
    }[case]
    before, balance = books(campaign, [organizer, sender]), sender.balance
    assert revert_data(chain, sender, campaign, data, value) == b""
    r = send_raw(sender, campaign, data, value)
    assert r.failed
    assert books(campaign, [organizer, sender]) == before
    assert sender.balance == balance - r.total_fees_paid


@pytest.mark.parametrize("to", ["factory", "implementation"])
def test_ether_to_the_factory_or_implementation_reverts(factory, stranger, chain, to):
    target = factory.address if to == "factory" else factory.implementation()
    for data in (b"", b"\xde\xad\xbe\xef"):
        assert revert_data(chain, stranger, target, data, D) == b""
        assert send_raw(stranger, target, data, D).failed
    assert chain.provider.get_balance(target) == 0


def test_malformed_create_campaign_reverts_and_creates_nothing(factory, organizer, make_config, chain):
    salt = b"\x22" * 32
    predicted = factory.predictCampaign(organizer, salt)
    good = factory.createCampaign.as_transaction(make_config(), salt, envelope(), member_key(), sender=organizer).data
    for data in (bytes(good)[:-100], bytes(good)[:200], patch(bytes(good), 4, 2**64)):
        assert revert_data(chain, organizer, factory, data) == b""
        assert send_raw(organizer, factory, data).failed
    assert chain.provider.get_code(predicted) == b""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # py-evm on SELFDESTRUCT
@pytest.mark.parametrize("with_beneficiary", [False, True], ids=["refunds", "beneficiary"])
def test_forced_ether_changes_no_books(
    make_campaign, project, pledgers, organizer, beneficiary, stranger, with_beneficiary
):
    """Ether forced in by SELFDESTRUCT (which needs no receive) raises the balance and
    nothing else: the count, the state, every refund and the beneficiary's claim are the
    books', and the stray wei stay where they landed."""
    to = beneficiary.address if with_beneficiary else ZERO
    campaign = make_campaign(threshold=3, deposit=D, beneficiary=to)
    campaign.pledge(envelope(), member_key(), sender=pledgers[0], value=D)
    before = books(campaign, [organizer, *pledgers[:2]])
    stray = 7 * D + 1
    project.ForceSender.deploy(campaign.address, sender=stranger, value=stray)
    assert books(campaign, [organizer, *pledgers[:2]]) == {**before, "balance": before["balance"] + stray}

    campaign.pledge(envelope(), member_key(), sender=pledgers[1], value=D)  # the reveal
    assert campaign.state() == REVEALED and campaign.pledgeCount() == 3
    if with_beneficiary:
        assert campaign.claimableDeposits() == 3 * D
        campaign.claimDeposits(sender=beneficiary)
    else:
        for who in [organizer, *pledgers[:2]]:
            assert campaign.refundableOf(who) == D
            campaign.refund(sender=who)
    assert campaign.balance == stray
    assert campaign.claimableDeposits() == 0
    assert all(campaign.refundableOf(w) == 0 for w in [organizer, *pledgers[:2]])
