"""The command line on real networks: a command with an RPC URL or the local anvil imports no
Ape (seconds per command), and `keeper run` starts while its node is down and waits for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rpcproxy import Deployment, RpcProxy, anvil_deployment, create_campaign, keeper_process, pledge, wait_for

from spartacus.chain import CampaignClient, ChainClient

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with anvil_deployment(tmp_path_factory.mktemp("rpc-cli")) as d:
        create_campaign(d, threshold=3)
        yield d


def imported_modules(*args: str, cwd: Path, env: dict[str, str]) -> tuple[set[str], str]:
    """The modules a `spartacus` run imports (``python -X importtime``), and its stdout."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "spartacus.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    modules = {
        line.split("|")[-1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return modules, out.stdout


def apeish(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ("ape", "ape_foundry", "ape_ethereum", "ape_test", "ape_node")}


def test_status_with_an_rpc_url_or_the_local_network_imports_no_ape(net: Deployment, tmp_path: Path) -> None:
    campaign = net.campaigns[0]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPARTACUS_", "APE_FOUNDRY"))}
    # 1. --network URL
    modules, by_url = imported_modules("status", campaign, "--network", net.url, "--json", cwd=tmp_path, env=base)
    assert "spartacus.chain" in modules and apeish(modules) == set()
    # 2. the default network (ethereum:local:foundry), its host from APE_FOUNDRY_HOST as Ape reads it
    modules, by_default = imported_modules(
        "status", campaign, "--json", cwd=tmp_path, env=base | {"APE_FOUNDRY_HOST": net.url}
    )
    assert apeish(modules) == set() and by_default == by_url
    # 3. or from the working directory's ape-config.yaml, as Ape reads it
    (tmp_path / "ape-config.yaml").write_text(f"foundry:\n  host: {net.url}\n  manage_process: false\n")
    modules, by_config = imported_modules(
        "status", campaign, "--network", "ethereum:local:foundry", "--json", cwd=tmp_path, env=base
    )
    assert apeish(modules) == set() and by_config == by_url


def test_the_local_network_that_is_down_fails_in_one_line_without_ape(net: Deployment, tmp_path: Path) -> None:
    from spartacus.anvil import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARTACUS_")}
    env["APE_FOUNDRY_HOST"] = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "spartacus.cli", "status", net.campaigns[0]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "cannot reach the node" in out.stderr and "ethereum:local:foundry" in out.stderr
    assert time.monotonic() - started < 10


def test_keeper_run_starts_while_the_node_is_down_and_waits_for_it(net: Deployment, tmp_path: Path) -> None:
    campaign = create_campaign(net, threshold=2)
    with RpcProxy(net.url) as proxy:
        proxy.down = True
        log = tmp_path / "keeper.log"
        proc = keeper_process(
            proxy.url, net.factory, net.cwd, "keeper0.key", "--interval", "0.5", "--state", str(tmp_path / "k.sqlite"),
            log=log,
        )  # fmt: skip
        try:
            # It waits, retrying with a growing delay, instead of failing at once.
            wait_for(lambda: log.read_text().count("node unreachable") >= 3, 60, "three retries")
            assert proc.poll() is None, log.read_text()
            delays = [
                line.rsplit("retrying in ", 1)[1] for line in log.read_text().splitlines() if "retrying in" in line
            ]
            assert delays[:3] == ["0.5 s", "1 s", "2 s"], delays
            pledge(net, campaign, "Member 0")  # meanwhile, the reveal
            proxy.down = False
            wait_for(lambda: "watching campaign" in log.read_text(), 60, "the keeper to connect")
            wait_for(lambda: CampaignClient(net.client, campaign).releases(), 60, "a release")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_keeper_run_stops_quietly_while_waiting_and_once_fails_at_once(net: Deployment, tmp_path: Path) -> None:
    with RpcProxy(net.url) as proxy:
        proxy.down = True
        log = tmp_path / "keeper.log"
        proc = keeper_process(proxy.url, net.factory, net.cwd, "keeper1.key", "--interval", "1", log=log)
        try:
            wait_for(lambda: "node unreachable" in log.read_text(), 60, "the first retry")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        once = keeper_process(proxy.url, net.factory, net.cwd, "keeper1.key", "--once")
        out, _ = once.communicate(timeout=60)
        assert once.returncode == 1 and "cannot reach the node" in out and "Traceback" not in out


def test_the_smallest_release_the_command_accepts_is_the_formats() -> None:
    from spartacus import cli, release

    assert cli.MIN_RELEASE_BYTES == release.MIN_RELEASE_BYTES


def test_a_connection_asks_the_node_its_chain_id_once_whatever_the_threads(net: Deployment) -> None:
    """web3 asks ``eth_chainId`` before many calls and caches it per thread: a server that runs
    every request in a new thread (the dApp under Streamlit) asked again each time. A connection
    asks once."""
    import threading

    from spartacus._ape import connect

    with RpcProxy(net.url) as proxy, connect(proxy.url) as w3:
        client = ChainClient(w3)
        campaign = CampaignClient(client, net.campaigns[0])

        def reads() -> None:
            for _ in range(3):
                assert campaign.status().threshold == 3

        threads = [threading.Thread(target=reads) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reads()
        assert proxy.stats["eth_call"] >= 15
        assert proxy.stats["eth_chainId"] == 1
        assert client.chain_id == int(w3.eth.chain_id) == 31337
