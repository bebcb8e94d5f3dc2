"""The relay's outbox: the SQLite state of one relay, and the exactly-once bookkeeping of every message.

One state file serves either one campaign (the organizer's own relay, ``mode`` ``campaign``)
or every campaign that names a relay service's key (``mode`` ``service``): every table is
keyed by campaign, so each campaign has its own members, batches and outbox in the one file.

Tables::

    meta       identity (mode, chain, key, campaign or factory) and the service's scan cursor
    campaigns  every campaign served: its status, the relay note's contact (or why it has none),
               the settle clock, the signature of the chain data last planned
    parts      each batch's (or notice's) message of one kind, rendered once: (campaign, kind, batch)
    batches    when and at which block each batch was formed
    members    every member seen, its batch, its e-mail (or why it has none) and its tier:
               ``full`` (holds the roster: gets updates) or ``instructions`` (a ``known`` late joiner)
    notices    the organizer's progress milestones reached (50, 90, 100 % of N, the deadline)
    outbox     one row per message: (campaign, member, kind, batch) unique, a deterministic
               Message-ID, and its delivery state

A batch, a notice and their outbox rows are written in one transaction: a crash leaves all or
nothing of it. Each outbox row then goes through the states that :mod:`spartacus._relay_smtp`
drives (``pending`` -> ``sending`` -> ``delivered``, or ``failed``, or ``uncertain``); a row
found ``sending`` when the state is opened is marked ``uncertain`` and never resent unless the
operator asks (:meth:`Outbox.resend_uncertain`). See :mod:`spartacus.relay` for why.

The file holds names and e-mail addresses (no more than its key can read from the chain): it
is created with mode 0600, and an exclusive lock (``STATE.lock``) admits one process at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

from ._exceptions import InputError
from ._listener_state import check_identity, lock, open_state, transaction
from ._relay_render import MILESTONES, MessageParts, compose_message

__all__ = ["CampaignRow", "Delivery", "Outbox", "Row", "default_state_path", "relay_status"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    address TEXT PRIMARY KEY,
    created_block INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'watching',    -- watching | revealed | done | refused
    reason TEXT,                                -- why done or refused
    note_email TEXT, note_name TEXT, note_problem TEXT,
    settle_signature TEXT, settle_since REAL,
    planned TEXT                                -- signature of the chain data last planned in full
);
CREATE TABLE IF NOT EXISTS parts (             -- rendered once per (campaign, kind, batch): O(N), not O(N^2)
    campaign TEXT NOT NULL, kind TEXT NOT NULL, batch INTEGER NOT NULL,
    date TEXT NOT NULL,                         -- the Date header of all its messages
    subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT NOT NULL,
    PRIMARY KEY (campaign, kind, batch)
);
CREATE TABLE IF NOT EXISTS batches (
    campaign TEXT NOT NULL, batch INTEGER NOT NULL, created REAL NOT NULL, block INTEGER NOT NULL,
    PRIMARY KEY (campaign, batch)
);
CREATE TABLE IF NOT EXISTS members (
    campaign TEXT NOT NULL, pledge_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    email TEXT,                                 -- NULL: skipped (see skip_reason)
    skip_reason TEXT,
    batch INTEGER NOT NULL,
    tier TEXT NOT NULL DEFAULT 'full',          -- full | instructions
    PRIMARY KEY (campaign, pledge_index)
);
CREATE TABLE IF NOT EXISTS notices (
    campaign TEXT NOT NULL, milestone INTEGER NOT NULL, created REAL NOT NULL,
    message_id TEXT,                            -- NULL: folded into a later notice of the same pass
    PRIMARY KEY (campaign, milestone)
);
CREATE TABLE IF NOT EXISTS outbox (
    message_id TEXT PRIMARY KEY,                -- deterministic per (chain, campaign, member, kind, batch)
    campaign TEXT NOT NULL,
    pledge_index INTEGER NOT NULL,              -- -1: the organizer, from the relay note
    kind TEXT NOT NULL,                         -- roster | instructions | update | progress
    batch INTEGER NOT NULL,                     -- the batch; for progress, the milestone (50, 90, 100, 101)
    recipient TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',     -- pending | sending | delivered | uncertain | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    updated REAL NOT NULL,
    UNIQUE (campaign, pledge_index, kind, batch)
);
"""
_KINDS_ORDER = "CASE o.kind WHEN 'roster' THEN 0 WHEN 'instructions' THEN 1 WHEN 'update' THEN 2 ELSE 3 END"
_ORDER = f"ORDER BY o.campaign, o.batch, {_KINDS_ORDER}, o.pledge_index"
_ROW = (
    "o.message_id, o.campaign, o.pledge_index, o.kind, o.batch, o.recipient, o.status, o.attempts,"
    " o.next_attempt, o.last_error"
)


