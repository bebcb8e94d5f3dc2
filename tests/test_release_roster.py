"""Keeper releases and the roster, end to end without a chain.

Security properties exercised here (DESIGN §1): P1 (one keeper below t reveals
nothing), P2 (members read everything, a non-member key nothing; public scope
readable by anyone), P4 (withdrawn pledges never appear), and "garbage is
skipped and reported, never fatal" for envelopes, member keys and releases.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus.envelope import PledgeContent, open_share, parse, seal
from spartacus.keys import KeyPair, unwrap
from spartacus.release import (
    GRANT_ENTRY_SIZE,
    MIN_RELEASE_BYTES,
    SHARE_ENTRY_SIZE,
    GrantRecord,
    PublicSharesRecord,
    ReleaseBuild,
    SharesRecord,
    build_release,
    collect_shares,
    decrypt_shares_record,
    new_release_key,
    parse_release,
)
from spartacus.roster import Roster, build_roster, find_member_index
from spartacus.types import CampaignContext, PledgeRecord, ReleaseRecord, Scope

KEEPERS = [KeyPair.generate() for _ in range(3)]
CREATOR = "0x" + "C0" * 20
CAMPAIGN = "0x" + "ca" * 20
MEMBER_POOL = [KeyPair.generate() for _ in range(12)]
INSTRUCTIONS = "Meet at the north gate, 09:00. Bring water."


def make_ctx(scope: Scope = Scope.MEMBERS, t: int = 2) -> CampaignContext:
    return CampaignContext(31337, CAMPAIGN, tuple(k.public_key for k in KEEPERS), t, scope)


def content(i: int, **extra: str) -> PledgeContent:
    return PledgeContent(
        name=f"Member {i} ✊",
        contact={"email": f"m{i}@example.org"},
        message=f"hello from {i}" if i % 2 else None,
        **extra,
    )


@dataclass
class World:
    ctx: CampaignContext
    members: list[KeyPair]
    pledges: list[PledgeRecord]
    contents: dict[int, PledgeContent]

    def pledge(self, index: int) -> PledgeRecord:
        return next(p for p in self.pledges if p.index == index)

    def set(self, index: int, **changes: object) -> None:
        self.pledges = [replace(p, **changes) if p.index == index else p for p in self.pledges]  # type: ignore[arg-type]


def make_world(count: int = 5, scope: Scope = Scope.MEMBERS) -> World:
    """Pledge 0 is the creator's (with instructions); 1..count-1 are members."""
    ctx = make_ctx(scope)
    members = MEMBER_POOL[:count]
    contents: dict[int, PledgeContent] = {}
    pledges: list[PledgeRecord] = []
    for i, member in enumerate(members):
        c = content(i, instructions=INSTRUCTIONS) if i == 0 else content(i)
        contents[i] = c
        pledger = CREATOR if i == 0 else "0x" + f"{i:040x}"
        pledges.append(
            PledgeRecord(
                index=i,
                pledger=pledger,
                member_key=member.compressed,
                envelope=seal(c, ctx, member.compressed, pledger=pledger),
                block_number=100 + i,
            )
        )
    return World(ctx, list(members), pledges, contents)


def keeper_release(
    world: World,
    k: int,
    *,
    release_key: bytes | None = None,
    max_bytes: int = 20_000,
    only: Iterable[int] | None = None,
    include_dead: bool = False,
    block: int = 1000,
) -> tuple[ReleaseBuild, list[ReleaseRecord]]:
    """What keeper k would publish: shares of every live pledge that opens, grants to their keys."""
    wanted = set(only) if only is not None else None
    shares: dict[int, bytes] = {}
    grants: dict[int, bytes] = {}
    for p in world.pledges:
        if (not p.live and not include_dead) or (wanted is not None and p.index not in wanted):
            continue
        try:
            shares[p.index] = open_share(
                parse(p.envelope), k, KEEPERS[k], world.ctx, member_key33=p.member_key, pledger=p.pledger
            )
        except (EnvelopeError, DecryptionError):
            continue
        grants[p.index] = p.member_key
    key = release_key if release_key is not None else new_release_key()
    built = build_release(world.ctx, k, key, shares, grants, max_bytes=max_bytes)
    records = [ReleaseRecord(k, KEEPERS[k].address, data, block + k, log) for log, data in enumerate(built.payloads)]
    return built, records


