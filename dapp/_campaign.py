"""What the campaign pages show, read from the contracts and their events (never from a server):
the static facts of the ``CampaignCreated`` event, the live state, the count history, how many
pledges came through relayers, and whether the configured factory created the campaign.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from _settings import chain_now
from _text import format_time, format_wei
from eth_abi.abi import encode as abi_encode
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes

from spartacus._exceptions import InputError
from spartacus.chain import CampaignClient, CampaignConfig, ChainClient, FactoryClient, keeper_address
from spartacus.types import CampaignContext, LateJoiners

__all__ = [
    "CHART_SAMPLES",
    "REORG_DEPTH",
    "STATES",
    "ZERO_ADDRESS",
    "CampaignFacts",
    "CampaignRow",
    "HistoryStore",
    "Live",
    "campaign_rows",
    "chart_series",
    "check_campaign_address",
    "created_by_factory",
    "fake_cost",
    "fake_cost_text",
    "late_joiner_text",
    "relay_text",
    "relayed_text",
]

ZERO_ADDRESS = "0x" + "00" * 20
STATES = ("open", "revealed", "expired", "cancelled")
#: Blocks re-read on every history update, so a short reorg cannot leave stale points.
REORG_DEPTH = 12
#: Blocks whose timestamps the chart reads at most (the rest are interpolated).
CHART_SAMPLES = 48


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
        return CampaignContext(
            self.chain_id, self.address, c.keepers, c.keeper_threshold, c.scope, c.late_joiners, c.relay or None
        )


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
    def read(cls, client: ChainClient, address: str, head: tuple[int, int] | None = None) -> Live:
        """As of ``head`` (``(block, now)``, see :func:`head`; default: the latest block now)."""
        block, now = head if head is not None else (client.head(), chain_now(client))
        (state,) = client.call("Campaign", address, "state", block=block)
        (count,) = client.call("Campaign", address, "pledgeCount", block=block)
        (total,) = client.call("Campaign", address, "totalPledges", block=block)
        (reveal,) = client.call("Campaign", address, "revealBlock", block=block)
        return cls(STATES[int(state)], int(count), int(total), int(reveal), block, now)


def context_props(ctx: CampaignContext) -> dict[str, Any]:
    """What the browser module needs of a campaign's binding (``CampaignContext``), as a
    component's props: the sealing and reading pages pass the same."""
    return {
        "campaign": ctx.campaign,
        "keepers": ["0x" + k.hex() for k in ctx.keepers],
        "t": ctx.keeper_threshold,
        "scope": ctx.scope.value,
        "lateJoiners": ctx.late_joiners.value,
        "relay": "0x" + ctx.relay.hex() if ctx.relay else None,
    }


def head(client: ChainClient) -> tuple[int, int]:
    """``(latest block, now)`` in one request: the time a transaction sent now would see is the
    latest block's, or the clock's if later."""
    block = client.w3.eth.get_block("latest")
    return int(block["number"]), max(int(time.time()), int(block["timestamp"]))


def created_by_factory(client: ChainClient, factory: str, campaign: str) -> bool:
    """True when ``factory`` (this dApp's) emitted ``CampaignCreated`` for ``campaign``: what a
    contract says of itself (its ``factory()``) proves nothing."""
    f = FactoryClient(client, factory)
    topic = HexBytes(abi_encode(["address"], [to_checksum_address(campaign)])).to_0x_hex()
    for _log in client.logs(f.address, ["CampaignCreated"], from_block=f.deployed_at, topics=[topic]):
        return True
    return False


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
            f"Nothing but gas. This campaign asks no deposit, so one person with {remaining} addresses "
            f"could fake the {remaining} missing pledge{plural} and trigger the reveal early. "
            "Trust the count accordingly."
        )
    fate = (
        "forfeit to the campaign's beneficiary at the reveal"
        if beneficiary.lower() != ZERO_ADDRESS
        else "refundable after the reveal, so the price is money locked up until then, plus gas"
    )
    return (
        f"{format_wei(cost)} ({remaining} missing pledge{plural} × {format_wei(deposit)} deposit): "
        f"what one person must lock to fake the rest of the count alone. Deposits are {fate}."
    )


def late_joiner_text(policy: LateJoiners, deadline: int) -> str:
    """What a pledge made after the reveal gets, in words (the campaign's ``lateJoiners``)."""
    if policy is LateJoiners.CLOSED:
        return "Closed to late joiners: no pledge is taken after the reveal."
    if policy is LateJoiners.ROSTER:
        return (
            "A late joiner (a pledge made after the reveal) receives the whole roster and the instructions. Its "
            f"deposit stays locked until the deadline ({format_time(deadline)}), so the roster never costs less "
            "than the deposit."
        )
    return (
        "A late joiner (a pledge made after the reveal) is revealed to the members and receives the organizer's "
        "instructions, but not the earlier roster, nor the organizer's identity."
    )


