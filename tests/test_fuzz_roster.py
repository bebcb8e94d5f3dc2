"""Fuzzing the roster reader: hostile pledges and releases (anyone can send bytes to the
contract) never crash it, never hide an honest member, and are listed as skipped."""

from __future__ import annotations

import secrets
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_release_roster import CREATOR, keeper_release, make_world

from spartacus.envelope import PledgeContent, seal
from spartacus.keys import KeyPair
from spartacus.release import parse_release
from spartacus.roster import build_roster
from spartacus.types import CampaignContext, PledgeRecord, ReleaseRecord

READER = 1  # the member whose view is checked; its own pledge stays honest

hostile_pledge = st.one_of(
    st.tuples(st.just("random"), st.binary(min_size=0, max_size=2000)),
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 1200)),
    st.tuples(st.just("other-campaign"), st.none()),
    st.tuples(st.just("bad-member-key"), st.binary(min_size=33, max_size=33)),
    st.tuples(st.just("fake-instructions"), st.none()),
    st.tuples(st.just("replay"), st.none()),
)
hostile_release = st.one_of(
    st.binary(max_size=600).map(lambda b: b"SPR\x01" + b),
    st.binary(max_size=600),
    st.tuples(st.sampled_from([1, 2, 3, 9]), st.binary(max_size=300)).map(
        lambda tb: b"SPR\x01" + bytes([tb[0]]) + len(tb[1]).to_bytes(4, "big") + tb[1]
    ),
)


def _hostile(world, kind, index: int) -> PledgeRecord:  # type: ignore[no-untyped-def]
    base = world.pledge(2)
    member = KeyPair.generate()
    pledger = "0x" + secrets.token_hex(20)
    tag, arg = kind[0], kind[1:]
    envelope, member_key = base.envelope, member.compressed
    if tag == "random":
        envelope = arg[0]
    elif tag == "flip":
        pos = arg[0] % len(envelope)
        envelope = envelope[:pos] + bytes([envelope[pos] ^ arg[1]]) + envelope[pos + 1 :]
    elif tag == "truncate":
        envelope = envelope[: arg[0] % len(envelope)]
    elif tag == "other-campaign":
        other = CampaignContext(1, "0x" + "ee" * 20, world.ctx.keepers, world.ctx.keeper_threshold)
        envelope = seal(PledgeContent(name="Mallory"), other, member.compressed, pledger=pledger)
    elif tag == "bad-member-key":
        member_key = arg[0]
        envelope = seal(PledgeContent(name="Keyless"), world.ctx, member.compressed, pledger=pledger)
    elif tag == "replay":  # someone else's pledge, bytes and member key, from another account
        member_key = base.member_key
    elif tag == "fake-instructions":
        envelope = seal(
            PledgeContent(name="Mallory", instructions="Go home."), world.ctx, member.compressed, pledger=pledger
        )
    return replace(base, index=index, pledger=pledger, envelope=envelope, member_key=member_key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pledges=st.lists(hostile_pledge, min_size=1, max_size=4), junk=st.lists(hostile_release, max_size=4))
def test_hostile_pledges_and_releases_never_stop_the_roster(pledges, junk) -> None:  # type: ignore[no-untyped-def]
    world = make_world(4)
    honest = {p.index for p in world.pledges}
    world.pledges += [_hostile(world, kind, 4 + i) for i, kind in enumerate(pledges)]
    releases = keeper_release(world, 0)[1] + keeper_release(world, 2)[1]
    releases += [ReleaseRecord(i % 4, "0x" + "99" * 20, data, 2000 + i, 0) for i, data in enumerate(junk)]

    roster = build_roster(world.ctx, world.pledges, releases, world.members[READER], CREATOR)

    read = {m.index for m in roster.members}
    assert honest <= read  # every honest member is there
    assert roster.instructions == world.contents[0].instructions  # only the creator's instructions
    skipped = {s.index for s in roster.skipped}
    for i, kind in enumerate(pledges):
        index = 4 + i
        if kind[0] in ("fake-instructions",) or (kind[0] == "bad-member-key"):
            assert index in read or index in skipped  # readable, but never its instructions
        else:
            assert index in skipped and index not in read, kind[0]
    for s in roster.skipped:
        assert s.reason
    for data in junk:
        try:
            parse_release(data)
        except Exception as exc:  # noqa: BLE001 - the reader skipped it; the parser says why
            assert type(exc).__name__ == "EnvelopeError"
