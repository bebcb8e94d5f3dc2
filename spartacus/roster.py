"""The roster: every live member's record and the organizer's instructions, rebuilt from the
chain's bytes alone.

:func:`build_roster` takes what the chain client read (the ``Pledged`` events with their
liveness, the sealed instructions of ``CampaignCreated``, the keepers' ``Released`` events)
and the reader's key, and returns the members who could be decrypted, the instructions, and
what could not be read, with the reason.

Rules:

* only **live** pledges appear; a withdrawn pledge never does, even if a keeper (wrongly)
  released shares for it;
* the instructions are the campaign's own sealed instructions (``config.instructions``),
  bound to its creator: nobody else's bytes can pass for them;
* every share a keeper published is checked against the commitment in the envelope before
  it is used; shares that do not match are set aside and their keeper is named in
  ``skipped``. Any ``t`` honest keepers' releases therefore open every live pledge (P9);
* garbage (malformed envelope, too few shares, failed authentication) is skipped and listed
  in ``skipped``, never fatal;
* a late joiner under the ``known`` policy reads the instructions only (``late_joiner``).

Cost: one pass over the pledges (parse, a SHA-256 of the binding and ``t`` commitment checks
each), one Shamir recombination for all of them at once (NumPy), one AES-GCM per pledge, and
per keeper one ECDH for the reader's own grant: O(N).
"""

from __future__ import annotations

import hmac
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spartacus import _shamir
from spartacus._exceptions import DecryptionError, EnvelopeError, InputError, NotRevealedError
from spartacus._primitives import sha256
from spartacus.envelope import (
    ROLE_INSTRUCTIONS,
    ROLE_PLEDGE,
    ParsedEnvelope,
    binding,
    check_matches,
    commitment,
    decode_content,
    decode_instructions,
    open_body,
    parse,
)
from spartacus.keys import KeyPair, PrivateKeyLike, secret_of
from spartacus.release import LATE_KEY, ROSTER_KEY, Collected, ReleaseProblem, collect
from spartacus.types import CampaignContext, PledgeRecord, ReleaseRecord, Scope

if TYPE_CHECKING:
    from spartacus.chain import CampaignClient

__all__ = ["RosterEntry", "SkippedPledge", "Roster", "build_roster", "find_member_index", "open_pledges", "read_roster"]


@dataclass(frozen=True)
class RosterEntry:
    """One member as revealed: pledge index, display name, contact fields, message."""

    index: int
    name: str
    contact: dict[str, str]
    message: str | None = None
    late: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "contact": dict(self.contact),
            "message": self.message,
            "late": self.late,
        }


@dataclass(frozen=True)
class SkippedPledge:
    """A live pledge that could not be read (``index``), or a keeper whose releases were set
    aside (``keeper_index``), and why."""

    index: int | None
    reason: str
    keeper_index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "keeper_index": self.keeper_index, "reason": self.reason}


@dataclass
class Roster:
    """The revealed roster (DESIGN §4 ``roster --json``)."""

    members: list[RosterEntry] = field(default_factory=list)
    instructions: str | None = None
    skipped: list[SkippedPledge] = field(default_factory=list)
    #: keeper releases that were malformed or could not be decrypted
    release_problems: list[ReleaseProblem] = field(default_factory=list)
    #: the reader joined after the reveal under the ``known`` policy: instructions only
    late_joiner: bool = False

    def to_json(self) -> dict[str, Any]:
        """``{"members": [...], "instructions", "skipped": [...], "release_problems": [...],
        "late_joiner"}``."""
        return {
            "members": [m.to_json() for m in self.members],
            "instructions": self.instructions,
            "skipped": [s.to_json() for s in self.skipped],
            "release_problems": [p.to_json() for p in self.release_problems],
            "late_joiner": self.late_joiner,
        }


def find_member_index(pledges: Iterable[PledgeRecord], member_key33: bytes) -> int | None:
    """Index of the first live pledge carrying ``member_key33`` (else of any pledge; else None)."""
    fallback: int | None = None
    for p in sorted(pledges, key=lambda r: r.index):
        if p.member_key == member_key33:
            if p.live:
                return p.index
            if fallback is None:
                fallback = p.index
    return fallback


def _valid_shares(
    parsed: ParsedEnvelope, h: bytes, candidates: Mapping[int, list[bytes]], liars: Counter[int]
) -> list[bytes]:
    """This pledge's shares (``y ‖ x``) that match the envelope's commitments, lowest keeper first."""
    out = []
    for k in sorted(candidates):
        if k >= parsed.n:
            continue
        x = parsed.xs[k]
        match = next(
            (y for y in candidates[k] if hmac.compare_digest(commitment(h, k, x, y), parsed.commitments[k])), None
        )
        if match is None:
            liars[k] += 1
        else:
            out.append(match + bytes((x,)))
    return out


