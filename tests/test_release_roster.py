"""Keeper releases and the roster, format v2, end to end without a chain.

Security properties exercised here (DESIGN §1):

* P1 after the reveal: below ``t`` keepers nothing opens, shown by decrypting what the reader
  collected with the count check bypassed (``test_one_keeper_alone_is_not_enough``);
* P2: members read everything, a non-member key nothing, public scope anyone; after the reveal a
  ``known`` late joiner gets the instructions only, never the earlier roster nor the organizer's
  record; a ``roster`` late joiner and the campaign's relay read everything;
* P4: withdrawn pledges never appear, and a withdrawn member is told why it reads nothing;
* P5: at every point of a release that spans many transactions, whoever can read a pledge is
  readable to it (``test_p5_*``: each keeper stopped after each of its payloads);
* P9: with any ``t`` honest keepers' releases every member reads every live pledge, whatever
  the other keepers publish (wrong shares, garbage, a wrong key, nothing), at any n <= 32; the
  liar is named;
* garbage (envelopes, member keys, releases) is skipped and reported, never fatal.

The honest keeper here (:func:`keeper_build`) makes the same choices as
:meth:`spartacus.keeper.Keeper` (which needs a chain): a share for every live pledge it can
open, the late key for ``known`` late joiners, the instructions and the relay grant once.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spartacus import _shamir
from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus._primitives import NONCE_SIZE, TAG_SIZE, WRAP_SIZE, gcm_open, sha256
from spartacus.envelope import (
    COMMITMENT_SIZE,
    KEEPER_SLOT_SIZE,
    ROLE_INSTRUCTIONS,
    ROLE_PLEDGE,
    PledgeContent,
    binding,
    commitment,
    open_body,
    open_share,
    parse,
    seal,
    seal_instructions,
)
from spartacus.keys import KeyPair
from spartacus.release import (
    DEFAULT_MAX_BYTES,
    GRANTS,
    LATE_KEY,
    MIN_RELEASE_BYTES,
    PER_TRANSACTION_OVERHEAD,
    ROSTER_KEY,
    SHARES,
    Collected,
    Entry,
    GrantsRecord,
    InstructionsRecord,
    PublicInstructionsRecord,
    PublicSharesRecord,
    RelayRecord,
    ReleaseBuild,
    SharesRecord,
    build_release,
    collect,
    decode_index_set,
    encode_index_set,
    parse_release,
    published_by,
    release_keys,
)
from spartacus.roster import Roster, build_roster, find_member_index
from spartacus.types import CampaignContext, LateJoiners, PledgeRecord, ReleaseRecord, Scope

KEEPERS = [KeyPair.generate() for _ in range(32)]
CAMPAIGN = "0x" + "ca" * 20
INSTRUCTIONS = "Meet at the north gate, 09:00. Bring water."
AUTH_FAILED = "AES-GCM authentication failed"
NOT_GRANTED = "no keeper has granted this key the roster yet"


def make_ctx(
    n: int = 3,
    t: int = 2,
    scope: Scope = Scope.MEMBERS,
    late_joiners: LateJoiners = LateJoiners.KNOWN,
    relay: bytes | None = None,
    campaign: str = CAMPAIGN,
) -> CampaignContext:
    return CampaignContext(
        31337, campaign, tuple(k.public_key for k in KEEPERS[:n]), t, scope, late_joiners=late_joiners, relay=relay
    )


def content(i: int) -> PledgeContent:
    return PledgeContent(
        name=f"Member {i} ✊", contact={"email": f"m{i}@example.org"}, message=f"hello from {i}" if i % 2 else None
    )


@dataclass
class World:
    """A campaign as the chain would report it: pledge 0 is the organizer's (the creator's),
    with the sealed instructions of its creation event."""

    ctx: CampaignContext
    members: dict[int, KeyPair]
    pledges: list[PledgeRecord]
    contents: dict[int, PledgeContent]
    instructions: bytes
    creator: str
    relay: KeyPair | None = None

    def pledge(self, index: int) -> PledgeRecord:
        return next(p for p in self.pledges if p.index == index)

    def set(self, index: int, **changes: object) -> None:
        self.pledges = [replace(p, **changes) if p.index == index else p for p in self.pledges]  # type: ignore[arg-type]

    def add(self, record: PledgeRecord, member: KeyPair | None = None, sealed: PledgeContent | None = None) -> None:
        self.pledges.append(record)
        if member is not None:
            self.members[record.index] = member
        if sealed is not None:
            self.contents[record.index] = sealed

    @property
    def live(self) -> list[int]:
        return [p.index for p in self.pledges if p.live]


def make_world(
    count: int = 5,
    *,
    n: int = 3,
    t: int = 2,
    scope: Scope = Scope.MEMBERS,
    late_joiners: LateJoiners = LateJoiners.KNOWN,
    late: Iterable[int] = (),
    relay: bool = False,
) -> World:
    relay_key = KeyPair.generate() if relay else None
    ctx = make_ctx(n, t, scope, late_joiners, relay_key.compressed if relay_key else None)
    members = {i: KeyPair.generate() for i in range(count)}
    contents = {i: content(i) for i in range(count)}
    late = set(late)
    pledges = [
        PledgeRecord(
            index=i,
            pledger=m.address,
            member_key=m.compressed,
            envelope=seal(contents[i], ctx, m, pledger=m.address),
            block_number=100 + i,
            late=i in late,
        )
        for i, m in members.items()
    ]
    creator = members[0].address
    instructions = seal_instructions(INSTRUCTIONS, ctx, members[0], creator=creator)
    return World(ctx, members, pledges, contents, instructions, creator, relay_key)


def honest_entries(
    world: World, k: int, *, only: Iterable[int] | None = None, include_dead: bool = False
) -> list[Entry]:
    """Keeper k's entries: every live pledge whose share it can open, granted as the policy says."""
    wanted = set(only) if only is not None else None
    entries = []
    for p in world.pledges:
        if (not p.live and not include_dead) or (wanted is not None and p.index not in wanted):
            continue
        try:
            y = open_share(parse(p.envelope), k, KEEPERS[k], world.ctx, member_key33=p.member_key, pledger=p.pledger)
        except (EnvelopeError, DecryptionError):
            continue
        grant = LATE_KEY if p.late and world.ctx.late_joiners is LateJoiners.KNOWN else ROSTER_KEY
        entries.append(Entry(p.index, y, p.member_key, grant))
    return entries


def instructions_y(world: World, k: int) -> bytes:
    creator = next(p for p in world.pledges if p.live and p.pledger == world.creator)
    return open_share(
        parse(world.instructions),
        k,
        KEEPERS[k],
        world.ctx,
        member_key33=creator.member_key,
        pledger=world.creator,
        role=ROLE_INSTRUCTIONS,
    )


def keeper_build(
    world: World,
    k: int,
    *,
    entries: Sequence[Entry] | None = None,
    only: Iterable[int] | None = None,
    include_dead: bool = False,
    once: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    secret: KeyPair | None = None,
) -> ReleaseBuild:
    """What honest keeper k publishes for ``entries`` (default: every pledge it can open, of
    ``only`` if given; ``include_dead`` is a keeper's mistake)."""
    entries = honest_entries(world, k, only=only, include_dead=include_dead) if entries is None else entries
    public = world.ctx.scope is Scope.PUBLIC
    y = instructions_y(world, k)
    late = y if not public and any(e.grant == LATE_KEY for e in entries) else None
    return build_release(
        world.ctx,
        secret or KEEPERS[k],
        k,
        entries,
        instructions=y if once else None,
        late_instructions=late,
        relay_key=world.ctx.relay if once and not public else None,
        max_bytes=max_bytes,
    )


