"""Re-entrancy and griefing: hostile contracts as pledgers and as the beneficiary.

`RefundReentrant` (contracts/test/) re-enters the campaign from `receive()` while the
campaign pays it: refund() again, withdraw(), pledge() without and with paying, or
claimDeposits(). It must get exactly what it is owed, once, and the campaign must keep
exactly what it owes everyone else. `RevertingReceiver` refuses every payment: its own
refund fails with `CampaignTransferFailed` and stays owed, and it blocks nobody else.

The attackers are real contracts on the in-process EVM; nothing here is mocked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from conftest import (
    CANCELLED,
    EXPIRED,
    LIVE,
    OPEN,
    REVEALED,
    WITHDRAWN,
    encode_error,
    envelope,
    member_key,
    reverts_exactly,
)
from hexbytes import HexBytes

D = 10**15  # the deposit
ZERO = "0x" + "00" * 20

# RefundReentrant.Mode
NONE_MODE, REFUND, WITHDRAW, PLEDGE_FREE, PLEDGE_PAID, CLAIM = range(6)


# ─── Helpers ────────────────────────────────────────────────────────────────────────


def paid(receipt: Any) -> int:
    return receipt.total_fees_paid


@pytest.fixture
def attacker_owner(stranger: Any) -> Any:
    return stranger


@pytest.fixture
def deploy_at_predicted(
    factory: Any, organizer: Any, make_config: Callable[..., dict[str, Any]], project: Any
) -> Callable[..., tuple[Any, Any]]:
    """Deploys a test contract aimed at a campaign that does not exist yet, then the campaign
    (with that contract as its beneficiary if asked): `predictCampaign` gives the address."""

    def _deploy(contract_type: Any, owner: Any, as_beneficiary: bool, value: int = 0, **overrides: Any):
        salt = os.urandom(32)
        predicted = factory.predictCampaign(organizer, salt)
        helper = owner.deploy(contract_type, predicted, value=value)
        config = make_config(deposit=D, beneficiary=helper.address if as_beneficiary else ZERO, **overrides)
        factory.createCampaign(config, salt, envelope(), member_key(), sender=organizer, value=D)
        campaign = project.Campaign.at(predicted)
        assert campaign.creator() == organizer.address
        return campaign, helper

    return _deploy


def pledge_via(helper: Any, owner: Any, value: int = D) -> Any:
    return helper.pledge(envelope(100), member_key(), value, sender=owner)


# ─── RefundReentrant: the refund paths ─────────────────────────────────────────────

# How the attacker's refund comes due: its pledge withdrawn while Open; or live, and the
# campaign expired, cancelled, or revealed without a beneficiary.
SCENARIOS = ["withdrawn", "expired", "cancelled", "revealed"]


@pytest.fixture
def setup_refund(
    make_campaign: Callable[..., Any],
    make_pledge: Callable[..., Any],
    pledgers: list[Any],
    organizer: Any,
    attacker_owner: Any,
    project: Any,
    chain: Any,
) -> Callable[[str], tuple[Any, Any]]:
    """A campaign holding the deposits of the organizer, two pledgers and the attacker,
    with the attacker's refund due as `scenario` says."""

    def _setup(scenario: str) -> tuple[Any, Any]:
        # Four pledges: the organizer's, two pledgers', the attacker's. Only "revealed" has
        # the threshold at four.
        campaign = make_campaign(threshold=4 if scenario == "revealed" else 5, deposit=D)
        attacker = attacker_owner.deploy(project.RefundReentrant, campaign.address, value=D)
        make_pledge(campaign, pledgers[0])
        pledge_via(attacker, attacker_owner)
        if scenario == "withdrawn":
            attacker.withdraw(sender=attacker_owner)
            make_pledge(campaign, pledgers[1])
        elif scenario == "expired":
            make_pledge(campaign, pledgers[1])
            chain.pending_timestamp = campaign.deadline()
            chain.mine()
        elif scenario == "cancelled":
            make_pledge(campaign, pledgers[1])
            campaign.cancel(sender=organizer)
        else:
            make_pledge(campaign, pledgers[1])
        assert campaign.state() == {"withdrawn": OPEN, "expired": EXPIRED, "cancelled": CANCELLED}.get(
            scenario, REVEALED
        )
        assert campaign.refundableOf(attacker) == D
        assert campaign.balance == 4 * D
        return campaign, attacker

    return _setup


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_reentrant_refund_pays_the_deposit_once(
    setup_refund: Callable[[str], tuple[Any, Any]], attacker_owner: Any, scenario: str, depth: int
) -> None:
    campaign, attacker = setup_refund(scenario)
    attacker.arm(REFUND, depth, False, sender=attacker_owner)

    receipt = attacker.refund(sender=attacker_owner)

    assert attacker.balance == D  # exactly its deposit, which it had spent on the pledge
    assert attacker.received() == D
    assert campaign.balance == 3 * D  # everyone else's deposits are untouched
    # It re-entered once; that call failed, so no second payment and no deeper re-entry.
    assert (attacker.attempts(), attacker.successes()) == (1, 0)
    assert HexBytes(attacker.lastResult()) == encode_error(campaign, "CampaignNothingToRefund", caller=attacker.address)
    [refunded] = campaign.Refunded.from_receipt(receipt)
    assert (refunded.to, refunded.amount) == (attacker.address, D)
    [reentered] = attacker.Reentered.from_receipt(receipt)
    assert (reentered.mode, reentered.depth, reentered.success) == (REFUND, 1, False)
    assert campaign.refundableOf(attacker) == 0
    assert campaign.pledgeOf(attacker).depositHeld is False
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=attacker.address):
        attacker.refund(sender=attacker_owner)


