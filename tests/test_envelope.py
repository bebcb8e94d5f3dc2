"""The sealed pledge envelope, format v2: round trips, thresholds, commitments, binding, tampering,
fuzzing, sizes, the record's canonical bytes, and Shamir over GF(2^8) (no chain).

Security properties exercised here (DESIGN §1): P1 (fewer than ``t`` keepers learn nothing,
shown by decrypting: every ``(t-1)``-subset of real shares is combined and fed to the AEAD,
which must refuse it), the binding of an envelope to its chain, campaign, member key, pledger,
keeper set and role, the share commitments that expose a lying keeper (P9), and "malformed
sealed bytes get a clear error" (only :class:`EnvelopeError` / :class:`DecryptionError`).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

import pyshamir
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spartacus import _shamir
from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus._primitives import sha256
from spartacus.envelope import (
    BUCKETS,
    COMMITMENT_SIZE,
    CONTRACT_ENVELOPE_CAP,
    HEADER_SIZE,
    KEEPER_SLOT_SIZE,
    MAX_ENVELOPE_BYTES,
    MAX_PAYLOAD_BYTES,
    ROLE_INSTRUCTIONS,
    ROLE_PLEDGE,
    ParsedEnvelope,
    PledgeContent,
    Randomness,
    _seal,
    binding,
    bucket_for,
    commitment,
    decode_content,
    decode_instructions,
    encode_content,
    encode_instructions,
    envelope_size,
    open_body,
    open_share,
    pad,
    parse,
    seal,
    seal_instructions,
    unpad,
)
from spartacus.keys import KeyPair
from spartacus.types import CampaignContext

# A pool of keeper keys, generated once: examples stay fast.
KEEPERS = [KeyPair.generate() for _ in range(32)]
MEMBER = KeyPair.generate()
PLEDGER = MEMBER.address  # the account that sends the pledge
CAMPAIGN = "0x" + "ab" * 20
FAILURES = (EnvelopeError, DecryptionError)
AUTH_FAILED = "AES-GCM authentication failed"


def make_ctx(n: int = 3, t: int = 2, *, chain_id: int = 31337, campaign: str = CAMPAIGN) -> CampaignContext:
    return CampaignContext(
        chain_id=chain_id, campaign=campaign, keepers=tuple(k.public_key for k in KEEPERS[:n]), keeper_threshold=t
    )


def real_share(
    parsed: ParsedEnvelope, i: int, ctx: CampaignContext, member: KeyPair = MEMBER, pledger: str = PLEDGER
) -> bytes:
    """Keeper ``i``'s Shamir share ``y ‖ x``, as the keeper unwraps it (commitment checked)."""
    y = open_share(parsed, i, KEEPERS[i], ctx, member_key33=member.compressed, pledger=pledger)
    return y + bytes((parsed.xs[i],))


def real_shares(
    parsed: ParsedEnvelope, ctx: CampaignContext, member: KeyPair = MEMBER, pledger: str = PLEDGER
) -> list[bytes]:
    return [real_share(parsed, i, ctx, member, pledger) for i in range(parsed.n)]


def open_with(
    parsed: ParsedEnvelope,
    shares: Sequence[bytes],
    ctx: CampaignContext,
    member: KeyPair = MEMBER,
    pledger: str = PLEDGER,
) -> PledgeContent:
    """Combine exactly the shares given (no count check of any reader) and decrypt."""
    key = _shamir.combine(list(shares))
    return decode_content(open_body(parsed, key, ctx, member.compressed, pledger=pledger))


def read_strictly(envelope: bytes, ctx: CampaignContext, member: KeyPair = MEMBER) -> PledgeContent:
    """Parse, have every keeper open its share, combine all of them, decrypt, decode."""
    parsed = parse(envelope)
    return open_with(parsed, real_shares(parsed, ctx, member), ctx, member)


CONTENT = PledgeContent(
    name="Ana Łopez ✊",
    contact={"email": "ana@example.org", "signal": "+49 151 000000"},
    message="Count me in.",
)
CTX = make_ctx()
ENVELOPE = seal(CONTENT, CTX, MEMBER, pledger=PLEDGER)
SLOTS = HEADER_SIZE + len(parse(ENVELOPE).body)  # offset of keeper 0's slot

# ------------------------------------------------------------------------------------------ strategies

_text_chars = st.characters(exclude_categories=("Cc", "Cs"))
names = st.text(_text_chars, min_size=1, max_size=60).filter(lambda s: bool(s.strip()))
contact_keys = st.from_regex(r"[a-z][a-z0-9_-]{0,31}", fullmatch=True).filter(lambda k: k != "email")
contact_values = st.text(_text_chars, min_size=1, max_size=40).filter(lambda s: bool(s.strip()))
_controls = [chr(c) for c in [*range(32), *range(127, 160)] if chr(c) not in "\n\r\t"]
multiline = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=_controls), max_size=300)


@st.composite
def contents(draw: st.DrawFn) -> PledgeContent:
    contact = draw(st.dictionaries(contact_keys, contact_values, max_size=4))
    if draw(st.booleans()):
        contact["email"] = draw(st.emails())
    return PledgeContent(name=draw(names), contact=contact, message=draw(st.none() | multiline))


@st.composite
def thresholds(draw: st.DrawFn, max_n: int = 7, min_t: int = 1) -> tuple[int, int]:
    n = draw(st.integers(min_t, max_n))
    return n, draw(st.integers(min_t, n))


