"""`make run`, the README's first command, as a user runs it: it comes up healthy, a whole
campaign goes through the console command to the emails in the mail sink, and Ctrl-C
leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from spartacus_cli import mail, stack_banner

from spartacus.anvil import free_port

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it is gone for our purposes once it is reaped or defunct.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def wait_mail(port: int, count: int, timeout: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = mail(port)
        if len(got) >= count:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{len(mail(port))} of {count} emails arrived")


def test_make_run_brings_up_everything_and_leaves_nothing(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("ANVIL", "SMTP", "MAIL", "DAPP", "RELAYER")}
    env = os.environ | {f"SPARTACUS_{k}_PORT": str(v) for k, v in ports.items()}
    run_dir = ROOT / ".run"
    stack = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
        # and SIGINT ignored, as `setsid make run &` starts it: the stack must still stop on it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        output = stack_banner(stack)
        info = json.loads((run_dir / "stack.json").read_text())
        pids = json.loads((run_dir / "pids.json").read_text())
        assert set(pids) == {"anvil", "keeper0", "keeper1", "keeper2", "mailsink", "relayer", "relay", "dapp"}
        assert all(alive(pid) for pid in pids.values())
        banner = "".join(output)
        assert info["dapp"] in banner and info["mail"] in banner and "TEST::3" in banner
        # The banner says what to export for the console command in another terminal.
        exports = next(line for line in output if "export SPARTACUS_NETWORK=" in line).split()[1:]
        exported = dict(item.split("=", 1) for item in exports)
        assert exported == {"SPARTACUS_NETWORK": info["rpc"], "SPARTACUS_FACTORY": info["factory"]}
        listed = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "spartacus"), "campaigns", "--json"],
            cwd=tmp_path, env={k: v for k, v in env.items() if not k.startswith("SPARTACUS_N")} | exported,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert listed.returncode == 0 and info["campaign"] in listed.stdout, listed.stderr

        with urllib.request.urlopen(info["dapp"].split("?")[0] + "_stcore/health", timeout=5) as r:
            assert r.status == 200
        cli_env = env | {"SPARTACUS_NETWORK": info["rpc"], "SPARTACUS_FACTORY": info["factory"]}

        def cli(*args: str) -> Any:
            proc = subprocess.run(
                [str(ROOT / ".venv" / "bin" / "spartacus"), *args, "--json"],
                cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout)

        # The demo campaign is one pledge short: the third pledge reveals it, the stack's
        # keepers release and its relay writes to the three members.
        demo = info["campaign"]
        assert cli("status", demo)["count"] == 2
        out = cli("pledge", demo, "--name", "Tess", "--contact", "email=tess@example.org",
                  "--member-key-file", "tess.key", "--account", "TEST::3")  # fmt: skip
        assert out["revealed"] is True
        got = wait_mail(ports["MAIL"], 3)
        assert sorted(m["to"] for m in got) == ["ana@example.org", "olga@example.org", "tess@example.org"]
        assert all("Tess" in m["text"] and "Ana" in m["text"] and "board" in m["text"] for m in got)
        roster = cli("roster", demo, "--member-key-file", "tess.key")
        assert {m["name"] for m in roster["members"]} == {"Olga", "Ana", "Tess"}

        # A whole new campaign through the console command, with the stack's keepers and
        # a relay run by its organizer against the stack's mail sink.
        (tmp_path / "plan.txt").write_text("Bring the signed cards on Friday.\n")
        keepers = [a for k in info["keepers"] for a in ("--keeper", k)]
        campaign = cli("create", "--title", "Cards", "--purpose", "Sign the cards", "--threshold", "2",
                       "--deadline", "+1d", "--keeper-threshold", "2", *keepers, "--name", "Rita",
                       "--contact", "email=rita@example.org", "--instructions-file", "plan.txt",
                       "--member-key-file", "rita.key", "--account", "TEST::4")["campaign"]  # fmt: skip
        cli("pledge", campaign, "--name", "Sam", "--contact", "email=sam@example.org",
            "--member-key-file", "sam.key", "--account", "TEST::5")  # fmt: skip
        deadline = time.monotonic() + 60
        while len(cli("roster", campaign, "--member-key-file", "sam.key")["members"]) < 2:
            assert time.monotonic() < deadline, "the stack's keepers did not release"
            time.sleep(0.5)
        cli("relay", "run", campaign, "--member-key-file", "rita.key", "--smtp-host", "127.0.0.1",
            "--smtp-port", str(ports["SMTP"]), "--settle", "0", "--once")  # fmt: skip
        got = wait_mail(ports["MAIL"], 5)
        assert sorted(m["to"] for m in got[3:]) == ["rita@example.org", "sam@example.org"]
        assert all("Friday" in m["text"] for m in got[3:])
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # Ctrl-C
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            raise
    rest = "".join(output) + (stack.stdout.read() if stack.stdout else "")
    assert "stopped: nothing left running" in rest, rest
    assert "unexpectedly" not in rest and stack.returncode == 0, rest
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert not (run_dir / "pids.json").exists()