@pytest.mark.parametrize("scenario", ["expired", "cancelled", "revealed"])
def test_everyone_else_is_still_refunded_after_the_attack(
    setup_refund: Callable[[str], tuple[Any, Any]],
    attacker_owner: Any,
    organizer: Any,
    pledgers: list[Any],
    scenario: str,
) -> None:
    campaign, attacker = setup_refund(scenario)
    attacker.arm(REFUND, 3, False, sender=attacker_owner)
    attacker.refund(sender=attacker_owner)

    for who in (organizer, pledgers[0], pledgers[1]):
        before = who.balance
        receipt = campaign.refund(sender=who)
        assert who.balance == before + D - paid(receipt)
    assert campaign.balance == 0


@pytest.mark.parametrize(
    ("scenario", "error", "inputs"),
    [
        ("withdrawn", "CampaignNoLivePledge", lambda attacker: {"caller": attacker.address}),
        ("expired", "CampaignWrongState", lambda attacker: {"state": EXPIRED}),
        ("cancelled", "CampaignWrongState", lambda attacker: {"state": CANCELLED}),
        ("revealed", "CampaignWrongState", lambda attacker: {"state": REVEALED}),
    ],
)
def test_reentrant_withdraw_is_refused(
    setup_refund: Callable[[str], tuple[Any, Any]],
    attacker_owner: Any,
    scenario: str,
    error: str,
    inputs: Callable[[Any], dict[str, Any]],
) -> None:
    campaign, attacker = setup_refund(scenario)
    count, status = campaign.pledgeCount(), campaign.pledgeOf(attacker).status
    attacker.arm(WITHDRAW, 1, False, sender=attacker_owner)

    attacker.refund(sender=attacker_owner)

    assert HexBytes(attacker.lastResult()) == encode_error(campaign, error, **inputs(attacker))
    assert attacker.successes() == 0
    assert (campaign.pledgeCount(), campaign.pledgeOf(attacker).status) == (count, status)
    assert attacker.balance == D
    assert campaign.balance == 3 * D


