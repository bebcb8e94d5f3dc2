"""Plain records shared by the chain client and the cryptographic core.

The chain client turns logs into these; the sealing, keeper and roster code
work on them without touching the chain, so they can be tested (and fuzzed)
on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Scope", "LateJoiners", "CampaignContext", "PledgeRecord", "ReleaseRecord"]


class Scope(StrEnum):
    """Who may read the roster after the reveal (``RevealScope`` on-chain)."""

    MEMBERS = "members"  # 0 on-chain: only live pledgers (and the organizer)
    PUBLIC = "public"  # 1 on-chain: anyone who reads the chain

    @property
    def code(self) -> int:
        return 0 if self is Scope.MEMBERS else 1

    @classmethod
    def from_code(cls, code: int) -> Scope:
        return cls.MEMBERS if code == 0 else cls.PUBLIC


class LateJoiners(StrEnum):
    """What a pledge made after the reveal gets (``LateJoiners`` on-chain)."""

    KNOWN = "known"  # 0: revealed to the members, receives the instructions, not the earlier roster
    ROSTER = "roster"  # 1: receives the roster too; its deposit stays locked until the deadline
    CLOSED = "closed"  # 2: no pledge is taken after the reveal

    @property
    def code(self) -> int:
        return list(LateJoiners).index(self)

    @classmethod
    def from_code(cls, code: int) -> LateJoiners:
        members = list(cls)
        return members[code] if 0 <= code < len(members) else cls.KNOWN


@dataclass(frozen=True)
class CampaignContext:
    """What binds sealed bytes to one campaign on one chain.

    ``keepers`` are the keepers' 64-byte uncompressed secp256k1 public keys
    (no 0x04 prefix) in on-chain order; keeper ``i`` holds share ``i`` of
    every envelope.
    """

    chain_id: int
    campaign: str  # checksummed address
    keepers: tuple[bytes, ...]
    keeper_threshold: int
    scope: Scope = Scope.MEMBERS
    late_joiners: LateJoiners = LateJoiners.KNOWN
    #: the 33-byte compressed key of the relay service the campaign names, if any
    relay: bytes | None = None


@dataclass(frozen=True)
class PledgeRecord:
    """One ``Pledged`` event, with its liveness from later ``Withdrawn`` events."""

    index: int
    pledger: str  # checksummed address
    member_key: bytes  # 33-byte compressed secp256k1 public key
    envelope: bytes  # the sealed bytes, exactly as sent
    block_number: int
    live: bool = True
    #: made after the reveal (a late joiner)
    late: bool = False
    #: the ``Pledged`` log's data, exactly as the node returned it (its keccak is the stored digest)
    log_data: bytes = b""


@dataclass(frozen=True)
class ReleaseRecord:
    """One ``Released`` event: a keeper's published bytes."""

    keeper_index: int
    keeper: str  # checksummed address
    data: bytes
    block_number: int
    log_index: int = 0
