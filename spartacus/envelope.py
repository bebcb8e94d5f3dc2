"""The sealed pledge, format v2: a record sealed for ``t`` of ``n`` keepers, near its floor in size.

A pledger's client (this module, or the browser module ``dapp/js/format.js``, byte for byte
the same) seals its record (:class:`PledgeContent`) so that no single party can read it
before the reveal. The organizer's instructions are sealed the same way, apart from the
organizer's own record (:func:`seal_instructions`), so that a late joiner can be given them
without the organizer's identity.

Primitives (all from libraries, see :mod:`spartacus._primitives`): secp256k1 ECDH, HKDF-SHA256,
AES-128-GCM, AES-KW (RFC 3394), SHA-256, and Shamir over GF(2^8) (:mod:`spartacus._shamir`).

Record (the plaintext, canonical binary; all integers big-endian)
-----------------------------------------------------------------
A member record (role 1)::

    0x01                         kind
    u16 L | L bytes              name, UTF-8
    u8  C                        number of contact fields (0..16)
    C × ( u8 K | K bytes         field name, ASCII ^[a-z][a-z0-9_-]{0,31}$, strictly ascending
          u16 V | V bytes )      value, UTF-8
    u16 M | M bytes              message, UTF-8 (M = 0: no message)

Instructions (role 2)::

    0x02 | the instructions, UTF-8 (the rest of the payload)

"Characters" in the limits below are Unicode code points. Decoding is strict: every byte is
consumed, lengths fit, keys ascend, text is valid UTF-8 without control characters (the
message and instructions may hold line breaks and tabs).

Padding (the ciphertext length leaks only the bucket)::

    u16 len(record) | record | 0x00 … up to B, the smallest of BUCKETS holding 2 + len(record)

``BUCKETS`` = 256, 512, 1024, 2048, 4096, 8192, 16384. A typical record (a name, an e-mail,
a message of 100 characters) fits the first.

Binding (the associated data ``A``, 144 bytes, never sent: the reader knows every field)::

    b"SPX" 0x02                  4    magic and version
    role                         1    0x01 pledge record, 0x02 instructions
    chain id                     32   u256
    campaign                     20   address
    member key M                 33   compressed; travels beside the envelope in `Pledged`
    pledger                      20   the address that pledges (the signer of a relayed request)
    n | t                        2
    keccak256(K1 ‖ … ‖ Kn)       32   the keepers' 64-byte public keys, in campaign order

For the instructions, ``M`` is the organizer's member key and ``pledger`` the campaign's creator.
Let ``h = SHA-256(A)``.

Sealing
-------
1. ``k`` = 16 random bytes (the content key); ``body = AES-128-GCM(k, nonce = 0^12, padded,
   aad = A)``: ``k`` encrypts exactly one message, so a fixed nonce is safe.
2. Shamir: ``split(k, n, t)`` gives share ``i`` = ``y_i (16) ‖ x_i (1)`` (``x_i`` random and
   distinct); for ``t = 1``, ``y_i = k`` and ``x_i = i + 1``.
3. Commitment ``c_i = SHA-256(b"spartacus/v2 commit" ‖ h ‖ i ‖ x_i ‖ y_i)[:8]`` (``i`` one
   byte): a member checks each keeper's published ``y_i`` against it, so shares from a lying
   keeper are recognised and set aside, and any ``t`` honest keepers open the record (P9).
4. Wrap: the member key's secret ``m`` is the envelope's one ephemeral key for all keepers
   (randomness reuse across the recipients of one message is safe for DH-based KEMs:
   Kurosawa 2002; Bellare, Boldyreva and Staddon 2003). ``Z_i = m · K_i`` (compressed point),
   ``KEK_i = HKDF-SHA256(Z_i, salt = "", info = b"spartacus/v2 wrap" ‖ h ‖ i, 16)``,
   ``w_i = AES-KW(KEK_i, y_i)`` (24 bytes). Keeper ``i`` recomputes ``Z_i = k_i · M`` and ``h``
   from the ``Pledged`` event: a copy of someone's envelope sent by another pledger, to
   another campaign or with another member key gives another ``h``, the unwrap fails, and that
   keeper never releases anything for it (P4).

Wire format (the ``envelope`` bytes of ``Campaign.pledge``, and ``config.instructions``)
----------------------------------------------------------------------------------------
::

    offset      size     field
    0           4        b"SPX" 0x02
    4           1        n               1 <= t <= n <= 32
    5           1        t
    6           B + 16   body            AES-128-GCM ciphertext, then its tag
    22 + B      33 n     per keeper i:   x_i (1) | c_i (8) | w_i (24)

Size: ``22 + B + 33 n``. A typical pledge with 3 keepers: ``22 + 256 + 99 = 377`` bytes. The
largest (B = 16384, n = 32): 17,462 bytes, under the contract's 24,576-byte cap.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from Crypto.Random import get_random_bytes
from eth_utils.crypto import keccak

from spartacus import _shamir
from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus._primitives import (
    KEY_SIZE,
    TAG_SIZE,
    WRAP_SIZE,
    ZERO_NONCE,
    ecdh,
    gcm_open,
    gcm_seal,
    hkdf16,
    kw_unwrap,
    kw_wrap,
    sha256,
)
from spartacus.keys import KeyPair, PrivateKeyLike, compress_public_key, parse_public_key, secret_of
from spartacus.types import CampaignContext

__all__ = [
    "MAGIC",
    "VERSION",
    "ROLE_PLEDGE",
    "ROLE_INSTRUCTIONS",
    "BUCKETS",
    "MAX_PAYLOAD_BYTES",
    "MAX_KEEPERS",
    "SHARE_Y_SIZE",
    "COMMITMENT_SIZE",
    "KEEPER_SLOT_SIZE",
    "HEADER_SIZE",
    "AAD_SIZE",
    "CONTRACT_ENVELOPE_CAP",
    "MAX_ENVELOPE_BYTES",
    "NAME_MAX",
    "CONTACT_MAX_FIELDS",
    "CONTACT_VALUE_MAX",
    "MESSAGE_MAX",
    "INSTRUCTIONS_MAX",
    "PledgeContent",
    "ParsedEnvelope",
    "Randomness",
    "encode_content",
    "decode_content",
    "encode_instructions",
    "decode_instructions",
    "pad",
    "unpad",
    "bucket_for",
    "envelope_size",
    "keeper_set_digest",
    "address_bytes",
    "campaign_bytes",
    "binding",
    "commitment",
    "check_context",
    "seal",
    "seal_instructions",
    "parse",
    "open_share",
    "open_body",
]

MAGIC: Final = b"SPX"
VERSION: Final = 2
_PREFIX: Final = MAGIC + bytes([VERSION])
ROLE_PLEDGE: Final = 1
ROLE_INSTRUCTIONS: Final = 2
BUCKETS: Final[tuple[int, ...]] = (256, 512, 1024, 2048, 4096, 8192, 16384)
_LEN_PREFIX: Final = 2
MAX_PAYLOAD_BYTES: Final = BUCKETS[-1] - _LEN_PREFIX
MAX_KEEPERS: Final = 32
SHARE_Y_SIZE: Final = KEY_SIZE  # 16
COMMITMENT_SIZE: Final = 8
KEEPER_SLOT_SIZE: Final = 1 + COMMITMENT_SIZE + WRAP_SIZE  # 33
HEADER_SIZE: Final = 4 + 1 + 1
AAD_SIZE: Final = 4 + 1 + 32 + 20 + 33 + 20 + 2 + 32  # 144
#: The ``Campaign`` contract refuses longer envelopes (and longer sealed instructions).
CONTRACT_ENVELOPE_CAP: Final = 24_576
_COMMIT_LABEL: Final = b"spartacus/v2 commit"
_WRAP_LABEL: Final = b"spartacus/v2 wrap"


def envelope_size(n: int, bucket: int) -> int:
    """Wire size of an envelope for ``n`` keepers and a padded payload of ``bucket`` bytes."""
    return HEADER_SIZE + bucket + TAG_SIZE + n * KEEPER_SLOT_SIZE


#: The largest envelope this module can produce (bucket 16384, n = 32): 17,462 bytes.
MAX_ENVELOPE_BYTES: Final = envelope_size(MAX_KEEPERS, BUCKETS[-1])
assert MAX_ENVELOPE_BYTES <= CONTRACT_ENVELOPE_CAP, "the largest bucket no longer fits the contract"

# ------------------------------------------------------------------------------------------ record

NAME_MAX: Final = 200
CONTACT_MAX_FIELDS: Final = 16
CONTACT_VALUE_MAX: Final = 320
MESSAGE_MAX: Final = 2000
INSTRUCTIONS_MAX: Final = 12000
_CONTACT_KEY_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_EMAIL_RE: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_MULTILINE_OK: Final = frozenset("\n\r\t")


def _check_text(what: str, value: object, *, max_chars: int, multiline: bool) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, not {type(value).__name__}")
    if len(value) > max_chars:
        raise InputError(f"{what} is {len(value)} characters; the limit is {max_chars}")
    for ch in value:
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in _MULTILINE_OK):
            allowed = " (line breaks and tabs are fine)" if multiline else ""
            raise InputError(f"{what} contains a control character U+{ord(ch):04X}; remove it{allowed}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid Unicode text (lone surrogate)") from None
    return value


def _check_contact(contact: object, *, trim: bool) -> dict[str, str]:
    if not isinstance(contact, Mapping):
        raise InputError("contact must be a mapping of field name to value")
    if len(contact) > CONTACT_MAX_FIELDS:
        raise InputError(f"{len(contact)} contact fields; the limit is {CONTACT_MAX_FIELDS}")
    out: dict[str, str] = {}
    for key, raw in contact.items():
        if not isinstance(key, str) or not _CONTACT_KEY_RE.fullmatch(key):
            raise InputError(
                f"contact field name {key!r} is invalid: use 1-32 of a-z, 0-9, _ and -, "
                "starting with a letter (e.g. email, signal, phone)"
            )
        value = _check_text(f"contact {key}", raw, max_chars=10 * CONTACT_VALUE_MAX, multiline=False)
        value = value.strip() if trim else value
        if not value.strip():
            raise InputError(f"contact {key} is empty; drop the field or give a value")
        if len(value) > CONTACT_VALUE_MAX:
            raise InputError(f"contact {key} is {len(value)} characters; the limit is {CONTACT_VALUE_MAX}")
        if key == "email" and not _EMAIL_RE.fullmatch(value):
            raise InputError(f"contact email {value!r} does not look like an e-mail address")
        out[key] = value
    return out


@dataclass(frozen=True)
class PledgeContent:
    """What a pledger reveals to the other members.

    * ``name``: display identity, 1..200 characters (surrounding blanks removed);
    * ``contact``: up to 16 fields ``key -> value``; keys match
      ``^[a-z][a-z0-9_-]{0,31}$``; values 1..320 characters (blanks trimmed);
      ``email`` must look like an address (the relay writes to it);
    * ``message``: optional, up to 2,000 characters (an empty message is no message).

    Invalid values raise :class:`InputError` at construction.
    """

    name: str
    contact: dict[str, str] = field(default_factory=dict)
    message: str | None = None

    def __post_init__(self) -> None:
        name = _check_text("name", self.name, max_chars=10 * NAME_MAX, multiline=False).strip()
        if not name:
            raise InputError("name is empty; give the name the other members will know you by")
        if len(name) > NAME_MAX:
            raise InputError(f"name is {len(name)} characters; the limit is {NAME_MAX}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "contact", _check_contact(self.contact, trim=True))
        if self.message is not None:
            _check_text("message", self.message, max_chars=MESSAGE_MAX, multiline=True)
            if self.message == "":
                object.__setattr__(self, "message", None)


def _u16(data: bytes, what: str) -> bytes:
    if len(data) > 0xFFFF:  # pragma: no cover - the limits above keep every field far below
        raise InputError(f"{what} is too long")
    return len(data).to_bytes(2, "big") + data


def encode_content(content: PledgeContent) -> bytes:
    """The canonical binary member record (see the module docstring)."""
    out = bytearray(b"\x01")
    out += _u16(content.name.encode("utf-8"), "name")
    out.append(len(content.contact))
    for key in sorted(content.contact):
        key_bytes = key.encode("ascii")
        out.append(len(key_bytes))
        out += key_bytes
        out += _u16(content.contact[key].encode("utf-8"), f"contact {key}")
    out += _u16((content.message or "").encode("utf-8"), "message")
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise EnvelopeError("the sealed record is truncated")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def text(self, size_bytes: int, what: str) -> str:
        raw = self.take(self.number(size_bytes))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError(f"the sealed record's {what} is not UTF-8") from None


def decode_content(payload: bytes) -> PledgeContent:
    """Parse a member record strictly; anything else is an :class:`EnvelopeError`."""
    r = _Reader(bytes(payload))
    if r.take(1) != b"\x01":
        raise EnvelopeError("the sealed record is not a member record (kind byte)")
    try:
        name = _check_text("name", r.text(2, "name"), max_chars=NAME_MAX, multiline=False)
        if not name.strip():
            raise InputError("name is empty")
        count = r.number(1)
        contact: dict[str, str] = {}
        previous = b""
        for _ in range(count):
            key_bytes = r.take(r.number(1))
            if key_bytes <= previous:
                raise EnvelopeError("the sealed record's contact fields are not in strictly ascending order")
            previous = key_bytes
            key = key_bytes.decode("ascii", errors="replace")
            contact[key] = r.text(2, f"contact {key}")
        contact = _check_contact(contact, trim=False)
        message = _check_text("message", r.text(2, "message"), max_chars=MESSAGE_MAX, multiline=True)
    except InputError as exc:
        raise EnvelopeError(f"the sealed record is invalid: {exc.message}") from None
    if r.pos != len(r.data):
        raise EnvelopeError(f"the sealed record has {len(r.data) - r.pos} trailing bytes")
    content = PledgeContent.__new__(PledgeContent)  # as decoded: no trimming
    object.__setattr__(content, "name", name)
    object.__setattr__(content, "contact", contact)
    object.__setattr__(content, "message", message or None)
    return content


def encode_instructions(text: str) -> bytes:
    """``0x02 | UTF-8``; :class:`InputError` if the text is empty or too long."""
    _check_text("instructions", text, max_chars=INSTRUCTIONS_MAX, multiline=True)
    if not text.strip():
        raise InputError("the instructions are empty; write what the members should do once revealed")
    return b"\x02" + text.encode("utf-8")


def decode_instructions(payload: bytes) -> str:
    """Inverse of :func:`encode_instructions`, strictly."""
    if payload[:1] != b"\x02":
        raise EnvelopeError("the sealed record is not instructions (kind byte)")
    try:
        text = payload[1:].decode("utf-8")
        return _check_text("instructions", text, max_chars=INSTRUCTIONS_MAX, multiline=True)
    except UnicodeDecodeError:
        raise EnvelopeError("the sealed instructions are not UTF-8") from None
    except InputError as exc:
        raise EnvelopeError(f"the sealed instructions are invalid: {exc.message}") from None


def bucket_for(payload_len: int) -> int:
    """The padded size for a payload of ``payload_len`` bytes (InputError if too large)."""
    need = _LEN_PREFIX + payload_len
    for bucket in BUCKETS:
        if need <= bucket:
            return bucket
    raise InputError(
        f"the sealed record is {payload_len} bytes once encoded; the limit is {MAX_PAYLOAD_BYTES} "
        "bytes (UTF-8): shorten the message, instructions or contact fields"
    )


def pad(payload: bytes) -> bytes:
    """``len (2, BE) | payload | zeros`` up to :func:`bucket_for` ``(len(payload))``."""
    bucket = bucket_for(len(payload))
    return len(payload).to_bytes(_LEN_PREFIX, "big") + payload + bytes(bucket - _LEN_PREFIX - len(payload))


def unpad(padded: bytes) -> bytes:
    """Inverse of :func:`pad`; checks the size is a bucket and the padding is all zero."""
    if len(padded) not in BUCKETS:
        raise EnvelopeError(f"padded record of {len(padded)} bytes is not one of the buckets")
    n = int.from_bytes(padded[:_LEN_PREFIX], "big")
    end = _LEN_PREFIX + n
    if end > len(padded):
        raise EnvelopeError("padded record: the length prefix exceeds the bucket")
    if padded[end:].count(0) != len(padded) - end:
        raise EnvelopeError("padded record: the padding is not all zero")
    return padded[_LEN_PREFIX:end]


# ------------------------------------------------------------------------------------------ binding


@lru_cache(maxsize=64)
def _digest_cached(keepers: tuple[bytes, ...]) -> bytes:
    return bytes(keccak(b"".join(keepers)))


def keeper_set_digest(keepers: Sequence[bytes]) -> bytes:
    """``keccak256`` of the concatenated 64-byte keeper public keys, in order."""
    return _digest_cached(tuple(bytes(k) for k in keepers))


def address_bytes(address: str, what: str = "address") -> bytes:
    """The 20 bytes of an address given as ``0x`` + 40 hex digits."""
    text = address[2:] if isinstance(address, str) and address[:2] in ("0x", "0X") else None
    if text is None or len(text) != 40:
        raise InputError(f"{what} {address!r} is not 0x followed by 40 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{what} {address!r} is not 0x followed by 40 hex digits") from None


def campaign_bytes(campaign: str) -> bytes:
    """The 20 bytes of a campaign address given as ``0x`` + 40 hex digits."""
    return address_bytes(campaign, "campaign address")


def chain_id_bytes(chain_id: int) -> bytes:
    if type(chain_id) is not int or not 0 <= chain_id < 2**256:
        raise InputError(f"chain id {chain_id!r} is not an integer in [0, 2**256)")
    return chain_id.to_bytes(32, "big")


def check_context(ctx: CampaignContext) -> None:
    """Validate a campaign context for sealing: 1 <= t <= n <= 32, distinct valid keepers."""
    n, t = len(ctx.keepers), ctx.keeper_threshold
    if n == 0:
        raise InputError("the campaign names no keepers; at least one is needed")
    if n > MAX_KEEPERS:
        raise InputError(f"{n} keepers; the limit is {MAX_KEEPERS}")
    if type(t) is not int or not 1 <= t <= n:
        raise InputError(f"keeper threshold t={t!r} must be between 1 and the number of keepers ({n})")
    for i, key in enumerate(ctx.keepers):
        if not isinstance(key, bytes) or len(key) != 64:
            raise InputError(f"keeper #{i}'s public key must be 64 bytes (X||Y)")
        parse_public_key(key)  # on the curve?
    if len(set(ctx.keepers)) != n:
        raise InputError("the keeper set names the same key twice; each keeper must be distinct")
    campaign_bytes(ctx.campaign)
    chain_id_bytes(ctx.chain_id)


def binding(ctx: CampaignContext, role: int, member_key33: bytes, pledger: str) -> bytes:
    """The 144-byte associated data ``A`` (see the module docstring)."""
    if role not in (ROLE_PLEDGE, ROLE_INSTRUCTIONS):
        raise InputError(f"unknown role {role!r}")
    if not isinstance(member_key33, bytes | bytearray) or len(member_key33) != 33:
        raise InputError("the member key must be a 33-byte compressed secp256k1 public key")
    return b"".join(
        (
            _PREFIX,
            bytes((role,)),
            chain_id_bytes(ctx.chain_id),
            campaign_bytes(ctx.campaign),
            bytes(member_key33),
            address_bytes(pledger, "pledger address"),
            bytes((len(ctx.keepers), ctx.keeper_threshold)),
            keeper_set_digest(ctx.keepers),
        )
    )


def commitment(h: bytes, keeper_index: int, x: int, y: bytes) -> bytes:
    """``SHA-256(b"spartacus/v2 commit" ‖ h ‖ i ‖ x ‖ y)[:8]``."""
    return sha256(_COMMIT_LABEL + h + bytes((keeper_index, x)) + y)[:COMMITMENT_SIZE]


def _kek(z: bytes, h: bytes, keeper_index: int) -> bytes:
    return hkdf16(z, _WRAP_LABEL + h + bytes((keeper_index,)))


# ------------------------------------------------------------------------------------------ seal


@dataclass(frozen=True)
class Randomness:
    """Fixed randomness for :func:`seal` (known-answer vectors only): the content key and the
    Shamir shares (``y ‖ x``, one per keeper) of it."""

    content_key: bytes
    shares: tuple[bytes, ...]


def _seal(
    payload: bytes,
    role: int,
    ctx: CampaignContext,
    member: PrivateKeyLike,
    pledger: str,
    randomness: Randomness | None,
) -> bytes:
    check_context(ctx)
    secret = secret_of(member)
    member33 = member.compressed if isinstance(member, KeyPair) else KeyPair.from_secret(secret).compressed
    n, t = len(ctx.keepers), ctx.keeper_threshold
    aad = binding(ctx, role, member33, pledger)
    h = sha256(aad)
    if randomness is None:
        key = get_random_bytes(KEY_SIZE)
        shares = _shamir.split(key, n, t)
    else:
        key, shares = randomness.content_key, list(randomness.shares)
        if len(key) != KEY_SIZE or len(shares) != n or any(len(s) != SHARE_Y_SIZE + 1 for s in shares):
            raise InputError("fixed randomness must be a 16-byte key and one 17-byte share per keeper")
    body = gcm_seal(key, ZERO_NONCE, pad(payload), aad)
    slots = []
    for i, share in enumerate(shares):
        y, x = share[:SHARE_Y_SIZE], share[SHARE_Y_SIZE]
        z = ecdh(secret, b"\x04" + ctx.keepers[i])
        slots.append(bytes((x,)) + commitment(h, i, x, y) + kw_wrap(_kek(z, h, i), y))
    out = b"".join((_PREFIX, bytes((n, t)), body, *slots))
    if len(out) != envelope_size(n, len(body) - TAG_SIZE):  # pragma: no cover
        raise AssertionError("envelope size does not match the format")
    return out


def seal(
    content: PledgeContent,
    ctx: CampaignContext,
    member: PrivateKeyLike,
    *,
    pledger: str,
    randomness: Randomness | None = None,
) -> bytes:
    """Seal a member record for ``ctx``'s keepers with the pledge's member key (its secret is the
    envelope's ephemeral key), bound to ``pledger``, the address that will pledge it."""
    return _seal(encode_content(content), ROLE_PLEDGE, ctx, member, pledger, randomness)


def seal_instructions(
    text: str,
    ctx: CampaignContext,
    member: PrivateKeyLike,
    *,
    creator: str,
    randomness: Randomness | None = None,
) -> bytes:
    """Seal the organizer's instructions with its member key, bound to the campaign's creator."""
    return _seal(encode_instructions(text), ROLE_INSTRUCTIONS, ctx, member, creator, randomness)


# ------------------------------------------------------------------------------------------ parse


@dataclass(frozen=True)
class ParsedEnvelope:
    """The fields of an envelope's wire bytes (see the module docstring)."""

    n: int
    t: int
    body: bytes
    xs: tuple[int, ...]
    commitments: tuple[bytes, ...]
    wraps: tuple[bytes, ...]

    @property
    def bucket(self) -> int:
        """Padded payload size (the body minus its tag)."""
        return len(self.body) - TAG_SIZE

    @property
    def size(self) -> int:
        return envelope_size(self.n, self.bucket)


_BODY_LENGTHS: Final = frozenset(b + TAG_SIZE for b in BUCKETS)


def parse(envelope: bytes) -> ParsedEnvelope:
    """Split wire bytes into fields, strictly; any defect is an :class:`EnvelopeError`."""
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise EnvelopeError(f"an envelope is bytes, not {type(envelope).__name__}")
    data = bytes(envelope)
    if len(data) < HEADER_SIZE:
        raise EnvelopeError(f"envelope truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    if data[:3] != MAGIC:
        raise EnvelopeError("not a Spartacus envelope (bad magic bytes)")
    if data[3] != VERSION:
        raise EnvelopeError(f"envelope version {data[3]} is not supported; this program reads {VERSION}")
    n, t = data[4], data[5]
    if not 1 <= t <= n <= MAX_KEEPERS:
        raise EnvelopeError(f"envelope claims t={t} of n={n} keepers; need 1 <= t <= n <= {MAX_KEEPERS}")
    body_len = len(data) - HEADER_SIZE - n * KEEPER_SLOT_SIZE
    if body_len not in _BODY_LENGTHS:
        raise EnvelopeError(
            f"envelope of {len(data)} bytes for {n} keepers leaves a body of {body_len} bytes, "
            "which is not a bucket size plus the tag"
        )
    start = HEADER_SIZE + body_len
    slots = [data[start + i * KEEPER_SLOT_SIZE : start + (i + 1) * KEEPER_SLOT_SIZE] for i in range(n)]
    xs = tuple(s[0] for s in slots)
    if t > 1 and (0 in xs or len(set(xs)) != n):
        raise EnvelopeError("envelope's share coordinates are zero or repeated")
    return ParsedEnvelope(
        n=n,
        t=t,
        body=data[HEADER_SIZE:start],
        xs=xs,
        commitments=tuple(s[1 : 1 + COMMITMENT_SIZE] for s in slots),
        wraps=tuple(s[1 + COMMITMENT_SIZE :] for s in slots),
    )


def check_matches(parsed: ParsedEnvelope, ctx: CampaignContext) -> None:
    """The envelope was sealed for this campaign's ``t`` of ``n`` (the AAD checks the rest)."""
    if parsed.n != len(ctx.keepers) or parsed.t != ctx.keeper_threshold:
        raise EnvelopeError(
            f"envelope sealed for t={parsed.t} of n={parsed.n} keepers, but the campaign has "
            f"t={ctx.keeper_threshold} of n={len(ctx.keepers)}"
        )


# ------------------------------------------------------------------------------------------ open


def open_share(
    parsed: ParsedEnvelope,
    keeper_index: int,
    keeper_key: PrivateKeyLike,
    ctx: CampaignContext,
    *,
    member_key33: bytes,
    pledger: str,
    role: int = ROLE_PLEDGE,
) -> bytes:
    """Keeper side: unwrap keeper ``keeper_index``'s 16-byte ``y`` of ``parsed``, as it came with
    ``member_key33`` from ``pledger`` (the ``Pledged`` event), and check it against its commitment.

    Raises :class:`EnvelopeError` if the envelope was sealed for another ``t`` of ``n``,
    :class:`InputError` if ``keeper_key`` is not keeper ``keeper_index``'s key (a configuration
    mistake, not a bad pledge), and :class:`DecryptionError` if the wrap does not open: sealed for
    another pledger, campaign, chain or member key (a copy of someone's pledge: never to be
    released), or garbage; or if the share does not match the envelope's commitment.
    """
    check_matches(parsed, ctx)
    if type(keeper_index) is not int or not 0 <= keeper_index < parsed.n:
        raise InputError(f"keeper index {keeper_index!r} is out of range 0..{parsed.n - 1}")
    pair = keeper_key if isinstance(keeper_key, KeyPair) else KeyPair.from_secret(secret_of(keeper_key))
    if pair.public_key != ctx.keepers[keeper_index]:
        raise InputError(
            f"this key is not keeper #{keeper_index}'s key in the campaign's keeper set; "
            "check the key file and the keeper index"
        )
    try:
        aad = binding(ctx, role, bytes(member_key33), pledger)
        compress_public_key(bytes(member_key33))
    except (InputError, TypeError) as exc:
        raise DecryptionError("the pledge's member key or sender is malformed") from exc
    h = sha256(aad)
    z = ecdh(pair.secret_bytes(), bytes(member_key33))
    try:
        y = kw_unwrap(_kek(z, h, keeper_index), parsed.wraps[keeper_index])
    except DecryptionError:
        raise DecryptionError(
            "this envelope does not open for this keeper: sealed for another sender, member key or campaign "
            "(a copy of someone's pledge, never released), or garbage"
        ) from None
    x = parsed.xs[keeper_index]
    if not hmac.compare_digest(commitment(h, keeper_index, x, y), parsed.commitments[keeper_index]):
        raise DecryptionError(f"the share wrapped to keeper #{keeper_index} does not match its commitment")
    return y


def open_body(
    parsed: ParsedEnvelope,
    content_key: bytes,
    ctx: CampaignContext,
    member_key33: bytes,
    *,
    pledger: str,
    role: int = ROLE_PLEDGE,
) -> bytes:
    """Decrypt the body with a rebuilt content key; returns the record (unpadded, not decoded).

    :class:`DecryptionError` if it does not authenticate (the key is wrong: too few or bad shares;
    or the envelope belongs to another campaign, chain, member key or pledger)."""
    check_matches(parsed, ctx)
    aad = binding(ctx, role, bytes(member_key33), pledger)
    return unpad(gcm_open(content_key, ZERO_NONCE, parsed.body, aad))
