"""`spartacus relay run`, both forms, starts while its node is down and waits for it with the
backoff it uses once running (``--retry-base`` doubling up to ``--retry-max``), as `keeper run`
does: a real process, a real proxy that refuses every connection, a real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_helpers import Mailbox
from rpcproxy import (
    Deployment,
    RpcProxy,
    anvil_deployment,
    create_campaign,
    keeper_process,
    pledge,
    spartacus_json,
    wait_for,
)

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with anvil_deployment(tmp_path_factory.mktemp("relay-wait")) as d:
        yield d


def relay_process(d: Deployment, url: str, box: Mailbox, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"SPARTACUS_NETWORK": url, "SPARTACUS_FACTORY": d.factory, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "spartacus.cli", "relay", "run", *args, "--smtp-host", "127.0.0.1",
            "--smtp-port", str(box.port), "--interval", "0.3", "--settle", "0", "--retry-base", "0.5"]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=d.cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def delays(text: str) -> list[str]:
    return [line.rsplit("retrying in ", 1)[1] for line in text.splitlines() if "node unreachable" in line]


def release(d: Deployment) -> None:
    for i in (0, 1):  # t = 2
        proc = keeper_process(d.url, d.factory, d.cwd, f"keeper{i}.key", "--once")
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.mark.parametrize("form", ["service", "campaign"])
def test_relay_run_starts_while_the_node_is_down_and_waits_for_it(net: Deployment, tmp_path: Path, form: str) -> None:
    relay_key = f"relay-{form}.key"
    public = spartacus_json(net.url, net.factory, net.cwd, "relay", "init", "--key-file", relay_key)["public_key"]
    campaign = create_campaign(net, threshold=2, relay=public)
    organizer_key = f"organizer-{len(net.campaigns) - 1}.key"
    args = ["--key-file", relay_key] if form == "service" else [campaign, "--member-key-file", organizer_key]
    log = tmp_path / "relay.log"
    with Mailbox() as box, RpcProxy(net.url) as proxy:
        proxy.down = True
        proc = relay_process(net, proxy.url, box, log, *args, "--state", str(tmp_path / "relay.sqlite"))
        try:
            # It waits, retrying with the relay's own backoff, instead of failing at once.
            wait_for(lambda: len(delays(log.read_text())) >= 3 or proc.poll() is not None, 60, "three retries")
            assert proc.poll() is None, log.read_text()
            assert delays(log.read_text())[:3] == ["0.5 s", "1 s", "2 s"], log.read_text()
            pledge(net, campaign, "Member 0")  # meanwhile, the reveal, and the keepers' releases
            release(net)
            proxy.down = False
            wait_for(lambda: len(box.received) >= 2, 90, "the roster to each member")
            assert stop(proc) == 0, log.read_text()
        finally:
            stop(proc)
    got = Counter((r.rcpt_tos[0], str(r.message["X-Spartacus-Kind"])) for r in box.received)
    assert got == {("olga@example.org", "roster"): 1, ("member.0@example.org", "roster"): 1}, got
    assert "Traceback" not in log.read_text()


def test_relay_run_stops_quietly_while_waiting_and_once_fails_at_once(net: Deployment, tmp_path: Path) -> None:
    relay_key = "relay-once.key"
    spartacus_json(net.url, net.factory, net.cwd, "relay", "init", "--key-file", relay_key)
    with Mailbox() as box, RpcProxy(net.url) as proxy:
        proxy.down = True
        log = tmp_path / "relay.log"
        proc = relay_process(net, proxy.url, box, log, "--key-file", relay_key)
        try:
            wait_for(lambda: delays(log.read_text()) or proc.poll() is not None, 60, "the first retry")
            assert proc.poll() is None, log.read_text()
            assert stop(proc) == 0, log.read_text()  # SIGTERM while it waits: a clean stop
        finally:
            stop(proc)
        assert "Traceback" not in log.read_text()
        once = tmp_path / "once.log"
        proc = relay_process(net, proxy.url, box, once, "--key-file", relay_key, "--once")
        assert proc.wait(timeout=60) == 1
        text = once.read_text()
        assert "cannot reach the node" in text and "Traceback" not in text and text.count("\n") == 1, text