@dataclass(frozen=True)
class _Sealed:
    index: int
    parsed: ParsedEnvelope
    member_key: bytes
    pledger: str
    role: int


def open_pledges(
    ctx: CampaignContext, sealed: Sequence[_Sealed], collected: Collected, liars: Counter[int]
) -> tuple[dict[int, bytes], dict[int, str]]:
    """``(records, reasons)``: the decrypted record of each sealed item that opens (by index), and
    why each other one does not."""
    t = ctx.keeper_threshold
    groups: list[list[bytes]] = []
    ready: list[tuple[_Sealed, list[bytes]]] = []
    reasons: dict[int, str] = {}
    for item in sealed:
        h = sha256(binding(ctx, item.role, item.member_key, item.pledger))
        shares = collected.instructions if item.role == ROLE_INSTRUCTIONS else collected.shares.get(item.index, {})
        valid = _valid_shares(item.parsed, h, shares, liars)
        if len(valid) < t:
            reasons[item.index] = f"need {t} keeper shares, got {len(valid)}: not (yet) released to this key"
            continue
        groups.append(valid[:t])
        ready.append((item, valid))
    keys = _shamir.combine_many(groups) if groups else []
    records: dict[int, bytes] = {}
    for (item, valid), key in zip(ready, keys, strict=True):
        try:
            records[item.index] = open_body(
                item.parsed, key, ctx, item.member_key, pledger=item.pledger, role=item.role
            )
        except (EnvelopeError, DecryptionError) as exc:
            record = _open_other_subsets(ctx, item, valid, t)
            if record is not None:
                records[item.index] = record
            else:
                reasons[item.index] = (
                    f"the shares match their commitments but the record does not decrypt: {exc.message}"
                )
    return records, reasons


#: At most this many other t-subsets of commitment-matching shares are tried for one record.
MAX_RETRIES = 64


def _open_other_subsets(ctx: CampaignContext, item: _Sealed, valid: list[bytes], t: int) -> bytes | None:
    """When the first ``t`` commitment-matching shares do not open a record, try other subsets.

    An 8-byte commitment can be matched by a wrong share at a cost of about 2^64 hashes: a keeper
    who spent that on one targeted pledge (say, the instructions) could otherwise block it with a
    share that passes the check. With more than ``t`` matching shares, the honest ones are found
    among the other subsets (nearly always the next one: a second forgery costs 2^64 again)."""
    if len(valid) <= t:
        return None
    for subset in itertools.islice(itertools.combinations(valid, t), 1, 1 + MAX_RETRIES):
        try:
            return open_body(
                item.parsed, _shamir.combine(list(subset)), ctx, item.member_key, pledger=item.pledger, role=item.role
            )
        except (EnvelopeError, DecryptionError):
            continue
    return None


