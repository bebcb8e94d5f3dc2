"""The relay service of `make run`, as a user meets it: a campaign created through the command
with the stack's relay key reaches its threshold and every member's mailbox in the sink gets
exactly one e-mail with the roster and the instructions; a late joiner then gets what the
policy gives (`known`: the instructions only) and the members one update; a campaign that
names no relay sends nothing. `make run` runs in its own process group, as a terminal's
Ctrl-C reaches it, and is stopped that way.

(The dApp's owner adds the same journey through the dApp's Create page.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spartacus.anvil import free_port

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def mail(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/messages.json", timeout=5) as response:
        return list(json.load(response))


def wait(what: str, ok: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    ports = {name: free_port() for name in ("ANVIL", "SMTP", "MAIL", "DAPP")}
    env = os.environ | {f"SPARTACUS_{k}_PORT": str(v) for k, v in ports.items()}
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "==> ready" in line or proc.poll() is not None:
                break
        assert any("==> ready" in line for line in output), "".join(output)
        info = json.loads((ROOT / ".run" / "stack.json").read_text())
        yield (
            info,
            env | {"SPARTACUS_NETWORK": info["rpc"], "SPARTACUS_FACTORY": info["factory"], "MAIL": str(ports["MAIL"])},
        )
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


def test_every_campaign_that_names_the_stacks_relay_emails_its_members(
    stack: tuple[dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    info, env = stack
    port = int(env["MAIL"])
    assert re.fullmatch(r"0x0[23][0-9a-f]{64}", info["relay"])

    def cli(*args: str, ok: bool = True) -> Any:
        proc = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "spartacus"), *args, "--json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if not ok and proc.returncode != 0:
            return None
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def create(title: str, organizer: str, *extra: str, account: int) -> str:
        return str(
            cli("create", "--title", title, "--purpose", f"{title} for all", "--threshold", "2", "--deadline", "+1d",
                "--keeper-threshold", "2", *[a for k in info["keepers"] for a in ("--keeper", k)],
                "--name", organizer, "--contact", f"email={organizer.lower()}@example.org",
                "--instructions-file", "plan.txt", "--member-key-file", f"{organizer.lower()}.key",
                "--account", f"TEST::{account}", *extra)["campaign"]
        )  # fmt: skip

    def pledge(campaign: str, name: str, account: int) -> dict[str, Any]:
        return dict(
            cli("pledge", campaign, "--name", name, "--contact", f"email={name.lower()}@example.org",
                "--member-key-file", f"{name.lower()}.key", "--account", f"TEST::{account}")
        )  # fmt: skip

    def at_least(count: int, subject: str) -> list[dict[str, Any]] | None:
        found = [m for m in mail(port) if m["subject"].startswith(subject)]
        return found if len(found) >= count else None

    def inbox() -> Counter[tuple[str, str]]:
        return Counter((m["to"], m["subject"]) for m in mail(port))

    (tmp_path / "plan.txt").write_text("Bring the signed cards on Friday, 7:00, at the depot gate.\n")
    cards = create("Cards", "Rita", "--relay", info["relay"], account=4)
    assert pledge(cards, "Sam", 5)["revealed"] is True
    rosters = wait("the rosters of Cards", lambda: at_least(2, "[Spartacus] Cards: revealed"))
    assert sorted(m["to"] for m in rosters) == ["rita@example.org", "sam@example.org"]
    for m in rosters:
        assert "Rita" in m["text"] and "Sam" in m["text"] and "depot gate" in m["text"], m["text"]

    # A late joiner (the default `known` policy): the instructions only; the members one update.
    assert pledge(cards, "Lu", 6)["revealed"] is False
    welcome = wait("the late joiner's e-mail", lambda: [m for m in mail(port) if m["to"] == "lu@example.org"])
    [lu] = welcome
    assert "here are the instructions" in lu["subject"] and "depot gate" in lu["text"]
    assert not re.search(r"Rita|Sam|rita@|sam@", lu["text"]), lu["text"]
    wait("the members' updates", lambda: at_least(2, "[Spartacus] Cards: 1 new member"))

    # A campaign that names no relay: revealed and released, and nobody is e-mailed.
    quiet = create("Quiet", "Quinn", account=7)
    assert pledge(quiet, "Vic", 8)["revealed"] is True
    wait(
        "Quiet released",
        lambda: (
            len((cli("roster", quiet, "--member-key-file", "vic.key", ok=False) or {"members": []})["members"]) == 2
        ),
    )
    # Then one more campaign of the relay: once its e-mails are in, the service has read past Quiet.
    after = create("After", "Ada", "--relay", info["relay"], account=9)
    pledge(after, "Bob", 3)
    wait("the rosters of After", lambda: at_least(2, "[Spartacus] After: revealed"))

    got = inbox()
    assert got == Counter(
        {
            ("rita@example.org", "[Spartacus] Cards: revealed, 2 members"): 1,
            ("sam@example.org", "[Spartacus] Cards: revealed, 2 members"): 1,
            ("lu@example.org", "[Spartacus] Cards: you joined, here are the instructions"): 1,
            ("rita@example.org", "[Spartacus] Cards: 1 new member"): 1,
            ("sam@example.org", "[Spartacus] Cards: 1 new member"): 1,
            ("ada@example.org", "[Spartacus] After: revealed, 2 members"): 1,
            ("bob@example.org", "[Spartacus] After: revealed, 2 members"): 1,
        }
    ), got
    status = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "spartacus"), "relay", "status", "--state", info["relay_state"], "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    served = {c["address"] for c in json.loads(status.stdout)["campaigns"]}
    assert served == {info["campaign"], cards, after} and quiet not in served