@pytest.mark.parametrize(
    ("scenario", "error", "inputs"),
    [
        # The deposit being refunded is no longer held: a new pledge must pay again.
        ("withdrawn", "CampaignWrongDeposit", {"sent": 0, "required": D}),
        ("expired", "CampaignWrongState", {"state": EXPIRED}),
        ("cancelled", "CampaignWrongState", {"state": CANCELLED}),
        # Still live: one address, one live pledge.
        ("revealed", "CampaignAlreadyPledged", None),
    ],
)
def test_reentrant_pledge_cannot_reuse_the_refunded_deposit(
    setup_refund: Callable[[str], tuple[Any, Any]],
    attacker_owner: Any,
    scenario: str,
    error: str,
    inputs: dict[str, Any] | None,
) -> None:
    campaign, attacker = setup_refund(scenario)
    count, total = campaign.pledgeCount(), campaign.totalPledges()
    attacker.arm(PLEDGE_FREE, 1, False, sender=attacker_owner)

    attacker.refund(sender=attacker_owner)

    if inputs is None:
        inputs = {"pledger": attacker.address, "index": campaign.pledgeOf(attacker).index}
    assert HexBytes(attacker.lastResult()) == encode_error(campaign, error, **inputs)
    assert attacker.successes() == 0
    assert (campaign.pledgeCount(), campaign.totalPledges()) == (count, total)
    assert campaign.pledgeOf(attacker).depositHeld is False
    assert attacker.balance == D
    assert campaign.balance == 3 * D


def test_reentrant_pledge_that_pays_is_just_a_new_pledge(
    setup_refund: Callable[[str], tuple[Any, Any]], attacker_owner: Any, pledgers: list[Any]
) -> None:
    campaign, attacker = setup_refund("withdrawn")
    count, total = campaign.pledgeCount(), campaign.totalPledges()
    attacker.arm(PLEDGE_PAID, 1, False, sender=attacker_owner)

    receipt = attacker.refund(sender=attacker_owner)

    # The refund went out and came straight back as the new pledge's deposit.
    assert attacker.successes() == 1
    assert attacker.balance == 0
    assert campaign.balance == 4 * D
    [new] = campaign.Pledged.from_receipt(receipt)
    assert (new.index, new.pledger, new.count) == (total, attacker.address, count + 1)
    index, status, held, _late, _digest = campaign.pledgeOf(attacker)
    assert (index, status, held) == (total, LIVE, True)
    assert campaign.state() == OPEN  # four live pledges, threshold five
    assert campaign.ThresholdReached.from_receipt(receipt) == []
    # A live pledge's deposit is not refundable while Open; withdrawn, it is, once.
    attacker.arm(NONE_MODE, 0, False, sender=attacker_owner)
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=attacker.address):
        attacker.refund(sender=attacker_owner)
    attacker.withdraw(sender=attacker_owner)
    attacker.refund(sender=attacker_owner)
    assert attacker.balance == D
    assert campaign.balance == 3 * D


def test_bubbling_attacker_loses_nothing_and_gains_nothing(
    setup_refund: Callable[[str], tuple[Any, Any]], attacker_owner: Any
) -> None:
    """If the failed re-entry makes receive() revert, the refund fails and stays owed."""
    campaign, attacker = setup_refund("withdrawn")
    attacker.arm(REFUND, 1, True, sender=attacker_owner)

    with reverts_exactly(campaign, "CampaignTransferFailed", to=attacker.address, amount=D):
        attacker.refund(sender=attacker_owner)

    assert campaign.refundableOf(attacker) == D
    assert campaign.pledgeOf(attacker).status == WITHDRAWN
    assert campaign.balance == 4 * D
    assert attacker.balance == 0
    attacker.arm(NONE_MODE, 0, False, sender=attacker_owner)
    attacker.refund(sender=attacker_owner)
    assert attacker.balance == D
    assert campaign.balance == 3 * D