def as_records(k: int, payloads: Iterable[bytes], block: int = 1000) -> list[ReleaseRecord]:
    return [ReleaseRecord(k, KEEPERS[k].address, data, block + k, log) for log, data in enumerate(payloads)]


def releases_of(world: World, keepers: Iterable[int], **kwargs: object) -> list[ReleaseRecord]:
    return [r for k in keepers for r in as_records(k, keeper_build(world, k, **kwargs).payloads)]  # type: ignore[arg-type]


def roster_of(world: World, releases: Sequence[ReleaseRecord], reader: KeyPair | None, **kwargs: object) -> Roster:
    return build_roster(
        world.ctx, world.pledges, releases, reader, world.creator, instructions=world.instructions, **kwargs
    )  # type: ignore[arg-type]


def read_indices(roster: Roster) -> list[int]:
    return [m.index for m in roster.members]


def assert_true_contents(world: World, roster: Roster) -> None:
    """Whatever a reader shows is exactly what that pledge sealed."""
    for m in roster.members:
        sealed = world.contents[m.index]
        assert (m.name, m.contact, m.message) == (sealed.name, sealed.contact, sealed.message)


def raw_records(payload: bytes) -> list[tuple[int, bytes]]:
    """The records of a payload as ``(type, raw bytes with their header)``."""
    out, pos = [], 4
    while pos < len(payload):
        end = pos + 3 + int.from_bytes(payload[pos + 1 : pos + 3], "big")
        out.append((payload[pos], payload[pos:end]))
        pos = end
    return out


def valid_shares(world: World, collected: Collected, p: PledgeRecord, role: int = ROLE_PLEDGE) -> list[bytes]:
    """The collected candidates that match the envelope's commitments, as ``y ‖ x``."""
    envelope = world.instructions if role == ROLE_INSTRUCTIONS else p.envelope
    pledger = world.creator if role == ROLE_INSTRUCTIONS else p.pledger
    parsed = parse(envelope)
    h = sha256(binding(world.ctx, role, p.member_key, pledger))
    bucket = collected.instructions if role == ROLE_INSTRUCTIONS else collected.shares.get(p.index, {})
    out = []
    for k, candidates in sorted(bucket.items()):
        out += [
            y + bytes((parsed.xs[k],)) for y in candidates if commitment(h, k, parsed.xs[k], y) == parsed.commitments[k]
        ]
    return out


# ------------------------------------------------------------------------------------------ end to end


def test_every_member_reads_the_full_roster_from_any_t_of_n_keepers() -> None:
    world = make_world(5)
    for pair in itertools.combinations(range(3), 2):
        releases = releases_of(world, pair)
        for member in world.members.values():
            roster = roster_of(world, releases, member)
            assert read_indices(roster) == [0, 1, 2, 3, 4]
            assert_true_contents(world, roster)
            assert roster.members[3].contact == {"email": "m3@example.org"}
            assert roster.members[3].message == "hello from 3"
            assert roster.instructions == INSTRUCTIONS
            assert roster.skipped == [] and roster.release_problems == [] and not roster.late_joiner


def test_roster_json_matches_the_interface() -> None:
    world = make_world(3)
    doc = roster_of(world, releases_of(world, [0, 1]), world.members[1]).to_json()
    assert set(doc) == {"members", "instructions", "skipped", "release_problems", "late_joiner"}
    assert doc["members"][1] == {
        "index": 1,
        "name": "Member 1 ✊",
        "contact": {"email": "m1@example.org"},
        "message": "hello from 1",
        "late": False,
    }
    assert doc["instructions"] == INSTRUCTIONS and doc["skipped"] == [] and doc["late_joiner"] is False


# ------------------------------------------------------------------------------------------ P1 after the reveal


@pytest.mark.parametrize("n,t", [(n, t) for n in range(2, 6) for t in range(2, n + 1)])
def test_one_keeper_alone_is_not_enough(n: int, t: int) -> None:
    """P1: with the real releases of any fewer than t keepers (one keeper alone included), the
    reader's count check refuses, and, bypassing it, the shares it collected (each matching its
    commitment: they are real) combine to a key that fails authentication, for every pledge and
    for the instructions."""
    world = make_world(3, n=n, t=t)
    by_keeper = {k: releases_of(world, [k]) for k in range(n)}
    reader = world.members[1]
    for size in range(1, t):
        for subset in itertools.combinations(range(n), size):
            releases = [r for k in subset for r in by_keeper[k]]
            roster = roster_of(world, releases, reader)
            assert roster.members == [] and roster.instructions is None
            assert [s.index for s in roster.skipped] == [0, 1, 2, None]
            assert all(f"need {t} keeper shares, got {size}" in s.reason for s in roster.skipped)
            collected = collect(releases, world.ctx, reader, member_index=1)
            for p in world.pledges:
                shares = valid_shares(world, collected, p)
                assert len(shares) == size  # the reader really holds every released share
                with pytest.raises(DecryptionError, match=AUTH_FAILED):
                    open_body(parse(p.envelope), _shamir.combine(shares), world.ctx, p.member_key, pledger=p.pledger)
            ins = valid_shares(world, collected, world.pledge(0), ROLE_INSTRUCTIONS)
            assert len(ins) == size
            with pytest.raises(DecryptionError, match=AUTH_FAILED):
                open_body(
                    parse(world.instructions),
                    _shamir.combine(ins),
                    world.ctx,
                    world.pledge(0).member_key,
                    pledger=world.creator,
                    role=ROLE_INSTRUCTIONS,
                )


def test_with_t_1_one_keeper_is_enough() -> None:
    world = make_world(3, n=3, t=1)
    for k in range(3):
        roster = roster_of(world, releases_of(world, [k]), world.members[2])
        assert read_indices(roster) == [0, 1, 2] and roster.instructions == INSTRUCTIONS


def test_t_equals_n_needs_every_keeper() -> None:
    world = make_world(3, n=3, t=3)
    partial = roster_of(world, releases_of(world, [0, 1]), world.members[0])
    assert partial.members == [] and all("need 3 keeper shares, got 2" in s.reason for s in partial.skipped)
    full = roster_of(world, releases_of(world, [0, 1, 2]), world.members[0])
    assert read_indices(full) == [0, 1, 2]


# ------------------------------------------------------------------------------------------ P2: who reads


def test_a_non_member_key_reads_nothing() -> None:
    """P2: a key that is not a pledge's member key gets no release key and no share."""
    world = make_world(4)
    releases = releases_of(world, [0, 1, 2])
    outsider = KeyPair.generate()
    with pytest.raises(DecryptionError, match="not a member of the campaign"):
        roster_of(world, releases, outsider)
    # even when it claims a member's pledge index, it unwraps no grant and so no share
    for claimed in (0, 1, 3, None):
        collected = collect(releases, world.ctx, outsider, member_index=claimed)
        assert collected.shares == {} and collected.instructions == {}
        assert collected.granted_by == {ROSTER_KEY: set(), LATE_KEY: set()}
        if claimed is not None:
            assert {p.keeper_index for p in collected.problems} == {0, 1, 2}
            assert all("grant does not unwrap" in p.reason for p in collected.problems)
    # posing as the relay does not help either
    as_relay = roster_of(world, releases, outsider, relay=True)
    assert as_relay.members == [] and as_relay.instructions is None
    # and the release bytes never hold a share in clear
    blob = b"".join(r.data for r in releases)
    for k in range(3):
        assert not any(e.y in blob for e in honest_entries(world, k))


