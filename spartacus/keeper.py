"""The keeper: releases its key shares only after an on-chain reveal, for members only.

A keeper holds one secp256k1 key. It watches a factory's ``CampaignCreated`` events
for campaigns that name its public key and, for each one:

* does nothing while the campaign is open, and never anything once it expired or was
  cancelled below its threshold (P3);
* once ``ThresholdReached`` is ``confirmations`` blocks deep, checks what its node's logs
  say against the contract's own storage at that block (the reveal, the live count, every
  pledge's index, status and digest, the configuration) and refuses to act on any mismatch;
* then opens its share of every live pledge (withdrawn ones never: P4) and publishes them
  (format v2, :mod:`spartacus.release`): each pledge's share together with that pledge's
  grant, in the same transaction (P5), in as many transactions as the bytes need; the
  instructions' share; the roster key to the campaign's relay service, if it names one;
* releases later pledges (the campaign goes on in public) as they arrive, as the campaign's
  late-joiner policy says: ``known`` late joiners are granted the instructions only.

What has been published is read back from the chain itself (index sets are in clear), and
the release keys are derived from the keeper's own key, so a restart never publishes the
same share or grant twice. The SQLite state holds what the chain cannot: the scan cursor
(saved chunk by chunk), the log chunk the node accepts, the pledges this keeper cannot open,
and a journal of signed transactions that were sent but not yet seen mined. A journaled
transaction is re-broadcast, or replaced with the same nonce and a higher fee while it is
stuck, never rebuilt: only one version of it can be mined, and nothing new is published
while the journal holds an unmined one.

A keeper runs for months: an unreachable node, an empty wallet, a fee spike or a failed pass
is logged and retried (the node with a backoff); it never ends the process nor leaves the
journal behind, and the next pass resumes a half-published release.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from ._exceptions import (
    ChainError,
    ContractRevert,
    DecryptionError,
    EnvelopeError,
    InputError,
    InsufficientFunds,
    RPCUnavailable,
    SpartacusError,
    TransactionPending,
)
from ._fees import format_wei
from ._listener_state import check_identity, lock, open_state, transaction, tx_from_json, tx_json
from ._quorum import NodesDisagree
from .chain import (
    CampaignClient,
    CampaignStatus,
    ChainClient,
    FactoryClient,
    KeySigner,
    NonceTaken,
    Sent,
    _created,
    keeper_address,
    pledge_digest,
)
from .envelope import ROLE_INSTRUCTIONS, open_share, parse
from .keys import KeyPair
from .release import LATE_KEY, ROSTER_KEY, Entry, build_release, published_by
from .types import CampaignContext, LateJoiners, PledgeRecord, Scope

__all__ = ["Keeper", "KeeperReport", "NodeMismatch", "default_confirmations", "check_against_storage"]

log = logging.getLogger("spartacus.keeper")

LOCAL_CHAIN_IDS = {1337, 31337}


def default_confirmations(chain_id: int) -> int:
    """Blocks a reveal must be buried under before a keeper acts: 0 on a local dev chain,
    12 elsewhere (about 2.5 minutes on Ethereum; L2s finalise their own blocks faster)."""
    return 0 if chain_id in LOCAL_CHAIN_IDS else 12


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    address TEXT PRIMARY KEY,
    keeper_index INTEGER NOT NULL,
    created_block INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'watching'   -- watching | revealed | closed
);
CREATE TABLE IF NOT EXISTS unreadable (       -- pledges whose share this keeper cannot open
    campaign TEXT NOT NULL, pledge_index INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (campaign, pledge_index)
);
CREATE TABLE IF NOT EXISTS inflight (         -- signed, sent, not yet seen mined: every version
    tx_hash TEXT PRIMARY KEY, campaign TEXT NOT NULL, raw BLOB NOT NULL, created REAL NOT NULL,
    nonce INTEGER, tx TEXT                    -- one nonce per release; tx: its fields (JSON), to re-price it
);
"""
# Columns added to the journal since the first v2 state files.
_MIGRATIONS = {"inflight": {"nonce": "INTEGER", "tx": "TEXT"}}


@dataclass
class KeeperReport:
    """What one pass did, for logs and tests."""

    discovered: list[str] = field(default_factory=list)
    released: dict[str, int] = field(default_factory=dict)  # campaign -> shares published this pass
    granted: dict[str, int] = field(default_factory=dict)  # campaign -> grants published this pass
    transactions: list[str] = field(default_factory=list)
    skipped: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    #: campaigns not acted on because the node's logs disagree with the contract's storage
    refused: dict[str, str] = field(default_factory=dict)


