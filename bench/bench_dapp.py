"""Render time of the dApp's campaign page for a campaign with 1,000 pledges, on a real anvil.

    python -m bench.bench_dapp                 # prints a table (AppTest, and a browser if chromium is here)
    python -m bench.bench_dapp --json          # the figures as one JSON object
    python -m bench.bench_dapp --pledges 5000  # another size

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
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
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
TARGET_S = 1.5
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
    lines.append(f"machine: {figures['cpus']} CPUs, load average {figures['load']:.1f} during the run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--pledges", type=int, default=1000, help="pledges in the campaign (default 1000)")
    parser.add_argument("--no-browser", action="store_true", help="measure with AppTest only")
    args = parser.parse_args(argv)
    figures = measure(args.pledges, browser=not args.no_browser)
    print(json.dumps(figures, indent=2) if args.json else table(figures))
    missed = [key for key in RENDERS if key in figures and key not in SCALE and figures[key] > TARGET_S]
    for key in missed:
        print(f"TARGET MISSED: {RENDERS[key]}: {figures[key]:.3f} s > {TARGET_S} s", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
