"""The sealed pledge envelope: round trips, thresholds, tampering, fuzzing, sizes (no chain).

Security properties exercised here (DESIGN §1): P1 (fewer than t keepers learn
nothing: t-1 shares never open an envelope, even with a forged extra share),
binding of an envelope to its chain, campaign, member key and keeper set, and
"malformed sealed bytes get a clear error" (only EnvelopeError/DecryptionError).
"""

from __future__ import annotations

import itertools
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus.envelope import (
    BUCKETS,
    CONTRACT_ENVELOPE_CAP,
    HEADER_SIZE,
    MAX_ENVELOPE_BYTES,
    MAX_PAYLOAD_BYTES,
    WRAPPED_SHARE_SIZE,
    ParsedEnvelope,
    PledgeContent,
    decode_content,
    encode_content,
    envelope_size,
    open_share,
    open_with_shares,
    pad,
    parse,
    seal,
    unpad,
)
from spartacus.keys import KeyPair, wrap
from spartacus.types import CampaignContext

# A pool of keeper keys, generated once: examples stay fast.
KEEPERS = [KeyPair.generate() for _ in range(32)]
MEMBER = KeyPair.generate()
PLEDGER = "0x" + "ab" * 20  # the account that sends the pledge
CAMPAIGN = "0x" + "ab" * 20
FAILURES = (EnvelopeError, DecryptionError)


def make_ctx(n: int = 3, t: int = 2, *, chain_id: int = 31337, campaign: str = CAMPAIGN) -> CampaignContext:
    return CampaignContext(
        chain_id=chain_id,
        campaign=campaign,
        keepers=tuple(k.public_key for k in KEEPERS[:n]),
        keeper_threshold=t,
    )


def all_shares(parsed: ParsedEnvelope, ctx: CampaignContext) -> list[bytes]:
    return [
        open_share(parsed, i, KEEPERS[i], ctx, member_key33=MEMBER.compressed, pledger=PLEDGER)
        for i in range(len(ctx.keepers))
    ]


def read_strictly(envelope: bytes, ctx: CampaignContext, member_key: bytes) -> PledgeContent:
    """Parse, have every keeper open its share, combine all of them."""
    parsed = parse(envelope)
    return open_with_shares(parsed, all_shares(parsed, ctx), ctx, member_key, pledger=PLEDGER)


CONTENT = PledgeContent(
    name="Ana Łopez ✊",
    contact={"email": "ana@example.org", "signal": "+49 151 000000"},
    message="Count me in.",
)
CTX = make_ctx()
ENVELOPE = seal(CONTENT, CTX, MEMBER.compressed, pledger=PLEDGER)

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
    return PledgeContent(
        name=draw(names),
        contact=contact,
        message=draw(st.none() | multiline),
        instructions=draw(st.none() | multiline),
    )


@st.composite
def thresholds(draw: st.DrawFn, max_n: int = 7) -> tuple[int, int]:
    n = draw(st.integers(1, max_n))
    return n, draw(st.integers(1, n))


# ------------------------------------------------------------------------------------------ round trips


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=contents(), nt=thresholds(), data=st.data())
def test_round_trip_with_any_t_shares(content: PledgeContent, nt: tuple[int, int], data: st.DataObject) -> None:
    n, t = nt
    ctx = make_ctx(n, t)
    envelope = seal(content, ctx, MEMBER.compressed, pledger=PLEDGER)
    parsed = parse(envelope)
    assert (parsed.n, parsed.t) == (n, t)
    assert len(envelope) == envelope_size(n, parsed.bucket)
    chosen = data.draw(st.permutations(range(n)))[:t]
    shares = [open_share(parsed, i, KEEPERS[i], ctx, member_key33=MEMBER.compressed, pledger=PLEDGER) for i in chosen]
    assert open_with_shares(parsed, shares, ctx, MEMBER.compressed, pledger=PLEDGER) == content


def test_content_is_normalised_and_survives() -> None:
    content = PledgeContent(name="  Zoë  ", contact={"email": " z@example.org "})
    assert content.name == "Zoë" and content.contact == {"email": "z@example.org"}
    assert read_strictly(seal(content, CTX, MEMBER.compressed, pledger=PLEDGER), CTX, MEMBER.compressed) == content


