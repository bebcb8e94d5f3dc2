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
import http.client
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
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
        self.finishers: list[tuple[str, Callable[[], bool]]] = []
        self.after_stop: list[Callable[[], None]] = []
        self.drivers: list[Driver] = []
        self.figure_fns: list[Callable[[], dict[str, Any]]] = []
        self.closers: list[Callable[[], None]] = []
        self.unexpected: list[str] = []

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def check(self, name: str, fn: Callable[[], Any]) -> None:
        """An end-of-run check: raises AssertionError when a property broke; returns a figure."""
        self.checks.append((name, fn))

    def finish(self, name: str, done: Callable[[], bool]) -> None:
        """After the kills, the run waits until every ``done()`` holds (the processes' work finished)."""
        self.finishers.append((name, done))

    def drive(self, driver: Driver) -> Driver:
        """A background load (a thread) started with the processes, asked to stop after the kills."""
        self.drivers.append(driver)
        return driver

    def then(self, action: Callable[[], None]) -> None:
        """Run once every process has stopped, before the checks (an operator's step)."""
        self.after_stop.append(action)

    def figures(self, fn: Callable[[], dict[str, Any]]) -> None:
        """More figures for the run's report."""
        self.figure_fns.append(fn)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run at the very end, whatever happened (servers, proxies)."""
        self.closers.append(fn)

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
                wait_until = time.monotonic() + 5
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


class Driver(threading.Thread):
    """A background load of the soak: ``run`` until ``stop`` is set, then finish what it started."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.errors: list[str] = []


# ─── The keepers' scenario ───────────────────────────────────────────────────────────

#: Campaigns that end revealed (the relayed ones, by their last relayed pledge).
REVEALED = ("revealed", "withdrawn", "relayed")


