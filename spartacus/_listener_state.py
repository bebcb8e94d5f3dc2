"""SQLite state shared by the listeners (keeper, relay): one owner-only file per listener,
one process at a time, explicit transactions, and a check that a file is not reused for
another campaign, chain or key."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hexbytes import HexBytes

from ._exceptions import InputError

__all__ = ["check_identity", "lock", "open_state", "transaction"]


def lock(path: Path, who: str) -> int:
    """An exclusive lock on ``PATH.lock``, held as long as the returned descriptor is open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        raise InputError(f"cannot create {lock_path} ({exc.strerror}): pass another --state") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(
            f"another {who} is running with the state file {path}: stop it first (one {who} per state file)"
        ) from None
    return fd


def open_state(path: Path, schema: str, who: str) -> sqlite3.Connection:
    """Opens (creating it owner-only) the state file, in autocommit mode with WAL and full syncs:
    a committed row is on disk before the next step (a send, a transaction) begins."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"cannot use {path} as the {who}'s state ({exc}): pass another --state") from exc
    return db


def check_identity(db: sqlite3.Connection, path: Path, want: Mapping[str, str]) -> None:
    """Records ``want`` in the ``meta`` table the first time; refuses a file made for other values."""
    for key, value in want.items():
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        elif row[0] != value:
            raise InputError(f"state file {path} belongs to {key} {row[0]}, not {value}: pass another --state")


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def tx_json(tx: dict[str, Any]) -> str:
    """A signed transaction's fields as a journal keeps them (bytes as 0x-hex), to sign a
    replacement with the same nonce after a restart."""
    return json.dumps({k: HexBytes(v).to_0x_hex() if isinstance(v, bytes) else v for k, v in tx.items()})


def tx_from_json(text: str) -> dict[str, Any]:
    """:func:`tx_json` read back."""
    tx: dict[str, Any] = json.loads(text)
    if "data" in tx:
        tx["data"] = HexBytes(tx["data"])
    return tx
