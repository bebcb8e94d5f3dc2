"""The relay on real parts: a real anvil, campaigns made and revealed through the real
`spartacus` command (keepers run with `keeper run --once`), a real SMTP server (aiosmtpd)
on loopback, and the relay itself as a real subprocess (killed with SIGKILL where the
test says so).

Timing is never left to sleeps: the SMTP server holds a chosen transaction at a chosen
command (a gate the test opens), and the tests wait for the relay's own output lines.
"""

from __future__ import annotations

import asyncio
import html
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

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from spartacus_cli import deploy_with_keepers

from spartacus.anvil import free_port

pytestmark = [
    pytest.mark.anvil,
    # The test server takes AUTH in clear on loopback, on purpose: aiosmtpd warns about it.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

INSTRUCTIONS = 'Meet at the north gate, Monday 6:00.\nBring the cards & a <pen>; say "solidarity".\n'
HOSTILE = '<script>alert("pwn")</script> Bob & Co'
ORGANIZER = ("Olga Organizer", {"email": "olga@example.org", "phone": "+41001"})
# (test account, name, contact fields, message); account 8 pledges last: the reveal.
CREW = [
    (2, "Ana Alvarez", {"email": "ana@example.org", "signal": "+41002"}, None),
    (3, HOSTILE, {"email": "bob@example.org", "site": "<b>bold</b>"}, None),
    (4, "Cleo", {"email": "cleo@example.org"}, "Count me in, <i>finally</i>"),
    (5, "Dan NoMail", {"signal": "+41005"}, None),
    (6, "Eve", {"email": "eve@example.org"}, None),
    (7, "Finn", {"email": "finn@example.org"}, None),
    (8, "Gus", {"email": "gus@example.org"}, None),
]
EMAILS = {ORGANIZER[1]["email"]} | {c["email"] for _, _, c, _ in CREW if "email" in c}


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


@dataclass
class Stack:
    cli: Cli
    keepers: list[dict[str, str]]

    def create(self, threshold: int, key_file: str, *extra: str) -> str:
        name, contacts = ORGANIZER
        args = ["create", "--title", "Night shift <union>", "--purpose", "A fair rota", "--threshold", str(threshold),
                "--deadline", "+7d", "--keeper-threshold", "2", "--name", name, *extra,
                "--instructions-file", "instructions.txt", "--member-key-file", key_file,
                "--account", "TEST::1"]  # fmt: skip
        args += [a for k, v in contacts.items() for a in ("--contact", f"{k}={v}")]
        args += [a for k in self.keepers for a in ("--keeper", k["public_key"])]
        return str(self.cli.json(*args)["campaign"])

    def release(self) -> None:
        """Two of the three keepers (t = 2) publish what they can (at once: each has its own account)."""
        self.cli.parallel(*(["keeper", "run", "--key-file", f"keeper{i}.key", "--once"] for i in (0, 1)))


def pledge_args(
    campaign: str, account: int, name: str, contacts: dict[str, str], message: str | None, key: str
) -> list[str]:
    args = ["pledge", campaign, "--name", name, "--member-key-file", key, "--account", f"TEST::{account}"]
    args += [a for k, v in contacts.items() for a in ("--contact", f"{k}={v}")]
    return args + (["--message", message] if message else [])


@pytest.fixture(scope="module")
def stack(anvil_node: Any, anvil_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """A fresh factory and three funded keeper keys (t = 2), for this module."""
    cwd = tmp_path_factory.mktemp("relay")
    relay_cli, keepers = deploy_with_keepers(anvil_node.url, anvil_client, cwd)
    cli = Cli(relay_cli.url, relay_cli.factory, cwd)
    (cwd / "instructions.txt").write_text(INSTRUCTIONS)
    return Stack(cli, keepers)


@dataclass
class Crew:
    campaign: str
    chain_id: int


@pytest.fixture(scope="module")
def crew(stack: Stack, anvil_client: Any) -> Crew:
    """One revealed campaign of 8 members (one without email, one with a hostile name), released."""
    campaign = stack.create(threshold=1 + len(CREW), key_file="organizer.key")
    *first, last = CREW
    stack.cli.parallel(*(pledge_args(campaign, a, n, c, m, f"member{a}.key") for a, n, c, m in first))
    a, n, c, m = last
    assert stack.cli.json(*pledge_args(campaign, a, n, c, m, f"member{a}.key"))["revealed"] is True
    stack.release()
    return Crew(campaign, anvil_client.chain_id)


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


def relay_args(crew_campaign: str, box: Mailbox, state: str, *extra: str, key: str = "organizer.key") -> list[str]:
    return ["relay", "run", crew_campaign, "--member-key-file", key, "--smtp-host", "127.0.0.1",
            "--smtp-port", str(box.port), "--state", state, *extra]  # fmt: skip


def status(cli: Cli, campaign: str, state: str) -> dict[str, Any]:
    return dict(cli.json("relay", "status", campaign, "--state", state))


def parts(msg: EmailMessage) -> tuple[str, str]:
    plain, page = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and page is not None
    # Text parts travel with CRLF line breaks (their canonical form); compare with "\n".
    return tuple(str(p.get_content()).replace("\r\n", "\n") for p in (plain, page))  # type: ignore[attr-defined,return-value]


def assert_once_each(box: Mailbox, emails: set[str]) -> None:
    assert box.by_recipient() == Counter(dict.fromkeys(emails, 1))
    ids = [r.message["Message-ID"] for r in box.received]
    assert len(set(ids)) == len(ids)


# ─── Tests ───────────────────────────────────────────────────────────────────────────


def test_every_member_gets_the_roster_and_the_instructions(stack: Stack, crew: Crew) -> None:
    cli = stack.cli
    with Mailbox(login=("relay", "s3cret")) as box:
        args = relay_args(crew.campaign, box, "content.sqlite", "--smtp-user", "relay", "--from",
                          "olga@example.org", "--dapp-url", "https://dapp.example/", "--once")  # fmt: skip
        run = cli(*args, "--json", env={"SPARTACUS_SMTP_PASSWORD": "s3cret"})
        report = json.loads(run.stdout)
        assert len(report["sent"]) == len(EMAILS) == 7 and report["failed"] == [] and report["batches"] == [0]
        [skipped] = report["skipped"]
        assert skipped["name"] == "Dan NoMail" and "no email address" in skipped["reason"]
        assert re.search(r"^skipped #\d+ Dan NoMail: no email address", run.stderr, re.M), run.stderr
        received = box.wait_for(7)
        assert_once_each(box, EMAILS)

        link = f"https://dapp.example/?campaign={crew.campaign}"
        names = [ORGANIZER[0]] + [name for _, name, _, _ in CREW]
        values = list(ORGANIZER[1].values()) + [v for _, _, c, _ in CREW for v in c.values()]
        for r in received:
            msg = r.message
            assert r.rcpt_tos == [msg["To"]] and r.mail_from == "olga@example.org"
            assert msg.get_content_type() == "multipart/alternative"
            assert msg["Subject"] == "[Spartacus] Night shift <union>: revealed, 8 members"
            text, page = parts(msg)
            for name in names:  # Dan has no email, yet he is in everyone's roster
                assert name in text and html.escape(name) in page
            for value in values:
                assert value in text and html.escape(value) in page
            assert "Olga Organizer (organizer)" in text
            assert INSTRUCTIONS.strip() in text and html.escape(INSTRUCTIONS.strip()) in page
            assert "Count me in, <i>finally</i>" in text
            for needle in (link, crew.campaign, f"chain id {crew.chain_id}", "pledgeCount()", "Pledged", "Withdrawn"):
                assert needle in text, needle
            assert html.escape(link) in page and "pledgeCount()" in page and "ThresholdReached" in page
            # Nothing a member wrote is markup in the HTML part.
            for raw in ("<script>", "<b>bold", "<i>finally", "<pen>", "<union>"):
                assert raw not in page, raw
            assert "&lt;script&gt;alert(&quot;pwn&quot;)&lt;/script&gt; Bob &amp; Co" in page

        st = status(cli, crew.campaign, "content.sqlite")
        assert st["counts"] == {"delivered": 7, "pending": 0, "failed": 0, "uncertain": 0, "skipped": 1}
        assert {row["email"] for row in st["delivered"]} == EMAILS
        # A second run sends nothing: once means once.
        again = cli(*args, "--json", env={"SPARTACUS_SMTP_PASSWORD": "s3cret"})
        assert json.loads(again.stdout)["sent"] == [] and len(box.received) == 7


def test_sigkill_between_two_sends_then_restart_sends_each_member_exactly_one(stack: Stack, crew: Crew) -> None:
    cli = stack.cli
    with Mailbox() as box:
        gate = box.gates[("MAIL", 4)] = Gate()  # the 4th transaction waits at MAIL FROM
        relay = Proc(cli, *relay_args(crew.campaign, box, "kill.sqlite", "--once"))
        relay.wait_for(r"^sent 3: ")
        assert gate.reached.wait(30)
        relay.kill()  # between the 3rd delivery and the 4th message's end of data
        gate.opened.set()
        assert len(box.received) == 3
        st = status(cli, crew.campaign, "kill.sqlite")
        assert (st["counts"]["delivered"], st["counts"]["pending"], st["counts"]["uncertain"]) == (3, 4, 0)

        again = cli(*relay_args(crew.campaign, box, "kill.sqlite", "--once"))
        assert len(re.findall(r"^sent \d+: ", again.stdout, re.M)) == 4, again.stdout
        assert_once_each(box, EMAILS)
        assert status(cli, crew.campaign, "kill.sqlite")["counts"]["delivered"] == 7


def test_sigkill_while_the_server_takes_a_message_is_uncertain_never_resent(stack: Stack, crew: Crew) -> None:
    cli = stack.cli
    with Mailbox() as box:
        gate = box.gates[("DATA", 4)] = Gate()  # the 4th message is queued; its 250 is held
        relay = Proc(cli, *relay_args(crew.campaign, box, "window.sqlite", "--once"))
        relay.wait_for(r"^sent 3: ")
        assert gate.reached.wait(30)
        fourth = box.wait_for(4)[3]
        relay.kill()  # the relay committed "sending" and sent the end of data; the server has it, no 250 yet
        gate.opened.set()
        assert status(cli, crew.campaign, "window.sqlite")["counts"]["uncertain"] == 1

        again = cli(*relay_args(crew.campaign, box, "window.sqlite", "--once"))
        assert re.search(r"^uncertain: #\d+ " + re.escape(fourth.rcpt_tos[0]), again.stdout, re.M), again.stdout
        assert_once_each(box, EMAILS)  # the uncertain one was delivered, and not sent twice
        st = status(cli, crew.campaign, "window.sqlite")
        assert (st["counts"]["delivered"], st["counts"]["uncertain"]) == (6, 1)
        [row] = st["uncertain"]
        assert row["email"] == fourth.rcpt_tos[0] and "resend-uncertain" in row["error"]

        # Only the operator resends it, and then it is the same bytes with the same Message-ID.
        cli(*relay_args(crew.campaign, box, "window.sqlite", "--once", "--resend-uncertain"))
        assert box.wait_for(8)[7].raw == fourth.raw


def test_smtp_outage_then_recovery_delivers_everything_once(stack: Stack, crew: Crew) -> None:
    cli = stack.cli
    box = Mailbox()  # not listening yet: connection refused
    box.mail_answers.append("421 4.3.2 Service shutting down, try again later")
    box.rcpt_answers["cleo@example.org"] = ["451 4.7.1 Greylisted, try again later"]
    args = relay_args(
        crew.campaign, box, "outage.sqlite", "--interval", "0.5", "--retry-base", "0.2", "--retry-max", "1"
    )
    relay = Proc(cli, *args)
    try:
        relay.wait_for(r"SMTP server 127\.0\.0\.1:\d+ unavailable .*retrying in", count=2)
        busy = cli(*relay_args(crew.campaign, box, "outage.sqlite", "--once"), ok=False)
        assert busy.returncode != 0 and "another relay is running" in busy.stderr
        with box:
            box.wait_for(7)
            relay.wait_for(r"^sent 7: ")
            assert relay.terminate() == 0
        assert_once_each(box, EMAILS)
        assert box.mail_answers == [] and ("cleo@example.org", "451 4.7.1 Greylisted, try again later") in box.rcpt_log
        assert re.search(r"^deferred: #\d+ cleo@example.org: 451", relay.output(), re.M)
        assert status(cli, crew.campaign, "outage.sqlite")["counts"]["delivered"] == 7
    finally:
        if relay.p.poll() is None:
            relay.kill()


def test_a_permanent_refusal_is_recorded_and_holds_up_no_one(stack: Stack, crew: Crew) -> None:
    cli = stack.cli
    with Mailbox() as box:
        box.refuse["cleo@example.org"] = "550 5.1.1 <cleo@example.org>: Recipient address rejected: User unknown"
        report = cli.json(*relay_args(crew.campaign, box, "refused.sqlite", "--once"))
        assert len(report["failed"]) == 1 and len(report["sent"]) == 6
        assert_once_each(box, EMAILS - {"cleo@example.org"})
        st = status(cli, crew.campaign, "refused.sqlite")
        assert st["counts"] == {"delivered": 6, "pending": 0, "failed": 1, "uncertain": 0, "skipped": 1}
        [failed] = st["failed"]
        assert failed["email"] == "cleo@example.org" and "550 5.1.1" in failed["error"]
        text = cli("relay", "status", crew.campaign, "--state", "refused.sqlite").stdout
        assert "failed: #" in text and "cleo@example.org" in text
        # Not retried: another run does not even ask the server again.
        cli(*relay_args(crew.campaign, box, "refused.sqlite", "--once"))
        assert [a for a, _ in box.rcpt_log].count("cleo@example.org") == 1 and len(box.received) == 6


@pytest.mark.parametrize("policy", ["known", "roster"])
def test_late_joiners_get_what_the_policy_gives_and_the_others_one_update_per_batch(stack: Stack, policy: str) -> None:
    """`known` (the default): a late joiner gets the instructions only, never the earlier roster
    nor the organizer's name; `roster`: the whole roster. Either way every member who holds the
    roster gets one update per batch naming the newcomers."""
    cli = stack.cli
    key, state = f"late0-{policy}.key", f"late-{policy}.sqlite"
    campaign = stack.create(2, key, "--late-joiners", policy)
    with Mailbox() as box:

        def relay(*extra: str) -> subprocess.CompletedProcess[str]:
            return cli(*relay_args(campaign, box, state, "--once", *extra, key=key))

        def join(account: int, name: str) -> None:
            email = f"{name.lower()}@late.example"
            cli(*pledge_args(campaign, account, name, {"email": email}, None, f"late{account}-{policy}.key"))

        # Without --once the relay waits for the reveal, then for the keepers, then sends.
        waiting = Proc(cli, *relay_args(campaign, box, state, "--interval", "0.2", key=key))
        try:
            waiting.wait_for(r"not revealed yet \(1 of 2 live pledges\)")
            join(2, "Ana")  # the reveal
            waiting.wait_for("revealed, but no pledge is readable yet")
            stack.release()
            waiting.wait_for(r"^sent 2: ")
            assert waiting.terminate() == 0
        finally:
            if waiting.p.poll() is None:
                waiting.kill()
        assert box.by_recipient() == Counter({"olga@example.org": 1, "ana@late.example": 1})

        join(3, "Ben")
        stack.release()
        join(4, "Cleo")  # not released yet: the batch waits for it (settle) rather than split
        assert "not readable yet" in relay().stdout and len(box.received) == 2
        stack.release()
        first_late = relay().stdout
        join(5, "Dan")
        stack.release()
        relay()

    got: dict[str, list[tuple[str, str]]] = {}
    for r in box.received:
        msg = r.message
        got.setdefault(r.rcpt_tos[0], []).append((msg["X-Spartacus-Kind"], msg["X-Spartacus-Batch"]))
    texts = {(r.rcpt_tos[0], r.message["X-Spartacus-Batch"]): parts(r.message) for r in box.received}
    update1 = texts[("ana@late.example", "1")][0]
    assert "2 people joined" in update1 and "Ben" in update1 and "Cleo" in update1 and "Olga" not in update1
    update2 = texts[("olga@example.org", "2")][0]
    assert "Dan" in update2 and "Cleo" not in update2 and "now has 5 members" in update2
    if policy == "roster":
        assert got == {
            "olga@example.org": [("roster", "0"), ("update", "1"), ("update", "2")],
            "ana@late.example": [("roster", "0"), ("update", "1"), ("update", "2")],
            "ben@late.example": [("roster", "1"), ("update", "2")],
            "cleo@late.example": [("roster", "1"), ("update", "2")],
            "dan@late.example": [("roster", "2")],
        }
        roster1 = texts[("cleo@late.example", "1")][0]
        assert all(n in roster1 for n in ("Olga Organizer", "Ana", "Ben", "Cleo")) and INSTRUCTIONS.strip() in roster1
        assert "MEMBERS (5)" in texts[("dan@late.example", "2")][0]
        assert "received the full roster" in update1
        return
    # known: the late joiners get the instructions, and are never sent anyone's identity.
    assert got == {
        "olga@example.org": [("roster", "0"), ("update", "1"), ("update", "2")],
        "ana@late.example": [("roster", "0"), ("update", "1"), ("update", "2")],
        "ben@late.example": [("instructions", "1")],
        "cleo@late.example": [("instructions", "1")],
        "dan@late.example": [("instructions", "2")],
    }
    assert "2 late joiner(s) get the instructions only (known policy)" in first_late
    assert "not the roster" in update1
    earlier = [ORGANIZER[0], "Olga", "olga@example.org", "+41001", "Ana", "ana@late.example"]
    for who in ("ben", "cleo", "dan"):
        [r] = [r for r in box.received if r.rcpt_tos == [f"{who}@late.example"]]
        text, page = parts(r.message)
        assert INSTRUCTIONS.strip() in text and html.escape(INSTRUCTIONS.strip()) in page
        seen = "\n".join([text, page, *(str(v) for v in r.message.values())])
        for secret in earlier + ["Ben", "Cleo", "Dan"]:
            if secret.lower() != who:
                assert secret not in seen, (who, secret)
        assert "MEMBERS" not in text and "Members" not in page


def test_bad_input_is_one_clear_line_and_loses_nothing(stack: Stack, crew: Crew) -> None:
    cli = stack.cli
    down = Mailbox()  # never started: its port refuses connections

    def refused(*args: str, env: dict[str, str] | None = None) -> str:
        out = cli(*args, ok=False, env=env)
        assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        return out.stderr

    base = relay_args(crew.campaign, down, "bad.sqlite", "--once")
    assert "no key file at nope.key" in refused(*relay_args(crew.campaign, down, "x.sqlite", "--once", key="nope.key"))
    assert "--smtp-port" in refused(*[("0" if a == str(down.port) else a) for a in base])
    assert "exclude each other" in refused(*base, "--smtp-starttls", "--smtp-ssl")
    assert "needs a password" in refused(*base, "--smtp-user", "relay")
    assert "unknown SMTP host 'no-such-host.invalid'" in refused(
        *[("no-such-host.invalid" if a == "127.0.0.1" else a) for a in base]
    )
    assert "no relay state at" in refused("relay", "status", crew.campaign, "--state", "missing.sqlite")

    # SMTP down: a one-line error, and every message waits in the outbox.
    outage = refused(*base)
    assert "unavailable" in outage and "nothing is lost" in outage
    assert status(cli, crew.campaign, "bad.sqlite")["counts"]["pending"] == 7
    with Mailbox(login=("relay", "s3cret")) as box:
        wrong = [*relay_args(crew.campaign, box, "bad.sqlite", "--once"), "--smtp-user", "relay"]
        assert "refused the login" in refused(*wrong, env={"SPARTACUS_SMTP_PASSWORD": "wrong"})
        (cli.cwd / "smtp-password").write_text("s3cret\n")
        cli(*wrong, "--smtp-password-file", "smtp-password")
        assert_once_each(box, EMAILS)
    assert status(cli, crew.campaign, "bad.sqlite")["counts"]["delivered"] == 7
