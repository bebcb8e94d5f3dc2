"""The keeper: releases its key shares only after an on-chain reveal, for members only.

A keeper holds one secp256k1 key. It watches a factory's ``CampaignCreated`` events
for campaigns that name its public key and, for each one:

* does nothing while the campaign is open, and never anything once it expired or was
  cancelled below its threshold (P3);
* once ``ThresholdReached`` is ``confirmations`` blocks deep, opens its share of every
  live pledge (withdrawn ones never: P4) and publishes them: encrypted under its
  campaign release key, which it wraps to each member key (``members`` scope), or in
  clear (``public`` scope); in as many transactions as the bytes need;
* releases later pledges (the campaign goes on in public) as they arrive.

What has been published is read back from the chain itself (the keeper can decrypt
its own releases), so a restart never publishes the same share or grant twice. The
SQLite state holds what the chain cannot: the release keys, the scan cursor, and a
journal of signed transactions that were sent but not yet seen mined, which is
re-broadcast (same nonce, same hash) rather than rebuilt after a crash.
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

from hexbytes import HexBytes

from ._exceptions import ChainError, DecryptionError, EnvelopeError, RPCUnavailable, SpartacusError
from ._listener_state import check_identity, lock, open_state, transaction
from .chain import CampaignClient, ChainClient, FactoryClient, KeySigner
from .envelope import open_share, parse
from .keys import KeyPair
from .release import (
    GrantRecord,
    PublicSharesRecord,
    SharesRecord,
    build_release,
    decrypt_shares_record,
    new_release_key,
    parse_release,
)
from .types import CampaignContext, Scope

__all__ = ["Keeper", "KeeperReport", "default_confirmations"]

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
    release_key BLOB NOT NULL,
    created_block INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'watching'   -- watching | revealed | closed
);
CREATE TABLE IF NOT EXISTS unreadable (       -- pledges whose share this keeper cannot open
    campaign TEXT NOT NULL, pledge_index INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (campaign, pledge_index)
);
CREATE TABLE IF NOT EXISTS inflight (         -- signed, sent, not yet seen mined
    tx_hash TEXT PRIMARY KEY, campaign TEXT NOT NULL, raw BLOB NOT NULL, created REAL NOT NULL
);
"""


