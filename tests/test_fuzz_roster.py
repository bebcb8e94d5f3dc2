"""Fuzzing the roster reader, format v2: hostile pledges and releases (anyone can send bytes to the
contract) never crash it, never hide an honest member, never alter what a member says, never
pass for the organizer's instructions, and each is listed as skipped with the reason.

Every hostile pledge's fate is computed from how it was made, so each assertion can fail: a
pledge the honest keepers can open and that decrypts is read (exactly as sealed), every other
one is skipped with the reason that fits it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_release_roster import (
    INSTRUCTIONS,
    KEEPERS,
    World,
    assert_true_contents,
    make_world,
    read_indices,
    releases_of,
    roster_of,
)

from spartacus._exceptions import EnvelopeError
from spartacus.envelope import (
    HEADER_SIZE,
    KEEPER_SLOT_SIZE,
    ROLE_PLEDGE,
    PledgeContent,
    _seal,
    seal,
    seal_instructions,
)
from spartacus.keys import KeyPair
from spartacus.release import encode_index_set, parse_release
from spartacus.types import CampaignContext, PledgeRecord, ReleaseRecord

READER = 1  # the member whose view is checked; its own pledge stays honest
RELEASING = (0, 2)  # the honest keepers that release (t = 2 of 3); keeper 1 stays silent
WITHDRAWN = 3
FAKE_INSTRUCTIONS = "Go home, it is cancelled."

# What the roster says about a pledge it cannot read, by cause.
MALFORMED = r"^malformed envelope: "
NO_SHARES = r"^need 2 keeper shares, got 0: not \(yet\) released"
ONE_SHARE = r"^need 2 keeper shares, got 1: not \(yet\) released"
NO_DECRYPT = r"^the shares match their commitments but the record does not decrypt"
BAD_RECORD = r"^the sealed record"

hostile_pledge = st.one_of(
    st.tuples(st.just("random"), st.binary(min_size=0, max_size=2000)),
    st.tuples(st.just("framed random"), st.sampled_from([256, 512]), st.randoms(use_true_random=False)),
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
    st.tuples(st.just("other campaign"), st.sampled_from(["chain", "campaign"])),
    st.tuples(st.just("bad member key"), st.binary(min_size=33, max_size=33)),
    st.tuples(st.just("fake instructions"), st.booleans()),
    st.tuples(st.just("replay"), st.sampled_from([2, WITHDRAWN])),
    st.tuples(st.just("junk record"), st.binary(min_size=0, max_size=200)),
    st.tuples(st.just("valid"), st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=30)),
)


@st.composite
def hostile_release(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["prefixed", "random", "records"]))
    if kind == "prefixed":
        return b"SPR\x02" + draw(st.binary(max_size=600))
    if kind == "random":
        return draw(st.binary(max_size=600))
    out = b"SPR\x02"
    for _ in range(draw(st.integers(1, 3))):
        rtype = draw(st.integers(0, 7))
        body = bytearray(draw(st.binary(min_size=8, max_size=300)))
        body[0] = draw(st.sampled_from([0, 1, body[0]]))  # key ids, mostly
        if draw(st.booleans()):
            at = {1: 34, 2: 1, 5: 0}.get(rtype, 1)
            body[at : at + 7] = encode_index_set([0, 2, 4])
        out += bytes((rtype,)) + len(body).to_bytes(2, "big") + bytes(body)
    return out


@dataclass
class Hostile:
    record: PledgeRecord
    kind: str
    expect: str | None  # a regex for the skip reason; None: read, as ``sealed``
    sealed: PledgeContent | None = None


def _framed_random(bucket: int, rnd: object) -> bytes:
    rng = rnd  # hypothesis' random.Random
    xs = rng.sample(range(1, 256), 3)  # type: ignore[attr-defined]
    slots = b"".join(bytes((x,)) + rng.randbytes(KEEPER_SLOT_SIZE - 1) for x in xs)  # type: ignore[attr-defined]
    return b"SPX\x02\x03\x02" + rng.randbytes(bucket + 16) + slots  # type: ignore[attr-defined]


def _flip_outcome(pos: int, envelope: bytes, flipped: bytes) -> str | None:
    """Where a flipped byte lands decides the pledge's fate (keepers 0 and 2 release)."""
    if pos < HEADER_SIZE:
        return MALFORMED
    slots = len(envelope) - 3 * KEEPER_SLOT_SIZE
    if pos < slots:
        return NO_DECRYPT  # every wrap opens, the shares match, the body does not authenticate
    keeper, offset = divmod(pos - slots, KEEPER_SLOT_SIZE)
    if offset == 0:
        xs = [flipped[slots + k * KEEPER_SLOT_SIZE] for k in range(3)]
        if 0 in xs or len(set(xs)) != 3:
            return MALFORMED
    return None if keeper not in RELEASING else ONE_SHARE  # keeper `keeper` cannot open its share