def releases_of(world: World, keepers: Iterable[int], **kwargs: object) -> list[ReleaseRecord]:
    out: list[ReleaseRecord] = []
    for k in keepers:
        out.extend(keeper_release(world, k, **kwargs)[1])  # type: ignore[arg-type]
    return out


def expected_names(world: World, indices: Iterable[int]) -> list[str]:
    return [world.contents[i].name for i in indices]


def names(roster: Roster) -> list[str]:
    return [m.name for m in roster.members]


# ------------------------------------------------------------------------------------------ end to end


def test_every_member_reads_the_full_roster_from_two_of_three_keepers() -> None:
    world = make_world(5)
    releases = releases_of(world, [0, 2])
    for member in world.members:
        roster = build_roster(world.ctx, world.pledges, releases, member, CREATOR)
        assert [m.index for m in roster.members] == [0, 1, 2, 3, 4]
        assert names(roster) == expected_names(world, range(5))
        assert roster.members[3].contact == {"email": "m3@example.org"}
        assert roster.members[3].message == "hello from 3"
        assert roster.instructions == INSTRUCTIONS
        assert roster.skipped == [] and roster.release_problems == []


def test_roster_json_matches_the_interface() -> None:
    world = make_world(3)
    roster = build_roster(world.ctx, world.pledges, releases_of(world, [0, 1]), world.members[1], CREATOR)
    doc = roster.to_json()
    assert set(doc) >= {"members", "instructions", "skipped"}
    assert doc["members"][1] == {
        "index": 1,
        "name": "Member 1 ✊",
        "contact": {"email": "m1@example.org"},
        "message": "hello from 1",
    }
    assert doc["instructions"] == INSTRUCTIONS and doc["skipped"] == []


def test_one_keeper_alone_is_not_enough() -> None:
    """P1 after the reveal too: below t releases nothing opens; each pledge says why."""
    world = make_world(4)
    roster = build_roster(world.ctx, world.pledges, releases_of(world, [1]), world.members[2], CREATOR)
    assert roster.members == [] and roster.instructions is None
    assert [s.index for s in roster.skipped] == [0, 1, 2, 3]
    assert all("need 2 keeper shares, got 1" in s.reason for s in roster.skipped)


def test_all_three_keepers_also_work_and_t_equals_n() -> None:
    world = make_world(3)
    roster = build_roster(world.ctx, world.pledges, releases_of(world, [0, 1, 2]), world.members[0], CREATOR)
    assert names(roster) == expected_names(world, range(3))
    ctx3 = make_ctx(t=3)
    world3 = make_world(3)
    world3.ctx = ctx3
    world3.pledges = [
        replace(p, envelope=seal(world3.contents[p.index], ctx3, p.member_key, pledger=p.pledger))
        for p in world3.pledges
    ]
    partial = build_roster(ctx3, world3.pledges, releases_of(world3, [0, 1]), world3.members[0], CREATOR)
    assert partial.members == [] and all("need 3" in s.reason for s in partial.skipped)
    full = build_roster(ctx3, world3.pledges, releases_of(world3, [0, 1, 2]), world3.members[0], CREATOR)
    assert len(full.members) == 3