# ------------------------------------------------------------------------------------------ round trips


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=contents(), nt=thresholds(), data=st.data())
def test_round_trip_with_any_t_shares(content: PledgeContent, nt: tuple[int, int], data: st.DataObject) -> None:
    n, t = nt
    ctx = make_ctx(n, t)
    envelope = seal(content, ctx, MEMBER, pledger=PLEDGER)
    parsed = parse(envelope)
    assert (parsed.n, parsed.t) == (n, t)
    assert len(envelope) == envelope_size(n, parsed.bucket) == parsed.size
    chosen = data.draw(st.permutations(range(n)))[:t]
    assert open_with(parsed, [real_share(parsed, i, ctx) for i in chosen], ctx) == content


def test_content_is_normalised_and_survives() -> None:
    content = PledgeContent(name="  Zoë  ", contact={"email": " z@example.org "}, message="")
    assert (content.name, content.contact, content.message) == ("Zoë", {"email": "z@example.org"}, None)
    assert read_strictly(seal(content, CTX, MEMBER, pledger=PLEDGER), CTX) == content


def test_any_private_key_flavour_seals_the_same_binding() -> None:
    """The member may be a KeyPair or its 32 raw bytes: the keepers open either the same way."""
    from_bytes = seal(CONTENT, CTX, MEMBER.secret_bytes(), pledger=PLEDGER)
    assert read_strictly(from_bytes, CTX) == CONTENT
    parsed = parse(ENVELOPE)
    expected = open_share(parsed, 2, KEEPERS[2], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    assert open_share(parsed, 2, KEEPERS[2].secret_bytes(), CTX, member_key33=MEMBER.compressed, pledger=PLEDGER) == (
        expected
    )


# ------------------------------------------------------------------------------------------ P1: thresholds


@pytest.mark.parametrize("n,t", [(n, t) for n in range(1, 6) for t in range(1, n + 1)])
def test_every_t_subset_opens_and_every_smaller_one_fails(n: int, t: int) -> None:
    """P1 at the envelope: every t real shares open it; every t-1 real shares, combined directly
    (no reader's count check in the way) and fed to the AEAD, fail its authentication."""
    ctx = make_ctx(n, t)
    parsed = parse(seal(CONTENT, ctx, MEMBER, pledger=PLEDGER))
    shares = real_shares(parsed, ctx)
    for subset in itertools.combinations(shares, t):
        assert open_with(parsed, subset, ctx) == CONTENT
    if t == 1:  # fewer than one keeper: no share at all; neither a zero nor a guessed key opens it
        for guess in (bytes(16), shares[0][:-1][::-1], sha256(b"guess")[:16]):
            with pytest.raises(DecryptionError, match=AUTH_FAILED):
                open_body(parsed, guess, ctx, MEMBER.compressed, pledger=PLEDGER)
        return
    for subset in itertools.combinations(shares, t - 1):
        key = _shamir.combine(list(subset))
        with pytest.raises(DecryptionError, match=AUTH_FAILED):
            open_body(parsed, key, ctx, MEMBER.compressed, pledger=PLEDGER)
        # nor does any single share read as the key (the t = 1 form)
        for share in subset:
            with pytest.raises(DecryptionError, match=AUTH_FAILED):
                open_body(parsed, share[:-1], ctx, MEMBER.compressed, pledger=PLEDGER)


@settings(max_examples=40, deadline=None)
@given(nt=thresholds(min_t=2), data=st.data())
def test_t_minus_1_shares_plus_a_forged_one_do_not_open(nt: tuple[int, int], data: st.DataObject) -> None:
    """P1: t-1 real shares do not open the envelope, and a forged t-th share (any x, any y) does
    not help; nor does a forged share pass the commitment of the keeper whose x it takes."""
    n, t = nt
    ctx = make_ctx(n, t)
    parsed = parse(seal(CONTENT, ctx, MEMBER, pledger=PLEDGER))
    h = sha256(binding(ctx, ROLE_PLEDGE, MEMBER.compressed, PLEDGER))
    order = data.draw(st.permutations(range(n)))
    real = [real_share(parsed, i, ctx) for i in order[: t - 1]]
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_body(parsed, _shamir.combine(real), ctx, MEMBER.compressed, pledger=PLEDGER)
    missing = order[t - 1]
    x = data.draw(st.sampled_from([parsed.xs[missing], *(v for v in range(1, 256) if v not in parsed.xs)]))
    y = data.draw(st.binary(min_size=16, max_size=16))
    if x == parsed.xs[missing]:
        genuine = real_share(parsed, missing, ctx)[:-1]
        if y == genuine:  # the real share, drawn by chance: not a forgery
            return
        assert commitment(h, missing, x, y) != parsed.commitments[missing]
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_with(parsed, [*real, y + bytes((x,))], ctx)


def test_a_repeated_share_is_not_a_second_share() -> None:
    parsed = parse(ENVELOPE)
    share = real_share(parsed, 0, CTX)
    with pytest.raises(DecryptionError, match="duplicate share x"):
        _shamir.combine([share, share])
    forged_y = bytes(a ^ 1 for a in share[:-1]) + share[-1:]  # same x, other y
    with pytest.raises(DecryptionError, match="duplicate share x"):
        _shamir.combine([share, forged_y])


def test_one_keeper_alone_opens_a_1_of_n_envelope_only() -> None:
    """t = 1 is the degree-0 polynomial: every keeper holds the key itself, x = i + 1."""
    ctx = make_ctx(4, 1)
    parsed = parse(seal(CONTENT, ctx, MEMBER, pledger=PLEDGER))
    assert parsed.xs == (1, 2, 3, 4)
    shares = real_shares(parsed, ctx)
    assert len({s[:-1] for s in shares}) == 1
    for share in shares:
        assert open_with(parsed, [share], ctx) == CONTENT


# ------------------------------------------------------------------------------------------ commitments (P9)


def test_commitments_bind_each_keepers_share_to_its_slot() -> None:
    """A keeper's published y is checked against c_i = SHA-256(label ‖ h ‖ i ‖ x_i ‖ y_i)[:8]: the
    real y matches its own slot only; any other y, or another keeper's y, does not."""
    parsed = parse(ENVELOPE)
    h = sha256(binding(CTX, ROLE_PLEDGE, MEMBER.compressed, PLEDGER))
    ys = [real_share(parsed, i, CTX)[:-1] for i in range(3)]
    for i in range(3):
        assert len(parsed.commitments[i]) == COMMITMENT_SIZE
        assert commitment(h, i, parsed.xs[i], ys[i]) == parsed.commitments[i]
        assert commitment(h, i, parsed.xs[i], bytes(16)) != parsed.commitments[i]
        for j in range(3):
            if j != i:
                assert commitment(h, i, parsed.xs[i], ys[j]) != parsed.commitments[i]
                assert commitment(h, j, parsed.xs[j], ys[i]) != parsed.commitments[j]
    expected = sha256(b"spartacus/v2 commit" + h + bytes((1, parsed.xs[1])) + ys[1])[:8]
    assert parsed.commitments[1] == expected


@pytest.mark.parametrize("what, offset", [("x", 0), ("commitment", 1), ("commitment", 8)])
def test_keeper_refuses_a_share_that_does_not_match_its_commitment(what: str, offset: int) -> None:
    forged = bytearray(ENVELOPE)
    forged[SLOTS + KEEPER_SLOT_SIZE * 1 + offset] ^= 0x01
    parsed = parse(bytes(forged))
    with pytest.raises(DecryptionError, match="keeper #1 does not match its commitment"):
        open_share(parsed, 1, KEEPERS[1], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    # the other keepers' slots are untouched
    assert open_with(parsed, [real_share(parsed, 0, CTX), real_share(parsed, 2, CTX)], CTX) == CONTENT


# ------------------------------------------------------------------------------------------ binding


def test_wrong_chain_campaign_member_key_pledger_or_role_fails_authentication() -> None:
    parsed = parse(ENVELOPE)
    key = _shamir.combine(real_shares(parsed, CTX))
    for other in (make_ctx(chain_id=1), make_ctx(campaign="0x" + "ac" * 20)):
        with pytest.raises(DecryptionError, match=AUTH_FAILED):
            open_body(parsed, key, other, MEMBER.compressed, pledger=PLEDGER)
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_body(parsed, key, CTX, KeyPair.generate().compressed, pledger=PLEDGER)
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_body(parsed, key, CTX, MEMBER.compressed, pledger="0x" + "cd" * 20)
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_body(parsed, key, CTX, MEMBER.compressed, pledger=PLEDGER, role=ROLE_INSTRUCTIONS)
    assert decode_content(open_body(parsed, key, CTX, MEMBER.compressed, pledger=PLEDGER)) == CONTENT


def test_other_keeper_set_or_threshold_is_refused() -> None:
    parsed = parse(ENVELOPE)
    key = _shamir.combine(real_shares(parsed, CTX))
    for other in (make_ctx(3, 3), make_ctx(4, 2)):
        with pytest.raises(EnvelopeError, match="sealed for t=2 of n=3 keepers"):
            open_body(parsed, key, other, MEMBER.compressed, pledger=PLEDGER)
        with pytest.raises(EnvelopeError, match="sealed for t=2 of n=3 keepers"):
            open_share(parsed, 0, KEEPERS[0], other, member_key33=MEMBER.compressed, pledger=PLEDGER)
    # the same keepers in another order: another keeper-set digest in the binding
    swapped = CampaignContext(CTX.chain_id, CTX.campaign, (CTX.keepers[1], CTX.keepers[0], CTX.keepers[2]), 2)
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_body(parsed, key, swapped, MEMBER.compressed, pledger=PLEDGER)
    with pytest.raises(DecryptionError, match="does not open for this keeper"):
        open_share(parsed, 2, KEEPERS[2], swapped, member_key33=MEMBER.compressed, pledger=PLEDGER)


def test_binding_is_the_documented_144_bytes() -> None:
    aad = binding(CTX, ROLE_PLEDGE, MEMBER.compressed, PLEDGER)
    from spartacus.envelope import keeper_set_digest

    assert len(aad) == 144
    assert aad == (
        b"SPX\x02\x01"
        + (31337).to_bytes(32, "big")
        + bytes.fromhex("ab" * 20)
        + MEMBER.compressed
        + bytes.fromhex(PLEDGER[2:])
        + bytes((3, 2))
        + keeper_set_digest(CTX.keepers)
    )


def test_a_copy_sent_by_another_account_is_never_released() -> None:
    """Replaying someone's envelope and member key from another account (say, to get a withdrawn
    pledge revealed after all): keepers refuse to open their share of it, and the record does not
    open under the copier's address either."""
    parsed = parse(ENVELOPE)
    copier = "0x" + "cd" * 20
    for i in range(3):
        with pytest.raises(DecryptionError, match="copy of someone's pledge"):
            open_share(parsed, i, KEEPERS[i], CTX, member_key33=MEMBER.compressed, pledger=copier)
        with pytest.raises(DecryptionError, match="copy of someone's pledge"):  # same sender, other member key
            open_share(parsed, i, KEEPERS[i], CTX, member_key33=KeyPair.generate().compressed, pledger=PLEDGER)
        with pytest.raises(DecryptionError, match="copy of someone's pledge"):  # opened as the instructions
            open_share(
                parsed, i, KEEPERS[i], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER, role=ROLE_INSTRUCTIONS
            )
    key = _shamir.combine(real_shares(parsed, CTX)[:2])
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_body(parsed, key, CTX, MEMBER.compressed, pledger=copier)


def test_malformed_member_key_in_the_event_is_a_decryption_error() -> None:
    parsed = parse(ENVELOPE)
    for bad in (b"", b"\x02" * 5, b"\x02" + b"\xff" * 32, b"\x05" + b"\x11" * 32):
        with pytest.raises(DecryptionError, match="member key or sender is malformed"):
            open_share(parsed, 0, KEEPERS[0], CTX, member_key33=bad, pledger=PLEDGER)
    with pytest.raises(DecryptionError, match="member key or sender is malformed"):
        open_share(parsed, 0, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger="not an address")


# ------------------------------------------------------------------------------------------ keeper side


def test_wrong_keeper_key_is_refused() -> None:
    parsed = parse(ENVELOPE)
    with pytest.raises(InputError, match="not keeper #0's key"):
        open_share(parsed, 0, KeyPair.generate(), CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    with pytest.raises(InputError, match="not keeper #1's key"):  # keeper 0's key used as keeper 1
        open_share(parsed, 1, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    with pytest.raises(InputError, match="out of range 0..2"):
        open_share(parsed, 3, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)


def test_a_slot_moved_to_another_keeper_does_not_open() -> None:
    """Keeper 1's slot copied into keeper 0's: the KEK is bound to the keeper index and key."""
    forged = bytearray(ENVELOPE)
    forged[SLOTS : SLOTS + KEEPER_SLOT_SIZE] = ENVELOPE[SLOTS + KEEPER_SLOT_SIZE : SLOTS + 2 * KEEPER_SLOT_SIZE]
    forged[SLOTS] = ENVELOPE[SLOTS]  # keep x distinct so that it parses
    with pytest.raises(DecryptionError, match="does not open for this keeper"):
        open_share(parse(bytes(forged)), 0, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)


@pytest.mark.parametrize("offset", range(1 + COMMITMENT_SIZE, KEEPER_SLOT_SIZE, 3))
def test_tampered_wrap_fails(offset: int) -> None:
    forged = bytearray(ENVELOPE)
    forged[SLOTS + offset] ^= 0x10
    with pytest.raises(DecryptionError, match="does not open for this keeper"):
        open_share(parse(bytes(forged)), 0, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)


# ------------------------------------------------------------------------------------------ tampering


def test_every_single_byte_flip_is_detected() -> None:
    """Exhaustive over positions: flip each byte of a real envelope; the strict read must fail."""
    for pos in range(len(ENVELOPE)):
        forged = bytearray(ENVELOPE)
        forged[pos] ^= 0x01
        with pytest.raises(FAILURES):
            read_strictly(bytes(forged), CTX)


@settings(max_examples=150, deadline=None)
@given(pos=st.integers(0, len(ENVELOPE) - 1), mask=st.integers(1, 255))
def test_any_flipped_byte_fails_cleanly(pos: int, mask: int) -> None:
    forged = bytearray(ENVELOPE)
    forged[pos] ^= mask
    with pytest.raises(FAILURES):
        read_strictly(bytes(forged), CTX)


def test_every_truncation_and_extension_is_an_envelope_error() -> None:
    for cut in range(HEADER_SIZE):
        with pytest.raises(EnvelopeError, match="truncated|magic|version"):
            parse(ENVELOPE[:cut])
    for cut in range(HEADER_SIZE, len(ENVELOPE)):
        with pytest.raises(EnvelopeError, match="not a bucket size plus the tag"):
            parse(ENVELOPE[:cut])
    for extra in (b"\x00", b"\x01" * 7, ENVELOPE[-KEEPER_SLOT_SIZE:]):
        with pytest.raises(EnvelopeError, match="not a bucket size plus the tag"):
            parse(ENVELOPE + extra)


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=2000))
def test_arbitrary_bytes_are_refused_by_the_parser_with_a_reason(blob: bytes) -> None:
    """Random bytes almost never carry the magic; the parser says which check they fail."""
    if blob[:4] == b"SPX\x02":  # pragma: no cover - 2^-32
        return
    with pytest.raises(EnvelopeError, match="truncated|magic|version"):
        parse(blob)


@st.composite
def well_framed_garbage(draw: st.DrawFn) -> tuple[int, int, bytes]:
    """The real magic, version and a valid t of n; a body of a bucket's size; random slots with
    distinct non-zero x: bytes that pass the parser, so the fuzz reaches the keepers' unwrap."""
    n, t = draw(thresholds(max_n=5))
    bucket = draw(st.sampled_from(BUCKETS[:3]))
    body = draw(st.binary(min_size=bucket + 16, max_size=bucket + 16))
    xs = draw(st.permutations(range(1, 256)))[:n]
    slots = b"".join(
        bytes((x,)) + draw(st.binary(min_size=KEEPER_SLOT_SIZE - 1, max_size=KEEPER_SLOT_SIZE - 1)) for x in xs
    )
    return n, t, b"SPX\x02" + bytes((n, t)) + body + slots


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=well_framed_garbage())
def test_well_framed_garbage_parses_but_no_keeper_opens_it(case: tuple[int, int, bytes]) -> None:
    n, t, blob = case
    ctx = make_ctx(n, t)
    parsed = parse(blob)  # must pass the parser: otherwise this test would test nothing
    assert (parsed.n, parsed.t, len(blob)) == (n, t, parsed.size)
    for i in range(n):
        with pytest.raises(DecryptionError, match="does not open for this keeper"):
            open_share(parsed, i, KEEPERS[i], ctx, member_key33=MEMBER.compressed, pledger=PLEDGER)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(min_size=len(parse(ENVELOPE).body), max_size=len(parse(ENVELOPE).body)))
