"""Render time of the dApp's campaign page for a campaign with 1,000 pledges, on a real anvil.

    python -m bench.bench_dapp                 # prints a table (AppTest, and a browser if chromium is here)
    python -m bench.bench_dapp --json          # the figures as one JSON object
    python -m bench.bench_dapp --pledges 5000  # another size
    python -m bench.bench_dapp --scale-only    # the node's load with 1, then 50 watching sessions

The pledges are unsigned transactions from fresh addresses that anvil impersonates
(``--auto-impersonate``), each carrying a random 970-byte sealed pledge (the size of a
typical one with 3 keepers), as ``bench_gas`` does.

Figures (target: every render <= 1.5 s):

* ``apptest_first``: the whole page script, run by Streamlit's AppTest in a process whose
  modules are loaded but that has never read this campaign (its count history is read
  from the chain: every event since the campaign's creation);
* ``apptest_again``: the same page again (median of 5): what each later visit costs the
  server, and the upper bound of a live-count refresh;
* ``browser_*``: headless Chromium against ``streamlit run`` on loopback, from navigation
  to the live count drawn, and to the whole page with its chart drawn; first visit of the
  campaign (history read) and again. For scale, the same for a two-element Streamlit page
  (``browser_floor``: the framework's own cost on this machine) and a 1-pledge campaign.
  Skipped without chromium or playwright.

The browser module (what every visitor's browser runs; ``--js-only`` measures just these):

* ``js_seal_ms``: sealing one typical pledge (a name, an e-mail, a 100-character message, 3
  keepers) in Chromium with the bundle the dApp serves (median of 30, after 5 to warm up);
  target <= 50 ms;
* ``js_roster_s``: the roster of 1,000 members (sealed and released by the Python core, two
  keepers of three) rebuilt in Chromium by a member (median of 3); target <= 3 s;
* ``js_bundle_bytes`` / ``js_bundle_gzip_bytes``: the bundle's size, raw and gzipped (level 9).

The page at scale (``--scale-only`` measures just this; ``--sessions``, ``--watch`` change it):

* ``scale_rpm_1`` / ``scale_rpm_many``: JSON-RPC requests per minute that reach anvil, counted by
  a proxy in front of it, while one browser session, then ``--sessions`` (50) sessions, watch one
  campaign's live page for ``--watch`` seconds (60) with the default refresh (2 s); a pledge lands
  every 10 s in both windows (sent straight to anvil, not counted), so the page has news to read.
  Target: ``scale_ratio`` (many / one) <= 2. Each window starts 10 s after the sessions opened
  (their first visit is not counted). The sessions are headless pages of one Chromium, in
  five contexts (cookies, storage and WebSockets of their own); each must show the last pledge's
  count at the end of the window, or the run fails: every session was live, not asleep.
"""

from __future__ import annotations

import argparse
import collections
import http.server
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from web3 import Web3

from spartacus.anvil import Anvil, dev_key, free_port
from spartacus.chain import CampaignConfig, ChainClient, FactoryClient, KeySigner, sort_keepers
from spartacus.keys import KeyPair

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dapp" / "app.py"
BUNDLE = ROOT / "dapp" / "component" / "build" / "spartacus.js"
TARGET_S = 1.5
TARGET_SEAL_MS = 50.0
TARGET_ROSTER_S = 3.0
ROSTER_MEMBERS = 1000
ENVELOPE_BYTES = 970


def _campaign(client: ChainClient, factory: FactoryClient, threshold: int, deposit: int) -> str:
    keepers = sort_keepers([KeyPair.generate().public_key for _ in range(3)])
    config = CampaignConfig(
        title="Night shift organising drive",
        purpose="Win a fair night-shift rota together",
        description="We are many; alone, none of us can ask. " * 10,
        plan="When we are enough, we meet and sign the letter together. " * 5,
        threshold=threshold,
        deadline=client.timestamp() + 30 * 86400,
        keepers=keepers,
        keeper_threshold=2,
        deposit=deposit,
    )
    member = KeyPair.generate().compressed
    address, _ = factory.create(
        KeySigner(dev_key(1)), config, secrets.token_bytes(32), secrets.token_bytes(ENVELOPE_BYTES), member
    )
    return address