def make_hostile(world: World, kind: tuple[object, ...], index: int) -> Hostile:
    ctx = world.ctx
    member = KeyPair.generate()
    pledger = member.address if index % 2 else "0x" + secrets.token_hex(20)
    tag, arg = str(kind[0]), kind[1:]
    own = PledgeContent(name=f"Hostile {index}", contact={"email": f"h{index}@example.org"})
    envelope = seal(own, ctx, member, pledger=pledger)

    def record(envelope: bytes, member_key: bytes = member.compressed, by: str = pledger) -> PledgeRecord:
        return PledgeRecord(index, by, member_key, envelope, 500 + index)

    if tag == "random":
        blob = bytes(arg[0])  # type: ignore[arg-type]
        return Hostile(record(blob), tag, MALFORMED if blob[:4] != b"SPX\x02" else r".")
    if tag == "framed random":
        return Hostile(record(_framed_random(arg[0], arg[1])), tag, NO_SHARES)  # type: ignore[arg-type]
    if tag == "flip":
        pos = int(arg[0]) % len(envelope)  # type: ignore[call-overload]
        flipped = envelope[:pos] + bytes((envelope[pos] ^ int(arg[1]),)) + envelope[pos + 1 :]  # type: ignore[call-overload]
        expect = _flip_outcome(pos, envelope, flipped)
        return Hostile(record(flipped), tag, expect, own if expect is None else None)
    if tag == "truncate":
        return Hostile(record(envelope[: int(arg[0]) % len(envelope)]), tag, MALFORMED)  # type: ignore[call-overload]
    if tag == "other campaign":
        other = (
            CampaignContext(1, ctx.campaign, ctx.keepers, ctx.keeper_threshold)
            if arg[0] == "chain"
            else CampaignContext(ctx.chain_id, "0x" + "ee" * 20, ctx.keepers, ctx.keeper_threshold)
        )
        return Hostile(record(seal(own, other, member, pledger=pledger)), tag, NO_SHARES)
    if tag == "bad member key":  # the event names another key than the envelope was sealed with
        key = bytes(arg[0])  # type: ignore[arg-type]
        return Hostile(record(envelope, member_key=key), tag, NO_SHARES)
    if tag == "fake instructions":  # sealed as instructions, sent as a pledge
        creator = world.creator if arg[0] else pledger
        fake = seal_instructions(FAKE_INSTRUCTIONS, ctx, member, creator=creator)
        return Hostile(record(fake), tag, NO_SHARES)
    if tag == "replay":  # someone's pledge, bytes and member key, from another account
        victim = world.pledge(int(arg[0]))  # type: ignore[call-overload]
        return Hostile(record(victim.envelope, member_key=victim.member_key), f"replay {arg[0]}", NO_SHARES)
    if tag == "junk record":  # authenticated, but not a record: keepers release it, readers refuse it
        # never a valid record: one ends with its message's length (0x00 0x00) or text, never 0xff
        junk = b"\x01" + bytes(arg[0]) + b"\xff"  # type: ignore[arg-type]
        return Hostile(record(_seal(junk, ROLE_PLEDGE, ctx, member, pledger, None)), tag, BAD_RECORD)
    if tag == "valid":  # an ordinary member who happens to be an attacker: it is read, as sealed
        content = PledgeContent(name=str(arg[0]).strip() or "x", contact={})
        return Hostile(record(seal(content, ctx, member, pledger=pledger)), tag, None, content)
    raise AssertionError(tag)


