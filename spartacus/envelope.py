"""The sealed pledge: a versioned, canonical, fixed-bucket envelope.

A pledger's client seals its record (:class:`PledgeContent`) so that no single
party can read it before the reveal: the record is encrypted under a fresh
content key ``k``, ``k`` is split ``t``-of-``n`` with Shamir's scheme, and
share ``i`` is ECIES-wrapped to keeper ``i``. Fewer than ``t`` keepers learn
nothing; after the reveal ``t`` keepers publish their shares (see
:mod:`spartacus.release`) and members recombine ``k``.

Payload (plaintext)
-------------------
Canonical JSON of the record, UTF-8, ``sort_keys=True``,
``separators=(",", ":")``, ``ensure_ascii=False``::

    {"contact":{"email":"a@b.org"},"message":"...","name":"Ana","v":1}

``message`` and ``instructions`` are omitted when absent. Decoding is strict:
the bytes must be exactly the canonical encoding of a valid record.

Padding (so the ciphertext length leaks only the bucket)::

    len(payload) (4, big-endian) | payload | 0x00 ... up to the bucket size

The bucket is the smallest of :data:`BUCKETS` (512, 1024, 2048, 4096, 8192,
16384 bytes) holding ``4 + len(payload)``; the largest payload is therefore
16,380 bytes.

Encryption
----------
* ``k``: 32 random bytes; ``nonce``: 12 random bytes;
* ``body = AES-256-GCM(k, nonce, padded, aad=header)``: ciphertext (bucket
  bytes) followed by the 16-byte tag;
* ``header`` (the AAD, 143 bytes, never sent as such)::

      b"SPX" | 0x01                   4   magic and version
      chain id                        32  big-endian
      campaign address                20
      member public key               33  compressed; travels beside the envelope
      n                               1   keepers
      t                               1   keeper threshold
      keccak256(K1 || ... || Kn)      32  keeper-set digest, 64-byte keys in order
      pledger address                 20  the account that sends the pledge

* ``k`` is split as two 16-byte halves with pycryptodome's
  ``Shamir.split(t, n, half)`` (GF(2^128)); keeper ``i`` (0-based) gets the
  33-byte share ``(i+1) (1) | share of k[:16] (16) | share of k[16:] (16)``;
  what is wrapped to the keeper with ECIES (:func:`spartacus.keys.wrap`) is the
  share followed by a 16-byte *binding*, ``keccak256(header)[:16]``:
  49 + 97 = 146 bytes. A keeper releases a share only if the binding matches
  the ``Pledged`` event it came in (chain, campaign, member key, sender), so a
  copy of someone's envelope sent from another account (to get a withdrawn
  pledge revealed after all) is never released: its content key is never
  rebuilt.

Wire format (the ``envelope`` bytes sent to ``Campaign.pledge``)
-----------------------------------------------------------------
::

    offset  size       field
    0       4          b"SPX" | 0x01
    4       1          n               1 <= t <= n <= 32
    5       1          t
    6       32         keeper-set digest
    38      12         nonce
    50      2          L = len(body), big-endian; L - 16 must be a bucket
    52      L          body (ciphertext | tag)
    52+L    146 * n    wrapped shares, keeper 0 first

Size: ``52 + bucket + 16 + 146 n``. A typical pledge (name, e-mail, a short
message: < 508 bytes of JSON) with 3 keepers is ``52 + 528 + 438 = 1,018``
bytes. The largest possible envelope (bucket 16384, n = 32) is
``52 + 16400 + 4672 = 21,124`` bytes, under the contract's 24,576-byte cap, so
all six buckets are kept.

Chain id, campaign, member key and sender are not in the wire bytes (the reader
knows them from the campaign and the ``Pledged`` event) but are authenticated
through the AAD and the keepers' binding: an envelope copied to another
campaign, chain, member key or sender does not open.
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from Crypto.Cipher import AES
from Crypto.Protocol import SecretSharing
from Crypto.Protocol.SecretSharing import Shamir
from Crypto.Random import get_random_bytes
from eth_utils.crypto import keccak

from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus.keys import (
    KeyPair,
    PrivateKeyLike,
    compress_public_key,
    parse_public_key,
    public_key_64,
    unwrap,
    wrap,
    wrapped_size,
)
from spartacus.types import CampaignContext

__all__ = [
    "MAGIC",
    "VERSION",
    "BUCKETS",
    "MAX_PAYLOAD_BYTES",
    "MAX_KEEPERS",
    "SHARE_SIZE",
    "WRAPPED_SHARE_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
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
    "encode_content",
    "decode_content",
    "pad",
    "unpad",
    "bucket_for",
    "envelope_size",
    "keeper_set_digest",
    "address_bytes",
    "campaign_bytes",
    "header_aad",
    "check_context",
    "seal",
    "parse",
    "open_share",
    "share_index",
    "open_with_shares",
    "MAX_COMBINE_ATTEMPTS",
]

MAGIC: Final = b"SPX"
VERSION: Final = 1
_MAGIC_VERSION: Final = MAGIC + bytes([VERSION])
BUCKETS: Final[tuple[int, ...]] = (512, 1024, 2048, 4096, 8192, 16384)
_LEN_PREFIX: Final = 4
MAX_PAYLOAD_BYTES: Final = BUCKETS[-1] - _LEN_PREFIX
MAX_KEEPERS: Final = 32
SHARE_SIZE: Final = 1 + 16 + 16
BINDING_SIZE: Final = 16
WRAPPED_SHARE_SIZE: Final = wrapped_size(SHARE_SIZE + BINDING_SIZE)  # 146
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
KEY_SIZE: Final = 32
HEADER_SIZE: Final = 4 + 1 + 1 + 32 + NONCE_SIZE + 2  # 52
AAD_SIZE: Final = 4 + 32 + 20 + 33 + 1 + 1 + 32 + 20  # 143
#: The ``Campaign`` contract refuses longer envelopes.
CONTRACT_ENVELOPE_CAP: Final = 24_576


def envelope_size(n: int, bucket: int) -> int:
    """Wire size of an envelope for ``n`` keepers and a padded payload of ``bucket`` bytes."""
    return HEADER_SIZE + bucket + TAG_SIZE + n * WRAPPED_SHARE_SIZE


#: The largest envelope this module can produce (bucket 16384, n = 32): 21,124 bytes.
MAX_ENVELOPE_BYTES: Final = envelope_size(MAX_KEEPERS, BUCKETS[-1])
assert MAX_ENVELOPE_BYTES <= CONTRACT_ENVELOPE_CAP, "the largest bucket no longer fits the contract"
assert WRAPPED_SHARE_SIZE == 146

# ------------------------------------------------------------------------------------------ payload

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


@dataclass(frozen=True)
class PledgeContent:
    """What a pledger reveals to the other members.

    * ``name``: display identity, 1..200 characters (surrounding blanks removed);
    * ``contact``: up to 16 fields ``key -> value``; keys match
      ``^[a-z][a-z0-9_-]{0,31}$``; values 1..320 characters (blanks trimmed);
      ``email`` must look like an address (the relay writes to it);
    * ``message``: optional, up to 2,000 characters;
    * ``instructions``: optional, up to 12,000 characters; only the organizer's
      (creator's) are ever shown, anyone else's are ignored by the roster.

    Invalid values raise :class:`InputError` at construction.
    """

    name: str
    contact: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    instructions: str | None = None

    def __post_init__(self) -> None:
        name = _check_text("name", self.name, max_chars=10 * NAME_MAX, multiline=False).strip()
        if not name:
            raise InputError("name is empty; give the name the other members will know you by")
        if len(name) > NAME_MAX:
            raise InputError(f"name is {len(name)} characters; the limit is {NAME_MAX}")
        object.__setattr__(self, "name", name)

        if not isinstance(self.contact, Mapping):
            raise InputError("contact must be a mapping of field name to value")
        if len(self.contact) > CONTACT_MAX_FIELDS:
            raise InputError(f"{len(self.contact)} contact fields; the limit is {CONTACT_MAX_FIELDS}")
        contact: dict[str, str] = {}
        for key, raw in self.contact.items():
            if not isinstance(key, str) or not _CONTACT_KEY_RE.fullmatch(key):
                raise InputError(
                    f"contact field name {key!r} is invalid: use 1-32 of a-z, 0-9, _ and -, "
                    "starting with a letter (e.g. email, signal, phone)"
                )
            value = _check_text(f"contact {key}", raw, max_chars=10 * CONTACT_VALUE_MAX, multiline=False).strip()
            if not value:
                raise InputError(f"contact {key} is empty; drop the field or give a value")
            if len(value) > CONTACT_VALUE_MAX:
                raise InputError(f"contact {key} is {len(value)} characters; the limit is {CONTACT_VALUE_MAX}")
            if key == "email" and not _EMAIL_RE.fullmatch(value):
                raise InputError(f"contact email {value!r} does not look like an e-mail address")
            contact[key] = value
        object.__setattr__(self, "contact", contact)

        if self.message is not None:
            _check_text("message", self.message, max_chars=MESSAGE_MAX, multiline=True)
        if self.instructions is not None:
            _check_text("instructions", self.instructions, max_chars=INSTRUCTIONS_MAX, multiline=True)


def encode_content(content: PledgeContent) -> bytes:
    """Canonical UTF-8 JSON of a record (see the module docstring)."""
    doc: dict[str, Any] = {"v": VERSION, "name": content.name, "contact": dict(content.contact)}
    if content.message is not None:
        doc["message"] = content.message
    if content.instructions is not None:
        doc["instructions"] = content.instructions
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_PAYLOAD_KEYS: Final = frozenset({"v", "name", "contact", "message", "instructions"})


_MAX_DEPTH: Final = 2  # {"contact": {...}}: nothing deeper is valid


def _nesting_within(payload: bytes, limit: int) -> bool:
    """True if JSON arrays/objects nest at most ``limit`` deep (strings skipped).

    Checked before ``json.loads``: its C scanner recurses once per level, and a
    sealed record of 100,000 ``[`` would otherwise overflow the C stack and kill
    every roster reader with a segfault (a pledger could stop the reveal).
    """
    depth, in_string, escaped = 0, False, False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return True


def decode_content(payload: bytes) -> PledgeContent:
    """Parse a canonical payload; anything else is an :class:`EnvelopeError`."""
    if not _nesting_within(payload, _MAX_DEPTH):
        raise EnvelopeError("the sealed record nests deeper than a pledge record can")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError("the sealed record is not UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("the sealed record is not a JSON object")
    unknown = set(doc) - _PAYLOAD_KEYS
    if unknown or not {"v", "name", "contact"} <= set(doc):
        raise EnvelopeError("the sealed record has missing or unknown fields")
    if type(doc["v"]) is not int or doc["v"] != VERSION:
        raise EnvelopeError(f"unsupported record version; this program reads version {VERSION}")
    if not isinstance(doc["contact"], dict) or any(not isinstance(v, str) for v in doc["contact"].values()):
        raise EnvelopeError("the sealed record's contact is not a map of text")
    for opt in ("message", "instructions"):
        if opt in doc and not isinstance(doc[opt], str):
            raise EnvelopeError(f"the sealed record's {opt} is not text")
    try:
        content = PledgeContent(
            name=doc["name"],
            contact=doc["contact"],
            message=doc.get("message"),
            instructions=doc.get("instructions"),
        )
    except InputError as exc:
        raise EnvelopeError(f"the sealed record is invalid: {exc.message}") from None
    try:
        canonical = encode_content(content)
    except UnicodeEncodeError:  # pragma: no cover - _check_text already refuses these
        raise EnvelopeError("the sealed record is not valid Unicode") from None
    if canonical != payload:
        raise EnvelopeError("the sealed record is not in canonical form")
    return content


def bucket_for(payload_len: int) -> int:
    """The padded size for a payload of ``payload_len`` bytes (InputError if too large)."""
    need = _LEN_PREFIX + payload_len
    for bucket in BUCKETS:
        if need <= bucket:
            return bucket
    raise InputError(
        f"the pledge record is {payload_len} bytes once encoded; the limit is {MAX_PAYLOAD_BYTES} "
        "bytes (UTF-8): shorten the message, instructions or contact fields"
    )


def pad(payload: bytes) -> bytes:
    """``len (4, BE) | payload | zeros`` up to :func:`bucket_for` ``(len(payload))``."""
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


# ------------------------------------------------------------------------------------------ context


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


def _chain_id_bytes(chain_id: int) -> bytes:
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
    _chain_id_bytes(ctx.chain_id)


def header_aad(ctx: CampaignContext, member_key33: bytes, n: int, t: int, digest: bytes, pledger: str) -> bytes:
    """The 143-byte header authenticated (not sent) with the body; see the module docstring."""
    return b"".join(
        (
            _MAGIC_VERSION,
            _chain_id_bytes(ctx.chain_id),
            campaign_bytes(ctx.campaign),
            bytes(member_key33),
            bytes((n, t)),
            digest,
            address_bytes(pledger, "pledger address"),
        )
    )


def _binding(aad: bytes) -> bytes:
    return keccak(aad)[:BINDING_SIZE]


# ------------------------------------------------------------------------------------------ seal


def seal(content: PledgeContent, ctx: CampaignContext, member_key33: bytes, *, pledger: str) -> bytes:
    """Seal a record for ``ctx``'s keepers, bound to the member key and to ``pledger``, the
    account that will send it; returns the wire bytes."""
    check_context(ctx)
    if not isinstance(member_key33, bytes) or len(member_key33) != 33:
        raise InputError("the member key must be a 33-byte compressed secp256k1 public key")
    compress_public_key(member_key33)  # on the curve?
    keepers = tuple(ctx.keepers)
    n, t = len(keepers), ctx.keeper_threshold
    digest = keeper_set_digest(keepers)
    padded = pad(encode_content(content))

    key = get_random_bytes(KEY_SIZE)
    nonce = get_random_bytes(NONCE_SIZE)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
    aad = header_aad(ctx, member_key33, n, t, digest, pledger)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(padded)
    body = ciphertext + tag

    low = Shamir.split(t, n, key[:16], False)
    high = Shamir.split(t, n, key[16:], False)
    wrapped: list[bytes] = []
    for i in range(n):
        (x_lo, y_lo), (x_hi, y_hi) = low[i], high[i]
        if not x_lo == x_hi == i + 1:  # pragma: no cover - pycryptodome numbers shares 1..n
            raise AssertionError("unexpected Shamir share numbering")
        wrapped.append(wrap(keepers[i], bytes((i + 1,)) + y_lo + y_hi + _binding(aad)))

    out = b"".join((_MAGIC_VERSION, bytes((n, t)), digest, nonce, len(body).to_bytes(2, "big"), body, *wrapped))
    if len(out) != envelope_size(n, len(padded)):  # pragma: no cover
        raise AssertionError("envelope size does not match the format")
    return out


# ------------------------------------------------------------------------------------------ parse


@dataclass(frozen=True)
class ParsedEnvelope:
    """The fields of an envelope's wire bytes (see the module docstring)."""

    version: int
    n: int
    t: int
    keeper_digest: bytes
    nonce: bytes
    body: bytes
    wrapped_shares: tuple[bytes, ...]

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
    body_len = int.from_bytes(data[50:52], "big")
    if body_len not in _BODY_LENGTHS:
        raise EnvelopeError(f"envelope body of {body_len} bytes is not a bucket size plus the tag")
    expected = HEADER_SIZE + body_len + n * WRAPPED_SHARE_SIZE
    if len(data) < expected:
        raise EnvelopeError(f"envelope truncated: {len(data)} bytes, its header announces {expected}")
    if len(data) > expected:
        raise EnvelopeError(f"envelope has {len(data) - expected} trailing bytes after {expected}")
    start = HEADER_SIZE + body_len
    return ParsedEnvelope(
        version=data[3],
        n=n,
        t=t,
        keeper_digest=data[6:38],
        nonce=data[38:50],
        body=data[HEADER_SIZE:start],
        wrapped_shares=tuple(
            data[start + i * WRAPPED_SHARE_SIZE : start + (i + 1) * WRAPPED_SHARE_SIZE] for i in range(n)
        ),
    )


def _check_matches(parsed: ParsedEnvelope, ctx: CampaignContext) -> None:
    if parsed.n != len(ctx.keepers) or parsed.t != ctx.keeper_threshold:
        raise EnvelopeError(
            f"envelope sealed for t={parsed.t} of n={parsed.n} keepers, but the campaign has "
            f"t={ctx.keeper_threshold} of n={len(ctx.keepers)}"
        )
    if parsed.keeper_digest != keeper_set_digest(ctx.keepers):
        raise EnvelopeError("envelope sealed for a different keeper set than the campaign's")


# ------------------------------------------------------------------------------------------ open


def share_index(share: bytes) -> int:
    """The Shamir index (1..n) a 33-byte share carries in its first byte."""
    return share[0]


def open_share(
    parsed: ParsedEnvelope,
    keeper_index: int,
    keeper_privkey: PrivateKeyLike,
    ctx: CampaignContext,
    *,
    member_key33: bytes,
    pledger: str,
) -> bytes:
    """Keeper side: unwrap keeper ``keeper_index``'s 33-byte share of ``parsed``, as it came in
    the ``Pledged`` event with ``member_key33`` from ``pledger``.

    Raises :class:`EnvelopeError` if the envelope was sealed for another
    keeper set, :class:`InputError` if ``keeper_privkey`` is not keeper
    ``keeper_index``'s key (a configuration mistake, not a bad pledge), and
    :class:`DecryptionError` if the wrapped share does not open, carries
    another keeper's index, or was sealed for another sender or member key
    (a copy of someone else's pledge: never to be released).
    """
    _check_matches(parsed, ctx)
    if type(keeper_index) is not int or not 0 <= keeper_index < parsed.n:
        raise InputError(f"keeper index {keeper_index!r} is out of range 0..{parsed.n - 1}")
    own = keeper_privkey.public_key if isinstance(keeper_privkey, KeyPair) else public_key_64(keeper_privkey)
    if own != ctx.keepers[keeper_index]:
        raise InputError(
            f"this key is not keeper #{keeper_index}'s key in the campaign's keeper set; "
            "check the key file and the keeper index"
        )
    plain = unwrap(keeper_privkey, parsed.wrapped_shares[keeper_index])
    share, binding = plain[:SHARE_SIZE], plain[SHARE_SIZE:]
    if len(plain) != SHARE_SIZE + BINDING_SIZE or share[0] != keeper_index + 1:
        raise DecryptionError(f"the share wrapped to keeper #{keeper_index} is not its share")
    try:
        aad = header_aad(ctx, member_key33, parsed.n, parsed.t, parsed.keeper_digest, pledger)
    except (InputError, ValueError, TypeError) as exc:
        raise DecryptionError("the pledge's member key or sender is malformed") from exc
    if len(bytes(member_key33)) != 33 or not hmac.compare_digest(binding, _binding(aad)):
        raise DecryptionError(
            "this envelope was sealed for another sender or member key: a copy of someone's pledge, never released"
        )
    return share


#: pycryptodome's GF(2^128) element, the arithmetic behind its ``Shamir`` (typed loosely: no stubs).
_Element: Any = SecretSharing._Element
_IRREDUCIBLE: Final = 1 + 2 + 4 + 128 + 2**128  # x^128 + x^7 + x^2 + x + 1, as pycryptodome's


class _TimesConstant:
    """Multiplication by one fixed element of pycryptodome's GF(2^128), by table lookup.

    Multiplying by a constant is linear over GF(2), so ``c * y`` is the XOR of ``c * (byte k of
    y, in place)`` over y's 16 bytes: 16 lookups in tables built once (4,096 entries) instead of
    pycryptodome's 128-step loop (250 us a product). Lookups depend on ``y``, so this is not
    constant-time: it only ever handles shares that keepers published to every member.
    """

    def __init__(self, constant: int) -> None:
        powers = [constant]  # constant * x^i for i in 0..127
        for _ in range(127):
            v = powers[-1] << 1
            powers.append(v ^ _IRREDUCIBLE if v >> 128 else v)
        self.tables: list[list[int]] = []
        for k in range(16):
            table = [0] * 256
            for v in range(1, 256):
                low = v & -v
                table[v] = table[v ^ low] ^ powers[8 * k + low.bit_length() - 1]
            self.tables.append(table)

    def __call__(self, y: int) -> int:
        out = 0
        for table in self.tables:
            out ^= table[y & 0xFF]
            y >>= 8
        return out


@lru_cache(maxsize=256)
def _lagrange_at_zero(xs: tuple[int, ...]) -> tuple[_TimesConstant, ...]:
    """Multipliers by the Lagrange coefficients at x = 0 for the share indices ``xs``.

    They depend only on which keepers' shares are combined, so a member reading N pledges
    released by the same ``t`` keepers computes them (and their costly inverses) once, not N
    times as ``Shamir.combine`` does. Addition is XOR in GF(2^n): ``x_j - x_m`` is ``x_j + x_m``.
    """
    elements = [_Element(x) for x in xs]
    multipliers = []
    for j, x_j in enumerate(elements):
        numerator, denominator = _Element(1), _Element(1)
        for m, x_m in enumerate(elements):
            if m != j:
                numerator *= x_m
                denominator *= x_j + x_m
        multipliers.append(_TimesConstant(int(numerator * denominator.inverse())))
    return tuple(multipliers)


def combine_key(shares: Sequence[bytes]) -> bytes:
    """The 32-byte content key from ``t`` 33-byte shares with distinct indices: the same result
    as ``Shamir.combine`` on each 16-byte half (checked by the tests), about 50 times faster."""
    xs = tuple(share[0] for share in shares)
    if len(set(xs)) != len(xs):
        raise DecryptionError("duplicate share indices")
    multipliers = _lagrange_at_zero(xs)
    key = b""
    for lo, hi in ((1, 17), (17, 33)):
        total = 0
        for share, times in zip(shares, multipliers, strict=True):
            total ^= times(int.from_bytes(share[lo:hi], "big"))
        key += total.to_bytes(16, "big")
    return key


#: At most this many share combinations are tried when some shares are bad.
MAX_COMBINE_ATTEMPTS: Final = 64


def _candidate_sets(by_index: Mapping[int, Sequence[bytes]], t: int) -> Iterable[tuple[bytes, ...]]:
    for indices in itertools.combinations(sorted(by_index), t):
        yield from itertools.product(*(by_index[i] for i in indices))


def open_with_shares(
    parsed: ParsedEnvelope, shares: Iterable[bytes], ctx: CampaignContext, member_key33: bytes, *, pledger: str
) -> PledgeContent:
    """Member side: recombine ``k`` from ``t`` shares and decrypt the record.

    ``shares`` are 33-byte shares (index byte first) in any order; malformed
    ones and exact duplicates are ignored. With more than ``t`` shares, other
    subsets are tried (up to :data:`MAX_COMBINE_ATTEMPTS`) so one bad share
    cannot block the others. Raises :class:`DecryptionError` with fewer than
    ``t`` distinct indices (``"need t shares, got k"``) or when no subset
    authenticates (wrong chain, campaign or member key; altered bytes), and
    :class:`EnvelopeError` if the sealed record itself is malformed.
    """
    _check_matches(parsed, ctx)
    by_index: dict[int, list[bytes]] = {}
    for share in shares:
        if isinstance(share, bytes | bytearray) and len(share) == SHARE_SIZE and 1 <= share[0] <= parsed.n:
            values = by_index.setdefault(share[0], [])
            if bytes(share) not in values:
                values.append(bytes(share))
    if len(by_index) < parsed.t:
        raise DecryptionError(f"need {parsed.t} shares, got {len(by_index)}")
    if not isinstance(member_key33, bytes | bytearray) or len(member_key33) != 33:
        raise DecryptionError("the member key is not a 33-byte compressed public key")
    aad = header_aad(ctx, bytes(member_key33), parsed.n, parsed.t, parsed.keeper_digest, pledger)
    for candidate in itertools.islice(_candidate_sets(by_index, parsed.t), MAX_COMBINE_ATTEMPTS):
        key = combine_key(candidate)
        cipher = AES.new(key, AES.MODE_GCM, nonce=parsed.nonce, mac_len=TAG_SIZE)
        cipher.update(aad)
        try:
            padded = cipher.decrypt_and_verify(parsed.body[:-TAG_SIZE], parsed.body[-TAG_SIZE:])
        except ValueError:
            continue
        return decode_content(unpad(padded))
    raise DecryptionError(
        "the shares do not open this envelope: wrong chain, campaign, member key or sender, or bad shares"
    )