def test_attacker_is_driven_only_by_its_owner(
    setup_refund: Callable[[str], tuple[Any, Any]], pledgers: list[Any]
) -> None:
    _, attacker = setup_refund("withdrawn")
    with reverts_exactly(attacker, "PuppetNotOwner", caller=pledgers[2].address):
        attacker.refund(sender=pledgers[2])


# ─── RefundReentrant as the beneficiary ────────────────────────────────────────────


@pytest.mark.parametrize("mode", [CLAIM, REFUND])
def test_reentrant_beneficiary_takes_only_the_live_deposits(
    deploy_at_predicted: Callable[..., tuple[Any, Any]],
    make_pledge: Callable[..., Any],
    attacker_owner: Any,
    pledgers: list[Any],
    project: Any,
    mode: int,
) -> None:
    campaign, attacker = deploy_at_predicted(project.RefundReentrant, attacker_owner, True, threshold=3)
    assert campaign.beneficiary() == attacker.address
    # pledgers[2] withdraws: its deposit stays owed to it, not to the beneficiary.
    make_pledge(campaign, pledgers[2])
    campaign.withdraw(sender=pledgers[2])
    make_pledge(campaign, pledgers[0])
    make_pledge(campaign, pledgers[1])
    assert campaign.state() == REVEALED
    assert campaign.balance == 4 * D
    attacker.arm(mode, 3, False, sender=attacker_owner)

    receipt = attacker.claimDeposits(sender=attacker_owner)

    assert attacker.balance == 3 * D  # organizer + two live pledgers, exactly
    assert campaign.balance == D
    assert (attacker.attempts(), attacker.successes()) == (1, 0)
    assert HexBytes(attacker.lastResult()) == encode_error(campaign, "CampaignNothingToRefund", caller=attacker.address)
    [claimed] = campaign.DepositsClaimed.from_receipt(receipt)
    assert (claimed.beneficiary, claimed.amount) == (attacker.address, 3 * D)
    assert campaign.claimableDeposits() == 0
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=attacker.address):
        attacker.claimDeposits(sender=attacker_owner)

    # The withdrawn pledger still gets its deposit; a later pledge's deposit is claimable once.
    before = pledgers[2].balance
    r = campaign.refund(sender=pledgers[2])
    assert pledgers[2].balance == before + D - paid(r)
    make_pledge(campaign, pledgers[3])
    assert campaign.claimableDeposits() == D
    attacker.claimDeposits(sender=attacker_owner)
    assert attacker.balance == 4 * D
    assert campaign.balance == 0


# ─── RevertingReceiver ──────────────────────────────────────────────────────────────


@pytest.fixture
def griefer_owner(pledgers: list[Any]) -> Any:
    return pledgers[5]


@pytest.mark.parametrize("ending", ["expired", "cancelled"])
def test_reverting_pledger_stays_owed_and_blocks_nobody(
    make_campaign: Callable[..., Any],
    make_pledge: Callable[..., Any],
    organizer: Any,
    pledgers: list[Any],
    griefer_owner: Any,
    project: Any,
    chain: Any,
    ending: str,
) -> None:
    campaign = make_campaign(threshold=5, deposit=D)
    receiver = griefer_owner.deploy(project.RevertingReceiver, campaign.address, value=D)
    make_pledge(campaign, pledgers[0])
    pledge_via(receiver, griefer_owner)
    make_pledge(campaign, pledgers[1])
    if ending == "expired":
        chain.pending_timestamp = campaign.deadline()
        chain.mine()
    else:
        campaign.cancel(sender=organizer)
    assert campaign.balance == 4 * D

    with reverts_exactly(campaign, "CampaignTransferFailed", to=receiver.address, amount=D):
        receiver.refund(sender=griefer_owner)
    assert campaign.refundableOf(receiver) == D  # still owed
    assert campaign.pledgeOf(receiver).depositHeld is True
    assert campaign.balance == 4 * D

    for who in (pledgers[0], organizer, pledgers[1]):
        before = who.balance
        receipt = campaign.refund(sender=who)
        assert who.balance == before + D - paid(receipt)
    assert campaign.balance == D

    receiver.setAccepting(True, sender=griefer_owner)
    receiver.refund(sender=griefer_owner)
    assert receiver.balance == D
    assert campaign.balance == 0


