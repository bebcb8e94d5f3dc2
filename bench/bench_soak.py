"""Soak: keepers through lying, capped and flaky nodes, SIGKILLed at random, for minutes.

``python -m bench.bench_soak [--kills 100] [--seed S] [--json FILE]`` (``make bench-soak``)

One anvil; three keepers (t = 2), each behind its own ``tests/rpcproxy.py`` node:

* keeper 0 behind a liar that caps results (Infura's words) and, on and off, forges a reveal of
  every open campaign with a pledge of its own and hides ``Withdrawn`` logs;
* keeper 1 behind a node that caps the range (QuickNode's words), rate-limits, drops requests
  and loses answers to sent transactions;
* keeper 2 behind a slow node (delays) that caps the range as Alchemy's free tier does.

Meanwhile a driver creates campaigns (revealed; revealed after a withdrawal; cancelled; left
open), the base fee spikes now and then, and a killer SIGKILLs a random process (right after
it mined a release, or at any moment) and restarts it, until ``--kills`` kills. Then the nodes
turn honest, the keepers finish, and the checks run: nothing published twice, nothing for a
campaign below its threshold, a withdrawn pledge or a forged one, every live pledge readable by
every member (no pledge lost), every journal empty.

The harness is :class:`Soak`: processes (:class:`Proc`) and end-of-run checks are added to it,
so the relay's and the relayer's owners add theirs (``soak.add(Proc(...))``,
``soak.check(name, fn)``) beside the keepers of :func:`keeper_soak`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from rpcproxy import (  # noqa: E402 - tests/ is on the path only from here
    Deployment,
    Liar,
    LogCaps,
    RpcProxy,
    assert_full_rosters,
    assert_published_once,
    create_campaign,
    deploy,
    pledge,
    withdraw,
)

# ─── The harness ─────────────────────────────────────────────────────────────────────


@dataclass
class Proc:
    """One long-running process of the soak: restarted after every kill, its output in ``log``.
    A kill is most telling right after a line with one of ``events`` (e.g. a mined release)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    events: tuple[str, ...] = ()
    popen: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    offset: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    starts: int = 0

    def start(self) -> None:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.popen = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.started = time.monotonic()
        self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def new_output(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace")

    def kill(self, mode: str) -> bool:
        if not self.alive():
            return False
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self.kills[mode] += 1
        return True

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM and wait: the process must stop cleanly (status 0)."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                return -9
        return self.popen.returncode


class Soak:
    """Processes killed at random and restarted, then checks. Kills land at any moment, or right
    after a process logged one of its events (the half of a release that matters most)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.procs: list[Proc] = []
        self.checks: list[tuple[str, Callable[[], Any]]] = []
        self.unexpected: list[str] = []

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def check(self, name: str, fn: Callable[[], Any]) -> None:
        self.checks.append((name, fn))

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    def kills(self) -> int:
        return sum(sum(p.kills.values()) for p in self.procs)

    def kill_until(self, total: int, max_gap: float = 2.0, timeout: float = 1800) -> None:
        """Kills until ``total`` kills, one process at a time, restarting each at once."""
        deadline = time.monotonic() + timeout
        while self.kills() < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.kills()} kills in {timeout:.0f} s")
            proc = self.rng.choice(self.procs)
            if not proc.alive():
                self._died(proc)
                proc.start()
                continue
            if proc.events and self.rng.random() < 0.5:
                mode = "after-event"
                wait_until = time.monotonic() + 8
                while time.monotonic() < wait_until and proc.alive():
                    if any(e in proc.new_output() for e in proc.events):
                        break
                    time.sleep(0.02)
                else:
                    mode = "timeout"
            else:
                mode = "random"
                time.sleep(self.rng.uniform(0.1, max_gap))
            if proc.kill(mode):
                proc.start()
            else:
                self._died(proc)
                proc.start()

    def _died(self, proc: Proc) -> None:
        assert proc.popen is not None
        self.unexpected.append(f"{proc.name} exited by itself with status {proc.popen.returncode}")

    def stop(self, settled: float = 8.0) -> dict[str, int | None]:
        """SIGTERM to each process once it has run ``settled`` seconds (past its start-up, where a
        SIGTERM still has Python's default effect), and its exit status."""
        for proc in self.procs:
            time.sleep(max(0.0, proc.started + settled - time.monotonic()))
        return {proc.name: proc.stop() for proc in self.procs}

    def run_checks(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name, fn in self.checks:
            results[name] = fn()
        return results


# ─── The keepers' scenario ───────────────────────────────────────────────────────────


@dataclass
class Workload:
    """Campaigns made while the processes are killed, by kind."""

    d: Deployment
    rng: random.Random
    kinds: dict[str, str] = field(default_factory=dict)  # campaign -> revealed | withdrawn | cancelled | open
    withdrawn: dict[str, set[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def one(self, kind: str) -> str:
        from spartacus.anvil import dev_key
        from spartacus.chain import CampaignClient, KeySigner

        size = self.rng.randint(3, 6)
        campaign = create_campaign(self.d, threshold=size)
        self.kinds[campaign] = "open"
        self.withdrawn[campaign] = set()
        if kind == "revealed":
            for i in range(size - 1):
                pledge(self.d, campaign, f"Member {i}")
        elif kind == "withdrawn":
            first = pledge(self.d, campaign, "Member 0")
            withdraw(self.d, campaign, first)
            self.withdrawn[campaign].add(first)
            for i in range(1, size):
                pledge(self.d, campaign, f"Member {i}")
        elif kind == "cancelled":
            for i in range(size - 2):
                pledge(self.d, campaign, f"Member {i}")
            CampaignClient(self.d.client, campaign).cancel(KeySigner(dev_key(1)))
        else:
            for i in range(size - 2):
                pledge(self.d, campaign, f"Member {i}")
        state = CampaignClient(self.d.client, campaign).status().state
        expected = {"revealed": "revealed", "withdrawn": "revealed", "cancelled": "cancelled", "open": "open"}[kind]
        if state != expected:
            raise RuntimeError(f"campaign {campaign} ({kind}) is {state}, not {expected}")
        self.kinds[campaign] = kind
        return campaign


class Chaos(threading.Thread):
    """In the background: a block a second (confirmations go by), a base-fee spike now and then,
    and the liar's lies switched on and off; the driver's campaigns, one every few seconds."""

    def __init__(self, d: Deployment, liar_node: RpcProxy, work: Workload, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.d, self.liar_node, self.work, self.rng = d, liar_node, work, rng
        self.stop = threading.Event()
        self.spikes = 0
        self.lie_switches = 0
        self.lying = False
        self.kinds = ["revealed", "withdrawn", "cancelled", "open"]

    def run(self) -> None:
        last_campaign = last_lie = 0.0
        while not self.stop.wait(1.0):
            try:
                rpc = self.d.client.w3.provider.make_request
                base = int(self.d.client.w3.eth.get_block("latest")["baseFeePerGas"])
                if base < 5 * 10**9 and self.rng.random() < 0.15:
                    # the next block (a keeper's, as likely as not) costs 50 gwei: 20 times more or so
                    rpc("anvil_setNextBlockBaseFeePerGas", [hex(50 * 10**9)])
                    self.spikes += 1
                else:
                    rpc("evm_mine", [])
                now = time.monotonic()
                if now - last_lie > self.rng.uniform(3, 6):
                    self.set_lies(not self.lying)
                    last_lie = now
                if now - last_campaign > 6:
                    self.work.one(self.kinds[len(self.work.kinds) % len(self.kinds)])
                    last_campaign = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - recorded, reported, fails the run
                self.work.errors.append(f"{exc.__class__.__name__}: {exc}")

    def set_lies(self, on: bool) -> None:
        """On: every open campaign forged revealed with Mallory's pledge; Withdrawn logs hidden."""
        from spartacus.chain import CampaignClient

        self.liar_node.honest()
        self.lying = on
        self.lie_switches += 1
        if not on:
            return
        withdrawn = self.d.client.contracts.topic("Withdrawn")
        for campaign in list(self.work.kinds):
            if CampaignClient(self.d.client, campaign).status().state == "open":
                Liar(self.d, campaign).tell(self.liar_node)
            self.liar_node.hide_logs(campaign, bytes(withdrawn))


def keeper_soak(
    run_dir: Path,
    kills: int,
    seed: int,
    say: Callable[[str], None] = print,
    extend: Callable[[Soak, Deployment, Workload], None] | None = None,
) -> dict[str, Any]:
    """The keepers' soak (see the module docstring); returns its figures. Raises AssertionError
    when a property breaks. ``extend(soak, deployment, workload)`` adds more processes (a relay,
    a relayer: each a :class:`Proc`, killed and restarted like the keepers) and their checks,
    which run after the keepers'."""
    from web3 import Web3

    from spartacus.anvil import Anvil
    from spartacus.chain import CampaignClient, ChainClient

    rng = random.Random(seed)
    started = time.monotonic()
    with Anvil(extra=["--accounts", "10"], log=run_dir / "anvil.log") as node:
        client = ChainClient(Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60})))
        d = deploy(node.url, client, run_dir)
        nodes = [
            RpcProxy(node.url, caps=LogCaps("infura", max_results=4), seed=rng.random()),
            RpcProxy(
                node.url,
                caps=LogCaps("quicknode", max_range=40),
                drop=0.03,
                drop_after=0.03,
                rate_limit=60,
                seed=rng.random(),
            ),  # fmt: skip
            RpcProxy(node.url, caps=LogCaps("alchemy-free", max_range=10), delay=(0.0, 0.03), seed=rng.random()),
        ]
        work = Workload(d, rng)
        soak = Soak(rng)
        for i, proxy in enumerate(nodes):
            soak.add(
                Proc(
                    name=f"keeper{i}",
                    argv=[sys.executable, "-m", "spartacus.cli", "-v", "keeper", "run", "--key-file", f"keeper{i}.key",
                          "--interval", "0.3", "--max-release-bytes", "313", "--confirmations", "1",
                          "--stuck-blocks", "2"],
                    env=os.environ | {"SPARTACUS_NETWORK": proxy.url, "SPARTACUS_FACTORY": d.factory,
                                      "PYTHONUNBUFFERED": "1"},
                    cwd=run_dir,
                    log=run_dir / f"keeper{i}.log",
                    events=("mined (", "replaced by"),
                )
            )  # fmt: skip
        if extend is not None:
            extend(soak, d, work)
        for kind in ("revealed", "withdrawn", "cancelled", "open"):  # one of each before the kills
            work.one(kind)
        say(f"{len(work.kinds)} campaigns; starting {len(soak.procs)} processes")
        chaos = Chaos(d, nodes[0], work, rng)
        try:
            soak.start()
            chaos.start()
            say(f"killing until {kills} kills")
            soak.kill_until(kills)
            kill_phase = time.monotonic() - started
            chaos.stop.set()
            chaos.join()
            nodes[0].honest()
            say(f"{soak.kills()} kills in {kill_phase:.0f} s; letting the keepers finish")

            def done() -> bool:
                for campaign, kind in work.kinds.items():
                    if kind not in ("revealed", "withdrawn"):
                        continue
                    c = CampaignClient(client, campaign)
                    live = {p.index for p in c.pledges() if p.live}
                    published = assert_published_once(client, campaign)
                    if len(published) < 3 or any(not live <= set(w["shared"]) for w in published.values()):
                        return False
                return True

            deadline = time.monotonic() + 240
            while not done():
                if time.monotonic() > deadline:
                    raise AssertionError("the keepers did not finish within 240 s after the kills")
                client.w3.provider.make_request("evm_mine", [])
                for proc in soak.procs:
                    if not proc.alive():
                        soak._died(proc)
                        proc.start()
                time.sleep(1)
            statuses = soak.stop()

            def never_below_threshold() -> int:
                for campaign, kind in work.kinds.items():
                    if kind in ("cancelled", "open"):
                        assert CampaignClient(client, campaign).releases() == [], f"{kind} campaign {campaign} released"
                return sum(k in ("cancelled", "open") for k in work.kinds.values())

            def nothing_twice_nothing_forged_nothing_withdrawn() -> int:
                checked = 0
                for campaign, kind in work.kinds.items():
                    if kind not in ("revealed", "withdrawn"):
                        continue
                    c = CampaignClient(client, campaign)
                    total = c.status().total_pledges
                    for k, what in assert_published_once(client, campaign).items():
                        indices = set(what["shared"]) | set(what["granted"])
                        assert max(indices) < total, f"keeper #{k} released a forged pledge in {campaign}"
                        assert not indices & work.withdrawn[campaign], f"keeper #{k} released a withdrawn pledge"
                    checked += 1
                return checked

            def no_pledge_lost() -> int:
                members = 0
                for campaign, kind in work.kinds.items():
                    if kind in ("revealed", "withdrawn"):
                        assert_full_rosters(d, campaign)
                        members += len(d.members[campaign])
                return members

            def journals_empty() -> int:
                for i in range(3):
                    with sqlite3.connect(run_dir / f"keeper{i}.key.state.sqlite") as db:
                        rows = db.execute("SELECT COUNT(*) FROM inflight").fetchone()[0]
                    assert rows == 0, f"keeper{i} left {rows} journaled transaction(s)"
                return 3

            soak.check("campaigns below their threshold never released", never_below_threshold)
            soak.check(
                "revealed campaigns: nothing twice, forged or withdrawn", nothing_twice_nothing_forged_nothing_withdrawn
            )
            soak.check("members reading every live pledge", no_pledge_lost)
            soak.check("keepers with an empty journal", journals_empty)
            results = soak.run_checks()
            assert all(code == 0 for code in statuses.values()), f"a process did not stop cleanly: {statuses}"
            assert not work.errors, work.errors[:5]
            texts = {p.name: p.log.read_text() for p in soak.procs}
            figures = {
                "seed": seed,
                "seconds": round(time.monotonic() - started),
                "kill_phase_seconds": round(kill_phase),
                "kills": soak.kills(),
                "kills_by_process": {p.name: dict(p.kills) for p in soak.procs},
                "starts": {p.name: p.starts for p in soak.procs},
                "exited_by_itself": soak.unexpected,
                "campaigns": dict(Counter(work.kinds.values())),
                "release_transactions": sum(len(CampaignClient(client, c).releases()) for c in work.kinds),
                "replacements": sum(t.count("replaced by") for t in texts.values()),
                "refusals_behind_the_liar": texts["keeper0"].count("refusing to release")
                + texts["keeper0"].count("the nodes disagree"),
                "out_of_funds": sum(t.count("keeper out of funds") for t in texts.values()),
                "fee_spikes": chaos.spikes,
                "lie_switches": chaos.lie_switches,
                "nodes": [dict(n.stats) for n in nodes],
                "checks": results,
            }
        finally:  # whatever happened, nothing of the soak outlives it
            chaos.stop.set()
            for proc in soak.procs:
                if proc.alive():
                    proc.stop(timeout=20)
            for proxy in nodes:
                proxy.close()
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs in all (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--dir", type=Path, default=None, help="keep the run's files here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print(f"soak: seed {seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        run_dir = args.dir or Path(tmp)
        run_dir.mkdir(parents=True, exist_ok=True)
        figures = keeper_soak(run_dir, args.kills, seed, say=lambda s: print(f"soak: {s}", flush=True))
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
