"""The roster: every live member's record, rebuilt from the chain's bytes alone.

:func:`build_roster` takes what the chain client read (the ``Pledged`` events
with their liveness, the keepers' ``Released`` events) and the reader's member
key, and returns the members who could be decrypted, the organizer's
instructions, and the pledges that could not be read with the reason.

Rules:

* only **live** pledges appear; a withdrawn pledge never does, even if a
  keeper (wrongly) released shares for it;
* ``instructions`` come only from the creator's pledge: the first live pledge
  (lowest index) whose pledger is the campaign's creator. Instructions in any
  other pledge are ignored;
* garbage (malformed envelope, bad member key, too few shares, failed
  authentication) is skipped and listed in ``skipped``, never fatal.

Cost: one pass over the pledges, one ECIES unwrap per keeper, one AES-GCM
per SHARES record, and per pledge one parse, two Shamir combinations and one
AES-GCM: O(N).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spartacus._exceptions import DecryptionError, EnvelopeError
from spartacus.envelope import open_with_shares, parse
from spartacus.keys import PrivateKeyLike, compressed_public_key
from spartacus.release import ReleaseProblem, collect_shares
from spartacus.types import CampaignContext, PledgeRecord, ReleaseRecord, Scope

__all__ = ["RosterEntry", "SkippedPledge", "Roster", "build_roster", "find_member_index"]


@dataclass(frozen=True)
class RosterEntry:
    """One member as revealed: pledge index, display name, contact fields, message."""

    index: int
    name: str
    contact: dict[str, str]
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "contact": dict(self.contact), "message": self.message}


@dataclass(frozen=True)
class SkippedPledge:
    """A live pledge that could not be read, and why."""

    index: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason}


@dataclass
class Roster:
    """The revealed roster (DESIGN §4 ``roster --json``)."""

    members: list[RosterEntry] = field(default_factory=list)
    instructions: str | None = None
    skipped: list[SkippedPledge] = field(default_factory=list)
    #: keeper releases that were malformed or could not be decrypted
    release_problems: list[ReleaseProblem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"members": [...], "instructions", "skipped": [...],
        "release_problems": [...]}``."""
        return {
            "members": [m.to_json() for m in self.members],
            "instructions": self.instructions,
            "skipped": [s.to_json() for s in self.skipped],
            "release_problems": [p.to_json() for p in self.release_problems],
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


def _same_address(a: str, b: str) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def build_roster(
    ctx: CampaignContext,
    pledges: Sequence[PledgeRecord],
    releases: Sequence[ReleaseRecord],
    member_privkey: PrivateKeyLike | None,
    creator: str,
) -> Roster:
    """Rebuild the roster as seen by the holder of ``member_privkey``.

    In ``members`` scope the key must be the member key of one of the
    campaign's pledges (:class:`DecryptionError` "this key is not a member"
    otherwise, also when its pledge was withdrawn and no keeper granted it).
    In ``public`` scope no key is needed (``None``).
    """
    ordered: list[PledgeRecord] = []
    seen: set[int] = set()
    for p in sorted(pledges, key=lambda r: r.index):
        if p.index not in seen:  # one record per index: the first wins
            seen.add(p.index)
            ordered.append(p)

    member_index: int | None = None
    key: PrivateKeyLike | None = member_privkey
    if ctx.scope is Scope.PUBLIC:
        key = None
    elif member_privkey is not None:
        member_index = find_member_index(ordered, compressed_public_key(member_privkey))
        if member_index is None:
            raise DecryptionError(
                "this key is not a member of the campaign: no pledge carries its public key; "
                "use the member key file you pledged with"
            )
    collected = collect_shares(releases, ctx, member_index, key)

    creator_index = next((p.index for p in ordered if p.live and _same_address(p.pledger, creator)), None)
    roster = Roster(release_problems=list(collected.problems))
    t = ctx.keeper_threshold
    for p in ordered:
        if not p.live:
            continue
        try:
            parsed = parse(p.envelope)
        except EnvelopeError as exc:
            roster.skipped.append(SkippedPledge(p.index, f"malformed envelope: {exc.message}"))
            continue
        shares = collected.shares.get(p.index, {})
        if len(shares) < t:
            roster.skipped.append(
                SkippedPledge(p.index, f"need {t} keeper shares, got {len(shares)}: not (yet) released")
            )
            continue
        try:
            content = open_with_shares(parsed, shares.values(), ctx, p.member_key, pledger=p.pledger)
        except (EnvelopeError, DecryptionError) as exc:
            roster.skipped.append(SkippedPledge(p.index, exc.message))
            continue
        roster.members.append(RosterEntry(p.index, content.name, dict(content.contact), content.message))
        if p.index == creator_index:
            roster.instructions = content.instructions
    return roster
