"""The relay: after the reveal, every member gets the roster and the instructions by email, once.

A member of the campaign (normally the organizer) runs it with its member key and SMTP
settings. It rebuilds the roster like any member (:func:`spartacus.roster.build_roster`)
and mails each member one message: the roster (the names and contact fields each chose
to share), the organizer's instructions, the campaign's link and how to verify the count
on-chain; a text/plain and an HTML part (every member-provided text HTML-escaped).

**Batches.** A pass that finds readable members the state does not know yet forms a
*batch*: in one SQLite transaction it records them, stores the batch's messages (rendered
once: O(N) for N members, not one roster per recipient) and queues one outbox row per
recipient (member, kind, batch, a deterministic Message-ID). Batch 0 is the reveal. A
later batch (members who joined after the reveal) queues the full roster for each
newcomer and ONE ``update`` listing the newcomers for each earlier member, however many
joined together. While some live pledge cannot be read yet (the keepers are still
releasing) a batch waits, up to ``settle`` seconds of quiet, so that the members of one
reveal are not split over two batches.

A member without an email (or with one this relay cannot write to) is in the roster
that the others receive, but gets no message: the batch records it as skipped, with the
reason, and the report says so.

**Exactly once.** SMTP has no idempotency and no way to ask a server "do you have
message X?". But a server can accept a message only at the end-of-data line (``.``) of
a transaction: a connection lost before it aborts the transaction, nothing is delivered
(RFC 5321 §4.1.1.4). So each outbox row goes::

    pending ─ MAIL, RCPT, DATA, body ─▶ commit "sending" ─ "." ─▶ 250 ─▶ commit "delivered"
       │  RCPT/DATA 5xx ─▶ failed            │                 └─ 5xx ─▶ failed; 4xx ─▶ pending
       │  4xx ─▶ pending, retried later      └─ process killed, or link lost before the answer
       │  link down ─▶ pending, retried            ─▶ "uncertain": never resent automatically
       └  (exponential backoff)

* killed while a row is ``pending`` (anything up to the end-of-data line): the server
  had nothing it could accept; the row is sent again (same bytes, same Message-ID);
* killed after ``delivered`` was committed: it was sent once;
* killed while a row is ``sending``: the whole message had reached the server (or was
  about to); on restart the row is marked ``uncertain``, shown by ``relay status``, and
  not sent again unless the operator asks (``--resend-uncertain``, after checking the
  server's log or the mailbox).

The residual window, honestly: between the commit of ``sending`` and the end-of-data
line leaving the process there are a few microseconds of Python; a SIGKILL exactly there
leaves the message undelivered and marked ``uncertain`` (visible, not silent). Anywhere
else in ``sending`` the server holds the complete message; MTAs such as Postfix, Exim or
Sendmail queue it before they answer and keep it when the client goes away, so not
resending is right there, and resending would duplicate in the much larger window of the
server's processing and the answer's round trip. (A server that abandons a message when
its client disconnects before the answer, as aiosmtpd does, loses it instead: one more
reason to show the row as ``uncertain`` rather than assume either way.) The link lost
while waiting for that answer, without a crash, is ``uncertain`` too. A kill between any
two sends (every row ``pending`` or ``delivered``) always leaves exactly one message per
member. A resend (``--resend-uncertain``) carries the same bytes and Message-ID, so mail
stores that collapse duplicates by Message-ID show one.

One relay per state file: an exclusive lock (``STATE.lock``) refuses a second process.
The state file holds the roster (names, emails; no more than the member key next to it
can read from the chain): it is created with mode 0600. Each batch's messages are rendered
once and stored with the batch; a message's bytes are composed when it is sent, the same
bytes every time (the Date is the batch's, the MIME boundary derives from the Message-ID).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import os
import re
import smtplib
import socket
import sqlite3
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as _SMTP_POLICY
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any, Literal

from ._exceptions import InputError, MailError, RPCUnavailable, SpartacusError
from ._listener_state import check_identity, lock, open_state, transaction
from .chain import CampaignClient, CampaignStatus, ChainClient
from .envelope import parse
from .keys import KeyPair
from .roster import Roster, RosterEntry, build_roster
from .types import PledgeRecord, ReleaseRecord

__all__ = [
    "DEFAULT_DAPP_URL",
    "DEFAULT_SENDER",
    "CampaignInfo",
    "MessageParts",
    "Relay",
    "RelayReport",
    "SmtpSettings",
    "campaign_link",
    "default_state_path",
    "relay_status",
    "compose_message",
    "roster_parts",
    "update_parts",
    "valid_address",
]

log = logging.getLogger("spartacus.relay")

DEFAULT_DAPP_URL = "http://localhost:8501/"
DEFAULT_SENDER = "spartacus-relay@localhost"
Security = Literal["none", "starttls", "ssl"]

# 7-bit clean (quoted-printable bodies, RFC 2047 headers) and CRLF: any server takes it.
_POLICY = _SMTP_POLICY.clone(cte_type="7bit")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+|{_ATOM}(?:\.{_ATOM})*@localhost")
_EOL_RE = re.compile(rb"\r\n|\r|\n")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (            -- the messages of a batch, rendered once (O(N), not O(N^2))
    batch INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    block INTEGER NOT NULL,
    date TEXT NOT NULL,                         -- the Date header of all its messages
    roster_subject TEXT NOT NULL, roster_text TEXT NOT NULL, roster_html TEXT NOT NULL,
    update_subject TEXT, update_text TEXT, update_html TEXT   -- NULL for batch 0
);
CREATE TABLE IF NOT EXISTS members (           -- every member the relay has seen, and its batch
    pledge_index INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,                                 -- NULL: skipped (see skip_reason)
    skip_reason TEXT,
    batch INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    message_id TEXT PRIMARY KEY,                -- deterministic per (campaign, member, kind, batch)
    pledge_index INTEGER NOT NULL,
    kind TEXT NOT NULL,                         -- roster | update
    batch INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',     -- pending | sending | delivered | uncertain | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    updated REAL NOT NULL,
    UNIQUE (pledge_index, kind, batch)
);
"""
_ORDER = "ORDER BY o.batch, CASE o.kind WHEN 'roster' THEN 0 ELSE 1 END, o.pledge_index"
_ROW = "o.message_id, o.pledge_index, o.kind, o.batch, o.recipient, o.status, o.attempts, o.next_attempt, o.last_error"


