"""End to end on a real anvil, through the real `spartacus` command: a campaign created and filled
partly by keys that hold no ether, through a relayer (`spartacus relayer run`, a subprocess).

The reveal, the keepers' releases (`keeper run --once`) and every member's roster include the
relayed pledges, and no relayed pledger's address holds or receives a wei before the reveal.
Then the command line against a relayer that is down, answers garbage, refuses, or loses its
answer after sending: one line that says what to do, and nothing lost or sent twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from spartacus_cli import Cli, fund, keeper_run, pledge

from spartacus.anvil import dev_key, free_port
from spartacus.chain import CampaignClient, KeySigner
from spartacus.forwarding import forwarder_nonce
from spartacus.keys import KIND_MEMBER, load_key_file

pytestmark = pytest.mark.anvil

DEPOSIT = 10**15
RELAYER_ACCOUNT = 18  # a dev key no other test uses (funded here)


@pytest.fixture
def relayer(stack: Any, tmp_path: Path) -> Iterator[str]:
    """`spartacus relayer run` for the stack's factory, sponsoring deposits up to DEPOSIT."""
    cli, _keepers, client = stack
    fund(client, KeySigner(dev_key(RELAYER_ACCOUNT)).address, 10**20)
    port = free_port()
    log = (tmp_path / "relayer.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spartacus.cli", "-v", "relayer", "run", "--account", f"TEST::{RELAYER_ACCOUNT}",
         "--port", str(port), "--state", str(tmp_path / "relayer.sqlite"), "--sponsor-max-wei", str(DEPOSIT),
         "--interval", "0.5"],
        env=os.environ | {"SPARTACUS_NETWORK": cli.url, "SPARTACUS_FACTORY": cli.factory},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "relayer.log").read_text()
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.monotonic() < end, "the relayer did not answer /health"
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def create_args(keepers: list[dict[str, str]], key_file: str, threshold: int, deposit: int) -> list[str]:
    args = [
        "create", "--title", "Night shift", "--purpose", "A fair rota", "--threshold", str(threshold),
        "--deadline", "+7d", "--keeper-threshold", "2", "--deposit", str(deposit),
        "--name", "Olga Organizer", "--contact", "email=olga@example.org",
        "--instructions-file", "instructions.txt", "--member-key-file", key_file,
    ]  # fmt: skip
    for k in keepers:
        args += ["--keeper", k["public_key"]]
    return args


def relayed_pledge(cli: Cli, campaign: str, name: str, key_file: str, url: str, ok: bool = True) -> Any:
    args = ["pledge", campaign, "--name", name, "--contact", f"email={name.split()[0].lower()}@example.org",
            "--member-key-file", key_file, "--relayer", url]  # fmt: skip
    return cli.json(*args) if ok else cli(*args, "--json", ok=False)


def member_address(cli: Cli, key_file: str) -> str:
    return str(load_key_file(cli.cwd / key_file, KIND_MEMBER).address)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0 and proc.stdout == "", proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spartacus: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_campaign_filled_partly_through_a_relayer(stack, relayer):
    cli, keepers, client = stack
    start = client.head()
    created = cli.json(*create_args(keepers, "organizer.key", 4, DEPOSIT), "--relayer", relayer)
    campaign = created["campaign"]
    c = CampaignClient(client, campaign)
    assert c.status().creator == member_address(cli, "organizer.key")  # the organizer's member key
    direct = pledge(cli, campaign, 2, "Dana Direct")
    assert direct["count"] == 2
    first = relayed_pledge(cli, campaign, "Rita Relayed", "rita.key", relayer)
    assert (first["count"], first["relayed"], first["revealed"]) == (3, True, False)
    last = relayed_pledge(cli, campaign, "Remy Relayed", "remy.key", relayer)
    assert (last["count"], last["revealed"]) == (4, True)
    status = c.status()
    assert status.state == "revealed"

    relayed = {f: member_address(cli, f) for f in ("organizer.key", "rita.key", "remy.key")}
    assert {first["pledger"], last["pledger"]} == {relayed["rita.key"], relayed["remy.key"]}
    pledgers = {p.pledger for p in c.pledges() if p.live}
    assert set(relayed.values()) <= pledgers and len(pledgers) == 4
    for address in relayed.values():  # P8: no address of a relayed pledger held a wei, or sent anything
        assert all(client.w3.eth.get_balance(address, b) == 0 for b in range(start, status.reveal_block + 1))
        assert client.w3.eth.get_transaction_count(address) == 0
        assert c.pledge_of(address) == (c.pledge_of(address)[0], "live", True)  # the sponsored deposit is held

    for i in range(3):
        keeper_run(cli, i)
    names = {"Olga Organizer", "Dana Direct", "Rita Relayed", "Remy Relayed"}
    for key_file in (*relayed, "member2.key"):
        roster = cli.json("roster", campaign, "--member-key-file", key_file)
        assert {m["name"] for m in roster["members"]} == names and roster["skipped"] == []
        assert "north gate" in roster["instructions"]