class NodeMismatch(ChainError):
    """The node's logs disagree with the contract's storage: the keeper refuses to act on them."""


def _mismatch(campaign: str, what: str) -> NodeMismatch:
    return NodeMismatch(
        f"campaign {campaign}: the node's logs disagree with the contract's storage ({what}); refusing to "
        "release anything for it. The node (or something between it and this keeper) may be lying: check "
        "--network, prefer https, or use another provider",
        campaign=campaign,
    )


def check_against_storage(
    campaign: CampaignClient,
    status: CampaignStatus,
    ctx: CampaignContext,
    pledges: list[PledgeRecord],
    block: int,
    to_release: list[PledgeRecord] | None = None,
) -> None:
    """Before a release, at ``block``: the reveal, the configuration, the live and total counts,
    and the index, status and digest of every pledge about to be released (``to_release``;
    default all) as the logs tell them must be the contract's (:class:`NodeMismatch`
    otherwise). Catches a node or proxy that injects, alters or hides logs; a node that lies
    about storage too is caught only by comparing providers."""
    address = campaign.address
    created = campaign.created
    config = created.config
    if status.state != "revealed" or not 0 < status.reveal_block <= block:
        raise _mismatch(address, f"state {status.state}, reveal block {status.reveal_block}")
    addresses = [keeper_address(k) for k in ctx.keepers]
    # abi.encodePacked of an address[] pads each element to a 32-byte word
    expected_hash = bytes(keccak(b"".join(bytes(12) + bytes.fromhex(a[2:]) for a in addresses)))
    got_hash = bytes(campaign._call("keeperSetHash", block=block))
    relay_tag = bytes(keccak(config.relay))[:12] if config.relay else bytes(12)
    facts = {
        "keeper set": (got_hash, expected_hash),
        "keeper threshold": (status.keeper_threshold, ctx.keeper_threshold),
        "keeper count": (status.keeper_count, len(ctx.keepers)),
        "scope": (status.scope, ctx.scope),
        "late-joiner policy": (status.late_joiners, ctx.late_joiners),
        "relay": (status.relay_tag, relay_tag),
        "creator": (status.creator.lower(), created.creator.lower()),
    }
    for what, (storage, logs) in facts.items():
        if storage != logs:
            shown = (
                (storage.hex(), logs.hex())
                if isinstance(storage, bytes) and isinstance(logs, bytes)
                else (storage, logs)
            )
            raise _mismatch(address, f"{what}: storage says {shown[0]}, the creation log {shown[1]}")
    live = [p for p in pledges if p.live]
    if len(live) != status.count:
        raise _mismatch(address, f"{len(live)} live pledges in the logs, pledgeCount() is {status.count}")
    if len(pledges) != status.total_pledges:
        raise _mismatch(address, f"{len(pledges)} pledges in the logs, totalPledges() is {status.total_pledges}")
    checked = pledges if to_release is None else to_release
    records = campaign.pledge_records([p.pledger for p in checked], block=block)
    newest: dict[str, int] = {}  # each pledger's last index: a withdrawn and renewed pledge has one record
    for p in pledges:
        newest[p.pledger] = max(p.index, newest.get(p.pledger, -1))
    for p, (index, state, _held, _late, digest) in zip(checked, records, strict=True):
        instructions = config.instructions if p.index == 0 else None
        want_state = "live" if p.live else "withdrawn"
        if index != p.index or state != want_state:
            # A pledger who withdrew and pledged again has one record, the newest: older indexes are gone.
            if not (newest.get(p.pledger, p.index) > p.index and not p.live):
                raise _mismatch(address, f"pledge #{p.index}: storage has #{index} {state}, the logs {want_state}")
            continue
        if p.live and digest != pledge_digest(p.log_data, instructions):
            raise _mismatch(address, f"pledge #{p.index}: its log does not hash to the digest in storage")


