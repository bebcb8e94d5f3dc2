"""Load: a campaign with N pledges on a real anvil, from fill to every member's roster.

    python -m bench.bench_load [--n 10000] [--keepers 3] [--t 2] [--withdrawn 5] [--json]

The scenario (``tests/test_load.py`` runs the same one and asserts its checks):

1. anvil with ``--auto-impersonate``, a 1,000,000,000 block gas limit and FIFO ordering; the
   factory; ``--keepers`` fresh keeper keys (``t`` of them release), funded with
   ``anvil_setBalance``; a campaign with threshold N, a small deposit, ``members`` scope,
   and the organizer's real sealed record as pledge 0 (its instructions sealed apart).
2. N + ``--withdrawn`` real sealed envelopes (:func:`spartacus.envelope.seal`, a fresh member
   key each), sealed in worker processes.
3. The fill, from fresh impersonated addresses, as unsigned transactions sent in JSON-RPC
   batches with auto-mining off, one ``evm_mine`` per batch (several hundred pledges a
   block): the withdrawn handful pledge and withdraw; N - 2 pledges take the live count to
   N - 1; the N-th live pledge is mined alone and must fire the reveal; one more pledge
   lands after it. The live count is then N + 1 (the creator included).
4. ``t`` keepers (the library's :class:`spartacus.keeper.Keeper`, default
   ``max_release_bytes``) each run one pass and publish their releases.
5. One member reads the chain (:meth:`CampaignClient.pledges` / ``releases``) and rebuilds
   the roster (:func:`spartacus.roster.build_roster`); a withdrawn pledger's key is refused.

Times are wall-clock seconds. A keeper's "chain" time is every JSON-RPC call it made (log
reads, estimates, sends and receipt waits); "compute" is the rest (opening N shares,
building and encrypting the release, SQLite).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import requests
from hexbytes import HexBytes
from web3 import Web3

from spartacus._exceptions import DecryptionError
from spartacus.anvil import Anvil, dev_key
from spartacus.chain import CampaignClient, CampaignConfig, ChainClient, FactoryClient, KeySigner, sort_keepers
from spartacus.envelope import PledgeContent, seal, seal_instructions
from spartacus.keeper import Keeper
from spartacus.keys import KeyPair
from spartacus.release import collect
from spartacus.roster import build_roster
from spartacus.types import CampaignContext, Scope

__all__ = ["KeeperFigures", "LoadResult", "TimedChainClient", "main", "run", "table", "verify"]

DEPOSIT = 10**12  # wei per pledge: small, but the books must still balance at N
PLEDGE_GAS = 300_000  # fixed gas limit of the fill's transactions (no estimate per pledge)
BATCH = 500  # transactions per JSON-RPC batch and per block (anvil refuses much larger bodies)
ORGANIZER = "Olga Organizer"
INSTRUCTIONS = "Meet at the north gate on Monday at 06:00. Bring the signed cards.\n" * 10


class TimedChainClient(ChainClient):
    """A :class:`ChainClient` that adds up the time spent in JSON-RPC calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rpc_s = 0.0
        self.wait_s = 0.0

    def _rpc(self, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return super()._rpc(call)
        finally:
            self.rpc_s += time.perf_counter() - start

    def wait(self, tx_hash: str) -> Any:
        start = time.perf_counter()
        try:
            return super().wait(tx_hash)
        finally:
            self.wait_s += time.perf_counter() - start


@dataclass
class KeeperFigures:
    index: int
    wall_s: float
    chain_s: float  # all JSON-RPC time, receipt waits included
    wait_s: float  # of which: waiting for the release transactions to be mined
    compute_s: float  # wall - chain
    shares: int
    grants: int
    txs: int
    failed_or_foreign_txs: int  # reverted, or sent to another campaign: must be 0
    bytes: int  # release payload bytes on-chain (the `data` of its Released events)
    calldata_bytes: int
    gas: int  # sum of gasUsed of its release transactions


@dataclass
class LoadResult:
    """What the scenario observed; :func:`verify` says whether it is right."""

    n: int  # pledgers (the creator excluded)
    threshold: int
    keepers: int
    t: int
    withdrawn: int
    seal_workers: int
    seal_s: float = 0.0
    fill_s: float = 0.0
    fill_txs: int = 0
    fill_blocks: int = 0
    count_before_crossing: int = 0
    state_before_crossing: str = ""
    crossing_count: int = 0
    crossing_fired: bool = False
    crossing_gas: int = 0
    crossing_gas_n2: int = 0  # the same calldata crossing N = 2 on another campaign
    after_reveal_fired: bool = False
    threshold_events: int = 0
    final_count: int = 0
    live_from_events: int = 0
    total_pledges: int = 0
    balance: int = 0
    deposits_owed: int = 0
    keeper: list[KeeperFigures] = field(default_factory=list)
    release_txs: int = 0
    release_bytes: int = 0
    release_gas: int = 0
    roster_read_s: float = 0.0
    roster_rebuild_s: float = 0.0
    roster_members: int = 0
    roster_skipped: int = 0
    roster_names_ok: bool = False
    roster_instructions_ok: bool = False
    withdrawn_in_roster: list[int] = field(default_factory=list)
    withdrawn_with_shares: list[int] = field(default_factory=list)
    withdrawn_reader_refused: bool = False
    total_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# ─── Sealing, in worker processes ────────────────────────────────────────────────────


def _seal_chunk(ctx: CampaignContext, names: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes, bytes]]:
    """(member secret, member public key, envelope) for each (name, sending address)."""
    out = []
    for name, sender in names:
        member = KeyPair.generate()
        email = name.lower().replace(" ", ".") + "@example.org"
        env = seal(PledgeContent(name, {"email": email}), ctx, member, pledger=sender)
        out.append((member.secret_bytes(), member.compressed, env))
    return out