def test_members_scope_without_a_key_is_refused() -> None:
    world = make_world(2)
    with pytest.raises(InputError, match="reveals to members only: a member key is needed"):
        roster_of(world, releases_of(world, [0, 1]), None)


def test_public_scope_is_readable_without_a_key() -> None:
    world = make_world(4, scope=Scope.PUBLIC)
    releases = releases_of(world, [1, 2])
    for rel in releases:
        assert {type(r) for r in parse_release(rel.data)} <= {PublicSharesRecord, PublicInstructionsRecord}
    roster = roster_of(world, releases, None)
    assert read_indices(roster) == [0, 1, 2, 3] and roster.instructions == INSTRUCTIONS
    assert_true_contents(world, roster)
    assert roster_of(world, releases, world.members[1]).to_json() == roster.to_json()  # a key changes nothing
    assert roster_of(world, releases, KeyPair.generate()).to_json() == roster.to_json()  # nor an outsider's
    # and one keeper is still not enough
    alone = roster_of(world, releases_of(world, [1]), None)
    assert alone.members == [] and all("need 2 keeper shares, got 1" in s.reason for s in alone.skipped)


def test_the_campaigns_relay_reads_everything_and_is_granted_once() -> None:
    world = make_world(4, relay=True, late=[3])
    assert world.relay is not None
    releases = releases_of(world, [0, 2])
    for rel in releases:
        assert sum(isinstance(r, RelayRecord) for r in parse_release(rel.data)) == 1
    roster = roster_of(world, releases, world.relay, relay=True)
    assert read_indices(roster) == [0, 1, 2, 3] and roster.instructions == INSTRUCTIONS
    assert roster.members[3].late and not roster.late_joiner
    # the relay key is not a member key: as a member it is refused
    with pytest.raises(DecryptionError, match="not a member"):
        roster_of(world, releases, world.relay)


# ------------------------------------------------------------------------------------------ P4: withdrawal


def test_withdrawn_pledges_never_appear() -> None:
    """P4: even if keepers (wrongly) released shares and grants for a withdrawn pledge."""
    world = make_world(5)
    world.set(2, live=False)
    releases = releases_of(world, [0, 1], include_dead=True)
    roster = roster_of(world, releases, world.members[1])
    assert read_indices(roster) == [0, 1, 3, 4]
    assert 2 not in [s.index for s in roster.skipped]
    assert world.contents[2].name not in str(roster.to_json())


def test_a_withdrawn_member_reads_nothing_and_is_told_why() -> None:
    world = make_world(4)
    world.set(2, live=False)
    honest = releases_of(world, [0, 1])  # no grant to the withdrawn pledge
    wrong = releases_of(world, [0, 1], include_dead=True)
    for releases in (honest, wrong):
        with pytest.raises(
            DecryptionError, match="pledge #3 was withdrawn before the reveal: a withdrawn pledge is never"
        ):
            roster_of(world, releases, world.members[2])


def test_a_member_not_yet_granted_is_told_to_wait() -> None:
    world = make_world(4)
    releases = releases_of(world, [0, 1], only=[0, 1, 2])
    with pytest.raises(DecryptionError, match=NOT_GRANTED):
        roster_of(world, releases, world.members[3])
    assert read_indices(roster_of(world, releases, world.members[1])) == [0, 1, 2]


# ------------------------------------------------------------------------------------------ garbage


def test_garbage_envelope_and_garbage_member_key_are_skipped_and_listed() -> None:
    world = make_world(6)
    world.set(3, envelope=secrets.token_bytes(900))  # anyone can send bytes
    world.set(4, member_key=b"\x02" + b"\xff" * 32)  # right shape, not a point
    builds = [keeper_build(world, k) for k in (0, 1)]
    for built in builds:
        assert [e for e in parse_release(built.payloads[0]) if isinstance(e, SharesRecord)][0].indices == (0, 1, 2, 5)
    releases = [r for k, b in zip((0, 1), builds, strict=True) for r in as_records(k, b.payloads)]
    roster = roster_of(world, releases, world.members[5])
    assert read_indices(roster) == [0, 1, 2, 5]
    skipped = {s.index: s.reason for s in roster.skipped}
    assert set(skipped) == {3, 4}
    assert skipped[3].startswith("malformed envelope: ") and "bad magic" in skipped[3]
    assert "need 2 keeper shares, got 0" in skipped[4]
    assert roster.to_json()["skipped"] == [
        {"index": 3, "keeper_index": None, "reason": skipped[3]},
        {"index": 4, "keeper_index": None, "reason": skipped[4]},
    ]


@pytest.mark.parametrize("bad_key", [b"", b"\x04" * 65, b"\x02" * 5, b"\x05" + b"\x11" * 32, b"\x02" + b"\xff" * 32])
def test_entries_with_malformed_member_keys_are_left_out_entirely(bad_key: bytes) -> None:
    """A pledge that cannot be granted is left out of the shares too: its share is never
    published where its owner could not read the others (P5)."""
    good = KeyPair.generate()
    built = build_release(
        make_ctx(), KEEPERS[0], 0, [Entry(7, bytes(16), bad_key), Entry(8, bytes(range(16)), good.compressed)]
    )
    assert built.skipped == [(7, "member key is not a point on the secp256k1 curve")]
    (payload,) = built.payloads
    kinds = {type(r): r for r in parse_release(payload)}
    assert kinds[GrantsRecord].indices == (8,)  # type: ignore[attr-defined]
    assert kinds[SharesRecord].indices == (8,)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ releases


def test_releases_split_across_many_payloads_still_read_back() -> None:
    world = make_world(12)
    built = keeper_build(world, 0, max_bytes=330)
    assert len(built.payloads) >= 3
    for i, payload in enumerate(built.payloads):
        assert len(payload) <= 330
        records = parse_release(payload)  # each parses on its own
        shares = [r for r in records if isinstance(r, SharesRecord)]
        grants = [r for r in records if isinstance(r, GrantsRecord)]
        assert len(shares) == 1 and [g.indices for g in grants] == [shares[0].indices]  # each share with its grant
        assert any(isinstance(r, InstructionsRecord) for r in records) == (i == 0)
    assert [
        i for p in built.payloads for r in parse_release(p) if isinstance(r, SharesRecord) for i in r.indices
    ] == list(range(12))
    releases = releases_of(world, [0, 2], max_bytes=400)
    assert read_indices(roster_of(world, releases, world.members[7])) == list(range(12))
    # the smallest allowed size works too, and below it is refused
    releases = releases_of(world, [1, 2], max_bytes=MIN_RELEASE_BYTES)
    assert len(roster_of(world, releases, world.members[0]).members) == 12
    with pytest.raises(InputError, match=f"too small; at least {MIN_RELEASE_BYTES} is needed"):
        keeper_build(world, 0, max_bytes=MIN_RELEASE_BYTES - 1)


def test_incremental_releases_after_the_reveal() -> None:
    """Pledges after the reveal are released as they arrive, under the same derived keys."""
    world = make_world(6)
    first = releases_of(world, [0, 1], only=range(5))
    later = [r for k in (0, 1) for r in as_records(k, keeper_build(world, k, only=[5], once=False).payloads, 2000)]
    for reader in (world.members[1], world.members[5]):
        assert read_indices(roster_of(world, first + later, reader)) == list(range(6))
    early = roster_of(world, first, world.members[1])
    assert [s.index for s in early.skipped] == [5]
    with pytest.raises(DecryptionError, match=NOT_GRANTED):
        roster_of(world, first, world.members[5])