def test_a_random_body_under_real_slots_fails_authentication(body: bytes) -> None:
    """The keepers open their real shares, the key is right, and still random bytes never decrypt."""
    blob = ENVELOPE[:HEADER_SIZE] + body + ENVELOPE[SLOTS:]
    parsed = parse(blob)
    with pytest.raises(DecryptionError, match=AUTH_FAILED):
        open_with(parsed, real_shares(parsed, CTX), CTX)


def _set(b: bytes, pos: int, value: bytes) -> bytes:
    return b[:pos] + value + b[pos + len(value) :]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"SPY" + b[3:], "bad magic"),
        (lambda b: _set(b, 3, b"\x01"), "version 1 is not supported"),
        (lambda b: _set(b, 4, b"\x00\x00"), "t=0 of n=0"),
        (lambda b: _set(b, 4, b"\x03\x04"), "t=4 of n=3"),
        (lambda b: _set(b, 4, b"\x21\x02"), "t=2 of n=33"),
        (lambda b: _set(b, 4, b"\x04"), "not a bucket size"),
        (lambda b: _set(b, 4, b"\x02"), "not a bucket size"),
        (lambda b: _set(b, SLOTS, b"\x00"), "zero or repeated"),
        (lambda b: _set(b, SLOTS, b[SLOTS + KEEPER_SLOT_SIZE : SLOTS + KEEPER_SLOT_SIZE + 1]), "zero or repeated"),
        (lambda b: b[:5], "truncated: 5 bytes"),
    ],
)
def test_header_defects_have_clear_messages(mutate: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        parse(mutate(ENVELOPE))


def test_parse_refuses_non_bytes() -> None:
    with pytest.raises(EnvelopeError, match="an envelope is bytes, not str"):
        parse("0x" + ENVELOPE.hex())  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ padding & sizes


def test_a_typical_pledge_is_377_bytes() -> None:
    """A name, an e-mail and a message of 100 characters, 3 keepers: 22 + 256 + 3 · 33 (≤ 450)."""
    typical = PledgeContent(name="Ana Müller", contact={"email": "ana.mueller@example.org"}, message="x" * 100)
    envelope = seal(typical, CTX, MEMBER, pledger=PLEDGER)
    assert len(envelope) == envelope_size(3, 256) == 22 + 256 + 99 == 377
    assert read_strictly(envelope, CTX) == typical


def test_ciphertext_length_is_constant_within_a_bucket() -> None:
    def with_message(k: int) -> PledgeContent:
        return PledgeContent(name="Ä" * 20, contact={"email": "x" * 30 + "@example.org"}, message="m" * k)

    short = PledgeContent(name="A")
    fill = 254 - len(encode_content(with_message(0)))  # 2 + 254 = the 256-byte bucket, exactly
    long = with_message(fill)
    assert len(encode_content(short)) < 20 and len(encode_content(long)) == 254
    a, b = seal(short, CTX, MEMBER, pledger=PLEDGER), seal(long, CTX, MEMBER, pledger=PLEDGER)
    assert len(a) == len(b) == envelope_size(3, 256) == 377
    assert len(parse(a).body) == len(parse(b).body) == 256 + 16
    bigger = seal(with_message(fill + 1), CTX, MEMBER, pledger=PLEDGER)  # one byte more: the next bucket
    assert len(bigger) == envelope_size(3, 512) == len(a) + 256
    assert read_strictly(bigger, CTX) == with_message(fill + 1)


@pytest.mark.parametrize("size", [0, 1, 253, 254, 255, 510, 511, 8190, 8191, MAX_PAYLOAD_BYTES])
def test_pad_unpad_round_trip_and_buckets(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    padded = pad(payload)
    assert len(padded) == min(b for b in BUCKETS if b >= size + 2) == bucket_for(size)
    assert padded[:2] == size.to_bytes(2, "big") and padded[2 : 2 + size] == payload
    assert unpad(padded) == payload


def test_unpad_checks_every_padding_byte_and_the_length() -> None:
    padded = pad(b"hello")
    for pos in (7, 100, len(padded) - 1):
        with pytest.raises(EnvelopeError, match="not all zero"):
            unpad(_set(padded, pos, b"\x01"))
    with pytest.raises(EnvelopeError, match="exceeds the bucket"):
        unpad((300).to_bytes(2, "big") + padded[2:])
    with pytest.raises(EnvelopeError, match="not one of the buckets"):
        unpad(padded[:-1])


def test_oversized_payload_is_refused_with_the_limit() -> None:
    with pytest.raises(InputError, match=f"the limit is {MAX_PAYLOAD_BYTES} bytes"):
        pad(bytes(MAX_PAYLOAD_BYTES + 1))
    huge = PledgeContent(name="Organizer", contact={f"k{i:02d}": "𝄞" * 320 for i in range(16)})  # 20 KB of UTF-8
    with pytest.raises(InputError, match="the limit is 16382 bytes"):
        seal(huge, CTX, MEMBER, pledger=PLEDGER)
    with pytest.raises(InputError, match="the limit is 16382 bytes"):
        seal_instructions("é" * 8200, CTX, MEMBER, creator=PLEDGER)


def test_largest_envelope_fits_the_contract_cap() -> None:
    assert MAX_ENVELOPE_BYTES == 6 + 16384 + 16 + 32 * 33 == 17_462
    assert MAX_ENVELOPE_BYTES <= CONTRACT_ENVELOPE_CAP == 24_576
    text = "é" * 8000 + "x" * 300
    assert 8190 < len(encode_instructions(text)) <= MAX_PAYLOAD_BYTES
    ctx = make_ctx(32, 17)
    envelope = seal_instructions(text, ctx, MEMBER, creator=PLEDGER)
    assert len(envelope) == MAX_ENVELOPE_BYTES
    parsed = parse(envelope)
    ys = [
        open_share(parsed, i, KEEPERS[i], ctx, member_key33=MEMBER.compressed, pledger=PLEDGER, role=ROLE_INSTRUCTIONS)
        + bytes((parsed.xs[i],))
        for i in range(15, 32)
    ]
    key = _shamir.combine(ys)
    assert decode_instructions(open_body(parsed, key, ctx, MEMBER.compressed, pledger=PLEDGER, role=2)) == text


def test_sealing_is_randomised_and_hides_the_plaintext() -> None:
    again = seal(CONTENT, CTX, MEMBER, pledger=PLEDGER)
    assert again != ENVELOPE and len(again) == len(ENVELOPE)
    for secret in (CONTENT.name.encode(), b"ana@example.org", b"Count me in"):
        assert secret not in ENVELOPE
    a, b = parse(again), parse(ENVELOPE)
    assert a.body != b.body and a.wraps != b.wraps and a.commitments != b.commitments


def test_fixed_randomness_gives_the_same_bytes_and_is_checked() -> None:
    key = bytes(range(16))
    shares = tuple(_shamir.split(key, 3, 2))
    rnd = Randomness(key, shares)
    first = seal(CONTENT, CTX, MEMBER, pledger=PLEDGER, randomness=rnd)
    assert first == seal(CONTENT, CTX, MEMBER, pledger=PLEDGER, randomness=rnd)
    parsed = parse(first)
    assert parsed.xs == tuple(s[-1] for s in shares)
    assert [real_share(parsed, i, CTX) for i in range(3)] == list(shares)
    assert _shamir.combine(real_shares(parsed, CTX)[1:]) == key
    for bad in (Randomness(key[:15], shares), Randomness(key, shares[:2]), Randomness(key, (b"x" * 16,) * 3)):
        with pytest.raises(InputError, match="16-byte key and one 17-byte share per keeper"):
            seal(CONTENT, CTX, MEMBER, pledger=PLEDGER, randomness=bad)


# ------------------------------------------------------------------------------------------ the record


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": ""}, "name is empty"),
        ({"name": "   "}, "name is empty"),
        ({"name": "x" * 201}, "limit is 200"),
        ({"name": "a\x1b[31mb"}, "control character U\\+001B"),
        ({"name": "a\nb"}, "control character U\\+000A"),
        ({"name": "\ud800"}, "lone surrogate"),
        ({"name": 5}, "must be text, not int"),
        ({"name": "a", "contact": {"Email": "x"}}, "field name 'Email' is invalid"),
        ({"name": "a", "contact": {"1x": "x"}}, "field name '1x' is invalid"),
        ({"name": "a", "contact": {"a" * 33: "x"}}, "is invalid"),
        ({"name": "a", "contact": {f"k{i}": "v" for i in range(17)}}, "17 contact fields; the limit is 16"),
        ({"name": "a", "contact": {"tel": "x" * 321}}, "limit is 320"),
        ({"name": "a", "contact": {"tel": " "}}, "contact tel is empty"),
        ({"name": "a", "contact": {"tel": 5}}, "must be text"),
        ({"name": "a", "contact": {"email": "not-an-address"}}, "does not look like an e-mail"),
        ({"name": "a", "contact": {"email": "a@b"}}, "does not look like an e-mail"),
        ({"name": "a", "contact": {"email": "a b@c.org"}}, "does not look like an e-mail"),
        ({"name": "a", "contact": ["email"]}, "mapping"),
        ({"name": "a", "message": "m" * 2001}, "limit is 2000"),
        ({"name": "a", "message": "bell\x07"}, "control character U\\+0007"),
    ],
)
def test_invalid_content_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        PledgeContent(**kwargs)  # type: ignore[arg-type]