@pytest.mark.parametrize("n,t", [(1, 1), (3, 1), (3, 3), (5, 3), (6, 4)])
def test_every_t_subset_opens_and_every_smaller_one_fails(n: int, t: int) -> None:
    ctx = make_ctx(n, t)
    parsed = parse(seal(CONTENT, ctx, MEMBER.compressed, pledger=PLEDGER))
    shares = all_shares(parsed, ctx)
    for subset in itertools.combinations(shares, t):
        assert open_with_shares(parsed, list(subset), ctx, MEMBER.compressed, pledger=PLEDGER) == CONTENT
    for subset in itertools.combinations(shares, t - 1):
        with pytest.raises(DecryptionError, match=f"need {t} shares, got {t - 1}"):
            open_with_shares(parsed, list(subset), ctx, MEMBER.compressed, pledger=PLEDGER)


@settings(max_examples=25, deadline=None)
@given(nt=thresholds().filter(lambda nt: nt[1] >= 2), data=st.data())
def test_t_minus_1_shares_plus_a_forged_one_do_not_open(nt: tuple[int, int], data: st.DataObject) -> None:
    """P1: t-1 real shares carry no information; a forged t-th share does not help."""
    n, t = nt
    ctx = make_ctx(n, t)
    parsed = parse(seal(CONTENT, ctx, MEMBER.compressed, pledger=PLEDGER))
    order = data.draw(st.permutations(range(n)))
    real = [
        open_share(parsed, i, KEEPERS[i], ctx, member_key33=MEMBER.compressed, pledger=PLEDGER) for i in order[: t - 1]
    ]
    with pytest.raises(DecryptionError, match=f"need {t} shares, got {t - 1}"):
        open_with_shares(parsed, real, ctx, MEMBER.compressed, pledger=PLEDGER)
    forged_index = order[t - 1] + 1
    forged = bytes([forged_index]) + data.draw(st.binary(min_size=32, max_size=32))
    with pytest.raises(DecryptionError):
        open_with_shares(parsed, [*real, forged], ctx, MEMBER.compressed, pledger=PLEDGER)


