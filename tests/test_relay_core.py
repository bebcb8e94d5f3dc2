"""The relay service's key at the level of the core, with real sealing and real keeper releases
(a whole campaign made in memory, as ``tests/vectors/make_vectors.py`` does): what it reads and
when (P1, P2), the relay note, and the late-joiner messages. No chain, no Ape: run with
``pytest -p no:ape_test tests/test_relay_core.py``.

P1: the relay key is no member; before the reveal (no keeper has released anything) it reads
nothing, and with fewer than ``t`` keepers' releases nothing opens, even bypassing the reader's
count check. P2: in ``members`` scope a key that is neither a member nor the relay reads
nothing, even with every keeper's release on the table and the count checks bypassed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from dataclasses import dataclass

import coincurve
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from spartacus import _shamir
from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus._primitives import ecdh, kw_unwrap, sha256
from spartacus._relay_render import CampaignInfo, instructions_parts, update_parts
from spartacus.chain import sort_keepers
from spartacus.envelope import (
    ROLE_INSTRUCTIONS,
    ROLE_PLEDGE,
    PledgeContent,
    _kek,
    binding,
    open_body,
    open_share,
    parse,
    seal,
    seal_instructions,
)
from spartacus.keys import KeyPair
from spartacus.relaynote import MAX_NOTE_BYTES, open_note, seal_note
from spartacus.release import LATE_KEY, ROSTER_KEY, Entry, build_release, collect
from spartacus.roster import RosterEntry, build_roster
from spartacus.types import CampaignContext, LateJoiners, PledgeRecord, ReleaseRecord, Scope

CHAIN_ID = 31337
CAMPAIGN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
INSTRUCTIONS = "Monday 9:00, the main entrance.\nBring the letter."
PEOPLE = [  # (name, contact, live, late); #0 is the organizer
    ("Olga", {"email": "olga@example.org"}, True, False),
    ("Ana", {"email": "ana@example.org"}, True, False),
    ("Bo", {"email": "bo@example.org"}, False, False),  # withdrew before the reveal
    ("Cy", {"email": "cy@example.org"}, True, False),
    ("Late Lu", {"email": "lu@example.org"}, True, True),
]


@dataclass
class Campaign:
    ctx: CampaignContext
    keepers: list[KeyPair]
    relay: KeyPair
    members: list[KeyPair]
    pledges: list[PledgeRecord]
    instructions: bytes

    @property
    def creator(self) -> str:
        return self.members[0].address

    def release(self, keepers: list[int], relay: bool = True) -> list[ReleaseRecord]:
        """What keepers ``keepers`` publish after the reveal (honestly), granting the relay or not."""
        out = []
        for k in keepers:
            keeper = self.keepers[k]
            entries = []
            for p in self.pledges:
                if not p.live:
                    continue
                y = open_share(parse(p.envelope), k, keeper, self.ctx, member_key33=p.member_key, pledger=p.pledger)
                late = p.late and self.ctx.late_joiners is LateJoiners.KNOWN
                entries.append(Entry(p.index, y, p.member_key, LATE_KEY if late else ROSTER_KEY))
            yi = open_share(
                parse(self.instructions), k, keeper, self.ctx, member_key33=self.members[0].compressed,
                pledger=self.creator, role=ROLE_INSTRUCTIONS,
            )  # fmt: skip
            build = build_release(
                self.ctx, keeper, k, entries, instructions=yi, late_instructions=yi,
                relay_key=self.relay.compressed if relay else None,
            )  # fmt: skip
            out += [ReleaseRecord(k, keeper.address, data, 100, i) for i, data in enumerate(build.payloads)]
        return out

    def read(self, reader: KeyPair, releases: list[ReleaseRecord], *, relay: bool = False):  # type: ignore[no-untyped-def]
        return build_roster(
            self.ctx, self.pledges, releases, reader, self.creator, instructions=self.instructions, relay=relay
        )


def make_campaign(n: int = 3, t: int = 2, late: LateJoiners = LateJoiners.KNOWN) -> Campaign:
    pairs = [KeyPair.generate() for _ in range(n)]
    order = sort_keepers([p.public_key for p in pairs])
    keepers = sorted(pairs, key=lambda p: order.index(p.public_key))
    relay = KeyPair.generate()
    ctx = CampaignContext(
        CHAIN_ID, CAMPAIGN, tuple(k.public_key for k in keepers), t, Scope.MEMBERS, late, relay.compressed
    )
    members = [KeyPair.generate() for _ in PEOPLE]
    pledges = []
    for i, ((name, contact, live, is_late), m) in enumerate(zip(PEOPLE, members, strict=True)):
        env = seal(PledgeContent(name, contact), ctx, m, pledger=m.address)
        pledges.append(PledgeRecord(i, m.address, m.compressed, env, 10 + i, live=live, late=is_late))
    instructions = seal_instructions(INSTRUCTIONS, ctx, members[0], creator=members[0].address)
    return Campaign(ctx, keepers, relay, members, pledges, instructions)


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return make_campaign()


def live(c: Campaign) -> list[PledgeRecord]:
    return [p for p in c.pledges if p.live]


# ─── P1: the relay key reads nothing before the reveal ───────────────────────────────


def test_before_the_reveal_the_relay_key_reads_nothing(campaign: Campaign) -> None:
    """Before the reveal the chain holds the pledges and the sealed instructions, and no release."""
    roster = campaign.read(campaign.relay, [], relay=True)
    assert roster.members == [] and roster.instructions is None
    assert {s.index for s in roster.skipped if s.index is not None} == {p.index for p in live(campaign)}
    # Nor is the relay key a recipient of any envelope: no keeper slot unwraps with its key.
    for p, role in [(p, ROLE_PLEDGE) for p in campaign.pledges] + [
        (
            PledgeRecord(-1, campaign.creator, campaign.members[0].compressed, campaign.instructions, 0),
            ROLE_INSTRUCTIONS,
        )
    ]:
        parsed = parse(p.envelope)
        h = sha256(binding(campaign.ctx, role, p.member_key, p.pledger))
        z = ecdh(campaign.relay.secret_bytes(), p.member_key)
        for i, wrap in enumerate(parsed.wraps):
            with pytest.raises(DecryptionError):
                kw_unwrap(_kek(z, h, i), wrap)


def test_fewer_than_t_keepers_give_the_relay_nothing_even_past_the_count_check(campaign: Campaign) -> None:
    t = campaign.ctx.keeper_threshold
    for subset in itertools.combinations(range(len(campaign.keepers)), t - 1):
        releases = campaign.release(list(subset))
        roster = campaign.read(campaign.relay, releases, relay=True)
        assert roster.members == [] and roster.instructions is None, subset
        # Bypass the count check: every (t-1)-subset of the shares the relay obtained, alone or
        # padded with forged shares up to t, must fail authentication.
        got = collect(releases, campaign.ctx, campaign.relay, relay=True)
        assert got.granted_by[ROSTER_KEY] == set(subset)  # the relay did get its grants
        for p in live(campaign):
            parsed = parse(p.envelope)
            shares = [got.shares[p.index][k][0] + bytes((parsed.xs[k],)) for k in subset]
            missing = [k for k in range(parsed.n) if k not in subset][: t - len(shares)]
            forged = [secrets.token_bytes(16) + bytes((parsed.xs[k],)) for k in missing]
            for attempt in (shares, shares + forged):
                key = _shamir.combine(attempt)
                with pytest.raises(DecryptionError):
                    open_body(parsed, key, campaign.ctx, p.member_key, pledger=p.pledger)


def test_with_t_keepers_the_relay_reads_every_live_pledge_and_no_withdrawn_one(campaign: Campaign) -> None:
    """The control: the same relay key, once t keepers released, reads the roster (so the two
    tests above are not vacuous), late joiners included, and never the withdrawn pledge."""
    roster = campaign.read(campaign.relay, campaign.release([0, 2]), relay=True)
    assert sorted(m.name for m in roster.members) == ["Ana", "Cy", "Late Lu", "Olga"]
    assert roster.instructions == INSTRUCTIONS and not roster.late_joiner
    assert [m.late for m in sorted(roster.members, key=lambda m: m.index)] == [False, False, False, True]


def test_without_its_relay_grant_the_relay_reads_nothing(campaign: Campaign) -> None:
    """Every keeper released for the members, none granted the relay (a campaign that names it
    but keepers that do not serve it): the relay key reads nothing."""
    roster = campaign.read(campaign.relay, campaign.release([0, 1, 2], relay=False), relay=True)
    assert roster.members == [] and roster.instructions is None


# ─── P2: a key that is neither a member nor the relay reads nothing ─────────────────


def test_a_stranger_reads_nothing_with_every_release_on_the_table(campaign: Campaign) -> None:
    releases = campaign.release([0, 1, 2])
    stranger = KeyPair.generate()
    with pytest.raises(DecryptionError, match="not a member"):
        campaign.read(stranger, releases)
    # Claiming to be the relay does not help: the grants are wrapped to the relay's own key.
    posing = campaign.read(stranger, releases, relay=True)
    assert posing.members == [] and posing.instructions is None
    # Nor does claiming any member's pledge index, past every check of build_roster.
    for claim in [p.index for p in campaign.pledges] + [None]:
        got = collect(releases, campaign.ctx, stranger, member_index=claim)
        assert got.shares == {} and got.instructions == {}, claim
        assert got.granted_by == {ROSTER_KEY: set(), LATE_KEY: set()}
    got = collect(releases, campaign.ctx, stranger, relay=True)
    assert got.shares == {} and got.instructions == {} and got.granted_by[ROSTER_KEY] == set()


def test_a_known_late_joiner_reads_the_instructions_only(campaign: Campaign) -> None:
    """What the relay's `instructions` message mirrors: the late joiner's own key reads them, not the roster."""
    roster = campaign.read(campaign.members[4], campaign.release([0, 1]))
    assert roster.late_joiner and roster.members == [] and roster.instructions == INSTRUCTIONS


# ─── The relay note ──────────────────────────────────────────────────────────────────


def test_a_note_opens_only_with_the_relay_key_for_its_own_campaign() -> None:
    relay, other = KeyPair.generate(), KeyPair.generate()
    note = seal_note(relay.compressed, CAMPAIGN.lower(), email="olga@example.org", name="Olga")
    assert len(note) <= MAX_NOTE_BYTES
    opened = open_note(relay, note, CAMPAIGN)
    assert (opened.campaign, opened.email, opened.name) == (CAMPAIGN, "olga@example.org", "Olga")
    with pytest.raises(DecryptionError, match="does not open with this relay's key"):
        open_note(other, note, CAMPAIGN)
    with pytest.raises(EnvelopeError, match="copied from another campaign"):
        open_note(relay, note, "0x" + "11" * 20)
    tampered = bytearray(note)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        open_note(relay, bytes(tampered), CAMPAIGN)
    with pytest.raises(EnvelopeError, match="over the 1024-byte limit"):
        open_note(relay, note + bytes(MAX_NOTE_BYTES), CAMPAIGN)


@pytest.mark.parametrize(
    ("plaintext", "why"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not a version 1 note"),
        (json.dumps({"v": 2, "campaign": CAMPAIGN, "contact": {"email": "a@b.org"}}).encode(), "not a version 1"),
        (json.dumps({"v": 1, "campaign": CAMPAIGN, "contact": {"email": "not an address"}}).encode(), "no e-mail"),
        (json.dumps({"v": 1, "campaign": CAMPAIGN, "contact": "a@b.org"}).encode(), "no e-mail"),
        (json.dumps({"v": 1, "campaign": "nope", "contact": {"email": "a@b.org"}}).encode(), "names campaign"),
    ],
)
def test_a_malformed_note_is_an_envelope_error(plaintext: bytes, why: str) -> None:
    from spartacus.keys import wrap

    relay = KeyPair.generate()
    with pytest.raises(EnvelopeError, match=why):
        open_note(relay, wrap(relay.compressed, plaintext), CAMPAIGN)


def test_seal_note_refuses_what_the_relay_could_not_use() -> None:
    relay = KeyPair.generate().compressed
    with pytest.raises(InputError, match="e-mail address"):
        seal_note(relay, CAMPAIGN, email="olga at example")
    with pytest.raises(InputError, match="not a campaign address"):
        seal_note(relay, "0x1234", email="olga@example.org")
    with pytest.raises(InputError, match="printable"):
        seal_note(relay, CAMPAIGN, email="olga@example.org", name="x" * 201)


def test_the_note_bytes_are_eciesjs_defaults_opened_by_an_independent_implementation() -> None:
    """The browser writes notes with eciesjs's defaults; open one here with nothing of eciespy:
    ephemeral pub65 | nonce (16) | tag (16) | AES-256-GCM ciphertext, key = HKDF-SHA256(eph65 ‖
    shared65, no salt, no info, 32)."""
    relay = KeyPair.generate()
    note = seal_note(relay.compressed, CAMPAIGN, email="olga@example.org")
    eph, nonce, tag, body = note[:65], note[65:81], note[81:97], note[97:]
    assert eph[0] == 4
    shared = coincurve.PublicKey(eph).multiply(relay.secret_bytes()).format(compressed=False)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"").derive(eph + shared)
    plain = AESGCM(key).decrypt(nonce, body + tag, None)
    assert plain == (
        b'{"campaign":"' + CAMPAIGN.encode() + b'","contact":{"email":"olga@example.org"},"name":null,"v":1}'
    )
    assert hashlib.sha256(plain).digest()  # the exact canonical bytes a browser must produce


# ─── What a late joiner's and the members' messages say ─────────────────────────────


def test_the_instructions_message_names_nobody_and_the_update_follows_the_policy() -> None:
    info = CampaignInfo(CAMPAIGN, CHAIN_ID, "Night shift", "A rota", 3, 5, 42, "http://x/?campaign=" + CAMPAIGN, 0)
    mail = instructions_parts(info, INSTRUCTIONS)
    assert INSTRUCTIONS.splitlines()[0] in mail.text and "organizer" in mail.text
    assert "MEMBERS" not in mail.text and "Olga" not in mail.text + mail.html
    newcomer = RosterEntry(4, "Late Lu", {"email": "lu@example.org"}, late=True)
    known = update_parts(info, [newcomer], 5)
    assert "Late Lu" in known.text and "lu@example.org" in known.text and "not the roster" in known.text
    assert "(joined after the reveal)" in known.text
    roster = update_parts(info, [newcomer], 5, LateJoiners.ROSTER)
    assert "received the full roster" in roster.text