def test_a_non_member_key_reads_nothing() -> None:
    """P2: a key that is not a live pledge's member key gets no release key and no roster."""
    world = make_world(4)
    releases = releases_of(world, [0, 1, 2])
    outsider = KeyPair.generate()
    with pytest.raises(DecryptionError, match="not a member"):
        build_roster(world.ctx, world.pledges, releases, outsider, CREATOR)
    # even when it claims a member's pledge index, or tries every grant entry
    for claimed in (1, None):
        with pytest.raises(DecryptionError, match="not a member"):
            collect_shares(releases, world.ctx, claimed, outsider)
    # and the release bytes themselves never contain the shares in clear
    shares = [
        open_share(parse(p.envelope), 0, KEEPERS[0], world.ctx, member_key33=p.member_key, pledger=p.pledger)
        for p in world.pledges
    ]
    blob = b"".join(r.data for r in releases)
    assert not any(s in blob for s in shares)


def test_member_index_is_optional_for_collect_shares() -> None:
    world = make_world(4)
    releases = releases_of(world, [0, 1])
    slow = collect_shares(releases, world.ctx, None, world.members[3])
    fast = collect_shares(releases, world.ctx, 3, world.members[3])
    assert slow.shares == fast.shares and set(slow.shares) == {0, 1, 2, 3}
    assert fast.granted_by == {0, 1}


def test_members_scope_without_a_key_is_refused() -> None:
    world = make_world(2)
    with pytest.raises(InputError, match="member key is needed"):
        build_roster(world.ctx, world.pledges, releases_of(world, [0, 1]), None, CREATOR)


def test_public_scope_is_readable_without_a_key() -> None:
    world = make_world(4, scope=Scope.PUBLIC)
    releases = releases_of(world, [1, 2])
    for rel in releases:
        assert all(isinstance(r, PublicSharesRecord) for r in parse_release(rel.data))
    roster = build_roster(world.ctx, world.pledges, releases, None, CREATOR)
    assert names(roster) == expected_names(world, range(4))
    assert roster.instructions == INSTRUCTIONS
    # a member key changes nothing
    with_key = build_roster(world.ctx, world.pledges, releases, world.members[1], CREATOR)
    assert with_key.to_json() == roster.to_json()
    # and an outsider's key neither
    assert names(build_roster(world.ctx, world.pledges, releases, KeyPair.generate(), CREATOR)) == names(roster)


def test_withdrawn_pledges_never_appear() -> None:
    """P4: even if keepers (wrongly) released shares for a withdrawn pledge."""
    world = make_world(5)
    world.set(2, live=False)
    releases = releases_of(world, [0, 1], include_dead=True)
    roster = build_roster(world.ctx, world.pledges, releases, world.members[1], CREATOR)
    assert [m.index for m in roster.members] == [0, 1, 3, 4]
    assert 2 not in [s.index for s in roster.skipped]
    assert world.contents[2].name not in str(roster.to_json())


def test_a_withdrawn_member_is_no_longer_a_member() -> None:
    world = make_world(4)
    world.set(2, live=False)
    releases = releases_of(world, [0, 1])  # honest keepers: no grant to the withdrawn pledge
    with pytest.raises(DecryptionError, match="not a member"):
        build_roster(world.ctx, world.pledges, releases, world.members[2], CREATOR)


def test_garbage_envelope_and_garbage_member_key_are_skipped_and_listed() -> None:
    world = make_world(6)
    world.set(3, envelope=secrets.token_bytes(900))  # anyone can send bytes
    bad_key = b"\x02" + b"\xff" * 32  # right shape, not a point
    world.set(4, member_key=bad_key)
    builds = [keeper_release(world, k) for k in (0, 1)]
    for built, _ in builds:
        # Keepers open nothing of pledge 4: its envelope is bound to another member key.
        assert built.skipped == []
    releases = [r for _, recs in builds for r in recs]
    roster = build_roster(world.ctx, world.pledges, releases, world.members[5], CREATOR)
    assert [m.index for m in roster.members] == [0, 1, 2, 5]
    skipped = {s.index: s.reason for s in roster.skipped}
    assert set(skipped) == {3, 4}
    assert "malformed envelope" in skipped[3]
    assert "got 0" in skipped[4]
    assert roster.to_json()["skipped"] == [{"index": 3, "reason": skipped[3]}, {"index": 4, "reason": skipped[4]}]