def _fill(client: ChainClient, campaign: str, count: int, deposit: int) -> None:
    """``count`` pledges from fresh impersonated addresses; one receipt wait at the end."""
    w3 = client.w3
    last = None
    for _ in range(count):
        who = Web3.to_checksum_address(secrets.token_bytes(20))
        w3.provider.make_request("anvil_setBalance", [who, hex(10**18)])  # type: ignore[arg-type]
        data = client.contracts.encode_call(
            "Campaign", "pledge", [secrets.token_bytes(ENVELOPE_BYTES), KeyPair.generate().compressed]
        )
        last = w3.eth.send_transaction({"from": who, "to": campaign, "data": data, "value": deposit, "gas": 300_000})
    if last is not None:
        assert w3.eth.wait_for_transaction_receipt(last)["status"] == 1


def measure_apptest(url: str, factory: str, warmup: str, campaign: str, expect: str) -> dict[str, float]:
    """The page script alone, run by AppTest (one instance: its own set-up is not the page's)."""
    from streamlit.testing.v1 import AppTest

    os.environ |= {"SPARTACUS_NETWORK": url, "SPARTACUS_FACTORY": factory}
    at = AppTest.from_file(str(APP), default_timeout=120)

    def run(address: str) -> float:
        at.query_params["campaign"] = address
        start = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - start
        if at.exception:
            raise RuntimeError(f"the page failed: {at.exception[0].value}")
        return elapsed

    run(warmup)  # imports (Streamlit, altair, pandas, web3) and the connection, on a small campaign
    first = run(campaign)
    shown = [m.value for m in at.metric]
    if expect not in shown:
        raise RuntimeError(f"the page shows {shown}, not {expect!r}")
    again = statistics.median(run(campaign) for _ in range(5))
    return {"apptest_first": first, "apptest_again": again}


def measure_browser(url: str, factory: str, warmup: str, campaign: str, expect: str) -> dict[str, float] | str:
    """Navigation to the live count drawn, in headless Chromium against ``streamlit run``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "skipped: playwright is not installed"
    if not chromium:
        return "skipped: chromium is not installed"
    env = os.environ | {"SPARTACUS_NETWORK": url, "SPARTACUS_FACTORY": factory, "SPARTACUS_REFRESH": "60"}
    floor = _floor(chromium, env)
    server, base = _serve(APP, env)  # its first session pays the imports and the connection
    try:
        small_url = f"{base}/?campaign={warmup}"
        small = statistics.median(t for t, _ in _load_times(chromium, (small_url, "1 of 10"), small_url, "1 of 10", 3))
        big_url = f"{base}/?campaign={campaign}"
        first, *again = _load_times(chromium, (small_url, "1 of 10"), big_url, expect, 6)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        "browser_floor": floor,
        "browser_small": small,
        "browser_first": first[0],
        "browser_first_complete": first[1],
        "browser_again": statistics.median(t for t, _ in again),
        "browser_again_complete": statistics.median(t for _, t in again),
    }


FLOOR_APP = """
import streamlit as st
st.title("Hello")
st.metric("Live pledges", "1 of 2")
"""


def _serve(script: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script),
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1):
                return server, base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError(f"streamlit did not start for {script}") from None
            time.sleep(0.1)


def _load_times(
    chromium: str, warm: tuple[str, str], url: str, text: str, count: int, *, complete: bool = True
) -> list[tuple[float, float]]:
    """Seconds from navigation to the metric showing ``text``, and to the whole page drawn,
    ``count`` times, in one browser context whose cache a first, untimed visit of ``warm``
    (url, text) has filled."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        context = browser.new_context()

        def load(address: str, shown: str) -> tuple[float, float]:
            page = context.new_page()
            start = time.perf_counter()
            page.goto(address)
            page.get_by_test_id("stMetricValue").filter(has_text=shown).wait_for(timeout=60_000)
            count = time.perf_counter() - start
            if complete:  # the script has finished and the chart is drawn
                page.locator('[data-testid="stVegaLiteChart"] svg.marks').first.wait_for(timeout=60_000)
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
            done = time.perf_counter() - start
            page.close()
            return count, done

        load(*warm)
        times = [load(url, text) for _ in range(count)]
        browser.close()
    return times