def test_only_the_campaigns_sealed_instructions_count() -> None:
    world = make_world(4)
    releases = releases_of(world, [0, 1])
    assert roster_of(world, releases, world.members[3]).instructions == INSTRUCTIONS
    # the creator given in another letter case is the same address
    lower = build_roster(
        world.ctx, world.pledges, releases, world.members[3], world.creator.lower(), instructions=world.instructions
    )
    assert lower.instructions == INSTRUCTIONS
    # sealed instructions of another author (bound to another creator) never pass for them
    rogue = seal_instructions(
        "Ignore the organizer: meet at MY place.", world.ctx, world.members[2], creator=world.members[2].address
    )
    roster = build_roster(world.ctx, world.pledges, releases, world.members[3], world.creator, instructions=rogue)
    assert roster.instructions is None and "MY place" not in str(roster.to_json())
    (entry,) = [s for s in roster.skipped if s.keeper_index is None]
    assert entry.index is None and entry.reason.startswith("instructions: need 2 keeper shares, got 0")
    # without the creator's live pledge, no instructions are shown, and the members still are
    no_creator = build_roster(
        world.ctx, world.pledges, releases, world.members[3], "0x" + "99" * 20, instructions=world.instructions
    )
    assert no_creator.instructions is None and len(no_creator.members) == 4


def test_malformed_and_foreign_releases_are_reported_not_fatal() -> None:
    world = make_world(4)
    good = releases_of(world, [0, 1])
    valid = good[0].data
    junk = [
        ReleaseRecord(0, KEEPERS[0].address, b"garbage", 5000, 0),
        ReleaseRecord(1, KEEPERS[1].address, valid[:-3], 5001, 0),  # truncated
        ReleaseRecord(7, "0x" + "77" * 20, valid, 5002, 0),  # no keeper #7
        ReleaseRecord(-1, "0x" + "77" * 20, valid, 5003, 0),
        ReleaseRecord(2, KEEPERS[2].address, b"SPR\x02\x09\x00\x00", 5004, 0),  # unknown record
        ReleaseRecord(2, KEEPERS[2].address, b"SPR\x01" + valid[4:], 5005, 0),  # version 1
    ]
    roster = roster_of(world, good + junk, world.members[2])
    assert len(roster.members) == 4
    # Every keeper of the campaign whose records do not parse is named; foreign indexes are not keepers.
    assert [(s.index, s.keeper_index) for s in roster.skipped] == [(None, 0), (None, 1), (None, 2)]
    problems = {p.block_number: (p.keeper_index, p.reason) for p in roster.release_problems}
    assert sorted(problems) == [5000, 5001, 5002, 5003, 5004, 5005]
    assert problems[5000] == (0, "not a Spartacus release (bad magic bytes)")
    assert problems[5001][0] == 1 and "truncated" in problems[5001][1]
    assert problems[5002] == (7, "keeper index 7 is not in the campaign's keeper set (0..2)")
    assert problems[5003][0] == -1
    assert problems[5004] == (2, "release: unknown record type 0x09")
    assert problems[5005] == (2, "release version 1 is not supported; this program reads 2")
    assert len(roster.to_json()["release_problems"]) == 6


def test_a_keeper_cannot_pass_off_another_keepers_release() -> None:
    """Keeper 0's bytes re-published under keeper 1's index do not count as keeper 1's shares:
    the grants are bound to the keeper index."""
    world = make_world(3)
    genuine = releases_of(world, [0])
    replayed = [
        replace(r, keeper_index=1, keeper=KEEPERS[1].address, block_number=r.block_number + 50) for r in genuine
    ]
    roster = roster_of(world, genuine + replayed, world.members[1])
    pledges = [s for s in roster.skipped if s.keeper_index is None]
    assert roster.members == [] and all("need 2 keeper shares, got 1" in s.reason for s in pledges)
    assert [(p.keeper_index, p.reason) for p in roster.release_problems] == [(1, "keeper #1's grant does not unwrap")]
    assert [s.keeper_index for s in roster.skipped if s.keeper_index is not None] == [1]  # named
    collected = collect(genuine + replayed, world.ctx, world.members[1], member_index=1)
    assert all(set(by_keeper) == {0} for by_keeper in collected.shares.values())


def test_release_for_another_campaign_does_not_decrypt() -> None:
    world = make_world(3)
    other = make_world(3)
    other.ctx = replace(world.ctx, campaign="0x" + "cb" * 20)
    other.members = world.members
    other.pledges = [
        replace(p, envelope=seal(world.contents[p.index], other.ctx, world.members[p.index], pledger=p.pledger))
        for p in world.pledges
    ]
    other.instructions = seal_instructions(INSTRUCTIONS, other.ctx, world.members[0], creator=world.creator)
    other.creator = world.creator
    foreign = releases_of(other, [0, 1])  # same members, same keepers, another campaign
    with pytest.raises(DecryptionError, match=NOT_GRANTED):
        roster_of(world, foreign, world.members[1])
    collected = collect(foreign, world.ctx, world.members[1], member_index=1)
    assert collected.shares == {} and collected.instructions == {}
    assert [(p.keeper_index, p.reason) for p in collected.problems] == [
        (0, "keeper #0's grant does not unwrap"),
        (1, "keeper #1's grant does not unwrap"),
    ]
    assert read_indices(roster_of(other, foreign, world.members[1])) == [0, 1, 2]


def test_republished_release_is_harmless() -> None:
    world = make_world(3)
    releases = releases_of(world, [0, 1])
    again = [replace(r, block_number=r.block_number + 10) for r in releases]
    roster = roster_of(world, releases + again, world.members[0])
    assert len(roster.members) == 3 and roster.release_problems == [] and roster.skipped == []


def test_release_sizes_per_member() -> None:
    """members scope, one payload of N pledges: 85 bytes of framing, 24 + 16 bytes per member and
    the two bitmaps; the one-time records add 48 (instructions) and 61 (relay)."""
    assert PER_TRANSACTION_OVERHEAD == 85
    ctx = make_ctx()
    member = KeyPair.generate().compressed
    for count in (1, 8, 9, 100, 400):
        entries = [Entry(i, bytes(16), member) for i in range(count)]
        built = build_release(ctx, KEEPERS[0], 0, entries)
        bitmap = (count + 7) // 8
        assert len(built.payloads) == 1 and built.total_bytes == 85 + 2 * bitmap + 40 * count
        once = build_release(ctx, KEEPERS[0], 0, entries, instructions=bytes(16), relay_key=member)
        assert once.total_bytes == built.total_bytes + 48 + 61
        public = build_release(replace(ctx, scope=Scope.PUBLIC), KEEPERS[0], 0, entries)
        assert public.total_bytes == 4 + 3 + 6 + bitmap + 16 * count
    thousand = build_release(ctx, KEEPERS[0], 0, [Entry(i, bytes(16), member) for i in range(1000)])
    assert all(len(p) <= DEFAULT_MAX_BYTES for p in thousand.payloads)
    assert thousand.total_bytes / 1000 <= 41 < 60  # the target: at most 60 bytes per member


