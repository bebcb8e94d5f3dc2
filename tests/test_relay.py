"""The relay on real parts: a real anvil, campaigns made and revealed through the real
`spartacus` command (keepers run with `keeper run --once`), a real SMTP server (aiosmtpd)
on loopback, and the relay itself as a real subprocess (killed with SIGKILL where the
test says so).

Timing is never left to sleeps: the SMTP server holds a chosen transaction at a chosen
command (a gate the test opens), and the tests wait for the relay's own output lines.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from relay_helpers import Cli, Gate, Mailbox, Proc
from relay_pki import Pki, TlsServer, make_pki
from spartacus_cli import deploy_with_keepers

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


def test_smtp_over_tls_through_the_command(stack: Stack, crew: Crew) -> None:
    """--smtp-starttls with --smtp-ca-file: refused with one line for a wrong host name or a CA it
    was not given, nothing sent at all (the server hears no MAIL, RCPT or DATA), then accepted."""
    cli = stack.cli
    pki: Pki = make_pki(cli.cwd / "pki")
    with TlsServer("starttls", pki.cert, pki.key) as server:
        base = relay_args(crew.campaign, Mailbox(server.port), "tls.sqlite", "--once", "--smtp-starttls")
        by_ip = cli(*base, "--smtp-ca-file", str(pki.ca), ok=False)  # the certificate names localhost
        at_localhost = ["localhost" if a == "127.0.0.1" else a for a in base]
        untrusted = cli(*at_localhost, ok=False)  # the system's CAs do not know the throwaway CA
        for run, needle in ((by_ip, "not valid for '127.0.0.1'"), (untrusted, "--smtp-ca-file")):
            assert run.returncode != 0 and len(run.stderr.strip().splitlines()) == 1, run.stderr
            assert needle in run.stderr and "nothing was sent" in run.stderr, run.stderr
        assert server.seen.commands == []
        assert status(cli, crew.campaign, "tls.sqlite")["counts"]["pending"] == 7  # nothing lost
        report = cli.json(*at_localhost, "--smtp-ca-file", str(pki.ca))
        assert len(report["sent"]) == 7
        assert server.seen.of("DATA") == [True] * 7 and all(server.seen.of("MAIL"))
