"""The relay: after the reveal, every member gets the roster and the instructions by email, once.

Two ways to run it, one machinery:

* :class:`Relay`, **the organizer's own relay**: a member of one campaign (normally the
  organizer) runs it with its member key and SMTP settings;
* :class:`RelayService`, **a relay service**: one process with one relay key
  (``spartacus-relay-key``) serves every campaign of a factory whose creation names that key
  (``config.relay``). It scans ``CampaignCreated`` from the factory's deployment block with a
  saved cursor, so it picks up new campaigns as they are created. The keepers grant its key
  the roster after the reveal (never before; it never counts towards N), and a relay note
  sealed to it at creation (:mod:`spartacus.relaynote`) gives it the organizer's address for
  progress e-mails at 50 %, 90 % and 100 % of N and at the deadline.

The parts, each readable on its own:

* :mod:`spartacus._relay_plan`: what one campaign owes whom (batches, the late-joiner policy,
  the organizer's notices);
* :mod:`spartacus._relay_render`: the messages, rendered once per batch, composed into exact bytes;
* :mod:`spartacus._relay_outbox`: the SQLite state (one file, per-campaign outboxes);
* :mod:`spartacus._relay_smtp`: one SMTP session per pass, TLS, and each row's delivery state.

**Exactly once.** SMTP has no idempotency and no way to ask a server "do you have message X?".
But a server can accept a message only at the end-of-data line (``.``) of a transaction: a
connection lost before it aborts the transaction, nothing is delivered (RFC 5321 §4.1.1.4).
So every message is queued in the outbox (in the same transaction as the batch it belongs to)
before it is sent, with a deterministic Message-ID, and each row goes ``pending`` → (MAIL,
RCPT, DATA, body) → commit ``sending`` → ``.`` → 250 → commit ``delivered``:

* killed while a row is ``pending`` (anything up to the end-of-data line): the server
  had nothing it could accept; the row is sent again (same bytes, same Message-ID);
* killed after ``delivered`` was committed: it was sent once;
* killed while a row is ``sending``: the whole message had reached the server (or was
  about to); on restart the row is marked ``uncertain``, shown by ``relay status``, and
  not sent again unless the operator asks (``--resend MESSAGE_ID`` or
  ``--resend-uncertain``, after checking the server's log or the mailbox).

The residual window, honestly: from the moment the commit of ``sending`` is written (its
WAL frame reaches the page cache, which a killed process does not lose) until the end-of-data
line leaves the process: the commit's own fsync (2.7 ms median, 9.6 ms at the 90th
percentile on the test machine) and a few microseconds of Python. A SIGKILL there leaves
the message undelivered and marked ``uncertain`` (visible, not silent). Anywhere
else in ``sending`` the server holds the complete message; MTAs such as Postfix, Exim or
Sendmail queue it before they answer and keep it when the client goes away, so not
resending is right there, and resending would duplicate in the much larger window of the
server's processing and the answer's round trip. (A server that abandons a message when
its client disconnects before the answer, as aiosmtpd does, loses it instead: one more
reason to show the row as ``uncertain`` rather than assume either way.) The link lost
while waiting for that answer, without a crash, is ``uncertain`` too. A kill between any
two sends (every row ``pending`` or ``delivered``) always leaves exactly one message per
member. A resend carries the same bytes and Message-ID, so mail stores that collapse
duplicates by Message-ID show one.

A member without an email (or with one this relay cannot write to) is in the roster that
the others receive, but gets no message: the batch records it as skipped, with the reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import (
    ChainError,
    DecryptionError,
    EnvelopeError,
    InputError,
    MailError,
    RPCUnavailable,
    SpartacusError,
)
from ._relay_outbox import Delivery, Outbox, default_state_path, relay_status
from ._relay_plan import CampaignPlanner, RelayReport
from ._relay_render import (
    DEFAULT_DAPP_URL,
    DEFAULT_SENDER,
    CampaignInfo,
    MessageParts,
    campaign_link,
    compose_message,
    instructions_parts,
    progress_parts,
    roster_parts,
    update_parts,
    valid_address,
)
from ._relay_smtp import Mailer, SmtpSettings
from .chain import CampaignClient, ChainClient, FactoryClient
from .keys import KeyPair
from .relaynote import open_note

__all__ = [
    "DEFAULT_DAPP_URL",
    "DEFAULT_SENDER",
    "CampaignInfo",
    "MessageParts",
    "Relay",
    "RelayReport",
    "RelayService",
    "ServiceReport",
    "SmtpSettings",
    "campaign_link",
    "compose_message",
    "default_state_path",
    "instructions_parts",
    "progress_parts",
    "relay_status",
    "roster_parts",
    "update_parts",
    "valid_address",
]

log = logging.getLogger("spartacus.relay")

#: Blocks of ``CampaignCreated`` scanned again on each pass (a reorg may have replaced them).
REORG_MARGIN = 12


def _is_transient(exc: SpartacusError) -> bool:
    return isinstance(exc, RPCUnavailable) or bool(exc.context.get("transient"))


def _sleep(seconds: float, stop: Callable[[], bool]) -> bool:
    """Sleeps in short slices so a stop request is seen quickly; returns ``stop()``."""
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, 0.1))
    return True


@dataclass
class ServiceReport(Delivery):
    """What a relay service's run did: campaigns discovered, each campaign's report, deliveries."""

    factory: str = ""
    relay: str = ""
    discovered: list[str] = field(default_factory=list)
    campaigns: dict[str, RelayReport] = field(default_factory=dict)
    final: bool = False  # a service never is

    def absorb(self, other: ServiceReport) -> None:
        self.discovered += other.discovered
        for name in ("sent", "deferred", "failed", "uncertain"):
            getattr(self, name).extend(getattr(other, name))
        for address, report in other.campaigns.items():
            self.campaigns.setdefault(address, RelayReport(campaign=address)).absorb(report)

    def notes(self) -> dict[str, str]:
        return {a: r.note for a, r in self.campaigns.items() if r.note}

    def to_json(self) -> dict[str, Any]:
        return {
            "factory": self.factory,
            "relay": self.relay,
            "discovered": list(self.discovered),
            "campaigns": {a: r.to_json() for a, r in self.campaigns.items()},
            "sent": list(self.sent),
            "deferred": list(self.deferred),
            "failed": list(self.failed),
            "uncertain": list(self.uncertain),
        }


class _Runner:
    """The loop both relays share: passes until stopped, backing off on SMTP or RPC outages."""

    outbox: Outbox
    mailer: Mailer
    notify: Callable[[str], None]
    retry_base: float
    retry_max: float

    def _setup(
        self,
        smtp: SmtpSettings,
        retry_base: float,
        retry_max: float,
        max_attempts: int,
        notify: Callable[[str], None] | None,
    ) -> None:
        if retry_base <= 0 or retry_max < retry_base:
            raise InputError("retry delays: the first must be positive and the cap at least as large")
        self.smtp = smtp
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.notify = notify or log.info
        self.domain = smtp.sender.rsplit("@", 1)[1]
        self.mailer = Mailer(
            smtp, notify=self.notify, retry_base=retry_base, retry_max=retry_max, max_attempts=max_attempts
        )

    def close(self) -> None:
        self.outbox.close()

    @property
    def recovered(self) -> list[str]:
        return self.outbox.recovered

    def resend_uncertain(self, message_ids: Sequence[str] | None = None) -> int:
        """Queues the ``uncertain`` rows again (all, or those Message-IDs): the operator checked."""
        return self.outbox.resend_uncertain(message_ids)

    def _report(self) -> Any:
        raise NotImplementedError

    def _banner(self) -> str:
        raise NotImplementedError

    def _notes(self, report: Any) -> dict[str, str]:
        return {"": report.note} if report.note else {}

    def run_once(self, *, stop: Callable[[], bool] = lambda: False, report: Any = None) -> Any:
        raise NotImplementedError

    def run(self, *, once: bool = False, interval: float = 15.0, stop: Callable[[], bool] = lambda: False) -> Any:
        """Passes until ``stop()`` (or one pass with ``once``). An SMTP or RPC outage backs off
        exponentially and retries (with ``once`` it raises: a one-line error, nothing lost)."""
        total = self._report()
        total.uncertain.extend(self.recovered)
        self.notify(self._banner())
        failures = 0
        last: dict[str, str] = {}
        while not stop():
            report = self._report()
            try:
                self.run_once(stop=stop, report=report)
            except (MailError, RPCUnavailable) as exc:
                if once or not _is_transient(exc):
                    raise
                total.absorb(report)  # what the pass did before the outage
                failures += 1
                delay = min(self.retry_base * 2 ** (failures - 1), self.retry_max)
                self.notify(f"{exc.message}; retrying in {delay:.1f} s")
            else:
                failures = 0
                total.absorb(report)
                notes = self._notes(report)
                for key, note in notes.items():
                    if last.get(key) != note:
                        self.notify(note)
                last = notes
                if once or report.final:
                    return total
                due = self.outbox.next_due()
                delay = interval if due is None else max(0.05, min(interval, due - time.time()))
            if _sleep(delay, stop):
                break
        return total


class Relay(_Runner):
    """One member key relaying one campaign's roster over one SMTP server, with SQLite state."""

    def __init__(
        self,
        client: ChainClient,
        campaign: str,
        key: KeyPair,
        smtp: SmtpSettings,
        state_path: str | os.PathLike[str],
        *,
        dapp_url: str = DEFAULT_DAPP_URL,
        settle: float = 120.0,
        retry_base: float = 5.0,
        retry_max: float = 600.0,
        max_attempts: int = 30,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self._setup(smtp, retry_base, retry_max, max_attempts, notify)
        self.client = client
        self.campaign = CampaignClient(client, campaign)
        self.key = key
        identity = {
            "mode": "campaign",
            "campaign": self.campaign.address,
            "chain_id": str(client.chain_id),
            "member": key.compressed.hex(),
        }
        self.outbox = Outbox(state_path, identity, message_key=key.secret_bytes(), notify=self.notify)
        self.outbox.add_campaign(self.campaign.address)
        self.planner = CampaignPlanner(
            client,
            self.outbox,
            self.campaign.address,
            key,
            relay=False,
            domain=self.domain,
            dapp_url=dapp_url,
            settle=settle,
            notify=self.notify,
        )

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _report(self) -> RelayReport:
        return RelayReport(campaign=self.campaign.address)

    def _banner(self) -> str:
        return f"relay of campaign {self.campaign.address} started (state {self.outbox.path})"

    def run_once(self, *, stop: Callable[[], bool] = lambda: False, report: Any = None) -> RelayReport:
        """One pass: send what is queued, read the chain, form a batch if there are new members, send it.
        Fills ``report`` (a new one by default) as it goes, so it is meaningful even if the pass raises."""
        if report is None:
            report = self._report()
        assert isinstance(report, RelayReport)
        self.mailer.deliver(self.outbox, report, stop)  # what earlier passes queued needs no chain
        self.planner.plan(report)
        if not stop():
            self.mailer.deliver(self.outbox, report, stop)
        return report


class RelayService(_Runner):
    """One relay key serving every campaign of a factory that names it, with one SQLite state."""

    def __init__(
        self,
        client: ChainClient,
        factory: str,
        key: KeyPair,
        smtp: SmtpSettings,
        state_path: str | os.PathLike[str],
        *,
        dapp_url: str = DEFAULT_DAPP_URL,
        settle: float = 120.0,
        retry_base: float = 5.0,
        retry_max: float = 600.0,
        max_attempts: int = 30,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self._setup(smtp, retry_base, retry_max, max_attempts, notify)
        self.client = client
        self.factory = FactoryClient(client, factory)
        self.key = key
        self.dapp_url = dapp_url
        self.settle = settle
        identity = {
            "mode": "service",
            "factory": self.factory.address,
            "chain_id": str(client.chain_id),
            "relay": key.compressed.hex(),
        }
        self.outbox = Outbox(state_path, identity, message_key=key.secret_bytes(), notify=self.notify)
        self._planners: dict[str, CampaignPlanner] = {}

    def __enter__(self) -> RelayService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _report(self) -> ServiceReport:
        return ServiceReport(factory=self.factory.address, relay="0x" + self.key.compressed.hex())

    def _banner(self) -> str:
        known = len(self.outbox.campaigns())
        return (
            f"relay service 0x{self.key.compressed.hex()} started: serving the campaigns of factory"
            f" {self.factory.address} that name it ({known} known; state {self.outbox.path})"
        )

    def _notes(self, report: Any) -> dict[str, str]:
        assert isinstance(report, ServiceReport)
        return report.notes()

    def run_once(self, *, stop: Callable[[], bool] = lambda: False, report: Any = None) -> ServiceReport:
        """One pass: send what is queued, pick up new campaigns, read each one served, send."""
        if report is None:
            report = self._report()
        assert isinstance(report, ServiceReport)
        self.mailer.deliver(self.outbox, report, stop)
        self._discover(report)
        for row in self.outbox.campaigns("watching", "revealed"):
            if stop():
                return report
            planner = self._planners.get(row.address)
            if planner is None:
                planner = self._planners[row.address] = CampaignPlanner(
                    self.client,
                    self.outbox,
                    row.address,
                    self.key,
                    relay=True,
                    domain=self.domain,
                    dapp_url=self.dapp_url,
                    settle=self.settle,
                    notify=self.notify,
                    note_email=row.note_email,
                    note_name=row.note_name,
                )
            sub = report.campaigns.setdefault(row.address, RelayReport(campaign=row.address))
            try:
                planner.plan(sub)
            except RPCUnavailable:
                raise
            except (ChainError, DecryptionError, EnvelopeError, InputError) as exc:
                # One campaign's trouble (a node error about it, bytes that do not parse) stops no other.
                sub.note = f"campaign {row.address}: {exc.message} (tried again next pass)"
        if not stop():
            self.mailer.deliver(self.outbox, report, stop)
        return report

    def _discover(self, report: ServiceReport) -> None:
        """Campaigns created since the saved cursor that name this relay's key: recorded, with what
        their relay note gives (or why it gives nothing), in the same transaction as the cursor."""
        head = self.client.head()
        start = self.factory.deployed_at
        cursor = self.outbox.meta("cursor")
        if cursor is not None:
            start = max(start, int(cursor) - REORG_MARGIN + 1)
        if start > head:
            return
        mine = [
            c for c in self.factory.campaigns(from_block=start, to_block=head) if c.config.relay == self.key.compressed
        ]
        with self.outbox.tx() as db:
            for created in mine:
                note: dict[str, str | None] = {}
                if created.config.relay_note:
                    try:
                        opened = open_note(self.key, created.config.relay_note, created.campaign)
                        note = {"email": opened.email, "name": opened.name}
                    except (DecryptionError, EnvelopeError) as exc:
                        note = {"problem": exc.message}
                else:
                    note = {"problem": "none was given, so the organizer gets no progress e-mails"}
                if self.outbox.add_campaign(created.campaign, created.block_number, db=db, **note):
                    report.discovered.append(created.campaign)
                    self.notify(
                        f"serving campaign {created.campaign} (created in block {created.block_number})"
                        + (f"; relay note: {note['problem']}" if note.get("problem") else "")
                    )
            self.outbox.set_meta("cursor", str(head), db)
