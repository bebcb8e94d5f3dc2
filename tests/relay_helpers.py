"""Real parts the relay's tests share: the `spartacus` command as a subprocess, a scripted aiosmtpd
server that keeps what it accepts (with gates that hold a chosen command until the test opens
them), and long-running commands whose output lines a test waits for."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from spartacus.anvil import free_port

# ─── The real `spartacus` command ────────────────────────────────────────────────────


@dataclass
class Cli:
    """Runs the real `spartacus` command against one anvil and factory."""

    url: str
    factory: str
    cwd: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SPARTACUS_")}
        return (
            base
            | {"SPARTACUS_NETWORK": self.url, "SPARTACUS_FACTORY": self.factory, "PYTHONUNBUFFERED": "1"}
            | (extra or {})
        )

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "spartacus.cli", *args]

    def __call__(
        self, *args: str, ok: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args), cwd=self.cwd, env=self.env(env), capture_output=True, text=True, timeout=120
        )
        if ok:
            assert proc.returncode == 0, f"{args[:2]} failed: {proc.stderr}"
        return proc

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self(*args, "--json", env=env).stdout)

    def parallel(self, *commands: list[str]) -> None:
        """Independent commands at once (different accounts: no nonce clash)."""
        procs = [
            subprocess.Popen(
                self.argv(*c), cwd=self.cwd, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for c in commands
        ]
        for c, p in zip(commands, procs, strict=True):
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, f"{c[:2]} failed: {err.decode()}"


# ─── A real SMTP server ──────────────────────────────────────────────────────────────


@dataclass
class Gate:
    """Holds one SMTP command until the test opens it."""

    reached: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        return msg


class Mailbox:
    """aiosmtpd on loopback, keeping what it accepts, with scripted answers and gates.

    ``refuse[address]``: a permanent answer for that recipient; ``rcpt_answers[address]``:
    answers given first, once each; ``mail_answers``: answers to the next MAIL commands;
    ``gates[("MAIL" | "DATA", n)]``: hold the n-th such command until the gate opens.
    """

    def __init__(self, port: int | None = None, login: tuple[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.login = login
        self.received: list[Received] = []
        self.rcpt_log: list[tuple[str, str]] = []
        self.refuse: dict[str, str] = {}
        self.rcpt_answers: dict[str, list[str]] = {}
        self.mail_answers: list[str] = []
        self.gates: dict[tuple[str, int], Gate] = {}
        self.answer_delay = 0.0  # seconds an MTA spends queueing a message before its 250
        self.counts: Counter[str] = Counter()
        self.cond = threading.Condition()
        self.controller: Controller | None = None

    def start(self) -> Mailbox:
        auth: dict[str, Any] = {}
        if self.login:
            auth = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **auth)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        for gate in self.gates.values():
            gate.opened.set()
        self.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    async def _hold(self, command: str) -> None:
        with self.cond:
            self.counts[command] += 1
            gate = self.gates.get((command, self.counts[command]))
        if gate is not None:
            gate.reached.set()
            await asyncio.get_running_loop().run_in_executor(None, gate.opened.wait, 60)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        await self._hold("MAIL")
        with self.cond:
            answer = self.mail_answers.pop(0) if self.mail_answers else None
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        with self.cond:
            queued = self.rcpt_answers.get(address)
            answer = self.refuse.get(address) or (queued.pop(0) if queued else None)
            self.rcpt_log.append((address, answer or "250 OK"))
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Like a real MTA: the message is queued first, then the 250 goes out (a gate holds it).
        with self.cond:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
            self.cond.notify_all()
        await self._hold("DATA")
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        return "250 2.0.0 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.received) >= count, timeout), (
                f"{len(self.received)} of {count} messages arrived"
            )
            return list(self.received)

    def by_recipient(self) -> Counter[str]:
        return Counter(addr for r in self.received for addr in r.rcpt_tos)


class Proc:
    """A long-running `spartacus` subprocess whose output lines the test can wait for."""

    def __init__(self, cli: Cli, *args: str, env: dict[str, str] | None = None) -> None:
        self.p = subprocess.Popen(
            cli.argv(*args), cwd=cli.cwd, env=cli.env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.eof = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60) -> list[str]:
        regex = re.compile(pattern)

        def found() -> list[str]:
            return [line for line in self.lines if regex.search(line)]

        with self.cond:
            ok = self.cond.wait_for(lambda: len(found()) >= count or self.eof, timeout)
            hits = found()
            assert ok and len(hits) >= count, f"no {count}x {pattern!r} in:\n" + "\n".join(self.lines)
            return hits

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        assert self.p.wait(timeout=30) == -signal.SIGKILL

    def terminate(self) -> int:
        self.p.send_signal(signal.SIGTERM)
        code = self.p.wait(timeout=30)
        self.reader.join(timeout=10)
        return code

    def output(self) -> str:
        with self.cond:
            return "\n".join(self.lines)