def build_roster(
    ctx: CampaignContext,
    pledges: Sequence[PledgeRecord],
    releases: Sequence[ReleaseRecord],
    reader: PrivateKeyLike | None,
    creator: str,
    *,
    instructions: bytes = b"",
    relay: bool = False,
) -> Roster:
    """Rebuild the roster as seen by the holder of ``reader``.

    ``reader`` is a member key (one of the campaign's pledges' keys; :class:`DecryptionError`
    "this key is not a member" otherwise, or when its pledge was withdrawn), or with
    ``relay=True`` the key of the relay service the campaign names. In ``public`` scope no key
    is needed (``None``). ``instructions`` are the sealed instructions of the campaign's
    creation event; ``creator`` its creator.
    """
    ordered: list[PledgeRecord] = []
    seen: set[int] = set()
    for p in sorted(pledges, key=lambda r: r.index):
        if p.index not in seen:  # one record per index: the first wins
            seen.add(p.index)
            ordered.append(p)

    member_index: int | None = None
    key: PrivateKeyLike | None = reader
    if ctx.scope is Scope.PUBLIC:
        key = None
    elif reader is None:
        raise InputError("this campaign reveals to members only: a member key is needed to read it")
    elif not relay:
        own = reader.compressed if isinstance(reader, KeyPair) else KeyPair.from_secret(secret_of(reader)).compressed
        member_index = find_member_index(ordered, own)
        if member_index is None:
            raise DecryptionError(
                "this key is not a member of the campaign: no pledge carries its public key; "
                "use the member key file you pledged with"
            )
        mine = next(p for p in ordered if p.index == member_index)
        if not mine.live:
            raise DecryptionError(
                f"this key's pledge #{member_index + 1} was withdrawn before the reveal: a withdrawn pledge is "
                "never revealed, and reads nothing"
            )
    collected = collect(releases, ctx, key, member_index=member_index, relay=relay)
    roster = Roster(release_problems=list(collected.problems))
    members_scope = ctx.scope is Scope.MEMBERS
    if members_scope and collected.saw_grants and not collected.granted_by[ROSTER_KEY]:
        if collected.granted_by[LATE_KEY]:
            roster.late_joiner = True
        elif not relay:
            raise DecryptionError(
                "no keeper has granted this key the roster yet: the keepers are still releasing, "
                "or this key's pledge is not live; try again in a few blocks"
            )

    liars: Counter[int] = Counter()
    sealed: list[_Sealed] = []
    by_index = {p.index: p for p in ordered}
    if not roster.late_joiner:
        for p in ordered:
            if not p.live:
                continue
            try:
                parsed = parse(p.envelope)
                check_matches(parsed, ctx)
            except EnvelopeError as exc:
                roster.skipped.append(SkippedPledge(p.index, f"malformed envelope: {exc.message}"))
                continue
            sealed.append(_Sealed(p.index, parsed, p.member_key, p.pledger, ROLE_PLEDGE))
    creator_pledge = next(
        (p for p in ordered if p.live and isinstance(p.pledger, str) and p.pledger.lower() == creator.lower()),
        None,
    )
    instructions_item: _Sealed | None = None
    if instructions and creator_pledge is not None:
        try:
            parsed = parse(instructions)
            check_matches(parsed, ctx)
            instructions_item = _Sealed(-1, parsed, creator_pledge.member_key, creator, ROLE_INSTRUCTIONS)
        except EnvelopeError as exc:
            roster.skipped.append(SkippedPledge(None, f"the sealed instructions are malformed: {exc.message}"))

    records, reasons = open_pledges(ctx, sealed + ([instructions_item] if instructions_item else []), collected, liars)
    for item in sealed:
        if item.index in reasons:
            roster.skipped.append(SkippedPledge(item.index, reasons[item.index]))
            continue
        try:
            content = decode_content(records[item.index])
        except EnvelopeError as exc:
            roster.skipped.append(SkippedPledge(item.index, exc.message))
            continue
        roster.members.append(
            RosterEntry(item.index, content.name, dict(content.contact), content.message, by_index[item.index].late)
        )
    if instructions_item is not None:
        if -1 in records:
            try:
                roster.instructions = decode_instructions(records[-1])
            except EnvelopeError as exc:
                roster.skipped.append(SkippedPledge(None, exc.message))
        else:
            roster.skipped.append(SkippedPledge(None, f"instructions: {reasons.get(-1, 'not released')}"))
    for k, count in sorted(liars.items()):
        roster.skipped.append(
            SkippedPledge(
                None,
                f"keeper #{k} published {count} share(s) that do not match the envelopes' commitments: set aside",
                keeper_index=k,
            )
        )
    # Keepers whose releases are malformed or do not decrypt are named here too (details in
    # release_problems): a liar is named whatever form its lie takes, short of silence.
    named = {s.keeper_index for s in roster.skipped if s.keeper_index is not None}
    keepers = set(range(len(ctx.keepers)))
    for k in sorted({p.keeper_index for p in roster.release_problems} & keepers - named):
        count = sum(p.keeper_index == k for p in roster.release_problems)
        roster.skipped.append(
            SkippedPledge(
                None,
                f"keeper #{k} published {count} release record(s) that do not parse or do not decrypt with its "
                "grant: set aside (see release_problems)",
                keeper_index=k,
            )
        )
    return roster


def read_roster(campaign: CampaignClient, reader: PrivateKeyLike | None, *, relay: bool = False) -> Roster:
    """The roster of a revealed campaign, read from the chain: the CLI's, the relay's and the
    dApp's one way in. :class:`NotRevealedError` before the reveal (or for a campaign that
    expired or was cancelled below its threshold, which never will be)."""
    status = campaign.status()
    if status.state != "revealed":
        raise NotRevealedError(
            f"campaign {campaign.address} is {status.state} with {status.count} of {status.threshold} pledges: "
            + (
                "the roster exists only after the reveal"
                if status.state == "open"
                else "it never reached its threshold, so nothing will ever be revealed"
            )
        )
    ctx = campaign.context()
    if ctx.scope is Scope.MEMBERS and reader is None:
        raise InputError("this campaign reveals to members only: pass --member-key-file (the key you pledged with)")
    return build_roster(
        ctx,
        campaign.pledges(),
        campaign.releases(),
        reader,
        status.creator,
        instructions=campaign.created.config.instructions,
        relay=relay,
    )
