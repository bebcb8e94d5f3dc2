"""What a keeper publishes after the reveal, and how a member reads it back.

Each keeper ``k`` keeps, per campaign, one random 32-byte **release key**
``R_k`` (:func:`new_release_key`; the caller persists it so that later
releases of the same campaign reuse it). In ``members`` scope the keeper
publishes its shares encrypted under ``R_k`` and wraps ``R_k`` to every live
member's key ``M`` (broadcast encryption: O(N) bytes, one ECIES per member).
In ``public`` scope it publishes the shares in clear.

Transaction payload (the ``data`` of one ``Released`` event)
-------------------------------------------------------------
::

    payload := b"SPR" | 0x01 | record record ...        (at least one record)
    record  := type (1) | length (4, big-endian) | body (length bytes)

Record types (all integers big-endian; ``pledge_index`` is a uint32)::

    0x01 GRANT          body = entry*, entry = pledge_index (4) | ECIES(M, R_k) (32 + 97 = 129)
                        133 bytes per member; only members not granted before
    0x02 SHARES         body = nonce (12) | AES-256-GCM(R_k, nonce, entries, aad) (37 m) | tag (16)
                        entries = (pledge_index (4) | share (33))*
                        aad = chain id (32) | campaign (20) | keeper index (1) | b"shares"
    0x03 PUBLIC_SHARES  body = (pledge_index (4) | share (33))*          (public scope)

A share is the 33-byte Shamir share of :mod:`spartacus.envelope` (its first
byte is ``keeper_index + 1``). Every payload is self-contained: it parses on
its own and each record in it is complete; a member needs, per keeper, one
GRANT entry for its own pledge (in any payload of that keeper) to decrypt all
of that keeper's SHARES records. The AAD binds a SHARES record to the chain,
the campaign and the keeper index, so records cannot be replayed elsewhere or
attributed to another keeper.

Bytes on-chain per pledge and keeper: 133 (grant) + 37 (share) = 170 in
``members`` scope, 37 in ``public`` scope, plus 5 bytes per record, 28 more per
SHARES record and 4 per payload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from spartacus._exceptions import DecryptionError, EnvelopeError, InputError
from spartacus.envelope import NONCE_SIZE, SHARE_SIZE, TAG_SIZE, campaign_bytes
from spartacus.keys import PrivateKeyLike, unwrap, wrap, wrapped_size
from spartacus.types import CampaignContext, ReleaseRecord, Scope

__all__ = [
    "RELEASE_MAGIC",
    "RELEASE_VERSION",
    "GRANT",
    "SHARES",
    "PUBLIC_SHARES",
    "RELEASE_KEY_SIZE",
    "GRANT_ENTRY_SIZE",
    "SHARE_ENTRY_SIZE",
    "MIN_RELEASE_BYTES",
    "DEFAULT_MAX_BYTES",
    "GrantRecord",
    "SharesRecord",
    "PublicSharesRecord",
    "Record",
    "ReleaseBuild",
    "ReleaseProblem",
    "CollectedShares",
    "SharesByPledge",
    "new_release_key",
    "shares_aad",
    "build_release",
    "parse_release",
    "collect_shares",
    "decrypt_shares_record",
]

RELEASE_MAGIC: Final = b"SPR"
RELEASE_VERSION: Final = 1
_PREFIX: Final = RELEASE_MAGIC + bytes([RELEASE_VERSION])
GRANT: Final = 0x01
SHARES: Final = 0x02
PUBLIC_SHARES: Final = 0x03
RELEASE_KEY_SIZE: Final = 32
_INDEX_SIZE: Final = 4
_RECORD_HEADER: Final = 1 + 4
GRANT_ENTRY_SIZE: Final = _INDEX_SIZE + wrapped_size(RELEASE_KEY_SIZE)  # 133
SHARE_ENTRY_SIZE: Final = _INDEX_SIZE + SHARE_SIZE  # 37
_SHARES_OVERHEAD: Final = NONCE_SIZE + TAG_SIZE  # 28
#: The smallest ``max_bytes`` that still fits one record of each type.
MIN_RELEASE_BYTES: Final = len(_PREFIX) + _RECORD_HEADER + GRANT_ENTRY_SIZE  # 142
DEFAULT_MAX_BYTES: Final = 20_000
_MAX_PLEDGE_INDEX: Final = 2**32 - 1

SharesByPledge = dict[int, dict[int, bytes]]
"""pledge index -> {keeper index -> 33-byte share}."""


def new_release_key() -> bytes:
    """A fresh random 32-byte release key ``R_k`` for one keeper and campaign."""
    return get_random_bytes(RELEASE_KEY_SIZE)


def shares_aad(ctx: CampaignContext, keeper_index: int) -> bytes:
    """``chain id (32) | campaign (20) | keeper index (1) | b"shares"``."""
    if type(ctx.chain_id) is not int or not 0 <= ctx.chain_id < 2**256:
        raise InputError(f"chain id {ctx.chain_id!r} is not an integer in [0, 2**256)")
    return ctx.chain_id.to_bytes(32, "big") + campaign_bytes(ctx.campaign) + bytes((keeper_index,)) + b"shares"


# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class GrantRecord:
    """``(pledge_index, ECIES(member key, R_k))`` entries."""

    entries: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True)
class SharesRecord:
    """Shares encrypted under the keeper's release key: nonce and ciphertext with tag."""

    nonce: bytes
    ciphertext: bytes  # entries then the 16-byte tag