def _floor(chromium: str, env: dict[str, str]) -> float:
    """The same measure for a two-element Streamlit page: the framework's own cost here."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "floor.py"
        script.write_text(FLOOR_APP)
        server, base = _serve(script, env)
        try:
            return statistics.median(
                t for t, _ in _load_times(chromium, (base, "1 of 2"), base, "1 of 2", 3, complete=False)
            )
        finally:
            server.terminate()
            server.wait(timeout=10)


# ─── The browser module ──────────────────────────────────────────────────────────────


def _roster_case(members: int) -> dict[str, Any]:
    """A revealed campaign of ``members`` pledges, sealed and released by the Python core."""
    from spartacus.envelope import PledgeContent, open_share, parse, seal, seal_instructions
    from spartacus.release import Entry, build_release
    from spartacus.types import CampaignContext, LateJoiners, Scope

    keepers = [KeyPair.generate() for _ in range(3)]
    order = sort_keepers([k.public_key for k in keepers])
    keepers.sort(key=lambda k: order.index(k.public_key))
    ctx = CampaignContext(
        31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3", order, 2, Scope.MEMBERS, LateJoiners.KNOWN
    )
    pairs = [KeyPair.generate() for _ in range(members)]
    pledges = []
    for i, m in enumerate(pairs):
        content = PledgeContent(f"Member {i}", {"email": f"m{i}@example.org"}, "x" * 100)
        pledges.append((i, m, seal(content, ctx, m, pledger=m.address)))
    creator = pairs[0]
    instructions = seal_instructions("Meet at dawn.", ctx, creator, creator=creator.address)
    releases = []
    for k in (0, 1):
        entries = [
            Entry(
                i,
                open_share(parse(env), k, keepers[k], ctx, member_key33=m.compressed, pledger=m.address),
                m.compressed,
            )
            for i, m, env in pledges
        ]
        iy = open_share(parse(instructions), k, keepers[k], ctx, member_key33=creator.compressed,
                        pledger=creator.address, role=2)  # fmt: skip
        build = build_release(ctx, keepers[k], k, entries, instructions=iy)
        releases += [
            {
                "keeperIndex": k,
                "keeper": keepers[k].address,
                "data": "0x" + d.hex(),
                "blockNumber": 20 + j,
                "logIndex": k,
            }
            for j, d in enumerate(build.payloads)
        ]
    return {
        "ctx": {
            "chainId": 31337,
            "campaign": ctx.campaign,
            "keepers": ["0x" + k.hex() for k in order],
            "t": 2,
            "scope": "members",
            "lateJoiners": "known",
            "relay": None,
        },  # fmt: skip
        "creator": creator.address,
        "instructions": "0x" + instructions.hex(),
        "reader": "0x" + pairs[members // 2].secret_bytes().hex(),
        "pledges": [
            {
                "index": i,
                "pledger": m.address,
                "memberKey": "0x" + m.compressed.hex(),
                "envelope": "0x" + env.hex(),
                "live": True,
                "late": False,
            }
            for i, m, env in pledges
        ],  # fmt: skip
        "releases": releases,
    }


MEASURE_JS = """async (job) => {
  const lib = await import("./spartacus.js");
  const h = lib.fromHex;
  const ctxOf = (c) => ({...c, keepers: c.keepers.map(h)});
  const ctx = ctxOf(job.seal.ctx);
  const member = lib.generateKeyPair();
  const content = lib.pledgeContent({name: "Ana", contact: {email: "ana@example.org"}, message: "x".repeat(100)});
  const seals = [];
  for (let i = 0; i < 35; i++) {
    const t0 = performance.now();
    await lib.seal(content, ctx, member.secret, {pledger: member.address});
    if (i >= 5) seals.push(performance.now() - t0);
  }
  const r = job.roster;
  const pledges = r.pledges.map((p) => ({...p, memberKey: h(p.memberKey), envelope: h(p.envelope)}));
  const releases = r.releases.map((x) => ({...x, data: h(x.data)}));
  const rosters = [];
  let members = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const opts = {instructions: h(r.instructions)};
    const roster = await lib.buildRoster(ctxOf(r.ctx), pledges, releases, h(r.reader), r.creator, opts);
    rosters.push(performance.now() - t0);
    members = roster.members.length;
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {seal_ms: median(seals), roster_ms: median(rosters), members};
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def measure_js(members: int = ROSTER_MEMBERS) -> dict[str, Any]:
    """The browser module's figures (see the module docstring)."""
    import functools
    import gzip
    import hashlib
    import threading

    if not BUNDLE.exists():
        return {"js": "skipped: the bundle is not built (make setup)"}
    raw = BUNDLE.read_bytes()
    out: dict[str, Any] = {
        "js_bundle_bytes": len(raw),
        "js_bundle_gzip_bytes": len(gzip.compress(raw, 9)),
        "js_bundle_sha256": hashlib.sha256(raw).hexdigest(),
    }
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return out | {"js": "skipped: playwright is not installed"}
    if not chromium:
        return out | {"js": "skipped: chromium is not installed"}
    case = _roster_case(members)
    job = {"seal": {"ctx": case["ctx"]}, "roster": case}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(BUNDLE, Path(tmp) / "spartacus.js")
        (Path(tmp) / "index.html").write_text("<!doctype html><meta charset=utf-8><title>bench</title>")
        handler = functools.partial(_Quiet, directory=tmp)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                got = page.evaluate(MEASURE_JS, job)
                browser.close()
        finally:
            server.shutdown()
    if got["members"] != members:
        raise RuntimeError(f"the browser read {got['members']} members of {members}")
    return out | {"js_seal_ms": round(got["seal_ms"], 2), "js_roster_s": round(got["roster_ms"] / 1000, 3),
                  "js_roster_members": members}  # fmt: skip


# ─── The page at scale ───────────────────────────────────────────────────────────────

TARGET_RATIO = 2.0
PLEDGE_EVERY_S = 10.0


class CountingProxy:
    """A JSON-RPC proxy on loopback in front of the node: counts every request (each call of a
    batch) by method, and forwards it unchanged."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self.methods: collections.Counter[str] = collections.Counter()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    calls = json.loads(body)
                    names = [c.get("method", "?") for c in (calls if isinstance(calls, list) else [calls])]
                except ValueError:
                    names = ["?"]
                with proxy.lock:
                    proxy.methods.update(names)
                headers = {"content-type": "application/json"}
                request = urllib.request.Request(proxy.upstream, data=body, headers=headers)
                with urllib.request.urlopen(request, timeout=60) as r:
                    answer = r.read()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> collections.Counter[str]:
        """The counts since the last take, and a fresh count."""
        with self.lock:
            out, self.methods = self.methods, collections.Counter()
        return out

    def close(self) -> None:
        self.server.shutdown()


class Pledger:
    """A pledge every ``every`` seconds from fresh impersonated addresses, straight to the node."""

    def __init__(self, client: ChainClient, campaign: str, deposit: int, every: float = PLEDGE_EVERY_S) -> None:
        self.client, self.campaign, self.deposit, self.every = client, campaign, deposit, every
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            _fill(self.client, self.campaign, 1, self.deposit)
            self.sent += 1

    def __enter__(self) -> Pledger:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


WARM_S = 10.0


def _watch(proxy: CountingProxy, pledger_args: tuple[Any, ...], seconds: float) -> tuple[collections.Counter[str], int]:
    """Counts the requests of ``seconds`` of watching while pledges land, after ``WARM_S`` of
    watching that is not counted (a session's first visit reads the count history once per
    server); ``(counts, pledges)``."""
    with Pledger(*pledger_args) as pledger:
        time.sleep(WARM_S)
        proxy.take()
        sent = pledger.sent
        time.sleep(seconds)  # the measured window: the sessions refresh on their own meanwhile
        counts = proxy.take()
        sent = pledger.sent - sent
    return counts, sent


def measure_scale(sessions: int = 50, watch: float = 60.0) -> dict[str, Any]:
    """The node's requests per minute with 1, then ``sessions`` browser sessions on one campaign."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"scale": "skipped: playwright is not installed"}
    if not chromium:
        return {"scale": "skipped: chromium is not installed"}
    with Anvil(extra=["--accounts", "10", "--silent", "--auto-impersonate"]) as node:
        client = ChainClient(Web3(Web3.HTTPProvider(node.url)))
        factory, _ = FactoryClient.deploy(client, KeySigner(dev_key(0)))
        deposit = 10**15
        campaign = _campaign(client, factory, threshold=10_000, deposit=deposit)
        _fill(client, campaign, 20, deposit)
        proxy = CountingProxy(node.url)
        env = os.environ | {"SPARTACUS_NETWORK": proxy.url, "SPARTACUS_FACTORY": factory.address}
        env.pop("SPARTACUS_REFRESH", None)  # the default refresh, as a host would run it
        server, base = _serve(APP, env)
        url = f"{base}/?campaign={campaign}"
        out: dict[str, Any] = {"scale_sessions": sessions, "scale_watch_s": watch}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=chromium,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-background-timer-throttling", "--disable-renderer-backgrounding"],
                )  # fmt: skip
                contexts = [browser.new_context(viewport={"width": 1000, "height": 800}) for _ in range(5)]

                def open_page(i: int) -> Any:
                    page = contexts[i % len(contexts)].new_page()
                    page.goto(url)
                    page.get_by_test_id("stMetricValue").first.wait_for(timeout=120_000)
                    return page

                def shown(page: Any) -> int:
                    return int(page.get_by_test_id("stMetricValue").first.inner_text().split(" of ")[0])

                def all_live(pages: list[Any]) -> None:
                    (count,) = client.call("Campaign", campaign, "pledgeCount")
                    deadline = time.monotonic() + 60
                    for page in pages:
                        while shown(page) != count:
                            if time.monotonic() > deadline:
                                raise RuntimeError(f"a session shows {shown(page)}, not the live count {count}")
                            page.wait_for_timeout(250)

                pages = [open_page(0)]
                one, sent_one = _watch(proxy, (client, campaign, deposit), watch)
                all_live(pages)
                while len(pages) < sessions:
                    pages.append(open_page(len(pages)))
                many, sent_many = _watch(proxy, (client, campaign, deposit), watch)
                all_live(pages)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
            proxy.close()
    per_min = 60.0 / watch
    out |= {
        "scale_rpm_1": round(sum(one.values()) * per_min, 1),
        "scale_rpm_many": round(sum(many.values()) * per_min, 1),
        "scale_pledges_per_window": [sent_one, sent_many],
        "scale_methods_1": dict(one.most_common()),
        "scale_methods_many": dict(many.most_common()),
    }
    out["scale_ratio"] = round(out["scale_rpm_many"] / max(out["scale_rpm_1"], 1e-9), 2)
    return out