def test_reverting_withdrawn_pledger_blocks_neither_reveal_nor_beneficiary(
    make_campaign: Callable[..., Any],
    make_pledge: Callable[..., Any],
    pledgers: list[Any],
    beneficiary: Any,
    griefer_owner: Any,
    project: Any,
) -> None:
    campaign = make_campaign(threshold=3, deposit=D, beneficiary=beneficiary.address)
    receiver = griefer_owner.deploy(project.RevertingReceiver, campaign.address, value=2 * D)
    pledge_via(receiver, griefer_owner)
    receiver.withdraw(sender=griefer_owner)
    with reverts_exactly(campaign, "CampaignTransferFailed", to=receiver.address, amount=D):
        receiver.refund(sender=griefer_owner)

    make_pledge(campaign, pledgers[0])
    make_pledge(campaign, pledgers[1])
    assert campaign.state() == REVEALED
    assert campaign.balance == 4 * D  # 3 live deposits + the receiver's withdrawn one

    before = beneficiary.balance
    receipt = campaign.claimDeposits(sender=beneficiary)
    assert beneficiary.balance == before + 3 * D - paid(receipt)  # the live deposits only
    assert campaign.balance == D
    assert campaign.refundableOf(receiver) == D  # a withdrawn deposit is never forfeit


def test_reverting_live_pledger_cannot_block_the_beneficiary(
    make_campaign: Callable[..., Any],
    make_pledge: Callable[..., Any],
    pledgers: list[Any],
    beneficiary: Any,
    griefer_owner: Any,
    project: Any,
) -> None:
    campaign = make_campaign(threshold=3, deposit=D, beneficiary=beneficiary.address)
    receiver = griefer_owner.deploy(project.RevertingReceiver, campaign.address, value=D)
    make_pledge(campaign, pledgers[0])
    pledge_via(receiver, griefer_owner)
    assert campaign.state() == REVEALED

    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=receiver.address):
        receiver.refund(sender=griefer_owner)  # its live deposit is forfeit to the beneficiary
    before = beneficiary.balance
    receipt = campaign.claimDeposits(sender=beneficiary)
    assert beneficiary.balance == before + 3 * D - paid(receipt)
    assert campaign.balance == 0


def test_reverting_beneficiary_blocks_only_its_own_claim(
    deploy_at_predicted: Callable[..., tuple[Any, Any]],
    make_pledge: Callable[..., Any],
    pledgers: list[Any],
    griefer_owner: Any,
    project: Any,
) -> None:
    campaign, receiver = deploy_at_predicted(project.RevertingReceiver, griefer_owner, True, threshold=3)
    make_pledge(campaign, pledgers[2])
    campaign.withdraw(sender=pledgers[2])
    make_pledge(campaign, pledgers[0])
    make_pledge(campaign, pledgers[1])
    assert campaign.state() == REVEALED

    with reverts_exactly(campaign, "CampaignTransferFailed", to=receiver.address, amount=3 * D):
        receiver.claimDeposits(sender=griefer_owner)
    assert campaign.claimableDeposits() == 3 * D  # still claimable
    before = pledgers[2].balance
    receipt = campaign.refund(sender=pledgers[2])
    assert pledgers[2].balance == before + D - paid(receipt)

    receiver.setAccepting(True, sender=griefer_owner)
    receiver.claimDeposits(sender=griefer_owner)
    assert receiver.balance == 3 * D
    assert campaign.balance == 0