def default_state_path(key_file: str | os.PathLike[str]) -> Path:
    """The relay's SQLite state next to its key file (member or relay key): ``F.relay.sqlite``."""
    return Path(f"{os.fspath(key_file)}.relay.sqlite")


@dataclass(frozen=True)
class Row:
    """One outbox row."""

    message_id: str
    campaign: str
    member: int
    kind: str
    batch: int
    recipient: str
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None


@dataclass
class Delivery:
    """What delivery did: Message-IDs delivered, deferred, failed and left uncertain."""

    sent: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CampaignRow:
    """One served campaign, as the state knows it."""

    address: str
    created_block: int
    status: str
    reason: str | None
    note_email: str | None
    note_name: str | None
    note_problem: str | None


@dataclass(frozen=True)
class Member:
    """One member to record in a batch: its e-mail (or why none) and its tier."""

    index: int
    name: str
    email: str | None
    skip_reason: str | None
    tier: str  # full | instructions


class Outbox:
    """The state file of one relay (``mode`` ``campaign``) or relay service (``mode`` ``service``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        identity: Mapping[str, str],
        *,
        message_key: bytes,
        notify: Callable[[str], None],
    ) -> None:
        self.path = Path(path)
        self.notify = notify
        self._message_key = hashlib.sha256(b"spartacus relay message-id\x00" + message_key).digest()
        self._parts: dict[tuple[str, str, int], tuple[str, MessageParts]] = {}
        self._lock_fd = lock(self.path, "relay")
        try:
            self.db = open_state(self.path, _SCHEMA, "relay")
        except BaseException:
            os.close(self._lock_fd)
            raise
        try:
            self._check_identity(identity)
            self.recovered = self._recover()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.db.close()
        os.close(self._lock_fd)

    def _check_identity(self, want: Mapping[str, str]) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'mode'").fetchone()
        if row is not None and row[0] != want["mode"]:
            made = "a relay service (relay run --key-file)" if row[0] == "service" else "one campaign's relay"
            raise InputError(f"state file {self.path} belongs to {made}: pass another --state")
        check_identity(self.db, self.path, want)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with transaction(self.db) as db:
            yield db

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        (db or self.db).execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ─── Message-IDs ──────────────────────────────────────────────────────────────

    def message_id(self, chain_id: int, campaign: str, member: int, kind: str, batch: int, domain: str) -> str:
        """Deterministic per (chain, campaign, member, kind, batch), keyed by the relay's key so
        that nobody else can link a Message-ID to a pledge index."""
        name = f"{chain_id}:{campaign}:{member}:{kind}:{batch}".encode()
        tag = hmac.new(self._message_key, name, hashlib.sha256).hexdigest()[:32]
        return f"<{tag}.{kind}{batch}@{domain}>"

    # ─── Campaigns ────────────────────────────────────────────────────────────────

    def add_campaign(
        self, address: str, created_block: int = 0, db: sqlite3.Connection | None = None, **note: Any
    ) -> bool:
        """Records a campaign to serve (with what its relay note gave); False if already known."""
        cur = (db or self.db).execute(
            "INSERT OR IGNORE INTO campaigns (address, created_block, note_email, note_name, note_problem)"
            " VALUES (?, ?, ?, ?, ?)",
            (address, created_block, note.get("email"), note.get("name"), note.get("problem")),
        )
        return cur.rowcount == 1

    def campaigns(self, *statuses: str) -> list[CampaignRow]:
        query = "SELECT address, created_block, status, reason, note_email, note_name, note_problem FROM campaigns"
        args: tuple[str, ...] = ()
        if statuses:
            query += f" WHERE status IN ({','.join('?' * len(statuses))})"
            args = statuses
        rows = self.db.execute(query + " ORDER BY created_block, address", args).fetchall()
        return [CampaignRow(*r) for r in rows]

    def campaign(self, address: str) -> CampaignRow | None:
        return next((c for c in self.campaigns() if c.address == address), None)

    def set_campaign(self, address: str, **values: Any) -> None:
        assigns = ", ".join(f"{name} = ?" for name in values)
        self.db.execute(f"UPDATE campaigns SET {assigns} WHERE address = ?", (*values.values(), address))

    def planned(self, address: str) -> str | None:
        row = self.db.execute("SELECT planned FROM campaigns WHERE address = ?", (address,)).fetchone()
        return None if row is None else row[0]

    def settling_since(self, address: str, signature: str, now: float) -> float:
        """When the chain data behind ``signature`` was first seen (the settle clock restarts on change)."""
        row = self.db.execute(
            "SELECT settle_signature, settle_since FROM campaigns WHERE address = ?", (address,)
        ).fetchone()
        if row is None or row[0] != signature or row[1] is None:
            self.set_campaign(address, settle_signature=signature, settle_since=now)
            return now
        return float(row[1])

    # ─── Members and batches ──────────────────────────────────────────────────────

    def known_members(self, campaign: str) -> set[int]:
        rows = self.db.execute("SELECT pledge_index FROM members WHERE campaign = ?", (campaign,)).fetchall()
        return {int(r[0]) for r in rows}

    def queue_batch(
        self,
        campaign: str,
        block: int,
        parts: Mapping[str, MessageParts],
        members: Sequence[Member],
        messages: Callable[[int, list[tuple[int, str]]], list[tuple[str, int, str, str]]],
    ) -> tuple[int, int]:
        """In one transaction: a new batch of ``members`` with its rendered ``parts`` (by kind),
        and the outbox rows that ``messages(batch, earlier)`` returns as (message_id, member, kind,
        recipient), where ``earlier`` lists the (index, e-mail) of members who hold the roster.
        Returns (batch, number of rows queued)."""
        now = time.time()
        date = formatdate(now, usegmt=True)
        with self.tx() as db:
            row = db.execute("SELECT MAX(batch) FROM batches WHERE campaign = ?", (campaign,)).fetchone()
            batch = 0 if row[0] is None else int(row[0]) + 1
            earlier = [
                (int(i), str(e))
                for i, e in db.execute(
                    "SELECT pledge_index, email FROM members WHERE campaign = ? AND email IS NOT NULL"
                    " AND tier = 'full' ORDER BY pledge_index",
                    (campaign,),
                ).fetchall()
            ]
            db.execute(
                "INSERT INTO batches (campaign, batch, created, block) VALUES (?, ?, ?, ?)",
                (campaign, batch, now, block),
            )
            db.executemany(
                "INSERT INTO parts (campaign, kind, batch, date, subject, text, html) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(campaign, kind, batch, date, p.subject, p.text, p.html) for kind, p in parts.items()],
            )
            db.executemany(
                "INSERT INTO members (campaign, pledge_index, name, email, skip_reason, batch, tier)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(campaign, m.index, m.name, m.email, m.skip_reason, batch, m.tier) for m in members],
            )
            rows = messages(batch, earlier)
            db.executemany(
                "INSERT INTO outbox (message_id, campaign, pledge_index, kind, batch, recipient, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(mid, campaign, member, kind, batch, recipient, now) for mid, member, kind, recipient in rows],
            )
        return batch, len(rows)

    # ─── The organizer's notices ──────────────────────────────────────────────────

    def milestones(self, campaign: str) -> set[int]:
        rows = self.db.execute("SELECT milestone FROM notices WHERE campaign = ?", (campaign,)).fetchall()
        return {int(r[0]) for r in rows}

    def queue_notice(
        self,
        campaign: str,
        reached: Sequence[int],
        message: tuple[str, str, MessageParts] | None,
    ) -> None:
        """Records the milestones ``reached`` and, in the same transaction, the one message
        (message_id, recipient, parts) that announces the highest of them (None: no note)."""
        now = time.time()
        top = max(reached)
        with self.tx() as db:
            for milestone in reached:
                mid = message[0] if message is not None and milestone == top else None
                db.execute(
                    "INSERT INTO notices (campaign, milestone, created, message_id) VALUES (?, ?, ?, ?)",
                    (campaign, milestone, now, mid),
                )
            if message is not None:
                mid, recipient, p = message
                db.execute(
                    "INSERT INTO parts (campaign, kind, batch, date, subject, text, html)"
                    " VALUES (?, 'progress', ?, ?, ?, ?, ?)",
                    (campaign, top, formatdate(now, usegmt=True), p.subject, p.text, p.html),
                )
                db.execute(
                    "INSERT INTO outbox (message_id, campaign, pledge_index, kind, batch, recipient, updated)"
                    " VALUES (?, ?, -1, 'progress', ?, ?, ?)",
                    (mid, campaign, top, recipient, now),
                )

    # ─── Delivery states ──────────────────────────────────────────────────────────

    def _recover(self) -> list[str]:
        """Rows a dead process left ``sending``: the server had the whole message. Never resent blindly."""
        found = self.db.execute(
            "SELECT message_id, pledge_index, recipient FROM outbox WHERE status = 'sending'"
        ).fetchall()
        for message_id, member, recipient in found:
            self.set(
                message_id,
                "uncertain",
                "the relay stopped while the server was taking this message, so it was most likely delivered;"
                " check the server's log, and only if it is missing run `relay run --resend MESSAGE_ID`"
                " (or --resend-uncertain)",
            )
            who = "the organizer" if member < 0 else f"#{member}"
            self.notify(f"uncertain: {who} {recipient} {message_id} (the relay stopped mid-send; not resent)")
        return [row[0] for row in found]

    def resend_uncertain(self, message_ids: Sequence[str] | None = None) -> int:
        """Queues ``uncertain`` rows again (same bytes, same Message-ID): the operator checked.
        All of them, or only ``message_ids`` (each must be an uncertain row of this state)."""
        now = time.time()
        if message_ids is None:
            n = self.db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt = 0, updated = ? WHERE status = 'uncertain'", (now,)
            ).rowcount
            return int(n)
        with self.tx() as db:
            for mid in message_ids:
                n = db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt = 0, updated = ?"
                    " WHERE message_id = ? AND status = 'uncertain'",
                    (now, mid),
                ).rowcount
                if n != 1:
                    raise InputError(
                        f"--resend {mid}: no uncertain message with that Message-ID in {self.path}"
                        " (see `relay status`): nothing was queued"
                    )
        return len(message_ids)

    def set(self, message_id: str, status: str, error: str | None = None, **extra: Any) -> None:
        fields = {"status": status, "last_error": error, "updated": time.time(), **extra}
        assigns = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(f"UPDATE outbox SET {assigns} WHERE message_id = ?", (*fields.values(), message_id))

    def due(self) -> list[Row]:
        rows = self.db.execute(
            f"SELECT {_ROW} FROM outbox o WHERE status = 'pending' AND next_attempt <= ? {_ORDER}", (time.time(),)
        )
        return [Row(*r) for r in rows.fetchall()]

    def next_due(self) -> float | None:
        row = self.db.execute("SELECT MIN(next_attempt) FROM outbox WHERE status = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def compose(self, row: Row, sender: str) -> bytes:
        key = (row.campaign, row.kind, row.batch)
        cached = self._parts.get(key)
        if cached is None:
            date, subject, text, page = self.db.execute(
                "SELECT date, subject, text, html FROM parts WHERE campaign = ? AND kind = ? AND batch = ?", key
            ).fetchone()
            cached = self._parts[key] = (date, MessageParts(subject, text, page))
        date, parts = cached
        return compose_message(
            parts,
            kind=row.kind,
            batch=row.batch,
            campaign=row.campaign,
            sender=sender,
            recipient=row.recipient,
            message_id=row.message_id,
            date=date,
        )


# ─── Status (reads the state file only) ──────────────────────────────────────────────


def _groups(rows: list[tuple[Any, ...]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {"delivered": [], "pending": [], "failed": [], "uncertain": []}
    for *values, updated, name in rows:
        row = Row(*values)
        item: dict[str, Any] = {
            "campaign": row.campaign,
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
        if row.kind == "progress":
            item["milestone"] = MILESTONES.get(row.batch, str(row.batch))
        if row.status == "pending":
            item["next_attempt"] = row.next_attempt
        # "sending": in flight right now, or the relay died mid-send (it becomes "uncertain" at its restart)
        groups["uncertain" if row.status == "sending" else row.status].append(item)
    return groups


def relay_status(state_path: str | os.PathLike[str], campaign: str | None = None) -> dict[str, Any]:
    """Delivered, pending, failed, uncertain and skipped, from a relay's state file (no chain needed):
    of one campaign (``campaign``, or the only one of a campaign relay's file), or of every campaign
    a relay service serves (``campaign`` None, with a ``campaigns`` summary)."""
    path = Path(state_path)
    if not path.is_file():
        raise InputError(
            f"no relay state at {path}: run `spartacus relay run` first, or pass the --state (or key file) it used"
        )
    try:
        db = sqlite3.connect(path)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            service = meta.get("mode") == "service"
            if campaign is None and not service:
                campaign = meta.get("campaign")
            where, args = ("WHERE o.campaign = ? COLLATE NOCASE", (campaign,)) if campaign else ("", ())
            rows = db.execute(
                f"SELECT {_ROW}, o.updated, m.name FROM outbox o LEFT JOIN members m"
                f" ON m.campaign = o.campaign AND m.pledge_index = o.pledge_index {where} {_ORDER}",
                args,
            ).fetchall()
            mwhere = "AND campaign = ? COLLATE NOCASE" if campaign else ""
            skipped = db.execute(
                f"SELECT campaign, pledge_index, name, skip_reason FROM members WHERE email IS NULL {mwhere}"
                " ORDER BY campaign, pledge_index",
                args,
            ).fetchall()
            members, batches = db.execute(
                f"SELECT COUNT(*), COUNT(DISTINCT campaign || ':' || batch) FROM members WHERE 1 {mwhere}", args
            ).fetchone()
            served = db.execute(
                "SELECT address, status, reason, note_email IS NOT NULL, note_problem FROM campaigns"
                " ORDER BY created_block, address"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise InputError(f"{path} is not a relay state file ({exc}): pass the right --state") from exc
    if campaign is not None and not any(a.lower() == campaign.lower() for a, *_ in served):
        owner = meta.get("campaign") or f"the campaigns of factory {meta.get('factory')}"
        raise InputError(f"state file {path} belongs to {owner}, not to {campaign}: pass its --state")
    groups = _groups(rows)
    skipped_list = [{"campaign": c, "member": i, "name": n, "reason": r} for c, i, n, r in skipped]
    counts = {name: len(items) for name, items in groups.items()} | {"skipped": len(skipped_list)}
    out: dict[str, Any] = {
        "campaign": campaign or "",
        "chain_id": int(meta["chain_id"]) if "chain_id" in meta else None,
        "mode": meta.get("mode", "campaign"),
        "members": int(members),
        "batches": int(batches),
        **groups,
        "skipped": skipped_list,
        "counts": counts,
    }
    if service:
        out["factory"] = meta.get("factory")
        out["relay"] = meta.get("relay")
        out["campaigns"] = [
            {"address": a, "status": s, "reason": r, "progress_notices": bool(n), "note_problem": p}
            for a, s, r, n, p in served
            if campaign is None or a.lower() == campaign.lower()
        ]
    return out