def _junk_decodes(payload: bytes) -> bool:
    try:
        parse_release(payload)
    except EnvelopeError:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(hostile_pledge, min_size=1, max_size=4), junk=st.lists(hostile_release(), max_size=4))
def test_hostile_pledges_and_releases_never_stop_the_roster(kinds: list[tuple[object, ...]], junk: list[bytes]) -> None:
    check_roster(kinds, junk)


def test_one_hostile_pledge_of_each_kind() -> None:
    """Every kind at least once, whatever hypothesis draws; flips in the body, in a releasing
    keeper's wrap and in the silent keeper's slot (readable: that keeper is not needed)."""
    import random

    envelope_len = 22 + 256 + 3 * KEEPER_SLOT_SIZE
    kinds: list[tuple[object, ...]] = [
        ("random", b"\x00" * 40),
        ("framed random", 256, random.Random(1)),
        ("flip", 3, 1),
        ("flip", 100, 1),
        ("flip", envelope_len - 3 * KEEPER_SLOT_SIZE + 20, 4),  # keeper 0's wrap
        ("flip", envelope_len - 2 * KEEPER_SLOT_SIZE + 2, 4),  # keeper 1's commitment: not needed
        ("truncate", 376),
        ("other campaign", "chain"),
        ("other campaign", "campaign"),
        ("bad member key", KeyPair.generate().compressed),
        ("fake instructions", True),
        ("fake instructions", False),
        ("replay", 2),
        ("replay", WITHDRAWN),
        ("junk record", b"\x00\x01A\x00\x00\x00"),
        ("valid", "Mallory"),
    ]
    check_roster(kinds, [b"SPR\x02" + b"\x05\x00\x01", b"\x00" * 10])


def check_roster(kinds: list[tuple[object, ...]], junk: list[bytes]) -> None:
    world = make_world(5)
    world.set(WITHDRAWN, live=False)
    honest = [i for i in world.live]
    hostile = [make_hostile(world, kind, 5 + i) for i, kind in enumerate(kinds)]
    for h in hostile:
        world.add(h.record, sealed=h.sealed)
    releases = releases_of(world, RELEASING)
    releases += [ReleaseRecord(i % 3, KEEPERS[i % 3].address, data, 2000 + i, 0) for i, data in enumerate(junk)]

    roster = roster_of(world, releases, world.members[READER])

    expected_read = honest + [h.record.index for h in hostile if h.expect is None]
    assert read_indices(roster) == expected_read, [(h.kind, h.expect) for h in hostile]
    assert_true_contents(world, roster)  # every record shown is exactly the one its pledge sealed
    reasons = {s.index: s.reason for s in roster.skipped if s.index is not None}
    for h in hostile:
        if h.expect is not None:
            assert h.record.index in reasons, h.kind
            assert re.search(h.expect, reasons[h.record.index]), (h.kind, reasons[h.record.index])
    assert set(reasons) == {h.record.index for h in hostile if h.expect is not None}
    # only the campaign's own instructions, never a pledger's
    assert roster.instructions == INSTRUCTIONS
    text = str(roster.to_json())
    assert FAKE_INSTRUCTIONS not in text
    # a replayed pledge never shows its victim twice, and a withdrawn victim not at all
    assert text.count(world.contents[2].name) == 1
    assert world.contents[WITHDRAWN].name not in text
    # every release that does not parse is reported with where it came from
    bad = {2000 + i for i, data in enumerate(junk) if not _junk_decodes(data)}
    assert bad <= {p.block_number for p in roster.release_problems}
    for s in roster.skipped:
        assert s.reason
        if s.keeper_index is not None:  # only a keeper that published junk is ever named
            assert any(i % 3 == s.keeper_index for i in range(len(junk)))