@dataclass(frozen=True)
class PublicSharesRecord:
    """``(pledge_index, share)`` entries in clear."""

    entries: tuple[tuple[int, bytes], ...]


Record = GrantRecord | SharesRecord | PublicSharesRecord


def _split_entries(body: bytes, size: int, what: str) -> tuple[tuple[int, bytes], ...]:
    if not body or len(body) % size:
        raise EnvelopeError(f"release: {what} record of {len(body)} bytes is not a whole number of entries")
    return tuple(
        (int.from_bytes(body[o : o + _INDEX_SIZE], "big"), body[o + _INDEX_SIZE : o + size])
        for o in range(0, len(body), size)
    )


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
        if len(raw) - pos < _RECORD_HEADER:
            raise EnvelopeError("release truncated inside a record header")
        rtype = raw[pos]
        length = int.from_bytes(raw[pos + 1 : pos + _RECORD_HEADER], "big")
        start = pos + _RECORD_HEADER
        end = start + length
        if end > len(raw):
            raise EnvelopeError(f"release truncated: a record announces {length} bytes, {len(raw) - start} left")
        body = raw[start:end]
        if rtype == GRANT:
            records.append(GrantRecord(_split_entries(body, GRANT_ENTRY_SIZE, "GRANT")))
        elif rtype == SHARES:
            if length <= _SHARES_OVERHEAD or (length - _SHARES_OVERHEAD) % SHARE_ENTRY_SIZE:
                raise EnvelopeError(f"release: SHARES record of {length} bytes has no whole number of entries")
            records.append(SharesRecord(body[:NONCE_SIZE], body[NONCE_SIZE:]))
        elif rtype == PUBLIC_SHARES:
            records.append(PublicSharesRecord(_split_entries(body, SHARE_ENTRY_SIZE, "PUBLIC_SHARES")))
        else:
            raise EnvelopeError(f"release: unknown record type 0x{rtype:02x}")
        pos = end
    if not records:
        raise EnvelopeError("release holds no record")
    return tuple(records)


# ------------------------------------------------------------------------------------------ keeper side


@dataclass(frozen=True)
class ReleaseBuild:
    """The payloads to send (one ``release`` transaction each), and the grants left out."""

    payloads: list[bytes]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (pledge index, reason)

    @property
    def total_bytes(self) -> int:
        return sum(len(p) for p in self.payloads)