def test_duplicate_shares_count_once() -> None:
    parsed = parse(ENVELOPE)
    share = open_share(parsed, 0, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    with pytest.raises(DecryptionError, match="need 2 shares, got 1"):
        open_with_shares(parsed, [share, share, share], CTX, MEMBER.compressed, pledger=PLEDGER)


def test_a_bad_share_does_not_block_good_ones() -> None:
    parsed = parse(ENVELOPE)
    good = all_shares(parsed, CTX)
    bad = bytes([1]) + bytes(32)  # claims to be keeper 0's
    assert open_with_shares(parsed, [bad, good[1], good[2]], CTX, MEMBER.compressed, pledger=PLEDGER) == CONTENT
    assert open_with_shares(parsed, [bad, good[0], good[1]], CTX, MEMBER.compressed, pledger=PLEDGER) == CONTENT
    with pytest.raises(DecryptionError, match="do not open"):
        open_with_shares(parsed, [bad, good[1]], CTX, MEMBER.compressed, pledger=PLEDGER)


def test_malformed_shares_are_ignored() -> None:
    parsed = parse(ENVELOPE)
    good = all_shares(parsed, CTX)
    junk = [b"", b"\x00" * 33, b"\x09" + b"\x00" * 32, good[0][:20], "text"]
    with pytest.raises(DecryptionError, match="need 2 shares, got 1"):
        open_with_shares(parsed, [*junk, good[0]], CTX, MEMBER.compressed, pledger=PLEDGER)  # type: ignore[list-item]
    assert open_with_shares(parsed, [*junk, good[2], good[0]], CTX, MEMBER.compressed, pledger=PLEDGER) == CONTENT  # type: ignore[list-item]


def test_sealing_is_randomised_and_hides_the_plaintext() -> None:
    again = seal(CONTENT, CTX, MEMBER.compressed, pledger=PLEDGER)
    assert again != ENVELOPE and len(again) == len(ENVELOPE)
    for secret in (CONTENT.name.encode(), b"ana@example.org", b"Count me in"):
        assert secret not in ENVELOPE
    assert parse(again).wrapped_shares[0] != parse(ENVELOPE).wrapped_shares[0]


# ------------------------------------------------------------------------------------------ binding


def test_wrong_chain_campaign_or_member_key_fails_authentication() -> None:
    parsed = parse(ENVELOPE)
    shares = all_shares(parsed, CTX)
    for other in (make_ctx(chain_id=1), make_ctx(campaign="0x" + "ac" * 20)):
        with pytest.raises(DecryptionError):
            open_with_shares(parsed, shares, other, MEMBER.compressed, pledger=PLEDGER)
    with pytest.raises(DecryptionError):
        open_with_shares(parsed, shares, CTX, KeyPair.generate().compressed, pledger=PLEDGER)
    assert open_with_shares(parsed, shares, CTX, MEMBER.compressed, pledger=PLEDGER) == CONTENT


def test_other_keeper_set_or_threshold_is_an_envelope_error() -> None:
    parsed = parse(ENVELOPE)
    shares = all_shares(parsed, CTX)
    swapped = CampaignContext(CTX.chain_id, CTX.campaign, (CTX.keepers[1], CTX.keepers[0], CTX.keepers[2]), 2)
    for other in (make_ctx(3, 3), make_ctx(4, 2), swapped):
        with pytest.raises(EnvelopeError):
            open_with_shares(parsed, shares, other, MEMBER.compressed, pledger=PLEDGER)
        with pytest.raises(EnvelopeError):
            open_share(parsed, 0, KEEPERS[0], other, member_key33=MEMBER.compressed, pledger=PLEDGER)


# ------------------------------------------------------------------------------------------ keeper side


def test_wrong_keeper_key_is_refused() -> None:
    parsed = parse(ENVELOPE)
    with pytest.raises(InputError, match="not keeper #0"):
        open_share(parsed, 0, KeyPair.generate(), CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    with pytest.raises(InputError, match="not keeper #1"):
        open_share(
            parsed, 1, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER
        )  # keeper 0's key used as keeper 1
    with pytest.raises(InputError):
        open_share(parsed, 3, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)


def test_wrapped_share_of_another_keeper_is_refused() -> None:
    """Keeper 0's slot holds keeper 1's share (wrapped to keeper 0): the index byte betrays it."""
    parsed = parse(ENVELOPE)
    share1 = open_share(parsed, 1, KEEPERS[1], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    forged = bytearray(ENVELOPE)
    start = HEADER_SIZE + len(parsed.body)
    forged[start : start + WRAPPED_SHARE_SIZE] = wrap(KEEPERS[0].public_key, share1 + bytes(16))
    with pytest.raises(DecryptionError, match="not its share"):
        open_share(parse(bytes(forged)), 0, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)


def test_a_copy_sent_by_another_account_is_never_released() -> None:
    """Replaying someone's envelope and member key from another account (say, to get a
    withdrawn pledge revealed after all): keepers refuse to open their share of it, and the
    record does not open under the copier's address either."""
    parsed = parse(ENVELOPE)
    copier = "0x" + "cd" * 20
    for i in range(3):
        with pytest.raises(DecryptionError, match="copy"):
            open_share(parsed, i, KEEPERS[i], CTX, member_key33=MEMBER.compressed, pledger=copier)
        with pytest.raises(DecryptionError, match="copy"):  # the same sender, another member key
            open_share(parsed, i, KEEPERS[i], CTX, member_key33=KeyPair.generate().compressed, pledger=PLEDGER)
    shares = [open_share(parsed, i, KEEPERS[i], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER) for i in range(2)]
    with pytest.raises(DecryptionError):
        open_with_shares(parsed, shares, CTX, MEMBER.compressed, pledger=copier)
    assert open_with_shares(parsed, shares, CTX, MEMBER.compressed, pledger=PLEDGER) == CONTENT


def test_tampered_wrapped_share_fails() -> None:
    parsed = parse(ENVELOPE)
    start = HEADER_SIZE + len(parsed.body)
    for offset in (0, 40, 70, 90, 120, 145):
        forged = bytearray(ENVELOPE)
        forged[start + offset] ^= 0x10
        with pytest.raises(DecryptionError):
            open_share(parse(bytes(forged)), 0, KEEPERS[0], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)


def test_keeper_accepts_any_private_key_flavour() -> None:
    parsed = parse(ENVELOPE)
    expected = open_share(parsed, 2, KEEPERS[2], CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
    assert (
        open_share(parsed, 2, KEEPERS[2].secret_bytes(), CTX, member_key33=MEMBER.compressed, pledger=PLEDGER)
        == expected
    )


# ------------------------------------------------------------------------------------------ tampering


def test_every_single_byte_flip_is_detected() -> None:
    """Exhaustive over positions: flip each byte of a real envelope; the strict read must fail."""
    for pos in range(len(ENVELOPE)):
        forged = bytearray(ENVELOPE)
        forged[pos] ^= 0x01
        with pytest.raises(FAILURES):
            read_strictly(bytes(forged), CTX, MEMBER.compressed)


@settings(max_examples=150, deadline=None)
@given(pos=st.integers(0, len(ENVELOPE) - 1), mask=st.integers(1, 255))
def test_any_flipped_byte_fails_cleanly(pos: int, mask: int) -> None:
    forged = bytearray(ENVELOPE)
    forged[pos] ^= mask
    with pytest.raises(FAILURES):
        read_strictly(bytes(forged), CTX, MEMBER.compressed)


def test_every_truncation_and_extension_is_an_envelope_error() -> None:
    for cut in range(len(ENVELOPE)):
        with pytest.raises(EnvelopeError):
            parse(ENVELOPE[:cut])
    for extra in (b"\x00", b"\x01" * 7, ENVELOPE[-WRAPPED_SHARE_SIZE:]):
        with pytest.raises(EnvelopeError, match="trailing"):
            parse(ENVELOPE + extra)


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=2000))
def test_arbitrary_bytes_only_raise_envelope_or_decryption_errors(blob: bytes) -> None:
    try:
        read_strictly(blob, CTX, MEMBER.compressed)
    except FAILURES:
        return
    pytest.fail("random bytes opened as an envelope")


@st.composite
def structured_garbage(draw: st.DrawFn) -> bytes:
    """Plausible headers (right magic, sometimes the right keeper digest) with random contents."""
    n = draw(st.integers(0, 40))
    t = draw(st.integers(0, 40))
    digest = parse(ENVELOPE).keeper_digest if draw(st.booleans()) else draw(st.binary(min_size=32, max_size=32))
    body_len = draw(st.sampled_from([b + 16 for b in BUCKETS]) | st.integers(0, 65535))
    rest_len = draw(st.sampled_from([body_len + n * WRAPPED_SHARE_SIZE, body_len, 0]) | st.integers(0, 3000))
    rest = draw(st.binary(min_size=min(rest_len, 3000), max_size=min(rest_len, 3000)))
    return b"SPX\x01" + bytes([n % 256, t % 256]) + digest + bytes(12) + body_len.to_bytes(2, "big") + rest


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=structured_garbage())
def test_structured_garbage_only_raises_envelope_or_decryption_errors(blob: bytes) -> None:
    with pytest.raises(FAILURES):
        read_strictly(blob, CTX, MEMBER.compressed)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"SPY" + b[3:], "magic"),
        (lambda b: b[:3] + b"\x02" + b[4:], "version 2"),
        (lambda b: b[:4] + b"\x00\x00" + b[6:], "1 <= t <= n"),
        (lambda b: b[:4] + b"\x03\x04" + b[6:], "1 <= t <= n"),
        (lambda b: b[:4] + b"\x21\x02" + b[6:], "1 <= t <= n"),
        (lambda b: b[:50] + (600).to_bytes(2, "big") + b[52:], "bucket"),
        (lambda b: b[:4] + b"\x04" + b[5:], "truncated"),
        (lambda b: b[:4] + b"\x02" + b[5:], "trailing"),
    ],
)
def test_header_defects_have_clear_messages(mutate: object, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        parse(mutate(ENVELOPE))  # type: ignore[operator]


def test_parse_refuses_non_bytes() -> None:
    with pytest.raises(EnvelopeError):
        parse("0x" + ENVELOPE.hex())  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ padding & sizes


def _payload_len(content: PledgeContent) -> int:
    return len(encode_content(content))


def test_ciphertext_length_is_constant_within_a_bucket() -> None:
    short = PledgeContent(name="A")

    def with_message(k: int) -> PledgeContent:
        return PledgeContent(name="Ä" * 100, contact={"email": "x" * 50 + "@example.org"}, message="m" * k)

    fill = 508 - _payload_len(with_message(0))  # 4 + 508 = the 512-byte bucket, exactly
    long = with_message(fill)
    assert _payload_len(short) < 100 and _payload_len(long) == 508
    a, b = seal(short, CTX, MEMBER.compressed, pledger=PLEDGER), seal(long, CTX, MEMBER.compressed, pledger=PLEDGER)
    assert len(a) == len(b) == envelope_size(3, 512) == 1018
    assert len(parse(a).body) == len(parse(b).body) == 512 + 16
    bigger = seal(with_message(fill + 1), CTX, MEMBER.compressed, pledger=PLEDGER)  # one byte more: next bucket
    assert len(bigger) == envelope_size(3, 1024) == len(a) + 512


@pytest.mark.parametrize("size", [0, 1, 507, 508, 509, 1020, 1021, 8188, 8189, MAX_PAYLOAD_BYTES])
def test_pad_unpad_round_trip_and_buckets(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    padded = pad(payload)
    assert len(padded) == min(b for b in BUCKETS if b >= size + 4)
    assert unpad(padded) == payload


def test_unpad_checks_every_padding_byte_and_the_length() -> None:
    padded = bytearray(pad(b"hello"))
    for pos in (9, 100, len(padded) - 1):
        bad = bytearray(padded)
        bad[pos] = 1
        with pytest.raises(EnvelopeError, match="not all zero"):
            unpad(bytes(bad))
    with pytest.raises(EnvelopeError, match="exceeds"):
        unpad((600).to_bytes(4, "big") + bytes(padded[4:]))
    with pytest.raises(EnvelopeError, match="bucket"):
        unpad(bytes(padded[:-1]))


def test_oversized_payload_is_refused_with_the_limit() -> None:
    with pytest.raises(InputError, match=f"the limit is {MAX_PAYLOAD_BYTES} bytes"):
        pad(bytes(MAX_PAYLOAD_BYTES + 1))
    huge = PledgeContent(name="Organizer", instructions="é" * 8200)  # 16,400 bytes of UTF-8
    with pytest.raises(InputError, match="16380"):
        seal(huge, CTX, MEMBER.compressed, pledger=PLEDGER)


def test_largest_envelope_fits_the_contract_cap() -> None:
    assert MAX_ENVELOPE_BYTES == 52 + 16384 + 16 + 32 * 146 == 21_124
    assert MAX_ENVELOPE_BYTES <= CONTRACT_ENVELOPE_CAP == 24_576
    content = PledgeContent(name="Organizer", instructions="é" * 8000 + "x" * 300)
    assert 8188 < _payload_len(content) <= MAX_PAYLOAD_BYTES
    ctx = make_ctx(32, 17)
    envelope = seal(content, ctx, MEMBER.compressed, pledger=PLEDGER)
    assert len(envelope) == MAX_ENVELOPE_BYTES
    parsed = parse(envelope)
    assert all(len(w) == WRAPPED_SHARE_SIZE for w in parsed.wrapped_shares)
    shares = [
        open_share(parsed, i, KEEPERS[i], ctx, member_key33=MEMBER.compressed, pledger=PLEDGER) for i in range(15, 32)
    ]
    assert open_with_shares(parsed, shares, ctx, MEMBER.compressed, pledger=PLEDGER) == content


def test_wrapped_shares_have_constant_length() -> None:
    for _ in range(5):
        parsed = parse(seal(CONTENT, CTX, MEMBER.compressed, pledger=PLEDGER))
        assert {len(w) for w in parsed.wrapped_shares} == {146}


# ------------------------------------------------------------------------------------------ content rules


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": ""}, "name is empty"),
        ({"name": "   "}, "name is empty"),
        ({"name": "x" * 201}, "limit is 200"),
        ({"name": "a\x1b[31mb"}, "control character"),
        ({"name": "a\nb"}, "control character"),
        ({"name": "\ud800"}, "lone surrogate"),
        ({"name": 5}, "must be text"),
        ({"name": "a", "contact": {"Email": "x"}}, "field name"),
        ({"name": "a", "contact": {"1x": "x"}}, "field name"),
        ({"name": "a", "contact": {"a" * 33: "x"}}, "field name"),
        ({"name": "a", "contact": {f"k{i}": "v" for i in range(17)}}, "limit is 16"),
        ({"name": "a", "contact": {"tel": "x" * 321}}, "limit is 320"),
        ({"name": "a", "contact": {"tel": " "}}, "empty"),
        ({"name": "a", "contact": {"tel": 5}}, "must be text"),
        ({"name": "a", "contact": {"email": "not-an-address"}}, "e-mail"),
        ({"name": "a", "contact": {"email": "a@b"}}, "e-mail"),
        ({"name": "a", "contact": {"email": "a b@c.org"}}, "e-mail"),
        ({"name": "a", "contact": ["email"]}, "mapping"),
        ({"name": "a", "message": "m" * 2001}, "limit is 2000"),
        ({"name": "a", "message": "bell\x07"}, "control character"),
        ({"name": "a", "instructions": "i" * 12001}, "limit is 12000"),
    ],
)
def test_invalid_content_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        PledgeContent(**kwargs)  # type: ignore[arg-type]