def scale_table(figures: dict[str, Any]) -> list[str]:
    if "scale_rpm_1" not in figures:
        return [f"page at scale: {figures.get('scale', 'not measured')}"]
    n = figures["scale_sessions"]
    return [
        f"page at scale (one campaign watched {figures['scale_watch_s']:.0f} s, a pledge every {PLEDGE_EVERY_S:.0f} s)"
        " | JSON-RPC requests per minute at the node",
        f"1 session | {figures['scale_rpm_1']:.0f}  ({figures['scale_methods_1']})",
        f"{n} sessions | {figures['scale_rpm_many']:.0f}  ({figures['scale_methods_many']})",
        f"ratio | {figures['scale_ratio']:.2f} (target <= {TARGET_RATIO:.0f})",
    ]


def scale_missed(figures: dict[str, Any]) -> list[str]:
    if figures.get("scale_ratio", 0) > TARGET_RATIO:
        return [f"TARGET MISSED: the node's load grows with viewers: ratio {figures['scale_ratio']} > {TARGET_RATIO}"]
    return []


def measure(pledges: int, browser: bool) -> dict[str, Any]:
    with Anvil(extra=["--accounts", "10", "--silent", "--auto-impersonate"]) as node:
        client = ChainClient(Web3(Web3.HTTPProvider(node.url)))
        factory, _ = FactoryClient.deploy(client, KeySigner(dev_key(0)))
        deposit = 10**15
        warmup = _campaign(client, factory, threshold=10, deposit=deposit)
        campaign = _campaign(client, factory, threshold=2 * pledges, deposit=deposit)
        start = time.perf_counter()
        _fill(client, campaign, pledges - 1, deposit)  # the creator's record is the first
        fill_s = time.perf_counter() - start
        expect = f"{pledges} of {2 * pledges}"
        out: dict[str, Any] = {"pledges": pledges, "fill_seconds": round(fill_s, 1), "cpus": os.cpu_count()}
        out |= measure_apptest(node.url, factory.address, warmup, campaign, expect)
        if browser:
            result = measure_browser(node.url, factory.address, warmup, campaign, expect)
            if isinstance(result, str):
                out["browser"] = result
            else:
                out |= result
    out["load"] = os.getloadavg()[0]
    return out