def default_state_path(member_key_file: str | os.PathLike[str]) -> Path:
    """The relay's SQLite state next to the member key file: ``F.relay.sqlite``."""
    return Path(f"{os.fspath(member_key_file)}.relay.sqlite")


def valid_address(text: str) -> bool:
    """A plain ASCII addr-spec (``local@domain``) that any SMTP server can take in RCPT TO."""
    return isinstance(text, str) and _ADDRESS_RE.fullmatch(text) is not None


def campaign_link(dapp_url: str, campaign: str) -> str:
    """The campaign's page: ``{campaign}`` in the URL is replaced, else ``?campaign=`` is added."""
    if "{campaign}" in dapp_url:
        return dapp_url.replace("{campaign}", campaign)
    return f"{dapp_url}{'&' if '?' in dapp_url else '?'}campaign={campaign}"


# ─── Settings and reports ────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: host, port, ``none``/``starttls``/``ssl``, login, From address."""

    host: str
    port: int
    security: Security = "none"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not self.host or not self.host.strip() or any(c.isspace() for c in self.host):
            raise InputError(f"--smtp-host {self.host!r}: give the SMTP server's host name or IP address")
        if type(self.port) is not int or not 0 < self.port < 65536:
            raise InputError(f"--smtp-port {self.port!r}: a TCP port is 1 to 65535 (25, 465 or 587 usually)")
        if self.security not in ("none", "starttls", "ssl"):
            raise InputError(f"SMTP security {self.security!r}: use none, starttls or ssl")
        if not valid_address(self.sender):
            raise InputError(f"--from {self.sender!r} is not an e-mail address: give the address the mail comes from")
        if self.user and self.password is None:
            raise InputError("--smtp-user needs a password: set SPARTACUS_SMTP_PASSWORD or pass --smtp-password-file")
        if self.timeout <= 0:
            raise InputError("the SMTP timeout must be positive")

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class RelayReport:
    """What a run did, for the command's output and the tests."""

    campaign: str
    state: str | None = None
    note: str | None = None
    final: bool = False  # the campaign will never be revealed: nothing will ever be sent
    batches: list[int] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # Message-IDs delivered
    deferred: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # members recorded as skipped
    unreadable: list[dict[str, Any]] = field(default_factory=list)  # pledges the roster could not read

    def absorb(self, other: RelayReport) -> None:
        self.state, self.note, self.final = other.state, other.note, other.final
        self.unreadable = other.unreadable
        for name in ("batches", "sent", "deferred", "failed", "uncertain", "skipped"):
            getattr(self, name).extend(getattr(other, name))

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "state": self.state,
            "note": self.note,
            "final": self.final,
            "batches": list(self.batches),
            "sent": list(self.sent),
            "deferred": list(self.deferred),
            "failed": list(self.failed),
            "uncertain": list(self.uncertain),
            "skipped": list(self.skipped),
            "unreadable": list(self.unreadable),
        }


@dataclass(frozen=True)
class _Row:
    message_id: str
    member: int
    kind: str
    batch: int
    recipient: str
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None


# ─── Messages ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class CampaignInfo:
    """The public facts every message carries (from the contract and its creation event)."""

    address: str
    chain_id: int
    title: str
    purpose: str
    threshold: int
    count: int
    reveal_block: int
    link: str
    organizer_index: int | None = None