def seal_all(ctx: CampaignContext, names: Sequence[tuple[str, str]], workers: int) -> list[tuple[bytes, bytes, bytes]]:
    if workers <= 1:
        return _seal_chunk(ctx, names)
    chunk = max(1, -(-len(names) // (workers * 4)))
    parts = [names[i : i + chunk] for i in range(0, len(names), chunk)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = pool.map(_seal_chunk, [ctx] * len(parts), parts)
        return [item for part in results for item in part]


# ─── JSON-RPC in bulk ────────────────────────────────────────────────────────────────


class Rpc:
    """Raw JSON-RPC batches to anvil (web3.py sends one request per call)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self._id = 0

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        if not calls:
            return []
        payload = []
        for method, params in calls:
            self._id += 1
            payload.append({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        response = self.session.post(self.url, json=payload, timeout=300)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, list):
            raise RuntimeError(f"anvil refused the batch: {str(body)[:300]}")
        by_id = {item["id"]: item for item in body}
        results = []
        for request in payload:
            item = by_id[request["id"]]
            if "error" in item:
                raise RuntimeError(f"{request['method']} failed: {item['error']}")
            results.append(item.get("result"))
        return results

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]


def _random_address() -> str:
    return Web3.to_checksum_address(secrets.token_bytes(20))


def _tx(sender: str, to: str, data: bytes, value: int) -> dict[str, str]:
    return {"from": sender, "to": to, "data": "0x" + data.hex(), "value": hex(value), "gas": hex(PLEDGE_GAS)}


# ─── The scenario ────────────────────────────────────────────────────────────────────


def run(
    n: int = 10_000,
    keepers: int = 3,
    t: int = 2,
    withdrawn: int = 5,
    workers: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> LoadResult:
    """Runs the whole scenario on a fresh anvil and returns what it observed."""
    if n < 3 or not 1 <= t <= keepers:
        raise ValueError("need n >= 3 and 1 <= t <= keepers")
    workers = workers or min(2, os.cpu_count() or 1)
    threshold = n  # the creator's pledge counts: the (n - 1)-th pledger's pledge fires it
    result = LoadResult(n=n, threshold=threshold, keepers=keepers, t=t, withdrawn=withdrawn, seal_workers=workers)
    started = time.perf_counter()
    extra = ["--accounts", "2", "--silent", "--auto-impersonate", "--gas-limit", "1000000000", "--order", "fifo"]
    with Anvil(extra=extra) as node, TemporaryDirectory(prefix="spartacus-load-") as tmp:
        rpc = Rpc(node.url)
        client = TimedChainClient(Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 300})))
        factory, _ = FactoryClient.deploy(client, KeySigner(dev_key(0)))
        organizer = KeySigner(dev_key(1))
        keeper_keys = {k.public_key: k for k in (KeyPair.generate() for _ in range(keepers))}
        keeper_set = sort_keepers(list(keeper_keys))
        rpc.batch([("anvil_setBalance", [k.address, hex(10**20)]) for k in keeper_keys.values()])

        salt = secrets.token_bytes(32)
        address = factory.predict(organizer.address, salt)
        ctx = CampaignContext(client.chain_id, address, keeper_set, t, Scope.MEMBERS)
        organizer_member = KeyPair.generate()
        organizer_env = seal(
            PledgeContent(ORGANIZER, {"email": "olga@example.org"}), ctx, organizer_member, pledger=organizer.address
        )
        config = CampaignConfig(
            title="Load test",
            purpose="Ten thousand pledges",
            description="A campaign at scale.",
            plan="Fill, reveal, release, read.",
            threshold=threshold,
            deadline=client.timestamp() + 7 * 86400,
            keepers=keeper_set,
            keeper_threshold=t,
            deposit=DEPOSIT,
            instructions=seal_instructions(INSTRUCTIONS, ctx, organizer_member, creator=organizer.address),
        )
        created, _ = factory.create(organizer, config, salt, organizer_env, organizer_member.compressed)
        assert created == address
        campaign = CampaignClient(client, address)

        # Sealing.
        member_names = [f"Member {i:05d}" for i in range(n)]
        leaver_names = [f"Withdrawn {j:02d}" for j in range(withdrawn)]
        log(f"sealing {n + withdrawn} envelopes with {workers} worker(s)")
        member_addrs = [_random_address() for _ in range(n)]
        leaver_addrs = [_random_address() for _ in range(withdrawn)]
        t0 = time.perf_counter()
        named = list(zip(member_names + leaver_names, member_addrs + leaver_addrs, strict=True))
        sealed = seal_all(ctx, named, workers)
        result.seal_s = time.perf_counter() - t0
        members, leavers = sealed[:n], sealed[n:]
        encode = client.contracts.encode_call

        def pledge_tx(who: str, item: tuple[bytes, bytes, bytes]) -> tuple[str, list[Any]]:
            _, mk, env = item
            return ("eth_sendTransaction", [_tx(who, address, encode("Campaign", "pledge", [env, mk]), DEPOSIT)])

        def count() -> int:
            return int(campaign.status().count)

        def mine_batches(txs: list[tuple[str, list[Any]]], funded: list[str], expect_count: int) -> list[str]:
            hashes: list[str] = []
            for start in range(0, len(txs), BATCH):
                rpc.batch([("anvil_setBalance", [a, hex(10**18)]) for a in funded[start : start + BATCH]])
                hashes += rpc.batch(txs[start : start + BATCH])
                rpc.call("evm_mine")
                result.fill_blocks += 1
            result.fill_txs += len(txs)
            got = count()
            if got != expect_count:
                statuses = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
                failed = [h for h, r in zip(hashes, statuses, strict=True) if not r or r["status"] != "0x1"]
                raise AssertionError(
                    f"live count {got}, expected {expect_count}: {len(failed)} failed, e.g. {failed[:3]}"
                )
            return hashes

        def mine_one(tx: tuple[str, list[Any]], funded: str) -> Any:
            rpc.call("anvil_setBalance", funded, hex(10**18))
            tx_hash = rpc.batch([tx])[0]
            rpc.call("evm_mine")
            result.fill_blocks += 1
            result.fill_txs += 1
            return client.w3.eth.get_transaction_receipt(HexBytes(tx_hash))

        # The fill.
        log(f"filling {n + withdrawn} pledges")
        rpc.call("evm_setAutomine", False)
        t0 = time.perf_counter()
        mine_batches([pledge_tx(a, s) for a, s in zip(leaver_addrs, leavers, strict=True)], leaver_addrs, 1 + withdrawn)
        withdraw = encode("Campaign", "withdraw", [])
        mine_batches([("eth_sendTransaction", [_tx(a, address, withdraw, 0)]) for a in leaver_addrs], [], 1)
        fill = [pledge_tx(a, s) for a, s in zip(member_addrs[: n - 2], members[: n - 2], strict=True)]
        mine_batches(fill, member_addrs[: n - 2], n - 1)
        status = campaign.status()
        result.count_before_crossing, result.state_before_crossing = status.count, status.state

        crossing = mine_one(pledge_tx(member_addrs[n - 2], members[n - 2]), member_addrs[n - 2])
        decoded = [d for d in (client.contracts.decode_log(lg) for lg in crossing["logs"]) if d]
        reached = [d for d in decoded if d.event == "ThresholdReached"]
        result.crossing_fired = crossing["status"] == 1 and len(reached) == 1
        result.crossing_count = int(reached[0].args["count"]) if reached else 0
        result.crossing_gas = int(crossing["gasUsed"])
        after = mine_one(pledge_tx(member_addrs[n - 1], members[n - 1]), member_addrs[n - 1])
        result.after_reveal_fired = any(
            d.event == "ThresholdReached" for d in (client.contracts.decode_log(lg) for lg in after["logs"]) if d
        )
        result.fill_s = time.perf_counter() - t0
        rpc.call("evm_setAutomine", True)

        # The control: the very same crossing calldata on a campaign with N = 2 costs the same.
        # Its keepers are others (the pledge's gas does not depend on them), so the keepers
        # measured below serve the big campaign only.
        small_config = replace(
            config,
            threshold=2,
            deadline=client.timestamp() + 7 * 86400,
            keepers=sort_keepers([KeyPair.generate().public_key for _ in range(keepers)]),
        )
        small, _ = factory.create(
            organizer, small_config, secrets.token_bytes(32), organizer_env, organizer_member.compressed
        )
        _, tx_params = pledge_tx(_random_address(), members[n - 2])
        tx_params[0]["to"] = small
        rpc.call("anvil_setBalance", tx_params[0]["from"], hex(10**18))
        control = client.w3.eth.wait_for_transaction_receipt(HexBytes(rpc.call("eth_sendTransaction", *tx_params)))
        control_logs = [d for d in (client.contracts.decode_log(lg) for lg in control["logs"]) if d]
        if any(d.event == "ThresholdReached" for d in control_logs):
            result.crossing_gas_n2 = int(control["gasUsed"])

        status = campaign.status()
        result.final_count, result.total_pledges = status.count, status.total_pledges
        result.threshold_events = len(
            list(client.logs(address, ["ThresholdReached"], from_block=campaign.created.block_number))
        )
        result.balance = client.balance(address)
        result.deposits_owed = DEPOSIT * (status.count + withdrawn)  # live pledges, and withdrawn ones unrefunded

        # The keepers.
        for k in range(t):
            key = keeper_keys[keeper_set[k]]
            log(f"keeper #{k} releasing")
            keeper_client = TimedChainClient(client.w3, client.contracts)
            keeper = Keeper(keeper_client, key, factory.address, Path(tmp) / f"keeper{k}.db", confirmations=0)
            t0 = time.perf_counter()
            report = keeper.run_once()
            wall = time.perf_counter() - t0
            keeper.close()
            receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in report.transactions])
            calldata = rpc.batch([("eth_getTransactionByHash", [h]) for h in report.transactions])
            result.keeper.append(
                KeeperFigures(
                    index=k,
                    wall_s=wall,
                    chain_s=keeper_client.rpc_s,
                    wait_s=keeper_client.wait_s,
                    compute_s=wall - keeper_client.rpc_s,
                    shares=report.released.get(address, 0),
                    grants=report.granted.get(address, 0),
                    txs=len(report.transactions),
                    failed_or_foreign_txs=sum(
                        r["status"] != "0x1" or r["to"].lower() != address.lower() for r in receipts
                    ),
                    bytes=0,  # from the chain, below
                    calldata_bytes=sum((len(tx["input"]) - 2) // 2 for tx in calldata),
                    gas=sum(int(r["gasUsed"], 16) for r in receipts),
                )
            )

        # A member reads the chain and rebuilds the roster.
        log("reading the roster")
        t0 = time.perf_counter()
        pledges = campaign.pledges()
        releases = campaign.releases()
        result.roster_read_s = time.perf_counter() - t0
        for figures in result.keeper:
            figures.bytes = sum(len(r.data) for r in releases if r.keeper_index == figures.index)
        result.release_txs = sum(f.txs for f in result.keeper)
        result.release_bytes = sum(f.bytes for f in result.keeper)
        result.release_gas = sum(f.gas for f in result.keeper)
        result.live_from_events = sum(p.live for p in pledges)

        reader_index = n // 2
        reader = KeyPair.from_secret(members[reader_index][0])
        t0 = time.perf_counter()
        instructions = campaign.created.config.instructions
        roster = build_roster(ctx, pledges, releases, reader, organizer.address, instructions=instructions)
        result.roster_rebuild_s = time.perf_counter() - t0
        result.roster_members = len(roster.members)
        result.roster_skipped = len(roster.skipped)
        result.roster_names_ok = sorted(m.name for m in roster.members) == sorted([ORGANIZER, *member_names])
        result.roster_instructions_ok = roster.instructions == INSTRUCTIONS
        leaver_indexes = {p.index for p in pledges if p.pledger in set(leaver_addrs)}
        result.withdrawn_in_roster = sorted(
            m.index for m in roster.members if m.index in leaver_indexes or m.name.startswith("Withdrawn")
        )
        reader_pledge = next(p.index for p in pledges if p.member_key == reader.compressed)
        shares = collect(releases, ctx, reader, member_index=reader_pledge).shares
        result.withdrawn_with_shares = sorted(leaver_indexes & set(shares))
        try:
            build_roster(
                ctx, pledges, releases, KeyPair.from_secret(leavers[0][0]), organizer.address, instructions=instructions
            )
        except DecryptionError:
            result.withdrawn_reader_refused = True
    result.total_s = time.perf_counter() - started
    return result


def verify(r: LoadResult) -> list[str]:
    """Every check of the scenario; an empty list when all hold."""
    live = r.n + 1
    checks = {
        f"live count before the crossing pledge is N - 1 = {r.threshold - 1}": r.count_before_crossing
        == r.threshold - 1,
        "the campaign is open before the crossing pledge": r.state_before_crossing == "open",
        f"the N-th live pledge fires the reveal, at count {r.threshold}": r.crossing_fired
        and r.crossing_count == r.threshold,
        "the pledge after the reveal does not fire it again": not r.after_reveal_fired,
        "the crossing pledge costs the same at N and at N = 2": r.crossing_gas == r.crossing_gas_n2,
        "exactly one ThresholdReached event": r.threshold_events == 1,
        f"pledgeCount() == {live} (N pledgers + the creator)": r.final_count == live,
        "the live count recomputed from events == pledgeCount()": r.live_from_events == r.final_count,
        f"totalPledges() == {live + r.withdrawn}": r.total_pledges == live + r.withdrawn,
        "the balance == the deposits owed": r.balance == r.deposits_owed,
        f"each keeper released {live} shares and {live} grants": all(
            k.shares == live and k.grants == live for k in r.keeper
        ),
        "every release transaction landed, on this campaign": all(
            k.txs > 0 and k.failed_or_foreign_txs == 0 for k in r.keeper
        ),
        f"the roster holds all {live} members": r.roster_members == live,
        "the roster skipped nothing": r.roster_skipped == 0,
        "the roster's names are exactly the live pledgers'": r.roster_names_ok,
        "the roster carries the organizer's instructions": r.roster_instructions_ok,
        "no withdrawn pledge is in the roster": not r.withdrawn_in_roster,
        "no keeper released a share of a withdrawn pledge": not r.withdrawn_with_shares,
        "a withdrawn pledger's key reads nothing": r.withdrawn_reader_refused,
    }
    return [name for name, ok in checks.items() if not ok]


def table(r: LoadResult) -> str:
    live = r.n + 1
    rows: list[tuple[str, str]] = [
        ("live pledges (N pledgers + the creator)", f"{live:,}"),
        ("threshold N", f"{r.threshold:,}"),
        ("withdrawn before the reveal", f"{r.withdrawn}"),
        (f"seal {r.n + r.withdrawn:,} envelopes ({r.seal_workers} worker(s))", f"{r.seal_s:.1f} s"),
        ("fill: pledges and withdrawals sent and mined", f"{r.fill_s:.1f} s"),
        ("fill: transactions / blocks", f"{r.fill_txs:,} / {r.fill_blocks}"),
        ("fill: transactions per second", f"{r.fill_txs / r.fill_s:,.0f}" if r.fill_s else "-"),
        (
            f"threshold-crossing pledge, gas, at N = {r.threshold:,} / at N = 2",
            f"{r.crossing_gas:,} / {r.crossing_gas_n2:,}",
        ),
    ]
    for k in r.keeper:
        rows += [
            (f"keeper #{k.index}: release, wall (chain waiting included)", f"{k.wall_s:.1f} s"),
            (f"keeper #{k.index}: release, compute (chain waiting excluded)", f"{k.compute_s:.1f} s"),
            (f"keeper #{k.index}: JSON-RPC time / of which receipt waits", f"{k.chain_s:.1f} s / {k.wait_s:.1f} s"),
            (f"keeper #{k.index}: release transactions", f"{k.txs}"),
            (f"keeper #{k.index}: release bytes (event data / calldata)", f"{k.bytes:,} / {k.calldata_bytes:,}"),
            (f"keeper #{k.index}: release gas", f"{k.gas:,}"),
        ]
    rows += [
        (f"all {len(r.keeper)} keepers: transactions", f"{r.release_txs}"),
        (f"all {len(r.keeper)} keepers: bytes", f"{r.release_bytes:,} ({r.release_bytes / live:.0f} per member)"),
        (f"all {len(r.keeper)} keepers: gas", f"{r.release_gas:,} ({r.release_gas / live:,.0f} per member)"),
        ("roster: read pledges and releases from the chain", f"{r.roster_read_s:.1f} s"),
        ("roster: rebuild by one member", f"{r.roster_rebuild_s:.1f} s"),
        ("roster: members / skipped", f"{r.roster_members:,} / {r.roster_skipped}"),
        (
            "count: pledgeCount() / from events / roster",
            f"{r.final_count:,} / {r.live_from_events:,} / {r.roster_members:,}",
        ),
        ("total run time", f"{r.total_s:.1f} s"),
    ]
    failures = verify(r)
    rows.append(("checks", "all pass" if not failures else f"{len(failures)} FAILED"))
    width = max(len(a) for a, _ in rows)
    value_width = max(len(b) for _, b in rows)
    lines = [
        f"| {'metric'.ljust(width)} | {'value'.rjust(value_width)} |",
        f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|",
    ]
    lines += [f"| {a.ljust(width)} | {b.rjust(value_width)} |" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_load", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="pledgers besides the creator; also the threshold")
    parser.add_argument("--keepers", type=int, default=3)
    parser.add_argument("--t", type=int, default=2, help="keeper threshold (this many keepers release)")
    parser.add_argument("--withdrawn", type=int, default=5, help="pledgers who withdraw before the reveal")
    parser.add_argument("--workers", type=int, default=None, help="sealing processes (default: up to 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"[bench_load] {message}", file=sys.stderr, flush=True)

    result = run(args.n, args.keepers, args.t, args.withdrawn, args.workers, log=progress)
    failures = verify(result)
    if args.json:
        print(json.dumps({**result.as_json(), "failures": failures}, indent=2))
    else:
        print(table(result))
    for failure in failures:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
