"""The whole local stack in one command (``make run``).

Starts, in order: anvil (a real node), the factory, three keepers (t = 2), a mail
sink with a page, a relayer (funded, sponsoring deposits), one relay service with its own
key (it e-mails the members of every campaign that names it: the demo campaign, and any
campaign created in the dApp or with ``create --relay`` that chooses it), a demo campaign
one pledge short of its threshold (one of its pledges sent through the relayer, from a key
that holds no ether), and the dApp (told the relayer's URL, ``SPARTACUS_RELAYER``, and the
relay's key and name: ``SPARTACUS_RELAY_SERVICE``, ``SPARTACUS_RELAY_NAME``). Prints where
everything is and how to trigger the reveal; Ctrl-C (or SIGTERM) stops every process it started, by PID, and waits for
each. State lives in ``.run/`` (keys, SQLite, logs, caught mail), made anew each run:
the chain is new each run too.

Ports come from the environment: ``SPARTACUS_ANVIL_PORT`` (8545), ``SPARTACUS_SMTP_PORT``
(2525), ``SPARTACUS_MAIL_PORT`` (8025), ``SPARTACUS_DAPP_PORT`` (8501), ``SPARTACUS_RELAYER_PORT``
(8550).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .anvil import Anvil, detached_child

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
RELAY_NAME = "the local stack's relay (its mail lands in the mail sink)"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}: see its log in .run/logs/")
        if not _port_free(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f} s")


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}: see its log in .run/logs/")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


@dataclass
class Stack:
    run_dir: Path = ROOT / ".run"
    anvil_port: int = field(default_factory=lambda: _port("SPARTACUS_ANVIL_PORT", 8545))
    smtp_port: int = field(default_factory=lambda: _port("SPARTACUS_SMTP_PORT", 2525))
    mail_port: int = field(default_factory=lambda: _port("SPARTACUS_MAIL_PORT", 8025))
    dapp_port: int = field(default_factory=lambda: _port("SPARTACUS_DAPP_PORT", 8501))
    relayer_port: int = field(default_factory=lambda: _port("SPARTACUS_RELAYER_PORT", 8550))
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    anvil: Anvil | None = None

    @property
    def rpc(self) -> str:
        return f"http://127.0.0.1:{self.anvil_port}"

    def env(self, **extra: str) -> dict[str, str]:
        return os.environ | {"SPARTACUS_NETWORK": self.rpc, "PYTHONUNBUFFERED": "1"} | extra

    def spawn(self, name: str, argv: list[str], cwd: Path = ROOT, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.run_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        # Each child in its own process group: only this supervisor stops them (in order, by SIGTERM),
        # whatever signal reaches the terminal's or the caller's group.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=detached_child,  # spawned from the main thread only
        )
        self.processes.append((name, proc))
        self._write_pids()
        return proc

    def _write_pids(self) -> None:
        pids = {name: proc.pid for name, proc in self.processes}
        if self.anvil and self.anvil.process:
            pids["anvil"] = self.anvil.process.pid
        (self.run_dir / "pids.json").write_text(json.dumps(pids, indent=2))

    def cli(self, *args: str, **env: str) -> Any:
        proc = subprocess.run(
            [PYTHON, "-m", "spartacus.cli", *args, "--json"],
            cwd=self.run_dir,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"spartacus {args[0]} failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    # ─── Start ─────────────────────────────────────────────────────────────────────

    def start(self) -> dict[str, Any]:
        for port in (self.anvil_port, self.smtp_port, self.mail_port, self.dapp_port, self.relayer_port):
            if not _port_free(port):
                raise RuntimeError(
                    f"port {port} is taken (another `make run`?): stop it, or set SPARTACUS_*_PORT to free ports"
                )
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for sub in ("logs", "keepers", "members", "mail", "relay"):
            (self.run_dir / sub).mkdir(parents=True)
        os.chmod(self.run_dir, 0o700)

        say("starting anvil")
        self.anvil = Anvil(port=self.anvil_port, log=self.run_dir / "logs" / "anvil.log", detached=True).start()
        self._write_pids()

        say("deploying the factory")
        factory = self.cli("deploy", "--account", "TEST::0")["factory"]

        say("starting three keepers (t = 2)")
        from web3 import Web3
        from web3.types import Wei

        w3 = Web3(Web3.HTTPProvider(self.rpc))
        keepers = []
        for i in range(3):
            out = self.cli("keeper", "init", "--key-file", f"keepers/keeper{i}.key")
            keepers.append(out)
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": out["address"], "value": Wei(10**19)})
            self.spawn(
                f"keeper{i}",
                [PYTHON, "-m", "spartacus.cli", "-v", "keeper", "run", "--key-file",
                 str(self.run_dir / "keepers" / f"keeper{i}.key"), "--interval", "1"],
                SPARTACUS_FACTORY=factory,
            )  # fmt: skip

        say("starting the mail sink")
        sink = self.spawn(
            "mailsink",
            [PYTHON, "-m", "spartacus.mailsink", "--smtp-port", str(self.smtp_port),
             "--http-port", str(self.mail_port), "--dir", str(self.run_dir / "mail")],
        )  # fmt: skip
        _wait_port(self.smtp_port, sink, "the mail sink")

        say("starting the relayer (TEST::9 pays; it sponsors deposits up to 0.01 ether)")
        relayer_url = f"http://127.0.0.1:{self.relayer_port}"
        relayer = self.spawn(
            "relayer",
            [PYTHON, "-m", "spartacus.cli", "-v", "relayer", "run", "--account", "TEST::9",
             "--port", str(self.relayer_port), "--state", str(self.run_dir / "relayer.sqlite"),
             "--sponsor-max-wei", str(10**16), "--interval", "1"],
            SPARTACUS_FACTORY=factory,
        )  # fmt: skip
        _wait_http(f"{relayer_url}/health", relayer, "the relayer")

        say("starting the relay service (it e-mails every campaign that names its key)")
        relay_key = self.cli("relay", "init", "--key-file", "relay/relay.key")["public_key"]
        dapp_url = f"http://127.0.0.1:{self.dapp_port}"
        relay_file = str(self.run_dir / "relay" / "relay.key")
        self.spawn(
            "relay",
            [PYTHON, "-m", "spartacus.cli", "-v", "relay", "run", "--key-file", relay_file,
             "--smtp-host", "127.0.0.1", "--smtp-port", str(self.smtp_port), "--interval", "1", "--settle", "5"],
            SPARTACUS_FACTORY=factory,
            SPARTACUS_DAPP_URL=dapp_url + "/",
        )  # fmt: skip

        say("seeding a demo campaign one pledge short of its threshold")
        (self.run_dir / "instructions.txt").write_text(
            "We are three. Monday 9:00, we hand the letter to the board together.\n"
            "Meet at the cafe opposite the main entrance at 8:45.\n"
        )
        keeper_args = [arg for k in keepers for arg in ("--keeper", k["public_key"])]
        campaign = self.cli(
            "create", "--factory", factory,
            "--title", "Fair night-shift rota",
            "--purpose", "Ask the board together for a fair night-shift rota",
            "--description", "Nobody asks alone: we go when three of us are in.",
            "--plan", "When we are three, we meet and hand the letter to the board together.",
            "--threshold", "3", "--deadline", "+7d", "--keeper-threshold", "2", *keeper_args,
            "--deposit", str(10**15), "--relay", relay_key,
            "--name", "Olga", "--contact", "email=olga@example.org",
            "--instructions-file", "instructions.txt",
            "--member-key-file", "members/organizer.key", "--account", "TEST::1",
        )["campaign"]  # fmt: skip
        self.cli(  # through the relayer: Ana's member key holds no ether and signs, the relayer sends
            "pledge", campaign, "--name", "Ana", "--contact", "email=ana@example.org",
            "--member-key-file", "members/ana.key", "--relayer", relayer_url,
        )  # fmt: skip

        say("starting the dApp")
        dapp = self.spawn(
            "dapp",
            [PYTHON, "-m", "streamlit", "run", str(ROOT / "dapp" / "app.py"), "--server.headless=true",
             "--server.address=127.0.0.1", f"--server.port={self.dapp_port}",
             "--browser.gatherUsageStats=false"],
            cwd=ROOT / "dapp",  # Streamlit reads .streamlit/config.toml from its working directory
            SPARTACUS_FACTORY=factory,
            SPARTACUS_KEEPERS=",".join(k["public_key"] for k in keepers),
            SPARTACUS_RELAYER=relayer_url,
            SPARTACUS_RELAY_SERVICE=relay_key,
            SPARTACUS_RELAY_NAME=RELAY_NAME,
        )  # fmt: skip
        _wait_http(f"{dapp_url}/_stcore/health", dapp, "the dApp")

        info = {
            "rpc": self.rpc,
            "chain_id": 31337,
            "factory": factory,
            "campaign": campaign,
            "dapp": f"{dapp_url}/?campaign={campaign}",
            "mail": f"http://127.0.0.1:{self.mail_port}/",
            "relayer": relayer_url,
            "keepers": [k["public_key"] for k in keepers],
            "relay": relay_key,
            "relay_state": str(self.run_dir / "relay" / "relay.key.relay.sqlite"),
            "run_dir": str(self.run_dir),
        }
        (self.run_dir / "stack.json").write_text(json.dumps(info, indent=2))
        return info

    # ─── Stop ──────────────────────────────────────────────────────────────────────

    def check(self) -> str | None:
        """The name of a component that died, if any."""
        for name, proc in self.processes:
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        for _name, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(self.processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        if self.anvil:
            self.anvil.stop()
        (self.run_dir / "pids.json").unlink(missing_ok=True)


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


BANNER = """
Spartacus is running.

  dApp (demo campaign)  {dapp}
  caught mail           {mail}
  chain (anvil)         {rpc}   chain id {chain_id}
  factory               {factory}
  relayer               {relayer}   (SPARTACUS_RELAYER: pledge with no wallet)
  demo campaign         {campaign}   2 of 3 pledges: one more reveals it
  relay service         {relay}   (create --relay with this key: its members get e-mail)