@pytest.mark.parametrize("bad_key", [b"", b"\x04" * 65, b"\x02" * 5, b"\x05" + b"\x11" * 32, "0x02"])
def test_grants_with_malformed_member_keys_are_skipped(bad_key: object) -> None:
    built = build_release(
        make_ctx(),
        0,
        new_release_key(),
        {},
        {7: bad_key, 8: MEMBER_POOL[0].compressed},  # type: ignore[dict-item]
    )
    assert [i for i, _ in built.skipped] == [7]
    (records,) = [parse_release(p) for p in built.payloads]
    assert records == (GrantRecord(((8, records[0].entries[0][1]),)),)  # type: ignore[union-attr]


def test_releases_split_across_many_payloads_still_read_back() -> None:
    world = make_world(12)
    max_bytes = 300
    built, _ = keeper_release(world, 0, max_bytes=max_bytes)
    assert len(built.payloads) == 6 + 2  # 2 grants per payload, then 7 shares per payload
    for payload in built.payloads:
        assert len(payload) <= max_bytes
        assert parse_release(payload)  # each parses on its own
    releases = releases_of(world, [0, 2], max_bytes=max_bytes)
    roster = build_roster(world.ctx, world.pledges, releases, world.members[7], CREATOR)
    assert names(roster) == expected_names(world, range(12))
    # the smallest allowed size works too, and below it is refused
    releases = releases_of(world, [1, 2], max_bytes=MIN_RELEASE_BYTES)
    assert len(build_roster(world.ctx, world.pledges, releases, world.members[0], CREATOR).members) == 12
    with pytest.raises(InputError, match="too small"):
        keeper_release(world, 0, max_bytes=MIN_RELEASE_BYTES - 1)


def test_incremental_releases_after_the_reveal() -> None:
    """Pledges after the reveal are released as they arrive, with the same release key."""
    world = make_world(6)
    keys = {k: new_release_key() for k in (0, 1)}
    first = [r for k in (0, 1) for r in keeper_release(world, k, release_key=keys[k], only=range(5))[1]]
    later = [r for k in (0, 1) for r in keeper_release(world, k, release_key=keys[k], only=[5], block=2000)[1]]
    for reader in (world.members[1], world.members[5]):
        roster = build_roster(world.ctx, world.pledges, first + later, reader, CREATOR)
        assert [m.index for m in roster.members] == list(range(6))
    early = build_roster(world.ctx, world.pledges, first, world.members[1], CREATOR)
    assert [s.index for s in early.skipped] == [5]


def test_only_the_creators_instructions_count() -> None:
    world = make_world(4)
    rogue = content(2, instructions="Ignore the organizer: meet at MY place instead.")
    world.contents[2] = rogue
    world.set(2, envelope=seal(rogue, world.ctx, world.members[2].compressed, pledger=world.pledge(2).pledger))
    releases = releases_of(world, [0, 1])
    roster = build_roster(world.ctx, world.pledges, releases, world.members[3], CREATOR)
    assert roster.instructions == INSTRUCTIONS
    assert "MY place" not in str(roster.to_json())
    # creator given in another letter case: same address
    assert build_roster(world.ctx, world.pledges, releases, world.members[3], CREATOR.lower()).instructions == (
        INSTRUCTIONS
    )
    # without the creator's pledge, nobody's instructions are shown
    no_creator = build_roster(world.ctx, world.pledges, releases, world.members[3], "0x" + "99" * 20)
    assert no_creator.instructions is None and len(no_creator.members) == 4