class Keeper:
    """One keeper key watching one factory on one chain."""

    def __init__(
        self,
        client: ChainClient,
        key: KeyPair,
        factory: str,
        state_path: str | Path,
        *,
        confirmations: int | None = None,
        max_release_bytes: int = 20_000,
    ) -> None:
        self.client = client
        self.key = key
        self.factory = FactoryClient(client, factory)
        self.signer = KeySigner(key.secret_bytes())
        self.confirmations = default_confirmations(client.chain_id) if confirmations is None else confirmations
        self.max_release_bytes = max_release_bytes
        self.state_path = Path(state_path)
        self._lock_fd = lock(self.state_path, "keeper")
        try:
            self.db = open_state(self.state_path, _SCHEMA, "keeper")
            # One state file per keeper key, factory and chain: never mix them.
            check_identity(
                self.db,
                self.state_path,
                {"keeper": self.key.address, "factory": self.factory.address, "chain_id": str(client.chain_id)},
            )
            self._migrate()
            self._load_log_window()
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    def close(self) -> None:
        self.db.close()
        os.close(self._lock_fd)

    def _migrate(self) -> None:
        for table, columns in _MIGRATIONS.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _load_log_window(self) -> None:
        """The log chunk (and range cap) this node accepted last time: no re-learning per start."""
        chunk, limit = self._meta("log_chunk"), self._meta("log_range_limit")
        if limit:
            self.client.log_range_limit = int(limit)
        if chunk:
            self.client.log_chunk = self.client._clamp(int(chunk))

    def _save_log_window(self) -> None:
        limit = self.client.log_range_limit
        if self._meta("log_chunk") != str(self.client.log_chunk) or self._meta("log_range_limit") != (
            str(limit) if limit else None
        ):
            with self._tx() as db:
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('log_chunk', ?)", (str(self.client.log_chunk),)
                )
                if limit:
                    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('log_range_limit', ?)", (str(limit),))

    # ─── The loop ──────────────────────────────────────────────────────────────────

    def run(
        self,
        *,
        once: bool = False,
        interval: float = 5.0,
        max_backoff: float = 30.0,
        stop: threading.Event | None = None,
    ) -> KeeperReport:
        """Passes until ``stop`` is set (or one pass with ``once``, which raises what it meets).

        Nothing a network does ends the loop: an unreachable or throttling node is retried
        with a doubling delay (``interval`` up to ``max_backoff``), an empty wallet is reported
        (address and amount) at every pass until it is funded, a transaction stuck at the fee
        cap is waited for, and any other failed pass is logged and retried with the backoff."""
        stop = stop or threading.Event()
        delay = interval
        while not stop.is_set():
            try:
                report = self.run_once()
                delay = interval
                if once:
                    return report
            except RPCUnavailable as exc:
                if once:
                    raise
                log.warning("node unreachable (%s); retrying in %.3g s", exc.message, delay)
                delay = min(max(delay, interval) * 2, max_backoff)
            except InsufficientFunds as exc:
                if once:
                    raise
                log.error(
                    "%s; retrying every %.3g s, it resumes by itself once funded", self._funds_message(exc), interval
                )
                delay = interval
            except TransactionPending as exc:
                if once:
                    raise
                log.warning("%s", exc.message)
                delay = interval
            except ChainError as exc:
                if once:
                    raise
                log.error("pass failed: %s; retrying in %.3g s", exc.message, delay)
                delay = min(max(delay, interval) * 2, max_backoff)
            finally:
                self._save_log_window()
            stop.wait(delay)
        return KeeperReport()

    def _funds_message(self, exc: InsufficientFunds) -> str:
        address = exc.context.get("address") or self.signer.address
        if "needed" in exc.context:
            return f"keeper out of funds: {exc.message}"
        try:
            balance = format_wei(self.client.balance(address))
        except RPCUnavailable:
            balance = "unknown"
        return f"keeper out of funds: {address} (balance {balance}) cannot pay for its next release ({exc.message})"

    def run_once(self) -> KeeperReport:
        report = KeeperReport()
        head = self.client.head()
        safe = head - self.confirmations
        if safe < 0:
            return report
        self._settle_inflight()
        self._discover(safe, report)
        for address, index in self.db.execute(
            "SELECT address, keeper_index FROM campaigns WHERE status != 'closed'"
        ).fetchall():
            try:
                self._serve(CampaignClient(self.client, address), index, safe, report)
            except (NodeMismatch, NodesDisagree) as exc:  # said loudly, acted on never; checked again next pass
                message = exc.message if isinstance(exc, NodeMismatch) else f"campaign {address}: {exc.message}"
                log.error("%s", message)
                report.refused[address] = message
            except (ChainError, RPCUnavailable):
                raise
            except SpartacusError as exc:  # one bad campaign never stops the others
                log.error("campaign %s: %s", address, exc.message)
        log.debug("pass done at block %d: %d transaction(s)", safe, len(report.transactions))
        return report

    # ─── Discovery ─────────────────────────────────────────────────────────────────

    def _discover(self, safe: int, report: KeeperReport) -> None:
        """New campaigns that name this keeper, from the scan cursor (the factory's deployment
        block at first) to ``safe``; the cursor is saved after every chunk of blocks."""
        scanned = self._meta("scanned")
        start = int(scanned) + 1 if scanned else self.factory.deployed_at
        if start > safe:
            return
        mine = self.key.public_key
        for stop, page in self.client.log_pages(
            self.factory.address, ["CampaignCreated"], from_block=start, to_block=safe
        ):
            with self._tx() as db:
                for entry in page:
                    created = _created(entry)
                    if mine not in created.config.keepers:
                        continue
                    index = created.config.keepers.index(mine)
                    inserted = db.execute(
                        "INSERT OR IGNORE INTO campaigns (address, keeper_index, created_block) VALUES (?, ?, ?)",
                        (created.campaign, index, created.block_number),
                    ).rowcount
                    if inserted:
                        report.discovered.append(created.campaign)
                        log.info("watching campaign %s (keeper #%d)", created.campaign, index)
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('scanned', ?)", (str(stop),))

    # ─── One campaign ──────────────────────────────────────────────────────────────

    def _serve(self, campaign: CampaignClient, index: int, safe: int, report: KeeperReport) -> None:
        status = campaign.status(block=safe)
        if status.state in ("expired", "cancelled"):
            # Below N for good: nothing is ever released (P3).
            self.db.execute("UPDATE campaigns SET status = 'closed' WHERE address = ?", (campaign.address,))
            report.closed.append(campaign.address)
            log.info("campaign %s %s below its threshold: never released", campaign.address, status.state)
            return
        if status.state != "revealed":
            return
        ctx = campaign.context()
        pledges = campaign.pledges(to_block=safe)
        self.db.execute("UPDATE campaigns SET status = 'revealed' WHERE address = ?", (campaign.address,))
        # What this keeper published, up to the head: its own releases are younger than `safe`.
        done = published_by(campaign.releases(), index, self.key.address)
        unreadable = {
            row[0]
            for row in self.db.execute(
                "SELECT pledge_index FROM unreadable WHERE campaign = ?", (campaign.address,)
            ).fetchall()
        }
        live = [p for p in pledges if p.live]
        todo = [p for p in live if p.index not in done.shared and p.index not in unreadable]
        public = ctx.scope is Scope.PUBLIC
        once_pending = ((-1 if public else ROSTER_KEY) not in done.instructions) or bool(
            ctx.relay and not public and not done.relay
        )
        if not todo and not once_pending:
            return
        check_against_storage(campaign, status, ctx, pledges, safe, to_release=todo + [p for p in live if p.index == 0])
        entries: list[Entry] = []
        skipped: list[tuple[int, str]] = []
        for pledge in todo:
            try:
                y = open_share(
                    parse(pledge.envelope), index, self.key, ctx, member_key33=pledge.member_key, pledger=pledge.pledger
                )
            except (EnvelopeError, DecryptionError) as exc:
                skipped.append((pledge.index, exc.message))
                continue
            known_late = pledge.late and ctx.late_joiners is LateJoiners.KNOWN
            entries.append(Entry(pledge.index, y, pledge.member_key, LATE_KEY if known_late else ROSTER_KEY))
        instructions_y = self._instructions_share(campaign, ctx, index, live, status.creator)
        first_instructions = None
        if instructions_y is not None and (-1 if public else ROSTER_KEY) not in done.instructions:
            first_instructions = instructions_y
        late_instructions = None
        needs_late = any(e.grant == LATE_KEY for e in entries)
        if instructions_y is not None and not public and LATE_KEY not in done.instructions and needs_late:
            late_instructions = instructions_y
        relay_key = ctx.relay if (ctx.relay and not public and not done.relay) else None
        if skipped:
            with self._tx() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO unreadable (campaign, pledge_index, reason) VALUES (?, ?, ?)",
                    [(campaign.address, i, reason) for i, reason in skipped],
                )
        if not entries and first_instructions is None and relay_key is None:
            return
        build = build_release(
            ctx,
            self.key,
            index,
            entries,
            instructions=first_instructions,
            late_instructions=late_instructions,
            relay_key=relay_key,
            max_bytes=self.max_release_bytes,
        )
        skipped += build.skipped
        for payload in build.payloads:
            report.transactions.append(self._publish(campaign, index, payload))
        report.released[campaign.address] = len(entries)
        report.granted[campaign.address] = 0 if public else len(entries) - len(build.skipped)
        if skipped:
            report.skipped[campaign.address] = skipped
        log.info(
            "campaign %s: released %d share(s) with their grants in %d transaction(s); %d skipped",
            campaign.address,
            len(entries),
            len(build.payloads),
            len(skipped),
        )

    def _instructions_share(
        self, campaign: CampaignClient, ctx: CampaignContext, index: int, live: list[PledgeRecord], creator: str
    ) -> bytes | None:
        """This keeper's share of the sealed instructions, or None (none, or unreadable: logged)."""
        sealed = campaign.created.config.instructions
        organizer = next((p for p in live if p.index == 0 and p.pledger.lower() == creator.lower()), None)
        if not sealed or organizer is None:
            return None
        try:
            return open_share(
                parse(sealed),
                index,
                self.key,
                ctx,
                member_key33=organizer.member_key,
                pledger=creator,
                role=ROLE_INSTRUCTIONS,
            )
        except (EnvelopeError, DecryptionError, InputError) as exc:
            log.warning("campaign %s: the sealed instructions do not open for this keeper: %s", campaign.address, exc)
            return None

    # ─── Transactions, journaled ───────────────────────────────────────────────────

    def _journal(self, campaign: str) -> Any:
        def record(sent: Sent) -> None:
            with self._tx() as db:
                db.execute(
                    "INSERT OR REPLACE INTO inflight (tx_hash, campaign, raw, created, nonce, tx)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (sent.tx_hash, campaign, sent.raw, time.time(), int(sent.tx["nonce"]), tx_json(sent.tx)),
                )

        return record

    def _forget(self, nonce: int | None, tx_hash: str | None = None) -> None:
        if nonce is None:
            self.db.execute("DELETE FROM inflight WHERE tx_hash = ?", (tx_hash,))
        else:
            self.db.execute("DELETE FROM inflight WHERE nonce = ?", (nonce,))

    def _publish(self, campaign: CampaignClient, index: int, payload: bytes) -> str:
        """Sends one release; every signed version is journaled before it is broadcast, so a crash
        re-sends (or re-prices) it rather than building another."""
        tx = self.client.prepare(self.signer, campaign.address, campaign.encode_release(index, payload))
        nonce = int(tx["nonce"])
        try:
            result = self.client.send_prepared(self.signer, tx, journal=self._journal(campaign.address))
        except (NonceTaken, ContractRevert):
            self._forget(nonce)
            raise
        self._forget(nonce)
        log.info("release %s mined (%d bytes) for %s", result.tx, len(payload), campaign.address)
        return result.tx

    def _settle_inflight(self) -> None:
        """Before anything new: every journaled release is mined, or its nonce went to another
        transaction. Waits for each (re-broadcasting it if the node lost it, replacing it while it
        is stuck); raises TransactionPending (the journal kept) when one is not mined in time."""
        rows = self.db.execute(
            "SELECT nonce, tx_hash, raw, tx, campaign FROM inflight ORDER BY nonce, created"
        ).fetchall()
        groups: dict[Any, list[Sent]] = {}
        for nonce, tx_hash, raw, tx, _campaign in rows:
            if nonce is None or tx is None:  # a journal row from before re-pricing: wait for it as it is
                self._settle_legacy(tx_hash, bytes(raw))
                continue
            groups.setdefault(int(nonce), []).append(Sent(tx_from_json(tx), tx_hash, bytes(raw)))
        for nonce, versions in sorted(groups.items()):
            campaign = next(str(r[4]) for r in rows if r[0] == nonce)
            try:
                result = self.client.wait_replacing(self.signer, versions, journal=self._journal(campaign))
            except (NonceTaken, ContractRevert) as exc:
                log.warning("journaled release (nonce %d) not mined: %s", nonce, exc.message)
                self._forget(nonce)
                continue
            log.info("journaled release %s mined for %s", result.tx, campaign)
            self._forget(nonce)

    def _settle_legacy(self, tx_hash: str, raw: bytes) -> None:
        if self.client.receipt(tx_hash) is None:
            try:
                self.client.broadcast(raw)
                self.client.wait(tx_hash)
            except TransactionPending:
                raise
            except ChainError as exc:
                log.warning("journaled release %s not mined: %s", tx_hash, exc.message)
        self._forget(None, tx_hash)