def test_multiline_message_and_16_fields_are_fine() -> None:
    content = PledgeContent(
        name="a",
        contact={f"k{i}": "v" for i in range(16)},
        message="line 1\nline 2\r\n\tindented",
        instructions="step 1\nstep 2",
    )
    assert decode_content(encode_content(content)) == content


def test_canonical_encoding_is_documented_form() -> None:
    encoded = encode_content(PledgeContent(name="Zoë", contact={"email": "z@x.org"}))
    assert encoded == '{"contact":{"email":"z@x.org"},"name":"Zoë","v":1}'.encode()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff",
        b"[]",
        b'{"contact":{},"name":"a"}',  # no version
        b'{"contact":{},"name":"a","v":2}',
        b'{"contact":{},"name":"a","v":true}',
        b'{"contact":{},"name":"a","v":1.0}',
        b'{"contact":{},"name":"a","v":1,"extra":1}',
        b'{"contact":[],"name":"a","v":1}',
        b'{"contact":{"tel":1},"name":"a","v":1}',
        b'{"contact":{},"message":5,"name":"a","v":1}',
        b'{"contact":{},"name":"","v":1}',
        b'{"contact":{},"name":" a","v":1}',  # not normalised
        b'{"name":"a","contact":{},"v":1}',  # keys not sorted
        b'{"contact":{}, "name":"a","v":1}',  # whitespace
        b'{"contact":{},"name":"\\u00e9","v":1}',  # escaped instead of UTF-8
        b'{"contact":{},"name":"a","name":"b","v":1}',  # duplicate key
        b'{"contact":{},"name":"\\ud800","v":1}',  # lone surrogate
        b'{"contact":{},"message":null,"name":"a","v":1}',
        b"[" * 100000,  # would overflow json's C scanner (a segfault) without the depth check
        b'{"contact":{"a":{}},"name":"a","v":1}',
        b'{"contact":{},"name":"a","v":1,"x":' + b"{" * 200_000 + b"}" * 200_000 + b"}",
    ],
)
def test_decode_is_strict(payload: bytes) -> None:
    with pytest.raises(EnvelopeError):
        decode_content(payload)


