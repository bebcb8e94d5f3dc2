"""``spartacus relay``: email every member the roster and the instructions, once.

Two forms of ``relay run``:

* ``relay run CAMPAIGN --member-key-file F ...``: the organizer's own relay, for one campaign;
* ``relay run --key-file F [--factory A] ...``: a relay service (key from ``relay init``) that
  serves every campaign of the factory created with ``create ... --relay PUBKEY``.

A thin layer over :mod:`spartacus.relay`. It imports nothing from :mod:`spartacus.cli`
(which registers this group), so ``python -m spartacus.cli`` has no import cycle; the
few shared options are restated here. Errors are ours (``SpartacusError``), turned into
one line on stderr by ``spartacus.cli.main``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

from ._exceptions import InputError, RPCUnavailable

__all__ = ["relay"]

_NETWORK_HELP = (
    "Ape network choice (e.g. ethereum:sepolia:node) or RPC URL. Default: $SPARTACUS_NETWORK, "
    "else the local anvil (ethereum:local:foundry)."
)


def _state_path(state: str | None, *key_files: str | None) -> Path:
    from .relay import default_state_path

    if state:
        return Path(state)
    for key_file in key_files:
        if key_file:
            return default_state_path(key_file)
    raise InputError("pass --state PATH (or the key file the relay runs with: its state is KEY_FILE.relay.sqlite)")


def _password(password_file: str | None) -> str | None:
    if password_file:
        try:
            return Path(password_file).read_text("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InputError(f"--smtp-password-file {password_file}: cannot read it ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"--smtp-password-file {password_file} is not UTF-8 text") from exc
    return os.environ.get("SPARTACUS_SMTP_PASSWORD") or None


def _summary(status: dict[str, Any]) -> str:
    counts = status["counts"]
    return "   ".join(f"{name} {counts[name]}" for name in ("delivered", "pending", "failed", "uncertain", "skipped"))


def _details(status: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for group in ("failed", "uncertain", "pending"):
        for row in status[group]:
            who = "the organizer" if row["member"] < 0 else f"#{row['member']}"
            lines.append(
                f"  {group}: {who} {row['email']} ({row['kind']}, batch {row['batch']}) {row['message_id']}"
                + (f": {row['error']}" if row["error"] else "")
            )
    lines += [f"  skipped: #{s['member']} {s['name']}: {s['reason']}" for s in status["skipped"]]
    return lines


@click.group()
def relay() -> None:
    """Email every member the roster and the instructions after the reveal, exactly once."""


@relay.command("init")
@click.option("--key-file", required=True, type=click.Path(), help="Where to write the new relay key (mode 0600).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def relay_init(key_file: str, as_json: bool) -> None:
    """Create a relay service key; prints its public key (organizers name it with `create --relay`)."""
    from .keys import KIND_RELAY, generate_key_file

    pair = generate_key_file(key_file, KIND_RELAY)
    public = "0x" + pair.compressed.hex()
    if as_json:
        click.echo(json.dumps({"public_key": public, "address": pair.address}, sort_keys=True))
    else:
        click.echo(
            f"relay key written to {key_file} (mode 0600)\npublic key: {public}\n"
            f"organizers name it with: spartacus create ... --relay {public}\n"
            f"serve their campaigns with: spartacus relay run --key-file {key_file} --smtp-host ..."
        )


@relay.command("run")
@click.argument("campaign", required=False)
@click.option(
    "--member-key-file", type=click.Path(), help="With CAMPAIGN: your member key (the organizer's own relay)."
)
@click.option("--key-file", type=click.Path(), help="Without CAMPAIGN: the relay service's key (`relay init`).")
@click.option(
    "--factory", envvar="SPARTACUS_FACTORY", help="The factory a service serves. Default: $SPARTACUS_FACTORY."
)
@click.option("--smtp-host", required=True, help="SMTP server to send through.")
@click.option("--smtp-port", required=True, type=click.IntRange(1, 65535), help="Its port (25, 465 SSL, 587).")
@click.option("--smtp-user", default=None, help="Login, if the server wants one.")
@click.option(
    "--smtp-password-file",
    type=click.Path(),
    default=None,
    help="File holding the SMTP password (default: $SPARTACUS_SMTP_PASSWORD).",
)
@click.option("--smtp-starttls", is_flag=True, help="Upgrade the connection with STARTTLS (port 587).")
@click.option("--smtp-ssl", is_flag=True, help="Connect with TLS from the start (port 465).")
@click.option(
    "--smtp-ca-file",
    type=click.Path(),
    default=None,
    help="PEM file of the CA to trust for the SMTP server's certificate (default: the system's CAs).",
)
@click.option("--from", "sender", envvar="SPARTACUS_RELAY_FROM", default=None, help="From address.")
@click.option(
    "--dapp-url",
    envvar="SPARTACUS_DAPP_URL",
    default=None,
    help="The dApp's address; the campaign's page is URL?campaign=0x… ({campaign} in the URL is replaced). "
    "Default: $SPARTACUS_DAPP_URL, else http://localhost:8501/.",
)
@click.option("--state", "state_path", type=click.Path(), help="SQLite state (default: KEY_FILE.relay.sqlite).")
@click.option("--interval", type=float, default=15.0, show_default=True, help="Seconds between passes.")
@click.option(
    "--settle",
    type=float,
    default=120.0,
    show_default=True,
    help="While some pledge is not readable yet, wait this long after the keepers' last change before a batch.",
)
@click.option("--retry-base", type=float, default=5.0, show_default=True, help="First retry delay (doubles).")
@click.option("--retry-max", type=float, default=600.0, show_default=True, help="Longest retry delay.")
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Send again every message a crash left uncertain (check the server's log first).",
)
@click.option(
    "--resend",
    "resend",
    multiple=True,
    metavar="MESSAGE_ID",
    help="Send again this uncertain message (repeat; from `relay status`), after checking it did not arrive.",
)
@click.option("--once", is_flag=True, help="One pass (send what can be sent now), then exit.")
@click.option("--network", envvar="SPARTACUS_NETWORK", default=None, help=_NETWORK_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
def relay_run(
    campaign: str | None,
    member_key_file: str | None,
    key_file: str | None,
    factory: str | None,
    smtp_host: str,
    smtp_port: int,
    smtp_user: str | None,
    smtp_password_file: str | None,
    smtp_starttls: bool,
    smtp_ssl: bool,
    smtp_ca_file: str | None,
    sender: str | None,
    dapp_url: str | None,
    state_path: str | None,
    interval: float,
    settle: float,
    retry_base: float,
    retry_max: float,
    resend_uncertain: bool,
    resend: tuple[str, ...],
    once: bool,
    network: str | None,
    as_json: bool,
) -> None:
    """After CAMPAIGN's reveal, email each member the roster and the instructions (and late joiners theirs);
    without CAMPAIGN, as a relay service, do so for every campaign of the factory that names --key-file."""
    from ._ape import connect
    from .chain import ChainClient
    from .keys import KIND_MEMBER, KIND_RELAY, load_key_file
    from .relay import DEFAULT_DAPP_URL, DEFAULT_SENDER, Relay, RelayService, SmtpSettings, relay_status

    if campaign and key_file:
        raise InputError(
            "CAMPAIGN with --key-file: a relay service serves every campaign that names its key; drop CAMPAIGN,"
            " or pass --member-key-file to relay one campaign as its member"
        )
    if campaign and not member_key_file:
        raise InputError("relay run CAMPAIGN needs --member-key-file (your member key of that campaign)")
    if not campaign and not key_file:
        raise InputError(
            "pass CAMPAIGN --member-key-file F (your own relay), or --key-file F (a relay service, see `relay init`)"
        )
    if not campaign and member_key_file:
        raise InputError("--member-key-file relays one campaign: pass its CAMPAIGN address too")
    if smtp_starttls and smtp_ssl:
        raise InputError("--smtp-starttls and --smtp-ssl exclude each other: pick one (587 STARTTLS, 465 SSL)")
    if smtp_password_file and not smtp_user:
        raise InputError("--smtp-password-file without --smtp-user: pass the login too")
    if interval <= 0 or settle < 0:
        raise InputError("--interval must be positive and --settle 0 or more")
    if resend and resend_uncertain:
        raise InputError("--resend names some uncertain messages, --resend-uncertain all of them: pick one")
    url = dapp_url or DEFAULT_DAPP_URL
    if not url.startswith(("http://", "https://")):
        raise InputError(f"--dapp-url {url!r}: give an http:// or https:// address")
    smtp = SmtpSettings(
        host=smtp_host,
        port=smtp_port,
        security="ssl" if smtp_ssl else "starttls" if smtp_starttls else "none",
        user=smtp_user or None,
        password=_password(smtp_password_file) if smtp_user else None,
        sender=sender or (smtp_user if smtp_user and "@" in smtp_user else DEFAULT_SENDER),
        ca_file=smtp_ca_file,
    )
    if campaign:
        assert member_key_file is not None
        key = load_key_file(member_key_file, KIND_MEMBER, campaign=campaign)
    else:
        assert key_file is not None
        if not factory:
            raise InputError("no factory: pass --factory 0x… or set SPARTACUS_FACTORY (see `spartacus deploy`)")
        key = load_key_file(key_file, KIND_RELAY)
    state = _state_path(state_path, member_key_file, key_file)

    def say(line: str) -> None:
        click.echo(line, err=as_json)  # progress; with --json stdout is kept for the one object

    stopping = threading.Event()  # SIGTERM: between two messages, or while waiting for the node
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    options: dict[str, Any] = {
        "dapp_url": url,
        "settle": settle,
        "retry_base": retry_base,
        "retry_max": retry_max,
        "notify": say,
    }
    with contextlib.ExitStack() as connection:
        try:
            # A node that is down is waited for (not with --once), with the backoff of a running relay.
            w3 = connection.enter_context(
                connect(network, wait=not once, interval=retry_base, max_backoff=retry_max, stop=stopping)
            )
        except RPCUnavailable:
            if stopping.is_set():
                return  # stopped while waiting for the node
            raise
        client = ChainClient(w3)
        runner: Relay | RelayService
        if campaign:
            runner = Relay(client, campaign, key, smtp, state, **options)
        else:
            assert factory is not None
            runner = RelayService(client, factory, key, smtp, state, **options)
        with runner:
            if resend_uncertain or resend:
                count = runner.resend_uncertain(list(resend) if resend else None)
                say(f"{count} uncertain message(s) queued again")
            try:
                report = runner.run(once=once, interval=interval, stop=stopping.is_set)
            except KeyboardInterrupt:
                return
    status = relay_status(state, campaign)
    if as_json:
        click.echo(json.dumps(report.to_json() | {"counts": status["counts"]}, sort_keys=True))
    elif campaign:
        click.echo(f"relay {campaign}: sent {len(report.sent)} this run;   {_summary(status)}")
    else:
        click.echo(
            f"relay service of {factory}: {len(status.get('campaigns', []))} campaign(s) served, sent"
            f" {len(report.sent)} this run;   {_summary(status)}"
        )


@relay.command("status")
@click.argument("campaign", required=False)
@click.option("--state", "state_path", type=click.Path(), help="The relay's SQLite state.")
@click.option(
    "--member-key-file", type=click.Path(), help="Or the member key file it runs with (its state is next to it)."
)
@click.option("--key-file", type=click.Path(), help="Or the relay service's key file (its state is next to it).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def relay_status_command(
    campaign: str | None, state_path: str | None, member_key_file: str | None, key_file: str | None, as_json: bool
) -> None:
    """What the relay of CAMPAIGN delivered, has pending, and failed to deliver (from its state; no chain).
    Without CAMPAIGN, a relay service's every campaign."""
    from .relay import relay_status

    status = relay_status(_state_path(state_path, member_key_file, key_file), campaign)
    if as_json:
        click.echo(json.dumps(status, sort_keys=True))
        return
    if status["mode"] == "service" and not campaign:
        head = (
            f"relay service {status['relay']} of factory {status['factory']} (chain {status['chain_id']}):"
            f" {len(status['campaigns'])} campaign(s), {status['members']} member(s)"
        )
        served = [
            f"  {c['address']}: {c['status']}"
            + (f" ({c['reason']})" if c["reason"] else "")
            + ("" if c["progress_notices"] else f"; no progress e-mails: {c['note_problem']}")
            for c in status["campaigns"]
        ]
    else:
        head = (
            f"relay of {status['campaign']} (chain {status['chain_id']}): {status['members']} member(s) in"
            f" {status['batches']} batch(es)"
        )
        served = []
    click.echo("\n".join([head, *served, f"  {_summary(status)}", *_details(status)]))