def _one_line(text: str, limit: int = 150) -> str:
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _text_member(m: RosterEntry, info: CampaignInfo) -> list[str]:
    lines = [f"- {m.name}" + (" (organizer)" if m.index == info.organizer_index else "")]
    lines += [f"    {key}: {value}" for key, value in m.contact.items()]
    if m.message:
        first, *rest = m.message.splitlines() or [""]
        lines += [f'    says: "{first}'] + [f"      {line}" for line in rest]
        lines[-1] += '"'
    return lines


def _html_member(m: RosterEntry, info: CampaignInfo) -> str:
    parts = [f"<strong>{_e(m.name)}</strong>" + (" (organizer)" if m.index == info.organizer_index else "")]
    parts += [f"{_e(key)}: {_e(value)}" for key, value in m.contact.items()]
    if m.message:
        parts.append(f'says: <em style="white-space:pre-wrap">&ldquo;{_e(m.message)}&rdquo;</em>')
    return '<li style="margin-bottom:.6em">' + "<br>".join(parts) + "</li>"


def _text_verify(info: CampaignInfo) -> list[str]:
    return [
        "VERIFY THE COUNT ON-CHAIN",
        "The count is the contract's, not this email's. On chain id "
        f"{info.chain_id}, the campaign is the contract {info.address}:",
        f"  * call its view pledgeCount() for the live count ({info.count} when this was written),",
        "    threshold() and state() (1 means revealed);",
        "  * or recount from its events: +1 for each Pledged, -1 for each Withdrawn",
        f"    (the reveal is its ThresholdReached event, in block {info.reveal_block});",
        f"  * with the command line: spartacus status {info.address} --network <an RPC URL of chain {info.chain_id}>",
    ]


def _html_verify(info: CampaignInfo) -> str:
    return (
        '<h2 style="font-size:1.05em">Verify the count on-chain</h2>'
        f"<p>The count is the contract's, not this email's. On chain id <code>{info.chain_id}</code>, "
        f"the campaign is the contract <code>{_e(info.address)}</code>:</p><ul>"
        f"<li>call its view <code>pledgeCount()</code> for the live count ({info.count} when this was "
        "written), <code>threshold()</code> and <code>state()</code> (1 means revealed);</li>"
        "<li>or recount from its events: +1 for each <code>Pledged</code>, &minus;1 for each "
        f"<code>Withdrawn</code> (the reveal is its <code>ThresholdReached</code> event, in block "
        f"{info.reveal_block});</li>"
        f"<li>with the command line: <code>spartacus status {_e(info.address)} --network &lt;an RPC URL of chain "
        f"{info.chain_id}&gt;</code></li></ul>"
    )


def _html_page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{_e(title)}</title></head>\n'
        '<body style="font-family:sans-serif;line-height:1.45;max-width:42em">\n'
        f"{body}\n</body></html>\n"
    )


@dataclass(frozen=True)
class MessageParts:
    """One batch's message of one kind, rendered once: the same for every recipient."""

    subject: str
    text: str
    html: str


_FOOTER = "This message was sent once to each member by the campaign's relay."


def roster_parts(info: CampaignInfo, roster: Roster, batch: int) -> MessageParts:
    """The message each member receives once: the whole roster, the instructions, the link, how to verify."""
    members = sorted(roster.members, key=lambda m: m.index)
    title = _one_line(info.title)
    subject = f"[Spartacus] {title}: revealed, {len(members)} members"
    intro = (
        f'"{title}" reached its threshold of {info.threshold} pledges'
        + (", and you joined after the reveal" if batch > 0 else "")
        + f". Here are the {len(members)} members, with the contact details each chose to share,"
        " and the organizer's instructions. Keep this private: it names people who trusted each other."
    )
    instructions = roster.instructions
    text = [f"{title}: the campaign is revealed", "", intro, ""]
    text += ["INSTRUCTIONS FROM THE ORGANIZER", ""]
    text += [instructions.rstrip() if instructions else "(The instructions could not be read: ask the organizer.)"]
    text += ["", f"MEMBERS ({len(members)})", ""]
    for m in members:
        text += _text_member(m, info)
    text += ["", "CAMPAIGN PAGE", info.link, "", *_text_verify(info), "", _FOOTER]

    page = [f'<h1 style="font-size:1.3em">{_e(title)}: the campaign is revealed</h1>', f"<p>{_e(intro)}</p>"]
    page.append('<h2 style="font-size:1.05em">Instructions from the organizer</h2>')
    if instructions:
        page.append(f'<pre style="white-space:pre-wrap;font-family:inherit">{_e(instructions.rstrip())}</pre>')
    else:
        page.append("<p><em>The instructions could not be read: ask the organizer.</em></p>")
    page.append(f'<h2 style="font-size:1.05em">Members ({len(members)})</h2><ul>')
    page += [_html_member(m, info) for m in members]
    page.append("</ul>")
    page.append(f'<h2 style="font-size:1.05em">Campaign page</h2><p><a href="{_e(info.link)}">{_e(info.link)}</a></p>')
    page += [_html_verify(info), f'<p style="color:#666">{_e(_FOOTER)}</p>']
    return MessageParts(subject, "\n".join(text) + "\n", _html_page(subject, "\n".join(page)))