def relay_text(config: CampaignConfig, service: bytes | None, service_name: str | None) -> str:
    """Who e-mails the members after the reveal (``config.relay``), plainly."""
    if not config.relay:
        return (
            "This campaign names no relay service: nobody is committed to e-mail the members (the organizer may run "
            "their own relay with their member key). Every member reads the roster and the instructions in the "
            "member area, with their member key file."
        )
    key = "0x" + config.relay.hex()
    who = (
        f"the relay service {service_name} ({key})"
        if service and config.relay == service and service_name
        else (f"the relay service with public key {key}")
    )
    return (
        f"E-mail: {who} sends every member the roster and the instructions after the reveal. To do that it reads "
        "the roster, like a member, after the reveal and never before; it does not count towards the threshold."
    )


class HistoryStore:
    """Per campaign, read once and then only from the last scanned block on (minus
    :data:`REORG_DEPTH`), shared by every session of a server:

    * the live count after every ``Pledged``/``Withdrawn`` event (the chart, and the recount);
    * which pledges came through a relayer: whose transaction is a call of the deployment's
      ERC-2771 forwarder (its successful ``ExecutedForwardRequest`` log in the same transaction).

    The ``Pledged`` and ``Withdrawn`` logs are read raw, in one request (unless wider than a range
    cap the node has shown: then in the client's chunks, decoded): the count is a word of their
    data and the index a topic, so the sealed bytes beside them are never decoded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[str, list[tuple[int, int]]] = {}
        self._pledge_tx: dict[str, dict[int, str]] = {}  # pledge index -> transaction hash
        self._forwarded: dict[str, set[str]] = {}
        self._scanned: dict[str, int] = {}
        self._forwarder_scanned: dict[str, int] = {}
        self._times: dict[int, int] = {}

    def points(
        self, client: ChainClient, address: str, created_block: int, head: int | None = None
    ) -> list[tuple[int, int]]:
        """(block, live count) pairs, oldest first, up to ``head`` (default: latest)."""
        with self._lock:
            head = client.head() if head is None else head
            self._scan(client, address, created_block, head)
            return list(self._points[address])

    def relayed(
        self, client: ChainClient, address: str, forwarder: str, created_block: int, head: int
    ) -> tuple[int, int]:
        """``(relayed, total)`` pledges made so far."""
        with self._lock:
            self._scan(client, address, created_block, head)
            forwarded = self._forwarded.setdefault(address, set())
            scanned = self._forwarder_scanned.get(address)
            if scanned is None or scanned < head:
                start = created_block if scanned is None else max(created_block, scanned - REORG_DEPTH + 1)
                for log in client.logs(forwarder, ["ExecutedForwardRequest"], from_block=start, to_block=head):
                    if log.args.get("success"):
                        forwarded.add(log.tx_hash)
                self._forwarder_scanned[address] = head
            txs = self._pledge_tx.get(address, {})
            return sum(1 for tx in txs.values() if tx in forwarded), len(txs)

    def _scan(self, client: ChainClient, address: str, created_block: int, head: int) -> None:
        scanned = self._scanned.get(address)
        if scanned is not None and scanned >= head:
            return
        start = created_block if scanned is None else max(created_block, scanned - REORG_DEPTH + 1)
        kept = [p for p in self._points.get(address, []) if p[0] < start]
        txs = self._pledge_tx.setdefault(address, {})
        raw = self._raw(client, address, start, head)
        if raw is None:  # a node that caps ranges or answers in another shape: the chunked, decoded read
            for log in client.logs(address, ["Pledged", "Withdrawn"], from_block=start, to_block=head):
                kept.append((log.block_number, int(log.args["count"])))
                if log.event == "Pledged":
                    txs[int(log.args["index"])] = log.tx_hash
        else:
            for block, count, index, tx in raw:
                kept.append((block, count))
                if index is not None:
                    txs[index] = tx
        self._points[address] = kept
        self._scanned[address] = head

    @staticmethod
    def _raw(client: ChainClient, address: str, start: int, end: int) -> list[tuple[int, int, int | None, str]] | None:
        """``Pledged`` data is ``[offset memberKey][offset envelope][count]...``, ``Withdrawn`` data
        ``[count]`` (ICampaign's ABI); the index is the first indexed topic of both. None (the
        chunked read) when the node has shown a range cap that ``[start, end]`` exceeds."""
        if not client.within_log_range(start, end):
            return None
        pledged = client.contracts.topic("Pledged")
        withdrawn = client.contracts.topic("Withdrawn")
        query = {
            "address": to_checksum_address(address),
            "fromBlock": start,
            "toBlock": end,
            "topics": [[pledged.to_0x_hex(), withdrawn.to_0x_hex()]],
        }
        try:
            out = []
            for log in sorted(client.w3.eth.get_logs(query), key=lambda lg: (lg["blockNumber"], lg["logIndex"])):  # type: ignore[arg-type]
                topic, data = HexBytes(log["topics"][0]), bytes(log["data"])
                word = data[64:96] if topic == pledged else data[0:32] if topic == withdrawn else b""
                if len(word) != 32:
                    return None
                index = int.from_bytes(bytes(log["topics"][1]), "big") if topic == pledged else None
                tx = HexBytes(log["transactionHash"]).to_0x_hex()
                out.append((int(log["blockNumber"]), int.from_bytes(word, "big"), index, tx))
            return out
        except Exception:  # noqa: BLE001 - any refusal: the caller reads in chunks
            return None

    def block_time(self, client: ChainClient, block: int) -> int:
        with self._lock:
            if block not in self._times:
                self._times[block] = client.timestamp(block)
            return self._times[block]


def relayed_text(relayed: int, total: int) -> str:
    if total == 0:
        return "No pledge yet."
    if total == 1:
        return (
            "The one pledge so far came through a relayer: its pledger paid no gas."
            if relayed
            else "The one pledge so far did not come through a relayer: it was sent from an address that paid its gas."
        )
    if relayed == 0:
        return (
            f"None of the {total} pledges so far came through a relayer: "
            "each was sent from an address that paid its gas."
        )
    return (
        f"{relayed} of the {total} pledges so far came through a relayer (a call of the deployment's forwarder): their "
        "pledgers paid no gas, and any deposit was paid by the relayer, not by them. For these pledges the price of a "
        "fake count is set by the relayers' rate limits and sponsoring, not by the pledgers' money: one person with "
        "many fresh keys can add them as fast as relayers accept them."
    )


def chart_series(
    points: Sequence[tuple[int, int]],
    block_time: Callable[[int], int],
    now: int,
    *,
    samples: int = CHART_SAMPLES,
) -> list[dict[str, Any]]:
    """Points of the "live pledges over time" chart: one per event, timed by its block; at most
    ``samples`` block timestamps are read, the rest interpolated."""
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
        if i == 0 or i == len(blocks):
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


def campaign_rows(client: ChainClient, factory: str, head: tuple[int, int] | None = None) -> list[CampaignRow]:
    """Every campaign of a factory, newest first, with its live state (two reads each), as of
    ``head`` (``(block, now)``; default: now)."""
    rows = []
    block, now = head if head is not None else (client.head(), chain_now(client))
    for created in reversed(FactoryClient(client, factory).campaigns(to_block=block)):
        (state,) = client.call("Campaign", created.campaign, "state", block=block)
        (count,) = client.call("Campaign", created.campaign, "pledgeCount", block=block)
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
        shown = text if len(text) <= 60 else text[:57] + "…"
        raise InputError(
            f"{shown!r} is not an address: a campaign's address is 0x and 40 hex digits; check the link, or open a "
            "campaign from the list"
        )
    return str(to_checksum_address(text))


def not_a_campaign_text(
    address: str, exc: BaseException, *, factory: str | None, forwarder: str | None, chain: str
) -> str:
    """One line that says what ``address`` is, or is not, and how to find a campaign (``exc``: what
    reading it as a campaign raised; the CLI's own sentences say the same for its commands)."""
    from spartacus._exceptions import SpartacusError

    a = to_checksum_address(address)
    back = "open a campaign from the list"
    if factory and a == to_checksum_address(factory):
        return f"{a} is this dApp's factory, not a campaign: it creates them; {back}."
    if forwarder and a == to_checksum_address(forwarder):
        return f"{a} is this deployment's forwarder (it carries relayed calls), not a campaign: {back}."
    message = exc.message if isinstance(exc, SpartacusError) else ""
    if "there is no contract" in message.lower():
        return f"There is no contract at {a} on {chain}: check the link and the network, or {back}."
    if isinstance(exc, SpartacusError) and ("not a Spartacus campaign" in message or "CampaignCreated" in message):
        return f"{a} is not a Spartacus campaign (its code does not answer as one): check the link, or {back}."
    detail = message or f"{exc.__class__.__name__}"
    return f"Cannot read {a} on {chain} ({' '.join(detail.split())}): try again in a moment, or {back}."