RENDERS = {
    "apptest_first": "AppTest: page script, campaign never read before",
    "apptest_again": "AppTest: page script again (median of 5)",
    "browser_floor": "Chromium: a 2-element Streamlit page, for scale (median of 3)",
    "browser_small": "Chromium: a 1-pledge campaign, for scale (median of 3)",
    "browser_first": "Chromium: navigation to live count drawn, first visit",
    "browser_first_complete": "Chromium: navigation to whole page and chart drawn, first visit",
    "browser_again": "Chromium: navigation to live count drawn, again (median of 5)",
    "browser_again_complete": "Chromium: navigation to whole page and chart drawn, again (median of 5)",
}


SCALE = {"browser_floor", "browser_small"}  # context for the reader, not the page under test


def table(figures: dict[str, Any]) -> str:
    rows = [("render", "seconds", "target")]
    for key, label in RENDERS.items():
        if key in figures:
            rows.append((label, f"{figures[key]:.3f}", "(scale)" if key in SCALE else f"<= {TARGET_S}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        f"campaign with {figures['pledges']:,} pledges of {ENVELOPE_BYTES} B (filled in {figures['fill_seconds']} s)"
    )
    if "browser" in figures:
        lines.append(f"browser: {figures['browser']}")
    lines += ["", *js_table(figures)]
    lines.append(f"machine: {figures['cpus']} CPUs, load average {figures['load']:.1f} during the run")
    return "\n".join(lines)


def js_table(figures: dict[str, Any]) -> list[str]:
    lines = ["browser module | figure | target"]
    if "js_seal_ms" in figures:
        lines.append(
            f"seal one typical pledge in Chromium | {figures['js_seal_ms']:.1f} ms | <= {TARGET_SEAL_MS:.0f} ms"
        )
        lines.append(
            f"roster of {figures['js_roster_members']:,} members in Chromium | {figures['js_roster_s']:.2f} s | "
            f"<= {TARGET_ROSTER_S:.0f} s"
        )
    if "js_bundle_bytes" in figures:
        lines.append(
            f"bundle size | {figures['js_bundle_bytes']:,} B ({figures['js_bundle_gzip_bytes']:,} B gzipped) | "
            f"sha256 {figures['js_bundle_sha256']}"
        )
    if "js" in figures:
        lines.append(f"browser module: {figures['js']}")
    return lines


def js_missed(figures: dict[str, Any]) -> list[str]:
    out = []
    if figures.get("js_seal_ms", 0) > TARGET_SEAL_MS:
        out.append(f"TARGET MISSED: sealing one pledge in Chromium: {figures['js_seal_ms']} ms > {TARGET_SEAL_MS} ms")
    if figures.get("js_roster_s", 0) > TARGET_ROSTER_S:
        out.append(f"TARGET MISSED: the roster in Chromium: {figures['js_roster_s']} s > {TARGET_ROSTER_S} s")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--pledges", type=int, default=1000, help="pledges in the campaign (default 1000)")
    parser.add_argument("--no-browser", action="store_true", help="measure with AppTest only")
    parser.add_argument("--js-only", action="store_true", help="measure the browser module only (seconds)")
    parser.add_argument("--scale-only", action="store_true", help="measure the page at scale only (about 3 min)")
    parser.add_argument("--sessions", type=int, default=50, help="browser sessions for the page at scale (50)")
    parser.add_argument("--watch", type=float, default=60.0, help="seconds each scale window lasts (60)")
    parser.add_argument("--no-scale", action="store_true", help="skip the page at scale")
    args = parser.parse_args(argv)
    if args.scale_only:
        figures = measure_scale(args.sessions, args.watch)
        print(json.dumps(figures, indent=2) if args.json else "\n".join(scale_table(figures)))
        for line in scale_missed(figures):
            print(line, file=sys.stderr)
        return 1 if scale_missed(figures) else 0
    if args.js_only:
        figures = measure_js()
        print(json.dumps(figures, indent=2) if args.json else "\n".join(js_table(figures)))
        missed_js = js_missed(figures)
        for line in missed_js:
            print(line, file=sys.stderr)
        return 1 if missed_js else 0
    figures = measure(args.pledges, browser=not args.no_browser) | measure_js()
    if not args.no_scale and not args.no_browser:
        figures |= measure_scale(args.sessions, args.watch)
    print(json.dumps(figures, indent=2) if args.json else table(figures) + "\n" + "\n".join(scale_table(figures)))
    missed = [key for key in RENDERS if key in figures and key not in SCALE and figures[key] > TARGET_S]
    for key in missed:
        print(f"TARGET MISSED: {RENDERS[key]}: {figures[key]:.3f} s > {TARGET_S} s", file=sys.stderr)
    for line in js_missed(figures) + scale_missed(figures):
        print(line, file=sys.stderr)
    return 1 if missed or js_missed(figures) or scale_missed(figures) else 0


if __name__ == "__main__":
    sys.exit(main())