@settings(max_examples=50, deadline=None)
@given(content=contents())
def test_decode_inverts_encode(content: PledgeContent) -> None:
    assert decode_content(encode_content(content)) == content


def test_authenticated_but_malformed_record_is_an_envelope_error() -> None:
    """A pledger can seal garbage of its own: the member gets an EnvelopeError, not a crash."""
    ctx = CTX
    # Build an envelope by hand around a non-canonical payload, with the real primitives.
    from Crypto.Cipher import AES
    from Crypto.Protocol.SecretSharing import Shamir
    from eth_utils.crypto import keccak

    from spartacus.envelope import header_aad, keeper_set_digest

    key = bytes(range(32))
    nonce = bytes(12)
    digest = keeper_set_digest(ctx.keepers)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=16)
    aad = header_aad(ctx, MEMBER.compressed, 3, 2, digest, PLEDGER)
    cipher.update(aad)
    ct, tag = cipher.encrypt_and_digest(pad(json.dumps({"hello": "world"}).encode()))
    lo, hi = Shamir.split(2, 3, key[:16], False), Shamir.split(2, 3, key[16:], False)
    binding = keccak(aad)[:16]
    wrapped = [wrap(ctx.keepers[i], bytes([i + 1]) + lo[i][1] + hi[i][1] + binding) for i in range(3)]
    body = ct + tag
    envelope = b"SPX\x01" + bytes([3, 2]) + digest + nonce + len(body).to_bytes(2, "big") + body + b"".join(wrapped)
    with pytest.raises(EnvelopeError, match="missing or unknown fields"):
        read_strictly(envelope, ctx, MEMBER.compressed)


