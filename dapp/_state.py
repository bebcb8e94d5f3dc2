"""The dApp's page logic, free of Streamlit so that it can be tested (and benchmarked) alone.

The pages (``dapp/app.py``, ``dapp/pages/*.py``) and ``_ui.py`` stay thin over this module,
which itself stays thin over the core package (:mod:`spartacus`):

* settings from the environment and the chain connection;
* formatting (wei, durations, addresses) and escaping of on-chain text (anyone can write
  a campaign's title: it is shown as text, never as Markdown that could load images);
* the campaign view: static facts from the ``CampaignCreated`` event, live state from the
  contract, and the history of the live count rebuilt from events, incrementally;
* validation of the create and pledge forms, with messages that say what to do;
* transactions prepared once and sent either with a local account or by a browser wallet
  (calldata built here, signed and sent by the wallet);
* member key files (the exact format of :mod:`spartacus.keys`) and roster exports.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from spartacus._exceptions import ContractRevert, InputError, KeyFileError, SpartacusError
from spartacus.chain import (
    MAX_DURATION,
    MAX_KEEPERS,
    MAX_THRESHOLD,
    CampaignClient,
    CampaignConfig,
    ChainClient,
    FactoryClient,
    TxResult,
    keeper_address,
    sort_keepers,
)
from spartacus.envelope import INSTRUCTIONS_MAX, MESSAGE_MAX, PledgeContent, seal
from spartacus.keys import KIND_MEMBER, KeyPair, parse_public_key
from spartacus.roster import Roster
from spartacus.types import CampaignContext, Scope

__all__ = [
    "CHART_SAMPLES",
    "LOCAL_CHAIN_IDS",
    "PURPOSE_MAX",
    "REORG_DEPTH",
    "STATES",
    "TEXT_MAX",
    "TITLE_MAX",
    "ZERO_ADDRESS",
    "CampaignFacts",
    "CampaignRow",
    "Connection",
    "CreateForm",
    "HistoryStore",
    "Live",
    "Outcome",
    "PledgeForm",
    "Prepared",
    "Settings",
    "account_address",
    "campaign_rows",
    "chain_now",
    "chart_series",
    "check_campaign_address",
    "contact_keys",
    "describe_result",
    "error_text",
    "escape_md",
    "fake_cost",
    "fake_cost_text",
    "format_duration",
    "format_time",
    "format_wei",
    "key_file_name",
    "local_accounts",
    "local_signer",
    "member_key_file",
    "needs_passphrase",
    "parse_contact_lines",
    "parse_deadline_text",
    "parse_eth",
    "parse_keepers",
    "parse_member_key_file",
    "prepare_action",
    "prepare_create",
    "prepare_pledge",
    "roster_csv",
    "roster_rows",
    "roster_vcards",
    "send_local",
    "short",
    "time_left_text",
    "validate_create",
    "validate_pledge",
    "wallet_error_text",
    "wallet_transaction",
]

LOCAL_CHAIN_IDS = frozenset({1337, 31337})
ZERO_ADDRESS = "0x" + "00" * 20
TITLE_MAX = 120
PURPOSE_MAX = 280
TEXT_MAX = 20_000
#: Blocks re-read on every history update, so a short reorg cannot leave stale points.
REORG_DEPTH = 12
#: Blocks whose timestamps the chart reads at most (the rest are interpolated).
CHART_SAMPLES = 48


# ─── Settings and connection ─────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Settings:
    """What the dApp reads from its environment."""

    network: str | None
    factory: str | None
    account: str | None
    keepers: tuple[str, ...]
    refresh: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        keepers = tuple(k.strip() for k in env.get("SPARTACUS_KEEPERS", "").split(",") if k.strip())
        try:
            refresh = max(0.5, float(env.get("SPARTACUS_REFRESH", "2")))
        except ValueError:
            refresh = 2.0
        return cls(
            network=env.get("SPARTACUS_NETWORK") or None,
            factory=env.get("SPARTACUS_FACTORY") or None,
            account=env.get("SPARTACUS_ACCOUNT") or None,
            keepers=keepers,
            refresh=refresh,
        )

    @property
    def network_label(self) -> str:
        return self.network or "ethereum:local:foundry (the local stack)"


class Connection:
    """One open network connection (Ape's context stays entered for the server's life)."""

    def __init__(self, network: str | None) -> None:
        from spartacus._ape import connect

        self._context = connect(network)
        w3 = self._context.__enter__()
        self.client = ChainClient(w3, receipt_timeout=120.0)
        _ = self.client.chain_id  # fails here, with a clear message, when the node is down

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def chain_now(client: ChainClient) -> int:
    """The time a transaction sent now would see: the latest block's, or the clock's if later
    (an idle dev chain mines no blocks; a dev chain whose time was advanced runs ahead)."""
    return max(int(time.time()), client.timestamp())


# ─── Formatting ──────────────────────────────────────────────────────────────────────


def format_wei(wei: int, symbol: str = "ETH") -> str:
    """``10**16`` → ``0.01 ETH``; amounts under a gwei stay in wei."""
    if wei == 0:
        return f"0 {symbol}"
    if wei < 10**9:
        return f"{wei:,} wei"
    text = format(Decimal(wei) / Decimal(10**18), "f").rstrip("0").rstrip(".")
    return f"{text} {symbol}"


def parse_eth(text: str, what: str = "Deposit") -> int:
    """A decimal amount of ether (``0.01``) → wei; blank is 0."""
    text = (text or "").strip().replace(",", "").replace("_", "")
    if text.lower().endswith("eth"):
        text = text[:-3].strip()
    if not text:
        return 0
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{what}: {text!r} is not an amount; write it in ETH, e.g. 0.01") from None
    if not amount.is_finite() or amount < 0:
        raise InputError(f"{what} must be 0 or more ETH")
    wei = amount * Decimal(10**18)
    if wei != wei.to_integral_value():
        raise InputError(f"{what}: {text} ETH has more than 18 decimals")
    return int(wei)


def format_duration(seconds: int) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def format_time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^])")


def escape_md(text: str, *, multiline: bool = False) -> str:
    """On-chain text as literal Markdown: no links, images (a tracking pixel would leak the
    reader's address to a stranger), HTML, LaTeX or Streamlit directives."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    if not multiline:
        return " ".join(escaped.split())
    return "  \n".join(line.rstrip() for line in escaped.splitlines())


# ─── Campaign view ───────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class CampaignFacts:
    """What never changes about a campaign: its ``CampaignCreated`` event."""

    address: str
    factory: str
    creator: str
    created_block: int
    created_tx: str
    config: CampaignConfig
    chain_id: int

    @classmethod
    def read(cls, campaign: CampaignClient) -> CampaignFacts:
        created = campaign.created
        return cls(
            address=campaign.address,
            factory=campaign.factory,
            creator=created.creator,
            created_block=created.block_number,
            created_tx=created.tx,
            config=created.config,
            chain_id=campaign.client.chain_id,
        )

    @property
    def keeper_addresses(self) -> list[str]:
        return [keeper_address(k) for k in self.config.keepers]

    def context(self) -> CampaignContext:
        c = self.config
        return CampaignContext(self.chain_id, self.address, c.keepers, c.keeper_threshold, c.scope)


STATES = ("open", "revealed", "expired", "cancelled")


@dataclass(frozen=True)
class Live:
    """What changes: read from the contract (never from a server)."""

    state: str
    count: int
    total: int
    reveal_block: int
    block: int
    now: int

    @classmethod
    def read(cls, client: ChainClient, address: str) -> Live:
        block = client.head()
        (state,) = client.call("Campaign", address, "state", block=block)
        (count,) = client.call("Campaign", address, "pledgeCount", block=block)
        (total,) = client.call("Campaign", address, "totalPledges", block=block)
        (reveal,) = client.call("Campaign", address, "revealBlock", block=block)
        return cls(STATES[int(state)], int(count), int(total), int(reveal), block, chain_now(client))


def fake_cost(deposit: int, count: int, threshold: int) -> tuple[int, int]:
    """(pledges missing, wei someone must lock to fake them alone)."""
    remaining = max(0, threshold - count)
    return remaining, remaining * deposit


def fake_cost_text(deposit: int, count: int, threshold: int, beneficiary: str) -> str:
    remaining, cost = fake_cost(deposit, count, threshold)
    if remaining == 0:
        return "The threshold is reached: nothing is left to fake."
    plural = "s" if remaining != 1 else ""
    if deposit == 0:
        return (
            f"**Nothing but gas.** This campaign asks no deposit, so one person with {remaining} addresses "
            f"could fake the {remaining} missing pledge{plural} and trigger the reveal early. "
            "Trust the count accordingly."
        )
    fate = (
        "forfeit to the campaign's beneficiary at the reveal"
        if beneficiary.lower() != ZERO_ADDRESS
        else "refundable after the reveal, so the price is money locked up until then, plus gas"
    )
    return (
        f"**{format_wei(cost)}** ({remaining} missing pledge{plural} × {format_wei(deposit)} deposit): "
        f"what one person must lock to fake the rest of the count alone. Deposits are {fate}."
    )


def time_left_text(state: str, deadline: int, now: int) -> str:
    if state == "revealed":
        return "revealed"
    if state == "cancelled":
        return "cancelled"
    if state == "expired" or deadline <= now:
        return "deadline passed"
    return f"{format_duration(deadline - now)} left"


class HistoryStore:
    """The live count after every ``Pledged``/``Withdrawn`` event, per campaign, read once
    and then only from the last scanned block on (minus :data:`REORG_DEPTH`).

    Shared by every session of a server (a ``st.cache_resource``): a campaign page that
    refreshes every few seconds costs one ``eth_getLogs`` of the new blocks.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[str, list[tuple[int, int]]] = {}
        self._scanned: dict[str, int] = {}
        self._times: dict[int, int] = {}

    def points(
        self, client: ChainClient, address: str, created_block: int, head: int | None = None
    ) -> list[tuple[int, int]]:
        """(block, live count) pairs, oldest first, up to ``head`` (default: latest)."""
        with self._lock:
            head = client.head() if head is None else head
            scanned = self._scanned.get(address)
            if scanned is not None and scanned >= head:
                return list(self._points[address])
            start = created_block if scanned is None else max(created_block, scanned - REORG_DEPTH + 1)
            kept = [p for p in self._points.get(address, []) if p[0] < start]
            kept += CampaignClient(client, address).count_history(start, head)
            self._points[address] = kept
            self._scanned[address] = head
            return list(kept)

    def block_time(self, client: ChainClient, block: int) -> int:
        with self._lock:
            if block not in self._times:
                self._times[block] = client.timestamp(block)
            return self._times[block]


def chart_series(
    points: Sequence[tuple[int, int]],
    block_time: Callable[[int], int],
    now: int,
    *,
    samples: int = CHART_SAMPLES,
) -> list[dict[str, Any]]:
    """Points of the "live pledges over time" chart: one per event, timed by its block.

    At most ``samples`` distinct blocks are asked for their timestamp; the others are
    interpolated between them (blocks come at a near-steady pace), so the chart costs a
    bounded number of reads at 10 or 10,000 pledges.
    """
    if not points:
        return []
    blocks = sorted({b for b, _ in points})
    if len(blocks) > samples:
        step = (len(blocks) - 1) / (samples - 1)
        blocks = sorted({blocks[round(i * step)] for i in range(samples)})
    times = [block_time(b) for b in blocks]

    def when(block: int) -> float:
        i = bisect.bisect_left(blocks, block)
        if i < len(blocks) and blocks[i] == block:
            return float(times[i])
        if i == 0 or i == len(blocks):  # outside the samples (never: the ends are sampled)
            return float(times[min(i, len(blocks) - 1)])
        b0, b1, t0, t1 = blocks[i - 1], blocks[i], times[i - 1], times[i]
        return t0 + (t1 - t0) * (block - b0) / (b1 - b0)

    rows: list[dict[str, Any]] = [
        {"time": datetime.fromtimestamp(when(b), UTC), "live pledges": c, "block": b} for b, c in points
    ]
    last = when(points[-1][0])
    rows.append({"time": datetime.fromtimestamp(max(now, last), UTC), "live pledges": points[-1][1], "block": None})
    return rows


@dataclass(frozen=True)
class CampaignRow:
    """One line of the campaigns list."""

    address: str
    title: str
    purpose: str
    state: str
    count: int
    threshold: int
    deadline: int
    now: int

    @property
    def progress(self) -> float:
        return min(1.0, self.count / self.threshold) if self.threshold else 0.0


def campaign_rows(client: ChainClient, factory: str) -> list[CampaignRow]:
    """Every campaign of a factory, newest first, with its live state (two reads each)."""
    rows = []
    now = chain_now(client)
    for created in reversed(FactoryClient(client, factory).campaigns()):
        (state,) = client.call("Campaign", created.campaign, "state")
        (count,) = client.call("Campaign", created.campaign, "pledgeCount")
        c = created.config
        rows.append(
            CampaignRow(
                created.campaign, c.title, c.purpose, STATES[int(state)], int(count), c.threshold, c.deadline, now
            )
        )
    return rows


def check_campaign_address(text: str) -> str:
    text = (text or "").strip()
    if not is_address(text):
        raise InputError(f"{text!r} is not an address: paste the campaign's 0x… address (40 hex digits)")
    return str(to_checksum_address(text))


# ─── Forms ───────────────────────────────────────────────────────────────────────────


_CONTACT_LINE = re.compile(r"^\s*([^=:]+?)\s*[=:]\s*(.*?)\s*$")


def parse_contact_lines(text: str, email: str = "") -> dict[str, str]:
    """``key=value`` (or ``key: value``) per line, plus the e-mail field; keys lowercased."""
    contact: dict[str, str] = {}
    if email.strip():
        contact["email"] = email.strip()
    for n, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _CONTACT_LINE.match(line)
        if not match:
            raise InputError(
                f"Contact line {n} ({line.strip()!r}): write it as key=value, e.g. signal=+41 79 123 45 67"
            )
        key, value = match.group(1).strip().lower(), match.group(2)
        if key in contact:
            raise InputError(f"Contact field {key!r} is given twice: give each field once")
        contact[key] = value
    return contact


def _single_line(what: str, text: str, limit: int, *, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise InputError(f"{what} is empty: it is required")
    if len(text) > limit:
        raise InputError(f"{what} is {len(text)} characters: the limit is {limit}")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InputError(f"{what} contains a line break or control character: keep it on one line")
    return text


def _long_text(what: str, text: str, limit: int) -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise InputError(f"{what} is {len(text):,} characters: the limit is {limit:,}")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text):
        raise InputError(f"{what} contains a control character: remove it")
    return text


def parse_keepers(picked: Iterable[str], pasted: str) -> tuple[bytes, ...]:
    """Keeper public keys from the list and the text box, in the contract's order."""
    texts = [k for k in picked] + [k for k in re.split(r"[\s,;]+", pasted or "") if k]
    if not texts:
        raise InputError("Keepers: none given: pick at least one from the list or paste a keeper's public key")
    keys: list[bytes] = []
    for i, text in enumerate(texts, start=1):
        try:
            keys.append(parse_public_key(text))
        except InputError as exc:
            raise InputError(f"Keeper {i} ({text[:12]}…): {exc.message}") from None
    if len(set(keys)) != len(keys):
        raise InputError("Keepers: the same key is given twice: each keeper counts once")
    if len(keys) > MAX_KEEPERS:
        raise InputError(f"Keepers: {len(keys)} given: the limit is {MAX_KEEPERS}")
    return sort_keepers(keys)


def parse_deadline_text(text: str, now: int) -> int:
    from spartacus.cli import parse_deadline

    text = (text or "").strip()
    try:
        deadline = parse_deadline(text, now)
    except InputError:
        raise InputError(
            f"Deadline {text!r}: write a date and time in ISO 8601 (2026-12-31T18:00Z) or a duration "
            "from now like +7d, +12h, +30m"
        ) from None
    if deadline <= now:
        raise InputError(f"Deadline {format_time(deadline)} is in the past: pick a later time")
    if deadline > now + MAX_DURATION:
        raise InputError(f"Deadline {format_time(deadline)} is more than 366 days away: pick an earlier time")
    return deadline


@dataclass
class CreateForm:
    """The create page's fields, as typed."""

    title: str = ""
    purpose: str = ""
    description: str = ""
    plan: str = ""
    threshold: int | None = None
    deadline: str = "+14d"
    keepers_picked: Sequence[str] = ()
    keepers_pasted: str = ""
    keeper_threshold: int | None = None
    deposit: str = "0"
    scope: str = "members"
    beneficiary: str = ""
    name: str = ""
    email: str = ""
    contacts: str = ""
    instructions: str = ""


def _collect(errors: list[str], fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except InputError as exc:
        errors.append(exc.message)
        return None


def _identity(
    name: str, email: str, contacts: str, message: str | None = None, instructions: str | None = None
) -> PledgeContent:
    contact = parse_contact_lines(contacts, email)
    try:
        return PledgeContent(name=name, contact=contact, message=message, instructions=instructions)
    except InputError as exc:
        text = exc.message
        raise InputError(text[0].upper() + text[1:]) from None


def validate_create(form: CreateForm, now: int) -> tuple[CampaignConfig | None, PledgeContent | None, list[str]]:
    """Every field checked; all problems listed (one sentence each, with the fix)."""
    errors: list[str] = []
    title = _collect(errors, _single_line, "Title", form.title, TITLE_MAX, required=True)
    purpose = _collect(errors, _single_line, "Purpose", form.purpose, PURPOSE_MAX, required=True)
    description = _collect(errors, _long_text, "Description", form.description, TEXT_MAX)
    plan = _collect(errors, _long_text, "Plan", form.plan, TEXT_MAX)
    threshold = form.threshold
    if threshold is None:
        errors.append("Threshold N is empty: how many live pledges (yours included) trigger the reveal?")
    elif not 1 <= threshold <= MAX_THRESHOLD:
        errors.append(f"Threshold N: {threshold}: it must be 1 to {MAX_THRESHOLD:,} live pledges (yours included)")
    deadline = _collect(errors, parse_deadline_text, form.deadline, now)
    keepers = _collect(errors, parse_keepers, form.keepers_picked, form.keepers_pasted)
    t = form.keeper_threshold
    if t is None:
        errors.append("Keeper threshold t is empty: how many keepers are needed to open a pledge?")
    elif keepers is not None and not 1 <= t <= len(keepers):
        errors.append(f"Keeper threshold t: {t}: it must be between 1 and the number of keepers ({len(keepers)})")
    deposit = _collect(errors, parse_eth, form.deposit)
    if form.scope not in ("members", "public"):
        errors.append("Reveal to: choose members or public")
    beneficiary = ZERO_ADDRESS
    if (form.beneficiary or "").strip():
        if not is_address(form.beneficiary.strip()):
            errors.append(f"Beneficiary {form.beneficiary.strip()!r} is not an address: leave it empty or paste 0x…")
        else:
            beneficiary = to_checksum_address(form.beneficiary.strip())
    instructions = _collect(errors, _long_text, "Instructions", form.instructions, INSTRUCTIONS_MAX)
    if instructions == "":
        errors.append("Instructions are empty: write what the members should do once they are enough")
    content = _collect(errors, _identity, form.name, form.email, form.contacts, None, instructions or None)
    if errors:
        return None, None, errors
    config = CampaignConfig(
        title=title,
        purpose=purpose,
        description=description,
        plan=plan,
        threshold=int(threshold),  # type: ignore[arg-type]
        deadline=deadline,
        keepers=keepers,
        keeper_threshold=int(t),  # type: ignore[arg-type]
        scope=Scope(form.scope),
        deposit=deposit,
        beneficiary=beneficiary,
    )
    return config, content, []


@dataclass
class PledgeForm:
    name: str = ""
    email: str = ""
    contacts: str = ""
    message: str = ""


def validate_pledge(form: PledgeForm) -> tuple[PledgeContent | None, list[str]]:
    errors: list[str] = []
    message = _collect(errors, _long_text, "Message", form.message, MESSAGE_MAX)
    content = _collect(errors, _identity, form.name, form.email, form.contacts, message or None)
    return (None, errors) if errors else (content, [])


# ─── Transactions ────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Prepared:
    """A transaction ready to sign: built (and sealed) here, sent by a local account or a wallet."""

    action: str  # pledge | create | withdraw | refund | cancel
    to: str
    data: bytes
    value: int
    campaign: str
    sender: str


def prepare_pledge(campaign: CampaignClient, content: PledgeContent, member: KeyPair, sender: str) -> Prepared:
    """Seals ``content`` (in this process) for ``campaign`` and builds the pledge call."""
    (state,) = campaign.client.call("Campaign", campaign.address, "state")
    if STATES[int(state)] in ("expired", "cancelled"):
        raise InputError(f"This campaign is {STATES[int(state)]}: it takes no more pledges")
    _index, status, held = campaign.pledge_of(sender)
    if status == "live":
        raise InputError(
            f"{sender} already has a live pledge in this campaign: one per address "
            "(withdraw it first, or pledge from another account)"
        )
    (deposit,) = campaign.client.call("Campaign", campaign.address, "deposit")
    envelope = seal(content, campaign.context(), member.compressed, pledger=sender)
    data = campaign.client.contracts.encode_call("Campaign", "pledge", [envelope, member.compressed])
    return Prepared("pledge", campaign.address, data, 0 if held else int(deposit), campaign.address, sender)


def prepare_create(
    client: ChainClient, factory: str, config: CampaignConfig, content: PledgeContent, member: KeyPair, sender: str
) -> Prepared:
    """Seals the organizer's record (with the instructions) to the campaign's future address."""
    f = FactoryClient(client, factory)
    salt = secrets.token_bytes(32)
    address = f.predict(sender, salt)
    ctx = CampaignContext(client.chain_id, address, config.keepers, config.keeper_threshold, config.scope)
    envelope = seal(content, ctx, member.compressed, pledger=sender)
    data = client.contracts.encode_call(
        "CampaignFactory", "createCampaign", [config.as_tuple(), salt, envelope, member.compressed]
    )
    return Prepared("create", f.address, data, config.deposit, address, sender)


def prepare_action(campaign: CampaignClient, action: str, sender: str) -> Prepared:
    """Withdraw, refund or cancel, checked first so a refusal reads as a sentence."""
    client = campaign.client
    (state_code,) = client.call("Campaign", campaign.address, "state")
    state = STATES[int(state_code)]
    (creator,) = client.call("Campaign", campaign.address, "creator")
    is_creator = to_checksum_address(creator) == to_checksum_address(sender)
    if action == "withdraw":
        if state != "open":
            raise InputError(f"The campaign is {state}: a pledge can be withdrawn only while it is open")
        if is_creator:
            raise InputError("The creator cannot withdraw: cancel the campaign instead")
        if campaign.pledge_of(sender)[1] != "live":
            raise InputError(f"{sender} has no live pledge in this campaign: nothing to withdraw")
    elif action == "refund":
        if campaign.refundable(sender) == 0:
            raise InputError(
                f"Nothing to refund to {sender} now: a deposit comes back after a withdrawal, an expiry, a "
                "cancellation, or a reveal without beneficiary"
            )
    elif action == "cancel":
        if not is_creator:
            raise InputError(f"{sender} is not this campaign's creator: only the creator can cancel it")
        if state != "open":
            raise InputError(f"The campaign is {state}: only an open campaign can be cancelled")
    else:  # pragma: no cover - the pages pass known actions
        raise ValueError(action)
    call = {"withdraw": "withdraw", "refund": "refund", "cancel": "cancel"}[action]
    data = client.contracts.encode_call("Campaign", call, [])
    return Prepared(action, campaign.address, data, 0, campaign.address, sender)


@dataclass(frozen=True)
class _From:
    """The sender of a transaction a wallet will sign: enough to estimate its gas here."""

    address: str

    def sign(self, tx: dict[str, Any]) -> bytes:
        raise NotImplementedError("the browser wallet signs this transaction")


def wallet_transaction(client: ChainClient, prepared: Prepared) -> dict[str, str]:
    """``eth_sendTransaction`` params for a wallet. Gas is estimated here first, so a refusal
    shows as the contract's reason before the wallet is even asked."""
    tx = client.prepare(_From(prepared.sender), prepared.to, prepared.data, prepared.value)
    return {
        "from": to_checksum_address(prepared.sender),
        "to": to_checksum_address(prepared.to),
        "data": "0x" + prepared.data.hex(),
        "value": hex(prepared.value),
        "gas": hex(int(tx["gas"])),
    }


def wallet_error_text(error: Mapping[str, Any], method: str = "eth_sendTransaction") -> str:
    """A wallet's EIP-1193 error, in words."""
    code = error.get("code")
    message = str(error.get("message") or "")
    if code == 4001:
        if method == "eth_requestAccounts":
            return "You rejected the connection request in your wallet: nothing was shared."
        return "You rejected the transaction in your wallet: nothing was sent."
    if code == 4100:
        return "The wallet has not authorised this page: connect the wallet first."
    if code in (4900, 4901):
        return f"The wallet is on another network: {message or 'switch it to this campaign’s network'}."
    if code == -32002:
        return "Your wallet already has a request waiting: answer it in the wallet, then try again."
    if code == "no-wallet":
        return "No browser wallet found in this browser: install one (e.g. MetaMask), or sign with a local account."
    return f"The wallet refused: {message or 'no reason given'} (code {code})."


def send_local(client: ChainClient, signer: Any, prepared: Prepared) -> TxResult:
    return client.send(signer, prepared.to, prepared.data, prepared.value)


def describe_result(prepared_action: str, result: TxResult) -> dict[str, Any]:
    """The facts a page shows after a mined transaction."""
    out: dict[str, Any] = {"tx": result.tx, "gas_used": result.gas_used, "block": result.block_number}
    if prepared_action == "pledge":
        [event] = result.events("Pledged")
        out |= {"index": int(event.args["index"]), "count": int(event.args["count"])}
        out["revealed"] = bool(result.events("ThresholdReached"))
    elif prepared_action == "create":
        [event] = result.events("CampaignCreated")
        out["campaign"] = to_checksum_address(event.args["campaign"])
    return out


def error_text(exc: BaseException) -> str:
    """Our errors carry a sentence; a refusal by the contract reads ``refused: …``."""
    if isinstance(exc, SpartacusError):
        text = exc.message
        if isinstance(exc, ContractRevert) and text.startswith("refused: "):
            text = "The contract refused: " + text.removeprefix("refused: ")
        return text[0].upper() + text[1:] if text else str(exc)
    return f"{exc.__class__.__name__}: {exc}"


# ─── Local accounts ──────────────────────────────────────────────────────────────────


def local_accounts(settings: Settings, chain_id: int) -> list[str]:
    """The accounts this server may sign with: ``SPARTACUS_ACCOUNT``, and on a local chain
    its funded test accounts ``TEST::0`` to ``TEST::9``."""
    options = [settings.account] if settings.account else []
    if chain_id in LOCAL_CHAIN_IDS:
        options += [f"TEST::{i}" for i in range(10) if f"TEST::{i}" != settings.account]
    return options


@lru_cache(maxsize=64)
def account_address(alias: str, chain_id: int) -> str:
    if alias.upper().startswith("TEST::"):
        from spartacus._ape import signer_for

        return str(signer_for(alias, chain_id).address)
    from spartacus._ape import load_account

    return str(to_checksum_address(str(load_account(alias).address)))


def needs_passphrase(alias: str) -> bool:
    if alias.upper().startswith("TEST::"):
        return False
    from spartacus._ape import load_account

    return hasattr(load_account(alias), "keyfile")


def local_signer(alias: str, chain_id: int, passphrase: str | None = None) -> Any:
    """A Signer for ``alias``. An Ape keyfile account is opened with ``passphrase`` here
    (never a terminal prompt a server cannot answer); other Ape accounts sign through Ape."""
    from spartacus._ape import ApeSigner, load_account, signer_for

    if alias.upper().startswith("TEST::"):
        return signer_for(alias, chain_id)
    account = load_account(alias)
    if not hasattr(account, "keyfile"):
        return ApeSigner(account)
    from eth_account import Account

    from spartacus.chain import KeySigner

    try:
        key = Account.decrypt(account.keyfile, passphrase or "")
    except ValueError:
        raise InputError(f"Wrong passphrase for the Ape account {alias!r}: try again") from None
    return KeySigner(bytes(key))


# ─── Member key files ────────────────────────────────────────────────────────────────


def member_key_file(pair: KeyPair) -> bytes:
    """Exactly what ``spartacus.keys.generate_key_file`` writes for a member key."""
    doc = {"version": 1, "kind": KIND_MEMBER, "private_key": "0x" + pair.secret_bytes().hex()}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode("ascii")


def key_file_name(campaign: str | None) -> str:
    """``spartacus-member-<first 8 hex digits of the campaign>.key`` (``…-organizer.key`` before it exists)."""
    return f"spartacus-member-{campaign[2:10].lower() if campaign else 'organizer'}.key"


_PRIVATE_HEX = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_member_key_file(raw: bytes, name: str = "") -> KeyPair:
    """A member key file as ``spartacus.keys`` writes it; a clear refusal for anything else."""
    this = f"This file ({name})" if name else "This file"
    bad = f"{this} is not a Spartacus member key file"
    if len(raw) > 4096:
        raise KeyFileError(f"{bad} (too large): upload the .key file you saved when you pledged")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{bad} (not JSON): upload the .key file you saved when you pledged") from None
    if not isinstance(data, dict) or set(data) != {"version", "kind", "private_key"}:
        raise KeyFileError(f"{bad} (expected the fields version, kind, private_key)")
    if data["version"] != 1 or type(data["version"]) is not int:
        raise KeyFileError(f"{bad} (unsupported version: this app reads version 1)")
    if data["kind"] != KIND_MEMBER:
        raise KeyFileError(f"{this} holds a {data['kind']!r}, not a member key: upload your member key file")
    text = data["private_key"]
    if not isinstance(text, str) or not _PRIVATE_HEX.fullmatch(text):
        raise KeyFileError(f"{bad} (private_key must be 0x and 64 hex digits)")
    try:
        return KeyPair.from_secret(bytes.fromhex(text[2:]))
    except InputError:
        raise KeyFileError(f"{bad} (private_key is not a valid secp256k1 key)") from None


# ─── Roster exports ──────────────────────────────────────────────────────────────────


def contact_keys(roster: Roster) -> list[str]:
    keys = sorted({k for m in roster.members for k in m.contact})
    return (["email"] if "email" in keys else []) + [k for k in keys if k != "email"]


def roster_rows(roster: Roster, *, markdown: bool = False) -> list[dict[str, Any]]:
    """One row per member. ``markdown=True`` escapes every text for a Markdown-rendering table
    (``st.table``): a member's name must not load an image from a stranger's server."""
    keys = contact_keys(roster)
    text = (lambda v: escape_md(v)) if markdown else (lambda v: v)
    return [
        {
            "pledge": m.index,
            "name": text(m.name),
            **{k: text(m.contact.get(k, "")) for k in keys},
            "message": text(m.message or ""),
        }
        for m in roster.members
    ]


_SAFE_NUMBER = re.compile(r"^[+\-]?[\d\s().\-/]*$")


def _csv_cell(value: Any) -> Any:
    """Members' text is written by strangers: keep a spreadsheet from running it as a formula
    (OWASP CSV injection), but leave phone numbers like +41 79 … as they are."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "=@\t\r" or (value[0] in "+-" and not _SAFE_NUMBER.match(value)):
        return "'" + value
    return value


def roster_csv(roster: Roster) -> str:
    rows = roster_rows(roster)
    columns = ["pledge", "name", *contact_keys(roster), "message"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return out.getvalue()


def _vcard_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\n").replace("\n", "\\n")


def _vcard_fold(line: str) -> str:
    """RFC 6350 line folding: at most 75 octets a line, continuation lines start with a space."""
    out: list[str] = []
    current = b""
    for ch in line:
        encoded = ch.encode("utf-8")
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


_PHONE_KEYS = {"phone", "tel", "mobile", "signal", "whatsapp", "sms"}


def roster_vcards(roster: Roster, campaign_title: str = "") -> str:
    """One vCard 3.0 per member (name, e-mail, phones, other fields in the note)."""
    cards = []
    for m in roster.members:
        lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{_vcard_escape(m.name)}", f"N:{_vcard_escape(m.name)};;;;"]
        notes = []
        for key, value in m.contact.items():
            if key == "email":
                lines.append(f"EMAIL;TYPE=INTERNET:{_vcard_escape(value)}")
            elif key in _PHONE_KEYS:
                lines.append(f"TEL;TYPE={key.upper()}:{_vcard_escape(value)}")
                if key != "phone":
                    notes.append(f"{key}: {value}")
            else:
                notes.append(f"{key}: {value}")
        if m.message:
            notes.append(f"message: {m.message}")
        if campaign_title:
            lines.append(f"ORG:{_vcard_escape(campaign_title)}")
        if notes:
            lines.append(f"NOTE:{_vcard_escape(chr(10).join(notes))}")
        lines.append("END:VCARD")
        cards.append("\r\n".join(_vcard_fold(line) for line in lines))
    return "\r\n".join(cards) + ("\r\n" if cards else "")


@dataclass
class Outcome:
    """What a page shows after an action: a success (facts) or an error sentence."""

    action: str
    ok: bool
    text: str
    facts: dict[str, Any] = field(default_factory=dict)
