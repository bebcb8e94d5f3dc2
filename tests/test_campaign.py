"""Unit tests of Campaign and CampaignFactory on Ape's in-process chain."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from conftest import (
    CANCELLED,
    CLOSED,
    DAY,
    EXPIRED,
    KNOWN,
    LIVE,
    MEMBERS,
    NONE,
    OPEN,
    PUBLIC,
    REVEALED,
    ROSTER,
    WITHDRAWN,
    envelope,
    keeper_pubkey_address,
    make_keeper_keys,
    member_key,
    reverts_exactly,
)
from eth_utils import keccak

ZERO = "0x" + "00" * 20
DEPOSIT = 10**16
PLEDGED = "Pledged(uint256,address,bytes,bytes,uint256)"


def keeper_set(campaign_keys: list[Any]) -> list[str]:
    return [k.public_key.to_checksum_address() for k in campaign_keys]


# ─── Factory and initialisation ──────────────────────────────────────────────────────


def test_create_emits_config_and_records_creator_pledge(factory, organizer, make_config, project, keeper_keys):
    config = make_config(deposit=DEPOSIT, scope=PUBLIC)
    salt = secrets.token_bytes(32)
    predicted = factory.predictCampaign(organizer, salt)
    env, mk = envelope(), member_key()
    receipt = factory.createCampaign(config, salt, env, mk, sender=organizer, value=DEPOSIT)

    [created] = factory.CampaignCreated.from_receipt(receipt)
    assert created.campaign == predicted
    assert created.creator == organizer.address
    # Ape decodes the struct as a tuple, in field order.
    (title, purpose, description, plan, threshold, deadline, keepers, t, scope, late, deposit, benef, relay, note,
     instructions) = created.config  # fmt: skip
    assert (title, purpose, description, plan) == tuple(config[k] for k in ("title", "purpose", "description", "plan"))
    assert (threshold, deadline, t, scope, late, deposit) == (3, config["deadline"], 2, PUBLIC, KNOWN, DEPOSIT)
    assert [bytes(k) for k in keepers] == config["keepers"] and benef == ZERO
    assert (bytes(relay), bytes(note), bytes(instructions)) == (b"", b"", config["instructions"])

    campaign = project.Campaign.at(predicted)
    [pledged] = campaign.Pledged.from_receipt(receipt)
    assert (pledged.index, pledged.pledger, pledged.count) == (0, organizer.address, 1)
    assert bytes(pledged.envelope) == env and bytes(pledged.memberKey) == mk

    assert campaign.creator() == organizer.address
    assert campaign.threshold() == config["threshold"]
    assert campaign.deadline() == config["deadline"]
    assert campaign.pledgeCount() == 1 and campaign.totalPledges() == 1
    assert campaign.state() == OPEN
    assert campaign.scope() == PUBLIC
    assert campaign.deposit() == DEPOSIT
    assert campaign.keeperThreshold() == 2 and campaign.keeperCount() == 3
    assert campaign.keeperSetHash() == keccak(
        b"".join(bytes(12) + bytes.fromhex(a[2:]) for a in keeper_set(keeper_keys))
    )
    index, status, held, late, digest = campaign.pledgeOf(organizer)
    assert (index, status, held, late) == (0, LIVE, True, False)
    # Pledge 0's digest covers its Pledged log's data and the sealed instructions.
    [raw] = [log for log in receipt.logs if bytes(log["topics"][0]) == keccak(text=PLEDGED)]
    assert bytes(digest) == keccak(keccak(bytes(raw["data"])) + keccak(config["instructions"]))[:20]
    assert campaign.relayTag() == bytes(12)
    assert campaign.lateJoiners() == KNOWN
    assert campaign.balance == DEPOSIT


def test_each_campaign_is_a_minimal_proxy(factory, campaign, chain):
    code = bytes(chain.provider.get_code(campaign.address))
    impl = bytes.fromhex(factory.implementation()[2:])
    assert code == bytes.fromhex("363d3d373d3d3d363d73") + impl + bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


def test_implementation_cannot_be_initialised(factory, project, organizer, make_config):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignAlreadyInitialized"):
        impl.initialize(organizer, 0, make_config(), envelope(), member_key(), sender=organizer)


def test_clone_cannot_be_initialised_twice(campaign, organizer, make_config):
    with reverts_exactly(campaign, "CampaignAlreadyInitialized"):
        campaign.initialize(organizer, 0, make_config(), envelope(), member_key(), sender=organizer)


def test_same_salt_twice_is_refused(factory, organizer, make_config):
    salt = secrets.token_bytes(32)
    factory.createCampaign(make_config(), salt, envelope(), member_key(), sender=organizer)
    with reverts_exactly(factory, "FactoryCloneFailed", creator=organizer.address, salt=salt):
        factory.createCampaign(make_config(), salt, envelope(), member_key(), sender=organizer)


def test_salt_is_scoped_to_the_creator(factory, organizer, stranger):
    salt = secrets.token_bytes(32)
    assert factory.predictCampaign(organizer, salt) != factory.predictCampaign(stranger, salt)


@pytest.mark.parametrize("threshold", [0, 100_001])
def test_create_refuses_bad_threshold(make_campaign, factory, project, threshold):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignInvalidThreshold", threshold=threshold, max=100_000):
        make_campaign(threshold=threshold)


def test_create_accepts_threshold_bounds(make_campaign):
    assert make_campaign(threshold=100_000).state() == OPEN
    # N = 1: the creator's own pledge is the reveal.
    assert make_campaign(threshold=1).state() == REVEALED


@pytest.mark.parametrize("offset", [-1, 0, 366 * DAY + 1])
def test_create_refuses_bad_deadline(make_campaign, factory, project, chain, offset):
    impl = project.Campaign.at(factory.implementation())
    now = chain.pending_timestamp
    deadline = now + offset
    with reverts_exactly(impl, "CampaignInvalidDeadline", deadline=deadline, now_=now, latest=now + 366 * DAY):
        make_campaign(deadline=deadline)


def test_create_refuses_empty_or_huge_keeper_set(make_campaign, factory, project):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignInvalidKeeperCount", count=0, max=32):
        make_campaign(keepers=[], keeperThreshold=1)
    many = [k.public_key.to_bytes() for k in make_keeper_keys(33, seed=7)]
    with reverts_exactly(impl, "CampaignInvalidKeeperCount", count=33, max=32):
        make_campaign(keepers=many, keeperThreshold=1)


def test_create_accepts_32_keepers(make_campaign):
    keys = [k.public_key.to_bytes() for k in make_keeper_keys(32, seed=8)]
    assert make_campaign(keepers=keys, keeperThreshold=17).keeperCount() == 32


@pytest.mark.parametrize("t", [0, 4])
def test_create_refuses_bad_keeper_threshold(make_campaign, factory, project, t):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignInvalidKeeperThreshold", t=t, n=3):
        make_campaign(keeperThreshold=t)


def test_create_refuses_malformed_keeper_key(make_campaign, factory, project, keeper_keys):
    impl = project.Campaign.at(factory.implementation())
    keys = [k.public_key.to_bytes() for k in keeper_keys]
    keys[1] = keys[1][:63]
    with reverts_exactly(impl, "CampaignInvalidKeeperKey", index=1):
        make_campaign(keepers=keys)


def test_create_refuses_unsorted_or_duplicate_keepers(make_campaign, factory, project, keeper_keys):
    impl = project.Campaign.at(factory.implementation())
    keys = [k.public_key.to_bytes() for k in keeper_keys]
    with reverts_exactly(impl, "CampaignKeepersNotSorted", index=1):
        make_campaign(keepers=[keys[1], keys[0], keys[2]])
    with reverts_exactly(impl, "CampaignKeepersNotSorted", index=1):
        make_campaign(keepers=[keys[0], keys[0]], keeperThreshold=1)


def test_create_refuses_wrong_deposit(make_campaign, factory, project):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignWrongDeposit", sent=0, required=DEPOSIT):
        make_campaign(deposit=DEPOSIT, value=0)


def test_create_refuses_bad_creator_record(factory, organizer, make_config, project):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignInvalidEnvelope", length=0, max=24_576):
        factory.createCampaign(make_config(), secrets.token_bytes(32), b"", member_key(), sender=organizer)
    with reverts_exactly(impl, "CampaignInvalidMemberKey"):
        factory.createCampaign(make_config(), secrets.token_bytes(32), envelope(), b"\x04" * 33, sender=organizer)


# ─── Pledging and the reveal ─────────────────────────────────────────────────────────


def test_pledge_records_and_counts(campaign, pledger, make_pledge):
    receipt = make_pledge(campaign, pledger)
    [event] = campaign.Pledged.from_receipt(receipt)
    assert (event.index, event.pledger, event.count) == (1, pledger.address, 2)
    assert campaign.pledgeCount() == 2
    assert campaign.pledgeOf(pledger)[:2] == (1, LIVE)
    assert not campaign.ThresholdReached.from_receipt(receipt)


def test_digest_is_the_hash_of_the_pledged_log(campaign, pledger):
    """Storage binds each pledge to its log: a keeper recomputes the digest from the log its node
    returned, so a node that alters, forges or swaps a Pledged log is caught."""
    env, mk = envelope(377), member_key()
    receipt = campaign.pledge(env, mk, sender=pledger)
    [raw] = [log for log in receipt.logs if bytes(log["topics"][0]) == keccak(text=PLEDGED)]
    data = bytes(raw["data"])
    # The data is exactly the ABI encoding of (memberKey, envelope, count).
    from eth_abi import encode

    assert data == encode(["bytes", "bytes", "uint256"], [mk, env, 2])
    assert bytes(campaign.pledgeOf(pledger)[4]) == keccak(data)[:20]


@pytest.mark.parametrize("extra", [-1, 0, 1], ids=["N-1", "N", "N+1"])
def test_reveal_fires_exactly_at_threshold(make_campaign, pledgers, make_pledge, extra):
    campaign = make_campaign(threshold=4)
    receipts = [make_pledge(campaign, who) for who in pledgers[: 3 + extra]]  # + the creator's
    reached = [r for r in receipts if campaign.ThresholdReached.from_receipt(r)]
    if extra < 0:
        assert campaign.state() == OPEN and not reached
        assert campaign.revealBlock() == 0
    else:
        # The third pledger's pledge is the 4th live pledge: it alone fires the reveal.
        assert reached == [receipts[2]]
        [event] = campaign.ThresholdReached.from_receipt(receipts[2])
        assert (event.count, event.lastIndex) == (4, 3)
        assert campaign.state() == REVEALED
        assert campaign.revealBlock() == receipts[2].block_number
    assert campaign.pledgeCount() == 4 + extra


def test_pledges_after_the_reveal_are_counted(make_campaign, pledgers, make_pledge, chain):
    campaign = make_campaign(threshold=2)
    make_pledge(campaign, pledgers[0])
    chain.pending_timestamp = campaign.deadline() + DAY  # the campaign goes on in public
    receipt = make_pledge(campaign, pledgers[1])
    assert campaign.Pledged.from_receipt(receipt)[0].count == 3
    assert not campaign.ThresholdReached.from_receipt(receipt)
    assert campaign.state() == REVEALED


def test_second_live_pledge_is_refused(campaign, pledger, make_pledge, organizer):
    make_pledge(campaign, pledger)
    with reverts_exactly(campaign, "CampaignAlreadyPledged", pledger=pledger.address, index=1):
        make_pledge(campaign, pledger)
    with reverts_exactly(campaign, "CampaignAlreadyPledged", pledger=organizer.address, index=0):
        make_pledge(campaign, organizer)


@pytest.mark.parametrize("value", [0, DEPOSIT - 1, DEPOSIT + 1])
def test_pledge_refuses_wrong_deposit(make_campaign, pledger, make_pledge, value):
    campaign = make_campaign(deposit=DEPOSIT)
    with reverts_exactly(campaign, "CampaignWrongDeposit", sent=value, required=DEPOSIT):
        make_pledge(campaign, pledger, value=value)


def test_pledge_refuses_value_without_deposit(campaign, pledger, make_pledge):
    with reverts_exactly(campaign, "CampaignWrongDeposit", sent=1, required=0):
        make_pledge(campaign, pledger, value=1)


@pytest.mark.parametrize("size", [0, 24_577])
def test_pledge_refuses_bad_envelope_size(campaign, pledger, size):
    with reverts_exactly(campaign, "CampaignInvalidEnvelope", length=size, max=24_576):
        campaign.pledge(b"\x01" * size, member_key(), sender=pledger)


def test_pledge_accepts_largest_envelope(campaign, pledger):
    campaign.pledge(b"\x01" * 24_576, member_key(), sender=pledger)
    assert campaign.pledgeCount() == 2


@pytest.mark.parametrize("key", [b"", b"\x02" * 32, b"\x02" * 34, b"\x04" + b"\x01" * 32, b"\x00" * 33])
def test_pledge_refuses_malformed_member_key(campaign, pledger, key):
    with reverts_exactly(campaign, "CampaignInvalidMemberKey"):
        campaign.pledge(envelope(), key, sender=pledger)


@pytest.mark.parametrize("offset", [-1, 0, 1], ids=["deadline-1s", "deadline", "deadline+1s"])
def test_deadline_boundary(campaign, pledger, make_pledge, chain, offset):
    chain.pending_timestamp = campaign.deadline() + offset
    if offset < 0:
        make_pledge(campaign, pledger)
        assert campaign.pledgeCount() == 2
    else:
        with reverts_exactly(campaign, "CampaignWrongState", state=EXPIRED):
            make_pledge(campaign, pledger)
        assert campaign.state() == EXPIRED


def test_reveal_on_the_last_second(make_campaign, pledgers, make_pledge, chain):
    campaign = make_campaign(threshold=2)
    chain.pending_timestamp = campaign.deadline() - 1
    make_pledge(campaign, pledgers[0])
    assert campaign.state() == REVEALED
    chain.pending_timestamp = campaign.deadline() + 1
    chain.mine()
    assert campaign.state() == REVEALED  # permanent: the deadline no longer matters


# ─── Withdraw ────────────────────────────────────────────────────────────────────────


def test_withdraw_uncounts_and_keeps_deposit_owed(make_campaign, pledger, make_pledge):
    campaign = make_campaign(deposit=DEPOSIT)
    make_pledge(campaign, pledger)
    receipt = campaign.withdraw(sender=pledger)
    [event] = campaign.Withdrawn.from_receipt(receipt)
    assert (event.index, event.pledger, event.count) == (1, pledger.address, 1)
    assert campaign.pledgeCount() == 1
    assert campaign.pledgeOf(pledger)[:3] == (1, WITHDRAWN, True)
    assert campaign.refundableOf(pledger) == DEPOSIT
    assert campaign.balance == 2 * DEPOSIT


def test_withdrawn_pledge_does_not_count_towards_the_reveal(make_campaign, pledgers, make_pledge):
    campaign = make_campaign(threshold=3)
    make_pledge(campaign, pledgers[0])
    campaign.withdraw(sender=pledgers[0])
    make_pledge(campaign, pledgers[1])
    assert campaign.state() == OPEN and campaign.pledgeCount() == 2
    make_pledge(campaign, pledgers[2])
    assert campaign.state() == REVEALED


def test_repledge_after_withdraw_reuses_the_held_deposit(make_campaign, pledger, make_pledge):
    campaign = make_campaign(deposit=DEPOSIT)
    make_pledge(campaign, pledger)
    campaign.withdraw(sender=pledger)
    with reverts_exactly(campaign, "CampaignWrongDeposit", sent=DEPOSIT, required=0):
        make_pledge(campaign, pledger, value=DEPOSIT)
    make_pledge(campaign, pledger, value=0)
    assert campaign.pledgeOf(pledger)[:3] == (2, LIVE, True)
    assert campaign.balance == 2 * DEPOSIT


def test_repledge_after_refund_pays_again(make_campaign, pledger, make_pledge):
    campaign = make_campaign(deposit=DEPOSIT)
    make_pledge(campaign, pledger)
    campaign.withdraw(sender=pledger)
    campaign.refund(sender=pledger)
    with reverts_exactly(campaign, "CampaignWrongDeposit", sent=0, required=DEPOSIT):
        make_pledge(campaign, pledger, value=0)
    make_pledge(campaign, pledger)
    assert campaign.pledgeOf(pledger)[:3] == (2, LIVE, True)


def test_withdraw_refusals(make_campaign, pledgers, make_pledge, organizer, stranger, chain):
    campaign = make_campaign(threshold=2)
    with reverts_exactly(campaign, "CampaignNoLivePledge", caller=stranger.address):
        campaign.withdraw(sender=stranger)
    with reverts_exactly(campaign, "CampaignCreatorCannotWithdraw"):
        campaign.withdraw(sender=organizer)
    make_pledge(campaign, pledgers[0])  # the reveal
    with reverts_exactly(campaign, "CampaignWrongState", state=REVEALED):
        campaign.withdraw(sender=pledgers[0])

    expiring = make_campaign()
    make_pledge(expiring, pledgers[1])
    chain.pending_timestamp = expiring.deadline()
    with reverts_exactly(expiring, "CampaignWrongState", state=EXPIRED):
        expiring.withdraw(sender=pledgers[1])


def test_withdraw_twice_is_refused(campaign, pledger, make_pledge):
    make_pledge(campaign, pledger)
    campaign.withdraw(sender=pledger)
    with reverts_exactly(campaign, "CampaignNoLivePledge", caller=pledger.address):
        campaign.withdraw(sender=pledger)


# ─── Cancel, expiry and refunds ──────────────────────────────────────────────────────


def test_cancel_by_creator(make_campaign, organizer, pledger, make_pledge):
    campaign = make_campaign(deposit=DEPOSIT)
    make_pledge(campaign, pledger)
    receipt = campaign.cancel(sender=organizer)
    assert campaign.Cancelled.from_receipt(receipt)[0].count == 2
    assert campaign.state() == CANCELLED
    assert campaign.refundableOf(pledger) == DEPOSIT
    assert campaign.refundableOf(organizer) == DEPOSIT
    with reverts_exactly(campaign, "CampaignWrongState", state=CANCELLED):
        make_pledge(campaign, pledger)
    with reverts_exactly(campaign, "CampaignWrongState", state=CANCELLED):
        campaign.cancel(sender=organizer)


def test_cancel_refusals(make_campaign, organizer, stranger, pledgers, make_pledge, chain):
    campaign = make_campaign(threshold=2)
    with reverts_exactly(campaign, "CampaignNotCreator", caller=stranger.address):
        campaign.cancel(sender=stranger)
    make_pledge(campaign, pledgers[0])
    with reverts_exactly(campaign, "CampaignWrongState", state=REVEALED):
        campaign.cancel(sender=organizer)
    expired = make_campaign()
    chain.pending_timestamp = expired.deadline()
    with reverts_exactly(expired, "CampaignWrongState", state=EXPIRED):
        expired.cancel(sender=organizer)


def test_refund_pays_the_deposit_once(make_campaign, pledger, make_pledge):
    campaign = make_campaign(deposit=DEPOSIT)
    make_pledge(campaign, pledger)
    campaign.withdraw(sender=pledger)
    before = pledger.balance
    receipt = campaign.refund(sender=pledger)
    assert pledger.balance == before + DEPOSIT - receipt.total_fees_paid
    [event] = campaign.Refunded.from_receipt(receipt)
    assert (event.to, event.amount) == (pledger.address, DEPOSIT)
    assert campaign.pledgeOf(pledger)[2] is False
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=pledger.address):
        campaign.refund(sender=pledger)


def test_refund_refused_for_live_pledge_while_open(make_campaign, pledger, make_pledge, stranger):
    campaign = make_campaign(deposit=DEPOSIT)
    make_pledge(campaign, pledger)
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=pledger.address):
        campaign.refund(sender=pledger)
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=stranger.address):
        campaign.refund(sender=stranger)


def test_expiry_makes_every_deposit_refundable(make_campaign, pledgers, make_pledge, organizer, chain):
    campaign = make_campaign(deposit=DEPOSIT, threshold=5)
    for who in pledgers[:3]:
        make_pledge(campaign, who)
    chain.pending_timestamp = campaign.deadline()
    chain.mine()
    assert campaign.state() == EXPIRED
    for who in [organizer, *pledgers[:3]]:
        campaign.refund(sender=who)
    assert campaign.balance == 0


def test_reveal_returns_deposits_without_beneficiary(make_campaign, pledgers, make_pledge, beneficiary):
    campaign = make_campaign(deposit=DEPOSIT, threshold=2)
    make_pledge(campaign, pledgers[0])
    assert campaign.refundableOf(pledgers[0]) == DEPOSIT
    campaign.refund(sender=pledgers[0])
    assert campaign.pledgeOf(pledgers[0])[:3] == (1, LIVE, False)  # still a member
    assert campaign.claimableDeposits() == 0
    with reverts_exactly(campaign, "CampaignNotBeneficiary", caller=beneficiary.address):
        campaign.claimDeposits(sender=beneficiary)


def test_beneficiary_takes_live_deposits_after_reveal(make_campaign, pledgers, make_pledge, beneficiary, stranger):
    campaign = make_campaign(deposit=DEPOSIT, threshold=3, beneficiary=beneficiary.address)
    make_pledge(campaign, pledgers[1])
    campaign.withdraw(sender=pledgers[1])  # its deposit stays the pledger's
    make_pledge(campaign, pledgers[0])
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=beneficiary.address):
        campaign.claimDeposits(sender=beneficiary)  # nothing before the reveal
    make_pledge(campaign, pledgers[2])  # the reveal: live = creator, 0, 2
    assert campaign.refundableOf(pledgers[0]) == 0
    with reverts_exactly(campaign, "CampaignNotBeneficiary", caller=stranger.address):
        campaign.claimDeposits(sender=stranger)

    before = beneficiary.balance
    receipt = campaign.claimDeposits(sender=beneficiary)
    assert beneficiary.balance == before + 3 * DEPOSIT - receipt.total_fees_paid
    assert campaign.DepositsClaimed.from_receipt(receipt)[0].amount == 3 * DEPOSIT
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=beneficiary.address):
        campaign.claimDeposits(sender=beneficiary)

    make_pledge(campaign, pledgers[3])  # a public-phase pledge adds one more deposit
    assert campaign.claimableDeposits() == DEPOSIT
    campaign.claimDeposits(sender=beneficiary)
    campaign.refund(sender=pledgers[1])  # the withdrawn pledger is still owed
    assert campaign.balance == 0


# ─── Keeper releases ─────────────────────────────────────────────────────────────────


def test_release_only_by_keepers_after_reveal(
    make_campaign, keeper_keys, keeper_accounts, pledgers, make_pledge, stranger
):
    campaign = make_campaign(threshold=2)
    kset = keeper_set(keeper_keys)
    with reverts_exactly(campaign, "CampaignWrongState", state=OPEN):
        campaign.release(kset, 1, b"\x01" * 100, sender=keeper_accounts[1])
    make_pledge(campaign, pledgers[0])

    receipt = campaign.release(kset, 1, b"\x07" * 100, sender=keeper_accounts[1])
    [event] = campaign.Released.from_receipt(receipt)
    assert (event.keeperIndex, event.keeper, bytes(event.data)) == (1, keeper_accounts[1].address, b"\x07" * 100)

    with reverts_exactly(campaign, "CampaignNotKeeper", caller=stranger.address, keeperIndex=1):
        campaign.release(kset, 1, b"\x01", sender=stranger)
    with reverts_exactly(campaign, "CampaignNotKeeper", caller=keeper_accounts[0].address, keeperIndex=1):
        campaign.release(kset, 1, b"\x01", sender=keeper_accounts[0])  # someone else's slot
    with reverts_exactly(campaign, "CampaignNotKeeper", caller=keeper_accounts[0].address, keeperIndex=3):
        campaign.release(kset, 3, b"\x01", sender=keeper_accounts[0])
    forged = [stranger.address, kset[1], kset[2]]
    with reverts_exactly(campaign, "CampaignKeeperSetMismatch"):
        campaign.release(forged, 0, b"\x01", sender=stranger)
    with reverts_exactly(campaign, "CampaignInvalidRelease", length=0, max=32_768):
        campaign.release(kset, 0, b"", sender=keeper_accounts[0])
    with reverts_exactly(campaign, "CampaignInvalidRelease", length=32_769, max=32_768):
        campaign.release(kset, 0, b"\x01" * 32_769, sender=keeper_accounts[0])


def test_no_release_for_expired_or_cancelled(make_campaign, keeper_keys, keeper_accounts, organizer, chain):
    kset = keeper_set(keeper_keys)
    cancelled = make_campaign()
    cancelled.cancel(sender=organizer)
    with reverts_exactly(cancelled, "CampaignWrongState", state=CANCELLED):
        cancelled.release(kset, 0, b"\x01", sender=keeper_accounts[0])
    expired = make_campaign()
    chain.pending_timestamp = expired.deadline()
    with reverts_exactly(expired, "CampaignWrongState", state=EXPIRED):
        expired.release(kset, 0, b"\x01", sender=keeper_accounts[0])


def test_keeper_address_follows_from_public_key(keeper_keys):
    for key in keeper_keys:
        assert keeper_pubkey_address(key.public_key.to_bytes()) == key.public_key.to_checksum_address()


def test_pledge_of_unknown_address(campaign, stranger):
    assert campaign.pledgeOf(stranger)[:3] == (0, NONE, False)
    assert campaign.scope() == MEMBERS


# ─── Format v2 configuration: relay, note, instructions, deployment block ────────────


def test_factory_records_its_deployment_block(project, deployer, forwarder, chain):
    factory = deployer.deploy(project.CampaignFactory, forwarder.address)
    receipt = chain.provider.get_receipt(factory.txn_hash)
    assert factory.deployedAt() == receipt.block_number
    assert factory.trustedForwarder() == forwarder.address


def test_relay_key_is_stored_as_a_tag(make_campaign):
    relay = b"\x03" + secrets.token_bytes(32)
    campaign = make_campaign(relay=relay, relayNote=b"\x04" * 200)
    assert campaign.relayTag() == keccak(relay)[:12]


@pytest.mark.parametrize(
    "relay", [b"\x02" * 32, b"\x02" * 34, b"\x04" + b"\x01" * 32, b"\x00" * 33], ids=["32", "34", "04", "00"]
)
def test_create_refuses_malformed_relay_key(make_campaign, factory, project, relay):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignInvalidRelayKey"):
        make_campaign(relay=relay)


def test_create_refuses_a_relay_note_without_relay_or_too_long(make_campaign, factory, project):
    impl = project.Campaign.at(factory.implementation())
    with reverts_exactly(impl, "CampaignInvalidRelayNote", length=10, max=1024):
        make_campaign(relayNote=b"\x01" * 10)
    with reverts_exactly(impl, "CampaignInvalidRelayNote", length=1025, max=1024):
        make_campaign(relay=b"\x02" + secrets.token_bytes(32), relayNote=b"\x01" * 1025)
    assert make_campaign(relay=b"\x02" + secrets.token_bytes(32), relayNote=b"\x01" * 1024).state() == OPEN


@pytest.mark.parametrize("size,ok", [(0, True), (24_576, True), (24_577, False)])
def test_instructions_size_bounds(make_campaign, factory, project, size, ok):
    impl = project.Campaign.at(factory.implementation())
    if ok:
        assert make_campaign(instructions=b"\x01" * size).state() == OPEN
    else:
        with reverts_exactly(impl, "CampaignInvalidInstructions", length=size, max=24_576):
            make_campaign(instructions=b"\x01" * size)


# ─── Late joiners (pledges after the reveal) ─────────────────────────────────────────


def _revealed(make_campaign: Any, make_pledge: Any, pledgers: list[Any], **config: Any) -> Any:
    campaign = make_campaign(threshold=2, **config)
    make_pledge(campaign, pledgers[0])
    assert campaign.state() == REVEALED
    return campaign


def test_known_policy_takes_late_pledges_and_marks_them(make_campaign, make_pledge, pledgers):
    campaign = _revealed(make_campaign, make_pledge, pledgers, lateJoiners=KNOWN)
    make_pledge(campaign, pledgers[1])
    assert campaign.pledgeOf(pledgers[0])[3] is False  # the crossing pledge is not late
    assert campaign.pledgeOf(pledgers[1])[:4] == (2, LIVE, False, True)
    assert campaign.pledgeCount() == 3


def test_closed_policy_refuses_pledges_after_the_reveal(make_campaign, make_pledge, pledgers):
    campaign = _revealed(make_campaign, make_pledge, pledgers, lateJoiners=CLOSED)
    with reverts_exactly(campaign, "CampaignClosedToLateJoiners"):
        make_pledge(campaign, pledgers[1])
    assert campaign.pledgeCount() == 2


def test_closed_policy_still_takes_pledges_before_the_reveal(make_campaign, make_pledge, pledgers):
    campaign = make_campaign(threshold=3, lateJoiners=CLOSED)
    make_pledge(campaign, pledgers[0])
    make_pledge(campaign, pledgers[1])  # the crossing pledge
    assert campaign.state() == REVEALED


@pytest.mark.parametrize("offset", [-1, 0], ids=["deadline-1s", "deadline"])
def test_roster_policy_locks_a_late_deposit_until_the_deadline(make_campaign, make_pledge, pledgers, chain, offset):
    """A `roster` late joiner cannot pledge and take its deposit back at once: the roster is never
    cheaper than the deposit locked until the deadline (no beneficiary)."""
    campaign = _revealed(make_campaign, make_pledge, pledgers, lateJoiners=ROSTER, deposit=DEPOSIT)
    make_pledge(campaign, pledgers[1])
    assert campaign.refundableOf(pledgers[1]) == 0
    with reverts_exactly(campaign, "CampaignNothingToRefund", caller=pledgers[1].address):
        campaign.refund(sender=pledgers[1])
    assert campaign.refundableOf(pledgers[0]) == DEPOSIT  # a member before the reveal is not locked
    chain.pending_timestamp = campaign.deadline() + offset
    chain.mine()
    assert campaign.refundableOf(pledgers[1]) == (DEPOSIT if offset == 0 else 0)


def test_known_policy_refunds_a_late_deposit_at_once(make_campaign, make_pledge, pledgers):
    campaign = _revealed(make_campaign, make_pledge, pledgers, lateJoiners=KNOWN, deposit=DEPOSIT)
    make_pledge(campaign, pledgers[1])
    assert campaign.refundableOf(pledgers[1]) == DEPOSIT


def test_flash_pledge_and_refund_is_refused_under_the_roster_policy(make_campaign, make_pledge, pledgers, project):
    """The attack of the outside review: a contract pledges junk and refunds in one transaction to
    be granted the roster for gas only. Under `roster` the refund is locked; the batch reverts."""
    campaign = _revealed(make_campaign, make_pledge, pledgers, lateJoiners=ROSTER, deposit=DEPOSIT)
    attacker = pledgers[2].deploy(project.FlashPledger, value=DEPOSIT)
    calls = [
        (campaign.address, campaign.pledge.as_transaction(envelope(), member_key()).data, DEPOSIT),
        (campaign.address, campaign.refund.as_transaction().data, 0),
    ]
    with reverts_exactly(attacker, "FlashPledgerCallFailed", index=1, reason=_error(campaign, attacker)):
        attacker.batch(*map(list, zip(*calls, strict=True)), sender=pledgers[2])
    assert campaign.pledgeCount() == 2


def _error(campaign: Any, attacker: Any) -> bytes:
    from conftest import encode_error

    return encode_error(campaign, "CampaignNothingToRefund", caller=attacker.address)