def test_release_keys_are_derived_and_distinct() -> None:
    ctx = make_ctx()
    r, late = release_keys(KEEPERS[0], ctx, 0)
    assert (r, late) == release_keys(KEEPERS[0].secret_bytes(), ctx, 0)  # nothing to store
    assert len(r) == len(late) == 16 and r != late
    others = {
        release_keys(KEEPERS[1], ctx, 1)[0],
        release_keys(KEEPERS[0], ctx, 1)[0],
        release_keys(KEEPERS[0], replace(ctx, campaign="0x" + "cb" * 20), 0)[0],
        release_keys(KEEPERS[0], replace(ctx, chain_id=1), 0)[0],
    }
    assert r not in others and len(others) == 4


def test_shares_record_opens_with_the_roster_key_only() -> None:
    world = make_world(4)
    (payload,) = keeper_build(world, 1).payloads
    shares = next(r for r in parse_release(payload) if isinstance(r, SharesRecord))
    roster_key, late_key = release_keys(KEEPERS[1], world.ctx, 1)
    aad = (
        b"spartacus/v2 shares" + (31337).to_bytes(32, "big") + bytes.fromhex("ca" * 20) + b"\x01\x00" + shares.index_set
    )
    plain = gcm_open(roster_key, shares.nonce, shares.sealed, aad)
    assert [plain[16 * j : 16 * j + 16] for j in range(4)] == [e.y for e in honest_entries(world, 1)]
    assert len(shares.nonce) == NONCE_SIZE and len(shares.sealed) == 16 * 4 + TAG_SIZE
    for key in (late_key, release_keys(KEEPERS[0], world.ctx, 0)[0]):
        with pytest.raises(DecryptionError, match=AUTH_FAILED):
            gcm_open(key, shares.nonce, shares.sealed, aad)


def test_nothing_to_release_gives_no_payload() -> None:
    assert build_release(make_ctx(), KEEPERS[0], 0, []).payloads == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"keeper_index": 3}, "keeper index 3 is out of range 0..2"),
        ({"keeper_index": -1}, "out of range"),
        ({"max_bytes": MIN_RELEASE_BYTES - 1}, "too small"),
        ({"entries": [Entry(-1, bytes(16), b"")]}, "pledge index -1 is not a uint32"),
        ({"entries": [Entry(2**32 - 1, bytes(16), b"")]}, "is not a uint32 below 2\\^32 - 1"),
        ({"entries": [Entry(0, bytes(17), b"")]}, "the share of pledge #0 is not 16 bytes"),
        ({"entries": [Entry(0, bytes(16), b""), Entry(0, bytes(16), b"")]}, "a pledge appears twice"),
    ],
)
def test_build_release_refuses_caller_mistakes(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"keeper_index": 0, "entries": []} | kwargs
    with pytest.raises(InputError, match=message):
        build_release(make_ctx(), KEEPERS[0], args.pop("keeper_index"), args.pop("entries"), **args)  # type: ignore[arg-type]


def test_find_member_index_prefers_live_pledges() -> None:
    world = make_world(3)
    key = world.members[1].compressed
    assert find_member_index(world.pledges, key) == 1
    world.set(1, live=False)
    assert find_member_index(world.pledges, key) == 1
    world.pledges.append(replace(world.pledge(1), index=7, live=True))
    assert find_member_index(world.pledges, key) == 7
    assert find_member_index(world.pledges, KeyPair.generate().compressed) is None


def test_published_by_reads_back_what_a_keeper_released() -> None:
    """A restarted keeper learns from the chain alone what it already published (its own only)."""
    world = make_world(5, relay=True, late=[4])
    releases = releases_of(world, [0, 1], max_bytes=400)
    done = published_by(releases, 0, KEEPERS[0].address.lower())
    assert done.shared == {0, 1, 2, 3, 4}
    assert done.granted == {ROSTER_KEY: {0, 1, 2, 3}, LATE_KEY: {4}}
    assert done.instructions == {ROSTER_KEY, LATE_KEY} and done.relay
    assert published_by(releases, 0, KEEPERS[1].address).shared == set()  # index and address must agree
    assert published_by(releases, 2, KEEPERS[2].address).shared == set()


# ------------------------------------------------------------------------------------------ index sets