@dataclass
class KeeperReport:
    """What one pass did, for logs and tests."""

    discovered: list[str] = field(default_factory=list)
    released: dict[str, int] = field(default_factory=dict)  # campaign -> shares published this pass
    granted: dict[str, int] = field(default_factory=dict)  # campaign -> grants published this pass
    transactions: list[str] = field(default_factory=list)
    skipped: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)


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
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    def close(self) -> None:
        self.db.close()
        os.close(self._lock_fd)

    # ─── The loop ──────────────────────────────────────────────────────────────────

    def run(
        self,
        *,
        once: bool = False,
        interval: float = 5.0,
        max_backoff: float = 30.0,
        stop: threading.Event | None = None,
    ) -> KeeperReport:
        """Passes until ``stop`` is set (or one pass with ``once``); RPC outages back off and retry."""
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
                log.warning("node unreachable (%s); retrying in %.0f s", exc.message, delay)
                delay = min(max(delay, interval) * 2, max_backoff)
            stop.wait(delay)
        return KeeperReport()

    def run_once(self) -> KeeperReport:
        report = KeeperReport()
        head = self.client.head()
        safe = head - self.confirmations
        if safe < 0:
            return report
        self._settle_inflight()
        self._discover(safe, report)
        for address, index, release_key in self.db.execute(
            "SELECT address, keeper_index, release_key FROM campaigns WHERE status != 'closed'"
        ).fetchall():
            try:
                self._serve(CampaignClient(self.client, address), index, bytes(release_key), safe, report)
            except (ChainError, RPCUnavailable):
                raise
            except SpartacusError as exc:  # one bad campaign never stops the others
                log.error("campaign %s: %s", address, exc.message)
        log.debug("pass done at block %d: %d transaction(s)", safe, len(report.transactions))
        return report

    # ─── Discovery ─────────────────────────────────────────────────────────────────

    def _discover(self, safe: int, report: KeeperReport) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'scanned'").fetchone()
        start = int(row[0]) + 1 if row else 0
        if start > safe:
            return
        mine = self.key.public_key
        for created in self.factory.campaigns(from_block=start, to_block=safe):
            if mine not in created.config.keepers:
                continue
            index = created.config.keepers.index(mine)
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO campaigns (address, keeper_index, release_key, created_block)"
                " VALUES (?, ?, ?, ?)",
                (created.campaign, index, new_release_key(), created.block_number),
            ).rowcount
            if inserted:
                report.discovered.append(created.campaign)
                log.info("watching campaign %s (keeper #%d)", created.campaign, index)
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('scanned', ?)", (str(safe),))

    # ─── One campaign ──────────────────────────────────────────────────────────────

    def _serve(self, campaign: CampaignClient, index: int, release_key: bytes, safe: int, report: KeeperReport) -> None:
        status = campaign.status(block=safe)
        if status.state in ("expired", "cancelled"):
            # Below N for good: nothing is ever released (P3).
            self.db.execute("UPDATE campaigns SET status = 'closed' WHERE address = ?", (campaign.address,))
            report.closed.append(campaign.address)
            log.info("campaign %s %s below its threshold: never released", campaign.address, status.state)
            return
        if status.state != "revealed":
            return
        self.db.execute("UPDATE campaigns SET status = 'revealed' WHERE address = ?", (campaign.address,))
        ctx = campaign.context()
        live = [p for p in campaign.pledges(to_block=safe) if p.live]
        shared, granted = self._published(campaign, ctx, index, release_key)
        unreadable = {
            row[0]
            for row in self.db.execute(
                "SELECT pledge_index FROM unreadable WHERE campaign = ?", (campaign.address,)
            ).fetchall()
        }

        shares: dict[int, bytes] = {}
        skipped: list[tuple[int, str]] = []
        for pledge in live:
            if pledge.index in shared or pledge.index in unreadable:
                continue
            try:
                shares[pledge.index] = open_share(
                    parse(pledge.envelope), index, self.key, ctx, member_key33=pledge.member_key, pledger=pledge.pledger
                )
            except (EnvelopeError, DecryptionError) as exc:
                skipped.append((pledge.index, exc.message))
        grants = {p.index: p.member_key for p in live if p.index not in granted} if ctx.scope is Scope.MEMBERS else {}
        if skipped:
            with self._tx() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO unreadable (campaign, pledge_index, reason) VALUES (?, ?, ?)",
                    [(campaign.address, i, reason) for i, reason in skipped],
                )
        if not shares and not grants:
            return
        build = build_release(ctx, index, release_key, shares, grants, max_bytes=self.max_release_bytes)
        skipped += build.skipped
        for payload in build.payloads:
            report.transactions.append(self._publish(campaign, index, payload))
        report.released[campaign.address] = len(shares)
        report.granted[campaign.address] = len(grants) - len(build.skipped)
        if skipped:
            report.skipped[campaign.address] = skipped
        log.info(
            "campaign %s: released %d share(s), %d grant(s) in %d transaction(s); %d skipped",
            campaign.address,
            len(shares),
            report.granted[campaign.address],
            len(build.payloads),
            len(skipped),
        )

    def _published(
        self, campaign: CampaignClient, ctx: CampaignContext, index: int, release_key: bytes
    ) -> tuple[set[int], set[int]]:
        """Pledge indexes this keeper already shared and granted, read back from the chain."""
        shared: set[int] = set()
        granted: set[int] = set()
        for rel in campaign.releases():
            if rel.keeper_index != index or rel.keeper != self.key.address:
                continue
            try:
                records = parse_release(rel.data)
            except EnvelopeError:
                continue
            for record in records:
                if isinstance(record, GrantRecord):
                    granted.update(i for i, _ in record.entries)
                elif isinstance(record, PublicSharesRecord):
                    shared.update(i for i, _ in record.entries)
                elif isinstance(record, SharesRecord):
                    try:
                        shared.update(i for i, _ in decrypt_shares_record(record, release_key, ctx, index))
                    except DecryptionError:  # under an older release key (state file lost): re-release
                        continue
        return shared, granted

    # ─── Transactions, journaled ───────────────────────────────────────────────────

    def _publish(self, campaign: CampaignClient, index: int, payload: bytes) -> str:
        """Sends one release; journals the signed bytes first so a crash re-sends, not rebuilds."""
        tx = self.client.prepare(self.signer, campaign.address, campaign.encode_release(index, payload))
        raw = self.signer.sign(tx)
        tx_hash = HexBytes(self.client.w3.keccak(raw)).to_0x_hex()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO inflight (tx_hash, campaign, raw, created) VALUES (?, ?, ?, ?)",
                (tx_hash, campaign.address, raw, time.time()),
            )
        self.client.broadcast(raw)
        self.client.wait(tx_hash)
        self.db.execute("DELETE FROM inflight WHERE tx_hash = ?", (tx_hash,))
        log.info("release %s mined (%d bytes) for %s", tx_hash, len(payload), campaign.address)
        return tx_hash

    def _settle_inflight(self) -> None:
        """After a crash: wait for journaled transactions (re-broadcasting them if lost)."""
        for tx_hash, raw in self.db.execute("SELECT tx_hash, raw FROM inflight").fetchall():
            if self.client.receipt(tx_hash) is None:
                try:
                    self.client.broadcast(bytes(raw))
                except ChainError as exc:  # nonce used by another tx, or now refused: drop it
                    log.warning("journaled release %s not re-sent: %s", tx_hash, exc.message)
                    self.db.execute("DELETE FROM inflight WHERE tx_hash = ?", (tx_hash,))
                    continue
                try:
                    self.client.wait(tx_hash)
                except ChainError as exc:
                    log.warning("journaled release %s failed: %s", tx_hash, exc.message)
            self.db.execute("DELETE FROM inflight WHERE tx_hash = ?", (tx_hash,))