# ------------------------------------------------------------------------------------------ sealing input


@pytest.mark.parametrize(
    "ctx, message",
    [
        (CampaignContext(1, CAMPAIGN, (), 1), "no keepers"),
        (make_ctx(3, 4), "between 1 and"),
        (make_ctx(3, 0), "between 1 and"),
        (
            CampaignContext(1, CAMPAIGN, tuple(k.public_key for k in KEEPERS) + (KeyPair.generate().public_key,), 2),
            "limit is 32",
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
        seal(CONTENT, ctx, MEMBER.compressed, pledger=PLEDGER)


@pytest.mark.parametrize("member_key", [b"", MEMBER.public_key, b"\x02" + b"\xff" * 32, b"\x05" * 33])
def test_seal_refuses_bad_member_key(member_key: bytes) -> None:
    with pytest.raises(InputError):
        seal(CONTENT, CTX, member_key, pledger=PLEDGER)


def test_random_subsets_stress() -> None:
    """Many envelopes, each opened by a random t-subset (deterministic seed)."""
    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(1, 7)
        t = rng.randint(1, n)
        ctx = make_ctx(n, t)
        member = KeyPair.generate()
        parsed = parse(seal(CONTENT, ctx, member.compressed, pledger=PLEDGER))
        chosen = rng.sample(range(n), t)
        shares = [
            open_share(parsed, i, KEEPERS[i], ctx, member_key33=member.compressed, pledger=PLEDGER) for i in chosen
        ]
        assert open_with_shares(parsed, shares, ctx, member.compressed, pledger=PLEDGER) == CONTENT


@settings(max_examples=100, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32), data=st.data())
def test_cached_combination_equals_pycryptodome(secret: bytes, data: st.DataObject) -> None:
    """combine_key (cached Lagrange coefficients) agrees with Shamir.combine for any t-subset."""
    from Crypto.Protocol.SecretSharing import Shamir

    from spartacus.envelope import combine_key

    n = data.draw(st.integers(1, 8))
    t = data.draw(st.integers(1, n))
    lo, hi = Shamir.split(t, n, secret[:16], False), Shamir.split(t, n, secret[16:], False)
    shares = [bytes([i + 1]) + lo[i][1] + hi[i][1] for i in range(n)]
    chosen = [shares[i] for i in data.draw(st.permutations(range(n)))[:t]]
    assert combine_key(chosen) == secret
    reference = Shamir.combine([(s[0], s[1:17]) for s in chosen], False) + Shamir.combine(
        [(s[0], s[17:33]) for s in chosen], False
    )
    assert combine_key(chosen) == reference
