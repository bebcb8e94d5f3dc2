"""Format v2 releases: what a keeper publishes after the reveal, and how a member reads it back.

Each keeper ``k`` has, per campaign, two 16-byte keys derived from its own secret
(:func:`release_keys`; nothing to store, nothing lost with a state file):

* the **roster key** ``R`` (key id 0): granted to every member, to the relay service the
  campaign names, and to late joiners under the ``roster`` policy; every share is encrypted
  under it;
* the **late key** ``L`` (key id 1): granted to late joiners under the ``known`` policy; it
  opens the organizer's instructions and nothing else.

In ``members`` scope a keeper publishes, for a batch of pledges, the shares (encrypted under
``R``) and the grants of those same pledges **in the same transaction**. A member is therefore
granted by a keeper exactly when its own share is published by that keeper, at every point of
a release that spans many transactions: whoever can read a pledge is readable to it (P5). In
``public`` scope the shares are published in clear.

Release payload (the ``data`` of one ``Released`` event; integers big-endian)
-----------------------------------------------------------------------------
::

    payload   := b"SPR" 0x02 | record+
    record    := type (1) | length (2) | body (length bytes)
    index-set := first (4) | span (2, >= 1) | bitmap (ceil(span / 8))
                 bit 7 - b of bitmap byte q (most significant first) set <=> pledge first + 8q + b
                 is in the set; the first and the last (first + span - 1) are; later bits are zero

    type  name                 body
    0x01  GRANTS               key id (1) | E (33) | index-set | wrap (24) per pledge, ascending
    0x02  SHARES               key id (1) | index-set | nonce (12) | AES-128-GCM(key, nonce,
                               y (16) per pledge, ascending; aad = S) (16 m + 16)
    0x03  INSTRUCTIONS         key id (1) | nonce (12) | AES-128-GCM(key, nonce, y (16); aad = I) (32)
    0x04  RELAY                key id (1) | E (33) | wrap (24)
    0x05  PUBLIC_SHARES        index-set | y (16) per pledge, ascending
    0x06  PUBLIC_INSTRUCTIONS  y (16)

Here ``y`` is this keeper's 16-byte Shamir share value of a pledge's content key (its ``x`` and
its commitment are in the envelope, see :mod:`spartacus.envelope`), and, with ``C = chain id
(32) | campaign (20) | keeper index (1) | key id (1)``:

* ``S = b"spartacus/v2 shares" | C | index-set``, ``I = b"spartacus/v2 instructions" | C``;
* a wrap to a member of pledge ``j`` with member key ``M_j``: ``E`` is a fresh ephemeral key of
  the record (secret ``e``), ``KEK = HKDF-SHA256(e · M_j, "", b"spartacus/v2 grant" | C | E |
  M_j | j (4), 16)``, ``wrap = AES-KW(KEK, key)``;
* a wrap to the relay key ``Q``: ``KEK = HKDF-SHA256(e · Q, "", b"spartacus/v2 relay" | C | E |
  Q, 16)``.

Bytes per member in ``members`` scope: 24 (grant) + 16 (share) + a quarter byte of bitmaps,
plus 85 bytes per transaction (prefix, two record headers, ``E``, nonce and tag). A member needs,
per keeper, one grant for its own pledge; a wrong grant, a wrong key, garbage or nothing from a
keeper only costs that keeper's shares, and shares that do not match their commitments are set
aside (and the keeper named): any ``t`` honest keepers' releases open every live pledge (P9).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from Crypto.Random import get_random_bytes

from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus._primitives import (
    NONCE_SIZE,
    TAG_SIZE,
    WRAP_SIZE,
    ecdh,
    gcm_open,
    gcm_seal,
    hkdf16,
    kw_unwrap,
    kw_wrap,
)
from spartacus.envelope import SHARE_Y_SIZE, campaign_bytes, chain_id_bytes
from spartacus.keys import KeyPair, PrivateKeyLike, compress_public_key, secret_of
from spartacus.types import CampaignContext, ReleaseRecord, Scope

__all__ = [
    "RELEASE_MAGIC",
    "RELEASE_VERSION",
    "GRANTS",
    "SHARES",
    "INSTRUCTIONS",
    "RELAY",
    "PUBLIC_SHARES",
    "PUBLIC_INSTRUCTIONS",
    "ROSTER_KEY",
    "LATE_KEY",
    "RELAY_INDEX",
    "MIN_RELEASE_BYTES",
    "DEFAULT_MAX_BYTES",
    "PER_TRANSACTION_OVERHEAD",
    "Entry",
    "GrantsRecord",
    "SharesRecord",
    "InstructionsRecord",
    "RelayRecord",
    "PublicSharesRecord",
    "PublicInstructionsRecord",
    "Record",
    "ReleaseBuild",
    "ReleaseProblem",
    "Collected",
    "release_keys",
    "encode_index_set",
    "decode_index_set",
    "build_release",
    "parse_release",
    "published_by",
    "collect",
]

RELEASE_MAGIC: Final = b"SPR"
RELEASE_VERSION: Final = 2
_PREFIX: Final = RELEASE_MAGIC + bytes([RELEASE_VERSION])
GRANTS: Final = 0x01
SHARES: Final = 0x02
INSTRUCTIONS: Final = 0x03
RELAY: Final = 0x04
PUBLIC_SHARES: Final = 0x05
PUBLIC_INSTRUCTIONS: Final = 0x06
ROSTER_KEY: Final = 0
LATE_KEY: Final = 1
#: The pledge index a relay's grant stands for in the key derivation (never a real pledge).
RELAY_INDEX: Final = 0xFFFFFFFF
_HEADER: Final = 1 + 2
_SET_HEADER: Final = 4 + 2
_MAX_SPAN: Final = 0xFFFF
_MAX_INDEX: Final = 2**32 - 2
_EPHEMERAL: Final = 33
#: Prefix, both record headers, key ids, E, index-set headers, nonce and tag of one transaction.
PER_TRANSACTION_OVERHEAD: Final = (
    4 + (_HEADER + 1 + _EPHEMERAL + _SET_HEADER) + (_HEADER + 1 + _SET_HEADER) + (NONCE_SIZE + TAG_SIZE)
)
#: The smallest ``max_bytes`` that fits the one-time records, or one member with both grants.
MIN_RELEASE_BYTES: Final = 4 + (_HEADER + 1 + 12 + 32) + (_HEADER + 1 + 33 + 24) + 200
DEFAULT_MAX_BYTES: Final = 20_000

_GRANT_LABEL: Final = b"spartacus/v2 grant"
_RELAY_LABEL: Final = b"spartacus/v2 relay"
_SHARES_LABEL: Final = b"spartacus/v2 shares"
_INSTRUCTIONS_LABEL: Final = b"spartacus/v2 instructions"
_KEY_LABEL: Final = b"spartacus/v2 release key"


def _context(ctx: CampaignContext, keeper_index: int, key_id: int) -> bytes:
    return chain_id_bytes(ctx.chain_id) + campaign_bytes(ctx.campaign) + bytes((keeper_index, key_id))


def release_keys(keeper: PrivateKeyLike, ctx: CampaignContext, keeper_index: int) -> tuple[bytes, bytes]:
    """``(R, L)``: this keeper's roster and late keys for ``ctx``, derived from its secret with
    HKDF (a PRF: the keys say nothing of the secret), so a restart or a lost state file gets
    the same keys and never has to re-grant anything."""
    secret = secret_of(keeper)
    return tuple(  # type: ignore[return-value]
        hkdf16(secret, _KEY_LABEL + _context(ctx, keeper_index, key_id)) for key_id in (ROSTER_KEY, LATE_KEY)
    )


# ------------------------------------------------------------------------------------------ index sets


def encode_index_set(indices: Sequence[int]) -> bytes:
    """``first | span | bitmap`` of strictly ascending pledge indices (at most 65,535 apart)."""
    if not indices:
        raise InputError("an index set holds at least one pledge")
    first, last = indices[0], indices[-1]
    if any(b <= a for a, b in zip(indices, indices[1:], strict=False)):
        raise InputError("pledge indices of an index set must be strictly ascending")
    if not 0 <= first <= last <= _MAX_INDEX or last - first + 1 > _MAX_SPAN:
        raise InputError("an index set spans at most 65,535 pledges, each a uint32 below 2^32 - 1")
    span = last - first + 1
    bitmap = bytearray((span + 7) // 8)
    for i in indices:
        off = i - first
        bitmap[off >> 3] |= 0x80 >> (off & 7)
    return first.to_bytes(4, "big") + span.to_bytes(2, "big") + bytes(bitmap)


def decode_index_set(data: bytes, pos: int = 0) -> tuple[tuple[int, ...], int]:
    """``(indices, end)``: the canonical index set at ``data[pos:]``; :class:`EnvelopeError` else."""
    if len(data) - pos < _SET_HEADER:
        raise EnvelopeError("release: truncated index set")
    first = int.from_bytes(data[pos : pos + 4], "big")
    span = int.from_bytes(data[pos + 4 : pos + 6], "big")
    size = (span + 7) // 8
    end = pos + _SET_HEADER + size
    if span == 0 or end > len(data) or first + span - 1 > _MAX_INDEX:
        raise EnvelopeError("release: malformed index set")
    bitmap = data[pos + _SET_HEADER : end]
    out = []
    for q, byte in enumerate(bitmap):
        if byte:
            for b in range(8):
                if byte & (0x80 >> b):
                    out.append(first + 8 * q + b)
    if not out or out[0] != first or out[-1] != first + span - 1:
        raise EnvelopeError("release: index set not canonical (its first and last pledge must be in it)")
    return tuple(out), end


# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class GrantsRecord:
    key_id: int
    ephemeral: bytes
    indices: tuple[int, ...]
    wraps: tuple[bytes, ...]


@dataclass(frozen=True)
class SharesRecord:
    key_id: int
    indices: tuple[int, ...]
    index_set: bytes  # as on the wire (part of the AAD)
    nonce: bytes
    sealed: bytes


@dataclass(frozen=True)
class InstructionsRecord:
    key_id: int
    nonce: bytes
    sealed: bytes


@dataclass(frozen=True)
class RelayRecord:
    key_id: int
    ephemeral: bytes
    wrap: bytes


@dataclass(frozen=True)
class PublicSharesRecord:
    indices: tuple[int, ...]
    ys: tuple[bytes, ...]


@dataclass(frozen=True)
class PublicInstructionsRecord:
    y: bytes


Record = GrantsRecord | SharesRecord | InstructionsRecord | RelayRecord | PublicSharesRecord | PublicInstructionsRecord


def _key_id(byte: int) -> int:
    if byte not in (ROSTER_KEY, LATE_KEY):
        raise EnvelopeError(f"release: unknown key id {byte}")
    return byte


def _parse_record(rtype: int, body: bytes) -> Record:
    if rtype == GRANTS:
        if len(body) < 1 + _EPHEMERAL + _SET_HEADER:
            raise EnvelopeError("release: truncated GRANTS record")
        indices, end = decode_index_set(body, 1 + _EPHEMERAL)
        if len(body) - end != WRAP_SIZE * len(indices):
            raise EnvelopeError("release: GRANTS record holds the wrong number of wraps for its index set")
        wraps = tuple(body[end + WRAP_SIZE * i : end + WRAP_SIZE * (i + 1)] for i in range(len(indices)))
        return GrantsRecord(_key_id(body[0]), body[1 : 1 + _EPHEMERAL], indices, wraps)
    if rtype == SHARES:
        if len(body) < 1 + _SET_HEADER:
            raise EnvelopeError("release: truncated SHARES record")
        indices, end = decode_index_set(body, 1)
        if len(body) - end != NONCE_SIZE + SHARE_Y_SIZE * len(indices) + TAG_SIZE:
            raise EnvelopeError("release: SHARES record holds the wrong number of shares for its index set")
        return SharesRecord(
            _key_id(body[0]), indices, body[1:end], body[end : end + NONCE_SIZE], body[end + NONCE_SIZE :]
        )
    if rtype == INSTRUCTIONS:
        if len(body) != 1 + NONCE_SIZE + SHARE_Y_SIZE + TAG_SIZE:
            raise EnvelopeError("release: INSTRUCTIONS record of the wrong size")
        return InstructionsRecord(_key_id(body[0]), body[1 : 1 + NONCE_SIZE], body[1 + NONCE_SIZE :])
    if rtype == RELAY:
        if len(body) != 1 + _EPHEMERAL + WRAP_SIZE:
            raise EnvelopeError("release: RELAY record of the wrong size")
        return RelayRecord(_key_id(body[0]), body[1 : 1 + _EPHEMERAL], body[1 + _EPHEMERAL :])
    if rtype == PUBLIC_SHARES:
        indices, end = decode_index_set(body, 0)
        if len(body) - end != SHARE_Y_SIZE * len(indices):
            raise EnvelopeError("release: PUBLIC_SHARES record holds the wrong number of shares")
        ys = tuple(body[end + SHARE_Y_SIZE * i : end + SHARE_Y_SIZE * (i + 1)] for i in range(len(indices)))
        return PublicSharesRecord(indices, ys)
    if rtype == PUBLIC_INSTRUCTIONS:
        if len(body) != SHARE_Y_SIZE:
            raise EnvelopeError("release: PUBLIC_INSTRUCTIONS record of the wrong size")
        return PublicInstructionsRecord(body)
    raise EnvelopeError(f"release: unknown record type 0x{rtype:02x}")


def parse_release(data: bytes) -> tuple[Record, ...]:
    """Parse one payload strictly; any defect is an :class:`EnvelopeError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EnvelopeError(f"a release is bytes, not {type(data).__name__}")
    raw = bytes(data)
    if raw[:3] != RELEASE_MAGIC:
        raise EnvelopeError("not a Spartacus release (bad magic bytes)")
    if len(raw) < 4 or raw[3] != RELEASE_VERSION:
        version = raw[3] if len(raw) > 3 else None
        raise EnvelopeError(f"release version {version} is not supported; this program reads {RELEASE_VERSION}")
    records: list[Record] = []
    pos = len(_PREFIX)
    while pos < len(raw):
        if len(raw) - pos < _HEADER:
            raise EnvelopeError("release truncated inside a record header")
        rtype, length = raw[pos], int.from_bytes(raw[pos + 1 : pos + _HEADER], "big")
        start, end = pos + _HEADER, pos + _HEADER + length
        if end > len(raw):
            raise EnvelopeError(f"release truncated: a record announces {length} bytes, {len(raw) - start} left")
        records.append(_parse_record(rtype, raw[start:end]))
        pos = end
    if not records:
        raise EnvelopeError("release holds no record")
    return tuple(records)


# ------------------------------------------------------------------------------------------ keeper side


@dataclass(frozen=True)
class Entry:
    """One pledge this keeper releases: its share ``y``, and (``members`` scope) whom the same
    transaction grants: the pledge's member key, with the roster key or (a ``known`` late
    joiner) the late key."""

    index: int
    y: bytes
    member_key: bytes
    grant: int = ROSTER_KEY


@dataclass(frozen=True)
class ReleaseBuild:
    """The payloads to send (one ``release`` transaction each), and the pledges left out."""

    payloads: list[bytes]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (pledge index, reason)

    @property
    def total_bytes(self) -> int:
        return sum(len(p) for p in self.payloads)


def _record(rtype: int, body: bytes) -> bytes:
    return bytes((rtype,)) + len(body).to_bytes(2, "big") + body


def _grant_kek(z: bytes, context: bytes, ephemeral: bytes, member_key: bytes, index: int) -> bytes:
    return hkdf16(z, _GRANT_LABEL + context + ephemeral + member_key + index.to_bytes(4, "big"))


def _relay_kek(z: bytes, context: bytes, ephemeral: bytes, relay_key: bytes) -> bytes:
    return hkdf16(z, _RELAY_LABEL + context + ephemeral + relay_key)


class _Fixed:
    """Supplies fixed randomness in order (known-answer vectors); None: fresh randomness."""

    def __init__(self, values: Sequence[bytes] | None) -> None:
        self.values = list(values) if values is not None else None

    def take(self, size: int) -> bytes:
        if self.values is None:
            return get_random_bytes(size)
        if not self.values:
            raise InputError("the fixed randomness ran out")
        value = self.values.pop(0)
        if len(value) != size:
            raise InputError(f"fixed randomness: expected {size} bytes, got {len(value)}")
        return value

    def keypair(self) -> KeyPair:
        return KeyPair.generate() if self.values is None else KeyPair.from_secret(self.take(32))


def _is_member_key(key: object) -> bool:
    """A 33-byte compressed secp256k1 point: the form the reader derives its grant's KEK from."""
    if not isinstance(key, bytes) or len(key) != 33 or key[0] not in (2, 3):
        return False
    try:
        compress_public_key(key)
    except InputError:
        return False
    return True


def _grants(
    rng: _Fixed, key: bytes, key_id: int, context: bytes, entries: Sequence[Entry], skipped: list[tuple[int, str]]
) -> bytes | None:
    e = rng.keypair()
    indices, wraps = [], []
    for entry in entries:
        try:
            z = ecdh(e.secret_bytes(), entry.member_key)
        except InputError:
            skipped.append((entry.index, "member key is not a point on the secp256k1 curve"))
            continue
        indices.append(entry.index)
        wraps.append(kw_wrap(_grant_kek(z, context, e.compressed, entry.member_key, entry.index), key))
    if not indices:
        return None
    return _record(GRANTS, bytes((key_id,)) + e.compressed + encode_index_set(indices) + b"".join(wraps))


def _shares(rng: _Fixed, key: bytes, key_id: int, context: bytes, entries: Sequence[Entry]) -> bytes:
    index_set = encode_index_set([e.index for e in entries])
    nonce = rng.take(NONCE_SIZE)
    sealed = gcm_seal(key, nonce, b"".join(e.y for e in entries), _SHARES_LABEL + context + index_set)
    return _record(SHARES, bytes((key_id,)) + index_set + nonce + sealed)


def _instructions(rng: _Fixed, key: bytes, key_id: int, context: bytes, y: bytes) -> bytes:
    nonce = rng.take(NONCE_SIZE)
    return _record(INSTRUCTIONS, bytes((key_id,)) + nonce + gcm_seal(key, nonce, y, _INSTRUCTIONS_LABEL + context))


def _relay(rng: _Fixed, key: bytes, key_id: int, context: bytes, relay_key: bytes) -> bytes:
    e = rng.keypair()
    z = ecdh(e.secret_bytes(), relay_key)
    wrap = kw_wrap(_relay_kek(z, context, e.compressed, relay_key), key)
    return _record(RELAY, bytes((key_id,)) + e.compressed + wrap)


def _bitmap(first: int, last: int) -> int:
    return (last - first + 1 + 7) // 8


class _Batch:
    """The entries of one payload, with its exact size kept as entries are added."""

    def __init__(self, public: bool, fixed: int, late_pending: bool) -> None:
        self.public, self.fixed, self.late_pending = public, fixed, late_pending
        self.entries: list[Entry] = []

    def size_with(self, entry: Entry | None = None) -> int:
        entries = self.entries + ([entry] if entry is not None else [])
        size = self.fixed
        if not entries:
            return size
        first, last = entries[0].index, entries[-1].index
        if self.public:
            return size + _HEADER + _SET_HEADER + _bitmap(first, last) + SHARE_Y_SIZE * len(entries)
        size += _HEADER + 1 + _SET_HEADER + _bitmap(first, last) + NONCE_SIZE + SHARE_Y_SIZE * len(entries) + TAG_SIZE
        for key_id in (ROSTER_KEY, LATE_KEY):
            group = [e for e in entries if e.grant == key_id]
            if group:
                size += _HEADER + 1 + _EPHEMERAL + _SET_HEADER + _bitmap(group[0].index, group[-1].index)
                size += WRAP_SIZE * len(group)
        if self.late_pending and any(e.grant == LATE_KEY for e in entries):
            size += _HEADER + 1 + NONCE_SIZE + SHARE_Y_SIZE + TAG_SIZE
        return size

    def fits(self, entry: Entry, max_bytes: int) -> bool:
        if self.entries and entry.index - self.entries[0].index + 1 > _MAX_SPAN:
            return False
        return self.size_with(entry) <= max_bytes


def build_release(
    ctx: CampaignContext,
    keeper: PrivateKeyLike,
    keeper_index: int,
    entries: Sequence[Entry],
    *,
    instructions: bytes | None = None,
    late_instructions: bytes | None = None,
    relay_key: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    randomness: Sequence[bytes] | None = None,
) -> ReleaseBuild:
    """Keeper ``keeper_index``'s release payloads for ``entries`` (pledges not released before).

    * ``instructions``: this keeper's ``y`` of the sealed instructions, to publish under the
      roster key (``members``) or in clear (``public``); None when already published.
    * ``late_instructions``: the same ``y``, to publish under the late key with the first grant
      of it (``members`` scope, ``known`` late joiners); None when already published.
    * ``relay_key``: the campaign's relay key, to grant the roster key; None when already done.

    Every payload parses on its own, is at most ``max_bytes``, and carries each entry's share
    and grant together (P5). One-time records go into the first payload. ``randomness``
    (known-answer vectors only) supplies, in the order they are drawn, every ephemeral secret
    (32 bytes) and nonce (12 bytes): per payload, the one-time records' (instructions nonce,
    relay ephemeral), then the SHARES nonce, the roster-key GRANTS ephemeral, the late-key
    GRANTS ephemeral and the late INSTRUCTIONS nonce, each when present.
    """
    n = len(ctx.keepers)
    if type(keeper_index) is not int or not 0 <= keeper_index < n:
        raise InputError(f"keeper index {keeper_index!r} is out of range 0..{n - 1}")
    if type(max_bytes) is not int or max_bytes < MIN_RELEASE_BYTES:
        raise InputError(f"max_bytes={max_bytes!r} is too small; at least {MIN_RELEASE_BYTES} is needed")
    for entry in entries:
        if type(entry.index) is not int or not 0 <= entry.index <= _MAX_INDEX:
            raise InputError(f"pledge index {entry.index!r} is not a uint32 below 2^32 - 1")
        if not isinstance(entry.y, bytes) or len(entry.y) != SHARE_Y_SIZE:
            raise InputError(f"the share of pledge #{entry.index} is not 16 bytes")
    ordered = sorted(entries, key=lambda e: e.index)
    if len({e.index for e in ordered}) != len(ordered):
        raise InputError("a pledge appears twice among the entries")
    rng = _Fixed(randomness)
    roster_key, late_key = release_keys(keeper, ctx, keeper_index)
    ctx_r, ctx_l = _context(ctx, keeper_index, ROSTER_KEY), _context(ctx, keeper_index, LATE_KEY)
    public = ctx.scope is Scope.PUBLIC
    skipped: list[tuple[int, str]] = []
    if not public:  # a pledge that cannot be granted is left out entirely, its share too (P5)
        usable = []
        for entry in ordered:
            if _is_member_key(entry.member_key):
                usable.append(entry)
            else:
                skipped.append((entry.index, "member key is not a point on the secp256k1 curve"))
        ordered = usable

    once: list[bytes] = []
    if public:
        if instructions is not None:
            once.append(_record(PUBLIC_INSTRUCTIONS, instructions))
    else:
        if instructions is not None:
            once.append(_instructions(rng, roster_key, ROSTER_KEY, ctx_r, instructions))
        if relay_key is not None:
            once.append(_relay(rng, roster_key, ROSTER_KEY, ctx_r, relay_key))

    payloads: list[bytes] = []
    late_pending = late_instructions is not None and not public
    i = 0
    while i < len(ordered) or once:
        batch = _Batch(public, len(_PREFIX) + sum(len(r) for r in once), late_pending)
        while i < len(ordered) and batch.fits(ordered[i], max_bytes):
            batch.entries.append(ordered[i])
            i += 1
        if not batch.entries and not once:  # pragma: no cover - MIN_RELEASE_BYTES fits one entry
            raise InputError(f"max_bytes={max_bytes} cannot hold a single pledge")
        records, once = once, []
        take = batch.entries
        if take and public:
            index_set = encode_index_set([e.index for e in take])
            records.append(_record(PUBLIC_SHARES, index_set + b"".join(e.y for e in take)))
        elif take:
            records.append(_shares(rng, roster_key, ROSTER_KEY, ctx_r, take))
            for key, key_id, context in ((roster_key, ROSTER_KEY, ctx_r), (late_key, LATE_KEY, ctx_l)):
                group = [e for e in take if e.grant == key_id]
                grant = _grants(rng, key, key_id, context, group, skipped) if group else None
                if grant is not None:
                    records.append(grant)
            if late_pending and any(e.grant == LATE_KEY for e in take):
                assert late_instructions is not None
                records.append(_instructions(rng, late_key, LATE_KEY, ctx_l, late_instructions))
                late_pending = False
        payload = _PREFIX + b"".join(records)
        if len(payload) > max_bytes:  # pragma: no cover - _Batch counts exactly
            raise AssertionError(f"release payload of {len(payload)} bytes exceeds {max_bytes}")
        payloads.append(payload)
    return ReleaseBuild(payloads, skipped)


@dataclass
class Published:
    """What one keeper has already published for a campaign, read back from its releases."""

    shared: set[int] = field(default_factory=set)
    granted: dict[int, set[int]] = field(default_factory=lambda: {ROSTER_KEY: set(), LATE_KEY: set()})
    instructions: set[int] = field(default_factory=set)  # key ids (or -1: in clear)
    relay: bool = False


def published_by(releases: Iterable[ReleaseRecord], keeper_index: int, keeper_address: str) -> Published:
    """What keeper ``keeper_index`` (from ``keeper_address``) already published: index sets and
    record types are in clear, so a keeper resumes a release without publishing anything twice."""
    out = Published()
    for rel in releases:
        if rel.keeper_index != keeper_index or rel.keeper.lower() != keeper_address.lower():
            continue
        try:
            records = parse_release(rel.data)
        except EnvelopeError:
            continue
        for rec in records:
            if isinstance(rec, SharesRecord | PublicSharesRecord):
                out.shared.update(rec.indices)
            elif isinstance(rec, GrantsRecord):
                out.granted[rec.key_id].update(rec.indices)
            elif isinstance(rec, InstructionsRecord):
                out.instructions.add(rec.key_id)
            elif isinstance(rec, PublicInstructionsRecord):
                out.instructions.add(-1)
            elif isinstance(rec, RelayRecord):
                out.relay = True
    return out


# ------------------------------------------------------------------------------------------ member side


@dataclass(frozen=True)
class ReleaseProblem:
    """A release (or part of one) that was skipped, and why; ``keeper_index`` names the keeper."""

    keeper_index: int
    block_number: int
    log_index: int
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "keeper_index": self.keeper_index,
            "block_number": self.block_number,
            "log_index": self.log_index,
            "reason": self.reason,
        }


@dataclass
class Collected:
    """Every share value a reader obtained: ``shares[pledge][keeper]`` lists the candidate ``y``
    (a liar may publish several; the envelope's commitment picks), likewise ``instructions``."""

    shares: dict[int, dict[int, list[bytes]]] = field(default_factory=dict)
    instructions: dict[int, list[bytes]] = field(default_factory=dict)
    problems: list[ReleaseProblem] = field(default_factory=list)
    #: keepers whose key this reader could unwrap, per key id (members scope)
    granted_by: dict[int, set[int]] = field(default_factory=lambda: {ROSTER_KEY: set(), LATE_KEY: set()})
    saw_grants: bool = False


def _add(bucket: dict[int, list[bytes]], keeper: int, y: bytes) -> None:
    values = bucket.setdefault(keeper, [])
    if y not in values:
        values.append(y)


def collect(
    releases: Iterable[ReleaseRecord],
    ctx: CampaignContext,
    reader: PrivateKeyLike | None,
    *,
    member_index: int | None = None,
    relay: bool = False,
) -> Collected:
    """Gather every share value the reader can obtain from the keepers' releases.

    ``reader`` is the member key (with ``member_index``, its own pledge's index) or, with
    ``relay=True``, the relay service's key; None reads ``public`` scope only. Releases from a
    keeper index outside the keeper set, malformed ones, wrong grants and records that do not
    decrypt are skipped and listed in ``problems``, never fatal.
    """
    out = Collected()
    n = len(ctx.keepers)
    secret = secret_of(reader) if reader is not None else None
    reader_key = (
        (reader.compressed if isinstance(reader, KeyPair) else KeyPair.from_secret(secret).compressed)
        if secret is not None
        else None
    )
    by_keeper: dict[int, list[tuple[ReleaseRecord, tuple[Record, ...]]]] = {}
    for rel in sorted(releases, key=lambda r: (r.block_number, r.log_index)):
        if type(rel.keeper_index) is not int or not 0 <= rel.keeper_index < n:
            out.problems.append(
                ReleaseProblem(
                    rel.keeper_index,
                    rel.block_number,
                    rel.log_index,
                    f"keeper index {rel.keeper_index} is not in the campaign's keeper set (0..{n - 1})",
                )
            )
            continue
        try:
            records = parse_release(rel.data)
        except EnvelopeError as exc:
            out.problems.append(ReleaseProblem(rel.keeper_index, rel.block_number, rel.log_index, exc.message))
            continue
        by_keeper.setdefault(rel.keeper_index, []).append((rel, records))

    for k in sorted(by_keeper):
        items = by_keeper[k]
        keys: dict[int, list[bytes]] = {ROSTER_KEY: [], LATE_KEY: []}
        for rel, records in items:
            for rec in records:
                if isinstance(rec, PublicSharesRecord):
                    for index, y in zip(rec.indices, rec.ys, strict=True):
                        _add(out.shares.setdefault(index, {}), k, y)
                elif isinstance(rec, PublicInstructionsRecord):
                    _add(out.instructions, k, rec.y)
                elif secret is None or reader_key is None:
                    continue
                elif isinstance(rec, GrantsRecord) and not relay:
                    out.saw_grants = True
                    if member_index is None or member_index not in rec.indices:
                        continue
                    wrap = rec.wraps[rec.indices.index(member_index)]
                    key = _unwrap_grant(secret, reader_key, ctx, k, rec, member_index, wrap)
                    if key is None:
                        out.problems.append(
                            ReleaseProblem(k, rel.block_number, rel.log_index, f"keeper #{k}'s grant does not unwrap")
                        )
                    elif key not in keys[rec.key_id]:
                        keys[rec.key_id].append(key)
                elif isinstance(rec, RelayRecord) and relay:
                    out.saw_grants = True
                    context = _context(ctx, k, rec.key_id)
                    try:
                        z = ecdh(secret, rec.ephemeral)
                        key = kw_unwrap(_relay_kek(z, context, rec.ephemeral, reader_key), rec.wrap)
                    except (InputError, DecryptionError):
                        out.problems.append(
                            ReleaseProblem(
                                k, rel.block_number, rel.log_index, f"keeper #{k}'s relay grant does not unwrap"
                            )
                        )
                        continue
                    if key not in keys[rec.key_id]:
                        keys[rec.key_id].append(key)
        for key_id in (ROSTER_KEY, LATE_KEY):
            if keys[key_id]:
                out.granted_by[key_id].add(k)
        for rel, records in items:
            for rec in records:
                if isinstance(rec, SharesRecord):
                    if not keys[rec.key_id]:
                        continue
                    plain = _open_any(
                        keys[rec.key_id],
                        rec.nonce,
                        rec.sealed,
                        _SHARES_LABEL + _context(ctx, k, rec.key_id) + rec.index_set,
                    )
                    if plain is None:
                        out.problems.append(
                            ReleaseProblem(
                                k, rel.block_number, rel.log_index, f"a SHARES record of keeper #{k} does not decrypt"
                            )
                        )
                        continue
                    for j, index in enumerate(rec.indices):
                        _add(out.shares.setdefault(index, {}), k, plain[SHARE_Y_SIZE * j : SHARE_Y_SIZE * (j + 1)])
                elif isinstance(rec, InstructionsRecord):
                    if not keys[rec.key_id]:
                        continue
                    plain = _open_any(
                        keys[rec.key_id], rec.nonce, rec.sealed, _INSTRUCTIONS_LABEL + _context(ctx, k, rec.key_id)
                    )
                    if plain is None:
                        out.problems.append(
                            ReleaseProblem(
                                k,
                                rel.block_number,
                                rel.log_index,
                                f"keeper #{k}'s instructions record does not decrypt",
                            )
                        )
                        continue
                    _add(out.instructions, k, plain)
    return out


def _unwrap_grant(
    secret: bytes, reader_key: bytes, ctx: CampaignContext, k: int, rec: GrantsRecord, index: int, wrap: bytes
) -> bytes | None:
    try:
        z = ecdh(secret, rec.ephemeral)
        return kw_unwrap(_grant_kek(z, _context(ctx, k, rec.key_id), rec.ephemeral, reader_key, index), wrap)
    except (InputError, DecryptionError):
        return None


def _open_any(keys: Sequence[bytes], nonce: bytes, sealed: bytes, aad: bytes) -> bytes | None:
    for key in keys:
        try:
            return gcm_open(key, nonce, sealed, aad)
        except DecryptionError:
            continue
    return None
