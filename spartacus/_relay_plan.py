"""The relay's reading of one campaign: what it owes whom, queued in the outbox.

Each pass over a campaign reads its status, then:

* **progress notices** (a relay service, when the campaign's relay note gave the organizer's
  address): at 50 %, 90 % and 100 % of N and at the deadline, one message each; milestones
  crossed in the same pass are folded into one message about the highest;
* **batches**, after the reveal: the roster is rebuilt like any member's
  (:func:`spartacus.roster.build_roster`), with the member key of the organizer's own relay
  or, for a relay service, with the relay key the keepers granted (``relay=True``). Members
  the state does not know yet form a batch. What each newcomer receives follows the
  campaign's late-joiner policy (``ctx.late_joiners``):

  ======== ================================== ============================================
  policy   a pledge made after the reveal     the members who hold the roster
  ======== ================================== ============================================
  known    ``instructions``: the organizer's  one ``update`` naming the batch's newcomers
           instructions only (no earlier
           member, not the organizer's name)
  roster   ``roster``: the whole roster       one ``update`` naming the batch's newcomers
  closed   (none exist: the contract refuses  (none)
           them; if one were seen, it would
           get the instructions only)
  ======== ================================== ============================================

  A member of the reveal gets the ``roster``. While some live pledge cannot be read yet (the
  keepers are still releasing), a batch waits up to ``settle`` seconds of quiet so that the
  members of one reveal are not split over two batches.

Nothing is read before the reveal except public facts (the count, the threshold, the state):
the keepers grant the roster key only after it. A campaign whose on-chain relay tag is not
this relay's key is refused (its creation event was not what the contract holds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.crypto import keccak

from ._exceptions import InputError, SpartacusError
from ._relay_outbox import Delivery, Member, Outbox
from ._relay_render import (
    MILESTONES,
    CampaignInfo,
    MessageParts,
    campaign_link,
    instructions_parts,
    progress_parts,
    roster_parts,
    update_parts,
    valid_address,
)
from .chain import CampaignClient, CampaignStatus, ChainClient
from .envelope import parse
from .keys import KeyPair
from .roster import Roster, RosterEntry, build_roster
from .types import LateJoiners, PledgeRecord, ReleaseRecord

__all__ = ["CampaignPlanner", "RelayReport"]


@dataclass
class RelayReport(Delivery):
    """What a run did for one campaign, for the command's output and the tests."""

    campaign: str = ""
    state: str | None = None
    note: str | None = None
    final: bool = False  # nothing more will ever be sent for this campaign
    batches: list[int] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # progress milestones queued ("50%", ...)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # members recorded as skipped
    unreadable: list[dict[str, Any]] = field(default_factory=list)  # pledges the roster could not read

    def absorb(self, other: RelayReport) -> None:
        self.state, self.note, self.final = other.state, other.note, other.final
        self.unreadable = other.unreadable
        for name in ("batches", "notices", "sent", "deferred", "failed", "uncertain", "skipped"):
            getattr(self, name).extend(getattr(other, name))

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "state": self.state,
            "note": self.note,
            "final": self.final,
            "batches": list(self.batches),
            "notices": list(self.notices),
            "sent": list(self.sent),
            "deferred": list(self.deferred),
            "failed": list(self.failed),
            "uncertain": list(self.uncertain),
            "skipped": list(self.skipped),
            "unreadable": list(self.unreadable),
        }


def _parses(envelope: bytes) -> bool:
    try:
        parse(envelope)
    except SpartacusError:
        return False
    return True


def _recipient_of(member: RosterEntry) -> tuple[str | None, str | None]:
    email = member.contact.get("email")
    if not email:
        return None, "no email address in the roster: skipped (share the roster with them another way)"
    if not valid_address(email):
        return None, f"email {email!r} is not a plain ASCII address this relay can write to: skipped"
    return email, None