def update_parts(info: CampaignInfo, newcomers: Sequence[RosterEntry], total: int) -> MessageParts:
    """One message per batch of late joiners, to each earlier member: the newcomers only."""
    members = sorted(newcomers, key=lambda m: m.index)
    title = _one_line(info.title)
    subject = f"[Spartacus] {title}: {len(members)} new member{'s' if len(members) != 1 else ''}"
    intro = (
        f'{len(members)} {"people" if len(members) != 1 else "person"} joined "{title}" after the reveal;'
        f" the campaign now has {total} members. Each newcomer received the full roster and the instructions."
    )
    text = [f"{title}: new members", "", intro, "", f"NEW MEMBERS ({len(members)})", ""]
    for m in members:
        text += _text_member(m, info)
    text += ["", "CAMPAIGN PAGE", info.link, "", *_text_verify(info), "", _FOOTER]

    page = [f'<h1 style="font-size:1.3em">{_e(title)}: new members</h1>', f"<p>{_e(intro)}</p>"]
    page.append(f'<h2 style="font-size:1.05em">New members ({len(members)})</h2><ul>')
    page += [_html_member(m, info) for m in members]
    page.append("</ul>")
    page.append(f'<h2 style="font-size:1.05em">Campaign page</h2><p><a href="{_e(info.link)}">{_e(info.link)}</a></p>')
    page += [_html_verify(info), f'<p style="color:#666">{_e(_FOOTER)}</p>']
    return MessageParts(subject, "\n".join(text) + "\n", _html_page(subject, "\n".join(page)))


