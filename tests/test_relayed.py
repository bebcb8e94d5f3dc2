"""Relayed calls (ERC-2771, P8) on Ape's in-process chain: requests signed by keys that hold no
ether, carried to the deployment's forwarder by any account.

The requests are built and signed by `spartacus.forwarding` (the command line's and the relayer's
code), so these tests cover the EIP-712 encoding too: a wrong domain or type string would make
every relayed call fail with ERC2771ForwarderInvalidSigner.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import replace
from typing import Any

import ape
import pytest
from conftest import DAY, LIVE, NONE, WITHDRAWN, envelope, member_key, reverts_exactly
from eth_account import Account
from eth_account.messages import encode_typed_data

from spartacus.forwarding import ForwardRequest

DEPOSIT = 10**16


def fresh_key() -> Any:
    """A key that has never held ether: a member key."""
    return Account.from_key(secrets.token_bytes(32))


def sign(forwarder: Any, chain: Any, key: Any, to: Any, data: bytes, value: int = 0, **fields: Any) -> ForwardRequest:
    request = ForwardRequest(
        sender=key.address,
        to=str(getattr(to, "address", to)),
        value=value,
        gas=fields.pop("gas", 1_000_000),
        nonce=fields.pop("nonce", forwarder.nonces(key.address)),
        deadline=fields.pop("deadline", chain.pending_timestamp + DAY),
        data=bytes(data),
    )
    return request.sign(bytes(key.key), chain.chain_id, forwarder.address)


def execute(forwarder: Any, request: ForwardRequest, relayer: Any, value: int | None = None, **kw: Any) -> Any:
    return forwarder.execute(
        request.execute_args(), sender=relayer, value=request.value if value is None else value, **kw
    )


def recovered(forwarder: Any, chain: Any, request: ForwardRequest, nonce: int) -> str:
    """Whom the forwarder recovers from `request`'s signature once the signer's nonce is `nonce`."""
    signable = encode_typed_data(
        full_message=replace(request, nonce=nonce).typed_data(chain.chain_id, forwarder.address)
    )
    return str(Account.recover_message(signable, signature=request.signature))


def pledge_data(campaign: Any, env: bytes | None = None, mk: bytes | None = None) -> bytes:
    return bytes(campaign.pledge.encode_input(env or envelope(), mk or member_key()))


@pytest.fixture
def relayer(stranger: Any) -> Any:
    """The account that carries requests and pays for them (any account can)."""
    return stranger


# ─── The pledger is the signer ──────────────────────────────────────────────────────


def test_forwarder_is_trusted_by_factory_and_campaigns(factory, forwarder, campaign, project, deployer):
    assert factory.trustedForwarder() == forwarder.address == campaign.trustedForwarder()
    assert factory.isTrustedForwarder(forwarder.address) and campaign.isTrustedForwarder(forwarder.address)
    other = deployer.deploy(project.Forwarder)
    assert not campaign.isTrustedForwarder(other.address)
    name, version, chain_id, verifying = forwarder.eip712Domain()[1:5]
    assert (name, version, verifying) == ("Spartacus", "1", forwarder.address)


def test_relayed_pledge_is_the_signers(forwarder, campaign, relayer, chain):
    key = fresh_key()
    env, mk = envelope(), member_key()
    receipt = execute(forwarder, sign(forwarder, chain, key, campaign, pledge_data(campaign, env, mk)), relayer)

    [pledged] = campaign.Pledged.from_receipt(receipt)
    assert (pledged.index, pledged.pledger) == (1, key.address)
    assert (bytes(pledged.memberKey), bytes(pledged.envelope)) == (mk, env)
    [executed] = forwarder.ExecutedForwardRequest.from_receipt(receipt)
    assert (executed.signer, executed.nonce, executed.success) == (key.address, 0, True)
    assert campaign.pledgeOf(key.address)[1] == LIVE
    assert campaign.pledgeOf(relayer.address)[1] == NONE  # the relayer is nobody here
    assert forwarder.nonces(key.address) == 1
    assert chain.provider.get_balance(key.address) == 0  # it never held a wei


def test_sponsored_deposit_is_held_and_refunded_to_the_signer(forwarder, make_campaign, relayer, beneficiary, chain):
    c = make_campaign(deposit=DEPOSIT)
    key = fresh_key()
    before = relayer.balance
    receipt = execute(forwarder, sign(forwarder, chain, key, c, pledge_data(c), value=DEPOSIT), relayer)
    assert relayer.balance == before - DEPOSIT - receipt.total_fees_paid  # the relayer paid the deposit
    assert c.pledgeOf(key.address)[1:3] == (LIVE, True) and c.balance == 2 * DEPOSIT

    execute(forwarder, sign(forwarder, chain, key, c, c.withdraw.encode_input()), relayer)
    assert c.pledgeOf(key.address)[1:3] == (WITHDRAWN, True)
    # Any relayer carries the refund; the deposit goes to the signer, never to who sent it.
    paid_by = beneficiary.balance
    receipt = execute(forwarder, sign(forwarder, chain, key, c, c.refund.encode_input()), beneficiary)
    [refunded] = c.Refunded.from_receipt(receipt)
    assert (refunded.to, refunded.amount) == (key.address, DEPOSIT)
    assert chain.provider.get_balance(key.address) == DEPOSIT
    assert beneficiary.balance == paid_by - receipt.total_fees_paid
    assert c.balance == DEPOSIT  # the creator's


def test_relayed_pledge_with_the_wrong_value_is_refused_whole(forwarder, make_campaign, relayer, chain):
    c = make_campaign(deposit=DEPOSIT)
    key = fresh_key()
    request = sign(forwarder, chain, key, c, pledge_data(c), value=DEPOSIT - 1)
    with reverts_exactly(forwarder, "FailedCall"):  # the campaign's CampaignWrongDeposit, inside
        execute(forwarder, request, relayer)
    assert forwarder.nonces(key.address) == 0 and c.pledgeOf(key.address)[1] == NONE


def test_relayed_create_and_cancel_are_the_signers(forwarder, factory, make_config, project, relayer, chain):
    key = fresh_key()
    salt = secrets.token_bytes(32)
    config = make_config(deposit=DEPOSIT)
    data = factory.createCampaign.encode_input(config, salt, envelope(), member_key())
    receipt = execute(forwarder, sign(forwarder, chain, key, factory, data, value=DEPOSIT), relayer)
    [created] = factory.CampaignCreated.from_receipt(receipt)
    assert created.creator == key.address and created.campaign == factory.predictCampaign(key.address, salt)
    c = project.Campaign.at(created.campaign)
    assert c.creator() == key.address and c.pledgeOf(key.address)[1:3] == (LIVE, True)

    other = fresh_key()
    with reverts_exactly(forwarder, "FailedCall"):  # CampaignNotCreator, inside
        execute(forwarder, sign(forwarder, chain, other, c, c.cancel.encode_input()), relayer)
    receipt = execute(forwarder, sign(forwarder, chain, key, c, c.cancel.encode_input()), relayer)
    assert len(c.Cancelled.from_receipt(receipt)) == 1
    execute(forwarder, sign(forwarder, chain, key, c, c.refund.encode_input()), relayer)
    assert chain.provider.get_balance(key.address) == DEPOSIT


def test_relayed_claim_pays_the_beneficiary_key(forwarder, make_campaign, pledgers, make_pledge, relayer, chain):
    key = fresh_key()
    c = make_campaign(deposit=DEPOSIT, threshold=2, beneficiary=key.address)
    make_pledge(c, pledgers[0])
    execute(forwarder, sign(forwarder, chain, key, c, c.claimDeposits.encode_input()), relayer)
    assert chain.provider.get_balance(key.address) == 2 * DEPOSIT


# ─── Once, unaltered ────────────────────────────────────────────────────────────────


def test_a_signed_request_runs_once(forwarder, campaign, relayer, beneficiary, chain):
    key = fresh_key()
    request = sign(forwarder, chain, key, campaign, pledge_data(campaign))
    execute(forwarder, request, relayer)
    for carrier in (relayer, beneficiary):  # the same relayer, or any other
        with reverts_exactly(
            forwarder,
            "ERC2771ForwarderInvalidSigner",
            signer=recovered(forwarder, chain, request, 1),
            **{"from": key.address},
        ):
            execute(forwarder, request, carrier)
    assert campaign.pledgeCount() == 2 and forwarder.nonces(key.address) == 1


def test_replayed_pledge_after_withdrawal_never_lives_again(forwarder, campaign, relayer, chain):
    """P4: the pledge request a withdrawn pledger signed is dead, whoever replays it, however."""
    key = fresh_key()
    pledge = sign(forwarder, chain, key, campaign, pledge_data(campaign))
    execute(forwarder, pledge, relayer)
    execute(forwarder, sign(forwarder, chain, key, campaign, campaign.withdraw.encode_input()), relayer)
    assert campaign.pledgeOf(key.address)[1] == WITHDRAWN and campaign.pledgeCount() == 1

    signer = recovered(forwarder, chain, pledge, 2)
    with reverts_exactly(forwarder, "ERC2771ForwarderInvalidSigner", signer=signer, **{"from": key.address}):
        execute(forwarder, pledge, relayer)
    # The batch path skips an invalid request instead of reverting: still nothing.
    receipt = forwarder.executeBatch([pledge.execute_args()], relayer.address, sender=relayer)
    assert forwarder.ExecutedForwardRequest.from_receipt(receipt) == []
    assert campaign.pledgeOf(key.address)[1] == WITHDRAWN and campaign.pledgeCount() == 1
    assert forwarder.nonces(key.address) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"data": b"envelope"},
        {"value": 1},
        {"gas": 999_999},
        {"deadline": 1},
        {"to": "other campaign"},
        {"sender": "relayer"},
        {"nonce": 1},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_relayer_cannot_alter_a_request(forwarder, campaign, make_campaign, relayer, chain, change):
    key = fresh_key()
    signed = sign(forwarder, chain, key, campaign, pledge_data(campaign))
    field, value = next(iter(change.items()))
    if field == "data":
        value = pledge_data(campaign)  # another envelope and member key
    elif field == "to":
        value = make_campaign().address
    elif field == "sender":
        value = relayer.address
    elif field == "deadline":
        value = signed.deadline + 1
    altered = replace(signed, **{field: value})
    if field == "nonce":  # not in the call: the forwarder reads the nonce from its storage
        execute(forwarder, altered, relayer)
        assert campaign.pledgeOf(key.address)[1] == LIVE
        return
    signable = encode_typed_data(full_message=replace(altered, nonce=0).typed_data(chain.chain_id, forwarder.address))
    signer = Account.recover_message(signable, signature=signed.signature)
    with reverts_exactly(forwarder, "ERC2771ForwarderInvalidSigner", signer=signer, **{"from": altered.sender}):
        execute(forwarder, altered, relayer)
    assert forwarder.nonces(key.address) == 0 and campaign.pledgeOf(key.address)[1] == NONE
    execute(forwarder, signed, relayer)  # the unaltered request still runs
    assert campaign.pledgeOf(key.address)[1] == LIVE


def test_a_relayer_cannot_change_the_value_it_sends(forwarder, make_campaign, relayer, chain):
    c = make_campaign(deposit=DEPOSIT)
    key = fresh_key()
    request = sign(forwarder, chain, key, c, pledge_data(c), value=DEPOSIT)
    for sent in (0, DEPOSIT + 1):
        with reverts_exactly(forwarder, "ERC2771ForwarderMismatchedValue", requestedValue=DEPOSIT, msgValue=sent):
            execute(forwarder, request, relayer, value=sent)
    assert c.pledgeOf(key.address)[1] == NONE


def test_a_relayer_cannot_starve_the_call_of_gas(forwarder, campaign, relayer, chain):
    """With too little gas the whole transaction fails: never a used nonce without its pledge."""
    key = fresh_key()
    request = sign(forwarder, chain, key, campaign, pledge_data(campaign), gas=300_000)
    for limit in range(150_000, 340_000, 20_000):
        with contextlib.suppress(ape.exceptions.ContractLogicError):
            execute(forwarder, request, relayer, gas=limit)
        used, status = forwarder.nonces(key.address), campaign.pledgeOf(key.address)[1]
        assert (used, status) in ((0, NONE), (1, LIVE)), f"gas {limit}: nonce {used}, pledge status {status}"
        if used:
            break
    assert campaign.pledgeOf(key.address)[1] == LIVE


def test_expired_request_is_refused(forwarder, campaign, relayer, chain):
    key = fresh_key()
    deadline = chain.pending_timestamp + 60
    request = sign(forwarder, chain, key, campaign, pledge_data(campaign), deadline=deadline)
    chain.pending_timestamp = deadline + 1
    with reverts_exactly(forwarder, "ERC2771ForwarderExpiredRequest", deadline=deadline):
        execute(forwarder, request, relayer)


def test_an_untrusted_forwarder_is_refused(project, deployer, campaign, relayer, chain):
    other = deployer.deploy(project.Forwarder)
    key = fresh_key()
    data = pledge_data(campaign)
    request = ForwardRequest(key.address, campaign.address, 0, 500_000, 0, chain.pending_timestamp + DAY, data)
    request = request.sign(bytes(key.key), chain.chain_id, other.address)
    with reverts_exactly(other, "ERC2771UntrustfulTarget", target=campaign.address, forwarder=other.address):
        other.execute(request.execute_args(), sender=relayer)


def test_an_appended_sender_counts_only_from_the_forwarder(forwarder, campaign, pledger, make_pledge, stranger):
    """The ERC-2771 suffix is read only when the trusted forwarder calls: anyone else who appends a
    pledger's address to the calldata is still itself."""
    make_pledge(campaign, pledger)
    data = bytes(campaign.withdraw.encode_input()) + bytes.fromhex(pledger.address[2:])
    with reverts_exactly(campaign, "CampaignNoLivePledge", caller=stranger.address):
        stranger.transfer(campaign.address, 0, data=data)
    assert campaign.pledgeOf(pledger.address)[1] == LIVE