class _Packer:
    """Greedy packing of fixed-size entries into records and payloads of at most ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.payloads: list[bytes] = []
        self.current = bytearray(_PREFIX)

    def flush(self) -> None:
        if len(self.current) > len(_PREFIX):
            self.payloads.append(bytes(self.current))
            self.current = bytearray(_PREFIX)

    def add(self, rtype: int, entries: Sequence[bytes], entry_size: int, overhead: int, seal: _Sealer) -> None:
        i = 0
        while i < len(entries):
            room = self.max_bytes - len(self.current) - _RECORD_HEADER - overhead
            take = min(room // entry_size, len(entries) - i) if room > 0 else 0
            if take <= 0:
                self.flush()
                continue
            body = seal(b"".join(entries[i : i + take]))
            self.current += bytes((rtype,)) + len(body).to_bytes(4, "big") + body
            i += take


class _Sealer:
    def __call__(self, plain: bytes) -> bytes:
        return plain


class _SharesSealer(_Sealer):
    def __init__(self, key: bytes, aad: bytes) -> None:
        self.key, self.aad = key, aad

    def __call__(self, plain: bytes) -> bytes:
        nonce = get_random_bytes(NONCE_SIZE)
        cipher = AES.new(self.key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_SIZE)
        cipher.update(self.aad)
        ciphertext, tag = cipher.encrypt_and_digest(plain)
        return nonce + ciphertext + tag


def _check_pledge_index(index: object) -> int:
    if type(index) is not int or not 0 <= index <= _MAX_PLEDGE_INDEX:
        raise InputError(f"pledge index {index!r} is not a uint32")
    return index


def build_release(
    ctx: CampaignContext,
    keeper_index: int,
    release_key: bytes | None,
    shares: Mapping[int, bytes],
    grants: Mapping[int, bytes],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ReleaseBuild:
    """Build keeper ``keeper_index``'s release payloads.

    * ``shares``: pledge index -> this keeper's 33-byte share (from
      :func:`spartacus.envelope.open_share`); pass only live pledges.
    * ``grants``: pledge index -> 33-byte member key, for the members not
      granted ``R_k`` in an earlier release (the caller tracks that). A key
      that is not a valid compressed point is skipped and listed in
      ``skipped``; it never stops the others. Ignored in ``public`` scope.
    * ``release_key``: ``R_k`` (32 bytes); required in ``members`` scope,
      unused in ``public`` scope.

    Each payload is at most ``max_bytes`` (>= :data:`MIN_RELEASE_BYTES`) and
    parses on its own. Returns no payload when there is nothing to publish.
    Caller errors (a share not of this keeper, a bad index) raise InputError.
    """
    n = len(ctx.keepers)
    if type(keeper_index) is not int or not 0 <= keeper_index < n:
        raise InputError(f"keeper index {keeper_index!r} is out of range 0..{n - 1}")
    if type(max_bytes) is not int or max_bytes < MIN_RELEASE_BYTES:
        raise InputError(f"max_bytes={max_bytes!r} is too small; at least {MIN_RELEASE_BYTES} is needed")
    share_entries: list[bytes] = []
    for pledge_index in sorted(shares):
        share = shares[pledge_index]
        _check_pledge_index(pledge_index)
        if not isinstance(share, bytes) or len(share) != SHARE_SIZE or share[0] != keeper_index + 1:
            raise InputError(f"the share for pledge #{pledge_index} is not a 33-byte share of keeper #{keeper_index}")
        share_entries.append(pledge_index.to_bytes(_INDEX_SIZE, "big") + share)

    packer = _Packer(max_bytes)
    skipped: list[tuple[int, str]] = []
    if ctx.scope is Scope.PUBLIC:
        packer.add(PUBLIC_SHARES, share_entries, SHARE_ENTRY_SIZE, 0, _Sealer())
        packer.flush()
        return ReleaseBuild(packer.payloads, skipped)

    if not isinstance(release_key, bytes) or len(release_key) != RELEASE_KEY_SIZE:
        raise InputError("members scope needs the keeper's 32-byte release key (see new_release_key)")
    grant_entries: list[bytes] = []
    for pledge_index in sorted(grants):
        _check_pledge_index(pledge_index)
        member_key = grants[pledge_index]
        if not isinstance(member_key, bytes) or len(member_key) != 33 or member_key[0] not in (2, 3):
            skipped.append((pledge_index, "member key is not a 33-byte compressed secp256k1 public key"))
            continue
        try:
            wrapped = wrap(member_key, release_key)
        except InputError:
            skipped.append((pledge_index, "member key is not a point on the secp256k1 curve"))
            continue
        grant_entries.append(pledge_index.to_bytes(_INDEX_SIZE, "big") + wrapped)

    packer.add(GRANT, grant_entries, GRANT_ENTRY_SIZE, 0, _Sealer())
    sealer = _SharesSealer(release_key, shares_aad(ctx, keeper_index))
    packer.add(SHARES, share_entries, SHARE_ENTRY_SIZE, _SHARES_OVERHEAD, sealer)
    packer.flush()
    return ReleaseBuild(packer.payloads, skipped)


# ------------------------------------------------------------------------------------------ member side


@dataclass(frozen=True)
class ReleaseProblem:
    """A release (or part of one) that was skipped, and why."""

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
class CollectedShares:
    """Shares a reader could obtain, per pledge, and what was skipped on the way."""

    shares: SharesByPledge = field(default_factory=dict)
    problems: list[ReleaseProblem] = field(default_factory=list)
    #: keepers whose release key this member could unwrap (members scope)
    granted_by: set[int] = field(default_factory=set)


def _add_entries(
    out: CollectedShares,
    rel: ReleaseRecord,
    entries: Iterable[tuple[int, bytes]],
) -> None:
    k = rel.keeper_index
    bad = 0
    for pledge_index, share in entries:
        if share[0] != k + 1:
            bad += 1
            continue
        per_keeper = out.shares.setdefault(pledge_index, {})
        if k not in per_keeper:  # the first (earliest) share a keeper published wins
            per_keeper[k] = share
        elif per_keeper[k] != share:
            out.problems.append(
                ReleaseProblem(
                    k,
                    rel.block_number,
                    rel.log_index,
                    f"keeper #{k} published a second, different share for pledge #{pledge_index}; kept the first",
                )
            )
    if bad:
        out.problems.append(
            ReleaseProblem(k, rel.block_number, rel.log_index, f"{bad} share(s) carry another keeper's index")
        )


def collect_shares(
    releases: Iterable[ReleaseRecord],
    ctx: CampaignContext,
    member_index: int | None,
    member_privkey: PrivateKeyLike | None,
) -> CollectedShares:
    """Gather every share a reader can obtain from the keepers' releases.

    Releases are read in chain order. Malformed ones, and ones from a keeper
    index outside the campaign's keeper set, are skipped and listed in
    ``problems``; they are never fatal. PUBLIC_SHARES records are read
    without a key.

    In ``members`` scope, ``member_privkey`` is the member key; for each
    keeper the GRANT entries for ``member_index`` (the reader's own pledge
    index) are unwrapped to get ``R_k``, which decrypts that keeper's SHARES
    records. With ``member_index=None`` every GRANT entry is tried (one ECIES
    attempt each: slow on large campaigns; pass the index when known).

    Raises :class:`InputError` if a ``members``-scope campaign is read without
    a member key, and :class:`DecryptionError` ("this key is not a member
    ...") when keepers did publish grants but none of them opens with this
    key.
    """
    out = CollectedShares()
    n = len(ctx.keepers)
    members_scope = ctx.scope is Scope.MEMBERS
    if members_scope and member_privkey is None:
        raise InputError("this campaign reveals to members only: a member key is needed to read it")

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

    saw_grants = False
    for k in sorted(by_keeper):
        items = by_keeper[k]
        for rel, records in items:
            for rec in records:
                if isinstance(rec, PublicSharesRecord):
                    _add_entries(out, rel, rec.entries)
        if member_privkey is None:
            continue
        release_keys: list[bytes] = []
        for _rel, records in items:
            for rec in records:
                if not isinstance(rec, GrantRecord):
                    continue
                saw_grants = True
                for pledge_index, wrapped in rec.entries:
                    if member_index is not None and pledge_index != member_index:
                        continue
                    try:
                        key = unwrap(member_privkey, wrapped)
                    except DecryptionError:
                        continue
                    if len(key) == RELEASE_KEY_SIZE and key not in release_keys:
                        release_keys.append(key)
        has_shares_records = any(isinstance(r, SharesRecord) for _rel, recs in items for r in recs)
        if not release_keys:
            if has_shares_records:
                rel0 = items[0][0]
                out.problems.append(
                    ReleaseProblem(
                        k,
                        rel0.block_number,
                        rel0.log_index,
                        f"keeper #{k} has not granted this member its release key (yet)",
                    )
                )
            continue
        out.granted_by.add(k)
        aad = shares_aad(ctx, k)
        for rel, records in items:
            for rec in records:
                if not isinstance(rec, SharesRecord):
                    continue
                plain = _open_shares_record(rec, release_keys, aad)
                if plain is None:
                    out.problems.append(
                        ReleaseProblem(
                            k,
                            rel.block_number,
                            rel.log_index,
                            f"a SHARES record of keeper #{k} does not decrypt with its release key",
                        )
                    )
                    continue
                _add_entries(out, rel, _split_entries(plain, SHARE_ENTRY_SIZE, "SHARES"))

    if members_scope and saw_grants and not out.granted_by and not out.shares:
        raise DecryptionError(
            "this key is not a member of the campaign (or its pledge is not released yet): no keeper's "
            "release grants it a release key; use the member key file you pledged with"
        )
    return out


def decrypt_shares_record(
    record: SharesRecord, release_key: bytes, ctx: CampaignContext, keeper_index: int
) -> tuple[tuple[int, bytes], ...]:
    """Decrypt one SHARES record of keeper ``keeper_index``: its ``(pledge_index, share)`` entries.

    For a keeper reading back what it already published (to resume after a
    crash without publishing twice). :class:`DecryptionError` if the record
    does not authenticate under ``release_key`` for this chain, campaign and
    keeper index.
    """
    plain = _open_shares_record(record, [release_key], shares_aad(ctx, keeper_index))
    if plain is None:
        raise DecryptionError(f"the SHARES record does not decrypt with keeper #{keeper_index}'s release key")
    try:
        return _split_entries(plain, SHARE_ENTRY_SIZE, "SHARES")
    except EnvelopeError as exc:  # pragma: no cover - parse_release checked the length
        raise DecryptionError(exc.message) from None


def _open_shares_record(rec: SharesRecord, keys: Sequence[bytes], aad: bytes) -> bytes | None:
    body, tag = rec.ciphertext[:-TAG_SIZE], rec.ciphertext[-TAG_SIZE:]
    for key in keys:
        cipher = AES.new(key, AES.MODE_GCM, nonce=rec.nonce, mac_len=TAG_SIZE)
        cipher.update(aad)
        try:
            return cipher.decrypt_and_verify(body, tag)
        except ValueError:
            continue
    return None