Accounts (local test accounts, funded): TEST::0 deployer, TEST::1 Olga (organizer),
TEST::9 the relayer, TEST::2 .. TEST::8 free to pledge. Ana pledged through the relayer,
from a member key that holds no ether.

The console command, from another terminal in this directory:

  export SPARTACUS_NETWORK={rpc} SPARTACUS_FACTORY={factory}
  .venv/bin/spartacus campaigns

See the reveal within a minute: pledge the third one, from the dApp or here:

  .venv/bin/spartacus pledge {campaign} \\
      --name "Your name" --contact email=you@example.org \\
      --member-key-file you.key --account TEST::3

or with no wallet at all (your member key signs, the relayer sends and pays):

  .venv/bin/spartacus pledge {campaign} \\
      --name "Your name" --contact email=you@example.org \\
      --member-key-file you.key --relayer {relayer}

then watch the keepers release, the relay service write to every member ({mail}),
and read the roster: .venv/bin/spartacus roster {campaign} --member-key-file you.key

Logs and keys: {run_dir}. Ctrl-C stops everything.
"""


def main() -> int:
    stack = Stack()
    stopping = {"signal": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stopping["signal"] = True
        raise KeyboardInterrupt

    # Ctrl-C, SIGTERM and a hang-up stop the stack cleanly, also when it was started in the
    # background (`setsid make run &`), where SIGINT comes in ignored and Python would keep it so.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        info = stack.start()
        print(BANNER.format(**info), flush=True)
        say("ready")
        while True:
            dead = stack.check()
            if dead:
                print(f"spartacus: {dead} stopped unexpectedly: see .run/logs/{dead}.log", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, OSError) as exc:
        print(f"spartacus: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        say("stopping")
        stack.stop()
        say("stopped: nothing left running")


if __name__ == "__main__":
    sys.exit(main())
