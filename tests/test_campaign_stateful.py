"""Stateful property test: one campaign driven by random actions, against a Python model.

Each hypothesis example is a fresh campaign (the chain is snapshotted before it and
restored after it), with a nonzero deposit, a threshold of 2 to 5, a beneficiary or
none, and a late-joiner policy (known, roster, closed). The actions: pledge (right or wrong
deposit, by the creator, a live, idle or withdrawn pledger), withdraw, leave and return
(withdraw, maybe refund, pledge again), cancel (creator or stranger), refund, claimDeposits,
keeper release (keeper, wrong index, non-keeper, wrong keeper set, no data), time travel
(seconds, days, landing on deadline - 2 .. deadline + 2, a pledge racing the deadline), and
relayed calls (ERC-2771): pledge, withdraw, refund and cancel signed by a key (mostly one
that holds no ether) and carried by a relayer that pays the gas and sponsors the deposit,
and replays of used requests (run, or whose nonce moved on; expired ones too). The model
predicts every transaction's outcome: success, or the exact custom error with its arguments
(for a relayed call: the forwarder's own error, or the campaign's error inside the
forwarder's FailedCall, checked by calling the campaign as the forwarder).

After every step, against the chain:
- live count == live pledges in the model == `pledgeCount()`; `state()` == the model's;
- the reveal is permanent, and happened in the very pledge that first brought the live
  count to the threshold before the deadline (`ThresholdReached` in that receipt only);
- after expiry or cancel nothing more is accepted (count and pledges frozen);
- the campaign's balance == the deposits it owes == ledger in - ledger out;
- every account's balance == its start - its gas - deposits it paid + payments out, and no
  account takes out more than was paid in for it (the beneficiary: more than the live
  deposits); a signing key pays nothing, ever: the relayer pays the gas and the deposits it
  sponsors, and a refund goes to the signer;
- each pledger's `pledgeOf` (index, status, deposit held, late, digest: keccak256 of its
  `Pledged` log's data) is the model's; a relayed pledge's pledger is its signer;
- a request runs once: a replay never succeeds, so a withdrawn pledger's signed pledge
  never lives again (P4).

Scripted runs at the end drive the same model and invariants down fixed paths, every time.

Sizing: SPARTACUS_STATEFUL_EXAMPLES (default 200) and SPARTACUS_STATEFUL_STEPS (default 25).
Run with `-s` to see how often each outcome occurred.
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import ape
import pytest
from conftest import (
    CANCELLED,
    CLOSED,
    DAY,
    EXPIRED,
    KNOWN,
    LIVE,
    NONE,
    OPEN,
    REVEALED,
    ROSTER,
    WITHDRAWN,
    member_key,
    pledge_digest,
)
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from spartacus.forwarding import ForwardRequest

MAX_EXAMPLES = int(os.environ.get("SPARTACUS_STATEFUL_EXAMPLES", "200"))
STEPS = int(os.environ.get("SPARTACUS_STATEFUL_STEPS", "25"))
MAX_RELEASE = 32_768
ZERO = "0x" + "00" * 20
DEPOSITS = [1, 10**15, 10**18]  # 1 wei: "one wei under" is then no deposit at all
ENVELOPE = b"\x01" + b"\x5a" * 31  # small: the contract never parses it
STATE_NAMES = ["Open", "Revealed", "Expired", "Cancelled"]
EXECUTE = "execute((address,address,uint256,uint256,uint48,bytes,bytes))"
REQUEST_GAS = 500_000  # what each relayed request lets its call use
REQUEST_TTL = 2 * DAY  # how long a signed request stays valid: time travel expires some

# The forwarder is funded by a self-destruct (see `machine_env`), which py-evm warns about.
pytestmark = pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")

# How often each outcome occurred, over the whole run (printed at the end; some asserted).
OUTCOMES: Counter[str] = Counter()


# ─── The chain, driven directly ─────────────────────────────────────────────────────


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def calldata(signature: str, *args: Any) -> bytes:
    types = signature[signature.index("(") + 1 : -1]
    return _selector(signature) + abi_encode([t for t in types.split(",") if t], list(args))


@dataclass
class Sent:
    """One mined transaction: its receipt, its revert data (None if it succeeded), its fee."""

    receipt: dict[str, Any]
    revert: bytes | None
    fee: int


class FastChain:
    """The in-process EthTester chain, without Ape's per-transaction machinery.

    A step costs a transaction or two plus a dozen reads, for 5,000 steps a run. Through
    Ape a transaction costs ~2.5x what it costs here and a view ~3x, which would put a
    200-example run past four minutes on a busy 2-core machine. Campaign creation (once
    per example) and every other test file go through Ape.
    """

    def __init__(self) -> None:
        provider = ape.chain.provider
        tester = getattr(getattr(provider, "tester", None), "ethereum_tester", None)
        if tester is None:
            pytest.skip("needs Ape's in-process EthTester provider")
        self.tester = tester
        self.backend = provider.evm_backend
        self.chain_id = ape.chain.chain_id
        self.unlocked = set(tester.get_accounts())
        self.keys: dict[str, str] = {}  # senders not unlocked in the tester (the keepers)

    def add_key(self, address: str, private_key: str) -> None:
        self.keys[address] = private_key

    def send(self, sender: str, to: str, data: bytes, value: int = 0) -> Sent:
        tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "value": value, "gas": 1_000_000}
        if sender in self.unlocked:
            tx_hash = self.tester.send_transaction(tx)
        else:
            signed = Account.sign_transaction(
                {
                    **{k: v for k, v in tx.items() if k != "from"},
                    "nonce": self.tester.get_nonce(sender),
                    "chainId": self.chain_id,
                    "maxFeePerGas": 10**9,
                    "maxPriorityFeePerGas": 0,
                },
                self.keys[sender],
            )
            tx_hash = self.tester.send_raw_transaction("0x" + signed.raw_transaction.hex())
        receipt = self.tester.get_transaction_receipt(tx_hash)
        fee = receipt["gas_used"] * receipt["effective_gas_price"]
        if receipt["status"] == 1:
            return Sent(receipt, None, fee)
        # EthTester keeps no revert data: replay the call on the state it ran on (a failed
        # transaction changes nothing but its sender's nonce and balance).
        try:
            self.tester.call(tx, "latest")
        except TransactionFailed as err:
            return Sent(receipt, _revert_bytes(err), fee)
        raise AssertionError(f"{tx} failed, but its replay did not")

    def revert_of(self, sender: str, to: str, data: bytes, value: int = 0) -> bytes | None:
        """The revert data of a call, None if it succeeds (for a relayed call's inner error)."""
        try:
            self.tester.call({"from": sender, "to": to, "data": "0x" + data.hex(), "value": value}, "latest")
        except TransactionFailed as err:
            return _revert_bytes(err)
        return None

    def call(self, sender: str, to: str, data: bytes) -> bytes:
        # EthTester checks that `from` could pay for the call's gas: pass a funded account.
        return HexBytes(self.tester.call({"from": sender, "to": to, "data": "0x" + data.hex()}, "latest"))

    def balance(self, address: str) -> int:
        return self.backend.get_balance(HexBytes(address))

    def timestamp(self, block: str) -> int:
        return self.backend.get_block_by_number(block)["timestamp"]


def _revert_bytes(err: TransactionFailed) -> bytes:
    """EthTester raises the revert data as the str() of the bytes."""
    message = err.args[0] if err.args else ""
    if isinstance(message, bytes):
        return message
    try:
        value = ast.literal_eval(message)
    except (ValueError, SyntaxError):
        return str(message).encode()
    return value if isinstance(value, bytes) else str(message).encode()


def encode_error(contract: Any, name: str, inputs: dict[str, Any]) -> bytes:
    """The revert data of custom error `name` of `contract` with these arguments."""
    abi = getattr(contract, name).abi
    assert {i.name for i in abi.inputs} == set(inputs), f"{name}: arguments {sorted(inputs)}"
    types = [i.canonical_type for i in abi.inputs]
    return _selector(abi.selector) + abi_encode(types, [inputs[i.name] for i in abi.inputs])


def decode_events(contract: Any, name: str, receipt: dict[str, Any]) -> list[dict[str, Any]]:
    """The `name` events `contract` emitted in `receipt`, as dicts of their arguments."""
    abi = getattr(contract, name).abi
    topic0 = keccak(text=abi.selector)
    indexed = [i for i in abi.inputs if i.indexed]
    plain = [i for i in abi.inputs if not i.indexed]
    events = []
    for log in receipt["logs"]:
        topics = [HexBytes(t) for t in log["topics"]]
        if HexBytes(log["address"]) != HexBytes(contract.address) or topics[0] != topic0:
            continue
        values = {i.name: abi_decode([i.canonical_type], t)[0] for i, t in zip(indexed, topics[1:], strict=True)}
        decoded = abi_decode([i.canonical_type for i in plain], HexBytes(log["data"]))
        values.update({i.name: v for i, v in zip(plain, decoded, strict=True)})
        events.append(
            {k: to_checksum_address(v) if isinstance(v, str) and len(v) == 42 else v for k, v in values.items()}
        )
    return events


# ─── The model ──────────────────────────────────────────────────────────────────────


@dataclass
class PledgeModel:
    index: int = 0
    status: int = NONE
    held: bool = False
    late: bool = False  # made after the reveal
    digest: bytes = bytes(20)  # keccak256 of its Pledged log's data (pledge 0: with the instructions)


@dataclass
class Model:
    creator: str
    beneficiary: str  # ZERO: deposits go back to the pledgers after the reveal
    threshold: int
    deposit: int
    deadline: int
    late_joiners: int = KNOWN
    stored: int = OPEN  # Open, Revealed or Cancelled; Expired is derived, as in the contract
    count: int = 0
    next_index: int = 0
    claimed: int = 0  # live pledges whose deposit the beneficiary took
    reveal_block: int = 0
    pledges: dict[str, PledgeModel] = field(default_factory=dict)
    paid_in: Counter[str] = field(default_factory=Counter)  # deposits paid in for each pledger
    paid_out: Counter[str] = field(default_factory=Counter)  # wei the campaign sent back
    nonces: Counter[str] = field(default_factory=Counter)  # the forwarder's nonce of each signer

    def pledge_of(self, who: str) -> PledgeModel:
        return self.pledges.setdefault(who, PledgeModel())

    def state(self, t: int) -> int:
        if self.stored == OPEN and t >= self.deadline:
            return EXPIRED
        return self.stored

    def live(self) -> int:
        return sum(p.status == LIVE for p in self.pledges.values())

    def refundable(self, who: str, t: int) -> int:
        p = self.pledge_of(who)
        if not p.held:
            return 0
        if p.status == WITHDRAWN:
            return self.deposit
        s = self.state(t)
        if s in (EXPIRED, CANCELLED):
            return self.deposit
        if s == REVEALED and self.beneficiary == ZERO:
            # A late joiner that got the roster keeps its deposit locked until the deadline.
            return 0 if p.late and self.late_joiners == ROSTER and t < self.deadline else self.deposit
        return 0  # Open: withdraw first; Revealed with a beneficiary: forfeit

    def claimable(self) -> int:
        if self.stored != REVEALED or self.beneficiary == ZERO:
            return 0
        return (self.count - self.claimed) * self.deposit

    def owed(self) -> int:
        """What the campaign must hold: every held deposit but those the beneficiary took."""
        return (sum(p.held for p in self.pledges.values()) - self.claimed) * self.deposit


Expect = tuple[str, dict[str, Any]] | None


@dataclass
class Signed:
    """A relayed request the machine signed, and whether it ran."""

    request: ForwardRequest
    ran: bool = False


@dataclass
class Env:
    """The pytest fixtures the machine needs (hypothesis builds the machine itself)."""

    factory: Any
    organizer: Any
    pledgers: list[Any]
    stranger: Any
    beneficiary: Any
    keepers: list[Any]
    make_config: Callable[..., dict[str, Any]]
    project: Any
    fast: FastChain
    forwarder: Any
    relayer: Any  # carries every relayed request, pays its gas and the deposits it sponsors


class CampaignMachine(RuleBasedStateMachine):
    env: ClassVar[Env]

    def __init__(self) -> None:
        super().__init__()
        self.snapshot = ape.chain.snapshot()
        e = self.env
        self.fast = e.fast
        self.pool = [a.address for a in (e.organizer, *e.pledgers[:4])]  # the organizer holds pledge 0
        self.stranger = e.stranger.address
        self.beneficiary = e.beneficiary.address
        self.keeper_set = [k.address for k in e.keepers]
        self.relayer = e.relayer.address
        self.forwarder = e.forwarder.address
        # Keys that sign relayed requests: three that never held ether, and the pooled accounts'.
        walletless = [Account.create() for _ in range(3)]
        self.walletless = [k.address for k in walletless]
        self.keys = {k.address: bytes(k.key) for k in walletless}
        self.keys |= {a.address: bytes.fromhex(a.private_key[2:]) for a in (e.organizer, *e.pledgers[:4], e.stranger)}
        self.signers = [*self.walletless, *self.pool[1:]]  # who signs relayed pledges, withdrawals, refunds
        self.tracked = [*self.pool, self.stranger, self.beneficiary, *self.keeper_set, self.relayer, *self.walletless]
        self.start = {a: self.fast.balance(a) for a in self.tracked}
        self.fees: Counter[str] = Counter()
        self.spent: Counter[str] = Counter()  # deposits each account paid out of its own balance
        self.signed: list[Signed] = []
        self.relay_next = False  # the next transaction goes through the forwarder
        self.payer = ""  # who paid the value of the last successful transaction
        self.frozen: tuple[Any, ...] | None = None
        self.revealed = False
        self.mined = self.changed = True  # transactions since the last check: any, successful
        self.log: list[str] = []  # every predicted outcome, in order

    def teardown(self) -> None:
        if hasattr(self, "m"):
            OUTCOMES[f"example ends {STATE_NAMES[self.m.state(self.fast.timestamp('latest'))]}"] += 1
        ape.chain.restore(self.snapshot)

    # ─── Setup ──────────────────────────────────────────────────────────────────────

    @initialize(
        threshold=st.sampled_from([2, 3, 4, 5]),
        deposit=st.sampled_from(DEPOSITS),
        with_beneficiary=st.booleans(),
        # A spread, not st.integers: that draws mostly a few minutes, and most campaigns
        # would expire before anything interesting happened.
        duration=st.sampled_from([120, 3600, DAY, 7 * DAY, 30 * DAY]),
        late=st.sampled_from([KNOWN, KNOWN, ROSTER, CLOSED]),
    )
    def create(self, threshold: int, deposit: int, with_beneficiary: bool, duration: int, late: int = KNOWN) -> None:
        e = self.env
        beneficiary = self.beneficiary if with_beneficiary else ZERO
        t0 = self.fast.timestamp("pending")
        config = e.make_config(
            threshold=threshold, deposit=deposit, beneficiary=beneficiary, deadline=t0 + duration, lateJoiners=late
        )
        mk = member_key()
        receipt = e.factory.createCampaign(config, os.urandom(32), ENVELOPE, mk, sender=e.organizer, value=deposit)
        self.fees[e.organizer.address] += receipt.total_fees_paid
        [created] = e.factory.CampaignCreated.from_receipt(receipt)
        self.c = e.project.Campaign.at(created.campaign)
        self.m = Model(self.pool[0], beneficiary, threshold, deposit, t0 + duration, late)
        self.instructions_hash = keccak(config["instructions"])
        self.payer = self.pool[0]
        self._record_pledge(self.pool[0], deposit, mk)

    # ─── Transactions ───────────────────────────────────────────────────────────────

    def _send(self, label: str, sender: str, data: bytes, value: int = 0, *, expect: Expect) -> dict | None:
        """Sends one transaction (directly, or signed by `sender` and relayed if `relay_next` is set);
        checks it succeeded or failed exactly as predicted."""
        if self.relay_next:
            self.relay_next = False
            return self._relay(label, sender, data, value, expect)
        outcome = f"{label}: {expect[0] if expect else 'ok'}"
        OUTCOMES[outcome] += 1
        self.log.append(outcome)
        sent = self.fast.send(sender, self.c.address, data, value)
        self.fees[sender] += sent.fee
        self.mined = True
        if sent.revert is not None:
            assert expect is not None, f"{label} by {sender} reverted unexpectedly: {sent.revert.hex()}"
            assert sent.revert == encode_error(self.c, *expect), (
                f"{label} by {sender}: expected {expect}, got 0x{sent.revert.hex()}"
            )
            return None
        assert expect is None, f"{label} by {sender} succeeded, expected {expect}"
        self.changed = True
        self.payer = sender
        return sent.receipt

    # ─── Relayed calls ──────────────────────────────────────────────────────────────

    def _sign(self, signer: str, data: bytes, value: int) -> Signed:
        request = ForwardRequest(
            sender=signer,
            to=self.c.address,
            value=value,
            gas=REQUEST_GAS,
            nonce=self.m.nonces[signer],
            deadline=self.fast.timestamp("pending") + REQUEST_TTL,
            data=data,
        ).sign(self.keys[signer], self.fast.chain_id, self.forwarder)
        signed = Signed(request)
        self.signed.append(signed)
        return signed

    def _relay(self, label: str, signer: str, data: bytes, value: int, expect: Expect) -> dict | None:
        """A request signed by `signer`, carried by the relayer (who pays the gas and the value)."""
        return self._execute(f"relayed {label}", self._sign(signer, data, value), expect)

    def _forwarder_refusal(self, request: ForwardRequest) -> Expect:
        """The forwarder's own refusal of `request` now, before it calls anything; None if it calls."""
        if request.deadline < self.fast.timestamp("pending"):
            return ("ERC2771ForwarderExpiredRequest", {"deadline": request.deadline})
        nonce = self.m.nonces[request.sender]
        if request.nonce != nonce:  # it recovers another signer under the nonce in its storage
            signable = encode_typed_data(
                full_message=replace(request, nonce=nonce).typed_data(self.fast.chain_id, self.forwarder)
            )
            recovered = Account.recover_message(signable, signature=request.signature)
            return ("ERC2771ForwarderInvalidSigner", {"signer": recovered, "from": request.sender})
        return None

    def _execute(self, label: str, signed: Signed, expect: Expect) -> dict | None:
        """Carries `signed` to `Forwarder.execute`; `expect` is the campaign's predicted refusal."""
        request = signed.request
        refusal = self._forwarder_refusal(request)
        outcome = f"{label}: {(refusal or expect or ('ok',))[0]}"
        OUTCOMES[outcome] += 1
        self.log.append(outcome)
        data = _selector(EXECUTE) + abi_encode([EXECUTE[8:-1]], [request.execute_args()])
        sent = self.fast.send(self.relayer, self.forwarder, data, request.value)
        self.fees[self.relayer] += sent.fee
        self.mined = True
        if refusal is not None:
            assert sent.revert == encode_error(self.env.forwarder, *refusal), f"{label}: expected {refusal}"
            return None
        if expect is not None:
            # The forwarder says only FailedCall(): the campaign's own error is that of the same
            # call made as the forwarder makes it (data ‖ signer, from the forwarder).
            assert sent.revert == encode_error(self.env.forwarder, "FailedCall", {}), f"{label}: expected {expect}"
            inner = request.data + bytes.fromhex(request.sender[2:])
            revert = self.fast.revert_of(self.forwarder, self.c.address, inner, request.value)
            assert revert == encode_error(self.c, *expect), f"{label}: expected {expect}, got {revert!r}"
            return None
        assert sent.revert is None, f"{label} by {request.sender} reverted unexpectedly: {sent.revert.hex()}"
        [executed] = decode_events(self.env.forwarder, "ExecutedForwardRequest", sent.receipt)
        assert (executed["signer"], executed["nonce"], executed["success"]) == (request.sender, request.nonce, True)
        self.m.nonces[request.sender] += 1
        signed.ran = True
        self.changed = True
        self.payer = self.relayer
        return sent.receipt

    def _view(self, signature: str, out: list[str], *args: Any) -> Any:
        return abi_decode(out, self.fast.call(self.stranger, self.c.address, calldata(signature, *args)))

    def _uint(self, name: str) -> int:
        return self._view(f"{name}()", ["uint256"])[0]

    def _check_pledger(self, who: str) -> None:
        p = self.m.pledge_of(who)
        index, status, held, late, digest = self._view(
            "pledgeOf(address)", ["uint256", "uint8", "bool", "bool", "bytes20"], who
        )
        assert (status, held) == (p.status, p.held), who
        if p.status != NONE:
            assert (index, late, digest) == (p.index, p.late, p.digest), who
        refundable = self._view("refundableOf(address)", ["uint256"], who)[0]
        assert refundable == self.m.refundable(who, self.fast.timestamp("latest")), who

    def _record_pledge(self, who: str, value: int, mk: bytes, receipt: dict | None = None, t: int = 0) -> None:
        m = self.m
        p = m.pledge_of(who)
        reveals = m.stored == OPEN and m.count + 1 >= m.threshold
        p.index, p.status, p.held, p.late = m.next_index, LIVE, True, m.stored == REVEALED
        p.digest = pledge_digest(mk, ENVELOPE, m.count + 1)
        if p.index == 0:  # the creator's record: its digest covers the sealed instructions too
            p.digest = keccak(
                keccak(abi_encode(["bytes", "bytes", "uint256"], [mk, ENVELOPE, 1])) + self.instructions_hash
            )[:20]
        m.next_index += 1
        m.count += 1
        m.paid_in[who] += value
        self.spent[self.payer] += value  # the relayer, for a sponsored deposit
        if reveals:
            assert m.count == m.threshold  # the first time the live count reaches N
            assert receipt is None or t < m.deadline  # and before the deadline
            m.stored = REVEALED
            self.revealed = True
            OUTCOMES["reveal"] += 1
            self.log.append("reveal")
        if receipt is not None:
            [event] = decode_events(self.c, "Pledged", receipt)
            assert (event["index"], event["pledger"], event["count"]) == (p.index, who, m.count)
            reached = decode_events(self.c, "ThresholdReached", receipt)
            assert len(reached) == int(reveals), "ThresholdReached in exactly the N-th live pledge"
            if reveals:
                assert (reached[0]["count"], reached[0]["lastIndex"]) == (m.count, p.index)
                m.reveal_block = receipt["block_number"]

    # Hypothesis draws rules far from uniformly, and differently from run to run. The
    # weights below (a doubled rule, sampled_from lists with repeats rather than
    # st.integers, which favours its low end) steer it towards the paths that matter.

    @rule(who=st.integers(0, 4))
    def advance(self, who: int) -> None:
        """An account without a live pledge pledges with the right deposit: towards N."""
        idle = [a for a in self.pool if self.m.pledge_of(a).status != LIVE] or self.pool
        self._pledge(idle[who % len(idle)], "right")

    @rule(who=st.integers(0, 4))
    def advance_too(self, who: int) -> None:
        """The same as `advance`, so that most examples get to the threshold."""
        self.advance(who)

    @rule(
        who=st.integers(0, 4),
        idle=st.booleans(),
        deposit=st.sampled_from(["right", "right", "none", "full", "wei over", "wei under"]),
    )
    def pledge(self, who: int, idle: bool, deposit: str) -> None:
        """Any pooled account (the creator or a live one, too) or an idle one, any deposit."""
        candidates = [a for a in self.pool if self.m.pledge_of(a).status != LIVE] if idle else []
        candidates = candidates or self.pool
        self._pledge(candidates[who % len(candidates)], deposit)

    @rule(who=st.integers(0, 3), take_back=st.booleans(), deposit=st.sampled_from(["right", "right", "none", "full"]))
    def leave_and_return(self, who: int, take_back: bool, deposit: str) -> None:
        """A pledger (not the creator; a live one if any) withdraws, maybe takes its deposit
        back, and pledges again: a held deposit must be reused, a refunded one paid anew.

        Three transactions, each predicted; as one rule so that this path is not left to
        chance (hypothesis draws rules far from uniformly).
        """
        live = [a for a in self.pool[1:] if self.m.pledge_of(a).status == LIVE] or self.pool[1:]
        actor = live[who % len(live)]
        self._withdraw(actor)
        if take_back:
            self._refund(actor)
        self._pledge(actor, deposit)

    def _pledge(self, who: str, deposit: str) -> None:
        m = self.m
        p = m.pledge_of(who)
        required = 0 if p.held else m.deposit  # a withdrawn pledge's held deposit is reused
        value = {
            "right": required,
            "none": 0,
            "full": m.deposit,
            "wei over": required + 1,
            "wei under": max(required - 1, 0) if required else m.deposit - 1,
        }[deposit]
        t = self.fast.timestamp("pending")
        s = m.state(t)
        expect: Expect = None
        if s not in (OPEN, REVEALED):
            expect = ("CampaignWrongState", {"state": s})
        elif s == REVEALED and m.late_joiners == CLOSED:
            expect = ("CampaignClosedToLateJoiners", {})
        elif p.status == LIVE:
            expect = ("CampaignAlreadyPledged", {"pledger": who, "index": p.index})
        elif value != required:
            expect = ("CampaignWrongDeposit", {"sent": value, "required": required})
        if p.status == WITHDRAWN and s in (OPEN, REVEALED):
            OUTCOMES[f"pledge again, deposit {'held' if p.held else 'refunded'}: {expect[0] if expect else 'ok'}"] += 1
            OUTCOMES[f"pledge again, deposit {'held' if p.held else 'refunded'}"] += 1
        mk = member_key()
        data = calldata("pledge(bytes,bytes)", ENVELOPE, mk)
        receipt = self._send(f"pledge {STATE_NAMES[s]}", who, data, value, expect=expect)
        if receipt is not None:
            assert s in (OPEN, REVEALED), "a pledge was accepted after expiry or cancel"
            self._record_pledge(who, value, mk, receipt, t)
            self._check_pledger(who)

    @rule(who=st.integers(0, 5), live=st.sampled_from([True, True, True, False]))
    def withdraw(self, who: int, live: bool) -> None:
        """Mostly a live pledger other than the creator; else the creator, a stranger, anyone."""
        candidates = [a for a in self.pool[1:] if self.m.pledge_of(a).status == LIVE] if live else []
        candidates = candidates or [*self.pool, self.stranger]
        self._withdraw(candidates[who % len(candidates)])

    def _withdraw(self, actor: str) -> None:
        m = self.m
        p = m.pledge_of(actor)
        s = m.state(self.fast.timestamp("pending"))
        expect: Expect = None
        if s != OPEN:
            expect = ("CampaignWrongState", {"state": s})
        elif actor == m.creator:
            expect = ("CampaignCreatorCannotWithdraw", {})
        elif p.status != LIVE:
            expect = ("CampaignNoLivePledge", {"caller": actor})
        receipt = self._send(f"withdraw {STATE_NAMES[s]}", actor, calldata("withdraw()"), expect=expect)
        if receipt is not None:
            assert s == OPEN, "a withdrawal was accepted after the reveal, expiry or cancel"
            p.status = WITHDRAWN  # the deposit stays held: refund() or a new pledge takes it
            m.count -= 1
            [event] = decode_events(self.c, "Withdrawn", receipt)
            assert (event["index"], event["pledger"], event["count"]) == (p.index, actor, m.count)
            self._check_pledger(actor)

    @rule(who=st.integers(0, 6), due=st.sampled_from([True, True, True, False]))
    def refund(self, who: int, due: bool) -> None:
        """Mostly an account with a refund due; else anyone, the beneficiary included."""
        m = self.m
        t = self.fast.timestamp("pending")
        anyone = [*self.pool, self.stranger, self.beneficiary]
        candidates = [a for a in anyone if m.refundable(a, t)] if due else []
        candidates = candidates or anyone
        self._refund(candidates[who % len(candidates)])

    def _refund(self, actor: str) -> None:
        m = self.m
        amount = m.refundable(actor, self.fast.timestamp("pending"))
        expect: Expect = None if amount else ("CampaignNothingToRefund", {"caller": actor})
        receipt = self._send("refund", actor, calldata("refund()"), expect=expect)
        if receipt is not None:
            m.pledge_of(actor).held = False
            m.paid_out[actor] += amount
            [event] = decode_events(self.c, "Refunded", receipt)
            assert (event["to"], event["amount"]) == (actor, amount)
            self._check_pledger(actor)

    @rule(by_creator=st.sampled_from([True, False, False, False]))
    def cancel(self, by_creator: bool) -> None:
        """The creator one time in four (a cancel ends most of an example's interest)."""
        self._cancel(self.m.creator if by_creator else self.stranger)

    def _cancel(self, actor: str) -> None:
        m = self.m
        s = m.state(self.fast.timestamp("pending"))
        expect: Expect = None
        if actor != m.creator:
            expect = ("CampaignNotCreator", {"caller": actor})
        elif s != OPEN:
            expect = ("CampaignWrongState", {"state": s})
        receipt = self._send(f"cancel {STATE_NAMES[s]}", actor, calldata("cancel()"), expect=expect)
        if receipt is not None:
            assert s == OPEN, "a cancel was accepted after the reveal, expiry or cancel"
            m.stored = CANCELLED
            [event] = decode_events(self.c, "Cancelled", receipt)
            assert event["count"] == m.count

    @rule(who=st.sampled_from(["beneficiary", "beneficiary", "beneficiary", "stranger", "pledger"]))
    def claim(self, who: str) -> None:
        m = self.m
        actor = {"beneficiary": self.beneficiary, "stranger": self.stranger, "pledger": self.pool[1]}[who]
        amount = m.claimable()
        expect: Expect = None
        if m.beneficiary == ZERO or actor != m.beneficiary:
            expect = ("CampaignNotBeneficiary", {"caller": actor})
        elif amount == 0:
            expect = ("CampaignNothingToRefund", {"caller": actor})
        receipt = self._send("claimDeposits", actor, calldata("claimDeposits()"), expect=expect)
        if receipt is not None:
            m.claimed = m.count
            m.paid_out[actor] += amount
            [event] = decode_events(self.c, "DepositsClaimed", receipt)
            assert (event["beneficiary"], event["amount"]) == (actor, amount)

    @rule(
        kind=st.sampled_from(["keeper", "keeper", "wrong-index", "non-keeper", "wrong-set", "no-data"]),
        k=st.integers(0, 2),
    )
    def release(self, kind: str, k: int) -> None:
        """Keeper k at its index; at a wrong index; a non-keeper; a wrong keeper set; no data."""
        m = self.m
        keeper_set, index, data, actor = list(self.keeper_set), k, b"\x01share", self.keeper_set[k]
        if kind == "wrong-index":
            index = (k + 1) % len(keeper_set) if k % 2 else len(keeper_set)
        elif kind == "non-keeper":
            actor = self.stranger
        elif kind == "wrong-set":
            keeper_set.reverse()
        elif kind == "no-data":
            data = b""
        s = m.state(self.fast.timestamp("pending"))
        expect: Expect = None
        if keeper_set != self.keeper_set:
            expect = ("CampaignKeeperSetMismatch", {})
        elif index >= len(keeper_set) or keeper_set[index] != actor:
            expect = ("CampaignNotKeeper", {"caller": actor, "keeperIndex": index})
        elif m.stored != REVEALED:
            expect = ("CampaignWrongState", {"state": s})
        elif not data:
            expect = ("CampaignInvalidRelease", {"length": 0, "max": MAX_RELEASE})
        tx = calldata("release(address[],uint256,bytes)", keeper_set, index, data)
        receipt = self._send(f"release {STATE_NAMES[s]}", actor, tx, expect=expect)
        if receipt is not None:
            [event] = decode_events(self.c, "Released", receipt)
            assert (event["keeperIndex"], event["keeper"], event["data"]) == (index, actor, data)

    # ─── Relayed: signed by a key, carried and paid for by the relayer ─────────────

    @rule(who=st.integers(0, 7), deposit=st.sampled_from(["right", "right", "right", "none", "wei over"]))
    def relayed_pledge(self, who: int, deposit: str) -> None:
        """A key pledges through the relayer, which sponsors the deposit: mostly an idle key that
        holds no ether; a pooled account's key too (its pledger is the key's address either way)."""
        idle = [a for a in self.signers if self.m.pledge_of(a).status != LIVE] or self.signers
        self.relay_next = True
        self._pledge(idle[who % len(idle)], deposit)

    @rule(who=st.integers(0, 7), live=st.sampled_from([True, True, True, False]))
    def relayed_withdraw(self, who: int, live: bool) -> None:
        """Mostly a live relayed pledger; else the creator, an idle key, anyone."""
        candidates = [a for a in self.signers if self.m.pledge_of(a).status == LIVE] if live else []
        candidates = candidates or [*self.signers, self.pool[0]]
        self.relay_next = True
        self._withdraw(candidates[who % len(candidates)])

    @rule(who=st.integers(0, 7), due=st.sampled_from([True, True, True, False]))
    def relayed_refund(self, who: int, due: bool) -> None:
        """A refund carried by the relayer: the deposit goes to the signer, never to the relayer."""
        t = self.fast.timestamp("pending")
        anyone = [*self.signers, self.pool[0]]
        candidates = [a for a in anyone if self.m.refundable(a, t)] if due else []
        candidates = candidates or anyone
        self.relay_next = True
        self._refund(candidates[who % len(candidates)])

    @rule(by_creator=st.sampled_from([True, False, False, False]), who=st.integers(0, 2))
    def relayed_cancel(self, by_creator: bool, who: int) -> None:
        """The creator's key, or a key that holds no ether, cancels through the relayer."""
        self.relay_next = True
        self._cancel(self.m.creator if by_creator else self.walletless[who])

    @rule(who=st.integers(0, 2))
    def relayed_leave_and_replay(self, who: int) -> None:
        """A key that holds no ether pledges through the relayer and withdraws; then its signed
        pledge is replayed: it must not live again (P4). Three transactions, each predicted, as
        one rule so that this path is not left to chance."""
        key = self.walletless[who]
        self.relay_next = True
        self._pledge(key, "right")
        self.relay_next = True
        self._withdraw(key)
        self.replay(0, withdrawn=True)

    @rule(which=st.integers(0, 1000), withdrawn=st.booleans())
    def replay(self, which: int, withdrawn: bool = False) -> None:
        """Any relayer replays a used request (one that ran, or whose nonce moved on, or that
        expired): never accepted, so a withdrawn pledger's pledge never lives again (P4). Half
        the time, a withdrawn pledger's own pledge if there is one."""
        t = self.fast.timestamp("pending")
        used = [
            s
            for s in self.signed
            if s.ran or s.request.nonce < self.m.nonces[s.request.sender] or s.request.deadline < t
        ]
        pledge = _selector("pledge(bytes,bytes)")
        theirs = [
            s
            for s in used
            if s.ran and s.request.data[:4] == pledge and self.m.pledge_of(s.request.sender).status == WITHDRAWN
        ]
        used = theirs if withdrawn and theirs else used
        if not used:
            return
        signed = used[which % len(used)]
        refusal = self._forwarder_refusal(signed.request)
        assert refusal is not None, "a used request would run again"
        before = self.m.pledge_of(signed.request.sender).status
        assert self._execute("replay", signed, None) is None
        if signed.request.data[:4] == pledge and before == WITHDRAWN:
            OUTCOMES["replay of a withdrawn pledger's pledge"] += 1
        self._check_pledger(signed.request.sender)

    # ─── Time ───────────────────────────────────────────────────────────────────────

    @rule(
        kind=st.sampled_from(["seconds", "seconds", "seconds", "seconds", "deadline", "days"]),
        amount=st.integers(1, 3600),
        offset=st.sampled_from([-2, -1, 0, 1, 2]),
    )
    def wait(self, kind: str, amount: int, offset: int) -> None:
        """Seconds, or days, or land on deadline - 2 .. deadline + 2.

        The next transaction's block gets the target timestamp; time never goes back.
        """
        pending = self.fast.timestamp("pending")
        if kind == "seconds":
            self._travel(pending + amount)
        elif kind == "days":
            self._travel(pending + (amount % 10 + 1) * DAY)
        else:
            self._travel(self.m.deadline + offset)

    @rule(offset=st.sampled_from([-1, 0, 0, 1]), who=st.integers(0, 4))
    def pledge_at_deadline(self, offset: int, who: int) -> None:
        """A pledge races the deadline: at deadline - 1 it counts (and may reveal), at the
        deadline it is refused unless the campaign is already revealed."""
        self._travel(self.m.deadline + offset)
        self.advance(who)

    def _travel(self, target: int) -> None:
        """The next transaction's block gets timestamp `target`, unless that has passed."""
        if target > self.fast.timestamp("pending"):
            ape.chain.pending_timestamp = target
            assert self.fast.timestamp("pending") == target

    # ─── Invariants ─────────────────────────────────────────────────────────────────

    @invariant()
    def matches_the_chain(self) -> None:
        m = self.m
        s = m.state(self.fast.timestamp("latest"))  # views run on the latest block
        assert self._uint("pledgeCount") == m.count == m.live()
        assert self._uint("state") == s
        # The reveal is permanent (and `_record_pledge` checks when it happens).
        assert (s == REVEALED) == self.revealed
        if m.stored == OPEN:
            assert m.count < m.threshold
        # Nothing is accepted after expiry or cancel.
        if s in (EXPIRED, CANCELLED):
            frozen = (m.count, m.next_index, {a: (p.index, p.status) for a, p in m.pledges.items() if p.status})
            if self.frozen is None:
                self.frozen = frozen
            assert frozen == self.frozen
        if self.changed:  # only a successful transaction changes these (the clock does not)
            assert self._uint("totalPledges") == m.next_index
            assert self._uint("claimableDeposits") == m.claimable()
            assert self._uint("revealBlock") == m.reveal_block

    @invariant()
    def money_adds_up(self) -> None:
        m = self.m
        assert sum(m.paid_in.values()) - sum(m.paid_out.values()) == m.owed() >= 0
        assert m.claimed <= m.count
        assert sum(self.spent.values()) == sum(m.paid_in.values())
        if self.mined:  # balances move only with a transaction (a reverted one pays gas)
            assert self.fast.balance(self.c.address) == m.owed()
            for a in self.tracked:
                assert self.fast.balance(a) == self.start[a] - self.fees[a] - self.spent[a] + m.paid_out[a], a
            for a in self.walletless:  # a signing key pays nothing, ever: it holds only its refunds
                assert self.fees[a] == self.spent[a] == 0 and self.fast.balance(a) == m.paid_out[a], a
        for a in self.tracked:
            # Nobody takes out more than was paid in for it; the beneficiary only the live deposits.
            forfeited = m.claimed * m.deposit if a == m.beneficiary else 0
            assert m.paid_out[a] <= m.paid_in[a] + forfeited, a
        self.mined = self.changed = False

    @rule(who=st.sampled_from(range(10)))
    def audit(self, who: int) -> None:
        """pledgeOf and refundableOf of any account: the clock, a cancel or the reveal change
        what others are owed (the actor of each transaction is checked right after it)."""
        self._check_pledger([*self.pool, self.stranger, self.beneficiary, *self.walletless][who])


# Outcomes every 200-example run reaches many times over (the rules are built for them);
# none at all means the generator, not the contract, went wrong. Rarer outcomes vary a lot
# from run to run (hypothesis draws rules far from uniformly): the scripted runs below
# reach them every time.
MUST_REACH = [
    "reveal",
    "pledge Open: ok",
    "pledge Revealed: ok",  # the campaign goes on in public
    "pledge Expired: CampaignWrongState",
    "withdraw Open: ok",
    "refund: ok",
    "relayed pledge Open: ok",
    "relayed withdraw Open: ok",
    "relayed refund: ok",
    "replay: ERC2771ForwarderInvalidSigner",
    "replay of a withdrawn pledger's pledge",
]


@pytest.fixture
def machine_env(
    factory: Any,
    organizer: Any,
    pledgers: list[Any],
    stranger: Any,
    beneficiary: Any,
    keeper_accounts: list[Any],
    keeper_keys: list[Any],
    make_config: Callable[..., dict[str, Any]],
    project: Any,
    forwarder: Any,
    deployer: Any,
) -> Env:
    fast = FastChain()
    for account, key in zip(keeper_accounts, keeper_keys, strict=True):
        fast.add_key(account.address, key.to_hex())
    code = bytes(HexBytes(project.ForceSender.contract_type.deployment_bytecode.bytecode))
    # EthTester's eth_call wants its sender funded: the forwarder gets ether the only way a
    # contract without `receive` can (a self-destruct), to call the campaign as the forwarder does.
    fast.tester.send_transaction(
        {
            "from": deployer.address,
            "data": "0x" + (code + abi_encode(["address"], [forwarder.address])).hex(),
            "value": 10**20,
            "gas": 1_000_000,
        }
    )
    relayer = pledgers[5]
    env = Env(
        factory,
        organizer,
        pledgers,
        stranger,
        beneficiary,
        keeper_accounts,
        make_config,
        project,
        fast,
        forwarder,
        relayer,
    )
    CampaignMachine.env = env
    return env


@pytest.mark.slow
def test_campaign_lifecycle_matches_model(machine_env: Env) -> None:
    OUTCOMES.clear()
    run_state_machine_as_test(
        CampaignMachine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    print("\noutcomes over the run:")
    for outcome, n in sorted(OUTCOMES.items()):
        print(f"{n:7d}  {outcome}")
    if MAX_EXAMPLES >= 200:
        missing = [o for o in MUST_REACH if not OUTCOMES[o]]
        assert not missing, f"never reached: {missing}"


# ─── Scripted runs through the same model and invariants ────────────────────────────

# Each script: the `create` arguments, then steps: (rule, its arguments, the outcomes
# that step must produce). The model predicts each transaction exactly and the invariants
# are checked after each step, as in the hypothesis run; the expected outcomes pin the
# path, which is too important to leave to hypothesis's draw.
Step = tuple[str, dict[str, Any], list[str]]
OK, STATE = ": ok", ": CampaignWrongState"
SCRIPTS: dict[str, tuple[dict[str, Any], list[Step]]] = {
    "reveal, release, claim, go on in public": (
        {"threshold": 3, "deposit": 10**15, "with_beneficiary": True, "duration": DAY},
        [
            ("release", {"kind": "keeper", "k": 0}, ["release Open" + STATE]),
            ("advance", {"who": 0}, ["pledge Open" + OK]),
            ("claim", {"who": "beneficiary"}, ["claimDeposits: CampaignNothingToRefund"]),
            ("advance", {"who": 0}, ["pledge Open" + OK, "reveal"]),  # the third live pledge
            ("withdraw", {"who": 0, "live": True}, ["withdraw Revealed" + STATE]),
            ("cancel", {"by_creator": True}, ["cancel Revealed" + STATE]),
            ("release", {"kind": "keeper", "k": 1}, ["release Revealed" + OK]),
            ("release", {"kind": "wrong-index", "k": 1}, ["release Revealed: CampaignNotKeeper"]),
            ("release", {"kind": "wrong-index", "k": 2}, ["release Revealed: CampaignNotKeeper"]),
            ("release", {"kind": "non-keeper", "k": 0}, ["release Revealed: CampaignNotKeeper"]),
            ("release", {"kind": "wrong-set", "k": 0}, ["release Revealed: CampaignKeeperSetMismatch"]),
            ("release", {"kind": "no-data", "k": 2}, ["release Revealed: CampaignInvalidRelease"]),
            ("claim", {"who": "stranger"}, ["claimDeposits: CampaignNotBeneficiary"]),
            ("claim", {"who": "pledger"}, ["claimDeposits: CampaignNotBeneficiary"]),
            # A live deposit is forfeit to the beneficiary: nothing to refund.
            ("refund", {"who": 1, "due": False}, ["refund: CampaignNothingToRefund"]),
            ("claim", {"who": "beneficiary"}, ["claimDeposits" + OK]),
            ("claim", {"who": "beneficiary"}, ["claimDeposits: CampaignNothingToRefund"]),
            ("wait", {"kind": "days", "amount": 9, "offset": 0}, []),  # ten days: past the deadline
            ("advance", {"who": 0}, ["pledge Revealed" + OK]),  # a revealed campaign never expires
            ("pledge", {"who": 3, "idle": True, "deposit": "wei under"}, ["pledge Revealed: CampaignWrongDeposit"]),
            ("claim", {"who": "beneficiary"}, ["claimDeposits" + OK]),  # the new live deposit
            ("audit", {"who": 6}, []),
        ],
    ),
    "revealed without a beneficiary: everyone refunded": (
        {"threshold": 2, "deposit": 1, "with_beneficiary": False, "duration": 120},
        [
            ("claim", {"who": "beneficiary"}, ["claimDeposits: CampaignNotBeneficiary"]),
            ("pledge", {"who": 1, "idle": False, "deposit": "wei under"}, ["pledge Open: CampaignWrongDeposit"]),
            ("pledge", {"who": 1, "idle": False, "deposit": "wei over"}, ["pledge Open: CampaignWrongDeposit"]),
            ("pledge", {"who": 0, "idle": False, "deposit": "right"}, ["pledge Open: CampaignAlreadyPledged"]),
            ("advance", {"who": 0}, ["pledge Open" + OK, "reveal"]),
            ("refund", {"who": 0, "due": True}, ["refund" + OK]),
            ("refund", {"who": 1, "due": True}, ["refund" + OK]),
            ("refund", {"who": 1, "due": False}, ["refund: CampaignNothingToRefund"]),
            ("release", {"kind": "keeper", "k": 2}, ["release Revealed" + OK]),
        ],
    ),
    "the last second before the deadline": (
        {"threshold": 3, "deposit": 10**18, "with_beneficiary": False, "duration": 3600},
        [
            ("advance", {"who": 0}, ["pledge Open" + OK]),
            ("wait", {"kind": "deadline", "amount": 1, "offset": -1}, []),
            ("advance", {"who": 0}, ["pledge Open" + OK, "reveal"]),  # at deadline - 1: just in time
            ("advance", {"who": 0}, ["pledge Revealed" + OK]),  # at the deadline, revealed: accepted
        ],
    ),
    "at the deadline: expired, nothing accepted": (
        {"threshold": 3, "deposit": 10**15, "with_beneficiary": True, "duration": 3600},
        [
            ("advance", {"who": 0}, ["pledge Open" + OK]),
            ("wait", {"kind": "deadline", "amount": 1, "offset": 0}, []),
            ("advance", {"who": 0}, ["pledge Expired" + STATE]),
            ("withdraw", {"who": 0, "live": True}, ["withdraw Expired" + STATE]),
            ("cancel", {"by_creator": True}, ["cancel Expired" + STATE]),
            ("release", {"kind": "keeper", "k": 0}, ["release Expired" + STATE]),
            ("claim", {"who": "beneficiary"}, ["claimDeposits: CampaignNothingToRefund"]),
            ("refund", {"who": 0, "due": True}, ["refund" + OK]),
            ("refund", {"who": 0, "due": True}, ["refund" + OK]),
            ("refund", {"who": 0, "due": False}, ["refund: CampaignNothingToRefund"]),
            ("audit", {"who": 1}, []),
        ],
    ),
    "leave, take the deposit back or not, return; then cancel": (
        {"threshold": 5, "deposit": 10**15, "with_beneficiary": True, "duration": 7 * DAY},
        [
            ("advance", {"who": 0}, ["pledge Open" + OK]),
            ("advance", {"who": 0}, ["pledge Open" + OK]),
            ("withdraw", {"who": 0, "live": False}, ["withdraw Open: CampaignCreatorCannotWithdraw"]),
            ("withdraw", {"who": 5, "live": False}, ["withdraw Open: CampaignNoLivePledge"]),
            # The held deposit is reused: paying it again is a wrong deposit, paying 0 is right.
            (
                "leave_and_return",
                {"who": 0, "take_back": False, "deposit": "full"},
                ["withdraw Open" + OK, "pledge Open: CampaignWrongDeposit"],
            ),
            (
                "leave_and_return",
                {"who": 0, "take_back": False, "deposit": "right"},
                ["withdraw Open" + OK, "pledge Open" + OK],
            ),
            # A deposit taken back must be paid anew.
            (
                "leave_and_return",
                {"who": 1, "take_back": True, "deposit": "none"},
                ["withdraw Open" + OK, "refund" + OK, "pledge Open: CampaignWrongDeposit"],
            ),
            ("pledge", {"who": 1, "idle": True, "deposit": "right"}, ["pledge Open" + OK]),
            (
                "leave_and_return",
                {"who": 1, "take_back": True, "deposit": "right"},
                ["withdraw Open" + OK, "refund" + OK, "pledge Open" + OK],
            ),
            ("cancel", {"by_creator": False}, ["cancel Open: CampaignNotCreator"]),
            ("cancel", {"by_creator": True}, ["cancel Open" + OK]),
            ("advance", {"who": 0}, ["pledge Cancelled" + STATE]),
            ("withdraw", {"who": 0, "live": True}, ["withdraw Cancelled" + STATE]),
            ("refund", {"who": 0, "due": True}, ["refund" + OK]),
            ("refund", {"who": 1, "due": True}, ["refund" + OK]),
            ("refund", {"who": 2, "due": True}, ["refund" + OK]),
            ("refund", {"who": 0, "due": True}, ["refund: CampaignNothingToRefund"]),
            ("audit", {"who": 0}, []),
        ],
    ),
}


RELAYED, REPLAYED = "relayed ", "replay: ERC2771Forwarder"
SCRIPTS |= {
    "keys that hold no ether pledge through a relayer; replays never run": (
        {"threshold": 4, "deposit": 10**15, "with_beneficiary": False, "duration": DAY},
        [
            ("relayed_pledge", {"who": 0, "deposit": "right"}, [RELAYED + "pledge Open" + OK]),  # key 0
            ("replay", {"which": 0}, [REPLAYED + "InvalidSigner"]),  # by the same relayer, once it ran
            ("relayed_pledge", {"who": 0, "deposit": "none"}, [RELAYED + "pledge Open: CampaignWrongDeposit"]),
            ("relayed_pledge", {"who": 0, "deposit": "right"}, [RELAYED + "pledge Open" + OK]),  # key 1
            ("relayed_withdraw", {"who": 0, "live": True}, [RELAYED + "withdraw Open" + OK]),  # key 0
            ("replay", {"which": 0}, [REPLAYED + "InvalidSigner"]),  # key 0's pledge: never live again (P4)
            ("replay", {"which": 1}, [REPLAYED + "InvalidSigner"]),  # key 1's refused one: its nonce moved on
            ("relayed_refund", {"who": 0, "due": True}, [RELAYED + "refund" + OK]),  # the sponsored deposit, to key 0
            ("relayed_withdraw", {"who": 0, "live": False}, [RELAYED + "withdraw Open: CampaignNoLivePledge"]),
            ("relayed_withdraw", {"who": 7, "live": False}, [RELAYED + "withdraw Open: CampaignCreatorCannotWithdraw"]),
            ("relayed_cancel", {"by_creator": False, "who": 2}, [RELAYED + "cancel Open: CampaignNotCreator"]),
            (
                "relayed_pledge",
                {"who": 0, "deposit": "right"},
                [RELAYED + "pledge Open" + OK],
            ),  # key 0 again, paid anew
            (
                "relayed_pledge",
                {"who": 1, "deposit": "right"},
                [RELAYED + "pledge Open" + OK, "reveal"],
            ),  # a pooled key
            ("relayed_withdraw", {"who": 0, "live": True}, [RELAYED + "withdraw Revealed" + STATE]),
            ("relayed_refund", {"who": 0, "due": True}, [RELAYED + "refund" + OK]),
            ("wait", {"kind": "days", "amount": 9, "offset": 0}, []),
            ("replay", {"which": 0}, [REPLAYED + "ExpiredRequest"]),
            ("relayed_cancel", {"by_creator": True, "who": 0}, [RELAYED + "cancel Revealed" + STATE]),
            ("audit", {"who": 7}, []),
            ("audit", {"who": 8}, []),
        ],
    ),
    "late joiners with the roster: deposit locked until the deadline": (
        {"threshold": 2, "deposit": 10**15, "with_beneficiary": False, "duration": DAY, "late": ROSTER},
        [
            ("advance", {"who": 0}, ["pledge Open" + OK, "reveal"]),
            ("relayed_pledge", {"who": 0, "deposit": "right"}, [RELAYED + "pledge Revealed" + OK]),
            ("relayed_refund", {"who": 0, "due": False}, [RELAYED + "refund: CampaignNothingToRefund"]),
            ("refund", {"who": 1, "due": True}, ["refund" + OK]),  # an early member's is refundable
            ("wait", {"kind": "deadline", "amount": 1, "offset": 0}, []),
            ("relayed_refund", {"who": 0, "due": True}, [RELAYED + "refund" + OK]),
            ("audit", {"who": 7}, []),
        ],
    ),
    "closed to late joiners": (
        {"threshold": 2, "deposit": 1, "with_beneficiary": True, "duration": DAY, "late": CLOSED},
        [
            ("advance", {"who": 0}, ["pledge Open" + OK, "reveal"]),
            (
                "relayed_pledge",
                {"who": 0, "deposit": "right"},
                [RELAYED + "pledge Revealed: CampaignClosedToLateJoiners"],
            ),
            ("pledge", {"who": 0, "idle": True, "deposit": "right"}, ["pledge Revealed: CampaignClosedToLateJoiners"]),
            ("claim", {"who": "beneficiary"}, ["claimDeposits" + OK]),
        ],
    ),
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_scripted_lifecycle_matches_model(machine_env: Env, script: str) -> None:
    setup, steps = SCRIPTS[script]
    machine = CampaignMachine()
    try:
        machine.create(**setup)
        machine.matches_the_chain()
        machine.money_adds_up()
        for name, arguments, outcomes in steps:
            before = len(machine.log)
            getattr(machine, name)(**arguments)
            assert machine.log[before:] == outcomes, (name, arguments)
            machine.matches_the_chain()
            machine.money_adds_up()
    finally:
        machine.teardown()