@dataclass
class Workload:
    """Campaigns made while the processes are killed, by kind."""

    d: Deployment
    rng: random.Random
    kinds: dict[str, str] = field(default_factory=dict)  # campaign -> revealed | withdrawn | cancelled | open | relayed
    withdrawn: dict[str, set[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: the kinds made in turn; ``relayed`` (the last two pledges, the reveal, through a relayer)
    #: is added by :func:`services_soak`
    cycle: list[str] = field(default_factory=lambda: ["revealed", "withdrawn", "cancelled", "open"])
    relay: str | None = None  # a relay service's public key, named by every campaign
    relayed: Callable[[str, list[str]], None] | None = None  # queues relayed pledges (campaign, names)

    def one(self, kind: str) -> str:
        from spartacus.anvil import dev_key
        from spartacus.chain import CampaignClient, KeySigner

        size = self.rng.randint(3, 6)
        extra = {"relay": self.relay} if self.relay else {}
        campaign = create_campaign(self.d, threshold=size, **extra)
        self.kinds[campaign] = "open"
        self.withdrawn[campaign] = set()
        if kind == "relayed":  # every pledge but the organizer's through the relayer, at once
            assert self.relayed is not None, "no relayer in this soak"
            n = len(self.kinds)
            self.relayed(campaign, [f"Relayed {n} {j}" for j in range(size - 1)])  # the last one reveals
        elif kind == "revealed":
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
        expected = {"revealed": "revealed", "withdrawn": "revealed", "cancelled": "cancelled", "open": "open",
                    "relayed": None}[kind]  # fmt: skip
        if expected is not None and state != expected:
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
                    self.work.one(self.work.cycle[len(self.work.kinds) % len(self.work.cycle)])
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
        chaos = Chaos(d, nodes[0], work, rng)
        try:
            for driver in soak.drivers:
                driver.start()
            for kind in work.cycle:  # one of each before the kills
                work.one(kind)
            say(f"{len(work.kinds)} campaigns; starting {len(soak.procs)} processes")
            soak.start()
            chaos.start()
            say(f"killing until {kills} kills")
            soak.kill_until(kills)
            kill_phase = time.monotonic() - started
            chaos.stop.set()
            chaos.join()
            for driver in soak.drivers:
                driver.stop.set()
            nodes[0].honest()
            say(f"{soak.kills()} kills in {kill_phase:.0f} s; letting the processes finish")

            def done() -> bool:
                for campaign, kind in work.kinds.items():
                    if kind not in REVEALED:
                        continue
                    c = CampaignClient(client, campaign)
                    live = {p.index for p in c.pledges() if p.live}
                    published = assert_published_once(client, campaign)
                    if len(published) < 3 or any(not live <= set(w["shared"]) for w in published.values()):
                        return False
                return True

            finishers = [*soak.finishers, ("the keepers to finish", done)]
            deadline = time.monotonic() + 300
            while waiting := [name for name, ok in finishers if not ok()]:
                if time.monotonic() > deadline:
                    raise AssertionError(f"still waiting 300 s after the kills for: {', '.join(waiting)}")
                client.w3.provider.make_request("evm_mine", [])
                for proc in soak.procs:
                    if not proc.alive():
                        soak._died(proc)
                        proc.start()
                time.sleep(1)
            finish_phase = time.monotonic() - started - kill_phase
            statuses = soak.stop()
            for driver in soak.drivers:
                driver.join(timeout=30)
                work.errors.extend(driver.errors)
            for action in soak.after_stop:
                action()

            def never_below_threshold() -> int:
                for campaign, kind in work.kinds.items():
                    if kind in ("cancelled", "open"):
                        assert CampaignClient(client, campaign).releases() == [], f"{kind} campaign {campaign} released"
                return sum(k in ("cancelled", "open") for k in work.kinds.values())

            def nothing_twice_nothing_forged_nothing_withdrawn() -> int:
                checked = 0
                for campaign, kind in work.kinds.items():
                    if kind not in REVEALED:
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
                    if kind in REVEALED:
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
            try:
                results = soak.run_checks()
            except AssertionError as exc:  # the load's own errors tell why, often
                if work.errors:
                    raise AssertionError(f"{exc}; and the load met errors: {work.errors[:5]}") from exc
                raise
            assert all(code == 0 for code in statuses.values()), f"a process did not stop cleanly: {statuses}"
            assert not work.errors, work.errors[:5]
            texts = {p.name: p.log.read_text() for p in soak.procs}
            figures = {
                "seed": seed,
                "seconds": round(time.monotonic() - started),
                "kill_phase_seconds": round(kill_phase),
                "finish_phase_seconds": round(finish_phase),
                "kills": soak.kills(),
                "kills_by_process": {p.name: dict(p.kills) for p in soak.procs},
                "starts": {p.name: p.starts for p in soak.procs},
                "exited_by_itself": soak.unexpected,
                "campaigns": dict(Counter(work.kinds.values())),
                "release_transactions": sum(len(CampaignClient(client, c).releases()) for c in work.kinds),
                "release_replacements": sum(texts[f"keeper{i}"].count("replaced by") for i in range(3)),
                "refusals_behind_the_liar": texts["keeper0"].count("refusing to release")
                + texts["keeper0"].count("the nodes disagree"),
                "out_of_funds": sum(texts[f"keeper{i}"].count("keeper out of funds") for i in range(3)),
                "fee_spikes": chaos.spikes,
                "lie_switches": chaos.lie_switches,
                "nodes": [dict(n.stats) for n in nodes],
                "checks": results,
            }
            for more in soak.figure_fns:
                figures |= more()
        finally:  # whatever happened, nothing of the soak outlives it
            chaos.stop.set()
            for driver in soak.drivers:
                driver.stop.set()
            for proc in soak.procs:
                if proc.alive():
                    proc.stop(timeout=20)
            for proxy in nodes:
                proxy.close()
            for close in soak.closers:
                close()
        return figures


# ─── The relay service and the relayer ──────────────────────────────────────────────

ORGANIZER_EMAIL = "olga@example.org"  # rpcproxy.create_campaign's organizer


def email_of(name: str) -> str:
    """The address rpcproxy.pledge gives a member (the relayed pledges here do the same)."""
    return f"{name.lower().replace(' ', '.')}@example.org"


def _post(url: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return int(exc.code), json.loads(exc.read())
        except ValueError:  # the relayer's short 503 when all its connections are busy
            return int(exc.code), {}


@dataclass
class Accepted:
    """A relayed pledge the relayer answered 200 for."""

    campaign: str
    name: str
    member: Any  # the member KeyPair: it signed the request, it is the pledger
    tx: str  # what the relayer answered first
    index: int | None = None  # the pledge's index, once it ran


class RelayedPledges(Driver):
    """Pledges through the relayer, each from a fresh member key that holds no ether (the pledger is
    the key's own address), sealed for real. Each request is signed once and posted, the same bytes
    again and again, until the relayer answers 200: as a client does while the relayer is killed,
    restarted, out of reach or busy (503). Any other answer to these good requests is an error."""

    def __init__(self, d: Deployment, url: str) -> None:
        from web3 import Web3

        from spartacus.chain import ChainClient, FactoryClient

        super().__init__()
        self.d, self.url = d, url
        self.client = ChainClient(Web3(Web3.HTTPProvider(d.url, request_kwargs={"timeout": 60})))
        self.forwarder = FactoryClient(self.client, d.factory).forwarder
        self.jobs: queue.Queue[tuple[str, str]] = queue.Queue()
        self.accepted: list[Accepted] = []
        self.answers: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._open = 0

    def add(self, campaign: str, names: list[str]) -> None:
        with self._lock:
            self._open += len(names)
        for name in names:
            self.jobs.put((campaign, name))

    def idle(self) -> bool:
        with self._lock:
            return self._open == 0

    def run(self) -> None:
        """Three clients at once: the relayer's transactions go out pipelined."""
        workers = [threading.Thread(target=self._work, daemon=True) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _work(self) -> None:
        while True:
            try:
                campaign, name = self.jobs.get(timeout=0.2)
            except queue.Empty:
                if self.stop.is_set():
                    return
                continue
            try:
                self.carry(campaign, name)
            except Exception as exc:  # noqa: BLE001 - recorded, reported, fails the run
                self.errors.append(f"relayed pledge of {name} to {campaign}: {exc.__class__.__name__}: {exc}")
            finally:
                with self._lock:
                    self._open -= 1

    def carry(self, campaign: str, name: str) -> None:
        from spartacus.chain import CampaignClient
        from spartacus.envelope import PledgeContent, seal
        from spartacus.forwarding import ForwardRequest, estimate_call_gas
        from spartacus.keys import KeyPair

        member = KeyPair.generate()
        c = CampaignClient(self.client, campaign)
        envelope = seal(PledgeContent(name=name, contact={"email": email_of(name)}), c.context(), member,
                        pledger=member.address)  # fmt: skip
        data = self.client.contracts.encode_call("Campaign", "pledge", [envelope, member.compressed])
        gas = estimate_call_gas(self.client, self.forwarder, member.address, campaign, data, 0)
        unsigned = ForwardRequest(member.address, campaign, 0, int(gas * 1.5) + 100_000, 0,
                                  self.client.timestamp() + 3600, data)  # fmt: skip
        body = json.dumps(unsigned.sign(member.secret_bytes(), self.client.chain_id, self.forwarder).to_json())
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                status, doc = _post(self.url + "/relay", body.encode())
            except (OSError, http.client.HTTPException, ValueError):  # down, restarting, or killed mid-answer
                self.answers["unreachable"] += 1
                time.sleep(0.2)
                continue
            self.answers[str(status)] += 1
            if status == 200:
                self.accepted.append(Accepted(campaign, name, member, str(doc["tx"])))
                return
            if status in (429, 503):
                time.sleep(0.3)
                continue
            raise RuntimeError(f"the relayer refused a good request: HTTP {status} {doc}")
        raise RuntimeError("the relayer did not take the request in 600 s")

    def all_ran(self) -> bool:
        """Every accepted pledge ran (its signer's forwarder nonce moved); records its index and
        makes it a member of its campaign, as the checks expect."""
        from spartacus.chain import CampaignClient
        from spartacus.forwarding import forwarder_nonce

        if not self.idle():
            return False
        for a in self.accepted:
            if a.index is not None:
                continue
            if forwarder_nonce(self.client, self.forwarder, a.member.address) == 0:
                return False
            index, status, _ = CampaignClient(self.client, a.campaign).pledge_of(a.member.address)
            assert status == "live", f"relayed pledge of {a.name} ran, but is {status}"
            a.index = int(index)
            self.d.members[a.campaign].append((a.member, a.index, a.name))
        return True


def services_soak(soak: Soak, d: Deployment, work: Workload) -> None:
    """Adds the relay service and the relayer to the keepers' soak (``keeper_soak(extend=...)``).

    * One relay service key, named by every campaign (``create --relay``), ``relay run --key-file``
      behind a capped (Alchemy's words: 2,000 blocks or 5 logs) and flaky node (2 % of requests
      dropped, 2 % of answers lost), sending to an aiosmtpd server that queues each message before
      its 250 and takes 100 ms to answer (``tests/relay_helpers.py``): kills land mid-delivery, and
      right after a message went (between two sends).
    * One relayer (``relayer run --stuck-blocks 2 --max-fee-gwei 500``) behind a capped (reth's
      words: 100 blocks or 20 logs), flaky and rate-limited node (60 requests/s), carrying every
      pledge but the organizer's of every ``relayed`` campaign (one in five), the reveal with the
      last, from three clients at once that each retry the same signed request until it is taken;
      SIGKILLed too, at any moment or right after it carried a request or replaced a transaction.

    Neither has a defence against a node that lies (the keepers check logs against storage; the
    relay and the relayer believe their node): both stay behind honest, if capped and flaky, nodes.
    The checks: every member of every revealed campaign e-mailed its roster exactly once, nobody
    else; no Message-ID twice; every delivered row received once; every ``uncertain`` row (killed
    inside the commit window) counted, found received, or resent once after checking the server,
    as an operator would; every accepted relayed pledge ran exactly once, in one relayer
    transaction, and the relayer spent no nonce on anything else.
    """
    from relay_helpers import Mailbox

    from spartacus.anvil import free_port
    from spartacus.relay import relay_status

    run_dir = d.cwd
    rng = soak.rng
    key = d.cli(d.url, "relay", "init", "--key-file", "relay.key")
    work.relay = str(key["public_key"])
    box = Mailbox().start()
    box.answer_delay = 0.1  # like an MTA that queues before it answers: kills land mid-delivery
    soak.on_close(box.stop)
    relay_node = RpcProxy(d.url, caps=LogCaps("alchemy", max_range=2_000, max_results=5), drop=0.02,
                          drop_after=0.02, seed=rng.random())  # fmt: skip
    relayer_node = RpcProxy(d.url, caps=LogCaps("reth", max_range=100, max_results=20), drop=0.02,
                            drop_after=0.02, rate_limit=60, seed=rng.random())  # fmt: skip
    for proxy in (relay_node, relayer_node):
        soak.on_close(proxy.close)
    relay_state = run_dir / "relay.sqlite"
    smtp = ["--smtp-host", "127.0.0.1", "--smtp-port", str(box.port)]
    soak.add(
        Proc(
            name="relay",
            argv=[sys.executable, "-m", "spartacus.cli", "relay", "run", "--key-file", "relay.key", *smtp,
                  "--state", str(relay_state), "--interval", "0.3", "--settle", "2", "--retry-base", "0.5",
                  "--retry-max", "5"],
            env=os.environ | {"SPARTACUS_NETWORK": relay_node.url, "SPARTACUS_FACTORY": d.factory,
                              "PYTHONUNBUFFERED": "1"},
            cwd=run_dir,
            log=run_dir / "relay.log",
            events=("sent ",),
        )
    )  # fmt: skip
    port = free_port()
    relayer_state = run_dir / "relayer.sqlite"
    relayer_account = 9  # TEST::9: funded by anvil, used by nothing else here
    soak.add(
        Proc(
            name="relayer",
            argv=[sys.executable, "-m", "spartacus.cli", "-v", "relayer", "run", "--account",
                  f"TEST::{relayer_account}", "--port", str(port), "--state", str(relayer_state),
                  "--client-limit", "1000000", "--campaign-limit", "1000000", "--interval", "0.3",
                  "--stuck-blocks", "2", "--max-fee-gwei", "500"],
            env=os.environ | {"SPARTACUS_NETWORK": relayer_node.url, "SPARTACUS_FACTORY": d.factory,
                              "PYTHONUNBUFFERED": "1"},
            cwd=run_dir,
            log=run_dir / "relayer.log",
            events=("carried ", "replaced by"),
        )
    )  # fmt: skip
    from spartacus.anvil import dev_key
    from spartacus.chain import FactoryClient, KeySigner

    relayer_address = KeySigner(dev_key(relayer_account)).address
    relayer_nonce = int(d.client.w3.eth.get_transaction_count(relayer_address))
    forwarder = FactoryClient(d.client, d.factory).forwarder
    relayed = soak.drive(RelayedPledges(d, f"http://127.0.0.1:{port}"))
    work.relayed = relayed.add
    work.cycle.append("relayed")
    resend: dict[str, Any] = {}

    # ── what a finished run looks like

    def expected_rosters() -> set[tuple[str, str]]:
        """(campaign, address) of every member of every revealed campaign (withdrawn ones left out)."""
        out = set()
        for campaign, kind in list(work.kinds.items()):
            if kind in REVEALED:
                for _key, index, name in d.members[campaign]:
                    out.add((campaign.lower(), ORGANIZER_EMAIL if index == 0 else email_of(name)))
        return out

    def relay_done() -> bool:
        if not relay_state.exists():
            return False
        st = relay_status(relay_state)
        if st["counts"]["pending"]:
            return False
        covered = {(r["campaign"].lower(), r["email"]) for r in st["delivered"] + st["uncertain"]
                   if r["kind"] == "roster"}  # fmt: skip
        return expected_rosters() <= covered

    def relayer_done() -> bool:
        with sqlite3.connect(relayer_state) as db:
            (waiting,) = db.execute("SELECT COUNT(*) FROM requests WHERE status = 'sent'").fetchone()
        return waiting == 0

    soak.finish("the relayed pledges to run", relayed.all_ran)
    soak.finish("the relayer's journal to settle", relayer_done)
    soak.finish("the relay to e-mail every member", relay_done)

    def resend_missing_uncertain() -> None:
        """What an operator does with ``uncertain`` rows: check the server, resend what it lacks."""
        st = relay_status(relay_state)
        received = {str(r.message["Message-ID"]) for r in box.received}
        missing = [r["message_id"] for r in st["uncertain"] if r["message_id"] not in received]
        resend.update(uncertain=len(st["uncertain"]), received=len(st["uncertain"]) - len(missing), resent=missing)
        if missing:
            out = subprocess.run(
                [sys.executable, "-m", "spartacus.cli", "relay", "run", "--key-file", "relay.key", *smtp,
                 "--state", str(relay_state), "--once", "--settle", "0",
                 *[a for m in missing for a in ("--resend", m)]],
                cwd=run_dir, env=os.environ | {"SPARTACUS_NETWORK": d.url, "SPARTACUS_FACTORY": d.factory},
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert out.returncode == 0, f"the resend of {len(missing)} uncertain message(s) failed: {out.stderr}"

    soak.then(resend_missing_uncertain)

    # ── the checks

    def relay_exactly_once() -> dict[str, int]:
        messages = [(str(r.message["X-Spartacus-Campaign"]).lower(), r.rcpt_tos[0], str(r.message["X-Spartacus-Kind"]),
                     str(r.message["Message-ID"])) for r in box.received]  # fmt: skip
        twice = [m for m, n in Counter(m[3] for m in messages).items() if n > 1]
        assert not twice, f"{len(twice)} e-mail(s) sent twice: {twice[:3]}"
        rosters = Counter((c, to) for c, to, kind, _ in messages if kind == "roster")
        expected = expected_rosters()
        lost = expected - set(rosters)
        assert not lost, f"{len(lost)} member(s) never e-mailed their roster: {sorted(lost)[:3]}"
        assert set(rosters) == expected, f"rosters to non-members: {sorted(set(rosters) - expected)[:3]}"
        assert all(n == 1 for n in rosters.values())
        kinds = Counter(kind for _, _, kind, _ in messages)
        assert set(kinds) <= {"roster", "update"}, kinds  # no late joiner, no progress note in this soak
        st = relay_status(relay_state)
        assert st["counts"]["pending"] == 0 and st["counts"]["failed"] == 0, st["counts"]
        ids = {m[3] for m in messages}
        undelivered = [r["message_id"] for r in st["delivered"] if r["message_id"] not in ids]
        assert not undelivered, f"{len(undelivered)} row(s) marked delivered that the server never got"
        unsent = ids - {r["message_id"] for r in st["delivered"] + st["uncertain"]}
        assert not unsent, f"{len(unsent)} message(s) received that the relay has no row for"
        return {"members": len(expected), "messages": len(messages), "updates": kinds["update"]}

    def relayer_exactly_once() -> dict[str, int]:
        from spartacus.forwarding import forwarder_nonce

        ran = Counter()
        for lg in d.client.logs(forwarder, ["ExecutedForwardRequest"], from_block=d.factory_block):
            assert lg.args["success"], f"a relayed request failed inside the forwarder: {lg.tx_hash}"
            ran[lg.args["signer"].lower()] += 1
        for a in relayed.accepted:
            times = ran[a.member.address.lower()]
            assert times == 1, f"the relayed pledge of {a.name} ran {times} times"
            assert forwarder_nonce(d.client, forwarder, a.member.address) == 1
        assert sum(ran.values()) == len(relayed.accepted), "a request ran that no client had accepted"
        sent = int(d.client.w3.eth.get_transaction_count(relayer_address)) - relayer_nonce
        assert sent == len(relayed.accepted), f"the relayer spent {sent} nonces on {len(relayed.accepted)} requests"
        with sqlite3.connect(relayer_state) as db:
            statuses = Counter(s for (s,) in db.execute("SELECT status FROM requests"))
            (versions,) = db.execute("SELECT COUNT(*) FROM versions").fetchone()
            (mixed,) = db.execute(
                "SELECT COUNT(*) FROM versions v JOIN requests r ON r.digest = v.digest"
                " WHERE v.account_nonce != r.account_nonce"
            ).fetchone()
        assert statuses == {"mined": len(relayed.accepted)}, statuses
        assert mixed == 0, "a version with another nonce than its request's"
        return {"requests": len(relayed.accepted), "versions": int(versions)}

    soak.check("relay: every member e-mailed once, nothing twice, nothing lost", relay_exactly_once)
    soak.check("relayer: every accepted request ran once, nothing sent twice", relayer_exactly_once)

    def figures() -> dict[str, Any]:
        relayer_log = (run_dir / "relayer.log").read_text()
        relay_log = (run_dir / "relay.log").read_text()
        return {
            "relay": {
                "messages": len(box.received),
                "sent_lines": relay_log.count("\nsent ") + relay_log.startswith("sent "),
                "uncertain": resend.get("uncertain", 0),
                "uncertain_received": resend.get("received", 0),
                "uncertain_resent_after_checking": len(resend.get("resent", [])),
                "node": dict(relay_node.stats),
            },
            "relayer": {
                "accepted": len(relayed.accepted),
                "answers": dict(relayed.answers),
                "replacements": relayer_log.count("replaced by"),
                "waits_at_cap": relayer_log.count("waits at the fee cap"),
                "node": dict(relayer_node.stats),
            },
        }

    soak.figures(figures)


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
        figures = keeper_soak(
            run_dir, args.kills, seed, say=lambda s: print(f"soak: {s}", flush=True), extend=services_soak
        )
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