def compose_message(
    parts: MessageParts,
    *,
    kind: str,
    batch: int,
    campaign: str,
    sender: str,
    recipient: str,
    message_id: str,
    date: str,
) -> bytes:
    """The bytes of one message. Deterministic (the Date is the batch's, the MIME boundary derives
    from the Message-ID), so a message sent again is byte-for-byte the same."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr(("Spartacus relay", sender))
    msg["To"] = recipient
    msg["Subject"] = parts.subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Spartacus-Campaign"] = campaign
    msg["X-Spartacus-Kind"] = kind
    msg["X-Spartacus-Batch"] = str(batch)
    msg.set_content(parts.text, cte="quoted-printable")
    msg.add_alternative(parts.html, subtype="html", cte="quoted-printable")
    # "=_" never occurs in quoted-printable bodies: a safe boundary.
    msg.set_boundary("=_spartacus_" + hashlib.sha256(message_id.encode()).hexdigest()[:32])
    return msg.as_bytes()


def _smtp_data(body: bytes) -> bytes:
    """The message as DATA sends it, without the end-of-data line: CRLF, dot-stuffed, CRLF-terminated."""
    data = _EOL_RE.sub(b"\r\n", body)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


# ─── SMTP outcomes ───────────────────────────────────────────────────────────────────


def _unavailable(where: str, exc: BaseException | str) -> MailError:
    reason = exc if isinstance(exc, str) else (str(exc) or exc.__class__.__name__)
    return MailError(
        f"SMTP server {where} unavailable ({reason}): check --smtp-host/--smtp-port and that it is up;"
        " nothing is lost, the relay resumes where it stopped",
        transient=True,
    )


def _is_transient(exc: SpartacusError) -> bool:
    return isinstance(exc, RPCUnavailable) or bool(exc.context.get("transient"))


def _answer(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}"


# ─── The relay ───────────────────────────────────────────────────────────────────────


class Relay:
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
        if retry_base <= 0 or retry_max < retry_base:
            raise InputError("retry delays: the first must be positive and the cap at least as large")
        self.client = client
        self.campaign = CampaignClient(client, campaign)
        self.key = key
        self.smtp = smtp
        self.dapp_url = dapp_url
        self.settle = settle
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_attempts = max_attempts
        self.notify = notify or log.info
        self.state_path = Path(state_path)
        self._sent = 0
        self._parts: dict[tuple[int, str], tuple[str, MessageParts]] = {}  # (batch, kind) -> (Date, parts)
        self._contacted = False  # a first connection failing on a bad host name is a typo, not an outage
        self._lock_fd = lock(self.state_path, "relay")
        try:
            self.db = open_state(self.state_path, _SCHEMA, "relay")
        except BaseException:
            os.close(self._lock_fd)
            raise
        try:
            self._check_identity()
            self.recovered = self._recover()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.db.close()
        os.close(self._lock_fd)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ─── State ─────────────────────────────────────────────────────────────────────

    def _check_identity(self) -> None:
        """One state file per campaign, chain and member key: refuse to mix them."""
        want = {
            "campaign": self.campaign.address,
            "chain_id": str(self.client.chain_id),
            "member": self.key.compressed.hex(),
        }
        check_identity(self.db, self.state_path, want)

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    def _recover(self) -> list[str]:
        """Rows a dead process left ``sending``: the server had the whole message. Never resent blindly."""
        rows = self.db.execute("SELECT message_id, pledge_index, recipient FROM outbox WHERE status = 'sending'")
        found = rows.fetchall()
        for message_id, member, recipient in found:
            self._set(
                message_id,
                "uncertain",
                "the relay stopped while the server was taking this message, so it was most likely delivered;"
                " check the server's log, and only if it is missing run `relay run --resend-uncertain`",
            )
            self.notify(f"uncertain: #{member} {recipient} {message_id} (the relay stopped mid-send; not resent)")
        return [row[0] for row in found]

    def resend_uncertain(self) -> int:
        """Queues the ``uncertain`` rows again (same bytes, same Message-ID): the operator checked."""
        n = self.db.execute(
            "UPDATE outbox SET status = 'pending', next_attempt = 0, updated = ? WHERE status = 'uncertain'",
            (time.time(),),
        ).rowcount
        return int(n)

    def _set(self, message_id: str, status: str, error: str | None = None, **extra: Any) -> None:
        fields = {"status": status, "last_error": error, "updated": time.time(), **extra}
        assigns = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(f"UPDATE outbox SET {assigns} WHERE message_id = ?", (*fields.values(), message_id))

    def _due(self) -> list[_Row]:
        rows = self.db.execute(
            f"SELECT {_ROW} FROM outbox o WHERE status = 'pending' AND next_attempt <= ? {_ORDER}", (time.time(),)
        )
        return [_Row(*r) for r in rows.fetchall()]

    def _next_due(self) -> float | None:
        row = self.db.execute("SELECT MIN(next_attempt) FROM outbox WHERE status = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    # ─── The loop ──────────────────────────────────────────────────────────────────

    def run(
        self, *, once: bool = False, interval: float = 15.0, stop: Callable[[], bool] = lambda: False
    ) -> RelayReport:
        """Passes until ``stop()`` (or one pass with ``once``). An SMTP or RPC outage backs off
        exponentially and retries (with ``once`` it raises: a one-line error, nothing lost)."""
        total = RelayReport(self.campaign.address, uncertain=list(self.recovered))
        failures = 0
        last_note: str | None = None
        while not stop():
            report = RelayReport(self.campaign.address)
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
                if report.note and report.note != last_note:
                    self.notify(report.note)
                last_note = report.note
                if once or report.final:
                    return total
                due = self._next_due()
                delay = interval if due is None else max(0.05, min(interval, due - time.time()))
            if _sleep(delay, stop):
                break
        return total

    def run_once(self, *, stop: Callable[[], bool] = lambda: False, report: RelayReport | None = None) -> RelayReport:
        """One pass: send what is queued, read the chain, form a batch if there are new members, send it.
        Fills ``report`` (a new one by default) as it goes, so it is meaningful even if the pass raises."""
        report = report if report is not None else RelayReport(self.campaign.address)
        self._deliver(report, stop)  # what earlier passes queued needs no chain
        status = self.campaign.status()
        report.state = status.state
        where = f"campaign {self.campaign.address}"
        if status.state in ("expired", "cancelled"):
            report.final = True
            report.note = (
                f"{where} is {status.state} with {status.count} of {status.threshold} pledges:"
                " it will never be revealed, so there is nothing to send"
            )
            return report
        if status.state != "revealed":
            report.note = (
                f"{where} is not revealed yet ({status.count} of {status.threshold} live pledges):"
                " nothing is sent before the reveal"
            )
            return report
        self._plan(status, report)
        if not stop():
            self._deliver(report, stop)
        return report

    # ─── Planning: batches ─────────────────────────────────────────────────────────

    def _plan(self, status: CampaignStatus, report: RelayReport) -> None:
        c = self.campaign
        ctx = c.context()
        pledges = c.pledges(to_block=status.block)
        releases = c.releases(to_block=status.block)
        roster = build_roster(
            ctx, pledges, releases, self.key, status.creator, instructions=c.created.config.instructions
        )
        report.unreadable = [s.to_json() for s in roster.skipped]
        known = {int(r[0]) for r in self.db.execute("SELECT pledge_index FROM members").fetchall()}
        new = [m for m in roster.members if m.index not in known]
        if not new:
            if not known:
                report.note = (
                    f"campaign {c.address} is revealed, but no pledge is readable yet:"
                    " waiting for the keepers' releases"
                )
            return
        wait = self._settling(pledges, releases, roster)
        if wait is not None:
            report.note = wait
            return
        organizer = next((p.index for p in pledges if p.live and p.pledger.lower() == status.creator.lower()), None)
        info = CampaignInfo(
            address=c.address,
            chain_id=ctx.chain_id,
            title=c.created.config.title,
            purpose=c.created.config.purpose,
            threshold=status.threshold,
            count=status.count,
            reveal_block=status.reveal_block,
            link=campaign_link(self.dapp_url, c.address),
            organizer_index=organizer,
        )
        self._form_batch(info, roster, new, status.block, report)

    def _settling(
        self, pledges: Sequence[PledgeRecord], releases: Sequence[ReleaseRecord], roster: Roster
    ) -> str | None:
        """A note while some live pledge is still unreadable and the keepers' releases changed less than
        ``settle`` seconds ago (wall clock, as seen by this relay); None when the batch can go."""
        unreadable = {s.index for s in roster.skipped}
        awaiting = sorted(p.index for p in pledges if p.live and p.index in unreadable and _parses(p.envelope))
        if not awaiting or self.settle <= 0:
            return None
        signature = f"{awaiting}|{len(releases)}"
        now = time.time()
        stored = dict(self.db.execute("SELECT key, value FROM meta WHERE key LIKE 'settle_%'").fetchall())
        if stored.get("settle_signature") != signature:
            self.db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("settle_signature", signature), ("settle_since", repr(now))],
            )
            since = now
        else:
            since = float(stored["settle_since"])
        left = self.settle - (now - since)
        if left <= 0:
            return None
        return (
            f"{len(awaiting)} pledge(s) of campaign {self.campaign.address} are not readable yet (keepers still"
            f" releasing?): waiting up to {left:.0f} s more so they join this batch"
        )

    def _form_batch(
        self, info: CampaignInfo, roster: Roster, new: list[RosterEntry], block: int, report: RelayReport
    ) -> None:
        """Records the newcomers, renders the batch's messages once and queues one outbox row per
        recipient, all in one transaction."""
        row = self.db.execute("SELECT MAX(batch) FROM batches").fetchone()
        batch = 0 if row[0] is None else int(row[0]) + 1
        now = time.time()
        total = len(roster.members)
        full = roster_parts(info, roster, batch)
        update = update_parts(info, new, total) if batch > 0 else None
        rows: list[tuple[str, int, str, int, str, float]] = []
        skipped: list[dict[str, Any]] = []
        with self._tx() as db:
            earlier = db.execute(
                "SELECT pledge_index, email FROM members WHERE email IS NOT NULL ORDER BY pledge_index"
            ).fetchall()
            db.execute(
                "INSERT INTO batches (batch, created, block, date, roster_subject, roster_text, roster_html,"
                " update_subject, update_text, update_html) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch,
                    now,
                    block,
                    formatdate(now, usegmt=True),
                    full.subject,
                    full.text,
                    full.html,
                    update and update.subject,
                    update and update.text,
                    update and update.html,
                ),
            )
            for m in sorted(new, key=lambda e: e.index):
                email, reason = _recipient_of(m)
                db.execute(
                    "INSERT INTO members (pledge_index, name, email, skip_reason, batch) VALUES (?, ?, ?, ?, ?)",
                    (m.index, m.name, email, reason, batch),
                )
                if email is None:
                    skipped.append({"member": m.index, "name": m.name, "reason": reason})
                else:
                    rows.append((self._message_id(m.index, "roster", batch), m.index, "roster", batch, email, now))
            if update is not None:
                rows += [(self._message_id(i, "update", batch), i, "update", batch, e, now) for i, e in earlier]
            db.executemany(
                "INSERT INTO outbox (message_id, pledge_index, kind, batch, recipient, updated)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        report.batches.append(batch)
        report.skipped += skipped
        self.notify(
            f"batch {batch}: {len(new)} new member(s) of {total}; {len(rows)} message(s) queued"
            + (f", {len(skipped)} member(s) skipped" if skipped else "")
        )
        for s in skipped:
            self.notify(f"skipped #{s['member']} {s['name']}: {s['reason']}")

    def _compose(self, row: _Row) -> bytes:
        cached = self._parts.get((row.batch, row.kind))
        if cached is None:
            prefix = "roster" if row.kind == "roster" else "update"
            date, subject, text, page = self.db.execute(
                f"SELECT date, {prefix}_subject, {prefix}_text, {prefix}_html FROM batches WHERE batch = ?",
                (row.batch,),
            ).fetchone()
            cached = self._parts[(row.batch, row.kind)] = (date, MessageParts(subject, text, page))
        date, parts = cached
        return compose_message(
            parts,
            kind=row.kind,
            batch=row.batch,
            campaign=self.campaign.address,
            sender=self.smtp.sender,
            recipient=row.recipient,
            message_id=row.message_id,
            date=date,
        )

    def _message_id(self, member: int, kind: str, batch: int) -> str:
        """Deterministic per (chain, campaign, member, kind, batch), keyed by the relay's member key
        so that nobody else can link a Message-ID to a pledge index."""
        key = hashlib.sha256(b"spartacus relay message-id\x00" + self.key.secret_bytes()).digest()
        name = f"{self.client.chain_id}:{self.campaign.address}:{member}:{kind}:{batch}".encode()
        tag = hmac.new(key, name, hashlib.sha256).hexdigest()[:32]
        domain = self.smtp.sender.rsplit("@", 1)[1]
        return f"<{tag}.{kind}{batch}@{domain}>"

    # ─── Delivery ──────────────────────────────────────────────────────────────────

    def _deliver(self, report: RelayReport, stop: Callable[[], bool]) -> None:
        due = self._due()
        if not due:
            return
        with self._session() as smtp:
            for row in due:
                if stop():
                    return
                self._send(smtp, row, report)

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        s = self.smtp
        context = ssl.create_default_context()
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            smtp.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
        except socket.gaierror as exc:
            _close(smtp)
            if not self._contacted:
                raise MailError(f"unknown SMTP host {s.host!r} ({exc.strerror}): check --smtp-host") from exc
            raise _unavailable(s.where, exc) from exc
        except smtplib.SMTPAuthenticationError as exc:
            _close(smtp)
            raise MailError(
                f"the SMTP server {s.where} refused the login of {s.user!r} ({_answer(exc.smtp_code, exc.smtp_error)}):"
                " check --smtp-user and the password (SPARTACUS_SMTP_PASSWORD or --smtp-password-file)"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _close(smtp)
            raise MailError(
                f"the SMTP server {s.where} does not support it: {exc}; check --smtp-starttls/--smtp-ssl"
            ) from exc
        except smtplib.SMTPConnectError as exc:
            _close(smtp)
            if exc.smtp_code >= 500:
                raise MailError(
                    f"the SMTP server {s.where} refuses connections ({_answer(exc.smtp_code, exc.smtp_error)})"
                ) from exc
            raise _unavailable(s.where, _answer(exc.smtp_code, exc.smtp_error)) from exc
        except ssl.SSLError as exc:
            _close(smtp)
            raise MailError(
                f"TLS with the SMTP server {s.where} failed ({exc.reason or exc}): check --smtp-starttls/--smtp-ssl"
                " and the port (465 is usually SSL, 587 STARTTLS)"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            _close(smtp)
            raise _unavailable(s.where, exc) from exc
        self._contacted = True
        try:
            yield smtp
        finally:
            with suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _send(self, smtp: smtplib.SMTP, row: _Row, report: RelayReport) -> None:
        """One transaction; see the module docstring for the states and why."""
        where = self.smtp.where
        data = _smtp_data(self._compose(row))
        try:
            code, resp = smtp.mail(self.smtp.sender)
            if code != 250:
                self._reset(smtp)
                if code >= 500:
                    raise MailError(
                        f"the SMTP server {where} refuses the sender {self.smtp.sender} ({_answer(code, resp)}):"
                        " pass --from with an address it accepts (and --smtp-user if it wants a login)"
                    )
                raise _unavailable(where, _answer(code, resp))  # 421 and other 4xx: the server, not the row
            code, resp = smtp.rcpt(row.recipient)
            if code not in (250, 251):
                self._refused(smtp, row, code, resp, report)
                return
            code, resp = smtp.docmd("DATA")
            if code != 354:
                self._refused(smtp, row, code, resp, report)
                return
            smtp.send(data)
        except MailError:
            raise
        except (smtplib.SMTPException, OSError) as exc:  # before the end of data: the server took nothing
            raise _unavailable(where, exc) from exc
        # From here the server may take the message: commit "sending" first (see the module docstring).
        self._set(row.message_id, "sending", attempts=row.attempts + 1)
        try:
            smtp.send(b".\r\n")
        except (smtplib.SMTPException, OSError) as exc:  # the end-of-data line never left: nothing taken
            self._set(row.message_id, "pending", f"link lost before the end of data: {exc}")
            raise _unavailable(where, exc) from exc
        try:
            code, resp = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._set(
                row.message_id,
                "uncertain",
                f"the link was lost while waiting for the server's answer to the whole message ({exc}): most likely"
                " delivered; check the server's log, and only if it is missing run `relay run --resend-uncertain`",
            )
            report.uncertain.append(row.message_id)
            self.notify(f"uncertain: #{row.member} {row.recipient} {row.message_id} (no answer to the message)")
            raise _unavailable(where, exc) from exc
        if 200 <= code < 300:
            self._set(row.message_id, "delivered")
            self._sent += 1
            report.sent.append(row.message_id)
            self.notify(f"sent {self._sent}: {row.kind} (batch {row.batch}) to #{row.member} {row.recipient}")
        elif code >= 500:
            self._fail(row, _answer(code, resp), report)
        else:
            self._defer(row, _answer(code, resp), report, attempts=row.attempts + 1)
            if code == 421:
                raise _unavailable(where, _answer(code, resp))

    def _refused(self, smtp: smtplib.SMTP, row: _Row, code: int, resp: bytes, report: RelayReport) -> None:
        """RCPT or DATA refused: 5xx is final for this row, 4xx is retried later, 421 is the server's."""
        self._reset(smtp)
        if code == 421:
            raise _unavailable(self.smtp.where, _answer(code, resp))
        if code >= 500:
            self._fail(row, _answer(code, resp), report)
        else:
            self._defer(row, _answer(code, resp), report)

    @staticmethod
    def _reset(smtp: smtplib.SMTP) -> None:
        with suppress(smtplib.SMTPException, OSError):
            smtp.rset()

    def _fail(self, row: _Row, answer: str, report: RelayReport) -> None:
        self._set(row.message_id, "failed", f"refused for good: {answer}")
        report.failed.append(row.message_id)
        self.notify(f"failed: {row.kind} (batch {row.batch}) to #{row.member} {row.recipient}: {answer} (not retried)")

    def _defer(self, row: _Row, answer: str, report: RelayReport, *, attempts: int | None = None) -> None:
        attempts = row.attempts + 1 if attempts is None else attempts
        if attempts >= self.max_attempts:
            self._set(row.message_id, "failed", f"gave up after {attempts} attempts; last answer: {answer}")
            report.failed.append(row.message_id)
            self.notify(f"failed: #{row.member} {row.recipient}: gave up after {attempts} attempts ({answer})")
            return
        delay = min(self.retry_base * 2 ** (attempts - 1), self.retry_max)
        self._set(row.message_id, "pending", answer, attempts=attempts, next_attempt=time.time() + delay)
        report.deferred.append(row.message_id)
        self.notify(f"deferred: #{row.member} {row.recipient}: {answer} (attempt {attempts}; next in {delay:.1f} s)")


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()