class _Fake(BaseHTTPRequestHandler):
    """A relayer that is not one: answers garbage, or forwards to a real one and loses the answer."""

    forward_to: str | None = None
    sent: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.forward_to:
            req = urllib.request.Request(
                self.forward_to + "/relay", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                self.sent.append(json.loads(r.read())["tx"])
            self._answer(502, b"<html>Bad gateway</html>")  # sent, and the answer is lost
        else:
            self._answer(200, b"<html>Welcome to our page</html>")


def fake_relayer(forward_to: str | None = None) -> tuple[str, ThreadingHTTPServer, type[_Fake]]:
    handler = type("Handler", (_Fake,), {"forward_to": forward_to, "sent": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server, handler


def test_a_relayer_down_refusing_or_lying_gets_one_line_and_loses_nothing(stack, relayer):
    cli, keepers, client = stack
    campaign = cli.json(*create_args(keepers, "organizer.key", 10, DEPOSIT), "--account", "TEST::1")["campaign"]
    dear = cli.json(*create_args(keepers, "organizer2.key", 10, 2 * DEPOSIT), "--account", "TEST::1")["campaign"]
    c = CampaignClient(client, campaign)
    forwarder = c.client.call("Campaign", campaign, "trustedForwarder")[0]

    line = one_line_error(relayed_pledge(cli, campaign, "Ana", "ana.key", f"http://127.0.0.1:{free_port()}", False))
    assert "cannot reach the relayer" in line and "run the same command again" in line
    assert (cli.cwd / "ana.key.request.json").exists()  # the signed request, kept
    done = relayed_pledge(cli, campaign, "Ana", "ana.key", relayer)  # and finished
    ana = member_address(cli, "ana.key")
    assert forwarder_nonce(client, forwarder, ana) == 1 and c.pledge_of(ana)[1] == "live"
    assert not (cli.cwd / "ana.key.request.json").exists()

    url, server, _ = fake_relayer()
    try:
        line = one_line_error(relayed_pledge(cli, campaign, "Bo", "bo.key", url, False))
        assert "not the Spartacus relayer API" in line and "check the --relayer URL" in line
    finally:
        server.shutdown()

    line = one_line_error(relayed_pledge(cli, dear, "Cy", "cy.key", relayer, False))
    assert "refused the request (value-too-high)" in line and "at most 1000000000000000 wei" in line

    # A relayer that sends, then loses its answer: the next run finds what ran; nothing twice.
    url, server, handler = fake_relayer(forward_to=relayer)
    relayer_address = KeySigner(dev_key(RELAYER_ACCOUNT)).address
    try:
        one_line_error(relayed_pledge(cli, campaign, "Di", "di.key", url, False))
    finally:
        server.shutdown()
    (lost,) = handler.sent
    sent_before = client.w3.eth.get_transaction_count(relayer_address)
    again = relayed_pledge(cli, campaign, "Di", "di.key", relayer)
    assert again["tx"] == lost and again["count"] == done["count"] + 1
    assert client.w3.eth.get_transaction_count(relayer_address) == sent_before  # nothing sent again
    assert forwarder_nonce(client, forwarder, member_address(cli, "di.key")) == 1

    # Withdraw and refund through the relayer: the sponsored deposit goes to the member key.
    out = cli.json("withdraw", campaign, "--member-key-file", "ana.key", "--relayer", relayer)
    assert out["caller"] == ana
    cli.json("refund", campaign, "--member-key-file", "ana.key", "--relayer", relayer)
    assert client.balance(ana) == DEPOSIT
    line = one_line_error(cli("withdraw", campaign, "--member-key-file", "ana.key", "--relayer", relayer, ok=False))
    assert "no live pledge" in line  # refused before anything is signed
    line = one_line_error(cli("withdraw", campaign, "--relayer", relayer, ok=False))
    assert "--member-key-file" in line
    line = one_line_error(
        cli("pledge", campaign, "--name", "E", "--member-key-file", "e.key", "--account", "TEST::3", "--relayer",
            relayer, ok=False)
    )  # fmt: skip
    assert "not both" in line