@pytest.mark.parametrize(
    "indices, encoded",
    [
        ([0], "00000000000180"),
        ([0, 1, 2], "000000000003e0"),
        ([3, 5, 17], "00000003000fa002"),
        ([70000, 70008], "0001117000098080"),
    ],
)
def test_index_sets_have_the_documented_bytes(indices: list[int], encoded: str) -> None:
    assert encode_index_set(indices).hex() == encoded
    assert decode_index_set(bytes.fromhex(encoded)) == (tuple(indices), len(encoded) // 2)


@settings(max_examples=100, deadline=None)
@given(first=st.integers(0, 2**32 - 2 - 70_000), offsets=st.sets(st.integers(1, 65_534), max_size=40))
def test_index_sets_round_trip(first: int, offsets: set[int]) -> None:
    indices = [first, *sorted(first + o for o in offsets)]
    data = encode_index_set(indices) + b"tail"
    assert decode_index_set(data) == (tuple(indices), len(data) - 4)


@pytest.mark.parametrize(
    "data, message",
    [
        (bytes.fromhex("00000000"), "truncated index set"),
        (bytes.fromhex("000000000000"), "malformed index set"),
        (bytes.fromhex("00000000000980"), "malformed index set"),
        (bytes.fromhex("fffffffe0002c0"), "malformed index set"),
        (bytes.fromhex("00000000000360"), "not canonical"),
        (bytes.fromhex("000000000003c0"), "not canonical"),
        (bytes.fromhex("000000000003f0"), "not canonical"),
        (bytes.fromhex("00000000000100"), "not canonical"),
    ],
)
def test_index_sets_decode_strictly(data: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode_index_set(data)


@pytest.mark.parametrize(
    "indices, message",
    [([], "at least one"), ([2, 1], "strictly ascending"), ([1, 1], "strictly ascending"), ([0, 65_535], "65,535")],
)
def test_index_sets_refuse_bad_input(indices: list[int], message: str) -> None:
    with pytest.raises(InputError, match=message):
        encode_index_set(indices)


# ------------------------------------------------------------------------------------------ late joiners (P2)


def test_a_known_late_joiner_gets_the_instructions_and_nothing_else() -> None:
    """After the reveal the roster costs more than gas: under ``known`` a late joiner is granted
    the late key only; it opens the instructions, never a share of any earlier pledge nor the
    organizer's record, and the members still see it."""
    world = make_world(5, late=[4], late_joiners=LateJoiners.KNOWN)
    releases = releases_of(world, [0, 1])
    late = roster_of(world, releases, world.members[4])
    assert late.late_joiner and late.members == [] and late.instructions == INSTRUCTIONS
    assert late.skipped == [] and late.release_problems == []
    doc = str(late.to_json())
    for i in range(4):
        assert world.contents[i].name not in doc and world.contents[i].contact["email"] not in doc
    # bypassing the roster's rules: what the late joiner collected holds no share at all
    collected = collect(releases, world.ctx, world.members[4], member_index=4)
    assert collected.granted_by == {ROSTER_KEY: set(), LATE_KEY: {0, 1}}
    assert collected.shares == {}
    assert len(valid_shares(world, collected, world.pledge(0), ROLE_INSTRUCTIONS)) == 2
    # the late key opens no SHARES record
    for k in (0, 1):
        late_key = release_keys(KEEPERS[k], world.ctx, k)[1]
        for rel in releases:
            for rec in parse_release(rel.data):
                if isinstance(rec, SharesRecord) and rel.keeper_index == k:
                    aad = b"spartacus/v2 shares" + (31337).to_bytes(32, "big") + bytes.fromhex("ca" * 20)
                    with pytest.raises(DecryptionError):
                        gcm_open(late_key, rec.nonce, rec.sealed, aad + bytes((k, 0)) + rec.index_set)
    # the members read the late joiner (it is revealed to them), marked late
    for reader in (0, 2):
        roster = roster_of(world, releases, world.members[reader])
        assert read_indices(roster) == [0, 1, 2, 3, 4] and roster.members[4].late and not roster.late_joiner
    # and so does the relay
    relayed = make_world(5, late=[4], relay=True)
    assert relayed.relay is not None
    relay_view = roster_of(relayed, releases_of(relayed, [1, 2]), relayed.relay, relay=True)
    assert read_indices(relay_view) == [0, 1, 2, 3, 4]


def test_the_instructions_are_readable_apart_from_the_organizers_record() -> None:
    """Even when the organizer's own record is not (yet) released, its instructions are: the two
    are sealed apart. A known late joiner reads them, and an on-time member too."""
    world = make_world(4, late=[3])
    releases = releases_of(world, [0, 1], only=[1, 2, 3])
    late = roster_of(world, releases, world.members[3])
    assert late.late_joiner and late.instructions == INSTRUCTIONS and late.members == []
    member = roster_of(world, releases, world.members[1])
    assert member.instructions == INSTRUCTIONS and read_indices(member) == [1, 2, 3]
    assert [s.index for s in member.skipped] == [0]


def test_a_roster_late_joiner_reads_everything() -> None:
    world = make_world(5, late=[3, 4], late_joiners=LateJoiners.ROSTER)
    releases = releases_of(world, [0, 2])
    for rel in releases:
        assert all(not (isinstance(r, GrantsRecord) and r.key_id == LATE_KEY) for r in parse_release(rel.data))
    for reader in (4, 3, 1):
        roster = roster_of(world, releases, world.members[reader])
        assert read_indices(roster) == [0, 1, 2, 3, 4] and not roster.late_joiner
        assert roster.instructions == INSTRUCTIONS
        assert [m.late for m in roster.members] == [False, False, False, True, True]


# ------------------------------------------------------------------------------------------ P5: multi-transaction


def who_reads_whom(world: World, releases: Sequence[ReleaseRecord]) -> dict[int, set[int]]:
    """Each live member's view, with the real reader: the pledges it reads (none if no keeper
    granted it yet)."""
    out: dict[int, set[int]] = {}
    for i in world.live:
        try:
            roster = roster_of(world, releases, world.members[i])
        except DecryptionError as exc:
            assert NOT_GRANTED in exc.message
            out[i] = set()
            continue
        assert_true_contents(world, roster)
        out[i] = set(read_indices(roster))
    return out


def assert_p5(reads: dict[int, set[int]], state: object) -> None:
    for a, seen in reads.items():
        if seen:
            assert a in seen, f"{state}: member {a} reads {sorted(seen)} but not its own record"
        for b in seen:
            assert a in reads[b], f"{state}: member {a} reads member {b}, who cannot read {a}"


@pytest.mark.parametrize("n,t", [(3, 2), (2, 2)])
def test_p5_holds_after_every_payload_of_every_keeper(n: int, t: int) -> None:
    """Each keeper releases 16 pledges in many small payloads (a different batch size each).
    Stop keeper K after each of its payloads, with every other keeper either silent or done:
    whenever member A reads member B, B reads A, and A reads itself."""
    world = make_world(16, n=n, t=t)
    sizes = [MIN_RELEASE_BYTES, 400, 700][:n]
    payloads = {k: keeper_build(world, k, max_bytes=sizes[k]).payloads for k in range(n)}
    assert len(payloads[0]) >= 4 and len(payloads[1]) >= 2  # really multi-transaction, in batches of their own
    states = set()
    for k in range(n):
        for stop in range(len(payloads[k]) + 1):
            for others in itertools.product((0, None), repeat=n - 1):  # silent, or done (None)
                rest = iter(others)
                states.add(tuple(stop if j == k else next(rest) for j in range(n)))
    partial_seen = False
    for state in sorted(states, key=str):
        releases = [r for k in range(n) for r in as_records(k, payloads[k][: state[k]])]
        reads = who_reads_whom(world, releases)
        assert_p5(reads, state)
        partial_seen |= any(0 < len(seen) < 16 for seen in reads.values())
    assert partial_seen  # some state let members read part of the roster: the test probes the middle
    full = who_reads_whom(world, [r for k in range(n) for r in as_records(k, payloads[k])])
    assert all(seen == set(range(16)) for seen in full.values())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_p5_holds_whenever_keepers_stop(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 4))
    t = data.draw(st.integers(2, n))
    world = make_world(10, n=n, t=t)
    stops = []
    releases: list[ReleaseRecord] = []
    for k in range(n):
        payloads = keeper_build(world, k, max_bytes=data.draw(st.integers(MIN_RELEASE_BYTES, 700))).payloads
        stop = data.draw(st.integers(0, len(payloads)))
        stops.append(stop)
        releases += as_records(k, payloads[:stop])
    assert_p5(who_reads_whom(world, releases), stops)


# ------------------------------------------------------------------------------------------ P9: lying keepers


def _flip(y: bytes) -> bytes:
    return bytes((y[0] ^ 0x01,)) + y[1:]


def _splice(payload: bytes, grants_from: bytes) -> bytes:
    """``payload`` with its GRANTS records taken from ``grants_from``."""
    keep = [raw for kind, raw in raw_records(payload) if kind != GRANTS]
    return payload[:4] + b"".join(keep + [raw for kind, raw in raw_records(grants_from) if kind == GRANTS])


def liar_payloads(world: World, k: int, how: str, rng: random.Random) -> list[bytes]:
    """What lying keeper k publishes: all of it well-formed unless said otherwise."""
    entries = honest_entries(world, k)
    if how == "nothing":
        return []
    if how == "garbage":
        return [b"SPR\x02" + rng.randbytes(300), rng.randbytes(200)]
    if how == "wrong shares":  # right structure, every y altered (instructions too)
        y = instructions_y(world, k)
        return build_release(
            world.ctx, KEEPERS[k], k, [replace(e, y=_flip(e.y)) for e in entries], instructions=_flip(y)
        ).payloads
    if how == "shuffled shares":  # real y values, each given for another pledge
        ys = [e.y for e in entries]
        return build_release(
            world.ctx, KEEPERS[k], k, [replace(e, y=ys[(j + 1) % len(ys)]) for j, e in enumerate(entries)]
        ).payloads
    if how == "another keeper's shares":  # real shares of keeper k + 1, published as k's
        other = {e.index: e.y for e in honest_entries(world, (k + 1) % len(world.ctx.keepers))}
        return build_release(world.ctx, KEEPERS[k], k, [replace(e, y=other[e.index]) for e in entries]).payloads
    if how == "wrong key":  # grants of a key that opens none of its records
        honest = keeper_build(world, k, entries=entries).payloads
        stranger = keeper_build(world, k, entries=entries, secret=KeyPair.generate()).payloads
        return [_splice(a, b) for a, b in zip(honest, stranger, strict=True)]
    if how == "grants only":
        return [
            p[:4] + b"".join(raw for kind, raw in raw_records(p) if kind == GRANTS)
            for p in keeper_build(world, k, entries=entries).payloads
        ]
    raise AssertionError(how)


LIES = ["wrong shares", "shuffled shares", "another keeper's shares", "garbage", "wrong key", "grants only", "nothing"]
NAMED_IN_SKIPPED = {"wrong shares", "shuffled shares", "another keeper's shares"}
NAMED_IN_PROBLEMS = {"garbage", "wrong key"}


def assert_reads_despite(
    world: World,
    releases: Sequence[ReleaseRecord],
    liars: dict[int, str],
    honest: Sequence[int],
    readers: Iterable[int],
) -> None:
    """Every reader reads every live pledge and the instructions; each lying keeper whose lie
    leaves evidence is named, and no honest keeper is."""
    for reader in readers:
        roster = roster_of(world, releases, world.members[reader])
        assert read_indices(roster) == world.live, (reader, liars, roster.skipped)
        assert_true_contents(world, roster)
        assert roster.instructions == INSTRUCTIONS
        named = {s.keeper_index for s in roster.skipped}
        problems = {p.keeper_index for p in roster.release_problems}
        assert all(s.index is None for s in roster.skipped)  # no pledge is missing
        assert not (named | problems) & set(honest)
        for k, how in liars.items():
            if how == "another keeper's shares" and world.ctx.keeper_threshold == 1:
                continue  # with t = 1 every keeper holds the key itself: that "lie" is the truth
            if how in NAMED_IN_SKIPPED:
                (entry,) = [s for s in roster.skipped if s.keeper_index == k]
                assert (
                    f"keeper #{k} published" in entry.reason
                    and "do not match the envelopes' commitments" in entry.reason
                )
            if how in NAMED_IN_PROBLEMS:
                assert k in problems
                (entry,) = [s for s in roster.skipped if s.keeper_index == k]
                assert f"keeper #{k} published" in entry.reason and "do not parse or do not decrypt" in entry.reason


def liar_world(n: int, t: int) -> World:
    world = make_world(5, n=n, t=t)
    world.set(3, live=False)
    return world


@pytest.mark.parametrize("how", LIES)
def test_a_lying_keeper_with_the_lowest_index_cannot_block_reads(how: str) -> None:
    """P9, n = 10, t = 4: keeper 0 (the lowest address sorts first, and an address can be ground)
    lies; any 4 honest keepers' releases still open every live pledge for every member."""
    world = liar_world(10, 4)
    rng = random.Random(how)
    lie = as_records(0, liar_payloads(world, 0, how, rng))
    honest_sets = [(6, 7, 8, 9), (1, 2, 3, 4), *(tuple(sorted(rng.sample(range(1, 10), 4))) for _ in range(4))]
    for i, honest in enumerate(honest_sets):
        releases = lie + [r for k in honest for r in as_records(k, keeper_build(world, k).payloads)]
        assert_reads_despite(world, releases, {0: how}, honest, world.live if i == 0 else [1])


def test_several_lying_keepers_cannot_block_reads() -> None:
    """Six of ten keepers lie, each differently, the lowest indices all; the four honest ones
    (t = 4) are enough."""
    world = liar_world(10, 4)
    rng = random.Random(6)
    liars = dict(enumerate(LIES[:6]))
    releases = [r for k, how in liars.items() for r in as_records(k, liar_payloads(world, k, how, rng))]
    releases += [r for k in (6, 7, 8, 9) for r in as_records(k, keeper_build(world, k).payloads)]
    assert_reads_despite(world, releases, liars, (6, 7, 8, 9), world.live)
    # the liars' own shares also sit among a reader's candidates, and are set aside one by one
    roster = roster_of(world, releases, world.members[2])
    assert {s.keeper_index for s in roster.skipped} == {0, 1, 2, 3, 4}  # "grants only" and "nothing" leave no trace


@pytest.mark.parametrize("n,t", [(5, 1), (10, 4), (17, 9), (32, 8), (32, 17), (32, 31)])
def test_liars_cannot_block_reads_at_any_n(n: int, t: int) -> None:
    """P9 up to n = 32: the n - t lowest keepers all lie (each in one of the ways above, with
    several publishing the same lie), and the t highest are honest."""
    world = liar_world(n, t)
    rng = random.Random(n * 100 + t)
    liars = {k: LIES[k % len(LIES)] for k in range(n - t)}
    honest = range(n - t, n)
    releases = [r for k, how in liars.items() for r in as_records(k, liar_payloads(world, k, how, rng))]
    releases += [r for k in honest for r in as_records(k, keeper_build(world, k).payloads)]
    assert_reads_despite(world, releases, liars, list(honest), [1, 4])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_t_honest_keepers_are_enough_whatever_the_others_publish(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 32))
    t = data.draw(st.integers(1, n))
    order = data.draw(st.permutations(range(n)))
    honest = sorted(order[:t])
    liars = {k: data.draw(st.sampled_from(LIES)) for k in order[t:]}
    world = liar_world(n, t)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    releases = [r for k, how in liars.items() for r in as_records(k, liar_payloads(world, k, how, rng))]
    releases += [r for k in honest for r in as_records(k, keeper_build(world, k).payloads)]
    data.draw(st.randoms()).shuffle(releases)  # the order of logs does not matter either
    assert_reads_despite(world, releases, liars, honest, [data.draw(st.sampled_from([0, 1, 2, 4]))])