def _sleep(seconds: float, stop: Callable[[], bool]) -> bool:
    """Sleeps in short slices so a stop request is seen quickly; returns ``stop()``."""
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, 0.1))
    return True


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


# ─── Status (reads the state file only) ──────────────────────────────────────────────


def relay_status(state_path: str | os.PathLike[str], campaign: str | None = None) -> dict[str, Any]:
    """Delivered, pending, failed, uncertain and skipped, from a relay's state file (no chain needed)."""
    path = Path(state_path)
    if not path.is_file():
        raise InputError(
            f"no relay state at {path}: run `spartacus relay run` first, or pass the --state (or --member-key-file)"
            " it used"
        )
    try:
        db = sqlite3.connect(path)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            rows = db.execute(
                f"SELECT {_ROW}, o.updated, m.name FROM outbox o LEFT JOIN members m"
                f" ON m.pledge_index = o.pledge_index {_ORDER}"
            ).fetchall()
            skipped = db.execute(
                "SELECT pledge_index, name, skip_reason FROM members WHERE email IS NULL ORDER BY pledge_index"
            ).fetchall()
            members, batches = db.execute("SELECT COUNT(*), COUNT(DISTINCT batch) FROM members").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise InputError(f"{path} is not a relay state file ({exc}): pass the right --state") from exc
    owner = meta.get("campaign", "")
    if campaign is not None and owner.lower() != campaign.lower():
        raise InputError(f"state file {path} belongs to campaign {owner or '(none)'}, not {campaign}: pass its --state")
    groups: dict[str, list[dict[str, Any]]] = {"delivered": [], "pending": [], "failed": [], "uncertain": []}
    for *values, updated, name in rows:
        row = _Row(*values)
        item = {
            "member": row.member,
            "name": name,
            "email": row.recipient,
            "kind": row.kind,
            "batch": row.batch,
            "message_id": row.message_id,
            "status": row.status,
            "attempts": row.attempts,
            "error": row.last_error,
            "updated": updated,
        }
        if row.status == "pending":
            item["next_attempt"] = row.next_attempt
        # "sending": in flight right now, or the relay died mid-send (it becomes "uncertain" at its restart)
        groups["uncertain" if row.status == "sending" else row.status].append(item)
    skipped_list = [{"member": i, "name": n, "reason": r} for i, n, r in skipped]
    counts = {name: len(items) for name, items in groups.items()} | {"skipped": len(skipped_list)}
    return {
        "campaign": owner,
        "chain_id": int(meta["chain_id"]) if "chain_id" in meta else None,
        "members": int(members),
        "batches": int(batches),
        **groups,
        "skipped": skipped_list,
        "counts": counts,
    }