# ─── The envelope's binding to its pledger holds for relayed pledges ────────────────


def test_envelope_binding_to_the_signer_holds_for_relayed_pledges(
    forwarder, campaign, relayer, stranger, keeper_keys, chain
):
    """Keepers open a relayed pledge sealed for its signer; a copy carried for another key, or sent
    directly by another address, is bound to the wrong pledger and never opens (P4)."""
    from spartacus.envelope import PledgeContent, open_share, parse, seal
    from spartacus.keys import KeyPair
    from spartacus.types import CampaignContext

    ctx = CampaignContext(
        chain_id=chain.chain_id,
        campaign=campaign.address,
        keepers=tuple(k.public_key.to_bytes() for k in keeper_keys),
        keeper_threshold=2,
    )
    member = KeyPair.generate()
    sealed = seal(PledgeContent(name="Ana", contact={"email": "ana@example.org"}), ctx, member, pledger=member.address)
    data = pledge_data(campaign, sealed, member.compressed)
    key = Account.from_key(member.secret_bytes())
    receipt = execute(forwarder, sign(forwarder, chain, key, campaign, data), relayer)
    [pledged] = campaign.Pledged.from_receipt(receipt)
    assert pledged.pledger == member.address

    def opens(pledger: str) -> bool:
        from spartacus._exceptions import DecryptionError

        try:
            open_share(parse(sealed), 0, keeper_keys[0], ctx, member_key33=member.compressed, pledger=pledger)
        except DecryptionError:
            return False
        return True

    assert opens(pledged.pledger)
    thief = fresh_key()
    receipt = execute(forwarder, sign(forwarder, chain, thief, campaign, data), relayer)  # a relayed copy
    [copy] = campaign.Pledged.from_receipt(receipt)
    assert copy.pledger == thief.address and bytes(copy.envelope) == sealed and not opens(copy.pledger)
    receipt = campaign.pledge(sealed, member.compressed, sender=stranger)  # a direct copy
    [copy] = campaign.Pledged.from_receipt(receipt)
    assert copy.pledger == stranger.address and not opens(copy.pledger)
    assert not opens(relayer.address)  # nor for whoever carried the original
