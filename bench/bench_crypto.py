"""Off-chain cost of Spartacus' cryptography at N pledges, on one core.

    python -m bench.bench_crypto [--n 1000 10000] [--keepers 3] [--t 2] [--json]

For each N it seals N pledges (the organizer's first) and the instructions,
runs every keeper's release computation (parse + open its N shares + build
the release of N shares with their grants, format v2), then rebuilds the roster
as one member would from all keepers' releases, and again with one lying keeper
(well-formed but wrong shares) among them, and checks both rosters are complete.
Nothing touches a chain; no multiprocessing (the process is pinned to one CPU
when the OS allows it). The table names each figure's JSON key.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from statistics import mean

from spartacus.envelope import ROLE_INSTRUCTIONS, PledgeContent, open_share, parse, seal, seal_instructions
from spartacus.keys import KeyPair
from spartacus.release import Entry, build_release
from spartacus.roster import build_roster
from spartacus.types import CampaignContext, PledgeRecord, ReleaseRecord, Scope

__all__ = ["Result", "run", "main"]

CAMPAIGN = "0x" + "5a" * 20
CREATOR = "0x" + "c0" * 20


@dataclass
class Result:
    """Times are CPU seconds of this process (``*_wall_s``: elapsed, inflated on a busy machine)."""

    n: int
    keepers: int
    t: int
    seal_total_s: float
    seal_total_wall_s: float
    seal_per_pledge_ms: float
    envelope_bytes_per_pledge: float
    keeper_release_s: float  # mean over keepers: parse + open N shares + build the release
    keeper_release_max_s: float
    keeper_release_wall_s: float
    release_bytes_per_keeper: int
    release_bytes_total: int  # all keepers
    release_bytes_per_pledge: float  # all keepers
    release_payloads_per_keeper: int
    roster_rebuild_s: float
    roster_rebuild_wall_s: float
    roster_rebuild_with_liar_s: float  # one of the keepers publishes wrong shares for every pledge


class _Clock:
    """CPU and wall time of a block."""

    def __enter__(self) -> _Clock:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall


def _content(i: int) -> PledgeContent:
    return PledgeContent(
        name=f"Member {i:05d} Łukasz-Ñoño",
        contact={"email": f"member{i}@example.org", "signal": f"+4915{i:08d}"},
        message="Count me in. I can bring a van and two friends on the day." if i % 3 == 0 else None,
    )


INSTRUCTIONS = "Meet at the north gate at 09:00; bring water. " * 20


def run(n: int, keepers: int = 3, t: int = 2) -> Result:
    keeper_keys = [KeyPair.generate() for _ in range(keepers)]
    ctx = CampaignContext(
        chain_id=31337,
        campaign=CAMPAIGN,
        keepers=tuple(k.public_key for k in keeper_keys),
        keeper_threshold=t,
        scope=Scope.MEMBERS,
    )
    members = [KeyPair.generate() for _ in range(n)]
    contents = [_content(i) for i in range(n)]

    senders = [CREATOR if i == 0 else "0x" + f"{i:040x}" for i in range(n)]
    with _Clock() as seal_clock:
        envelopes = [seal(contents[i], ctx, members[i], pledger=senders[i]) for i in range(n)]
    instructions = seal_instructions(INSTRUCTIONS, ctx, members[0], creator=CREATOR)

    pledges = [
        PledgeRecord(
            index=i,
            pledger=senders[i],
            member_key=members[i].compressed,
            envelope=envelopes[i],
            block_number=100 + i,
        )
        for i in range(n)
    ]

    keeper_times: list[float] = []
    keeper_walls: list[float] = []
    releases: list[ReleaseRecord] = []
    lying: list[ReleaseRecord] = []
    per_keeper_bytes: list[int] = []
    per_keeper_payloads: list[int] = []
    for k, keeper in enumerate(keeper_keys):
        with _Clock() as clock:
            entries = [
                Entry(
                    p.index,
                    open_share(parse(p.envelope), k, keeper, ctx, member_key33=p.member_key, pledger=p.pledger),
                    p.member_key,
                )
                for p in pledges
                if p.live
            ]
            y = open_share(
                parse(instructions), k, keeper, ctx, member_key33=members[0].compressed, pledger=CREATOR,
                role=ROLE_INSTRUCTIONS,
            )  # fmt: skip
            built = build_release(ctx, keeper, k, entries, instructions=y)
        keeper_times.append(clock.cpu)
        keeper_walls.append(clock.wall)
        per_keeper_bytes.append(built.total_bytes)
        per_keeper_payloads.append(len(built.payloads))
        records = [ReleaseRecord(k, keeper.address, data, 10_000 + k, j) for j, data in enumerate(built.payloads)]
        releases.extend(records)
        if k == 0:  # the liar: the same grants, every share wrong
            wrong = [Entry(e.index, bytes(b ^ 0x55 for b in e.y), e.member_key) for e in entries]
            lie = build_release(ctx, keeper, k, wrong, instructions=bytes(b ^ 0x55 for b in y))
            lying.extend(ReleaseRecord(k, keeper.address, data, 10_000, j) for j, data in enumerate(lie.payloads))
        else:
            lying.extend(records)

    reader = members[n // 2]
    with _Clock() as roster_clock:
        roster = build_roster(ctx, pledges, releases, reader, CREATOR, instructions=instructions)
    if len(roster.members) != n or roster.skipped or roster.instructions is None:
        raise SystemExit(f"roster incomplete: {len(roster.members)}/{n}, skipped {len(roster.skipped)}")
    with _Clock() as liar_clock:
        lied = build_roster(ctx, pledges, lying, reader, CREATOR, instructions=instructions)
    named = [s.keeper_index for s in lied.skipped]
    if len(lied.members) != n or named != [0] or lied.instructions is None:
        raise SystemExit(f"roster with a liar incomplete: {len(lied.members)}/{n}, skipped {lied.skipped[:3]}")

    total_release = sum(per_keeper_bytes)
    return Result(
        n=n,
        keepers=keepers,
        t=t,
        seal_total_s=seal_clock.cpu,
        seal_total_wall_s=seal_clock.wall,
        seal_per_pledge_ms=1000 * seal_clock.cpu / n,
        envelope_bytes_per_pledge=mean(len(e) for e in envelopes),
        keeper_release_s=mean(keeper_times),
        keeper_release_max_s=max(keeper_times),
        keeper_release_wall_s=mean(keeper_walls),
        release_bytes_per_keeper=round(mean(per_keeper_bytes)),
        release_bytes_total=total_release,
        release_bytes_per_pledge=total_release / n,
        release_payloads_per_keeper=round(mean(per_keeper_payloads)),
        roster_rebuild_s=roster_clock.cpu,
        roster_rebuild_wall_s=roster_clock.wall,
        roster_rebuild_with_liar_s=liar_clock.cpu,
    )


_ROWS: list[tuple[str, str, str]] = [
    ("seal, per pledge (CPU)", "seal_per_pledge_ms", "{:.2f} ms"),
    ("seal, all N (CPU)", "seal_total_s", "{:.2f} s"),
    ("seal, all N (wall)", "seal_total_wall_s", "{:.2f} s"),
    ("envelope bytes per pledge", "envelope_bytes_per_pledge", "{:.0f} B"),
    ("keeper release: open N + build (CPU, mean)", "keeper_release_s", "{:.2f} s"),
    ("keeper release, slowest keeper (CPU)", "keeper_release_max_s", "{:.2f} s"),
    ("keeper release (wall, mean)", "keeper_release_wall_s", "{:.2f} s"),
    ("release bytes per keeper", "release_bytes_per_keeper", "{:,} B"),
    ("release transactions per keeper", "release_payloads_per_keeper", "{}"),
    ("release bytes, all keepers", "release_bytes_total", "{:,} B"),
    ("release bytes per pledge, all keepers", "release_bytes_per_pledge", "{:.0f} B"),
    ("roster rebuild, one member (CPU)", "roster_rebuild_s", "{:.2f} s"),
    ("roster rebuild, one member (wall)", "roster_rebuild_wall_s", "{:.2f} s"),
    ("roster rebuild with a lying keeper (CPU)", "roster_rebuild_with_liar_s", "{:.2f} s"),
]


def _table(results: list[Result]) -> str:
    head = ["metric", "key"] + [f"N = {r.n:,}" for r in results]
    rows = [[label, attr] + [fmt.format(getattr(r, attr)) for r in results] for label, attr, fmt in _ROWS]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_crypto", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="pledge counts")
    parser.add_argument("--keepers", type=int, default=3)
    parser.add_argument("--t", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    pinned = _pin_one_core()
    results = [run(n, args.keepers, args.t) for n in args.n]
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "cpu": pinned}, indent=2))
    else:
        print(
            f"Spartacus crypto, {args.keepers} keepers, t = {args.t}, members scope; "
            f"Python {platform.python_version()}, {pinned}"
        )
        print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