class CampaignPlanner:
    """Reads one campaign and queues what it owes: batches of members and the organizer's notices."""

    def __init__(
        self,
        client: ChainClient,
        outbox: Outbox,
        campaign: str,
        key: KeyPair,
        *,
        relay: bool,
        domain: str,
        dapp_url: str,
        settle: float,
        notify: Callable[[str], None],
        note_email: str | None = None,
        note_name: str | None = None,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.campaign = CampaignClient(client, campaign)
        self.key = key
        self.relay = relay
        self.domain = domain
        self.dapp_url = dapp_url
        self.settle = settle
        self.notify = notify
        self.note_email = note_email
        self.note_name = note_name

    @property
    def address(self) -> str:
        return self.campaign.address

    def _mid(self, member: int, kind: str, batch: int) -> str:
        return self.outbox.message_id(self.client.chain_id, self.address, member, kind, batch, self.domain)

    def _info(self, status: CampaignStatus, organizer: int | None = None) -> CampaignInfo:
        config = self.campaign.created.config
        return CampaignInfo(
            address=self.address,
            chain_id=self.client.chain_id,
            title=config.title,
            purpose=config.purpose,
            threshold=status.threshold,
            count=status.count,
            reveal_block=status.reveal_block,
            link=campaign_link(self.dapp_url, self.address),
            organizer_index=organizer,
            late_joiners=config.late_joiners,
            deadline=status.deadline,
        )

    def plan(self, report: RelayReport) -> None:
        """One pass: progress notices, then (after the reveal) a batch if there are new members."""
        status = self.campaign.status()
        report.state = status.state
        where = f"campaign {self.address}"
        if self.relay and status.relay_tag != bytes(keccak(self.key.compressed))[:12]:
            reason = "its contract does not name this relay's key (relayTag differs from the creation event)"
            self.outbox.set_campaign(self.address, status="refused", reason=reason)
            report.final = True
            report.note = f"{where}: {reason}: refused; nothing is read or sent for it"
            return
        self._progress(status, report)
        if status.state in ("expired", "cancelled"):
            report.final = True
            report.note = (
                f"{where} is {status.state} with {status.count} of {status.threshold} pledges:"
                " it will never be revealed, so there is nothing to send"
            )
            self.outbox.set_campaign(self.address, status="done", reason=status.state)
            return
        if status.state != "revealed":
            report.note = (
                f"{where} is not revealed yet ({status.count} of {status.threshold} live pledges):"
                " nothing is sent before the reveal"
            )
            return
        self.outbox.set_campaign(self.address, status="revealed")
        self._members(status, report)

    # ─── Progress notices (the organizer, from the relay note) ─────────────────────

    def _progress(self, status: CampaignStatus, report: RelayReport) -> None:
        if self.note_email is None or status.state == "cancelled":
            return
        done = self.outbox.milestones(self.address)
        if 101 in done:
            return
        n, count = status.threshold, status.count
        reached = [50, 90, 100] if status.state == "revealed" else []
        if status.state in ("open", "expired"):
            reached = [m for m, ok in ((50, 2 * count >= n), (90, 10 * count >= 9 * n)) if ok]
        if status.state == "expired" or (
            status.state == "revealed" and self.client.timestamp(status.block) >= status.deadline
        ):
            reached.append(101)
        new = [m for m in reached if m not in done]
        if not new:
            return
        top = max(new)
        parts = progress_parts(self._info(status), top, status.state, self.note_name)
        self.outbox.queue_notice(self.address, new, (self._mid(-1, "progress", top), self.note_email, parts))
        report.notices.append(MILESTONES[top])
        folded = f" (with {', '.join(MILESTONES[m] for m in new if m != top)})" if len(new) > 1 else ""
        self.notify(f"campaign {self.address}: progress notice {MILESTONES[top]}{folded} queued for the organizer")

    # ─── Members ──────────────────────────────────────────────────────────────────

    def _members(self, status: CampaignStatus, report: RelayReport) -> None:
        c = self.campaign
        planned = self.outbox.planned(c.address)
        if planned == f"complete:{status.total_pledges}":
            return  # every pledge was read and no new one came: nothing to read again
        ctx = c.context()
        pledges = c.pledges(to_block=status.block)
        releases = c.releases(to_block=status.block)
        partial = f"partial:{len(pledges)}|{len(releases)}"
        if planned == partial:
            return  # nothing new on-chain since the last full reading
        roster = build_roster(
            ctx,
            pledges,
            releases,
            self.key,
            status.creator,
            instructions=c.created.config.instructions,
            relay=self.relay,
        )
        if roster.late_joiner:
            raise InputError(
                f"this member key joined campaign {c.address} after the reveal: under its `known` policy it reads the"
                " instructions only, so it cannot relay the roster; run the relay with the organizer's member key"
            )
        report.unreadable = [s.to_json() for s in roster.skipped]
        known = self.outbox.known_members(c.address)
        new = [m for m in roster.members if m.index not in known]
        awaiting = self._awaiting(pledges, roster)
        if new:
            wait = self._settling(awaiting, releases)
            if wait is not None:
                report.note = wait
                return
            organizer = next((p.index for p in pledges if p.live and p.pledger.lower() == status.creator.lower()), None)
            self._form_batch(self._info(status, organizer), roster, new, known, status.block, report)
        elif not known:
            report.note = (
                f"campaign {c.address} is revealed, but no pledge is readable yet: waiting for the keepers' releases"
            )
        self.outbox.set_campaign(
            c.address, planned=partial if awaiting or not roster.members else f"complete:{status.total_pledges}"
        )

    @staticmethod
    def _awaiting(pledges: Sequence[PledgeRecord], roster: Roster) -> list[int]:
        """Live pledges that parse but cannot be read yet (the keepers may still be releasing)."""
        unreadable = {s.index for s in roster.skipped}
        return sorted(p.index for p in pledges if p.live and p.index in unreadable and _parses(p.envelope))

    def _settling(self, awaiting: list[int], releases: Sequence[ReleaseRecord]) -> str | None:
        """A note while some live pledge is still unreadable and the keepers' releases changed less than
        ``settle`` seconds ago (wall clock, as seen by this relay); None when the batch can go."""
        if not awaiting or self.settle <= 0:
            return None
        now = time.time()
        since = self.outbox.settling_since(self.address, f"{awaiting}|{len(releases)}", now)
        left = self.settle - (now - since)
        if left <= 0:
            return None
        return (
            f"{len(awaiting)} pledge(s) of campaign {self.address} are not readable yet (keepers still"
            f" releasing?): waiting up to {left:.0f} s more so they join this batch"
        )

    def _form_batch(
        self,
        info: CampaignInfo,
        roster: Roster,
        new: list[RosterEntry],
        known: set[int],
        block: int,
        report: RelayReport,
    ) -> None:
        """Records the newcomers, renders the batch's messages once and queues one outbox row per
        recipient, all in one transaction. What a newcomer gets follows the late-joiner policy."""
        limited = info.late_joiners is not LateJoiners.ROSTER  # known (and closed: none should exist)
        members: list[Member] = []
        for m in sorted(new, key=lambda e: e.index):
            email, reason = _recipient_of(m)
            tier = "instructions" if m.late and limited else "full"
            members.append(Member(m.index, m.name, email, reason, tier))
        tiers = {m.tier for m in members}
        parts: dict[str, MessageParts] = {}
        batch_hint = 1 if known else 0
        if "full" in tiers:
            parts["roster"] = roster_parts(info, roster, batch_hint)
        if "instructions" in tiers:
            parts["instructions"] = instructions_parts(info, roster.instructions)
        if known:
            parts["update"] = update_parts(info, new, len(roster.members))

        def messages(batch: int, earlier: list[tuple[int, str]]) -> list[tuple[str, int, str, str]]:
            rows = []
            for m in members:
                if m.email is not None:
                    kind = "roster" if m.tier == "full" else "instructions"
                    rows.append((self._mid(m.index, kind, batch), m.index, kind, m.email))
            if "update" in parts:
                rows += [(self._mid(i, "update", batch), i, "update", e) for i, e in earlier]
            return rows

        batch, queued = self.outbox.queue_batch(self.address, block, parts, members, messages)
        skipped = [{"member": m.index, "name": m.name, "reason": m.skip_reason} for m in members if m.email is None]
        report.batches.append(batch)
        report.skipped += skipped
        late = sum(m.tier == "instructions" for m in members)
        self.notify(
            f"batch {batch} of {self.address}: {len(new)} new member(s) of {len(roster.members)}; {queued} message(s)"
            " queued"
            + (f", {late} late joiner(s) get the instructions only ({info.late_joiners.value} policy)" if late else "")
            + (f", {len(skipped)} member(s) skipped" if skipped else "")
        )
        for s in skipped:
            self.notify(f"skipped #{s['member']} {s['name']}: {s['reason']}")