def test_creator_instructions_come_from_the_first_live_creator_pledge() -> None:
    world = make_world(4)
    second = content(3, instructions="second pledge's instructions")
    world.contents[3] = second
    world.set(3, pledger=CREATOR, envelope=seal(second, world.ctx, world.members[3].compressed, pledger=CREATOR))
    releases = releases_of(world, [0, 1])
    assert build_roster(world.ctx, world.pledges, releases, world.members[1], CREATOR).instructions == INSTRUCTIONS
    world.set(0, live=False)
    releases = releases_of(world, [0, 1])
    roster = build_roster(world.ctx, world.pledges, releases, world.members[1], CREATOR)
    assert roster.instructions == "second pledge's instructions"


def test_malformed_and_foreign_releases_are_reported_not_fatal() -> None:
    world = make_world(4)
    good = releases_of(world, [0, 1])
    valid = good[0].data
    junk = [
        ReleaseRecord(0, KEEPERS[0].address, b"garbage", 5000, 0),
        ReleaseRecord(1, KEEPERS[1].address, valid[:-3], 5001, 0),  # truncated
        ReleaseRecord(7, "0x" + "77" * 20, valid, 5002, 0),  # no keeper #7
        ReleaseRecord(-1, "0x" + "77" * 20, valid, 5003, 0),
        ReleaseRecord(2, KEEPERS[2].address, b"SPR\x01\x09\x00\x00\x00\x00", 5004, 0),  # unknown record
    ]
    roster = build_roster(world.ctx, world.pledges, good + junk, world.members[2], CREATOR)
    assert len(roster.members) == 4 and roster.skipped == []
    assert sorted(p.block_number for p in roster.release_problems) == [5000, 5001, 5002, 5003, 5004]
    assert len(roster.to_json()["release_problems"]) == 5


def test_a_keeper_cannot_pass_off_another_keepers_release() -> None:
    """Keeper 0's bytes re-published under keeper 1's index do not count as keeper 1's shares."""
    world = make_world(3)
    genuine = releases_of(world, [0])
    replayed = [replace(r, keeper_index=1, block_number=r.block_number + 50) for r in genuine]
    roster = build_roster(world.ctx, world.pledges, genuine + replayed, world.members[1], CREATOR)
    assert roster.members == []
    assert all("need 2 keeper shares, got 1" in s.reason for s in roster.skipped)
    assert any("does not decrypt" in p.reason for p in roster.release_problems)


def test_release_for_another_campaign_does_not_decrypt() -> None:
    world = make_world(3)
    other_world = make_world(3)
    other_world.ctx = replace(world.ctx, campaign="0x" + "cb" * 20)
    other_world.pledges = [
        replace(p, envelope=seal(other_world.contents[p.index], other_world.ctx, p.member_key, pledger=p.pledger))
        for p in other_world.pledges
    ]
    foreign = releases_of(other_world, [0, 1])  # same members, same keepers, other campaign
    roster = build_roster(world.ctx, world.pledges, foreign, world.members[1], CREATOR)
    assert roster.members == []
    assert roster.release_problems


def test_republished_release_is_harmless() -> None:
    world = make_world(3)
    releases = releases_of(world, [0, 1])
    again = [replace(r, block_number=r.block_number + 10) for r in releases]
    roster = build_roster(world.ctx, world.pledges, releases + again, world.members[0], CREATOR)
    assert len(roster.members) == 3 and roster.release_problems == []


def test_grant_wraps_the_release_key_to_the_member() -> None:
    key = new_release_key()
    member = MEMBER_POOL[3]
    built = build_release(make_ctx(), 2, key, {}, {9: member.compressed})
    (payload,) = built.payloads
    (grant,) = parse_release(payload)
    assert isinstance(grant, GrantRecord)
    ((index, wrapped),) = grant.entries
    assert index == 9 and unwrap(member, wrapped) == key
    with pytest.raises(DecryptionError):
        unwrap(MEMBER_POOL[4], wrapped)