def test_multiline_message_and_16_fields_are_fine() -> None:
    content = PledgeContent(
        name="a", contact={f"k{i:02d}": "v" for i in range(16)}, message="line 1\nline 2\r\n\tindented"
    )
    assert decode_content(encode_content(content)) == content


def test_canonical_encoding_is_the_documented_form() -> None:
    content = PledgeContent(name="Zoë", contact={"signal": "@z", "email": "z@x.org"}, message="hi")
    assert encode_content(content) == (
        b"\x01"
        + b"\x00\x04Zo\xc3\xab"
        + b"\x02"
        + b"\x05email\x00\x07z@x.org"  # fields in ascending order of their names
        + b"\x06signal\x00\x02@z"
        + b"\x00\x02hi"
    )
    assert encode_content(PledgeContent(name="A")) == b"\x01\x00\x01A\x00\x00\x00"
    assert encode_instructions("Go.\n") == b"\x02Go.\n"


def _record(name: bytes = b"a", fields: Sequence[tuple[bytes, bytes]] = (), message: bytes = b"") -> bytes:
    out = b"\x01" + len(name).to_bytes(2, "big") + name + bytes((len(fields),))
    for key, value in fields:
        out += bytes((len(key),)) + key + len(value).to_bytes(2, "big") + value
    return out + len(message).to_bytes(2, "big") + message


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "truncated"),
        (b"\x02hello", "not a member record"),
        (b"\x01", "truncated"),
        (b"\x01\x00\x05ab", "truncated"),
        (_record(b"\xff\xfe"), "name is not UTF-8"),
        (_record(b""), "name is empty"),
        (_record(b"   "), "name is empty"),
        (_record(b"a\x07b"), "control character"),
        (_record(b"x" * 201), "limit is 200"),
        (_record(fields=[(b"email", b"z@x.org"), (b"alpha", b"1")]), "strictly ascending"),
        (_record(fields=[(b"tel", b"1"), (b"tel", b"2")]), "strictly ascending"),
        (_record(fields=[(b"Tel", b"1")]), "field name"),
        (_record(fields=[(b"", b"1")]), "strictly ascending|field name"),
        (_record(fields=[(b"email", b"nope")]), "e-mail"),
        (_record(fields=[(b"tel", b"")]), "empty"),
        (_record(fields=[(b"tel", b"\xc3")]), "not UTF-8"),
        (_record(fields=[(f"k{i:02d}".encode(), b"v") for i in range(17)]), "limit is 16"),
        (_record(message=b"m" * 2001), "limit is 2000"),
        (_record(message=b"bell\x07"), "control character"),
        (_record() + b"\x00", "1 trailing bytes"),
        (_record()[:-1], "truncated"),
    ],
)
def test_decode_is_strict(payload: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode_content(payload)


@settings(max_examples=50, deadline=None)
@given(content=contents())
def test_decode_inverts_encode(content: PledgeContent) -> None:
    assert decode_content(encode_content(content)) == content


@pytest.mark.parametrize(
    "payload, message",
    [(b"\x01Go", "not instructions"), (b"\x02\xff", "not UTF-8"), (b"\x02a\x00b", "control character")],
)
def test_decode_instructions_is_strict(payload: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode_instructions(payload)


def test_instructions_text_rules() -> None:
    text = "Step 1\n\tStep 2 ✊"
    assert decode_instructions(encode_instructions(text)) == text
    with pytest.raises(InputError, match="instructions are empty"):
        encode_instructions(" \n ")
    with pytest.raises(InputError, match="limit is 12000"):
        encode_instructions("i" * 12001)


def test_authenticated_but_malformed_record_is_an_envelope_error() -> None:
    """A pledger can seal garbage of its own: the member gets an EnvelopeError, not a crash."""
    for payload, message in ((b"\x01\x00\x00garbage", "name is empty"), (b"\x07", "not a member record")):
        envelope = _seal(payload, ROLE_PLEDGE, CTX, MEMBER, PLEDGER, None)
        with pytest.raises(EnvelopeError, match=message):
            read_strictly(envelope, CTX)


def test_instructions_envelope_round_trip_and_role() -> None:
    text = "Meet at the north gate."
    envelope = seal_instructions(text, CTX, MEMBER, creator=PLEDGER)
    parsed = parse(envelope)
    ys = [
        open_share(parsed, i, KEEPERS[i], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER, role=ROLE_INSTRUCTIONS)
        + bytes((parsed.xs[i],))
        for i in range(2)
    ]
    key = _shamir.combine(ys)
    assert decode_instructions(open_body(parsed, key, CTX, MEMBER.compressed, pledger=PLEDGER, role=2)) == text
    with pytest.raises(DecryptionError, match=AUTH_FAILED):  # never readable as somebody's pledge
        open_body(parsed, key, CTX, MEMBER.compressed, pledger=PLEDGER, role=ROLE_PLEDGE)
    with pytest.raises(DecryptionError, match="copy of someone's pledge"):  # and keepers never open it as one
        open_share(parsed, 0, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)


# ------------------------------------------------------------------------------------------ sealing input


@pytest.mark.parametrize(
    "ctx, message",
    [
        (CampaignContext(1, CAMPAIGN, (), 1), "no keepers"),
        (make_ctx(3, 4), "between 1 and the number of keepers \\(3\\)"),
        (make_ctx(3, 0), "between 1 and"),
        (
            CampaignContext(1, CAMPAIGN, tuple(k.public_key for k in KEEPERS) + (KeyPair.generate().public_key,), 2),
            "33 keepers; the limit is 32",
        ),
        (CampaignContext(1, CAMPAIGN, (KEEPERS[0].public_key, KEEPERS[0].public_key), 1), "twice"),
        (CampaignContext(1, CAMPAIGN, (KEEPERS[0].compressed,), 1), "64 bytes"),
        (CampaignContext(1, CAMPAIGN, (b"\x01" * 64,), 1), "not a point"),
        (make_ctx(campaign="0x1234"), "40 hex"),
        (make_ctx(campaign="ab" * 21), "40 hex"),
        (make_ctx(campaign="0x" + "zz" * 20), "40 hex"),
        (make_ctx(chain_id=-1), "chain id"),
        (make_ctx(chain_id=2**256), "chain id"),
    ],
)
def test_seal_refuses_bad_context(ctx: CampaignContext, message: str) -> None:
    with pytest.raises(InputError, match=message):
        seal(CONTENT, ctx, MEMBER, pledger=PLEDGER)


@pytest.mark.parametrize(
    "member, message",
    [
        (b"", "exactly 32 bytes"),
        (b"\x01" * 31, "exactly 32 bytes"),
        (b"\x00" * 32, "\\[1, n-1\\]"),
        (b"\xff" * 32, "\\[1, n-1\\]"),
        ("0x" + "11" * 32, "unsupported private key type str"),
    ],
)
def test_seal_refuses_bad_member_key(member: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        seal(CONTENT, CTX, member, pledger=PLEDGER)  # type: ignore[arg-type]


def test_seal_refuses_a_bad_pledger() -> None:
    with pytest.raises(InputError, match="pledger address"):
        seal(CONTENT, CTX, MEMBER, pledger="0x1234")


def test_random_subsets_stress() -> None:
    """Many envelopes, each opened by a random t-subset (deterministic seed)."""
    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(1, 7)
        t = rng.randint(1, n)
        ctx = make_ctx(n, t)
        member = KeyPair.generate()
        parsed = parse(seal(CONTENT, ctx, member, pledger=member.address))
        chosen = rng.sample(range(n), t)
        shares = [real_share(parsed, i, ctx, member, member.address) for i in chosen]
        assert open_with(parsed, shares, ctx, member, member.address) == CONTENT


# ------------------------------------------------------------------------------------------ Shamir


@settings(max_examples=60, deadline=None)
@given(secret=st.binary(min_size=1, max_size=32), data=st.data())
def test_combine_many_agrees_with_pyshamir(secret: bytes, data: st.DataObject) -> None:
    """The vectorised combine equals pyshamir.combine on any t-subset of pyshamir's own split."""
    n = data.draw(st.integers(2, 12))
    t = data.draw(st.integers(2, n))
    shares = [bytes(s) for s in pyshamir.split(secret, n, t)]
    chosen = [shares[i] for i in data.draw(st.permutations(range(n)))[:t]]
    assert bytes(pyshamir.combine([bytearray(s) for s in chosen])) == secret
    assert _shamir.combine(chosen) == secret
    # t - 1 of them give some value, and pyshamir agrees on it: the same field, the same interpolation
    fewer = chosen[:-1]
    if len(fewer) >= 2:
        assert _shamir.combine(fewer) == bytes(pyshamir.combine([bytearray(s) for s in fewer]))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_combine_many_batches_groups_independently(data: st.DataObject) -> None:
    t = data.draw(st.integers(1, 6))
    n = data.draw(st.integers(t, 8))
    secrets_ = data.draw(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=20))
    groups = []
    for secret in secrets_:
        shares = _shamir.split(secret, n, t)
        groups.append([shares[i] for i in data.draw(st.permutations(range(n)))[:t]])
    assert _shamir.combine_many(groups) == secrets_
    assert _shamir.combine_many([]) == []


def test_split_with_t_1_is_the_key_itself_and_any_share_opens() -> None:
    secret = bytes(range(16))
    shares = _shamir.split(secret, 5, 1)
    assert shares == [secret + bytes((i + 1,)) for i in range(5)]
    for share in shares:
        assert _shamir.combine([share]) == secret
    assert _shamir.combine_many([[s] for s in shares]) == [secret] * 5


def test_split_of_pyshamir_shares_have_the_documented_shape() -> None:
    secret = bytes(range(16))
    shares = _shamir.split(secret, 5, 3)
    assert all(len(s) == 17 and s[-1] != 0 for s in shares)
    assert len({s[-1] for s in shares}) == 5
    for subset in itertools.combinations(shares, 3):
        assert bytes(pyshamir.combine([bytearray(s) for s in subset])) == secret == _shamir.combine(list(subset))


@pytest.mark.parametrize(
    "groups, message",
    [
        ([[]], "no share"),
        ([[b"\x01\x00", b"\x02\x00"]], "x = 0"),
        ([[b"\x01\x05", b"\x02\x05"]], "duplicate share x"),
        ([[b"\x01\x05", b"\x02\x06\x07"]], "differ in count or length"),
        ([[b"\x01\x05", b"\x02\x06"], [b"\x01\x05"]], "differ in count or length"),
        ([[b"\x01"]], "differ in count or length"),
    ],
)
def test_combine_refuses_malformed_groups(groups: list[list[bytes]], message: str) -> None:
    with pytest.raises(DecryptionError, match=message):
        _shamir.combine_many(groups)


@pytest.mark.parametrize(
    "secret, n, t, message",
    [
        (b"", 3, 2, "at least one byte"),
        (b"k", 3, 4, "cannot split 4-of-3"),
        (b"k", 3, 0, "cannot split 0-of-3"),
        (b"k", 256, 2, "cannot split 2-of-256"),
    ],
)
def test_split_refuses_bad_parameters(secret: bytes, n: int, t: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _shamir.split(secret, n, t)
