"""SMTP over TLS, on real parts: the relay's sender (``spartacus._relay_smtp``) with a real SQLite
outbox, against a real aiosmtpd server speaking STARTTLS or implicit TLS with a certificate from
a throwaway CA made in the test (``relay_pki``). No chain is needed: the outbox is filled directly.

What must hold: a certificate signed by the CA given with ``--smtp-ca-file`` is accepted; a wrong
host name or an untrusted certificate is refused with one clear line; after a failed (or not
offered) STARTTLS nothing at all is sent, in clear or otherwise: the server hears no MAIL, RCPT
or DATA, and the message stays queued.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from relay_pki import Pki, TlsServer, make_pki

from spartacus._exceptions import InputError, MailError
from spartacus._relay_outbox import Delivery, Member, Outbox
from spartacus._relay_render import MessageParts
from spartacus._relay_smtp import Mailer, SmtpSettings

CAMPAIGN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def outbox(path: Path) -> Outbox:
    """A campaign relay's state with one roster message queued for ana@example.org."""
    box = Outbox(
        path, {"mode": "campaign", "campaign": CAMPAIGN, "chain_id": "31337", "member": "02" * 33},
        message_key=b"k" * 32, notify=lambda _: None,
    )  # fmt: skip
    box.add_campaign(CAMPAIGN)
    mid = box.message_id(31337, CAMPAIGN, 1, "roster", 0, "localhost")
    parts = {"roster": MessageParts("[Spartacus] test: revealed", "the roster\n", "<p>the roster</p>")}
    box.queue_batch(
        CAMPAIGN, 1, parts, [Member(1, "Ana", "ana@example.org", None, "full")],
        lambda batch, earlier: [(mid, 1, "roster", "ana@example.org")],
    )  # fmt: skip
    return box


def deliver(tmp_path: Path, **settings: Any) -> tuple[Outbox, Delivery]:
    box = outbox(tmp_path / "state.sqlite")
    report = Delivery()
    Mailer(SmtpSettings(**settings, timeout=10), notify=lambda _: None).deliver(box, report, lambda: False)
    return box, report


def refused(tmp_path: Path, server: TlsServer, **settings: Any) -> str:
    """The one-line refusal, after checking that nothing reached the server and nothing was lost."""
    box = outbox(tmp_path / "state.sqlite")
    with pytest.raises(MailError) as info:
        Mailer(SmtpSettings(**settings, timeout=10), notify=lambda _: None).deliver(box, Delivery(), lambda: False)
    assert server.seen.commands == [] and server.seen.messages == []  # no MAIL, RCPT or DATA: nothing in clear
    assert [r.status for r in box.due()] == ["pending"]  # still queued: fix the setting and run again
    message = info.value.message
    assert "\n" not in message and "nothing was sent" in message
    assert not info.value.context.get("transient")  # a setting to fix, not an outage to wait out
    return message


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_a_certificate_signed_by_the_given_ca_is_accepted(tmp_path: Path, pki: Pki, mode: str) -> None:
    with TlsServer(mode, pki.cert, pki.key) as server:
        box, report = deliver(tmp_path, host="localhost", port=server.port, security=mode, ca_file=str(pki.ca))
        assert len(report.sent) == 1 and box.due() == []
        # The whole transaction went over TLS.
        assert server.seen.commands == [("MAIL", True), ("RCPT", True), ("DATA", True)]
        assert b"the roster" in server.seen.messages[0]


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_a_wrong_host_name_is_refused(tmp_path: Path, pki: Pki, mode: str) -> None:
    with TlsServer(mode, pki.cert, pki.key) as server:  # the certificate names localhost, not 127.0.0.1
        line = refused(tmp_path, server, host="127.0.0.1", port=server.port, security=mode, ca_file=str(pki.ca))
    assert "not valid for '127.0.0.1'" in line and "--smtp-host" in line, line


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(tmp_path: Path, pki: Pki, mode: str) -> None:
    with TlsServer(mode, pki.rogue_cert, pki.rogue_key) as server:  # signed by another CA
        line = refused(tmp_path, server, host="localhost", port=server.port, security=mode, ca_file=str(pki.ca))
    assert "does not trust" in line and str(pki.ca) in line, line


def test_without_the_ca_file_the_system_cas_do_not_trust_a_private_ca(tmp_path: Path, pki: Pki) -> None:
    with TlsServer("starttls", pki.cert, pki.key) as server:
        line = refused(tmp_path, server, host="localhost", port=server.port, security="starttls")
    assert "does not trust" in line and "--smtp-ca-file" in line, line


def test_a_server_without_starttls_gets_nothing_in_clear(tmp_path: Path, pki: Pki) -> None:
    with TlsServer("plain") as server:
        line = refused(tmp_path, server, host="localhost", port=server.port, security="starttls", ca_file=str(pki.ca))
    assert "does not offer STARTTLS" in line, line


def test_implicit_tls_against_a_plain_server_is_refused(tmp_path: Path, pki: Pki) -> None:
    with TlsServer("plain") as server:
        line = refused(tmp_path, server, host="localhost", port=server.port, security="ssl", ca_file=str(pki.ca))
    assert "TLS with the SMTP server" in line and "--smtp-ssl" in line, line


def test_a_bad_ca_file_is_one_clear_line_before_anything_starts(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(InputError, match="--smtp-ca-file .*no such file"):
        SmtpSettings("localhost", 587, "starttls", ca_file=str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(InputError, match="holds no usable PEM certificate"):
        SmtpSettings("localhost", 587, "starttls", ca_file=str(junk))
    with pytest.raises(InputError, match="--smtp-ca-file is for TLS"):
        SmtpSettings("localhost", 25, ca_file=str(pki.ca))