def test_release_sizes_per_member() -> None:
    """One payload, N members: 4 + (5 + 133 N) + (5 + 28 + 37 N) bytes: 170 bytes per member."""
    world = make_world(10)
    built, _ = keeper_release(world, 0)
    assert GRANT_ENTRY_SIZE == 133 and SHARE_ENTRY_SIZE == 37
    assert len(built.payloads) == 1
    assert built.total_bytes == 4 + 5 + 133 * 10 + 5 + 28 + 37 * 10
    public = make_world(10, scope=Scope.PUBLIC)
    pub_built, _ = keeper_release(public, 0)
    assert pub_built.total_bytes == 4 + 5 + 37 * 10


def test_keeper_reads_back_its_own_shares_records() -> None:
    world = make_world(4)
    key = new_release_key()
    built, _ = keeper_release(world, 1, release_key=key, max_bytes=700)
    entries = [
        entry
        for payload in built.payloads
        for record in parse_release(payload)
        if isinstance(record, SharesRecord)
        for entry in decrypt_shares_record(record, key, world.ctx, 1)
    ]
    assert [i for i, _ in entries] == [0, 1, 2, 3]
    assert all(share[0] == 2 for _, share in entries)
    record = next(r for p in built.payloads for r in parse_release(p) if isinstance(r, SharesRecord))
    with pytest.raises(DecryptionError):
        decrypt_shares_record(record, new_release_key(), world.ctx, 1)
    with pytest.raises(DecryptionError):
        decrypt_shares_record(record, key, world.ctx, 0)


def test_nothing_to_release_gives_no_payload() -> None:
    assert build_release(make_ctx(), 0, new_release_key(), {}, {}).payloads == []


def test_build_release_refuses_caller_mistakes() -> None:
    world = make_world(2)
    first = world.pledges[0]
    share0 = open_share(
        parse(first.envelope), 0, KEEPERS[0], world.ctx, member_key33=first.member_key, pledger=first.pledger
    )
    ctx = world.ctx
    with pytest.raises(InputError, match="not a 33-byte share of keeper #1"):
        build_release(ctx, 1, new_release_key(), {0: share0}, {})
    with pytest.raises(InputError, match="out of range"):
        build_release(ctx, 3, new_release_key(), {}, {})
    with pytest.raises(InputError, match="release key"):
        build_release(ctx, 0, None, {0: share0}, {})
    with pytest.raises(InputError, match="uint32"):
        build_release(ctx, 0, new_release_key(), {-1: share0}, {})
    with pytest.raises(InputError, match="uint32"):
        build_release(ctx, 0, new_release_key(), {}, {2**32: MEMBER_POOL[0].compressed})


def test_find_member_index_prefers_live_pledges() -> None:
    world = make_world(3)
    key = world.members[1].compressed
    assert find_member_index(world.pledges, key) == 1
    world.set(1, live=False)
    assert find_member_index(world.pledges, key) == 1
    world.pledges.append(replace(world.pledge(1), index=7, live=True))
    assert find_member_index(world.pledges, key) == 7
    assert find_member_index(world.pledges, KeyPair.generate().compressed) is None


# ------------------------------------------------------------------------------------------ parser fuzz

WORLD = make_world(4)
REFERENCE = releases_of(WORLD, [0, 1], max_bytes=1000)  # one GRANT + one SHARES record each
SAMPLE = REFERENCE[0].data
ALLOWED = (EnvelopeError, DecryptionError)


def _record_boundaries(data: bytes) -> set[int]:
    out, pos = set(), 4
    while pos < len(data):
        pos += 5 + int.from_bytes(data[pos + 1 : pos + 5], "big")
        out.add(pos)
    return out