@pytest.mark.slow
def test_what_a_liar_costs(record_property: Callable[[str, object], None]) -> None:
    """The price of P9: 9 bytes per keeper in the envelope (x and an 8-byte commitment beside each
    24-byte wrap), and the reader's time with liars among the keepers vs without (N = 1,000,
    n = 10, t = 4; run with ``-m slow -s`` to see the figures)."""
    n, t, count = 10, 4, 1000
    assert KEEPER_SLOT_SIZE - WRAP_SIZE == 1 + COMMITMENT_SIZE == 9
    world = make_world(count, n=n, t=t)
    honest = [r for k in (6, 7, 8, 9) for r in as_records(k, keeper_build(world, k).payloads)]
    rng = random.Random(0)
    one = as_records(0, liar_payloads(world, 0, "wrong shares", rng))
    six = [r for k, how in enumerate(LIES[:6]) for r in as_records(k, liar_payloads(world, k, how, rng))]

    def timed(releases: list[ReleaseRecord]) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            roster = roster_of(world, releases, world.members[1])
            best = min(best, time.perf_counter() - start)
        assert len(roster.members) == count
        return best

    clean, lied, many = timed(honest), timed(one + honest), timed(six + honest)
    for key, value in (("roster_honest_s", clean), ("roster_one_liar_s", lied), ("roster_six_liars_s", many)):
        record_property(key, round(value, 3))
    print(
        f"\nN={count}, n={n}, t={t}: roster {clean:.3f} s from 4 honest keepers, {lied:.3f} s with a lying "
        f"keeper 0 (wrong shares), {many:.3f} s with 6 lying keepers 0-5; envelope: 9 bytes per keeper"
    )
    assert lied < 3 * clean and many < 3 * clean


# ------------------------------------------------------------------------------------------ parser fuzz

WORLD = make_world(4)
REFERENCE = releases_of(WORLD, [0, 1], max_bytes=1000)
SAMPLE = REFERENCE[0].data
ALLOWED = (EnvelopeError, DecryptionError)


def _record_boundaries(data: bytes) -> set[int]:
    out, pos = set(), 4
    while pos < len(data):
        pos += 3 + int.from_bytes(data[pos + 1 : pos + 3], "big")
        out.add(pos)
    return out