def test_every_truncation_of_a_release_fails_cleanly_or_ends_on_a_record() -> None:
    boundaries = _record_boundaries(SAMPLE)
    assert len(boundaries) >= 2
    for cut in range(len(SAMPLE)):
        try:
            records = parse_release(SAMPLE[:cut])
        except EnvelopeError:
            assert cut not in boundaries
            continue
        assert cut in boundaries and records
    for cut in range(0, len(SAMPLE), 7):
        truncated = [replace(REFERENCE[0], data=SAMPLE[:cut]), *REFERENCE[1:]]
        with contextlib.suppress(*ALLOWED):
            build_roster(WORLD.ctx, WORLD.pledges, truncated, WORLD.members[1], CREATOR)


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=1500), prefixed=st.booleans())
def test_arbitrary_release_bytes_only_raise_envelope_errors(blob: bytes, prefixed: bool) -> None:
    if prefixed:
        blob = b"SPR\x01" + blob
    with contextlib.suppress(EnvelopeError):
        parse_release(blob)
    keeper1 = [r for r in REFERENCE if r.keeper_index == 1]
    releases = [ReleaseRecord(0, KEEPERS[0].address, blob, 1, 0), *keeper1]
    try:
        roster = build_roster(WORLD.ctx, WORLD.pledges, releases, WORLD.members[1], CREATOR)
    except ALLOWED:
        return
    assert roster.members == []  # random bytes never stand in for keeper 0's shares


@st.composite
def record_streams(draw: st.DrawFn) -> bytes:
    """b"SPR\\x01" and records of plausible types and lengths, random bodies."""
    out = b"SPR\x01"
    for _ in range(draw(st.integers(0, 4))):
        rtype = draw(st.sampled_from([1, 2, 3]) | st.integers(0, 255))
        size = draw(st.sampled_from([133, 266, 28 + 37, 28 + 74, 37, 74, 0, 27]) | st.integers(0, 400))
        body = draw(st.binary(min_size=size, max_size=size))
        declared = size if draw(st.booleans()) else draw(st.integers(0, 2**32 - 1))
        out += bytes([rtype]) + declared.to_bytes(4, "big") + body
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=record_streams(), keeper=st.integers(-2, 5))
def test_structured_release_garbage_never_crashes_the_reader(blob: bytes, keeper: int) -> None:
    with contextlib.suppress(EnvelopeError):
        parse_release(blob)
    releases = [ReleaseRecord(keeper, "0x" + "00" * 20, blob, 1, 0), *REFERENCE]
    try:
        roster = build_roster(WORLD.ctx, WORLD.pledges, releases, WORLD.members[2], CREATOR)
    except ALLOWED:
        return
    # garbage can at most make pledges unreadable, never change what a member says
    for member in roster.members:
        assert WORLD.contents[member.index].name == member.name


@settings(max_examples=150, deadline=None)
@given(which=st.integers(0, len(REFERENCE) - 1), pos=st.data(), mask=st.integers(1, 255))
def test_flipped_release_bytes_never_forge_content(which: int, pos: st.DataObject, mask: int) -> None:
    data = bytearray(REFERENCE[which].data)
    at = pos.draw(st.integers(0, len(data) - 1))
    data[at] ^= mask
    releases = list(REFERENCE)
    releases[which] = replace(releases[which], data=bytes(data))
    try:
        roster = build_roster(WORLD.ctx, WORLD.pledges, releases, WORLD.members[2], CREATOR)
    except ALLOWED:
        return
    for member in roster.members:
        assert WORLD.contents[member.index].name == member.name
    assert len(roster.members) + len(roster.skipped) == len(WORLD.pledges)


def test_parse_release_types() -> None:
    kinds = {type(r) for rel in REFERENCE for r in parse_release(rel.data)}
    assert kinds == {GrantRecord, SharesRecord}
    with pytest.raises(EnvelopeError, match="no record"):
        parse_release(b"SPR\x01")
    with pytest.raises(EnvelopeError, match="version"):
        parse_release(b"SPR\x02" + SAMPLE[4:])
    with pytest.raises(EnvelopeError, match="magic"):
        parse_release(b"")
    with pytest.raises(EnvelopeError):
        parse_release("SPR")  # type: ignore[arg-type]