def test_every_truncation_of_a_release_fails_cleanly_or_ends_on_a_record() -> None:
    boundaries = _record_boundaries(SAMPLE)
    assert len(boundaries) >= 3
    for cut in range(len(SAMPLE)):
        try:
            records = parse_release(SAMPLE[:cut])
        except EnvelopeError:
            assert cut not in boundaries
            continue
        assert cut in boundaries and records
    for cut in range(0, len(SAMPLE), 7):
        truncated = [replace(REFERENCE[0], data=SAMPLE[:cut]), *REFERENCE[1:]]
        roster = roster_of(WORLD, truncated, WORLD.members[1])
        assert_true_contents(WORLD, roster)
        assert sorted(read_indices(roster) + [s.index for s in roster.skipped if s.index is not None]) == [0, 1, 2, 3]


@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=1500), prefixed=st.booleans())
def test_arbitrary_release_bytes_never_stand_in_for_a_keeper(blob: bytes, prefixed: bool) -> None:
    if prefixed:
        blob = b"SPR\x02" + blob
    with contextlib.suppress(EnvelopeError):
        parse_release(blob)
    keeper1 = [r for r in REFERENCE if r.keeper_index == 1]
    roster = roster_of(WORLD, [ReleaseRecord(0, KEEPERS[0].address, blob, 1, 0), *keeper1], WORLD.members[1])
    assert roster.members == []  # random bytes never stand in for keeper 0's shares
    assert [s.index for s in roster.skipped if s.index is not None] == [0, 1, 2, 3]


@st.composite
def record_streams(draw: st.DrawFn) -> bytes:
    """b"SPR\\x02" and records of every type with plausible lengths, random bodies."""
    out = b"SPR\x02"
    for _ in range(draw(st.integers(0, 4))):
        rtype = draw(st.sampled_from([1, 2, 3, 4, 5, 6]) | st.integers(0, 255))
        size = draw(
            st.sampled_from([1 + 33 + 7 + 24, 1 + 7 + 12 + 16 + 16, 45, 58, 7 + 16, 16, 0]) | st.integers(0, 400)
        )
        body = bytearray(draw(st.binary(min_size=size, max_size=size)))
        if draw(st.booleans()) and len(body) >= 41:  # a canonical index set of pledge 0..3 in place
            at = 34 if rtype == GRANTS else 1 if rtype == SHARES else 0
            body[at : at + 7] = encode_index_set([0, 1, 3])
        if draw(st.booleans()) and body:
            body[0] = draw(st.sampled_from([ROSTER_KEY, LATE_KEY]))
        declared = size if draw(st.booleans()) else draw(st.integers(0, 2**16 - 1))
        out += bytes([rtype]) + declared.to_bytes(2, "big") + bytes(body)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=record_streams(), keeper=st.integers(-2, 5))
def test_structured_release_garbage_never_changes_what_a_member_reads(blob: bytes, keeper: int) -> None:
    with contextlib.suppress(EnvelopeError):
        parse_release(blob)
    releases = [ReleaseRecord(keeper, "0x" + "00" * 20, blob, 1, 0), *REFERENCE]
    roster = roster_of(WORLD, releases, WORLD.members[2])
    assert read_indices(roster) == [0, 1, 2, 3]  # the honest keepers 0 and 1 are still enough
    assert_true_contents(WORLD, roster)
    assert roster.instructions == INSTRUCTIONS


@settings(max_examples=150, deadline=None)
@given(which=st.integers(0, len(REFERENCE) - 1), pos=st.data(), mask=st.integers(1, 255))
def test_flipped_release_bytes_never_forge_content(which: int, pos: st.DataObject, mask: int) -> None:
    data = bytearray(REFERENCE[which].data)
    at = pos.draw(st.integers(0, len(data) - 1))
    data[at] ^= mask
    releases = list(REFERENCE)
    releases[which] = replace(releases[which], data=bytes(data))
    roster = roster_of(WORLD, releases, WORLD.members[2])
    assert_true_contents(WORLD, roster)
    accounted = read_indices(roster) + [s.index for s in roster.skipped if s.index is not None]
    assert sorted(accounted) == [0, 1, 2, 3]  # every pledge is read or listed with a reason
    assert roster.instructions in (INSTRUCTIONS, None)


def test_parse_release_types_and_refusals() -> None:
    world = make_world(4, relay=True, late=[3])
    kinds = {type(r) for rel in releases_of(world, [0]) for r in parse_release(rel.data)}
    assert kinds == {SharesRecord, GrantsRecord, InstructionsRecord, RelayRecord}
    assert [
        r.key_id for rel in releases_of(world, [0]) for r in parse_release(rel.data) if isinstance(r, GrantsRecord)
    ] == [
        ROSTER_KEY,
        LATE_KEY,
    ]
    with pytest.raises(EnvelopeError, match="holds no record"):
        parse_release(b"SPR\x02")
    with pytest.raises(EnvelopeError, match="version 1 is not supported"):
        parse_release(b"SPR\x01" + SAMPLE[4:])
    with pytest.raises(EnvelopeError, match="magic"):
        parse_release(b"")
    with pytest.raises(EnvelopeError, match="a release is bytes, not str"):
        parse_release("SPR")  # type: ignore[arg-type]
    with pytest.raises(EnvelopeError, match="unknown key id 7"):
        parse_release(
            b"SPR\x02"
            + bytes((SHARES,))
            + (1 + 7 + 12 + 32).to_bytes(2, "big")
            + b"\x07"
            + encode_index_set([0])
            + bytes(44)
        )
    with pytest.raises(EnvelopeError, match="wrong number of shares"):
        parse_release(
            b"SPR\x02"
            + bytes((SHARES,))
            + (1 + 7 + 12 + 31).to_bytes(2, "big")
            + b"\x00"
            + encode_index_set([0])
            + bytes(43)
        )


def test_a_forged_share_that_matches_its_commitment_does_not_block_a_record() -> None:
    """An 8-byte commitment can be matched by a wrong share for about 2^64 hashes. Simulate a
    keeper that paid for it on one pledge: the envelope's commitment for keeper 0 is that of the
    wrong value keeper 0 publishes. With t honest keepers' shares present the reader still opens
    the record, by trying the other subsets of matching shares."""
    from spartacus.envelope import COMMITMENT_SIZE, HEADER_SIZE, KEEPER_SLOT_SIZE, binding, commitment

    world = make_world(4)
    target = world.pledge(2)
    parsed = parse(target.envelope)
    forged_y = secrets.token_bytes(16)
    h = sha256(binding(world.ctx, ROLE_PLEDGE, target.member_key, target.pledger))
    slot = HEADER_SIZE + len(parsed.body)  # keeper 0's slot: x (1) | commitment (8) | wrap (24)
    forged_env = (
        target.envelope[: slot + 1]
        + commitment(h, 0, parsed.xs[0], forged_y)
        + target.envelope[slot + 1 + COMMITMENT_SIZE :]
    )
    assert len(forged_env) == len(target.envelope) and KEEPER_SLOT_SIZE == 33
    entries = honest_entries(world, 0)  # keeper 0's shares, taken before the envelope is forged
    assert 2 in {e.index for e in entries}
    world.set(2, envelope=forged_env)
    lying = [Entry(e.index, forged_y, e.member_key, e.grant) if e.index == 2 else e for e in entries]
    releases = as_records(0, keeper_build(world, 0, entries=lying).payloads) + releases_of(world, [1, 2])
    roster = roster_of(world, releases, world.members[1])
    assert read_indices(roster) == [0, 1, 2, 3] and roster.skipped == []
